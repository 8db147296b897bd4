// Serialising heads for the next hop.
//
// Both directions follow the same rules: hop-by-hop fields (Connection and every field it names,
// Keep-Alive, Proxy-Connection, TE, Trailer, Upgrade, Transfer-Encoding) are dropped, and framing
// (Content-Length / Transfer-Encoding) is written from what sluice decided, never copied. Output
// is appended to a caller-owned string whose capacity is reused across requests.
#pragma once

#include <span>
#include <string>
#include <string_view>
#include <utility>

#include "gateway/http/head.h"

namespace sluice::gateway::http {

// True for fields that describe one connection and must not be forwarded.
[[nodiscard]] bool isHopByHop(const HeaderField& f, const MessageHead& head) noexcept;

struct ForwardingInfo {
  std::string_view client_ip;        // peer address of the downstream connection
  std::string_view proto;            // "http" or "https" (the listener's scheme)
  std::string_view request_id;       // the X-Request-Id to send (received or generated)
  bool request_id_received = false;  // the client sent it: keep its header, do not add another
  // When false (the default, sluice at the edge), X-Forwarded-For/-Proto/-Host, Forwarded and
  // X-Real-IP sent by the client are dropped and replaced. When true (sluice behind a trusted
  // proxy), the client's values are kept and this hop's address appended to X-Forwarded-For.
  bool trust_forwarded = false;
  // Tracing is on: the client's traceparent is not copied (the forwarder writes its own, naming
  // each try's span, with the per-try fields). tracestate is copied either way.
  bool own_traceparent = false;
};

// What a route changes in the fields it forwards (config::HeaderEdits, its values expanded): the
// fields named in `remove` or `set` are not copied, and `extra` ("Name: value\r\n" lines, the
// set and added ones) follows those that are.
struct FieldEdits {
  std::span<const std::string> remove;
  std::span<const std::pair<std::string, std::string>> set;  // only the names are read
  std::string_view extra;
  // Request only: replace the target ("" keeps it) and the Host field ("" keeps it).
  std::string_view target;
  std::string_view host;

  [[nodiscard]] bool drops(std::string_view name) const noexcept;
};

// Marks a copy sent to a route's mirror (proxy/mirror.h), so that the mirror can tell a copy
// from a real request. A client's own is dropped: only sluice's copies carry it.
inline constexpr std::string_view kMirrorHeader = "X-Sluice-Mirror";

// "METHOD target HTTP/1.1" + fields + X-Forwarded-* + X-Request-Id + framing, to an upstream,
// without the blank line that ends the head: the forwarder adds the fields that change with
// each try (the deadline, timeout_header.h), then "\r\n". Expect is consumed by the proxy (it
// answers 100-continue itself); the client's deadline fields are dropped (they are rewritten),
// and so is kMirrorHeader.
void writeUpstreamRequest(std::string& out, const RequestHead& req, const ForwardingInfo& fwd,
                          const FieldEdits* edits = nullptr);

struct ResponseFraming {
  Framing framing = Framing::None;  // what the client will see
  std::uint64_t content_length = 0;
  bool close = false;          // send Connection: close and close after the body
  bool client_http10 = false;  // HTTP/1.0 client: say keep-alive explicitly if kept
};

// The status line and fields of `resp` for the client, plus X-Request-Id when the upstream did
// not send one.
void writeDownstreamResponse(std::string& out, const ResponseHead& resp,
                             const ResponseFraming& framing, std::string_view request_id,
                             const FieldEdits* edits = nullptr);

// Framing the client sees for an upstream response: chunked and close-delimited bodies are
// chunked for HTTP/1.1 clients; HTTP/1.0 clients get raw bytes and a close.
[[nodiscard]] ResponseFraming downstreamFraming(const ResponseHead& resp, int client_version,
                                                bool client_keep_alive, bool draining);

// Appends "HTTP/1.1 <status> <reason>\r\n".
void writeStatusLine(std::string& out, int status);
void appendDecimal(std::string& out, std::uint64_t v);

}  // namespace sluice::gateway::http
