#include "gateway/http/request_parser.h"

#include <algorithm>
#include <cstring>

namespace sluice::gateway::http {
namespace {

namespace bhttp = boost::beast::http;

RequestError fromFieldProblem(FieldProblem p) {
  switch (p) {
    case FieldProblem::None:
      return RequestError::Malformed;
    case FieldProblem::ObsFold:
      return RequestError::ObsFold;
    case FieldProblem::BadContentLength:
      return RequestError::BadContentLength;
    case FieldProblem::BadTransferEncoding:
      return RequestError::BadTransferEncoding;
    case FieldProblem::UnsupportedCoding:
      return RequestError::UnsupportedCoding;
    case FieldProblem::TooManyFields:
      return RequestError::TooManyHeaders;
  }
  return RequestError::Malformed;
}

RequestError fromBeast(const boost::beast::error_code& ec) {
  if (ec == bhttp::error::header_limit) return RequestError::HeaderTooLarge;
  if (ec == bhttp::error::body_limit) return RequestError::BodyTooLarge;
  if (ec == bhttp::error::bad_version) return RequestError::BadVersion;
  if (ec == bhttp::error::bad_content_length || ec == bhttp::error::multiple_content_length) {
    return RequestError::BadContentLength;
  }
  if (ec == bhttp::error::bad_transfer_encoding) return RequestError::BadTransferEncoding;
  if (ec == bhttp::error::bad_chunk || ec == bhttp::error::bad_chunk_extension) {
    return RequestError::BadChunk;
  }
  return RequestError::Malformed;
}

bool isAuthorityChar(char c) {
  // RFC 3986 reg-name / IP-literal / port characters (unreserved, sub-delims, ':', '[', ']', '%').
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) return true;
  return std::strchr("-._~!$&'()*+,;=:[]%", c) != nullptr && c != '\0';
}

struct EmptyLines {
  std::size_t bytes = 0;  // CRLF or LF lines before the request line
  bool bad = false;       // a CR not followed by LF
};

EmptyLines skipEmptyLines(std::string_view data) {
  EmptyLines r;
  while (r.bytes < data.size()) {
    if (data[r.bytes] == '\n') {
      ++r.bytes;
    } else if (data[r.bytes] == '\r') {
      if (r.bytes + 1 == data.size()) break;  // the LF may be in the next read
      if (data[r.bytes + 1] != '\n') {
        r.bad = true;
        break;
      }
      r.bytes += 2;
    } else {
      break;
    }
  }
  return r;
}

bool isTokenChar(char c) {
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) return true;
  return c != '\0' && std::strchr("!#$%&'*+-.^_`|~", c) != nullptr;
}

// method SP request-target SP HTTP-version (RFC 9112 3), without its CRLF. Only the shape is
// checked here, so that a complete but malformed line is refused at once; the parts themselves
// are judged again with the whole head (by Beast and on_request_impl).
RequestError checkRequestLine(std::string_view line) {
  std::size_t i = 0;
  while (i < line.size() && isTokenChar(line[i])) ++i;
  if (i == 0 || i == line.size() || line[i] != ' ') return RequestError::Malformed;
  const std::size_t target = ++i;
  while (i < line.size() && static_cast<unsigned char>(line[i]) > 0x20 && line[i] != 0x7f) ++i;
  if (i == target) return RequestError::Malformed;
  if (i == line.size()) return RequestError::BadVersion;  // no version: HTTP/0.9
  if (line[i] != ' ') return RequestError::Malformed;
  const std::string_view version = line.substr(i + 1);
  return version == "HTTP/1.1" || version == "HTTP/1.0" ? RequestError::None
                                                        : RequestError::BadVersion;
}

}  // namespace

bool isValidAuthority(std::string_view host) noexcept {
  return std::all_of(host.begin(), host.end(), isAuthorityChar);
}

RequestParser::RequestParser(RequestHead& head, const RequestLimits& limits)
    : StrictParser<true>(limits.max_fields), head_(head), limits_(limits) {
  head_.clear();
  header_limit(static_cast<std::uint32_t>(limits.max_head_bytes));
  // Body limits are per route, known only after routing: see setBodyLimit.
  body_limit(boost::none);
}

RequestParser::HeadResult RequestParser::parseHead(std::string_view data) {
  // RFC 9112 2.2: empty lines before the request line are ignored. They are bytes of the head
  // all the same: they count against its byte limit, and the header timeout runs over them.
  const EmptyLines blank = skipEmptyLines(data);
  if (blank.bad) return {0, false, RequestError::Malformed};
  if (blank.bytes > limits_.max_head_bytes) return {0, false, RequestError::HeaderTooLarge};
  const std::string_view head = data.substr(blank.bytes);
  if (head.empty()) return {0, false, RequestError::None};
  // Beast only parses once the whole head is buffered, so the request line gets its own limit
  // here: a long line must be refused with 414 before it can hit the 431 head limit.
  const auto eol = head.find('\n');
  if ((eol == std::string_view::npos && head.size() > limits_.max_request_line) ||
      (eol != std::string_view::npos && eol > limits_.max_request_line)) {
    return {0, false, RequestError::UriTooLong};
  }
  if (eol != std::string_view::npos) {
    if (data[blank.bytes + eol - 1] != '\r') {
      return {0, false,
              RequestError::Malformed};  // bare LF: never wait for a CRLF CRLF that won't come
    }
    // A complete request line is judged at once: one without a version (HTTP/0.9) or with bad
    // syntax would otherwise wait for a blank line that never comes, until the header timeout.
    if (!line_checked_) {
      line_checked_ = true;
      if (const RequestError e = checkRequestLine(head.substr(0, eol - 1));
          e != RequestError::None) {
        return {0, false, e};
      }
    }
  }
  const std::size_t end = findHeadEnd(head);
  if (end == std::string_view::npos) {
    // Until its request line is complete, a head is judged by the line's own limit (414, above):
    // judging it by the head's too would make the verdict depend on how the bytes were split
    // when empty lines precede a long line (found by fuzz/request_parser_fuzz.cc).
    if (eol != std::string_view::npos && data.size() > limits_.max_head_bytes) {
      return {0, false, RequestError::HeaderTooLarge};
    }
    return {0, false, RequestError::None};
  }
  if (blank.bytes + end > limits_.max_head_bytes) return {0, false, RequestError::HeaderTooLarge};
  error_code ec;
  const std::size_t n = feed(head.substr(0, end), ec);
  if (ec == bhttp::error::need_more) return {0, false, RequestError::None};
  if (ec) {
    if (error_ != RequestError::None) return {0, false, error_};
    if (fieldProblem() != FieldProblem::None) return {0, false, fromFieldProblem(fieldProblem())};
    return {0, false, fromBeast(ec)};
  }
  return {blank.bytes + n, is_header_done(), RequestError::None};
}

