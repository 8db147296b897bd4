#include "gateway/proxy/downstream_connection.h"

#include <cerrno>
#include <exception>
#include <sys/socket.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/bind_allocator.hpp>
#include <boost/asio/buffer.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <spdlog/spdlog.h>

#include "gateway/common/random.h"
#include "gateway/http/parse_error.h"
#include "gateway/http/timeout_header.h"
#include "gateway/log/access_log.h"
#include "gateway/net/coarse_clock.h"
#include "gateway/net/read_readiness.h"
#include "gateway/net/socket_io.h"
#include "gateway/proxy/hash_key.h"
#include "gateway/proxy/request_spans.h"
#include "gateway/server/worker.h"
#include "gateway/trace/span_exporter.h"

namespace sluice::gateway::proxy {

namespace asio = boost::asio;
using Clock = std::chrono::steady_clock;
using RequestPhase = stats::RequestPhase;

namespace {

// What picks a split's side: the sticky key's hash, remixed so that it does not correlate with
// the hash the side's cluster balances by when both use the same key; else a random draw (also
// for a request that has none of the key's parts).
std::uint64_t splitDraw(const config::Route& route, const http::RequestHead& head,
                        const RequestContext& ctx) {
  if (!route.split_key.empty()) {
    if (const auto h = requestHash(route.split_key, head, ctx.client_ip)) {
      return resilience::SplitMix64(*h).next();
    }
  }
  return randomU64();
}

constexpr auto kHotIdle = std::chrono::milliseconds(250);
// How often a waiting request's client is looked at (one wheel tick: at most ~20 ms from the
// client's FIN to the upstream connection's close).
constexpr auto kClientWatchEvery = std::chrono::milliseconds(10);
constexpr std::size_t kClientReadChunk = std::size_t{4} * 1024;
// The first read of a request: nearly every head fits in 1 KiB (nginx's
// client_header_buffer_size); a longer one grows it. The buffer stays until the forwarder has
// serialised the head, which points into it, and goes then unless bytes followed the head.
constexpr std::size_t kClientFirstRead = 1024;
constexpr std::size_t kLingerBytes = std::size_t{1024} * 1024;
constexpr auto kLingerTime = std::chrono::seconds(2);
constexpr std::size_t kMaxIdleBlank = 64;  // bytes of empty lines dropped while idle
// Spare request states (Active, about 2.5 KB and its strings' capacity) a worker thread keeps
// for the next requests; those of a larger burst are freed.
constexpr std::size_t kSpareActives = 256;
constexpr std::string_view k100Continue = "HTTP/1.1 100 Continue\r\n\r\n";

stats::Reject rejectFor(http::RequestError e) {
  using E = http::RequestError;
  switch (e) {
    case E::UriTooLong:
      return stats::Reject::UriTooLong;
    case E::HeaderTooLarge:
    case E::TooManyHeaders:
      return stats::Reject::HeaderTooLarge;
    case E::BodyTooLarge:
      return stats::Reject::BodyTooLarge;
    case E::UnsupportedCoding:
      return stats::Reject::UnsupportedCoding;
    case E::MethodNotAllowed:
      return stats::Reject::MethodNotAllowed;
    case E::ExpectationFailed:
      return stats::Reject::ExpectationFailed;
    default:
      return stats::Reject::BadRequest;
  }
}

}  // namespace

DownstreamConnection::DownstreamConnection(server::Worker& worker, server::WorkerListener& listener,
                                           asio::ip::tcp::socket socket)
    : worker_(worker), listener_(listener), socket_(std::move(socket)), deadline_(worker.wheel()) {
  boost::system::error_code ec;
  const auto peer = socket_.remote_endpoint(ec);
  client_ip_ = ec ? std::string("unknown") : peer.address().to_string();
  socket_.set_option(asio::ip::tcp::no_delay(true), ec);
  worker_.attach(*this, listener_);
}

DownstreamConnection::~DownstreamConnection() {
  // A connection that served requests frees its buffers now: like going cold, worth a trim.
  if (served_ > 0) worker_.noteColdConnection();
  // Freed, not lent on: at shutdown this runs on whichever thread destroys the worker's handlers.
  releaseActive(false);
  worker_.detach(*this, listener_);
}

void DownstreamConnection::drain() {
  // A connection that has not had its first request yet (accepted from the backlog during the
  // drain) is given its chance: its request was accepted by the kernel on our behalf.
  if ((phase_ == Phase::Idle || phase_ == Phase::Parked) && served_ > 0) deadline_.expireNow();
}

void DownstreamConnection::spawn(std::unique_ptr<DownstreamConnection> self) {
  auto& c = *self;
  asio::co_spawn(c.worker_.io(), c.run(),
                 [owned = std::move(self)](const std::exception_ptr&) mutable {
                   if (owned->phase_ == Phase::Parked) park(std::move(owned));
                   // else: done; the connection is destroyed with the handler
                 });
}

void DownstreamConnection::park(std::unique_ptr<DownstreamConnection> self) {
  auto& c = *self;
  c.in_.release();
  c.giveBackActive();
  c.worker_.noteColdConnection();
  c.deadline_.arm(c.socket_, c.idle_end_);
  c.socket_.async_wait(
      asio::ip::tcp::socket::wait_read,
      asio::bind_allocator(net::PoolAllocator<void>{},
                           [owned = std::move(self)](const boost::system::error_code& ec) mutable {
                             unpark(std::move(owned), ec);
                           }));
}

void DownstreamConnection::unpark(std::unique_ptr<DownstreamConnection> self,
                                  boost::system::error_code ec) {
  auto& c = *self;
  const bool expired = c.deadline_.disarm();
  if (c.listener_.draining) {
    if (!c.readNow()) {
      c.closeSocket();
      return;
    }
  } else if (ec || expired) {
    c.closeSocket();  // idle timeout, or the client went away
    return;
  }
  c.readable_ = true;
  c.phase_ = Phase::Busy;
  spawn(std::move(self));
}

void DownstreamConnection::closeSocket() {
  boost::system::error_code ignored;
  socket_.shutdown(asio::ip::tcp::socket::shutdown_send, ignored);
  socket_.close(ignored);
  giveBackActive();
  phase_ = Phase::Done;
  if (counted_) {
    counted_ = false;
    worker_.stats().downstream_active.dec();
  }
}

bool DownstreamConnection::readNow() {
  auto space =
      in_.prepare(kClientFirstRead, listener_.config.limits.header_bytes + kClientReadChunk);
  const auto n = ::recv(socket_.native_handle(), space.data(), space.size(), MSG_DONTWAIT);
  if (n <= 0) return false;
  in_.commit(static_cast<std::size_t>(n));
  return true;
}

asio::awaitable<void> DownstreamConnection::run() {
  auto& stats = worker_.stats();
  if (!counted_) {
    counted_ = true;
    stats.downstream_total.inc();
    stats.downstream_active.inc();
  }
  const std::size_t max_buffer = listener_.config.limits.header_bytes + kClientReadChunk;
  for (;;) {
    if (readable_) {
      readable_ = false;  // resumed from park(): bytes are waiting, serve() reads them
    } else if (in_.empty()) {
      const bool first = served_ == 0;
      if (listener_.draining && !first) {
        if (!readNow()) break;
      } else {
        phase_ = Phase::Idle;
        const auto idle_start = net::coarseNow();
        // Empty lines dropped while idle (dropEmptyLines) do not restart the idle timeout.
        if (idle_end_ == Clock::time_point{}) {
          idle_end_ = idle_start + (first ? std::min(listener_.config.timeouts.idle,
                                                     listener_.config.timeouts.header)
                                          : listener_.config.timeouts.idle);
        }
        const auto idle_end = idle_end_;
        // Hot stage: the coroutine waits for the next request, but without a buffer: on a busy
        // proxy most connections are here, between their requests (net::readWhenReadable).
        in_.release();
        const auto r = co_await net::readWhenReadable(socket_, deadline_, in_,
                                                      std::min(idle_end, idle_start + kHotIdle),
                                                      kClientFirstRead, max_buffer);
        if (r.bytes == 0) {
          if (r.status == net::IoStatus::Ok) continue;  // nothing came
          // Woken by the drain: a request that raced with it may already be in the socket.
          if (listener_.draining) {
            if (!readNow()) break;
          } else if (r.status != net::IoStatus::Timeout || net::coarseNow() >= idle_end) {
            break;  // EOF, error, or the idle timeout itself
          } else {
            // Cold: end this coroutine and park (see spawn() and park()).
            idle_end_ = idle_end;
            phase_ = Phase::Parked;
            co_return;
          }
        }
      }
    }
    if (dropEmptyLines()) continue;  // a stray CRLF between requests: still idle
    ++served_;
    blank_bytes_ = 0;
    idle_end_ = {};  // the next idle wait starts after this request
    phase_ = Phase::Busy;
    stats.requests_active.inc();
    const bool keep = co_await serve();
    stats.requests_active.dec();
    if (!keep) break;
    giveBackActive();
  }
  if (reset_) {
    // A client that stopped reading: drop what the kernel still holds for it and send RST,
    // instead of letting megabytes of queued response trickle out to it after we are gone.
    boost::system::error_code ignored;
    socket_.set_option(asio::socket_base::linger(true, 0), ignored);
  } else if (linger_) {
    co_await lingeringClose();
  }
  closeSocket();
}

bool DownstreamConnection::dropEmptyLines() {
  // RFC 9112 2.2: empty lines before a request are ignored. Old clients send a CRLF after a
  // POST body; if that is all that came, the connection is still idle, not inside a request's
  // head. Bounded per request, so that a client cannot hold an idle connection forever with
  // CRLFs: they do not restart the idle timeout, and past kMaxIdleBlank bytes they go to the
  // parser, which skips them as part of the head (its byte limit and the header timeout apply).
  const std::string_view data = in_.readable();
  std::size_t n = 0;
  while (n < data.size() &&
         (data[n] == '\n' || (data[n] == '\r' && n + 1 < data.size() && data[n + 1] == '\n'))) {
    n += data[n] == '\n' ? 1 : 2;
  }
  if (n == 0 || n != data.size() || blank_bytes_ + n > kMaxIdleBlank) return false;
  blank_bytes_ += n;
  in_.consume(n);
  return true;
}

std::vector<std::unique_ptr<DownstreamConnection::Active>>& DownstreamConnection::spares() {
  // Freed with the thread. Per thread, as the connections that borrow from it are.
  thread_local std::vector<std::unique_ptr<Active>> spares;
  return spares;
}

void DownstreamConnection::takeActive() {
  auto& pool = spares();
  if (pool.empty()) {
    active_ = std::make_unique<Active>(this);
  } else {
    active_ = std::move(pool.back());
    pool.pop_back();
    active_->conn = this;
  }
  active_->ctx.client_ip = client_ip_;
  active_->ctx.listener = listener_.config.name;
}

void DownstreamConnection::giveBackActive() noexcept { releaseActive(true); }

void DownstreamConnection::releaseActive(bool to_spares) noexcept {
  if (!active_) return;
  Active& a = *active_;
  worker_.wheel().cancel(a.watch);
  // What points into this connection or holds a permit goes now, not when the next one borrows.
  a.forwarder.reset();
  a.mirror.reset();
  a.down.reset();
  a.admission.reset();
  a.local_reply.reset();
  a.ctx.reset();
  a.pin.release();  // last: what went above may point into the generation
  // A response that did not end cleanly may have left bytes (and its block) behind.
  a.scratch.upstream_in.consume(a.scratch.upstream_in.size());
  a.scratch.upstream_in.release();
  if (to_spares && spares().size() < kSpareActives) {
    try {
      spares().push_back(std::move(active_));
    } catch (...) {  // no memory for the list: the state is freed instead
    }
  }
  active_.reset();
}

asio::awaitable<bool> DownstreamConnection::serve() {
  if (!active_) takeActive();
  Active& a = *active_;

  // The request head, parsed strictly as it arrives, within the header deadline (read here
  // rather than in a coroutine of its own: one frame fewer per request).
  startHead(a);
  const auto until = net::coarseNow() + listener_.config.timeouts.header;
  bool rejected = false;
  for (;;) {
    if (!in_.empty()) {
      const auto p = a.parser->parseHead(in_.readable());
      if (p.error != http::RequestError::None) {
        a.head_error = p.error;
        rejected = true;
        break;
      }
      if (p.done) {
        a.head_size = p.consumed;
        break;
      }
    }
    // A head longer than the first read: up to a whole pool block of 4 KiB (asking for another
    // 4 KiB on top of the 1 KiB would take an 8 KiB one), then 4 KiB more at a time.
    const std::size_t more =
        in_.size() < kClientReadChunk ? kClientReadChunk - in_.size() : kClientReadChunk;
    const auto r = co_await net::readSome(socket_, deadline_, in_, until, more,
                                          listener_.config.limits.header_bytes + kClientReadChunk);
    if (r.status == net::IoStatus::Timeout) {
      a.head_timed_out = true;
      rejected = true;
      break;
    }
    if (r.status != net::IoStatus::Ok) co_return false;  // closed before a whole head arrived
  }
  if (rejected) {
    // The head was unreadable: answer and close, so no byte of it can reach an upstream or be
    // taken for the start of another request.
    refuseHead(a);
    linger_ = true;
    co_await reply(a, *a.local_reply, true);
    complete(a, false);
    co_return false;
  }

  bool keep_alive = false;
  bool failed = false;
  try {
    keep_alive = co_await handle(a);
  } catch (const std::exception& e) {
    failed = true;
    spdlog::error("request {} failed with an exception: {}", a.ctx.request_id, e.what());
  }
  if (failed) {
    // Isolation: this request gets a 500 (if nothing was sent yet) and this connection closes;
    // the worker and every other connection carry on.
    worker_.stats().exceptions.inc();
    if (!a.response_started) {
      linger_ = true;
      a.local_reply = http::LocalReply::text(500, "internal error", true);
      co_await reply(a, *a.local_reply, true);
    }
    complete(a, true);
    co_return false;
  }
  co_return keep_alive;
}

void DownstreamConnection::startHead(Active& a) const {
  a.head_error = http::RequestError::None;
  a.head_timed_out = false;
  http::RequestLimits limits;
  limits.max_request_line = listener_.config.limits.request_line;
  limits.max_head_bytes = listener_.config.limits.header_bytes;
  limits.max_fields = listener_.config.limits.headers;
  a.parser.emplace(a.head, limits);
}

void DownstreamConnection::refuseHead(Active& a) {
  auto& stats = worker_.stats();
  a.ctx.reset();
  a.ctx.start = Clock::now();
  if (worker_.accessLog() != nullptr) a.ctx.wall_start = std::chrono::system_clock::now();
  if (a.head_timed_out) {
    stats.reject(stats::Reject::HeaderTimeout);
    a.local_reply = http::LocalReply::text(408, "request header timeout", true);
  } else {
    const auto info = http::describe(a.head_error);
    stats.reject(rejectFor(a.head_error));
    a.local_reply = http::LocalReply::text(info.status, info.message, true);
  }
}

std::optional<InFlightRequest> DownstreamConnection::inFlight(Clock::time_point now) const {
  if (!active_ || active_->ctx.phase == RequestPhase::Idle) return std::nullopt;
  const RequestContext& ctx = active_->ctx;
  InFlightRequest r;
  r.request_id = ctx.request_id;
  r.method = ctx.method;
  r.host = ctx.host;
  r.path = ctx.path;
  r.client = std::string(ctx.client_ip);
  r.listener = std::string(ctx.listener);
  if (ctx.route != nullptr) r.route = ctx.route->name;
  if (ctx.cluster != nullptr) r.cluster = ctx.cluster->name;
  r.upstream = ctx.upstream;
  r.attempts = ctx.attempts;
  r.phase = ctx.phase;
  r.age = now - ctx.start;
  if (ctx.deadline != Clock::time_point{}) r.deadline_left = ctx.deadline - now;
  return r;
}

bool DownstreamConnection::bodyUnread(const Active& a) noexcept {
  return a.head.framing == http::Framing::Chunked ||
         (a.head.framing == http::Framing::Length && a.head.content_length > 0);
}

// Coroutine frames on the request path are kept under glibc's largest tcache size (1032
// bytes): a larger one costs a slow-path malloc and free on every request. GCC gives every local
// and temporary of a coroutine its own slot, so what does not need to live across a suspension
// is decided in plain functions (prepare(), admitNow()) and what does lives in Active.
asio::awaitable<bool> DownstreamConnection::handle(Active& a) {
  a.response_started = false;
  if (!prepare(a)) {
    co_return co_await refuse(a, *a.local_reply);
  }
  RequestContext& ctx = a.ctx;
  const http::RequestHead& head = a.head;
  if (ctx.route->client_abort == config::Route::ClientAbort::Cancel) {
    a.watch_after_body = false;
    worker_.wheel().schedule(a.watch, net::coarseNow() + kClientWatchEvery);
  }

  // Admission guards, in order; the first local reply wins.
  const auto& guards = backendOf(a).guards;
  if (!guards.empty()) {
    if (const std::size_t stopped = admitNow(a, 0); stopped < guards.size()) {
      ctx.phase = RequestPhase::Queued;
      const std::optional<bool> answered = co_await admitSlow(a, stopped);
      if (answered) co_return *answered;
      ctx.phase = RequestPhase::Admitting;
    }
    ctx.admitted = Clock::now();
  }

  // Expect: 100-continue is answered here (and not forwarded): the client sends its body only
  // once a request has passed routing, limits and guards.
  if (head.expect_continue && in_.size() == a.head_size) {
    if (!co_await writeContinue()) {
      complete(a, false);
      co_return false;
    }
  }

  // A route that answers itself does so once its guards let the request in.
  if (ctx.route->answersItself()) {
    a.local_reply = actionReply(a);
    co_return co_await refuse(a, *a.local_reply);
  }

  const std::uint64_t body_limit = ctx.route->max_body.value_or(listener_.config.limits.body);
  a.down.emplace(Downstream{socket_, in_, a.head_size, head, *a.parser, deadline_, listener_.config,
                            body_limit, listener_.draining, &a.response_started,
                            worker_.spanExporter()});
  if (const auto& m = ctx.route->mirror; m && MirrorCopy::drawn(*m)) {
    a.mirror.emplace(*a.pin, *ctx.route_index);
  }
  a.local_reply.reset();
  a.forwarder.emplace(*a.down, *a.pin->clusters[ctx.cluster_index], ctx, a.scratch,
                      a.mirror ? &*a.mirror : nullptr, a.local_reply);
  co_await a.forwarder->run();
  const bool body_done = a.forwarder->bodyDone();
  bool close = false;
  bool upstream_failed = false;
  {
    ForwardResult& result = a.forwarder->result();
    close = result.client_close;
    upstream_failed = result.upstream_failed;
    reset_ = result.client_timed_out;
    if (result.rejected) worker_.stats().reject(*result.rejected);
    if (result.slow_reader) worker_.stats().slowReader(*result.slow_reader);
  }
  a.forwarder.reset();  // gives back what the forwarding loop held (retry permits)
  a.mirror.reset();     // sent by now, unless the body never arrived whole
  a.down.reset();
  a.head_size = 0;  // the forwarder consumed the head
  if (!a.response_started && a.local_reply) {
    // The request body may be partly unread: only a fully read body leaves the connection usable.
    close = close || a.local_reply->close || !body_done;
    linger_ = close;
    if (!co_await reply(a, *a.local_reply, close)) close = true;
  } else if (a.local_reply) {
    // An interim (1xx) response already went out, so this answer cannot: closing is the only
    // way to tell the client there will be no final response.
    close = true;
  }
  complete(a, upstream_failed);
  co_return !close && head.keep_alive && !listener_.draining;
}

asio::awaitable<bool> DownstreamConnection::writeContinue() {
  co_return co_await net::writeAll(socket_, deadline_, asio::buffer(k100Continue),
                                   net::coarseNow() + listener_.config.timeouts.send) ==
      net::IoStatus::Ok;
}

http::LocalReply DownstreamConnection::actionReply(const Active& a) const {
  const RequestContext& ctx = a.ctx;
  const ActionVars vars{ctx.client_ip, ctx.request_id, ctx.route->name, {}, {}};
  if (ctx.route->redirect) return redirectReply(*ctx.route, a.head, "http", vars);
  return directReply(*ctx.route, vars);
}

bool DownstreamConnection::prepare(Active& a) {
  auto& stats = worker_.stats();
  // The request runs on the generation current now, to its end (worker.h).
  a.pin = worker_.pin();
  const server::Snapshot& snap = *a.pin->snapshot;
  const http::RequestHead& head = a.head;
  RequestContext& ctx = a.ctx;

  ctx.reset();
  ctx.phase = RequestPhase::Admitting;
  ctx.head = &head;
  ctx.start = Clock::now();
  if (worker_.accessLog() != nullptr) {
    ctx.wall_start = std::chrono::system_clock::now();
    if (const auto q = head.target.find('?'); q != std::string_view::npos) {
      ctx.query.assign(head.target.substr(q + 1));
    }
  }
  ctx.method.assign(head.method_text);
  ctx.host.assign(head.host);
  ctx.path.assign(head.path());
  const char* bad_field = nullptr;
  std::string_view traceparent;
  int traceparents = 0;
  for (const auto& f : head.fields) {
    if (f.id == http::Field::user_agent) {
      ctx.user_agent.assign(f.value);
    } else if (f.id != http::Field::unknown) {
      continue;
    } else if (http::iequals(f.name, "traceparent")) {
      traceparent = f.value;
      ++traceparents;
    } else if (http::iequals(f.name, "x-request-id")) {
      if (!f.value.empty() && f.value.size() <= 200 && !ctx.request_id_received) {
        ctx.request_id.assign(f.value);
        ctx.request_id_received = true;
      }
    } else if (http::iequals(f.name, http::kSluiceTimeoutHeader) ||
               http::iequals(f.name, http::kGrpcTimeoutHeader)) {
      const bool grpc = http::iequals(f.name, http::kGrpcTimeoutHeader);
      const auto t = grpc ? http::parseGrpcTimeout(f.value) : http::parseSluiceTimeout(f.value);
      if (!t) {
        bad_field = grpc ? "invalid grpc-timeout" : "invalid X-Sluice-Timeout-Ms";
      } else if (!ctx.client_timeout || *t < *ctx.client_timeout) {
        ctx.client_timeout = *t;
      }
      ctx.grpc_timeout = ctx.grpc_timeout || grpc;
    }
  }
  if (!ctx.request_id_received) worker_.requestIds().next(ctx.request_id);
  if (snap.config.tracing && worker_.spanExporter() != nullptr) {
    startTrace(ctx, traceparent, traceparents, snap.config.tracing->sample_ratio);
  }
  if (bad_field != nullptr) {
    stats.reject(stats::Reject::BadRequest);
    a.local_reply = http::LocalReply::text(400, bad_field);
    return false;
  }

  // Route.
  const auto route = snap.router.match(head);
  if (!route) {
    stats.reject(stats::Reject::NoRoute);
    a.local_reply = http::LocalReply::text(404, "no route for this request");
    return false;
  }
  ctx.route_index = *route;
  ctx.route = &snap.config.routes[*route];
  const server::RoutePlan& plan = snap.routes[*route];
  if (plan.backends.size() > 1) ctx.backend_index = plan.pick(splitDraw(*ctx.route, head, ctx));
  ctx.cluster_index = plan.backends[ctx.backend_index].cluster;
  ctx.cluster = ctx.route->answersItself() ? nullptr : &snap.config.clusters[ctx.cluster_index];
  ctx.deadline = ctx.start + ctx.route->timeout;
  if (ctx.client_timeout) ctx.deadline = std::min(ctx.deadline, ctx.start + *ctx.client_timeout);
  const std::uint64_t body_limit = ctx.route->max_body.value_or(listener_.config.limits.body);
  if (head.framing == http::Framing::Length && head.content_length > body_limit) {
    stats.reject(stats::Reject::BodyTooLarge);
    a.local_reply = http::LocalReply::text(413, "request body too large", true);
    return false;
  }
  return true;
}

std::size_t DownstreamConnection::admitNow(Active& a, std::size_t i) {
  const auto& guards = backendOf(a).guards;
  for (; i < guards.size(); ++i) {
    a.admission = guards[i]->check(a.ctx);
    if (!a.admission || a.admission->wait.count() > 0 || a.admission->reply) break;
    countAdmission(a, i);
    pass(a);
  }
  return i;
}

asio::awaitable<std::optional<bool>> DownstreamConnection::admitSlow(Active& a, std::size_t i) {
  const auto& guards = backendOf(a).guards;
  while (i < guards.size()) {
    // (No co_await inside ?: - GCC 12 destroys the temporaries of such an expression twice.)
    if (!a.admission) a.admission.emplace(co_await guards[i]->admit(a.ctx));
    if (a.ctx.client_gone) co_return abandon(a);  // a slot it may have got goes back
    countAdmission(a, i);
    if (a.admission->wait.count() > 0) {
      // A delayed request (rate limit within its burst) sleeps on its own worker's loop.
      asio::steady_timer timer(socket_.get_executor(), a.admission->wait);
      a.ctx.wait.set(timer);
      co_await timer.async_wait(asio::as_tuple(asio::use_awaitable));
      a.ctx.wait.clear();
      if (a.ctx.client_gone) co_return abandon(a);
    }
    if (a.admission->reply) {
      co_return co_await refuse(a, *a.admission->reply);
    }
    pass(a);
    i = admitNow(a, i + 1);
  }
  co_return std::nullopt;
}

void DownstreamConnection::countAdmission(Active& a, std::size_t i) {
  const server::RouteBackend& b = backendOf(a);
  if (a.admission->verdict != guards::Verdict::Allowed) {
    a.ctx.guard = b.guards[i]->name();
    a.ctx.guard_verdict = guards::kVerdictNames[static_cast<std::size_t>(a.admission->verdict)];
  }
  const std::size_t slot = b.guard_slots[i];
  if (slot == server::RouteBackend::kNoSlot) return;
  a.pin->backends[b.slot]->guards[slot][static_cast<std::size_t>(a.admission->verdict)].inc();
}

void DownstreamConnection::pass(Active& a) {
  RequestContext& ctx = a.ctx;
  if (a.admission->cluster != nullptr) {  // a circuit breaker's fallback cluster
    const server::Snapshot& snap = *a.pin->snapshot;
    if (const auto c = snap.clusterIndex(*a.admission->cluster)) {
      ctx.cluster_index = *c;
      ctx.cluster = &snap.config.clusters[*c];
    }
  }
  ++ctx.guards_admitted;
}

asio::awaitable<bool> DownstreamConnection::refuse(Active& a, const http::LocalReply& r) {
  const bool close = r.close || bodyUnread(a);
  linger_ = close;
  in_.consume(a.head_size);
  const bool ok = co_await reply(a, r, close);
  complete(a, false);
  co_return ok && !close && a.head.keep_alive;
}

asio::awaitable<bool> DownstreamConnection::reply(Active& a, const http::LocalReply& r,
                                                  bool close) {
  a.ctx.phase = RequestPhase::Replying;
  a.ctx.status = r.status;
  if (a.ctx.error.empty() && r.status >= 400) a.ctx.error = r.body;
  a.scratch.response_head.clear();
  const bool client_http10 = a.head.version < 11;
  http::writeLocalReply(
      a.scratch.response_head, r, a.ctx.request_id, close || listener_.draining, client_http10,
      a.head.method == http::Verb::head && a.head_error == http::RequestError::None);
  a.response_started = true;
  const auto s = co_await net::writeAll(socket_, deadline_, asio::buffer(a.scratch.response_head),
                                        net::coarseNow() + listener_.config.timeouts.send);
  if (s == net::IoStatus::Ok) a.ctx.bytes_out += a.scratch.response_head.size();
  co_return s == net::IoStatus::Ok;
}

bool DownstreamConnection::abandon(Active& a) {
  a.ctx.status = 499;  // as nginx logs a client that closed first
  a.ctx.error = "client closed the connection";
  complete(a, false);
  return false;
}

void DownstreamConnection::onWatch(void* self) {
  auto& a = *static_cast<Active*>(self);
  a.conn->checkClient(a);
}

void DownstreamConnection::checkClient(Active& a) {
  if (half_closed_) return;  // it sends no more, and waits for the answers to what it sent
  RequestContext& ctx = a.ctx;
  const auto again = [&] {
    worker_.wheel().schedule(a.watch, net::coarseNow() + kClientWatchEvery);
  };
  const bool body_sent = a.forwarder && a.forwarder->bodyDone();
  switch (ctx.phase) {
    case RequestPhase::Queued:
    case RequestPhase::Waiting:
    case RequestPhase::Connecting:
    case RequestPhase::Backoff:
      if (a.watch_after_body && !body_sent) return again();
      break;
    case RequestPhase::Awaiting:
      // Until its body is sent, the request reads the client itself (and sees it go).
      if (!body_sent) return again();
      break;
    case RequestPhase::Admitting:
      return again();  // not waiting yet (or writing 100 Continue)
    default:
      return;  // responding: its writes find a client gone; the watch is over
  }
  // The reactor raises a flag on any event of the socket (read_readiness.h): in the common case
  // nothing arrived and this costs no syscall.
  if (!net::inputMayHaveArrived(socket_)) return again();
  char byte = 0;
  const auto n = ::recv(socket_.native_handle(), &byte, 1, MSG_PEEK | MSG_DONTWAIT);
  if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
    if (errno != EINTR) net::noteDrained(socket_);
    return again();
  }
  // Bytes: whether a FIN follows them cannot be seen without reading them, which is the
  // request's own business. Its body's: look again once it has been sent (no peek until then).
  // A pipelined request's: stop watching, as nginx does. A FIN behind whole pipelined requests
  // is a half-close of a client that wants their answers: they are served.
  if (n > 0 && !body_sent && bodyUnread(a)) {
    a.watch_after_body = true;
    return again();
  }
  if (n > 0) return;
  if (n == 0 && pipelinedBehind(a)) {
    half_closed_ = true;  // for the requests behind too: the end of file stays in the socket
    return;
  }
  // End of file or a reset: the client closed (or half-closed: treated alike, as nginx does;
  // docs/configuration.md, "Client aborts"). Cut the wait short: the timer it waits on, or the
  // upstream socket the connection's deadline is armed on (a connect, the request's write, the
  // response head's read). The waiting code sees ctx.client_gone and ends the request.
  ctx.client_gone = true;
  worker_.stats().client_aborts[static_cast<std::size_t>(ctx.phase)].inc();
  ctx.wait.cancel();
  deadline_.cancelNow();
}

