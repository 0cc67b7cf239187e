// A bank and a registry in-process, the bank claiming every document at the
// registry through a direct call instead of HTTPS (the HTTPS path runs in
// tests/system): a real CA (Authority), a real Registry on its own
// registry.db, a real Bank on bank.db. Shared by the bank's registry and
// operation tests.
#pragma once

#include <filesystem>

#include "bank/bank.h"
#include "../test_database.h"
#include "bank_fixture.h"
#include "core/claims.h"
#include "registry/registry.h"

namespace zf::test {

using bank::Bank;
using bank::Feed;
using bank::FeedItem;

inline constexpr const char* kBank = "bank-a";
inline constexpr const char* kRegistry = "registry-1";

class BankRegistryTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto a = ca::Authority::open(world.ca_dir);
    ASSERT_TRUE(a) << a.error().message();
    authority = std::move(*a);
    src = in_process_source(*authority);
    auto issue = [this](const std::string& role, const std::string& csr) {
      return src.issue(role, csr, std::nullopt, "");
    };
    // ZF_TEST_BACKEND=postgresql: the registry and the bank keep their data
    // in PostgreSQL (ctest runs these suites that way too, as pg.*).
    std::string reg_db, bank_db;
    if (services_on_postgres()) {
      ASSERT_NO_FATAL_FAILURE(registry_schema.create("registry"));
      ASSERT_NO_FATAL_FAILURE(bank_schema.create("bank"));
      reg_db = registry_schema.url();
      bank_db = bank_schema.url();
    }
    reg_dir = (world.tmp.path() / "registry").string();
    ASSERT_TRUE(registry::init_registry({reg_dir, kRegistry, "https://127.0.0.1:1", world.root().pem(), reg_db},
                                        issue));
    ASSERT_NO_FATAL_FAILURE(open_registry(/*with_crl=*/true));

    bank_dir = (world.tmp.path() / "bank").string();
    ASSERT_TRUE(bank::init_bank(
        {bank_dir, kBank, "https://127.0.0.1:1", world.root().pem(), "https://127.0.0.1:2", kRegistry, bank_db},
        issue));
    auto config = bank::read_config(bank_dir);
    ASSERT_TRUE(config);
    EXPECT_EQ(config->registry_url, "https://127.0.0.1:2");
    EXPECT_EQ(config->registry_id, kRegistry);
    auto b = Bank::open(bank_dir);
    ASSERT_TRUE(b) << b.error().message();
    bank = std::move(*b);
    ASSERT_TRUE(bank->install_crl(*authority->crl()));
    bank->set_registry(kRegistry, [this](const std::string& claim) -> Result<std::string> {
      auto answer = reg->claim(claim);
      if (!answer) return std::unexpected(answer.error());
      return answer->record_jws;
    });

    alice = enroll_se(src, world, "se-alice", "alice");
    ASSERT_TRUE(bank->open_account({"alice-cny", "CNY", "alice", std::nullopt}));
    ASSERT_TRUE(bank->open_account({"bob-cny", "CNY", "bob", std::nullopt}));
    ASSERT_TRUE(bank->cash_in("alice-cny", *Amount::of("CNY", 10000), "counter-1"));
  }

  void TearDown() override {
    if (!bank) return;
    auto r = bank->audit();
    ASSERT_TRUE(r) << r.error().message();
    EXPECT_TRUE(r->ok()) << (r->violations.empty() ? "" : r->violations.front());
  }

  // (Re)opens the registry; without a CRL it answers every claim `unavailable`.
  void open_registry(bool with_crl) {
    reg.reset();
    auto r = registry::Registry::open(reg_dir);
    ASSERT_TRUE(r) << r.error().message();
    reg = std::move(*r);
    if (with_crl) {
      ASSERT_TRUE(reg->install_crl(*authority->crl()));
    }
  }

  std::int64_t balance(const std::string& account) { return balance_of(bank->store(), account); }
  std::int64_t outstanding() { return balance(ledger::outstanding_account_id("CNY")); }

  // The registry's stored record of `doc_id`, verified.
  std::optional<registry::RecordView> record_of(const std::string& doc_id) {
    auto jws = reg->query(doc_id);
    if (!jws) return std::nullopt;
    CertVerifier v(world.root());
    auto r = registry::open_record(*jws, v, kRegistry);
    EXPECT_TRUE(r) << r.error().message();
    if (!r) return std::nullopt;
    return *r;
  }

  // The evidence a refusal carries: a registry record that verifies.
  registry::RecordView evidence_of(const Error& e) {
    CertVerifier v(world.root());
    auto r = registry::open_record(e.evidence, v, kRegistry);
    EXPECT_TRUE(r) << "evidence: " << (r ? "" : r.error().message());
    return r ? *r : registry::RecordView{};
  }

  // A claim for `doc_jws`, signed by `key` with custody chain `chain`.
  std::string claim_as(const std::string& doc_jws, const std::string& processor,
                       const PrivateKey& key, const std::vector<Certificate>& chain) {
    CertVerifier v(world.root());
    auto doc = open_signed_document(doc_jws, v, Role::secure_element);
    EXPECT_TRUE(doc) << doc.error().message();
    KeySigner s(key);
    auto jws = registry::sign_claim(registry::claim_fields_for(*doc, processor), JwsSigner{&s, chain});
    EXPECT_TRUE(jws) << jws.error().message();
    return *jws;
  }

  CaWorld world;
  std::unique_ptr<ca::Authority> authority;
  CertSource src;
  PostgresSchema registry_schema, bank_schema;  // declared before the services: dropped after them
  std::string reg_dir, bank_dir;
  std::unique_ptr<registry::Registry> reg;
  std::unique_ptr<Bank> bank;
  TestSigner alice;
};

}  // namespace zf::test
