// Request mirroring: a route's `mirror` copies a share of the requests it forwards to another
// cluster, fire-and-forget (docs/traffic-management.md, "Mirroring").
//
//   if (MirrorCopy::drawn(*route.mirror)) copy.emplace(generation, route_index);
//   copy->begin(head, upstream_head, client_ip);   // while the head is parsed
//   copy->append(body_bytes) ...                   // as the body goes upstream
//   copy->send();                                  // the whole request is copied
//
// The copy is the request exactly as the route's own upstream gets it (rewrites and header
// edits applied), marked with X-Sluice-Mirror: 1 and carrying the mirror's timeout as its
// deadline. It is collected while the request is forwarded: the head at once, the body as it is
// streamed, so the client is never read twice and nothing waits for the copy. Once complete, a
// task of its own on the worker's loop sends it to a host of the mirror cluster (its balancer,
// health, pools and bulkhead, as for any request), reads the response and drops it, and hands
// the connection back only when the exchange ended cleanly. The task pins the config
// generation it started on, like a request.
//
// Never delays or fails the request it copies: the request does not wait on the task (which
// starts only when the request next waits), and what becomes of the copy (a dead, slow or
// garbage-speaking mirror) shows only in sluice_mirror_requests_total{route,cluster,result}.
// The mirror's timeouts are not held against its hosts (they would eject hosts that other
// routes use with longer timeouts). Bounded: at most max_in_flight copies per worker from the
// moment one begins (collecting its body included) and the mirror cluster's bulkhead
// max_requests, each at most its head and max_body bytes of body (taken as the body arrives),
// each for at most `timeout`; a request over a bound is not copied, and counted.
#pragma once

#include <cstddef>
#include <memory>
#include <string_view>

#include "gateway/config/config.h"
#include "gateway/http/head.h"
#include "gateway/server/generation.h"

namespace sluice::gateway::proxy {

struct MirrorJob;

class MirrorCopy {
 public:
  // Whether this request is copied: a draw against m.percent.
  [[nodiscard]] static bool drawn(const config::Mirror& m);

  // A copy of a request of route `route` (which has a mirror) on `generation`.
  MirrorCopy(server::WorkerGeneration& generation, std::size_t route);
  MirrorCopy(const MirrorCopy&) = delete;
  MirrorCopy& operator=(const MirrorCopy&) = delete;
  // A copy begun and never sent (the body did not arrive whole) is counted incomplete.
  ~MirrorCopy();

  // `upstream_head`: `head` as serialised for the route's upstream, without the per-try fields
  // and the blank line. A body known to be over max_body, or max_in_flight copies running,
  // drop the copy here (counted).
  void begin(const http::RequestHead& head, std::string_view upstream_head,
             std::string_view client_ip);
  // Body bytes as sent upstream (a chunked body re-chunked, framing included in max_body).
  void append(std::string_view bytes);
  // The whole request is copied: off it goes (unless max_in_flight copies are running).
  void send();

 private:
  std::unique_ptr<MirrorJob> job_;  // null once sent or dropped
  bool begun_ = false;
};

}  // namespace sluice::gateway::proxy
