// Fleet: this instance's entry in etcd (the config's etcd.register) and the list of every
// instance registered under the same prefix, which the admin API shows (/fleet).
//
// The entry is the key `<prefix><name>` under a lease of `ttl`, renewed every ttl/3; its value is
// JSON, the same schema a service in any language can write (docs/distributed.md):
//   {"address": "10.0.0.5:8080", "admin": "http://10.0.0.5:9901", "version": "0.9.0",
//    "generation": 3, "pid": 4242, "started_ms": 1796540000000}
// It is written again after each applied reload (a new generation). If the lease is lost (etcd
// could not be reached for a whole TTL, or an operator revoked it) a new one is granted and the
// entry written again as soon as etcd answers, retried every second. leave() (the drain) revokes
// the lease, so the entry goes at once rather than a TTL later.
//
// Main thread only: the client's answers are posted back to `io`.
#pragma once

#include <chrono>
#include <cstdint>
#include <future>
#include <memory>
#include <string>

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <nlohmann/json.hpp>

#include "gateway/config/config.h"
#include "gateway/etcd/etcd_client.h"
#include "gateway/etcd/range_watch.h"

namespace sluice::gateway::server {

class Fleet {
 public:
  // What this instance says about itself.
  struct Self {
    std::string name;     // the key is prefix + name
    std::string address;  // "ip:port" to send traffic to
    std::string admin;    // "http://ip:port", or empty without an admin listener
    friend bool operator==(const Self&, const Self&) = default;
  };

  Fleet(boost::asio::io_context& io, etcd::EtcdClient& client, config::EtcdRegister settings,
        Self self, std::uint64_t generation);
  ~Fleet();
  Fleet(const Fleet&) = delete;
  Fleet& operator=(const Fleet&) = delete;

  void start();  // registers and starts watching the prefix
  void setGeneration(std::uint64_t generation);
  // Stops renewing and revokes the lease, so the entry goes now rather than a TTL later.
  void leave();
  // Waits (blocking; not from the client's thread) until etcd answered leave()'s revoke, at
  // most `limit`: before the process exits or the client is replaced, which would drop it.
  void waitLeft(std::chrono::milliseconds limit);
  void stop();
  [[nodiscard]] const Self& self() const noexcept { return self_; }

  // {"self": key, "registered": bool, "instances": [{"key":..., <the value's fields>}, ...]}:
  // every entry under the prefix as last seen; a value that is not JSON is shown as "value".
  [[nodiscard]] nlohmann::json list() const;
  [[nodiscard]] static Self describe(const config::Config& config, const config::EtcdRegister& r);

 private:
  void grant();
  void write();
  void retryLater();
  [[nodiscard]] std::string value() const;
  // For a callback of the client's: a function that runs its argument on the main thread if
  // this Fleet is still there then. Made on the main thread, so the callback never touches a
  // Fleet that is gone (lease and put answers cannot be cancelled).
  [[nodiscard]] auto onMain() const;

  boost::asio::io_context& io_;
  etcd::EtcdClient& client_;
  config::EtcdRegister settings_;
  Self self_;
  std::string key_;
  std::uint64_t generation_;
  std::int64_t started_ms_;
  std::int64_t lease_ = 0;  // 0: none held
  etcd::Subscription keep_alive_;
  etcd::RangeWatch members_;
  etcd::RangeWatch::State seen_;
  boost::asio::steady_timer retry_;
  bool stopped_ = false;
  bool left_ = false;
  std::shared_ptr<std::promise<void>> revoked_;  // set when leave()'s revoke is answered
  std::shared_ptr<char> alive_ = std::make_shared<char>();
};

}  // namespace sluice::gateway::server
