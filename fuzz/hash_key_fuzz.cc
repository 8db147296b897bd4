// Hash-key extraction (gateway/proxy/hash_key.h) for consistent hashing on hostile heads:
// cookie and query values must be views into what they were read from, and the same request
// must always hash the same (or a request would hop between hosts).
#include <string>
#include <vector>

#include "fuzz/fuzz_target.h"
#include "fuzz/input.h"
#include "fuzz/request_head.h"
#include "gateway/proxy/hash_key.h"

namespace {

using sluice::gateway::config::HashKeyPart;

bool within(std::string_view part, std::string_view whole) {
  return part.data() >= whole.data() && part.data() + part.size() <= whole.data() + whole.size();
}

}  // namespace

SLUICE_FUZZ_TARGET(hash_key) {
  namespace proxy = sluice::gateway::proxy;
  sluice::fuzz::Input in(input);
  const std::string_view name = in.until('\n');  // a cookie / query / header name
  const std::string_view request = in.rest();

  // The extractors alone, on raw text: a cookie field and a request target.
  if (const auto v = proxy::cookieValue(request, name)) SLUICE_FUZZ_CHECK(within(*v, request));
  if (const auto v = proxy::queryValue(request, name)) SLUICE_FUZZ_CHECK(within(*v, request));

  std::string buffer;
  sluice::gateway::http::RequestHead head;
  if (!sluice::fuzz::parseRequestHead(request, buffer, head)) return;
  std::string lower(name);
  for (char& c : lower) c = static_cast<char>(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
  const std::vector<HashKeyPart> key = {{HashKeyPart::Kind::Header, lower},
                                        {HashKeyPart::Kind::Cookie, std::string(name)},
                                        {HashKeyPart::Kind::Query, std::string(name)},
                                        {HashKeyPart::Kind::Path, ""},
                                        {HashKeyPart::Kind::ClientIp, ""}};
  for (std::size_t n = 1; n <= key.size(); ++n) {
    const std::vector<HashKeyPart> prefix(key.begin(), key.begin() + static_cast<long>(n));
    const auto a = proxy::requestHash(prefix, head, "192.0.2.7");
    SLUICE_FUZZ_CHECK(a == proxy::requestHash(prefix, head, "192.0.2.7"));
  }
  // The path and the client address are always present, so a key naming them always hashes.
  SLUICE_FUZZ_CHECK(proxy::requestHash(key, head, "192.0.2.7").has_value());
}
