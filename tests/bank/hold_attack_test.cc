// Attacks on holds from outside (DESIGN.md §3, §6.8, §7; docs/bank-api.md
// "Holds"): a hostile terminal that assembles the request's general JWS from
// signatures its SEs made, a hostile payer or payee, a third party with a
// certified SE of its own, a restored SE that signs under a spent seq, and a
// bank whose expiry runs between a confirm's registry claim and its commit.
// Each test asserts the safe outcome: a named refusal with every balance as it
// was, or the hold ended exactly once; the books (hold accounts = open holds
// included) are audited after every test by the fixture. An attack that gets
// through was kept DISABLED_ until its hole was closed; all pass now.
#include <atomic>
#include <limits>
#include <thread>

#include "hold_world.h"

namespace zf::test {
namespace {

class HoldAttackTest : public HoldWorld {
 protected:
  // `r` is refused with `code`, the document is not claimed at the registry, nothing moved.
  template <class R>
  void expect_refused(const R& r, Errc code, const std::string& doc_id,
                      std::int64_t alice_minor = 10000, std::int64_t bob_minor = 0,
                      std::int64_t held_minor = 0) {
    ASSERT_FALSE(r) << "expected " << errc_name(code) << ", got a receipt";
    EXPECT_EQ(r.error().code, code) << r.error().message();
    EXPECT_FALSE(record_of(doc_id)) << "a refused document is not claimed";
    expect_books(alice_minor, bob_minor, held_minor);
  }
  std::string status_of(const std::string& hold_id) {
    auto h = bank->store().find_hold(hold_id);
    return h && *h ? (*h)->status : "none";
  }
};

// ------------------------------------------------------------ the request's signatures

// The payee's SE signed another payload (a request for less); a terminal puts
// its signature under the payload the payer signed. One general JWS has one
// payload, so the payee's signature does not verify over it.
TEST_F(HoldAttackTest, APayeeSignatureOverAnotherPayloadDoesNotVerify) {
  Json p = request(3000);
  Json other = p;
  other["amount"] = 1;
  std::string bytes = dump_json(p), other_bytes = dump_json(other);
  std::string jws = dump_json(Json{
      {"payload", b64url_encode(as_bytes(bytes))},
      {"signatures",
       {signature_entry(alice, as_bytes(bytes)), signature_entry(bob, as_bytes(other_bytes))}}});
  expect_refused(bank->hold(jws), Errc::bad_signature, p["id"]);
  // Nor does the terminal's joining tool put two payloads together.
  auto joined = jws_join({alice.sign(p), bob.sign_raw(other)});
  ASSERT_FALSE(joined);
  EXPECT_EQ(joined.error().code, Errc::bad_header);
}

TEST_F(HoldAttackTest, ThreeSignaturesOrThePayersTwiceAreRefused) {
  Json p = request(3000);
  std::string bytes = dump_json(p);
  auto a = signature_entry(alice, as_bytes(bytes)), b = signature_entry(bob, as_bytes(bytes)),
       c = signature_entry(carol, as_bytes(bytes));
  expect_refused(bank->hold(general(p, {a, b, c})), Errc::bad_header, p["id"]);
  expect_refused(bank->hold(general(p, {a, b, b})), Errc::bad_header, p["id"]);
  // The payer's signature twice, byte for byte, and a second one of its own.
  expect_refused(bank->hold(general(p, {a, a})), Errc::bad_header, p["id"]);
  expect_refused(bank->hold(general(p, {a, signature_entry(alice, as_bytes(bytes))})),
                 Errc::bad_header, p["id"]);
  // One signature only, in the general and in the compact serialization.
  expect_refused(bank->hold(general(p, {a})), Errc::bad_header, p["id"]);
  expect_refused(bank->hold(alice.sign(p)), Errc::bad_header, p["id"]);
  // The payee's alone: its SE is not the request's issuer.
  expect_refused(bank->hold(general(p, {b})), Errc::issuer_mismatch, p["id"]);
  // Sixteen copies (the most a JWS may carry) and seventeen.
  expect_refused(bank->hold(general(p, std::vector<Json>(16, a))), Errc::bad_header, p["id"]);
  expect_refused(bank->hold(general(p, std::vector<Json>(17, a))), Errc::bad_header, p["id"]);
  // And the honest request still goes through afterwards.
  ASSERT_TRUE(bank->hold(general(p, {a, b})));
  expect_books(7000, 0, 3000);
}

// A terminal that swaps the two signatures makes the payee's SE the first
// signer, and so the document's signer is not its issuer.
TEST_F(HoldAttackTest, ReorderedSignaturesDoNotOpen) {
  Json p = request(3000);
  std::string bytes = dump_json(p);
  auto a = signature_entry(alice, as_bytes(bytes)), b = signature_entry(bob, as_bytes(bytes));
  expect_refused(bank->hold(general(p, {b, a})), Errc::issuer_mismatch, p["id"]);
  // Bob issuing a request that takes alice's money: bob may not sign for alice-cny.
  Json q = request(3000, "alice-cny", "bob-cny", 3600, &bob);
  expect_refused(bank->hold(cosigned(q, bob, alice)), Errc::not_owner, q["id"]);
}

// A custody key, an SE certificate from another CA, and a payee SE revoked
// between its cosignature and the submission are no second signature.
TEST_F(HoldAttackTest, TheSecondSignatureMustBeACurrentCertifiedSe) {
  TestSigner rogue = rogue_se("se-bob", "bob");
  Json p = request(3000);
  expect_refused(bank->hold(cosigned(p, alice, rogue)), Errc::cert_untrusted, p["id"]);

  auto custody_key = PrivateKey::load_pem_file(bank_dir + "/custody.key");
  ASSERT_TRUE(custody_key);
  TestSigner custody{kBank, "", std::make_shared<PrivateKey>(std::move(*custody_key)),
                     bank->chain(), 0};
  p = request(3000);
  expect_refused(bank->hold(cosigned(p, alice, custody)), Errc::cert_wrong_role, p["id"]);

  p = request(3000);
  std::string jws = cosigned(p, alice, bob);
  ASSERT_TRUE(authority->revoke(ca::Caller::admin, bob.cert().serial_hex(), "lost device"));
  ASSERT_TRUE(bank->install_crl(*authority->crl()));
  expect_refused(bank->hold(jws), Errc::cert_revoked, p["id"]);
}

// Accounts bound to one SE (open-account --se): only that SE signs for them,
// on either side, even if the signer's user owns the account.
TEST_F(HoldAttackTest, AnAccountBoundToAnSeTakesOnlyThatSesSignature) {
  TestSigner bob2 = enroll_se(src, world, "se-bob2", "bob");
  TestSigner alice2 = enroll_se(src, world, "se-alice2", "alice");
  ASSERT_TRUE(bank->open_account({"bob-bound", "CNY", "bob", std::string("se-bob2")}));
  ASSERT_TRUE(bank->open_account({"alice-bound", "CNY", "alice", std::string("se-alice2")}));
  ASSERT_TRUE(bank->cash_in("alice-bound", *Amount::of("CNY", 500), "counter-bound"));

  Json p = request(300, "alice-cny", "bob-bound");
  expect_refused(bank->hold(cosigned(p, alice, bob)), Errc::not_owner, p["id"]);
  Json q = request(300, "alice-bound", "bob-cny");
  expect_refused(bank->hold(cosigned(q, alice, bob)), Errc::not_owner, q["id"]);
  EXPECT_EQ(balance("alice-bound"), 500);

  // With the bound SEs it holds; ending it follows the binding too.
  Json ok = request(300, "alice-bound", "bob-bound", 3600, &alice2);
  auto r = bank->hold(cosigned(ok, alice2, bob2));
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_EQ(balance("alice-bound"), 200);
  const std::string id = ok["id"];
  auto by_alice = bank->hold_confirm(end_doc(alice, "hold.confirm", id, 300));
  ASSERT_FALSE(by_alice);
  EXPECT_EQ(by_alice.error().code, Errc::not_owner);
  auto by_bob = bank->hold_release(end_doc(bob, "hold.release", id, 300));
  ASSERT_FALSE(by_bob);
  EXPECT_EQ(by_bob.error().code, Errc::not_owner);
  EXPECT_EQ(status_of(id), "held");
  auto back = bank->hold_release(end_doc(bob2, "hold.release", id, 300));
  ASSERT_TRUE(back) << back.error().message();
  EXPECT_EQ(balance("alice-bound"), 500);
  EXPECT_EQ(balance("bob-bound"), 0);
  EXPECT_EQ(held(), 0);
}

// The same request cosigned by a second SE of the payee is the same document
// (same id, same payload, same issuer): the stored receipt, nothing more frozen.
TEST_F(HoldAttackTest, TheSameRequestWithAnotherPayeeSignatureIsARetry) {
  TestSigner bob2 = enroll_se(src, world, "se-bob2", "bob");
  Json p = request(2000);
  auto first = bank->hold(cosigned(p, alice, bob));
  ASSERT_TRUE(first) << first.error().message();
  auto second = bank->hold(cosigned(p, alice, bob2));
  ASSERT_TRUE(second) << second.error().message();
  EXPECT_EQ(*second, *first);
  expect_books(8000, 0, 2000);
}

// The same request sent from many threads at once freezes the money once.
TEST_F(HoldAttackTest, OneRequestSentFromManyThreadsHoldsOnce) {
  Json p = request(1000);
  std::string jws = cosigned(p, alice, bob);
  std::vector<std::thread> threads;
  std::atomic<int> ok{0};
  std::vector<std::string> receipts(8);
  for (int i = 0; i < 8; ++i)
    threads.emplace_back([&, i] {
      auto r = bank->hold(jws);
      if (r) {
        ++ok;
        receipts[i] = *r;
      }
    });
  for (auto& t : threads) t.join();
  EXPECT_EQ(ok, 8);
  for (const auto& r : receipts) EXPECT_EQ(r, receipts[0]);
  expect_books(9000, 0, 1000);
}

// ------------------------------------------------------------ terms

TEST_F(HoldAttackTest, ReleaseAtIsAfterNowAndAtMostNinetyDaysAheadWhateverItsValue) {
  constexpr std::int64_t k90d = 90LL * 24 * 3600;
  for (std::int64_t in : {std::int64_t{0}, std::int64_t{-1}, k90d + 1, std::int64_t{10} * k90d}) {
    Json p = request(1000, "alice-cny", "bob-cny", in);
    expect_refused(bank->hold(cosigned(p, alice, bob)), Errc::bad_field, p["id"]);
  }
  // Values no clock reaches, negative, fractional, beyond int64, or a string.
  for (Json v : {Json(std::numeric_limits<std::int64_t>::max()), Json(-5), Json(1.5e9),
                 Json(static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()) + 1),
                 Json("tomorrow")}) {
    Json p = request(1000);
    p["release_at"] = v;
    expect_refused(bank->hold(cosigned(p, alice, bob)), Errc::bad_field, p["id"]);
  }
  // The two ends of the window are accepted: one second ahead, and exactly 90 days.
  Json soon = request(1000, "alice-cny", "bob-cny", 1);
  ASSERT_TRUE(bank->hold(cosigned(soon, alice, bob)));
  Json far = request(1000, "alice-cny", "bob-cny", k90d);
  ASSERT_TRUE(bank->hold(cosigned(far, alice, bob)));
  expect_books(8000, 0, 2000);
  clock += 1;
  ASSERT_EQ(bank->expire_holds()->ended, 1);
  EXPECT_EQ(status_of(soon["id"]), "expired");
  EXPECT_EQ(status_of(far["id"]), "held");
  clock += k90d;
  ASSERT_EQ(bank->expire_holds()->ended, 1);
  expect_books(10000, 0, 0);
}

// The largest amount there is: held, paid, audited; one unit more does not parse.
TEST_F(HoldAttackTest, AHoldOfTheLargestAmountMovesExactlyThatAmount) {
  ASSERT_TRUE(
      bank->cash_in("alice-cny", *Amount::of("CNY", Amount::kMaxMinor - 10000), "counter-max"));
  Json p = request(Amount::kMaxMinor);
  auto r = bank->hold(cosigned(p, alice, bob));
  ASSERT_TRUE(r) << r.error().message();
  expect_books(0, 0, Amount::kMaxMinor);
  Json over = request(1);
  over["amount"] = Amount::kMaxMinor + 1;
  auto refused = bank->hold(cosigned(over, alice, bob));
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().code, Errc::amount_overflow);
  for (auto [bad, code] :
       {std::pair{Json(0), Errc::amount_zero}, std::pair{Json(-1), Errc::amount_negative},
        std::pair{Json(1.0), Errc::bad_amount}}) {
    Json q = request(1);
    q["amount"] = bad;
    auto no = bank->hold(cosigned(q, alice, bob));
    ASSERT_FALSE(no);
    EXPECT_EQ(no.error().code, code) << no.error().message();
  }
  auto paid = bank->hold_confirm(end_doc(alice, "hold.confirm", p["id"], Amount::kMaxMinor));
  ASSERT_TRUE(paid) << paid.error().message();
  expect_books(0, Amount::kMaxMinor, 0);
  // Nothing is left for a second hold of any size.
  Json more = request(1);
  auto none = bank->hold(cosigned(more, alice, bob));
  ASSERT_TRUE(none);
  EXPECT_EQ(refusal_reason(*none), "insufficient_funds");
}

