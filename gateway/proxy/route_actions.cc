#include "gateway/proxy/route_actions.h"

#include "gateway/config/value_template.h"
#include "gateway/http/strict_parser.h"
#include "gateway/upstream/subset.h"

namespace sluice::gateway::proxy {

namespace {

// Content-Type is the reply's own field (LocalReply::content_type), not one more of its fields.
void addReplyField(http::LocalReply& reply, std::string name, std::string value) {
  if (http::iequals(name, "content-type")) {
    reply.content_type = std::move(value);
    return;
  }
  for (auto& f : reply.fields) {
    if (http::iequals(f.first, name)) {
      f.second = std::move(value);
      return;
    }
  }
  reply.fields.emplace_back(std::move(name), std::move(value));
}

// The route's response_headers on a reply sluice writes itself (nothing to remove there).
void applyResponseHeaders(http::LocalReply& reply, const config::HeaderEdits& edits,
                          const ActionVars& vars) {
  for (const auto& [name, value] : edits.set) {
    std::string v;
    expandTemplate(v, value, vars);
    addReplyField(reply, name, std::move(v));
  }
  for (const auto& [name, value] : edits.add) {
    std::string v;
    expandTemplate(v, value, vars);
    if (http::iequals(name, "content-type")) {
      reply.content_type = std::move(v);
    } else {
      reply.fields.emplace_back(name, std::move(v));
    }
  }
}

// The request's Host split into host and port ("" when it has none).
std::pair<std::string_view, std::string_view> splitHost(std::string_view host) {
  const auto colon = host.rfind(':');
  if (colon == std::string_view::npos || host.find(']', colon) != std::string_view::npos) {
    return {host, {}};
  }
  return {host.substr(0, colon), host.substr(colon + 1)};
}

}  // namespace

void expandTemplate(std::string& out, std::string_view text, const ActionVars& vars) {
  using V = config::Variable;
  config::walkTemplate(
      text, [&](std::string_view literal) { out.append(literal); },
      [&](V v) {
        switch (v) {
          case V::ClientIp:
            out.append(vars.client_ip);
            break;
          case V::RequestId:
            out.append(vars.request_id);
            break;
          case V::Route:
            out.append(vars.route);
            break;
          case V::Cluster:
            out.append(vars.cluster);
            break;
          case V::Subset: {
            bool first = true;
            for (const auto& [name, value] : upstream::labelsOf(vars.subset_key)) {
              if (!first) out.push_back(',');
              first = false;
              out.append(name);
              out.push_back('=');
              out.append(value);
            }
            break;
          }
        }
      });
}

void appendEditedFields(std::string& out, const config::HeaderEdits& edits,
                        const ActionVars& vars) {
  const auto line = [&](const std::string& name, const std::string& value) {
    out.append(name);
    out.append(": ");
    expandTemplate(out, value, vars);
    out.append("\r\n");
  };
  for (const auto& [name, value] : edits.set) line(name, value);
  for (const auto& [name, value] : edits.add) line(name, value);
}

void rewriteTarget(std::string& out, std::string_view target, const config::RouteMatch& match,
                   std::string_view prefix) {
  const auto q = target.find('?');
  const std::string_view path = target.substr(0, q);
  std::size_t matched = 0;
  if (match.path) {
    matched = path.size();
  } else if (match.path_prefix) {
    matched = std::min(match.path_prefix->size(), path.size());
  }
  out.append(prefix);
  out.append(path.substr(matched));
  if (q != std::string_view::npos) out.append(target.substr(q));
}

http::LocalReply redirectReply(const config::Route& route, const http::RequestHead& head,
                               std::string_view scheme, const ActionVars& vars) {
  const config::Redirect& r = *route.redirect;
  http::LocalReply reply;
  reply.status = r.status;
  reply.content_type.clear();
  std::string location;
  const bool absolute = r.scheme || r.host || r.port;
  if (absolute) {
    const auto [req_host, req_port] = splitHost(head.host);
    const std::string_view host = r.host ? std::string_view(*r.host) : req_host;
    if (host.empty()) return http::LocalReply::text(400, "no Host to redirect to");
    const bool same_scheme = !r.scheme || *r.scheme == scheme;
    location.append(r.scheme ? std::string_view(*r.scheme) : scheme);
    location.append("://");
    location.append(host);
    if (r.port) {
      location.push_back(':');
      location.append(std::to_string(*r.port));
    } else if (same_scheme && !req_port.empty() && !r.host) {
      location.push_back(':');
      location.append(req_port);
    }
  }
  const auto q = head.target.find('?');
  const std::string_view query =
      q == std::string_view::npos || r.strip_query ? std::string_view() : head.target.substr(q);
  if (r.path) {
    location.append(*r.path);
    location.append(query);
  } else if (r.path_prefix) {
    const std::string_view target =
        r.strip_query ? head.target.substr(0, q) : std::string_view(head.target);
    rewriteTarget(location, target, route.match, *r.path_prefix);
  } else {
    location.append(head.path());
    location.append(query);
  }
  reply.fields.emplace_back("Location", std::move(location));
  applyResponseHeaders(reply, route.response_headers, vars);
  return reply;
}

http::LocalReply directReply(const config::Route& route, const ActionVars& vars) {
  const config::DirectResponse& d = *route.direct_response;
  http::LocalReply reply;
  reply.status = d.status;
  reply.body = d.body;
  if (d.body.empty()) reply.content_type.clear();
  for (const auto& [name, value] : d.headers) {
    std::string v;
    expandTemplate(v, value, vars);
    addReplyField(reply, name, std::move(v));
  }
  applyResponseHeaders(reply, route.response_headers, vars);
  return reply;
}

}  // namespace sluice::gateway::proxy
