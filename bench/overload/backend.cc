// A capacity-limited HTTP/1.1 service for the overload benchmark (docs/overload.md).
//
// It behaves like a thread-pool service: `workers` requests are served at once, each holding its
// worker for the service time (a timer, not CPU, so that one thread can play many workers and the
// box's two cores stay free for the proxy and the load), and the rest wait in a FIFO queue of at
// most `queue` entries; beyond that a request is refused at once with 503. So the capacity is
// exactly workers / service time, and latency grows with load as it does in a real service.
//
// A client that goes away (EOF or reset on its connection) while its request waits or is served
// releases its place by default (`--abort cancel`), as a service with request-scoped
// cancellation does (Go's request context, a servlet container's async timeout). With
// `--abort ignore` the work is done anyway, as a naive thread pool does. The difference is what
// a proxy that drops abandoned upstream requests saves its backend.
//
// Failure modes switch at run time, without signals:
//   POST /_control?error_rate=0.3&error_status=500   a share of requests fails (after service)
//   POST /_control?slowdown=10                        service time x10
//   POST /_control?stall=1                            workers hold requests until stall=0
//   POST /_control?service_ms=10&workers=4&queue=1000&reset=1
// and GET /_stats returns counters and the queue over time (one sample every 50 ms) as JSON.
// GET /healthz answers at once, beside the workers (a health endpoint that does not see the
// overload, as most do: what outlier detection is for).
//
//   overload_backend [--port 19080] [--workers 4] [--service-ms 10] [--queue 1000] ...
#include <algorithm>
#include <array>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <limits>
#include <memory>
#include <random>
#include <string>
#include <string_view>
#include <sys/socket.h>
#include <vector>

#include <boost/asio.hpp>

#include "http_head.h"

namespace asio = boost::asio;
using asio::ip::tcp;

namespace {

// As the gateway awaits I/O (gateway/net/socket_io.h): errors as values, and no extra coroutine
// frame per operation, which use_awaitable would allocate.
constexpr auto kAwait = asio::as_tuple(asio::deferred);
constexpr auto kBackendSampleEvery = std::chrono::milliseconds(50);
constexpr std::size_t kMaxSamples = 200'000;  // ~2.8 h at one sample per 50 ms

struct Settings {
  std::string address = "127.0.0.1";
  int port = 19080;
  int workers = 4;
  double service_ms = 10;
  double jitter = 0;  // service time drawn uniformly in [1 - jitter, 1 + jitter] x service_ms
  std::size_t queue = 1000;
  double error_rate = 0;
  int error_status = 500;
  double slowdown = 1;
  bool stall = false;
  bool cancel_on_abort = true;
  std::size_t body = 100;
  std::uint64_t seed = 1;
};

// One request that wants a worker. Its timer is what the request's coroutine sleeps on, whether it
// waits in the queue, stalls or is being served; whoever changes its fate (a freed worker, the
// client leaving, the end of a stall) cancels the timer to wake it.
struct Ticket {
  explicit Ticket(const asio::any_io_executor& ex) : timer(ex) {}
  asio::steady_timer timer;
  bool granted = false;    // holds a worker
  bool abandoned = false;  // its client left
  bool done = false;       // answered: the abort watcher must leave the socket alone
};
using TicketPtr = std::shared_ptr<Ticket>;

struct Sample {
  std::int64_t unix_ms;
  std::size_t queue;
  int busy;
  std::uint64_t received, ok, errors, rejected, abandoned;
};

std::int64_t unixMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string_view queryValue(std::string_view query, std::string_view key) {
  while (!query.empty()) {
    std::size_t amp = query.find('&');
    std::string_view pair = query.substr(0, amp);
    std::size_t eq = pair.find('=');
    if (pair.substr(0, eq) == key) return eq == std::string_view::npos ? "" : pair.substr(eq + 1);
    if (amp == std::string_view::npos) break;
    query.remove_prefix(amp + 1);
  }
  return {};
}

std::string response(int status, std::string_view reason, std::string_view content_type,
                     std::string_view body, bool close) {
  std::string r = "HTTP/1.1 " + std::to_string(status) + " " + std::string(reason) +
                  "\r\nContent-Type: " + std::string(content_type) +
                  "\r\nContent-Length: " + std::to_string(body.size()) + "\r\n";
  if (close) r += "Connection: close\r\n";
  r += "\r\n";
  r += body;
  return r;
}

class Backend {
 public:
  Backend(asio::io_context& io, Settings s) : io_(io), s_(std::move(s)), rng_(s_.seed) {
    body_.assign(s_.body, 'x');
  }

