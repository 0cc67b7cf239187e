// Each service's TLS certificate names the service (DESIGN.md §2), and every
// client checks the name: a terminal whose configuration points bank-a at the
// registry's endpoint sends it nothing, moves nothing, and settles the same
// signed request once the configuration is right again.
#include <fstream>

#include "bank/client.h"
#include "ca/client.h"
#include "registry/client.h"
#include "system_fixture.h"

namespace zf::test {
namespace {

namespace fs = std::filesystem;

std::string read_text(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

class TlsIdentityTest : public NetworkTest {
 protected:
  std::vector<std::string> users() const override { return {"alice"}; }
  std::int64_t customer_total() { return audit()["banks"][0]["currencies"]["CNY"]["customer_minor"]; }
  Certificate root() { return *Certificate::from_pem(read_text(net_->root_file)); }
  std::vector<std::string> tls_names(const std::string& dir) {
    auto chain = certificates_from_pem(read_text(fs::path(dir) / "tls.pem"));
    return chain && !chain->empty() ? chain->front().san_uris() : std::vector<std::string>{};
  }
};

TEST_F(TlsIdentityTest, EveryServiceTlsCertificateNamesItsService) {
  EXPECT_EQ(tls_names(net_->bank_dir), std::vector<std::string>{"urn:zhuanfu:bank:" + net_->bank_id});
  EXPECT_EQ(tls_names(net_->registry_dir),
            std::vector<std::string>{"urn:zhuanfu:registry:" + net_->registry_id});
  EXPECT_EQ(tls_names(net_->ca_dir), std::vector<std::string>{"urn:zhuanfu:ca:zhuanfu%20Root%20CA"});
}

TEST_F(TlsIdentityTest, WalletPointedAtTheRegistryForItsBankSendsNothing) {
  const fs::path config = fs::path(se("alice").wallet) / "wallet.json";
  const std::string good = read_text(config);
  auto j = *parse_json_strict(good);
  j["banks"][net_->bank_id]["url"] = net_->registry_url;
  std::ofstream(config, std::ios::trunc) << j.dump(2);
  const std::int64_t customers_before = customer_total();

  auto alice = terminal("alice");
  ASSERT_TRUE(alice);
  auto r = alice->topup(*Amount::parse("CNY 10.00"), net_->bank_id, se("alice").account);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, Errc::cert_untrusted) << r.error().message();
  EXPECT_EQ(r.error().field, "tls");
  EXPECT_NE(r.error().detail.find("expected bank " + net_->bank_id), std::string::npos) << r.error().detail;
  EXPECT_NE(r.error().detail.find("urn:zhuanfu:registry:" + net_->registry_id), std::string::npos)
      << r.error().detail;
  // Nothing moved anywhere: the bank never saw the request, the registry holds
  // no claim for it, and the signed request waits in the outbox.
  EXPECT_EQ(customer_total(), customers_before);
  EXPECT_EQ(se_balance("alice"), 0);
  auto entries = alice->outbox();
  ASSERT_EQ(entries.size(), 1u);
  EXPECT_EQ(entries[0].state, "pending");
  std::ifstream token_in(std::filesystem::path(net_->registry_dir) / "admin.token");
  std::string token;
  std::getline(token_in, token);
  auto registry = registry::RegistryClient::connect(net_->registry_url, root(), net_->registry_id, token);
  auto record = registry->query(entries[0].doc_id);  // records are for the admin (or a party)
  ASSERT_FALSE(record);
  EXPECT_EQ(record.error().code, Errc::not_found) << record.error().message();
  Json a = audit();
  EXPECT_TRUE(a["ok"].get<bool>()) << a.dump(2);

  // With bank-a's real address the same signed request settles, once.
  std::ofstream(config, std::ios::trunc) << good;
  alice = terminal("alice");
  auto retried = alice->retry();
  ASSERT_TRUE(retried) << retried.error().message();
  EXPECT_EQ((*retried)["settled"], 1) << retried->dump();
  EXPECT_EQ(se_balance("alice"), 1000);
  EXPECT_EQ(customer_total(), customers_before - 1000);
}

TEST_F(TlsIdentityTest, EachClientRefusesAnotherOfOurServices) {
  const Certificate r = root();
  auto bank_at_registry = bank::BankClient::connect(net_->registry_url, r, net_->bank_id, {});
  EXPECT_EQ(bank_at_registry->info().error().code, Errc::cert_untrusted);
  auto other_bank = bank::BankClient::connect(net_->bank_url, r, "bank-b", {});
  auto refused = other_bank->info();
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().code, Errc::cert_untrusted);
  EXPECT_NE(refused.error().detail.find("urn:zhuanfu:bank:" + net_->bank_id), std::string::npos)
      << refused.error().detail;
  auto registry_at_bank = registry::RegistryClient::connect(net_->bank_url, r, net_->registry_id, {});
  EXPECT_EQ(registry_at_bank->info().error().code, Errc::cert_untrusted);
  auto ca_at_bank = ca::CaClient::connect(net_->bank_url, r);
  EXPECT_EQ(ca_at_bank->crl().error().code, Errc::cert_untrusted);
  auto bank_at_ca = bank::BankClient::connect(net_->ca_url, r, "", {});
  EXPECT_EQ(bank_at_ca->info().error().code, Errc::cert_untrusted);

  // Each at its own address, by its id.
  auto bank = bank::BankClient::connect(net_->bank_url, r, net_->bank_id, {});
  auto info = bank->info();
  ASSERT_TRUE(info) << info.error().message();
  EXPECT_EQ(info->bank_id, net_->bank_id);
  auto reg = registry::RegistryClient::connect(net_->registry_url, r, net_->registry_id, {});
  EXPECT_TRUE(reg->info());
  EXPECT_TRUE(ca::CaClient::connect(net_->ca_url, r)->crl());
}

// The CLI's admin commands check the id they are given.
TEST_F(TlsIdentityTest, CliChecksTheIdItIsGiven) {
  auto run = [&](std::vector<std::string> args) {
    std::string cmd = ZF_BINARY;
    for (const auto& a : args) cmd += " '" + a + "'";
    return std::system((cmd + " > /dev/null 2>&1").c_str());
  };
  EXPECT_EQ(run({"bank", "info", "--url", net_->bank_url, "--root", net_->root_file, "--id", net_->bank_id}), 0);
  EXPECT_NE(run({"bank", "info", "--url", net_->bank_url, "--root", net_->root_file, "--id", "bank-b"}), 0);
  EXPECT_NE(run({"bank", "info", "--url", net_->registry_url, "--root", net_->root_file}), 0);
  EXPECT_EQ(run({"registry", "info", "--url", net_->registry_url, "--root", net_->root_file, "--id",
                 net_->registry_id}),
            0);
  EXPECT_NE(run({"registry", "info", "--url", net_->bank_url, "--root", net_->root_file}), 0);
}

}  // namespace
}  // namespace zf::test
