#include "gateway/proxy/downstream_connection.h"

#include <array>
#include <exception>
#include <sys/socket.h>

#include <boost/asio/buffer.hpp>
#include <spdlog/spdlog.h>

#include "gateway/http/parse_error.h"
#include "gateway/log/access_log.h"
#include "gateway/net/socket_io.h"
#include "gateway/server/worker.h"

namespace sluice::gateway::proxy {

namespace asio = boost::asio;
using Clock = std::chrono::steady_clock;

namespace {

constexpr auto kHotIdle = std::chrono::milliseconds(250);
constexpr std::size_t kReadChunk = 4 * 1024;
constexpr std::size_t kLingerBytes = 1024 * 1024;
constexpr auto kLingerTime = std::chrono::seconds(2);
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

DownstreamConnection::DownstreamConnection(server::Worker& worker, const config::Listener& listener,
                                           asio::ip::tcp::socket socket)
    : worker_(worker), listener_(listener), socket_(std::move(socket)), deadline_(worker.wheel()) {
  boost::system::error_code ec;
  const auto peer = socket_.remote_endpoint(ec);
  client_ip_ = ec ? std::string("unknown") : peer.address().to_string();
  socket_.set_option(asio::ip::tcp::no_delay(true), ec);
  ctx_.client_ip = client_ip_;
  ctx_.listener = listener_.name;
  worker_.attach(*this);
}

DownstreamConnection::~DownstreamConnection() { worker_.detach(*this); }

void DownstreamConnection::drain() {
  // A connection that has not had its first request yet (accepted from the backlog during the
  // drain) is given its chance: its request was accepted by the kernel on our behalf.
  if (phase_ == Phase::Idle && served_ > 0) deadline_.expireNow();
}

void DownstreamConnection::releaseIdleMemory() {
  in_.release();
  parser_.reset();
  head_ = http::RequestHead{};
  ctx_ = RequestContext{};
  ctx_.client_ip = client_ip_;
  ctx_.listener = listener_.name;
  scratch_ = Scratch{};
}

bool DownstreamConnection::readNow() {
  auto space = in_.prepare(kReadChunk, listener_.limits.header_bytes + kReadChunk);
  const auto n = ::recv(socket_.native_handle(), space.data(), space.size(), MSG_DONTWAIT);
  if (n <= 0) return false;
  in_.commit(static_cast<std::size_t>(n));
  return true;
}

asio::awaitable<void> DownstreamConnection::run() {
  auto& stats = worker_.stats();
  stats.downstream_total.inc();
  stats.downstream_active.inc();
  for (;;) {
    if (!co_await waitForRequest()) break;
    const HeadStatus hs = co_await readHead();
    if (hs == HeadStatus::Closed) break;
    if (hs == HeadStatus::Rejected) {
      // The head was unreadable: answer and close, so no byte of it can reach an upstream or be
      // taken for the start of another request.
      ctx_.reset();
      ctx_.start = Clock::now();
      ctx_.wall_start = std::chrono::system_clock::now();
      http::LocalReply r;
      if (head_timed_out_) {
        stats.reject(stats::Reject::HeaderTimeout);
        r = http::LocalReply::text(408, "request header timeout", true);
      } else {
        const auto info = http::describe(head_error_);
        stats.reject(rejectFor(head_error_));
        r = http::LocalReply::text(info.status, info.message, true);
      }
      ctx_.error = r.body;
      linger_ = true;
      co_await reply(r, true);
      complete(false, 0);
      break;
    }

    bool keep_alive = false;
    bool failed = false;
    try {
      keep_alive = co_await handle();
    } catch (const std::exception& e) {
      failed = true;
      spdlog::error("request {} failed with an exception: {}", ctx_.request_id, e.what());
    }
    if (failed) {
      // Isolation: this request gets a 500 (if nothing was sent yet) and this connection closes;
      // the worker and every other connection carry on.
      stats.exceptions.inc();
      if (!response_started_) {
        linger_ = true;
        co_await reply(http::LocalReply::text(500, "internal error", true), true);
      }
      complete(true, 0);
      break;
    }
    if (!keep_alive) break;
  }
  boost::system::error_code ignored;
  if (reset_) {
    // A client that stopped reading: drop what the kernel still holds for it and send RST,
    // instead of letting megabytes of queued response trickle out to it after we are gone.
    socket_.set_option(asio::socket_base::linger(true, 0), ignored);
  } else {
    if (linger_) co_await lingeringClose();
    socket_.shutdown(asio::ip::tcp::socket::shutdown_send, ignored);
  }
  socket_.close(ignored);
  stats.downstream_active.dec();
}

asio::awaitable<bool> DownstreamConnection::waitForRequest() {
  if (!in_.empty()) co_return true;  // a pipelined request is already buffered
  const bool first = served_++ == 0;
  if (worker_.draining() && !first) co_return readNow();
  phase_ = Phase::Idle;
  const auto idle_start = Clock::now();
  const auto idle_end =
      idle_start + (first ? std::min(listener_.timeouts.idle, listener_.timeouts.header)
                          : listener_.timeouts.idle);

  // Hot stage: a plain read with the buffer kept (what a busy keep-alive connection does).
  const auto hot_end = std::min(idle_end, idle_start + kHotIdle);
  const auto r = co_await net::readSome(socket_, deadline_, in_, hot_end, kReadChunk,
                                        listener_.limits.header_bytes + kReadChunk);
  if (r.status == net::IoStatus::Ok) co_return true;
  // Woken by the drain: a request that raced with it may already be in the socket.
  if (worker_.draining()) co_return readNow();
  if (r.status != net::IoStatus::Timeout || Clock::now() >= idle_end) co_return false;
  // Cold stage: give back every per-request allocation and wait for readability without a
  // buffer; an idle client then costs its socket, this object and the coroutine frame.
  releaseIdleMemory();
  deadline_.arm(socket_, idle_end);
  auto [ec] = co_await socket_.async_wait(asio::ip::tcp::socket::wait_read, net::kNoThrow);
  const bool timed_out = deadline_.disarm();
  if (worker_.draining()) co_return readNow();
  co_return !ec && !timed_out;
}

asio::awaitable<DownstreamConnection::HeadStatus> DownstreamConnection::readHead() {
  phase_ = Phase::Head;
  head_error_ = http::RequestError::None;
  head_timed_out_ = false;
  http::RequestLimits limits;
  limits.max_request_line = listener_.limits.request_line;
  limits.max_head_bytes = listener_.limits.header_bytes;
  limits.max_fields = listener_.limits.headers;
  parser_.emplace(head_, limits);
  const auto until = Clock::now() + listener_.timeouts.header;
  for (;;) {
    if (!in_.empty()) {
      const auto p = parser_->parseHead(in_.readable());
      if (p.error != http::RequestError::None) {
        head_error_ = p.error;
        co_return HeadStatus::Rejected;
      }
      if (p.done) {
        head_size_ = p.consumed;
        co_return HeadStatus::Ready;
      }
    }
    const auto r = co_await net::readSome(socket_, deadline_, in_, until, kReadChunk,
                                          listener_.limits.header_bytes + kReadChunk);
    if (r.status == net::IoStatus::Timeout) {
      head_timed_out_ = true;
      co_return HeadStatus::Rejected;
    }
    if (r.status != net::IoStatus::Ok) co_return HeadStatus::Closed;
  }
}

bool DownstreamConnection::bodyUnread() const noexcept {
  return head_.framing == http::Framing::Chunked ||
         (head_.framing == http::Framing::Length && head_.content_length > 0);
}

asio::awaitable<bool> DownstreamConnection::handle() {
  phase_ = Phase::Busy;
  response_started_ = false;
  auto& stats = worker_.stats();
  const server::Snapshot& snap = worker_.snapshot();

  ctx_.reset();
  ctx_.head = &head_;
  ctx_.start = Clock::now();
  ctx_.wall_start = std::chrono::system_clock::now();
  ctx_.method.assign(head_.method_text);
  ctx_.host.assign(head_.host);
  ctx_.path.assign(head_.path());
  for (const auto& f : head_.fields) {
    if (f.id == http::Field::user_agent) {
      ctx_.user_agent.assign(f.value);
    } else if (f.id == http::Field::unknown && http::iequals(f.name, "x-request-id") &&
               !f.value.empty() && f.value.size() <= 200 && !ctx_.request_id_received) {
      ctx_.request_id.assign(f.value);
      ctx_.request_id_received = true;
    }
  }
  if (!ctx_.request_id_received) worker_.requestIds().next(ctx_.request_id);

  // Route.
  const auto route = snap.router.match(head_.host, head_.path());
  if (!route) {
    stats.reject(stats::Reject::NoRoute);
    const bool close = bodyUnread();
    linger_ = close;
    in_.consume(head_size_);
    const bool ok = co_await reply(http::LocalReply::text(404, "no route for this request"), close);
    complete(false, 0);
    co_return ok && !close && head_.keep_alive;
  }
  ctx_.route_index = *route;
  ctx_.route = &snap.config.routes[*route];
  ctx_.cluster_index = snap.route_cluster[*route];
  ctx_.cluster = &snap.config.clusters[ctx_.cluster_index];
  const std::uint64_t body_limit = ctx_.route->max_body.value_or(listener_.limits.body);
  if (head_.framing == http::Framing::Length && head_.content_length > body_limit) {
    stats.reject(stats::Reject::BodyTooLarge);
    linger_ = true;
    co_await reply(http::LocalReply::text(413, "request body too large", true), true);
    complete(false, 0);
    co_return false;
  }

  // Admission guards, in order; the first local reply wins.
  const auto& guards = snap.route_guards[*route];
  std::size_t admitted = 0;
  for (const auto& guard : guards) {
    auto decision = co_await guard->admit(ctx_);
    if (decision) {
      const bool close = decision->close || bodyUnread();
      linger_ = close;
      in_.consume(head_size_);
      const bool ok = co_await reply(*decision, close);
      complete(false, admitted);
      co_return ok && !close && head_.keep_alive;
    }
    ++admitted;
  }

  // Expect: 100-continue is answered here (and not forwarded): the client sends its body only
  // once a request has passed routing, limits and guards.
  if (head_.expect_continue && in_.size() == head_size_) {
    const auto s = co_await net::writeAll(socket_, deadline_, asio::buffer(k100Continue),
                                          Clock::now() + listener_.timeouts.send);
    if (s != net::IoStatus::Ok) {
      complete(false, admitted);
      co_return false;
    }
  }

  Downstream down{socket_,
                  in_,
                  head_size_,
                  head_,
                  *parser_,
                  deadline_,
                  listener_,
                  body_limit,
                  worker_.drainingFlag(),
                  &response_started_};
  Forwarder forwarder(down, worker_.cluster(ctx_.cluster_index), stats, ctx_, scratch_);
  ForwardResult result = co_await forwarder.run();
  head_size_ = 0;  // the forwarder consumed the head
  bool close = result.client_close;
  reset_ = result.client_timed_out;
  if (result.rejected) stats.reject(*result.rejected);
  if (!response_started_ && result.reply) {
    // The request body may be partly unread: only a fully read body leaves the connection usable.
    close = close || result.reply->close || !forwarder.bodyDone();
    linger_ = close;
    if (!co_await reply(*result.reply, close)) close = true;
  }
  complete(result.upstream_failed, admitted);
  co_return !close && head_.keep_alive && !worker_.draining();
}

asio::awaitable<bool> DownstreamConnection::reply(const http::LocalReply& r, bool close) {
  ctx_.status = r.status;
  if (ctx_.error.empty() && r.status >= 400) ctx_.error = r.body;
  scratch_.response_head.clear();
  const bool client_http10 = parser_ && head_.version < 11;
  http::writeLocalReply(
      scratch_.response_head, r, ctx_.request_id, close || worker_.draining(), client_http10,
      head_.method == http::Verb::head && head_error_ == http::RequestError::None);
  response_started_ = true;
  const auto s = co_await net::writeAll(socket_, deadline_, asio::buffer(scratch_.response_head),
                                        Clock::now() + listener_.timeouts.send);
  if (s == net::IoStatus::Ok) ctx_.bytes_out += scratch_.response_head.size();
  co_return s == net::IoStatus::Ok;
}

void DownstreamConnection::complete(bool upstream_failed, std::size_t guards_admitted) {
  auto& stats = worker_.stats();
  const auto latency = Clock::now() - ctx_.start;
  stats::RouteStats& rs = ctx_.route_index ? stats.routes[*ctx_.route_index] : stats.unrouted;
  rs.by_class[stats::statusClass(ctx_.status)].inc();
  rs.latency.observe(latency);
  if (ctx_.route_index && guards_admitted > 0) {
    const auto& guards = worker_.snapshot().route_guards[*ctx_.route_index];
    const guards::Completion c{ctx_.status, latency, upstream_failed};
    for (std::size_t i = 0; i < guards_admitted; ++i) guards[i]->complete(ctx_, c);
  }
  if (auto* log = worker_.accessLog()) log->write(ctx_, latency);
}

asio::awaitable<void> DownstreamConnection::lingeringClose() {
  // Closing with unread bytes in the receive queue makes the kernel send RST, which can destroy
  // the response we just wrote before the client reads it. Half-close, then read and discard for
  // a bounded time, as nginx's lingering_close does.
  boost::system::error_code ec;
  socket_.shutdown(asio::ip::tcp::socket::shutdown_send, ec);
  if (ec) co_return;
  const auto until = Clock::now() + kLingerTime;
  std::size_t discarded = 0;
  while (discarded < kLingerBytes && Clock::now() < until) {
    in_.consume(in_.size());
    const auto r = co_await net::readSome(socket_, deadline_, in_, until, kReadChunk, 16 * 1024);
    if (r.status != net::IoStatus::Ok) break;
    discarded += r.bytes;
  }
}

}  // namespace sluice::gateway::proxy
