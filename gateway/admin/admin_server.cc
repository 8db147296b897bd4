#include "gateway/admin/admin_server.h"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "gateway/admin/admin_token.h"
#include "gateway/admin/web_assets.h"
#include "gateway/net/socket_io.h"

namespace sluice::gateway::admin {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = beast::http;
using tcp = asio::ip::tcp;
constexpr std::uint32_t kMaxBytes = 16U * 1024U;  // of a request's head, and of its body

Response jsonResponse(int status, const nlohmann::json& body) {
  return {status,
          "application/json",
          body.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) + "\n",
          {}};
}

Response jsonError(int status, std::string message) {
  return jsonResponse(status, nlohmann::json{{"error", std::move(message)}});
}

AdminServer::AdminServer(asio::io_context& io, tcp::endpoint endpoint)
    : io_(io), endpoint_(std::move(endpoint)), acceptor_(io) {}

void AdminServer::handle(std::string path, std::string description, Handler handler) {
  routes_[std::move(path)] = Route{std::move(description), std::move(handler)};
}

std::optional<std::string> AdminServer::listen() {
  boost::system::error_code ec;
  const auto fail = [&](const char* what) {
    return std::string("admin listener on ") + endpoint_.address().to_string() + ":" +
           std::to_string(endpoint_.port()) + ": " + what + ": " + ec.message();
  };
  acceptor_.open(endpoint_.protocol(), ec);
  if (ec) return fail("open");
  acceptor_.set_option(tcp::acceptor::reuse_address(true), ec);
  if (ec) return fail("SO_REUSEADDR");
  acceptor_.bind(endpoint_, ec);
  if (ec) return fail("bind");
  acceptor_.listen(128, ec);
  if (ec) return fail("listen");
  return std::nullopt;
}

void AdminServer::start() { asio::co_spawn(io_, acceptLoop(), asio::detached); }

void AdminServer::stop() {
  boost::system::error_code ignored;
  acceptor_.close(ignored);
}

tcp::endpoint AdminServer::localEndpoint() const {
  boost::system::error_code ec;
  return acceptor_.local_endpoint(ec);
}

asio::awaitable<void> AdminServer::acceptLoop() {
  for (;;) {
    auto [ec, socket] = co_await acceptor_.async_accept(net::kNoThrow);
    if (ec) {
      if (!acceptor_.is_open()) co_return;
      continue;
    }
    asio::co_spawn(io_, serve(std::move(socket)), asio::detached);
  }
}

void AdminServer::handleApi(std::string prefix, std::string description, ApiHandler handler) {
  apis_.emplace(std::move(prefix), std::make_pair(std::move(description), std::move(handler)));
}

Response AdminServer::dispatch(std::string_view method, std::string_view target,
                               std::string_view body) const {
  const auto q = target.find('?');
  const std::string_view path = target.substr(0, q);
  for (const auto& [prefix, api] : apis_) {
    if (path == prefix || (path.starts_with(prefix) && path[prefix.size()] == '/')) {
      return api.second({method, path,
                         q == std::string_view::npos ? std::string_view() : target.substr(q + 1),
                         body});
    }
  }
  if (path == "/") return indexPage();
  for (const auto& asset : webAssets()) {
    if (asset.path != path) continue;
    Response r{200, std::string(asset.content_type), std::string(asset.body), {}};
    // The path names the bytes (web_assets.h): a browser never needs to ask again.
    r.headers.emplace_back("Cache-Control", "public, max-age=31536000, immutable");
    return r;
  }
  const auto it = routes_.find(path);
  if (it == routes_.end()) return {404, "text/plain; charset=utf-8", "not found\n"};
  if (method != "GET" && method != "HEAD") {
    return {405, "text/plain; charset=utf-8", "method not allowed\n"};
  }
  return it->second.handler();
}

namespace {

void appendEscaped(std::string& out, std::string_view text) {
  for (const char c : text) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&#39;";
        break;
      default:
        out += c;
    }
  }
}

// The page's policy: its own script and style sheet and nothing else - no inline script, no
// other origin - so that even a name that got past the page's escaping could not run.
constexpr std::string_view kDashboardPolicy =
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

}  // namespace

