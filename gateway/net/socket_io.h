// Socket reads and writes bounded by a SocketDeadline, returning a status instead of throwing.
#pragma once

#include <chrono>
#include <cstddef>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include "gateway/net/io_buffer.h"
#include "gateway/net/socket_deadline.h"

namespace sluice::gateway::net {

inline constexpr auto kNoThrow = boost::asio::as_tuple(boost::asio::use_awaitable);

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

// Reads what is available (at least one byte) into `buffer`, growing it to at most `max_total`.
inline boost::asio::awaitable<ReadResult> readSome(boost::asio::ip::tcp::socket& socket,
                                                   SocketDeadline& deadline, IoBuffer& buffer,
                                                   std::chrono::steady_clock::time_point until,
                                                   std::size_t min_free, std::size_t max_total) {
  auto space = buffer.prepare(min_free, max_total);
  deadline.arm(socket, until);
  auto [ec, n] = co_await socket.async_read_some(space, kNoThrow);
  const bool timed_out = deadline.disarm();
  buffer.commit(n);
  if (n > 0) co_return ReadResult{IoStatus::Ok, n};
  if (timed_out) co_return ReadResult{IoStatus::Timeout, 0};
  if (ec == boost::asio::error::eof) co_return ReadResult{IoStatus::Eof, 0};
  co_return ReadResult{IoStatus::Error, 0};
}

// Writes every byte of `buffers` before `until`.
template <typename ConstBufferSequence>
boost::asio::awaitable<IoStatus> writeAll(boost::asio::ip::tcp::socket& socket,
                                          SocketDeadline& deadline,
                                          const ConstBufferSequence& buffers,
                                          std::chrono::steady_clock::time_point until) {
  deadline.arm(socket, until);
  auto [ec, n] = co_await boost::asio::async_write(socket, buffers, kNoThrow);
  const bool timed_out = deadline.disarm();
  if (!ec) co_return IoStatus::Ok;
  co_return timed_out ? IoStatus::Timeout : IoStatus::Error;
}

}  // namespace sluice::gateway::net
