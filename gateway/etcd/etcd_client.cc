#include "gateway/etcd/etcd_client.h"

#include <algorithm>
#include <cstdio>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <optional>
#include <sys/socket.h>
#include <utility>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>
#include <spdlog/spdlog.h>

#include "gateway/common/random.h"
#include "gateway/etcd/json_stream.h"
#include "resilience/backoff.h"
#include "resilience/clock.h"

namespace sluice::gateway::etcd {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using resilience::Clock;
using resilience::TimePoint;
using namespace std::chrono_literals;

constexpr auto kNoThrow = asio::as_tuple(asio::use_awaitable);
// A response larger than this is not etcd's (a range over a huge prefix would need a limit).
constexpr std::uint64_t kMaxBody = 64ULL * 1024 * 1024;

resilience::Backoff::Settings backoffSettings() {
  return {.base = 50ms, .cap = 2s, .multiplier = 2, .jitter = resilience::Jitter::Full};
}

// A watch stream is quiet while nothing changes, so only the kernel can tell a peer that
// vanished without a FIN or RST: probe after 10 s idle, every 5 s, give up after 2 misses.
void enableKeepAlive(beast::tcp_stream& stream) {
  boost::system::error_code ignored;
  stream.socket().set_option(asio::socket_base::keep_alive(true), ignored);
  const int fd = stream.socket().native_handle();
  const int idle = 10;
  const int interval = 5;
  const int count = 2;
  ::setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof idle);
  ::setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &interval, sizeof interval);
  ::setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &count, sizeof count);
}

Status transportError(const boost::system::error_code& ec, std::string_view during) {
  if (ec == beast::error::timeout) {
    return {ErrorCode::Timeout, 0, std::string(during) + " timed out"};
  }
  return {ErrorCode::Unavailable, 0, std::string(during) + ": " + ec.message()};
}

http::request<http::string_body> post(const config::Address& endpoint, std::string_view path,
                                      std::string body) {
  http::request<http::string_body> req{http::verb::post, path, 11};
  req.set(http::field::host, endpoint.text());
  req.set(http::field::content_type, "application/json");
  req.body() = std::move(body);
  req.prepare_payload();
  return req;
}

// Runs a user callback; one that throws is logged, never allowed to unwind the client's loop.
template <typename F, typename... Args>
void safeCall(const F& f, Args&&... args) {
  if (!f) return;
  try {
    f(std::forward<Args>(args)...);
  } catch (const std::exception& e) {
    spdlog::error("etcd: a callback threw: {}", e.what());
  }
}

}  // namespace

struct Subscription::State {
  std::atomic<bool> cancelled{false};
  std::atomic<bool> ended{false};  // the watch relisted or the lease was lost
  // What cancel() interrupts (client's thread only): the open stream, the wait between tries.
  beast::tcp_stream* stream = nullptr;
  asio::steady_timer* timer = nullptr;
};

struct EtcdClient::Answer {
  Status status;  // ok: etcd answered (below 500); the body says with what
  std::string body;
};

struct EtcdClient::Exchange {
  Status status;  // the transport's: connect, write, read
  unsigned http_status = 0;
  std::string body;
};

// --- Subscription ---------------------------------------------------------------------------

Subscription::Subscription(Subscription&& other) noexcept
    : client_(std::exchange(other.client_, nullptr)), state_(std::move(other.state_)) {}

Subscription& Subscription::operator=(Subscription&& other) noexcept {
  if (this != &other) {
    cancel();
    client_ = std::exchange(other.client_, nullptr);
    state_ = std::move(other.state_);
  }
  return *this;
}

void Subscription::cancel() {
  if (!state_) return;
  state_->cancelled.store(true, std::memory_order_release);
  if (client_ != nullptr) client_->cancel(state_);
  state_.reset();
  client_ = nullptr;
}

bool Subscription::active() const noexcept {
  return state_ && !state_->cancelled.load(std::memory_order_acquire) &&
         !state_->ended.load(std::memory_order_acquire);
}

// --- EtcdClient -------------------------------------------------------------------------------

