#include "gateway/proxy/mirror.h"

#include <chrono>
#include <optional>
#include <string>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "gateway/common/random.h"
#include "gateway/http/head_writer.h"
#include "gateway/http/response_parser.h"
#include "gateway/http/timeout_header.h"
#include "gateway/net/io_buffer.h"
#include "gateway/net/socket_deadline.h"
#include "gateway/net/socket_io.h"
#include "gateway/proxy/hash_key.h"
#include "gateway/proxy/mirror_result.h"
#include "gateway/proxy/retry_decision.h"
#include "gateway/server/worker.h"
#include "gateway/stats/shards.h"
#include "gateway/upstream/cluster.h"

namespace sluice::gateway::proxy {

namespace asio = boost::asio;
using Clock = std::chrono::steady_clock;
using stats::MirrorResult;

namespace {

constexpr std::size_t kMirrorReadChunk = std::size_t{16} * 1024;
constexpr std::size_t kMirrorMaxHead = std::size_t{64} * 1024;  // as for any upstream response
constexpr std::size_t kMirrorMaxFields = 256;
constexpr int kMirrorStaleReplays = 2;

}  // namespace

// Everything one copy needs, in one allocation that the task owns. The pin is declared first so
// that it goes last: the cluster, the counters and the config it refers to live in the
// generation it holds.
struct MirrorJob {
  MirrorJob(server::WorkerGeneration& g, std::size_t route_index)
      : pin(&g),
        cluster(*g.clusters[g.snapshot->routes[route_index].mirror_cluster]),
        route(g.snapshot->config.routes[route_index]),
        config(*route.mirror),
        stats(*g.mirrors[route_index]),
        deadline(g.worker->wheel()) {}
  MirrorJob(const MirrorJob&) = delete;
  MirrorJob& operator=(const MirrorJob&) = delete;
  MirrorJob(MirrorJob&&) = delete;
  MirrorJob& operator=(MirrorJob&&) = delete;
  ~MirrorJob() {
    if (running) stats.in_flight.dec();
  }

