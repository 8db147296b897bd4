// Strict parser for upstream HTTP/1.1 responses.
//
// Anything an upstream sends that a strict reading refuses (bad status line, bad framing,
// obs-fold, a transfer coding other than chunked, Content-Length with chunked, ...) is a
// BadResponse: the proxy answers 502 and never reuses that upstream connection.
//
//   ResponseHead head;
//   ResponseParser parser(head, max_head_bytes, max_fields, /*head_request=*/false);
//   auto r = parser.parseHead(bytes);  // again with more bytes while !r.done && !r.bad
#pragma once

#include <cstddef>
#include <string_view>

#include "gateway/http/head.h"
#include "gateway/http/strict_parser.h"

namespace sluice::gateway::http {

class ResponseParser final : public StrictParser<false> {
 public:
  // `head_request`: the request was HEAD, so the response has no body whatever it says.
  ResponseParser(ResponseHead& head, std::size_t max_head_bytes, std::size_t max_fields,
                 bool head_request);

  struct Result {
    std::size_t consumed = 0;
    bool done = false;  // head complete (parseHead) / body complete (parseChunked)
    bool bad = false;   // the upstream broke the protocol
  };
  [[nodiscard]] Result parseHead(std::string_view data);
  [[nodiscard]] Result parseChunked(std::string_view data);

 private:
  void on_request_impl(Verb, boost::beast::string_view, boost::beast::string_view, int,
                       error_code&) override {}
  void on_response_impl(int status, boost::beast::string_view reason, int version,
                        error_code& ec) override;
  void on_field_impl(Field id, boost::beast::string_view name, boost::beast::string_view value,
                     error_code& ec) override;
  void on_header_impl(error_code& ec) override;

  ResponseHead& head_;
  std::size_t max_head_bytes_;
};

}  // namespace sluice::gateway::http
