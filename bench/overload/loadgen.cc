// An open-loop HTTP/1.1 load generator for the overload benchmark (docs/overload.md).
//
// Requests leave on a schedule fixed in advance (a rate per stage, constant or ramped linearly,
// Poisson or evenly spaced arrivals), whatever the responses do: a slow answer never delays the
// next request, so there is no coordinated omission. Every latency is measured from the
// request's *scheduled* time, so time spent waiting for a connection, or in this program's own
// event loop, counts against the system under test, as it would for a real client.
//
// Connections come from a pool that opens a new one whenever none is idle (up to --max-conns;
// beyond it a request waits for one, still on its clock). Each request has a client timeout,
// from its scheduled time: when it fires the request is recorded as a timeout and its connection
// is closed, as a client that gives up does (which is what tells a proxy to drop the request).
//
// Output: one CSV row per request (--out: scheduled time and latency in ms, status or outcome,
// the start lag), and a JSON summary on stdout (--summary: also to a file) with this program's
// own health: how late requests started against their schedule and how much CPU it used.
//
//   overload_loadgen --target 127.0.0.1:19080 --stages 10:400,10:400-1200 [--timeout-ms 1000]
//                    [--max-conns 4096] [--arrivals poisson|uniform] [--out run.csv]
#include <algorithm>
#include <array>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <fstream>
#include <memory>
#include <random>
#include <string>
#include <string_view>
#include <sys/resource.h>
#include <vector>

#include <boost/asio.hpp>

#include "http_head.h"

namespace asio = boost::asio;
using asio::ip::tcp;
using Clock = std::chrono::steady_clock;

namespace {

// As the gateway awaits I/O (gateway/net/socket_io.h): errors as values, and no extra coroutine
// frame per operation, which use_awaitable would allocate.
constexpr auto kUse = asio::as_tuple(asio::deferred);

// Outcomes that are not an HTTP status, in the CSV's status column.
constexpr int kTimeout = 0;        // no complete response within the client timeout
constexpr int kConnectError = -1;  // the connection could not be made (refused, unreachable)
constexpr int kIoError = -2;       // closed, reset or garbled before a complete response

struct Stage {
  double seconds = 0;
  double from = 0;  // requests per second at the stage's start ...
  double to = 0;    // ... and at its end (linear in between)
};

struct Options {
  std::string host = "127.0.0.1";
  std::string port = "19080";
  std::string path = "/";
  std::vector<Stage> stages;
  double timeout_ms = 1000;
  std::size_t max_conns = 4096;
  bool poisson = true;
  std::uint64_t seed = 1;
  std::string out;
  std::string summary;
};

struct Record {
  std::int64_t sched_ns = 0;      // from the start of the schedule
  std::int64_t latency_ns = 0;    // from the scheduled time to the response's last byte
  std::int64_t start_lag_ns = 0;  // how late this program started the request
  int status = kTimeout;
  bool new_conn = false;
};

struct Conn {
  explicit Conn(const asio::any_io_executor& ex) : sock(ex) {}
  tcp::socket sock;
  std::string buf;
  bool reused = false;
};
using ConnPtr = std::shared_ptr<Conn>;

// A request waiting for a connection at --max-conns.
struct Waiter {
  explicit Waiter(const asio::any_io_executor& ex) : timer(ex) {}
  asio::steady_timer timer;
  ConnPtr conn;
  bool gone = false;        // timed out while waiting
  bool connecting = false;  // conn is a new connection still being made for it
};

// What the client timeout must reach: the connection to close, or the wait to abandon.
struct InFlight {
  explicit InFlight(const asio::any_io_executor& ex) : deadline(ex) {}
  asio::steady_timer deadline;
  ConnPtr conn;
  std::shared_ptr<Waiter> waiter;
  bool timed_out = false;
  bool finished = false;
};

double percentile(std::vector<double>& v, double p) {
  if (v.empty()) return 0;
  auto n = static_cast<double>(v.size());
  auto k = static_cast<std::size_t>(std::min(n - 1, std::floor(p / 100 * n)));
  std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(k), v.end());
  return v[k];
}

class LoadGen {
 public:
  LoadGen(asio::io_context& io, Options o) : io_(io), o_(std::move(o)), rng_(o_.seed) {
    request_ = "GET " + o_.path + " HTTP/1.1\r\nHost: " + o_.host + ":" + o_.port +
               "\r\nUser-Agent: overload_loadgen\r\n\r\n";
    endpoints_ = tcp::resolver(io_).resolve(o_.host, o_.port);
  }