TEST_F(HoldAttackTest, ThePayeeAccountIsACustomerAccountOfTheRequestsCurrency) {
  ASSERT_TRUE(bank->open_account({"bob-usd", "USD", "bob", std::nullopt}));
  Json p = request(1000, "alice-cny", "bob-usd");
  expect_refused(bank->hold(cosigned(p, alice, bob)), Errc::currency_mismatch, p["id"]);
  for (const std::string& sys : {ledger::hold_account_id("CNY"), ledger::issuance_account_id("CNY"),
                                 ledger::outstanding_account_id("CNY")}) {
    Json q = request(1000, "alice-cny", sys);
    expect_refused(bank->hold(cosigned(q, alice, bob)), Errc::account_unknown, q["id"]);
    Json r = request(1000, sys, "bob-cny");
    expect_refused(bank->hold(cosigned(r, alice, bob)), Errc::account_unknown, r["id"]);
  }
  // An unknown field in the signed payload, and a field of the wrong type.
  Json extra = request(1000);
  extra["payee_se"] = "se-carol";
  expect_refused(bank->hold(cosigned(extra, alice, bob)), Errc::unknown_field, extra["id"]);
  Json typed = request(1000);
  typed["payee_account"] = Json::array({"bob-cny"});
  expect_refused(bank->hold(cosigned(typed, alice, bob)), Errc::bad_field, typed["id"]);
}

