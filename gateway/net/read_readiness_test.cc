#include "gateway/net/read_readiness.h"

#include <chrono>
#include <optional>
#include <string>
#include <string_view>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>
#include <gtest/gtest.h>

#include "gateway/net/io_buffer.h"
#include "gateway/net/socket_io.h"
#include "gateway/net/socket_test_support.h"

namespace sluice::gateway::net {
namespace {

namespace asio = boost::asio;
using asio::ip::tcp;
using namespace std::chrono_literals;

// A connected loopback pair: `client` writes, `server` reads through readSome (which marks the
// socket drained after a short read).
class ReadReadinessTest : public LoopbackPairTest {
 protected:
  void send(std::string_view bytes) { asio::write(client_, asio::buffer(bytes)); }

  // Starts one readSome on the server socket; its result lands in `result_`.
  void startRead(ReadPosition position = ReadPosition::FirstOfMessage) {
    result_.reset();
    io_.restart();  // a loop that ran out of work stays stopped until restarted
    asio::co_spawn(io_, readOnce(position), asio::detached);
  }

  asio::awaitable<void> readOnce(ReadPosition position) {
    result_ = co_await readSome(server_, deadline_, in_, Clock::now() + 10s, 4096, 4096, position);
  }

  // Runs the loop until the read started by startRead() has completed (or 5 s have passed).
  bool finishRead() {
    const auto until = Clock::now() + 5s;
    while (!result_ && Clock::now() < until) {
      io_.run_one_for(10ms);
    }
    return result_.has_value();
  }

  std::string take() {
    std::string s(in_.readable());
    in_.consume(s.size());
    return s;
  }

