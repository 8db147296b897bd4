#include "gateway/proxy/hash_key.h"

#include <string>

#include <xxhash.h>

#include "gateway/http/strict_parser.h"

namespace sluice::gateway::proxy {

namespace {

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// The value of `name` in a `sep`-separated list of name=value pairs.
std::optional<std::string_view> pairValue(std::string_view list, char sep, std::string_view name) {
  while (!list.empty()) {
    const auto end = list.find(sep);
    const std::string_view item = trim(list.substr(0, end));
    const auto eq = item.find('=');
    if (eq != std::string_view::npos && item.substr(0, eq) == name) return item.substr(eq + 1);
    if (end == std::string_view::npos) break;
    list.remove_prefix(end + 1);
  }
  return std::nullopt;
}

}  // namespace

std::optional<std::string_view> cookieValue(std::string_view cookies, std::string_view name) {
  return pairValue(cookies, ';', name);
}

std::optional<std::string_view> queryValue(std::string_view target, std::string_view name) {
  const auto q = target.find('?');
  if (q == std::string_view::npos) return std::nullopt;
  std::string_view query = target.substr(q + 1);
  if (const auto hash = query.find('#'); hash != std::string_view::npos) {
    query = query.substr(0, hash);
  }
  return pairValue(query, '&', name);
}

std::optional<std::uint64_t> requestHash(const std::vector<config::HashKeyPart>& key,
                                         const http::RequestHead& head,
                                         std::string_view client_ip) {
  using Kind = config::HashKeyPart::Kind;
  thread_local std::string joined;  // keeps its capacity: no allocation per request
  joined.clear();
  bool any = false;
  const auto add = [&](std::optional<std::string_view> part) {
    if (part) {
      any = true;
      joined.append(*part);
    }
    joined.push_back('\0');
  };
  const auto one = [&](const config::HashKeyPart& p) -> std::optional<std::string_view> {
    switch (p.kind) {
      case Kind::ClientIp:
        return client_ip;
      case Kind::Path:
        return head.path();
      case Kind::Header:
        for (const auto& f : head.fields) {
          if (http::iequals(f.name, p.name)) return f.value;
        }
        return std::nullopt;
      case Kind::Cookie:
        for (const auto& f : head.fields) {
          if (f.id != http::Field::cookie) continue;
          if (auto v = cookieValue(f.value, p.name)) return v;
        }
        return std::nullopt;
      case Kind::Query:
        return queryValue(head.target, p.name);
    }
    return std::nullopt;
  };
  if (key.empty()) {
    add(client_ip);
  } else {
    for (const auto& p : key) add(one(p));
  }
  if (!any) return std::nullopt;
  return XXH3_64bits(joined.data(), joined.size());
}

}  // namespace sluice::gateway::proxy
