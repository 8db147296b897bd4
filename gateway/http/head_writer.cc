#include "gateway/http/head_writer.h"

#include <algorithm>
#include <array>

#include <boost/beast/http/status.hpp>

#include "gateway/http/strict_parser.h"
#include "gateway/http/timeout_header.h"

namespace sluice::gateway::http {

bool isHopByHop(const HeaderField& f, const MessageHead& head) noexcept {
  switch (f.id) {
    case Field::connection:
    case Field::keep_alive:
    case Field::proxy_connection:
    case Field::te:
    case Field::trailer:
    case Field::transfer_encoding:
    case Field::upgrade:
    case Field::content_length:  // re-derived
      return true;
    default:
      break;
  }
  return std::ranges::any_of(head.connection_tokens,
                             [&](std::string_view token) { return iequals(token, f.name); });
}

void appendDecimal(std::string& out, std::uint64_t v) {
  std::array<char, 20> buf{};
  std::size_t n = 0;
  do {
    buf[n++] = static_cast<char>('0' + v % 10);
    v /= 10;
  } while (v != 0);
  while (n > 0) out.push_back(buf[--n]);
}

namespace {

void appendField(std::string& out, std::string_view name, std::string_view value) {
  out.append(name);
  out.append(": ");
  out.append(value);
  out.append("\r\n");
}

// Fields only sluice writes upstream: the deadline, rewritten on every try (timeout_header.h),
// and the mark of a mirrored copy.
bool isOwnField(const HeaderField& f) {
  return f.id == Field::unknown &&
         (iequals(f.name, kSluiceTimeoutHeader) || iequals(f.name, kGrpcTimeoutHeader) ||
          iequals(f.name, kMirrorHeader));
}

bool isXForwardedFor(const HeaderField& f) { return iequals(f.name, "x-forwarded-for"); }

bool isForwardingField(const HeaderField& f) {
  if (f.id == Field::forwarded) return true;
  if (f.id != Field::unknown) return false;
  return isXForwardedFor(f) || iequals(f.name, "x-forwarded-proto") ||
         iequals(f.name, "x-forwarded-host") || iequals(f.name, "x-real-ip");
}

}  // namespace

bool FieldEdits::drops(std::string_view name) const noexcept {
  return std::ranges::any_of(remove, [&](const std::string& r) { return iequals(r, name); }) ||
         std::ranges::any_of(set, [&](const auto& s) { return iequals(s.first, name); });
}

void writeUpstreamRequest(std::string& out, const RequestHead& req, const ForwardingInfo& fwd,
                          const FieldEdits* edits) {
  out.append(req.method_text);
  out.push_back(' ');
  out.append(edits != nullptr && !edits->target.empty() ? edits->target : req.target);
  out.append(" HTTP/1.1\r\n");
  const std::string_view new_host = edits != nullptr ? edits->host : std::string_view();

  std::string_view prior_xff;
  bool have_proto = false;
  bool have_host = false;
  for (const HeaderField& f : req.fields) {
    if (isHopByHop(f, req) || f.id == Field::expect || isOwnField(f)) continue;
    if (fwd.own_traceparent && f.id == Field::unknown && iequals(f.name, "traceparent")) continue;
    if (isForwardingField(f)) {
      if (!fwd.trust_forwarded) continue;
      if (isXForwardedFor(f)) {
        // Several X-Forwarded-For lines are one list; keep the first and fold ours into it.
        if (prior_xff.empty()) prior_xff = f.value;
        continue;
      }
      have_proto = have_proto || iequals(f.name, "x-forwarded-proto");
      have_host = have_host || iequals(f.name, "x-forwarded-host");
    }
    if (edits != nullptr && edits->drops(f.name)) continue;
    if (f.id == Field::host && !new_host.empty()) continue;
    appendField(out, f.name, f.value);
  }
  if (!new_host.empty()) {
    appendField(out, "Host", new_host);
  } else if (req.find(Field::host) == nullptr && !req.host.empty()) {
    appendField(out, "Host", req.host);
  }
  if (edits != nullptr) out.append(edits->extra);

  out.append("X-Forwarded-For: ");
  if (!prior_xff.empty()) {
    out.append(prior_xff);
    out.append(", ");
  }
  out.append(fwd.client_ip);
  out.append("\r\n");
  if (!have_proto) appendField(out, "X-Forwarded-Proto", fwd.proto);
  if (!have_host && !req.host.empty()) appendField(out, "X-Forwarded-Host", req.host);
  if (!fwd.request_id_received) appendField(out, "X-Request-Id", fwd.request_id);

  switch (req.framing) {
    case Framing::Length:
      out.append("Content-Length: ");
      appendDecimal(out, req.content_length);
      out.append("\r\n");
      break;
    case Framing::Chunked:
      out.append("Transfer-Encoding: chunked\r\n");
      break;
    case Framing::None:
    case Framing::UntilEof:
      break;
  }
}

void writeStatusLine(std::string& out, int status) {
  out.append("HTTP/1.1 ");
  appendDecimal(out, static_cast<std::uint64_t>(status));
  out.push_back(' ');
  const auto reason =
      boost::beast::http::obsolete_reason(static_cast<boost::beast::http::status>(status));
  out.append(reason.data(), reason.size());
  out.append("\r\n");
}

ResponseFraming downstreamFraming(const ResponseHead& resp, int client_version,
                                  bool client_keep_alive, bool draining) {
  ResponseFraming f;
  f.client_http10 = client_version < 11;
  f.close = !client_keep_alive || draining;
  switch (resp.framing) {
    case Framing::None:
      f.framing = Framing::None;
      break;
    case Framing::Length:
      f.framing = Framing::Length;
      f.content_length = resp.content_length;
      break;
    case Framing::Chunked:
    case Framing::UntilEof:
      if (f.client_http10) {
        f.framing = Framing::UntilEof;
        f.close = true;
      } else {
        f.framing = Framing::Chunked;
      }
      break;
  }
  return f;
}

void writeDownstreamResponse(std::string& out, const ResponseHead& resp,
                             const ResponseFraming& framing, std::string_view request_id,
                             const FieldEdits* edits) {
  out.append("HTTP/1.1 ");
  appendDecimal(out, static_cast<std::uint64_t>(resp.status));
  out.push_back(' ');
  out.append(resp.reason);
  out.append("\r\n");
  bool have_request_id = false;
  for (const HeaderField& f : resp.fields) {
    if (isHopByHop(f, resp)) continue;
    have_request_id = have_request_id || iequals(f.name, "x-request-id");
    if (edits != nullptr && edits->drops(f.name)) continue;
    appendField(out, f.name, f.value);
  }
  if (edits != nullptr) out.append(edits->extra);
  if (!have_request_id && !request_id.empty()) appendField(out, "X-Request-Id", request_id);
  switch (framing.framing) {
    case Framing::Length:
      out.append("Content-Length: ");
      appendDecimal(out, framing.content_length);
      out.append("\r\n");
      break;
    case Framing::Chunked:
      out.append("Transfer-Encoding: chunked\r\n");
      break;
    case Framing::None:
      if (resp.has_content_length) {
        out.append("Content-Length: ");
        appendDecimal(out, resp.content_length);
        out.append("\r\n");
      }
      break;
    case Framing::UntilEof:
      break;
  }
  if (framing.close) {
    out.append("Connection: close\r\n");
  } else if (framing.client_http10) {
    out.append("Connection: keep-alive\r\n");
  }
  out.append("\r\n");
}

}  // namespace sluice::gateway::http
