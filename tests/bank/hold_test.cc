// Controlled transfer (DESIGN.md §6.8, docs/bank-api.md "Holds"): a
// hold.request signed by the payer's SE and the payee's freezes money in the
// hold account; a confirm by the payer pays the payee, a release by the payee
// or the expiry gives it back, and whichever comes first ends the hold: the
// others are hold_resolved with the winning receipt and move nothing. The books
// (hold accounts = open holds included) balance after every test.
#include <atomic>
#include <thread>

#include "hold_world.h"

namespace zf::test {
namespace {

using HoldTest = HoldWorld;

TEST_F(HoldTest, AHoldFreezesTheMoneyAndAConfirmPaysThePayeeOnce) {
  Json p = request(3000);
  std::string jws = cosigned(p, alice, bob);
  auto receipt = bank->hold(jws);
  ASSERT_TRUE(receipt) << receipt.error().message();
  Document d = receipt_doc(*receipt);
  EXPECT_EQ(d.type(), "hold.receipt");
  EXPECT_EQ(d.str("hold_id"), p["id"]);
  EXPECT_EQ(d.str("doc_id"), p["id"]);
  EXPECT_EQ(d.str("payer_account"), "alice-cny");
  EXPECT_EQ(d.str("payee_account"), "bob-cny");
  expect_books(7000, 0, 3000);
  auto row = bank->store().find_hold(p["id"]);
  ASSERT_TRUE(row && *row);
  EXPECT_EQ((*row)->status, "held");
  EXPECT_EQ((*row)->payer_se, "se-alice");
  EXPECT_EQ((*row)->payee_se, "se-bob");
  EXPECT_EQ(record_of(p["id"])->doc_type, "hold.request");
  // The same request again: the same receipt, nothing more is frozen.
  auto again = bank->hold(jws);
  ASSERT_TRUE(again);
  EXPECT_EQ(*again, *receipt);
  expect_books(7000, 0, 3000);
  // Frozen money cannot be moved: 7000 is what alice can transfer now.
  Json order = alice.payload("transfer.order",
                             Json{{"amount", 7001}, {"currency", "CNY"}, {"from", "alice-cny"}, {"to", "bob-cny"}, {"bank", kBank}});
  order["iat"] = clock.load();
  auto refused = bank->transfer(alice.sign(order));
  ASSERT_TRUE(refused);
  EXPECT_EQ(receipt_doc(*refused).str("reason"), "insufficient_funds");
  expect_books(7000, 0, 3000);

  std::string confirm = end_doc(alice, "hold.confirm", p["id"], 3000);
  auto paid = bank->hold_confirm(confirm);
  ASSERT_TRUE(paid) << paid.error().message();
  EXPECT_EQ(receipt_doc(*paid).str("status"), "confirmed");
  expect_books(7000, 3000, 0);
  auto paid_again = bank->hold_confirm(confirm);
  ASSERT_TRUE(paid_again);
  EXPECT_EQ(*paid_again, *paid);
  // The payee's release comes too late: hold_resolved, with the confirm's receipt.
  auto late = bank->hold_release(end_doc(bob, "hold.release", p["id"], 3000));
  ASSERT_FALSE(late);
  EXPECT_EQ(late.error().code, Errc::hold_resolved) << late.error().message();
  EXPECT_EQ(late.error().evidence, *paid);
  // Past its release time the expiry finds nothing to give back.
  clock += 7200;
  auto expired = bank->expire_holds();
  ASSERT_TRUE(expired);
  EXPECT_EQ(expired->ended, 0);
  expect_books(7000, 3000, 0);
}

TEST_F(HoldTest, AReleaseByThePayeeGivesTheMoneyBackToThePayer) {
  std::string id = place(2500);
  auto back = bank->hold_release(end_doc(bob, "hold.release", id, 2500));
  ASSERT_TRUE(back) << back.error().message();
  EXPECT_EQ(receipt_doc(*back).str("status"), "released");
  expect_books(10000, 0, 0);
  auto confirm = bank->hold_confirm(end_doc(alice, "hold.confirm", id, 2500));
  ASSERT_FALSE(confirm);
  EXPECT_EQ(confirm.error().code, Errc::hold_resolved);
  EXPECT_EQ(confirm.error().evidence, *back);
  expect_books(10000, 0, 0);
}

TEST_F(HoldTest, OnlyThePayerConfirmsAndOnlyThePayeeReleases) {
  std::string id = place(1000);
  for (auto* doc : {&bob, &carol}) {
    auto r = bank->hold_confirm(end_doc(*doc, "hold.confirm", id, 1000));
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, Errc::not_owner) << doc->se_id << ": " << r.error().message();
  }
  for (auto* doc : {&alice, &carol}) {
    auto r = bank->hold_release(end_doc(*doc, "hold.release", id, 1000));
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, Errc::not_owner) << doc->se_id << ": " << r.error().message();
  }
  expect_books(9000, 0, 1000);
  // A confirm must name the hold's amount, at the bank that holds it.
  auto wrong_amount = bank->hold_confirm(end_doc(alice, "hold.confirm", id, 999));
  ASSERT_FALSE(wrong_amount);
  EXPECT_EQ(wrong_amount.error().code, Errc::bad_field);
  EXPECT_EQ(wrong_amount.error().field, "amount");
  auto unknown = bank->hold_confirm(end_doc(alice, "hold.confirm", "se-alice:999", 1000));
  ASSERT_FALSE(unknown);
  EXPECT_EQ(unknown.error().code, Errc::hold_unknown);
  // A confirm of the hold with a second signature is not a confirm this bank takes.
  Json c = alice.payload("hold.confirm", Json{{"hold_id", id}, {"bank", kBank}, {"amount", 1000}, {"currency", "CNY"}});
  c["iat"] = clock.load();
  auto two = bank->hold_confirm(cosigned(c, alice, bob));
  ASSERT_FALSE(two);
  EXPECT_EQ(two.error().code, Errc::bad_header);
  expect_books(9000, 0, 1000);
}

