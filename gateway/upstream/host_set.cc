#include "gateway/upstream/host_set.h"

#include <algorithm>
#include <unordered_set>

namespace sluice::gateway::upstream {

HostSet::HostSet(const std::vector<Host>& static_hosts, std::size_t dynamic_slots)
    : max_dynamic_(dynamic_slots) {
  for (Host h : static_hosts) {
    h.source = Source::Static;
    h.occupant = next_occupant_++;
    index_.emplace(h.address, slots_.size());
    slots_.push_back(std::move(h));
  }
  slots_.resize(slots_.size() + dynamic_slots);
  vacated_.assign(slots_.size(), TimePoint::min());
}

void HostSet::vacate(std::size_t slot, TimePoint now) {
  index_.erase(slots_[slot].address);
  slots_[slot] = Host{};
  vacated_[slot] = now;
  ++version_;
}

std::size_t HostSet::occupied() const noexcept {
  return static_cast<std::size_t>(
      std::count_if(slots_.begin(), slots_.end(), [](const Host& h) { return !h.empty(); }));
}

std::optional<std::size_t> HostSet::find(std::string_view address) const {
  const auto it = index_.find(std::string(address));
  if (it == index_.end()) return std::nullopt;
  return it->second;
}

HostSet::Upsert HostSet::upsert(Host host, TimePoint now) {
  host.expires = host.ttl.count() > 0 ? now + host.ttl : TimePoint::max();
  if (const auto at = find(host.address)) {
    Host& h = slots_[*at];
    if (h.source != host.source) return Upsert::Conflict;
    const bool changed = h.weight != host.weight || h.metadata != host.metadata;
    h.weight = host.weight;
    h.ttl = host.ttl;
    h.expires = host.expires;
    h.metadata = std::move(host.metadata);
    if (changed) ++version_;
    return Upsert::Updated;
  }
  if (host.source != Source::Static) {
    const auto dynamic = std::count_if(slots_.begin(), slots_.end(), [](const Host& h) {
      return !h.empty() && h.source != Source::Static;
    });
    if (static_cast<std::size_t>(dynamic) >= max_dynamic_) return Upsert::Full;
  }
  // A slot empty the longest is preferred: reusing one drained just now would mix the leaving
  // host's last connections into the newcomer's pool numbers.
  std::optional<std::size_t> free;
  for (std::size_t i = 0; i < slots_.size(); ++i) {
    if (slots_[i].empty() && (!free || vacated_[i] < vacated_[*free])) free = i;
  }
  if (!free) return Upsert::Full;
  host.occupant = next_occupant_++;
  host.added = now;
  index_.emplace(host.address, *free);
  slots_[*free] = std::move(host);
  ++version_;
  return Upsert::Added;
}

std::optional<bool> HostSet::setDrained(std::string_view address, bool drained) {
  const auto at = find(address);
  if (!at) return std::nullopt;
  if (slots_[*at].drained == drained) return false;
  slots_[*at].drained = drained;
  ++version_;
  return true;
}

std::optional<std::size_t> HostSet::remove(std::string_view address, Source source, TimePoint now) {
  const auto at = find(address);
  if (!at || slots_[*at].source != source || source == Source::Static) return std::nullopt;
  vacate(*at, now);
  return at;
}

std::vector<std::string> HostSet::replace(Source source, std::vector<Host> hosts, TimePoint now) {
  std::vector<std::string> refused;
  std::unordered_set<std::string_view> wanted;
  for (const Host& h : hosts) wanted.insert(h.address);
  for (std::size_t i = 0; i < slots_.size(); ++i) {
    const Host& h = slots_[i];
    if (h.empty() || h.source != source) continue;
    if (!wanted.contains(h.address)) vacate(i, now);
  }
  for (Host& h : hosts) {
    h.source = source;
    const std::string address = h.address;
    const Upsert r = upsert(std::move(h), now);
    if (r == Upsert::Full || r == Upsert::Conflict) refused.push_back(address);
  }
  return refused;
}

std::vector<std::string> HostSet::reconfigure(std::vector<Host> static_hosts,
                                              std::size_t max_dynamic, TimePoint now) {
  max_dynamic_ = max_dynamic;
  return replace(Source::Static, std::move(static_hosts), now);
}

std::vector<std::string> HostSet::expire(TimePoint now) {
  std::vector<std::string> gone;
  for (std::size_t i = 0; i < slots_.size(); ++i) {
    const Host& h = slots_[i];
    if (h.empty() || h.source != Source::Registry || now < h.expires) continue;
    gone.push_back(h.address);
    vacate(i, now);
  }
  return gone;
}

}  // namespace sluice::gateway::upstream
