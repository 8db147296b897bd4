// A request head from fuzz bytes, for the harnesses that take a parsed request (routing, hash
// keys): the fuzzer's bytes go through the real parser, so only heads a client could get past
// it reach the code under test.
#pragma once

#include <string>
#include <string_view>

#include "gateway/http/request_parser.h"

namespace sluice::fuzz {

// Parses `bytes` (with "\r\n\r\n" appended when missing) into `head`; false if refused.
inline bool parseRequestHead(std::string_view bytes, std::string& buffer,
                             gateway::http::RequestHead& head) {
  buffer.assign(bytes);
  if (buffer.find("\r\n\r\n") == std::string::npos) buffer.append("\r\n\r\n");
  gateway::http::RequestParser parser(head, gateway::http::RequestLimits{});
  const auto r = parser.parseHead(buffer);
  return r.done && r.error == gateway::http::RequestError::None;
}

}  // namespace sluice::fuzz
