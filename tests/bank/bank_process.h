// Real processes for bank tests: `zf ca serve` and `zf bank serve` on loopback
// port 0 with temporary state directories; the bank set up by `zf bank init`.
#pragma once

#include "bank/client.h"
#include "bank_fixture.h"
#include "ca/client.h"
#include "net/process.h"
#include "service_process.h"

namespace zf::test {

class BankProcesses : public ServiceProcesses {
 public:
  static constexpr const char* kBankId = "bank-a";

  net::Child bank;
  std::string bank_url;
  std::string bank_dir = (world.tmp.path() / "bank").string();
  std::string bank_token_file = (std::filesystem::path(bank_dir) / "admin.token").string();

  // Starts the CA process and initializes the bank directory with the CLI.
  void start_ca_and_init_bank() {
    start_ca();
    auto init = run_zf({"bank", "init", "--dir", bank_dir, "--id", kBankId, "--ca-url", ca_url,
                        "--ca-root", root_file, "--ca-token-file", ca_token_file},
                       world.tmp.path());
    ASSERT_EQ(init.exit_code, 0) << init.output;
  }

  // Starts (or restarts) `zf bank serve` on a fresh port.
  void start_bank(std::vector<std::string> extra = {}) {
    std::vector<std::string> args = {"bank", "serve", "--dir", bank_dir};
    args.insert(args.end(), extra.begin(), extra.end());
    ASSERT_NO_FATAL_FAILURE(spawn("bank", args, bank, bank_url));
  }

  std::string bank_token() const { return read_token(bank_token_file); }
  bank::BankClient admin() const {
    return *bank::BankClient::connect(bank_url, world.root(), kBankId, bank_token());
  }
  bank::BankClient anonymous() const { return *bank::BankClient::connect(bank_url, world.root(), kBankId, {}); }

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
