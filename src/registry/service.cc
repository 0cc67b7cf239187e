#include "registry/service.h"

#include <atomic>
#include <charconv>
#include <csignal>
#include <cstdio>
#include <filesystem>

#include "ca/client.h"
#include "registry/api.h"

namespace zf::registry {
namespace {

std::atomic<httplib::Server*> g_server{nullptr};

void on_signal(int) {
  if (auto* s = g_server.load()) s->stop();
}

bool require_admin(Registry& registry, const httplib::Request& req, httplib::Response& res) {
  if (registry.authenticate_admin(net::bearer_token(req))) return true;
  net::write_problem(res, Error{Errc::unauthorized, {}, "admin token required"});
  return false;
}

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

CrlRefresher::CrlRefresher(Registry& registry, std::string ca_url, std::string cache_path,
                           std::chrono::seconds interval)
    : registry_(registry),
      ca_url_(std::move(ca_url)),
      cache_path_(std::move(cache_path)),
      interval_(interval) {}

CrlRefresher::~CrlRefresher() { stop(); }

Status CrlRefresher::refresh_now() {
  std::lock_guard fetch(fetch_mu_);
  auto client = ca::CaClient::connect(ca_url_, registry_.root());
  if (!client) return std::unexpected(client.error());
  auto crl = client->crl();
  if (!crl) return std::unexpected(crl.error());
  if (auto s = registry_.install_crl(*crl); !s) return s;
  if (!cache_path_.empty())
    if (auto s = write_text_file(cache_path_, crl->pem(), 0644); !s) return s;
  return {};
}

void CrlRefresher::start() {
  std::lock_guard lock(mu_);
  if (thread_.joinable()) return;
  stopping_ = false;
  thread_ = std::thread([this] { loop(); });
}

void CrlRefresher::stop() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void CrlRefresher::loop() {
  for (;;) {
    // Without a valid CRL the registry refuses claims, so it asks again soon.
    auto wait =
        registry_.has_valid_crl() ? interval_ : std::min(interval_, std::chrono::seconds(2));
    {
      std::unique_lock lock(mu_);
      if (cv_.wait_for(lock, wait, [this] { return stopping_; })) return;
    }
    if (auto s = refresh_now(); !s) {
      std::fprintf(stderr, "zf registry: CRL refresh failed (%s); %s\n",
                   s.error().message().c_str(),
                   registry_.has_valid_crl() ? "keeping the last CRL"
                                             : "refusing claims until a CRL arrives");
      std::fflush(stderr);
    }
  }
}

void register_routes(httplib::Server& server, Registry& registry, CrlRefresher* crl) {
  server.Get("/v1/info", [&](const httplib::Request&, httplib::Response& res) {
    Json chain = Json::array();
    for (const auto& c : registry.chain()) chain.push_back(c.pem());
    Json j{{"registry", registry.id()},
           {"certificate", registry.certificate().pem()},
           {"chain", chain},
           {"crl_valid", registry.has_valid_crl()}};
    if (auto c = registry.crl()) j["crl_next_update"] = c->next_update();
    net::write_json(res, j);
  });

  // The claim is its own credential: it is signed by a certified processor.
  server.Post("/v1/claims", [&](const httplib::Request& req, httplib::Response& res) {
    auto body = net::read_json_body(req);
    if (!body) return net::write_problem(res, body.error());
    if (auto s = only_fields(*body, {"claim"}); !s) return net::write_problem(res, s.error());
    auto jws = get_string(*body, "claim", kMaxJoseBytes);
    if (!jws) return net::write_problem(res, jws.error());
    auto answer = registry.claim(*jws);
    if (!answer) return net::write_problem(res, answer.error());
    net::write_json(res, Json{{"record", answer->record_jws}});
  });

  server.Get(R"(/v1/records/(.*))", [&](const httplib::Request& req, httplib::Response& res) {
    auto record = registry.query(req.matches[1].str());
    if (!record) return net::write_problem(res, record.error());
    net::write_json(res, Json{{"record", *record}});
  });

  server.Get("/v1/alerts", [&](const httplib::Request& req, httplib::Response& res) {
    if (!require_admin(registry, req, res)) return;
    auto after = int_param(req, "after", 0);
    if (!after) return net::write_problem(res, after.error());
    auto limit = int_param(req, "limit", 100);
    if (!limit) return net::write_problem(res, limit.error());
    if (*limit < 1 || *limit > 1000)
      return net::write_problem(res, Error{Errc::bad_field, "limit", "must be 1..1000"});
    auto alerts = registry.alerts(*after, static_cast<int>(*limit));
    if (!alerts) return net::write_problem(res, alerts.error());
    Json list = Json::array();
    for (const auto& a : *alerts) list.push_back(alert_to_json(a));
    net::write_json(res, Json{{"alerts", list}});
  });

  server.Post("/v1/admin/refresh-crl",
              [&registry, crl](const httplib::Request& req, httplib::Response& res) {
                if (!require_admin(registry, req, res)) return;
                if (!crl)
                  return net::write_problem(res, Error{Errc::not_found, {}, "no CA configured"});
                if (auto s = crl->refresh_now(); !s) return net::write_problem(res, s.error());
                auto c = registry.crl();
                net::write_json(res, Json{{"crl_next_update", c ? c->next_update() : 0},
                                          {"crl_valid", registry.has_valid_crl()}});
              });
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
  namespace fs = std::filesystem;
  auto tls_pem = read_text_file((fs::path(opts.dir) / kTlsChain).string());
  if (!tls_pem) return fail_with(tls_pem.error());
  auto tls = Certificate::from_pem(*tls_pem);
  if (!tls) return fail_with(tls.error());
  auto tls_key = PrivateKey::load_pem_file((fs::path(opts.dir) / kTlsKey).string());
  if (!tls_key) return fail_with(tls_key.error());

  std::string ca_url = opts.ca_url.empty() ? config->ca_url : opts.ca_url;
  CrlRefresher refresher(**registry, ca_url, (fs::path(opts.dir) / kCrlCache).string(),
                         std::chrono::seconds(std::max(1, opts.crl_refresh_s)));
  if (auto s = refresher.refresh_now(); !s)
    std::fprintf(
        stderr, "zf registry serve: cannot fetch the CRL from %s (%s); %s\n", ca_url.c_str(),
        s.error().message().c_str(),
        (*registry)->has_valid_crl() ? "using the cached CRL" : "refusing claims until it can");

  net::HttpsServer server(*tls, *tls_key);
  server.install_defaults();
  register_routes(server.raw(), **registry, &refresher);
  auto bound = server.bind("127.0.0.1", opts.port);
  if (!bound) return fail_with(bound.error());
  if (!opts.port_file.empty())
    if (auto s = net::write_port_file(opts.port_file, *bound); !s) return fail_with(s.error());
  refresher.start();
  g_server = &server.raw();
  std::signal(SIGTERM, on_signal);
  std::signal(SIGINT, on_signal);
  std::printf("zf registry %s: serving https://127.0.0.1:%d\n", (*registry)->id().c_str(), *bound);
  std::fflush(stdout);
  server.run();
  g_server = nullptr;
  refresher.stop();
  return 0;
}

}  // namespace zf::registry