  server::GenerationPin pin;
  upstream::Cluster& cluster;
  const config::Route& route;
  const config::Mirror& config;
  stats::MirrorShard& stats;
  net::SocketDeadline deadline;
  upstream::Lease lease;  // here, not in the task's frame: it must go before the pin
  std::string request;    // head, then body as forwarded
  std::uint64_t body_bytes = 0;
  std::uint64_t hash = 0;
  bool head_request = false;
  bool replayable = false;  // bodiless and idempotent: a stale pooled connection is retried
  bool running = false;     // counted in stats.in_flight
  std::optional<upstream::Bulkhead::Slot> request_slot;  // the mirror cluster's max_requests
  std::optional<std::size_t> started;                    // the host picked, until its result
  std::uint64_t occupant = 0;
  net::IoBuffer in;
  http::ResponseHead head;
  std::optional<http::ResponseParser> parser;
};

namespace {

// Reads and drops the response body: nullopt when it ended cleanly, else what went wrong.
asio::awaitable<std::optional<stats::UpstreamError>> dropMirrorBody(MirrorJob& j,
                                                                    Clock::time_point until) {
  auto& sock = j.lease.socket();
  const auto read = [&] {
    return net::readSome(sock, j.deadline, j.in, until, kMirrorReadChunk, kMirrorReadChunk);
  };
  const auto failure = [](net::IoStatus s) {
    return s == net::IoStatus::Timeout ? stats::UpstreamError::Timeout
                                       : stats::UpstreamError::Truncated;
  };
  switch (j.head.framing) {
    case http::Framing::None:
      co_return std::nullopt;
    case http::Framing::Length: {
      std::uint64_t remaining = j.head.content_length;
      for (;;) {
        const auto take = static_cast<std::size_t>(std::min<std::uint64_t>(remaining, j.in.size()));
        j.in.consume(take);
        remaining -= take;
        if (remaining == 0) co_return std::nullopt;
        const auto rr = co_await read();
        if (rr.status != net::IoStatus::Ok) co_return failure(rr.status);
      }
    }
    case http::Framing::Chunked: {
      j.parser->setBodyOutput(nullptr, false);
      for (;;) {
        const auto p = j.parser->parseChunked(j.in.readable());
        j.in.consume(p.consumed);
        if (p.bad) co_return stats::UpstreamError::BadResponse;
        if (p.done) co_return std::nullopt;
        const auto rr = co_await read();
        if (rr.status != net::IoStatus::Ok) co_return failure(rr.status);
      }
    }
    case http::Framing::UntilEof:
      for (;;) {
        j.in.consume(j.in.size());
        const auto rr = co_await read();
        if (rr.status == net::IoStatus::Eof) co_return std::nullopt;
        if (rr.status != net::IoStatus::Ok) co_return failure(rr.status);
      }
  }
  co_return stats::UpstreamError::BadResponse;
}

// One exchange on a connection of `host`'s pool: the response's status, or the error that
// ended it (and `stale` when a reused connection turned out closed before anything came back).
struct MirrorExchanged {
  int status = 0;  // of a response read to its end
  std::optional<stats::UpstreamError> error;
  bool stale = false;
  Clock::time_point head_at{};  // when the response head arrived
};

asio::awaitable<MirrorExchanged> mirrorExchange(MirrorJob& j, std::size_t host,
                                                Clock::time_point until) {
  MirrorExchanged x;
  auto& pool = j.cluster.pool(host);
  upstream::ConnectionPool::Acquired acquired{pool.takeIdle()};
  if (!acquired.lease) {
    acquired = co_await pool.acquire(j.deadline, until);
  }
  if (!acquired.lease) {
    x.error = acquired.error;
    co_return x;
  }
  j.lease = std::move(acquired.lease);
  j.cluster.hostStats(host).requests.inc();
  auto& sock = j.lease.socket();
  const auto w = co_await net::writeAll(sock, j.deadline, asio::buffer(j.request), until);
  bool received_any = false;
  // Even when the upstream stopped reading (w != Ok), it may have answered.
  for (;;) {
    j.parser.emplace(j.head, kMirrorMaxHead, kMirrorMaxFields, j.head_request);
    for (;;) {
      if (!j.in.empty()) {
        const auto p = j.parser->parseHead(j.in.readable());
        if (p.bad) {
          x.error = stats::UpstreamError::BadResponse;
          co_return x;
        }
        if (p.done) {
          j.in.consume(p.consumed);
          break;
        }
      }
      // Until the first byte, wait without a buffer (net::readWhenReadable), as exchange() does.
      net::ReadResult rr;
      if (received_any) {
        rr = co_await net::readSome(sock, j.deadline, j.in, until, kMirrorReadChunk,
                                    kMirrorMaxHead + kMirrorReadChunk);
      } else {
        rr = co_await net::readWhenReadable(sock, j.deadline, j.in, until, kMirrorReadChunk,
                                            kMirrorMaxHead + kMirrorReadChunk);
        if (rr.status == net::IoStatus::Ok && rr.bytes == 0) continue;  // nothing came yet
      }
      if (rr.status != net::IoStatus::Ok) {
        x.stale = rr.status != net::IoStatus::Timeout && !received_any && j.lease.reused() &&
                  w == net::IoStatus::Ok;
        x.error = rr.status == net::IoStatus::Timeout ? stats::UpstreamError::Timeout
                                                      : stats::UpstreamError::Reset;
        co_return x;
      }
      received_any = true;
    }
    if (j.head.status >= 200) break;  // interim responses are skipped
  }
  x.head_at = Clock::now();
  const bool keep_alive =
      j.head.keep_alive && w == net::IoStatus::Ok && j.head.framing != http::Framing::UntilEof;
  x.error = co_await dropMirrorBody(j, until);
  if (x.error) co_return x;
  x.status = j.head.status;
  if (keep_alive && j.in.empty()) j.lease.keep();
  j.lease.reset();
  co_return x;
}

asio::awaitable<void> sendMirror(MirrorJob& j) {
  const auto start = Clock::now();
  const auto until = start + j.config.timeout;
  const auto host = j.cluster.pick(nullptr, {}, j.hash, start);
  if (!host) {
    j.cluster.stats().error(stats::UpstreamError::NoHost);
    j.stats.count(MirrorResult::NoHost);
    co_return;
  }
  const std::uint64_t occupant = j.cluster.occupant(*host);
  j.cluster.onStart(*host);
  j.started = *host;
  j.occupant = occupant;
  MirrorExchanged x;
  for (int replays = 0;; ++replays) {
    x = co_await mirrorExchange(j, *host, until);
    j.lease.reset();
    j.in.consume(j.in.size());
    if (!x.stale || !j.replayable || replays == kMirrorStaleReplays) break;
  }
  const MirrorResult result = mirrorResultOf(x.error, x.status, Clock::now() >= until);
  if (x.error) j.cluster.stats().error(*x.error);
  // What this says about the host (mirror_result.h).
  const bool verdict = mirrorJudgesHost(x.error, x.stale, result);
  const auto finished = Clock::now();
  const auto answered = x.head_at > start ? x.head_at : finished;
  j.started.reset();
  j.cluster.onResult(*host, occupant,
                     {x.status != 0, answered - start, finished, x.status, 0, verdict});
  if (auto* outliers = j.cluster.outliers(); outliers != nullptr && verdict) {
    outliers->record(*host, occupant, x.status, finished);
  }
  j.stats.count(result);
}

asio::awaitable<void> runMirror(std::unique_ptr<MirrorJob> job) {
  // co_spawn starts a coroutine inline when called on its own executor's thread: the request
  // being forwarded goes on first, and the copy runs when it next waits.
  co_await asio::post(job->pin->worker->io().get_executor(), asio::use_awaitable);
  try {
    co_await sendMirror(*job);
  } catch (const std::exception&) {
    // Out of memory, most likely: the copy is given up, never the worker.
    job->stats.count(MirrorResult::Failed);
    if (job->started) {
      job->cluster.onResult(*job->started, job->occupant, {false, {}, Clock::now(), 0, 0, false});
    }
  }
}

}  // namespace

bool MirrorCopy::drawn(const config::Mirror& m) {
  return m.percent >= 100 || (m.percent > 0 && uniformUnit() * 100 < m.percent);
}

MirrorCopy::MirrorCopy(server::WorkerGeneration& generation, std::size_t route)
    : job_(std::make_unique<MirrorJob>(generation, route)) {}

MirrorCopy::~MirrorCopy() {
  if (job_ && begun_) job_->stats.count(MirrorResult::Incomplete);
}

void MirrorCopy::begin(const http::RequestHead& head, std::string_view upstream_head,
                       std::string_view client_ip) {
  MirrorJob& j = *job_;
  begun_ = true;
  const bool has_body = head.framing == http::Framing::Chunked ||
                        (head.framing == http::Framing::Length && head.content_length > 0);
  MirrorResult refused =
      mirrorRefusal(head, j.config, j.stats.in_flight.value()).value_or(MirrorResult::Count);
  if (refused == MirrorResult::Count) {
    j.request_slot =
        upstream::Bulkhead::acquire(j.cluster.bulkhead(), upstream::Bulkhead::Limit::Requests);
    if (!j.request_slot) refused = MirrorResult::Overflow;
  }
  if (refused != MirrorResult::Count) {
    j.stats.count(refused);
    job_.reset();
    return;
  }
  // Counted from here: a copy holds memory while its body arrives, not only once sent.
  j.running = true;
  j.stats.in_flight.inc();
  j.head_request = head.method == http::Verb::head;
  j.replayable = !has_body && isIdempotent(head.method);
  if (j.cluster.config().lb.hashing()) {
    j.hash = requestHash(j.route.hash_key, head, client_ip).value_or(randomU64());
  }
  // The body's room is taken as it arrives: a client announcing a body it never sends holds
  // nothing for it.
  j.request.reserve(upstream_head.size() + 64);
  j.request.assign(upstream_head);
  j.request.append(http::kMirrorHeader).append(": 1\r\n");
  http::appendTimeoutFields(j.request, j.config.timeout, false);
  j.request.append("\r\n");
}

void MirrorCopy::append(std::string_view bytes) {
  if (!job_) return;
  MirrorJob& j = *job_;
  j.body_bytes += bytes.size();
  if (j.body_bytes > j.config.max_body) {  // a chunked body: its size was not known up front
    j.stats.count(MirrorResult::BodyTooLarge);
    job_.reset();
    return;
  }
  j.request.append(bytes);
}

void MirrorCopy::send() {
  if (!job_) return;
  auto executor = job_->pin->worker->io().get_executor();
  asio::co_spawn(executor, runMirror(std::move(job_)), asio::detached);
}

}  // namespace sluice::gateway::proxy
