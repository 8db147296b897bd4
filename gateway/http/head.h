// Parsed HTTP/1.1 message heads.
//
// A head holds string_views into the buffer it was parsed from: it is valid until that buffer is
// consumed or compacted. The proxy therefore finishes everything it needs from a head (routing,
// serialising the upstream head, copying the few fields it logs) before it touches the buffer
// again, and never copies header bytes it does not have to.
#pragma once

#include <cstdint>
#include <string_view>
#include <vector>

#include <boost/beast/http/field.hpp>
#include <boost/beast/http/verb.hpp>

namespace sluice::gateway::http {

using Field = boost::beast::http::field;
using Verb = boost::beast::http::verb;

struct HeaderField {
  Field id;                // Field::unknown for names Beast does not know
  std::string_view name;   // as received (case preserved)
  std::string_view value;  // optional whitespace trimmed by the parser
};

// How a message's body is delimited. The proxy re-derives framing for the next hop from this;
// it never copies Content-Length or Transfer-Encoding headers.
enum class Framing : std::uint8_t {
  None,     // no body (no Content-Length / Transfer-Encoding on a request; 1xx/204/304/HEAD)
  Length,   // Content-Length bytes follow (possibly zero)
  Chunked,  // Transfer-Encoding: chunked
  UntilEof  // response only: body ends when the upstream closes
};

struct MessageHead {
  int version = 11;  // 10 or 11; anything else is rejected while parsing
  std::vector<HeaderField> fields;
  std::vector<std::string_view> connection_tokens;  // names listed in Connection, to strip
  Framing framing = Framing::None;
  std::uint64_t content_length = 0;  // meaningful when framing == Length or has_content_length
  bool has_content_length = false;   // bodiless response (HEAD, 304) that still declared a length
  bool keep_alive = true;            // after applying the version default and Connection

  // Index of the first field with this id, or nullptr.
  [[nodiscard]] const HeaderField* find(Field id) const noexcept {
    for (const auto& f : fields) {
      if (f.id == id) return &f;
    }
    return nullptr;
  }

 protected:
  void clearMessage() {
    version = 11;
    fields.clear();
    connection_tokens.clear();
    framing = Framing::None;
    content_length = 0;
    has_content_length = false;
    keep_alive = true;
  }
};

struct RequestHead : MessageHead {
  Verb method = Verb::unknown;
  std::string_view method_text;
  std::string_view target;  // origin-form ("/path?query") after absolute-form is reduced
  std::string_view host;    // Host header value (or absolute-form authority); may be empty on 1.0
  bool expect_continue = false;

  [[nodiscard]] std::string_view path() const noexcept {
    const auto q = target.find('?');
    return q == std::string_view::npos ? target : target.substr(0, q);
  }

  // Keeps vector capacity: one RequestHead serves every request of a connection.
  void clear() {
    clearMessage();
    method = Verb::unknown;
    method_text = {};
    target = {};
    host = {};
    expect_continue = false;
  }
};

struct ResponseHead : MessageHead {
  int status = 0;
  std::string_view reason;

  void clear() {
    clearMessage();
    status = 0;
    reason = {};
  }
};

}  // namespace sluice::gateway::http
