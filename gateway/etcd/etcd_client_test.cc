// EtcdClient against a real etcd (Debian's etcd-server, installed by scripts/setup.sh), started
// by the test on free loopback ports with its data in a temporary directory and killed by PID:
// key-value requests, leases kept and lost, watches in order, across a restart and after a
// compaction, and failover between endpoints. Skipped when etcd is not installed.
#include "gateway/etcd/etcd_client.h"

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

#include "gateway/etcd/etcd_test_support.h"

namespace sluice::gateway::etcd {
namespace {

using namespace std::chrono_literals;
using namespace test;  // NOLINT(google-build-using-namespace)

// What a watch delivered, as "PUT key=value@rev" / "DELETE key@rev" lines, and relists.
class Recorder {
 public:
  std::function<void(const WatchUpdate&)> callback() {
    return [this](const WatchUpdate& u) {
      std::lock_guard lock(mu_);
      if (u.relist) {
        relists_.push_back(u.compact_revision);
        return;
      }
      for (const auto& e : u.events) {
        lines_.push_back((e.type == WatchEvent::Type::Put ? "PUT " + e.kv.key + "=" + e.kv.value
                                                          : "DELETE " + e.kv.key));
      }
    };
  }
  std::vector<std::string> lines() const {
    std::lock_guard lock(mu_);
    return lines_;
  }
  std::vector<std::int64_t> relists() const {
    std::lock_guard lock(mu_);
    return relists_;
  }

 private:
  mutable std::mutex mu_;
  std::vector<std::string> lines_;
  std::vector<std::int64_t> relists_;
};

// Not etcd: answers every request on its port with `reply` (nothing at all when it is empty:
// a server that accepts and then says nothing), to see what the client makes of it.
class FakeServer {
 public:
  explicit FakeServer(std::string reply)
      : reply_(std::move(reply)), listener_(::socket(AF_INET, SOCK_STREAM, 0)) {
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    (void)::bind(listener_, reinterpret_cast<sockaddr*>(&a), sizeof a);
    socklen_t len = sizeof a;
    ::getsockname(listener_, reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
    ::listen(listener_, 16);
    thread_ = std::thread([this] { run(); });
  }
  ~FakeServer() {
    stop_ = true;
    ::shutdown(listener_, SHUT_RDWR);
    thread_.join();
    ::close(listener_);
    for (const int fd : open_) ::close(fd);
  }
  FakeServer(const FakeServer&) = delete;
  FakeServer& operator=(const FakeServer&) = delete;
  FakeServer(FakeServer&&) = delete;
  FakeServer& operator=(FakeServer&&) = delete;

  [[nodiscard]] std::uint16_t port() const { return port_; }
  [[nodiscard]] int accepted() const { return accepted_.load(); }

 private:
  void run() {
    while (!stop_) {
      const int fd = ::accept(listener_, nullptr, nullptr);
      if (fd < 0) return;
      ++accepted_;
      std::array<char, 4096> buf{};
      (void)::recv(fd, buf.data(), buf.size(), 0);  // the request (small: one read)
      if (reply_.empty()) {
        open_.push_back(fd);  // held open, unanswered
        continue;
      }
      (void)::send(fd, reply_.data(), reply_.size(), MSG_NOSIGNAL);
      ::close(fd);
    }
  }

  std::string reply_;
  int listener_ = -1;
  std::uint16_t port_ = 0;
  std::atomic<bool> stop_{false};
  std::atomic<int> accepted_{0};
  std::vector<int> open_;
  std::thread thread_;
};

class EtcdClientTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!haveEtcd()) GTEST_SKIP() << "etcd is not installed (scripts/setup.sh: etcd-server)";
  }
};