TEST_F(HoldTest, ARequestNeedsThePayersAndThePayeesSignaturesBoundToTheirAccounts) {
  auto refused = [&](const std::string& jws, Errc code, const std::string& doc_id) {
    auto r = bank->hold(jws);
    ASSERT_FALSE(r) << "expected " << errc_name(code);
    EXPECT_EQ(r.error().code, code) << r.error().message();
    EXPECT_FALSE(record_of(doc_id)) << "a refused request is not claimed";
    expect_books(10000, 0, 0);
  };
  Json p = request(1000);
  refused(alice.sign(p), Errc::bad_header, p["id"]);  // the payer's signature alone
  p = request(1000);
  refused(cosigned(p, alice, carol), Errc::not_owner, p["id"]);  // carol does not own bob-cny
  p = request(1000);
  refused(cosigned(p, alice, alice), Errc::bad_header, p["id"]);  // one SE on both sides
  // Bob signing first makes bob the issuer: the payload names alice's SE as issuer, so it does not open.
  p = request(1000);
  auto swapped = bank->hold(cosigned(p, bob, alice));
  ASSERT_FALSE(swapped);
  EXPECT_EQ(swapped.error().code, Errc::issuer_mismatch) << swapped.error().message();
  p = request(1000, "alice-cny", "alice-cny");
  refused(cosigned(p, alice, bob), Errc::same_account, p["id"]);
  p = request(1000, "alice-cny", "nobody-cny");
  refused(cosigned(p, alice, bob), Errc::account_unknown, p["id"]);
  p = request(1000, "alice-cny", ledger::hold_account_id("CNY"));
  refused(cosigned(p, alice, bob), Errc::account_unknown, p["id"]);
  p = request(1000);
  p["bank"] = "bank-z";
  refused(cosigned(p, alice, bob), Errc::misaddressed, p["id"]);
  p = request(1000, "alice-cny", "bob-cny", 0);
  refused(cosigned(p, alice, bob), Errc::bad_field, p["id"]);
  p = request(1000, "alice-cny", "bob-cny", 91LL * 86400);
  refused(cosigned(p, alice, bob), Errc::bad_field, p["id"]);
  // One byte of the payload changed after both signed it.
  Json general = *parse_json_strict(cosigned(request(1000), alice, bob));
  std::string body = general["payload"];
  body[body.size() / 2] = body[body.size() / 2] == 'A' ? 'B' : 'A';
  general["payload"] = body;
  refused(dump_json(general), Errc::bad_signature, "none");
}

