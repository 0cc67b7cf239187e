// Joint accounts (DESIGN.md §6.9, docs/bank-api.md "Joint accounts"): a
// joint.spend moves money from a joint account only when the account's
// threshold of distinct co-managers signed the same payload; no single SE
// signs for the account. The books balance after every test.
#include "bank_registry_world.h"
#include "core/jose.h"

namespace zf::test {
namespace {

class JointTest : public BankRegistryTest {
 protected:
  void SetUp() override {
    BankRegistryTest::SetUp();
    bob = enroll_se(src, world, "se-bob", "bob");
    carol = enroll_se(src, world, "se-carol", "carol");
    mallory = enroll_se(src, world, "se-mallory", "mallory");
    // All three must sign (the default), and a 2-of-3 account.
    ASSERT_TRUE(bank->open_account({"family", "CNY", "family", std::nullopt, {"se-alice", "se-bob", "se-carol"}}));
    ASSERT_TRUE(bank->open_account({"club", "CNY", "club", std::nullopt, {"se-alice", "se-bob", "se-carol"}, 2}));
    ASSERT_TRUE(bank->cash_in("family", *Amount::of("CNY", 5000), "counter-family"));
    ASSERT_TRUE(bank->cash_in("club", *Amount::of("CNY", 5000), "counter-club"));
  }

