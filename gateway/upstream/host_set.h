// HostSet: a cluster's hosts while sluice runs - the static endpoints of the config, plus hosts
// that register through the admin API (with a TTL that heartbeats renew), are listed in a
// watched endpoints file, or are under a watched etcd prefix.
//
// Hosts live in slots, fixed in number (the static endpoints + discovery.max_hosts), so that
// everything indexed by host - each worker's pools and balancer, the stat shards, outlier and
// active health - is sized once and a change is a slot going empty or getting a new occupant,
// never a reallocation under the workers' feet. A slot's `occupant` id changes whenever it gets
// another host, which is how workers tell "same host, new weight" from "a new host here".
//
// Main thread only: the admin API, the file watcher and the TTL sweep change it there, and the
// server posts a copy of the slots to every worker after each change (Worker::updateHosts), so
// workers never read it directly. A host that leaves is drained by each worker: no new requests,
// in-flight ones finish, its pooled connections close.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include <boost/asio/ip/tcp.hpp>

namespace sluice::gateway::upstream {

class HostSet {
 public:
  using TimePoint = std::chrono::steady_clock::time_point;
  enum class Source : std::uint8_t { Static, Registry, File, Etcd };
  static constexpr std::string_view sourceName(Source s) {
    return s == Source::Static     ? "static"
           : s == Source::Registry ? "registry"
           : s == Source::File     ? "file"
                                   : "etcd";
  }

  struct Host {
    std::string address;  // "ip:port", the host's identity
    boost::asio::ip::tcp::endpoint endpoint;
    std::uint32_t weight = 1;
    Source source = Source::Static;
    std::uint64_t occupant = 0;            // 0: the slot is empty
    TimePoint added{};                     // when this occupant arrived (slow start ramps from it)
    TimePoint expires = TimePoint::max();  // registry: renewed by each heartbeat
    std::chrono::milliseconds ttl{0};      // registry
    std::map<std::string, std::string> metadata;
    // Drained by an operator: picked by no balancer until undrained, its idle connections
    // closed. Kept while the host stays (renewals and reloads do not undrain it).
    bool drained = false;

    [[nodiscard]] bool empty() const noexcept { return occupant == 0; }
  };

  // The static hosts take the first slots; `dynamic_slots` more wait for discovery.
  HostSet(const std::vector<Host>& static_hosts, std::size_t dynamic_slots);

  // A reload: the static hosts become `static_hosts` (new ones take free slots, missing ones
  // leave, weights change in place) and at most `max_dynamic` discovered hosts may be there at
  // once (those beyond it are not removed, but no new one is admitted until below it). Returns
  // the addresses that found no slot or belong to a discovered host. Hosts that stay keep their
  // slot and occupant, so workers keep their pools.
  std::vector<std::string> reconfigure(std::vector<Host> static_hosts, std::size_t max_dynamic,
                                       TimePoint now);

  [[nodiscard]] std::size_t capacity() const noexcept { return slots_.size(); }
  [[nodiscard]] const std::vector<Host>& slots() const noexcept { return slots_; }
  [[nodiscard]] std::size_t occupied() const noexcept;
  // The slot of `address`, if a host there has it.
  [[nodiscard]] std::optional<std::size_t> find(std::string_view address) const;

  enum class Upsert : std::uint8_t {
    Added,     // a new host in a free slot
    Updated,   // already there from the same source: weight, TTL and metadata renewed
    Full,      // no free slot
    Conflict,  // the address belongs to another source (static, or the other discovery kind)
  };
  // Registers or renews `host` (its source, address, endpoint, weight, ttl, metadata) at `now`.
  Upsert upsert(Host host, TimePoint now);
  // Removes the host at `address` if `source` owns it. Returns its slot.
  std::optional<std::size_t> remove(std::string_view address, Source source, TimePoint now);
  // Makes `source`'s hosts exactly `hosts` (a new file): adds, updates and removes. Returns the
  // addresses that did not fit or belong to another source, for the caller to report.
  std::vector<std::string> replace(Source source, std::vector<Host> hosts, TimePoint now);
  // Drains or undrains the host at `address`: nullopt when no host has it, else whether that
  // changed anything.
  std::optional<bool> setDrained(std::string_view address, bool drained);
  // Removes registry hosts whose TTL passed. Returns their addresses.
  std::vector<std::string> expire(TimePoint now);

  // Bumped by every change; the server posts the slots to the workers when it moves.
  [[nodiscard]] std::uint64_t version() const noexcept { return version_; }

 private:
  void vacate(std::size_t slot, TimePoint now);

  std::vector<Host> slots_;
  std::size_t max_dynamic_;         // discovered hosts admitted at once
  std::vector<TimePoint> vacated_;  // when each slot last went empty (min: never used)
  std::unordered_map<std::string, std::size_t> index_;  // address -> slot, occupied slots
  std::uint64_t next_occupant_ = 1;
  std::uint64_t version_ = 0;
};

}  // namespace sluice::gateway::upstream