TEST_F(EtcdClientTest, PutsRangesPrefixesAndDeletes) {
  Server server;
  EtcdClient client(settingsFor({server.port()}));
  const auto a = put(client, "/t/a", "1");
  ASSERT_TRUE(a.ok()) << a.status.message;
  ASSERT_TRUE(put(client, "/t/b", std::string("\0\xff", 2)).ok());
  ASSERT_TRUE(put(client, "/u/c", "3").ok());
  EXPECT_TRUE(client.up());

  const auto one = get(client, KeyRange::single("/t/a"));
  ASSERT_TRUE(one.ok()) << one.status.message;
  ASSERT_EQ(one.value.kvs.size(), 1U);
  EXPECT_EQ(one.value.kvs[0].value, "1");
  EXPECT_EQ(one.value.kvs[0].create_revision, a.value.revision);
  EXPECT_EQ(one.value.kvs[0].mod_revision, a.value.revision);
  EXPECT_EQ(one.value.revision, a.value.revision + 2);  // the header: the store's revision

  const auto prefix = get(client, KeyRange::prefix("/t/"));
  ASSERT_TRUE(prefix.ok());
  ASSERT_EQ(prefix.value.kvs.size(), 2U);
  EXPECT_EQ(prefix.value.kvs[0].key, "/t/a");
  EXPECT_EQ(prefix.value.kvs[1].key, "/t/b");
  EXPECT_EQ(prefix.value.kvs[1].value, std::string("\0\xff", 2));  // binary-safe

  const auto gone = del(client, KeyRange::prefix("/t/"));
  ASSERT_TRUE(gone.ok());
  EXPECT_EQ(gone.value.deleted, 2);
  EXPECT_TRUE(get(client, KeyRange::prefix("/t/")).value.kvs.empty());
  EXPECT_EQ(get(client, KeyRange::prefix("/u/")).value.kvs.size(), 1U);
  // An old revision that was never compacted is readable.
  const auto past = await<RangeResponse>([&](auto done) {
    client.range(KeyRange::single("/t/a"), std::move(done), a.value.revision);
  });
  ASSERT_TRUE(past.ok());
  EXPECT_EQ(past.value.kvs.size(), 1U);
  EXPECT_EQ(client.stats().requests[static_cast<int>(Op::Put)][0].value(), 3U);
  EXPECT_EQ(client.stats().requests[static_cast<int>(Op::Range)][0].value(), 5U);
}

TEST_F(EtcdClientTest, AKeptLeaseKeepsItsKeyAndTheKeyVanishesWhenKeepAlivesStop) {
  Server server;
  std::atomic<bool> lost{false};
  EtcdClient client(settingsFor({server.port()}));
  const auto lease = await<LeaseGrant>([&](auto done) { client.leaseGrant(1s, std::move(done)); });
  ASSERT_TRUE(lease.ok()) << lease.status.message;
  ASSERT_TRUE(put(client, "/reg/me", "here", lease.value.id).ok());
  Subscription keeper =
      client.keepAlive(lease.value.id, lease.value.ttl, [&](const Status&) { lost = true; });
  std::this_thread::sleep_for(2500ms);  // 2.5 TTLs
  EXPECT_FALSE(lost.load());
  EXPECT_TRUE(keeper.active());
  EXPECT_EQ(get(client, KeyRange::single("/reg/me")).value.kvs.size(), 1U);
  keeper.cancel();
  // Gone within the TTL (etcd checks expiries every 500 ms).
  EXPECT_TRUE(eventually([&] { return get(client, KeyRange::single("/reg/me")).value.kvs.empty(); },
                         2500ms));
  EXPECT_FALSE(lost.load());  // cancelled, not lost
}

