#include "gateway/server/listen_socket.h"

#include <arpa/inet.h>
#include <cerrno>
#include <netinet/in.h>
#include <sys/socket.h>
#include <system_error>
#include <unistd.h>

namespace sluice::gateway::server {

namespace {

constexpr int kBacklog = 4096;

}  // namespace

std::variant<int, std::string> bindListener(const config::Listener& l) {
  const auto fail = [&](const char* what, int fd) -> std::variant<int, std::string> {
    const int err = errno;
    if (fd >= 0) ::close(fd);
    return "listener '" + l.name + "' on " + l.address.text() + ": " + what + ": " +
           std::system_category().message(err);
  };
  sockaddr_storage addr{};
  socklen_t len = 0;
  int family = AF_INET;
  if (l.address.ip.find(':') != std::string::npos) {
    family = AF_INET6;
    auto* a6 = reinterpret_cast<sockaddr_in6*>(&addr);
    a6->sin6_family = AF_INET6;
    a6->sin6_port = htons(l.address.port);
    if (::inet_pton(AF_INET6, l.address.ip.c_str(), &a6->sin6_addr) != 1) {
      errno = EINVAL;
      return fail("address", -1);
    }
    len = sizeof(sockaddr_in6);
  } else {
    auto* a4 = reinterpret_cast<sockaddr_in*>(&addr);
    a4->sin_family = AF_INET;
    a4->sin_port = htons(l.address.port);
    if (::inet_pton(AF_INET, l.address.ip.c_str(), &a4->sin_addr) != 1) {
      errno = EINVAL;
      return fail("address", -1);
    }
    len = sizeof(sockaddr_in);
  }
  const int fd = ::socket(family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) return fail("open", -1);
  const int one = 1;
  if (::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0) {
    return fail("SO_REUSEADDR", fd);
  }
  if (::setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) != 0) {
    return fail("SO_REUSEPORT", fd);
  }
  if (::bind(fd, reinterpret_cast<const sockaddr*>(&addr), len) != 0) return fail("bind", fd);
  if (::listen(fd, kBacklog) != 0) return fail("listen", fd);
  return fd;
}

ListenFds& ListenFds::operator=(ListenFds&& o) noexcept {
  if (this != &o) {
    for (const auto& [name, fd] : fds_) ::close(fd);
    fds_ = std::move(o.fds_);
  }
  return *this;
}

ListenFds::~ListenFds() {
  for (const auto& [name, fd] : fds_) ::close(fd);
}

int ListenFds::take(const std::string& listener) {
  for (auto it = fds_.begin(); it != fds_.end(); ++it) {
    if (it->first == listener) {
      const int fd = it->second;
      fds_.erase(it);
      return fd;
    }
  }
  return -1;
}

}  // namespace sluice::gateway::server