  asio::awaitable<void> run() {
    asio::steady_timer tick(io_);
    start_ = Clock::now() + std::chrono::milliseconds(10);
    start_unix_ms_ = std::chrono::duration_cast<std::chrono::milliseconds>(
                         std::chrono::system_clock::now().time_since_epoch())
                         .count() +
                     10;
    double stage_start = 0;
    for (const Stage& st : o_.stages) {
      double t = 0;  // seconds into the stage
      for (;;) {
        double rate = st.from + (st.to - st.from) * (t / st.seconds);
        if (rate <= 0) break;  // a pause: nothing more to send in this stage
        double gap = o_.poisson ? std::exponential_distribution<double>(rate)(rng_) : 1 / rate;
        t += gap;
        if (t >= st.seconds) break;
        auto sched =
            start_ + std::chrono::nanoseconds(static_cast<std::int64_t>((stage_start + t) * 1e9));
        if (sched > Clock::now()) {
          tick.expires_at(sched);
          co_await tick.async_wait(kUse);
        }
        records_.push_back({});
        records_.back().sched_ns = (sched - start_).count();
        asio::co_spawn(io_, request(records_.size() - 1, sched), asio::detached);
      }
      stage_start += st.seconds;
    }
    // Every request still out ends by its timeout; then close what is idle so that the loop ends.
    while (in_flight_ > 0) {
      tick.expires_after(std::chrono::milliseconds(5));
      co_await tick.async_wait(kUse);
    }
    end_ = Clock::now();
    for (const ConnPtr& c : idle_) {
      boost::system::error_code ignored;
      c->sock.close(ignored);
    }
    idle_.clear();
  }

  void write(std::FILE* summary_out) {
    if (!o_.out.empty()) {
      std::ofstream f(o_.out);
      f << "sched_ms,latency_ms,status,start_lag_ms,new_conn\n";
      std::array<char, 128> line{};
      for (const Record& r : records_) {
        std::snprintf(line.data(), line.size(), "%.3f,%.3f,%d,%.3f,%d\n",
                      static_cast<double>(r.sched_ns) / 1e6,
                      static_cast<double>(r.latency_ns) / 1e6, r.status,
                      static_cast<double>(r.start_lag_ns) / 1e6, r.new_conn ? 1 : 0);
        f << line.data();
      }
    }
    std::string s = summaryJson();
    std::fputs(s.c_str(), summary_out);
    if (!o_.summary.empty()) std::ofstream(o_.summary) << s;
  }

 private:
  asio::awaitable<void> request(std::size_t idx, Clock::time_point sched) {
    ++in_flight_;
    max_in_flight_ = std::max(max_in_flight_, in_flight_);
    records_[idx].start_lag_ns = (Clock::now() - sched).count();
    auto f = std::make_shared<InFlight>(io_.get_executor());
    f->deadline.expires_at(
        sched + std::chrono::microseconds(static_cast<std::int64_t>(o_.timeout_ms * 1000)));
    f->deadline.async_wait([f](boost::system::error_code ec) {
      if (ec || f->finished) return;
      f->timed_out = true;
      boost::system::error_code ignored;
      if (f->conn) f->conn->sock.close(ignored);
      if (f->waiter) {
        f->waiter->gone = true;
        f->waiter->timer.cancel();
      }
    });
    int status = co_await exchange(*f, records_[idx]);
    // A reused keep-alive connection the server had already closed fails before any byte of
    // the answer: what any HTTP client retries once on a fresh connection (counted).
    if (status == kStaleConn && !f->timed_out) {
      ++stale_retries_;
      status = co_await exchange(*f, records_[idx], /*fresh=*/true);
    }
    f->finished = true;
    f->deadline.cancel();
    Record& r = records_[idx];
    r.status = f->timed_out ? kTimeout : (status == kStaleConn ? kIoError : status);
    r.latency_ns = (Clock::now() - sched).count();
    --in_flight_;
  }

  static constexpr int kStaleConn = -100;

