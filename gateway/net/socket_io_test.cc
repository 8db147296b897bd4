#include "gateway/net/socket_io.h"

#include <algorithm>
#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>
#include <gtest/gtest.h>

#include "gateway/net/socket_test_support.h"

namespace sluice::gateway::net {
namespace {

namespace asio = boost::asio;
using asio::ip::tcp;
using namespace std::chrono_literals;

// A connected loopback pair: `server` writes through writeAll, `client` is the peer.
class WriteAllTest : public LoopbackPairTest {
 protected:
  // Whatever an earlier test left: each test starts at the loop's base.
  WriteAllTest() { socket_io_detail::atLoopBase(); }

  // Starts one writeAll of `payload_` from the server; its status lands in `status_`.
  void startWrite() {
    asio::co_spawn(io_, writeOnce(), asio::detached);
    io_.poll();  // runs the coroutine up to its write, and past it if the write completed
  }

  asio::awaitable<void> writeOnce() {
    // Posted before the write: whether it ran by the time the writer resumed tells whether the
    // writer went through the scheduler's queue.
    const std::size_t before = posted_ran_;
    postMarker();
    // Not `?:` around co_await: GCC 12 miscompiles it.
    if (paced_) {
      status_ = co_await writePaced(server_, deadline_, asio::buffer(payload_), Clock::now() + 10s,
                                    pace_);
    } else {
      status_ = co_await writeAll(server_, deadline_, asio::buffer(payload_), Clock::now() + 10s);
    }
    resumed_behind_queue_ = posted_ran_ > before;
  }

  // Makes the server's write wait for the peer: small buffers on both sides, more bytes than fit.
  void shrinkBuffers() {
    server_.set_option(asio::socket_base::send_buffer_size(64 * 1024));
    client_.set_option(asio::socket_base::receive_buffer_size(64 * 1024));
    payload_.assign(std::size_t{8} << 20, 'x');
    for (std::size_t i = 0; i < payload_.size(); i += 4093) payload_[i] = static_cast<char>(i);
  }

  // Posts a handler that counts itself in posted_ran_: one posted before a write has run by the
  // time the writer resumes only if the writer went through the scheduler's queue. (The fixture
  // outlives the handler; a coroutine resumed in place may not.)
  void postMarker() {
    asio::post(io_, [this] { ++posted_ran_; });
  }

  // Reads everything the server wrote, on a thread of its own, while the io_context runs.
  std::string readAllWhileWriting() {
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
    return got;
  }

