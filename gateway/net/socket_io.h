// Socket reads and writes bounded by a SocketDeadline, returning a status instead of throwing.
#pragma once

#include <array>
#include <cerrno>
#include <chrono>
#include <cstddef>
#include <functional>
#include <new>
#include <sys/socket.h>
#include <sys/uio.h>
#include <type_traits>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/deferred.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/buffers_suffix.hpp>

#include "gateway/net/coarse_clock.h"
#include "gateway/net/io_buffer.h"
#include "gateway/net/read_readiness.h"
#include "gateway/net/socket_deadline.h"
#include "gateway/net/transfer_pace.h"

namespace sluice::gateway::net {

// Completion token for I/O awaited inside an awaitable coroutine: results come back as a tuple
// (error_code first) instead of an exception, and `deferred` lets the coroutine await the
// operation itself, without the extra coroutine frame `use_awaitable` allocates per operation.
inline constexpr auto kNoThrow = boost::asio::as_tuple(boost::asio::deferred);

// Most bytes handed to one write_some by writePaced (Asio's own default for async_write).
inline constexpr std::size_t kWriteChunk = 65536;

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

namespace socket_io_detail {
// Writes completed in place since this thread last ran one of these operations' completions
// from its event loop. Each write resumed in place runs its writer one level deeper on the
// stack (Asio's awaitable pump calls itself), until the writer next waits for real: a chain of
// writes with nothing in between (pipelined requests answered locally, a run of interim
// responses) would grow the stack without bound. kMaxInPlace caps the chain; the next write
// then goes through the queue, which unwinds it.
inline constexpr unsigned kMaxInPlace = 16;
inline thread_local unsigned in_place_streak = 0;
// Whether a write that completed at once may resume its writer in place (and counts it).
inline bool mayResumeInPlace() noexcept {
  if (in_place_streak >= kMaxInPlace) return false;
  ++in_place_streak;
  return true;
}
// A completion that runs from the event loop: the stack is back at its base.
inline void atLoopBase() noexcept { in_place_streak = 0; }
}  // namespace socket_io_detail

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
        socket_io_detail::atLoopBase();
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

// The first read of a message the peer has yet to send (an upstream's response, a client's next
// request): waits for input before it takes buffer memory, then reads what is there without
// waiting again. `co_await` it for a ReadResult; Ok with no bytes when the wakeup found nothing
// (read again). A cancel or expiry of `deadline` ends it with Error or Timeout, also one that
// came while the wakeup was queued. Same rule as ReadPosition::FirstOfMessage (read_readiness.h);
// inside a message, call trySpeculatively() first (an end-of-file may be waiting).
//
// Why: readSome's buffer is taken before the wait, and these waits are most of a connection's
// life: an upstream thinking, a keep-alive client between requests. With 5,000 busy clients
// that kept 5,000 upstream buffers of 32 KiB and 5,000 client buffers of 4 KiB (140 MiB
// resident at 16 KiB bodies); waiting first keeps only those of the messages being read or
// relayed at that moment. The wait costs no syscall (asyncWaitReadable), and the recv is the one
// the reactor would have made.
inline auto readWhenReadable(boost::asio::ip::tcp::socket& socket, SocketDeadline& deadline,
                             IoBuffer& buffer, std::chrono::steady_clock::time_point until,
                             std::size_t min_free, std::size_t max_total) {
  deadline.arm(socket, until);
  return asyncWaitReadable(
      socket, boost::asio::deferred([&socket, &deadline, &buffer, min_free,
                                     max_total](boost::system::error_code ec) {
        socket_io_detail::atLoopBase();
        // A cancel or expiry that came after the wakeup was posted found nothing to cancel.
        const bool stopped = deadline.stopped();
        const bool timed_out = deadline.disarm();
        ReadResult r;
        if (ec || stopped) {
          r.status = timed_out ? IoStatus::Timeout : IoStatus::Error;
          return boost::asio::deferred.values(r);
        }
        boost::asio::mutable_buffer space;
        try {
          space = buffer.prepare(min_free, max_total);
        } catch (const std::bad_alloc&) {
          // No memory for the bytes: this read fails. Thrown from a completion handler, it would
          // leave the coroutine that waits for it suspended for ever.
          r.status = IoStatus::Error;
          return boost::asio::deferred.values(r);
        }
        const ssize_t n = ::recv(socket.native_handle(), space.data(), space.size(), MSG_DONTWAIT);
        if (n > 0) {
          r.bytes = static_cast<std::size_t>(n);
          buffer.commit(r.bytes);
          markDrained(socket, r.bytes, space.size());
        } else if (n == 0) {
          r.status = IoStatus::Eof;
          buffer.release();
        } else if (errno == EAGAIN || errno == EWOULDBLOCK) {
          noteDrained(socket);  // a wakeup with nothing behind it: wait for the next event
          buffer.release();
        } else if (errno == EINTR) {
          buffer.release();  // the flag still says "look": the next wait ends at once
        } else {
          r.status = IoStatus::Error;
          buffer.release();
        }
        return boost::asio::deferred.values(r);
      }));
}

// Sends what the socket takes right now with one sendmsg() that never waits: the bytes sent, or
// 0 with `error` set when the peer is gone (a full send buffer is 0 bytes and no error). Sends
// the first kMaxIov pieces of a longer sequence.
template <typename ConstBufferSequence>
std::size_t sendNow(boost::asio::ip::tcp::socket& socket, const ConstBufferSequence& buffers,
                    bool& error) {
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
  if (count == 0) return 0;
  msghdr msg{};
  msg.msg_iov = iov.data();
  msg.msg_iovlen = count;
  for (;;) {
    // MSG_NOSIGNAL: a peer that is gone is EPIPE, not SIGPIPE.
    const ssize_t n = ::sendmsg(socket.native_handle(), &msg, MSG_DONTWAIT | MSG_NOSIGNAL);
    if (n >= 0) return static_cast<std::size_t>(n);
    if (errno == EINTR) continue;
    error = errno != EAGAIN && errno != EWOULDBLOCK;
    return 0;
  }
}

// Writes every byte of `buffers` before `until`; `co_await` it for an IoStatus. The buffer
// sequence is copied into the operation; the bytes it points to must stay put until it completes.
//
// The write is tried at once (sendNow), and a write the socket takes whole resumes the writer in
// place; only what it did not take waits for the reactor. Why: Asio sends at once too, but
// resumes the writer through the scheduler's queue, behind every handler already in it - a whole
// epoll batch, up to 128 events. A proxy's writer holds the response's 32 KiB block until then:
// at 500 busy connections that kept about 100 blocks (3 MiB) in use at any moment for writes
// that had long completed. (For CPU it is a wash, docs/benchmarks.md "Where the time goes".)
template <typename ConstBufferSequence>
auto writeAll(boost::asio::ip::tcp::socket& socket, SocketDeadline& deadline,
              const ConstBufferSequence& buffers, std::chrono::steady_clock::time_point until) {
  bool error = false;
  const std::size_t total = boost::asio::buffer_size(buffers);
  const std::size_t sent = total == 0 ? 0 : sendNow(socket, buffers, error);
  // Done but past the in-place cap: the rest (nothing, or the error again) goes through Asio.
  const bool done = (error || sent == total) && socket_io_detail::mayResumeInPlace();
  boost::beast::buffers_suffix<ConstBufferSequence> rest(buffers);
  rest.consume(sent);
  if (!done) deadline.arm(socket, until);
  return boost::asio::deferred.when(done)
      .then(boost::asio::deferred.values(error ? IoStatus::Error : IoStatus::Ok))
      .otherwise(boost::asio::async_write(
          socket, rest,
          boost::asio::deferred([&deadline](boost::system::error_code ec, std::size_t /*n*/) {
            socket_io_detail::atLoopBase();
            const bool timed_out = deadline.disarm();
            const IoStatus s =
                !ec ? IoStatus::Ok : (timed_out ? IoStatus::Timeout : IoStatus::Error);
            return boost::asio::deferred.values(s);
          })));
}

// writeAll to a client held to `pace` (transfer_pace.h): the pace is told of bytes as the kernel
// takes them, not only when the last one goes, and the deadline follows it: the earlier of
// `until` and the pace's. `co_await` it for an IoStatus; Timeout when either deadline ended the
// write, including a pace broken between two partial writes (pace.verdict() tells it apart).
// Tried at once first, as writeAll is. `finish` (run once, when the write is over) maps the
// status to what the co_await yields: the result of a write that may complete in place cannot be
// piped into a further deferred step.
template <typename ConstBufferSequence, typename Finish = std::identity>
auto writePaced(boost::asio::ip::tcp::socket& socket, SocketDeadline& deadline,
                const ConstBufferSequence& buffers, std::chrono::steady_clock::time_point until,
                TransferPace& pace, Finish finish = {}) {
  using Result = std::invoke_result_t<Finish&, IoStatus>;
  const auto start = coarseNow();
  pace.start(start);
  bool error = false;
  const std::size_t total = boost::asio::buffer_size(buffers);
  const std::size_t sent = total == 0 ? 0 : sendNow(socket, buffers, error);
  if (sent > 0) pace.progress(start, sent);
  const bool done = (error || sent == total || pace.verdict() != TransferPace::Verdict::Ok) &&
                    socket_io_detail::mayResumeInPlace();
  IoStatus at_once = IoStatus::Ok;
  if (done) {
    pace.stop(start);
    at_once = pace.verdict() != TransferPace::Verdict::Ok ? IoStatus::Timeout
              : error                                     ? IoStatus::Error
                                                          : IoStatus::Ok;
  } else {
    deadline.arm(socket, std::min(until, pace.deadline()));
  }
  boost::beast::buffers_suffix<ConstBufferSequence> rest(buffers);
  rest.consume(sent);
  // Asio asks the completion condition before the first write and after each partial one (not
  // after the last: the handler reports what that one moved). `moved` counts from the start of
  // this write, `sent` included, as pace.waitBytes() does.
  auto progress = [&socket, &deadline, &pace, until, sent](const boost::system::error_code& ec,
                                                           std::size_t n) {
    if (ec || pace.verdict() != TransferPace::Verdict::Ok) return std::size_t{0};
    const std::size_t moved = sent + n;
    if (moved == pace.waitBytes()) return kWriteChunk;
    if (pace.progress(coarseNow(), moved - pace.waitBytes()) != TransferPace::Verdict::Ok) {
      return std::size_t{0};
    }
    deadline.arm(socket, std::min(until, pace.deadline()));
    return kWriteChunk;
  };
  return boost::asio::deferred.when(done)
      .then(boost::asio::deferred.values(done ? finish(at_once) : Result{}))
      .otherwise(boost::asio::async_write(
          socket, rest, std::move(progress),
          boost::asio::deferred([&deadline, &pace, until, sent, finish](
                                    boost::system::error_code ec, std::size_t n) mutable {
            socket_io_detail::atLoopBase();
            const bool timed_out = deadline.disarm();
            // What was armed last; a timed-out write lasted at least until then (the wheel fires
            // on the precise clock, the coarse one may lag it by a few ms).
            const auto armed = std::min(until, pace.deadline());
            const auto now = coarseNow();
            if (sent + n > pace.waitBytes()) pace.progress(now, sent + n - pace.waitBytes());
            if (timed_out) pace.expired(std::max(now, armed));
            pace.stop(now);
            const IoStatus s = pace.verdict() != TransferPace::Verdict::Ok || timed_out
                                   ? IoStatus::Timeout
                                   : (ec ? IoStatus::Error : IoStatus::Ok);
            return boost::asio::deferred.values(finish(s));
          })));
}

}  // namespace sluice::gateway::net