  asio::awaitable<int> exchange(InFlight& f, Record& rec, bool fresh = false) {
    ConnPtr c = co_await acquire(f, rec, fresh);
    if (!c) co_return f.timed_out ? kTimeout : kConnectError;
    f.conn = c;
    bool reused = c->reused;
    auto [wec, wn] = co_await asio::async_write(c->sock, asio::buffer(request_), kUse);
    if (wec) {
      drop(f);
      co_return reused ? kStaleConn : kIoError;
    }
    std::size_t before = c->buf.size();
    auto [ec, n] =
        co_await asio::async_read_until(c->sock, asio::dynamic_buffer(c->buf), "\r\n\r\n", kUse);
    if (ec) {
      bool nothing = c->buf.size() == before;
      drop(f);
      co_return reused&& nothing ? kStaleConn : kIoError;
    }
    auto head = overload::parseHead(std::string_view(c->buf).substr(0, n - 4));
    int status = 0;
    if (head) {
      std::string_view sl = head->start_line;
      if (sl.size() >= 12) status = std::atoi(std::string(sl.substr(9, 3)).c_str());
    }
    if (status <= 0) {
      drop(f);
      co_return kIoError;
    }
    c->buf.erase(0, n);
    bool ok = co_await readBody(*c, *head, status);
    if (!ok) {
      drop(f);
      co_return kIoError;
    }
    f.conn = nullptr;
    if (head->close || (!head->content_length.has_value() && !head->chunked)) {
      close(c);
    } else {
      release(c);
    }
    co_return status;
  }

  asio::awaitable<bool> readBody(Conn& c, const overload::Head& head, int status) {
    auto dyn = asio::dynamic_buffer(c.buf);
    if (status == 204 || status == 304 || (status >= 100 && status < 200)) co_return true;
    if (head.content_length) {
      std::size_t want = *head.content_length;
      if (c.buf.size() < want) {
        auto [ec, n] = co_await asio::async_read(c.sock, dyn,
                                                 asio::transfer_exactly(want - c.buf.size()), kUse);
        if (ec) co_return false;
      }
      c.buf.erase(0, want);
      co_return true;
    }
    if (head.chunked) {
      for (;;) {
        auto [ec, n] = co_await asio::async_read_until(c.sock, dyn, "\r\n", kUse);
        if (ec) co_return false;
        std::size_t size = std::strtoul(c.buf.substr(0, n).c_str(), nullptr, 16);
        c.buf.erase(0, n);
        std::size_t want = size + 2;  // the chunk and its CRLF (for the last one: the trailer's)
        if (c.buf.size() < want) {
          auto [ec2, m] = co_await asio::async_read(
              c.sock, dyn, asio::transfer_exactly(want - c.buf.size()), kUse);
          if (ec2) co_return false;
        }
        c.buf.erase(0, want);
        if (size == 0) co_return true;
      }
    }
    // Close-delimited: the body runs to EOF (its bytes are not needed, only its end).
    c.buf.resize(4096);
    for (;;) {
      auto [ec, n] = co_await c.sock.async_read_some(asio::buffer(c.buf), kUse);
      if (ec) co_return ec == asio::error::eof;
    }
  }

  // An idle connection, a new one while under --max-conns, or a wait for the next released one.
  asio::awaitable<ConnPtr> acquire(InFlight& f, Record& rec, bool fresh) {
    if (!fresh && !idle_.empty()) {
      ConnPtr c = idle_.back();
      idle_.pop_back();
      co_return c;
    }
    if (open_ < o_.max_conns) {
      ++open_;
      ++opened_;
      max_open_ = std::max(max_open_, open_);
      auto c = std::make_shared<Conn>(io_.get_executor());
      f.conn = c;  // so that the client timeout also ends a slow connect
      rec.new_conn = true;
      auto [ec, ep] = co_await asio::async_connect(c->sock, endpoints_, kUse);
      f.conn = nullptr;
      if (ec || f.timed_out) {
        --open_;
        boost::system::error_code ignored;
        c->sock.close(ignored);
        co_return nullptr;
      }
      c->sock.set_option(tcp::no_delay(true));
      co_return c;
    }
    ++waited_for_conn_;
    auto w = std::make_shared<Waiter>(io_.get_executor());
    f.waiter = w;
    waiters_.push_back(w);
    w->timer.expires_at(Clock::time_point::max());
    co_await w->timer.async_wait(kUse);
    f.waiter = nullptr;
    if (w->gone) {
      std::erase(waiters_, w);
      if (w->conn && !w->connecting) release(w->conn);  // else connectFor() gives it back
      co_return nullptr;
    }
    co_return w->conn;
  }

  void release(const ConnPtr& c) {
    c->reused = true;
    while (!waiters_.empty()) {
      auto w = waiters_.front();
      waiters_.pop_front();
      if (w->gone) continue;
      w->conn = c;
      w->timer.cancel();
      return;
    }
    idle_.push_back(c);
  }

  void close(const ConnPtr& c) {
    boost::system::error_code ignored;
    c->sock.close(ignored);
    --open_;
    // A slot for a new connection: wake one waiter, which then opens it.
    while (!waiters_.empty()) {
      auto w = waiters_.front();
      waiters_.pop_front();
      if (w->gone) continue;
      ++open_;
      ++opened_;
      auto fresh = std::make_shared<Conn>(io_.get_executor());
      w->conn = fresh;
      w->connecting = true;
      asio::co_spawn(io_, connectFor(w), asio::detached);
      return;
    }
  }

