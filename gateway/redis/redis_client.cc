#include "gateway/redis/redis_client.h"

#include <algorithm>
#include <deque>
#include <fstream>
#include <hiredis/hiredis.h>
#include <limits>
#include <sstream>
#include <utility>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/write.hpp>
#include <spdlog/spdlog.h>

#include "gateway/common/random.h"
#include "resilience/clock.h"

namespace sluice::gateway::redis {
namespace {

namespace asio = boost::asio;
using resilience::Clock;
using resilience::TimePoint;
using namespace std::chrono_literals;

constexpr auto kConnectTimeout = 1s;
constexpr std::size_t kNoScript = std::numeric_limits<std::size_t>::max();

resilience::CircuitBreaker::Settings breakerSettings() {
  resilience::CircuitBreaker::Settings s;
  s.window_size = 20;
  s.minimum_calls = 10;
  s.failure_rate_threshold = 50;
  s.open_duration = 250ms;
  s.open_duration_multiplier = 2;
  s.max_open_duration = 5s;
  s.half_open_probes = 3;
  return s;
}

resilience::Backoff::Settings backoffSettings() {
  return {.base = 50ms, .cap = 2s, .multiplier = 2, .jitter = resilience::Jitter::Full};
}

// Nothing outstanding may stay unanswered longer than this: past it the connection is dead.
std::chrono::milliseconds stallLimit(std::chrono::milliseconds timeout) {
  return std::max<std::chrono::milliseconds>(1s, 10 * timeout);
}

}  // namespace

std::optional<ClientSettings> clientSettings(const config::Redis& redis, std::string* error) {
  ClientSettings s{redis, {}};
  if (redis.password_file.empty()) return s;
  std::ifstream in(redis.password_file, std::ios::binary);
  std::ostringstream bytes;
  bytes << in.rdbuf();
  if (!in) {
    *error = redis.password_file + ": cannot read the redis password file";
    return std::nullopt;
  }
  std::string text = bytes.str();
  const auto space = [](unsigned char c) {
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
  };
  while (!text.empty() && space(text.back())) text.pop_back();
  std::size_t begin = 0;
  while (begin < text.size() && space(text[begin])) ++begin;
  text.erase(0, begin);
  if (text.empty()) {
    *error = redis.password_file + ": the redis password file is empty";
    return std::nullopt;
  }
  s.password = std::move(text);
  return s;
}

struct RedisClient::Pending {
  Op op = Op::Setup;
  Callback done;
  TimePoint sent{};
  TimePoint deadline{};
  bool expired = false;  // answered with Timeout; its reply is still to be read and dropped
  resilience::CircuitBreaker::Permit permit;
  // EVALSHA calls: the command, so that a NOSCRIPT answer can resend it as EVAL.
  std::size_t script = kNoScript;
  std::vector<std::string> argv;
};

struct RedisClient::Connection {
  explicit Connection(asio::io_context& io) : socket(io), timer(io), reader(redisReaderCreate()) {}
  ~Connection() { redisReaderFree(reader); }
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;
  Connection(Connection&&) = delete;
  Connection& operator=(Connection&&) = delete;

