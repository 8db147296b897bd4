// The part of sluice's HTTP/1.1 parsing shared by requests and responses.
//
// Parsing is done once per message by Boost.Beast's basic_parser, which already rejects bad
// start lines, invalid field names, whitespace before the colon, control characters (CR, LF, NUL)
// inside values, malformed or conflicting Content-Length and Content-Length together with chunked.
// StrictParser adds the checks Beast leaves to the application:
//   - obsolete line folding (Beast unfolds it silently; a smuggling vector, so it is rejected);
//   - Transfer-Encoding must be exactly "chunked", once, and never on HTTP/1.0;
//   - Content-Length may appear once, as a single number (no "5, 5" lists);
//   - a cap on the number of fields;
// and it decodes chunked bodies, re-encoding them for the next hop so that framing is always
// derived by sluice and never copied (see setBodyOutput).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include <boost/beast/http/basic_parser.hpp>

#include "gateway/http/head.h"

namespace sluice::gateway::http {

// What a header-field check found wrong; mapped to a RequestError (downstream) or to a 502
// (upstream) by the concrete parser.
enum class FieldProblem : std::uint8_t {
  None,
  ObsFold,
  BadContentLength,
  BadTransferEncoding,
  UnsupportedCoding,
  TooManyFields,
};

// What Beast left unconsumed when it asked for more of a chunked body: true when that is a
// complete chunk-size line of a non-zero size (after the CRLF ending the previous chunk's data).
// Beast finishes every such line it can parse, so it is waiting on an extension that runs past
// the line's end. A zero size is the last chunk, whose trailer fields may well be incomplete.
[[nodiscard]] bool chunkLineStuck(std::string_view rest) noexcept;

template <bool IsRequest>
class StrictParser : public boost::beast::http::basic_parser<IsRequest> {
 public:
  using error_code = boost::beast::error_code;

  // Parses from one contiguous buffer. Returns the bytes consumed. Header parsing stops after the
  // head (eager off); body parsing consumes every complete element.
  std::size_t feed(std::string_view data, error_code& ec) {
    input_begin_ = data.data();
    input_end_ = data.data() + data.size();
    return this->put(boost::asio::const_buffer(data.data(), data.size()), ec);
  }

  // Where decoded body bytes go once the head is parsed: appended to `out`, re-chunked when
  // `rechunk` (for an HTTP/1.1 next hop), raw otherwise. Only chunked bodies go through the
  // parser; Content-Length and close-delimited bodies are copied without it.
  void setBodyOutput(std::string* out, bool rechunk) noexcept {
    out_ = out;
    rechunk_ = rechunk;
    this->eager(true);
  }

  // feed() for a chunked body, with one repair to Beast: it reads a chunk extension's quoted
  // string up to the end of the buffered bytes instead of the end of its line, so a quote left
  // open ("5;a=\"x\r\n...") makes it wait for more bytes forever, counting the chunk against the
  // body limit again on every try (a verdict that depended on how the bytes were split: found by
  // fuzz/chunked_fuzz.cc). Such a line is refused as a bad chunk extension at once.
  std::size_t feedBody(std::string_view data, error_code& ec) {
    const std::size_t n = feed(data, ec);
    if (ec == boost::beast::http::error::need_more && chunkLineStuck(data.substr(n))) {
      ec = boost::beast::http::error::bad_chunk_extension;
    }
    return n;
  }

  [[nodiscard]] std::uint64_t decodedBytes() const noexcept { return decoded_; }

  // Offset just past the blank line ending the head in `data`, or npos. Beast consumes a start
  // line as soon as it is complete, but the views a head holds must all point into one buffer:
  // so a head is handed to Beast only once it is complete, found with one memmem per read that
  // resumes where the previous search stopped (a trickled head is never rescanned).
  std::size_t findHeadEnd(std::string_view data) noexcept;
  [[nodiscard]] FieldProblem fieldProblem() const noexcept { return problem_; }

 protected:
  explicit StrictParser(std::size_t max_fields) : max_fields_(max_fields) {}

  // Checks common to every header field; records connection tokens and framing facts in `head`.
  // Returns false (with ec set) to stop the parse.
  bool checkField(Field id, std::string_view name, std::string_view value, MessageHead& head,
                  error_code& ec);

  bool fail(FieldProblem p, error_code& ec) {
    problem_ = p;
    ec = boost::beast::http::error::bad_field;
    return false;
  }

 private:
  void on_body_init_impl(const boost::optional<std::uint64_t>& /*content_length*/,
                         error_code& /*ec*/) override {}
  std::size_t on_body_impl(boost::beast::string_view body, error_code& ec) override;
  void on_chunk_header_impl(std::uint64_t /*size*/, boost::beast::string_view /*extensions*/,
                            error_code& /*ec*/) override {}
  std::size_t on_chunk_body_impl(std::uint64_t remain, boost::beast::string_view body,
                                 error_code& ec) override;
  void on_finish_impl(error_code& ec) override;

  const char* input_begin_ = nullptr;
  const char* input_end_ = nullptr;
  std::size_t max_fields_;
  std::size_t fields_seen_ = 0;
  bool saw_content_length_ = false;
  bool saw_transfer_encoding_ = false;
  FieldProblem problem_ = FieldProblem::None;

  std::string* out_ = nullptr;
  bool rechunk_ = false;
  std::uint64_t decoded_ = 0;
  std::size_t scanned_ = 0;  // bytes of the head already searched for its end
};

extern template class StrictParser<true>;
extern template class StrictParser<false>;

// Splits a comma-separated header list, trimming optional whitespace; empty elements skipped.
template <typename F>
void forEachListElement(std::string_view list, F&& f) {
  while (!list.empty()) {
    const auto comma = list.find(',');
    std::string_view item = list.substr(0, comma);
    while (!item.empty() && (item.front() == ' ' || item.front() == '\t')) item.remove_prefix(1);
    while (!item.empty() && (item.back() == ' ' || item.back() == '\t')) item.remove_suffix(1);
    if (!item.empty()) f(item);
    if (comma == std::string_view::npos) break;
    list.remove_prefix(comma + 1);
  }
}

[[nodiscard]] bool iequals(std::string_view a, std::string_view b) noexcept;

}  // namespace sluice::gateway::http
