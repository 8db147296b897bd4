// Whether a request satisfies one route's match (config::RouteMatch), compiled once per config
// generation. Every condition the match sets must hold:
//
//   host        ignores case and the port; "*.example.com" matches any host ending in
//               ".example.com" (not "example.com" itself)
//   path        exact; path_prefix: a plain prefix; path_regex: RE2 matching the whole path.
//               Case-sensitive, against the path as received, without the query
//   methods     one of them, case-sensitive
//   headers     each condition on a field name (case-insensitive). exact / prefix / regex hold
//               when any field of that name has a value satisfying it (each field line as a
//               whole; regex matches the whole value); present holds when the field exists
//   query       the same, on the target's query parameters: split on '&', each "name=value" or
//               "name", names and values %-decoded with '+' read as a space. A parameter whose
//               value has a bad %-escape fails every condition on its name, inverted or not
//   cookies     the same, on "name=value" pairs of the Cookie field(s); a value in double quotes
//               is compared without them
//
// `invert` negates one condition. Regular expressions are RE2's: linear in the input, so a
// request cannot make matching slow, whatever the pattern; they see bytes and `.` matches any of
// them (config/route_regex.h), so no byte makes a regex miss where the same text would match.
// Matching allocates nothing once its per-thread buffers have grown.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "gateway/config/config.h"
#include "gateway/http/head.h"

namespace re2 {
class RE2;
}

namespace sluice::gateway::routing {

class RequestMatcher {
 public:
  // Patterns must be valid (the loader checks them); an invalid one throws
  // std::invalid_argument.
  explicit RequestMatcher(const config::RouteMatch& match);
  ~RequestMatcher();
  RequestMatcher(RequestMatcher&&) noexcept;
  RequestMatcher& operator=(RequestMatcher&&) noexcept;
  RequestMatcher(const RequestMatcher&) = delete;
  RequestMatcher& operator=(const RequestMatcher&) = delete;

  // One name=value pair of the query (%-decoded) or of the Cookie fields.
  struct Pair {
    std::string_view name;
    std::string_view value;
    bool bad_value = false;  // query: the value has a bad %-escape
  };

  // What routes look at, derived once per request rather than once per route: the lowercase
  // host and the path at once, the query parameters and cookies on the first condition that
  // needs them. One at a time per thread: they live in per-thread buffers (no allocation once
  // grown) that the next Facts reuses.
  class Facts {
   public:
    explicit Facts(const http::RequestHead& head);
    Facts(const Facts&) = delete;
    Facts& operator=(const Facts&) = delete;
    ~Facts() = default;

    [[nodiscard]] const http::RequestHead& head() const noexcept { return head_; }
    [[nodiscard]] std::string_view host() const noexcept { return host_; }  // no port
    [[nodiscard]] std::string_view path() const noexcept { return path_; }  // no query
    [[nodiscard]] const std::vector<Pair>& query() const;
    [[nodiscard]] const std::vector<Pair>& cookies() const;
    // The values of the fields named `lowercase_name`, in order. The last name asked is
    // remembered: a table whose routes test the same header scans the fields once.
    [[nodiscard]] const std::vector<std::string_view>& header(
        std::string_view lowercase_name) const;

    struct Buffers;  // per thread (request_matcher.cc)

   private:
    const http::RequestHead& head_;
    Buffers& b_;
    std::string_view host_;
    std::string_view path_;
    mutable bool query_read_ = false;
    mutable bool cookies_read_ = false;
    mutable bool header_read_ = false;
    mutable std::string_view header_name_;  // whose values the buffer holds (a config string)
  };

  [[nodiscard]] bool matches(const Facts& facts) const;

 private:
  struct Value {
    config::ValueMatch spec;
    std::unique_ptr<re2::RE2> regex;  // Kind::Regex
    // Whether `v` satisfies the condition before `invert` is applied.
    [[nodiscard]] bool test(std::string_view v) const;
  };
  enum class PathKind : std::uint8_t { Any, Exact, Prefix, Regex };

  [[nodiscard]] bool hostMatches(std::string_view lowered) const;
  [[nodiscard]] bool pathMatches(std::string_view path) const;
  [[nodiscard]] static bool headerHolds(const Value& c, const Facts& facts);
  [[nodiscard]] static bool queryHolds(const Value& c, const Facts& facts);
  [[nodiscard]] static bool cookieHolds(const Value& c, const Facts& facts);

  std::string host_;       // lowercase; "" = any
  bool wildcard_ = false;  // host_ holds the ".example.com" suffix
  PathKind path_kind_ = PathKind::Any;
  std::string path_;
  std::unique_ptr<re2::RE2> path_regex_;
  std::vector<std::string> methods_;
  std::vector<Value> headers_;
  std::vector<Value> query_;
  std::vector<Value> cookies_;
};

// "Example.COM:8080" -> compares as "example.com"; "[::1]:80" -> "[::1]".
[[nodiscard]] std::string_view hostWithoutPort(std::string_view host) noexcept;

// %XX-decodes `in` into `out`, reading '+' as a space; false on a bad escape.
[[nodiscard]] bool decodeQueryComponent(std::string_view in, std::string& out);

}  // namespace sluice::gateway::routing
