// The chunked decoder (StrictParser, gateway/http/strict_parser.h) and the re-chunking the proxy
// sends to the next hop. A body that decodes must re-encode to chunks that decode to the same
// bytes, whatever the read sizes (first byte); framing is derived by sluice, never copied, and
// this is what makes that safe.
#include <string>

#include "fuzz/fuzz_target.h"
#include "fuzz/input.h"
#include "gateway/http/request_parser.h"

namespace {

using sluice::gateway::http::RequestError;
using sluice::gateway::http::RequestHead;
using sluice::gateway::http::RequestLimits;
using sluice::gateway::http::RequestParser;

constexpr std::string_view kHead =
    "POST /upload HTTP/1.1\r\nHost: example.com\r\nTransfer-Encoding: chunked\r\n\r\n";

struct Decoded {
  std::string out;
  bool done = false;
  RequestError error = RequestError::None;
};

Decoded decode(std::string_view body, std::size_t step, bool rechunk, std::uint64_t limit) {
  RequestHead head;
  RequestParser parser(head, RequestLimits{});
  const auto h = parser.parseHead(kHead);
  SLUICE_FUZZ_CHECK(h.done && h.consumed == kHead.size());
  Decoded d;
  parser.setBodyOutput(&d.out, rechunk);
  parser.setBodyLimit(limit);
  std::size_t used = 0;
  for (const std::size_t e : sluice::fuzz::readEnds(body.size(), step)) {
    while (used < e) {
      const auto r = parser.parseChunked(body.substr(used, e - used));
      used += r.consumed;
      d.done = r.done;
      d.error = r.error;
      if (r.done || r.error != RequestError::None || r.consumed == 0) break;
    }
    if (d.done || d.error != RequestError::None) break;
  }
  SLUICE_FUZZ_CHECK(used <= body.size());
  SLUICE_FUZZ_CHECK(d.error == RequestError::None || !d.done);
  return d;
}

}  // namespace

SLUICE_FUZZ_TARGET(chunked) {
  sluice::fuzz::Input in(input);
  const std::size_t step = in.byte() % 9;
  const std::uint64_t limit = 1 + std::uint64_t{in.byte()} * 64;
  const std::string_view body = in.rest();

  const Decoded raw = decode(body, 0, /*rechunk=*/false, limit);
  const Decoded trickled = decode(body, step, /*rechunk=*/false, limit);
  SLUICE_FUZZ_CHECK(raw.done == trickled.done && raw.error == trickled.error);
  if (!raw.done) return;
  SLUICE_FUZZ_CHECK(raw.out == trickled.out);
  SLUICE_FUZZ_CHECK(raw.out.size() <= limit);

  const Decoded rechunked = decode(body, step, /*rechunk=*/true, limit);
  SLUICE_FUZZ_CHECK(rechunked.done);
  const Decoded again = decode(rechunked.out, 0, /*rechunk=*/false, limit);
  SLUICE_FUZZ_CHECK(again.done && again.error == RequestError::None);
  SLUICE_FUZZ_CHECK(again.out == raw.out);
}
