// SpanExporter: takes finished spans from the workers and sends them to an OpenTelemetry
// collector as OTLP/HTTP JSON, in batches, from a thread of its own.
//
// The request path only ever calls submit(): one push into a bounded lock-free queue
// (resilience::MpmcQueue), never a wait, never I/O. A full queue drops the span and counts it
// (sluice_tracing_spans_total{result="dropped"}): a slow or dead collector costs spans, never
// latency. The exporter thread wakes every few milliseconds, and sends a batch when `batch`
// spans are waiting or the oldest has waited `flush_interval` (OpenTelemetry's batch span
// processor, with its queue and batch sizes as defaults). A batch the collector refuses or that
// times out is counted as failed and not retried: traces are a sample, and a retry would hold
// newer spans back behind a collector that is already struggling.
//
// Thread-safety: submit() and counts() from any thread; reconfigure() from one thread (the
// server's main thread) at a time. The destructor sends what is queued (within one timeout)
// and joins the thread.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <string>
#include <thread>

#include "gateway/config/config.h"
#include "gateway/trace/otlp_json.h"
#include "gateway/trace/span.h"
#include "resilience/mpmc_queue.h"

namespace sluice::gateway::trace {

class SpanExporter {
 public:
  // `settings.queue` is fixed for the exporter's life; the rest may change (reconfigure).
  explicit SpanExporter(const config::Tracing& settings);
  ~SpanExporter();
  SpanExporter(const SpanExporter&) = delete;
  SpanExporter& operator=(const SpanExporter&) = delete;

  // Never blocks. False when the queue is full (the span is dropped and counted).
  bool submit(SpanRecord&& span) noexcept;
  // A new endpoint, batch size, flush interval, timeout or service name, from the next batch.
  void reconfigure(const config::Tracing& settings);
  [[nodiscard]] std::size_t capacity() const noexcept { return queue_.capacity(); }

  struct Counts {
    std::uint64_t exported = 0;  // accepted by the collector (a 2xx answer)
    std::uint64_t dropped = 0;   // the queue was full
    std::uint64_t failed = 0;    // in a batch the collector refused, or did not answer in time
    std::uint64_t queued = 0;    // waiting now
  };
  [[nodiscard]] Counts counts() const noexcept;

 private:
  struct Target {
    config::Tracing settings;
    Resource resource;
  };
  void run();
  // Pops up to `batch` spans and sends them; false when nothing was waiting.
  bool exportBatch(const Target& target);

  resilience::MpmcQueue<SpanRecord> queue_;
  std::atomic<std::uint64_t> exported_{0};
  std::atomic<std::uint64_t> dropped_{0};
  std::atomic<std::uint64_t> failed_{0};
  mutable std::mutex mu_;
  std::condition_variable wake_;
  Target target_;          // guarded by mu_
  bool stopping_ = false;  // guarded by mu_
  std::thread thread_;
};

// POSTs `body` (application/json) to http://collector/path within `timeout`; the HTTP status,
// or 0 when there was none (connect failure, timeout, unreadable answer). Blocking: the
// exporter thread only.
[[nodiscard]] int postJson(const config::Address& collector, const std::string& path,
                           const std::string& body, config::Millis timeout);

}  // namespace sluice::gateway::trace
