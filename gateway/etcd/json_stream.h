// JsonStream: cuts a byte stream of JSON objects into whole objects, for etcd's streamed watch
// responses.
//
// What etcd 3.4's gateway sends on POST /v3/watch (checked with curl against Debian's etcd
// 3.4.23): a chunked HTTP response whose every chunk is one object followed by "\n",
//   8d\r\n{"result":{"header":{...},"created":true}}\n\r\n
// The chunk framing is not a message framing to rely on (a proxy may re-chunk; a large response
// could be split), so this splitter ignores it and finds object boundaries itself by counting
// braces outside strings: objects may be separated by newlines, other whitespace or nothing
// (concatenated), and may arrive in any number of pieces.
//
//   JsonStream s;
//   s.feed(bytes);
//   while (auto object = s.next()) handle(*object);   // each a complete "{...}" text
//   if (s.failed()) reconnect();
//
// Only the framing is checked here; the objects' contents are parsed (and may still be invalid)
// by the caller. Bytes between objects that are not whitespace, or an object longer than
// `max_object` bytes, put the stream into failed(): nothing more comes out of it, because a
// framing error loses the position of every later boundary.
//
// Thread-safety: none (one per connection).
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace sluice::gateway::etcd {

class JsonStream {
 public:
  explicit JsonStream(std::size_t max_object = 64UL * 1024 * 1024) : max_object_(max_object) {}

  // Appends bytes received (any split, including inside a string or an escape).
  void feed(std::string_view bytes);

  // The next complete object, or nullopt until more bytes come (or after a failure).
  [[nodiscard]] std::optional<std::string> next();

  [[nodiscard]] bool failed() const noexcept { return failed_; }

 private:
  std::string buffer_;
  std::size_t scan_ = 0;   // bytes of buffer_ already scanned (state below is as of there)
  std::size_t begin_ = 0;  // where the current object starts
  int depth_ = 0;          // open braces and brackets of the current object
  bool in_string_ = false;
  bool escape_ = false;
  bool failed_ = false;
  std::size_t max_object_;
};

}  // namespace sluice::gateway::etcd