  IoBuffer in_;
  std::optional<ReadResult> result_;
};

TEST_F(ReadReadinessTest, ShortReadMarksTheSocketDrained) {
  send("abc");
  startRead();
  ASSERT_TRUE(finishRead());
  EXPECT_EQ(take(), "abc");
#ifdef SLUICE_HAS_READ_READINESS
  EXPECT_FALSE(speculativeReadArmed(server_));
#endif
}

TEST_F(ReadReadinessTest, AFullReadLeavesTheNextReadSpeculative) {
  // 4096 bytes into a 4096-byte buffer: more may be waiting, so the next read tries at once.
  send(std::string(8192, 'x'));
  startRead();
  ASSERT_TRUE(finishRead());
  ASSERT_EQ(result_->bytes, 4096U);
  EXPECT_TRUE(speculativeReadArmed(server_));
  startRead();
  ASSERT_TRUE(finishRead());
  EXPECT_EQ(result_->bytes, 4096U);
}

// Verifies that no wakeup is lost: a read started on a drained socket (it does not call recv()
// first) completes when data arrives afterwards.
TEST_F(ReadReadinessTest, DataArrivingAfterTheReadStartedIsDelivered) {
  send("abc");
  startRead();
  ASSERT_TRUE(finishRead());
  take();
  startRead();
  io_.poll();  // the read is now parked in the reactor
  EXPECT_FALSE(result_.has_value());
  send("def");
  ASSERT_TRUE(finishRead());
  EXPECT_EQ(take(), "def");
}

// Verifies the other order: data that arrives while no read is pending (its epoll event is
// consumed with nothing to wake) is still read by the next read.
TEST_F(ReadReadinessTest, DataArrivingBeforeTheNextReadIsDelivered) {
  send("abc");
  startRead();
  ASSERT_TRUE(finishRead());
  take();
  send("ghi");
  // Let the reactor wait (and see the event) with no read queued: a timer keeps it running.
  asio::steady_timer timer(io_, 20ms);
  timer.async_wait([](boost::system::error_code /*ec*/) {});
  io_.restart();
  io_.run();
  startRead();
  ASSERT_TRUE(finishRead());
  EXPECT_EQ(take(), "ghi");
}

// Verifies the case a short read cannot rule out: the peer's FIN arrived with the data (one epoll
// event for both). A read inside a message tries recv() first and sees the end-of-file at once.
TEST_F(ReadReadinessTest, EndOfFileThatCameWithTheDataIsSeenInsideAMessage) {
  send("abc");
  client_.shutdown(tcp::socket::shutdown_send);
  asio::steady_timer timer(io_, 20ms);  // let both reach the server before it reads
  timer.async_wait([](boost::system::error_code /*ec*/) {});
  io_.run();
  startRead();
  ASSERT_TRUE(finishRead());
  EXPECT_EQ(take(), "abc");
  startRead(ReadPosition::InMessage);
  io_.poll();
  ASSERT_TRUE(result_.has_value()) << "end-of-file not seen at once";
  EXPECT_EQ(result_->status, IoStatus::Eof);
}

TEST_F(ReadReadinessTest, EndOfFileAfterADrainedReadIsDelivered) {
  send("abc");
  startRead();
  ASSERT_TRUE(finishRead());
  take();
  startRead();
  io_.poll();
  client_.shutdown(tcp::socket::shutdown_send);
  ASSERT_TRUE(finishRead());
  EXPECT_EQ(result_->status, IoStatus::Eof);
}

// Verifies what the client watch (proxy/downstream_connection.cc, checkClient) relies on: with no
// read pending, a drained socket says nothing arrived until the peer sends or closes, and then it
// does; noteDrained() (after a peek found nothing) lowers it again.
TEST_F(ReadReadinessTest, InputWithNoReadPendingIsNoticed) {
  send("abc");
  startRead();
  ASSERT_TRUE(finishRead());
  take();
#ifdef SLUICE_HAS_READ_READINESS
  EXPECT_FALSE(inputMayHaveArrived(server_));
#endif
  client_.shutdown(tcp::socket::shutdown_send);
  asio::steady_timer timer(io_, 20ms);  // the reactor waits, and sees the FIN, with no read queued
  timer.async_wait([](boost::system::error_code /*ec*/) {});
  io_.restart();
  io_.run();
  EXPECT_TRUE(inputMayHaveArrived(server_));
  noteDrained(server_);
#ifdef SLUICE_HAS_READ_READINESS
  EXPECT_FALSE(inputMayHaveArrived(server_));
#endif
}

// asyncWaitReadable trusts the same flag as a FirstOfMessage read, so it shares its two orders.
class WaitReadableTest : public ReadReadinessTest {
 protected:
  void startWait() {
    waited_.reset();
    io_.restart();
    asyncWaitReadable(server_, [this](boost::system::error_code ec) { waited_ = ec; });
    io_.poll();
  }
  bool finishWait() {
    const auto until = Clock::now() + 5s;
    while (!waited_ && Clock::now() < until) io_.run_one_for(10ms);
    return waited_.has_value();
  }
  // A short read leaves the server's socket drained.
  void drain() {
    send("abc");
    startRead();
    ASSERT_TRUE(finishRead());
    take();
  }

  std::optional<boost::system::error_code> waited_;
};

TEST_F(WaitReadableTest, ADrainedSocketWaitsForItsNextInput) {
  drain();
  startWait();
  EXPECT_FALSE(waited_.has_value()) << "completed with nothing to read";
  send("def");
  ASSERT_TRUE(finishWait());
  EXPECT_FALSE(*waited_);
}

TEST_F(WaitReadableTest, InputThatCameWithNoWaitPendingEndsTheWaitAtOnce) {
  drain();
  send("ghi");
  asio::steady_timer timer(io_, 20ms);  // the reactor sees the event with nothing queued
  timer.async_wait([](boost::system::error_code /*ec*/) {});
  io_.restart();
  io_.run();
  startWait();
  ASSERT_TRUE(waited_.has_value()) << "the input that came before the wait was missed";
  EXPECT_FALSE(*waited_);
}

TEST_F(WaitReadableTest, CancellingTheSocketEndsTheWait) {
  drain();
  startWait();
  ASSERT_FALSE(waited_.has_value());
  server_.cancel();
  ASSERT_TRUE(finishWait());
  EXPECT_EQ(*waited_, asio::error::operation_aborted);
}

}  // namespace
}  // namespace sluice::gateway::net
