// RedisClient: one pipelined connection to a Redis server, on a thread of its own, for the
// gateway's distributed features (global rate limits: guards/global_limit.h).
//
// Why one shared connection and not one per worker: with permit leasing a worker needs Redis on
// at most a tenth of its requests (docs/distributed.md), so a connection per worker would
// multiply connections (workers x instances, against Redis' maxclients) for no throughput a
// pipelined connection lacks. Why its own thread: a Redis that stalls must never delay a worker
// nor the main loop (health probes, admin); the cost is one cross-thread post each way, paid
// only on the calls that go to Redis.
//
// RESP is not parsed here: hiredis' reply reader (redisReaderFeed / redisReaderGetReply) turns
// the bytes into replies and redisFormatCommandArgv writes commands; Asio does the I/O.
//
// Every call has a deadline (settings.timeout): its callback runs exactly once, with the reply
// or an error, within that time. A reply that comes after its deadline is read and dropped (the
// connection stays in step); a connection with a reply outstanding for max(1 s, 10 x timeout)
// is presumed dead and closed. Lost connections are reopened with exponential backoff and full
// jitter (50 ms to 2 s); each new connection sends AUTH (settings.password, with the username if
// set), SELECT (db != 0) and loads the registered scripts before it takes calls. While it is
// down, calls fail at once (Unavailable).
//
// A circuit breaker (resilience::CircuitBreaker: 10+ calls, 50 % failed or timed out, opens for
// 250 ms doubling to 5 s) guards the calls: while it is open, calls fail at once (Unavailable)
// instead of each waiting out its deadline on a Redis that is failing; the first call after the
// open time is a probe, and the breaker closes when probes succeed. available() says whether the
// connection is up; it does not read the breaker, whose open state ends only when a call asks.
//
// Metrics (read from any thread): sluice_redis_requests_total{op,result},
// sluice_redis_request_duration_seconds{op} (calls that got a reply), sluice_redis_up.
//
// Thread-safety: call(), callScript(), reconfigure(), up() and stats from any thread;
// callbacks run on the client's thread and must not block.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>

#include "gateway/config/config.h"
#include "gateway/redis/redis_reply.h"
#include "gateway/stats/counter.h"
#include "gateway/stats/histogram.h"
#include "resilience/backoff.h"
#include "resilience/circuit_breaker.h"

namespace sluice::gateway::redis {

// What a call is for: the `op` label of its metrics.
enum class Op : std::uint8_t { Setup, Lease, Breaker, Count };
inline constexpr std::array<std::string_view, 3> kOpNames = {"setup", "lease", "breaker"};

enum class CallError : std::uint8_t {
  None,
  Timeout,      // no reply within the deadline
  Unavailable,  // not connected, or the breaker is open: not sent
  Io,           // the connection was lost with the call outstanding
  Server,       // Redis answered with an error reply (the message is in the reply)
  Count
};
inline constexpr std::array<std::string_view, 5> kResultNames = {"ok", "timeout", "unavailable",
                                                                 "io_error", "server_error"};

struct Result {
  CallError error = CallError::None;
  Reply reply;  // set when error is None or Server
  [[nodiscard]] bool ok() const { return error == CallError::None; }
};

struct ClientSettings {
  config::Redis redis;
  std::string password;  // the contents of redis.password_file (trailing newline removed)
  friend bool operator==(const ClientSettings&, const ClientSettings&) = default;
};

// The settings of `redis` with its password_file read (whitespace around the password is not
// part of it); nullopt and `error` when the file cannot be read or is empty.
[[nodiscard]] std::optional<ClientSettings> clientSettings(const config::Redis& redis,
                                                           std::string* error);

class RedisClient {
 public:
  using Callback = std::function<void(Result)>;

  explicit RedisClient(ClientSettings settings);
  ~RedisClient();  // stop()
  // Closes the connection and joins the thread: no callback runs after it returns (calls made
  // later never complete). Idempotent; not from a callback.
  void stop();
  RedisClient(const RedisClient&) = delete;
  RedisClient& operator=(const RedisClient&) = delete;

  // Sends one command (its arguments, binary-safe). `done` runs on the client's thread.
  void call(Op op, std::vector<std::string> args, Callback done);

  // A Lua script every connection loads (SCRIPT LOAD); the id is for callScript(), which may
  // follow at once from any thread.
  [[nodiscard]] std::size_t registerScript(std::string source);
  // EVALSHA of a registered script with `keys` and `args`; if Redis lost the script (NOSCRIPT:
  // a SCRIPT FLUSH, a failover), the call is sent again as EVAL and the script reloaded.
  void callScript(Op op, std::size_t script, std::vector<std::string> keys,
                  std::vector<std::string> args, Callback done);

  // A reload: a new address, credentials or db reconnect; a new timeout applies to new calls.
  void reconfigure(ClientSettings settings);

  // Connected and set up: worth calling (a call may still fail at once if the breaker is open).
  [[nodiscard]] bool up() const noexcept { return up_.load(std::memory_order_acquire); }
  [[nodiscard]] std::chrono::milliseconds timeout() const noexcept {
    return std::chrono::milliseconds(timeout_ms_.load(std::memory_order_relaxed));
  }

  struct Stats {
    std::array<std::array<stats::Counter, kResultNames.size()>, kOpNames.size()> requests;
    std::array<stats::LatencyHistogram, kOpNames.size()> duration;
  };
  [[nodiscard]] const Stats& stats() const noexcept { return stats_; }

 private:
  struct Pending;
  struct Connection;
  struct Script {
    std::string source;
    std::string sha;  // from SCRIPT LOAD on the current connection; empty until then
  };

  // `setup`: a connection's own command (sent before it is ready, not guarded by the breaker).
  // `script`: the registered script an EVALSHA runs (kept for a NOSCRIPT resend), or npos.
  void send(Op op, std::vector<std::string> args, Callback done, bool setup = false,
            std::size_t script = static_cast<std::size_t>(-1));
  void connect();
  void onConnected(const std::shared_ptr<Connection>& c);
  void readLoop(const std::shared_ptr<Connection>& c);
  void flush(const std::shared_ptr<Connection>& c);
  void armDeadline(const std::shared_ptr<Connection>& c);
  void expire(const std::shared_ptr<Connection>& c);
  // By value: callers pass conn_, which it resets.
  void drop(std::shared_ptr<Connection> c, std::string_view why);
  void scheduleReconnect();
  void finish(Pending& p, Result r);

  boost::asio::io_context io_;
  ClientSettings settings_;  // the client's thread only
  std::atomic<std::int64_t> timeout_ms_;
  std::vector<Script> scripts_;  // the client's thread only
  std::atomic<std::size_t> script_count_{0};
  std::shared_ptr<Connection> conn_;  // null while disconnected
  boost::asio::steady_timer reconnect_timer_;
  resilience::Backoff backoff_;
  resilience::CircuitBreaker breaker_;
  std::atomic<bool> up_{false};
  std::atomic<bool> stopping_{false};
  bool logged_down_ = false;
  Stats stats_;
  std::thread thread_;
};

}  // namespace sluice::gateway::redis
