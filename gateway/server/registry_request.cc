#include "gateway/server/registry_request.h"

#include <vector>

#include <nlohmann/json.hpp>

#include "gateway/config/config.h"
#include "gateway/config/loader.h"

namespace sluice::gateway::server {

using config::Endpoint;
using nlohmann::json;

std::optional<RegistryPath> parseRegistryPath(std::string_view path) {
  std::vector<std::string_view> parts;
  while (!path.empty() && parts.size() <= 4) {
    const auto slash = path.find('/');
    if (slash != 0) parts.push_back(path.substr(0, slash));
    if (slash == std::string_view::npos) break;
    path.remove_prefix(slash + 1);
  }
  if (parts.empty() || parts[0] != "registry") return std::nullopt;
  if (parts.size() == 1) return RegistryPath{};
  if (parts.size() == 3) return RegistryPath{RegistryPath::Kind::Host, parts[1], parts[2]};
  if (parts.size() == 4 && parts[3] == "heartbeat") {
    return RegistryPath{RegistryPath::Kind::Heartbeat, parts[1], parts[2]};
  }
  return std::nullopt;
}

std::optional<std::string> parseRegistration(std::string_view body,
                                             std::chrono::milliseconds max_ttl, Registration& out) {
  if (body.empty()) return std::nullopt;
  const json doc = json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (!doc.is_object()) return "the body must be a JSON object";
  for (const auto& [key, value] : doc.items()) {
    if (key == "weight") {
      if (!value.is_number_unsigned() || value.get<std::uint64_t>() < 1 ||
          value.get<std::uint64_t>() > kMaxRegistryWeight) {
        return "weight must be an integer from 1 to " + std::to_string(kMaxRegistryWeight);
      }
      out.weight = value.get<std::uint32_t>();
    } else if (key == "ttl_ms") {
      if (!value.is_number_unsigned() ||
          value.get<std::uint64_t>() < static_cast<std::uint64_t>(kMinRegistryTtl.count()) ||
          value.get<std::uint64_t>() > static_cast<std::uint64_t>(max_ttl.count())) {
        return "ttl_ms must be an integer from " + std::to_string(kMinRegistryTtl.count()) +
               " to " + std::to_string(max_ttl.count()) + " (discovery.max_ttl)";
      }
      out.ttl = std::chrono::milliseconds(value.get<std::uint64_t>());
    } else if (key == "metadata") {
      if (!value.is_object() || value.size() > Endpoint::kMaxMetadata) {
        return "metadata must be an object of at most " + std::to_string(Endpoint::kMaxMetadata) +
               " string values";
      }
      for (const auto& [k, v] : value.items()) {
        if (!v.is_string() || k.size() > Endpoint::kMaxMetadataText ||
            v.get_ref<const std::string&>().size() > Endpoint::kMaxMetadataText) {
          return "metadata values must be strings (keys and values up to " +
                 std::to_string(Endpoint::kMaxMetadataText) + " bytes)";
        }
        out.metadata[k] = v.get<std::string>();
      }
    } else {
      return "unknown field '" + key + "' (known: weight, ttl_ms, metadata)";
    }
  }
  return std::nullopt;
}

std::optional<std::string> parseEtcdEndpoint(std::string_view value, EtcdEndpoint& out) {
  json doc = json::parse(value, nullptr, /*allow_exceptions=*/false);
  if (!doc.is_object()) return "the value must be a JSON object";
  const auto address = doc.find("address");
  if (address == doc.end() || !address->is_string()) return "address must be a string, ip:port";
  std::string why;
  const auto parsed = config::parseAddress(address->get_ref<const std::string&>(), &why);
  if (!parsed) return why;
  out.address = *parsed;
  doc.erase(address);
  for (const auto& [key, v] : doc.items()) {
    if (key != "weight" && key != "metadata") {
      return "unknown field '" + key + "' (known: address, weight, metadata)";
    }
  }
  return parseRegistration(doc.dump(), std::chrono::milliseconds(0), out.registration);
}

}  // namespace sluice::gateway::server
