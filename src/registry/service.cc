#include "registry/service.h"

#include <charconv>
#include <cstdio>
#include <filesystem>

#include "registry/api.h"
#include "service/serve.h"

namespace zf::registry {
namespace {


// A non-negative decimal query parameter, or `fallback` when absent.
Result<std::int64_t> int_param(const httplib::Request& req, const char* name,
                               std::int64_t fallback) {
  if (!req.has_param(name)) return fallback;
  std::string v = req.get_param_value(name);
  std::int64_t out = 0;
  auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), out);
  if (v.empty() || v.size() > 18 || ec != std::errc() || end != v.data() + v.size() || out < 0)
    return fail(Errc::bad_field, "must be a non-negative integer", name);
  return out;
}

}  // namespace

net::Routes routes(Registry* registry, CrlRefresher* crl) {
  net::Routes r;
  r.get("/v1/info", [registry](const httplib::Request&, httplib::Response& res) {
    Json chain = Json::array();
    for (const auto& c : registry->chain()) chain.push_back(c.pem());
    Json j{{"registry", registry->id()},
           {"certificate", registry->certificate().pem()},
           {"chain", chain},
           {"crl_valid", registry->has_valid_crl()}};
    if (auto c = registry->crl()) j["crl_next_update"] = c->next_update();
    net::write_json(res, j);
  });

  // The claim is its own credential: it is signed by a certified processor.
  r.post("/v1/claims", [registry](const httplib::Request& req, httplib::Response& res) {
    auto body = net::read_json_body(req);
    if (!body) return net::write_problem(res, body.error());
    if (auto s = only_fields(*body, {"claim"}); !s) return net::write_problem(res, s.error());
    auto jws = get_string(*body, "claim", kMaxJoseBytes);
    if (!jws) return net::write_problem(res, jws.error());
    auto answer = registry->claim(*jws);
    if (!answer) return net::write_problem(res, answer.error());
    net::write_json(res, Json{{"record", answer->record_jws}});
  });

  // Records are not public (docs/registry-api.md "Who may read a record"): the
  // admin, whoever presents the document, or a record.query by a party to it.
  r.post("/v1/records/query", [registry](const httplib::Request& req, httplib::Response& res) {
    auto body = net::read_json_body(req);
    if (!body) return net::write_problem(res, body.error());
    if (auto s = only_fields(*body, {"doc_id", "document", "request"}); !s) return net::write_problem(res, s.error());
    auto doc_id = get_string(*body, "doc_id", 128);
    if (!doc_id) return net::write_problem(res, doc_id.error());
    std::string document, request;
    for (auto [name, dest] : {std::pair{"document", &document}, std::pair{"request", &request}}) {
      if (!body->contains(name)) continue;
      auto v = get_string(*body, name, kMaxJoseBytes);
      if (!v) return net::write_problem(res, v.error());
      *dest = std::move(*v);
    }
    Result<std::string> record = fail(Errc::internal);
    if (document.empty() && request.empty()) {
      if (!service::require_admin(*registry, req, res)) return;
      record = registry->query(*doc_id);
    } else {
      record = registry->read_record(*doc_id, document, request);
    }
    if (!record) return net::write_problem(res, record.error());
    net::write_json(res, Json{{"record", *record}});
  });

  r.get("/v1/alerts", [registry](const httplib::Request& req, httplib::Response& res) {
    if (!service::require_admin(*registry, req, res)) return;
    auto after = int_param(req, "after", 0);
    if (!after) return net::write_problem(res, after.error());
    auto limit = int_param(req, "limit", 100);
    if (!limit) return net::write_problem(res, limit.error());
    if (*limit < 1 || *limit > 1000)
      return net::write_problem(res, Error{Errc::bad_field, "limit", "must be 1..1000"});
    auto alerts = registry->alerts(*after, static_cast<int>(*limit));
    if (!alerts) return net::write_problem(res, alerts.error());
    Json list = Json::array();
    for (const auto& a : *alerts) list.push_back(alert_to_json(a));
    net::write_json(res, Json{{"alerts", list}});
  });

  service::add_refresh_crl_route(r, registry, registry, crl);
  return r;
}

int serve(const ServeOptions& opts) {
  auto fail_with = [](const Error& e) {
    std::fprintf(stderr, "zf registry serve: %s\n", e.message().c_str());
    return 1;
  };
  auto registry = Registry::open(opts.dir);
  if (!registry) return fail_with(registry.error());
  auto config = read_config(opts.dir);
  if (!config) return fail_with(config.error());
  auto tls = service::load_tls(opts.dir);
  if (!tls) return fail_with(tls.error());

  namespace fs = std::filesystem;
  std::string ca_url = opts.ca_url.empty() ? config->ca_url : opts.ca_url;
  CrlRefresher refresher(**registry, "registry", "claims", ca_url,
                         (fs::path(opts.dir) / kCrlCache).string(),
                         std::chrono::seconds(std::max(1, opts.crl_refresh_s)));
  service::first_crl(refresher, **registry, "registry", ca_url, "claims");

  net::HttpsServer server(tls->cert, tls->key);
  server.serve_routes(routes(registry->get(), &refresher));
  return service::serve_until_signal(
      server, {"registry " + (*registry)->id(), opts.port, opts.port_file, &refresher});
}

}  // namespace zf::registry
