// One client connection, from accept to close, as one coroutine on its worker.
//
// The loop: wait for a request (keep-alive idle) -> read and parse its head strictly (header
// deadline from the first byte) -> route -> guards -> forward -> complete, then the next request
// (pipelined requests are simply the bytes left in the buffer, answered in order). Local errors
// become short replies with the right status; a request that could confuse framing closes the
// connection after its 400 so nothing of it is ever forwarded.
//
// Memory: everything a request needs (parser, head, context, scratch strings: Active) is lent
// to the connection for one request at a time, from its worker thread's spares, and the read
// buffer is taken only when the request's bytes arrive (net::readWhenReadable) and given back
// once the head is serialised for the upstream, unless more bytes followed it. Between two
// requests - where most keep-alive connections of a busy proxy are - a connection holds only
// its coroutine, waiting for readability. After 250 ms without a request (the hot keep-alive
// path) it goes cold: its coroutine finishes, and the connection is parked on a plain
// readability wait whose small completion handler owns it (see park()). What an idle client
// costs is this object, its socket and that one pending wait; readability starts a new
// coroutine where the old one left off.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>

#include "gateway/config/config.h"
#include "gateway/guards/guard.h"
#include "gateway/http/head.h"
#include "gateway/http/local_reply.h"
#include "gateway/http/request_parser.h"
#include "gateway/net/io_buffer.h"
#include "gateway/net/small_object_pool.h"
#include "gateway/net/socket_deadline.h"
#include "gateway/proxy/forwarder.h"
#include "gateway/proxy/in_flight_request.h"
#include "gateway/proxy/request_context.h"
#include "gateway/server/generation.h"

namespace sluice::gateway::server {
class Worker;
}

namespace sluice::gateway::proxy {

class DownstreamConnection {
 public:
  DownstreamConnection(server::Worker& worker, server::WorkerListener& listener,
                       boost::asio::ip::tcp::socket socket);
  DownstreamConnection(const DownstreamConnection&) = delete;
  DownstreamConnection& operator=(const DownstreamConnection&) = delete;
  ~DownstreamConnection();

  // Connections live in the small-object pool, packed together (see net/small_object_pool.h).
  static void* operator new(std::size_t bytes) { return net::SmallObjectPool::allocate(bytes); }
  static void operator delete(void* p, std::size_t bytes) noexcept {
    net::SmallObjectPool::deallocate(p, bytes);
  }

  // Serves the connection until it closes or parks; spawn() runs it and owns the connection.
  boost::asio::awaitable<void> run();

  // Starts (or resumes) serving `self` on its worker.
  static void spawn(std::unique_ptr<DownstreamConnection> self);

  // Called by the worker when draining starts: an idle connection closes now, a busy one after
  // its current response (which carries Connection: close).
  void drain();
  [[nodiscard]] const server::WorkerListener& listener() const noexcept { return listener_; }
  // A copy of the request in flight on this connection, if one is (its worker thread only).
  [[nodiscard]] std::optional<InFlightRequest> inFlight(
      std::chrono::steady_clock::time_point now) const;

  // Intrusive links for the worker's connection list.
  DownstreamConnection* prev = nullptr;
  DownstreamConnection* next = nullptr;

 private:
  enum class Phase : std::uint8_t { Idle, Busy, Parked, Done };

  // The state of the request being served; see the memory note above.
  struct Active {
    explicit Active(DownstreamConnection* c) noexcept
        : conn(c), watch(&DownstreamConnection::onWatch, this) {}
    DownstreamConnection* conn;  // the connection it is lent to
    http::RequestHead head;
    std::optional<http::RequestParser> parser;
    http::RequestError head_error = http::RequestError::None;
    bool head_timed_out = false;
    std::size_t head_size = 0;
    bool response_started = false;
    RequestContext ctx;
    Scratch scratch;
    // Per-request state that would otherwise sit in handle()'s coroutine frame (see there).
    // The local answer to send: prepare()'s or a route action's, or the forwarder's error reply.
    std::optional<http::LocalReply> local_reply;
    std::optional<guards::Admission> admission;  // the guard decision being applied
    std::optional<Downstream> down;              // the forwarding phase's view of the client
    std::optional<Forwarder> forwarder;
    std::optional<MirrorCopy> mirror;  // the request's copy for the route's mirror, if drawn
    server::GenerationPin pin;         // the config generation the request runs on
    // Looks at the client's socket while the request waits (route client_abort: cancel); see
    // checkClient(). Armed from routing to completion.
    net::TimerWheel::Entry watch;
    bool watch_after_body = false;  // bytes of its body wait unread: look again once it is sent
  };

