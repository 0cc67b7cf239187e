// Face-to-face payment between two real applets (docs/se-apdu.md
// "Face-to-face payment"), over an in-process stand-in for the short-range
// link that can drop any message, lose any answer, and cut power to either SE
// at the moments the protocol names. No bank and no registry take part in the
// payment itself; the registry (real, in-process) is used only where a payee
// settles what it took offline, or a payment is delivered the online way.
// Every test ends with each payment's value in exactly one place.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "f2f_room.h"

namespace zf::test {
namespace {

class F2fTest : public F2fRoomTest {};

TEST_F(F2fTest, APaymentMovesBetweenTwoSesWithNoServerAndBothLogIt) {
  Se& a = nearby_se("se-a", "alice");
  Se& b = nearby_se("se-b", "bob");
  w.topup(*a.client, 1000);
  receiving(b);
  Json r = pay(a, b, 300);
  EXPECT_EQ(r.at("outcome"), "delivered") << r.dump();
  EXPECT_EQ(r.at("balance_minor"), 700);
  EXPECT_EQ(r.at("code").get<std::string>().size(), 6u);
  EXPECT_EQ(balance(a), 700);
  EXPECT_EQ(balance(b), 300);
  EXPECT_EQ(undelivered(a), 0);
  EXPECT_EQ(must(a.client->log()).back().at("op"), "f2f.pay");
  Json blog = must(b.client->log()).back();
  EXPECT_EQ(blog.at("op"), "f2f.receive");
  EXPECT_EQ(blog.at("counterparty"), "se-a");
  EXPECT_EQ(blog.at("amount_minor"), 300);
  // Taken offline: unsettled until bob's terminal goes online.
  Json st = must(b.client->f2f_state());
  ASSERT_EQ(st.at("unreconciled").size(), 1u);
  EXPECT_EQ(st.at("unreconciled").at(0).at("payer"), "se-a");
  EXPECT_EQ(must(a.client->info()).at("sent_minor").at("CNY"), 300);
  EXPECT_EQ(must(b.client->info()).at("received_minor").at("CNY"), 300);
  // Four messages, and the registry was never asked.
  EXPECT_EQ(room.exchanges, 2);
  EXPECT_EQ(stats().records, 0);
}

TEST_F(F2fTest, APayeeThatIsNotReceivingOrNotThereMovesNothing) {
  Se& a = nearby_se("se-a", "alice");
  Se& b = nearby_se("se-b", "bob");
  w.topup(*a.client, 1000);
  SE_REFUSES(a, Errc::not_receiving, a.client->f2f_pay(Json{{"amount", 100}, {"currency", "CNY"}, {"payee", "se-b"}}));
  SE_REFUSES(a, Errc::unavailable, a.client->f2f_pay(Json{{"amount", 100}, {"currency", "CNY"}, {"payee", "se-z"}}));
  receiving(b);
  w.now += 121;  // the receive window has passed
  SE_REFUSES(a, Errc::not_receiving, a.client->f2f_pay(Json{{"amount", 100}, {"currency", "CNY"}, {"payee", "se-b"}}));
  SE_REFUSES(a, Errc::wrong_state, a.client->f2f_send());
  EXPECT_EQ(balance(a), 1000);
  EXPECT_EQ(balance(b), 0);
}

// The person asked to pay se-c; whoever answers must prove it is se-c.
TEST_F(F2fTest, AnSeThatAnswersForAnotherIsRefusedBeforeAnythingIsDebited) {
  Se& a = nearby_se("se-a", "alice");
  Se& b = nearby_se("se-b", "bob");
  nearby_se("se-c", "carol");
  w.topup(*a.client, 1000);
  receiving(b);
  room.nearby["se-c"] = &b;  // b sits where the scan finds se-c
  // b itself refuses a hello for someone else...
  SE_REFUSES(a, Errc::misaddressed, a.client->f2f_pay(Json{{"amount", 100}, {"currency", "CNY"}, {"payee", "se-c"}}));
  // ...and when an attacker rewrites the hello to b, a sees b's certificate.
  room.tamper = [](Json& m) {
    if (m.at("t") == "hello") m["to"] = "se-b";
  };
  SE_REFUSES(a, Errc::misaddressed, a.client->f2f_pay(Json{{"amount", 100}, {"currency", "CNY"}, {"payee", "se-c"}}));
  EXPECT_EQ(balance(a), 1000);
  EXPECT_EQ(balance(b), 0);
}

TEST_F(F2fTest, ATamperedPaymentIsNotCreditedAndStaysTheSameValueInFlight) {
  Se& a = nearby_se("se-a", "alice");
  Se& b = nearby_se("se-b", "bob");
  w.topup(*a.client, 1000);
  receiving(b);
  room.tamper = [](Json& m) {
    if (m.at("t") == "pay") {
      std::string box = m.at("box");
      box[10] = box[10] == 'A' ? 'B' : 'A';
      m["box"] = box;
    }
  };
  Json r = pay(a, b, 300);
  EXPECT_EQ(r.at("outcome"), "undelivered") << r.dump();
  EXPECT_EQ(balance(a), 700);
  EXPECT_EQ(balance(b), 0);
  EXPECT_EQ(undelivered(a), 1);
  // The payment itself was never opened: bob can still refuse it, and alice gets it back once.
  Json u = undelivered_payment(a);
  Json refusal = must(b.client->f2f_refuse(u.at("payment")), "refuse");
  EXPECT_EQ(refusal.at("outcome"), "refused");
  Json back = must(a.client->f2f_close(u.at("id"), refusal.at("answer")), "close");
  EXPECT_EQ(back.at("outcome"), "refused");
  EXPECT_EQ(balance(a), 1000);
  SE_REFUSES(a, Errc::not_found, a.client->f2f_close(u.at("id"), refusal.at("answer")));
  EXPECT_EQ(balance(a), 1000);
}

// The answer is lost after bob credited: alice holds the payment as
// undelivered; delivering it again gets bob's ack, not a second credit.
TEST_F(F2fTest, ALostAckLeavesThePaymentUndeliveredUntilThePayeeAnswersAgain) {
  Se& a = nearby_se("se-a", "alice");
  Se& b = nearby_se("se-b", "bob");
  w.topup(*a.client, 1000);
  receiving(b);
  room.fault = [](const Json& m) { return m.at("t") == "pay" ? Room::Fault::drop_answer : Room::Fault::none; };
  Json r = pay(a, b, 300);
  EXPECT_EQ(r.at("outcome"), "undelivered");
  EXPECT_EQ(balance(a), 700);
  EXPECT_EQ(balance(b), 300);
  Json u = undelivered_payment(a);
  EXPECT_EQ(u.at("payee"), "se-b");
  // Bob's terminal is asked to refuse it: its SE answers with the ack instead.
  Json again = must(b.client->f2f_refuse(u.at("payment")), "refuse");
  EXPECT_EQ(again.at("outcome"), "received");
  EXPECT_EQ(balance(b), 300);
  Json closed = must(a.client->f2f_close(u.at("id"), again.at("answer")), "close");
  EXPECT_EQ(closed.at("outcome"), "delivered");
  EXPECT_EQ(balance(a), 700);
  EXPECT_EQ(undelivered(a), 0);
  // The online receive path refuses it too: it was credited once.
  SE_REFUSES(b, Errc::replayed, b.client->claim_note(u.at("payment")));
}

// The payment never reached bob: bob never credits it once it refused it,
// and alice gets the value back once.
TEST_F(F2fTest, APaymentThatNeverArrivedComesBackOnlyOnThePayeesRefusalAndThenNeverLands) {
  Se& a = nearby_se("se-a", "alice");
  Se& b = nearby_se("se-b", "bob");
  w.topup(*a.client, 1000);
  receiving(b);
  room.fault = [](const Json& m) { return m.at("t") == "pay" ? Room::Fault::drop_request : Room::Fault::none; };
  Json r = pay(a, b, 300);
  EXPECT_EQ(r.at("outcome"), "undelivered");
  EXPECT_EQ(balance(a), 700);
  Json u = undelivered_payment(a);
  // Alice's SE has no way to take it back on its own.
  SE_REFUSES(a, Errc::unknown_type, a.client->f2f_close(u.at("id"), u.at("payment")));
  Json refusal = must(b.client->f2f_refuse(u.at("payment"), "not mine"), "refuse");
  // Refused: bob's SE credits it by no path now.
  SE_REFUSES(b, Errc::replayed, b.client->claim_note(u.at("payment")));
  Json back = must(a.client->f2f_close(u.at("id"), refusal.at("answer")), "close");
  EXPECT_EQ(back.at("reason"), "not mine");
  EXPECT_EQ(balance(a), 1000);
  EXPECT_EQ(balance(b), 0);
  EXPECT_EQ(must(a.client->info()).at("reclaimed_minor").at("CNY"), 300);
}

// Delivered later the online way: bob claims it at the registry and receives
// it like a note; the ack in his answer closes it at alice.
TEST_F(F2fTest, AnUndeliveredPaymentCanBeDeliveredOnlineOnce) {
  Se& a = nearby_se("se-a", "alice");
  Se& b = nearby_se("se-b", "bob");
  w.topup(*a.client, 1000);
  receiving(b);
  room.fault = [](const Json& m) { return m.at("t") == "pay" ? Room::Fault::drop_request : Room::Fault::none; };
  pay(a, b, 300);
  Json u = undelivered_payment(a);
  Json got = must(receive(b, u.at("payment")), "receive online");
  EXPECT_EQ(got.at("credited_minor"), 300);
  EXPECT_EQ(balance(b), 300);
  // Settled at the registry already: nothing is left unreconciled.
  EXPECT_EQ(must(b.client->f2f_state()).at("unreconciled").size(), 0u);
  SE_REFUSES(b, Errc::replayed, receive(b, u.at("payment")));
  // Asked to refuse it now, bob's SE answers that it received it.
  EXPECT_EQ(must(b.client->f2f_refuse(u.at("payment"))).at("outcome"), "received");
  Json closed = must(a.client->f2f_close(u.at("id"), got.at("answer")), "close with the ack");
  EXPECT_EQ(closed.at("outcome"), "delivered");
  EXPECT_EQ(balance(a), 700);
  EXPECT_EQ(balance(b), 300);
}

// Power cuts at each step: the payer between making the payment durable and
// sending it; the payee after crediting, before its answer left.
TEST_F(F2fTest, PowerCutsAtEachStepNeverKeepTheValueOnBothSidesOrNeither) {
  Se& a = nearby_se("se-a", "alice");
  Se& b = nearby_se("se-b", "bob");
  w.topup(*a.client, 1000);
  a.saved = a.applet->state_json();
  receiving(b);
  // Alice's SE loses power the moment the payment would leave: it comes back
  // with what its host made durable just before.
  room.fault = [](const Json& m) { return m.at("t") == "pay" ? Room::Fault::drop_request : Room::Fault::none; };
  must(a.client->f2f_pay(Json{{"amount", 300}, {"currency", "CNY"}, {"payee", "se-b"}}));
  (void)a.client->f2f_send();
  power_cut(a);
  EXPECT_EQ(balance(a), 700) << "the debit was durable before the payment left";
  EXPECT_EQ(undelivered(a), 1);
  EXPECT_EQ(balance(b), 0);

  // Bob's SE loses power after crediting: its host had made that durable first.
  room.fault = [](const Json& m) { return m.at("t") == "pay" ? Room::Fault::drop_answer : Room::Fault::none; };
  receiving(b);
  pay(a, b, 200);
  power_cut(b);
  must(b.client->verify_pin(kPin));
  EXPECT_EQ(balance(b), 200);
  EXPECT_EQ(balance(a), 500);
  EXPECT_EQ(undelivered(a), 2);
  // Each undelivered payment ends once: the first refused, the second acked.
  Json st = must(a.client->f2f_state());
  for (const auto& u : st.at("undelivered")) {
    Json answer = must(b.client->f2f_refuse(u.at("payment")), "answer");
    must(a.client->f2f_close(u.at("id"), answer.at("answer")), "close");
  }
  EXPECT_EQ(balance(a) + balance(b), 1000);
  EXPECT_EQ(balance(a), 800);
  EXPECT_EQ(undelivered(a), 0);
}

TEST_F(F2fTest, OfflineLimitsBoundWhatMovesBeforeThePayeeGoesOnline) {
  Se& a = nearby_se("se-a", "alice", Json{{"f2f_max_payment_minor", 500}});
  Se& b = nearby_se("se-b", "bob", Json{{"f2f_max_unreconciled_minor", 400}, {"f2f_max_unreconciled_count", 2}});
  w.topup(*a.client, 5000);
  receiving(b);
  SE_REFUSES(a, Errc::limit_exceeded, a.client->f2f_pay(Json{{"amount", 501}, {"currency", "CNY"}, {"payee", "se-b"}}));
  EXPECT_EQ(pay(a, b, 300).at("outcome"), "delivered");
  receiving(b);
  // Bob may take only 100 more before he settles online.
  SE_REFUSES(a, Errc::limit_exceeded, a.client->f2f_pay(Json{{"amount", 200}, {"currency", "CNY"}, {"payee", "se-b"}}));
  EXPECT_EQ(pay(a, b, 100).at("outcome"), "delivered");
  receiving(b);
  SE_REFUSES(a, Errc::limit_exceeded, a.client->f2f_pay(Json{{"amount", 1}, {"currency", "CNY"}, {"payee", "se-b"}}));
  // Unsettled value cannot leave bob's SE online (the default allows none face to face either).
  SE_REFUSES(b, Errc::unreconciled, b.client->payment_note(pay_params(a, 100)));
  // Once settled on the registry's record, it is ordinary value.
  Json st = must(b.client->f2f_state());
  for (const auto& u : st.at("unreconciled")) EXPECT_EQ(must(reconcile(b, u.at("id"))).at("outcome"), "settled");
  must(b.client->payment_note(pay_params(a, 100)), "pay online after settling");
  receiving(b);
  EXPECT_EQ(pay(a, b, 400).at("outcome"), "delivered");
}

// A payer that spends the same value twice (a restored copy of its state):
// the registry's record at the payee's settlement takes the value back out.
TEST_F(F2fTest, AValueSpentTwiceByARestoredPayerIsRemovedWhenThePayeeSettles) {
  Se& a = nearby_se("se-a", "alice");
  Se& b = nearby_se("se-b", "bob");
  Se& c = nearby_se("se-c", "carol");
  w.topup(*a.client, 1000);
  Json before = a.applet->state_json();
  receiving(b);
  Json r = pay(a, b, 600);
  ASSERT_EQ(r.at("outcome"), "delivered");
  // Alice's terminal restores the old state and pays carol online under the same seq.
  load(a, before);
  a.applet->set_peer_link(links["se-a"].get());
  Paid n = SeRegistryTest::pay(a, c, 600);
  must(SeRegistryTest::receive(c, n.note), "carol receives online first");
  Json st = must(b.client->f2f_state());
  ASSERT_EQ(st.at("unreconciled").size(), 1u);
  Json settled = must(reconcile(b, st.at("unreconciled").at(0).at("id")));
  EXPECT_EQ(settled.at("outcome"), "revoked") << settled.dump();
  EXPECT_EQ(settled.at("removed_minor"), 600);
  EXPECT_EQ(balance(b), 0);
  EXPECT_EQ(must(b.client->info()).at("revoked_minor").at("CNY"), 600);
  EXPECT_FALSE(alerts().empty()) << "the registry names the cloned payer";
}

// The payee refused on the link (over its limits) and the refusal was lost:
// asked again, it answers the refusal again, never an ack, so the payer gets
// its value back instead of closing the payment as delivered.
TEST_F(F2fTest, ALostRefusalIsAnsweredAgainAsARefusalNeverAsAnAck) {
  Se& a = nearby_se("se-a", "alice");
  Se& b = nearby_se("se-b", "bob", Json{{"f2f_max_unreconciled_minor", 1000}, {"max_balance_minor", 1000}});
  w.topup(*a.client, 1000);
  w.topup(*b.client, 800);
  receiving(b);
  must(a.client->f2f_pay(Json{{"amount", 150}, {"currency", "CNY"}, {"payee", "se-b"}}));
  // Bob's balance grows between the agreement and the payment (another top-up):
  // the payment no longer fits and his SE refuses it; the refusal is lost.
  w.topup(*b.client, 100);
  room.fault = [](const Json& m) { return m.at("t") == "pay" ? Room::Fault::drop_answer : Room::Fault::none; };
  EXPECT_EQ(must(a.client->f2f_send()).at("outcome"), "undelivered");
  EXPECT_EQ(balance(b), 900);
  Json u = undelivered_payment(a);
  for (int i = 0; i < 2; ++i) {
    Json answer = must(b.client->f2f_refuse(u.at("payment")), "refuse");
    EXPECT_EQ(answer.at("outcome"), "refused") << "attempt " << i << ": " << answer.dump();
  }
  SE_REFUSES(b, Errc::replayed, b.client->claim_note(u.at("payment")));
  Json answer = must(b.client->f2f_refuse(u.at("payment")));
  EXPECT_EQ(must(a.client->f2f_close(u.at("id"), answer.at("answer"))).at("outcome"), "refused");
  EXPECT_EQ(balance(a), 1000);
  EXPECT_EQ(balance(b), 900);
}

TEST_F(F2fTest, GarbageFromTheLinkIsAnErrorAndChangesNothing) {
  Se& b = nearby_se("se-b", "bob");
  receiving(b);
  Json before = b.applet->state_json();
  for (std::string m : std::vector<std::string>{"", "{", "[]", R"({"t":"pay","sig":"x","box":"y"})", R"({"t":"hello"})",
                                               R"({"t":"accept"})", std::string(300000, '{')}) {
    Bytes answer = b.applet->process_peer(as_bytes(m), w.now);
    Json j = must(parse_json_strict(to_string(answer)), "answer");
    EXPECT_EQ(j.at("t"), "error") << m.substr(0, 40);
    EXPECT_FALSE(b.applet->dirty());
  }
  EXPECT_EQ(b.applet->state_json(), before);
}

}  // namespace
}  // namespace zf::test
