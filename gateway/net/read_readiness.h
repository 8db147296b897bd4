// Whether the next async read on a TCP socket starts with a recv() ("speculative", Asio's
// default) or waits for epoll first.
//
// Why: Asio's epoll reactor (Boost 1.81) starts every read with a speculative recv() unless the
// descriptor is flagged exhausted, and for stream sockets only end-of-file sets that flag
// (reactive_socket_recv_op: done_and_exhausted iff 0 bytes). But a read that returns fewer bytes
// than it asked for already proves the buffer was empty at that moment (epoll(7), question 9;
// nginx clears rev->ready on such a short read). For a proxy the next read after a message is
// usually too early: after forwarding a request the upstream has not answered yet, and after
// answering the client has not sent its next request yet; the speculative recv() returned EAGAIN
// ~0.8 times per proxied request in the 1 KiB benchmark.
//
// markDrained() records a short read in the flag Asio keeps for this decision: the next read
// waits in the reactor for the edge-triggered EPOLLIN that any new data raises. One thing a short
// read does not prove: that the peer has not also closed. A FIN that arrived together with the
// data is reported by the same epoll event, so a read that waits for a later event would not see
// it. Hence the split: reads in the middle of a message (the rest of a head, a body) call
// trySpeculatively() first and find an EOF at once, as before; only the first read of the next
// message relies on the flag: the response head right after a request was written (a closed
// upstream then answers the request with RST, which raises its own event), and the downstream's
// next request (a client that half-closed is noticed when the connection parks after its short
// hot-idle wait, whose re-arm reports the pending EOF).
//
// The flag is private to Asio, reached through the standard's rule that explicit template
// instantiations may name private members. It is pinned to the Boost version whose reactor this
// was read against; with any other version (or reactor) these calls do nothing and every read is
// speculative, as before. Call them only from the thread that runs the socket's io_context.
#pragma once

#include <cstddef>
#include <utility>

#include <boost/asio/associated_cancellation_slot.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/version.hpp>

#if BOOST_VERSION == 108100 && defined(BOOST_ASIO_HAS_EPOLL) && !defined(BOOST_ASIO_HAS_IO_URING)
#define SLUICE_HAS_READ_READINESS 1
#include <boost/asio/detail/reactive_wait_op.hpp>
#endif