// ------------------------------------------------------------ the hold account and hold ids
// elsewhere

// Frozen money lives in sys:hold:<CUR>; no document and no admin call other
// than a hold's end takes money out of it or puts money into it.
TEST_F(HoldAttackTest, TheHoldAccountIsNoOnesAccount) {
  std::string id = place(4000);
  const std::string hold_acct = ledger::hold_account_id("CNY");
  auto order = [&](const std::string& from, const std::string& to, std::int64_t minor) {
    Json o = alice.payload(
        "transfer.order",
        Json{{"amount", minor}, {"currency", "CNY"}, {"from", from}, {"to", to}, {"bank", kBank}});
    o["iat"] = clock.load();
    return alice.sign(o);
  };
  auto from_hold = bank->transfer(order(hold_acct, "alice-cny", 4000));
  ASSERT_FALSE(from_hold);
  EXPECT_EQ(from_hold.error().code, Errc::account_unknown);
  auto to_hold = bank->transfer(order("alice-cny", hold_acct, 1000));
  ASSERT_FALSE(to_hold);
  EXPECT_EQ(to_hold.error().code, Errc::account_unknown);
  // The hold's id is not an account either.
  auto to_id = bank->transfer(order("alice-cny", id, 1000));
  ASSERT_FALSE(to_id);
  EXPECT_EQ(to_id.error().code, Errc::account_unknown);
  auto from_id = bank->transfer(order(id, "bob-cny", 1000));
  ASSERT_FALSE(from_id);
  EXPECT_EQ(from_id.error().code, Errc::account_unknown);
  // A top-up from it is refused (and consumed); a deposit into it comes back to the SE.
  auto topup = bank->topup(alice.sign(alice.topup(kBank, hold_acct, 1000)));
  ASSERT_TRUE(topup) << topup.error().message();
  EXPECT_EQ(refusal_reason(*topup), "account_unknown");
  auto deposit = bank->deposit(alice.sign(alice.deposit(kBank, hold_acct, 1000)));
  ASSERT_TRUE(deposit) << deposit.error().message();
  EXPECT_EQ(refusal_reason(*deposit), "account_unknown");
  auto cash = bank->cash_in(hold_acct, *Amount::of("CNY", 1000), "counter-into-hold");
  ASSERT_FALSE(cash);
  EXPECT_EQ(cash.error().code, Errc::account_unknown);
  auto open = bank->open_account({hold_acct, "CNY", "mallory", std::nullopt});
  ASSERT_FALSE(open);
  expect_books(6000, 0, 4000);
  EXPECT_EQ(outstanding(), 0);
  // The hold still ends normally.
  ASSERT_TRUE(bank->hold_confirm(end_doc(alice, "hold.confirm", id, 4000)));
  expect_books(6000, 4000, 0);
}