  // The connection a waiter was promised: connect it, then wake the waiter (or give it back).
  asio::awaitable<void> connectFor(std::shared_ptr<Waiter> w) {
    ConnPtr c = w->conn;
    auto [ec, ep] = co_await asio::async_connect(c->sock, endpoints_, kUse);
    w->connecting = false;
    if (ec) {
      --open_;
      w->conn = nullptr;
      w->timer.cancel();  // the waiter sees no connection: a connect error
      co_return;
    }
    c->sock.set_option(tcp::no_delay(true));
    if (w->gone) {
      release(c);
      co_return;
    }
    w->timer.cancel();
  }

  void drop(InFlight& f) {
    if (f.conn) close(f.conn);
    f.conn = nullptr;
  }

  std::string summaryJson() {
    std::vector<double> ok_ms;
    std::vector<double> lag_ms;
    ok_ms.reserve(records_.size());
    lag_ms.reserve(records_.size());
    std::uint64_t n2xx = 0;
    std::uint64_t n4xx = 0;
    std::uint64_t n5xx = 0;
    std::uint64_t timeouts = 0;
    std::uint64_t conn_err = 0;
    std::uint64_t io_err = 0;
    std::uint64_t late = 0;
    std::vector<std::pair<int, std::uint64_t>> by_status;
    for (const Record& r : records_) {
      double lag = static_cast<double>(r.start_lag_ns) / 1e6;
      lag_ms.push_back(lag);
      if (lag > 1) ++late;
      if (r.status >= 200 && r.status < 300) {
        ++n2xx;
        ok_ms.push_back(static_cast<double>(r.latency_ns) / 1e6);
      } else if (r.status >= 400 && r.status < 500) {
        ++n4xx;
      } else if (r.status >= 500) {
        ++n5xx;
      } else if (r.status == kTimeout) {
        ++timeouts;
      } else if (r.status == kConnectError) {
        ++conn_err;
      } else {
        ++io_err;
      }
      auto it = std::find_if(by_status.begin(), by_status.end(),
                             [&](const auto& p) { return p.first == r.status; });
      if (it == by_status.end()) {
        by_status.emplace_back(r.status, 1);
      } else {
        ++it->second;
      }
    }
    std::sort(by_status.begin(), by_status.end());
    rusage ru{};
    getrusage(RUSAGE_SELF, &ru);
    double user =
        static_cast<double>(ru.ru_utime.tv_sec) + static_cast<double>(ru.ru_utime.tv_usec) / 1e6;
    double sys =
        static_cast<double>(ru.ru_stime.tv_sec) + static_cast<double>(ru.ru_stime.tv_usec) / 1e6;
    double wall = std::chrono::duration<double>(end_ - start_).count();
    std::string statuses;
    for (const auto& [st, n] : by_status) {
      statuses += (statuses.empty() ? "" : ", ") + std::string("\"") + std::to_string(st) +
                  "\": " + std::to_string(n);
    }
    std::array<char, 2048> b{};
    std::snprintf(
        b.data(), b.size(),
        "{\"target\": \"%s:%s%s\", \"start_unix_ms\": %lld, \"wall_s\": %.3f, \"sent\": %zu, "
        "\"ok\": %llu, \"4xx\": %llu, \"5xx\": %llu, \"timeout\": %llu, \"connect_error\": %llu, "
        "\"io_error\": %llu, \"by_status\": {%s}, "
        "\"ok_latency_ms\": {\"p50\": %.3f, \"p90\": %.3f, \"p99\": %.3f, \"p999\": %.3f, "
        "\"max\": %.3f}, "
        "\"start_lag_ms\": {\"p50\": %.3f, \"p99\": %.3f, \"max\": %.3f}, \"late_over_1ms\": %llu, "
        "\"conns_opened\": %llu, \"max_open_conns\": %zu, \"max_in_flight\": %zu, "
        "\"waited_for_conn\": %llu, \"stale_retries\": %llu, \"timeout_ms\": %g, "
        "\"cpu_user_s\": %.3f, \"cpu_sys_s\": %.3f, \"cpu_share\": %.4f}\n",
        o_.host.c_str(), o_.port.c_str(), o_.path.c_str(), static_cast<long long>(start_unix_ms_),
        wall, records_.size(), static_cast<unsigned long long>(n2xx),
        static_cast<unsigned long long>(n4xx), static_cast<unsigned long long>(n5xx),
        static_cast<unsigned long long>(timeouts), static_cast<unsigned long long>(conn_err),
        static_cast<unsigned long long>(io_err), statuses.c_str(), percentile(ok_ms, 50),
        percentile(ok_ms, 90), percentile(ok_ms, 99), percentile(ok_ms, 99.9),
        ok_ms.empty() ? 0.0 : *std::max_element(ok_ms.begin(), ok_ms.end()), percentile(lag_ms, 50),
        percentile(lag_ms, 99),
        lag_ms.empty() ? 0.0 : *std::max_element(lag_ms.begin(), lag_ms.end()),
        static_cast<unsigned long long>(late), static_cast<unsigned long long>(opened_), max_open_,
        max_in_flight_, static_cast<unsigned long long>(waited_for_conn_),
        static_cast<unsigned long long>(stale_retries_), o_.timeout_ms, user, sys,
        wall > 0 ? (user + sys) / wall : 0.0);
    return b.data();
  }

