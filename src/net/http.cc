#include "net/http.h"

#include <fcntl.h>
#include <openssl/ssl.h>
#include <openssl/x509_vfy.h>
#include <openssl/x509v3.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <map>
#include <mutex>

#include "core/jose.h"
#include "store/file.h"

namespace zf::net {
namespace {

Result<Json> decode_response(const httplib::Result& res) {
  const std::string& ct = res->get_header_value("Content-Type");
  if (res->status >= 400) {
    if (ct.find("application/problem+json") != std::string::npos) {
      auto p = parse_json_strict(res->body);
      if (p && p->is_object()) {
        Error e;
        e.code = errc_from_name(p->value("code", "internal"));
        e.detail = p->value("detail", "");
        e.field = p->value("field", "");
        if (auto it = p->find("evidence"); it != p->end() && it->is_string() &&
                                           it->get_ref<const std::string&>().size() <= kMaxJoseBytes)
          e.evidence = it->get<std::string>();
        return std::unexpected(e);
      }
    }
    return fail(Errc::unavailable, "HTTP " + std::to_string(res->status));
  }
  return parse_json_strict(res->body, {4 * 1024 * 1024, 16});
}

// Why the handshake in this thread refused the server, if it did: the verify
// callback runs inside the request, in the requesting thread, and the request
// only reports "SSL connection failed".
thread_local std::string t_tls_refusal;

// One X509_STORE per root for the whole process, holding that root and nothing
// else: built once, shared by every client's SSL_CTX (each takes a reference),
// so no connection reads or parses the system CA bundle.
X509_STORE* store_for(const Certificate& root) {
  static std::mutex mu;
  static std::map<Bytes, X509_STORE*> stores;  // kept for the process: a handful of roots at most
  auto make = [&] {
    X509_STORE* store = X509_STORE_new();
    if (store && X509_STORE_add_cert(store, root.get()) != 1) {
      X509_STORE_free(store);
      store = nullptr;
    }
    return store;
  };
  Bytes der = root.der();
  std::lock_guard lock(mu);
  auto it = stores.find(der);
  if (it == stores.end()) {
    if (stores.size() >= 16) return make();  // unexpected variety: the caller's own, uncached
    X509_STORE* store = make();
    if (!store) return nullptr;
    it = stores.emplace(std::move(der), store).first;
  }
  X509_STORE_up_ref(it->second);
  return it->second;
}

// "https://host[:port][/...]" -> host ("[::1]" -> "::1"); empty if malformed.
std::string url_host(std::string_view url) {
  url.remove_prefix(std::string_view("https://").size());
  if (!url.empty() && url.front() == '[') {
    std::size_t end = url.find(']');
    return end == std::string_view::npos ? std::string() : std::string(url.substr(1, end - 1));
  }
  return std::string(url.substr(0, url.find_first_of(":/?#")));
}

}  // namespace

std::string ServerId::describe() const { return id.empty() ? "any " + kind : kind + " " + id; }

// What the verify callback reads; declared before the client so that the client
// (and its SSL_CTX, which points here) goes first.
struct HttpsClient::Connection {
  ServerId server;
  std::string base_url;
  httplib::Client client;
  Connection(ServerId s, const std::string& url) : server(std::move(s)), base_url(url), client(url) {}
};

namespace {

// Replaces OpenSSL's chain check for our clients: the chain to the one root
// (validity, serverAuth and the URL's host, all checked by X509_verify_cert with
// the SSL_CTX's parameters), then the tls-server role and the service name.
// Returning 0 under SSL_VERIFY_PEER aborts the handshake.
int verify_server(X509_STORE_CTX* store_ctx, void* arg) {
  const ServerId& want = *static_cast<const ServerId*>(arg);
  if (X509_verify_cert(store_ctx) != 1) {
    int err = X509_STORE_CTX_get_error(store_ctx);
    t_tls_refusal = std::string("server certificate refused (") + X509_verify_cert_error_string(err) +
                    ") while expecting " + want.describe();
    return 0;
  }
  X509* leaf = X509_STORE_CTX_get0_cert(store_ctx);
  X509_up_ref(leaf);
  Certificate cert(leaf);
  if (!cert.has_role(Role::tls_server)) {
    t_tls_refusal = "server certificate " + cert.serial_hex() + " lacks the tls-server role";
    X509_STORE_CTX_set_error(store_ctx, X509_V_ERR_APPLICATION_VERIFICATION);
    return 0;
  }
  std::string wanted = service_uri(want.kind, want.id);
  std::string found;
  for (const auto& uri : cert.san_uris()) {
    if (want.id.empty() ? uri.starts_with(wanted) : uri == wanted) return 1;
    if (uri.starts_with("urn:zhuanfu:")) found += (found.empty() ? "" : ", ") + uri;
  }
  t_tls_refusal = "expected " + want.describe() + " (" + wanted + "), the server's certificate names " +
                  (found.empty() ? std::string("no service") : found);
  X509_STORE_CTX_set_error(store_ctx, X509_V_ERR_APPLICATION_VERIFICATION);
  return 0;
}

}  // namespace

void write_problem(httplib::Response& res, const Error& err) {
  Json body{{"type", "urn:zhuanfu:error:" + std::string(errc_name(err.code))},
            {"title", std::string(errc_name(err.code))},
            {"status", http_status(err.code)},
            {"code", std::string(errc_name(err.code))},
            {"detail", err.detail}};
  if (!err.field.empty()) body["field"] = err.field;
  if (!err.evidence.empty()) body["evidence"] = err.evidence;
  res.status = http_status(err.code);
  res.set_content(dump_json(body), "application/problem+json");
}

void write_json(httplib::Response& res, const Json& body, int status) {
  res.status = status;
  res.set_content(dump_json(body), "application/json");
}

Result<Json> read_json_body(const httplib::Request& req) {
  auto j = parse_json_strict(req.body, {kMaxBodyBytes, 16});
  if (!j) return j;
  if (!j->is_object()) return fail(Errc::bad_request, "request body must be a JSON object");
  return j;
}

std::string bearer_token(const httplib::Request& req) {
  const std::string& h = req.get_header_value("Authorization");
  constexpr std::string_view kPrefix = "Bearer ";
  if (h.size() > kPrefix.size() && h.compare(0, kPrefix.size(), kPrefix) == 0) return h.substr(kPrefix.size());
  return {};
}

Routes& Routes::add(std::string method, std::string path, std::string pattern,
                    httplib::Server::Handler h) {
  routes_.push_back({std::move(method), std::move(path), std::move(pattern), std::move(h), {}});
  return *this;
}

bool is_json_media_type(std::string_view ct) {
  auto lower_trim = [](std::string_view v) {
    while (!v.empty() && (v.front() == ' ' || v.front() == '\t')) v.remove_prefix(1);
    while (!v.empty() && (v.back() == ' ' || v.back() == '\t')) v.remove_suffix(1);
    std::string out(v);
    for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return out;
  };
  auto semi = ct.find(';');
  if (lower_trim(ct.substr(0, semi)) != "application/json") return false;
  if (semi == std::string_view::npos) return true;
  return lower_trim(ct.substr(semi + 1)) == "charset=utf-8";
}

Status write_port_file(const std::string& path, int port) {
  return store::write_file_atomic(path, std::to_string(port) + "\n", 0600);
}

Result<HttpsClient> HttpsClient::connect(const std::string& base_url, const Certificate& root,
                                         ServerId server) {
  if (base_url.rfind("https://", 0) != 0) return fail(Errc::bad_request, "URL must be https://", "url");
  std::string host = url_host(base_url);
  if (host.empty()) return fail(Errc::bad_request, "URL has no host", "url");
  if (server.kind.empty()) return fail(Errc::internal, "no service kind to expect");
  HttpsClient c;
  c.conn_ = std::make_shared<Connection>(std::move(server), base_url);
  httplib::Client& client = c.conn_->client;
  SSL_CTX* ctx = client.ssl_context();
  if (!ctx) return fail(Errc::internal, "TLS client could not be created");
  // httplib's own check would add the default verify paths (the system's public
  // CAs) to whatever store it is given; ours runs instead, on the SSL_CTX.
  client.enable_server_certificate_verification(false);
  X509_STORE* store = store_for(root);
  if (!store) return fail(Errc::crypto_error, "cannot build the trust store");
  SSL_CTX_set_cert_store(ctx, store);  // takes our reference
  X509_VERIFY_PARAM* param = SSL_CTX_get0_param(ctx);
  X509_VERIFY_PARAM_set_hostflags(param, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
  bool host_set = X509_VERIFY_PARAM_set1_ip_asc(param, host.c_str()) == 1 ||
                  X509_VERIFY_PARAM_set1_host(param, host.c_str(), host.size()) == 1;
  if (!host_set) return fail(Errc::bad_request, "URL host is not usable: " + host, "url");
  SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, nullptr);
  SSL_CTX_set_cert_verify_callback(ctx, verify_server, &c.conn_->server);
  client.set_connection_timeout(5, 0);
  client.set_read_timeout(30, 0);
  // httplib writes a request's header and body separately: with Nagle's
  // algorithm the body of a request on a kept-alive connection waits for the
  // server's delayed ACK of the header (up to 40 ms on Linux).
  client.set_tcp_nodelay(true);
  return c;
}

void HttpsClient::set_keep_alive(bool on) { conn_->client.set_keep_alive(on); }

Error HttpsClient::request_failed(const httplib::Result& res) const {
  std::string refusal = std::exchange(t_tls_refusal, {});
  if (!refusal.empty()) return Error{Errc::cert_untrusted, "tls", refusal + " at " + conn_->base_url};
  return Error{Errc::unavailable, {}, "request failed: " + httplib::to_string(res.error())};
}

Result<Json> HttpsClient::get_json(const std::string& path) {
  httplib::Headers h;
  if (!bearer_.empty()) h.emplace("Authorization", "Bearer " + bearer_);
  t_tls_refusal.clear();
  auto res = conn_->client.Get(path, h);
  if (!res) return std::unexpected(request_failed(res));
  return decode_response(res);
}

Result<Json> HttpsClient::post_json(const std::string& path, const Json& body) {
  httplib::Headers h;
  if (!bearer_.empty()) h.emplace("Authorization", "Bearer " + bearer_);
  t_tls_refusal.clear();
  auto res = conn_->client.Post(path, h, dump_json(body), "application/json");
  if (!res) return std::unexpected(request_failed(res));
  return decode_response(res);
}

Result<std::string> HttpsClient::get_text(const std::string& path) {
  httplib::Headers h;
  if (!bearer_.empty()) h.emplace("Authorization", "Bearer " + bearer_);
  t_tls_refusal.clear();
  auto res = conn_->client.Get(path, h);
  if (!res) return std::unexpected(request_failed(res));
  if (res->status >= 400) {
    auto j = decode_response(res);
    return std::unexpected(j ? Error{Errc::unavailable, {}, "HTTP error"} : j.error());
  }
  return res->body;
}

}  // namespace zf::net
