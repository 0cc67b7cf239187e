// Controlled payment (escrow between two SEs, docs/se-apdu.md "Controlled
// payment"): real applets over their APDU interface and the real registry
// in-process. Each note ends once, paid or refunded, whatever the order of
// the attempts, replays, power cuts and restored states; until then its value
// is in escrow and nowhere else.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>

#include "registry_world.h"

namespace zf::test {
namespace {

class CpayTest : public SeRegistryTest {
 protected:
  struct Escrow {
    std::string note, id, code;
    std::int64_t exp = 0;
  };
  Escrow escrow(Se& payer, const Se& payee, std::int64_t amount, std::optional<std::int64_t> ttl = std::nullopt) {
    Json r = must(payer.client->cpay_note(pay_params(payee, amount, ttl)), "CPAY NOTE");
    return {r.at("note"), r.at("id"), r.at("code"), r.at("exp")};
  }
  // The payer agrees to pay; the payee's terminal claims and accepts. The
  // registry's record is kept in `last_record` (the payer closes on it).
  Result<Json> accept(Se& payee, const Escrow& e, const Json& key) {
    auto claim = payee.client->cpay_claim(e.note, key);
    if (!claim) return std::unexpected(claim.error());
    auto rec = at_registry(claim->at("claim").get<std::string>());
    if (!rec) return std::unexpected(rec.error());
    last_record = rec->record_jws;
    return payee.client->cpay_accept(e.note, key, rec->record_jws);
  }
  std::string last_record;
  Json release(Se& payer, const Escrow& e) { return must(payer.client->cpay_release(e.id), "RELEASE").at("key"); }
  // The payer takes it back on `refund` (or after the expiry with none).
  Result<Json> take_back(Se& payer, const Escrow& e, const std::string& refund) {
    auto claim = payer.client->cpay_refund_claim(e.id, refund);
    if (!claim) return std::unexpected(claim.error());
    auto rec = at_registry(claim->at("claim").get<std::string>());
    if (!rec) return std::unexpected(rec.error());
    return payer.client->cpay_close(e.id, rec->record_jws);
  }
  std::int64_t in_escrow(Se& se) { return must(se.client->info()).at("escrow_open").get<std::int64_t>(); }
};

TEST_F(CpayTest, PaidWhenThePayerReleasesTheKey) {
  Se& a = active_se("se-a", "alice");
  Se& b = active_se("se-b", "bob");
  w.topup(*a.client, 1000);
  Escrow e = escrow(a, b, 300);
  EXPECT_EQ(balance(a), 700);
  EXPECT_EQ(in_escrow(a), 1);
  // Without the key the payee can neither read nor take it.
  Json payload = jws_payload(e.note);
  EXPECT_FALSE(payload.contains("amount"));
  SE_REFUSES(b, Errc::missing_field, b.client->cpay_claim(e.note, Json()));
  Json got = must(accept(b, e, release(a, e)), "accept");
  EXPECT_EQ(got.at("credited_minor"), 300);
  EXPECT_EQ(got.at("code"), e.code) << "both see the same code";
  EXPECT_EQ(balance(b), 300);
  SE_REFUSES(b, Errc::replayed, b.client->cpay_claim(e.note, release(a, e)));
  // The payer closes on the registry's record of the payee's claim: nothing comes back.
  Json closed = must(a.client->cpay_close(e.id, last_record), "close");
  EXPECT_EQ(closed.at("outcome"), "paid");
  EXPECT_EQ(in_escrow(a), 0);
  EXPECT_EQ(balance(a), 700);
  EXPECT_EQ(balance(b), 300);
}

TEST_F(CpayTest, RefundedWhenThePayeeSignsARefundAndNeverAcceptedAfter) {
  Se& a = active_se("se-a", "alice");
  Se& b = active_se("se-b", "bob");
  w.topup(*a.client, 1000);
  Escrow e = escrow(a, b, 300);
  Json key = release(a, e);  // even a key released before the refund does not help
  Json refund = must(b.client->cpay_refund(e.note), "refund");
  Json back = must(take_back(a, e, refund.at("refund")), "take back");
  EXPECT_EQ(back.at("outcome"), "refunded");
  EXPECT_EQ(balance(a), 1000);
  EXPECT_EQ(in_escrow(a), 0);
  // The payee that refunded never accepts, even with the key released.
  SE_REFUSES(b, Errc::replayed, b.client->cpay_claim(e.note, key));
  SE_REFUSES(a, Errc::not_found, a.client->cpay_release(e.id));
  EXPECT_EQ(balance(b), 0);
  // The refund applies once.
  SE_REFUSES(a, Errc::not_found, take_back(a, e, refund.at("refund")));
  EXPECT_EQ(balance(a), 1000);
}

// Both endings attempted on one note, in either order: exactly one wins.
TEST_F(CpayTest, AcceptThenRefundOrRefundThenAcceptEndsExactlyOnce) {
  Se& a = active_se("se-a", "alice");
  Se& b = active_se("se-b", "bob");
  w.topup(*a.client, 1000);
  Escrow first = escrow(a, b, 100);
  must(accept(b, first, release(a, first)), "accept");
  SE_REFUSES(b, Errc::replayed, b.client->cpay_refund(first.note));
  Escrow second = escrow(a, b, 200);
  Json refund = must(b.client->cpay_refund(second.note));
  SE_REFUSES(b, Errc::replayed, accept(b, second, release(a, second)));
  must(take_back(a, second, refund.at("refund")), "take back");
  EXPECT_EQ(balance(a), 900);
  EXPECT_EQ(balance(b), 100);
}

// A payee state restored to before its refund cannot take the money too:
// the payer's claim of its note came first at the registry.
TEST_F(CpayTest, ARestoredPayeeCannotTakeBothEndings) {
  Se& a = active_se("se-a", "alice");
  Se& b = active_se("se-b", "bob");
  w.topup(*a.client, 1000);
  Escrow e = escrow(a, b, 400);
  Json before = b.applet->state_json();
  Json key = release(a, e);  // alice agreed to pay at first
  Json refund = must(b.client->cpay_refund(e.note));
  must(take_back(a, e, refund.at("refund")), "take back");
  load(b, before);  // bob's terminal restores the state from before the refund
  Json claim = must(b.client->cpay_claim(e.note, key), "the restored SE signs a claim");
  auto rec = must(at_registry(claim.at("claim").get<std::string>()), "registry");
  EXPECT_EQ(rec.status, RecordStatus::already_processed);
  SE_REFUSES(b, Errc::replayed, b.client->cpay_accept(e.note, key, rec.record_jws));
  EXPECT_EQ(balance(a) + balance(b), 1000);
  EXPECT_EQ(balance(b), 0);
}

TEST_F(CpayTest, KeysRefundsAndRecordsOfOtherNotesOrOtherSignersAreRefused) {
  Se& a = active_se("se-a", "alice");
  Se& b = active_se("se-b", "bob");
  Se& c = active_se("se-c", "carol");
  w.topup(*a.client, 1000);
  Escrow one = escrow(a, b, 100);
  Escrow two = escrow(a, b, 200);
  // The key of note two does not open note one.
  SE_REFUSES(b, Errc::decrypt_failed, b.client->cpay_claim(one.note, release(a, two)));
  // A refund by a third SE, or one of another note, takes nothing back.
  SE_REFUSES(c, Errc::misaddressed, c.client->cpay_refund(one.note));
  Json refund_two = must(b.client->cpay_refund(two.note));
  SE_REFUSES(a, Errc::receipt_mismatch, a.client->cpay_refund_claim(one.id, refund_two.at("refund")));
  // Before the expiry, no refund: no claim.
  SE_REFUSES(a, Errc::not_expired, a.client->cpay_refund_claim(one.id, ""));
  // A tampered note does not verify.
  std::string bad = one.note;
  const std::size_t sig = bad.rfind('.') + 10;
  bad[sig] = bad[sig] == 'A' ? 'B' : 'A';
  SE_REFUSES(b, Errc::bad_signature, b.client->cpay_claim(bad, release(a, one)));
  EXPECT_EQ(balance(a), 700);
  EXPECT_EQ(balance(b), 0);
}

// After the expiry the payee can only refund, and the payer may take the value
// back without a refund: the registry takes no claim of the payee's any more.
TEST_F(CpayTest, AfterTheExpiryThePayeeCannotAcceptAndThePayerTakesItBack) {
  Se& a = active_se("se-a", "alice");
  Se& b = active_se("se-b", "bob");
  w.topup(*a.client, 1000);
  Escrow e = escrow(a, b, 250, 60);
  Json key = release(a, e);
  w.now = e.exp;
  SE_REFUSES(b, Errc::expired, b.client->cpay_claim(e.note, key));
  Json back = must(take_back(a, e, ""), "take back after the expiry");
  EXPECT_EQ(back.at("outcome"), "refunded");
  EXPECT_EQ(balance(a), 1000);
}

// A claim the registry took before the expiry is accepted after it: the
// payer closes the note as paid on that record, so the payee must be able to
// credit it (models/cpay.pml, ACCEPT_CHECKS_TIME).
TEST_F(CpayTest, AClaimMadeBeforeTheExpiryIsAcceptedAfterIt) {
  Se& a = active_se("se-a", "alice");
  Se& b = active_se("se-b", "bob");
  w.topup(*a.client, 1000);
  Escrow e = escrow(a, b, 250, 60);
  Json key = release(a, e);
  Json claim = must(b.client->cpay_claim(e.note, key));
  auto rec = must(at_registry(claim.at("claim").get<std::string>()));
  w.now = e.exp + 3600;  // the payee's terminal comes back an hour after the expiry
  Json closed = must(a.client->cpay_close(e.id, rec.record_jws), "close on the payee's record");
  EXPECT_EQ(closed.at("outcome"), "paid");
  must(b.client->cpay_accept(e.note, key, rec.record_jws), "accept after the expiry on a claim made before it");
  EXPECT_EQ(balance(a), 750);
  EXPECT_EQ(balance(b), 250);
  // A fresh claim after the expiry is still refused, and so is the payer's reclaim.
  SE_REFUSES(a, Errc::not_found, a.client->cpay_refund_claim(e.id, ""));
}

// A payee that claimed a note never refunds it: the record of that claim
// closes the note at the payer as paid, and a refund too would leave the value
// in nobody's balance (models/cpay.pml, REFUND_AFTER_CLAIM).
TEST_F(CpayTest, APayeeThatClaimedANoteNeverRefundsIt) {
  Se& a = active_se("se-a", "alice");
  Se& b = active_se("se-b", "bob");
  w.topup(*a.client, 1000);
  Escrow e = escrow(a, b, 300);
  Json key = release(a, e);
  Json claim = must(b.client->cpay_claim(e.note, key));
  auto rec = must(at_registry(claim.at("claim").get<std::string>()));
  load(b, b.applet->state_json());  // the mark survives a power cut
  SE_REFUSES(b, Errc::conflict, b.client->cpay_refund(e.note));
  must(a.client->cpay_close(e.id, rec.record_jws), "close as paid");
  must(b.client->cpay_accept(e.note, key, rec.record_jws), "the payee still takes it");
  EXPECT_EQ(balance(a) + balance(b), 1000);
  EXPECT_EQ(balance(b), 300);
}

// Power cuts between the steps: every step is safe to run again.
TEST_F(CpayTest, PowerCutsBetweenTheStepsThenRetryEndOnce) {
  Se& a = active_se("se-a", "alice");
  Se& b = active_se("se-b", "bob");
  w.topup(*a.client, 1000);
  Escrow e = escrow(a, b, 300);
  load(a, a.applet->state_json());
  Json key = release(a, e);
  Json claim = must(b.client->cpay_claim(e.note, key));
  auto rec = must(at_registry(claim.at("claim").get<std::string>()));
  load(b, b.applet->state_json());  // the payee loses power after the record, before the credit
  auto again = must(at_registry(must(b.client->cpay_claim(e.note, key)).at("claim").get<std::string>()));
  EXPECT_EQ(again.status, RecordStatus::claimed);
  must(b.client->cpay_accept(e.note, key, again.record_jws), "accept on the retried record");
  SE_REFUSES(b, Errc::replayed, b.client->cpay_accept(e.note, key, rec.record_jws));
  EXPECT_EQ(balance(b), 300);
  // The payer closes on the payee's record.
  Json closed = must(a.client->cpay_close(e.id, rec.record_jws), "close on the payee's record");
  EXPECT_EQ(closed.at("outcome"), "paid");
  EXPECT_EQ(in_escrow(a), 0);
  EXPECT_EQ(balance(a) + balance(b), 1000);
}

}  // namespace
}  // namespace zf::test
