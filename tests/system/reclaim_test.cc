// Reclaiming an expired note on a network of real processes (issue 9): the
// payer's SE killed between the registry's record and its credit, the payee
// and the payer racing at the expiry. After each round the value is in
// exactly one SE and the audit holds.
#include <filesystem>
#include <random>
#include <thread>

#include "../crash_seed.h"
#include "core/claims.h"
#include "core/document.h"
#include "registry/client.h"
#include "system_fixture.h"

namespace zf::test {
namespace {

class ReclaimTest : public NetworkTest {
 protected:
  void SetUp() override {
    NetworkTest::SetUp();
    if (HasFatalFailure()) return;
    auto alice = terminal("alice");
    ASSERT_TRUE(alice);
    ASSERT_TRUE(alice->topup(*Amount::of("CNY", 100000), net_->bank_id, se("alice").account));
  }
  // Pays `minor` to Bob with a note that expires in `ttl_s`; returns {id, note}.
  std::pair<std::string, std::string> pay_bob(std::int64_t minor, std::int64_t ttl_s) {
    auto alice = terminal("alice");
    EXPECT_TRUE(alice);
    if (!alice) return {};
    auto note = alice->pay(*Amount::of("CNY", minor), se("bob").se_id, ttl_s);
    EXPECT_TRUE(note) << note.error().message();
    if (!note) return {};
    auto doc = Document::parse(to_string(jws_parse(*note)->payload));
    return {doc->id(), *note};
  }
  void wait_until(std::int64_t unix_s) {
    while (std::time(nullptr) < unix_s) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  // Reclaims `id` until the SE says it is done: reclaimed now, or before.
  Json reclaim_until_done(const std::string& id) {
    for (int attempt = 0; attempt < 50; ++attempt) {
      auto w = terminal("alice");
      if (!w) {
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
        continue;
      }
      auto r = w->reclaim(id);
      if (r) return *r;
      if (r.error().code == Errc::replayed && r.error().field == "id") return Json{{"outcome", "already_reclaimed"}};
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    ADD_FAILURE() << "reclaim of " << id << " never finished";
    return {};
  }
  void expect_audit_ok() {
    Json a = audit();
    EXPECT_TRUE(a["ok"].get<bool>()) << a.dump(2);
  }
};

// The terminal got the registry's record of the reclaim, then the SE was
// killed before the credit: a retry credits it, once.
TEST_F(ReclaimTest, KillNineBetweenTheRecordAndTheCreditThenRetryCreditsOnce) {
  auto [id, note] = pay_bob(500, 1);
  ASSERT_FALSE(id.empty());
  const std::int64_t before = se_balance("alice");
  wait_until(Document::parse(to_string(jws_parse(note)->payload))->exp().value());
  {
    auto alice = terminal("alice");
    ASSERT_TRUE(alice);
    auto claim = alice->se().reclaim_claim(id);
    ASSERT_TRUE(claim) << claim.error().message();
    auto root = Certificate::from_pem(alice->config().root_pem);
    ASSERT_TRUE(root);
    auto reg = registry::RegistryClient::connect(alice->config().registry_url, *root, alice->config().registry_id, {});
    ASSERT_TRUE(reg) << reg.error().message();
    auto record = reg->claim((*claim)["claim"].get<std::string>());
    ASSERT_TRUE(record) << record.error().message();
    auto view = registry::open_record(*record, CertVerifier(*root));
    ASSERT_TRUE(view);
    EXPECT_EQ(view->processor, se("alice").se_id);
  }
  net_->kill9(se("alice").se_id);
  ASSERT_TRUE(net_->restart(se("alice").se_id));
  EXPECT_EQ(se_balance("alice"), before) << "nothing was credited before the kill";
  expect_audit_ok();
  Json r = reclaim_until_done(id);
  EXPECT_EQ(r["outcome"], "reclaimed") << r.dump();
  EXPECT_EQ(r["credited_minor"], 500);
  EXPECT_EQ(se_balance("alice"), before + 500);
  EXPECT_EQ(reclaim_until_done(id)["outcome"], "already_reclaimed");
  EXPECT_EQ(se_balance("alice"), before + 500);
  // Bob is too late.
  auto bob = terminal("bob");
  ASSERT_TRUE(bob);
  auto late = bob->receive(note);
  ASSERT_FALSE(late);
  EXPECT_EQ(late.error().code, Errc::expired) << late.error().message();
  EXPECT_EQ(se_balance("bob"), 0);
  expect_audit_ok();
}

// kill -9 of the payer's SE or the registry at a random moment during a
// reclaim; after a restart and retries the value comes back exactly once.
TEST_F(ReclaimTest, KillNineAtRandomDuringReclaimsConservesMoney) {
  const std::uint32_t seed = crash_seed();
  std::mt19937 rng(seed);
  SCOPED_TRACE(replay_line(seed));
  std::printf("reclaim crash test seed %u (%s)\n", seed, replay_line(seed).c_str());
  const std::vector<std::string> victims = {se("alice").se_id, net_->registry_id};
  for (int round = 0; round < 6; ++round) {
    auto [id, note] = pay_bob(100 + round, 1);
    ASSERT_FALSE(id.empty());
    const std::int64_t before = se_balance("alice");
    wait_until(Document::parse(to_string(jws_parse(note)->payload))->exp().value());
    std::string victim = victims[rng() % victims.size()];
    int delay_ms = static_cast<int>(rng() % 60);
    std::thread killer([&] {
      std::this_thread::sleep_for(std::chrono::milliseconds(delay_ms));
      net_->kill9(victim);
    });
    if (auto w = terminal("alice")) (void)w->reclaim(id);
    killer.join();
    ASSERT_TRUE(net_->restart(victim)) << "restart " << victim;
    Json r = reclaim_until_done(id);
    EXPECT_TRUE(r["outcome"] == "reclaimed" || r["outcome"] == "already_reclaimed") << r.dump();
    EXPECT_EQ(se_balance("alice"), before + 100 + round) << "round " << round << ", killed " << victim;
    expect_audit_ok();
  }
}

// Bob receives and Alice reclaims at the same moment, right at the expiry:
// one of them holds the note, and the value is in exactly one SE.
TEST_F(ReclaimTest, ThePayeeAndThePayerRacingAtTheExpiryMoveTheValueOnce) {
  for (int round = 0; round < 4; ++round) {
    auto [id, note] = pay_bob(1000 + round, 2);
    ASSERT_FALSE(id.empty());
    const std::int64_t exp = Document::parse(to_string(jws_parse(note)->payload))->exp().value();
    const std::int64_t alice_before = se_balance("alice"), bob_before = se_balance("bob");
    bool bob_got = false, alice_got = false;
    wait_until(exp - 1);
    std::this_thread::sleep_for(std::chrono::milliseconds(900 + 50 * round));
    std::thread payee([&] {
      for (int i = 0; i < 20 && !bob_got; ++i) {
        auto bob = terminal("bob");
        if (!bob) continue;
        auto r = bob->receive(note);
        if (r || wallet::Wallet::already_received(r.error())) bob_got = true;
        if (!r && (r.error().code == Errc::expired || r.error().code == Errc::replayed)) break;
      }
    });
    std::string payer_error;
    std::thread payer([&] {
      // Until the note is settled one way or the other (the payee's claim closes it too).
      while (std::time(nullptr) < exp + 10) {
        auto alice = terminal("alice");
        if (!alice) continue;
        auto r = alice->reclaim(id);
        if (r) {
          alice_got = (*r)["outcome"] == "reclaimed";
          break;
        }
        payer_error = r.error().message();
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
      }
    });
    payee.join();
    payer.join();
    std::printf("race round %d: %s got the value\n", round, bob_got ? "the payee" : alice_got ? "the payer" : "nobody");
    EXPECT_NE(bob_got, alice_got) << "round " << round << ": exactly one side gets the value; the payer's last "
                                  << "error: " << payer_error;
    const std::int64_t amount = 1000 + round;
    EXPECT_EQ(se_balance("bob") - bob_before + se_balance("alice") - alice_before, amount) << "round " << round;
    expect_audit_ok();
  }
}

// Notes received, reclaimed and still in flight, side by side: the audit
// counts the reclaimed one out of the notes in flight and itemizes the rest.
TEST_F(ReclaimTest, TheAuditAccountsForNotesReceivedReclaimedAndStillInFlight) {
  auto [gone, gone_note] = pay_bob(100, 1);
  auto [got, got_note] = pay_bob(200, 3600);
  auto [open, open_note] = pay_bob(300, 3600);
  ASSERT_FALSE(open.empty());
  auto bob = terminal("bob");
  ASSERT_TRUE(bob);
  ASSERT_TRUE(bob->receive(got_note));
  wait_until(Document::parse(to_string(jws_parse(gone_note)->payload))->exp().value());
  EXPECT_EQ(reclaim_until_done(gone)["outcome"], "reclaimed");
  Json a = audit();
  EXPECT_TRUE(a["ok"].get<bool>()) << a.dump(2);
  EXPECT_EQ(a["system"]["CNY"]["notes_in_flight_minor"], 300) << a.dump(2);
  EXPECT_EQ(a["notes"]["currencies"]["CNY"]["in_transit_minor"], 300) << a.dump(2);
  EXPECT_EQ(a["notes"]["currencies"]["CNY"]["claimed_minor"], 0) << a.dump(2);
  ASSERT_EQ(a["notes"]["not_received"].size(), 1u) << a.dump(2);
  EXPECT_EQ(a["notes"]["not_received"][0]["id"], open);
  EXPECT_EQ(se_balance("alice"), 100000 - 200 - 300);
  EXPECT_EQ(se_balance("bob"), 200);
}

class ReclaimRollbackTest : public ReclaimTest {
 protected:
  std::vector<std::string> users() const override { return {"alice", "bob", "carol"}; }
};

// The attacker copies Alice's sealed state file while a note is open,
// reclaims it, pays the value on, then puts the old file back (kill -9,
// restore, restart). The restored SE credits the same reclaim record again,
// which the audit sees at once (SE balances exceed the e-cash the bank put
// out); and its next payment reuses a spent sequence number, which the
// registry refuses with an alert naming Alice: Carol gets nothing.
TEST_F(ReclaimRollbackTest, ARestoredSealedStateRecreditsAReclaimButItsNextPaymentIsCaught) {
  auto [id, note] = pay_bob(500, 1);
  ASSERT_FALSE(id.empty());
  const std::filesystem::path state = std::filesystem::path(se("alice").dir) / "state.seal";
  const std::filesystem::path kept = dir_ / "alice-state.kept";
  std::filesystem::copy_file(state, kept, std::filesystem::copy_options::overwrite_existing);
  wait_until(Document::parse(to_string(jws_parse(note)->payload))->exp().value());
  EXPECT_EQ(reclaim_until_done(id)["outcome"], "reclaimed");
  auto [id2, note2] = pay_bob(700, 3600);
  auto bob = terminal("bob");
  ASSERT_TRUE(bob);
  ASSERT_TRUE(bob->receive(note2));
  expect_audit_ok();

  net_->kill9(se("alice").se_id);
  std::filesystem::copy_file(kept, state, std::filesystem::copy_options::overwrite_existing);
  ASSERT_TRUE(net_->restart(se("alice").se_id));
  EXPECT_EQ(se_balance("alice"), 100000 - 500);
  EXPECT_EQ(reclaim_until_done(id)["outcome"], "reclaimed") << "the restored state cannot tell";
  EXPECT_EQ(se_balance("alice"), 100000);
  Json mid = audit();
  EXPECT_FALSE(mid["ok"].get<bool>())
      << "the audit must see SE balances above the e-cash outstanding: " << mid.dump(2);

  auto alice = terminal("alice");
  ASSERT_TRUE(alice);
  auto again = alice->pay(*Amount::of("CNY", 700), se("carol").se_id);
  ASSERT_TRUE(again) << again.error().message();
  EXPECT_EQ(Document::parse(to_string(jws_parse(*again)->payload))->id(), id2)
      << "a spent sequence number";
  auto carol = terminal("carol");
  ASSERT_TRUE(carol);
  auto got = carol->receive(*again);
  ASSERT_FALSE(got);
  EXPECT_EQ(got.error().code, Errc::seq_reused) << got.error().message();
  EXPECT_EQ(se_balance("carol"), 0);
  EXPECT_EQ(se_balance("bob"), 700);
  Json after = audit();
  EXPECT_FALSE(after["ok"].get<bool>());
  EXPECT_GE(after["alerts"].get<int>(), 1) << after.dump(2);
  EXPECT_EQ(after["alerted_ses"], Json::array({se("alice").se_id})) << after.dump(2);
}

}  // namespace
}  // namespace zf::test
