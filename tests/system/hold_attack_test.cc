// Attacks on holds across real processes (docs/bank-api.md "Holds",
// docs/wallet-cli.md "zf wallet hold"): a file from a hostile party handed to
// `zf wallet hold submit`, ends of holds the wallet does not know, a bank
// killed with kill -9 after its registry claim of a request or a release,
// an answer lost after the bank committed, and the bank's expiry pass racing
// the payer's confirm. After each: every hold ended at most once, the money
// where the hold's receipts say, and the network's audit green.
#include <cctype>
#include <chrono>
#include <filesystem>
#include <future>
#include <thread>

#include "bank/client.h"
#include "core/jose.h"
#include "system_fixture.h"

namespace zf::test {
namespace {

namespace fs = std::filesystem;

class HoldAttackSystemTest : public NetworkTest {
 protected:
  void customize(cli::NetworkOptions& o) const override {
    o.bank_args = {"--hold-check-ms",
                   "20",
                   "--fault-die-after-claim",
                   marker().string(),
                   "--fault-die-after-claim-type",
                   die_on_type()};
    for (const auto& a : extra_bank_args()) o.bank_args.push_back(a);
  }
  virtual std::string die_on_type() const { return "none"; }
  virtual std::vector<std::string> extra_bank_args() const { return {}; }
  fs::path marker() const { return dir_ / "bank-killed"; }

