#include "gateway/http/response_parser.h"

namespace sluice::gateway::http {

namespace bhttp = boost::beast::http;

ResponseParser::ResponseParser(ResponseHead& head, std::size_t max_head_bytes,
                               std::size_t max_fields, bool head_request)
    : StrictParser<false>(max_fields), head_(head), max_head_bytes_(max_head_bytes) {
  head_.clear();
  header_limit(static_cast<std::uint32_t>(max_head_bytes));
  body_limit(boost::none);  // the proxy streams; it does not hold bodies
  skip(head_request);
}

ResponseParser::Result ResponseParser::parseHead(std::string_view data) {
  const std::size_t end = findHeadEnd(data);
  if (end == std::string_view::npos) return {0, false, data.size() > max_head_bytes_};
  if (end > max_head_bytes_) return {0, false, true};
  error_code ec;
  const std::size_t n = feed(data.substr(0, end), ec);
  if (ec == bhttp::error::need_more) return {0, false, false};
  if (ec) return {0, false, true};
  return {n, is_header_done(), false};
}

ResponseParser::Result ResponseParser::parseChunked(std::string_view data) {
  error_code ec;
  const std::size_t n = feedBody(data, ec);
  if (ec == bhttp::error::need_more) return {n, false, false};
  if (ec) return {n, false, true};
  return {n, is_done(), false};
}

void ResponseParser::on_response_impl(int status, boost::beast::string_view reason, int version,
                                      error_code& ec) {
  head_.status = status;
  head_.reason = reason;
  head_.version = version;
  // sluice strips Upgrade from requests, so a 101 can only be an upstream bug.
  if (status == 101 || status < 100 || status > 599) ec = bhttp::error::bad_status;
}

void ResponseParser::on_field_impl(Field id, boost::beast::string_view name,
                                   boost::beast::string_view value, error_code& ec) {
  if (is_header_done()) return;  // trailer field: dropped
  if (!checkField(id, name, value, head_, ec)) return;
  head_.fields.push_back({id, name, value});
}

void ResponseParser::on_header_impl(error_code& /*ec*/) {
  if (skip() || head_.status < 200 || head_.status == 204 || head_.status == 304) {
    head_.framing = Framing::None;
    // HEAD and 304 responses describe a representation they do not carry: keep its length.
    if (const auto len = content_length()) {
      head_.content_length = *len;
      head_.has_content_length = true;
    }
  } else if (chunked()) {
    head_.framing = Framing::Chunked;
  } else if (const auto len = content_length()) {
    head_.framing = Framing::Length;
    head_.content_length = *len;
  } else {
    head_.framing = Framing::UntilEof;
  }
  head_.keep_alive = keep_alive() && head_.framing != Framing::UntilEof;
}

}  // namespace sluice::gateway::http