EtcdClient::EtcdClient(ClientSettings settings) : settings_(std::move(settings)) {
  thread_ = std::thread([this] {
    auto work = asio::make_work_guard(io_);
    // Until stop() stops it.
    io_.run();
  });
}

EtcdClient::~EtcdClient() {
  try {
    stop();
  } catch (const std::exception& e) {  // join() failing: nothing left to do but say so
    std::fprintf(stderr, "etcd: stopping the client failed: %s\n", e.what());
  }
}

void EtcdClient::stop() {
  if (stopping_.exchange(true)) return;
  // Out of memory for the post: stop without the tidy-up (the coroutines go with io_ anyway).
  const auto tidy_up = [this] {
    for (auto& [raw, state] : running_) {
      state->cancelled.store(true, std::memory_order_release);
      if (state->stream != nullptr) state->stream->cancel();
      if (state->timer != nullptr) state->timer->cancel();
    }
    running_.clear();
    // Coroutines still suspended (requests in flight) are destroyed with io_, never resumed:
    // no callback runs after stop().
    io_.stop();
  };
  try {
    asio::post(io_, tidy_up);
  } catch (const std::bad_alloc&) {
    io_.stop();
  }
  thread_.join();
}

void EtcdClient::cancel(const std::shared_ptr<Subscription::State>& state) noexcept {
  try {
    asio::post(io_, [this, state] {
      if (state->stream != nullptr) state->stream->cancel();
      if (state->timer != nullptr) state->timer->cancel();
      running_.erase(state.get());
    });
  } catch (const std::bad_alloc&) {
    // The flag is set: the coroutine stops when its stream or timer next wakes it, and stop()
    // ends it in any case.
  }
}

void EtcdClient::count(Op op, const Status& status, std::chrono::steady_clock::duration took) {
  const auto o = static_cast<std::size_t>(op);
  stats_.requests[o][static_cast<std::size_t>(status.code)].inc();
  if (status.ok() || status.code == ErrorCode::Server) stats_.duration[o].observe(took);
}

asio::awaitable<EtcdClient::Exchange> EtcdClient::exchange(const config::Address& endpoint,
                                                           const std::string& path,
                                                           const std::string& body,
                                                           TimePoint deadline) {
  Exchange out;
  boost::system::error_code ec;
  const auto ip = asio::ip::make_address(endpoint.ip, ec);
  if (ec) {
    out.status = {ErrorCode::Unavailable, 0, "not an IP address: " + endpoint.ip};
    co_return out;
  }
  beast::tcp_stream stream(io_);
  stream.expires_at(deadline);
  if (auto [e] = co_await stream.async_connect({ip, endpoint.port}, kNoThrow); e) {
    out.status = transportError(e, "connect");
    co_return out;
  }
  auto req = post(endpoint, path, body);
  req.keep_alive(false);
  if (auto [e, n] = co_await http::async_write(stream, req, kNoThrow); e) {
    out.status = transportError(e, "send");
    co_return out;
  }
  beast::flat_buffer buffer;
  http::response_parser<http::string_body> parser;
  parser.body_limit(kMaxBody);
  if (auto [e, n] = co_await http::async_read(stream, buffer, parser, kNoThrow); e) {
    out.status = transportError(e, "read");
    co_return out;
  }
  out.http_status = parser.get().result_int();
  out.body = std::move(parser.get().body());
  boost::system::error_code ignored;
  stream.socket().shutdown(asio::ip::tcp::socket::shutdown_both, ignored);
  co_return out;
}

