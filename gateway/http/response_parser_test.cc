#include "gateway/http/response_parser.h"

#include <string>

#include <gtest/gtest.h>

namespace sluice::gateway::http {
namespace {

ResponseParser::Result parseAll(ResponseHead& head, std::optional<ResponseParser>& parser,
                                const std::string& bytes, bool head_request = false) {
  parser.emplace(head, 64 * 1024, 100, head_request);
  return parser->parseHead(bytes);
}

TEST(ResponseParser, FramingFromTheHead) {
  ResponseHead head;
  std::optional<ResponseParser> p;
  ASSERT_TRUE(parseAll(head, p, "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc").done);
  EXPECT_EQ(head.framing, Framing::Length);
  EXPECT_EQ(head.content_length, 3U);
  EXPECT_TRUE(head.keep_alive);
  ASSERT_TRUE(parseAll(head, p, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n").done);
  EXPECT_EQ(head.framing, Framing::Chunked);
  ASSERT_TRUE(parseAll(head, p, "HTTP/1.1 200 OK\r\n\r\n").done);
  EXPECT_EQ(head.framing, Framing::UntilEof);
  EXPECT_FALSE(head.keep_alive);  // a close-delimited body ends the connection
  ASSERT_TRUE(parseAll(head, p, "HTTP/1.1 204 No Content\r\n\r\n").done);
  EXPECT_EQ(head.framing, Framing::None);
  ASSERT_TRUE(parseAll(head, p, "HTTP/1.0 200 OK\r\nContent-Length: 1\r\n\r\n").done);
  EXPECT_FALSE(head.keep_alive);
}

TEST(ResponseParser, HeadResponseKeepsItsDeclaredLengthButHasNoBody) {
  ResponseHead head;
  std::optional<ResponseParser> p;
  ASSERT_TRUE(parseAll(head, p, "HTTP/1.1 200 OK\r\nContent-Length: 99\r\n\r\n", true).done);
  EXPECT_EQ(head.framing, Framing::None);
  EXPECT_TRUE(head.has_content_length);
  EXPECT_EQ(head.content_length, 99U);
}

TEST(ResponseParser, InterimResponseIsAHeadOfItsOwn) {
  ResponseHead head;
  std::optional<ResponseParser> p;
  const auto r =
      parseAll(head, p, "HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 200 OK\r\n");
  ASSERT_TRUE(r.done);
  EXPECT_EQ(head.status, 103);
  EXPECT_EQ(r.consumed, 40U);  // 26 + 12 + 2: the next head is left alone
}

TEST(ResponseParser, ParsesAHeadPresentedAgainAsItGrows) {
  const std::string full = "HTTP/1.1 200 OK\r\nX-A: 1\r\nContent-Length: 0\r\n\r\n";
  ResponseHead head;
  ResponseParser parser(head, 64 * 1024, 100, false);
  std::string buffer;
  ResponseParser::Result r;
  for (char c : full) {
    buffer.push_back(c);
    r = parser.parseHead(buffer);
    ASSERT_FALSE(r.bad) << buffer;
    if (r.done) break;
  }
  ASSERT_TRUE(r.done);
  EXPECT_EQ(head.status, 200);
  EXPECT_EQ(head.fields.front().value, "1");
}

TEST(ResponseParser, ProtocolViolationsAreBad) {
  for (const char* bytes : {
           "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n",
           "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n",
           "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n",
           "HTTP/1.1 200 OK\r\nX: a\r\n b\r\n\r\n",
           "HTTP/2.0 200 OK\r\n\r\n",
           "HTTP/1.1 2000 OK\r\n\r\n",
           "HTTP/1.1 101 Switching Protocols\r\n\r\n",
           "garbage garbage\r\n\r\n",
       }) {
    ResponseHead head;
    std::optional<ResponseParser> p;
    EXPECT_TRUE(parseAll(head, p, bytes).bad) << bytes;
  }
}

TEST(ResponseParser, HeadOverTheLimitIsBad) {
  ResponseHead head;
  ResponseParser parser(head, 64, 100, false);
  EXPECT_TRUE(parser.parseHead("HTTP/1.1 200 OK\r\nX: " + std::string(100, 'a')).bad);
}

TEST(ResponseParser, ChunkedBodyDecodesForAnHttp10Client) {
  ResponseHead head;
  std::optional<ResponseParser> p;
  const std::string bytes =
      "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n";
  const auto r = parseAll(head, p, bytes);
  ASSERT_TRUE(r.done);
  std::string out;
  p->setBodyOutput(&out, /*rechunk=*/false);
  const auto b = p->parseChunked(std::string_view(bytes).substr(r.consumed));
  EXPECT_TRUE(b.done);
  EXPECT_EQ(out, "abc");
}

}  // namespace
}  // namespace sluice::gateway::http
