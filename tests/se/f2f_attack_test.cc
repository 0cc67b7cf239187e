// Face-to-face payment attacked from outside (docs/se-apdu.md "Face-to-face
// payment"): the payer's and the payee's terminals, a peer on the short-range
// link and the host's state file are the adversary's; the SEs, the CA and the
// registry are real. Each test names what must hold. The rules: a payment's
// value is in exactly one place (the payer's balance, in flight as undelivered,
// or the payee's balance); a payee credits it at most once and never after it
// refused it; a payer gets it back only on the payee's refusal, once; bad input
// is a named error and changes nothing.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <limits>
#include <string>
#include <vector>

#include "f2f_room.h"

namespace zf::test {
namespace {

// A certified SE whose key the attacker holds (enrolled as the fixture
// allows, with a genuine device attestation): it signs whatever it likes.
struct SoftSe {
  KeyCert kc;
  std::string id;
  std::int64_t seq = 0;
};

class F2fAttackTest : public F2fRoomTest {
 protected:
  SoftSe soft_se(const std::string& id) { return SoftSe{w.enrolled_software_se(id, "mallory"), id}; }
  // An f2f.payment signed by `s`, dated `iat` by its (attacker's) clock.
  std::string soft_payment(SoftSe& s, const std::string& payee, std::int64_t iat, const Json& change = {}) {
    ++s.seq;
    Json p{{"type", "f2f.payment"},
           {"v", 1},
           {"id", s.id + ":" + std::to_string(s.seq)},
           {"issuer", s.id},
           {"seq", s.seq},
           {"iat", iat},
           {"nonce", new_nonce()},
           {"amount", 1},
           {"currency", "CNY"},
           {"payer", s.id},
           {"payee", payee},
           {"session", b64url_encode(random_bytes(32))}};
    if (change.is_object()) p.update(change);
    return sign_with(s.kc.key, {s.kc.cert}, p);
  }
  // `payee` refuses `n` payments of a certified SE dated `iat`: each enters its
  // received set, which keeps the newest ReceivedIds::kKept by date.
  void refuse_many(Se& payee, int n, std::int64_t iat) {
    SoftSe s = soft_se("se-flood");
    for (int i = 0; i < n; ++i)
      ASSERT_EQ(must(payee.client->f2f_refuse(soft_payment(s, payee.id, iat)), "refuse").at("outcome"), "refused");
  }
  // A payment that never reached its payee (the link dropped the "pay").
  Json undelivered_to(Se& payer, Se& payee, std::int64_t amount) {
    auto before = room.fault;
    room.fault = [](const Json& m) { return m.at("t") == "pay" ? Room::Fault::drop_request : Room::Fault::none; };
    receiving(payee);
    Json r = pay(payer, payee, amount);
    room.fault = before;
    EXPECT_EQ(r.at("outcome"), "undelivered") << r.dump();
    Json st = must(payer.client->f2f_state());
    for (const auto& u : st.at("undelivered"))
      if (u.at("id") == r.at("id")) return u;
    ADD_FAILURE() << "no undelivered payment " << r.at("id");
    return Json();
  }
  std::string answer_type(const Json& answer) { return jws_payload(answer.at("answer")).at("type"); }
  // A message straight from the link into `se`'s peer port: its answer, and
  // whether its state moved.
  Json peer(Se& se, const std::string& message) {
    Bytes answer = se.applet->process_peer(as_bytes(message), w.now + se.skew);
    return must(parse_json_strict(to_string(answer)), "peer answer");
  }
  void revoke(const std::string& se_id) {
    auto cert = must(Certificate::from_pem(certs.at(se_id)), "cert");
    must(w.ca->revoke(ca::Caller::admin, cert.serial_hex(), "device lost"), "revoke");
  }
};

// ---- The payee's answers: a refusal is never followed by an ack.

// Bob refused the payment that never reached him, and alice's terminal asks
// again (the first refusal was lost on its way back). The second answer must
// be the refusal again: an ack would close the payment at alice as delivered,
// and its value would be in nobody's balance.
TEST_F(F2fAttackTest, APaymentThePayeeRefusedIsRefusedAgainNeverAcked) {
  Se& a = nearby_se("se-a", "alice");
  Se& b = nearby_se("se-b", "bob");
  w.topup(*a.client, 1000);
  Json u = undelivered_to(a, b, 300);
  Json first = must(b.client->f2f_refuse(u.at("payment")), "refuse");
  ASSERT_EQ(first.at("outcome"), "refused");
  Json before = b.applet->state_json();
  Json again = must(b.client->f2f_refuse(u.at("payment")), "refuse again");
  EXPECT_EQ(again.at("outcome"), "refused") << again.dump();
  EXPECT_EQ(answer_type(again), "f2f.refusal");
  EXPECT_FALSE(b.applet->dirty());
  EXPECT_EQ(b.applet->state_json(), before) << "answering again changes nothing";
  // Whichever refusal arrives, alice takes her value back once.
  Json back = must(a.client->f2f_close(u.at("id"), again.at("answer")), "close");
  EXPECT_EQ(back.at("outcome"), "refused");
  SE_REFUSES(a, Errc::not_found, a.client->f2f_close(u.at("id"), first.at("answer")));
  EXPECT_EQ(balance(a), 1000);
  EXPECT_EQ(balance(b), 0);
  SE_REFUSES(b, Errc::replayed, b.client->claim_note(u.at("payment")));
}

// Bob's SE refused the payment on the link (a top-up his terminal asked for
// took the room under his maximum balance), and the refusal was lost. Asked
// again, his SE must refuse again, not ack a payment it never credited.
TEST_F(F2fAttackTest, ARefusalOnTheLinkThatWasLostIsSignedAgainNotTurnedIntoAnAck) {
  Se& a = nearby_se("se-a", "alice");
  Se& b = nearby_se("se-b", "bob", Json{{"max_balance_minor", 1000}});
  w.topup(*a.client, 1000);
  receiving(b);
  must(a.client->f2f_pay(Json{{"amount", 300}, {"currency", "CNY"}, {"payee", "se-b"}}), "F2F PAY");
  must(b.client->topup_request({{"amount", 800}, {"currency", "CNY"}, {"bank", kBank}, {"account", kAccount}}),
       "bob's top-up keeps 800 of his room");
  room.fault = [](const Json& m) { return m.at("t") == "pay" ? Room::Fault::drop_answer : Room::Fault::none; };
  Json r = must(a.client->f2f_send(), "F2F SEND");
  ASSERT_EQ(r.at("outcome"), "undelivered");
  EXPECT_EQ(must(b.client->log()).back().at("op"), "f2f.refused");
  Json u = undelivered_payment(a);
  Json again = must(b.client->f2f_refuse(u.at("payment")), "refuse");
  EXPECT_EQ(again.at("outcome"), "refused") << again.dump();
  Json back = must(a.client->f2f_close(u.at("id"), again.at("answer")), "close");
  EXPECT_EQ(back.at("outcome"), "refused");
  EXPECT_EQ(balance(a), 1000);
  EXPECT_EQ(balance(b), 0);
}

// The payee remembers which payments it refused for as long as its received
// set holds them, however many others it refuses after: a bounded list of
// refusals that forgot one first would turn it into an ack.
TEST_F(F2fAttackTest, ARefusedPaymentIsNeverAckedHoweverManyOthersThePayeeRefusesAfterIt) {
  Se& a = nearby_se("se-a", "alice");
  Se& b = nearby_se("se-b", "bob");
  w.topup(*a.client, 1000);
  a.skew = 100;  // alice's clock runs ahead: her payment is the newest bob holds
  Json u = undelivered_to(a, b, 300);
  a.skew = 0;
  ASSERT_EQ(must(b.client->f2f_refuse(u.at("payment"))).at("outcome"), "refused");
  refuse_many(b, 300, w.now);
  Json again = must(b.client->f2f_refuse(u.at("payment")), "refuse again");
  EXPECT_EQ(again.at("outcome"), "refused") << again.dump();
  must(a.client->f2f_close(u.at("id"), again.at("answer")), "close");
  EXPECT_EQ(balance(a), 1000);
  EXPECT_EQ(balance(b), 0);
}

// Bob's terminal claimed the payment at the registry (to receive it online)
// and then asked his SE to refuse it. The registry's record shows bob holding
// it, and alice's SE closes on that record as delivered: a refusal now would
// leave the value in nobody's balance. Bob's SE must refuse to refuse.
TEST_F(F2fAttackTest, APayeeThatClaimedAPaymentAtTheRegistryNeverRefusesIt) {
  Se& a = nearby_se("se-a", "alice");
  Se& b = nearby_se("se-b", "bob");
  w.topup(*a.client, 1000);
  Json u = undelivered_to(a, b, 300);
  Json claim = must(b.client->claim_note(u.at("payment")), "claim");
  auto rec = must(at_registry(claim.at("claim")), "registry");
  ASSERT_EQ(rec.status, RecordStatus::claimed);
  SE_REFUSES(b, Errc::conflict, b.client->f2f_refuse(u.at("payment")));
  Json closed = must(a.client->f2f_close(u.at("id"), "", rec.record_jws), "close on the record");
  EXPECT_EQ(closed.at("outcome"), "delivered");
  Json got = must(b.client->receive_note(u.at("payment"), rec.record_jws), "receive on the record");
  EXPECT_EQ(got.at("credited_minor"), 300);
  EXPECT_EQ(balance(a), 700);
  EXPECT_EQ(balance(b), 300);
}

// ---- Reconciliation.

// Alice's SE is restored and pays the same seq to carol. Bob claimed first and
// holds the payment; carol's claim gets a seq_reused record, which answers
// carol's claim, not bob's. Shown to bob's SE, it must change nothing: bob
// holds what he took, and only carol's value is taken back.
TEST_F(F2fAttackTest, ASeqReusedAnswerToAnotherSesClaimDoesNotRevokeWhatThisSeHolds) {
  Se& a = nearby_se("se-a", "alice");
  Se& b = nearby_se("se-b", "bob");
  Se& c = nearby_se("se-c", "carol");
  w.topup(*a.client, 1000);
  Json before = a.applet->state_json();
  receiving(b);
  Json to_b = pay(a, b, 600);
  ASSERT_EQ(to_b.at("outcome"), "delivered");
  restore(a, before);
  receiving(c);
  Json to_c = pay(a, c, 600);
  ASSERT_EQ(to_c.at("outcome"), "delivered");
  ASSERT_EQ(to_b.at("id"), to_c.at("id")) << "the same seq, two documents";
  const std::string id = to_b.at("id");
  auto bobs = must(at_registry(must(b.client->f2f_reconcile_claim(id)).at("claim")), "bob claims");
  ASSERT_EQ(bobs.status, RecordStatus::claimed);
  auto carols = must(at_registry(must(c.client->f2f_reconcile_claim(id)).at("claim")), "carol claims");
  ASSERT_EQ(carols.status, RecordStatus::seq_reused);
  SE_REFUSES(b, Errc::record_mismatch, b.client->f2f_settle(id, carols.record_jws));
  EXPECT_EQ(must(b.client->f2f_settle(id, bobs.record_jws)).at("outcome"), "settled");
  EXPECT_EQ(balance(b), 600);
  Json revoked = must(c.client->f2f_settle(id, carols.record_jws));
  EXPECT_EQ(revoked.at("outcome"), "revoked");
  EXPECT_EQ(balance(c), 0);
}

// ---- What the payee signs.

// A certified SE signs a payment whose `payer` names alice. Bob's SE must not
// sign a refusal naming alice as the payer of a document alice never signed.
TEST_F(F2fAttackTest, ThePayeeSignsNoAnswerNamingAPayerThatDidNotSignThePayment) {
  nearby_se("se-a", "alice");
  Se& b = nearby_se("se-b", "bob");
  SoftSe m = soft_se("se-m");
  std::string forged = soft_payment(m, "se-b", w.now, Json{{"payer", "se-a"}});
  SE_REFUSES(b, Errc::issuer_mismatch, b.client->f2f_refuse(forged));
}

// ---- Payments the payee's received set cannot tell apart.

// A payer whose clock ran an hour fast pushed bob's received set forward:
// bob's SE now refuses as possibly seen every payment dated at or before an
// hour from now. Alice's payment arrives in a session it names, so bob's SE
// knows it never saw it; it cannot take it, and must refuse it with its signed
// refusal so that the value goes back to alice, rather than leave it in flight
// with nobody able to end it.
TEST_F(F2fAttackTest, APaymentDatedBeforeWhatThePayeeCanTellApartGoesBackToThePayer) {
  Se& a = nearby_se("se-a", "alice");
  Se& b = nearby_se("se-b", "bob");
  w.topup(*a.client, 1000);
  refuse_many(b, static_cast<int>(se::ReceivedIds::kKept) + 1, w.now + 3600);
  ASSERT_EQ(b.applet->state_json().at("received_floor_iat"), w.now + 3600);
  receiving(b);
  Json r = pay(a, b, 300);
  EXPECT_EQ(r.at("outcome"), "refused") << r.dump();
  EXPECT_EQ(balance(a), 1000);
  EXPECT_EQ(balance(b), 0);
  EXPECT_EQ(undelivered(a), 0);
}

// A payer whose clock ran an hour fast pushed bob's received set forward;
// alice's payment, dated before that, never reached him. Bob's SE cannot tell
// whether it took it, so it signs neither an ack nor a refusal, and no receive
// path takes it: its value stays in flight with nothing that can end it.
//
// DISABLED: a design change. A face-to-face payment has no expiry and no
// reclaim at the registry (docs/se-apdu.md: "no expiry applies, because the
// payee may have credited it offline"), and a payee that has forgotten a
// payment by its date cannot safely answer for it either way. Ending it needs
// something the payer can act on without the payee: e.g. an expiry after which
// the payer claims its own payment at the registry (as RECLAIM CLAIM does for
// notes) and the payee credits it only with a record won in time.
TEST_F(F2fAttackTest, DISABLED_AnUndeliveredPaymentDatedBeforeThePayeesFloorCanStillBeEnded) {
  Se& a = nearby_se("se-a", "alice");
  Se& b = nearby_se("se-b", "bob");
  w.topup(*a.client, 1000);
  refuse_many(b, static_cast<int>(se::ReceivedIds::kKept) + 1, w.now + 3600);
  Json u = undelivered_to(a, b, 300);
  auto refused = b.client->f2f_refuse(u.at("payment"));
  auto received = receive(b, u.at("payment"));
  EXPECT_TRUE(refused || received) << "some path ends the payment";
  if (refused) must(a.client->f2f_close(u.at("id"), refused->at("answer")), "close");
  EXPECT_EQ(undelivered(a), 0);
  EXPECT_EQ(balance(a) + balance(b), 1000);
}

// ---- A cloned payer and a payee whose received set has moved on.

// Bob took 600 from alice offline and has not settled it; his received set has
// since forgotten its id (a thousand later payments), though the payment is
// still held as unsettled. A restored copy of alice's SE signs another payment
// under the same seq. Bob's SE must see that it already holds a payment under
// that id: crediting it again would replace the unsettled entry, and the first
// 600 would count as settled with no record at the registry.
class F2fCloneTest : public F2fAttackTest {
 protected:
  void SetUp() override {
    F2fAttackTest::SetUp();
    a = &nearby_se("se-a", "alice");
    b = &nearby_se("se-b", "bob");
    w.topup(*a->client, 1000);
    Json before = a->applet->state_json();
    receiving(*b);
    first = pay(*a, *b, 600);
    ASSERT_EQ(first.at("outcome"), "delivered");
    refuse_many(*b, static_cast<int>(se::ReceivedIds::kKept), w.now + 1);
    ASSERT_FALSE(b->applet->state_json().at("received_notes").contains(first.at("id").get<std::string>()))
        << "bob's received set no longer holds the first payment";
    ASSERT_EQ(must(b->client->f2f_state()).at("unreconciled").size(), 1u);
    w.now += 2;
    restore(*a, before);
  }
  // However the clone's payment reached bob, he holds 600 once and settles it
  // on the registry's record of the payment he really took.
  void expect_bob_holds_the_first_payment_once() {
    EXPECT_EQ(balance(*b), 600);
    Json st = must(b->client->f2f_state());
    ASSERT_EQ(st.at("unreconciled").size(), 1u);
    EXPECT_EQ(must(reconcile(*b, first.at("id"))).at("outcome"), "settled");
    EXPECT_EQ(balance(*b), 600);
  }
  Se* a = nullptr;
  Se* b = nullptr;
  Json first;
};

TEST_F(F2fCloneTest, AClonesSecondPaymentUnderAnUnsettledIdIsNotCreditedAgain) {
  receiving(*b);
  Json second = pay(*a, *b, 600);
  EXPECT_EQ(second.at("id"), first.at("id"));
  expect_bob_holds_the_first_payment_once();
}

TEST_F(F2fCloneTest, AClonesSecondPaymentUnderAnUnsettledIdIsNotRefundedByTheClone) {
  Json u = undelivered_to(*a, *b, 600);
  EXPECT_EQ(u.at("id"), first.at("id"));
  auto answer = b->client->f2f_refuse(u.at("payment"));
  if (answer) {
    EXPECT_NE(answer_type(*answer), "f2f.refusal") << "a refusal would give the clone the value back";
    (void)a->client->f2f_close(u.at("id"), answer->at("answer"));
  }
  EXPECT_EQ(balance(*a), 400) << "the clone gets nothing back";
  expect_bob_holds_the_first_payment_once();
}

// ---- A payee's state restored from an older copy.

// Bob refuses, alice takes her value back; then bob's host restores bob's
// state from before the refusal. The refusal lives only in bob's state, so
// the value that came back to alice is unsettled until her SE has claimed its
// own payment at the registry: whichever claim comes first holds the payment,
// and the value is in one balance only.
TEST_F(F2fAttackTest, APayeeRestoredToBeforeItsRefusalAfterThePayerSettledItsRefundCreditsNothing) {
  Se& a = nearby_se("se-a", "alice");
  Se& b = nearby_se("se-b", "bob");
  Se& c = active_se("se-c", "carol");
  w.topup(*a.client, 1000);
  Json u = undelivered_to(a, b, 300);
  Json old_bob = b.applet->state_json();
  Json refusal = must(b.client->f2f_refuse(u.at("payment")), "refuse");
  must(a.client->f2f_close(u.at("id"), refusal.at("answer")), "refund");
  EXPECT_EQ(balance(a), 1000);
  // Back, but not yet spendable online: the registry has not seen the refund.
  SE_REFUSES(a, Errc::unreconciled, a.client->payment_note(pay_params(c, 800)));
  EXPECT_EQ(must(reconcile(a, u.at("id"))).at("outcome"), "settled");
  must(a.client->payment_note(pay_params(c, 800)), "spendable once settled");
  restore(b, old_bob);
  SE_REFUSES(b, Errc::replayed, receive(b, u.at("payment")));
  EXPECT_EQ(balance(b), 0);
  EXPECT_EQ(balance(a), 200);
}

// The same restore, with bob's terminal first at the registry: the refund
// comes out of alice's SE again when she settles it, and the value is in
// bob's balance only.
TEST_F(F2fAttackTest, APayeeRestoredToBeforeItsRefusalThatClaimsFirstTakesTheRefundBackOut) {
  Se& a = nearby_se("se-a", "alice");
  Se& b = nearby_se("se-b", "bob");
  w.topup(*a.client, 1000);
  Json u = undelivered_to(a, b, 300);
  Json old_bob = b.applet->state_json();
  Json refusal = must(b.client->f2f_refuse(u.at("payment")), "refuse");
  must(a.client->f2f_close(u.at("id"), refusal.at("answer")), "refund");
  restore(b, old_bob);
  must(receive(b, u.at("payment")), "the restored payee receives it online");
  Json settled = must(reconcile(a, u.at("id")));
  EXPECT_EQ(settled.at("outcome"), "revoked") << settled.dump();
  EXPECT_EQ(settled.at("removed_minor"), 300);
  EXPECT_EQ(balance(a), 700);
  EXPECT_EQ(balance(b), 300);
  EXPECT_EQ(must(a.client->f2f_state()).at("unreconciled").size(), 0u);
}

// ---- Attacks the applet already refuses (kept so that they stay refused).

// A "pay" captured from one session and played into the next session with the
// same payer: signed over the old transcript, it is refused, and nothing moves.
TEST_F(F2fAttackTest, ACapturedPayMessageDoesNotWorkInALaterSession) {
  Se& a = nearby_se("se-a", "alice");
  Se& b = nearby_se("se-b", "bob");
  w.topup(*a.client, 1000);
  Json captured;
  room.tamper = [&](Json& m) {
    if (m.at("t") == "pay") captured = m;
  };
  undelivered_to(a, b, 300);
  room.tamper = [](Json&) {};
  ASSERT_TRUE(captured.is_object());
  receiving(b);
  must(a.client->f2f_pay(Json{{"amount", 300}, {"currency", "CNY"}, {"payee", "se-b"}}), "a new session");
  Json before = b.applet->state_json();
  Json answer = peer(b, dump_json(captured));
  EXPECT_EQ(answer.at("t"), "error");
  EXPECT_EQ(answer.at("code"), "bad_signature") << answer.dump();
  EXPECT_FALSE(b.applet->dirty());
  EXPECT_EQ(b.applet->state_json(), before);
  EXPECT_EQ(balance(b), 0);
}

// Alice's undelivered payment to bob, shown to carol's SE: carol can neither
// claim, receive nor refuse it (a refusal from carol would mean nothing, but
// a claim would hold bob's payment at the registry).
TEST_F(F2fAttackTest, APaymentForOnePayeeIsTakenOrRefusedByNoOther) {
  Se& a = nearby_se("se-a", "alice");
  Se& b = nearby_se("se-b", "bob");
  Se& c = nearby_se("se-c", "carol");
  w.topup(*a.client, 1000);
  Json u = undelivered_to(a, b, 300);
  SE_REFUSES(c, Errc::misaddressed, c.client->claim_note(u.at("payment")));
  SE_REFUSES(c, Errc::misaddressed, c.client->f2f_refuse(u.at("payment")));
  SE_REFUSES(c, Errc::misaddressed, c.client->receive_note(u.at("payment"), w.record_for(u.at("payment"), "se-c")));
  EXPECT_EQ(must(receive(b, u.at("payment")), "bob receives").at("credited_minor"), 300);
}

// F2F CLOSE takes only the payee's own answer about this very payment.
TEST_F(F2fAttackTest, AnAnswerThatIsNotThePayeesOwnForThisPaymentClosesNothing) {
  Se& a = nearby_se("se-a", "alice");
  Se& b = nearby_se("se-b", "bob");
  Se& c = nearby_se("se-c", "carol");
  w.topup(*a.client, 1000);
  Json u1 = undelivered_to(a, b, 300);
  Json u2 = undelivered_to(a, b, 200);
  Json r2 = must(b.client->f2f_refuse(u2.at("payment")), "refuse the second");
  // Bob's refusal of the other payment.
  SE_REFUSES(a, Errc::receipt_mismatch, a.client->f2f_close(u1.at("id"), r2.at("answer")));
  // A refusal of this payment signed by another certified SE, naming bob or itself as the payee.
  SoftSe m = soft_se("se-m");
  Json forged{{"type", "f2f.refusal"},        {"v", 1},
              {"id", "se-m:r:x"},             {"issuer", "se-m"},
              {"iat", w.now},                 {"nonce", new_nonce()},
              {"payment_id", u1.at("id")},    {"payment_digest", u1.at("digest")},
              {"payer", "se-a"},              {"payee", "se-b"},
              {"reason", "refused"}};
  SE_REFUSES(a, Errc::issuer_mismatch, a.client->f2f_close(u1.at("id"), sign_with(m.kc.key, {m.kc.cert}, forged)));
  forged["payee"] = "se-m";
  SE_REFUSES(a, Errc::issuer_mismatch, a.client->f2f_close(u1.at("id"), sign_with(m.kc.key, {m.kc.cert}, forged)));
  // Carol's refusal of a payment to carol from alice cannot close a payment to bob.
  Json to_c = undelivered_to(a, c, 100);
  Json rc = must(c.client->f2f_refuse(to_c.at("payment")), "carol refuses hers");
  SE_REFUSES(a, Errc::issuer_mismatch, a.client->f2f_close(u1.at("id"), rc.at("answer")));
  // An ack is no refusal: it closes without a credit.
  EXPECT_EQ(balance(a), 400);
  must(a.client->f2f_close(u2.at("id"), r2.at("answer")), "the right refusal");
  must(a.client->f2f_close(to_c.at("id"), rc.at("answer")), "carol's, for hers");
  EXPECT_EQ(balance(a), 700);
  EXPECT_EQ(undelivered(a), 1);
}

// Only certified, unrevoked SEs take part, on the last CRL each installed.
TEST_F(F2fAttackTest, ARevokedPayerOrPayeeTakesNoPart) {
  Se& a = nearby_se("se-a", "alice");
  Se& b = nearby_se("se-b", "bob");
  w.topup(*a.client, 1000);
  receiving(b);
  revoke("se-a");
  must(b.client->update_crl(w.crl_pem()), "bob's CRL");
  SE_REFUSES(a, Errc::cert_revoked, a.client->f2f_pay(Json{{"amount", 100}, {"currency", "CNY"}, {"payee", "se-b"}}));
  EXPECT_FALSE(must(b.client->f2f_state()).contains("code")) << "bob agreed no session";
  Se& c = nearby_se("se-c", "carol");
  Se& d = nearby_se("se-d", "dave");
  w.topup(*c.client, 1000);
  revoke("se-d");
  must(c.client->update_crl(w.crl_pem()), "carol's CRL");
  receiving(d);
  SE_REFUSES(c, Errc::cert_revoked, c.client->f2f_pay(Json{{"amount", 100}, {"currency", "CNY"}, {"payee", "se-d"}}));
  EXPECT_EQ(balance(c), 1000);
  EXPECT_EQ(balance(d), 0);
}

TEST_F(F2fAttackTest, AmountsOutOfRangeOrChangedOnTheWayMoveNothing) {
  Se& a = nearby_se("se-a", "alice");
  Se& b = nearby_se("se-b", "bob");
  w.topup(*a.client, 1000);
  receiving(b);
  auto pay_of = [&](Json amount, Json currency) {
    return a.client->f2f_pay(Json{{"amount", amount}, {"currency", currency}, {"payee", "se-b"}});
  };
  SE_REFUSES(a, Errc::amount_zero, pay_of(0, "CNY"));
  SE_REFUSES(a, Errc::amount_negative, pay_of(-5, "CNY"));
  SE_REFUSES(a, Errc::amount_overflow, pay_of(Amount::kMaxMinor + 1, "CNY"));
  SE_REFUSES(a, Errc::bad_currency, pay_of(100, "cny"));
  SE_REFUSES(a, Errc::bad_amount, pay_of("100", "CNY"));
  SE_REFUSES(a, Errc::insufficient_ecash, pay_of(100, "EUR"));
  // A hello from the link with such amounts: a named error, nothing agreed.
  Json hello{{"t", "hello"}, {"from", "se-a"}, {"to", "se-b"}, {"cert", certs.at("se-a")},
             {"pk", b64url_encode(Bytes(64, 1))}, {"nonce", b64url_encode(Bytes(16, 2))},
             {"amount", 100}, {"currency", "CNY"}};
  Json before = b.applet->state_json();
  for (auto [amount, currency] : std::vector<std::pair<Json, Json>>{
           {0, "CNY"}, {-5, "CNY"}, {Amount::kMaxMinor + 1, "CNY"}, {100, "XX"}, {"100", "CNY"}, {1.5, "CNY"}}) {
    Json h = hello;
    h["amount"] = amount;
    h["currency"] = currency;
    Json answer = peer(b, dump_json(h));
    EXPECT_EQ(answer.at("t"), "error") << h.at("amount") << " " << h.at("currency");
    EXPECT_FALSE(b.applet->dirty());
  }
  EXPECT_EQ(b.applet->state_json(), before);
  EXPECT_FALSE(must(b.client->f2f_state()).contains("code"));
  // An attacker lowers the amount in the hello (it passes bob's limits more
  // easily): bob's SE takes only the amount it agreed, so nothing is credited,
  // and the payment comes back on his refusal.
  room.tamper = [](Json& m) {
    if (m.at("t") == "hello") m["amount"] = 100;
  };
  Json r = pay(a, b, 300);
  room.tamper = [](Json&) {};
  EXPECT_EQ(r.at("outcome"), "undelivered") << r.dump();
  EXPECT_EQ(balance(b), 0);
  Json u = undelivered_payment(a);
  must(a.client->f2f_close(u.at("id"), must(b.client->f2f_refuse(u.at("payment"))).at("answer")), "refund");
  EXPECT_EQ(balance(a), 1000);
}

// The payee's terminal stops or restarts receiving, or a new link starts,
// between the agreement and the payment: the session is gone, nothing is
// credited, and the payment comes back on the refusal.
TEST_F(F2fAttackTest, ThePayeeChangingItsReceiveModeMidSessionCreditsNothing) {
  Se& a = nearby_se("se-a", "alice");
  Se& b = nearby_se("se-b", "bob");
  w.topup(*a.client, 1000);
  std::vector<std::function<void()>> interrupt = {
      [&] { must(b.client->f2f_receive(0), "stop receiving"); },
      [&] { must(b.client->f2f_receive(300), "receive again"); },
      [&] {
        b.applet->reset_session();
        must(b.client->verify_pin(kPin), "a new link");
        receiving(b);
      },
  };
  for (auto& step : interrupt) {
    receiving(b);
    must(a.client->f2f_pay(Json{{"amount", 100}, {"currency", "CNY"}, {"payee", "se-b"}}), "F2F PAY");
    step();
    Json r = must(a.client->f2f_send(), "F2F SEND");
    EXPECT_EQ(r.at("outcome"), "undelivered") << r.dump();
    EXPECT_EQ(balance(b), 0);
  }
  Json st = must(a.client->f2f_state());
  EXPECT_EQ(st.at("undelivered").size(), 3u);
  for (const auto& u : st.at("undelivered"))
    must(a.client->f2f_close(u.at("id"), must(b.client->f2f_refuse(u.at("payment"))).at("answer")), "refund");
  EXPECT_EQ(balance(a), 1000);
}

// Lifetime totals near their limit (a long-lived SE): the payee refuses the
// payment with its signed refusal, the payer debits nothing.
TEST_F(F2fAttackTest, LifetimeTotalsThatWouldOverflowMoveNothing) {
  Se& a = nearby_se("se-a", "alice");
  Se& b = nearby_se("se-b", "bob");
  w.topup(*a.client, 1000);
  constexpr std::int64_t kNearMax = std::numeric_limits<std::int64_t>::max() - 100;
  Json bob = b.applet->state_json();
  bob["received_minor"]["CNY"] = kNearMax;
  restore(b, bob);
  receiving(b);
  Json r = pay(a, b, 300);
  EXPECT_EQ(r.at("outcome"), "refused") << r.dump();
  EXPECT_EQ(balance(a), 1000);
  EXPECT_EQ(balance(b), 0);
  Json alice = a.applet->state_json();
  alice["sent_minor"]["CNY"] = kNearMax;
  restore(a, alice);
  receiving(b);
  must(a.client->f2f_pay(Json{{"amount", 300}, {"currency", "CNY"}, {"payee", "se-b"}}), "F2F PAY");
  SE_REFUSES(a, Errc::amount_overflow, a.client->f2f_send());
  EXPECT_EQ(undelivered(a), 0);
}

// Garbage on the link while a session is agreed: each a named error, nothing
// credited, nothing the host must save.
TEST_F(F2fAttackTest, GarbageOnTheLinkDuringASessionCreditsNothing) {
  Se& a = nearby_se("se-a", "alice");
  Se& b = nearby_se("se-b", "bob");
  w.topup(*a.client, 1000);
  receiving(b);
  Json before = b.applet->state_json();
  const std::string sig = b64url_encode(Bytes(64, 7));
  for (std::string m : std::vector<std::string>{
           R"({"t":"pay"})",
           R"({"t":"pay","sig":")" + sig + R"(","box":"AAAA"})",
           R"({"t":"pay","sig":")" + sig + R"(","box":")" + std::string(100000, 'A') + R"("})",
           R"({"t":"pay","sig":")" + sig + R"(","box":"AAAA","extra":1})",
           R"({"t":"ack","box":"AAAA"})",
           R"({"t":"refused","box":"AAAA"})",
           R"({"t":"error","code":"internal","detail":"x"})",
           R"({"t":1})",
           R"({"t":"pay","t":"pay"})",
           R"({"t":"hello","from":"se-a","to":"se-b"})",
           std::string("{\"t\":\"pay\",\"sig\":\"\xff\xfe\"}"),
           std::string(20, '[') + std::string(20, ']'),
           std::string(200000, ' '),
       }) {
    must(a.client->f2f_pay(Json{{"amount", 100}, {"currency", "CNY"}, {"payee", "se-b"}}), "agree a session");
    Json answer = peer(b, m);
    EXPECT_EQ(answer.at("t"), "error") << m.substr(0, 60);
    EXPECT_FALSE(b.applet->dirty()) << m.substr(0, 60);
  }
  EXPECT_EQ(b.applet->state_json(), before);
  EXPECT_EQ(balance(a), 1000);
}

// F2F SETTLE takes only the registry's record of this payment: of our CA, with
// the registry role, about this id, payer, seq and type, and won by this SE
// with this payment's digest.
TEST_F(F2fAttackTest, SettleTakesOnlyTheRegistrysRecordOfThisPayment) {
  Se& a = nearby_se("se-a", "alice");
  Se& b = nearby_se("se-b", "bob");
  w.topup(*a.client, 1000);
  receiving(b);
  Json r = pay(a, b, 300);
  ASSERT_EQ(r.at("outcome"), "delivered");
  const std::string id = r.at("id");
  const std::string payment = must(a.client->issued()).back();
  ASSERT_EQ(jws_payload(payment).at("id"), id);
  Paid note = SeRegistryTest::pay(a, b, 100);
  auto bad = [&](Errc code, const std::string& record, const char* what) {
    refused(b, code, [&] { return b.client->f2f_settle(id, record); }, what);
    EXPECT_EQ(must(b.client->f2f_state()).at("unreconciled").size(), 1u) << what;
  };
  bad(Errc::record_mismatch, w.record_for(note.note, "se-b"), "a record of another document");
  bad(Errc::record_mismatch, w.record_for(payment, "se-b", Json{{"doc_type", "payment.note"}}), "another type");
  bad(Errc::record_mismatch, w.record_for(payment, "se-b", Json{{"doc_issuer", "se-c"}}), "another payer");
  bad(Errc::record_mismatch, w.record_for(payment, "se-b", Json{{"doc_seq", 99}}), "another seq");
  bad(Errc::record_mismatch, w.record_for(payment, "se-b", Json{{"result_digest", b64url_encode(Bytes(32, 9))}}),
      "another digest, held by bob");
  bad(Errc::record_mismatch,
      w.record_for(payment, "se-b", Json{{"status", "seq_reused"}, {"result_digest", b64url_encode(Bytes(32, 9))}}),
      "a seq_reused answer to a claim of another document");
  bad(Errc::record_mismatch, w.record_for(payment, "se-b", Json{{"status", "already_processed"}}),
      "bob himself named as the holder");
  Json payload = w.record_payload(payment, "se-c");
  bad(Errc::cert_wrong_role, sign_with(w.bank.key, {w.bank.cert}, payload), "signed by a bank");
  KeyCert fake_root = self_made_root("fake", w.now);
  KeyCert fake_registry = issue_under(fake_root, Role::registry, kRegistry, "", w.now);
  bad(Errc::cert_untrusted, sign_with(fake_registry.key, {fake_registry.cert, fake_root.cert}, payload),
      "a registry of another root");
  EXPECT_EQ(must(reconcile(b, id)).at("outcome"), "settled");
  EXPECT_EQ(balance(b), 300);
}

// How much value taken face to face, not yet settled, may be paid on is an SE
// parameter (f2f_spend_unreconciled_minor): none of it leaves online, and of
// a cloned payer's value only that much can escape the take-back.
TEST_F(F2fAttackTest, UnsettledValuePaysOnOnlyWithinItsAllowanceAndTheRestIsTakenBack) {
  Se& a = nearby_se("se-a", "alice");
  Se& b = nearby_se("se-b", "bob", Json{{"f2f_spend_unreconciled_minor", 300}});
  Se& c = nearby_se("se-c", "carol");
  Se& d = nearby_se("se-d", "dave");
  w.topup(*a.client, 1000);
  Json before = a.applet->state_json();
  receiving(b);
  ASSERT_EQ(pay(a, b, 600).at("outcome"), "delivered");
  // The restored copy spends the same seq online, and dave receives it first.
  restore(a, before);
  must(receive(d, SeRegistryTest::pay(a, d, 600).note), "dave receives online");
  // Bob pays 300 of it on face to face, no more, and nothing online.
  receiving(c);
  ASSERT_EQ(pay(b, c, 300).at("outcome"), "delivered");
  receiving(c);
  SE_REFUSES(b, Errc::unreconciled, b.client->f2f_pay(Json{{"amount", 1}, {"currency", "CNY"}, {"payee", "se-c"}}));
  SE_REFUSES(b, Errc::unreconciled, b.client->payment_note(pay_params(c, 1)));
  SE_REFUSES(b, Errc::unreconciled,
             b.client->deposit_note({{"amount", 1}, {"currency", "CNY"}, {"bank", kBank}, {"account", kAccount}}));
  Json st = must(b.client->f2f_state());
  ASSERT_EQ(st.at("unreconciled").size(), 1u);
  Json revoked = must(reconcile(b, st.at("unreconciled").at(0).at("id")));
  EXPECT_EQ(revoked.at("outcome"), "revoked");
  EXPECT_EQ(revoked.at("removed_minor"), 300);
  EXPECT_EQ(balance(b), 0);
  // The 300 carol holds is the risk the parameter accepted; she took it from
  // bob's own seq, so her settlement stands.
  EXPECT_EQ(must(reconcile(c, must(c.client->f2f_state()).at("unreconciled").at(0).at("id"))).at("outcome"),
            "settled");
  EXPECT_EQ(balance(c), 300);
}

}  // namespace
}  // namespace zf::test
