// Attacks on expiry and reclaim (docs/se-apdu.md "Expiry and reclaim",
// docs/registry-api.md "Expiry and reclaim"): real applets driven over their
// APDU interface by terminals the attacker controls (raw commands, lying host
// clocks, restored copies of a sealed state), and the real registry in-process
// on its own clock, with its SQLite store. Every test ends with the value of
// every note in exactly one place: an SE balance, or still in flight where
// no SE can credit it twice.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "registry_world.h"

namespace zf::test {
namespace {

class ReclaimAttackTest : public SeRegistryTest {};

// ---------------------------------------------------------------- clocks

// The payer reclaimed; the payee's terminal sets its host clock back so that
// its SE still thinks the note is valid. The registry answers from the
// payer's stored row, and the payee SE credits on no record but its own.
TEST_F(ReclaimAttackTest, APayeeCannotReceiveAReclaimedNoteWhateverItsHostClockSays) {
  Se& a = active_se("se-a", "alice");
  Se& b = active_se("se-b", "bob");
  w.topup(*a.client, 1000);
  Paid n = pay(a, b, 300, 60);
  w.now = n.exp;
  Json back = must(reclaim(a, n.id), "reclaim");
  EXPECT_EQ(back.at("outcome"), "reclaimed");
  EXPECT_EQ(balance(a), 1000);

  b.skew = -120;  // b's host says the note has two minutes left
  Json claim = must(b.client->claim_note(n.note), "the SE signs: its host says the note is valid");
  auto answer = must(at_registry(claim.at("claim").get<std::string>()), "registry");
  EXPECT_EQ(answer.status, RecordStatus::already_processed);
  EXPECT_EQ(view(answer.record_jws).processor, "se-a");
  SE_REFUSES(b, Errc::replayed, b.client->receive_note(n.note, answer.record_jws));
  // Nor on the payer's own record of the reclaim, which the payee can read by presenting the note.
  std::string payer_record = must(reg->read_record(n.id, n.note, ""), "read record");
  SE_REFUSES(b, Errc::replayed, b.client->receive_note(n.note, payer_record));
  EXPECT_EQ(balance(b), 0);
  EXPECT_EQ(balance(a), 1000);
}

// The payee claimed a second before the expiry and its terminal crashed. The
// payer's host clock runs ahead and tries to take the note back: the
// registry names the payee, the payer's SE closes the note with nothing back,
// and the payee still receives it after the expiry.
TEST_F(ReclaimAttackTest, APayeeThatClaimedInTimeKeepsTheNoteWhateverThePayersClockSays) {
  Se& a = active_se("se-a", "alice");
  Se& b = active_se("se-b", "bob");
  w.topup(*a.client, 1000);
  Paid n = pay(a, b, 300, 60);
  w.now = n.exp - 1;
  Json claim = must(b.client->claim_note(n.note), "claim");
  auto won = must(at_registry(claim.at("claim").get<std::string>()), "registry");
  ASSERT_EQ(won.status, RecordStatus::claimed);
  EXPECT_EQ(view(won.record_jws).claimed_at, n.exp - 1);
  // (b's terminal crashes here, before RECEIVE NOTE.)

  a.skew = 3600;
  registry_refuses(must(a.client->reclaim_claim(n.id)).at("claim").get<std::string>(),
                   Errc::not_yet_valid, "signed an hour in the registry's future");
  a.skew = 200;  // within the five minutes of clock difference the registry allows
  Json r = must(reclaim(a, n.id), "the payer's reclaim settles the note");
  EXPECT_EQ(r.at("outcome"), "received");
  EXPECT_EQ(balance(a), 700);
  EXPECT_EQ(must(a.client->open_notes()).size(), 0u);

  w.now = n.exp + 600;
  SE_REFUSES(b, Errc::expired, b.client->claim_note(n.note));
  // The payee's terminal repeats the claim it made in time and gets the stored record.
  auto again = must(at_registry(claim.at("claim").get<std::string>()), "retry");
  EXPECT_EQ(again.record_jws, won.record_jws);
  EXPECT_EQ(must(b.client->receive_note(n.note, again.record_jws)).at("credited_minor"), 300);
  EXPECT_EQ(balance(a) + balance(b), 1000);
  SE_REFUSES(b, Errc::replayed, b.client->receive_note(n.note, again.record_jws));
}

// The payer's host clock runs ahead, so its SE signs a reclaim claim before
// the expiry. The registry judges by its own clock: nothing is recorded, the
// payee receives in time, and the claim kept for later gets nothing back.
TEST_F(ReclaimAttackTest, APayerWhoseClockRunsAheadCannotReclaimBeforeTheRegistrysExpiry) {
  Se& a = active_se("se-a", "alice");
  Se& b = active_se("se-b", "bob");
  w.topup(*a.client, 1000);
  Paid n = pay(a, b, 300, 120);
  a.skew = 120;
  Json early = must(a.client->reclaim_claim(n.id), "the SE signs: its host says the note expired");
  const std::string early_claim = early.at("claim");
  EXPECT_EQ(jws_payload(early_claim).at("doc_exp"), n.exp)
      << "the note's own expiry, whatever the host says";
  registry_refuses(early_claim, Errc::not_expired, "two minutes early");
  w.now += 60;
  registry_refuses(early_claim, Errc::not_expired, "a minute early");
  EXPECT_EQ(must(receive(b, n.note)).at("credited_minor"), 300);

  w.now = n.exp + 1;
  auto late = must(at_registry(early_claim), "after the expiry");
  EXPECT_EQ(late.status, RecordStatus::already_processed);
  EXPECT_EQ(must(a.client->close_note(n.id, late.record_jws)).at("outcome"), "received");
  EXPECT_EQ(balance(a), 700);
  EXPECT_EQ(balance(b), 300);
}

// The payee's host clock runs behind, so its SE signs a claim after the
// note expired. The registry refuses it; the payer takes the value back.
TEST_F(ReclaimAttackTest, APayeeWhoseClockRunsBehindCannotClaimAfterTheRegistrysExpiry) {
  Se& a = active_se("se-a", "alice");
  Se& b = active_se("se-b", "bob");
  w.topup(*a.client, 1000);
  Paid n = pay(a, b, 300, 60);
  w.now = n.exp;
  b.skew = -30;
  Json claim = must(b.client->claim_note(n.note), "claim");
  registry_refuses(claim.at("claim").get<std::string>(), Errc::expired, "at the registry's expiry");
  w.now += 100;
  registry_refuses(claim.at("claim").get<std::string>(), Errc::expired, "later");
  SE_REFUSES(b, Errc::record_required, b.client->receive_note(n.note, ""));
  EXPECT_EQ(must(reclaim(a, n.id)).at("credited_minor"), 300);
  auto after = must(at_registry(claim.at("claim").get<std::string>()), "once the payer holds it");
  EXPECT_EQ(after.status, RecordStatus::already_processed);
  SE_REFUSES(b, Errc::replayed, b.client->receive_note(n.note, after.record_jws));
  EXPECT_EQ(balance(a), 1000);
  EXPECT_EQ(balance(b), 0);
}

// ---------------------------------------------------------------- records

// Genuine registry records, but of another note of this SE, of another SE's
// note, or answers that are not this SE's won reclaim: none credits, none
// closes, and the right one still credits once.
TEST_F(ReclaimAttackTest, RealRecordsOfOtherNotesOrOtherSesNeitherCreditNorClose) {
  Se& a = active_se("se-a", "alice");
  Se& b = active_se("se-b", "bob");
  Se& c = active_se("se-c", "carol");
  w.topup(*a.client, 1000);
  w.topup(*c.client, 1000);
  Paid n1 = pay(a, b, 100, 60);
  Paid n2 = pay(a, b, 200, 60);
  Paid n3 = pay(c, b, 300, 60);
  Paid n4 = pay(a, b, 400, 3600);
  // n4 is received by b in time: its record is the payee's.
  must(receive(b, n4.note), "receive n4");
  std::string r4 = must(reg->read_record(n4.id, n4.note, ""));
  w.now = n1.exp;
  // c reclaims n3: a genuine reclaim record, of another SE.
  std::string r3 =
      must(at_registry(must(c.client->reclaim_claim(n3.id)).at("claim").get<std::string>()))
          .record_jws;
  // a's reclaim of n1, recorded but not yet credited.
  std::string r1 =
      must(at_registry(must(a.client->reclaim_claim(n1.id)).at("claim").get<std::string>()))
          .record_jws;
  // A late payee claim for n1 (b's host clock set back): an already_processed answer naming se-a.
  b.skew = -10;
  auto late1 = must(at_registry(must(b.client->claim_note(n1.note)).at("claim").get<std::string>()),
                    "late claim");
  b.skew = 0;
  ASSERT_EQ(late1.status, RecordStatus::already_processed);
  ASSERT_EQ(view(late1.record_jws).processor, "se-a");

  SE_REFUSES(a, Errc::record_mismatch, a.client->close_note(n2.id, r1));  // another note of this SE
  SE_REFUSES(a, Errc::record_mismatch, a.client->close_note(n2.id, r3));  // another SE's note
  SE_REFUSES(a, Errc::record_mismatch, a.client->close_note(n2.id, r4));  // another note, received
  SE_REFUSES(a, Errc::record_mismatch, a.client->close_note(n1.id, r3));
  SE_REFUSES(a, Errc::record_mismatch, a.client->close_note(n1.id, r4));
  SE_REFUSES(a, Errc::record_mismatch,
             a.client->close_note(n1.id, late1.record_jws));        // not a won claim
  SE_REFUSES(a, Errc::not_found, a.client->close_note(n3.id, r3));  // not paid here
  // The payee's record of n4 closes n4, and only that, with nothing back.
  EXPECT_EQ(must(a.client->close_note(n4.id, r4)).at("outcome"), "received");
  SE_REFUSES(a, Errc::not_found, a.client->close_note(n4.id, r4));
  // The payee cannot use the payer's record either.
  SE_REFUSES(b, Errc::replayed, b.client->receive_note(n1.note, r1));
  EXPECT_EQ(balance(a), 300);

  EXPECT_EQ(must(a.client->close_note(n1.id, r1)).at("credited_minor"), 100);
  SE_REFUSES(a, Errc::not_found, a.client->close_note(n1.id, r1));
  SE_REFUSES(a, Errc::record_mismatch, a.client->close_note(n2.id, r1));
  EXPECT_EQ(balance(a), 400);
  EXPECT_EQ(must(a.client->open_notes()).size(), 1u) << "n2 stays open until its own record";
  EXPECT_EQ(must(reclaim(a, n2.id)).at("credited_minor"), 200);
  EXPECT_EQ(balance(a), 600);
  EXPECT_EQ(balance(b), 400);
  EXPECT_EQ(must(c.client->close_note(n3.id, r3)).at("credited_minor"), 300);
  EXPECT_EQ(balance(c), 1000);
}

// Two reclaim claims for one note (a terminal that asked twice, or repeated
// after a crash) are one claim at the registry: the same record, one credit.
TEST_F(ReclaimAttackTest, TwoReclaimClaimsForOneNoteCreditOnce) {
  Se& a = active_se("se-a", "alice");
  Se& b = active_se("se-b", "bob");
  w.topup(*a.client, 1000);
  Paid n = pay(a, b, 300, 60);
  w.now = n.exp;
  std::string c1 = must(a.client->reclaim_claim(n.id)).at("claim");
  w.now += 5;
  std::string c2 = must(a.client->reclaim_claim(n.id)).at("claim");
  EXPECT_NE(c1, c2);
  auto r1 = must(at_registry(c1));
  auto r2 = must(at_registry(c2));
  EXPECT_EQ(r1.status, RecordStatus::claimed);
  EXPECT_EQ(r2.status, RecordStatus::claimed);
  EXPECT_EQ(r1.record_jws, r2.record_jws) << "one stored record";
  EXPECT_EQ(must(a.client->close_note(n.id, r2.record_jws)).at("credited_minor"), 300);
  SE_REFUSES(a, Errc::not_found, a.client->close_note(n.id, r1.record_jws));
  SE_REFUSES(a, Errc::not_found, a.client->reclaim_claim(n.id));
  EXPECT_EQ(balance(a), 1000);
  EXPECT_EQ(must(a.client->info()).at("reclaimed_minor").at("CNY"), 300);
}

// Another SE (its terminal under the attacker's control) tries to hold a
// note it was not paid, to block both payer and payee: its SE signs a claim
// only for a note addressed to it and a reclaim only for a note it paid.
TEST_F(ReclaimAttackTest, AnotherSeCannotClaimOrReclaimSomeoneElsesNote) {
  Se& a = active_se("se-a", "alice");
  Se& b = active_se("se-b", "bob");
  Se& m = active_se("se-m", "mallory");
  w.topup(*a.client, 1000);
  Paid n = pay(a, b, 300, 60);
  SE_REFUSES(m, Errc::misaddressed, m.client->claim_note(n.note));
  w.now = n.exp;
  SE_REFUSES(m, Errc::not_found, m.client->reclaim_claim(n.id));
  m.skew = -30;
  SE_REFUSES(m, Errc::misaddressed, m.client->claim_note(n.note));
  // The payer's own record does not help it either.
  EXPECT_EQ(must(reclaim(a, n.id)).at("credited_minor"), 300);
  std::string r = must(reg->read_record(n.id, n.note, ""));
  SE_REFUSES(m, Errc::not_found, m.client->close_note(n.id, r));
  SE_REFUSES(m, Errc::misaddressed, m.client->receive_note(n.note, r));
  EXPECT_EQ(balance(a), 1000);
  EXPECT_EQ(balance(m), 0);
}

// ---------------------------------------------------------------- restored and cloned states

// The attacker keeps a copy of the payer's sealed state with the note open,
// reclaims, spends the value, then restores the copy: the restored SE takes
// the same record again (its state cannot tell), but the value cannot leave
// it unnoticed by the obvious way: the next spend reuses a spent sequence
// number, which the registry refuses with an alert naming the SE (DESIGN.md §5).
TEST_F(ReclaimAttackTest, ARestoredStateRecreditsAReclaimButItsNextSpendIsCaught) {
  Se& a = active_se("se-a", "alice");
  Se& b = active_se("se-b", "bob");
  Se& c = active_se("se-c", "carol");
  w.topup(*a.client, 1000);
  Paid n1 = pay(a, b, 300, 60);
  const Json kept = a.applet->state_json();  // the attacker's copy: n1 open, 700
  w.now = n1.exp;
  EXPECT_EQ(must(reclaim(a, n1.id)).at("credited_minor"), 300);
  Paid n2 = pay(a, c, 1000);
  EXPECT_EQ(must(receive(c, n2.note)).at("credited_minor"), 1000);
  EXPECT_EQ(balance(a), 0);

  load(a, kept);
  EXPECT_EQ(balance(a), 700);
  EXPECT_EQ(must(reclaim(a, n1.id)).at("credited_minor"), 300);
  EXPECT_EQ(balance(a), 1000) << "value the restored SE holds but cannot spend unnoticed";

  // (Carol's SE would refuse the id it already received; Bob's has not seen it.)
  Paid n2b = pay(a, b, 1000, 60);
  EXPECT_EQ(n2b.id, n2.id) << "the restored SE signs under the sequence number it already spent";
  Json claim = must(b.client->claim_note(n2b.note));
  auto answer = must(at_registry(claim.at("claim").get<std::string>()));
  EXPECT_EQ(answer.status, RecordStatus::seq_reused);
  SE_REFUSES(b, Errc::seq_reused, b.client->receive_note(n2b.note, answer.record_jws));
  auto al = alerts();
  ASSERT_EQ(al.size(), 1u);
  EXPECT_EQ(al[0].se_id, "se-a");
  EXPECT_EQ(al[0].seq, 3);
  // Nor does the refused note come back to it after its expiry.
  w.now = n2b.exp;
  auto back = at_registry(must(a.client->reclaim_claim(n2b.id)).at("claim").get<std::string>());
  ASSERT_TRUE(back) << back.error().message();
  EXPECT_EQ(back->status, RecordStatus::seq_reused);
  SE_REFUSES(a, Errc::seq_reused, a.client->close_note(n2b.id, back->record_jws));
  EXPECT_EQ(balance(c), 1000) << "carol got the value once";
  EXPECT_EQ(balance(b), 0);
}

// HOLE (kept disabled). The same restored SE first spends the sequence
// number it already used on a document nobody ever claims (a top-up request
// it never sends to a bank), then pays under the next number, which no
// document used before: the registry sees one consistent history, raises no
// alert, and the payee credits value that was already spent. Nothing here depends on reclaim (any restored state can skip
// its spent numbers this way); the reclaim's second credit is only where this
// test's value comes from. Safe outcome: the spend is refused or alerted.
TEST_F(ReclaimAttackTest,
       DISABLED_ARestoredStateCannotSkipItsSpentSequenceNumbersToSpendUnnoticed) {
  Se& a = active_se("se-a", "alice");
  Se& b = active_se("se-b", "bob");
  Se& c = active_se("se-c", "carol");
  w.topup(*a.client, 1000);
  Paid n1 = pay(a, b, 300, 60);
  const Json kept = a.applet->state_json();
  w.now = n1.exp;
  must(reclaim(a, n1.id));
  Paid n2 = pay(a, c, 1000);
  must(receive(c, n2.note));

  load(a, kept);
  must(reclaim(a, n1.id));
  ASSERT_EQ(balance(a), 1000);
  // Spend seq 3 again on a document nobody will ever claim.
  Json burn = must(a.client->topup_request(
      Json{{"amount", 1}, {"currency", "CNY"}, {"bank", kBank}, {"account", kAccount}}));
  EXPECT_EQ(burn.at("id"), n2.id);
  Paid n3 = pay(a, c, 1000);  // seq 4: never used
  auto got = receive(c, n3.note);
  EXPECT_FALSE(got && alerts().empty())
      << "carol credited 1000 a second time and the registry raised no alert";
  EXPECT_EQ(balance(c), 1000) << "value created";
}

// Two copies of one sealed state each pay a different note under the same
// sequence number; nobody claims either. Only one can come back: the other
// copy's reclaim is a second document under a spent (SE, seq).
TEST_F(ReclaimAttackTest, TwoCopiesOfAPayerCannotBothTakeBackNotesUnderOneSeq) {
  Se& a = active_se("se-a", "alice");
  Se& b = active_se("se-b", "bob");
  Se& c = active_se("se-c", "carol");
  w.topup(*a.client, 1000);
  const Json s0 = a.applet->state_json();
  auto copy = std::make_unique<Se>();
  copy->id = a.id;
  copy->user = a.user;
  copy->pairing_key = a.pairing_key;
  Se& a2 = *copy;
  ses.push_back(std::move(copy));
  load(a2, s0);

  Paid n = pay(a, b, 300, 60);
  Paid m = pay(a2, c, 500, 60);
  ASSERT_EQ(n.id, m.id);
  w.now = std::max(n.exp, m.exp);
  EXPECT_EQ(must(reclaim(a, n.id)).at("credited_minor"), 300);
  auto answer =
      must(at_registry(must(a2.client->reclaim_claim(m.id)).at("claim").get<std::string>()));
  EXPECT_EQ(answer.status, RecordStatus::seq_reused);
  SE_REFUSES(a2, Errc::seq_reused, a2.client->close_note(m.id, answer.record_jws));
  // The first copy's record does not credit the second: another digest.
  std::string first = must(reg->read_record(n.id, n.note, ""));
  SE_REFUSES(a2, Errc::record_mismatch, a2.client->close_note(m.id, first));
  auto al = alerts();
  ASSERT_EQ(al.size(), 1u);
  EXPECT_EQ(al[0].se_id, "se-a");
  EXPECT_EQ(balance(a), 1000);
  EXPECT_EQ(balance(a2), 500);
  EXPECT_EQ(balance(b) + balance(c), 0);
}

// ---------------------------------------------------------------- third parties

// Once a hole: a custody key (any bank's) signed a claim for an SE's
// payment note and the registry recorded it, although no bank ever processes a
// payment note, and cannot check its doc_exp or digest (it never sees the
// note). With a made-up digest the payee's genuine claim then looks like a
// second document under the payer's seq: seq_reused, with a clone alert
// naming the innocent payer; after the expiry the payer's reclaim is refused
// the same way (with the note's own digest both would be already_processed,
// naming the bank, which neither SE accepts). The value is stranded in flight
// for ever and the note holds one of the payer's 256 open-note places for
// ever. Now the registry refuses the claim (not_owner) and the note is received.
TEST_F(ReclaimAttackTest, ABankCannotClaimAPaymentNoteAndStrandItsValue) {
  Se& a = active_se("se-a", "alice");
  Se& b = active_se("se-b", "bob");
  w.topup(*a.client, 1000);
  Paid n = pay(a, b, 300, 60);
  registry::ClaimFields f{
      n.id, "se-a", 2, "payment.note", kBank, sha256(as_bytes("blocked")), std::nullopt};
  registry_refuses(bank_claim(f), Errc::not_owner, "a bank processes no payment note");
  auto got = receive(b, n.note);
  EXPECT_TRUE(got) << "the payee cannot receive: " << (got ? "" : got.error().message());
  // After the expiry the payer's reclaim is told the payee holds it, which closes the note.
  w.now = n.exp;
  auto closed = reclaim(a, n.id);
  ASSERT_TRUE(closed) << closed.error().message();
  EXPECT_EQ(closed->at("outcome"), "received");
  EXPECT_EQ(balance(a) + balance(b), 1000) << "value stranded in flight";
  EXPECT_EQ(must(a.client->open_notes()).size(), 0u) << "the note holds an open-note place for ever";
}

// The same after the expiry: a bank's claim without doc_exp, never judged
// against the expiry, once beat the payer's reclaim. Now refused too.
TEST_F(ReclaimAttackTest, ABankCannotBlockAReclaimByClaimingAnExpiredNoteWithoutItsExpiry) {
  Se& a = active_se("se-a", "alice");
  Se& b = active_se("se-b", "bob");
  w.topup(*a.client, 1000);
  Paid n = pay(a, b, 300, 60);
  w.now = n.exp + 1;
  registry::ClaimFields f{
      n.id, "se-a", 2, "payment.note", kBank, sha256(as_bytes("blocked")), std::nullopt};
  registry_refuses(bank_claim(f), Errc::not_owner, "after the expiry, without doc_exp");
  auto back = reclaim(a, n.id);
  EXPECT_TRUE(back) << (back ? "" : back.error().message());
  EXPECT_EQ(balance(a), 1000) << "the payer's value is stranded";
}

// HOLE (kept disabled). A bank claims an SE's next sequence number under a
// document type banks do process (deposit.note) with a made-up digest, before
// the SE has signed anything under it. When the SE then pays under that
// number, the payee's genuine claim is "a second document under a spent
// (SE, seq)": seq_reused, and a clone alert naming the innocent SE, whose
// note neither the payee nor (after the expiry) the payer can settle.
// Safe outcome: no alert, and the payee receives.
TEST_F(ReclaimAttackTest, DISABLED_ABankCannotFrameAnSeAsClonedByClaimingItsNextSeq) {
  Se& a = active_se("se-a", "alice");
  Se& b = active_se("se-b", "bob");
  w.topup(*a.client, 1000);
  registry::ClaimFields f{
      "se-a:2", "se-a", 2, "deposit.note", kBank, sha256(as_bytes("made up")), std::nullopt};
  auto pre = at_registry(bank_claim(f));
  EXPECT_FALSE(pre && pre->status == RecordStatus::claimed)
      << "the registry recorded a claim for a document that does not exist";
  Paid n = pay(a, b, 300, 60);
  ASSERT_EQ(n.id, "se-a:2");
  auto got = receive(b, n.note);
  EXPECT_TRUE(got) << (got ? "" : got.error().message());
  EXPECT_THAT(alerts(), ::testing::IsEmpty()) << "an innocent SE is named as cloned";
  w.now = n.exp;
  if (!got) {
    auto back = reclaim(a, n.id);
    EXPECT_TRUE(back) << (back ? "" : back.error().message());
  }
  EXPECT_EQ(balance(a) + balance(b), 1000);
}

// An SE once signed notes that expired after its own certificate did (up to
// 366 days ahead, whatever the certificate had left): once the payer's
// certificate had expired, the payer could no longer reclaim (the registry
// refuses a claim signed under an expired certificate) and a payee that had
// claimed but not yet received could not receive. Now no note outlives its
// payer's certificate less a week (Applet::kReclaimWindowS): the default
// lifetime shrinks to fit, and a longer one asked for is refused.
TEST_F(ReclaimAttackTest, ANoteNeverOutlivesThePayersCertificate) {
  Se& a = active_se("se-a", "alice", {}, 10);
  Se& b = active_se("se-b", "bob");
  w.topup(*a.client, 1000);
  SE_REFUSES(a, Errc::bad_field, a.client->payment_note(pay_params(b, 300, 30 * 86400)));
  Paid claimed = pay(a, b, 300);
  Paid unclaimed = pay(a, b, 200);
  auto cert = must(certificates_from_pem(must(a.client->certificate_pem()))).front();
  EXPECT_LE(claimed.exp, static_cast<std::int64_t>(cert.not_after()) - Applet::kReclaimWindowS);
  EXPECT_GT(claimed.exp, w.now + 2 * 86400) << "the default is cut to fit, not refused";
  // Bob claims the first note on day 1 and receives it on day 2.
  days_pass(1, {&b});
  Json claim = must(b.client->claim_note(claimed.note));
  auto won = must(at_registry(claim.at("claim").get<std::string>()));
  ASSERT_EQ(won.status, RecordStatus::claimed);
  days_pass(1, {&a, &b});
  EXPECT_THAT(b.client->receive_note(claimed.note, won.record_jws), IsOk());
  // After the expiry, still under the certificate, the other note comes back.
  w.now = unclaimed.exp;
  days_pass(0, {&a, &b});
  auto back = reclaim(a, unclaimed.id);
  EXPECT_TRUE(back) << (back ? "" : back.error().message());
  EXPECT_EQ(balance(a) + balance(b), 1000);
  // Within a week of the certificate's end the SE pays no note at all.
  w.now = static_cast<std::int64_t>(cert.not_after()) - Applet::kReclaimWindowS;
  days_pass(0, {&a});
  SE_REFUSES(a, Errc::bad_field, a.client->payment_note(pay_params(b, 1)));
}

// ---------------------------------------------------------------- limits

// A reclaim once credited without the room check every other credit of a
// payee makes (max_balance_minor, pending top-ups counted): with the room the
// paid note left filled by a note received meanwhile, it took the balance past
// the SE's maximum. Now the reclaim is refused with limit_exceeded, the note
// stays open, and once there is room the same reclaim credits it, once.
TEST_F(ReclaimAttackTest, AReclaimNeverTakesTheBalancePastTheSesMaximum) {
  Se& a = active_se("se-a", "alice", Json{{"max_balance_minor", 1000}});
  Se& b = active_se("se-b", "bob");
  Se& c = active_se("se-c", "carol");
  w.topup(*a.client, 1000);
  w.topup(*c.client, 1000);
  Paid n = pay(a, b, 400, 60);
  Paid m = pay(c, a, 400);
  must(receive(a, m.note));
  ASSERT_EQ(balance(a), 1000);
  w.now = n.exp;
  auto back = reclaim(a, n.id);
  EXPECT_LE(balance(a), 1000) << "max_balance_minor is 1000";
  ASSERT_FALSE(back);
  EXPECT_EQ(back.error().code, Errc::limit_exceeded) << back.error().message();
  EXPECT_EQ(must(a.client->open_notes()).size(), 1u) << "kept open until there is room";
  // Room again: the registry's stored record of the same reclaim credits it.
  Paid room = pay(a, b, 500);
  must(receive(b, room.note));
  Json again = must(reclaim(a, n.id));
  EXPECT_EQ(again.at("outcome"), "reclaimed");
  EXPECT_EQ(balance(a), 900);
  SE_REFUSES(a, Errc::not_found, reclaim(a, n.id));
}

// At 256 open notes the SE pays no more, changes nothing, and forgets none:
// every one of them is still settled after its expiry, received ones by the
// payee's record and unreceived ones by the reclaim, and then it pays again.
TEST_F(ReclaimAttackTest, TheOpenNoteLimitRefusesPaymentsButNeverForgetsANote) {
  Se& a = active_se("se-a", "alice");
  Se& b = active_se("se-b", "bob");
  w.topup(*a.client, 100000);
  std::vector<Paid> notes;
  for (std::size_t i = 0; i < Applet::kMaxOutstanding; ++i)
    notes.push_back(pay(a, b, 1 + i % 3, 60));
  SE_REFUSES(a, Errc::limit_exceeded, a.client->payment_note(pay_params(b, 1)));
  std::int64_t paid = 0, received = 0;
  for (std::size_t i = 0; i < notes.size(); ++i) {
    std::int64_t amount = jws_payload(notes[i].note).at("amount").get<std::int64_t>();
    paid += amount;
    if (i % 2 == 0) {
      must(receive(b, notes[i].note), "receive");
      received += amount;
    }
  }
  EXPECT_EQ(balance(b), received);
  w.now = notes.back().exp;
  std::int64_t back = 0;
  for (const auto& n : notes) {
    Json r = must(reclaim(a, n.id), "settle " + n.id);
    if (r.at("outcome") == "reclaimed") back += r.at("credited_minor").get<std::int64_t>();
  }
  EXPECT_EQ(back, paid - received);
  EXPECT_EQ(balance(a), 100000 - received);
  EXPECT_EQ(must(a.client->open_notes()).size(), 0u);
  EXPECT_THAT(a.client->payment_note(pay_params(b, 1)), IsOk());
}

// ---------------------------------------------------------------- states and notes from before the
// change

// A sealed state written before notes expired has no open notes, no
// reclaimed total and no note lifetime: it loads, takes nothing back that it
// never recorded, and notes from then (which carry no exp) stay receivable:
// the registry judges no expiry without doc_exp, and the payee SE none without exp.
TEST_F(ReclaimAttackTest, AStateAndNotesFromBeforeExpiryKeepWorkingAndCreditNothingExtra) {
  Se& a = active_se("se-a", "alice");
  Se& b = active_se("se-b", "bob");
  w.topup(*a.client, 1000);
  Paid n = pay(a, b, 300, 60);
  Json old = a.applet->state_json();
  for (const char* k : {"outstanding_notes", "reclaimed_minor", "note_ttl_s"}) old.erase(k);
  load(a, old);
  Json info = must(a.client->info());
  EXPECT_EQ(info.at("open_notes"), 0);
  EXPECT_EQ(info.at("note_ttl_s"), Applet::kDefaultNoteTtlS);
  EXPECT_EQ(info.at("sent_minor").at("CNY"), 300);
  w.now = n.exp;
  SE_REFUSES(a, Errc::not_found, a.client->reclaim_claim(n.id));
  EXPECT_EQ(balance(a), 700);

  // A note signed before the change: no exp. Its payer's key here is a
  // certified SE key the test holds (only possible with the manufacturer key).
  KeyCert x = w.enrolled_software_se("se-x", "xavier");
  Json p{{"type", "payment.note"}, {"v", 1},         {"id", "se-x:7"},
         {"issuer", "se-x"},       {"seq", 7},       {"iat", w.now},
         {"nonce", new_nonce()},   {"amount", 250},  {"currency", "CNY"},
         {"payer", "se-x"},        {"payee", "se-b"}};
  std::string old_note = sign_with(x.key, {x.cert}, p);
  w.now += 3600;
  Json claim = jws_payload(must(b.client->claim_note(old_note)).at("claim"));
  EXPECT_FALSE(claim.contains("doc_exp"));
  EXPECT_EQ(must(receive(b, old_note)).at("credited_minor"), 250);
  // Its payer cannot take it back: the payee holds it (and a reclaim must name an expiry).
  registry::ClaimFields f{"se-x:7",       "se-x", 7,
                          "payment.note", "se-x", sha256(must(jws_parse(old_note)).payload),
                          std::nullopt};
  KeySigner s(x.key);
  std::string reclaim_claim =
      must(registry::sign_claim(f, JwsSigner{&s, {x.cert, w.ca->root()}}, w.now));
  auto r = at_registry(reclaim_claim);
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_EQ(r->status, RecordStatus::already_processed) << "held by the payee";
  EXPECT_EQ(balance(b), 250);
}

}  // namespace
}  // namespace zf::test