TEST_F(EtcdClientTest, AKeepAliveReportsARevokedLeaseAsLost) {
  Server server;
  std::promise<Status> lost;
  EtcdClient client(settingsFor({server.port()}));
  const auto lease = await<LeaseGrant>([&](auto done) { client.leaseGrant(3s, std::move(done)); });
  ASSERT_TRUE(lease.ok());
  Subscription keeper = client.keepAlive(lease.value.id, lease.value.ttl,
                                         [&](const Status& s) { lost.set_value(s); });
  ASSERT_TRUE(
      await<Empty>([&](auto done) { client.leaseRevoke(lease.value.id, std::move(done)); }).ok());
  auto f = lost.get_future();
  ASSERT_EQ(f.wait_for(3s), std::future_status::ready);  // the next renewal, at TTL/3
  EXPECT_EQ(f.get().grpc_code, kGrpcNotFound);
  EXPECT_TRUE(eventually([&] { return !keeper.active(); }));
  // Revoking it again: an error value.
  const auto again =
      await<Empty>([&](auto done) { client.leaseRevoke(lease.value.id, std::move(done)); });
  EXPECT_EQ(again.status.code, ErrorCode::Server);
  EXPECT_EQ(again.status.grpc_code, kGrpcNotFound);
}

TEST_F(EtcdClientTest, AWatchSeesPutsAndDeletesInOrder) {
  Server server;
  Recorder seen;  // before the client: a callback may still run until the client stops
  EtcdClient client(settingsFor({server.port()}));
  const auto start = get(client, KeyRange::prefix("/w/"));
  ASSERT_TRUE(start.ok());
  Subscription watch =
      client.watch(KeyRange::prefix("/w/"), start.value.revision + 1, seen.callback());
  ASSERT_TRUE(put(client, "/w/a", "1").ok());
  ASSERT_TRUE(put(client, "/other", "x").ok());  // outside the prefix
  ASSERT_TRUE(put(client, "/w/b", "2").ok());
  ASSERT_TRUE(del(client, KeyRange::single("/w/a")).ok());
  ASSERT_TRUE(put(client, "/w/b", "3").ok());
  const std::vector<std::string> want = {"PUT /w/a=1", "PUT /w/b=2", "DELETE /w/a", "PUT /w/b=3"};
  EXPECT_TRUE(eventually([&] { return seen.lines().size() >= want.size(); }));
  EXPECT_EQ(seen.lines(), want);
  EXPECT_EQ(client.stats().requests[static_cast<int>(Op::Watch)][0].value(), 1U);
  watch.cancel();
  ASSERT_TRUE(put(client, "/w/c", "after").ok());
  std::this_thread::sleep_for(100ms);
  EXPECT_EQ(seen.lines().size(), want.size());  // nothing after cancel()
}

// verifies: a watch resumes from the revision after the last it delivered, so the changes made
// while it could not reach etcd arrive once each, in order. A single member cannot take writes
// while it is down, so "while down" is staged as: etcd comes back on another client port (which
// the watching client does not know), takes writes there, and is restarted on the watched port.
TEST_F(EtcdClientTest, AWatchResumesAcrossARestartWithoutMissingChanges) {
  Server server;
  Recorder seen;
  EtcdClient watcher(settingsFor({server.port()}));
  Subscription watch = watcher.watch(KeyRange::prefix("/r/"), 0, seen.callback());
  {
    EtcdClient writer(settingsFor({server.port()}));
    ASSERT_TRUE(eventually([&] { return watcher.up(); }));
    ASSERT_TRUE(put(writer, "/r/1", "before").ok());
    ASSERT_TRUE(eventually([&] { return seen.lines().size() == 1; }));
  }
  server.kill();
  ASSERT_TRUE(eventually([&] { return !watcher.up(); }));
  const std::uint16_t aside = freePort();
  server.start(aside);
  {
    EtcdClient writer(settingsFor({aside}));
    ASSERT_TRUE(put(writer, "/r/2", "while away").ok());
    ASSERT_TRUE(del(writer, KeyRange::single("/r/1")).ok());
    ASSERT_TRUE(put(writer, "/r/3", "while away").ok());
  }
  server.kill();
  server.start();
  EtcdClient writer(settingsFor({server.port()}));
  ASSERT_TRUE(eventually([&] { return watcher.up(); }, 8s));
  ASSERT_TRUE(put(writer, "/r/4", "after").ok());
  const std::vector<std::string> want = {"PUT /r/1=before", "PUT /r/2=while away", "DELETE /r/1",
                                         "PUT /r/3=while away", "PUT /r/4=after"};
  EXPECT_TRUE(eventually([&] { return seen.lines().size() >= want.size(); }));
  EXPECT_EQ(seen.lines(), want);
  EXPECT_TRUE(watch.active());
  EXPECT_GE(watcher.stats().requests[static_cast<int>(Op::Watch)][0].value(), 2U);
}

