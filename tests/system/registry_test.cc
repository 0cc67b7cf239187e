// The registry in the payment path (DESIGN.md §5 persistence, §7): a payer who
// restores an old copy of its SE state and spends the same sequence number
// again is stopped at the registry, which answers with a signed record and
// raises an alert; after the CA revokes that SE its notes are refused
// everywhere. A bank that cannot reach the registry moves no money.
#include <filesystem>
#include <fstream>

#include "bank/client.h"
#include "ca/client.h"
#include "core/claims.h"
#include "registry/client.h"
#include "system_fixture.h"

namespace zf::test {
namespace {

class RegistryPathTest : public NetworkTest {
 protected:
  std::vector<std::string> users() const override { return {"alice", "bob", "carol"}; }
  static std::string slurp_file(const std::string& path) {
    std::ifstream in(path);
    return std::string((std::istreambuf_iterator<char>(in)), {});
  }
  // Keeps a copy of the user's SE state file as it is now.
  void back_up_state(const std::string& user) {
    std::filesystem::copy_file(state_file(user), dir_ / (user + "-state.backup"));
  }
  // Stops the user's SE, puts the copy back and starts it again: a rolled-back device.
  void restore_state(const std::string& user) {
    net_->kill9(se(user).se_id);
    std::filesystem::copy_file(dir_ / (user + "-state.backup"), state_file(user),
                               std::filesystem::copy_options::overwrite_existing);
    ASSERT_TRUE(net_->restart(se(user).se_id));
  }
  std::filesystem::path state_file(const std::string& user) {
    return std::filesystem::path(se(user).dir) / "state.seal";
  }
  // The admin token a service wrote into its state directory.
  static std::string token(const std::string& dir) {
    std::ifstream in(std::filesystem::path(dir) / "admin.token");
    std::string t;
    std::getline(in, t);
    return t;
  }
};

TEST_F(RegistryPathTest, RestoredPayerStateCannotSpendTheSameSequenceTwice) {
  namespace fs = std::filesystem;
  {
    auto alice = terminal("alice");
    ASSERT_TRUE(alice->topup(*Amount::parse("CNY 100.00"), net_->bank_id, se("alice").account));
  }
  // Alice keeps a copy of her SE's state as it is now.
  back_up_state("alice");

  std::string to_bob;
  {
    auto alice = terminal("alice");
    auto note = alice->pay(*Amount::parse("CNY 60.00"), se("bob").se_id);
    ASSERT_TRUE(note) << note.error().message();
    to_bob = *note;
  }
  {
    auto bob = terminal("bob");
    auto got = bob->receive(to_bob);
    ASSERT_TRUE(got) << got.error().message();
  }
  EXPECT_TRUE(fs::exists(fs::path(se("bob").wallet) / "records" / "se-alice_2.jws"))
      << "the payee keeps the registry's signed record";

  // Alice restores the old state: her SE has the CNY 60.00 again and reuses seq 2.
  ASSERT_NO_FATAL_FAILURE(restore_state("alice"));
  EXPECT_EQ(se_balance("alice"), 10000);
  std::string to_carol;
  {
    auto alice = terminal("alice");
    auto note = alice->pay(*Amount::parse("CNY 60.00"), se("carol").se_id);
    ASSERT_TRUE(note) << note.error().message();
    to_carol = *note;
  }
  // Carol's SE alone would accept the note (it is genuine and addressed to her);
  // the registry already holds se-alice:2 (Bob's note) and refuses this second
  // document under the same seq with a signed record.
  auto carol = terminal("carol");
  auto refused = carol->receive(to_carol);
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().code, Errc::seq_reused) << refused.error().message();
  EXPECT_EQ(se_balance("carol"), 0);
  std::ifstream rec(fs::path(se("carol").wallet) / "records" / "se-alice_2.jws");
  std::string record_jws((std::istreambuf_iterator<char>(rec)), {});
  CertVerifier v(*Certificate::from_pem(carol->config().root_pem));
  auto record = registry::open_record(record_jws, v);
  ASSERT_TRUE(record) << record.error().message();
  EXPECT_EQ(record->status, registry::RecordStatus::seq_reused);
  EXPECT_EQ(record->doc_issuer, se("alice").se_id);
  EXPECT_EQ(record->doc_seq, 2);
  EXPECT_EQ(record->processor, se("carol").se_id) << "the refusal answers Carol's own claim";

