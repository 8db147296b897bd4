// Subsets (tag routing): a route may send only to the hosts of its cluster whose metadata carry
// some labels (env: gray), fixed in the config or taken from a request header.
//
// Each worker's Cluster keeps one balancer per subset that requests ask for, over the same host
// slots as the whole cluster's balancer, with the hosts outside the subset weighing 0. Pools,
// active health, outlier ejection and counters therefore stay per host and shared by every
// subset, while the balancing state (round-robin position, requests in flight, EWMA) is each
// subset's own. Only subsets some host carries are kept, so their number is bounded by the hosts'
// metadata, not by what clients send.
//
// A subset is named by its key: its labels in name order, each name and value preceded by its
// length, so that no two label sets share a key whatever bytes they hold.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "gateway/config/config.h"

namespace sluice::gateway::upstream {

using Labels = std::map<std::string, std::string>;

// Writes into `key` the labels a request asks for under `subset`: its fixed labels, plus
// `header_value` under subset.label when the request has the header. False when it asks for no
// label at all (a header-only subset and no header): the whole cluster serves it.
bool subsetKey(const config::Subset& subset, std::optional<std::string_view> header_value,
               std::string& key);

// The labels `key` names (the inverse of subsetKey).
[[nodiscard]] Labels labelsOf(std::string_view key);

}  // namespace sluice::gateway::upstream
