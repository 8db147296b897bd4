// The admin listener: a small HTTP/1.1 server on its own address and on the main thread, away
// from the data plane. It serves GET (and HEAD) on a fixed set of paths registered by the owner
// (/metrics, /ready, /live, /config, ...), the dashboard at `/` (its page lists those paths) and
// its versioned assets under /dashboard/, and any method under API prefixes
// (/registry/...). Requests are parsed by Beast with small limits (16 KiB of head, 16 KiB of
// body) and a 10 s deadline; anything else gets 404 or 405. With a token (setToken), every
// request but GET and HEAD must carry it as a bearer token, or gets 401: reads stay open to
// scrapers and browsers, changes need the token. Without one, bind it to a loopback address.
#pragma once

#include <functional>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <nlohmann/json_fwd.hpp>

#include "gateway/log/log_throttle.h"

namespace sluice::gateway::admin {

struct Response {
  int status = 200;
  std::string content_type = "text/plain; charset=utf-8";
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;  // more fields
};

// A JSON answer, indented; bytes that are not UTF-8 (a name from a request, say) are replaced
// rather than thrown on.
[[nodiscard]] Response jsonResponse(int status, const nlohmann::json& body);
// {"error": message}.
[[nodiscard]] Response jsonError(int status, std::string message);

// A request to an API prefix.
struct ApiRequest {
  std::string_view method;
  std::string_view path;  // without the query
  std::string_view query;
  std::string_view body;
};

class AdminServer {
 public:
  using Handler = std::function<Response()>;
  using ApiHandler = std::function<Response(const ApiRequest&)>;

  AdminServer(boost::asio::io_context& io, boost::asio::ip::tcp::endpoint endpoint);

  void handle(std::string path, std::string description, Handler handler);
  // Every method on `prefix` itself and on paths below it ("/registry" serves "/registry" and
  // "/registry/...").
  void handleApi(std::string prefix, std::string description, ApiHandler handler);
  // The bearer token mutating requests must carry (admin_token.h); empty: none asked.
  void setToken(std::string token) { token_ = std::move(token); }
  // Binds; an error message on failure.
  [[nodiscard]] std::optional<std::string> listen();
  void start();
  void stop();
  [[nodiscard]] boost::asio::ip::tcp::endpoint localEndpoint() const;

 private:
  struct Route {
    std::string description;
    Handler handler;
  };
  boost::asio::awaitable<void> acceptLoop();
  boost::asio::awaitable<void> serve(boost::asio::ip::tcp::socket socket);
  Response dispatch(std::string_view method, std::string_view target, std::string_view body) const;
  // The dashboard (web_assets.h), with the endpoints registered here listed at its foot.
  [[nodiscard]] Response indexPage() const;
  // 401 when a token is set, `method` changes something and `authorization` lacks the token.
  [[nodiscard]] std::optional<Response> refuseUnauthorized(
      std::string_view method, std::string_view authorization,
      const boost::asio::ip::tcp::socket& peer);

  boost::asio::io_context& io_;
  boost::asio::ip::tcp::endpoint endpoint_;
  boost::asio::ip::tcp::acceptor acceptor_;
  std::map<std::string, Route, std::less<>> routes_;
  std::map<std::string, std::pair<std::string, ApiHandler>, std::less<>> apis_;
  std::string token_;
  log::LogThrottle refusals_log_{3, std::chrono::seconds(10)};
};

}  // namespace sluice::gateway::admin
