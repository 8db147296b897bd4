// RangeWatch: the contents of a key range (one key, or every key under a prefix) kept up to date
// from etcd and handed whole to its owner on the owner's event loop after each change: what
// config from a key, cluster discovery from a prefix and the fleet list are built on.
//
//   RangeWatch hosts(io, client, KeyRange::prefix("/services/api/"),
//                    [&](const RangeWatch::State& s) { replaceHosts(s.kvs); });
//   hosts.start();   // lists the range, then watches it from the revision after the listing
//
// Each change etcd sends (one watch message: one or several writes) gives one call with the
// range as it is after it, in revision order. Nothing is missed across etcd restarts, failovers
// and lost connections: the watch resumes from the revision after the last one it delivered
// (etcd_client.h). If that revision was compacted away meanwhile, the range is listed again and
// the listing delivered. While the range cannot be listed (etcd down at start) the listing is
// retried every second; the owner keeps what it had, and gets nothing until etcd answers.
//
// Thread-safety: construct, start() and stop() on the owner's thread (the io_context's); the
// callback runs there. stop() (or the destructor) stops the callbacks: none starts after it, and
// once it returns nothing of the watch touches the io_context again (it may be destroyed then).
// The watch must be stopped before its client is.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>

#include <boost/asio/io_context.hpp>

#include "gateway/etcd/etcd_client.h"

namespace sluice::gateway::etcd {

class RangeWatch {
 public:
  struct State {
    std::map<std::string, KeyValue> kvs;  // by key
    std::int64_t revision = 0;            // the store revision this state is at
  };
  using OnChange = std::function<void(const State&)>;

  RangeWatch(boost::asio::io_context& io, EtcdClient& client, KeyRange range, OnChange on_change);
  ~RangeWatch();
  RangeWatch(const RangeWatch&) = delete;
  RangeWatch& operator=(const RangeWatch&) = delete;

  // Lists the range, delivers it, and watches from there.
  void start();
  // Takes `known` as the range's state (read by the owner already: not delivered) and watches
  // from the revision after it.
  void start(State known);
  void stop();

 private:
  struct Shared;  // what the client's callbacks hold: it may outlive this object a little
  std::shared_ptr<Shared> shared_;
};

}  // namespace sluice::gateway::etcd
