// The services' HTTPS server (event-driven, on Boost.Asio and Boost.Beast;
// src/net/server.cc) and client (cpp-httplib): problem+json errors (RFC 9457),
// strict JSON bodies, port-0 binding, and clients that trust only the project
// root. Handlers see cpp-httplib's Request and Response types either way.
#pragma once

#include <httplib.h>

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/json.h"
#include "core/x509.h"

namespace zf::net {

// Largest request body any service accepts.
inline constexpr std::size_t kMaxBodyBytes = 64 * 1024;

// Writes `err` as application/problem+json with its mapped HTTP status.
void write_problem(httplib::Response& res, const Error& err);
// Writes a JSON body with status 200 (or `status`).
void write_json(httplib::Response& res, const Json& body, int status = 200);
// Parses the request body strictly as a JSON object.
Result<Json> read_json_body(const httplib::Request& req);
// The bearer token of the request, if any.
std::string bearer_token(const httplib::Request& req);

// What a handler with nothing to answer yet asks for (long polling). The
// server keeps the connection, without a thread, for up to `wait`; each
// HttpsServer::notify(topic) meanwhile runs `again` on a worker, which either
// writes the answer and returns true or returns false to wait on. When `wait`
// has passed, the answer the handler first wrote goes out as it is.
struct Wait {
  std::string topic;
  std::chrono::milliseconds wait{0};
  std::function<bool(httplib::Response&)> again;
};
// A handler that answers now (returns nullopt) or asks to wait for news.
using WaitingHandler = std::function<std::optional<Wait>(const httplib::Request&, httplib::Response&)>;

// One route of a service: the method, the path as its OpenAPI file spells it,
// the regular expression that matches it (the path itself when it has no
// parameters) and the handler (or the waiting handler).
struct Route {
  std::string method;   // "GET" or "POST"
  std::string path;     // e.g. "/v1/accounts/{account}"
  std::string pattern;  // e.g. R"(/v1/accounts/([A-Za-z0-9._:-]{1,128}))"
  httplib::Server::Handler handler;
  WaitingHandler waiting;  // set instead of `handler` for a route that may wait
};

// A service's route table: what its server registers, and what its tests hold
// against its OpenAPI file, from one list.
class Routes {
 public:
  Routes& get(std::string path, httplib::Server::Handler h) { return add("GET", path, path, std::move(h)); }
  Routes& post(std::string path, httplib::Server::Handler h) { return add("POST", path, path, std::move(h)); }
  // A path with parameters: `pattern` is the regular expression the server matches.
  Routes& get(std::string path, std::string pattern, httplib::Server::Handler h) {
    return add("GET", std::move(path), std::move(pattern), std::move(h));
  }
  Routes& post(std::string path, std::string pattern, httplib::Server::Handler h) {
    return add("POST", std::move(path), std::move(pattern), std::move(h));
  }
  // A POST route whose handler may wait for news (Wait).
  Routes& post_waiting(std::string path, WaitingHandler h) {
    routes_.push_back({"POST", path, path, {}, std::move(h)});
    return *this;
  }
  const std::vector<Route>& list() const { return routes_; }

 private:
  Routes& add(std::string method, std::string path, std::string pattern, httplib::Server::Handler h);
  std::vector<Route> routes_;
};

// True for "application/json", optionally with "; charset=utf-8" (any case).
bool is_json_media_type(std::string_view content_type);

// How long a connection may take over each step, and how many may be open.
// The deadlines are whole-step deadlines, not idle timeouts: a client that
// trickles one byte a second gets no more time than one that sends nothing.
struct ServerLimits {
  std::chrono::milliseconds handshake{5000};  // TCP accepted -> TLS handshake done
  std::chrono::milliseconds header{5000};     // ready for a request -> its header read (keep-alive idle included)
  std::chrono::milliseconds body{10000};      // header read -> body read
  std::chrono::milliseconds write{10000};     // answer ready -> written
  std::size_t max_header_bytes = 8 * 1024;
  std::size_t max_body_bytes = kMaxBodyBytes;
  std::size_t max_connections = 8192;  // also capped by the process's file limit
  std::size_t max_per_peer = 512;      // open connections from one IP address
  std::size_t max_queued = 1024;       // requests read and waiting for a worker
  std::size_t max_waiting = 4096;      // requests parked by a waiting handler (Wait)
  int workers = 8;                     // threads that run handlers
};

// An HTTPS server with a certificate from our CA, bound to loopback.
//
// Event-driven (Boost.Asio and Boost.Beast): one I/O thread carries every
// connection through its TLS handshake, request and answer, so an idle or slow
// connection costs a socket and a buffer, never a thread; handlers, which block
// on the database and on other services, run on `workers` threads and only once
// a whole request has arrived. When a peer (or the server) is at its bound, the
// connection of that peer (or any) that has waited longest for its handshake or
// its next request is closed to make room; a connection whose request is being
// handled or answered is never closed for room (one parked by a waiting
// handler is idle, and may be).
class HttpsServer {
 public:
  HttpsServer(const Certificate& cert, const PrivateKey& key, ServerLimits limits = {});
  ~HttpsServer();
  HttpsServer(const HttpsServer&) = delete;
  HttpsServer& operator=(const HttpsServer&) = delete;

