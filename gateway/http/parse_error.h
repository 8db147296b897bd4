// Why a downstream request was refused while it was being read, and what the client is told.
#pragma once

#include <cstdint>
#include <string_view>

namespace sluice::gateway::http {

enum class RequestError : std::uint8_t {
  None,
  Malformed,         // syntax error anywhere in the head
  BadVersion,        // not HTTP/1.0 or HTTP/1.1
  BadTarget,         // not origin-, absolute- or asterisk-form; fragment; asterisk without OPTIONS
  MissingHost,       // HTTP/1.1 without Host
  DuplicateHost,     // Host repeated
  BadHost,           // Host value with characters no authority has
  BadContentLength,  // malformed, repeated or listed Content-Length
  BadTransferEncoding,  // last coding not chunked, repeated, or together with Content-Length
  UnsupportedCoding,    // a transfer coding other than chunked (e.g. "gzip, chunked")
  ObsFold,              // obsolete line folding
  BadChunk,             // chunk size or framing error in a chunked body
  UriTooLong,           // request line longer than the listener allows
  HeaderTooLarge,       // head bytes over the limit
  TooManyHeaders,       // header count over the limit
  BodyTooLarge,         // body over the route's limit
  MethodNotAllowed,     // CONNECT (no tunnelling)
  ExpectationFailed,    // Expect with anything but 100-continue
};

struct RequestErrorInfo {
  int status;
  std::string_view metric_reason;  // label value for sluice_rejected_requests_total
  std::string_view message;        // short body text sent to the client
};

[[nodiscard]] constexpr RequestErrorInfo describe(RequestError e) noexcept {
  switch (e) {
    case RequestError::None:
      return {200, "none", ""};
    case RequestError::Malformed:
      return {400, "bad_request", "malformed request"};
    case RequestError::BadVersion:
      return {400, "bad_request", "unsupported HTTP version"};
    case RequestError::BadTarget:
      return {400, "bad_request", "invalid request target"};
    case RequestError::MissingHost:
      return {400, "bad_request", "missing Host header"};
    case RequestError::DuplicateHost:
      return {400, "bad_request", "repeated Host header"};
    case RequestError::BadHost:
      return {400, "bad_request", "invalid Host header"};
    case RequestError::BadContentLength:
      return {400, "bad_request", "invalid Content-Length"};
    case RequestError::BadTransferEncoding:
      return {400, "bad_request", "invalid Transfer-Encoding"};
    case RequestError::UnsupportedCoding:
      return {501, "unsupported_coding", "unsupported transfer coding"};
    case RequestError::ObsFold:
      return {400, "bad_request", "obsolete header line folding"};
    case RequestError::BadChunk:
      return {400, "bad_request", "invalid chunked body"};
    case RequestError::UriTooLong:
      return {414, "uri_too_long", "request line too long"};
    case RequestError::HeaderTooLarge:
      return {431, "header_too_large", "request header too large"};
    case RequestError::TooManyHeaders:
      return {431, "header_too_large", "too many request headers"};
    case RequestError::BodyTooLarge:
      return {413, "body_too_large", "request body too large"};
    case RequestError::MethodNotAllowed:
      return {405, "method_not_allowed", "method not allowed"};
    case RequestError::ExpectationFailed:
      return {417, "expectation_failed", "unsupported expectation"};
  }
  return {400, "bad_request", "bad request"};
}

}  // namespace sluice::gateway::http
