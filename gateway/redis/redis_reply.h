// Reply: one Redis reply as hiredis' reader builds it (redisReply), owned, with typed access.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string_view>

struct redisReply;

namespace sluice::gateway::redis {

class Reply {
 public:
  enum class Type : std::uint8_t { None, String, Array, Integer, Nil, Status, Error };

  Reply() = default;
  // Takes ownership of what redisReaderGetReply returned (may be null).
  explicit Reply(void* reply) noexcept;

  [[nodiscard]] Type type() const noexcept;
  [[nodiscard]] bool isError() const noexcept { return type() == Type::Error; }
  // String, Status or Error: the bytes; otherwise empty.
  [[nodiscard]] std::string_view text() const noexcept;
  // Integer: the value; String holding a decimal integer: it parsed; otherwise nullopt.
  [[nodiscard]] std::optional<std::int64_t> integer() const noexcept;
  [[nodiscard]] std::size_t size() const noexcept;  // Array: its elements; otherwise 0
  // Element i of an Array (a view that lives as long as this reply).
  [[nodiscard]] const redisReply* element(std::size_t i) const noexcept;
  [[nodiscard]] static std::optional<std::int64_t> integerOf(const redisReply* r) noexcept;
  [[nodiscard]] static std::string_view textOf(const redisReply* r) noexcept;

 private:
  struct Free {
    void operator()(redisReply* r) const noexcept;
  };
  std::unique_ptr<redisReply, Free> reply_;
};

}  // namespace sluice::gateway::redis
