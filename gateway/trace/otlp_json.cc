#include "gateway/trace/otlp_json.h"

#include <nlohmann/json.hpp>

namespace sluice::gateway::trace {

namespace {

using nlohmann::json;

json stringAttribute(std::string_view key, const std::string& value) {
  return {{"key", key}, {"value", {{"stringValue", value}}}};
}

json attribute(const SpanRecord::Attribute& a) {
  if (const auto* s = std::get_if<std::string>(&a.value)) return stringAttribute(a.key, *s);
  return {{"key", a.key},
          {"value", {{"intValue", std::to_string(std::get<std::int64_t>(a.value))}}}};
}

json span(const SpanRecord& s) {
  json attributes = json::array();
  for (const auto& a : s.attributes) attributes.push_back(attribute(a));
  json j = {{"traceId", hex(s.trace_id)},
            {"spanId", hex(s.span_id)},
            {"name", s.name},
            {"kind", static_cast<int>(s.kind)},
            {"startTimeUnixNano", std::to_string(s.start_unix_ns)},
            {"endTimeUnixNano", std::to_string(s.end_unix_ns)},
            {"attributes", std::move(attributes)}};
  if (s.parent) j["parentSpanId"] = hex(*s.parent);
  // Status codes: 0 unset, 1 ok, 2 error. Unset unless something failed (the HTTP semantic
  // conventions leave a successful span's status unset).
  j["status"] = s.error ? json{{"code", 2}, {"message", s.status_message}} : json::object();
  return j;
}

}  // namespace

std::string encodeOtlpJson(std::span<const SpanRecord> spans, const Resource& resource) {
  json list = json::array();
  for (const auto& s : spans) list.push_back(span(s));
  const json body = {{"resourceSpans",
                      {{{"resource",
                         {{"attributes",
                           {stringAttribute("service.name", resource.service_name),
                            stringAttribute("service.version", resource.service_version),
                            stringAttribute("service.instance.id", resource.instance_id)}}}},
                        {"scopeSpans",
                         {{{"scope", {{"name", "sluice"}, {"version", resource.service_version}}},
                           {"spans", std::move(list)}}}}}}}};
  // Paths and hosts come from clients: bytes that are not UTF-8 are replaced, not thrown on.
  return body.dump(-1, ' ', false, json::error_handler_t::replace);
}

}  // namespace sluice::gateway::trace
