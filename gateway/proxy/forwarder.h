// The forwarding phase of a request: the retry loop around one upstream exchange.
//
//   check the deadline (too little left: 504 at once) -> pick a host (the cluster's
//   LoadBalancer, skipping hosts this request already tried) -> acquire a pooled connection
//   (bounded wait) -> send the head, with what is left of the deadline, and stream the body
//   -> read the response head (until the try's deadline) -> relay head and body to the client
//   -> hand the connection back to the pool only if the exchange ended cleanly.
//
// Retries (the route's retry policy, docs/retries-and-deadlines.md): a connect failure is retried
// for any request (nothing was sent); a reset, a timeout or a listed status only for a request that
// can be sent again (no body) and is safe to repeat (an idempotent method, unless the route says
// any). A retried status is dropped before any byte of it reaches the client; once a response
// has started, nothing is retried. Each retry waits a jittered exponential backoff (at least
// the upstream's Retry-After on 429/503, never longer than backoff_max), must fit in the
// deadline, and must be granted by the cluster's retry budget. A pooled connection that turns
// out to have been closed by the upstream before it answered is replaced transparently for
// bodiless idempotent requests (the classic keep-alive race), without counting as a retry.
//
// Errors before the response reached the client come back as a LocalReply (502/503/504 with a
// short body) for the caller to send; errors after that can only close the client connection,
// which is what tells the client the response is incomplete (a chunked response is never ended
// with its terminator, a Content-Length response is cut short).
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>

#include "gateway/config/config.h"
#include "gateway/http/head.h"
#include "gateway/http/head_writer.h"
#include "gateway/http/local_reply.h"
#include "gateway/http/request_parser.h"
#include "gateway/http/response_parser.h"
#include "gateway/net/io_buffer.h"
#include "gateway/net/socket_deadline.h"
#include "gateway/net/socket_io.h"
#include "gateway/net/transfer_pace.h"
#include "gateway/proxy/mirror.h"
#include "gateway/proxy/request_context.h"
#include "gateway/proxy/request_spans.h"
#include "gateway/proxy/retry_decision.h"
#include "gateway/proxy/route_actions.h"
#include "gateway/proxy/try_outcome.h"
#include "gateway/stats/worker_stats.h"
#include "gateway/upstream/cluster.h"

namespace sluice::gateway::trace {
class SpanExporter;
}

namespace sluice::gateway::proxy {

// The downstream side as the forwarding phase sees it.
struct Downstream {
  boost::asio::ip::tcp::socket& socket;
  net::IoBuffer& in;  // the request head (head_size bytes) then whatever followed
  std::size_t head_size;
  const http::RequestHead& head;
  http::RequestParser& parser;  // continues with a chunked request body
  net::SocketDeadline& deadline;
  const config::Listener& listener;
  std::uint64_t body_limit;
  const bool& draining;    // the worker's flag, read when the response head is written
  bool* response_started;  // set as soon as any response byte is written to the client
  trace::SpanExporter* spans = nullptr;  // where a sampled request's try spans go
};

// What came of forwarding a request, besides its local reply (Forwarder's `reply`).
struct ForwardResult {
  bool client_close = false;              // close the client connection after this request
  bool upstream_failed = false;           // no usable upstream response
  bool client_timed_out = false;          // the client did not read in time: reset, don't linger
  std::optional<stats::Reject> rejected;  // the request itself was at fault (bad body, timeout)
  std::optional<stats::SlowReader> slow_reader;  // the client read the response too slowly
};

// Strings a connection keeps across its requests so that forwarding allocates nothing.
struct Scratch {
  std::string request_head;  // serialised once per request, sent on every attempt
  std::string response_head;
  std::string body;  // re-chunked body bytes on their way out
  // What the upstream sent: taken from the buffer pool when its response arrives, given back
  // when the exchange ends (net::readWhenReadable says why).
  net::IoBuffer upstream_in;
  http::ResponseHead upstream_head;
  // Here rather than in the coroutine that uses it: a coroutine frame above glibc's largest
  // tcache size (1032 bytes) costs a slow-path malloc and free on every request.
  std::optional<http::ResponseParser> upstream_parser;
};

class Forwarder {
 public:
  // `mirror`: the request's copy for the route's mirror (mirror.h), or null; the forwarder fills
  // it with what it sends upstream and sends it once the body is complete. `reply`: empty; where
  // the forwarder leaves the local reply to send when the response has not started (an upstream
  // error's 502/503/504, a request body's 400/408), owned by the caller so that it outlives the
  // forwarder.
  Forwarder(Downstream& down, upstream::Cluster& cluster, RequestContext& ctx, Scratch& scratch,
            MirrorCopy* mirror, std::optional<http::LocalReply>& reply);

  // Forwards the request; what came of it is result() once this completes. (Kept here rather than
  // returned: a result in the coroutine's promise would sit in its frame for the whole request.)
  boost::asio::awaitable<void> run();
  [[nodiscard]] ForwardResult& result() noexcept { return result_; }

  // The request body was read completely (so the client connection can carry another request).
  [[nodiscard]] bool bodyDone() const noexcept { return body_done_; }

 private:
  using Clock = std::chrono::steady_clock;
  // RetryStatus leaves its pause in retry_pause_, Failed its error in upstream_error_; a Done
  // response may have been cut short (truncated_, result_).
  using Outcome = TryOutcome;
  struct SendResult {
    bool upstream_failed = false;  // the upstream stopped accepting bytes
    bool client_failed = false;
  };

