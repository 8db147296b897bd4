// Cancellation tree with Go `context` semantics: cancel a request and everything it started.
//
// A CancellationSource owns one node of a tree; its CancellationToken is the read-only view that
// is handed to the work. A child node is created from a parent token; cancelling a node cancels
// its whole subtree, never its ancestors. Each node carries a Deadline: a child's deadline is the
// earlier of its parent's and its own, unless the child is created with ParentDeadline::Ignore.
//
//   CancellationSource request(Deadline::after(now, 2s));
//   CancellationSource call = CancellationSource::childOf(request.token(), Deadline::after(now,
//   500ms)); auto on_cancel = call.token().onCancel([&](CancelReason why) { socket.abort(why); });
//   ...
//   request.cancel();                 // client went away: `call` is cancelled too, reason
//   Cancelled call.expireIfDue(clock.now());    // or: the owner observes the deadline (see below)
//
// Deadlines are observed, not timed: the library owns no timer. A node whose deadline has passed
// is NOT cancelled until someone calls `expireIfDue(now)` on it (or on an ancestor whose own
// deadline has passed); that call cancels it with reason DeadlineExceeded. The owner typically
// arms one timer per request at `token.deadline()` and calls `expireIfDue(now)` from it, or calls
// it from its event loop. Work that wants to stop early without waiting for the owner can test
// `token.isDone(now)`, which also reports a passed deadline.
//
// Guarantees:
//   - Cancelling is idempotent: only the first cancel (or expiry) of a node changes it; its reason
//     never changes afterwards and later calls return false.
//   - Cancelling a node cancels every descendant (with the same reason), never an ancestor.
//   - A callback registered with `onCancel` runs exactly once if the node is cancelled: in the
//     cancelling thread, or immediately in the registering thread if the node is already
//     cancelled. It never runs if its registration is destroyed first. Destroying a registration
//     while its callback runs on another thread blocks until the callback has returned (so the
//     callback's captures stay valid); destroying it from inside the callback itself does not
//     block. Callbacks run without any lock of this library held, one at a time per node, in
//     registration order; a node's callbacks run before its children are cancelled. Callbacks
//     must not throw (they are called from noexcept code: a throw terminates).
//   - A child created under a node that is already cancelled starts cancelled with that reason.
//   - Children may outlive their parents and sources may die before their tokens: every handle
//     shares ownership of its node, and a node keeps its parent alive. Destroying a source does
//     NOT cancel it (like std::stop_source); cancel explicitly, e.g. from a scope guard.
//   - A child created with ParentDeadline::Ignore has only its own deadline and is not cancelled
//     when an ancestor expires (reason DeadlineExceeded); it is still cancelled when an ancestor
//     is cancelled explicitly (reason Cancelled), also if that happens after the ancestor expired.
//     Use it for cleanup that must run after the request's deadline.
//
// Thread-safety: every member function of every class here may be called concurrently from any
// thread, on the same or different handles to the same node. A single handle object (like any
// C++ object) must not be assigned while another thread uses it.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <type_traits>
#include <utility>

#include "resilience/clock.h"
#include "resilience/deadline.h"

namespace sluice::resilience {

// Why a node was cancelled (Go: context.Canceled / context.DeadlineExceeded).
enum class CancelReason : std::uint8_t { Cancelled, DeadlineExceeded };

// Whether a child's deadline is bounded by its parent's.
enum class ParentDeadline : std::uint8_t {
  Inherit,  // deadline = earlier of the parent's and the child's own (Go semantics)
  Ignore,   // deadline = the child's own; ancestors' expiry does not cancel the child
};

namespace detail {
struct CancellationNode;
}  // namespace detail

// Keeps an `onCancel` callback registered; destroying (or `reset()`ing) it unregisters the
// callback. Move-only. An empty registration (default-constructed, moved-from, or returned for a
// callback that already ran) does nothing on destruction.
class CancellationRegistration {
 public:
  CancellationRegistration() noexcept = default;
  CancellationRegistration(CancellationRegistration&& other) noexcept;
  CancellationRegistration& operator=(CancellationRegistration&& other) noexcept;
  CancellationRegistration(const CancellationRegistration&) = delete;
  CancellationRegistration& operator=(const CancellationRegistration&) = delete;
  ~CancellationRegistration();

  // Unregisters now (see the class comment for the blocking rule). Idempotent.
  void reset() noexcept;

  // True while this object still holds a registration (the callback has not been unregistered;
  // it may already have run).
  [[nodiscard]] bool active() const noexcept { return node_ != nullptr; }

