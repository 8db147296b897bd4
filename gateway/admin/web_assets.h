// The admin dashboard's files (gateway/admin/web/), compiled into the binary by CMake
// (web_assets.cc.in): the page served at the admin `/` and the script and style sheet it loads.
// The script's and style sheet's paths carry a hash of their bytes, so the admin listener serves
// them as immutable (a browser keeps them; a new build's page names new ones).
#pragma once

#include <span>
#include <string_view>

namespace sluice::gateway::admin {

struct WebAsset {
  std::string_view path;  // "/dashboard/dashboard.<hash>.js"
  std::string_view content_type;
  std::string_view body;
};

// The page, with kEndpointsMarker where the list of admin endpoints goes.
[[nodiscard]] std::string_view dashboardPage();
inline constexpr std::string_view kEndpointsMarker = "<!--sluice:endpoints-->";
[[nodiscard]] std::span<const WebAsset> webAssets();

}  // namespace sluice::gateway::admin