asio::awaitable<EtcdClient::Answer> EtcdClient::call(Op op, std::string path, std::string body) {
  const auto& endpoints = settings_.endpoints;
  const std::size_t n = endpoints.size();
  Answer last{{ErrorCode::Unavailable, 0, "no etcd endpoints configured"}, {}};
  const TimePoint deadline = Clock::now() + settings_.timeout;
  const std::size_t first = preferred_;
  for (std::size_t i = 0; i < n; ++i) {
    const std::size_t idx = (first + i) % n;
    const TimePoint now = Clock::now();
    if (now >= deadline || stopping_.load()) {
      last.status = {ErrorCode::Timeout, 0, "no time left for another endpoint"};
      break;
    }
    // An equal share of what is left for each endpoint still to try: one that blackholes
    // cannot eat the whole deadline of a request another member could answer.
    const TimePoint attempt_deadline =
        now + (deadline - now) / static_cast<std::chrono::steady_clock::rep>(n - i);
    Exchange ex = co_await exchange(endpoints[idx], path, body, attempt_deadline);
    if (ex.status.ok() && ex.http_status < 500) {
      preferred_ = idx;
      if (!up_.exchange(true, std::memory_order_acq_rel)) {
        spdlog::info("etcd {}: reachable", endpoints[idx].text());
        logged_down_ = false;
      }
      co_return Answer{{}, std::move(ex.body)};
    }
    if (ex.status.ok()) {
      // A 5xx: etcd's own error (no leader, a timeout inside raft) or something in front of it.
      const Result<Empty> parsed = parseEmpty(ex.body);
      last.status =
          parsed.status.code == ErrorCode::Server
              ? parsed.status
              : Status{ErrorCode::Unavailable, 0, "HTTP " + std::to_string(ex.http_status)};
    } else {
      last.status = std::move(ex.status);
    }
    spdlog::debug("etcd {}: {} {}; trying the next endpoint", endpoints[idx].text(),
                  kOpNames[static_cast<std::size_t>(op)], last.status.message);
  }
  if (up_.exchange(false, std::memory_order_acq_rel) || !logged_down_) {
    if (!stopping_.load()) spdlog::warn("etcd: no endpoint answered: {}", last.status.message);
    logged_down_ = true;
  }
  co_return last;
}

// One request end to end, as a coroutine of its own: parameters by value live in its frame.
template <typename T>
asio::awaitable<void> EtcdClient::runUnary(Op op, const char* path, std::string body,
                                           Result<T> (*parse)(std::string_view), Callback<T> done) {
  const TimePoint start = Clock::now();
  // NOLINTNEXTLINE(bugprone-use-after-move): no loop here; the check misreads the coroutine
  Answer answer = co_await call(op, path, std::move(body));
  Result<T> r;
  if (answer.status.ok()) {
    r = parse(answer.body);
  } else {
    r.status = std::move(answer.status);
  }
  count(op, r.status, Clock::now() - start);
  safeCall(done, std::move(r));
}

template <typename T>
void EtcdClient::unary(Op op, const char* path, std::string body,
                       Result<T> (*parse)(std::string_view), Callback<T> done) {
  asio::co_spawn(io_, runUnary<T>(op, path, std::move(body), parse, std::move(done)),
                 asio::detached);
}

void EtcdClient::range(const KeyRange& range, Callback<RangeResponse> done, std::int64_t revision,
                       std::int64_t limit) {
  unary<RangeResponse>(Op::Range, "/v3/kv/range", rangeRequest(range, revision, limit), &parseRange,
                       std::move(done));
}

Result<RangeResponse> EtcdClient::rangeAndWait(const KeyRange& range) {
  auto answer = std::make_shared<std::promise<Result<RangeResponse>>>();
  auto future = answer->get_future();
  this->range(range, [answer](Result<RangeResponse> r) { answer->set_value(std::move(r)); });
  // The callback runs within the deadline; the margin covers a busy client thread.
  if (future.wait_for(settings_.timeout + std::chrono::seconds(1)) != std::future_status::ready) {
    return {{ErrorCode::Timeout, 0, "no answer from etcd in time"}, {}};
  }
  return future.get();
}

void EtcdClient::put(std::string_view key, std::string_view value, Callback<PutResponse> done,
                     std::int64_t lease) {
  unary<PutResponse>(Op::Put, "/v3/kv/put", putRequest(key, value, lease), &parsePut,
                     std::move(done));
}

