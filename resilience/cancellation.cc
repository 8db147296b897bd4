#include "resilience/cancellation.h"

#include <atomic>
#include <condition_variable>
#include <list>
#include <map>
#include <mutex>
#include <thread>
#include <vector>

namespace sluice::resilience {
namespace detail {

// Node states. kExpiredThenCancelled exists only so that an explicit cancel that arrives after a
// node expired is remembered: ParentDeadline::Ignore children created later must start
// cancelled, and a second explicit cancel must not walk the subtree again.
constexpr std::uint8_t kLive = 0;
constexpr std::uint8_t kCancelled = 1;
constexpr std::uint8_t kExpired = 2;
constexpr std::uint8_t kExpiredThenCancelled = 3;

struct CancellationNode {
  struct Child {
    std::weak_ptr<CancellationNode> node;
    // Copied here so the parent can skip such children without locking their weak_ptr: dropping
    // a locked shared_ptr under the parent's mutex could run the child's destructor, which takes
    // that same mutex.
    bool ignores_parent_deadline;
  };

  CancellationNode(Deadline d, bool ignores) : deadline(d), ignores_parent_deadline(ignores) {}
  CancellationNode(const CancellationNode&) = delete;
  CancellationNode& operator=(const CancellationNode&) = delete;
  CancellationNode(CancellationNode&&) = delete;
  CancellationNode& operator=(CancellationNode&&) = delete;

  ~CancellationNode() {
    if (parent) {
      const std::lock_guard lock(parent->mutex);
      parent->children.erase(position_in_parent);
    }
  }

  std::atomic<std::uint8_t> state{kLive};
  const Deadline deadline;
  const bool ignores_parent_deadline;

  // Written once before the node is published, read by the destructor.
  std::shared_ptr<CancellationNode> parent;
  std::list<Child>::iterator position_in_parent;

