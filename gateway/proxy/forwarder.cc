#include "gateway/proxy/forwarder.h"

#include <algorithm>
#include <array>
#include <charconv>
#include <cmath>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/string.hpp>
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "gateway/common/random.h"
#include "gateway/http/chunked.h"
#include "gateway/http/head_writer.h"
#include "gateway/http/response_parser.h"
#include "gateway/http/strict_parser.h"
#include "gateway/http/timeout_header.h"
#include "gateway/log/log_throttle.h"
#include "gateway/net/coarse_clock.h"
#include "gateway/net/socket_io.h"
#include "gateway/proxy/hash_key.h"
#include "gateway/trace/span_exporter.h"

namespace sluice::gateway::proxy {

namespace asio = boost::asio;
using Clock = std::chrono::steady_clock;

namespace {

// Bytes asked of the kernel per read: 32 KiB takes a typical response (head and a 16 KiB body)
// in one read, so it also leaves in one write: fewer syscalls and segments per request.
constexpr std::size_t kKiB = 1024;
constexpr std::size_t kRelayReadChunk = 32 * kKiB;
constexpr std::size_t kMaxBuffer = 64 * kKiB;        // bound on a body buffer (backpressure)
constexpr std::size_t kMaxResponseHead = 64 * kKiB;  // upstream response head limit
constexpr std::size_t kMaxResponseFields = 256;
constexpr int kMaxStaleReplays = 2;

// Starts copying `h` for a breaker's cached fallback if it may be served to anyone later: a
// complete 200 of bounded size that is not personal (Set-Cookie, Cache-Control private or
// no-store), not one of several variants (Vary) and not encoded for this client
// (Content-Encoding).
bool startCapture(ResponseCapture& capture, const http::ResponseHead& h) {
  if (h.status != 200 || h.framing != http::Framing::Length ||
      h.content_length > capture.max_body) {
    return false;
  }
  const auto contains = [](std::string_view haystack, std::string_view needle) {
    for (std::size_t i = 0; i + needle.size() <= haystack.size(); ++i) {
      if (http::iequals(haystack.substr(i, needle.size()), needle)) return true;
    }
    return false;
  };
  for (const auto& f : h.fields) {
    switch (f.id) {
      case http::Field::set_cookie:
      case http::Field::vary:
      case http::Field::content_encoding:
        return false;
      case http::Field::cache_control:
        if (contains(f.value, "private") || contains(f.value, "no-store")) return false;
        break;
      default:
        break;
    }
  }
  capture.content_type.clear();
  capture.fields.clear();
  capture.body.clear();
  for (const auto& f : h.fields) {
    // Framing is re-derived, Age is recomputed when served, and the request ID is the serving
    // request's, not this one's.
    if (http::isHopByHop(f, h) || f.id == http::Field::content_length || f.id == http::Field::age ||
        (f.id == http::Field::unknown && http::iequals(f.name, "x-request-id"))) {
      continue;
    }
    if (f.id == http::Field::content_type) {
      capture.content_type.assign(f.value);
    } else {
      capture.fields.emplace_back(f.name, f.value);
    }
  }
  return true;
}

// The load a host reports in `header` (lower-case name): a plain decimal such as 0.73. Anything
// else (absent, malformed, negative) is no report: 0.
double reportedUtilization(const http::ResponseHead& head, std::string_view header) {
  for (const auto& f : head.fields) {
    if (!boost::beast::iequals(f.name, header)) continue;
    const std::string_view v = f.value;
    double value = 0;
    const auto [ptr, ec] = std::from_chars(v.data(), v.data() + v.size(), value);
    return ec == std::errc() && ptr == v.data() + v.size() && std::isfinite(value) && value > 0
               ? value
               : 0;
  }
  return 0;
}

// The request's and the response's pace: the route's slow_client over its listener's.
net::TransferPace::Limits bodyPace(const config::SlowClient& s) {
  return {s.body_total, s.body_min_rate, s.window, s.grace};
}

net::TransferPace::Limits sendPace(const config::SlowClient& s) {
  return {s.send_total, s.send_min_rate, s.window, s.grace};
}

}  // namespace

ActionVars Forwarder::actionVars() const {
  return {ctx_.client_ip, ctx_.request_id, ctx_.route->name, cluster_.config().name, subset_key_};
}

std::optional<std::string_view> Forwarder::subsetHeader(const http::RequestHead& head) const {
  const auto& s = *ctx_.route->subset;
  if (s.header.empty()) return std::nullopt;
  for (const auto& f : head.fields) {
    if (http::iequals(f.name, s.header)) return f.value;
  }
  return std::nullopt;
}

Forwarder::Forwarder(Downstream& down, upstream::Cluster& cluster, RequestContext& ctx,
                     Scratch& scratch, MirrorCopy* mirror, std::optional<http::LocalReply>& reply)
    : down_(down), cluster_(cluster), ctx_(ctx), scratch_(scratch), mirror_(mirror), reply_(reply) {
  const config::SlowClient pace = ctx.route->slow_client.over(down.listener.slow_client);
  body_pace_ = net::TransferPace(bodyPace(pace));
  send_pace_ = net::TransferPace(sendPace(pace));
}

Clock::time_point Forwarder::after(config::Millis d) const { return net::coarseNow() + d; }

bool Forwarder::bodiless() const noexcept {
  const auto& h = down_.head;
  return h.framing == http::Framing::None ||
         (h.framing == http::Framing::Length && h.content_length == 0);
}

bool Forwarder::replayable() const noexcept {
  return bodiless() && isIdempotent(down_.head.method);
}

bool Forwarder::writeRequestHead() {
  const http::RequestHead& head = down_.head;
  http::ForwardingInfo fwd;
  fwd.client_ip = ctx_.client_ip;
  fwd.proto = "http";
  fwd.request_id = ctx_.request_id;
  fwd.request_id_received = ctx_.request_id_received;
  fwd.trust_forwarded = down_.listener.trust_forwarded;
  fwd.own_traceparent = ctx_.trace.on;
  // A subset route names the labels it asks for while the head is here.
  const config::Route& route = *ctx_.route;
  const bool in_subset =
      route.subset && upstream::subsetKey(*route.subset, subsetHeader(head), subset_key_);
  if (!in_subset) subset_key_.clear();
  scratch_.request_head.clear();
  if (route.request_headers.empty() && !route.rewrite.path_prefix && !route.rewrite.host) {
    http::writeUpstreamRequest(scratch_.request_head, head, fwd);
  } else {
    thread_local std::string extra;   // keep their capacity: no allocation per request
    thread_local std::string target;  // (and nothing here waits: no other request can run)
    extra.clear();
    target.clear();
    appendEditedFields(extra, route.request_headers, actionVars());
    http::FieldEdits edits{route.request_headers.remove, route.request_headers.set, extra};
    if (route.rewrite.path_prefix) {
      rewriteTarget(target, head.target, route.match, *route.rewrite.path_prefix);
      edits.target = target;
    }
    if (route.rewrite.host) edits.host = *route.rewrite.host;
    http::writeUpstreamRequest(scratch_.request_head, head, fwd, &edits);
  }
  return in_subset;
}

asio::awaitable<void> Forwarder::run() {
  const http::RequestHead& head = down_.head;
  const config::Route& route = *ctx_.route;
  const bool in_subset = writeRequestHead();
  const std::size_t head_base = scratch_.request_head.size();  // then the per-try fields
  // A consistent-hashing cluster places the request by its key, read while the head is here.
  std::uint64_t hash = 0;
  if (cluster_.config().lb.hashing()) {
    hash = requestHash(ctx_.route->hash_key, head, ctx_.client_ip).value_or(randomU64());
  }
  body_remaining_ = head.framing == http::Framing::Length ? head.content_length : 0;
  // A chunked body is unread until sendRequest() has parsed it to its last chunk: a try that
  // fails before must not leave its bytes to be read as the next request.
  body_done_ = bodiless();
  if (mirror_ != nullptr) {
    mirror_->begin(head, scratch_.request_head, ctx_.client_ip);
    if (body_done_) mirror_->send();  // a bodiless request is copied whole already
  }
  // Everything needed from the head is serialised or copied into ctx_: the head bytes can go,
  // and with them the client's buffer when nothing followed the head (no body, no pipelined
  // request). A request spends most of its life waiting for its upstream, so it waits holding
  // no client buffer, as a keep-alive connection does between requests; the next read takes one.
  down_.in.consume(down_.head_size);
  down_.head_size = 0;
  down_.in.release();

  // The subset's balancer is held for the request, which a change of hosts may outlive.
  std::shared_ptr<upstream::LoadBalancer> subset;
  if (in_subset) {
    subset = cluster_.subset(subset_key_);
    if (!subset && route.subset->fallback == config::Subset::Fallback::None) {
      fail(stats::UpstreamError::EmptySubset);
      co_return;
    }
  }
  const config::RetryPolicy& retry = ctx_.route->retry;
  const auto request_slot =
      upstream::Bulkhead::acquire(cluster_.bulkhead(), upstream::Bulkhead::Limit::Requests);
  if (!request_slot) {
    fail(stats::UpstreamError::Overflow);
    co_return;
  }
  std::array<std::size_t, 16> tried{};
  std::size_t tried_count = 0;
  int stale_replays = 0;
  cluster_.recordRequest(ctx_.start);  // one first try for the retry budget, however many follow
  for (attempt_ = 1;; ++attempt_) {
    const auto now = Clock::now();
    // Not enough of the deadline left for a try to succeed: fail now rather than load the
    // upstream with work whose answer nobody will wait for.
    if (ctx_.deadline - now < kMinTry) {
      fail(stats::UpstreamError::Deadline);
      co_return;
    }
    const auto host = cluster_.pick(
        subset.get(), std::span<const std::size_t>(tried.data(), tried_count), hash, now);
    if (!host) {
      fail(stats::UpstreamError::NoHost);
      co_return;
    }
    const std::uint64_t occupant = cluster_.occupant(*host);  // the host now in that slot
    cluster_.onStart(subset.get(), *host);
    if (tried_count < tried.size()) tried[tried_count++] = *host;
    if (attempt_ > 1) cluster_.stats().retries.inc();
    ctx_.upstream = cluster_.address(*host);
    ++ctx_.attempts;
    ctx_.last_try = now;

    // This try's deadline bounds the wait for a pooled connection, the connect and the response
    // head; what is left of it once connected is told to the upstream.
    const auto try_deadline = retry.per_try_timeout
                                  ? std::min(ctx_.deadline, now + *retry.per_try_timeout)
                                  : ctx_.deadline;
    auto& pool = cluster_.pool(*host);
    upstream::ConnectionPool::Acquired acquired{pool.takeIdle()};
    if (!acquired.lease) {
      acquired = co_await pool.acquire(down_.deadline, try_deadline, &ctx_.phase, &ctx_.wait);
    }
    Outcome outcome = Outcome::Failed;
    if (acquired.lease && ctx_.client_gone) {
      acquired.lease.keep();  // untouched by this request: as good as before for the next
    } else if (acquired.lease) {
      ctx_.phase = stats::RequestPhase::Awaiting;
      cluster_.hostStats(*host).requests.inc();
      scratch_.request_head.resize(head_base);
      http::appendTimeoutFields(scratch_.request_head, try_deadline - Clock::now(),
                                ctx_.grpc_timeout);
      if (ctx_.trace.on) beginTrySpan(*host);
      scratch_.request_head.append("\r\n");
      outcome = co_await exchange(acquired.lease, try_deadline);
    } else {
      upstream_error_ = acquired.error;
    }
    if (ctx_.trace.sampled) endTrySpan(outcome);
    acquired.lease.reset();  // back to the pool (if kept) before the next attempt
    if (outcome != Outcome::RetryStatus && outcome != Outcome::StaleRetry) {
      // This try is over: it no longer counts as a retry in flight. (A status retry took the
      // next try's permit already; a stale replay is still the same try.)
      retry_hold_.release();
    }
    // A timeout that the client's own deadline cut short is not the upstream's (try_outcome.h).
    if (outcome == Outcome::Failed) {
      upstream_error_ = chargedError(
          upstream_error_,
          {clientDeadline(), try_deadline == ctx_.deadline, ctx_.deadline - Clock::now()});
    }

    // The client left while this try waited (client_watch): the try was cut short, its
    // connection closed (exchange() keeps none it did not finish); it says nothing of the host.
    const bool abandoned = ctx_.client_gone && outcome != Outcome::Done;

    // What this host did with this try, fed to passive health and to the balancer.
    const auto finished = Clock::now();
    const std::optional<int> verdict =
        abandoned
            ? std::nullopt
            : hostVerdict(outcome, outcome == Outcome::RetryStatus ? retry_status_ : ctx_.status,
                          truncated_, upstream_error_);
    // Latency is to the response head (a long body or a slow client is not the host's speed).
    const auto answered = head_at_ > now ? head_at_ : finished;
    if (head_at_ > now) {
      cluster_.stats().head_latency.observe(head_at_ - now);
      cluster_.hostStats(*host).head_latency.observe(head_at_ - now);
    }
    cluster_.onResult(subset.get(), *host, occupant,
                      {verdict.value_or(0) != 0, answered - now, finished, verdict.value_or(0),
                       utilization_, verdict.has_value()});
    utilization_ = 0;
    head_at_ = {};
    if (auto* outliers = cluster_.outliers(); outliers != nullptr && verdict) {
      outliers->record(*host, occupant, *verdict, finished);
    }
    if (abandoned) {
      clientGone();
      co_return;
    }
    std::optional<Clock::duration> pause;
    switch (outcome) {
      case Outcome::Done:
      case Outcome::ClientFailed:
        co_return;
      case Outcome::StaleRetry:
        if (++stale_replays <= kMaxStaleReplays) {
          --attempt_;  // the upstream never saw this request: not a retry
          --tried_count;
          --ctx_.attempts;
          continue;
        }
        upstream_error_ = stats::UpstreamError::Reset;
        break;
      case Outcome::RetryStatus:
        pause = retry_pause_;
        break;
      case Outcome::Failed:
        break;
    }
    if (outcome != Outcome::RetryStatus) {
      pause = retryPause({causeOf(upstream_error_)});
      if (!pause) {
        fail(upstream_error_);
        co_return;
      }
      noteFailure(upstream_error_);  // retried, but counted and logged all the same
    }
    if (pause->count() > 0) {
      co_await backoff(*pause);
      if (ctx_.client_gone) {
        clientGone();
        co_return;
      }
    }
  }
}

asio::awaitable<void> Forwarder::backoff(Clock::duration pause) {
  ctx_.phase = stats::RequestPhase::Backoff;
  asio::steady_timer timer(down_.socket.get_executor(), pause);
  ctx_.wait.set(timer);
  co_await timer.async_wait(asio::as_tuple(asio::use_awaitable));
  ctx_.wait.clear();
}

void Forwarder::beginTrySpan(std::size_t host) {
  // Every try of a traced request names its own span as the upstream's parent, sampled or not,
  // so that the upstream's spans hang under the try that carried them.
  try_span_.span_id = trace::newSpanId();
  try_span_.attempt = attempt_;
  try_span_.host = cluster_.address(host);
  try_span_.status = 0;
  try_span_.error = {};
  if (ctx_.trace.sampled) try_span_.start_unix_ns = unixNanos();
  scratch_.request_head.append("traceparent: ");
  trace::appendTraceParent(scratch_.request_head, ctx_.trace.trace_id, try_span_.span_id,
                           ctx_.trace.sampled);
  scratch_.request_head.append("\r\n");
}

void Forwarder::endTrySpan(Outcome outcome) {
  // A try that got no connection has no span (nothing reached the upstream); the server span's
  // error says why the request failed.
  if (try_span_.start_unix_ns == 0 || down_.spans == nullptr) return;
  try_span_.status = outcome == Outcome::RetryStatus ? retry_status_ : ctx_.status;
  if (ctx_.client_gone && outcome != Outcome::Done) {
    try_span_.status = 0;
    try_span_.error = "client_closed";  // cut short: the client left (client_abort: cancel)
  } else if (outcome == Outcome::Failed) {
    try_span_.status = 0;
    try_span_.error = stats::kUpstreamErrorNames[static_cast<std::size_t>(upstream_error_)];
  } else if (outcome == Outcome::StaleRetry) {
    try_span_.status = 0;
    try_span_.error = "stale_connection";  // a pooled connection the upstream had closed
  }
  down_.spans->submit(clientSpan(ctx_, try_span_, unixNanos()));
  try_span_.start_unix_ns = 0;
}

void Forwarder::logFailure(stats::UpstreamError e) const {
  // Per worker: 5 lines at once per cluster and kind of failure, then one a second (an outage
  // of a busy cluster is a few lines a second, each saying how many it stands for).
  thread_local log::LogThrottle throttle(5, std::chrono::seconds(1));
  const std::string_view kind = stats::kUpstreamErrorNames[static_cast<std::size_t>(e)];
  const std::string& cluster = cluster_.config().name;
  std::uint64_t held_back = 0;
  if (!throttle.allow(cluster + '/' + std::string(kind), Clock::now(), held_back)) return;
  spdlog::warn("upstream {}: {} (route {}, host {}, try {}){}", cluster, kind, ctx_.route->name,
               ctx_.upstream.empty() ? "-" : ctx_.upstream, attempt_,
               held_back == 0 ? std::string()
                              : fmt::format("; {} more like it on this worker since", held_back));
}

void Forwarder::clientGone() {
  // Nothing of a response reached the client (a started one would have ended the watch), and
  // nobody is left to send one to: no reply, the connection closes, and the request is logged
  // as nginx logs it, 499.
  reply_.reset();
  result_.client_close = true;
  result_.upstream_failed = false;
  ctx_.status = 499;
  ctx_.upstream_error.reset();
  ctx_.error = "client closed the connection";
}

void Forwarder::noteFailure(stats::UpstreamError e) {
  cluster_.stats().error(e);
  logFailure(e);
  ctx_.upstream_error = e;
}

void Forwarder::fail(stats::UpstreamError e) {
  noteFailure(e);
  reply_ = upstreamErrorReply(e);
  result_.upstream_failed = upstreamAtFault(e);
}

bool Forwarder::clientDeadline() const noexcept {
  return ctx_.deadline < ctx_.start + ctx_.route->timeout;
}

std::optional<Clock::duration> Forwarder::retryPause(const FailedTry& failure) {
  const auto now = Clock::now();
  const RetryPlan plan =
      planRetry(ctx_.route->retry, failure,
                {attempt_, bodiless(), down_.head.method, ctx_.deadline}, now, uniformUnit());
  if (!plan.retry()) return std::nullopt;
  switch (takeRetry(
      cluster_.bulkhead(), [&] { return cluster_.tryAcquireRetry(now); }, retry_hold_)) {
    case RetryVerdict::Retry:
      return plan.pause;
    case RetryVerdict::BudgetSpent:
      cluster_.stats().retries_denied.inc();
      return std::nullopt;
    default:
      return std::nullopt;
  }
}

template <typename Buffers>
auto Forwarder::writeClient(const Buffers& buffers, std::size_t bytes) {
  *down_.response_started = true;
  return net::writePaced(down_.socket, down_.deadline, buffers, after(down_.listener.timeouts.send),
                         send_pace_, [this, bytes](net::IoStatus s) {
                           if (s == net::IoStatus::Ok) {
                             ctx_.bytes_out += bytes;
                           } else if (s == net::IoStatus::Timeout) {
                             slowReader();
                           }
                           return s == net::IoStatus::Ok;
                         });
}

void Forwarder::slowReader() {
  // The client stopped reading, or reads too slowly to be worth a connection (and the upstream
  // connection that feeds it): reset rather than linger.
  result_.client_timed_out = true;
  switch (send_pace_.verdict()) {
    case net::TransferPace::Verdict::TooSlow:
      result_.slow_reader = stats::SlowReader::TooSlow;
      break;
    case net::TransferPace::Verdict::TooLong:
      result_.slow_reader = stats::SlowReader::Deadline;
      break;
    case net::TransferPace::Verdict::Ok:
      result_.slow_reader = stats::SlowReader::SendTimeout;
      break;
  }
  if (ctx_.error.empty()) ctx_.error = "client too slow to read the response";
}

auto Forwarder::readBody(asio::ip::tcp::socket& up) {
  return net::readSome(up, down_.deadline, scratch_.upstream_in,
                       after(cluster_.config().io_timeout), kRelayReadChunk, kMaxBuffer);
}

auto Forwarder::readRequestBody() {
  const auto now = net::coarseNow();
  body_pace_.start(now);
  const auto until = std::min(now + down_.listener.timeouts.body, body_pace_.deadline());
  return net::readSome(down_.socket, down_.deadline, down_.in, until, kRelayReadChunk, kMaxBuffer) |
         asio::deferred([this, until](net::ReadResult r) {
           return asio::deferred_t::values(bodyRead(r, until));
         });
}

bool Forwarder::bodyRead(net::ReadResult r, Clock::time_point until) {
  using Verdict = net::TransferPace::Verdict;
  const auto now = net::coarseNow();
  Verdict v = Verdict::Ok;
  if (r.status == net::IoStatus::Timeout) {
    // The wheel fires on the precise clock, the coarse one may lag it by a few ms: a wait that
    // timed out lasted at least until its deadline.
    v = body_pace_.expired(std::max(now, until));
  } else if (r.status == net::IoStatus::Ok) {
    v = body_pace_.progress(now, r.bytes);
  }
  body_pace_.stop(now);
  if (r.status != net::IoStatus::Timeout && v == Verdict::Ok) return r.status == net::IoStatus::Ok;
  // Nothing of the response exists yet: the client is told why (and the upstream connection,
  // holding a partial body, is closed, never retried).
  switch (v) {
    case Verdict::Ok:
      result_.rejected = stats::Reject::BodyTimeout;
      reply_ = http::LocalReply::text(408, "request body timeout", true);
      break;
    case Verdict::TooSlow:
      result_.rejected = stats::Reject::BodyTooSlow;
      reply_ = http::LocalReply::text(408, "request body too slow", true);
      break;
    case Verdict::TooLong:
      result_.rejected = stats::Reject::BodyDeadline;
      reply_ = http::LocalReply::text(408, "request body took too long", true);
      break;
  }
  return false;
}

asio::awaitable<Forwarder::SendResult> Forwarder::sendRequest(upstream::Lease& lease) {
  auto& up = lease.socket();
  auto& in = down_.in;
  const auto io_until = [&] { return after(cluster_.config().io_timeout); };
  SendResult r;
  switch (down_.head.framing) {
    case http::Framing::None:
    case http::Framing::UntilEof:
      r.upstream_failed =
          co_await net::writeAll(up, down_.deadline, asio::buffer(scratch_.request_head),
                                 io_until()) != net::IoStatus::Ok;
      co_return r;

    case http::Framing::Length: {
      bool first = true;
      for (;;) {
        const std::size_t take =
            static_cast<std::size_t>(std::min<std::uint64_t>(body_remaining_, in.size()));
        const std::array<asio::const_buffer, 2> bufs = {
            asio::buffer(scratch_.request_head.data(), first ? scratch_.request_head.size() : 0),
            asio::buffer(in.readable().data(), take)};
        if (first || take > 0) {
          if (co_await net::writeAll(up, down_.deadline, bufs, io_until()) != net::IoStatus::Ok) {
            r.upstream_failed = true;
            co_return r;
          }
        }
        first = false;
        if (mirror_ != nullptr && take > 0) mirror_->append({in.readable().data(), take});
        in.consume(take);
        body_remaining_ -= take;
        ctx_.bytes_in += take;
        if (body_remaining_ == 0) break;
        if (!co_await readRequestBody()) {
          r.client_failed = true;
          co_return r;
        }
      }
      body_done_ = true;
      if (mirror_ != nullptr) mirror_->send();
      co_return r;
    }

    case http::Framing::Chunked: {
      down_.parser.setBodyOutput(&scratch_.body, /*rechunk=*/true);
      down_.parser.setBodyLimit(down_.body_limit);
      bool first = true;
      for (;;) {
        scratch_.body.clear();
        bool done = false;
        if (!in.empty()) {
          const auto p = down_.parser.parseChunked(in.readable());
          in.consume(p.consumed);
          if (p.error != http::RequestError::None) {
            const auto info = http::describe(p.error);
            result_.rejected = p.error == http::RequestError::BodyTooLarge
                                   ? stats::Reject::BodyTooLarge
                                   : stats::Reject::BadRequest;
            reply_ = http::LocalReply::text(info.status, info.message, true);
            r.client_failed = true;
            co_return r;
          }
          done = p.done;
        }
        if (first || !scratch_.body.empty()) {
          const std::array<asio::const_buffer, 2> bufs = {
              asio::buffer(scratch_.request_head.data(), first ? scratch_.request_head.size() : 0),
              asio::buffer(scratch_.body)};
          if (co_await net::writeAll(up, down_.deadline, bufs, io_until()) != net::IoStatus::Ok) {
            r.upstream_failed = true;
            co_return r;
          }
          first = false;
        }
        if (mirror_ != nullptr && !scratch_.body.empty()) mirror_->append(scratch_.body);
        if (done) break;
        if (!co_await readRequestBody()) {
          r.client_failed = true;
          co_return r;
        }
      }
      ctx_.bytes_in += down_.parser.decodedBytes();
      body_done_ = true;
      if (mirror_ != nullptr) mirror_->send();
      co_return r;
    }
  }
  co_return r;
}

asio::awaitable<Forwarder::Relayed> Forwarder::relayStream(asio::ip::tcp::socket& up,
                                                           http::Framing framing, bool rechunk) {
  auto& ubuf = scratch_.upstream_in;
  bool complete = false;
  switch (framing) {
    case http::Framing::Chunked: {
      scratch_.upstream_parser->setBodyOutput(&scratch_.body, rechunk);
      bool first = true;
      for (;;) {
        scratch_.body.clear();
        bool done = false;
        if (!ubuf.empty()) {
          const auto p = scratch_.upstream_parser->parseChunked(ubuf.readable());
          ubuf.consume(p.consumed);
          if (p.bad) {
            upstream_error_ = stats::UpstreamError::BadResponse;
            // Nothing reached the client yet: it gets a clean 502 instead of a broken body.
            if (first) co_return Relayed::FailedBeforeStart;
            truncated_ = true;
            break;
          }
          done = p.done;
        }
        if (first || !scratch_.body.empty()) {
          const std::array<asio::const_buffer, 2> bufs = {
              asio::buffer(scratch_.response_head.data(),
                           first ? scratch_.response_head.size() : 0),
              asio::buffer(scratch_.body)};
          if (!co_await writeClient(bufs, asio::buffer_size(bufs))) break;
          first = false;
        }
        if (done) {
          complete = true;
          break;
        }
        const auto rr = co_await readBody(up);
        if (rr.status != net::IoStatus::Ok) {
          truncate(rr.status);
          break;
        }
      }
      break;
    }
    case http::Framing::UntilEof: {
      bool first = true;
      for (;;) {
        scratch_.body.clear();
        const std::size_t n = ubuf.size();
        if (rechunk && n > 0) http::appendChunkHeader(scratch_.body, n);
        const std::array<asio::const_buffer, 4> bufs = {
            asio::buffer(scratch_.response_head.data(), first ? scratch_.response_head.size() : 0),
            asio::buffer(scratch_.body), asio::buffer(ubuf.readable().data(), n),
            asio::buffer(http::kCrLf.data(), rechunk && n > 0 ? http::kCrLf.size() : 0)};
        if (first || n > 0) {
          if (!co_await writeClient(bufs, asio::buffer_size(bufs))) break;
        }
        first = false;
        ubuf.consume(n);
        const auto rr = co_await readBody(up);
        if (rr.status == net::IoStatus::Eof) {
          // For a close-delimited body, EOF is the end: finish the client's framing cleanly.
          complete = !rechunk || co_await writeClient(
                                     asio::buffer(http::kLastChunk.data(), http::kLastChunk.size()),
                                     http::kLastChunk.size());
          break;
        }
        if (rr.status != net::IoStatus::Ok) {
          truncate(rr.status);
          break;
        }
      }
      break;
    }
    default:
      break;
  }
  co_return complete ? Relayed::Complete : Relayed::Incomplete;
}

void Forwarder::truncate(net::IoStatus s) {
  truncated_ = true;
  upstream_error_ =
      s == net::IoStatus::Timeout ? stats::UpstreamError::Timeout : stats::UpstreamError::Truncated;
}

bool Forwarder::finalHead() {
  const http::ResponseHead& rhead = scratch_.upstream_head;
  head_at_ = Clock::now();
  if (const auto& d = cluster_.config().lb.dynamic_weights;
      d && d->signal == config::DynamicWeights::Signal::Utilization) {
    utilization_ = reportedUtilization(rhead, d->header);
  }
  if (!statusMayRetry(rhead.status, ctx_.route->retry, *down_.response_started)) return false;
  const auto pause = retryPause(failedStatus(rhead));
  if (!pause) return false;
  retry_pause_ = *pause;
  retry_status_ = rhead.status;
  return true;
}

asio::awaitable<bool> Forwarder::relayInterim() {
  const http::ResponseHead& rhead = scratch_.upstream_head;
  scratch_.response_head.clear();
  http::writeStatusLine(scratch_.response_head, rhead.status);
  for (const auto& f : rhead.fields) {
    if (http::isHopByHop(f, rhead)) continue;
    scratch_.response_head.append(f.name).append(": ").append(f.value).append("\r\n");
  }
  scratch_.response_head.append("\r\n");
  co_return co_await writeClient(asio::buffer(scratch_.response_head),
                                 scratch_.response_head.size());
}

void Forwarder::writeResponseHead(const http::ResponseFraming& framing) {
  const http::ResponseHead& rhead = scratch_.upstream_head;
  scratch_.response_head.clear();
  if (const auto& edits = ctx_.route->response_headers; edits.empty()) {
    http::writeDownstreamResponse(scratch_.response_head, rhead, framing, ctx_.request_id);
  } else {
    thread_local std::string extra;  // keeps its capacity; nothing here waits
    extra.clear();
    appendEditedFields(extra, edits, actionVars());
    const http::FieldEdits fields{edits.remove, edits.set, extra};
    http::writeDownstreamResponse(scratch_.response_head, rhead, framing, ctx_.request_id, &fields);
  }
}

asio::awaitable<Forwarder::Outcome> Forwarder::exchange(upstream::Lease& lease,
                                                        Clock::time_point head_deadline) {
  auto& up = lease.socket();
  auto& ubuf = scratch_.upstream_in;
  ubuf.consume(ubuf.size());  // left over from a failed attempt
  ubuf.release();             // taken again when the response arrives
  const bool client_http10 = down_.head.version < 11;

  const bool upload = !bodiless();
  const auto send_start = upload ? Clock::now() : Clock::time_point{};
  SendResult sent;
  if (upload) {
    sent = co_await sendRequest(lease);
  } else {
    // The common case, a bodiless request: its head in one write, without sendRequest's frame.
    sent.upstream_failed =
        co_await net::writeAll(up, down_.deadline, asio::buffer(scratch_.request_head),
                               after(cluster_.config().io_timeout)) != net::IoStatus::Ok;
  }
  if (upload) {
    // The route timeout runs from the end of the request body (as Envoy's route timeout does):
    // a slow upload is the client's time, not the upstream's. A client's own deadline stays
    // where it was: the client will not wait longer because it uploaded slowly.
    head_deadline += Clock::now() - send_start;
    if (ctx_.client_timeout) {
      head_deadline = std::min(head_deadline, ctx_.start + *ctx_.client_timeout);
    }
  }
  if (sent.client_failed) {
    result_.client_close = true;
    co_return Outcome::ClientFailed;
  }
  if (ctx_.client_gone) co_return Outcome::Failed;  // the write was cut short: nobody waits
  // A request body the upstream stopped reading leaves the client connection unusable, but the
  // upstream may still have answered (e.g. 413): read on.
  if (sent.upstream_failed) result_.client_close = true;

  // Response head, skipping interim 1xx responses (100 Continue was answered by sluice itself).
  http::ResponseHead& rhead = scratch_.upstream_head;
  std::optional<http::ResponseParser>& parser = scratch_.upstream_parser;
  bool received_any = false;
  std::size_t head_bytes = 0;
  for (;;) {
    parser.emplace(rhead, kMaxResponseHead, kMaxResponseFields,
                   down_.head.method == http::Verb::head);
    for (;;) {
      if (!ubuf.empty()) {
        const auto p = parser->parseHead(ubuf.readable());
        if (p.bad) {
          upstream_error_ = stats::UpstreamError::BadResponse;
          co_return Outcome::Failed;
        }
        if (p.done) {
          head_bytes = p.consumed;
          break;
        }
      }
      // Until the upstream's first byte, wait without a buffer (net::readWhenReadable).
      net::ReadResult rr;
      if (received_any) {
        rr = co_await net::readSome(up, down_.deadline, ubuf, head_deadline, kRelayReadChunk,
                                    kMaxResponseHead + kRelayReadChunk);
      } else {
        rr = co_await net::readWhenReadable(up, down_.deadline, ubuf, head_deadline,
                                            kRelayReadChunk, kMaxResponseHead + kRelayReadChunk);
      }
      if (rr.status != net::IoStatus::Ok) {
        const TryEnd end = headReadFailed({rr.status == net::IoStatus::Timeout, received_any,
                                           lease.reused(), replayable(), sent.upstream_failed});
        upstream_error_ = end.error;
        co_return end.outcome;
      }
      received_any = received_any || rr.bytes > 0;
    }
    if (rhead.status >= 200) break;
    if (rhead.status != 100 && !client_http10) {
      // 102/103 are forwarded; HTTP/1.0 clients cannot receive interim responses.
      if (!co_await relayInterim()) {
        result_.client_close = true;
        co_return Outcome::ClientFailed;
      }
      // The client watch's cancel (client_abort) finds no wait while this write's completion is
      // queued, and the next read's arm forgets it: look here.
      if (ctx_.client_gone) co_return Outcome::Failed;
    }
    ubuf.consume(head_bytes);
  }

  // A status worth another try is dropped here, before any of it reaches the client (the
  // connection goes with it: its body is unread).
  if (finalHead()) co_return Outcome::RetryStatus;

  // Final response head -> client.
  ctx_.phase = stats::RequestPhase::Streaming;
  ctx_.status = rhead.status;
  ResponseCapture* capture = ctx_.capture.get();
  if (capture != nullptr) capture->active = capture->wanted && startCapture(*capture, rhead);
  const bool client_keep_alive = down_.head.keep_alive && !result_.client_close;
  const http::ResponseFraming framing =
      http::downstreamFraming(rhead, down_.head.version, client_keep_alive, down_.draining);
  result_.client_close = framing.close;
  writeResponseHead(framing);
  const bool upstream_keep_alive = rhead.keep_alive && body_done_ && !sent.upstream_failed;
  // Views into the head are dead after this.
  ubuf.consume(head_bytes);

  const bool rechunk = framing.framing == http::Framing::Chunked;
  bool complete = false;  // the whole body reached the client
  truncated_ = false;

  switch (rhead.framing) {
    case http::Framing::None:  // the head alone, written as a Length body of 0 (one write site)
    case http::Framing::Length: {
      std::uint64_t remaining = rhead.framing == http::Framing::Length ? rhead.content_length : 0;
      bool first = true;
      for (;;) {
        const std::size_t take =
            static_cast<std::size_t>(std::min<std::uint64_t>(remaining, ubuf.size()));
        const std::array<asio::const_buffer, 2> bufs = {
            asio::buffer(scratch_.response_head.data(), first ? scratch_.response_head.size() : 0),
            asio::buffer(ubuf.readable().data(), take)};
        if (first || take > 0) {
          if (!co_await writeClient(bufs, asio::buffer_size(bufs))) break;
        }
        first = false;
        if (capture != nullptr && capture->active) {
          capture->body.append(ubuf.readable().data(), take);
        }
        ubuf.consume(take);
        remaining -= take;
        if (remaining == 0) {
          complete = true;
          if (capture != nullptr) capture->complete = capture->active;
          break;
        }
        const auto rr = co_await readBody(up);
        if (rr.status != net::IoStatus::Ok) {
          truncate(rr.status);
          break;
        }
      }
      break;
    }
    case http::Framing::Chunked:
    case http::Framing::UntilEof: {
      const Relayed r = co_await relayStream(up, rhead.framing, rechunk);
      if (r == Relayed::FailedBeforeStart) co_return Outcome::Failed;
      complete = r == Relayed::Complete;
      break;
    }
  }

  if (truncated_) {
    cluster_.stats().error(upstream_error_);
    ctx_.upstream_error = upstream_error_;
    ctx_.error = "upstream response truncated";
  }
  if (!complete) {
    // The client cannot be told in-band that the body is incomplete: closing is the signal.
    result_.client_close = true;
  } else if (upstream_keep_alive && rhead.framing != http::Framing::UntilEof && ubuf.empty()) {
    lease.keep();
  }
  ubuf.release();  // back to the pool for the next response being relayed
  co_return Outcome::Done;
}

}  // namespace sluice::gateway::proxy
