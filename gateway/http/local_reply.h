// Responses sluice writes itself: errors, limits, guard decisions, admin pages.
//
// A local reply is small and complete: a status, a short text body and a few fields. Guards
// return one to answer a request without forwarding it (see guards/guard.h).
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace sluice::gateway::http {

struct LocalReply {
  int status = 500;
  std::string body;  // sent as text/plain unless content_type says otherwise
  std::string content_type = "text/plain; charset=utf-8";
  std::vector<std::pair<std::string, std::string>> fields;  // e.g. Retry-After
  bool close = false;                                       // close the connection after this reply

  static LocalReply text(int status, std::string_view message, bool close = false) {
    LocalReply r;
    r.status = status;
    r.body.assign(message);
    r.body.push_back('\n');
    r.close = close;
    return r;
  }
};

// Appends the whole reply (head and body). `head_only` for HEAD requests. HTTP/1.0 clients that
// keep the connection get Connection: keep-alive.
void writeLocalReply(std::string& out, const LocalReply& reply, std::string_view request_id,
                     bool close, bool client_http10, bool head_only);

}  // namespace sluice::gateway::http
