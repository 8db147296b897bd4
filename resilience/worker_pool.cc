#include "resilience/worker_pool.h"

#include <algorithm>
#include <system_error>

namespace sluice::resilience {

std::optional<std::string> WorkerPool::validate(const Settings& settings) {
  if (settings.threads < 1 || settings.threads > kMaxThreads) {
    return "threads must be in [1, 1024] (got " + std::to_string(settings.threads) + ")";
  }
  if (settings.queue_capacity < 1 || settings.queue_capacity > kMaxQueueCapacity) {
    return "queue_capacity must be in [1, 2^24] (got " + std::to_string(settings.queue_capacity) +
           ")";
  }
  return std::nullopt;
}

WorkerPool::WorkerPool(const Settings& settings)
    : capacity_(std::clamp<std::size_t>(settings.queue_capacity, 1, kMaxQueueCapacity)),
      ring_(capacity_) {
  const std::size_t threads = std::clamp<std::size_t>(settings.threads, 1, kMaxThreads);
  threads_.reserve(threads);
  worker_ids_.reserve(threads);
  try {
    for (std::size_t i = 0; i < threads; ++i) {
      threads_.emplace_back([this] { workerLoop(); });
      worker_ids_.push_back(threads_.back().get_id());
    }
  } catch (...) {
    // A joinable std::thread must not be destroyed: stop the ones that started, then rethrow.
    shutdown(ShutdownMode::Drain);
    throw;
  }
}

WorkerPool::~WorkerPool() { shutdown(ShutdownMode::Drain); }

void WorkerPool::pushLocked(Task&& task) noexcept {
  ring_[(head_ + count_) % capacity_] = std::move(task);
  ++count_;
}

WorkerPool::Task WorkerPool::popLocked() noexcept {
  Task task = std::move(ring_[head_]);
  head_ = (head_ + 1) % capacity_;
  --count_;
  return task;
}

WorkerPool::SubmitResult WorkerPool::trySubmit(Task task) {
  {
    const std::lock_guard lock(mutex_);
    if (!accepting_) {
      ++stats_.rejected_shutdown;
      return {SubmitStatus::ShutDown, std::move(task)};
    }
    if (count_ == capacity_) {
      ++stats_.rejected_full;
      return {SubmitStatus::QueueFull, std::move(task)};
    }
    pushLocked(std::move(task));
    ++stats_.accepted;
  }
  not_empty_.notify_one();
  return {SubmitStatus::Accepted, {}};
}

WorkerPool::SubmitResult WorkerPool::submitUntil(Task task, TimePoint deadline) {
  {
    std::unique_lock lock(mutex_);
    const auto ready = [this] { return count_ < capacity_ || !accepting_; };
    if (!ready()) {
      ++blocked_;
      if (deadline == TimePoint::max()) {
        // wait_until(max) would overflow converting to the native clock in some libraries.
        not_full_.wait(lock, ready);
      } else {
        (void)not_full_.wait_until(lock, deadline, ready);
      }
      --blocked_;
    }
    if (!accepting_) {
      ++stats_.rejected_shutdown;
      return {SubmitStatus::ShutDown, std::move(task)};
    }
    if (count_ == capacity_) {
      ++stats_.timed_out;
      return {SubmitStatus::TimedOut, std::move(task)};
    }
    pushLocked(std::move(task));
    ++stats_.accepted;
  }
  not_empty_.notify_one();
  return {SubmitStatus::Accepted, {}};
}

void WorkerPool::workerLoop() noexcept {
  bool finished_one = false;
  while (true) {
    Task task;
    bool wake_submitter = false;
    {
      std::unique_lock lock(mutex_);
      // Account for the previous task here, in the lock we need anyway.
      if (finished_one) {
        --running_;
        ++stats_.ran;
      }
      not_empty_.wait(lock, [this] { return count_ > 0 || !accepting_; });
      if (count_ == 0) {
        return;  // shutting down and nothing left to drain
      }
      task = popLocked();
      ++running_;
      wake_submitter = blocked_ > 0;
    }
    if (wake_submitter) {
      not_full_.notify_one();
    }
    task(TaskStatus::Run);
    finished_one = true;
  }
}

bool WorkerPool::isWorkerThread() const noexcept {
  return std::find(worker_ids_.begin(), worker_ids_.end(), std::this_thread::get_id()) !=
         worker_ids_.end();
}

void WorkerPool::shutdown(ShutdownMode mode) {
  std::vector<Task> cancelled;
  {
    const std::unique_lock lock(mutex_);
    accepting_ = false;
    if (mode == ShutdownMode::Cancel && count_ > 0) {
      cancelled.reserve(count_);  // may throw before anything was taken out: nothing is lost
      while (count_ > 0) {
        cancelled.push_back(popLocked());
      }
    }
  }
  not_empty_.notify_all();
  not_full_.notify_all();
  // Outside the lock: a cancelled task may call back into the pool (and is told ShutDown).
  for (Task& task : cancelled) {
    task(TaskStatus::Cancelled);
    const std::lock_guard lock(mutex_);
    ++stats_.cancelled;
  }
  // From inside a task we must not wait: this worker cannot join itself, and two workers doing
  // so would each wait for the other. The workers exit on their own; the destructor joins them.
  if (isWorkerThread()) {
    return;
  }
  joinWorkers();
}

void WorkerPool::joinWorkers() {
  const std::lock_guard lock(join_mutex_);
  for (std::thread& thread : threads_) {
    if (thread.joinable()) {
      thread.join();
    }
  }
}

WorkerPool::Stats WorkerPool::stats() const {
  const std::lock_guard lock(mutex_);
  Stats out = stats_;
  out.queued = count_;
  out.running = running_;
  out.blocked_submitters = blocked_;
  out.accepting = accepting_;
  return out;
}

}  // namespace sluice::resilience