TEST_F(EtcdClientTest, AWatchFromACompactedRevisionAsksForARelist) {
  Server server;
  Recorder seen;
  Recorder again;
  EtcdClient client(settingsFor({server.port()}));
  const auto first = put(client, "/c/k", "1");
  ASSERT_TRUE(first.ok());
  ASSERT_TRUE(put(client, "/c/k", "2").ok());
  const auto last = put(client, "/c/k", "3");
  ASSERT_TRUE(last.ok());
  ASSERT_TRUE(
      await<Empty>([&](auto done) { client.compact(last.value.revision, std::move(done)); }).ok());
  // Reading the compacted past is an error value too.
  const auto old = await<RangeResponse>([&](auto done) {
    client.range(KeyRange::prefix("/c/"), std::move(done), first.value.revision);
  });
  EXPECT_EQ(old.status.grpc_code, kGrpcOutOfRange);

  Subscription watch = client.watch(KeyRange::prefix("/c/"), first.value.revision, seen.callback());
  ASSERT_TRUE(eventually([&] { return !seen.relists().empty(); }));
  EXPECT_EQ(seen.relists()[0], last.value.revision);
  EXPECT_TRUE(eventually([&] { return !watch.active(); }));
  EXPECT_TRUE(seen.lines().empty());

  // What the caller does: list again, watch from that listing's revision + 1.
  const auto listing = get(client, KeyRange::prefix("/c/"));
  ASSERT_TRUE(listing.ok());
  ASSERT_EQ(listing.value.kvs.size(), 1U);
  EXPECT_EQ(listing.value.kvs[0].value, "3");
  Subscription rewatch =
      client.watch(KeyRange::prefix("/c/"), listing.value.revision + 1, again.callback());
  ASSERT_TRUE(put(client, "/c/k", "4").ok());
  EXPECT_TRUE(eventually([&] { return again.lines().size() == 1; }));
  EXPECT_EQ(again.lines(), std::vector<std::string>{"PUT /c/k=4"});
}

TEST_F(EtcdClientTest, RequestsAndWatchesFailOverToALiveEndpoint) {
  Server server;
  Recorder seen;
  const std::uint16_t dead = freePort();  // nothing listens there
  EtcdClient client(settingsFor({dead, server.port()}));
  const auto p = put(client, "/f/k", "v");
  ASSERT_TRUE(p.ok()) << p.status.message;
  EXPECT_TRUE(client.up());
  const auto r = get(client, KeyRange::single("/f/k"));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r.value.kvs.size(), 1U);
  Subscription watch = client.watch(KeyRange::prefix("/f/"), p.value.revision, seen.callback());
  EXPECT_TRUE(eventually([&] { return seen.lines().size() == 1; }));

  // Every endpoint dead: an error value, at once (refused), and up() says so.
  EtcdClient nowhere(settingsFor({dead, freePort()}));
  const auto none = get(nowhere, KeyRange::single("/f/k"));
  EXPECT_EQ(none.status.code, ErrorCode::Unavailable);
  EXPECT_FALSE(nowhere.up());
  EXPECT_EQ(nowhere.stats()
                .requests[static_cast<int>(Op::Range)][static_cast<int>(ErrorCode::Unavailable)]
                .value(),
            1U);
}