// ------------------------------------------------------------ ending a hold

TEST_F(HoldAttackTest, AnEndMustNameThisBankTheHoldsAmountAndCurrency) {
  std::string id = place(1500);
  auto at_z = bank->hold_confirm(end_doc(alice, "hold.confirm", id, 1500, "CNY", "bank-z"));
  ASSERT_FALSE(at_z);
  EXPECT_EQ(at_z.error().code, Errc::misaddressed);
  auto usd = bank->hold_confirm(end_doc(alice, "hold.confirm", id, 1500, "USD"));
  ASSERT_FALSE(usd);
  EXPECT_EQ(usd.error().code, Errc::bad_field);
  auto more = bank->hold_release(end_doc(bob, "hold.release", id, 1501));
  ASSERT_FALSE(more);
  EXPECT_EQ(more.error().code, Errc::bad_field);
  // A hold placed at another bank is not known here, whoever signs.
  auto other = bank->hold_confirm(end_doc(alice, "hold.confirm", "se-alice:77", 1500));
  ASSERT_FALSE(other);
  EXPECT_EQ(other.error().code, Errc::hold_unknown);
  // A confirm or release is not a request, and a request is not a confirm.
  auto as_request = bank->hold(end_doc(alice, "hold.confirm", id, 1500));
  ASSERT_FALSE(as_request);
  EXPECT_EQ(as_request.error().code, Errc::unknown_type);
  auto release_as_confirm = bank->hold_confirm(end_doc(bob, "hold.release", id, 1500));
  ASSERT_FALSE(release_as_confirm);
  EXPECT_EQ(release_as_confirm.error().code, Errc::unknown_type);
  EXPECT_EQ(status_of(id), "held");
  expect_books(8500, 0, 1500);
}

