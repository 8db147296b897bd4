#include "gateway/net/socket_io.h"

#include <chrono>
#include <optional>
#include <string>
#include <thread>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/read.hpp>
#include <gtest/gtest.h>

#include "gateway/net/socket_deadline.h"
#include "gateway/net/timer_wheel.h"

namespace sluice::gateway::net {
namespace {

namespace asio = boost::asio;
using asio::ip::tcp;
using namespace std::chrono_literals;

// A connected loopback pair: `server` writes through writeAll, `client` is the peer.
class WriteAllTest : public ::testing::Test {
 protected:
  using Clock = std::chrono::steady_clock;

  WriteAllTest() {
    tcp::acceptor acceptor(io_, {asio::ip::make_address("127.0.0.1"), 0});
    client_.connect(acceptor.local_endpoint());
    acceptor.accept(server_);
  }

  // Starts one writeAll of `payload_` from the server; its status lands in `status_`, and whether
  // a handler posted just before it had run by the time the writer resumed, in `posted_ran_`.
  void startWrite() {
    asio::co_spawn(io_, writeOnce(), asio::detached);
    io_.poll();  // runs the coroutine up to its write (and past it, if it completed at once)
  }

  asio::awaitable<void> writeOnce() {
    // The flag outlives this frame: the posted handler may run after the coroutine has ended.
    asio::post(io_, [this] { posted_ = true; });
    const IoStatus s = co_await writeAll(server_, deadline_, asio::buffer(payload_),
                                         Clock::now() + 10s, [this](IoStatus status) {
                                           ++finished_;
                                           return status;
                                         });
    posted_ran_ = posted_;
    status_ = s;
  }

  // Makes the server's writes stop short: small buffers on both sides, and more bytes than fit.
  void shrinkBuffers() {
    server_.set_option(asio::socket_base::send_buffer_size(64 * 1024));
    client_.set_option(asio::socket_base::receive_buffer_size(64 * 1024));
    payload_.assign(std::size_t{8} << 20, 'x');
    for (std::size_t i = 0; i < payload_.size(); i += 4093) payload_[i] = static_cast<char>(i);
  }

  asio::io_context io_;
  tcp::socket client_{io_};
  tcp::socket server_{io_};
  TimerWheel wheel_{10ms, Clock::now()};
  SocketDeadline deadline_{wheel_};
  std::string payload_ = "GET / HTTP/1.1\r\nHost: a\r\n\r\n";
  std::optional<IoStatus> status_;
  bool posted_ = false;
  bool posted_ran_ = false;
  int finished_ = 0;
};

TEST_F(WriteAllTest, AWriteTheSocketTakesResumesTheWriterInPlace) {
  startWrite();
  ASSERT_TRUE(status_.has_value());
  EXPECT_EQ(*status_, IoStatus::Ok);
  // Resumed before the handler posted ahead of the write: not through the scheduler's queue.
  EXPECT_FALSE(posted_ran_);
  EXPECT_EQ(finished_, 1);
  EXPECT_FALSE(deadline_.armed());
  std::string got(payload_.size(), '\0');
  asio::read(client_, asio::buffer(got));
  EXPECT_EQ(got, payload_);
}

TEST_F(WriteAllTest, WhatTheSocketDoesNotTakeWaitsForThePeer) {
  shrinkBuffers();
  startWrite();
  ASSERT_FALSE(status_.has_value()) << "the whole payload fit: the test needs a short write";
  EXPECT_TRUE(deadline_.armed());
  std::string got(payload_.size(), '\0');
  std::thread reader([&] {
    boost::system::error_code ec;
    asio::read(client_, asio::buffer(got), ec);
  });
  const auto until = Clock::now() + 10s;
  while (!status_ && Clock::now() < until) io_.run_one_for(10ms);
  if (!status_) {
    boost::system::error_code ignored;
    client_.shutdown(tcp::socket::shutdown_both, ignored);  // wake the reader: the test failed
  }
  reader.join();
  ASSERT_TRUE(status_.has_value());
  EXPECT_EQ(*status_, IoStatus::Ok);
  EXPECT_EQ(finished_, 1);
  EXPECT_FALSE(deadline_.armed());
  EXPECT_TRUE(got == payload_) << "bytes lost, repeated or reordered between the two writes";
}

TEST_F(WriteAllTest, APeerThatStopsReadingTimesOut) {
  shrinkBuffers();
  startWrite();
  ASSERT_FALSE(status_.has_value());
  wheel_.advance(Clock::now() + 11s);
  io_.poll();
  ASSERT_TRUE(status_.has_value());
  EXPECT_EQ(*status_, IoStatus::Timeout);
  EXPECT_EQ(finished_, 1);
}

TEST_F(WriteAllTest, APeerThatIsGoneIsAnErrorAtOnce) {
  client_.set_option(asio::socket_base::linger(true, 0));
  client_.close();  // sends RST, which loopback delivers before close() returns
  startWrite();
  ASSERT_TRUE(status_.has_value());
  EXPECT_EQ(*status_, IoStatus::Error);
  EXPECT_EQ(finished_, 1);
  EXPECT_FALSE(deadline_.armed());
}

TEST_F(WriteAllTest, AnEmptyWriteCompletesAtOnce) {
  payload_.clear();
  startWrite();
  ASSERT_TRUE(status_.has_value());
  EXPECT_EQ(*status_, IoStatus::Ok);
  EXPECT_EQ(finished_, 1);
}

}  // namespace
}  // namespace sluice::gateway::net
