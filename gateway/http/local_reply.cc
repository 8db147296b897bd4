#include "gateway/http/local_reply.h"

#include "gateway/http/head_writer.h"

namespace sluice::gateway::http {

void writeLocalReply(std::string& out, const LocalReply& reply, std::string_view request_id,
                     bool close, bool client_http10, bool head_only) {
  writeStatusLine(out, reply.status);
  if (!reply.content_type.empty()) {
    out.append("Content-Type: ");
    out.append(reply.content_type);
    out.append("\r\n");
  }
  out.append("Content-Length: ");
  appendDecimal(out, reply.body.size());
  out.append("\r\n");
  for (const auto& [name, value] : reply.fields) {
    out.append(name);
    out.append(": ");
    out.append(value);
    out.append("\r\n");
  }
  if (!request_id.empty()) {
    out.append("X-Request-Id: ");
    out.append(request_id);
    out.append("\r\n");
  }
  if (close || reply.close) {
    out.append("Connection: close\r\n");
  } else if (client_http10) {
    out.append("Connection: keep-alive\r\n");
  }
  out.append("\r\n");
  if (!head_only) out.append(reply.body);
}

}  // namespace sluice::gateway::http
