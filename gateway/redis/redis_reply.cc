#include "gateway/redis/redis_reply.h"

#include <charconv>
#include <hiredis/hiredis.h>

namespace sluice::gateway::redis {

Reply::Reply(void* reply) noexcept : reply_(static_cast<redisReply*>(reply)) {}

void Reply::Free::operator()(redisReply* r) const noexcept { freeReplyObject(r); }

Reply::Type Reply::type() const noexcept {
  if (!reply_) return Type::None;
  switch (reply_->type) {
    case REDIS_REPLY_STRING:
      return Type::String;
    case REDIS_REPLY_ARRAY:
      return Type::Array;
    case REDIS_REPLY_INTEGER:
      return Type::Integer;
    case REDIS_REPLY_NIL:
      return Type::Nil;
    case REDIS_REPLY_STATUS:
      return Type::Status;
    case REDIS_REPLY_ERROR:
      return Type::Error;
    default:
      return Type::None;
  }
}

std::string_view Reply::textOf(const redisReply* r) noexcept {
  if (r == nullptr || r->str == nullptr) return {};
  if (r->type != REDIS_REPLY_STRING && r->type != REDIS_REPLY_STATUS &&
      r->type != REDIS_REPLY_ERROR) {
    return {};
  }
  return {r->str, r->len};
}

std::optional<std::int64_t> Reply::integerOf(const redisReply* r) noexcept {
  if (r == nullptr) return std::nullopt;
  if (r->type == REDIS_REPLY_INTEGER) return r->integer;
  if (r->type != REDIS_REPLY_STRING) return std::nullopt;
  std::int64_t v = 0;
  const std::string_view s = textOf(r);
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc{} || end != s.data() + s.size()) return std::nullopt;
  return v;
}

std::string_view Reply::text() const noexcept { return textOf(reply_.get()); }

std::optional<std::int64_t> Reply::integer() const noexcept { return integerOf(reply_.get()); }

std::size_t Reply::size() const noexcept {
  return reply_ && reply_->type == REDIS_REPLY_ARRAY ? reply_->elements : 0;
}

const redisReply* Reply::element(std::size_t i) const noexcept {
  return i < size() ? reply_->element[i] : nullptr;
}

}  // namespace sluice::gateway::redis