TEST_F(EtcdClientTest, AServerErrorFailsOverAndAnUnansweredEndpointGetsOnlyItsShare) {
  Server server;
  FakeServer unavailable(
      "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
      "Content-Length: 53\r\n\r\n{\"error\":\"no leader\",\"message\":\"no leader\",\"code\":14}");
  FakeServer silent("");
  EtcdClient client(settingsFor({unavailable.port(), silent.port(), server.port()}));
  const auto start = std::chrono::steady_clock::now();
  const auto p = put(client, "/s/k", "v");
  const auto took = std::chrono::steady_clock::now() - start;
  ASSERT_TRUE(p.ok()) << p.status.message;
  EXPECT_EQ(unavailable.accepted(), 1);
  EXPECT_EQ(silent.accepted(), 1);
  // The silent one got half of what was left after the 503 (1 s in all), not the whole second.
  EXPECT_LT(took, 900ms);
  // The last good endpoint is tried first from now on.
  ASSERT_TRUE(get(client, KeyRange::single("/s/k")).ok());
  EXPECT_EQ(unavailable.accepted(), 1);

  // Only a 503: its etcd error is the answer, after every endpoint was tried.
  EtcdClient only(settingsFor({unavailable.port()}));
  const auto r = get(only, KeyRange::single("/s/k"));
  EXPECT_EQ(r.status.code, ErrorCode::Server);
  EXPECT_EQ(r.status.grpc_code, 14);
  // Only silence: a timeout, at the deadline.
  EtcdClient mute(settingsFor({silent.port()}));
  EXPECT_EQ(get(mute, KeyRange::single("/s/k")).status.code, ErrorCode::Timeout);
}

TEST_F(EtcdClientTest, GarbageFromTheServerIsAnErrorValueAndAGarbledWatchReconnects) {
  FakeServer garbage(
      "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n"
      "\r\n10\r\n{\"result\":[1,2]}\r\n5\r\nhello\r\n0\r\n\r\n");
  Recorder seen;
  EtcdClient client(settingsFor({garbage.port()}));
  const auto r = get(client, KeyRange::single("/k"));
  EXPECT_EQ(r.status.code, ErrorCode::BadResponse);
  Subscription watch = client.watch(KeyRange::prefix("/"), 0, seen.callback());
  // It keeps trying (with backoff), delivers nothing and stays alive.
  EXPECT_TRUE(eventually([&] { return garbage.accepted() >= 4; }));
  EXPECT_TRUE(watch.active());
  EXPECT_TRUE(seen.lines().empty());
  EXPECT_GE(client.stats()
                .requests[static_cast<int>(Op::Watch)][static_cast<int>(ErrorCode::BadResponse)]
                .value(),
            2U);
}

// verifies: a watch requires a leader, so a member that loses its own (here: its only peer is
// killed, so no quorum is left) ends the stream, no new one opens there, and up() says so,
// instead of a watch that stays open and can see no new writes.
TEST_F(EtcdClientTest, AWatchOnAMemberWithoutALeaderIsEndedAndUpSaysSo) {
  const std::uint16_t peer_a = freePort();
  const std::uint16_t peer_b = freePort();
  const std::string cluster = "a=http://127.0.0.1:" + std::to_string(peer_a) +
                              ",b=http://127.0.0.1:" + std::to_string(peer_b);
  Server a("a", peer_a, cluster);
  Server b("b", peer_b, cluster);
  Recorder seen;
  EtcdClient client(settingsFor({a.port()}));
  Subscription watch = client.watch(KeyRange::prefix("/l/"), 0, seen.callback());
  ASSERT_TRUE(eventually([&] { return client.up(); }));
  ASSERT_TRUE(put(client, "/l/k", "v").ok());
  ASSERT_TRUE(eventually([&] { return seen.lines().size() == 1; }));
  b.kill();
  EXPECT_TRUE(eventually([&] { return !client.up(); }));
  EXPECT_TRUE(watch.active());  // still trying, for when the member has a leader again
}

}  // namespace
}  // namespace sluice::gateway::etcd
