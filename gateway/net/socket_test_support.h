// A fixture shared by the socket I/O tests (test code only): a connected loopback TCP pair on
// one io_context, and the deadline machinery readSome/writeAll take.
#pragma once

#include <chrono>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <gtest/gtest.h>

#include "gateway/net/socket_deadline.h"
#include "gateway/net/timer_wheel.h"

namespace sluice::gateway::net {

class LoopbackPairTest : public ::testing::Test {
 protected:
  using Clock = std::chrono::steady_clock;

  LoopbackPairTest() {
    boost::asio::ip::tcp::acceptor acceptor(io_, {boost::asio::ip::make_address("127.0.0.1"), 0});
    client_.connect(acceptor.local_endpoint());
    acceptor.accept(server_);
  }

  boost::asio::io_context io_;
  boost::asio::ip::tcp::socket client_{io_};
  boost::asio::ip::tcp::socket server_{io_};
  TimerWheel wheel_{std::chrono::milliseconds(10), Clock::now()};
  SocketDeadline deadline_{wheel_};
};

}  // namespace sluice::gateway::net
