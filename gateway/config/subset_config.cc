#include "gateway/config/subset_config.h"

#include <algorithm>
#include <cctype>

namespace sluice::gateway::config {

void readLabels(Reader& r, const yaml::Node& m, std::string_view what,
                std::map<std::string, std::string>& out) {
  const std::string where(what);
  if (!m.IsMap()) {
    r.error(m, where + " must be a mapping of names to text, e.g. { env: gray }");
    return;
  }
  if (m.size() > Endpoint::kMaxMetadata) {
    r.error(m, where + " has " + std::to_string(m.size()) + " entries (at most " +
                   std::to_string(Endpoint::kMaxMetadata) + ")");
    return;
  }
  for (const auto& kv : m) {
    const std::string& key = kv.first.Scalar();
    auto value = r.scalar(kv.second, where + " value");
    if (!value) continue;
    if (key.empty() || key.size() > Endpoint::kMaxMetadataText ||
        value->size() > Endpoint::kMaxMetadataText) {
      r.error(kv.first, where + " keys must be 1 to 256 bytes and values at most 256");
    } else if (!out.emplace(key, *value).second) {
      std::string message = "duplicate key '" + key;
      message += "' in ";
      message += where;
      r.error(kv.first, std::move(message));
    }
  }
}

void readSubset(Reader& r, const yaml::Node& n, Subset& out) {
  if (!r.map(n, "subset", {"labels", "from_header", "fallback"})) return;
  if (const yaml::Node l = n["labels"]) readLabels(r, l, "subset.labels", out.labels);
  if (const yaml::Node h = n["from_header"]) {
    if (r.map(h, "subset.from_header", {"name", "label"})) {
      if (r.require(h, "name", "subset.from_header")) {
        if (auto v = r.scalar(h["name"], "subset.from_header.name")) {
          if (v->empty() || !std::all_of(v->begin(), v->end(), isTokenChar)) {
            r.error(h["name"], "subset.from_header.name '" + *v + "' is not a header name");
          } else {
            out.header = *v;
            std::transform(out.header.begin(), out.header.end(), out.header.begin(),
                           [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
          }
        }
      }
      if (r.require(h, "label", "subset.from_header")) {
        if (auto v = r.scalar(h["label"], "subset.from_header.label")) {
          if (v->empty() || v->size() > Endpoint::kMaxMetadataText) {
            r.error(h["label"], "subset.from_header.label must be 1 to 256 bytes");
          } else if (out.labels.contains(*v)) {
            r.error(h["label"], "subset label '" + *v +
                                    "' is both fixed in subset.labels and taken from a header");
          } else {
            out.label = *v;
          }
        }
      }
    }
  }
  if (const yaml::Node f = n["fallback"]) {
    if (auto v = r.scalar(f, "subset.fallback")) {
      if (*v == "cluster") {
        out.fallback = Subset::Fallback::Cluster;
      } else if (*v == "none") {
        out.fallback = Subset::Fallback::None;
      } else {
        r.error(f,
                "subset.fallback must be cluster (the whole cluster) or none (answer 503), "
                "not '" +
                    *v + "'");
      }
    }
  }
  if (!n["labels"] && !n["from_header"]) {
    r.error(n, "subset needs labels, from_header or both");
  }
}

}  // namespace sluice::gateway::config
