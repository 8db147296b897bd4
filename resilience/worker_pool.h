// WorkerPool: a fixed set of threads running tasks from a bounded FIFO queue, with backpressure
// at submission and a graceful shutdown that accounts for every accepted task.
//
//   WorkerPool pool({.threads = 4, .queue_capacity = 1024});
//   auto r = pool.trySubmit([req](WorkerPool::TaskStatus status) {
//     if (status == WorkerPool::TaskStatus::Cancelled) return req->fail(503);  // never ran
//     req->reply(compress(req->body()));                                       // on a worker
//   });
//   if (r.status != WorkerPool::SubmitStatus::Accepted) {
//     // Not accepted: the task comes back in r.task, never invoked - run it inline, retry or
//     // answer 503 yourself.
//   }
//   ...
//   pool.shutdown(WorkerPool::ShutdownMode::Drain);   // or Cancel
//
// Every task is a callable `void(TaskStatus)` (move-only is fine). Once a submission returns
// Accepted, the pool invokes that task exactly once - with Run on a worker thread, or with
// Cancelled if shutdown(Cancel) removes it from the queue - so no accepted task is ever lost
// silently. A submission that is not accepted hands the task back (SubmitResult::task) and never
// invokes it.
//
// Submission (backpressure):
//   trySubmit(task)              never waits: Accepted, QueueFull or ShutDown.
//   submitUntil(task, deadline)  waits while the queue is full until `deadline` (steady clock):
//                                Accepted, TimedOut or ShutDown. This is the one place in
//                                resilience/ that waits on real time (condition variables). A
//                                deadline at or before now behaves like trySubmit but reports
//                                TimedOut; TimePoint::max() waits without a time limit. Blocked
//                                submitters are not served in FIFO order.
// Do not call submitUntil() from an event-loop thread - that is what trySubmit() is for.
//
// Shutdown (idempotent; the first call stops acceptance, every call waits until all workers have
// exited, except when made from a task - see below):
//   Drain   workers run every task already queued, then exit.
//   Cancel  tasks still queued are invoked with Cancelled on the calling thread, in FIFO order;
//           tasks already running finish normally. Cancel may follow a Drain in progress (from
//           another thread) to abandon the rest of the queue.
// Submitters blocked in submitUntil() return ShutDown with their task. The destructor performs
// shutdown(Drain). Calling shutdown() from inside a task starts the shutdown but cannot wait for
// the calling worker itself; the destructor must then run on a non-worker thread.
//
// Tasks must not throw: they are invoked from noexcept code (std::terminate). Tasks run in FIFO
// order of acceptance (start order; with several workers they overlap).
// Thread-safety: every member function may be called concurrently from any thread.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

#include "resilience/clock.h"

namespace sluice::resilience {

class WorkerPool {
 public:
  static constexpr std::size_t kMaxThreads = 1024;
  static constexpr std::size_t kMaxQueueCapacity = std::size_t{1} << 24;

  struct Settings {
    std::size_t threads = 1;            // workers started by the constructor, [1, kMaxThreads]
    std::size_t queue_capacity = 1024;  // tasks waiting (not counting running), [1, kMax...]
  };

  // What a task is told when the pool invokes it.
  enum class TaskStatus {
    Run,        // running on a worker thread: do the work
    Cancelled,  // removed by shutdown(Cancel) before it ran: clean up / report failure only
  };

  // A move-only, type-erased `void(TaskStatus)` callable, invoked at most once.
  class Task {
   public:
    Task() noexcept = default;
    // Implicit on purpose, so that lambdas can be passed to trySubmit()/submitUntil() directly.
    template <typename F,
              typename = std::enable_if_t<!std::is_same_v<std::decay_t<F>, Task> &&
                                          std::is_invocable_v<std::decay_t<F>&, TaskStatus>>>
    // NOLINTNEXTLINE(bugprone-forwarding-reference-overload): enable_if excludes Task itself
    Task(F&& f)  // NOLINT(google-explicit-constructor,hicpp-explicit-conversions)
        : impl_(std::make_unique<Impl<std::decay_t<F>>>(std::forward<F>(f))) {}

    // True while it holds a callable that has not been invoked.
    explicit operator bool() const noexcept { return impl_ != nullptr; }

    // Invokes the callable once and destroys it; a no-op on an empty task.
    void operator()(TaskStatus status) noexcept {
      if (impl_ != nullptr) {
        const std::unique_ptr<Concept> impl = std::move(impl_);
        impl->call(status);
      }
    }

