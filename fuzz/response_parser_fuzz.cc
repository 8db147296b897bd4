// The upstream response parser (gateway/http/response_parser.h): an upstream is trusted no more
// than a client. The same verdict in one read or trickled (first byte: the read size), and an
// accepted head must give the framing RFC 9112 6.3 prescribes.
#include <string>

#include "fuzz/fuzz_target.h"
#include "fuzz/input.h"
#include "gateway/http/response_parser.h"

namespace {

using sluice::gateway::http::Framing;
using sluice::gateway::http::ResponseHead;
using sluice::gateway::http::ResponseParser;

struct ResponseVerdict {
  ResponseParser::Result head;
  std::string decoded;
  ResponseParser::Result body;
};

ResponseVerdict parseResponse(std::string_view data, std::size_t step, std::size_t max_head,
                              std::size_t max_fields, bool head_request) {
  ResponseVerdict v;
  ResponseHead head;
  ResponseParser parser(head, max_head, max_fields, head_request);
  for (const std::size_t e : sluice::fuzz::readEnds(data.size(), step)) {
    v.head = parser.parseHead(data.substr(0, e));
    if (v.head.done || v.head.bad) break;
  }
  if (!v.head.done) return v;
  SLUICE_FUZZ_CHECK(head.status >= 100 && head.status <= 599 && head.status != 101);
  SLUICE_FUZZ_CHECK(head.version == 10 || head.version == 11);
  SLUICE_FUZZ_CHECK(head.fields.size() <= max_fields);
  const bool bodiless =
      head_request || head.status < 200 || head.status == 204 || head.status == 304;
  SLUICE_FUZZ_CHECK(!bodiless || head.framing == Framing::None);
  SLUICE_FUZZ_CHECK(head.framing != Framing::UntilEof || !head.keep_alive);
  if (head.framing != Framing::Chunked) return v;

  parser.setBodyOutput(&v.decoded, /*rechunk=*/false);
  const std::string_view body = data.substr(v.head.consumed);
  std::size_t used = 0;
  for (const std::size_t e : sluice::fuzz::readEnds(body.size(), step)) {
    while (used < e) {
      v.body = parser.parseChunked(body.substr(used, e - used));
      used += v.body.consumed;
      if (v.body.done || v.body.bad || v.body.consumed == 0) break;
    }
    if (v.body.done || v.body.bad) break;
  }
  return v;
}

}  // namespace

SLUICE_FUZZ_TARGET(response_parser) {
  sluice::fuzz::Input in(input);
  const std::size_t step = in.byte() % 17;
  const std::size_t max_head = 64 + std::size_t{in.byte()} * 32;
  const std::size_t max_fields = 1 + in.byte() % 32;
  const bool head_request = (in.byte() & 1) != 0;
  const std::string_view data = in.rest();

  const auto whole = parseResponse(data, 0, max_head, max_fields, head_request);
  const auto trickled = parseResponse(data, step, max_head, max_fields, head_request);
  SLUICE_FUZZ_CHECK(whole.head.done == trickled.head.done);
  SLUICE_FUZZ_CHECK(whole.head.bad == trickled.head.bad);
  SLUICE_FUZZ_CHECK(whole.head.consumed == trickled.head.consumed);
  SLUICE_FUZZ_CHECK(whole.body.done == trickled.body.done);
  SLUICE_FUZZ_CHECK(whole.body.bad == trickled.body.bad);
  if (whole.body.done) SLUICE_FUZZ_CHECK(whole.decoded == trickled.decoded);
}
