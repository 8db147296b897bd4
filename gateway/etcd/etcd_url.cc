#include "gateway/etcd/etcd_url.h"

#include "gateway/config/loader.h"

namespace sluice::gateway::etcd {
namespace {
constexpr std::string_view kScheme = "etcd://";
}  // namespace

bool isEtcdUrl(std::string_view text) noexcept { return text.starts_with(kScheme); }

std::optional<EtcdUrl> parseEtcdUrl(std::string_view text, std::string* error) {
  if (!isEtcdUrl(text)) {
    *error = "not an etcd:// URL";
    return std::nullopt;
  }
  text.remove_prefix(kScheme.size());
  const auto slash = text.find('/');
  if (slash == std::string_view::npos || slash + 1 == text.size()) {
    *error = "no key: write etcd://HOST:PORT[,HOST:PORT...]/KEY";
    return std::nullopt;
  }
  EtcdUrl url;
  url.key = std::string(text.substr(slash));
  std::string_view hosts = text.substr(0, slash);
  if (hosts.empty()) {
    *error = "no endpoint: write etcd://HOST:PORT[,HOST:PORT...]/KEY";
    return std::nullopt;
  }
  while (true) {
    const auto comma = hosts.find(',');
    const std::string_view one = hosts.substr(0, comma);
    std::string why;
    auto address = config::parseAddress(one, &why);
    if (!address) {
      *error = why;
      return std::nullopt;
    }
    url.endpoints.push_back(std::move(*address));
    if (comma == std::string_view::npos) break;
    hosts.remove_prefix(comma + 1);
  }
  return url;
}

}  // namespace sluice::gateway::etcd