  // The registry raised an alert naming Alice's SE and the seq it spent twice.
  auto root = *Certificate::from_pem(carol->config().root_pem);
  auto registry_admin =
      registry::RegistryClient::connect(net_->registry_url, root, net_->registry_id,
                                        token(net_->registry_dir));
  ASSERT_TRUE(registry_admin);
  auto alerts = registry_admin->alerts();
  ASSERT_TRUE(alerts) << alerts.error().message();
  ASSERT_EQ(alerts->size(), 1u);
  EXPECT_EQ(alerts->front().se_id, se("alice").se_id);
  EXPECT_EQ(alerts->front().seq, 2);
  EXPECT_EQ(alerts->front().first_processor, se("bob").se_id);
  EXPECT_EQ(alerts->front().second_processor, se("carol").se_id);

  // The CA revokes Alice's SE; once the new CRL is out, its notes are refused everywhere.
  std::string alice_cert_pem;
  {
    auto alice = terminal("alice");
    auto pem = alice->se().certificate_pem();
    ASSERT_TRUE(pem) << pem.error().message();
    alice_cert_pem = *pem;
  }
  auto ca_admin = ca::CaClient::connect(net_->ca_url, root, token(net_->ca_dir));
  ASSERT_TRUE(ca_admin);
  ASSERT_TRUE(ca_admin->revoke(Certificate::from_pem(alice_cert_pem)->serial_hex(), "keyCompromise"));
  ASSERT_TRUE(registry_admin->refresh_crl());
  auto bank_admin = bank::BankClient::connect(net_->bank_url, root, net_->bank_id, token(net_->bank_dir));
  ASSERT_TRUE(bank_admin && bank_admin->refresh_crl());
  ASSERT_TRUE(carol->refresh_crl());
  carol.reset();
  {
    auto bob = terminal("bob");
    ASSERT_TRUE(bob->refresh_crl());
  }
  std::int64_t bob_before = se_balance("bob");
  {
    auto alice = terminal("alice");
    auto note = alice->pay(*Amount::parse("CNY 1.00"), se("bob").se_id);
    ASSERT_TRUE(note) << "Alice's SE itself still signs: " << note.error().message();
    auto bob = terminal("bob");
    auto r = bob->receive(*note);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, Errc::cert_revoked) << r.error().message();
    // Bob's SE refuses the old note from Alice's SE now too (and it was received once already).
    auto c = terminal("carol");
    auto again = c->receive(to_carol);
    ASSERT_FALSE(again);
    EXPECT_EQ(again.error().code, Errc::cert_revoked) << again.error().message();
    auto dep = alice->deposit(*Amount::parse("CNY 1.00"), net_->bank_id, se("alice").account);
    ASSERT_FALSE(dep);
    EXPECT_EQ(dep.error().code, Errc::cert_revoked) << dep.error().message();
  }
  EXPECT_EQ(se_balance("bob"), bob_before);
  EXPECT_EQ(se_balance("carol"), 0);
}

