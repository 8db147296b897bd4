// ConfigWatcher: tells its owner, on the owner's event loop, that the content of a file changed
// (`sluice run -c FILE --watch` reloads its config with it).
//
//   ConfigWatcher watcher(io, "/etc/sluice/sluice.yaml", {}, [&] { reload(); });
//   watcher.start();   // takes the file as it is now: no callback for that state
//   ...
//   watcher.stop();    // or destroy it
//
// What is seen, each as one callback once the file is stable again:
//   - an in-place write (truncate + write, same inode), even of the same size within the same
//     timestamp tick (see "racy" below);
//   - an atomic rename over the path (new inode);
//   - a symlink swap as Kubernetes updates a mounted ConfigMap: the path is
//     `dir/sluice.yaml -> ..data/sluice.yaml`, `..data -> ..2026_12_04_10_00_00.123`, and an
//     update renames a new `..data_tmp` symlink over `..data` (stat() follows the whole chain,
//     so the new target is simply a new file);
//   - an editor that deletes the file and creates it again;
//   - a file that is missing (or unreadable, or not a regular file) for a while: no callback and
//     one log line when it goes, one when it is back, then a callback if it came back different.
// The callback means "the bytes at the path are not the ones you were last told about", compared
// by XXH3 of the content: a rewrite with identical bytes, a touch, a chmod or a ConfigMap update
// that changed only other keys gives none. The owner reads the file itself in the callback.
//
// Debounce: a change is reported once the path has shown no further change for `debounce`, so a
// burst (an editor writing in steps, a `cp` of a large file) gives one callback, for the final
// bytes. It is a heuristic: a writer that stalls longer than `debounce` half-way is reported
// half-way, and its next step gives another callback (the reload must reject, and keep the old
// config for, a half-written file; writers that care rename atomically).
//
// Mechanism: polling, not inotify. Every `interval` the path is stat()ed, following symlinks;
// the file is read and hashed only when (dev, inode, size, mtime, ctime) of the resolved file
// moved and then stayed still for `debounce`. inotify watches inodes, not paths: a symlink chain
// needs watches on every directory along it, re-resolved and re-armed after each swap, with a
// window in which a swap lands before the re-arm (to be covered by a stat anyway), plus queue
// overflows, and it sees nothing on NFS or most FUSE mounts. A stat() of an unchanged file every
// 250 ms costs a few microseconds of the main thread; a missing file costs a failed stat().
//
// Latency: a change is noticed within `interval` and reported `debounce` after the last change
// was noticed: at most interval + debounce after the last write (defaults: 250 + 500 ms).
//
// Racy timestamps: file times advance in ticks (a jiffy on ext4 or tmpfs, a second on ext3 or
// some NFS servers), so a same-size rewrite in the tick of the previous change leaves stat()
// unchanged (git's "racy clean" entries). While the file's ctime is within 2 s of the wall clock,
// each poll therefore also reads and hashes the content; after that stat() alone is trusted,
// since any later change must move ctime (which, unlike mtime, no program can set back; stores
// through a shared mmap are the exception, seen at the page's next write fault).
//
// Not thread-safe: everything, the callback included, runs on the io_context's thread. The
// callback may call stop() or start(), or destroy the watcher. An exception from the callback
// leaves io_context::run() (the watcher keeps polling).
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

namespace sluice::gateway::server {

class ConfigWatcher {
 public:
  struct Options {
    std::chrono::milliseconds interval{250};  // between stat() calls; > 0
    std::chrono::milliseconds debounce{500};  // stillness required before a change counts; >= 0
  };
  using OnChange = std::function<void()>;

  // `path` may be relative (to the working directory at each poll) and need not exist yet.
  // Throws std::invalid_argument for an interval <= 0 or a negative debounce.
  ConfigWatcher(boost::asio::io_context& io, std::string path, Options options, OnChange on_change);
  ~ConfigWatcher();
  ConfigWatcher(const ConfigWatcher&) = delete;
  ConfigWatcher& operator=(const ConfigWatcher&) = delete;
  ConfigWatcher(ConfigWatcher&&) = delete;
  ConfigWatcher& operator=(ConfigWatcher&&) = delete;

  // Reads the file once (synchronously, so that a change right after start() is seen) and starts
  // polling. Calling it again restarts: the file as it is then is the new reference.
  void start();
  // Cancels the poll; a poll already queued on the io_context does nothing.
  void stop() noexcept;

  [[nodiscard]] const std::string& path() const noexcept { return path_; }
  [[nodiscard]] bool running() const noexcept { return alive_ != nullptr; }

 private:
  using Clock = std::chrono::steady_clock;

  // What stat() says about the resolved file; equal means "same file, untouched" unless racy.
  struct Identity {
    std::uint64_t dev = 0;
    std::uint64_t ino = 0;
    std::int64_t size = 0;
    std::int64_t mtime_ns = 0;
    std::int64_t ctime_ns = 0;
    bool operator==(const Identity&) const = default;
  };
  struct Content {
    Identity identity;  // of the file that was read (fstat of the open descriptor)
    std::uint64_t hash = 0;
  };

  void poll();
  // Returns true when the owner must be told.
  bool observe(Clock::time_point now);
  bool settle(Clock::time_point now);
  void noteChange(const std::optional<Identity>& now_seen, Clock::time_point now);
  void logGone();
  void scheduleNext(Clock::time_point now);
  [[nodiscard]] std::optional<Identity> statPath();
  [[nodiscard]] std::optional<Content> readContent();

  boost::asio::steady_timer timer_;
  std::string path_;
  Options options_;
  OnChange on_change_;

  std::optional<Identity> seen_;                // at the last poll; nullopt: no such file
  std::optional<std::uint64_t> seen_hash_;      // content of seen_, when it could be read
  std::optional<std::uint64_t> reported_hash_;  // what the owner has (at start or last callback)
  Clock::time_point changed_at_{};              // when seen_ (or its content) last moved
  bool settled_ = true;                         // no change pending its debounce
  bool gone_ = false;                           // "missing" was logged, "back" is not yet
  std::string why_;                             // why the last stat() or read failed
  // Handlers hold it weakly: a poll queued before stop() or destruction must not touch `this`.
  std::shared_ptr<char> alive_;
};

}  // namespace sluice::gateway::server
