// The downstream request parser (gateway/http/request_parser.h) on hostile bytes. Beyond not
// crashing, it must reach the same verdict whether the head arrives in one read or trickles in
// (first input byte: the read size), and what it accepts must hold the promises routing relies on.
#include <string>

#include "fuzz/fuzz_target.h"
#include "fuzz/input.h"
#include "gateway/http/request_parser.h"

namespace {

using sluice::gateway::http::Framing;
using sluice::gateway::http::RequestError;
using sluice::gateway::http::RequestHead;
using sluice::gateway::http::RequestLimits;
using sluice::gateway::http::RequestParser;

struct Verdict {
  RequestParser::HeadResult head;
  std::string decoded;  // the chunked body, decoded
  bool body_done = false;
  RequestError body_error = RequestError::None;
};

Verdict parseRequest(std::string_view data, std::size_t step, const RequestLimits& limits) {
  Verdict v;
  RequestHead head;
  RequestParser parser(head, limits);
  std::size_t end = 0;
  for (const std::size_t e : sluice::fuzz::readEnds(data.size(), step)) {
    v.head = parser.parseHead(data.substr(0, e));
    end = e;
    if (v.head.done || v.head.error != RequestError::None) break;
  }
  if (!v.head.done) return v;
  SLUICE_FUZZ_CHECK(v.head.consumed <= end);
  SLUICE_FUZZ_CHECK(head.version == 10 || head.version == 11);
  SLUICE_FUZZ_CHECK(!head.target.empty());
  SLUICE_FUZZ_CHECK(head.target.front() == '/' || head.target == "*");
  // RFC 9112 3.2: an HTTP/1.1 request has a Host field, possibly empty (a target without an
  // authority), and the host routing sees is that field or the absolute-form authority.
  SLUICE_FUZZ_CHECK(head.version == 10 || head.find(sluice::gateway::http::Field::host));
  SLUICE_FUZZ_CHECK(sluice::gateway::http::isValidAuthority(head.host));
  SLUICE_FUZZ_CHECK(head.fields.size() <= limits.max_fields);
  if (head.framing != Framing::Chunked) return v;

  // The body as the forwarder reads it: whatever is buffered, minus what was consumed.
  parser.setBodyOutput(&v.decoded, /*rechunk=*/false);
  parser.setBodyLimit(1 << 16);
  const std::string_view body = data.substr(v.head.consumed);
  std::size_t used = 0;
  for (const std::size_t e : sluice::fuzz::readEnds(body.size(), step)) {
    while (used < e) {
      const auto r = parser.parseChunked(body.substr(used, e - used));
      used += r.consumed;
      v.body_done = r.done;
      v.body_error = r.error;
      if (r.done || r.error != RequestError::None || r.consumed == 0) break;
    }
    if (v.body_done || v.body_error != RequestError::None) break;
  }
  return v;
}

}  // namespace

SLUICE_FUZZ_TARGET(request_parser) {
  sluice::fuzz::Input in(input);
  const std::size_t step = in.byte() % 17;  // 0: the whole input in one read
  RequestLimits limits;
  limits.max_request_line = 64 + std::size_t{in.byte()} * 4;
  limits.max_head_bytes = limits.max_request_line + std::size_t{in.byte()} * 16;
  limits.max_fields = 1 + in.byte() % 32;
  const std::string_view data = in.rest();

  const Verdict whole = parseRequest(data, 0, limits);
  const Verdict trickled = parseRequest(data, step, limits);
  SLUICE_FUZZ_CHECK(whole.head.done == trickled.head.done);
  SLUICE_FUZZ_CHECK(whole.head.error == trickled.head.error);
  SLUICE_FUZZ_CHECK(whole.head.consumed == trickled.head.consumed);
  SLUICE_FUZZ_CHECK(whole.body_done == trickled.body_done);
  SLUICE_FUZZ_CHECK(whole.body_error == trickled.body_error);
  if (whole.body_done) SLUICE_FUZZ_CHECK(whole.decoded == trickled.decoded);
}