  // Serves `routes`: a POST body that is not application/json is 415
  // unsupported_media_type before the handler runs; a known path asked with
  // another method is 405 method_not_allowed with Allow; anything else unknown
  // is 404; a handler that throws is 500. Every refusal is problem+json.
  void serve_routes(const Routes& routes);
  // Runs after every handler, on its worker thread, before the answer is
  // written (fault injection: hold an answer back after the commit).
  void set_after_handler(httplib::Server::Handler after);
  // Binds host:port (0 picks a free port) and returns the port.
  Result<int> bind(const std::string& host, int port);
  // Makes SIGINT and SIGTERM stop run() (for the service processes).
  void stop_on_signals();
  // Serves until stop() (blocking).
  void run();
  // Stops run() from any thread: no new connections, open ones closed,
  // handlers already running finish.
  void stop();
  bool is_running() const;
  // Connections open now.
  std::size_t open_connections() const;
  // From any thread: runs again every request waiting on `topic` (Wait),
  // including one whose handler read before this call and parks after it.
  void notify(const std::string& topic);
  // Requests parked by waiting handlers now.
  std::size_t waiting_requests() const;

 private:
  struct Impl;
  friend class Connection;
  std::unique_ptr<Impl> impl_;
};

// Writes "port\n" to `path` atomically so a parent can wait for it.
Status write_port_file(const std::string& path, int port);

// Whom a client means to reach: the service its TLS certificate must name
// (core/x509.h service_uri). An empty id accepts any service of that kind, for
// admin tools that were given only a URL; everything that knows the id passes it.
struct ServerId {
  std::string kind;  // "bank", "registry", "ca"
  std::string id;
  static ServerId bank(std::string id) { return {"bank", std::move(id)}; }
  static ServerId registry(std::string id) { return {"registry", std::move(id)}; }
  static ServerId ca(std::string id) { return {"ca", std::move(id)}; }
  // "bank bank-a", or "any bank" for an empty id (for messages).
  std::string describe() const;
};

// A JSON-over-HTTPS client that trusts exactly one root (no system CAs, no
// default verify paths) and accepts only a server whose certificate chains to
// it, carries the tls-server role, matches the URL's host and names `server`.
// Any other server is refused in the handshake, before a request byte is sent:
// cert_untrusted, field "tls", with a detail naming what was expected and found.
class HttpsClient {
 public:
  // base_url like "https://127.0.0.1:8443".
  static Result<HttpsClient> connect(const std::string& base_url, const Certificate& root,
                                     ServerId server);
  void set_bearer(std::string token) { bearer_ = std::move(token); }
  // Keeps the connection open between requests (the default opens one per request).
  void set_keep_alive(bool on);

  // GET/POST returning the JSON body; problem+json answers become their Error.
  Result<Json> get_json(const std::string& path);
  Result<Json> post_json(const std::string& path, const Json& body);
  // GET returning the raw body (e.g. PEM).
  Result<std::string> get_text(const std::string& path);

 private:
  struct Connection;
  HttpsClient() = default;
  // Turns a failed request into an Error, naming a refused server certificate.
  Error request_failed(const httplib::Result& res) const;
  std::shared_ptr<Connection> conn_;
  std::string bearer_;
};

}  // namespace zf::net