// After the hold ended: the winning document again gets its own receipt; any
// other end (a new confirm, the release, the payer's old confirm) is
// hold_resolved with the winning receipt, and none of them moves money.
TEST_F(HoldAttackTest, EndsReplayedAfterTheHoldEndedMoveNothing) {
  Json p = request(2000);
  std::string request_jws = cosigned(p, alice, bob);
  auto held_receipt = bank->hold(request_jws);
  ASSERT_TRUE(held_receipt) << held_receipt.error().message();
  const std::string id = p["id"];
  std::string release = end_doc(bob, "hold.release", id, 2000);
  std::string confirm = end_doc(alice, "hold.confirm", id, 2000);
  auto back = bank->hold_release(release);
  ASSERT_TRUE(back);
  expect_books(10000, 0, 0);
  for (int i = 0; i < 3; ++i) {
    auto again = bank->hold_release(release);
    ASSERT_TRUE(again);
    EXPECT_EQ(*again, *back);
    auto c = bank->hold_confirm(confirm);
    ASSERT_FALSE(c);
    EXPECT_EQ(c.error().code, Errc::hold_resolved);
    EXPECT_EQ(c.error().evidence, *back);
    auto r2 = bank->hold_release(end_doc(bob, "hold.release", id, 2000));
    ASSERT_FALSE(r2);
    EXPECT_EQ(r2.error().code, Errc::hold_resolved);
  }
  // The old request sent again is answered with its first receipt: it freezes nothing again.
  auto replay = bank->hold(request_jws);
  ASSERT_TRUE(replay);
  EXPECT_EQ(*replay, *held_receipt);
  EXPECT_EQ(status_of(id), "released");
  clock += 7200;
  ASSERT_EQ(bank->expire_holds()->ended, 0);
  expect_books(10000, 0, 0);
}

