// A finished span as the request path hands it to the exporter: plain data, built on the worker
// thread only for sampled requests, encoded to OTLP off it (otlp_json.h).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "gateway/trace/trace_context.h"

namespace sluice::gateway::trace {

struct SpanRecord {
  // OTLP's SpanKind values.
  enum class Kind : std::uint8_t { Server = 2, Client = 3 };
  struct Attribute {
    std::string_view key;  // a literal: attribute names are fixed in the code
    std::variant<std::string, std::int64_t> value;
  };

  TraceId trace_id{};
  SpanId span_id{};
  std::optional<SpanId> parent;  // none for a root span
  std::string name;
  Kind kind = Kind::Server;
  std::uint64_t start_unix_ns = 0;
  std::uint64_t end_unix_ns = 0;
  bool error = false;          // OTLP status ERROR (unset otherwise)
  std::string status_message;  // with `error`
  std::vector<Attribute> attributes;

  void add(std::string_view key, std::string value) {
    attributes.push_back({key, std::move(value)});
  }
  void add(std::string_view key, std::int64_t value) { attributes.push_back({key, value}); }
};

}  // namespace sluice::gateway::trace
