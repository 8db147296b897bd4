#include "gateway/config/outlier_config.h"

namespace sluice::gateway::config {

resilience::OutlierDetector::Settings outlierSettings(const OutlierDetection& c) {
  resilience::OutlierDetector::Settings s;
  s.consecutive_5xx = c.consecutive_5xx;
  s.consecutive_gateway_failure = c.consecutive_gateway_failure;
  s.failure_percentage_threshold = c.failure_percentage;
  s.failure_percentage_minimum_hosts = c.failure_percentage_minimum_hosts;
  s.failure_percentage_request_volume = c.failure_percentage_request_volume;
  s.interval = c.interval;
  s.base_ejection_time = c.base_ejection_time;
  s.max_ejection_time = c.max_ejection_time;
  s.max_ejection_percent = c.max_ejection_percent;
  return s;
}

void readBulkhead(Reader& r, const yaml::Node& n, Bulkhead& out) {
  if (!r.map(n, "bulkhead", {"max_connections", "max_pending", "max_requests", "max_retries"})) {
    return;
  }
  const auto cap = [&](const char* key, std::uint32_t& field, std::uint64_t min) {
    r.optional(n, key, field, [&](const yaml::Node& v) {
      return r.integer(v, "bulkhead." + std::string(key), min, 10'000'000);
    });
  };
  cap("max_connections", out.max_connections, 1);
  cap("max_pending", out.max_pending, 0);
  cap("max_requests", out.max_requests, 1);
  cap("max_retries", out.max_retries, 0);
}

void readOutlierDetection(Reader& r, const yaml::Node& n, OutlierDetection& out) {
  if (!r.map(n, "outlier_detection",
             {"consecutive_5xx", "consecutive_gateway_failure", "failure_percentage",
              "failure_percentage_minimum_hosts", "failure_percentage_request_volume", "interval",
              "base_ejection_time", "max_ejection_time", "max_ejection_percent"})) {
    return;
  }
  const auto count = [&](const char* key, std::uint32_t& field) {
    r.optional(n, key, field, [&](const yaml::Node& v) {
      return r.integer(v, "outlier_detection." + std::string(key), 0, 1'000'000);
    });
  };
  count("consecutive_5xx", out.consecutive_5xx);
  count("consecutive_gateway_failure", out.consecutive_gateway_failure);
  count("failure_percentage_minimum_hosts", out.failure_percentage_minimum_hosts);
  count("failure_percentage_request_volume", out.failure_percentage_request_volume);
  if (const yaml::Node fp = n["failure_percentage"]) {
    if (fp.IsScalar() && fp.Scalar() == "off") {
      out.failure_percentage.reset();
    } else if (auto v = r.decimal(fp, "outlier_detection.failure_percentage ('off' or percent)", 0,
                                  100)) {
      if (*v <= 0) {
        r.error(fp, "outlier_detection.failure_percentage must be above 0 (or 'off')");
      } else {
        out.failure_percentage = *v;
      }
    }
  }
  const auto duration = [&](const char* key, Millis& field) {
    r.optional(n, key, field, [&](const yaml::Node& v) {
      return r.duration(v, "outlier_detection." + std::string(key), kMinTimeout);
    });
  };
  duration("interval", out.interval);
  duration("base_ejection_time", out.base_ejection_time);
  duration("max_ejection_time", out.max_ejection_time);
  r.optional(n, "max_ejection_percent", out.max_ejection_percent, [&](const yaml::Node& v) {
    return r.decimal(v, "outlier_detection.max_ejection_percent", 0, 100);
  });
  if (out.max_ejection_time < out.base_ejection_time) {
    r.error(n, "outlier_detection.max_ejection_time must be at least base_ejection_time");
  }
}

}  // namespace sluice::gateway::config