  std::string payload_ = "GET / HTTP/1.1\r\nHost: a\r\n\r\n";
  std::optional<IoStatus> status_;
  bool resumed_behind_queue_ = false;
  std::size_t posted_ran_ = 0;
  bool paced_ = false;  // writePaced with pace_ instead of writeAll
  TransferPace pace_{{.total = 60s, .min_rate = 1, .window = 20s}};
};

// A proxy's writer holds the response's buffer until it resumes: behind the scheduler's queue,
// that was a whole epoll batch later.
TEST_F(WriteAllTest, AWriteTheSocketTakesResumesTheWriterInPlace) {
  startWrite();
  ASSERT_TRUE(status_.has_value());
  EXPECT_EQ(*status_, IoStatus::Ok);
  EXPECT_FALSE(resumed_behind_queue_);
  EXPECT_FALSE(deadline_.armed());
}

// Each write resumed in place runs the writer a level deeper on the stack: a writer that never
// waits for anything else (pipelined requests answered locally, a run of interim responses)
// must be sent through the queue now and then, or a hostile peer could make the stack overflow.
TEST_F(WriteAllTest, AChainOfWritesResumedInPlaceIsCutShort) {
  constexpr int kWrites = 40;
  std::vector<bool> behind_queue;
  auto chain = [&]() -> asio::awaitable<void> {
    for (int i = 0; i < kWrites; ++i) {
      const std::size_t before = posted_ran_;
      postMarker();
      const IoStatus s =
          co_await writeAll(server_, deadline_, asio::buffer(payload_), Clock::now() + 10s);
      EXPECT_EQ(s, IoStatus::Ok);
      behind_queue.push_back(posted_ran_ > before);
    }
  };
  asio::co_spawn(io_, chain(), asio::detached);
  io_.run_for(5s);
  ASSERT_EQ(behind_queue.size(), static_cast<std::size_t>(kWrites));
  std::size_t longest = 0;
  std::size_t run = 0;
  for (const bool b : behind_queue) {
    run = b ? 0 : run + 1;
    longest = std::max(longest, run);
  }
  EXPECT_GE(longest, 8U) << "writes the socket took were not resumed in place";
  EXPECT_LE(longest, 16U) << "an unbounded chain of writes resumed in place";
  std::string got(payload_.size() * kWrites, '\0');
  asio::read(client_, asio::buffer(got));
  std::string want;
  for (int i = 0; i < kWrites; ++i) want += payload_;
  EXPECT_EQ(got, want);
}

TEST_F(WriteAllTest, APacedWriteTheSocketTakesResumesInPlaceAndCountsItsBytes) {
  paced_ = true;
  startWrite();
  ASSERT_TRUE(status_.has_value());
  EXPECT_EQ(*status_, IoStatus::Ok);
  EXPECT_FALSE(resumed_behind_queue_);
  EXPECT_EQ(pace_.waitBytes(), payload_.size());
  EXPECT_EQ(pace_.verdict(), TransferPace::Verdict::Ok);
}

// Part sent at once, the rest through the reactor: every byte once, in order, and the pace told
// of all of them.
TEST_F(WriteAllTest, APacedWriteThatWaitsGetsEveryByteInOrder) {
  paced_ = true;
  shrinkBuffers();
  startWrite();
  ASSERT_FALSE(status_.has_value()) << "the whole payload fit: the test needs a write that waits";
  EXPECT_GT(pace_.waitBytes(), 0U) << "nothing was sent at once";
  const std::string got = readAllWhileWriting();
  ASSERT_TRUE(status_.has_value());
  EXPECT_EQ(*status_, IoStatus::Ok);
  EXPECT_FALSE(deadline_.armed());
  EXPECT_TRUE(got == payload_) << "bytes lost, repeated or reordered";
  EXPECT_EQ(pace_.waitBytes(), payload_.size());
}

TEST_F(WriteAllTest, APacedWriteToAPeerThatStopsReadingTimesOutOnItsPace) {
  paced_ = true;
  pace_ = TransferPace({.total = 5s});
  shrinkBuffers();
  startWrite();
  ASSERT_FALSE(status_.has_value());
  wheel_.advance(Clock::now() + 6s);
  io_.poll();
  ASSERT_TRUE(status_.has_value());
  EXPECT_EQ(*status_, IoStatus::Timeout);
  EXPECT_EQ(pace_.verdict(), TransferPace::Verdict::TooLong);
}

TEST_F(WriteAllTest, WritesEveryByte) {
  startWrite();
  ASSERT_TRUE(status_.has_value());
  EXPECT_EQ(*status_, IoStatus::Ok);
  EXPECT_FALSE(deadline_.armed());
  std::string got(payload_.size(), '\0');
  asio::read(client_, asio::buffer(got));
  EXPECT_EQ(got, payload_);
}

TEST_F(WriteAllTest, ASlowPeerGetsEveryByteInOrder) {
  shrinkBuffers();
  startWrite();
  ASSERT_FALSE(status_.has_value())
      << "the whole payload fit at once: the test needs a write that waits";
  EXPECT_TRUE(deadline_.armed());
  const std::string got = readAllWhileWriting();
  ASSERT_TRUE(status_.has_value());
  EXPECT_EQ(*status_, IoStatus::Ok);
  EXPECT_FALSE(deadline_.armed());
  EXPECT_TRUE(got == payload_) << "bytes lost, repeated or reordered";
}

TEST_F(WriteAllTest, APeerThatStopsReadingTimesOut) {
  shrinkBuffers();
  startWrite();
  ASSERT_FALSE(status_.has_value());
  wheel_.advance(Clock::now() + 11s);
  io_.poll();
  ASSERT_TRUE(status_.has_value());
  EXPECT_EQ(*status_, IoStatus::Timeout);
}

TEST_F(WriteAllTest, APeerThatIsGoneIsAnError) {
  client_.set_option(asio::socket_base::linger(true, 0));
  client_.close();  // sends RST, which loopback delivers before close() returns
  startWrite();
  ASSERT_TRUE(status_.has_value());
  EXPECT_EQ(*status_, IoStatus::Error);
  EXPECT_FALSE(deadline_.armed());
}

TEST_F(WriteAllTest, AnEmptyWriteCompletes) {
  payload_.clear();
  startWrite();
  ASSERT_TRUE(status_.has_value());
  EXPECT_EQ(*status_, IoStatus::Ok);
}

// A connected loopback pair: `server` reads through readWhenReadable, `client` is the peer.
class ReadWhenReadableTest : public LoopbackPairTest {
 protected:
  void startRead(Clock::duration timeout = 10s) {
    result_.reset();
    io_.restart();
    asio::co_spawn(io_, readOnce(timeout), asio::detached);
    io_.poll();  // runs the coroutine up to its wait, and past it if input was there
  }

  asio::awaitable<void> readOnce(Clock::duration timeout) {
    result_ =
        co_await readWhenReadable(server_, deadline_, in_, Clock::now() + timeout, 4096, 8192);
  }