// The outside attack of issue 8 (1): a payer keeps a copy of its SE state, pays
// Bob, and Bob's terminal hands the note to his SE with a raw RECEIVE NOTE and
// no registry claim; the payer restores the copy and pays Carol under the same
// seq. Before, both SEs credited, both deposited, and the bank's e-cash
// outstanding went negative with no alert. Now Bob's SE refuses without the
// registry's record; when Bob's claim arrives, Carol already holds the seq and
// the registry raises the alert; nothing was created.
TEST_F(RegistryPathTest, APayeeSeCreditsNothingWithoutTheRegistrysRecord) {
  {
    auto alice = terminal("alice");
    ASSERT_TRUE(alice->topup(*Amount::parse("CNY 50.00"), net_->bank_id, se("alice").account));
  }
  back_up_state("alice");
  std::string to_bob, to_carol;
  {
    auto alice = terminal("alice");
    to_bob = *alice->pay(*Amount::parse("CNY 50.00"), se("bob").se_id);
  }
  {
    // A modified terminal: straight to the SE, no claim.
    auto bob = terminal("bob");
    auto raw = bob->se().receive_note(to_bob, "");
    ASSERT_FALSE(raw);
    EXPECT_EQ(raw.error().code, Errc::record_required) << raw.error().message();
    // Nor does a record of someone else's claim for the same note do.
    auto carol_claim = terminal("carol")->se().claim_note(to_bob);
    EXPECT_FALSE(carol_claim) << "Carol's SE signs no claim for a note addressed to Bob";
  }
  EXPECT_EQ(se_balance("bob"), 0);

  ASSERT_NO_FATAL_FAILURE(restore_state("alice"));
  {
    auto alice = terminal("alice");
    to_carol = *alice->pay(*Amount::parse("CNY 50.00"), se("carol").se_id);
    auto got = terminal("carol")->receive(to_carol);
    ASSERT_TRUE(got) << got.error().message();
  }
  EXPECT_EQ(se_balance("carol"), 5000);
  {
    // Bob's terminal now claims as it should: the seq is Carol's note's.
    auto bob = terminal("bob");
    auto r = bob->receive(to_bob);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, Errc::seq_reused) << r.error().message();
    // The seq_reused record it was given does not get the note credited either.
    std::ifstream in(std::filesystem::path(se("bob").wallet) / "records" / "se-alice_2.jws");
    std::string record((std::istreambuf_iterator<char>(in)), {});
    ASSERT_FALSE(record.empty());
    auto forced = bob->se().receive_note(to_bob, record);
    ASSERT_FALSE(forced);
    EXPECT_EQ(forced.error().code, Errc::seq_reused) << forced.error().message();
  }
  EXPECT_EQ(se_balance("bob"), 0);
  {
    auto carol = terminal("carol");
    ASSERT_TRUE(carol->deposit(*Amount::parse("CNY 50.00"), net_->bank_id, se("carol").account));
  }

  // The registry named Alice's SE; the books balance with nothing outstanding.
  auto root = *Certificate::from_pem(slurp_file(net_->root_file));
  auto registry_admin = registry::RegistryClient::connect(net_->registry_url, root, net_->registry_id, token(net_->registry_dir));
  ASSERT_TRUE(registry_admin);
  auto alerts = registry_admin->alerts();
  ASSERT_TRUE(alerts) << alerts.error().message();
  ASSERT_EQ(alerts->size(), 1u);
  EXPECT_EQ(alerts->front().se_id, se("alice").se_id);
  EXPECT_EQ(alerts->front().first_processor, se("carol").se_id);
  EXPECT_EQ(alerts->front().second_processor, se("bob").se_id);
  Json a = audit();
  ASSERT_EQ(a["banks"].size(), 1u) << a.dump();
  EXPECT_EQ(a["banks"][0]["ok"], true) << a.dump();
  EXPECT_EQ(a["banks"][0]["currencies"]["CNY"]["ecash_outstanding_minor"], 0) << a.dump();
  EXPECT_EQ(a["alerted_ses"], Json::array({se("alice").se_id})) << a.dump();
  EXPECT_EQ(a["ok"], false) << "the alert fails the network audit";
}

// The payee's terminal keeps every record the registry gave it, one file each:
// here Bob's terminal claimed Alice's note and crashed before his SE credited it;
// a second note under the same seq (Alice restored her SE) arrives first and is
// refused; then the first note goes through. Neither record replaces the other.
TEST_F(RegistryPathTest, APayeeKeepsEveryRecordItWasGiven) {
  namespace fs = std::filesystem;
  {
    auto alice = terminal("alice");
    ASSERT_TRUE(alice->topup(*Amount::parse("CNY 100.00"), net_->bank_id, se("alice").account));
  }
  back_up_state("alice");
  std::string first, second;
  {
    auto alice = terminal("alice");
    first = *alice->pay(*Amount::parse("CNY 60.00"), se("bob").se_id);
  }
  {
    // Step 1 of Wallet::receive only: Bob's SE signs the claim, the registry records it.
    auto bob = terminal("bob");
    auto claim = bob->se().claim_note(first);
    ASSERT_TRUE(claim) << claim.error().message();
    auto reg = registry::RegistryClient::connect(
        net_->registry_url, *Certificate::from_pem(bob->config().root_pem), net_->registry_id, {});
    ASSERT_TRUE(reg && reg->claim((*claim)["claim"].get<std::string>()));
  }
  ASSERT_NO_FATAL_FAILURE(restore_state("alice"));
  {
    auto alice = terminal("alice");
    second = *alice->pay(*Amount::parse("CNY 10.00"), se("bob").se_id);
  }
  {
    auto bob = terminal("bob");
    auto r = bob->receive(second);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, Errc::seq_reused) << r.error().message();
    auto ok = bob->receive(first);
    ASSERT_TRUE(ok) << ok.error().message();
    EXPECT_FALSE(bob->receive(first)) << "received once";
  }
  EXPECT_EQ(se_balance("bob"), 6000);
  fs::path records = fs::path(se("bob").wallet) / "records";
  CertVerifier v(*Certificate::from_pem(slurp_file(net_->root_file)));
  auto refused = registry::open_record(slurp_file((records / "se-alice_2.jws").string()), v);
  ASSERT_TRUE(refused) << refused.error().message();
  EXPECT_EQ(refused->status, registry::RecordStatus::seq_reused);
  auto won = registry::open_record(slurp_file((records / "se-alice_2.2.jws").string()), v);
  ASSERT_TRUE(won) << won.error().message();
  EXPECT_EQ(won->status, registry::RecordStatus::claimed);
  EXPECT_EQ(won->processor, se("bob").se_id);
  EXPECT_FALSE(fs::exists(records / "se-alice_2.3.jws"));
}