  asio::awaitable<void> sampler() {
    asio::steady_timer t(io_);
    for (;;) {
      t.expires_after(kBackendSampleEvery);
      auto [ec] = co_await t.async_wait(kAwait);
      if (ec) co_return;
      if (samples_.size() < kMaxSamples) {
        samples_.push_back({unixMs(), queue_.size(), busy_, received_, ok_, errors_, rejected_,
                            abandoned_queued_ + abandoned_service_});
      }
    }
  }

  asio::awaitable<void> connection(tcp::socket sock) {
    sock.set_option(tcp::no_delay(true));
    std::string buf;
    for (;;) {
      auto [ec, n] =
          co_await asio::async_read_until(sock, asio::dynamic_buffer(buf), "\r\n\r\n", kAwait);
      if (ec) co_return;
      auto head = overload::parseHead(std::string_view(buf).substr(0, n - 4));
      if (!head) {
        co_await asio::async_write(
            sock, asio::buffer(response(400, "Bad Request", "text/plain", "bad request\n", true)),
            kAwait);
        co_return;
      }
      // Requests to this service carry no body in the benchmark; skip one if a client sends it.
      std::size_t need = n + head->content_length.value_or(0);
      if (buf.size() < need) {
        auto [ec2, m] = co_await asio::async_read(
            sock, asio::dynamic_buffer(buf), asio::transfer_exactly(need - buf.size()), kAwait);
        if (ec2) co_return;
      }
      std::string_view line = head->start_line;
      std::size_t sp1 = line.find(' ');
      std::size_t sp2 = line.find(' ', sp1 + 1);
      std::string target(line.substr(sp1 + 1, sp2 - sp1 - 1));
      std::string method(line.substr(0, sp1));
      buf.erase(0, need);
      bool close = head->close;

      std::string_view path = target;
      std::string_view query;
      if (std::size_t q = path.find('?'); q != std::string_view::npos) {
        query = path.substr(q + 1);
        path = path.substr(0, q);
      }
      std::string out;
      if (path == "/_stats") {
        out = response(200, "OK", "application/json", statsJson(queryValue(query, "series") != "0"),
                       close);
      } else if (path == "/_control") {
        control(query);
        out = response(200, "OK", "application/json", settingsJson(), close);
      } else if (path == "/healthz") {
        out = response(200, "OK", "text/plain", "ok\n", close);
      } else {
        int status = co_await work(sock);
        if (status < 0) co_return;  // the client left: nobody to answer
        if (status == 200) {
          out = response(200, "OK", "text/plain", body_, close);
        } else {
          out = response(status, status == 503 ? "Service Unavailable" : "Internal Server Error",
                         "text/plain", status == 503 ? "queue full\n" : "injected error\n", close);
        }
      }
      auto [wec, wn] = co_await asio::async_write(sock, asio::buffer(out), kAwait);
      if (wec || close) co_return;
    }
  }

 private:
  // Queue for a worker, hold it for the service time, answer. Returns the status to send, or -1
  // when the client went away meanwhile (with --abort cancel).
  asio::awaitable<int> work(tcp::socket& sock) {
    ++received_;
    auto t = std::make_shared<Ticket>(sock.get_executor());
    if (s_.cancel_on_abort) watchAbort(sock, t);
    if (busy_ < s_.workers) {
      ++busy_;
      t->granted = true;
    } else if (queue_.size() >= s_.queue) {
      ++rejected_;
      finish(sock, *t);
      co_return 503;
    } else {
      queue_.push_back(t);
      max_queue_ = std::max(max_queue_, queue_.size());
      co_await sleepOn(*t, std::chrono::steady_clock::time_point::max());
      if (!t->granted) {  // the client left while queued; the watcher took it off the queue
        ++abandoned_queued_;
        co_return -1;
      }
    }
    if (s_.stall && !t->abandoned) {
      stalled_.push_back(t);
      co_await sleepOn(*t, std::chrono::steady_clock::time_point::max());
      std::erase(stalled_, t);
    }
    if (!t->abandoned) {
      co_await sleepOn(*t, std::chrono::steady_clock::now() + serviceTime());
    }
    release();
    if (t->abandoned) {
      ++abandoned_service_;
      co_return -1;
    }
    finish(sock, *t);
    if (s_.error_rate > 0 && std::uniform_real_distribution<double>(0, 1)(rng_) < s_.error_rate) {
      ++errors_;
      co_return s_.error_status;
    }
    ++ok_;
    co_return 200;
  }

  static asio::awaitable<void> sleepOn(Ticket& t, std::chrono::steady_clock::time_point until) {
    t.timer.expires_at(until);
    co_await t.timer.async_wait(kAwait);  // cancelled = woken on purpose; the caller looks why
  }

