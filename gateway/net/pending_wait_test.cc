#include "gateway/net/pending_wait.h"

#include <chrono>
#include <optional>

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <gtest/gtest.h>

namespace sluice::gateway::net {
namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;

// Verifies: cancel() cuts the registered wait short (operation_aborted) and forgets it.
TEST(PendingWait, CancelCutsTheRegisteredWaitShort) {
  asio::io_context io;
  asio::steady_timer timer(io, 1h);
  std::optional<boost::system::error_code> result;
  timer.async_wait([&](boost::system::error_code ec) { result = ec; });
  PendingWait wait;
  wait.set(timer);
  wait.cancel();
  io.run_for(1s);
  ASSERT_TRUE(result.has_value());
  EXPECT_EQ(*result, asio::error::operation_aborted);
  wait.cancel();  // nothing registered any more: does nothing
}

// Verifies: a wait cleared when it ended is not touched by a later cancel().
TEST(PendingWait, ACancelAfterClearTouchesNothing) {
  asio::io_context io;
  asio::steady_timer timer(io, 50ms);
  std::optional<boost::system::error_code> result;
  PendingWait wait;
  wait.set(timer);
  wait.clear();
  timer.async_wait([&](boost::system::error_code ec) { result = ec; });
  wait.cancel();
  io.run_for(1s);
  ASSERT_TRUE(result.has_value());
  EXPECT_FALSE(*result);  // it ran its course
}

}  // namespace
}  // namespace sluice::gateway::net