  asio::io_context& io_;
  Options o_;
  std::mt19937_64 rng_;
  std::string request_;
  tcp::resolver::results_type endpoints_;
  std::deque<Record> records_;  // a deque: requests in flight hold references to their record
  Clock::time_point start_, end_;
  long long start_unix_ms_ = 0;
  std::vector<ConnPtr> idle_;
  std::deque<std::shared_ptr<Waiter>> waiters_;
  std::size_t open_ = 0, max_open_ = 0, in_flight_ = 0, max_in_flight_ = 0;
  std::uint64_t opened_ = 0, waited_for_conn_ = 0, stale_retries_ = 0;
};

[[noreturn]] void usage() {
  std::fputs(
      "usage: overload_loadgen --target HOST:PORT --stages SECONDS:RATE[-RATE],...\n"
      "         [--path /] [--timeout-ms 1000] [--max-conns 4096] [--arrivals poisson|uniform]\n"
      "         [--seed 1] [--out requests.csv] [--summary summary.json]\n"
      "  e.g. --stages 5:200,10:200-1200,5:0,5:200  (a rate 0 stage is a pause)\n",
      stderr);
  std::exit(2);  // NOLINT(concurrency-mt-unsafe): before any thread exists
}

std::vector<Stage> parseStages(std::string_view spec) {
  std::vector<Stage> out;
  while (!spec.empty()) {
    std::size_t comma = spec.find(',');
    std::string item(spec.substr(0, comma));
    std::size_t colon = item.find(':');
    if (colon == std::string::npos) usage();
    Stage s;
    s.seconds = std::stod(item.substr(0, colon));
    std::string rates = item.substr(colon + 1);
    std::size_t dash = rates.find('-');
    s.from = std::stod(rates.substr(0, dash));
    s.to = dash == std::string::npos ? s.from : std::stod(rates.substr(dash + 1));
    if (s.seconds <= 0) usage();
    out.push_back(s);
    if (comma == std::string_view::npos) break;
    spec.remove_prefix(comma + 1);
  }
  return out;
}

Options parseArgs(int argc, char** argv) {
  Options o;
  std::vector<std::string_view> args(argv + 1, argv + argc);
  for (std::size_t i = 0; i < args.size(); ++i) {
    std::string_view k = args[i];
    if (i + 1 >= args.size()) usage();
    std::string v(args[++i]);
    if (k == "--target") {
      std::size_t colon = v.rfind(':');
      if (colon == std::string::npos) usage();
      o.host = v.substr(0, colon);
      o.port = v.substr(colon + 1);
    } else if (k == "--stages") {
      o.stages = parseStages(v);
    } else if (k == "--path") {
      o.path = v;
    } else if (k == "--timeout-ms") {
      o.timeout_ms = std::stod(v);
    } else if (k == "--max-conns") {
      o.max_conns = std::max<std::size_t>(1, std::stoul(v));
    } else if (k == "--arrivals") {
      o.poisson = v != "uniform";
    } else if (k == "--seed") {
      o.seed = std::stoull(v);
    } else if (k == "--out") {
      o.out = v;
    } else if (k == "--summary") {
      o.summary = v;
    } else {
      usage();
    }
  }
  if (o.stages.empty()) usage();
  return o;
}

}  // namespace

int main(int argc, char** argv) try {
  Options o = parseArgs(argc, argv);
  asio::io_context io(1);
  LoadGen gen(io, std::move(o));
  asio::co_spawn(io, gen.run(), [&](const std::exception_ptr& e) {
    if (e) std::rethrow_exception(e);
    io.stop();
  });
  io.run();
  gen.write(stdout);
  return 0;
} catch (const std::exception& e) {
  std::fprintf(stderr, "overload_loadgen: %s\n", e.what());
  return 1;
}