TEST_F(HoldTest, InsufficientFundsConsumesTheRequestWithASignedRefusal) {
  Json p = request(10001);
  std::string jws = cosigned(p, alice, bob);
  auto r = bank->hold(jws);
  ASSERT_TRUE(r) << r.error().message();
  Document d = receipt_doc(*r);
  EXPECT_EQ(d.str("status"), "refused");
  EXPECT_EQ(d.str("reason"), "insufficient_funds");
  expect_books(10000, 0, 0);
  EXPECT_FALSE(*bank->store().find_hold(p["id"]));
  ASSERT_TRUE(bank->cash_in("alice-cny", *Amount::of("CNY", 5000), "counter-2"));
  auto again = bank->hold(jws);
  ASSERT_TRUE(again);
  EXPECT_EQ(*again, *r);
  expect_books(15000, 0, 0);
}

TEST_F(HoldTest, AtItsReleaseTimeTheBankGivesTheMoneyBackAndLaterEndsAreRefused) {
  std::string id = place(4000, 60);
  ASSERT_EQ(bank->expire_holds()->ended, 0);  // not yet due
  expect_books(6000, 0, 4000);
  clock += 60;
  auto n = bank->expire_holds();
  ASSERT_TRUE(n) << n.error().message();
  EXPECT_EQ(n->ended, 1);
  EXPECT_TRUE(n->failed.empty());
  expect_books(10000, 0, 0);
  EXPECT_EQ((*bank->store().find_hold(id))->status, "expired");
  EXPECT_EQ(bank->expire_holds()->ended, 0);
  auto confirm = bank->hold_confirm(end_doc(alice, "hold.confirm", id, 4000));
  ASSERT_FALSE(confirm);
  EXPECT_EQ(confirm.error().code, Errc::hold_resolved);
  Document winner = receipt_doc(confirm.error().evidence);
  EXPECT_EQ(winner.str("status"), "expired");
  EXPECT_EQ(winner.str("hold_id"), id);
  expect_books(10000, 0, 0);
}

// release_at is the payer's deadline: after it a confirm is refused, and a
// release still gives the money back (what the expiry would do).
TEST_F(HoldTest, PastItsReleaseTimeAConfirmIsRefusedAndAReleaseStillGivesItBack) {
  std::string id = place(700, 60);
  clock += 60;
  auto late = bank->hold_confirm(end_doc(alice, "hold.confirm", id, 700));
  ASSERT_FALSE(late);
  EXPECT_EQ(late.error().code, Errc::expired) << late.error().message();
  expect_books(9300, 0, 700);
  auto back = bank->hold_release(end_doc(bob, "hold.release", id, 700));
  ASSERT_TRUE(back) << back.error().message();
  expect_books(10000, 0, 0);
  EXPECT_EQ(bank->expire_holds()->ended, 0);
}

