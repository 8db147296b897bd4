#include "gateway/trace/span_exporter.h"

#include <chrono>
#include <unistd.h>
#include <vector>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>
#include <spdlog/spdlog.h>

#include "gateway/net/socket_io.h"

namespace sluice::gateway::trace {

namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = beast::http;
using Clock = std::chrono::steady_clock;

// How often the thread looks at the queue: a full batch goes out within this.
constexpr auto kTick = std::chrono::milliseconds(20);

std::string instanceId() {
  std::array<char, 256> host{};
  if (::gethostname(host.data(), host.size() - 1) != 0) host[0] = '\0';
  return std::string(host.data()) + ":" + std::to_string(::getpid());
}

Resource resourceOf(const config::Tracing& t) {
  return {t.service_name, SLUICE_VERSION, instanceId()};
}

asio::awaitable<int> post(asio::io_context& io, const config::Address& collector,
                          const std::string& path, const std::string& body,
                          config::Millis timeout) {
  beast::tcp_stream stream(io);
  stream.expires_after(timeout);
  boost::system::error_code ec;
  const asio::ip::tcp::endpoint at(asio::ip::make_address(collector.ip, ec), collector.port);
  if (ec) co_return 0;
  auto [cec] = co_await stream.async_connect(at, net::kNoThrow);
  if (cec) co_return 0;
  bhttp::request<bhttp::string_body> req{bhttp::verb::post, path, 11};
  req.set(bhttp::field::host, collector.text());
  req.set(bhttp::field::content_type, "application/json");
  req.set(bhttp::field::user_agent, "sluice/" SLUICE_VERSION);
  req.body() = body;
  req.prepare_payload();
  auto [wec, wn] = co_await bhttp::async_write(stream, req, net::kNoThrow);
  if (wec) co_return 0;
  beast::flat_buffer buffer;
  bhttp::response_parser<bhttp::string_body> res;
  res.body_limit(1U << 20);
  auto [rec, rn] = co_await bhttp::async_read(stream, buffer, res, net::kNoThrow);
  if (rec) co_return 0;
  co_return res.get().result_int();
}

}  // namespace

int postJson(const config::Address& collector, const std::string& path, const std::string& body,
             config::Millis timeout) {
  asio::io_context io;
  int status = 0;
  asio::co_spawn(io, post(io, collector, path, body, timeout),
                 [&status](const std::exception_ptr& e, int s) {
                   if (!e) status = s;
                 });
  io.run();
  return status;
}

SpanExporter::SpanExporter(const config::Tracing& settings)
    : queue_({.capacity = settings.queue}), target_{settings, resourceOf(settings)} {
  thread_ = std::thread([this] { run(); });
}

SpanExporter::~SpanExporter() {
  {
    const std::lock_guard lock(mu_);
    stopping_ = true;
  }
  wake_.notify_one();
  thread_.join();
}

bool SpanExporter::submit(SpanRecord&& span) noexcept {
  if (!queue_.tryPush(std::move(span))) {
    dropped_.fetch_add(1, std::memory_order_relaxed);
    return false;
  }
  return true;
}

void SpanExporter::reconfigure(const config::Tracing& settings) {
  const std::lock_guard lock(mu_);
  target_ = {settings, resourceOf(settings)};
}

SpanExporter::Counts SpanExporter::counts() const noexcept {
  return {exported_.load(std::memory_order_relaxed), dropped_.load(std::memory_order_relaxed),
          failed_.load(std::memory_order_relaxed), queue_.sizeApprox()};
}

bool SpanExporter::exportBatch(const Target& target) {
  std::vector<SpanRecord> batch;
  while (batch.size() < target.settings.batch) {
    auto span = queue_.tryPop();
    if (!span) break;
    batch.push_back(std::move(*span));
  }
  if (batch.empty()) return false;
  const int status = postJson(target.settings.collector, target.settings.path,
                              encodeOtlpJson(batch, target.resource), target.settings.timeout);
  if (status >= 200 && status < 300) {
    exported_.fetch_add(batch.size(), std::memory_order_relaxed);
    return true;
  }
  failed_.fetch_add(batch.size(), std::memory_order_relaxed);
  // At most one line per failed batch, and batches go out once a flush interval at most while
  // the collector fails (it is one thread): the log cannot flood.
  spdlog::warn("tracing: {} span(s) not exported to {}{}: {}", batch.size(),
               target.settings.collector.text(), target.settings.path,
               status == 0 ? std::string("no answer (connect failure or timeout)")
                           : "HTTP " + std::to_string(status));
  return true;
}

void SpanExporter::run() {
  auto oldest_wait_since = Clock::time_point::max();
  for (;;) {
    Target target;
    bool stopping = false;
    {
      std::unique_lock lock(mu_);
      wake_.wait_for(lock, kTick, [this] { return stopping_; });
      stopping = stopping_;
      target = target_;
    }
    if (stopping) {
      // What is queued goes out before the process exits, one timeout per batch at most.
      while (exportBatch(target)) {
      }
      return;
    }
    const auto waiting = queue_.sizeApprox();
    const auto now = Clock::now();
    if (waiting == 0) {
      oldest_wait_since = Clock::time_point::max();
      continue;
    }
    if (oldest_wait_since == Clock::time_point::max()) oldest_wait_since = now;
    if (waiting >= target.settings.batch ||
        now - oldest_wait_since >= target.settings.flush_interval) {
      exportBatch(target);
      oldest_wait_since = queue_.sizeApprox() > 0 ? now : Clock::time_point::max();
    }
  }
}

}  // namespace sluice::gateway::trace
