// The pieces of the etcd client that need no server: base64, prefix ranges, cutting the watch
// stream into objects, and parsing what etcd 3.4 sends (samples captured with curl) - and that
// anything else, however broken, is an error value and never a crash.
#include "gateway/etcd/etcd_messages.h"

#include <random>
#include <string>

#include <gtest/gtest.h>

#include "gateway/etcd/base64.h"
#include "gateway/etcd/json_stream.h"

namespace sluice::gateway::etcd {
namespace {

TEST(EtcdBase64, RoundTripsEveryLengthAndByte) {
  std::string bytes;
  for (int i = 0; i < 300; ++i) {
    bytes.push_back(static_cast<char>(i * 7));
    const auto back = base64Decode(base64Encode(bytes));
    ASSERT_TRUE(back.has_value());
    EXPECT_EQ(*back, bytes);
  }
  EXPECT_EQ(base64Encode("/a/x"), "L2EveA==");
  EXPECT_EQ(base64Encode(""), "");
}

TEST(EtcdBase64, RejectsWhatIsNotBase64) {
  for (const char* bad : {"abc", "ab=c", "=abc", "a===", "ab$d", "L2Ev\nA==", "L2E=veA="}) {
    EXPECT_FALSE(base64Decode(bad).has_value()) << bad;
  }
}

TEST(EtcdKeyRange, PrefixEndIsThePrefixWithItsLastByteIncremented) {
  EXPECT_EQ(KeyRange::prefix("/a/"), (KeyRange{"/a/", "/a0"}));
  EXPECT_EQ(KeyRange::prefix("a\xff"), (KeyRange{"a\xff", "b"}));
  // All keys: etcd spells both ends "\0".
  EXPECT_EQ(KeyRange::prefix(""), (KeyRange{std::string(1, '\0'), std::string(1, '\0')}));
  EXPECT_EQ(KeyRange::prefix("\xff"), (KeyRange{"\xff", std::string(1, '\0')}));
}

TEST(EtcdJsonStream, CutsNewlineAndConcatenationDelimitedObjectsFedInAnyPieces) {
  const std::string text =
      "{\"a\":\"}{\\\"\"}\n{\"b\":[1,{\"c\":2}]}{\"d\":3}\r\n  {\"e\":\"\\\\\"}\n";
  for (std::size_t piece = 1; piece <= text.size(); ++piece) {
    JsonStream s;
    std::vector<std::string> out;
    for (std::size_t i = 0; i < text.size(); i += piece) {
      s.feed(std::string_view(text).substr(i, piece));
      while (auto o = s.next()) out.push_back(*o);
    }
    ASSERT_FALSE(s.failed());
    ASSERT_EQ(out.size(), 4U) << "piece " << piece;
    EXPECT_EQ(out[0], "{\"a\":\"}{\\\"\"}");
    EXPECT_EQ(out[1], "{\"b\":[1,{\"c\":2}]}");
    EXPECT_EQ(out[2], "{\"d\":3}");
    EXPECT_EQ(out[3], "{\"e\":\"\\\\\"}");
  }
}

TEST(EtcdJsonStream, FailsOnBytesOutsideObjectsAndOnOversizedObjects) {
  JsonStream s;
  s.feed("{}x{}");
  EXPECT_TRUE(s.next().has_value());
  EXPECT_FALSE(s.next().has_value());
  EXPECT_TRUE(s.failed());
  JsonStream small(8);
  small.feed(R"({"long":"value"})");
  EXPECT_FALSE(small.next().has_value());
  EXPECT_TRUE(small.failed());
}

// Captured from etcd 3.4.23.
constexpr std::string_view kRange =
    R"({"header":{"cluster_id":"15118495548433857066","member_id":"13668033151171901709",)"
    R"("revision":"2","raft_term":"2"},"kvs":[{"key":"L2EveA==","create_revision":"2",)"
    R"("mod_revision":"2","version":"1","value":"aGVsbG8="}],"count":"1"})";
constexpr std::string_view kWatchEvents =
    R"({"result":{"header":{"cluster_id":"1","member_id":"2","revision":"3","raft_term":"2"},)"
    R"("events":[{"kv":{"key":"L2EveA==","create_revision":"2","mod_revision":"2",)"
    R"("version":"1","value":"aGVsbG8="}},{"type":"DELETE","kv":{"key":"L2EveA==",)"
    R"("mod_revision":"3"}}]}})";
constexpr std::string_view kWatchCompacted =
    R"({"result":{"header":{"cluster_id":"1","member_id":"2","raft_term":"2"},)"
    R"("canceled":true,"compact_revision":"5"}})";

TEST(EtcdMessages, ParsesARange) {
  const auto r = parseRange(kRange);
  ASSERT_TRUE(r.ok()) << r.status.message;
  EXPECT_EQ(r.value.revision, 2);
  EXPECT_EQ(r.value.count, 1);
  ASSERT_EQ(r.value.kvs.size(), 1U);
  EXPECT_EQ(r.value.kvs[0].key, "/a/x");
  EXPECT_EQ(r.value.kvs[0].value, "hello");
  EXPECT_EQ(r.value.kvs[0].create_revision, 2);
  EXPECT_EQ(r.value.kvs[0].mod_revision, 2);
}

TEST(EtcdMessages, ParsesWatchEventsAndCompaction) {
  const auto events = parseWatchMessage(kWatchEvents);
  ASSERT_TRUE(events.ok()) << events.status.message;
  ASSERT_EQ(events.value.events.size(), 2U);
  EXPECT_EQ(events.value.events[0].type, WatchEvent::Type::Put);
  EXPECT_EQ(events.value.events[1].type, WatchEvent::Type::Delete);
  EXPECT_EQ(events.value.events[1].kv.mod_revision, 3);
  const auto compacted = parseWatchMessage(kWatchCompacted);
  ASSERT_TRUE(compacted.ok());
  EXPECT_TRUE(compacted.value.canceled);
  EXPECT_EQ(compacted.value.compact_revision, 5);
}

TEST(EtcdMessages, ErrorObjectsAreServerErrorsWithTheirCode) {
  const auto r = parseRange(
      R"({"error":"etcdserver: mvcc: required revision has been compacted",)"
      R"("message":"etcdserver: mvcc: required revision has been compacted","code":11})");
  EXPECT_EQ(r.status.code, ErrorCode::Server);
  EXPECT_EQ(r.status.grpc_code, kGrpcOutOfRange);
  EXPECT_NE(r.status.message.find("compacted"), std::string::npos);
  // The watch stream's own error shape, when its member has lost the leader.
  const auto w = parseWatchMessage(
      R"({"error":{"grpc_code":14,"http_code":503,"message":"etcdserver: no leader",)"
      R"("http_status":"Service Unavailable"}})");
  EXPECT_EQ(w.status.code, ErrorCode::Server);
  EXPECT_EQ(w.status.grpc_code, 14);
  EXPECT_EQ(w.status.message, "etcdserver: no leader");
  // A keep-alive of a lease that is gone: success, TTL absent.
  const auto k = parseLeaseKeepAlive(R"({"result":{"header":{"revision":"3"},"ID":"123"}})");
  ASSERT_TRUE(k.ok());
  EXPECT_EQ(k.value.ttl.count(), 0);
}

TEST(EtcdMessages, WrongShapesAreBadResponses) {
  for (std::string_view bad :
       {"", "null", "[]", "{", R"({"kvs":{}})", R"({"kvs":[{"key":"%%%"}]})",
        R"({"header":{"revision":"x"}})", R"({"header":{"revision":1.5}})",
        R"({"count":"99999999999999999999999"})", R"({"kvs":[1]})", R"({"more":"yes"})"}) {
    EXPECT_EQ(parseRange(bad).status.code, ErrorCode::BadResponse) << bad;
  }
  for (std::string_view bad :
       {R"({"header":{}})", R"({"result":{"events":[{"type":"EXPLODE","kv":{}}]}})",
        R"({"result":{"events":[{"type":"PUT"}]}})", R"({"result":{"events":"x"}})"}) {
    EXPECT_EQ(parseWatchMessage(bad).status.code, ErrorCode::BadResponse) << bad;
  }
}

// verifies: mutations of real answers (bytes flipped, cut, duplicated) never crash a parser.
TEST(EtcdMessages, MutatedAnswersNeverCrash) {
  std::mt19937 rng(7);
  const std::string samples[] = {std::string(kRange), std::string(kWatchEvents),
                                 std::string(kWatchCompacted)};
  for (int i = 0; i < 3000; ++i) {
    std::string s = samples[i % 3];
    const int edits = 1 + static_cast<int>(rng() % 4);
    for (int e = 0; e < edits && !s.empty(); ++e) {
      const std::size_t at = rng() % s.size();
      switch (rng() % 3) {
        case 0:
          s[at] = static_cast<char>(rng() % 256);
          break;
        case 1:
          s.resize(at);
          break;
        default:
          s.insert(at, s.substr(at, rng() % 16));
          break;
      }
    }
    (void)parseRange(s);
    (void)parseWatchMessage(s);
    (void)parseLeaseKeepAlive(s);
    (void)parseLeaseGrant(s);
    (void)parseDelete(s);
    JsonStream stream;
    stream.feed(s);
    while (auto o = stream.next()) (void)parseWatchMessage(*o);
  }
}

}  // namespace
}  // namespace sluice::gateway::etcd