 private:
  friend class CancellationToken;
  CancellationRegistration(std::shared_ptr<detail::CancellationNode> node,
                           std::uint64_t id) noexcept;

  std::shared_ptr<detail::CancellationNode> node_;
  std::uint64_t id_ = 0;
};

// Read-only view of a node: observe cancellation, register callbacks, make children. Cheap to
// copy (one shared_ptr). A default-constructed token is never cancelled and has no deadline.
class CancellationToken {
 public:
  using Callback = std::function<void(CancelReason)>;

  CancellationToken() noexcept = default;

  // True once the node has been cancelled (for any reason). Lock-free.
  [[nodiscard]] bool isCancelled() const noexcept;

  // The reason, once cancelled; std::nullopt while not cancelled. Lock-free.
  [[nodiscard]] std::optional<CancelReason> reason() const noexcept;

  // The node's effective deadline (see ParentDeadline). Infinite for a default token.
  [[nodiscard]] Deadline deadline() const noexcept;

  // True if cancelled or if the deadline has passed at `now` (`now >= deadline`). Does not
  // cancel anything: it is for work that polls. Lock-free.
  [[nodiscard]] bool isDone(TimePoint now) const noexcept;

  // Cancels the node with reason DeadlineExceeded if its deadline has passed at `now`
  // (`now >= deadline`) and it is not cancelled yet. Returns true if this call cancelled it.
  // Time going backwards simply finds the deadline not passed. No-op on a default token.
  // NOLINTNEXTLINE(modernize-use-nodiscard): informational; timer callbacks ignore it
  bool expireIfDue(TimePoint now) const;

  // Registers `callback` to run once when the node is cancelled; runs it immediately (in this
  // thread, before returning an empty registration) if it already is. A default token never
  // runs it. Allocates; not for per-byte hot paths.
  [[nodiscard]] CancellationRegistration onCancel(Callback callback) const;

  // False for a default-constructed token (nothing can ever cancel it).
  [[nodiscard]] bool canBeCancelled() const noexcept { return node_ != nullptr; }

 private:
  friend class CancellationSource;
  explicit CancellationToken(std::shared_ptr<detail::CancellationNode> node) noexcept
      : node_(std::move(node)) {}

  std::shared_ptr<detail::CancellationNode> node_;
};

// Owns the right to cancel one node. Copyable: copies share the node (any copy may cancel).
class CancellationSource {
 public:
  // A root node with the given deadline (infinite by default). Allocates.
  explicit CancellationSource(Deadline deadline = Deadline::infinite());

  // A child of `parent`'s node. Its deadline is `earlierOf(parent.deadline(), own)` for
  // ParentDeadline::Inherit, `own` for ParentDeadline::Ignore. If the parent is already
  // cancelled, the child starts cancelled with the parent's reason (except an Ignore child of a
  // parent cancelled by DeadlineExceeded, which starts live). A default-constructed `parent`
  // gives a root. Allocates.
  [[nodiscard]] static CancellationSource childOf(const CancellationToken& parent,
                                                  Deadline own = Deadline::infinite(),
                                                  ParentDeadline mode = ParentDeadline::Inherit);

  [[nodiscard]] CancellationToken token() const noexcept { return CancellationToken(node_); }

  // Cancels the node and its subtree with reason Cancelled, running their callbacks in this
  // thread before returning. Returns true if this call cancelled this node, false if it was
  // already cancelled (a no-op, except that an explicit cancel still reaches ParentDeadline::Ignore
  // descendants of a node that had only expired).
  bool cancel();

  // See CancellationToken::expireIfDue.
  // NOLINTNEXTLINE(modernize-use-nodiscard): informational; timer callbacks ignore it
  bool expireIfDue(TimePoint now) const { return token().expireIfDue(now); }

  [[nodiscard]] bool isCancelled() const noexcept { return token().isCancelled(); }
  [[nodiscard]] std::optional<CancelReason> reason() const noexcept { return token().reason(); }
  [[nodiscard]] Deadline deadline() const noexcept { return token().deadline(); }

 private:
  explicit CancellationSource(std::shared_ptr<detail::CancellationNode> node) noexcept
      : node_(std::move(node)) {}

  std::shared_ptr<detail::CancellationNode> node_;
};

static_assert(std::is_nothrow_move_constructible_v<CancellationRegistration>);
static_assert(std::is_nothrow_move_constructible_v<CancellationToken>);
static_assert(std::is_nothrow_move_constructible_v<CancellationSource>);

}  // namespace sluice::resilience
