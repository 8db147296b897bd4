// RangeWatch against a real etcd (etcd_test_support.h): the range as it is after every change,
// delivered on the owner's loop, across a compaction that forces a new listing, and from a state
// the owner already read. Skipped when etcd is not installed.
#include "gateway/etcd/range_watch.h"

#include <future>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <gtest/gtest.h>

#include "gateway/etcd/etcd_test_support.h"

namespace sluice::gateway::etcd {
namespace {

using namespace test;  // NOLINT(google-build-using-namespace)

// The owner's event loop on a thread of its own, and what the watch handed to it.
class Owner {
 public:
  Owner() : thread_([this] { io_.run(); }) {}
  ~Owner() {
    work_.reset();
    io_.stop();
    thread_.join();
  }
  Owner(const Owner&) = delete;
  Owner& operator=(const Owner&) = delete;
  Owner(Owner&&) = delete;
  Owner& operator=(Owner&&) = delete;

  boost::asio::io_context& io() { return io_; }
  RangeWatch::OnChange callback() {
    return [this](const RangeWatch::State& s) {
      EXPECT_TRUE(io_.get_executor().running_in_this_thread());
      std::map<std::string, std::string> values;
      for (const auto& [k, kv] : s.kvs) values[k] = kv.value;
      std::lock_guard lock(mu_);
      states_.push_back(std::move(values));
    };
  }
  std::vector<std::map<std::string, std::string>> states() const {
    std::lock_guard lock(mu_);
    return states_;
  }
  std::map<std::string, std::string> last() const {
    std::lock_guard lock(mu_);
    return states_.empty() ? std::map<std::string, std::string>{} : states_.back();
  }
  // Runs `f` on the owner's thread and waits for it (start() and stop() belong there).
  template <typename F>
  void run(F f) {
    std::promise<void> done;
    boost::asio::post(io_, [&] {
      f();
      done.set_value();
    });
    done.get_future().wait();
  }

 private:
  boost::asio::io_context io_;
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> work_{
      io_.get_executor()};
  mutable std::mutex mu_;
  std::vector<std::map<std::string, std::string>> states_;
  std::thread thread_;
};

using Values = std::map<std::string, std::string>;

class RangeWatchTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!haveEtcd()) GTEST_SKIP() << "etcd is not installed (scripts/setup.sh: etcd-server)";
  }
};

TEST_F(RangeWatchTest, DeliversTheListingThenTheRangeAfterEachChange) {
  Server server;
  EtcdClient client(settingsFor({server.port()}));
  ASSERT_TRUE(put(client, "/s/a", "1").ok());
  ASSERT_TRUE(put(client, "/other", "x").ok());
  Owner owner;
  RangeWatch watch(owner.io(), client, KeyRange::prefix("/s/"), owner.callback());
  owner.run([&] { watch.start(); });
  ASSERT_TRUE(eventually([&] { return owner.last() == Values{{"/s/a", "1"}}; }));
  ASSERT_TRUE(put(client, "/s/b", "2").ok());
  ASSERT_TRUE(eventually([&] { return owner.last() == Values{{"/s/a", "1"}, {"/s/b", "2"}}; }));
  ASSERT_TRUE(del(client, KeyRange::single("/s/a")).ok());
  ASSERT_TRUE(eventually([&] { return owner.last() == Values{{"/s/b", "2"}}; }));
  ASSERT_TRUE(put(client, "/other", "y").ok());  // outside the range: nothing
  ASSERT_TRUE(put(client, "/s/b", "3").ok());
  ASSERT_TRUE(eventually([&] { return owner.last() == Values{{"/s/b", "3"}}; }));
  EXPECT_EQ(owner.states().size(), 4U);
  owner.run([&] { watch.stop(); });
  // A second watch on the same range sees the next write: by then the stopped one would have
  // had it too, had it not stopped.
  Owner witness;
  RangeWatch second(witness.io(), client, KeyRange::prefix("/s/"), witness.callback());
  witness.run([&] { second.start(); });
  ASSERT_TRUE(eventually([&] { return witness.states().size() == 1; }));
  ASSERT_TRUE(put(client, "/s/c", "4").ok());
  ASSERT_TRUE(eventually([&] { return witness.states().size() == 2; }));
  EXPECT_EQ(owner.states().size(), 4U);
  witness.run([&] { second.stop(); });
}

TEST_F(RangeWatchTest, AWatchWhoseRevisionWasCompactedListsAgain) {
  Server server;
  EtcdClient client(settingsFor({server.port()}));
  const auto first = put(client, "/s/a", "1");
  ASSERT_TRUE(first.ok());
  // The owner read the range at `first` and starts from there; meanwhile it changed and the
  // history was compacted, so the watch cannot resume: the range is listed again.
  ASSERT_TRUE(put(client, "/s/a", "2").ok());
  const auto last = put(client, "/s/b", "3");
  ASSERT_TRUE(last.ok());
  ASSERT_TRUE(
      await<Empty>([&](auto done) { client.compact(last.value.revision, std::move(done)); }).ok());
  Owner owner;
  RangeWatch watch(owner.io(), client, KeyRange::prefix("/s/"), owner.callback());
  RangeWatch::State known;
  known.kvs["/s/a"] = {.key = "/s/a", .value = "1", .mod_revision = first.value.revision};
  known.revision = first.value.revision;
  owner.run([&] { watch.start(std::move(known)); });
  ASSERT_TRUE(eventually([&] { return owner.last() == Values{{"/s/a", "2"}, {"/s/b", "3"}}; }));
  // And it watches from after the new listing.
  ASSERT_TRUE(put(client, "/s/c", "4").ok());
  ASSERT_TRUE(eventually([&] { return owner.last().size() == 3; }));
  owner.run([&] { watch.stop(); });
}

TEST_F(RangeWatchTest, AStartedFromKnownStateDeliversOnlyWhatIsNew) {
  Server server;
  EtcdClient client(settingsFor({server.port()}));
  const auto written = put(client, "/k", "v1");
  ASSERT_TRUE(written.ok());
  Owner owner;
  RangeWatch watch(owner.io(), client, KeyRange::single("/k"), owner.callback());
  RangeWatch::State known;
  known.kvs["/k"] = {.key = "/k", .value = "v1", .mod_revision = written.value.revision};
  known.revision = written.value.revision;
  owner.run([&] { watch.start(std::move(known)); });
  ASSERT_TRUE(put(client, "/k", "v2").ok());
  ASSERT_TRUE(eventually([&] { return !owner.states().empty(); }));
  EXPECT_EQ(owner.states(), (std::vector<Values>{Values{{"/k", "v2"}}}));
  owner.run([&] { watch.stop(); });
}

TEST_F(RangeWatchTest, AnUnreachableEtcdIsListedAgainUntilItAnswers) {
  Server server;
  {
    EtcdClient setup(settingsFor({server.port()}));
    ASSERT_TRUE(put(setup, "/s/a", "1").ok());  // the member is up and has written its data
  }
  server.kill();
  Owner owner;
  EtcdClient client(settingsFor({server.port()}));
  RangeWatch watch(owner.io(), client, KeyRange::prefix("/s/"), owner.callback());
  owner.run([&] { watch.start(); });
  std::this_thread::sleep_for(300ms);
  EXPECT_TRUE(owner.states().empty());  // nothing to deliver while nothing was read
  server.start();
  EXPECT_TRUE(eventually([&] { return owner.last() == Values{{"/s/a", "1"}}; }, 5s));
  owner.run([&] { watch.stop(); });
}

}  // namespace
}  // namespace sluice::gateway::etcd
