// A listening socket for one worker: SO_REUSEPORT, so that every worker has its own socket on the
// same address and the kernel spreads new connections across them (no accept lock, no
// thundering herd).
//
// Bound on the main thread (at start and by a reload that adds a listener) so that an address in
// use or a permission problem is found before anything is committed; each worker then takes its
// descriptor onto its own event loop (Worker::adopt).
#pragma once

#include <string>
#include <variant>

#include "gateway/config/config.h"

namespace sluice::gateway::server {

// The bound, listening descriptor, or an error naming the listener and the reason
// ("listener 'public' on 0.0.0.0:80: bind: Permission denied").
[[nodiscard]] std::variant<int, std::string> bindListener(const config::Listener& listener);

// Owns descriptors until they are handed over (closes what is left).
class ListenFds {
 public:
  ListenFds() = default;
  ListenFds(const ListenFds&) = delete;
  ListenFds& operator=(const ListenFds&) = delete;
  ListenFds(ListenFds&& o) noexcept : fds_(std::move(o.fds_)) {}
  ListenFds& operator=(ListenFds&& o) noexcept;
  ~ListenFds();

  void add(std::string listener, int fd) { fds_.emplace_back(std::move(listener), fd); }
  // The descriptor for `listener`, now owned by the caller; -1 if there is none.
  [[nodiscard]] int take(const std::string& listener);

 private:
  std::vector<std::pair<std::string, int>> fds_;
};

}  // namespace sluice::gateway::server
