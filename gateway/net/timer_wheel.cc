#include "gateway/net/timer_wheel.h"

#include <algorithm>

namespace sluice::gateway::net {

void TimerWheel::Entry::unlink() noexcept {
  if (next == nullptr) return;
  prev->next = next;
  next->prev = prev;
  prev = nullptr;
  next = nullptr;
}

TimerWheel::TimerWheel(Duration resolution, TimePoint start) noexcept
    : resolution_(resolution), start_(start) {
  for (Link& s : slots_) s.prev = s.next = &s;
}

TimerWheel::~TimerWheel() {
  // Entries outlive the wheel only in teardown; leave them unarmed rather than dangling.
  for (Link& s : slots_) {
    while (s.next != &s) static_cast<Entry*>(s.next)->unlink();
  }
}

std::uint64_t TimerWheel::tickAt(TimePoint t) const noexcept {
  if (t <= start_) return 0;
  return static_cast<std::uint64_t>((t - start_) / resolution_);
}

void TimerWheel::pushBack(Link& head, Entry& e) noexcept {
  e.prev = head.prev;
  e.next = &head;
  head.prev->next = &e;
  head.prev = &e;
}

void TimerWheel::schedule(Entry& e, TimePoint deadline) noexcept {
  e.unlink();
  // Round up so an entry never fires before its deadline.
  std::uint64_t tick = tickAt(deadline);
  if (start_ + resolution_ * static_cast<Duration::rep>(tick) < deadline) ++tick;
  e.expires_tick_ = std::max(tick, current_tick_ + 1);
  pushBack(slots_[e.expires_tick_ % kSlots], e);
}

std::size_t TimerWheel::advance(TimePoint now) {
  const std::uint64_t target = tickAt(now);
  if (target <= current_tick_) return 0;
  // Collect first, fire after: callbacks may re-arm entries into slots we have yet to visit.
  Link due;
  due.prev = due.next = &due;
  const std::uint64_t steps = std::min<std::uint64_t>(target - current_tick_, kSlots);
  for (std::uint64_t i = 1; i <= steps; ++i) {
    Link& slot = slots_[(current_tick_ + i) % kSlots];
    for (Link* l = slot.next; l != &slot;) {
      auto* e = static_cast<Entry*>(l);
      l = l->next;
      if (e->expires_tick_ <= target) {
        e->unlink();
        pushBack(due, *e);
      }
    }
  }
  current_tick_ = target;
  std::size_t fired = 0;
  while (due.next != &due) {
    auto* e = static_cast<Entry*>(due.next);
    e->unlink();
    ++fired;
    e->callback_(e->context_);
  }
  return fired;
}

std::size_t TimerWheel::size() const noexcept {
  std::size_t n = 0;
  for (const Link& s : slots_) {
    for (const Link* l = s.next; l != &s; l = l->next) ++n;
  }
  return n;
}

}  // namespace sluice::gateway::net
