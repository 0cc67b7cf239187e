// Real processes for bank tests: `zf ca serve` and `zf bank serve` on loopback
// port 0 with temporary state directories; the bank set up by `zf bank init`.
#pragma once

#include <sys/wait.h>

#include <cstdlib>

#include "bank/client.h"
#include "bank_fixture.h"
#include "ca/client.h"
#include "net/process.h"

namespace zf::test {

struct CommandResult {
  int exit_code;
  std::string output;
};

// Runs the zf binary with `args`; captures stdout+stderr.
inline CommandResult run_zf(const std::vector<std::string>& args,
                            const std::filesystem::path& dir) {
  std::string cmd = ZF_BINARY;
  for (const auto& a : args) cmd += " '" + a + "'";
  cmd += " > '" + (dir / "cmd.out").string() + "' 2>&1";
  int status = std::system(cmd.c_str());
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, slurp(dir / "cmd.out")};
}

class BankProcesses {
 public:
  static constexpr const char* kBankId = "bank-a";

  CaWorld world;
  net::Child ca;
  net::Child bank;
  std::string ca_url;
  std::string bank_url;
  std::string bank_dir = (world.tmp.path() / "bank").string();
  std::string root_file = (std::filesystem::path(world.ca_dir) / "root.pem").string();
  std::string ca_token_file = (std::filesystem::path(world.ca_dir) / "admin.token").string();
  std::string bank_token_file = (std::filesystem::path(bank_dir) / "admin.token").string();

  // Starts the CA process and initializes the bank directory with the CLI.
  void start_ca_and_init_bank() {
    start_ca();
    auto init = run_zf({"bank", "init", "--dir", bank_dir, "--id", kBankId, "--ca-url", ca_url,
                        "--ca-root", root_file, "--ca-token-file", ca_token_file},
                       world.tmp.path());
    ASSERT_EQ(init.exit_code, 0) << init.output;
  }

  void start_ca() {
    std::string port_file = (world.tmp.path() / "ca.port").string();
    std::filesystem::remove(port_file);
    auto child = net::Child::spawn(
        {ZF_BINARY, "ca", "serve", "--dir", world.ca_dir, "--port", "0", "--port-file", port_file},
        (world.tmp.path() / "ca.log").string());
    ASSERT_TRUE(child);
    ca = std::move(*child);
    auto port = net::wait_for_port_file(port_file, ca);
    ASSERT_TRUE(port) << port.error().message() << slurp(world.tmp.path() / "ca.log");
    ca_url = "https://127.0.0.1:" + std::to_string(*port);
  }

  // Starts (or restarts) `zf bank serve` on a fresh port.
  void start_bank(std::vector<std::string> extra = {}) {
    std::string port_file = (world.tmp.path() / "bank.port").string();
    std::filesystem::remove(port_file);
    std::vector<std::string> argv = {ZF_BINARY, "bank", "serve",       "--dir",  bank_dir,
                                     "--port",  "0",    "--port-file", port_file};
    argv.insert(argv.end(), extra.begin(), extra.end());
    auto child = net::Child::spawn(argv, (world.tmp.path() / "bank.log").string());
    ASSERT_TRUE(child);
    bank = std::move(*child);
    auto port = net::wait_for_port_file(port_file, bank);
    ASSERT_TRUE(port) << port.error().message() << slurp(world.tmp.path() / "bank.log");
    bank_url = "https://127.0.0.1:" + std::to_string(*port);
  }

  std::string bank_token() const {
    std::string t = slurp(bank_token_file);
    while (!t.empty() && t.back() == '\n') t.pop_back();
    return t;
  }
  bank::BankClient admin() const {
    return *bank::BankClient::connect(bank_url, world.root(), bank_token());
  }
  bank::BankClient anonymous() const { return *bank::BankClient::connect(bank_url, world.root()); }
  ca::CaClient ca_admin() const {
    return *ca::CaClient::connect(ca_url, world.root(), world.admin_token());
  }

  // Enrolls an SE over HTTPS (admin gets the code, the device asks anonymously).
  TestSigner enroll(const std::string& se_id, const std::string& user_id) {
    CertSource src;
    src.enrollment_code = [this](const std::string& user) {
      return ca_admin().enrollment_code(user, 600);
    };
    src.issue = [this](const std::string& role, const std::string& csr,
                       const std::optional<Attestation>& att, const std::string& code) {
      return ca::CaClient::connect(ca_url, world.root())->request_certificate(role, csr, att, code);
    };
    return enroll_se(src, world, se_id, user_id);
  }

  // Balance as the bank reports it to the owner's SE.
  std::int64_t balance(TestSigner& owner, const std::string& account) {
    auto st = anonymous().query(owner.sign(owner.query(kBankId, account)));
    EXPECT_TRUE(st) << st.error().message();
    return st ? st->account.balance_minor : -1;
  }

  // Balance as the bank's admin sees it.
  std::int64_t admin_balance(const std::string& account) {
    auto a = admin().account(account);
    EXPECT_TRUE(a) << a.error().message();
    return a ? a->balance_minor : -1;
  }

  // The audit over HTTPS; expects it to pass and returns it.
  ledger::AuditReport audit_ok() {
    auto r = admin().audit();
    EXPECT_TRUE(r) << r.error().message();
    if (!r) return {};
    EXPECT_TRUE(r->ok()) << (r->violations.empty() ? "" : r->violations.front());
    return *r;
  }
};

}  // namespace zf::test
