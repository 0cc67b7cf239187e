#include "bank/service.h"

#include <condition_variable>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include "bank/api.h"
#include "ca/client.h"
#include "registry/client.h"
#include "service/serve.h"
#include "store/file.h"

namespace zf::bank {
namespace {


// Reads {"<field>": "<compact JWS>"} and nothing else.
Result<std::string> jws_field(const httplib::Request& req, std::string_view field) {
  auto body = net::read_json_body(req);
  if (!body) return std::unexpected(body.error());
  std::string name(field);
  if (auto s = only_fields(*body, {field}); !s) return std::unexpected(s.error());
  return get_string(*body, name, kMaxJoseBytes);
}

}  // namespace

net::Routes routes(Bank* bank, CrlRefresher* crl) {
  net::Routes r;
  r.get("/v1/info", [bank](const httplib::Request&, httplib::Response& res) {
    Json chain = Json::array();
    for (const auto& c : bank->chain()) chain.push_back(c.pem());
    Json j{{"bank", bank->id()},
           {"custody_certificate", bank->custody_certificate().pem()},
           {"chain", chain}};
    if (auto c = bank->crl()) j["crl_next_update"] = c->next_update();
    j["crl_valid"] = bank->has_valid_crl();
    net::write_json(res, j);
  });

  r.post("/v1/topup", [bank](const httplib::Request& req, httplib::Response& res) {
    auto jws = jws_field(req, "request");
    if (!jws) return net::write_problem(res, jws.error());
    auto receipt = bank->topup(*jws);
    if (!receipt) return net::write_problem(res, receipt.error());
    net::write_json(res, Json{{"receipt", *receipt}});
  });

  r.post("/v1/deposit", [bank](const httplib::Request& req, httplib::Response& res) {
    auto jws = jws_field(req, "note");
    if (!jws) return net::write_problem(res, jws.error());
    auto receipt = bank->deposit(*jws);
    if (!receipt) return net::write_problem(res, receipt.error());
    net::write_json(res, Json{{"receipt", *receipt}});
  });

  r.post("/v1/transfer", [bank](const httplib::Request& req, httplib::Response& res) {
    auto jws = jws_field(req, "order");
    if (!jws) return net::write_problem(res, jws.error());
    auto receipt = bank->transfer(*jws);
    if (!receipt) return net::write_problem(res, receipt.error());
    net::write_json(res, Json{{"receipt", *receipt}});
  });

  // Controlled transfer (docs/bank-api.md "Holds") and joint accounts ("Joint accounts").
  struct DocRoute {
    const char* path;
    const char* field;
    Result<std::string> (Bank::*op)(std::string_view);
  };
  for (DocRoute h : {DocRoute{"/v1/hold", "request", &Bank::hold},
                     DocRoute{"/v1/hold/confirm", "confirm", &Bank::hold_confirm},
                     DocRoute{"/v1/hold/release", "release", &Bank::hold_release},
                     DocRoute{"/v1/joint", "spend", &Bank::joint_spend}})
    r.post(h.path, [bank, h](const httplib::Request& req, httplib::Response& res) {
      auto jws = jws_field(req, h.field);
      if (!jws) return net::write_problem(res, jws.error());
      auto receipt = (bank->*h.op)(*jws);
      if (!receipt) return net::write_problem(res, receipt.error());
      net::write_json(res, Json{{"receipt", *receipt}});
    });

  r.post("/v1/process-no", [bank](const httplib::Request& req, httplib::Response& res) {
    auto jws = jws_field(req, "query");
    if (!jws) return net::write_problem(res, jws.error());
    auto n = bank->issue_process_no(*jws);
    if (!n) return net::write_problem(res, n.error());
    net::write_json(res, Json{{"process_no", n->number}, {"se", n->se_id}, {"expires_at", n->expires_at}});
  });

  // Long polling: with wait_ms, an empty answer waits (without a thread) for
  // the account's next posting or notice, up to wait_ms.
  r.post_waiting("/v1/events", [bank](const httplib::Request& req, httplib::Response& res) -> std::optional<net::Wait> {
    auto body = net::read_json_body(req);
    if (!body) return net::write_problem(res, body.error()), std::nullopt;
    if (auto s = only_fields(*body, {"query", "after", "wait_ms"}); !s) return net::write_problem(res, s.error()), std::nullopt;
    auto jws = get_string(*body, "query", kMaxJoseBytes);
    if (!jws) return net::write_problem(res, jws.error()), std::nullopt;
    std::int64_t after = 0, wait_ms = 0;
    for (auto [name, out] : {std::pair{"after", &after}, std::pair{"wait_ms", &wait_ms}}) {
      if (!body->contains(name)) continue;
      auto v = get_int(*body, name);
      if (!v) return net::write_problem(res, v.error()), std::nullopt;
      *out = *v;
    }
    if (wait_ms < 0 || wait_ms > kMaxEventWaitMs)
      return net::write_problem(res, Error{Errc::bad_field, "wait_ms", "0.." + std::to_string(kMaxEventWaitMs) + " milliseconds"}),
             std::nullopt;
    auto feed = bank->events(*jws, after);
    if (!feed) return net::write_problem(res, feed.error()), std::nullopt;
    net::write_json(res, feed_to_json(*feed));
    if (!feed->events.empty() || wait_ms == 0) return std::nullopt;
    // The reader was checked once, on the signed query: a wake-up only reads.
    return net::Wait{feed->account, std::chrono::milliseconds(wait_ms),
                     [bank, account = feed->account, currency = feed->currency, after](httplib::Response& r) {
                       auto f = bank->feed(account, currency, after);
                       if (!f) return net::write_problem(r, f.error()), true;
                       if (f->events.empty()) return false;
                       net::write_json(r, feed_to_json(*f));
                       return true;
                     }};
  });

  r.post("/v1/query", [bank](const httplib::Request& req, httplib::Response& res) {
    auto jws = jws_field(req, "query");
    if (!jws) return net::write_problem(res, jws.error());
    auto st = bank->query(*jws);
    if (!st) return net::write_problem(res, st.error());
    net::write_json(res, statement_to_json(*st));
  });

  r.post("/v1/accounts", [bank](const httplib::Request& req, httplib::Response& res) {
    if (!service::require_admin(*bank, req, res)) return;
    auto body = net::read_json_body(req);
    if (!body) return net::write_problem(res, body.error());
    auto r = open_account_from_json(*body);
    if (!r) return net::write_problem(res, r.error());
    auto a = bank->open_account(*r);
    if (!a) return net::write_problem(res, a.error());
    net::write_json(res, account_to_json(*a), 201);
  });

  r.get("/v1/accounts/{id}", R"(/v1/accounts/([A-Za-z0-9._:-]{1,128}))", [bank](const httplib::Request& req,
                                                             httplib::Response& res) {
    if (!service::require_admin(*bank, req, res)) return;
    auto a = bank->store().find_account(req.matches[1]);
    if (!a) return net::write_problem(res, a.error());
    if (!*a)
      return net::write_problem(res, Error{Errc::account_unknown, "account", "no such account"});
    net::write_json(res, account_to_json(**a));
  });

  r.post("/v1/cash-in", [bank](const httplib::Request& req, httplib::Response& res) {
    if (!service::require_admin(*bank, req, res)) return;
    auto body = net::read_json_body(req);
    if (!body) return net::write_problem(res, body.error());
    auto r = cash_in_from_json(*body);
    if (!r) return net::write_problem(res, r.error());
    auto c = bank->cash_in(r->account, r->amount, r->ref);
    if (!c) return net::write_problem(res, c.error());
    net::write_json(res, cash_in_to_json(*c));
  });

  r.get("/v1/audit", [bank](const httplib::Request& req, httplib::Response& res) {
    if (!service::require_admin(*bank, req, res)) return;
    auto a = bank->audit();
    if (!a) return net::write_problem(res, a.error());
    net::write_json(res, audit_to_json(*a));
  });

  service::add_refresh_crl_route(r, bank, bank, crl);
  return r;
}

int serve(const ServeOptions& opts) {
  auto fail_with = [](const Error& e) {
    std::fprintf(stderr, "zf bank serve: %s\n", e.message().c_str());
    return 1;
  };
  auto bank = Bank::open(opts.dir);
  if (!bank) return fail_with(bank.error());
  auto config = read_config(opts.dir);
  if (!config) return fail_with(config.error());
  auto tls = service::load_tls(opts.dir);
  if (!tls) return fail_with(tls.error());

  namespace fs = std::filesystem;
  std::string ca_url = opts.ca_url.empty() ? config->ca_url : opts.ca_url;
  CrlRefresher refresher(**bank, "bank", "documents", ca_url,
                         (fs::path(opts.dir) / kCrlCache).string(),
                         std::chrono::seconds(std::max(1, opts.crl_refresh_s)));
  service::first_crl(refresher, **bank, "bank", ca_url, "documents");

  std::string registry_url = opts.registry_url.empty() ? config->registry_url : opts.registry_url;
  if (!registry_url.empty()) {
    // Claims reuse keep-alive connections: an httplib client is not shared
    // between handler threads, so each claim takes one from the pool and puts
    // it back. A claim that fails on a reused connection (the registry may have
    // closed it, or restarted) is sent again once on a fresh one: a claim is
    // idempotent at the registry, the same claim gets the same record.
    Certificate root = (*bank)->root();
    std::string registry_id = config->registry_id;
    struct Pool {
      std::mutex mu;
      std::vector<registry::RegistryClient> idle;
    };
    auto pool = std::make_shared<Pool>();
    (*bank)->set_registry(registry_id, [registry_url, root, registry_id, pool](const std::string& claim) {
      auto fresh = [&]() -> Result<registry::RegistryClient> {
        // Claims go only to the configured registry's TLS endpoint.
        auto c = registry::RegistryClient::connect(registry_url, root, registry_id, {});
        if (c) c->set_keep_alive(true);
        return c;
      };
      std::optional<registry::RegistryClient> client;
      {
        std::lock_guard lock(pool->mu);
        if (!pool->idle.empty()) {
          client.emplace(std::move(pool->idle.back()));
          pool->idle.pop_back();
        }
      }
      const bool reused = client.has_value();
      if (!client) {
        auto c = fresh();
        if (!c) return Result<std::string>(std::unexpected(c.error()));
        client.emplace(std::move(*c));
      }
      auto record = client->claim(claim);
      if (!record && record.error().code == Errc::unavailable && reused) {
        auto c = fresh();
        if (!c) return Result<std::string>(std::unexpected(c.error()));
        client.emplace(std::move(*c));
        record = client->claim(claim);
      }
      if (record || record.error().code != Errc::unavailable) {
        std::lock_guard lock(pool->mu);
        if (pool->idle.size() < 4 * kBankLanes) pool->idle.push_back(std::move(*client));
      }
      return record;
    });
  } else {
    std::fprintf(stderr,
                 "zf bank serve: no registry configured; this bank's own table is the only "
                 "guard against a document being processed twice\n");
  }

  if (!opts.fault_die_after_claim.empty()) {
    std::string marker = opts.fault_die_after_claim, type = opts.fault_die_after_claim_type;
    (*bank)->set_after_claim([marker, type](std::string_view doc_type) {
      if (doc_type != type || fs::exists(marker)) return;
      (void)store::append_line_durable(marker, "killed after the claim of a " + type);
      ::raise(SIGKILL);
    });
  }

  // More workers than lanes, so that documents queue at the bank's lanes,
  // where one with a processing number goes first (bank/lanes.h), and not in
  // the server's first-come queue of handlers.
  net::ServerLimits limits;
  limits.workers = 4 * kBankLanes;
  net::HttpsServer server(tls->cert, tls->key, limits);
  server.serve_routes(routes(bank->get(), &refresher));
  // Feed readers waiting on an account hear of each entry it is in.
  (*bank)->set_feed_listener([&server](const std::string& account) { server.notify(account); });

  // Holds past their release time go back to their payers: at start (the bank
  // may have been down at the deadline) and then every hold_check_ms.
  std::mutex expiry_mu;
  std::condition_variable expiry_cv;
  bool stopping = false;
  std::thread expirer([&, b = bank->get()] {
    std::unique_lock lock(expiry_mu);
    while (!stopping) {
      lock.unlock();
      auto pass = b->expire_holds();
      if (!pass)
        std::fprintf(stderr, "zf bank serve: hold expiry: %s (tried again later)\n", pass.error().message().c_str());
      else
        for (const auto& e : pass->failed)
          std::fprintf(stderr, "zf bank serve: hold %s could not expire: %s (tried again later)\n", e.field.c_str(),
                       e.detail.c_str());
      lock.lock();
      expiry_cv.wait_for(lock, std::chrono::milliseconds(std::max(10, opts.hold_check_ms)), [&] { return stopping; });
    }
  });
  struct StopExpirer {
    std::mutex& mu;
    std::condition_variable& cv;
    bool& stopping;
    std::thread& t;
    ~StopExpirer() {
      {
        std::lock_guard lock(mu);
        stopping = true;
      }
      cv.notify_all();
      t.join();
    }
  } stop_expirer{expiry_mu, expiry_cv, stopping, expirer};

  if (opts.fault_reply_delay_ms > 0 || !opts.fault_answer_marker.empty()) {
    auto delay = std::chrono::milliseconds(opts.fault_reply_delay_ms);
    std::string marker = opts.fault_answer_marker;
    server.set_after_handler([delay, marker](const httplib::Request& req,
                                                          httplib::Response& res) {
      // The handler has returned, so whatever it committed is on disk: say so
      // before holding the answer back.
      if (!marker.empty() && req.method == "POST")
        (void)store::append_line_durable(marker, req.path + " " + std::to_string(res.status));
      if (delay.count() > 0) std::this_thread::sleep_for(delay);
    });
  }
  return service::serve_until_signal(
      server, {"bank " + (*bank)->id(), opts.port, opts.port_file, &refresher});
}

}  // namespace zf::bank
