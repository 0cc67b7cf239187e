// `zf bank ...`: the custody server (init, serve) and its admin client commands.
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "bank/bank.h"
#include "bank/client.h"
#include "bank/service.h"
#include "ca/client.h"
#include "cli/commands.h"
#include "cli/util.h"

namespace zf::cli {
namespace {

// Where a command finds the bank and how it authenticates.
struct BankRemote {
  std::string url;
  std::string id;
  std::string root_file;
  std::string token_file;

  void add_to(CLI::App* cmd) {
    cmd->add_option("--url", url, "bank base URL, e.g. https://127.0.0.1:8444")->required();
    cmd->add_option("--id", id,
                    "the bank id its TLS certificate must name (without it, any bank of this CA)");
    cmd->add_option("--root", root_file, "the CA root certificate (PEM) to trust")
        ->required()
        ->check(CLI::ExistingFile);
    cmd->add_option("--token-file", token_file,
                    "file holding the bank admin token (or set ZF_TOKEN)");
  }
  Result<bank::BankClient> connect() const {
    auto root = Certificate::from_pem(read_all(root_file));
    if (!root) return std::unexpected(root.error());
    std::string token;
    if (!token_file.empty())
      token = strip(read_all(token_file));
    else if (const char* env = std::getenv("ZF_TOKEN"))
      token = env;
    return bank::BankClient::connect(url, *root, id, token);
  }
};

}  // namespace

void add_bank_commands(CLI::App& app, int& exit_code) {
  auto* bank = app.add_subcommand("bank", "custody server (bank)");
  bank->require_subcommand(1);

  {
    auto* cmd = bank->add_subcommand(
        "init",
        "create a bank state directory: custody key (0600) and certificate, TLS "
        "certificate, admin token, bank.db");
    auto opts = std::make_shared<bank::InitOptions>();
    auto root_file = std::make_shared<std::string>();
    auto token_file = std::make_shared<std::string>();
    cmd->add_option("--dir", opts->dir, "state directory")->required();
    cmd->add_option("--id", opts->bank_id, "bank id, e.g. bank-a (the custody certificate's CN)")
        ->required();
    cmd->add_option("--ca-url", opts->ca_url, "CA base URL")->required();
    cmd->add_option("--ca-root", *root_file, "the CA root certificate (PEM)")
        ->required()
        ->check(CLI::ExistingFile);
    cmd->add_option("--ca-token-file", *token_file, "file holding the CA admin token")
        ->required()
        ->check(CLI::ExistingFile);
    auto* reg_url = cmd->add_option(
        "--registry-url", opts->registry_url,
        "registry base URL: claim every document there before moving money (DESIGN.md §7)");
    cmd->add_option("--registry-id", opts->registry_id, "the registry's id (its certificate's CN)")
        ->needs(reg_url);
    cmd->add_option("--db", opts->db_url,
                    "keep the books in this PostgreSQL database (postgresql://user@host/db); default: bank.db in --dir");
    cmd->callback([opts, root_file, token_file, &exit_code] {
      opts->ca_root_pem = read_all(*root_file);
      auto root = Certificate::from_pem(opts->ca_root_pem);
      if (!root) return void(exit_code = complain(root.error(), "bank init"));
      auto ca = ca::CaClient::connect(opts->ca_url, *root, strip(read_all(*token_file)));
      if (!ca) return void(exit_code = complain(ca.error(), "bank init"));
      auto issue = [&](const std::string& role, const std::string& csr) {
        return ca->request_certificate(role, csr);
      };
      if (auto s = bank::init_bank(*opts, issue); !s)
        return void(exit_code = complain(s.error(), "bank init"));
      std::printf("bank %s created in %s (custody.pem, admin.token)\n", opts->bank_id.c_str(),
                  opts->dir.c_str());
    });
  }
  {
    auto* cmd = bank->add_subcommand("serve", "serve the bank over HTTPS on 127.0.0.1");
    auto opts = std::make_shared<bank::ServeOptions>();
    cmd->add_option("--dir", opts->dir, "state directory")->required();
    cmd->add_option("--port", opts->port, "TCP port (0 picks a free one)");
    cmd->add_option("--port-file", opts->port_file, "write the bound port here");
    cmd->add_option("--ca-url", opts->ca_url, "CA base URL (default: the one given at init)");
    cmd->add_option("--registry-url", opts->registry_url,
                    "registry base URL (default: the one given at init)");
    cmd->add_option("--crl-refresh-s", opts->crl_refresh_s,
                    "seconds between CRL fetches (default 60)")
        ->check(CLI::Range(1, 86400));
    cmd->add_option("--hold-check-ms", opts->hold_check_ms,
                    "milliseconds between looks for holds past their release time (default 1000)")
        ->check(CLI::Range(10, 3600000));
    // Hidden: fault injection for the crash tests (answers held back after the money moved).
    cmd->add_option("--fault-reply-delay-ms", opts->fault_reply_delay_ms)
        ->check(CLI::Range(0, 10000))
        ->group("");
    cmd->add_option("--fault-answer-marker", opts->fault_answer_marker)->group("");
    cmd->add_option("--fault-die-after-claim", opts->fault_die_after_claim)->group("");
    cmd->add_option("--fault-die-after-claim-type", opts->fault_die_after_claim_type)->group("");
    cmd->callback([opts, &exit_code] { exit_code = bank::serve(*opts); });
  }
  {
    auto* cmd = bank->add_subcommand("open-account", "open a customer or joint account (admin)");
    auto remote = std::make_shared<BankRemote>();
    auto req = std::make_shared<bank::OpenAccountRequest>();
    auto se = std::make_shared<std::string>();
    remote->add_to(cmd);
    cmd->add_option("--account", req->account, "account id")->required();
    cmd->add_option("--currency", req->currency, "ISO-4217 code, e.g. CNY")->required();
    cmd->add_option("--user", req->user_id, "owner's user id (as in the SE certificate)")
        ->required();
    cmd->add_option("--se", *se, "only this SE may sign for the account");
    cmd->add_option("--co-manager", req->co_managers,
                    "a joint account: an SE that manages it (repeat for each; a spend needs their signatures)");
    cmd->add_option("--threshold", req->threshold,
                    "a joint account: how many distinct co-managers must sign a spend (default: all)")
        ->check(CLI::Range(1, 16));
    cmd->callback([=, &exit_code] {
      if (!se->empty()) req->se_id = *se;
      auto c = remote->connect();
      if (!c) return void(exit_code = complain(c.error(), "bank open-account"));
      auto a = c->open_account(*req);
      if (!a) return void(exit_code = complain(a.error(), "bank open-account"));
      std::printf("%s\n", bank::account_to_json(*a).dump().c_str());
    });
  }
  {
    auto* cmd = bank->add_subcommand(
        "cash-in", "credit money paid in at the counter (admin; exactly once per --ref)");
    auto remote = std::make_shared<BankRemote>();
    auto account = std::make_shared<std::string>();
    auto amount = std::make_shared<std::string>();
    auto ref = std::make_shared<std::string>();
    remote->add_to(cmd);
    cmd->add_option("--account", *account, "account id")->required();
    cmd->add_option("--amount", *amount, "amount, e.g. \"CNY 100.00\"")->required();
    cmd->add_option("--ref", *ref, "unique reference of this cash-in (retries reuse it)")
        ->required();
    cmd->callback([=, &exit_code] {
      auto a = Amount::parse(*amount);
      if (!a) return void(exit_code = complain(a.error(), "bank cash-in"));
      auto c = remote->connect();
      if (!c) return void(exit_code = complain(c.error(), "bank cash-in"));
      auto r = c->cash_in(*account, *a, *ref);
      if (!r) return void(exit_code = complain(r.error(), "bank cash-in"));
      std::printf("%s\n", bank::cash_in_to_json(*r).dump().c_str());
    });
  }
  {
    auto* cmd = bank->add_subcommand(
        "audit", "recompute the books; exit status 1 if anything is wrong (admin)");
    auto remote = std::make_shared<BankRemote>();
    remote->add_to(cmd);
    cmd->callback([=, &exit_code] {
      auto c = remote->connect();
      if (!c) return void(exit_code = complain(c.error(), "bank audit"));
      auto r = c->audit();
      if (!r) return void(exit_code = complain(r.error(), "bank audit"));
      std::printf("accounts %zu, journal entries %zu\n", r->accounts, r->entries);
      for (const auto& f : r->currencies) {
        auto show = [&](std::int64_t minor) {
          auto cur = Currency::parse(f.currency);
          auto a = cur ? Amount::of(*cur, minor < 0 ? -minor : minor) : fail(Errc::bad_currency);
          return (minor < 0 ? "-" : "") + (a ? a->to_string() : std::to_string(minor));
        };
        std::printf(
            "%s: customer %s + joint %s + hold %s + e-cash outstanding %s + settlement %s = issued "
            "%s  %s\n",
            f.currency.c_str(), show(f.customer_minor).c_str(), show(f.joint_minor).c_str(),
            show(f.hold_minor).c_str(), show(f.ecash_outstanding_minor).c_str(),
            show(f.settlement_minor).c_str(), show(f.issued_minor).c_str(),
            f.conserved ? "ok" : "VIOLATED");
      }
      for (const auto& v : r->violations) std::printf("violation: %s\n", v.c_str());
      std::printf("%s\n", r->ok() ? "audit ok" : "AUDIT FAILED");
      if (!r->ok()) exit_code = 1;
    });
  }
  {
    auto* cmd = bank->add_subcommand("info", "show the bank id and custody certificate");
    auto remote = std::make_shared<BankRemote>();
    remote->add_to(cmd);
    cmd->callback([=, &exit_code] {
      auto c = remote->connect();
      if (!c) return void(exit_code = complain(c.error(), "bank info"));
      auto i = c->info();
      if (!i) return void(exit_code = complain(i.error(), "bank info"));
      std::printf("bank %s (CRL %s)\n%s", i->bank_id.c_str(),
                  i->crl_valid ? "current" : "missing or expired",
                  i->custody_certificate.pem().c_str());
    });
  }
}

}  // namespace zf::cli