Response AdminServer::indexPage() const {
  // The list of endpoints is rendered here, from the registered descriptions; the live part of
  // the page is drawn by its script from GET /stats.
  std::string list = "<ul>";
  const auto item = [&list](std::string_view p, std::string_view description) {
    list += "<li><a href=\"";
    appendEscaped(list, p.substr(1));  // relative, as the page's own assets (web_assets.h)
    list += "\"><code>";
    appendEscaped(list, p);
    list += "</code></a> ";
    appendEscaped(list, description);
    list += "</li>";
  };
  for (const auto& [p, route] : routes_) item(p, route.description);
  for (const auto& [p, api] : apis_) item(p, api.first);
  list += "</ul>";
  Response r{200, "text/html; charset=utf-8", std::string(dashboardPage()), {}};
  if (const auto at = r.body.find(kEndpointsMarker); at != std::string::npos) {
    r.body.replace(at, kEndpointsMarker.size(), list);
  }
  r.headers.emplace_back("Content-Security-Policy", std::string(kDashboardPolicy));
  r.headers.emplace_back("X-Frame-Options", "DENY");
  return r;
}

std::optional<Response> AdminServer::refuseUnauthorized(std::string_view method,
                                                        std::string_view authorization,
                                                        const tcp::socket& peer) {
  if (token_.empty() || method == "GET" || method == "HEAD") return std::nullopt;
  if (bearerMatches(authorization, token_)) return std::nullopt;
  std::uint64_t held_back = 0;
  if (refusals_log_.allow("refused", std::chrono::steady_clock::now(), held_back)) {
    boost::system::error_code ec;
    const auto from = peer.remote_endpoint(ec);
    spdlog::warn("admin: refused a {} from {}: {} bearer token{}", method,
                 ec ? std::string("?") : from.address().to_string(),
                 authorization.empty() ? "no" : "a wrong",
                 held_back > 0 ? fmt::format(" ({} more since)", held_back) : std::string());
  }
  // RFC 6750 section 3: a request with no credentials gets the challenge alone; one with a
  // wrong token is told so.
  Response r{401,
             "text/plain; charset=utf-8",
             authorization.empty() ? "this admin request needs the bearer token\n"
                                   : "wrong bearer token\n",
             {}};
  r.headers.emplace_back("WWW-Authenticate",
                         authorization.empty()
                             ? R"(Bearer realm="sluice admin")"
                             : R"(Bearer realm="sluice admin", error="invalid_token")");
  return r;
}

asio::awaitable<void> AdminServer::serve(tcp::socket socket) {
  beast::tcp_stream stream(std::move(socket));
  beast::flat_buffer buffer;
  for (;;) {
    bhttp::request_parser<bhttp::string_body> parser;
    parser.header_limit(kMaxBytes);
    parser.body_limit(kMaxBytes);
    stream.expires_after(std::chrono::seconds(10));
    auto [ec, n] = co_await bhttp::async_read(stream, buffer, parser, net::kNoThrow);
    if (ec) {
      if (ec != bhttp::error::end_of_stream && ec != asio::error::operation_aborted &&
          ec != beast::error::timeout && ec != asio::error::connection_reset) {
        bhttp::response<bhttp::string_body> bad{bhttp::status::bad_request, 11};
        bad.set(bhttp::field::content_type, "text/plain; charset=utf-8");
        bad.body() = "bad request\n";
        bad.keep_alive(false);
        bad.prepare_payload();
        co_await bhttp::async_write(stream, bad, net::kNoThrow);
      }
      break;
    }
    const auto& req = parser.get();
    const std::string_view method(req.method_string());
    auto refused = refuseUnauthorized(method, std::string_view(req[bhttp::field::authorization]),
                                      stream.socket());
    const Response r =
        refused ? std::move(*refused)
                : dispatch(method, std::string_view(req.target()), std::string_view(req.body()));
    bhttp::response<bhttp::string_body> res{static_cast<bhttp::status>(r.status), req.version()};
    res.set(bhttp::field::content_type, r.content_type);
    res.set(bhttp::field::cache_control, "no-store");
    res.set("X-Content-Type-Options", "nosniff");
    for (const auto& [name, value] : r.headers) res.set(name, value);
    res.body() = req.method() == bhttp::verb::head ? std::string() : r.body;
    res.keep_alive(req.keep_alive());
    res.prepare_payload();
    if (req.method() == bhttp::verb::head) res.content_length(r.body.size());
    auto [wec, wn] = co_await bhttp::async_write(stream, res, net::kNoThrow);
    if (wec || !req.keep_alive()) break;
  }
  boost::system::error_code ignored;
  stream.socket().shutdown(tcp::socket::shutdown_send, ignored);
}

}  // namespace sluice::gateway::admin
