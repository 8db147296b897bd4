// Strict parser for downstream HTTP/1.1 requests (see strict_parser.h for what "strict" covers).
//
//   RequestHead head;
//   RequestParser parser(head, limits);
//   auto r = parser.parseHead(bytes);          // call again with more bytes while r.need_more
//   if (r.error != RequestError::None) -> answer describe(r.error).status and close
//   else r.consumed bytes were the head; `head` holds views into `bytes`.
//
// Request-specific rules, on top of Beast's: HTTP/1.0 and 1.1 only; exactly one Host on 1.1 and
// never two; Host characters must form an authority; the target must be origin-form,
// absolute-form or "*" for OPTIONS; CONNECT is refused; Expect must be 100-continue. The request
// line and the head have separate byte limits (414 and 431) and the field count a limit of its
// own (431).
//
// Empty lines (CRLF or a bare LF) before the request line are skipped (RFC 9112 2.2); they are
// part of the head's bytes, so its 431 limit bounds them. A request line that is complete but
// malformed (no version, as in HTTP/0.9's "GET /", or bad syntax) is refused as soon as its LF
// arrives, without waiting for the rest of the head.
//
// Absolute-form ("GET http://h:8080/p?q HTTP/1.1", http or https only, no userinfo) is reduced
// to origin-form ("/p?q"), and its authority replaces the Host header (RFC 9112 3.2.2): `host`
// and the Host field's value are both the authority, whatever the client sent as Host. An
// HTTP/1.1 request still needs a Host field (RFC 9112 3.2: 400 without one, as for any other);
// HTTP/1.0 may omit it. "http://h?q" (a query without a path) is refused.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "gateway/http/head.h"
#include "gateway/http/parse_error.h"
#include "gateway/http/strict_parser.h"

namespace sluice::gateway::http {

struct RequestLimits {
  std::size_t max_request_line = 8 * 1024;
  std::size_t max_head_bytes = 32 * 1024;  // request line + fields + blank line
  std::size_t max_fields = 100;
};

class RequestParser final : public StrictParser<true> {
 public:
  RequestParser(RequestHead& head, const RequestLimits& limits);

  struct HeadResult {
    std::size_t consumed = 0;  // bytes of the head when done
    bool done = false;
    RequestError error = RequestError::None;
  };
  // Parses the head from the start of `data` (everything buffered so far).
  [[nodiscard]] HeadResult parseHead(std::string_view data);

  // Continues a chunked body: decoded bytes go where setBodyOutput says. Returns bytes consumed;
  // `error` is BadChunk or BodyTooLarge on failure; `done` once the last chunk and trailers are in.
  struct BodyResult {
    std::size_t consumed = 0;
    bool done = false;
    RequestError error = RequestError::None;
  };
  [[nodiscard]] BodyResult parseChunked(std::string_view data);

  // Caps the decoded size of a chunked body (BodyTooLarge beyond it).
  void setBodyLimit(std::uint64_t max_bytes) { body_limit(max_bytes); }

 private:
  void on_request_impl(Verb method, boost::beast::string_view method_text,
                       boost::beast::string_view target, int version, error_code& ec) override;
  void on_response_impl(int, boost::beast::string_view, int, error_code&) override {}
  void on_field_impl(Field id, boost::beast::string_view name, boost::beast::string_view value,
                     error_code& ec) override;
  void on_header_impl(error_code& ec) override;

  RequestError reject(RequestError e, error_code& ec) {
    error_ = e;
    ec = boost::beast::http::error::bad_field;
    return e;
  }

  RequestHead& head_;
  RequestLimits limits_;
  RequestError error_ = RequestError::None;
  int host_count_ = 0;
  bool absolute_form_ = false;  // the target's authority is the host
  bool line_checked_ = false;   // the request line was complete and its shape checked
};

// True if `host` is a syntactically valid authority (reg-name or IP literal, optional port).
[[nodiscard]] bool isValidAuthority(std::string_view host) noexcept;

}  // namespace sluice::gateway::http