  std::mutex mutex;
  std::condition_variable callback_done;
  std::list<Child> children;                                       // guarded by mutex
  std::map<std::uint64_t, CancellationToken::Callback> callbacks;  // guarded; ordered by id
  std::uint64_t next_callback_id = 1;                              // guarded
  std::uint64_t running_callback = 0;                              // guarded; 0 = none
  std::thread::id running_thread;                                  // guarded
};

namespace {

std::optional<CancelReason> reasonOf(std::uint8_t state) noexcept {
  switch (state) {
    case kCancelled:
      return CancelReason::Cancelled;
    case kExpired:
    case kExpiredThenCancelled:
      return CancelReason::DeadlineExceeded;
    default:
      return std::nullopt;
  }
}

// Runs and removes the node's callbacks one at a time with the lock released, so that a callback
// may register, unregister or cancel anything (including on this node) without deadlocking, and
// so that an unregistering thread can wait for exactly the callback it owns.
void runCallbacks(CancellationNode& node, std::unique_lock<std::mutex>& lock,
                  CancelReason reason) noexcept {
  while (!node.callbacks.empty()) {
    auto it = node.callbacks.begin();
    node.running_callback = it->first;
    node.running_thread = std::this_thread::get_id();
    {
      CancellationToken::Callback callback = std::move(it->second);
      node.callbacks.erase(it);
      lock.unlock();
      callback(reason);
      // The callback (and its captures) is destroyed here, still unlocked: a capture may own a
      // registration on this very node.
    }
    lock.lock();
    node.running_callback = 0;
    node.callback_done.notify_all();
  }
}

// Cancels `root` and its subtree. Iterative so that deep chains cannot overflow the stack.
// Returns true if `root` itself went from live to cancelled.
bool cancelTree(const std::shared_ptr<CancellationNode>& root, CancelReason reason) {
  bool root_changed = false;
  std::vector<std::shared_ptr<CancellationNode>> pending{root};
  while (!pending.empty()) {
    const std::shared_ptr<CancellationNode> node = std::move(pending.back());
    pending.pop_back();
    std::vector<std::shared_ptr<CancellationNode>> children;
    {
      std::unique_lock lock(node->mutex);
      const std::uint8_t previous = node->state.load(std::memory_order_relaxed);
      bool changed = false;
      if (previous == kLive) {
        node->state.store(reason == CancelReason::Cancelled ? kCancelled : kExpired,
                          std::memory_order_release);
        changed = true;
      } else if (previous == kExpired && reason == CancelReason::Cancelled) {
        // Already expired: observers keep seeing DeadlineExceeded, but the explicit cancel must
        // still reach descendants that ignore deadlines.
        node->state.store(kExpiredThenCancelled, std::memory_order_release);
      } else {
        continue;  // the subtree already saw this cancel (or a stronger one)
      }
      if (node == root) {
        root_changed = changed;
      }
      children.reserve(node->children.size());
      for (const auto& child : node->children) {
        if (reason == CancelReason::DeadlineExceeded && child.ignores_parent_deadline) {
          continue;
        }
        if (auto locked = child.node.lock()) {
          children.push_back(std::move(locked));
        }
      }
      if (changed) {
        runCallbacks(*node, lock, reason);
      }
    }
    // Reverse so that children are visited in creation order (the vector is used as a stack).
    pending.insert(pending.end(), std::make_move_iterator(children.rbegin()),
                   std::make_move_iterator(children.rend()));
  }
  return root_changed;
}

}  // namespace
}  // namespace detail

using detail::CancellationNode;

// ---- CancellationRegistration ----------------------------------------------------------------

CancellationRegistration::CancellationRegistration(std::shared_ptr<CancellationNode> node,
                                                   std::uint64_t id) noexcept
    : node_(std::move(node)), id_(id) {}

CancellationRegistration::CancellationRegistration(CancellationRegistration&& other) noexcept
    : node_(std::move(other.node_)), id_(std::exchange(other.id_, 0)) {}

CancellationRegistration& CancellationRegistration::operator=(
    CancellationRegistration&& other) noexcept {
  if (this != &other) {
    reset();
    node_ = std::move(other.node_);
    id_ = std::exchange(other.id_, 0);
  }
  return *this;
}

CancellationRegistration::~CancellationRegistration() { reset(); }

void CancellationRegistration::reset() noexcept {
  if (!node_) {
    return;
  }
  {
    std::unique_lock lock(node_->mutex);
    if (node_->callbacks.erase(id_) == 0 && node_->running_callback == id_ &&
        node_->running_thread != std::this_thread::get_id()) {
      // Running on another thread: wait so the caller may free what the callback uses.
      node_->callback_done.wait(lock, [this] { return node_->running_callback != id_; });
    }
  }
  node_.reset();
  id_ = 0;
}

// ---- CancellationToken -----------------------------------------------------------------------

bool CancellationToken::isCancelled() const noexcept {
  return node_ && node_->state.load(std::memory_order_acquire) != detail::kLive;
}

std::optional<CancelReason> CancellationToken::reason() const noexcept {
  if (!node_) {
    return std::nullopt;
  }
  return detail::reasonOf(node_->state.load(std::memory_order_acquire));
}

Deadline CancellationToken::deadline() const noexcept {
  return node_ ? node_->deadline : Deadline::infinite();
}

bool CancellationToken::isDone(TimePoint now) const noexcept {
  return node_ && (isCancelled() || node_->deadline.expired(now));
}

bool CancellationToken::expireIfDue(TimePoint now) const {
  if (!node_ || !node_->deadline.expired(now) || isCancelled()) {
    return false;
  }
  return detail::cancelTree(node_, CancelReason::DeadlineExceeded);
}

CancellationRegistration CancellationToken::onCancel(Callback callback) const {
  if (!node_ || !callback) {
    return {};
  }
  std::unique_lock lock(node_->mutex);
  const std::optional<CancelReason> already = detail::reasonOf(node_->state.load());
  if (already) {
    lock.unlock();
    callback(*already);
    return {};
  }
  const std::uint64_t id = node_->next_callback_id++;
  node_->callbacks.emplace(id, std::move(callback));
  return {node_, id};
}

// ---- CancellationSource ----------------------------------------------------------------------

CancellationSource::CancellationSource(Deadline deadline)
    : node_(std::make_shared<CancellationNode>(deadline, false)) {}

CancellationSource CancellationSource::childOf(const CancellationToken& parent, Deadline own,
                                               ParentDeadline mode) {
  const std::shared_ptr<CancellationNode>& parent_node = parent.node_;
  if (!parent_node) {
    return CancellationSource(own);
  }
  const bool ignores = mode == ParentDeadline::Ignore;
  auto child = std::make_shared<CancellationNode>(
      ignores ? own : earlierOf(own, parent_node->deadline), ignores);
  child->parent = parent_node;
  const std::lock_guard lock(parent_node->mutex);
  // Same decision cancelTree would make for this child had it existed when the parent changed.
  switch (parent_node->state.load(std::memory_order_relaxed)) {
    case detail::kCancelled:
      child->state.store(detail::kCancelled, std::memory_order_relaxed);
      break;
    case detail::kExpired:
      if (!ignores) {
        child->state.store(detail::kExpired, std::memory_order_relaxed);
      }
      break;
    case detail::kExpiredThenCancelled:
      child->state.store(ignores ? detail::kCancelled : detail::kExpiredThenCancelled,
                         std::memory_order_relaxed);
      break;
    default:
      break;
  }
  parent_node->children.push_back({child, ignores});
  child->position_in_parent = std::prev(parent_node->children.end());
  return CancellationSource(std::move(child));
}

bool CancellationSource::cancel() {
  return node_ && detail::cancelTree(node_, CancelReason::Cancelled);
}

}  // namespace sluice::resilience
