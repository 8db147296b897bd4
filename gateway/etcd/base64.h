// Standard base64 (RFC 4648 section 4, with padding): etcd's JSON gateway carries every key and
// value as base64, because proto `bytes` fields are encoded so in JSON.
//
//   const std::string wire = base64Encode("/sluice/config");
//   if (auto raw = base64Decode(wire)) use(*raw);
//
// Thread-safety: pure functions.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace sluice::gateway::etcd {

// Any bytes; the result has padding ('=') and no line breaks.
[[nodiscard]] std::string base64Encode(std::string_view bytes);

// The bytes of `text`, or nullopt when it is not canonical-alphabet base64 (a length that is
// not a multiple of 4, a character outside A-Z a-z 0-9 + /, padding anywhere but the end).
// Untrusted input: any string is answered, never thrown on.
[[nodiscard]] std::optional<std::string> base64Decode(std::string_view text);

}  // namespace sluice::gateway::etcd
