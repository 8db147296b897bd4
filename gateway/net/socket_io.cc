#include "gateway/net/socket_io.h"

#include <cerrno>
#include <sys/socket.h>

namespace sluice::gateway::net {

std::size_t sendNow(int fd, iovec* iov, std::size_t count, boost::system::error_code& ec) {
  if (count == 0) return 0;
  msghdr msg{};
  msg.msg_iov = iov;
  msg.msg_iovlen = count;
  for (;;) {
    // MSG_DONTWAIT: never block, whatever the descriptor's mode; MSG_NOSIGNAL: a peer that is
    // gone is EPIPE, not a SIGPIPE.
    const ssize_t n = ::sendmsg(fd, &msg, MSG_DONTWAIT | MSG_NOSIGNAL);
    if (n >= 0) return static_cast<std::size_t>(n);
    if (errno == EINTR) continue;
    if (errno != EAGAIN && errno != EWOULDBLOCK) {
      ec.assign(errno, boost::system::system_category());
    }
    return 0;
  }
}

}  // namespace sluice::gateway::net
