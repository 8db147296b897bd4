// What the etcd tests share: a real etcd member (Debian's etcd-server, installed by
// scripts/setup.sh) started on free loopback ports with its data in a temporary directory and
// killed by PID, and blocking forms of the client's requests. Test code only.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdlib>
#include <fcntl.h>
#include <filesystem>
#include <future>
#include <mutex>
#include <netinet/in.h>
#include <spawn.h>
#include <string>
#include <sys/socket.h>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>
#include <vector>

#include <gtest/gtest.h>
#include <spdlog/spdlog.h>

#include "gateway/etcd/etcd_client.h"

// posix_spawn's argument, declared by no header.
// NOLINTNEXTLINE(readability-redundant-declaration,cppcoreguidelines-avoid-non-const-global-variables)
extern char** environ;

namespace sluice::gateway::etcd::test {

using namespace std::chrono_literals;

// spdlog's registry and default logger are made on first use inside libspdlog, which is not
// instrumented: TSan cannot see that their making happens before another thread's first log
// line, and reports a race when two clients' threads log first at once. Made here, at static
// initialisation on the main thread, they exist before any client thread starts.
inline const bool kLogRegistryMade = (spdlog::default_logger_raw(), true);

inline std::uint16_t freePort() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  (void)::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  socklen_t len = sizeof a;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  ::close(fd);
  return ntohs(a.sin_port);
}

// Before any thread of the test starts.
// NOLINTNEXTLINE(concurrency-mt-unsafe)
inline bool haveEtcd() { return std::system("command -v etcd >/dev/null 2>&1") == 0; }

inline bool listening(std::uint16_t port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  const bool up = ::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
  ::close(fd);
  return up;
}

// One etcd member with its data in a fresh directory; start() may be called again after kill()
// (the same data), on another client port if asked.
class Server {
 public:
  Server() : Server("t", freePort(), {}) {}
  // A member of a cluster: `initial_cluster` names every member's peer URL.
  Server(std::string name, std::uint16_t peer_port, std::string initial_cluster)
      : name_(std::move(name)),
        client_port_(freePort()),
        peer_port_(peer_port),
        initial_cluster_(std::move(initial_cluster)) {
    dir_ = std::filesystem::temp_directory_path() /
           ("sluice-etcd-test-" + std::to_string(::getpid()) + "-" + std::to_string(peer_port_));
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
    start();
  }
  ~Server() {
    kill();
    std::error_code ignored;
    std::filesystem::remove_all(dir_, ignored);
  }
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;
  Server(Server&&) = delete;
  Server& operator=(Server&&) = delete;

  [[nodiscard]] std::uint16_t port() const { return client_port_; }

  void start(std::uint16_t client_port = 0) {
    const std::uint16_t port = client_port != 0 ? client_port : client_port_;
    const std::string client = "http://127.0.0.1:" + std::to_string(port);
    const std::string peer = "http://127.0.0.1:" + std::to_string(peer_port_);
    // A 100 ms election timeout: a restarted member leads again within a few hundred ms.
    const std::string cluster = initial_cluster_.empty() ? name_ + "=" + peer : initial_cluster_;
    std::vector<std::string> args = {"etcd",
                                     "--name=" + name_,
                                     "--data-dir=" + (dir_ / "data").string(),
                                     "--listen-client-urls=" + client,
                                     "--advertise-client-urls=" + client,
                                     "--listen-peer-urls=" + peer,
                                     "--initial-advertise-peer-urls=" + peer,
                                     "--initial-cluster=" + cluster,
                                     "--heartbeat-interval=10",
                                     "--election-timeout=100"};
    std::vector<char*> argv;
    argv.reserve(args.size() + 1);
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    posix_spawn_file_actions_t io;
    posix_spawn_file_actions_init(&io);
    const std::string log = (dir_ / "etcd.log").string();
    posix_spawn_file_actions_addopen(&io, 1, log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    posix_spawn_file_actions_adddup2(&io, 1, 2);
    const int rc = ::posix_spawnp(&pid_, "etcd", &io, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&io);
    ASSERT_EQ(rc, 0);
    for (int i = 0; i < 250; ++i) {
      if (listening(port)) return;
      std::this_thread::sleep_for(20ms);
    }
    FAIL() << "etcd did not listen on " << port;
  }
  void kill() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
    pid_ = -1;
  }

 private:
  std::string name_;
  std::uint16_t client_port_;
  std::uint16_t peer_port_;
  std::string initial_cluster_;
  std::filesystem::path dir_;
  pid_t pid_ = -1;
};

inline ClientSettings settingsFor(const std::vector<std::uint16_t>& ports) {
  ClientSettings s;
  for (auto p : ports) s.endpoints.push_back({"127.0.0.1", p});
  s.timeout = 1s;
  return s;
}

template <typename Pred>
inline bool eventually(Pred pred, std::chrono::milliseconds limit = 5s) {
  const auto end = std::chrono::steady_clock::now() + limit;
  while (!pred()) {
    if (std::chrono::steady_clock::now() > end) return false;
    std::this_thread::sleep_for(5ms);
  }
  return true;
}

// Runs `start(callback)` and waits for the callback's result.
template <typename T, typename Start>
inline Result<T> await(Start start) {
  auto promise = std::make_shared<std::promise<Result<T>>>();
  auto future = promise->get_future();
  start([promise](Result<T> r) { promise->set_value(std::move(r)); });
  // Every request is answered within its deadline; 5 s means the client lost the callback.
  if (future.wait_for(5s) != std::future_status::ready) {
    ADD_FAILURE() << "no answer within 5 s";
    return {};
  }
  return future.get();
}

inline Result<PutResponse> put(EtcdClient& c, std::string_view key, std::string_view value,
                               std::int64_t lease = 0) {
  return await<PutResponse>([&](auto done) { c.put(key, value, std::move(done), lease); });
}
inline Result<RangeResponse> get(EtcdClient& c, const KeyRange& range) {
  return await<RangeResponse>([&](auto done) { c.range(range, std::move(done)); });
}
inline Result<DeleteResponse> del(EtcdClient& c, const KeyRange& range) {
  return await<DeleteResponse>([&](auto done) { c.deleteRange(range, std::move(done)); });
}

}  // namespace sluice::gateway::etcd::test