namespace sluice::gateway::net {

#ifdef SLUICE_HAS_READ_READINESS

namespace read_readiness_detail {

using Reactor = boost::asio::detail::epoll_reactor;
using TrySpeculative = bool (Reactor::descriptor_state::*)[Reactor::max_ops];

// The protected member of basic_socket that holds the descriptor's reactor state, named through
// a derived class (which may form a pointer to it) and applied to any tcp::socket.
struct SocketAccess : boost::asio::ip::tcp::socket {
  static constexpr auto kImpl = &SocketAccess::impl_;
};

struct TrySpeculativeTag {
  friend TrySpeculative member(TrySpeculativeTag);
};
template <TrySpeculative M>
struct Expose {
  friend TrySpeculative member(TrySpeculativeTag) { return M; }
};
template struct Expose<&Reactor::descriptor_state::try_speculative_>;

inline bool* readFlag(boost::asio::ip::tcp::socket& socket) {
  Reactor::per_descriptor_data state =
      (socket.*SocketAccess::kImpl).get_implementation().reactor_data_;
  if (state == nullptr) return nullptr;
  return &((*state).*member(TrySpeculativeTag{}))[Reactor::read_op];
}

// The reactor of `socket`'s io_context. use_service() locks the context's service registry and
// searches it; a worker thread runs one context, so the answer is kept per thread.
inline Reactor& reactorOf(boost::asio::ip::tcp::socket& socket) {
  auto& context = boost::asio::query(socket.get_executor(), boost::asio::execution::context);
  thread_local boost::asio::execution_context* cached_context = nullptr;
  thread_local Reactor* cached_reactor = nullptr;
  if (&context != cached_context) {
    cached_reactor = &boost::asio::use_service<Reactor>(context);
    cached_context = &context;
  }
  return *cached_reactor;
}

// Asio's async_wait(wait_read), started the way a read is: not speculatively, but trusting the
// flag above. Asio's own wait ignores the flag and re-arms the descriptor with epoll_ctl(MOD) to
// learn whether input is already there: a syscall per wait.
struct WaitReadable {
  template <typename Handler>
  void operator()(Handler&& handler, boost::asio::ip::tcp::socket* socket) const {
    namespace detail = boost::asio::detail;
    // Per-operation cancellation needs Asio's own bookkeeping: let its wait do it.
    if (boost::asio::get_associated_cancellation_slot(handler).is_connected()) {
      socket->async_wait(boost::asio::ip::tcp::socket::wait_read, std::forward<Handler>(handler));
      return;
    }
    auto& impl = (socket->*SocketAccess::kImpl).get_implementation();
    Reactor& reactor = reactorOf(*socket);
    const bool is_continuation = boost_asio_handler_cont_helpers::is_continuation(handler);
    using Op = detail::reactive_wait_op<std::decay_t<Handler>, boost::asio::any_io_executor>;
    typename Op::ptr p = {detail::addressof(handler), Op::ptr::allocate(handler), nullptr};
    p.p = new (p.v) Op(boost::system::error_code(), handler, socket->get_executor());
    if ((impl.state_ & detail::socket_ops::non_blocking) != 0 ||
        detail::socket_ops::set_internal_non_blocking(impl.socket_, impl.state_, true, p.p->ec_)) {
      // A wait "performs" at once when the flag says input may be there.
      reactor.start_op(Reactor::read_op, impl.socket_, impl.reactor_data_, p.p, is_continuation,
                       /*allow_speculative=*/true);
    } else {
      reactor.post_immediate_completion(p.p, is_continuation);
    }
    p.v = p.p = nullptr;
  }
};

}  // namespace read_readiness_detail

// Completes (with an error_code) once input may have arrived on `socket`: at once when an event
// came since it was last found drained, else at its next event. Holds no buffer while it waits.
// Same rule as a FirstOfMessage read: an end-of-file that came with the last data read is not an
// event of its own.
template <typename CompletionToken>
auto asyncWaitReadable(boost::asio::ip::tcp::socket& socket, CompletionToken&& token) {
  return boost::asio::async_initiate<CompletionToken, void(boost::system::error_code)>(
      read_readiness_detail::WaitReadable{}, token, &socket);
}

// After a read that returned `got` bytes into a buffer of `asked` bytes: a short read means the
// socket is drained, and the next read should not try recv() before epoll says so.
inline void markDrained(boost::asio::ip::tcp::socket& socket, std::size_t got, std::size_t asked) {
  if (got == 0 || got >= asked) return;
  if (bool* flag = read_readiness_detail::readFlag(socket)) *flag = false;
}

// Makes the next read try recv() at once (Asio's default): for reads inside a message, where
// an end-of-file may already be waiting.
inline void trySpeculatively(boost::asio::ip::tcp::socket& socket) {
  if (bool* flag = read_readiness_detail::readFlag(socket)) *flag = true;
}

// Whether the next read on `socket` will try recv() at once (for tests).
inline bool speculativeReadArmed(boost::asio::ip::tcp::socket& socket) {
  const bool* flag = read_readiness_detail::readFlag(socket);
  return flag == nullptr || *flag;
}

// Whether input (bytes, an end-of-file, an error) may have arrived since the socket was last found
// drained, while no read was pending: the reactor raises the flag on every EPOLLIN, EPOLLHUP or
// EPOLLERR event of the descriptor, whether an operation waits for it or not. Costs no syscall;
// a false answer is certain, a true one means "look" (recv with MSG_PEEK).
inline bool inputMayHaveArrived(boost::asio::ip::tcp::socket& socket) {
  return speculativeReadArmed(socket);
}

// Records that a non-blocking recv() just found `socket` empty (EAGAIN): as a short read,
// the next read or inputMayHaveArrived() waits for the next event.
inline void noteDrained(boost::asio::ip::tcp::socket& socket) {
  if (bool* flag = read_readiness_detail::readFlag(socket)) *flag = false;
}

#else

template <typename CompletionToken>
auto asyncWaitReadable(boost::asio::ip::tcp::socket& socket, CompletionToken&& token) {
  return socket.async_wait(boost::asio::ip::tcp::socket::wait_read,
                           std::forward<CompletionToken>(token));
}
inline void markDrained(boost::asio::ip::tcp::socket& /*socket*/, std::size_t /*got*/,
                        std::size_t /*asked*/) {}
inline void trySpeculatively(boost::asio::ip::tcp::socket& /*socket*/) {}
inline bool speculativeReadArmed(boost::asio::ip::tcp::socket& /*socket*/) { return true; }
inline bool inputMayHaveArrived(boost::asio::ip::tcp::socket& /*socket*/) { return true; }
inline void noteDrained(boost::asio::ip::tcp::socket& /*socket*/) {}

#endif

}  // namespace sluice::gateway::net