   private:
    struct Concept {
      Concept() = default;
      Concept(const Concept&) = delete;
      Concept& operator=(const Concept&) = delete;
      Concept(Concept&&) = delete;
      Concept& operator=(Concept&&) = delete;
      virtual ~Concept() = default;
      virtual void call(TaskStatus status) = 0;
    };
    template <typename F>
    struct Impl final : Concept {
      // Impl is neither copyable nor movable (Concept), so nothing can be hidden.
      template <typename G>
      explicit Impl(G&& g)  // NOLINT(bugprone-forwarding-reference-overload)
          : f(std::forward<G>(g)) {}
      void call(TaskStatus status) override { f(status); }
      F f;
    };
    std::unique_ptr<Concept> impl_;
  };

  enum class SubmitStatus {
    Accepted,   // queued; the pool will invoke the task exactly once
    QueueFull,  // trySubmit: no room right now
    TimedOut,   // submitUntil: still no room at the deadline
    ShutDown,   // shutdown() has begun; nothing is accepted any more
  };
  struct [[nodiscard]] SubmitResult {
    SubmitStatus status = SubmitStatus::ShutDown;
    Task task;  // the task handed back, uninvoked, when status != Accepted; empty otherwise
  };

  enum class ShutdownMode { Drain, Cancel };

  struct Stats {
    std::uint64_t accepted = 0;           // submissions that returned Accepted
    std::uint64_t ran = 0;                // tasks that returned from TaskStatus::Run
    std::uint64_t cancelled = 0;          // tasks invoked with TaskStatus::Cancelled
    std::uint64_t rejected_full = 0;      // trySubmit() -> QueueFull
    std::uint64_t timed_out = 0;          // submitUntil() -> TimedOut
    std::uint64_t rejected_shutdown = 0;  // -> ShutDown
    std::size_t queued = 0;               // waiting in the queue now
    std::size_t running = 0;              // being run by workers now
    std::size_t blocked_submitters = 0;   // threads waiting in submitUntil() now
    bool accepting = true;                // false once shutdown() has begun
  };
  // After shutdown() returns: accepted == ran + cancelled and queued == running == 0.

  // Explains what is wrong with `settings`, or nullopt when they are usable.
  [[nodiscard]] static std::optional<std::string> validate(const Settings& settings);

  // Starts the worker threads. Precondition: validate(settings) is nullopt (values are clamped
  // into range otherwise). If the system cannot start a thread, the threads already started are
  // stopped and std::system_error propagates.
  explicit WorkerPool(const Settings& settings);
  WorkerPool(const WorkerPool&) = delete;
  WorkerPool& operator=(const WorkerPool&) = delete;
  WorkerPool(WorkerPool&&) = delete;
  WorkerPool& operator=(WorkerPool&&) = delete;
  // shutdown(Drain).
  ~WorkerPool();

  // Queues `task` if there is room; never waits.
  SubmitResult trySubmit(Task task);
  // Queues `task`, waiting while the queue is full until `deadline`.
  SubmitResult submitUntil(Task task, TimePoint deadline);

  // Stops accepting tasks, then drains or cancels the queue and joins the workers (see above).
  void shutdown(ShutdownMode mode);

  // A consistent snapshot (taken under the pool's lock).
  [[nodiscard]] Stats stats() const;

 private:
  void workerLoop() noexcept;
  // Both require mutex_; pushLocked() requires count_ < capacity_, popLocked() count_ > 0.
  void pushLocked(Task&& task) noexcept;
  Task popLocked() noexcept;
  [[nodiscard]] bool isWorkerThread() const noexcept;
  void joinWorkers();

  const std::size_t capacity_;
  mutable std::mutex mutex_;
  std::condition_variable not_empty_;  // workers wait here
  std::condition_variable not_full_;   // submitUntil() waits here
  std::vector<Task> ring_;             // guarded by mutex_
  std::size_t head_ = 0;               // guarded
  std::size_t count_ = 0;              // guarded
  bool accepting_ = true;              // guarded
  std::size_t running_ = 0;            // guarded
  std::size_t blocked_ = 0;            // guarded: threads inside submitUntil()'s wait
  Stats stats_;                        // guarded: the counters (the rest is derived on read)

  std::mutex join_mutex_;                    // serializes joining across shutdown() calls
  std::vector<std::thread> threads_;         // guarded by join_mutex_ after construction
  std::vector<std::thread::id> worker_ids_;  // immutable after construction
};

}  // namespace sluice::resilience
