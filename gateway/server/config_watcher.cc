#include "gateway/server/config_watcher.h"

#include <algorithm>
#include <array>
#include <cerrno>
#include <fcntl.h>
#include <stdexcept>
#include <sys/stat.h>
#include <system_error>
#include <unistd.h>

#include <spdlog/spdlog.h>
#include <xxhash.h>

namespace sluice::gateway::server {

namespace {

// Longer than the coarsest timestamp tick of a filesystem we may run on (1 s on ext3 and some NFS
// servers), with a margin for the gap between a write and our clock read.
constexpr auto kRacyWindow = std::chrono::seconds(2);

std::int64_t nanos(const timespec& t) {
  return static_cast<std::int64_t>(t.tv_sec) * 1'000'000'000 + t.tv_nsec;
}

bool racy(std::int64_t ctime_ns) {
  const auto now = std::chrono::duration_cast<std::chrono::nanoseconds>(
                       std::chrono::system_clock::now().time_since_epoch())
                       .count();
  const auto window = std::chrono::nanoseconds(kRacyWindow).count();
  // A ctime ahead of our clock (a skewed NFS server) is racy too while it is that close.
  return now - ctime_ns < window && ctime_ns - now < window;
}

class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  Fd(Fd&&) = delete;
  Fd& operator=(Fd&&) = delete;
  [[nodiscard]] int get() const { return fd_; }

 private:
  int fd_;
};

struct XxhStateDeleter {
  void operator()(XXH3_state_t* s) const { XXH3_freeState(s); }
};

std::string lastError() { return std::error_code(errno, std::generic_category()).message(); }

}  // namespace

ConfigWatcher::ConfigWatcher(boost::asio::io_context& io, std::string path, Options options,
                             OnChange on_change)
    : timer_(io), path_(std::move(path)), options_(options), on_change_(std::move(on_change)) {
  if (options_.interval <= std::chrono::milliseconds::zero()) {
    throw std::invalid_argument("config watcher: the poll interval must be positive");
  }
  if (options_.debounce < std::chrono::milliseconds::zero()) {
    throw std::invalid_argument("config watcher: the debounce must not be negative");
  }
}

ConfigWatcher::~ConfigWatcher() { stop(); }

void ConfigWatcher::start() {
  stop();
  alive_ = std::make_shared<char>();
  settled_ = true;
  gone_ = false;
  seen_hash_.reset();
  reported_hash_.reset();
  if (const auto content = readContent()) {
    seen_ = content->identity;
    seen_hash_ = reported_hash_ = content->hash;
  } else {
    // Missing at start: its arrival is a change, reported like any other.
    seen_ = statPath();
    logGone();
  }
  scheduleNext(Clock::now());
}

void ConfigWatcher::stop() noexcept {
  alive_.reset();
  timer_.cancel();
}

void ConfigWatcher::scheduleNext(Clock::time_point now) {
  // A pending change is settled at the end of its debounce, not at the next tick after it.
  auto next = now + options_.interval;
  if (!settled_) next = std::min(next, changed_at_ + options_.debounce);
  timer_.expires_at(next);
  timer_.async_wait(
      [this, alive = std::weak_ptr<char>(alive_)](const boost::system::error_code& ec) {
        if (ec || alive.expired()) return;
        poll();
      });
}

void ConfigWatcher::poll() {
  const auto now = Clock::now();
  const bool changed = observe(now);
  scheduleNext(now);
  if (!changed) return;
  // Last, and on a copy: the callback may stop, restart or destroy this watcher (and with it
  // on_change_, which must not die while it runs).
  const OnChange callback = on_change_;
  callback();
}

bool ConfigWatcher::observe(Clock::time_point now) {
  const auto current = statPath();
  if (current != seen_) {
    noteChange(current, now);
    return false;
  }
  if (!settled_) return now - changed_at_ >= options_.debounce && settle(now);
  if (!current || !racy(current->ctime_ns)) return false;
  // stat() cannot vouch for the content within a timestamp tick of the last change: compare the
  // bytes. An unreadable file stays unreadable without a change (seen_hash_ is empty already).
  const auto content = readContent();
  if (!content) {
    if (seen_hash_) noteChange(current, now);
  } else if (content->identity != *current || content->hash != seen_hash_) {
    noteChange(content->identity, now);
  }
  return false;
}

void ConfigWatcher::noteChange(const std::optional<Identity>& now_seen, Clock::time_point now) {
  seen_ = now_seen;
  seen_hash_.reset();
  changed_at_ = now;
  settled_ = false;
}

bool ConfigWatcher::settle(Clock::time_point now) {
  settled_ = true;
  if (!seen_) {
    logGone();
    return false;
  }
  const auto content = readContent();
  if (!content) {
    // Gone or replaced between our stat() and open() (an editor's delete and create): still
    // moving. Otherwise it cannot be read as it is (permissions, a directory).
    if (const auto current = statPath(); current != seen_) {
      noteChange(current, now);
    } else {
      logGone();
    }
    return false;
  }
  if (content->identity != *seen_) {
    // Replaced between our stat() and open(): still moving.
    noteChange(content->identity, now);
    return false;
  }
  seen_hash_ = content->hash;
  if (gone_) {
    spdlog::info("config watcher: {} is back", path_);
    gone_ = false;
  }
  if (content->hash == reported_hash_) return false;
  reported_hash_ = content->hash;
  return true;
}

void ConfigWatcher::logGone() {
  if (gone_) return;
  gone_ = true;
  spdlog::warn("config watcher: cannot read {} ({}); watching for it to come back", path_, why_);
}

std::optional<ConfigWatcher::Identity> ConfigWatcher::statPath() {
  struct stat st {};
  if (::stat(path_.c_str(), &st) != 0) {
    why_ = lastError();
    return std::nullopt;
  }
  return Identity{static_cast<std::uint64_t>(st.st_dev), static_cast<std::uint64_t>(st.st_ino),
                  static_cast<std::int64_t>(st.st_size), nanos(st.st_mtim), nanos(st.st_ctim)};
}

std::optional<ConfigWatcher::Content> ConfigWatcher::readContent() {
  // O_NONBLOCK: a FIFO put at the path must not hang the main thread in open() or read().
  const Fd fd(::open(path_.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK));
  if (fd.get() < 0) {
    why_ = lastError();
    return std::nullopt;
  }
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) {
    why_ = lastError();
    return std::nullopt;
  }
  if (!S_ISREG(st.st_mode)) {
    why_ = "not a regular file";
    return std::nullopt;
  }
  const std::unique_ptr<XXH3_state_t, XxhStateDeleter> state(XXH3_createState());
  if (!state || XXH3_64bits_reset(state.get()) != XXH_OK) {
    why_ = "out of memory";
    return std::nullopt;
  }
  std::array<char, std::size_t{16} * 1024> buf{};
  for (;;) {
    const auto n = ::read(fd.get(), buf.data(), buf.size());
    if (n == 0) break;
    if (n < 0) {
      if (errno == EINTR) continue;
      why_ = lastError();
      return std::nullopt;
    }
    XXH3_64bits_update(state.get(), buf.data(), static_cast<std::size_t>(n));
  }
  Content c;
  c.identity = {static_cast<std::uint64_t>(st.st_dev), static_cast<std::uint64_t>(st.st_ino),
                static_cast<std::int64_t>(st.st_size), nanos(st.st_mtim), nanos(st.st_ctim)};
  c.hash = XXH3_64bits_digest(state.get());
  return c;
}

}  // namespace sluice::gateway::server
