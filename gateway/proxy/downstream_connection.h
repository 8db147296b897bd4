// One client connection, from accept to close, as one coroutine on its worker.
//
// The loop: wait for a request (keep-alive idle) -> read and parse its head strictly (header
// deadline from the first byte) -> route -> guards -> forward -> complete, then the next request
// (pipelined requests are simply the bytes left in the buffer, answered in order). Local errors
// become short replies with the right status; a request that could confuse framing closes the
// connection after its 400 so nothing of it is ever forwarded.
//
// Memory: while a connection idles it holds no buffer. For the first 250 ms of idleness it keeps
// its read buffer and a plain read pending (the hot keep-alive path: no extra syscall); after that
// it frees the buffer and waits for readability instead, so 10,000 idle clients cost little more
// than their sockets.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>

#include "gateway/config/config.h"
#include "gateway/http/head.h"
#include "gateway/http/local_reply.h"
#include "gateway/http/request_parser.h"
#include "gateway/net/io_buffer.h"
#include "gateway/net/socket_deadline.h"
#include "gateway/proxy/forwarder.h"
#include "gateway/proxy/request_context.h"

namespace sluice::gateway::server {
class Worker;
}

namespace sluice::gateway::proxy {

class DownstreamConnection {
 public:
  DownstreamConnection(server::Worker& worker, const config::Listener& listener,
                       boost::asio::ip::tcp::socket socket);
  DownstreamConnection(const DownstreamConnection&) = delete;
  DownstreamConnection& operator=(const DownstreamConnection&) = delete;
  ~DownstreamConnection();

  boost::asio::awaitable<void> run();

  // Called by the worker when draining starts: an idle connection closes now, a busy one after
  // its current response (which carries Connection: close).
  void drain();

  // Intrusive links for the worker's connection list.
  DownstreamConnection* prev = nullptr;
  DownstreamConnection* next = nullptr;

 private:
  enum class Phase : std::uint8_t { Idle, Head, Busy };
  enum class HeadStatus : std::uint8_t { Ready, Closed, Rejected };

  boost::asio::awaitable<bool> waitForRequest();
  boost::asio::awaitable<HeadStatus> readHead();
  boost::asio::awaitable<bool> handle();
  boost::asio::awaitable<bool> reply(const http::LocalReply& r, bool close);
  boost::asio::awaitable<void> lingeringClose();
  void complete(bool upstream_failed, std::size_t guards_admitted);
  [[nodiscard]] bool bodyUnread() const noexcept;
  // Non-blocking read of whatever the client already sent; false if nothing is there.
  bool readNow();
  void releaseIdleMemory();

  server::Worker& worker_;
  const config::Listener& listener_;
  boost::asio::ip::tcp::socket socket_;
  std::string client_ip_;
  net::IoBuffer in_;
  net::SocketDeadline deadline_;
  http::RequestHead head_;
  std::optional<http::RequestParser> parser_;
  http::RequestError head_error_ = http::RequestError::None;
  bool head_timed_out_ = false;
  std::size_t head_size_ = 0;
  Phase phase_ = Phase::Idle;
  std::uint64_t served_ = 0;  // requests this connection has started
  bool response_started_ = false;
  bool linger_ = false;  // the client may still be sending: drain its bytes before closing
  bool reset_ = false;   // the client stopped reading: close with RST
  RequestContext ctx_;
  Scratch scratch_;
};

}  // namespace sluice::gateway::proxy