  enum class Relayed : std::uint8_t { Complete, Incomplete, FailedBeforeStart };

  // Serialises the request head for the upstream into scratch_.request_head (the per-try fields
  // follow); true if the request asks for a subset of the cluster (subset_key_).
  bool writeRequestHead();
  boost::asio::awaitable<Outcome> exchange(upstream::Lease& lease, Clock::time_point head_deadline);
  // The pause before a retry (its own coroutine: its timer would sit in run()'s frame otherwise).
  boost::asio::awaitable<void> backoff(Clock::duration pause);
  boost::asio::awaitable<SendResult> sendRequest(upstream::Lease& lease);
  // Relays an interim (1xx) response head to the client; false if the client failed. Its own
  // coroutine, as are the other rare paths here: every co_await has a slot of its own in the
  // frame of the coroutine it is in, for as long as that coroutine lives.
  boost::asio::awaitable<bool> relayInterim();
  // The final response head has arrived: notes when and the host's reported load; true if its
  // status is to be retried (retry_pause_, retry_status_ set).
  bool finalHead();
  // The final response head for the client, from scratch_.upstream_head, in
  // scratch_.response_head.
  void writeResponseHead(const http::ResponseFraming& framing);
  // Relays a chunked or close-delimited response body (re-chunked for the client if `rechunk`);
  // the Content-Length case, the common one, stays in exchange() to save a coroutine frame.
  boost::asio::awaitable<Relayed> relayStream(boost::asio::ip::tcp::socket& up,
                                              http::Framing framing, bool rechunk);
  // The response body stopped early (`s`: why): counted as truncated.
  void truncate(net::IoStatus s);
  // Writes to the client; `co_await` it for whether every byte went out.
  template <typename Buffers>
  auto writeClient(const Buffers& buffers, std::size_t bytes);
  // Reads more of the response body from `up` into scratch_.upstream_in, within the cluster's
  // I/O timeout; `co_await` it for a net::ReadResult.
  auto readBody(boost::asio::ip::tcp::socket& up);
  // Reads more of the request body into down_.in, within the listener's body timeout and the
  // body's pace (slow_client; either broken sets the 408 reply); `co_await` it for whether
  // bytes came.
  auto readRequestBody();
  // Judges a read of the request body against its pace; false (408 set) unless bytes came in it.
  bool bodyRead(net::ReadResult r, Clock::time_point until);
  // A write to the client timed out or broke the response's pace.
  void slowReader();
  // What the route's header templates read for this request.
  [[nodiscard]] ActionVars actionVars() const;
  // The value of the route subset's from_header in `head`, if it has one.
  [[nodiscard]] std::optional<std::string_view> subsetHeader(const http::RequestHead& head) const;
  [[nodiscard]] bool bodiless() const noexcept;
  [[nodiscard]] bool replayable() const noexcept;  // bodiless and idempotent
  // The pause before the next try when this failure may be retried (retry_decision.h: tries
  // left, a retry condition of the route, a request that can be sent again, time left, the
  // bulkhead's and the retry budget's permission, which it takes into retry_hold_); nullopt when
  // it may not.
  [[nodiscard]] std::optional<Clock::duration> retryPause(const FailedTry& failure);
  // A try failed with `e`: counted, logged, and the request's upstream error.
  void noteFailure(stats::UpstreamError e);
  // The request fails with `e`: noted as above, and answered (502/503/504).
  void fail(stats::UpstreamError e);
  // The request's client went away while a try or a backoff waited (ctx_.client_gone).
  void clientGone();
  // A diagnostic line for a failed try or a request refused before one, throttled
  // (log/log_throttle.h).
  void logFailure(stats::UpstreamError e) const;
  // A traced request's try: its traceparent field (appended to the per-try head fields) and,
  // when sampled, its client span once the try is over.
  void beginTrySpan(std::size_t host);
  void endTrySpan(Outcome outcome);
  // The request's deadline is the client's (earlier than the route timeout).
  [[nodiscard]] bool clientDeadline() const noexcept;
  [[nodiscard]] std::chrono::steady_clock::time_point after(config::Millis d) const;

  Downstream& down_;
  upstream::Cluster& cluster_;
  RequestContext& ctx_;
  Scratch& scratch_;
  MirrorCopy* mirror_;
  std::optional<http::LocalReply>& reply_;
  std::string subset_key_;  // the labels the request asks for (upstream/subset.h), or ""
  std::uint64_t body_remaining_ = 0;
  bool body_done_ = false;
  stats::UpstreamError upstream_error_ = stats::UpstreamError::Reset;
  ForwardResult result_;
  std::uint32_t attempt_ = 0;  // 1 for the first try
  Clock::duration retry_pause_{};
  double utilization_ = 0;       // the last try's reported load (lb.dynamic_weights), 0: none
  Clock::time_point head_at_{};  // when the last try's final response head arrived
  int retry_status_ = 0;         // the status of a try dropped for a retry
  bool truncated_ = false;       // the last try's response was cut short
  net::TransferPace body_pace_;  // the request body's reads (config::SlowClient body_*)
  net::TransferPace send_pace_;  // the response's writes (send_*)
  RetryHold retry_hold_;         // held while a retry is in flight
  TrySpan try_span_;             // the try in flight, when the request is traced
};

}  // namespace sluice::gateway::proxy