void EtcdClient::deleteRange(const KeyRange& range, Callback<DeleteResponse> done) {
  unary<DeleteResponse>(Op::Delete, "/v3/kv/deleterange", deleteRequest(range), &parseDelete,
                        std::move(done));
}

void EtcdClient::leaseGrant(std::chrono::seconds ttl, Callback<LeaseGrant> done) {
  unary<LeaseGrant>(Op::LeaseGrant, "/v3/lease/grant", leaseGrantRequest(ttl), &parseLeaseGrant,
                    std::move(done));
}

void EtcdClient::leaseKeepAlive(std::int64_t id, Callback<LeaseKeepAliveResponse> done) {
  unary<LeaseKeepAliveResponse>(Op::LeaseKeepAlive, "/v3/lease/keepalive", leaseIdRequest(id),
                                &parseLeaseKeepAlive, std::move(done));
}

void EtcdClient::leaseRevoke(std::int64_t id, Callback<Empty> done) {
  unary<Empty>(Op::LeaseRevoke, "/v3/lease/revoke", leaseIdRequest(id), &parseEmpty,
               std::move(done));
}

void EtcdClient::compact(std::int64_t revision, Callback<Empty> done) {
  unary<Empty>(Op::Compact, "/v3/kv/compaction", compactRequest(revision), &parseEmpty,
               std::move(done));
}

// --- Watches ----------------------------------------------------------------------------------

enum class EtcdClient::StreamEnd : std::uint8_t {
  Failed,  // no watch was created on this endpoint: try the next one
  Broken,  // the watch ran, then its stream was lost: open it again from `next`
  Ended,   // cancelled, or a relist was delivered: stop
};

Subscription EtcdClient::watch(KeyRange range, std::int64_t start_revision,
                               std::function<void(const WatchUpdate&)> changed) {
  auto state = std::make_shared<Subscription::State>();
  asio::co_spawn(io_, runWatch(state, std::move(range), start_revision, std::move(changed)),
                 asio::detached);
  return {this, state};
}

asio::awaitable<void> EtcdClient::runWatch(std::shared_ptr<Subscription::State> w, KeyRange range,
                                           std::int64_t next_revision,
                                           std::function<void(const WatchUpdate&)> changed) {
  running_.emplace(w.get(), w);
  resilience::Backoff backoff(backoffSettings());
  asio::steady_timer timer(io_);
  const std::size_t n = settings_.endpoints.size();
  std::size_t idx = preferred_;
  std::size_t failed_in_row = 0;
  while (!w->cancelled.load(std::memory_order_acquire) && !stopping_.load() && n > 0) {
    const StreamEnd end = co_await watchOnce(w, idx, range, next_revision, changed, backoff);
    if (end == StreamEnd::Ended) break;
    if (end == StreamEnd::Failed) {
      ++failed_in_row;
      idx = (idx + 1) % n;
      // Between endpoints of one round there is no wait: the next member may well answer.
      if (failed_in_row < n) continue;
      if (up_.exchange(false, std::memory_order_acq_rel) || !logged_down_) {
        if (!stopping_.load()) spdlog::warn("etcd: no endpoint accepts a watch; retrying");
        logged_down_ = true;
      }
    }
    // A broken stream reopens on the same endpoint first (after a short jittered pause, so that
    // a server that drops every stream at once is not hammered); a failed round backs off.
    failed_in_row = 0;
    if (w->cancelled.load(std::memory_order_acquire)) break;
    timer.expires_after(backoff.next(uniformUnit()));
    w->timer = &timer;
    co_await timer.async_wait(kNoThrow);
    w->timer = nullptr;
  }
  w->ended.store(true, std::memory_order_release);
  running_.erase(w.get());
}