// A restored SE signs again under a seq it spent: whatever the seq was spent
// on, a confirm or release under it is refused as seq_reused, with the
// registry's evidence, and moves nothing.
TEST_F(HoldAttackTest, AConfirmOrReleaseUnderASpentSeqIsSeqReused) {
  std::string id = place(3000);  // se-alice:1
  // se-alice:2 spent on a top-up at this bank.
  ASSERT_TRUE(bank->topup(alice.sign(alice.topup(kBank, "alice-cny", 100))));
  const std::int64_t alice_now = balance("alice-cny");
  // The restored SE: its counter goes back to before the top-up.
  alice.seq = 1;
  auto reused = bank->hold_confirm(end_doc(alice, "hold.confirm", id, 3000));
  ASSERT_FALSE(reused);
  EXPECT_EQ(reused.error().code, Errc::seq_reused) << reused.error().message();
  EXPECT_EQ(evidence_of(reused.error()).status, registry::RecordStatus::seq_reused);
  // A confirm whose id is the hold's own id (seq 1, spent on the request).
  alice.seq = 0;
  auto as_hold = bank->hold_confirm(end_doc(alice, "hold.confirm", id, 3000));
  ASSERT_FALSE(as_hold);
  EXPECT_EQ(as_hold.error().code, Errc::seq_reused) << as_hold.error().message();
  // Bob's SE restored: se-bob:1 spent on a release of another hold, processed here.
  alice.seq = 2;
  std::string other = place(500);
  ASSERT_TRUE(bank->hold_release(end_doc(bob, "hold.release", other, 500)));
  bob.seq = 0;
  auto bob_reused = bank->hold_release(end_doc(bob, "hold.release", id, 3000));
  ASSERT_FALSE(bob_reused);
  EXPECT_EQ(bob_reused.error().code, Errc::seq_reused) << bob_reused.error().message();
  EXPECT_EQ(status_of(id), "held");
  expect_books(alice_now, 0, 3000);
  // The SE's next fresh seq works.
  alice.seq = 10;
  ASSERT_TRUE(bank->hold_confirm(end_doc(alice, "hold.confirm", id, 3000)));
  expect_books(alice_now, 3000, 0);
}

// A restored payer SE signs a second hold.request under a spent seq (the first
// hold's): refused as seq_reused, nothing more frozen.
TEST_F(HoldAttackTest, ASecondRequestUnderASpentSeqIsSeqReused) {
  std::string id = place(1000);
  alice.seq = 0;
  Json p = request(5000);
  ASSERT_EQ(p["id"], id);
  auto r = bank->hold(cosigned(p, alice, bob));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, Errc::seq_reused) << r.error().message();
  expect_books(9000, 0, 1000);
}

// The registry claim of a confirm succeeded, and then the bank's expiry pass
// ended the hold before the confirm's transaction: the confirm moves nothing
// and is answered hold_resolved with the expiry's receipt; its retries too.
// (The registry keeps a record that the bank claimed the confirm; the bank's
// own table has no answer for it. That record is evidence of a claim, not of a
// payment: the hold's receipts say how it ended.)
TEST_F(HoldAttackTest, AnExpiryBetweenAConfirmsClaimAndItsCommitWins) {
  std::string id = place(2500, 60);
  bool fired = false;
  bank->set_after_claim([&](std::string_view type) {
    if (type != "hold.confirm" || fired) return;
    fired = true;
    clock += 60;
    auto n = bank->expire_holds();
    ASSERT_TRUE(n) << n.error().message();
    EXPECT_EQ(n->ended, 1);
  });
  std::string confirm = end_doc(alice, "hold.confirm", id, 2500);
  auto r = bank->hold_confirm(confirm);
  ASSERT_TRUE(fired);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, Errc::hold_resolved) << r.error().message();
  EXPECT_EQ(receipt_doc(r.error().evidence).str("status"), "expired");
  expect_books(10000, 0, 0);
  auto again = bank->hold_confirm(confirm);
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error().code, Errc::hold_resolved);
  expect_books(10000, 0, 0);
  auto confirm_doc = Document::parse(to_string(jws_parse(confirm)->payload));
  ASSERT_TRUE(confirm_doc);
  auto rec = record_of(confirm_doc->id());
  ASSERT_TRUE(rec);
  EXPECT_EQ(rec->processor, kBank);
  EXPECT_FALSE(*bank->store().find_processed(rec->doc_id))
      << "the bank has no answer of its own for the confirm";
}