  // Lends this connection an Active for its next request (a spare of this thread, or a new
  // one) / gives it back to the spares once the request is over.
  void takeActive();
  void giveBackActive() noexcept;
  // Clears the Active in the order its parts depend on each other, then lends it on (or frees it).
  void releaseActive(bool to_spares) noexcept;
  static std::vector<std::unique_ptr<Active>>& spares();
  // Serves one request; returns whether the connection stays open.
  boost::asio::awaitable<bool> serve();
  boost::asio::awaitable<bool> handle(Active& a);
  // Writes 100 Continue; false if the client failed. A coroutine of its own, for a rare case:
  // each co_await takes room in the frame of the coroutine it is in for that coroutine's life.
  boost::asio::awaitable<bool> writeContinue();
  // A new request's head: the parser, with the listener's limits.
  void startHead(Active& a) const;
  // The answer to a head that could not be read (a.head_error, a.head_timed_out) in a.local_reply.
  void refuseHead(Active& a);
  // Header fields, route and body limit, decided at once; false with a.local_reply set to refuse.
  bool prepare(Active& a);
  // The reply of a route that answers itself (redirect, direct_response).
  [[nodiscard]] http::LocalReply actionReply(const Active& a) const;
  // Runs the route's guards from `i` on while they admit at once (check(), no delay); returns
  // where it stopped (guards.size(): all admitted), that guard's decision in a.admission.
  std::size_t admitNow(Active& a, std::size_t i);
  // The guards from one that must wait (admit(), a delay) or refused: nullopt once all admitted,
  // else the request was answered here and the value says whether the connection stays open.
  boost::asio::awaitable<std::optional<bool>> admitSlow(Active& a, std::size_t i);
  // The backend (a split's side) the request took, in the generation it runs on.
  [[nodiscard]] static const server::RouteBackend& backendOf(const Active& a) noexcept {
    return a.pin->snapshot->routes[*a.ctx.route_index].backends[a.ctx.backend_index];
  }
  void countAdmission(Active& a, std::size_t i);  // a.admission's verdict, in the guard's metrics
  void pass(Active& a);                           // a.admission let the request through
  boost::asio::awaitable<bool> reply(Active& a, const http::LocalReply& r, bool close);
  // Answers a request locally instead of forwarding it (no route, a bad field, a guard's refusal);
  // an unread body closes the connection. Returns whether the connection stays open.
  boost::asio::awaitable<bool> refuse(Active& a, const http::LocalReply& r);
  boost::asio::awaitable<void> lingeringClose();
  void complete(Active& a, bool upstream_failed);
  // The client went away while the request waited in a guard: it ends here, answered to nobody.
  bool abandon(Active& a);
  // Client aborts: while a request waits with its client's socket idle, each wheel tick looks at
  // that socket, for free unless the reactor saw input on it (read_readiness.h), and cancels the
  // wait when the client has closed it.
  static void onWatch(void* self);
  void checkClient(Active& a);
  // Whole requests are buffered behind the one in flight (pipelined).
  [[nodiscard]] bool pipelinedBehind(const Active& a) const noexcept;
  [[nodiscard]] static bool bodyUnread(const Active& a) noexcept;
  // Drops what is buffered if it is nothing but empty lines (see the .cc); true if it did.
  bool dropEmptyLines();
  // Non-blocking read of whatever the client already sent; false if nothing is there.
  bool readNow();
  // Frees per-request memory and waits for readability without a coroutine; `self` owns this.
  static void park(std::unique_ptr<DownstreamConnection> self);
  static void unpark(std::unique_ptr<DownstreamConnection> self, boost::system::error_code ec);
  void closeSocket();

  server::Worker& worker_;
  server::WorkerListener& listener_;  // its limits and timeouts may change between requests
  boost::asio::ip::tcp::socket socket_;
  std::string client_ip_;
  net::IoBuffer in_;
  net::SocketDeadline deadline_;
  std::unique_ptr<Active> active_;
  std::uint64_t served_ = 0;       // requests this connection has started
  std::uint32_t blank_bytes_ = 0;  // empty lines dropped since the last request
  // Keep-alive deadline while idle or parked; unset ({}) until the idle wait starts.
  std::chrono::steady_clock::time_point idle_end_{};
  Phase phase_ = Phase::Idle;
  bool counted_ = false;   // in sluice_downstream_connections_active
  bool readable_ = false;  // unparked because bytes arrived: skip the wait
  bool linger_ = false;    // the client may still be sending: drain its bytes before closing
  bool reset_ = false;     // the client stopped reading: close with RST
  // The client half-closed behind pipelined requests: it wants their answers (checkClient()).
  bool half_closed_ = false;
};

}  // namespace sluice::gateway::proxy