// A restored SE deposits again under a spent seq: the bank's own table holds
// another document under that id, the bank reports it to the registry, and its
// HTTPS refusal carries the registry's signed seq_reused record, which the
// terminal keeps.
TEST_F(RegistryPathTest, ARestoredStateDepositingASpentSeqAgainIsRefusedWithTheRegistryRecord) {
  namespace fs = std::filesystem;
  {
    auto alice = terminal("alice");
    ASSERT_TRUE(alice->topup(*Amount::parse("CNY 100.00"), net_->bank_id, se("alice").account));
  }
  back_up_state("alice");
  {
    auto alice = terminal("alice");
    ASSERT_TRUE(alice->deposit(*Amount::parse("CNY 30.00"), net_->bank_id, se("alice").account));
  }
  Json account_after_first = audit()["banks"][0]["currencies"]["CNY"]["customer_minor"];
  ASSERT_TRUE(account_after_first.is_number()) << account_after_first.dump();
  ASSERT_NO_FATAL_FAILURE(restore_state("alice"));
  {
    auto alice = terminal("alice");
    auto r = alice->deposit(*Amount::parse("CNY 50.00"), net_->bank_id, se("alice").account);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, Errc::seq_reused) << r.error().message();
  }
  std::ifstream rec(fs::path(se("alice").wallet) / "records" / "se-alice_2.jws");
  std::string record_jws((std::istreambuf_iterator<char>(rec)), {});
  auto root = *Certificate::from_pem(slurp_file(net_->root_file));
  CertVerifier v(root);
  auto record = registry::open_record(record_jws, v);
  ASSERT_TRUE(record) << "the terminal keeps the record: " << record.error().message();
  EXPECT_EQ(record->status, registry::RecordStatus::seq_reused);
  EXPECT_EQ(record->doc_issuer, se("alice").se_id);
  EXPECT_EQ(record->doc_seq, 2);
  EXPECT_EQ(record->processor, net_->bank_id);
  EXPECT_EQ(audit()["banks"][0]["currencies"]["CNY"]["customer_minor"], account_after_first)
      << "the second deposit moved nothing";
  auto registry_admin =
      registry::RegistryClient::connect(net_->registry_url, root, net_->registry_id,
                                        token(net_->registry_dir));
  ASSERT_TRUE(registry_admin);
  auto alerts = registry_admin->alerts();
  ASSERT_TRUE(alerts && alerts->size() == 1u);
  EXPECT_EQ(alerts->front().se_id, se("alice").se_id);
  EXPECT_EQ(alerts->front().second_processor, net_->bank_id);
}

// The bank moves no money while it cannot claim at the registry: a top-up is
// refused with the retryable `unavailable`, the request stays in the terminal's
// outbox, and once the registry is back the retry moves the money exactly once.
TEST_F(RegistryPathTest, WhileTheRegistryIsDownTheBankMovesNoMoneyAndTheRetryFinishes) {
  auto before = audit();
  ASSERT_TRUE(before["ok"].get<bool>()) << before.dump();
  net_->kill9("registry");
  {
    auto alice = terminal("alice");
    auto r = alice->topup(*Amount::parse("CNY 25.00"), net_->bank_id, se("alice").account);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, Errc::unavailable) << r.error().message();
  }
  EXPECT_EQ(se_balance("alice"), 0);
  auto during = audit();
  EXPECT_TRUE(during["ok"].get<bool>()) << during.dump();
  EXPECT_EQ(during["banks"][0]["currencies"]["CNY"]["ecash_outstanding_minor"], 0);

  ASSERT_TRUE(net_->restart("registry"));
  {
    auto alice = terminal("alice");
    auto r = alice->retry();
    ASSERT_TRUE(r) << r.error().message();
    auto again = alice->retry();
    ASSERT_TRUE(again) << again.error().message();
  }
  EXPECT_EQ(se_balance("alice"), 2500);
  auto after = audit();
  EXPECT_TRUE(after["ok"].get<bool>()) << after.dump();
  EXPECT_EQ(after["banks"][0]["currencies"]["CNY"]["ecash_outstanding_minor"], 2500);
}

}  // namespace
}  // namespace zf::test