// The same race the other way round: the payee's release claimed, then the
// payer's confirm commits first. One end, one movement.
TEST_F(HoldAttackTest, AConfirmBetweenAReleasesClaimAndItsCommitWins) {
  std::string id = place(2500);
  std::string confirm = end_doc(alice, "hold.confirm", id, 2500);
  bool fired = false;
  bank->set_after_claim([&](std::string_view type) {
    if (type != "hold.release" || fired) return;
    fired = true;
    auto c = bank->hold_confirm(confirm);
    ASSERT_TRUE(c) << c.error().message();
  });
  auto r = bank->hold_release(end_doc(bob, "hold.release", id, 2500));
  ASSERT_TRUE(fired);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, Errc::hold_resolved);
  EXPECT_EQ(receipt_doc(r.error().evidence).str("status"), "confirmed");
  expect_books(7500, 2500, 0);
}

// The bank claimed a request (or a confirm) at the registry and died; the
// document's ten minutes passed before anyone sent it again. It is refused as
// expired and nothing moves: no hold from a stale request, and the hold that
// stayed open still ends by a fresh document or by its expiry.
TEST_F(HoldAttackTest, ADocumentClaimedBeforeACrashAndRetriedAfterItsExpiryMovesNothing) {
  auto own_key = PrivateKey::load_pem_file(bank_dir + "/custody.key");
  ASSERT_TRUE(own_key);
  Json p = request(1000);
  std::string jws = cosigned(p, alice, bob);
  ASSERT_TRUE(reg->claim(claim_as(alice.sign(p), kBank, *own_key, bank->chain())));
  clock += 601;
  auto late = bank->hold(jws);
  ASSERT_FALSE(late);
  EXPECT_EQ(late.error().code, Errc::expired);
  expect_books(10000, 0, 0);
  EXPECT_EQ(status_of(p["id"]), "none");

  std::string id = place(2000);
  std::string confirm = end_doc(alice, "hold.confirm", id, 2000);
  ASSERT_TRUE(reg->claim(claim_as(confirm, kBank, *own_key, bank->chain())));
  clock += 601;
  auto stale = bank->hold_confirm(confirm);
  ASSERT_FALSE(stale);
  EXPECT_EQ(stale.error().code, Errc::expired);
  expect_books(8000, 0, 2000);
  ASSERT_TRUE(bank->hold_confirm(end_doc(alice, "hold.confirm", id, 2000)));
  expect_books(8000, 2000, 0);
}

// ------------------------------------------------------------ a third party's SE

// A third party's end of someone else's hold is not_owner whatever it names,
// and once the hold ended it still learns nothing: no receipt as evidence.
TEST_F(HoldAttackTest, AThirdPartysEndIsNotOwnerAndCarriesNoEvidence) {
  std::string id = place(3000);
  auto c = bank->hold_confirm(end_doc(carol, "hold.confirm", id, 3000));
  ASSERT_FALSE(c);
  EXPECT_EQ(c.error().code, Errc::not_owner);
  ASSERT_TRUE(bank->hold_release(end_doc(bob, "hold.release", id, 3000)));
  auto late = bank->hold_confirm(end_doc(carol, "hold.confirm", id, 3000));
  ASSERT_FALSE(late);
  EXPECT_EQ(late.error().code, Errc::not_owner);
  EXPECT_TRUE(late.error().evidence.empty()) << "a third party got the hold's receipt";
  expect_books(10000, 0, 0);
}