  Json spend(TestSigner& asker, const std::string& account, std::int64_t minor, const std::string& action = "transfer",
             const std::string& to = "bob-cny") {
    return asker.payload("joint.spend", Json{{"amount", minor},
                                             {"currency", "CNY"},
                                             {"account", account},
                                             {"bank", kBank},
                                             {"action", action},
                                             {"to", to}});
  }
  // `p` signed by each of `signers` in order, over the same payload bytes.
  std::string signed_by(const Json& p, std::initializer_list<TestSigner*> signers) {
    std::string first = (*signers.begin())->sign(p);
    auto parsed = jws_parse(first);
    EXPECT_TRUE(parsed);
    std::vector<std::string> parts{first};
    for (auto it = signers.begin() + 1; it != signers.end(); ++it) {
      KeySigner s(*(*it)->key);
      auto more = jws_sign_compact(parsed->payload, JwsSigner{&s, (*it)->chain});
      EXPECT_TRUE(more);
      parts.push_back(*more);
    }
    if (parts.size() == 1) return first;
    auto joined = jws_join(parts);
    EXPECT_TRUE(joined) << joined.error().message();
    return *joined;
  }
  void expect_refused(const Result<std::string>& r, Errc code, const std::string& doc_id) {
    ASSERT_FALSE(r) << "expected " << errc_name(code);
    EXPECT_EQ(r.error().code, code) << r.error().message();
    EXPECT_EQ(balance("family"), 5000);
    EXPECT_EQ(balance("club"), 5000);
    EXPECT_EQ(balance("bob-cny"), 0);
    EXPECT_FALSE(record_of(doc_id)) << "a refused spend is not claimed";
  }
  TestSigner bob, carol, mallory;
};

TEST_F(JointTest, AllCoManagersSigningMovesTheMoneyOnce) {
  Json p = spend(alice, "family", 1200);
  std::string jws = signed_by(p, {&alice, &bob, &carol});
  auto receipt = bank->joint_spend(jws);
  ASSERT_TRUE(receipt) << receipt.error().message();
  EXPECT_EQ(balance("family"), 3800);
  EXPECT_EQ(balance("bob-cny"), 1200);
  EXPECT_EQ(record_of(p["id"])->doc_type, "joint.spend");
  auto again = bank->joint_spend(jws);
  ASSERT_TRUE(again);
  EXPECT_EQ(*again, *receipt);
  EXPECT_EQ(balance("family"), 3800);
}

TEST_F(JointTest, OneMissingSignatureIsRefusedByName) {
  Json p = spend(alice, "family", 1200);
  auto r = bank->joint_spend(signed_by(p, {&alice, &bob}));
  expect_refused(r, Errc::threshold_not_met, p["id"]);
  EXPECT_NE(r.error().detail.find("needs 3"), std::string::npos) << r.error().detail;
  Json alone = spend(alice, "family", 1200);
  expect_refused(bank->joint_spend(signed_by(alone, {&alice})), Errc::threshold_not_met, alone["id"]);
}

TEST_F(JointTest, TheSameCoManagerTwiceDoesNotCountTwice) {
  Json p = spend(alice, "club", 1200);
  expect_refused(bank->joint_spend(signed_by(p, {&alice, &alice})), Errc::bad_header, p["id"]);
}

TEST_F(JointTest, ANonMembersSignatureIsRefused) {
  Json p = spend(alice, "club", 1200);
  expect_refused(bank->joint_spend(signed_by(p, {&alice, &mallory})), Errc::not_owner, p["id"]);
  // Even on top of enough members' signatures.
  Json q = spend(alice, "club", 1200);
  expect_refused(bank->joint_spend(signed_by(q, {&alice, &bob, &mallory})), Errc::not_owner, q["id"]);
  // A stranger asking.
  Json m = spend(mallory, "club", 1200);
  expect_refused(bank->joint_spend(signed_by(m, {&mallory, &alice, &bob})), Errc::not_owner, m["id"]);
}

TEST_F(JointTest, ASignatureOverAnotherRequestDoesNotCount) {
  Json p = spend(alice, "club", 1200);
  Json other = p;
  other["amount"] = 4000;
  // Bob signed a different payload; grafted onto Alice's, it fails verification.
  std::string mine = alice.sign(p);
  std::string bobs = bob.sign(other);
  Json general = *parse_json_strict(*jws_join({mine}));
  Json graft = *parse_json_strict(*jws_join({bobs}));
  general["signatures"].push_back(graft["signatures"][0]);
  expect_refused(bank->joint_spend(dump_json(general)), Errc::bad_signature, p["id"]);
  // And jws_join refuses to put them together at all.
  auto joined = jws_join({mine, bobs});
  ASSERT_FALSE(joined);
  EXPECT_EQ(joined.error().code, Errc::bad_header);
}

TEST_F(JointTest, TwoOfThreeIsEnoughForATwoOfThreeAccount) {
  Json p = spend(bob, "club", 700, "transfer", "alice-cny");
  auto r = bank->joint_spend(signed_by(p, {&bob, &carol}));
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_EQ(balance("club"), 4300);
  EXPECT_EQ(balance("alice-cny"), 10700);
}

TEST_F(JointTest, NoSingleSeSignsForAJointAccount) {
  // A member's transfer order alone, even one whose user owns the account's label.
  Json order = alice.payload("transfer.order",
                             Json{{"amount", 100}, {"currency", "CNY"}, {"from", "family"}, {"to", "bob-cny"}, {"bank", kBank}});
  auto r = bank->transfer(alice.sign(order));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, Errc::not_owner);
  // A joint spend from an account that is not joint.
  Json p = spend(alice, "alice-cny", 100);
  auto not_joint = bank->joint_spend(signed_by(p, {&alice, &bob}));
  ASSERT_FALSE(not_joint);
  EXPECT_EQ(not_joint.error().code, Errc::not_owner);
  EXPECT_EQ(balance("alice-cny"), 10000);
  EXPECT_EQ(balance("family"), 5000);
}

TEST_F(JointTest, ATopUpGoesIntoTheAskersSeAndAnInsufficientSpendIsConsumed) {
  Json p = spend(carol, "family", 900, "topup", "se-carol");
  auto r = bank->joint_spend(signed_by(p, {&carol, &alice, &bob}));
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_EQ(balance("family"), 4100);
  EXPECT_EQ(outstanding(), 900);
  CertVerifier v(world.root());
  auto receipt = open_signed_document(*r, v, Role::custody);
  ASSERT_TRUE(receipt);
  EXPECT_EQ(receipt->doc.type(), "topup.receipt");
  EXPECT_EQ(receipt->doc.str("request_id"), p["id"]);
  EXPECT_EQ(receipt->doc.str("se"), "se-carol");
  EXPECT_EQ(receipt->doc.str("account"), "family");
  // Into another co-manager's SE: refused, the e-cash would land where nobody asked for it.
  Json elsewhere = spend(carol, "family", 900, "topup", "se-alice");
  auto wrong = bank->joint_spend(signed_by(elsewhere, {&carol, &alice, &bob}));
  ASSERT_FALSE(wrong);
  EXPECT_EQ(wrong.error().code, Errc::bad_field);
  // More than the account holds: a signed refusal, consumed.
  Json big = spend(alice, "family", 4101);
  std::string big_jws = signed_by(big, {&alice, &bob, &carol});
  auto refused = bank->joint_spend(big_jws);
  ASSERT_TRUE(refused) << refused.error().message();
  EXPECT_EQ(refusal_reason(*refused).value_or(""), "insufficient_funds");
  ASSERT_TRUE(bank->cash_in("family", *Amount::of("CNY", 1000), "counter-family-2"));
  auto again = bank->joint_spend(big_jws);
  ASSERT_TRUE(again);
  EXPECT_EQ(*again, *refused);
  EXPECT_EQ(balance("family"), 5100);
  EXPECT_EQ(balance("bob-cny"), 0);
}

TEST_F(JointTest, OpeningAJointAccountChecksItsRule) {
  using R = bank::OpenAccountRequest;
  for (const R& bad : {R{"j1", "CNY", "x", std::nullopt, {"se-a", "se-a"}},
                       R{"j2", "CNY", "x", std::nullopt, {"se-a", "se-b"}, 3},
                       R{"j3", "CNY", "x", std::string("se-a"), {"se-a", "se-b"}},
                       R{"j4", "CNY", "x", std::nullopt, {}, 2},
                       R{"j5", "CNY", "x", std::nullopt, {"se-a", "bad id"}}}) {
    auto r = bank->open_account(bad);
    ASSERT_FALSE(r) << bad.account;
    EXPECT_EQ(r.error().code, Errc::bad_field) << bad.account << ": " << r.error().message();
  }
  // The same account again is the same account; another rule under its id is a conflict.
  auto same = bank->open_account({"club", "CNY", "club", std::nullopt, {"se-carol", "se-bob", "se-alice"}, 2});
  ASSERT_TRUE(same) << same.error().message();
  EXPECT_EQ(same->threshold, 2);
  auto other = bank->open_account({"club", "CNY", "club", std::nullopt, {"se-alice", "se-bob", "se-carol"}, 3});
  ASSERT_FALSE(other);
  EXPECT_EQ(other.error().code, Errc::conflict);
  auto stored = bank->store().find_account("family");
  ASSERT_TRUE(stored && *stored);
  EXPECT_EQ((*stored)->kind, ledger::AccountKind::joint);
  EXPECT_EQ((*stored)->threshold, 3);
  EXPECT_EQ((*stored)->co_managers, (std::vector<std::string>{"se-alice", "se-bob", "se-carol"}));
}

}  // namespace
}  // namespace zf::test
