// Socket reads and writes bounded by a SocketDeadline, returning a status instead of throwing.
#pragma once

#include <array>
#include <chrono>
#include <cstddef>
#include <functional>
#include <sys/uio.h>
#include <type_traits>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/deferred.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/buffers_suffix.hpp>

#include "gateway/net/io_buffer.h"
#include "gateway/net/read_readiness.h"
#include "gateway/net/socket_deadline.h"

namespace sluice::gateway::net {

// Completion token for I/O awaited inside an awaitable coroutine: results come back as a tuple
// (error_code first) instead of an exception, and `deferred` lets the coroutine await the
// operation itself, without the extra coroutine frame `use_awaitable` allocates per operation.
inline constexpr auto kNoThrow = boost::asio::as_tuple(boost::asio::deferred);

enum class IoStatus : std::uint8_t {
  Ok,
  Timeout,  // the deadline passed
  Eof,      // the peer closed its side
  Error,    // reset, broken pipe, cancelled
};

struct ReadResult {
  IoStatus status = IoStatus::Ok;
  std::size_t bytes = 0;
};

// Which read of a message this is (see read_readiness.h): a first read may trust a short read
// before it to skip the speculative recv(); a read inside a message must not, since an
// end-of-file may be waiting.
enum class ReadPosition : std::uint8_t { InMessage, FirstOfMessage };

// Reads what is available (at least one byte) into `buffer`, growing it to at most `max_total`.
// `co_await` the result: it yields a ReadResult. Not a coroutine itself: the returned deferred
// operation is awaited directly, so reading costs no coroutine frame.
inline auto readSome(boost::asio::ip::tcp::socket& socket, SocketDeadline& deadline,
                     IoBuffer& buffer, std::chrono::steady_clock::time_point until,
                     std::size_t min_free, std::size_t max_total,
                     ReadPosition position = ReadPosition::InMessage) {
  if (position == ReadPosition::InMessage) trySpeculatively(socket);
  auto space = buffer.prepare(min_free, max_total);
  deadline.arm(socket, until);
  return socket.async_read_some(
      space, boost::asio::deferred([&socket, &deadline, &buffer, asked = space.size()](
                                       boost::system::error_code ec, std::size_t n) {
        const bool timed_out = deadline.disarm();
        buffer.commit(n);
        markDrained(socket, n, asked);
        ReadResult r{IoStatus::Ok, n};
        if (n == 0) {
          r.status = timed_out                       ? IoStatus::Timeout
                     : ec == boost::asio::error::eof ? IoStatus::Eof
                                                     : IoStatus::Error;
        }
        return boost::asio::deferred.values(r);
      }));
}

// Sends what the socket takes right now, with one sendmsg() that never waits. Returns the
// bytes sent; `ec` is set only for a real error (a full send buffer is 0 bytes and no error).
std::size_t sendNow(int fd, iovec* iov, std::size_t count, boost::system::error_code& ec);

template <typename ConstBufferSequence>
std::size_t sendNow(boost::asio::ip::tcp::socket& socket, const ConstBufferSequence& buffers,
                    boost::system::error_code& ec) {
  // Longer sequences send their first kMaxIov pieces; the caller writes the rest.
  constexpr std::size_t kMaxIov = 16;
  std::array<iovec, kMaxIov> iov{};
  std::size_t count = 0;
  const auto end = boost::asio::buffer_sequence_end(buffers);
  for (auto it = boost::asio::buffer_sequence_begin(buffers); it != end && count < kMaxIov; ++it) {
    const boost::asio::const_buffer b(*it);
    // iovec has no const variant; sendmsg() only reads the bytes.
    // NOLINTNEXTLINE(cppcoreguidelines-pro-type-const-cast)
    if (b.size() != 0) iov[count++] = iovec{const_cast<void*>(b.data()), b.size()};
  }
  return sendNow(socket.native_handle(), iov.data(), count, ec);
}

// Writes every byte of `buffers` before `until`; `co_await` it for an IoStatus, or for what
// `finish` makes of it (`finish` runs once, when the write is over, in the awaiting thread). The
// buffer sequence is copied into the operation; the bytes it points to must stay put until it
// completes.
//
// The write is tried at once, in the caller (sendNow), and only what the socket did not take
// waits for the reactor. Why: Asio also sends at once, but then posts the completion through the
// scheduler's queue instead of resuming the caller. For a proxy nearly every write completes at
// once, so each one cost a trip through the queue and, with a handler queued, an extra
// epoll_wait(0) before it: 0.77 epoll_wait calls per proxied 1 KiB request against nginx's
// 0.44, which writes in place. A write that completes now resumes the caller in place (the
// awaitable's pump), with no deadline armed.
template <typename ConstBufferSequence, typename Finish = std::identity>
auto writeAll(boost::asio::ip::tcp::socket& socket, SocketDeadline& deadline,
              const ConstBufferSequence& buffers, std::chrono::steady_clock::time_point until,
              Finish finish = {}) {
  using Result = std::invoke_result_t<Finish&, IoStatus>;
  boost::system::error_code ec;
  const std::size_t total = boost::asio::buffer_size(buffers);
  const std::size_t sent = total == 0 ? 0 : sendNow(socket, buffers, ec);
  const bool done = ec || sent == total;
  boost::beast::buffers_suffix<ConstBufferSequence> rest(buffers);
  rest.consume(sent);
  if (!done) deadline.arm(socket, until);
  return boost::asio::deferred.when(done)
      .then(boost::asio::deferred.values(done ? finish(ec ? IoStatus::Error : IoStatus::Ok)
                                              : Result{}))
      .otherwise(boost::asio::async_write(
          socket, rest,
          boost::asio::deferred(
              [&deadline, finish](boost::system::error_code e, std::size_t /*n*/) mutable {
                const bool timed_out = deadline.disarm();
                const IoStatus s =
                    !e ? IoStatus::Ok : (timed_out ? IoStatus::Timeout : IoStatus::Error);
                return boost::asio::deferred.values(finish(s));
              })));
}

}  // namespace sluice::gateway::net
