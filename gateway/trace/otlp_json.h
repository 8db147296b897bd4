// OTLP/HTTP JSON encoding of a batch of spans (opentelemetry-proto's ExportTraceServiceRequest in
// its JSON mapping): ids as lowercase hex, times and 64-bit integers as decimal strings, enums
// as numbers, camelCase field names.
#pragma once

#include <span>
#include <string>

#include "gateway/trace/span.h"

namespace sluice::gateway::trace {

struct Resource {
  std::string service_name;
  std::string service_version;
  std::string instance_id;  // host name and pid: tells the instances of a fleet apart
};

[[nodiscard]] std::string encodeOtlpJson(std::span<const SpanRecord> spans,
                                         const Resource& resource);

}  // namespace sluice::gateway::trace
