#include "net/http.h"

#include <fcntl.h>
#include <openssl/x509_vfy.h>
#include <unistd.h>

#include "core/jose.h"
#include "store/file.h"

namespace zf::net {
namespace {

Result<Json> decode_response(const httplib::Result& res) {
  if (!res) return fail(Errc::unavailable, "request failed: " + httplib::to_string(res.error()));
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

HttpsServer::HttpsServer(const Certificate& cert, const PrivateKey& key)
    : server_(std::make_unique<httplib::SSLServer>(cert.get(), key.get())) {}

void HttpsServer::install_defaults() {
  server_->set_payload_max_length(kMaxBodyBytes);
  server_->set_read_timeout(10, 0);
  server_->set_write_timeout(10, 0);
  server_->set_exception_handler([](const httplib::Request&, httplib::Response& res, std::exception_ptr) {
    write_problem(res, Error{Errc::internal, {}, "unexpected server error"});
  });
  // Routes answer with problem+json themselves; this covers 404s and httplib's own 413.
  server_->set_error_handler([](const httplib::Request&, httplib::Response& res) {
    if (res.get_header_value("Content-Type").find("problem+json") != std::string::npos) return;
    Errc code = res.status == 413 ? Errc::too_large
                : res.status == 404 ? Errc::not_found
                                    : Errc::bad_request;
    write_problem(res, Error{code, {}, "HTTP " + std::to_string(res.status)});
  });
}

Result<int> HttpsServer::bind(const std::string& host, int port) {
  if (!server_->is_valid()) return fail(Errc::internal, "TLS server could not be created");
  int bound = port == 0 ? server_->bind_to_any_port(host) : (server_->bind_to_port(host, port) ? port : -1);
  if (bound <= 0) return fail(Errc::io_error, "cannot bind " + host + ":" + std::to_string(port));
  return bound;
}

void HttpsServer::run() { server_->listen_after_bind(); }

Status write_port_file(const std::string& path, int port) {
  return store::write_file_atomic(path, std::to_string(port) + "\n", 0600);
}

Result<HttpsClient> HttpsClient::connect(const std::string& base_url, const Certificate& root) {
  if (base_url.rfind("https://", 0) != 0) return fail(Errc::bad_request, "URL must be https://", "url");
  HttpsClient c;
  c.client_ = std::make_shared<httplib::Client>(base_url);
  X509_STORE* store = X509_STORE_new();
  X509_STORE_add_cert(store, root.get());
  c.client_->set_ca_cert_store(store);  // the client takes ownership
  c.client_->enable_server_certificate_verification(true);
  c.client_->set_connection_timeout(5, 0);
  c.client_->set_read_timeout(30, 0);
  return c;
}

Result<Json> HttpsClient::get_json(const std::string& path) {
  httplib::Headers h;
  if (!bearer_.empty()) h.emplace("Authorization", "Bearer " + bearer_);
  return decode_response(client_->Get(path, h));
}

Result<Json> HttpsClient::post_json(const std::string& path, const Json& body) {
  httplib::Headers h;
  if (!bearer_.empty()) h.emplace("Authorization", "Bearer " + bearer_);
  return decode_response(client_->Post(path, h, dump_json(body), "application/json"));
}

Result<std::string> HttpsClient::get_text(const std::string& path) {
  httplib::Headers h;
  if (!bearer_.empty()) h.emplace("Authorization", "Bearer " + bearer_);
  auto res = client_->Get(path, h);
  if (!res) return fail(Errc::unavailable, "request failed: " + httplib::to_string(res.error()));
  if (res->status >= 400) {
    auto j = decode_response(res);
    return std::unexpected(j ? Error{Errc::unavailable, {}, "HTTP error"} : j.error());
  }
  return res->body;
}

}  // namespace zf::net
