// The values etcd's v3 JSON gateway exchanges, and the functions that turn its responses into
// them: what EtcdClient (etcd_client.h) hands to its callers.
//
// The gateway is the gRPC API rendered as JSON (grpc-gateway): keys and values are base64
// (proto `bytes`), 64-bit integers are strings ("revision":"12"), and fields at their zero
// value are left out (a PUT event has no "type"; a lease that is gone answers "TTL" absent).
// The parsers here accept integers as strings or numbers, treat absent as zero, and answer
// anything else - not JSON, a wrong type, bad base64 - with ErrorCode::BadResponse: a server
// (or whatever answers on its port) can never crash the caller.
//
//   auto r = parseRange(body);
//   if (!r.ok()) log(r.status.message);
//   for (const KeyValue& kv : r.value.kvs) use(kv.key, kv.value, kv.mod_revision);
//
// Thread-safety: plain values and pure functions.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace sluice::gateway::etcd {

enum class ErrorCode : std::uint8_t {
  None,
  Timeout,      // no answer within the request's deadline
  Unavailable,  // no endpoint could be reached (refused, reset, closed), or the client stopped
  Server,       // etcd answered with an error (grpc_code and message say which)
  BadResponse,  // an answer that is not what etcd sends (not JSON, wrong types, bad base64)
  Count
};
// The `result` label of the request metrics, indexed by ErrorCode.
inline constexpr std::array<std::string_view, 5> kResultNames = {"ok", "timeout", "unavailable",
                                                                 "server_error", "bad_response"};

// gRPC status codes etcd uses that callers branch on.
inline constexpr int kGrpcNotFound = 5;     // e.g. "etcdserver: requested lease not found"
inline constexpr int kGrpcOutOfRange = 11;  // e.g. "mvcc: required revision has been compacted"

struct Status {
  ErrorCode code = ErrorCode::None;
  int grpc_code = 0;    // ErrorCode::Server: the gRPC code etcd gave (0 otherwise)
  std::string message;  // for logs; empty when ok
  [[nodiscard]] bool ok() const noexcept { return code == ErrorCode::None; }
};

// A value or the reason there is none: `value` is meaningful only when ok().
template <typename T>
struct Result {
  Status status;
  T value{};
  [[nodiscard]] bool ok() const noexcept { return status.ok(); }
};

// Keys [key, range_end) in etcd's byte order; range_end empty means the single key `key`.
struct KeyRange {
  std::string key;
  std::string range_end;

  [[nodiscard]] static KeyRange single(std::string key) { return {std::move(key), {}}; }
  // Every key that starts with `prefix` (all keys for an empty prefix).
  [[nodiscard]] static KeyRange prefix(std::string_view prefix);
  friend bool operator==(const KeyRange&, const KeyRange&) = default;
};

struct KeyValue {
  std::string key;    // raw bytes (decoded)
  std::string value;  // raw bytes (decoded); empty in DELETE events
  std::int64_t create_revision = 0;
  std::int64_t mod_revision = 0;  // the revision of the change that wrote (or deleted) it
  std::int64_t version = 0;       // writes since creation; 0 once deleted
  std::int64_t lease = 0;         // the lease it is attached to, 0 for none
  friend bool operator==(const KeyValue&, const KeyValue&) = default;
};

struct RangeResponse {
  std::int64_t revision = 0;  // the store revision the range was read at (the header's)
  std::vector<KeyValue> kvs;  // in key order
  std::int64_t count = 0;     // keys in the range (more than kvs.size() when limited)
  bool more = false;          // a limit cut the answer short
};

struct PutResponse {
  std::int64_t revision = 0;  // the revision of this write
};

struct DeleteResponse {
  std::int64_t revision = 0;
  std::int64_t deleted = 0;  // keys deleted
};

struct LeaseGrant {
  std::int64_t id = 0;
  std::chrono::seconds ttl{0};  // as granted (etcd may raise a TTL below its minimum)
};

struct LeaseKeepAliveResponse {
  std::int64_t id = 0;
  // The TTL the lease was renewed to; zero when the lease no longer exists (expired or revoked):
  // etcd answers that with success, not an error.
  std::chrono::seconds ttl{0};
};

struct Empty {};

struct WatchEvent {
  enum class Type : std::uint8_t { Put, Delete };
  Type type = Type::Put;
  KeyValue kv;
};

// One message of a watch stream.
struct WatchMessage {
  std::int64_t revision = 0;          // the header's: the store revision when it was sent
  bool created = false;               // the answer to the create request
  bool canceled = false;              // etcd ended the watch (then the stream carries no more)
  std::int64_t compact_revision = 0;  // canceled because the start revision is compacted
  std::string cancel_reason;
  std::vector<WatchEvent> events;  // in revision order; empty for progress notifications
};

// Parsers of the response bodies. An etcd error object ({"error":..,"code":..}, any HTTP status)
// is ErrorCode::Server with its code and message.
[[nodiscard]] Result<RangeResponse> parseRange(std::string_view body);
[[nodiscard]] Result<PutResponse> parsePut(std::string_view body);
[[nodiscard]] Result<DeleteResponse> parseDelete(std::string_view body);
[[nodiscard]] Result<LeaseGrant> parseLeaseGrant(std::string_view body);
// The gateway wraps stream answers in {"result": ...}; both shapes are accepted.
[[nodiscard]] Result<LeaseKeepAliveResponse> parseLeaseKeepAlive(std::string_view body);
[[nodiscard]] Result<Empty> parseEmpty(std::string_view body);  // revoke, compaction
// One object of the watch stream ({"result": {...}} or an error object).
[[nodiscard]] Result<WatchMessage> parseWatchMessage(std::string_view object);

// Request bodies (JSON text), for the paths named.
[[nodiscard]] std::string rangeRequest(const KeyRange& range, std::int64_t revision,
                                       std::int64_t limit);  // /v3/kv/range
[[nodiscard]] std::string putRequest(std::string_view key, std::string_view value,
                                     std::int64_t lease);               // /v3/kv/put
[[nodiscard]] std::string deleteRequest(const KeyRange& range);         // /v3/kv/deleterange
[[nodiscard]] std::string leaseGrantRequest(std::chrono::seconds ttl);  // /v3/lease/grant
[[nodiscard]] std::string leaseIdRequest(std::int64_t id);        // /v3/lease/keepalive, /revoke
[[nodiscard]] std::string compactRequest(std::int64_t revision);  // /v3/kv/compaction
// /v3/watch; start_revision 0 means "from the next change".
[[nodiscard]] std::string watchRequest(const KeyRange& range, std::int64_t start_revision);

}  // namespace sluice::gateway::etcd
