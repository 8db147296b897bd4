#include "gateway/config/tracing_config.h"

#include <string>

#include "gateway/config/loader.h"

namespace sluice::gateway::config {

namespace {

// "http://ip:port[/path]". Plain HTTP to an address, as every other address of the config: the
// collector is a local agent or sidecar in the common deployment, and names are not resolved.
void readEndpoint(Reader& r, const yaml::Node& n, Tracing& out) {
  const auto text = r.scalar(n, "tracing.otlp_endpoint");
  if (!text) return;
  constexpr std::string_view kScheme = "http://";
  std::string_view rest = *text;
  if (!rest.starts_with(kScheme)) {
    r.error(n,
            "tracing.otlp_endpoint must be http://ip:port/path (OTLP over HTTP; https is not "
            "supported), got '" +
                *text + "'");
    return;
  }
  rest.remove_prefix(kScheme.size());
  const auto slash = rest.find('/');
  std::string why;
  const auto address = parseAddress(rest.substr(0, slash), &why);
  if (!address) {
    r.error(n, "tracing.otlp_endpoint: " + why);
    return;
  }
  if (address->port == 0) {
    r.error(n, "tracing.otlp_endpoint needs a port (OTLP/HTTP listens on 4318)");
    return;
  }
  out.otlp_endpoint = *text;
  out.collector = *address;
  out.path =
      slash == std::string_view::npos ? std::string("/v1/traces") : std::string(rest.substr(slash));
}

}  // namespace

void readTracing(Reader& r, const yaml::Node& n, Tracing& out) {
  if (!r.map(n, "tracing",
             {"otlp_endpoint", "sample_ratio", "service_name", "queue", "batch", "flush_interval",
              "timeout"})) {
    return;
  }
  if (r.require(n, "otlp_endpoint", "tracing")) readEndpoint(r, n["otlp_endpoint"], out);
  r.optional(n, "sample_ratio", out.sample_ratio,
             [&](const yaml::Node& v) { return r.decimal(v, "tracing.sample_ratio", 0, 1); });
  if (const yaml::Node s = n["service_name"]) {
    if (auto v = r.scalar(s, "tracing.service_name")) {
      if (v->empty() || v->size() > 256) {
        r.error(s, "tracing.service_name must be 1 to 256 characters");
      } else {
        out.service_name = *v;
      }
    }
  }
  r.optional(n, "queue", out.queue,
             [&](const yaml::Node& v) { return r.integer(v, "tracing.queue", 16, 1'048'576); });
  r.optional(n, "batch", out.batch,
             [&](const yaml::Node& v) { return r.integer(v, "tracing.batch", 1, 65'536); });
  if (out.batch > out.queue && n["batch"]) {
    r.error(n["batch"],
            "tracing.batch must be at most tracing.queue (" + std::to_string(out.queue) + ")");
  }
  r.optional(n, "flush_interval", out.flush_interval, [&](const yaml::Node& v) {
    return r.duration(v, "tracing.flush_interval", Millis{10});
  });
  r.optional(n, "timeout", out.timeout,
             [&](const yaml::Node& v) { return r.duration(v, "tracing.timeout", Millis{1}); });
}

}  // namespace sluice::gateway::config
