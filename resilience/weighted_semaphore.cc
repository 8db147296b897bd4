#include "resilience/weighted_semaphore.h"

#include <algorithm>
#include <cassert>

namespace sluice::resilience {

std::optional<std::string> WeightedSemaphore::validate(const Settings& settings) {
  if (settings.capacity > kMaxCapacity) {
    return "capacity must be at most 2^40 units (got " + std::to_string(settings.capacity) + ")";
  }
  return std::nullopt;
}

WeightedSemaphore::WeightedSemaphore(const Settings& settings) noexcept
    : state_(2 * static_cast<std::int64_t>(std::min(settings.capacity, kMaxCapacity))),
      capacity_(std::min(settings.capacity, kMaxCapacity)),
      max_waiters_(settings.max_waiters) {}

WeightedSemaphore::~WeightedSemaphore() {
  WaiterList queued;
  {
    const std::lock_guard lock(mutex_);
    // Permits point at this object: destroying it under them is a use-after-free waiting to
    // happen. (Debug builds only; queued waiters hold nothing.)
    assert(delivering_ == false && pending_.empty());
    assert(available() == static_cast<std::int64_t>(capacity()) &&
           "a Permit outlives its semaphore");
    queued.swap(queue_);
    for (const auto& waiter : queued) {
      waiter->state = WaiterState::Cancelled;
    }
  }
  // Callback destructors run unlocked: they may own resources whose destructors call back in.
  for (const auto& waiter : queued) {
    waiter->discard();
  }
}

WeightedSemaphore::Permit WeightedSemaphore::tryAcquire(std::size_t weight) noexcept {
  if (weight == 0) {
    return {this, 0};
  }
  if (weight > kMaxCapacity) {
    return {};
  }
  const auto need = static_cast<std::int64_t>(weight);
  std::int64_t state = state_.load(std::memory_order_relaxed);
  while ((state & kWaitersBit) == 0 && (state >> 1) >= need) {
    // acquire: pairs with the release that returned these units, so the previous holder's writes
    // are visible to the new one (what a mutex would give).
    if (state_.compare_exchange_weak(state, state - 2 * need, std::memory_order_acquire,
                                     std::memory_order_relaxed)) {
      return {this, weight};
    }
  }
  return {};
}

void WeightedSemaphore::release(std::size_t weight) noexcept {
  if (weight == 0) {
    return;
  }
  const std::int64_t delta = 2 * static_cast<std::int64_t>(weight);
  std::int64_t state = state_.load(std::memory_order_relaxed);
  // With nobody queued the units simply go back; once the waiters bit is set they must go
  // through the lock so that they are handed to the queue head instead of to a barging tryAcquire.
  while ((state & kWaitersBit) == 0) {
    if (state_.compare_exchange_weak(state, state + delta, std::memory_order_release,
                                     std::memory_order_relaxed)) {
      return;
    }
  }
  releaseSlow(delta);
}

void WeightedSemaphore::releaseSlow(std::int64_t delta) noexcept {
  std::unique_lock lock(mutex_);
  // The bit may have been cleared (last waiter cancelled) between our load and the lock: adding
  // atomically is right in both cases, and grantLocked() then finds nothing or grants.
  state_.fetch_add(delta, std::memory_order_acq_rel);
  grantLocked();
  deliver(lock);
}

WeightedSemaphore::AsyncAcquire WeightedSemaphore::enqueue(std::shared_ptr<Waiter> waiter) {
  // Allocate the list node before taking the lock; splicing it in later cannot fail.
  WaiterList node;
  node.push_back(waiter);
  const std::size_t weight = waiter->weight;
  const auto need = static_cast<std::int64_t>(weight);

  AsyncAcquire result;
  {
    const std::lock_guard lock(mutex_);
    if (weight > capacity_.load(std::memory_order_relaxed)) {
      result.status = AcquireStatus::ExceedsCapacity;
    } else {
      std::int64_t state = state_.load(std::memory_order_relaxed);
      while (true) {
        if ((state & kWaitersBit) == 0 && (state >> 1) >= need) {
          // Units came back since the caller's tryAcquire(): take them rather than queue.
          if (state_.compare_exchange_weak(state, state - 2 * need, std::memory_order_acquire,
                                           std::memory_order_relaxed)) {
            result.status = AcquireStatus::Acquired;
            result.permit = Permit(this, weight);
            break;
          }
          continue;
        }
        if (queue_.size() >= max_waiters_.load(std::memory_order_relaxed)) {
          result.status = AcquireStatus::QueueFull;
          break;
        }
        // Setting the bit by CAS fails if a lock-free release slipped units in meanwhile; we then
        // loop and take them. Once the bit is set, releases come through the lock and see us.
        if ((state & kWaitersBit) == 0 &&
            !state_.compare_exchange_weak(state, state | kWaitersBit, std::memory_order_acq_rel,
                                          std::memory_order_relaxed)) {
          continue;
        }
        waiter->position = node.begin();
        queue_.splice(queue_.end(), node);
        waiting_.fetch_add(1, std::memory_order_release);
        result.status = AcquireStatus::Queued;
        result.ticket = WaitTicket(std::move(waiter));
        break;
      }
    }
  }
  // A waiter that was not queued dies here, unlocked, destroying its callback uncalled.
  return result;
}

WeightedSemaphore::CancelResult WeightedSemaphore::cancel(const WaitTicket& ticket) noexcept {
  Waiter* const waiter = ticket.waiter_.get();
  if (waiter == nullptr || waiter->owner != this) {
    return CancelResult::NotQueued;
  }
  WaiterList removed;
  {
    std::unique_lock lock(mutex_);
    switch (waiter->state) {
      case WaiterState::Granted:
        return CancelResult::AlreadyGranted;
      case WaiterState::Cancelled:
        return CancelResult::Cancelled;
      case WaiterState::Queued:
        break;
    }
    removed.splice(removed.end(), queue_, waiter->position);
    waiter->state = WaiterState::Cancelled;
    waiting_.fetch_sub(1, std::memory_order_release);
    // If the cancelled waiter was a head too large to fit, the ones behind it may fit now
    // (x/sync/semaphore does the same); grantLocked() also clears the bit if the queue emptied.
    grantLocked();
    deliver(lock);
  }
  // Only the thread that moved the state to Cancelled touches the callback, so this is race-free.
  waiter->discard();
  return CancelResult::Cancelled;
}

void WeightedSemaphore::setCapacity(std::size_t capacity) noexcept {
  capacity = std::min(capacity, kMaxCapacity);
  std::unique_lock lock(mutex_);
  const std::size_t old = capacity_.load(std::memory_order_relaxed);
  capacity_.store(capacity, std::memory_order_release);
  const std::int64_t delta = static_cast<std::int64_t>(capacity) - static_cast<std::int64_t>(old);
  state_.fetch_add(2 * delta, std::memory_order_acq_rel);
  grantLocked();
  deliver(lock);
}

void WeightedSemaphore::grantLocked() noexcept {
  while (!queue_.empty()) {
    Waiter& head = *queue_.front();
    const auto need = static_cast<std::int64_t>(head.weight);
    // The queue is non-empty, so the waiters bit is set and every other writer of state_ is
    // either failing (tryAcquire) or waiting for our lock (release): check-then-subtract is safe.
    if ((state_.load(std::memory_order_acquire) >> 1) < need) {
      break;  // FIFO: a head that does not fit blocks everyone behind it, however small
    }
    state_.fetch_sub(2 * need, std::memory_order_acq_rel);
    head.state = WaiterState::Granted;
    pending_.splice(pending_.end(), queue_, queue_.begin());
    waiting_.fetch_sub(1, std::memory_order_release);
  }
  if (queue_.empty() && (state_.load(std::memory_order_relaxed) & kWaitersBit) != 0) {
    // Only lock holders touch the bit, and it is set, so subtracting it cannot borrow.
    state_.fetch_sub(kWaitersBit, std::memory_order_acq_rel);
  }
}

void WeightedSemaphore::deliver(std::unique_lock<std::mutex>& lock) noexcept {
  // A callback that releases its permit synchronously re-enters release() -> deliver() on this
  // stack; another thread may release concurrently. Both just append to pending_ and leave the
  // single active deliverer to drain it, which bounds recursion and keeps delivery FIFO.
  if (delivering_ || pending_.empty()) {
    lock.unlock();
    return;
  }
  delivering_ = true;
  WaiterList batch;
  while (true) {
    batch.swap(pending_);
    if (batch.empty()) {
      break;
    }
    lock.unlock();
    for (const auto& waiter : batch) {
      waiter->grant(Permit(this, waiter->weight));
    }
    batch.clear();
    lock.lock();
  }
  delivering_ = false;
  lock.unlock();
}

}  // namespace sluice::resilience