  asio::ip::tcp::socket socket;
  asio::steady_timer timer;  // the connect timeout, then the earliest deadline
  TimePoint timer_at = TimePoint::max();
  redisReader* reader;
  std::deque<Pending> pending;
  std::string out;      // commands not yet handed to the socket
  std::string writing;  // the write in flight
  bool writing_now = false;
  bool connected = false;  // the TCP connection is up: setup commands may be written
  bool ready = false;      // AUTH, SELECT and scripts done
  bool closed = false;
  std::size_t setup_left = 0;
  std::array<char, std::size_t{16} * 1024> in{};
};

RedisClient::RedisClient(ClientSettings settings)
    : settings_(std::move(settings)),
      timeout_ms_(settings_.redis.timeout.count()),
      reconnect_timer_(io_),
      backoff_(backoffSettings()),
      breaker_(breakerSettings(), Clock::now()) {
  asio::post(io_, [this] { connect(); });
  thread_ = std::thread([this] {
    auto work = asio::make_work_guard(io_);
    // Until stop() stops it.
    io_.run();
  });
}

RedisClient::~RedisClient() {
  try {
    stop();
  } catch (const std::exception& e) {  // joining the thread failed: nothing left to do
    spdlog::error("redis: stopping the client: {}", e.what());
  }
}

void RedisClient::stop() {
  if (stopping_.exchange(true)) return;
  asio::post(io_, [this] {
    reconnect_timer_.cancel();
    if (conn_) drop(conn_, "stopping");
    io_.stop();
  });
  thread_.join();
}

std::size_t RedisClient::registerScript(std::string source) {
  const std::size_t id = script_count_.fetch_add(1);
  asio::post(io_, [this, id, source = std::move(source)]() mutable {
    if (scripts_.size() <= id) scripts_.resize(id + 1);
    scripts_[id].source = std::move(source);
    // A connection already set up (or setting up) learns it now; later ones load it with the
    // rest of their setup.
    if (conn_ && conn_->connected && !conn_->closed) {
      send(
          Op::Setup, {"SCRIPT", "LOAD", scripts_[id].source},
          [this, id](Result r) {
            if (r.ok()) scripts_[id].sha = std::string(r.reply.text());
          },
          true);
    }
  });
  return id;
}

void RedisClient::call(Op op, std::vector<std::string> args, Callback done) {
  asio::post(io_, [this, op, args = std::move(args), done = std::move(done)]() mutable {
    send(op, std::move(args), std::move(done));
  });
}

void RedisClient::callScript(Op op, std::size_t script, std::vector<std::string> keys,
                             std::vector<std::string> args, Callback done) {
  asio::post(io_, [this, op, script, keys = std::move(keys), args = std::move(args),
                   done = std::move(done)]() mutable {
    std::vector<std::string> argv;
    argv.reserve(3 + keys.size() + args.size());
    if (script >= scripts_.size()) {  // not registered: a caller's bug, answered, not thrown
      Pending p;
      p.op = op;
      p.done = std::move(done);
      p.sent = Clock::now();
      finish(p, Result{CallError::Unavailable, {}});
      return;
    }
    const Script& s = scripts_[script];
    const bool by_sha = !s.sha.empty();
    argv.emplace_back(by_sha ? "EVALSHA" : "EVAL");
    argv.push_back(by_sha ? s.sha : s.source);
    argv.push_back(std::to_string(keys.size()));
    for (auto& k : keys) argv.push_back(std::move(k));
    for (auto& a : args) argv.push_back(std::move(a));
    send(op, std::move(argv), std::move(done), false, by_sha ? script : kNoScript);
  });
}

void RedisClient::reconfigure(ClientSettings settings) {
  timeout_ms_.store(settings.redis.timeout.count(), std::memory_order_relaxed);
  asio::post(io_, [this, settings = std::move(settings)]() mutable {
    const bool reconnect = settings.redis.address != settings_.redis.address ||
                           settings.redis.username != settings_.redis.username ||
                           settings.password != settings_.password ||
                           settings.redis.db != settings_.redis.db;
    settings_ = std::move(settings);
    if (reconnect && conn_) {
      backoff_.reset();
      drop(conn_, "its settings changed");
    }
  });
}

void RedisClient::send(Op op, std::vector<std::string> args, Callback done, bool setup,
                       std::size_t script) {
  const TimePoint now = Clock::now();
  Pending p;
  p.op = op;
  p.done = std::move(done);
  p.sent = now;
  const auto& c = conn_;
  if (!c || c->closed || (!c->ready && !setup)) {
    finish(p, Result{CallError::Unavailable, {}});
    return;
  }
  if (!setup) {
    p.permit = breaker_.tryAcquire(now);
    if (!p.permit) {
      finish(p, Result{CallError::Unavailable, {}});
      return;
    }
  }
  std::vector<const char*> argv;
  std::vector<std::size_t> lens;
  argv.reserve(args.size());
  lens.reserve(args.size());
  for (const auto& a : args) {
    argv.push_back(a.data());
    lens.push_back(a.size());
  }
  char* cmd = nullptr;
  const int len =
      redisFormatCommandArgv(&cmd, static_cast<int>(argv.size()), argv.data(), lens.data());
  if (len < 0) {  // out of memory
    finish(p, Result{CallError::Unavailable, {}});
    return;
  }
  c->out.append(cmd, static_cast<std::size_t>(len));
  redisFreeCommand(cmd);
  const std::chrono::milliseconds t = timeout();
  p.deadline = now + (setup ? std::max<std::chrono::milliseconds>(kConnectTimeout, t) : t);
  p.script = script;
  if (script != kNoScript) p.argv = std::move(args);
  c->pending.push_back(std::move(p));
  if (c->pending.back().deadline < c->timer_at) armDeadline(c);
  flush(c);
}

void RedisClient::finish(Pending& p, Result r) {
  const auto op = static_cast<std::size_t>(p.op);
  stats_.requests[op][static_cast<std::size_t>(r.error)].inc();
  const auto took = Clock::now() - p.sent;
  switch (r.error) {
    case CallError::None:
    case CallError::Server:
      stats_.duration[op].observe(took);
      if (p.permit) p.permit.success(took);
      break;
    case CallError::Timeout:
    case CallError::Io:
      if (p.permit) p.permit.failure(took);
      break;
    case CallError::Unavailable:
    case CallError::Count:
      p.permit.release();
      break;
  }
  if (auto done = std::exchange(p.done, nullptr)) {
    try {
      done(std::move(r));
    } catch (const std::exception& e) {
      spdlog::error("redis: a callback threw: {}", e.what());
    }
  }
}

void RedisClient::connect() {
  if (stopping_.load()) return;
  auto c = std::make_shared<Connection>(io_);
  conn_ = c;
  boost::system::error_code ec;
  const auto ip = asio::ip::make_address(settings_.redis.address.ip, ec);
  if (ec) {
    drop(c, "bad address: " + ec.message());
    return;
  }
  c->timer.expires_after(kConnectTimeout);
  c->timer_at = Clock::now() + kConnectTimeout;
  c->timer.async_wait([c](boost::system::error_code e) {
    if (!e && !c->ready) c->socket.close();
  });
  c->socket.async_connect(
      {ip, settings_.redis.address.port}, [this, c](boost::system::error_code e) {
        if (c->closed) return;
        if (e) {
          drop(c, e == asio::error::operation_aborted ? "connect timed out" : e.message());
          return;
        }
        onConnected(c);
      });
}

void RedisClient::onConnected(const std::shared_ptr<Connection>& c) {
  c->connected = true;
  boost::system::error_code ignored;
  c->socket.set_option(asio::ip::tcp::no_delay(true), ignored);
  readLoop(c);
  const auto step = [this, c](std::string what) {
    return [this, c, what = std::move(what)](Result r) {
      if (c->closed) return;
      if (!r.ok()) {
        drop(c, what + " failed: " +
                    std::string(r.error == CallError::Server
                                    ? r.reply.text()
                                    : kResultNames[static_cast<std::size_t>(r.error)]));
        return;
      }
      if (--c->setup_left > 0) return;
      c->ready = true;
      c->timer_at = TimePoint::max();
      c->timer.cancel();
      armDeadline(c);
      backoff_.reset();
      up_.store(true, std::memory_order_release);
      logged_down_ = false;
      spdlog::info("redis {}: connected", settings_.redis.address.text());
    };
  };
  std::vector<std::pair<std::vector<std::string>, Callback>> setup;
  if (!settings_.password.empty()) {
    std::vector<std::string> auth{"AUTH"};
    if (!settings_.redis.username.empty()) auth.push_back(settings_.redis.username);
    auth.push_back(settings_.password);
    setup.emplace_back(std::move(auth), step("AUTH"));
  }
  if (settings_.redis.db != 0) {
    setup.emplace_back(std::vector<std::string>{"SELECT", std::to_string(settings_.redis.db)},
                       step("SELECT"));
  }
  // NOLINTNEXTLINE(modernize-loop-convert): the index is captured
  for (std::size_t i = 0; i < scripts_.size(); ++i) {
    auto done = step("SCRIPT LOAD");
    setup.emplace_back(std::vector<std::string>{"SCRIPT", "LOAD", scripts_[i].source},
                       [this, i, done = std::move(done)](Result r) mutable {
                         if (r.ok()) scripts_[i].sha = std::string(r.reply.text());
                         done(std::move(r));
                       });
  }
  setup.emplace_back(std::vector<std::string>{"PING"}, step("PING"));
  c->setup_left = setup.size();
  for (auto& [args, done] : setup) send(Op::Setup, std::move(args), std::move(done), true);
}

void RedisClient::readLoop(const std::shared_ptr<Connection>& c) {
  c->socket.async_read_some(asio::buffer(c->in), [this, c](boost::system::error_code ec,
                                                           std::size_t n) {
    if (c->closed) return;
    if (ec) {
      drop(c, ec == asio::error::eof ? "closed by the server" : ec.message());
      return;
    }
    if (redisReaderFeed(c->reader, c->in.data(), n) != REDIS_OK) {
      drop(c, "protocol error");
      return;
    }
    for (;;) {
      void* raw = nullptr;
      if (redisReaderGetReply(c->reader, &raw) != REDIS_OK) {
        drop(c, std::string("protocol error: ") + static_cast<const char*>(c->reader->errstr));
        return;
      }
      if (raw == nullptr) break;
      Reply reply(raw);
      if (c->pending.empty()) {
        drop(c, "a reply to no command");
        return;
      }
      Pending p = std::move(c->pending.front());
      c->pending.pop_front();
      if (p.expired) continue;
      if (reply.isError() && p.script != kNoScript && reply.text().starts_with("NOSCRIPT")) {
        // The server lost the script: this call again as EVAL, and the script reloaded.
        const std::size_t id = p.script;
        scripts_[id].sha.clear();
        p.argv[0] = "EVAL";
        p.argv[1] = scripts_[id].source;
        send(
            Op::Setup, {"SCRIPT", "LOAD", scripts_[id].source},
            [this, id](Result r) {
              if (r.ok()) scripts_[id].sha = std::string(r.reply.text());
            },
            true);
        const auto deadline = p.deadline;
        auto permit = std::move(p.permit);
        send(p.op, std::move(p.argv), std::move(p.done), true);
        if (!c->pending.empty()) {
          c->pending.back().deadline = deadline;
          c->pending.back().permit = std::move(permit);
        }
        continue;
      }
      finish(p, Result{reply.isError() ? CallError::Server : CallError::None, std::move(reply)});
      if (c->closed) return;  // a callback's setup step dropped it
    }
    armDeadline(c);
    readLoop(c);
  });
}

void RedisClient::flush(const std::shared_ptr<Connection>& c) {
  if (c->writing_now || c->out.empty() || c->closed) return;
  c->writing.swap(c->out);
  c->out.clear();
  c->writing_now = true;
  asio::async_write(c->socket, asio::buffer(c->writing),
                    [this, c](boost::system::error_code ec, std::size_t /*n*/) {
                      c->writing_now = false;
                      c->writing.clear();
                      if (c->closed) return;
                      if (ec) {
                        drop(c, ec.message());
                        return;
                      }
                      flush(c);
                    });
}

// The timer wakes at the earliest deadline of a call still waiting - over the whole queue:
// deadlines are not in queue order (a setup command's is longer; a reload may shorten the
// timeout) - or when the oldest command without a reply reaches the stall limit.
void RedisClient::armDeadline(const std::shared_ptr<Connection>& c) {
  if (c->closed) return;
  TimePoint at = TimePoint::max();
  for (const auto& p : c->pending) {
    if (!p.expired) at = std::min(at, p.deadline);
  }
  if (!c->pending.empty()) at = std::min(at, c->pending.front().sent + stallLimit(timeout()));
  if (at == c->timer_at) return;
  c->timer_at = at;
  if (at == TimePoint::max()) {
    c->timer.cancel();
    return;
  }
  c->timer.expires_at(at);
  c->timer.async_wait([this, c, at](boost::system::error_code ec) {
    if (ec || c->closed || c->timer_at != at) return;
    c->timer_at = TimePoint::max();
    expire(c);
  });
}

void RedisClient::expire(const std::shared_ptr<Connection>& c) {
  const TimePoint now = Clock::now();
  // By index: a callback may queue a command (never synchronously today, but cheap to allow).
  for (std::size_t i = 0; i < c->pending.size(); ++i) {
    Pending& p = c->pending[i];
    if (p.expired || p.deadline > now) continue;
    p.expired = true;
    finish(p, Result{CallError::Timeout, {}});
    if (c->closed) return;
  }
  if (!c->pending.empty() && now - c->pending.front().sent >= stallLimit(timeout())) {
    drop(c, "no reply for " + std::to_string(stallLimit(timeout()).count()) + " ms");
    return;
  }
  armDeadline(c);
}

// NOLINTNEXTLINE(performance-unnecessary-value-param): callers pass conn_, reset in here
void RedisClient::drop(std::shared_ptr<Connection> c, std::string_view why) {
  if (c->closed) return;
  c->closed = true;
  boost::system::error_code ignored;
  c->socket.close(ignored);
  c->timer.cancel();
  const bool current = c == conn_;
  if (current) {
    conn_.reset();
    const bool was_up = up_.exchange(false, std::memory_order_acq_rel);
    if (!stopping_.load() && (was_up || !logged_down_)) {
      spdlog::warn("redis {}: {}{}", settings_.redis.address.text(), why,
                   was_up ? "; reconnecting" : "; retrying");
      logged_down_ = true;
    }
  }
  auto pending = std::move(c->pending);
  c->pending.clear();
  for (auto& p : pending) {
    if (!p.expired) finish(p, Result{CallError::Io, {}});
  }
  if (current) scheduleReconnect();
}

void RedisClient::scheduleReconnect() {
  if (stopping_.load()) return;
  reconnect_timer_.expires_after(backoff_.next(uniformUnit()));
  reconnect_timer_.async_wait([this](boost::system::error_code ec) {
    if (!ec && !conn_) connect();
  });
}

}  // namespace sluice::gateway::redis