bool DownstreamConnection::pipelinedBehind(const Active& a) const noexcept {
  // What of the request itself is still in the buffer: its head until forwarding consumes it,
  // and its body until it has been sent.
  std::size_t request_bytes = a.down ? a.down->head_size : a.head_size;
  if (!a.forwarder || !a.forwarder->bodyDone()) {
    if (a.head.framing == http::Framing::Chunked) return false;  // its end is not known here
    if (a.head.framing == http::Framing::Length) request_bytes += a.head.content_length;
  }
  return in_.size() > request_bytes;
}

void DownstreamConnection::complete(Active& a, bool upstream_failed) {
  worker_.wheel().cancel(a.watch);
  a.ctx.phase = RequestPhase::Idle;
  if (a.ctx.trace.sampled) {
    if (auto* spans = worker_.spanExporter()) spans->submit(serverSpan(a.ctx, unixNanos()));
  }
  auto& stats = worker_.stats();
  RequestContext& ctx = a.ctx;
  const auto now = Clock::now();
  const auto latency = now - ctx.start;
  stats::RouteStats& rs =
      ctx.route_index ? a.pin->backends[backendOf(a).slot]->requests : stats.unrouted;
  rs.by_class[stats::statusClass(ctx.status)].inc();
  rs.latency.observe(latency);
  if (ctx.route_index && ctx.guards_admitted > 0) {
    const auto& guards = backendOf(a).guards;
    const auto served = ctx.admitted == Clock::time_point{} ? latency : now - ctx.admitted;
    // A request its client left says nothing about the upstream either.
    const bool no_verdict =
        ctx.client_gone || (ctx.upstream_error && !stats::upstreamAsked(*ctx.upstream_error));
    const auto last_try = ctx.last_try == Clock::time_point{} ? served : now - ctx.last_try;
    const guards::Completion c{ctx.status, served, upstream_failed, no_verdict, last_try};
    for (std::size_t i = 0; i < ctx.guards_admitted; ++i) guards[i]->complete(ctx, c);
  }
  ctx.releasePermits();  // concurrency slots go back before the next request is read
  if (auto* log = worker_.accessLog()) log->write(ctx, latency);
  a.pin.release();  // last: the generation may go with it, and the context points into it
}

asio::awaitable<void> DownstreamConnection::lingeringClose() {
  // Closing with unread bytes in the receive queue makes the kernel send RST, which can destroy
  // the response we just wrote before the client reads it. Half-close, then read and discard for
  // a bounded time, as nginx's lingering_close does.
  boost::system::error_code ec;
  socket_.shutdown(asio::ip::tcp::socket::shutdown_send, ec);
  if (ec) co_return;
  const auto until = net::coarseNow() + kLingerTime;
  std::size_t discarded = 0;
  while (discarded < kLingerBytes && net::coarseNow() < until) {
    in_.consume(in_.size());
    const auto r = co_await net::readSome(socket_, deadline_, in_, until, kClientReadChunk,
                                          std::size_t{16} * 1024);
    if (r.status != net::IoStatus::Ok) break;
    discarded += r.bytes;
  }
}

}  // namespace sluice::gateway::proxy