// A processed document sent again after its own expiry (the SE signs hold
// documents for 10 minutes) gets its stored receipt, not `expired`: the
// terminal must learn that the money moved. An unprocessed one is expired.
TEST_F(HoldTest, ARetryAfterTheDocumentsExpiryGetsItsReceipt) {
  Json p = request(1000, "alice-cny", "bob-cny", 7200);
  std::string jws = cosigned(p, alice, bob);
  auto held = bank->hold(jws);
  ASSERT_TRUE(held) << held.error().message();
  std::string confirm = end_doc(alice, "hold.confirm", p["id"], 1000);
  auto paid = bank->hold_confirm(confirm);
  ASSERT_TRUE(paid) << paid.error().message();
  clock += 601;
  auto held_again = bank->hold(jws);
  ASSERT_TRUE(held_again) << held_again.error().message();
  EXPECT_EQ(*held_again, *held);
  auto paid_again = bank->hold_confirm(confirm);
  ASSERT_TRUE(paid_again) << paid_again.error().message();
  EXPECT_EQ(*paid_again, *paid);
  expect_books(9000, 1000, 0);
  Json fresh = request(500);
  fresh["iat"] = clock - 700;
  fresh["exp"] = clock - 100;
  auto stale = bank->hold(cosigned(fresh, alice, bob));
  ASSERT_FALSE(stale);
  EXPECT_EQ(stale.error().code, Errc::expired);
  expect_books(9000, 1000, 0);
}

// The bank claimed a confirm at the registry and died before its transaction:
// the hold is still held; the retry finishes it once.
TEST_F(HoldTest, AConfirmWhoseCommitWasLostIsTakenUpByTheRetryOnce) {
  std::string id = place(1500);
  std::string confirm = end_doc(alice, "hold.confirm", id, 1500);
  auto own_key = PrivateKey::load_pem_file(bank_dir + "/custody.key");
  ASSERT_TRUE(own_key);
  ASSERT_TRUE(reg->claim(claim_as(confirm, kBank, *own_key, bank->chain())));
  auto paid = bank->hold_confirm(confirm);
  ASSERT_TRUE(paid) << paid.error().message();
  ASSERT_TRUE(bank->hold_confirm(confirm));
  expect_books(8500, 1500, 0);
}

// Confirm, release and expiry racing on many holds from several threads: each
// hold ends once, with one winner, and the losers moved nothing.
TEST_F(HoldTest, ConfirmReleaseAndExpiryRacingEndEachHoldOnce) {
  constexpr int kRounds = 40;
  ASSERT_TRUE(bank->cash_in("alice-cny", *Amount::of("CNY", 100000), "counter-race"));
  int confirmed = 0, released = 0, expired = 0;
  for (int round = 0; round < kRounds; ++round) {
    std::string id = place(100, 1);
    std::string confirm = end_doc(alice, "hold.confirm", id, 100);
    std::string release = end_doc(bob, "hold.release", id, 100);
    std::atomic<int> wins{0}, resolved{0};
    auto run = [&](auto op) {
      auto r = op();
      if (r) ++wins;
      // Past the release time a confirm is refused before it races (expired).
      else if (r.error().code == Errc::hold_resolved || r.error().code == Errc::expired) ++resolved;
      else ADD_FAILURE() << r.error().message();
    };
    const bool with_expiry = round % 2 == 1;
    if (with_expiry) clock += 1;  // due now: the expiry races too
    std::thread a([&] { run([&] { return bank->hold_confirm(confirm); }); });
    std::thread b([&] { run([&] { return bank->hold_release(release); }); });
    int expiry_wins = 0;
    if (with_expiry) {
      auto n = bank->expire_holds();
      ASSERT_TRUE(n) << n.error().message();
      expiry_wins = n->ended;
    }
    a.join();
    b.join();
    EXPECT_EQ(wins + expiry_wins, 1) << "round " << round;
    EXPECT_EQ(resolved, 2 - wins) << "round " << round;
    std::string status = (*bank->store().find_hold(id))->status;
    confirmed += status == "confirmed";
    released += status == "released";
    expired += status == "expired";
    EXPECT_EQ(held(), 0);
  }
  EXPECT_EQ(confirmed + released + expired, kRounds);
  EXPECT_EQ(balance("bob-cny"), confirmed * 100);
  EXPECT_EQ(balance("alice-cny"), 110000 - confirmed * 100);
  std::printf("hold race: %d confirmed, %d released, %d expired\n", confirmed, released, expired);
}

}  // namespace
}  // namespace zf::test