RequestParser::BodyResult RequestParser::parseChunked(std::string_view data) {
  error_code ec;
  const std::size_t n = feedBody(data, ec);
  if (ec == bhttp::error::need_more) return {n, false, RequestError::None};
  if (ec) {
    if (fieldProblem() != FieldProblem::None) return {n, false, RequestError::BadChunk};
    const RequestError e = fromBeast(ec);
    return {n, false, e == RequestError::BodyTooLarge ? e : RequestError::BadChunk};
  }
  return {n, is_done(), RequestError::None};
}

void RequestParser::on_request_impl(Verb method, boost::beast::string_view method_sv,
                                    boost::beast::string_view target_sv, int version,
                                    error_code& ec) {
  const std::string_view method_text = method_sv;
  const std::string_view target = target_sv;
  head_.method = method;
  head_.method_text = method_text;
  head_.version = version;
  if (method == Verb::connect) {
    reject(RequestError::MethodNotAllowed, ec);
    return;
  }
  if (target.empty() || target.find('#') != std::string_view::npos) {
    reject(RequestError::BadTarget, ec);
    return;
  }
  if (target.front() == '/') {
    head_.target = target;
    return;
  }
  if (target == "*") {
    if (method != Verb::options) reject(RequestError::BadTarget, ec);
    head_.target = target;
    return;
  }
  // absolute-form: scheme "://" authority [path-abempty] ["?" query]
  std::string_view rest = target;
  if (rest.size() > 7 && iequals(rest.substr(0, 7), "http://")) {
    rest.remove_prefix(7);
  } else if (rest.size() > 8 && iequals(rest.substr(0, 8), "https://")) {
    rest.remove_prefix(8);
  } else {
    reject(RequestError::BadTarget, ec);
    return;
  }
  const auto path_start = rest.find_first_of("/?");
  const std::string_view authority = rest.substr(0, path_start);
  if (authority.empty() || authority.find('@') != std::string_view::npos ||
      !isValidAuthority(authority)) {
    reject(RequestError::BadTarget, ec);
    return;
  }
  // RFC 9112 3.2.2: the authority of an absolute-form target replaces the Host header.
  head_.host = authority;
  absolute_form_ = true;
  head_.target =
      path_start == std::string_view::npos ? std::string_view("/") : rest.substr(path_start);
  if (head_.target.front() == '?') {
    // "http://h?q" has an empty path; the origin-form must still start with '/'.
    reject(RequestError::BadTarget, ec);
  }
}

void RequestParser::on_field_impl(Field id, boost::beast::string_view name_sv,
                                  boost::beast::string_view value_sv, error_code& ec) {
  const std::string_view name = name_sv;
  const std::string_view value = value_sv;
  if (is_header_done()) {  // a trailer field: checked by Beast, then dropped
    return;
  }
  if (!checkField(id, name, value, head_, ec)) return;
  switch (id) {
    case Field::host:
      if (++host_count_ > 1) {
        reject(RequestError::DuplicateHost, ec);
        return;
      }
      if (!isValidAuthority(value)) {
        reject(RequestError::BadHost, ec);
        return;
      }
      if (absolute_form_) {
        // The authority wins everywhere the field is read (routing, header matches, the
        // forwarded head): the client's value is not passed on.
        head_.fields.push_back({id, name, head_.host});
        return;
      }
      head_.host = value;
      break;
    case Field::expect:
      if (!iequals(value, "100-continue")) {
        reject(RequestError::ExpectationFailed, ec);
        return;
      }
      head_.expect_continue = true;
      break;
    default:
      break;
  }
  head_.fields.push_back({id, name, value});
}

void RequestParser::on_header_impl(error_code& ec) {
  // Absolute-form or not: RFC 9112 3.2 requires a 400 for any HTTP/1.1 request without Host.
  if (head_.version >= 11 && host_count_ == 0) {
    reject(RequestError::MissingHost, ec);
    return;
  }
  if (chunked()) {
    head_.framing = Framing::Chunked;
  } else if (const auto len = content_length()) {
    head_.framing = Framing::Length;
    head_.content_length = *len;
  } else {
    head_.framing = Framing::None;
  }
  head_.keep_alive = keep_alive();
  if (head_.framing == Framing::None ||
      (head_.framing == Framing::Length && head_.content_length == 0)) {
    head_.expect_continue = false;  // nothing to wait for
  }
}

}  // namespace sluice::gateway::http
