// A contiguous byte buffer for one socket: bytes are read into the free tail and consumed from
// the front.
//
// Unlike beast::flat_buffer it never moves bytes on its own: string_views into readable() stay
// valid until the owner calls consume() past them, prepare() (which may compact or grow) or
// release(). That is what lets a parsed head point into the buffer without copying. Memory is
// allocated on the first prepare() and can be given back with release() while a connection idles.
// It comes from the BufferPool, not the general heap (see buffer_pool.h for why).
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstring>
#include <memory>
#include <string_view>

#include <boost/asio/buffer.hpp>

#include "gateway/net/buffer_pool.h"

namespace sluice::gateway::net {

// Gives an IoBuffer's block back to the pool (which needs its size).
struct PoolDeleter {
  std::size_t bytes = 0;
  void operator()(char* p) const noexcept { BufferPool::deallocate(p, bytes); }
};

class IoBuffer {
 public:
  IoBuffer() = default;
  IoBuffer(const IoBuffer&) = delete;
  IoBuffer& operator=(const IoBuffer&) = delete;
  IoBuffer(IoBuffer&&) noexcept = default;
  IoBuffer& operator=(IoBuffer&&) noexcept = default;
  ~IoBuffer() = default;

  [[nodiscard]] std::string_view readable() const noexcept {
    return {data_.get() + begin_, end_ - begin_};
  }
  [[nodiscard]] std::size_t size() const noexcept { return end_ - begin_; }
  [[nodiscard]] bool empty() const noexcept { return begin_ == end_; }
  [[nodiscard]] std::size_t capacity() const noexcept { return capacity_; }

  // Free space of at least `min_free` bytes (and at most `max_total - size()` when growing),
  // compacting first. Invalidates views into readable().
  boost::asio::mutable_buffer prepare(std::size_t min_free, std::size_t max_total) {
    if (capacity_ - end_ < min_free && begin_ > 0) {
      std::memmove(data_.get(), data_.get() + begin_, size());
      end_ -= begin_;
      begin_ = 0;
    }
    if (capacity_ - end_ < min_free) {
      const std::size_t want = std::max(end_ + min_free, std::min(capacity_ * 2, max_total));
      Storage bigger(static_cast<char*>(BufferPool::allocate(want)), PoolDeleter{want});
      if (end_ > begin_) std::memcpy(bigger.get(), data_.get() + begin_, size());
      end_ -= begin_;
      begin_ = 0;
      data_ = std::move(bigger);
      capacity_ = want;
    }
    return {data_.get() + end_, capacity_ - end_};
  }
  void commit(std::size_t n) noexcept { end_ += n; }
  void consume(std::size_t n) noexcept {
    begin_ += std::min(n, size());
    if (begin_ == end_) begin_ = end_ = 0;
  }
  // Appends bytes (used for small local data, never on the socket path).
  void append(std::string_view bytes, std::size_t max_total) {
    auto b = prepare(bytes.size(), std::max(max_total, size() + bytes.size()));
    std::memcpy(b.data(), bytes.data(), bytes.size());
    commit(bytes.size());
  }
  // Frees the memory when nothing is buffered (an idle keep-alive connection holds no buffer).
  void release() noexcept {
    if (empty()) {
      data_.reset();
      capacity_ = begin_ = end_ = 0;
    }
  }

 private:
  using Storage = std::unique_ptr<char[], PoolDeleter>;

  Storage data_;
  std::size_t capacity_ = 0;
  std::size_t begin_ = 0;
  std::size_t end_ = 0;
};

}  // namespace sluice::gateway::net