  std::int64_t account_balance(const std::string& account) {
    auto root = Certificate::from_pem(slurp(net_->root_file));
    EXPECT_TRUE(root);
    std::string token = slurp(fs::path(net_->bank_dir) / "admin.token");
    while (!token.empty() && std::isspace(static_cast<unsigned char>(token.back())))
      token.pop_back();
    auto admin = bank::BankClient::connect(net_->bank_url, *root, net_->bank_id, token);
    EXPECT_TRUE(admin) << admin.error().message();
    if (!admin) return -1;
    auto a = admin->account(account);
    EXPECT_TRUE(a) << a.error().message();
    return a ? a->balance_minor : -1;
  }
  // Alice signs a request to hold `amount` for Bob into a file; its facts.
  Json request_file(const std::string& amount, const std::string& file,
                    const std::string& release_in = "1h") {
    CmdResult req = zf_wallet(
        "alice", {"hold", "request", amount, "--bank", net_->bank_id, "--from", se("alice").account,
                  "--to", se("bob").account, "--release-in", release_in, "--out", file, "--json"});
    EXPECT_EQ(req.exit_code, 0) << req.out;
    auto facts = parse_json_strict(req.out);
    EXPECT_TRUE(facts) << req.out;
    return facts ? *facts : Json::object();
  }
  std::string place(const std::string& amount, const std::string& release_in = "1h") {
    const std::string file = (dir_ / ("hold-" + std::to_string(++holds_) + ".jws")).string();
    Json facts = request_file(amount, file, release_in);
    CmdResult sent = zf_wallet("bob", {"hold", "cosign", file, "--submit"});
    EXPECT_EQ(sent.exit_code, 0) << sent.out;
    return facts.value("hold_id", "");
  }
  Json se_info(const std::string& user) {
    CmdResult b = zf_wallet(user, {"balance", "--json"}, std::nullopt);
    EXPECT_EQ(b.exit_code, 0) << b.out;
    auto j = parse_json_strict(b.out);
    EXPECT_TRUE(j) << b.out;
    return j ? *j : Json::object();
  }
  void expect_audit_ok(const std::string& when) {
    Json a = audit();
    EXPECT_TRUE(a.value("ok", false)) << when << ": " << a.dump(2);
  }
  bool wait_for_balance(const std::string& account, std::int64_t want, int tenths = 100) {
    for (int i = 0; i < tenths; ++i) {
      if (account_balance(account) == want) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    return account_balance(account) == want;
  }
  int holds_ = 0;
};

// The wallet sends only a request both SEs signed, and ends only holds it
// signed or cosigned; each refusal says what did not happen, in words.
TEST_F(HoldAttackSystemTest, TheWalletRefusesHalfSignedRequestsAndHoldsItDoesNotKnow) {
  const std::string alice = se("alice").account, bob = se("bob").account;
  const std::int64_t a0 = account_balance(alice), b0 = account_balance(bob);
  const std::string file = (dir_ / "half.jws").string();
  Json facts = request_file("CNY 10.00", file);
  for (const char* who : {"alice", "bob"}) {
    CmdResult r = zf_wallet(who, {"hold", "submit", file});
    EXPECT_EQ(r.exit_code, 2) << who << ": " << r.out;
    EXPECT_NE(r.out.find("1 signature(s)"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("nothing was sent"), std::string::npos) << r.out;
  }
  // Bob has not cosigned, so his wallet does not know the hold; nor does
  // alice's know one that was never requested.
  CmdResult unknown = zf_wallet("bob", {"hold", "release", facts.value("hold_id", "")});
  EXPECT_EQ(unknown.exit_code, 2) << unknown.out;
  EXPECT_NE(unknown.out.find("hold_unknown"), std::string::npos) << unknown.out;
  EXPECT_NE(unknown.out.find("nothing was signed"), std::string::npos) << unknown.out;
  CmdResult none = zf_wallet("alice", {"hold", "confirm", se("bob").se_id + ":99"});
  EXPECT_EQ(none.exit_code, 2) << none.out;
  EXPECT_NE(none.out.find("hold_unknown"), std::string::npos) << none.out;
  // A release time beyond 90 days: the SE signs, the bank refuses it by name.
  const std::string far = (dir_ / "far.jws").string();
  request_file("CNY 10.00", far, "91d");
  CmdResult refused = zf_wallet("bob", {"hold", "cosign", far, "--submit"});
  EXPECT_EQ(refused.exit_code, 2) << refused.out;
  EXPECT_NE(refused.out.find("bad_field"), std::string::npos) << refused.out;
  EXPECT_NE(refused.out.find("nothing moved"), std::string::npos) << refused.out;
  // One account on both sides: the SE does not even sign it.
  CmdResult same =
      zf_wallet("alice", {"hold", "request", "CNY 1.00", "--bank", net_->bank_id, "--from", alice,
                          "--to", alice, "--out", (dir_ / "same.jws").string()});
  EXPECT_EQ(same.exit_code, 2) << same.out;
  EXPECT_NE(same.out.find("same_account"), std::string::npos) << same.out;
  EXPECT_NE(same.out.find("nothing was signed"), std::string::npos) << same.out;
  EXPECT_EQ(account_balance(alice), a0);
  EXPECT_EQ(account_balance(bob), b0);
  expect_audit_ok("after the refusals");
}

// HOLE: `zf wallet hold submit FILE` writes FILE into the outbox under the
// id its payload claims before anything checks it (src/wallet/wallet_hold.cc,
// hold_submit: a prior entry is kept only if it is a "hold"; otherwise the
// new entry replaces it in save_entry). Neither signature is verified and the
// id need not be the issuer's. A payee hands the payer a "cosigned request"
// whose id is one of the payer's own pending documents (ids are
// "<se>:<seq>", so easy to guess): here a deposit note whose answer was lost.
// The payer submits it; the bank refuses the forgery (non-retryable, so the
// entry is marked refused), and the signed deposit note is gone from the
// outbox. `zf wallet retry` then skips it, and its adoption of documents the
// SE issued skips it too, because an entry with that id exists. The SE has
// debited the value; the bank never credits it.
// Fix: in hold_submit, open the request with open_signed_document against the
// root (two secure-element signers, issuer = first signer) before writing
// anything, and never let save_entry replace an entry of another kind (or any
// entry that is pending); also make file_name injective (':' -> '_' maps
// "se:1" and "se_1" to one file).
TEST_F(HoldAttackSystemTest, AForgedRequestFileCannotReplaceAPendingDepositInTheOutbox) {
  const std::string alice = se("alice").account;
  CmdResult topup =
      zf_wallet("alice", {"topup", "CNY 20.00", "--bank", net_->bank_id, "--account", alice});
  ASSERT_EQ(topup.exit_code, 0) << topup.out;
  const std::int64_t a0 = account_balance(alice);
  net_->kill9(net_->bank_id);
  CmdResult deposit =
      zf_wallet("alice", {"deposit", "CNY 5.00", "--bank", net_->bank_id, "--account", alice});
  EXPECT_NE(deposit.exit_code, 0) << deposit.out;
  EXPECT_NE(deposit.out.find("zf wallet retry"), std::string::npos) << deposit.out;
  ASSERT_TRUE(net_->restart(net_->bank_id));
  Json info = se_info("alice");
  ASSERT_EQ(info["pending_deposits"].size(), 1u) << info.dump();
  const std::string pending = info["pending_deposits"][0];

  // The forgery: a hold.request under the pending note's id, "signed" twice by
  // a key that is not the certificate's (the wallet does not look).
  auto root = Certificate::from_pem(slurp(net_->root_file));
  ASSERT_TRUE(root);
  auto key = PrivateKey::generate();
  ASSERT_TRUE(key);
  const auto colon = pending.rfind(':');
  Json payload{{"type", "hold.request"},
               {"v", 1},
               {"id", pending},
               {"issuer", pending.substr(0, colon)},
               {"seq", std::stoll(pending.substr(colon + 1))},
               {"iat", static_cast<std::int64_t>(std::time(nullptr))},
               {"exp", static_cast<std::int64_t>(std::time(nullptr)) + 600},
               {"nonce", new_nonce()},
               {"amount", 100},
               {"currency", "CNY"},
               {"payer_account", alice},
               {"payee_account", se("bob").account},
               {"bank", net_->bank_id},
               {"release_at", static_cast<std::int64_t>(std::time(nullptr)) + 3600}};
  KeySigner signer(*key);
  std::string bytes = dump_json(payload);
  auto one = jws_sign_compact(as_bytes(bytes), JwsSigner{&signer, {*root}});
  auto two = jws_sign_compact(as_bytes(bytes), JwsSigner{&signer, {*root}});
  ASSERT_TRUE(one && two);
  auto forged = jws_join({*one, *two});
  ASSERT_TRUE(forged);
  const std::string file = (dir_ / "from-the-payee.jws").string();
  {
    std::ofstream out(file);
    out << *forged << "\n";
  }
  CmdResult submit = zf_wallet("alice", {"hold", "submit", file});
  EXPECT_NE(submit.exit_code, 0) << submit.out;

  CmdResult retry = zf_wallet("alice", {"retry"});
  EXPECT_EQ(retry.exit_code, 0) << retry.out;
  EXPECT_EQ(account_balance(alice), a0 + 500) << "the deposit note was lost from the outbox:\n"
                                              << retry.out;
  EXPECT_EQ(se_info("alice")["pending_deposits"].size(), 0u);
}

// kill -9 of the bank after its registry claim of a hold.request: nothing was
// frozen; the payee's `retry` sends the same request and it holds once.
class HoldRequestCrashTest : public HoldAttackSystemTest {
 protected:
  std::string die_on_type() const override { return "hold.request"; }
};

TEST_F(HoldRequestCrashTest, KillNineAfterTheRequestsClaimThenRetryHoldsOnce) {
  const std::string alice = se("alice").account, bob = se("bob").account;
  const std::int64_t a0 = account_balance(alice), b0 = account_balance(bob);
  const std::string file = (dir_ / "req.jws").string();
  Json facts = request_file("CNY 7.00", file);
  CmdResult first = zf_wallet("bob", {"hold", "cosign", file, "--submit"});
  EXPECT_NE(first.exit_code, 0) << first.out;
  ASSERT_TRUE(fs::exists(marker())) << first.out;
  EXPECT_NE(first.out.find("zf wallet retry"), std::string::npos) << first.out;
  ASSERT_TRUE(net_->restart(net_->bank_id));
  EXPECT_EQ(account_balance(alice), a0) << "the request's transaction never committed";
  expect_audit_ok("after the crash, nothing held");
  // The payer sends the same request from its side too: one hold, whoever sends.
  CmdResult retried = zf_wallet("bob", {"retry"});
  EXPECT_EQ(retried.exit_code, 0) << retried.out;
  CmdResult from_payer = zf_wallet("alice", {"hold", "submit", file});
  EXPECT_EQ(from_payer.exit_code, 0) << from_payer.out;
  EXPECT_EQ(account_balance(alice), a0 - 700);
  CmdResult again = zf_wallet("bob", {"retry"});
  EXPECT_EQ(again.exit_code, 0) << again.out;
  EXPECT_EQ(account_balance(alice), a0 - 700);
  expect_audit_ok("after the retries, one hold");
  CmdResult paid = zf_wallet("alice", {"hold", "confirm", facts.value("hold_id", "")});
  ASSERT_EQ(paid.exit_code, 0) << paid.out;
  EXPECT_EQ(account_balance(bob), b0 + 700);
  EXPECT_EQ(account_balance(alice), a0 - 700);
  expect_audit_ok("after the confirm");
}

// kill -9 after the claim of the payee's release; after the restart the payer
// confirms first. The release, claimed but never committed, loses: its retry
// is hold_resolved, and the hold ended once, by the confirm.
class HoldReleaseCrashTest : public HoldAttackSystemTest {
 protected:
  std::string die_on_type() const override { return "hold.release"; }
};

TEST_F(HoldReleaseCrashTest, AReleaseClaimedBeforeACrashLosesToAConfirmAfterIt) {
  const std::string alice = se("alice").account, bob = se("bob").account;
  const std::int64_t a0 = account_balance(alice), b0 = account_balance(bob);
  std::string id = place("CNY 9.00");
  CmdResult release = zf_wallet("bob", {"hold", "release", id});
  EXPECT_NE(release.exit_code, 0) << release.out;
  ASSERT_TRUE(fs::exists(marker())) << release.out;
  ASSERT_TRUE(net_->restart(net_->bank_id));
  EXPECT_EQ(account_balance(alice), a0 - 900);
  CmdResult paid = zf_wallet("alice", {"hold", "confirm", id});
  ASSERT_EQ(paid.exit_code, 0) << paid.out;
  CmdResult retried = zf_wallet("bob", {"retry"});
  EXPECT_NE(retried.out.find("hold_resolved"), std::string::npos) << retried.out;
  EXPECT_EQ(account_balance(bob), b0 + 900);
  EXPECT_EQ(account_balance(alice), a0 - 900);
  expect_audit_ok("after the retry of the losing release");
}

// The bank committed the hold and its answer never reached the terminal
// (kill -9 while the answer was held back): the retry gets the same receipt,
// and the money is frozen once.
class HoldLostAnswerTest : public HoldAttackSystemTest {
 protected:
  std::vector<std::string> extra_bank_args() const override {
    return {"--fault-answer-marker", answered().string(), "--fault-reply-delay-ms", "3000"};
  }
  fs::path answered() const { return dir_ / "bank-answered"; }
};

TEST_F(HoldLostAnswerTest, AHoldWhoseAnswerWasLostIsFrozenOnceAndTheRetryGetsItsReceipt) {
  const std::string alice = se("alice").account;
  const std::int64_t a0 = account_balance(alice);
  const std::string file = (dir_ / "req.jws").string();
  Json facts = request_file("CNY 6.00", file);
  auto sent = std::async(std::launch::async, [&] {
    return zf_wallet("bob", {"hold", "cosign", file, "--submit"});
  });
  bool committed = false;
  for (int i = 0; i < 100 && !committed; ++i) {
    committed = slurp(answered()).find("/v1/hold 200") != std::string::npos;
    if (!committed) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  ASSERT_TRUE(committed) << slurp(answered());
  net_->kill9(net_->bank_id);
  CmdResult lost = sent.get();
  EXPECT_NE(lost.exit_code, 0) << lost.out;
  ASSERT_TRUE(net_->restart(net_->bank_id));
  EXPECT_EQ(account_balance(alice), a0 - 600) << "committed before the answer was lost";
  CmdResult retried = zf_wallet("bob", {"retry"});
  EXPECT_EQ(retried.exit_code, 0) << retried.out;
  CmdResult from_payer = zf_wallet("alice", {"hold", "submit", file, "--json"});
  EXPECT_EQ(from_payer.exit_code, 0) << from_payer.out;
  auto j = parse_json_strict(from_payer.out);
  ASSERT_TRUE(j) << from_payer.out;
  EXPECT_EQ((*j)["status"], "held");
  EXPECT_EQ((*j)["hold_id"], facts["hold_id"]);
  EXPECT_EQ(account_balance(alice), a0 - 600);
  expect_audit_ok("after the lost answer and the retries");
}

// The payer's confirm sent around the hold's release time, against the
// bank's expiry pass (every 20 ms): each hold ends once, confirmed or
// expired, and the payee has exactly the confirmed ones.
TEST_F(HoldAttackSystemTest, ConfirmsRacingTheExpiryPassEndEachHoldOnce) {
  const std::string alice = se("alice").account, bob = se("bob").account;
  const std::int64_t a0 = account_balance(alice), b0 = account_balance(bob);
  constexpr int kRounds = 6;
  int confirmed = 0, expired = 0;
  for (int round = 0; round < kRounds; ++round) {
    auto placed_at = std::chrono::steady_clock::now();
    std::string id = place("CNY 1.00", "5s");
    // Aim at the deadline: a little before it in early rounds, a little after later.
    std::this_thread::sleep_until(placed_at + std::chrono::milliseconds(4400 + 150 * round));
    CmdResult c = zf_wallet("alice", {"hold", "confirm", id});
    if (c.exit_code == 0) {
      ++confirmed;
    } else {
      EXPECT_NE(c.out.find("hold_resolved"), std::string::npos) << c.out;
      EXPECT_NE(c.out.find("expired"), std::string::npos) << c.out;
      ++expired;
    }
    CmdResult late = zf_wallet("bob", {"hold", "release", id});
    EXPECT_EQ(late.exit_code, 2) << late.out;
    EXPECT_NE(late.out.find("hold_resolved"), std::string::npos) << late.out;
  }
  std::printf("confirm vs expiry: %d confirmed, %d expired\n", confirmed, expired);
  EXPECT_EQ(confirmed + expired, kRounds);
  EXPECT_EQ(account_balance(bob), b0 + 100 * confirmed);
  EXPECT_EQ(account_balance(alice), a0 - 100 * confirmed);
  expect_audit_ok("after the races");
}

}  // namespace
}  // namespace zf::test
