#include "gateway/trace/otlp_json.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

namespace sluice::gateway::trace {
namespace {

TEST(OtlpJson, FollowsTheJsonMappingOfExportTraceServiceRequest) {
  const auto parent = *parseTraceParent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
  SpanRecord server;
  server.trace_id = parent.trace_id;
  server.span_id = SpanId{1, 2, 3, 4, 5, 6, 7, 8};
  server.parent = parent.parent_id;
  server.name = "GET api";
  server.kind = SpanRecord::Kind::Server;
  server.start_unix_ns = 1'700'000'000'123'456'789ULL;
  server.end_unix_ns = 1'700'000'000'223'456'789ULL;
  server.add("url.path", std::string("/a\"b\xff"));  // quotes escaped, bad UTF-8 replaced
  server.add("http.response.status_code", std::int64_t{200});
  SpanRecord client = server;
  client.kind = SpanRecord::Kind::Client;
  client.parent.reset();
  client.error = true;
  client.status_message = "timeout";

  const SpanRecord spans[] = {server, client};
  const auto j = nlohmann::json::parse(encodeOtlpJson(spans, {"edge", "1.2.3", "host:42"}));
  const auto& rs = j.at("resourceSpans").at(0);
  EXPECT_EQ(rs.at("resource").at("attributes").at(0),
            (nlohmann::json{{"key", "service.name"}, {"value", {{"stringValue", "edge"}}}}));
  const auto& scope = rs.at("scopeSpans").at(0);
  EXPECT_EQ(scope.at("scope").at("name"), "sluice");
  const auto& s = scope.at("spans").at(0);
  EXPECT_EQ(s.at("traceId"), "4bf92f3577b34da6a3ce929d0e0e4736");
  EXPECT_EQ(s.at("spanId"), "0102030405060708");
  EXPECT_EQ(s.at("parentSpanId"), "00f067aa0ba902b7");
  EXPECT_EQ(s.at("kind"), 2);
  EXPECT_EQ(s.at("startTimeUnixNano"), "1700000000123456789");  // a string: int64 in JSON
  EXPECT_EQ(s.at("endTimeUnixNano"), "1700000000223456789");
  EXPECT_EQ(s.at("attributes").at(0).at("value").at("stringValue"), "/a\"b\xef\xbf\xbd");
  EXPECT_EQ(s.at("attributes").at(1).at("value").at("intValue"), "200");
  EXPECT_EQ(s.at("status"), nlohmann::json::object());
  const auto& c = scope.at("spans").at(1);
  EXPECT_FALSE(c.contains("parentSpanId"));
  EXPECT_EQ(c.at("kind"), 3);
  EXPECT_EQ(c.at("status"), (nlohmann::json{{"code", 2}, {"message", "timeout"}}));
}

}  // namespace
}  // namespace sluice::gateway::trace