  std::chrono::nanoseconds serviceTime() {
    double ms = s_.service_ms * s_.slowdown;
    if (s_.jitter > 0) {
      ms *= std::uniform_real_distribution<double>(1 - s_.jitter, 1 + s_.jitter)(rng_);
    }
    return std::chrono::nanoseconds(static_cast<std::int64_t>(ms * 1e6));
  }

  // A freed worker goes straight to the oldest waiter, so the queue is FIFO and never starves.
  void release() {
    if (busy_ <= s_.workers && !queue_.empty()) {
      grantFront();
    } else {
      --busy_;
    }
  }

  // The oldest waiter takes a worker (the caller accounts for it in busy_).
  void grantFront() {
    TicketPtr next = queue_.front();
    queue_.pop_front();
    next->granted = true;
    next->timer.cancel();
  }

  // Readable while a request is outstanding means the client closed (no client here pipelines;
  // if one does, its next request's bytes are simply left for the next read).
  void watchAbort(tcp::socket& sock, const TicketPtr& t) {
    sock.async_wait(tcp::socket::wait_read, [this, &sock, t](boost::system::error_code ec) {
      if (ec || t->done) return;
      char c = 0;
      ssize_t r = ::recv(sock.native_handle(), &c, 1, MSG_PEEK | MSG_DONTWAIT);
      if (r > 0) return;
      if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
        watchAbort(sock, t);
        return;
      }
      t->abandoned = true;
      if (!t->granted) std::erase(queue_, t);
      t->timer.cancel();
    });
  }

  static void finish(tcp::socket& sock, Ticket& t) {
    t.done = true;
    boost::system::error_code ignored;
    sock.cancel(ignored);  // the abort watcher's wait, the only operation pending now
  }

  void control(std::string_view query) {
    auto num = [&](std::string_view key, auto& field) {
      std::string_view v = queryValue(query, key);
      if (v.empty()) return;
      field = static_cast<std::remove_reference_t<decltype(field)>>(
          std::strtod(std::string(v).c_str(), nullptr));
    };
    num("error_rate", s_.error_rate);
    num("error_status", s_.error_status);
    num("slowdown", s_.slowdown);
    num("service_ms", s_.service_ms);
    num("jitter", s_.jitter);
    num("workers", s_.workers);
    num("queue", s_.queue);
    s_.workers = std::max(s_.workers, 1);
    bool was_stalled = s_.stall;
    num("stall", s_.stall);
    if (was_stalled && !s_.stall) {
      for (const auto& t : stalled_) t->timer.cancel();
    }
    while (busy_ < s_.workers && !queue_.empty()) {  // more workers: take waiters at once
      ++busy_;
      grantFront();
    }
    if (queryValue(query, "reset") == "1") {
      received_ = ok_ = errors_ = rejected_ = abandoned_queued_ = abandoned_service_ = 0;
      max_queue_ = queue_.size();
      samples_.clear();
    }
  }

  [[nodiscard]] std::string settingsJson() const {
    std::array<char, 512> b{};
    std::snprintf(b.data(), b.size(),
                  "{\"workers\": %d, \"service_ms\": %g, \"jitter\": %g, \"queue\": %zu, "
                  "\"error_rate\": %g, \"error_status\": %d, \"slowdown\": %g, \"stall\": %s, "
                  "\"abort\": \"%s\"}",
                  s_.workers, s_.service_ms, s_.jitter, s_.queue, s_.error_rate, s_.error_status,
                  s_.slowdown, s_.stall ? "true" : "false",
                  s_.cancel_on_abort ? "cancel" : "ignore");
    return b.data();
  }

  [[nodiscard]] std::string statsJson(bool with_series) const {
    std::array<char, 512> b{};
    std::snprintf(b.data(), b.size(),
                  "{\"unix_ms\": %lld, \"received\": %llu, \"ok\": %llu, \"errors\": %llu, "
                  "\"rejected\": %llu, \"abandoned_queued\": %llu, \"abandoned_service\": %llu, "
                  "\"busy\": %d, \"queue\": %zu, \"max_queue\": %zu, \"settings\": ",
                  static_cast<long long>(unixMs()), static_cast<unsigned long long>(received_),
                  static_cast<unsigned long long>(ok_), static_cast<unsigned long long>(errors_),
                  static_cast<unsigned long long>(rejected_),
                  static_cast<unsigned long long>(abandoned_queued_),
                  static_cast<unsigned long long>(abandoned_service_), busy_, queue_.size(),
                  max_queue_);
    std::string out = b.data();
    out += settingsJson();
    if (with_series) {
      // Columns: unix_ms, queue, busy, and the counters received, ok, errors, rejected,
      // abandoned (cumulative since the last reset).
      out += ", \"series\": [";
      for (std::size_t i = 0; i < samples_.size(); ++i) {
        const Sample& x = samples_[i];
        std::snprintf(
            b.data(), b.size(), "%s[%lld,%zu,%d,%llu,%llu,%llu,%llu,%llu]", i > 0 ? "," : "",
            static_cast<long long>(x.unix_ms), x.queue, x.busy,
            static_cast<unsigned long long>(x.received), static_cast<unsigned long long>(x.ok),
            static_cast<unsigned long long>(x.errors), static_cast<unsigned long long>(x.rejected),
            static_cast<unsigned long long>(x.abandoned));
        out += b.data();
      }
      out += "]";
    }
    out += "}\n";
    return out;
  }