asio::awaitable<EtcdClient::StreamEnd> EtcdClient::watchOnce(
    std::shared_ptr<Subscription::State> w, std::size_t endpoint, const KeyRange& range,
    std::int64_t& next, const std::function<void(const WatchUpdate&)>& changed,
    resilience::Backoff& backoff) {
  const config::Address& ep = settings_.endpoints[endpoint];
  const TimePoint start = Clock::now();
  bool created = false;
  const auto fail = [&](const Status& s) {
    if (!created) count(Op::Watch, s, Clock::now() - start);
    if (!stopping_.load() && !w->cancelled.load()) {
      spdlog::log(created ? spdlog::level::warn : spdlog::level::debug, "etcd {}: watch {}: {}",
                  ep.text(), created ? "lost" : "not opened", s.message);
    }
    return created ? StreamEnd::Broken : StreamEnd::Failed;
  };
  boost::system::error_code ec;
  const auto ip = asio::ip::make_address(ep.ip, ec);
  if (ec) co_return fail({ErrorCode::Unavailable, 0, "not an IP address: " + ep.ip});

  beast::tcp_stream stream(io_);
  // Registered for cancel(); cleared on every way out (the frame holds `w` alive meanwhile).
  w->stream = &stream;
  struct Unregister {
    explicit Unregister(Subscription::State* s) : state(s) {}
    Unregister(const Unregister&) = delete;
    Unregister& operator=(const Unregister&) = delete;
    Unregister(Unregister&&) = delete;
    Unregister& operator=(Unregister&&) = delete;
    ~Unregister() { state->stream = nullptr; }
    Subscription::State* state;
  } unregister(w.get());

  stream.expires_after(settings_.timeout);
  if (auto [e] = co_await stream.async_connect({ip, ep.port}, kNoThrow); e) {
    co_return fail(transportError(e, "connect"));
  }
  // Resume from the revision after the last one delivered: nothing missed, nothing repeated.
  auto req = post(ep, "/v3/watch", watchRequest(range, next));
  // clientv3's WithRequireLeader, through the gateway's metadata headers: a member cut off from
  // its leader ends the stream (instead of serving a watch that can see no new writes), and we
  // fail over to another member.
  req.set("Grpc-Metadata-hasleader", "true");
  if (auto [e, n] = co_await http::async_write(stream, req, kNoThrow); e) {
    co_return fail(transportError(e, "send"));
  }
  beast::flat_buffer buffer;
  http::response_parser<http::string_body> parser;
  parser.body_limit(boost::none);  // the stream has no end; JsonStream bounds each message
  JsonStream messages;
  // The parser keeps a reference to the callback: it lives in this frame as long as the parser.
  auto on_body = [&messages](std::uint64_t /*remain*/, std::string_view body,
                             boost::system::error_code& /*ec*/) {
    messages.feed(body);
    return body.size();
  };
  parser.on_chunk_body(on_body);
  if (auto [e, n] = co_await http::async_read_header(stream, buffer, parser, kNoThrow); e) {
    co_return fail(transportError(e, "read"));
  }
  if (parser.get().result_int() != 200) {
    co_return fail(
        {ErrorCode::Unavailable, 0, "HTTP " + std::to_string(parser.get().result_int())});
  }
  for (;;) {
    auto [e, n] = co_await http::async_read_some(stream, buffer, parser, kNoThrow);
    if (w->cancelled.load(std::memory_order_acquire) || stopping_.load()) {
      co_return StreamEnd::Ended;
    }
    while (auto object = messages.next()) {
      const Result<WatchMessage> m = parseWatchMessage(*object);
      if (!m.ok()) co_return fail(m.status);
      const WatchMessage& msg = m.value;
      if (msg.created && !created) {
        created = true;
        // Open until the server or cancel() closes it; TCP keep-alive notices a vanished peer.
        stream.expires_never();
        enableKeepAlive(stream);
        count(Op::Watch, {}, Clock::now() - start);
        preferred_ = endpoint;
        backoff.reset();
        if (!up_.exchange(true, std::memory_order_acq_rel)) {
          spdlog::info("etcd {}: reachable", ep.text());
          logged_down_ = false;
        }
        // "From now" becomes a definite revision, so that a reconnect resumes from it.
        if (next <= 0) next = msg.revision + 1;
      }
      if (msg.canceled) {
        if (msg.compact_revision > 0 || msg.cancel_reason.find("compacted") != std::string::npos) {
          WatchUpdate relist;
          relist.relist = true;
          relist.revision = msg.revision;
          relist.compact_revision = msg.compact_revision;
          if (!w->cancelled.load(std::memory_order_acquire)) safeCall(changed, relist);
          co_return StreamEnd::Ended;
        }
        co_return fail({ErrorCode::Server, 0, "watch cancelled by etcd: " + msg.cancel_reason});
      }
      if (msg.events.empty()) continue;  // the creation, or a progress notification
      next = msg.events.back().kv.mod_revision + 1;
      if (w->cancelled.load(std::memory_order_acquire)) co_return StreamEnd::Ended;
      WatchUpdate update;
      update.events = msg.events;
      update.revision = msg.revision;
      safeCall(changed, update);
    }
    if (messages.failed()) co_return fail({ErrorCode::BadResponse, 0, "unframed watch stream"});
    if (e) co_return fail(transportError(e, "watch stream"));
    if (parser.is_done()) co_return fail({ErrorCode::Unavailable, 0, "watch stream ended"});
  }
}

