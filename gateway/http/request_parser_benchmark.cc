// Per-request HTTP work on the hot path: parsing a typical browser-sized request head and
// writing the upstream head, and parsing a typical response head and writing the client's.
#include <string>

#include <benchmark/benchmark.h>

#include "gateway/http/head_writer.h"
#include "gateway/http/request_parser.h"
#include "gateway/http/response_parser.h"

namespace sluice::gateway::http {
namespace {

const std::string kRequest =
    "GET /api/v1/items?page=2&sort=desc HTTP/1.1\r\n"
    "Host: shop.example.com\r\n"
    "User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko)\r\n"
    "Accept: text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8\r\n"
    "Accept-Language: en-US,en;q=0.5\r\n"
    "Accept-Encoding: gzip, deflate, br\r\n"
    "Connection: keep-alive\r\n"
    "Cookie: session=0123456789abcdef0123456789abcdef; theme=dark\r\n"
    "\r\n";

const std::string kResponse =
    "HTTP/1.1 200 OK\r\n"
    "Server: nginx/1.22.1\r\n"
    "Date: Sun, 22 Nov 2026 10:00:00 GMT\r\n"
    "Content-Type: application/json\r\n"
    "Content-Length: 1024\r\n"
    "Connection: keep-alive\r\n"
    "Cache-Control: no-cache\r\n"
    "\r\n";

void BM_ParseRequestHead(benchmark::State& state) {
  RequestHead head;
  const RequestLimits limits;
  for (auto _ : state) {
    RequestParser parser(head, limits);
    auto r = parser.parseHead(kRequest);
    benchmark::DoNotOptimize(r);
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * kRequest.size()));
}
BENCHMARK(BM_ParseRequestHead);

void BM_ParseAndWriteUpstreamRequest(benchmark::State& state) {
  RequestHead head;
  const RequestLimits limits;
  std::string out;
  ForwardingInfo fwd;
  fwd.client_ip = "10.1.2.3";
  fwd.proto = "http";
  fwd.request_id = "0123456789abcdef0123456789abcdef";
  for (auto _ : state) {
    RequestParser parser(head, limits);
    auto r = parser.parseHead(kRequest);
    out.clear();
    writeUpstreamRequest(out, head, fwd);
    out.append("\r\n");
    benchmark::DoNotOptimize(r);
    benchmark::DoNotOptimize(out.data());
  }
}
BENCHMARK(BM_ParseAndWriteUpstreamRequest);

void BM_ParseAndWriteDownstreamResponse(benchmark::State& state) {
  ResponseHead head;
  std::string out;
  for (auto _ : state) {
    ResponseParser parser(head, 64 * 1024, 256, false);
    auto r = parser.parseHead(kResponse);
    out.clear();
    writeDownstreamResponse(out, head, downstreamFraming(head, 11, true, false),
                            "0123456789abcdef0123456789abcdef");
    benchmark::DoNotOptimize(r);
    benchmark::DoNotOptimize(out.data());
  }
}
BENCHMARK(BM_ParseAndWriteDownstreamResponse);

}  // namespace
}  // namespace sluice::gateway::http