  asio::io_context& io_;
  Settings s_;
  std::mt19937_64 rng_;
  std::string body_;
  int busy_ = 0;
  std::deque<TicketPtr> queue_;
  std::vector<TicketPtr> stalled_;
  std::size_t max_queue_ = 0;
  std::uint64_t received_ = 0, ok_ = 0, errors_ = 0, rejected_ = 0;
  std::uint64_t abandoned_queued_ = 0, abandoned_service_ = 0;
  std::vector<Sample> samples_;
};

asio::awaitable<void> acceptLoop(Backend& backend, tcp::acceptor& acceptor) {
  for (;;) {
    auto [ec, sock] = co_await acceptor.async_accept(kAwait);
    if (ec) continue;  // EMFILE and the like: keep serving the connections we have
    asio::co_spawn(acceptor.get_executor(), backend.connection(std::move(sock)), asio::detached);
  }
}

[[noreturn]] void usage() {
  std::fputs(
      "usage: overload_backend [--address 127.0.0.1] [--port 19080 (0: any)] [--workers 4]\n"
      "         [--service-ms 10] [--jitter 0] [--queue 1000] [--error-rate 0]\n"
      "         [--error-status 500] [--slowdown 1] [--body 100] [--abort cancel|ignore]\n"
      "         [--seed 1]\n",
      stderr);
  std::exit(2);  // NOLINT(concurrency-mt-unsafe): before any thread exists
}

Settings parseArgs(int argc, char** argv) {
  Settings s;
  std::vector<std::string_view> args(argv + 1, argv + argc);
  for (std::size_t i = 0; i < args.size(); ++i) {
    std::string_view k = args[i];
    if (i + 1 >= args.size()) usage();
    std::string v(args[++i]);
    if (k == "--address") {
      s.address = v;
    } else if (k == "--port") {
      s.port = std::stoi(v);
    } else if (k == "--workers") {
      s.workers = std::max(1, std::stoi(v));
    } else if (k == "--service-ms") {
      s.service_ms = std::stod(v);
    } else if (k == "--jitter") {
      s.jitter = std::stod(v);
    } else if (k == "--queue") {
      s.queue = std::stoul(v);
    } else if (k == "--error-rate") {
      s.error_rate = std::stod(v);
    } else if (k == "--error-status") {
      s.error_status = std::stoi(v);
    } else if (k == "--slowdown") {
      s.slowdown = std::stod(v);
    } else if (k == "--body") {
      s.body = std::stoul(v);
    } else if (k == "--abort") {
      s.cancel_on_abort = v != "ignore";
    } else if (k == "--seed") {
      s.seed = std::stoull(v);
    } else {
      usage();
    }
  }
  return s;
}

}  // namespace

int main(int argc, char** argv) try {
  Settings s = parseArgs(argc, argv);
  asio::io_context io(1);
  tcp::acceptor acceptor(io);
  tcp::endpoint ep(asio::ip::make_address(s.address), static_cast<std::uint16_t>(s.port));
  acceptor.open(ep.protocol());
  acceptor.set_option(tcp::acceptor::reuse_address(true));
  acceptor.bind(ep);
  acceptor.listen(4096);
  Backend backend(io, s);
  asio::co_spawn(io, backend.sampler(), asio::detached);
  asio::co_spawn(io, acceptLoop(backend, acceptor), asio::detached);
  asio::signal_set stop(io, SIGTERM, SIGINT);
  stop.async_wait([&](auto, int) { io.stop(); });
  std::fprintf(stderr, "overload_backend listening on %s:%u (%d workers x %g ms)\n",
               s.address.c_str(), acceptor.local_endpoint().port(), s.workers, s.service_ms);
  io.run();
  return 0;
} catch (const std::exception& e) {
  std::fprintf(stderr, "overload_backend: %s\n", e.what());
  return 1;
}
