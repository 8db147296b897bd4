#include "gateway/etcd/etcd_messages.h"

#include <charconv>
#include <optional>
#include <utility>

#include <nlohmann/json.hpp>

#include "gateway/etcd/base64.h"

namespace sluice::gateway::etcd {
namespace {

using Json = nlohmann::json;

// Every accessor below checks the type before it reads: nlohmann throws on a wrong type, and a
// body from the network must never decide whether we throw.

Status badResponse(std::string what) { return {ErrorCode::BadResponse, 0, std::move(what)}; }

// An int64 field: a string of digits (proto3 JSON) or a number; absent is 0.
std::optional<std::int64_t> int64Field(const Json& object, const char* name) {
  const auto it = object.find(name);
  if (it == object.end() || it->is_null()) return 0;
  if (it->is_number_integer()) return it->get<std::int64_t>();
  if (it->is_string()) {
    const auto& s = it->get_ref<const std::string&>();
    std::int64_t v = 0;
    const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (ec == std::errc{} && end == s.data() + s.size() && !s.empty()) return v;
  }
  return std::nullopt;
}

std::optional<bool> boolField(const Json& object, const char* name) {
  const auto it = object.find(name);
  if (it == object.end() || it->is_null()) return false;
  if (it->is_boolean()) return it->get<bool>();
  return std::nullopt;
}

// A base64 bytes field, decoded; absent is empty.
std::optional<std::string> bytesField(const Json& object, const char* name) {
  const auto it = object.find(name);
  if (it == object.end() || it->is_null()) return std::string();
  if (!it->is_string()) return std::nullopt;
  return base64Decode(it->get_ref<const std::string&>());
}

const Json* objectField(const Json& object, const char* name) {
  const auto it = object.find(name);
  return it != object.end() && it->is_object() ? &*it : nullptr;
}

// The body as an object, or the status that says why not (an etcd error object included).
Status parseObject(std::string_view body, Json& out) {
  out = Json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (out.is_discarded()) return badResponse("not JSON");
  if (!out.is_object()) return badResponse("not a JSON object");
  // A stream's error (the watch stream, when its member loses the leader):
  // {"error": {"grpc_code": 14, "http_code": 503, "message": "...", "http_status": "..."}}.
  if (const Json* error = objectField(out, "error"); error != nullptr) {
    const auto code = int64Field(*error, "grpc_code");
    const auto message = error->find("message");
    return {ErrorCode::Server, code ? static_cast<int>(*code) : 0,
            message != error->end() && message->is_string() ? message->get<std::string>()
                                                            : "an etcd error without a message"};
  }
  // grpc-gateway errors: {"error": "...", "message": "...", "code": N}.
  if (out.contains("code") && (out.contains("message") || out.contains("error"))) {
    Status s{ErrorCode::Server, 0, {}};
    const auto code = int64Field(out, "code");
    s.grpc_code = code ? static_cast<int>(*code) : 0;
    for (const char* key : {"message", "error"}) {
      const auto it = out.find(key);
      if (it != out.end() && it->is_string()) {
        s.message = it->get<std::string>();
        break;
      }
    }
    if (s.message.empty()) s.message = "an etcd error without a message";
    return s;
  }
  return {};
}

std::optional<std::int64_t> headerRevision(const Json& object) {
  const Json* header = objectField(object, "header");
  if (header == nullptr) return 0;
  return int64Field(*header, "revision");
}

std::optional<KeyValue> keyValue(const Json& j) {
  if (!j.is_object()) return std::nullopt;
  KeyValue kv;
  auto key = bytesField(j, "key");
  auto value = bytesField(j, "value");
  const auto create = int64Field(j, "create_revision");
  const auto mod = int64Field(j, "mod_revision");
  const auto version = int64Field(j, "version");
  const auto lease = int64Field(j, "lease");
  if (!key || !value || !create || !mod || !version || !lease) return std::nullopt;
  kv.key = std::move(*key);
  kv.value = std::move(*value);
  kv.create_revision = *create;
  kv.mod_revision = *mod;
  kv.version = *version;
  kv.lease = *lease;
  return kv;
}

// The body parsed by `read` (which fills the value from the object or says what is wrong).
template <typename T, typename Read>
Result<T> parseWith(std::string_view body, Read read) {
  Result<T> r;
  Json j;
  r.status = parseObject(body, j);
  if (!r.ok()) return r;
  // nlohmann may still throw on something this code did not foresee (an allocation failure,
  // a malformed number): one net under the checks above, so that nothing escapes.
  try {
    if (!read(j, r.value)) r.status = badResponse("unexpected fields in an etcd response");
  } catch (const std::exception& e) {
    r.status = badResponse(e.what());
  }
  return r;
}

// Stream answers come as {"result": {...}}.
const Json& unwrapResult(const Json& j) {
  const Json* result = objectField(j, "result");
  return result != nullptr ? *result : j;
}

Json bytes(std::string_view raw) { return base64Encode(raw); }

}  // namespace

KeyRange KeyRange::prefix(std::string_view prefix) {
  // etcd's convention (clientv3.GetPrefixRangeEnd): the prefix with its last byte below 0xff
  // incremented and what follows dropped; a prefix of only 0xff bytes, or none, reaches the end
  // of the key space, which etcd spells "\0".
  std::string end(prefix);
  while (!end.empty()) {
    auto& last = reinterpret_cast<unsigned char&>(end.back());
    if (last < 0xFF) {
      ++last;
      break;
    }
    end.pop_back();
  }
  if (end.empty()) end.assign(1, '\0');
  return {prefix.empty() ? std::string(1, '\0') : std::string(prefix), std::move(end)};
}

Result<RangeResponse> parseRange(std::string_view body) {
  return parseWith<RangeResponse>(body, [](const Json& j, RangeResponse& out) {
    const auto revision = headerRevision(j);
    const auto count = int64Field(j, "count");
    const auto more = boolField(j, "more");
    if (!revision || !count || !more) return false;
    out.revision = *revision;
    out.count = *count;
    out.more = *more;
    if (const auto it = j.find("kvs"); it != j.end() && !it->is_null()) {
      if (!it->is_array()) return false;
      for (const auto& item : *it) {
        auto kv = keyValue(item);
        if (!kv) return false;
        out.kvs.push_back(std::move(*kv));
      }
    }
    return true;
  });
}

Result<PutResponse> parsePut(std::string_view body) {
  return parseWith<PutResponse>(body, [](const Json& j, PutResponse& out) {
    const auto revision = headerRevision(j);
    if (!revision) return false;
    out.revision = *revision;
    return true;
  });
}

Result<DeleteResponse> parseDelete(std::string_view body) {
  return parseWith<DeleteResponse>(body, [](const Json& j, DeleteResponse& out) {
    const auto revision = headerRevision(j);
    const auto deleted = int64Field(j, "deleted");
    if (!revision || !deleted) return false;
    out.revision = *revision;
    out.deleted = *deleted;
    return true;
  });
}

Result<LeaseGrant> parseLeaseGrant(std::string_view body) {
  return parseWith<LeaseGrant>(body, [](const Json& j, LeaseGrant& out) {
    const auto id = int64Field(j, "ID");
    const auto ttl = int64Field(j, "TTL");
    if (!id || !ttl || *id == 0) return false;
    out.id = *id;
    out.ttl = std::chrono::seconds(*ttl);
    return true;
  });
}

Result<LeaseKeepAliveResponse> parseLeaseKeepAlive(std::string_view body) {
  return parseWith<LeaseKeepAliveResponse>(body, [](const Json& j, LeaseKeepAliveResponse& out) {
    const Json& r = unwrapResult(j);
    const auto id = int64Field(r, "ID");
    const auto ttl = int64Field(r, "TTL");
    if (!id || !ttl) return false;
    out.id = *id;
    out.ttl = std::chrono::seconds(*ttl > 0 ? *ttl : 0);
    return true;
  });
}

Result<Empty> parseEmpty(std::string_view body) {
  return parseWith<Empty>(body, [](const Json& /*j*/, Empty& /*out*/) { return true; });
}

Result<WatchMessage> parseWatchMessage(std::string_view object) {
  return parseWith<WatchMessage>(object, [](const Json& j, WatchMessage& out) {
    const Json* r = objectField(j, "result");
    if (r == nullptr) return false;
    const auto revision = headerRevision(*r);
    const auto created = boolField(*r, "created");
    const auto canceled = boolField(*r, "canceled");
    const auto compact = int64Field(*r, "compact_revision");
    if (!revision || !created || !canceled || !compact) return false;
    out.revision = *revision;
    out.created = *created;
    out.canceled = *canceled;
    out.compact_revision = *compact;
    if (const auto it = r->find("cancel_reason"); it != r->end() && it->is_string()) {
      out.cancel_reason = it->get<std::string>();
    }
    if (const auto it = r->find("events"); it != r->end() && !it->is_null()) {
      if (!it->is_array()) return false;
      for (const auto& e : *it) {
        if (!e.is_object()) return false;
        WatchEvent event;
        if (const auto type = e.find("type"); type != e.end() && !type->is_null()) {
          // proto enums come as names; a number is accepted too.
          if (*type == "DELETE" || *type == 1) {
            event.type = WatchEvent::Type::Delete;
          } else if (!(*type == "PUT" || *type == 0)) {
            return false;
          }
        }
        const Json* kv = objectField(e, "kv");
        if (kv == nullptr) return false;
        auto parsed = keyValue(*kv);
        if (!parsed) return false;
        event.kv = std::move(*parsed);
        out.events.push_back(std::move(event));
      }
    }
    return true;
  });
}

std::string rangeRequest(const KeyRange& range, std::int64_t revision, std::int64_t limit) {
  Json j{{"key", bytes(range.key)}};
  if (!range.range_end.empty()) j["range_end"] = bytes(range.range_end);
  if (revision > 0) j["revision"] = std::to_string(revision);
  if (limit > 0) j["limit"] = std::to_string(limit);
  return j.dump();
}

std::string putRequest(std::string_view key, std::string_view value, std::int64_t lease) {
  Json j{{"key", bytes(key)}, {"value", bytes(value)}};
  if (lease != 0) j["lease"] = std::to_string(lease);
  return j.dump();
}

std::string deleteRequest(const KeyRange& range) {
  Json j{{"key", bytes(range.key)}};
  if (!range.range_end.empty()) j["range_end"] = bytes(range.range_end);
  return j.dump();
}

std::string leaseGrantRequest(std::chrono::seconds ttl) {
  return Json{{"TTL", std::to_string(ttl.count())}}.dump();
}

std::string leaseIdRequest(std::int64_t id) { return Json{{"ID", std::to_string(id)}}.dump(); }

std::string compactRequest(std::int64_t revision) {
  return Json{{"revision", std::to_string(revision)}}.dump();
}

std::string watchRequest(const KeyRange& range, std::int64_t start_revision) {
  Json create{{"key", bytes(range.key)}};
  if (!range.range_end.empty()) create["range_end"] = bytes(range.range_end);
  if (start_revision > 0) create["start_revision"] = std::to_string(start_revision);
  return Json{{"create_request", std::move(create)}}.dump();
}

}  // namespace sluice::gateway::etcd