// --- Keep-alives ------------------------------------------------------------------------------

Subscription EtcdClient::keepAlive(std::int64_t id, std::chrono::seconds ttl,
                                   std::function<void(const Status&)> lost) {
  auto state = std::make_shared<Subscription::State>();
  asio::co_spawn(io_, runKeepAlive(state, id, ttl, std::move(lost)), asio::detached);
  return {this, state};
}

asio::awaitable<void> EtcdClient::runKeepAlive(std::shared_ptr<Subscription::State> k,
                                               std::int64_t id, std::chrono::seconds ttl,
                                               std::function<void(const Status&)> lost) {
  running_.emplace(k.get(), k);
  resilience::Backoff backoff(backoffSettings());
  asio::steady_timer timer(io_);
  // A third of the TTL leaves two more tries before the lease runs out.
  const auto interval =
      std::max<Clock::duration>(std::chrono::duration_cast<Clock::duration>(ttl) / 3, 100ms);
  TimePoint expires = Clock::now() + ttl;  // the lease is taken as fresh when we start
  const auto cancelled = [&] {
    return k->cancelled.load(std::memory_order_acquire) || stopping_.load();
  };
  std::optional<Status> gone;
  while (!cancelled()) {
    const TimePoint sent = Clock::now();
    Answer answer = co_await call(Op::LeaseKeepAlive, "/v3/lease/keepalive", leaseIdRequest(id));
    Result<LeaseKeepAliveResponse> r;
    if (answer.status.ok()) {
      r = parseLeaseKeepAlive(answer.body);
    } else {
      r.status = std::move(answer.status);
    }
    count(Op::LeaseKeepAlive, r.status, Clock::now() - sent);
    if (cancelled()) break;
    Clock::duration wait = interval;
    const TimePoint now = Clock::now();
    if (r.ok() && r.value.ttl <= std::chrono::seconds::zero()) {
      gone = Status{ErrorCode::Server, kGrpcNotFound, "the lease expired or was revoked"};
    } else if (r.ok()) {
      // The server's clock started the new TTL when it got the renewal, after `sent`.
      expires = sent + r.value.ttl;
      backoff.reset();
    } else if (r.status.code == ErrorCode::Server && r.status.grpc_code == kGrpcNotFound) {
      gone = r.status;
    } else if (now >= expires) {
      gone = Status{r.status.code, r.status.grpc_code,
                    "no renewal within the lease's TTL: " + r.status.message};
    } else {
      wait = std::min<Clock::duration>(backoff.next(uniformUnit()), expires - now);
    }
    if (gone) {
      spdlog::warn("etcd: lease {:x} lost: {}", id, gone->message);
      k->ended.store(true, std::memory_order_release);
      safeCall(lost, *gone);
      break;
    }
    timer.expires_after(wait);
    k->timer = &timer;
    co_await timer.async_wait(kNoThrow);
    k->timer = nullptr;
  }
  k->ended.store(true, std::memory_order_release);
  running_.erase(k.get());
}

}  // namespace sluice::gateway::etcd
