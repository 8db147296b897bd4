#include "gateway/admin/admin_token.h"

#include <algorithm>
#include <fstream>
#include <sstream>
#include <sys/stat.h>

namespace sluice::gateway::admin {

namespace {

bool token68(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
         c == '.' || c == '_' || c == '~' || c == '+' || c == '/';
}

bool space(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

}  // namespace

TokenFile readTokenFile(const std::string& path) {
  TokenFile out;
  std::ifstream in(path, std::ios::binary);
  std::ostringstream bytes;
  bytes << in.rdbuf();
  if (!in) {
    out.error = path + ": cannot read the admin token file";
    return out;
  }
  std::string text = bytes.str();
  std::size_t begin = 0;
  std::size_t end = text.size();
  while (begin < end && space(text[begin])) ++begin;
  while (end > begin && space(text[end - 1])) --end;
  const std::string_view token(text.data() + begin, end - begin);
  std::size_t body = token.size();
  while (body > 0 && token[body - 1] == '=') --body;  // token68 may end in '=' padding
  if (token.empty()) {
    out.error = path + ": the admin token file is empty";
  } else if (body == 0 ||
             !std::all_of(token.begin(), token.begin() + static_cast<long>(body), token68)) {
    out.error = path +
                ": the admin token must be one word of letters, digits and -._~+/ (base64 or "
                "hex, say)";
  } else if (token.size() < kMinTokenLength) {
    out.error = path + ": the admin token has " + std::to_string(token.size()) +
                " characters; use at least " + std::to_string(kMinTokenLength) +
                " (openssl rand -hex 32)";
  } else {
    out.token = std::string(token);
  }
  struct stat st {};
  if (out.error.empty() && ::stat(path.c_str(), &st) == 0 && (st.st_mode & S_IROTH) != 0) {
    out.warning = path + ": the admin token file is readable by every user (chmod 600 it)";
  }
  return out;
}

bool bearerMatches(std::string_view authorization, std::string_view token) noexcept {
  constexpr std::string_view kScheme = "bearer ";
  if (token.empty() || authorization.size() < kScheme.size()) return false;
  for (std::size_t i = 0; i < kScheme.size(); ++i) {
    const char c = authorization[i];
    if ((c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c) != kScheme[i]) return false;
  }
  std::string_view given = authorization.substr(kScheme.size());
  while (!given.empty() && given.front() == ' ') given.remove_prefix(1);
  while (!given.empty() && given.back() == ' ') given.remove_suffix(1);
  // Every byte of the configured token is compared whatever the given one holds, so the time
  // says nothing about how long a prefix matched.
  unsigned diff = given.size() == token.size() ? 0U : 1U;
  for (std::size_t i = 0; i < token.size(); ++i) {
    const char g = i < given.size() ? given[i] : '\0';
    diff |= static_cast<unsigned char>(g) ^ static_cast<unsigned char>(token[i]);
  }
  return diff == 0;
}

}  // namespace sluice::gateway::admin