  bool finishRead() {
    const auto until = Clock::now() + 5s;
    while (!result_ && Clock::now() < until) io_.run_one_for(10ms);
    return result_.has_value();
  }

  // Starts a read that waits: a new socket has not been found drained yet, so its first read
  // looks, finds nothing and says so (Ok, no bytes); the next one waits for an event. (Without
  // the reactor's flag, read_readiness.h, the first one waits already.)
  void startWaitingRead(Clock::duration timeout = 10s) {
    startRead(timeout);
    if (!result_) return;
    ASSERT_EQ(result_->status, IoStatus::Ok);
    ASSERT_EQ(result_->bytes, 0U);
    EXPECT_EQ(in_.capacity(), 0U);
    startRead(timeout);
  }

  IoBuffer in_;
  std::optional<ReadResult> result_;
};

TEST_F(ReadWhenReadableTest, WaitsWithoutABufferAndReadsWhatArrives) {
  startWaitingRead();
  ASSERT_FALSE(result_.has_value());
  EXPECT_EQ(in_.capacity(), 0U) << "a buffer is held while nothing has arrived";
  asio::write(client_, asio::buffer(std::string_view("HTTP/1.1 200 OK\r\n")));
  ASSERT_TRUE(finishRead());
  EXPECT_EQ(result_->status, IoStatus::Ok);
  EXPECT_EQ(in_.readable(), "HTTP/1.1 200 OK\r\n");
  EXPECT_FALSE(deadline_.armed());
}

TEST_F(ReadWhenReadableTest, ReadsWhatCameBeforeTheWait) {
  asio::write(client_, asio::buffer(std::string_view("abc")));
  startRead();
  ASSERT_TRUE(finishRead());
  EXPECT_EQ(in_.readable(), "abc");
}

TEST_F(ReadWhenReadableTest, ThePeerClosingIsAnEndOfFile) {
  startWaitingRead();
  ASSERT_FALSE(result_.has_value());
  client_.shutdown(tcp::socket::shutdown_send);
  ASSERT_TRUE(finishRead());
  EXPECT_EQ(result_->status, IoStatus::Eof);
  EXPECT_EQ(result_->bytes, 0U);
}

TEST_F(ReadWhenReadableTest, AResetIsAnError) {
  startWaitingRead();
  ASSERT_FALSE(result_.has_value());
  client_.set_option(asio::socket_base::linger(true, 0));
  client_.close();
  ASSERT_TRUE(finishRead());
  EXPECT_EQ(result_->status, IoStatus::Error);
}

TEST_F(ReadWhenReadableTest, TimesOutHoldingNoBuffer) {
  startWaitingRead(1s);
  ASSERT_FALSE(result_.has_value());
  wheel_.advance(Clock::now() + 2s);
  ASSERT_TRUE(finishRead());
  EXPECT_EQ(result_->status, IoStatus::Timeout);
  EXPECT_EQ(in_.capacity(), 0U);
}

TEST_F(ReadWhenReadableTest, ACancelledWaitIsAnErrorNotATimeout) {
  startWaitingRead();
  ASSERT_FALSE(result_.has_value());
  deadline_.cancelNow();  // what a client abort does to a request waiting on its upstream
  ASSERT_TRUE(finishRead());
  EXPECT_EQ(result_->status, IoStatus::Error);
}

// Input was there, so the wait completed at once: its completion is queued when the cancel
// comes, and the socket's cancel finds nothing left to cancel. The read must still stop.
TEST_F(ReadWhenReadableTest, ACancelThatFindsTheWakeupQueuedStillStopsTheRead) {
  asio::write(client_, asio::buffer(std::string_view("abc")));
  io_.restart();
  asio::co_spawn(io_, readOnce(10s), asio::detached);
  while (!deadline_.armed()) ASSERT_EQ(io_.run_one(), 1U);  // up to the wait, not past it
  deadline_.cancelNow();
  ASSERT_TRUE(finishRead());
  EXPECT_EQ(result_->status, IoStatus::Error);
  EXPECT_EQ(in_.size(), 0U) << "the input is left for whoever reads the socket next";
}

TEST_F(ReadWhenReadableTest, AnExpiryThatFindsTheWakeupQueuedIsATimeout) {
  asio::write(client_, asio::buffer(std::string_view("abc")));
  io_.restart();
  asio::co_spawn(io_, readOnce(10s), asio::detached);
  while (!deadline_.armed()) ASSERT_EQ(io_.run_one(), 1U);
  deadline_.expireNow();  // what a drain does to an idle keep-alive connection
  ASSERT_TRUE(finishRead());
  EXPECT_EQ(result_->status, IoStatus::Timeout);
}

}  // namespace
}  // namespace sluice::gateway::net