// HOLE (privacy, DESIGN.md §7: nothing should reveal amounts or parties to a
// third party): end_hold (src/bank/hold.cc) compares the document's amount
// and currency with the hold's BEFORE it checks that the signer may sign for
// the side it ends, and the refusal names the hold's amount and currency.
// Hold ids are "<payer SE>:<seq>", so anyone with a certified SE can walk a
// payer's seqs with a confirm for 1 fen and read, for each, whether a hold
// exists (hold_unknown vs bad_field) and how much it holds. No money moves.
// Fix: check the signer (not_owner) right after finding the hold, before the
// amount; and say "does not match the hold" without the hold's figures (the
// owner knows them).
TEST_F(HoldAttackTest, AThirdPartyCannotReadAHoldsAmount) {
  std::string id = place(3210);
  auto probe = bank->hold_confirm(end_doc(carol, "hold.confirm", id, 1));
  ASSERT_FALSE(probe);
  EXPECT_EQ(probe.error().code, Errc::not_owner) << probe.error().message();
  EXPECT_EQ(probe.error().detail.find("3210"), std::string::npos) << probe.error().detail;
  auto usd = bank->hold_release(end_doc(carol, "hold.release", id, 3210, "USD"));
  ASSERT_FALSE(usd);
  EXPECT_EQ(usd.error().code, Errc::not_owner) << usd.error().message();
  EXPECT_EQ(usd.error().detail.find("CNY"), std::string::npos) << usd.error().detail;
}

// HOLE: the expiry's document id "<bank>:x:<hold id>" lives in the same
// processed_documents table as every SE document id "<se id>:<seq>", and SE ids
// may contain ':' (the CA certifies whatever serial the manufacturer attested;
// `zf se create --se-id` takes any string). A certified SE whose id is
// "bank-a:x:se-alice" signs any document under seq N, for example a top-up from
// an account that does not exist: the bank consumes it with a signed refusal,
// and the id "bank-a:x:se-alice:N" is taken. When alice's hold "se-alice:N"
// falls due, expire_holds (src/bank/hold.cc, the apply of the expiry) gets
// doc_id_reused from the store, and since only Errc::conflict is skipped
// ("continue") the whole pass returns the error. due_holds hands out the
// soonest holds first, so this one hold is at the head of every later pass:
// it never ends by expiry, and no hold due after it does either. A payer whose
// payee never releases has its money frozen for good.
// Fix: (1) give the bank's own documents a key no SE can produce, e.g. a
// separate guard (the hold's guard key is already unique) and an expiry key
// with a character SE ids may not contain ("<bank>/x/<hold id>", as cash-in
// uses "cash-in/<ref>"), and have the CA refuse SE ids outside [A-Za-z0-9._-];
// (2) in expire_holds, log and skip a hold whose apply fails with anything
// other than conflict instead of returning, so one bad hold cannot stop the rest.
TEST_F(HoldAttackTest, AThirdPartySeCannotStopAHoldFromExpiring) {
  TestSigner mallory = enroll_se(src, world, std::string(kBank) + ":x:se-alice", "mallory");
  std::string id = place(4000, 60);  // se-alice:1
  alice.seq = 1;
  // Another of alice's holds, due a little later.
  Json later = request(1000, "alice-cny", "bob-cny", 120);
  ASSERT_TRUE(bank->hold(cosigned(later, alice, bob)));
  expect_books(5000, 0, 5000);

  mallory.seq = 0;  // its next document is "<bank>:x:se-alice:1"
  auto taken = bank->topup(mallory.sign(mallory.topup(kBank, "no-such-account", 1)));
  ASSERT_TRUE(taken) << taken.error().message();
  EXPECT_EQ(refusal_reason(*taken), "account_unknown");

  clock += 120;
  auto n = bank->expire_holds();
  EXPECT_TRUE(n) << n.error().message();
  EXPECT_EQ(status_of(id), "expired");
  EXPECT_EQ(status_of(later["id"]), "expired");
  expect_books(10000, 0, 0);
}

}  // namespace
}  // namespace zf::test
