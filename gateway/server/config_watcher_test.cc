// Real files in a temporary directory, a real io_context, short intervals: every way a config file
// gets replaced in practice gives exactly one callback, and nothing else gives any.
#include "gateway/server/config_watcher.h"

#include <cerrno>
#include <fcntl.h>
#include <filesystem>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <sys/mman.h>
#include <sys/stat.h>
#include <system_error>
#include <unistd.h>

#include <boost/asio/io_context.hpp>
#include <gtest/gtest.h>

namespace sluice::gateway::server {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

// A few polls per debounce. The burst test needs a longer debounce than its steps are apart.
constexpr ConfigWatcher::Options kFast{.interval = 10ms, .debounce = 30ms};

std::string errnoText() { return std::error_code(errno, std::generic_category()).message(); }

// open(O_TRUNC) + write: the same inode, as an editor saving in place or `cp` over the file.
void writeInPlace(const std::string& path, std::string_view text, int flags = O_TRUNC) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC | flags, 0644);
  ASSERT_GE(fd, 0) << path << ": " << errnoText();
  ASSERT_EQ(::write(fd, text.data(), text.size()), static_cast<ssize_t>(text.size()));
  ::close(fd);
}

// Written next to it, then renamed over it: a new inode at the path.
void replaceAtomically(const std::string& path, std::string_view text) {
  const std::string tmp = path + ".tmp";
  writeInPlace(tmp, text);
  ASSERT_EQ(::rename(tmp.c_str(), path.c_str()), 0) << errnoText();
}

ino_t inodeOf(const std::string& path) {
  struct stat st {};
  EXPECT_EQ(::stat(path.c_str(), &st), 0) << path;
  return st.st_ino;
}

// A mounted ConfigMap as the kubelet's AtomicWriter lays it out and updates it:
//   dir/sluice.yaml -> ..data/sluice.yaml,  dir/..data -> ..<timestamp>/
// An update writes a new timestamped directory, points a new `..data_tmp` at it, renames that
// over `..data` (the one atomic step) and removes the old directory.
class ConfigMapDir {
 public:
  explicit ConfigMapDir(std::string dir) : dir_(std::move(dir)) {}

  void publish(std::string_view text) {
    const std::string stamp = "..2026_12_04_10_00_0" + std::to_string(version_++) + ".123";
    ASSERT_EQ(::mkdir((dir_ + "/" + stamp).c_str(), 0755), 0);
    writeInPlace(dir_ + "/" + stamp + "/sluice.yaml", text);
    const std::string tmp = dir_ + "/..data_tmp";
    ASSERT_EQ(::symlink(stamp.c_str(), tmp.c_str()), 0);
    ASSERT_EQ(::rename(tmp.c_str(), (dir_ + "/..data").c_str()), 0);
    if (current_.empty()) {
      ASSERT_EQ(::symlink("..data/sluice.yaml", path().c_str()), 0);
    } else {
      std::filesystem::remove_all(dir_ + "/" + current_);
    }
    current_ = stamp;
  }
  [[nodiscard]] std::string path() const { return dir_ + "/sluice.yaml"; }

 private:
  std::string dir_;
  std::string current_;
  int version_ = 0;
};

class ConfigWatcherTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string pattern = (std::filesystem::temp_directory_path() / "config_watcher.XXXXXX");
    ASSERT_NE(::mkdtemp(pattern.data()), nullptr) << errnoText();
    dir_ = pattern;
    path_ = dir_ + "/sluice.yaml";
  }
  void TearDown() override {
    watcher_.reset();
    std::filesystem::remove_all(dir_);
  }

  void watch(const std::string& path, ConfigWatcher::Options options = kFast) {
    watcher_ = std::make_unique<ConfigWatcher>(io_, path, options, [this] {
      ++calls_;
      last_call_ = Clock::now();
    });
    watcher_->start();
  }

  void runFor(std::chrono::milliseconds d) {
    if (io_.stopped()) io_.restart();
    io_.run_for(d);
  }

  // Runs the loop until the callback count reaches `n` (true) or `limit` passes (false).
  bool runUntilCalls(int n, std::chrono::milliseconds limit = 2s) {
    const auto deadline = Clock::now() + limit;
    while (calls_ < n && Clock::now() < deadline) runFor(5ms);
    return calls_ >= n;
  }

  // Expects exactly `n` callbacks: they come, and no other follows once things have settled.
  void expectCalls(int n) {
    EXPECT_TRUE(runUntilCalls(n)) << "callbacks: " << calls_;
    runFor(80ms);
    EXPECT_EQ(calls_, n);
  }

  boost::asio::io_context io_;
  std::string dir_;
  std::string path_;
  std::unique_ptr<ConfigWatcher> watcher_;
  int calls_ = 0;
  Clock::time_point last_call_{};
};

TEST_F(ConfigWatcherTest, NoCallbackForTheFileAsItIsAtStart) {
  writeInPlace(path_, "listen: 8080\n");
  watch(path_);
  runFor(100ms);
  EXPECT_EQ(calls_, 0);
  EXPECT_TRUE(watcher_->running());
}

TEST_F(ConfigWatcherTest, InPlaceWrite) {
  writeInPlace(path_, "listen: 8080\n");
  const auto inode = inodeOf(path_);
  watch(path_);
  // Same size, right after the first write: likely the same timestamp tick, so stat() alone
  // would not see it.
  writeInPlace(path_, "listen: 9090\n");
  ASSERT_EQ(inodeOf(path_), inode);
  expectCalls(1);

  writeInPlace(path_, "listen: 9090\nworkers: 2\n");
  ASSERT_EQ(inodeOf(path_), inode);
  expectCalls(2);
}

// A store through a shared mapping into a page that is already dirty updates no timestamp: stat()
// is identical before and after. Only the content hash of a recently changed file sees it (as
// it would a same-size rewrite in one timestamp tick, on kernels or filesystems with coarse
// timestamps).
TEST_F(ConfigWatcherTest, ChangeThatStatCannotSee) {
  writeInPlace(path_, "listen: 8080\n");
  const int fd = ::open(path_.c_str(), O_RDWR | O_CLOEXEC);
  ASSERT_GE(fd, 0);
  constexpr std::size_t kSize = 13;
  void* map = ::mmap(nullptr, kSize, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  ::close(fd);
  ASSERT_NE(map, MAP_FAILED);
  auto* const bytes = static_cast<char*>(map);
  watch(path_);

  bytes[8] = '9';  // the write fault updates mtime and ctime
  expectCalls(1);
  struct stat before {};
  ASSERT_EQ(::stat(path_.c_str(), &before), 0);
  bytes[9] = '9';  // the page is writable now: no fault, no new timestamp
  expectCalls(2);
  struct stat after {};
  ASSERT_EQ(::stat(path_.c_str(), &after), 0);
  EXPECT_TRUE(after.st_ctim.tv_sec == before.st_ctim.tv_sec &&
              after.st_ctim.tv_nsec == before.st_ctim.tv_nsec)
      << "stat() saw the second store: this test proves nothing here";
  ::munmap(map, kSize);
}

TEST_F(ConfigWatcherTest, AtomicRenameOverThePath) {
  writeInPlace(path_, "listen: 8080\n");
  const auto inode = inodeOf(path_);
  watch(path_);
  replaceAtomically(path_, "listen: 9090\n");
  ASSERT_NE(inodeOf(path_), inode);
  expectCalls(1);
}

TEST_F(ConfigWatcherTest, KubernetesConfigMapSymlinkSwap) {
  ConfigMapDir map(dir_);
  map.publish("listen: 8080\n");
  watch(map.path());

  map.publish("listen: 9090\n");
  expectCalls(1);
  // Another key of the ConfigMap changed: ..data moves, this file's bytes do not.
  map.publish("listen: 9090\n");
  runFor(100ms);
  EXPECT_EQ(calls_, 1);
  map.publish("listen: 7070\n");
  expectCalls(2);
}

TEST_F(ConfigWatcherTest, EditorDeletesThenCreatesTheFile) {
  writeInPlace(path_, "listen: 8080\n");
  watch(path_);
  ASSERT_EQ(::unlink(path_.c_str()), 0);
  // Same size: the new file may even get the freed inode back.
  writeInPlace(path_, "listen: 9090\n");
  expectCalls(1);
}

TEST_F(ConfigWatcherTest, MissingForAWhileThenBack) {
  writeInPlace(path_, "listen: 8080\n");
  watch(path_);
  ASSERT_EQ(::unlink(path_.c_str()), 0);
  runFor(100ms);
  EXPECT_EQ(calls_, 0);
  writeInPlace(path_, "listen: 9090\n");
  expectCalls(1);

  // Back with the bytes the owner already has: nothing to reload.
  ASSERT_EQ(::unlink(path_.c_str()), 0);
  runFor(100ms);
  writeInPlace(path_, "listen: 9090\n");
  runFor(100ms);
  EXPECT_EQ(calls_, 1);
}

TEST_F(ConfigWatcherTest, MissingAtStartThenCreated) {
  watch(path_);
  runFor(100ms);
  EXPECT_EQ(calls_, 0);
  replaceAtomically(path_, "listen: 8080\n");
  expectCalls(1);
}

TEST_F(ConfigWatcherTest, IdenticalBytesGiveNoCallback) {
  writeInPlace(path_, "listen: 8080\n");
  watch(path_);
  writeInPlace(path_, "listen: 8080\n");
  runFor(60ms);
  replaceAtomically(path_, "listen: 8080\n");
  runFor(60ms);
  ASSERT_EQ(::utimensat(AT_FDCWD, path_.c_str(), nullptr, 0), 0);  // touch
  ASSERT_EQ(::chmod(path_.c_str(), 0600), 0);
  runFor(100ms);
  EXPECT_EQ(calls_, 0);
}

TEST_F(ConfigWatcherTest, BurstOfWritesGivesOneCallbackOnceStable) {
  writeInPlace(path_, "listen: 8080\n");
  constexpr ConfigWatcher::Options kOptions{.interval = 10ms, .debounce = 100ms};
  watch(path_, kOptions);
  // An editor truncating and writing in steps, then a chunked copy: each step is seen by a poll,
  // and no pause reaches the debounce.
  Clock::time_point last_write;
  const std::string steps[] = {
      "", "listen:", " 9090\n", "workers: 2\n", "drain: 5s\n", "admin: 9901\n"};
  for (const auto& step : steps) {
    writeInPlace(path_, step, step.empty() ? O_TRUNC : O_APPEND);
    last_write = Clock::now();
    runFor(15ms);
  }
  EXPECT_EQ(calls_, 0) << "reported before the burst ended";
  expectCalls(1);
  EXPECT_GE(last_call_ - last_write, kOptions.debounce);
}

TEST_F(ConfigWatcherTest, NotARegularFileIsLikeMissing) {
  ASSERT_EQ(::mkfifo(path_.c_str(), 0644), 0);
  watch(path_);  // must not block in open() or read()
  runFor(60ms);
  EXPECT_EQ(calls_, 0);
  replaceAtomically(path_, "listen: 8080\n");
  expectCalls(1);
}

TEST_F(ConfigWatcherTest, StopAndRestart) {
  writeInPlace(path_, "listen: 8080\n");
  watch(path_);
  watcher_->stop();
  EXPECT_FALSE(watcher_->running());
  replaceAtomically(path_, "listen: 9090\n");
  runFor(100ms);
  EXPECT_EQ(calls_, 0);
  // A restart takes the file as it is then.
  watcher_->start();
  runFor(100ms);
  EXPECT_EQ(calls_, 0);
  replaceAtomically(path_, "listen: 7070\n");
  expectCalls(1);
}

TEST_F(ConfigWatcherTest, CallbackMayStopTheWatcher) {
  writeInPlace(path_, "listen: 8080\n");
  watcher_ = std::make_unique<ConfigWatcher>(io_, path_, kFast, [this] {
    ++calls_;
    watcher_->stop();
  });
  watcher_->start();
  replaceAtomically(path_, "listen: 9090\n");
  EXPECT_TRUE(runUntilCalls(1));
  EXPECT_FALSE(watcher_->running());
  replaceAtomically(path_, "listen: 7070\n");
  runFor(100ms);
  EXPECT_EQ(calls_, 1);
}

TEST_F(ConfigWatcherTest, CallbackMayDestroyTheWatcher) {
  writeInPlace(path_, "listen: 8080\n");
  // Captured state the callback must still be able to use after the reset.
  auto counter = std::make_shared<int>(0);
  watcher_ = std::make_unique<ConfigWatcher>(io_, path_, kFast, [this, counter] {
    watcher_.reset();
    ++*counter;
  });
  watcher_->start();
  replaceAtomically(path_, "listen: 9090\n");
  const auto deadline = Clock::now() + 2s;
  while (watcher_ && Clock::now() < deadline) runFor(5ms);
  EXPECT_EQ(watcher_, nullptr);
  runFor(50ms);
  EXPECT_EQ(*counter, 1);
}

TEST_F(ConfigWatcherTest, RejectsANonPositiveInterval) {
  EXPECT_THROW(ConfigWatcher(io_, path_, {.interval = 0ms, .debounce = 0ms}, [] {}),
               std::invalid_argument);
  EXPECT_THROW(ConfigWatcher(io_, path_, {.interval = 10ms, .debounce = -1ms}, [] {}),
               std::invalid_argument);
}

}  // namespace
}  // namespace sluice::gateway::server
