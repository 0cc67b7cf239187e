// What `zf wallet` says to a person, on a local network of real processes:
// amounts as "CNY 12.50", local dates, sentences that say what happened and
// whether money moved; `--json` for scripts, with the fields docs/wallet-cli.md
// lists; and a second terminal on a busy SE told so, never given a torn link.
#include <sys/wait.h>

#include <atomic>
#include <chrono>
#include <ctime>
#include <fstream>
#include <future>
#include <optional>
#include <sstream>
#include <thread>

#include "net/apdu_link.h"
#include "system_fixture.h"

namespace zf::test {
namespace {

using Said = CmdResult;

// Today's date as the terminal writes it ("2026-12-02"), to find in its output.
std::string today() {
  std::time_t t = std::time(nullptr);
  std::tm tm{};
  char buf[16];
  ::localtime_r(&t, &tm);
  std::strftime(buf, sizeof buf, "%Y-%m-%d", &tm);
  return buf;
}

class WalletOutputTest : public NetworkTest {
 protected:
  std::vector<std::string> users() const override { return {"alice", "bob", "carol"}; }

  // Runs `zf wallet <args> --wallet <user's wallet>`, stdout and stderr
  // together; the PIN in ZF_PIN, or none at all (no ZF_PIN, no terminal).
  Said wallet(const std::string& user, const std::vector<std::string>& args,
              std::optional<std::string> pin = "123456") {
    return zf_wallet(user, args, pin);
  }
  Json json_of(const Said& s) {
    auto j = parse_json_strict(s.out);
    EXPECT_TRUE(j) << s.out;
    return j ? *j : Json::object();
  }
  Said topup(const std::string& amount) {
    return wallet("alice",
                  {"topup", amount, "--bank", net_->bank_id, "--account", se("alice").account});
  }

};

#define EXPECT_SAYS(said, text) EXPECT_NE((said).out.find(text), std::string::npos) << (said).out

TEST_F(WalletOutputTest, BalanceTopUpDepositAndHistorySayWhatHappenedInWords) {
  Said fresh = wallet("alice", {"balance"}, std::nullopt);  // no PIN needed
  ASSERT_EQ(fresh.exit_code, 0) << fresh.out;
  EXPECT_SAYS(fresh, "SE " + se("alice").se_id + " of alice: active, 3 PIN tries left.");
  EXPECT_SAYS(fresh, "E-cash: none yet");

  Said first = topup("CNY 20.00");
  ASSERT_EQ(first.exit_code, 0) << first.out;
  EXPECT_SAYS(first, "Topped up CNY 20.00 from account " + se("alice").account + " at " +
                         net_->bank_id + ". The SE now holds CNY 20.00.");
  Said second = topup("CNY 12.50");
  ASSERT_EQ(second.exit_code, 0) << second.out;
  EXPECT_SAYS(second, "The SE now holds CNY 32.50.");
  ASSERT_EQ(
      wallet("alice", {"pay", "CNY 7.00", "--to", "carol", "--out", (dir_ / "n.jws").string()})
          .exit_code,
      0);

  Said dep = wallet(
      "alice", {"deposit", "CNY 5.00", "--bank", net_->bank_id, "--account", se("alice").account});
  ASSERT_EQ(dep.exit_code, 0) << dep.out;
  // 1000.00 - 20.00 - 12.50 + 5.00 in the account; 32.50 - 7.00 - 5.00 in the SE.
  EXPECT_SAYS(dep, "Deposited CNY 5.00 into account " + se("alice").account + " at " +
                       net_->bank_id +
                       ". The SE now holds CNY 20.50; the account's balance is CNY 972.50.");
  // Into someone else's account: this SE may not ask its balance, so none is claimed.
  Said gift = wallet(
      "alice", {"deposit", "CNY 0.50", "--bank", net_->bank_id, "--account", se("bob").account});
  ASSERT_EQ(gift.exit_code, 0) << gift.out;
  EXPECT_SAYS(gift, "Deposited CNY 0.50 into account " + se("bob").account + " at " +
                        net_->bank_id + ". The SE now holds CNY 20.00.");

  Said bal = wallet("alice", {"balance"}, std::nullopt);
  ASSERT_EQ(bal.exit_code, 0) << bal.out;
  EXPECT_SAYS(bal, "E-cash: CNY 20.00\n");
  EXPECT_SAYS(bal, "Paid, not yet received: CNY 7.00 in 1 note to " + se("carol").se_id);
  ASSERT_EQ(wallet("carol", {"receive", (dir_ / "n.jws").string()}).exit_code, 0);
  EXPECT_SAYS(wallet("alice", {"balance"}, std::nullopt),
              "Paid notes: none is waiting to be received.");

  const std::string date = today();
  Said hist = wallet("alice", {"history"});
  ASSERT_EQ(hist.exit_code, 0) << hist.out;
  EXPECT_SAYS(hist, "WHEN");
  EXPECT_SAYS(hist, date);
  EXPECT_SAYS(hist, "topped up");
  EXPECT_SAYS(hist, "+CNY 20.00");
  EXPECT_SAYS(hist, "+CNY 12.50");
  EXPECT_SAYS(hist, "paid (note signed)");
  EXPECT_SAYS(hist, "-CNY 7.00  " + se("carol").se_id);
  EXPECT_SAYS(hist, "deposited (note signed)");
  EXPECT_SAYS(hist, "-CNY 5.00  " + net_->bank_id);
  EXPECT_EQ(hist.out.find("amount_minor"), std::string::npos)
      << "raw minor units shown: " << hist.out;
  // Without the PIN the SE's log stays closed; the terminal's own record is shown, dated.
  Said bare = wallet("alice", {"history"}, std::nullopt);
  ASSERT_EQ(bare.exit_code, 0) << bare.out;
  EXPECT_SAYS(bare, "The SE's log is not shown");
  EXPECT_SAYS(bare, date);
  EXPECT_SAYS(bare, "topped up CNY 20.00 from " + net_->bank_id);
  EXPECT_SAYS(bare, "paid CNY 7.00 to " + se("carol").se_id);
  EXPECT_SAYS(bare, "deposited CNY 5.00 into account " + se("alice").account);
}

TEST_F(WalletOutputTest, JsonFormsParseAndHaveTheDocumentedFields) {
  Json top = json_of(wallet("alice", {"topup", "CNY 20.00", "--bank", net_->bank_id, "--account",
                                      se("alice").account, "--json"}));
  EXPECT_EQ(top["credited_minor"], 2000);
  EXPECT_EQ(top["currency"], "CNY");
  EXPECT_EQ(top["balance_minor"], 2000);

  Json dep = json_of(wallet("alice", {"deposit", "CNY 5.00", "--bank", net_->bank_id, "--account",
                                      se("alice").account, "--json"}));
  EXPECT_TRUE(dep["settled"].is_string()) << dep.dump();

  Json bal = json_of(wallet("alice", {"balance", "--json"}, std::nullopt));
  for (const char* f :
       {"se_id", "user_id", "state", "seq", "pin_tries_left", "verified", "balances",
        "max_balance_minor", "max_payment_minor", "crl_number", "crl_next_update", "pending_topups",
        "pending_deposits", "received_notes", "sent_minor", "received_minor"})
    EXPECT_TRUE(bal.contains(f)) << f << " missing: " << bal.dump();
  EXPECT_EQ(bal["balances"]["CNY"], 1500);
  EXPECT_EQ(bal["state"], "active");
  EXPECT_EQ(bal["pin_tries_left"], 3);

  Json hist = json_of(wallet("alice", {"history", "--json"}));
  ASSERT_TRUE(hist["terminal"].is_array() && hist["terminal"].size() == 2) << hist.dump();
  EXPECT_EQ(hist["terminal"][0]["op"], "topup");
  EXPECT_TRUE(hist["terminal"][0]["at"].is_number_integer()) << hist.dump();
  ASSERT_TRUE(hist["se_log"].is_array() && !hist["se_log"].empty()) << hist.dump();
  for (const char* f : {"seq", "op", "doc_id", "currency", "amount_minor", "counterparty", "at"})
    EXPECT_TRUE(hist["se_log"][0].contains(f)) << f << " missing: " << hist.dump();

  Json acct = json_of(wallet(
      "alice", {"account", "--bank", net_->bank_id, "--account", se("alice").account, "--json"}));
  EXPECT_EQ(acct["account"], se("alice").account);
  EXPECT_EQ(acct["currency"], "CNY");
  EXPECT_EQ(acct["balance_minor"], 100000 - 2000 + 500);
  ASSERT_TRUE(acct["history"].is_array() && acct["history"].size() == 3) << acct.dump();
  for (const char* f : {"entry_id", "doc_id", "kind", "amount_minor", "created_at"})
    EXPECT_TRUE(acct["history"][0].contains(f)) << f << " missing: " << acct.dump();
}

TEST_F(WalletOutputTest, AccountShowsTheBankBalanceAndTheTopUpEntry) {
  const std::string account = se("alice").account;
  Json before = json_of(
      wallet("alice", {"account", "--bank", net_->bank_id, "--account", account, "--json"}));
  ASSERT_TRUE(before["balance_minor"].is_number_integer()) << before.dump();
  ASSERT_EQ(topup("CNY 20.00").exit_code, 0);
  Json after = json_of(
      wallet("alice", {"account", "--bank", net_->bank_id, "--account", account, "--json"}));
  EXPECT_EQ(after["balance_minor"].get<std::int64_t>(),
            before["balance_minor"].get<std::int64_t>() - 2000);
  ASSERT_FALSE(after["history"].empty());
  EXPECT_EQ(after["history"][0]["kind"], "topup");
  EXPECT_EQ(after["history"][0]["amount_minor"], -2000);
  EXPECT_EQ(after["history"][0]["doc_id"], se("alice").se_id + ":1");

  Said shown = wallet("alice", {"account", "--bank", net_->bank_id, "--account", account});
  ASSERT_EQ(shown.exit_code, 0) << shown.out;
  EXPECT_SAYS(shown, "Account " + account + " at " + net_->bank_id + ": CNY 980.00\n");
  EXPECT_SAYS(shown, today());
  EXPECT_SAYS(shown, "top-up to an SE");
  EXPECT_SAYS(shown, "-CNY 20.00  " + se("alice").se_id + ":1");
  EXPECT_SAYS(shown, "+CNY 1000.00");

  // Bob's account is not bound to Alice's SE: the bank says so, and shows nothing.
  Said other =
      wallet("alice", {"account", "--bank", net_->bank_id, "--account", se("bob").account});
  EXPECT_NE(other.exit_code, 0) << other.out;
  EXPECT_SAYS(other, "the bank refused: this SE is not bound to account " + se("bob").account);
  EXPECT_SAYS(other, "nothing was shown");
  EXPECT_EQ(other.out.find("CNY"), std::string::npos) << other.out;
  Said nobody = wallet("alice", {"account", "--bank", net_->bank_id, "--account", "nobody"});
  EXPECT_NE(nobody.exit_code, 0) << nobody.out;
  EXPECT_SAYS(nobody, "the bank refused: " + net_->bank_id + " has no account nobody");
  // Without the right PIN no query is signed.
  Said wrong =
      wallet("alice", {"account", "--bank", net_->bank_id, "--account", account}, "000000");
  EXPECT_NE(wrong.exit_code, 0) << wrong.out;
  EXPECT_SAYS(wrong, "pin_wrong");
}

TEST_F(WalletOutputTest, RefusalsSayWhetherMoneyMoved) {
  ASSERT_EQ(topup("CNY 20.00").exit_code, 0);
  const std::string account = se("alice").account;
  Said poor = topup("CNY 1500.00");
  EXPECT_NE(poor.exit_code, 0);
  EXPECT_SAYS(poor, "the bank refused the top-up: account " + account +
                        " cannot cover CNY 1500.00 (insufficient_funds)");
  EXPECT_SAYS(poor, "no money moved");
  Said nobody =
      wallet("alice", {"deposit", "CNY 1.00", "--bank", net_->bank_id, "--account", "nobody"});
  EXPECT_NE(nobody.exit_code, 0);
  EXPECT_SAYS(nobody, "the bank refused the deposit: " + net_->bank_id +
                          " has no account nobody (account_unknown)");
  EXPECT_SAYS(nobody, "the CNY 1.00 came back into the SE, which holds CNY 20.00");
  Said much =
      wallet("alice", {"deposit", "CNY 30.00", "--bank", net_->bank_id, "--account", account});
  EXPECT_NE(much.exit_code, 0);
  EXPECT_SAYS(much, "insufficient_ecash");
  EXPECT_SAYS(much, "nothing moved, the SE still holds CNY 20.00");
  Said wrong = wallet(
      "alice", {"deposit", "CNY 1.00", "--bank", net_->bank_id, "--account", account}, "000000");
  EXPECT_NE(wrong.exit_code, 0);
  EXPECT_SAYS(wrong, "pin_wrong");
  EXPECT_SAYS(wrong, "nothing moved");
  EXPECT_EQ(se_balance("alice"), 2000);
  EXPECT_TRUE(audit()["ok"].get<bool>());
}

// What awaits a bank's answer and a blocked PIN are in the balance, in words.
TEST_F(WalletOutputTest, TheBalanceSaysWhatAwaitsTheBankAndWhenThePinIsBlocked) {
  ASSERT_EQ(topup("CNY 20.00").exit_code, 0);
  net_->kill9(net_->bank_id);
  Said dep = wallet(
      "alice", {"deposit", "CNY 4.00", "--bank", net_->bank_id, "--account", se("alice").account});
  EXPECT_NE(dep.exit_code, 0);
  EXPECT_SAYS(dep, "the SE has debited CNY 4.00");
  Said waiting = wallet("alice", {"balance"}, std::nullopt);
  ASSERT_EQ(waiting.exit_code, 0) << waiting.out;
  EXPECT_SAYS(waiting, "E-cash: CNY 16.00\n");
  EXPECT_SAYS(waiting,
              "Awaiting the bank's receipt (`zf wallet retry` finishes each exactly once):\n");
  EXPECT_SAYS(waiting, "  deposit " + se("alice").se_id + ":2: CNY 4.00 into account " +
                           se("alice").account + " at " + net_->bank_id +
                           " (the SE has debited it)");
  ASSERT_TRUE(net_->restart(net_->bank_id));
  ASSERT_EQ(wallet("alice", {"retry"}).exit_code, 0);
  Said settled = wallet("alice", {"balance"}, std::nullopt);
  EXPECT_EQ(settled.out.find("Awaiting"), std::string::npos) << settled.out;

  for (int i = 0; i < 3; ++i)
    EXPECT_NE(
        wallet("alice", {"account", "--bank", net_->bank_id, "--account", se("alice").account},
               "000000")
            .exit_code,
        0);
  Said blocked = wallet("alice", {"balance"}, std::nullopt);
  ASSERT_EQ(blocked.exit_code, 0) << blocked.out;
  EXPECT_SAYS(blocked, "SE " + se("alice").se_id +
                           " of alice: pin blocked, 0 PIN tries left. `zf wallet unblock`");
  EXPECT_SAYS(blocked, "E-cash: CNY 16.00\n");
}

// Two terminals on one SE at once: each gets a whole answer (the second waits
// for the first), or is told the SE is busy; a top-up is never cut off halfway.
TEST_F(WalletOutputTest, TwoTerminalsAtOnceNeverGetATornLink) {
  auto check = [&](const Said& s, const char* what) {
    if (s.exit_code == 0) return true;
    EXPECT_SAYS(s, "the SE is busy with another terminal") << what;
    return false;
  };
  for (int round = 0; round < 6; ++round) {
    auto a = std::async(std::launch::async, [&] {
      return wallet("alice", {"balance", "--json"}, std::nullopt);
    });
    auto b = std::async(std::launch::async, [&] {
      return wallet("alice", {"balance", "--json"}, std::nullopt);
    });
    for (Said s : {a.get(), b.get()})
      if (check(s, "balance")) {
        EXPECT_EQ(json_of(s)["se_id"], se("alice").se_id) << s.out;
      }
  }
  int topped = 0;
  for (int round = 0; round < 4; ++round) {
    auto t = std::async(std::launch::async, [&] { return topup("CNY 1.00"); });
    std::this_thread::sleep_for(std::chrono::milliseconds(20 * round));
    auto b =
        std::async(std::launch::async, [&] { return wallet("alice", {"balance"}, std::nullopt); });
    Said ts = t.get(), bs = b.get();
    if (check(ts, "topup")) ++topped;
    check(bs, "balance");
  }
  EXPECT_EQ(se_balance("alice"), 100 * topped);
  auto device = se::Device::open(se("alice").dir);
  ASSERT_TRUE(device);
  EXPECT_EQ((*device)->applet().state_json()["pending_topups"], Json::object())
      << "a top-up was cut off";
  EXPECT_TRUE(audit()["ok"].get<bool>());
}

// A terminal that keeps talking to the SE keeps it: a second one waits a few
// seconds, then hears that the SE is busy; nothing of it reached the SE.
TEST_F(WalletOutputTest, ASecondTerminalHearsTheSeIsBusy) {
  ASSERT_EQ(topup("CNY 20.00").exit_code, 0);
  auto link = net::ApduClient::connect("127.0.0.1", se("alice").port);
  ASSERT_TRUE(link) << link.error().message();
  const Bytes status = *hex_decode("80CA000600");  // GET DATA status, public
  ASSERT_TRUE(link->transmit(status));
  std::atomic<bool> stop{false};
  std::atomic<int> answered{0};
  std::thread holder([&] {
    while (!stop) {
      if (link->transmit(status)) ++answered;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
  });
  auto begin = std::chrono::steady_clock::now();
  Said busy = wallet("alice", {"balance"}, std::nullopt);
  auto waited = std::chrono::steady_clock::now() - begin;
  Said busy_topup = topup("CNY 1.00");
  stop = true;
  holder.join();
  EXPECT_GT(answered, 50) << "the first terminal lost its link";
  *link = net::ApduClient();  // the first terminal has finished
  EXPECT_NE(busy.exit_code, 0) << busy.out;
  EXPECT_SAYS(busy, "the SE is busy with another terminal; try again when it has finished");
  EXPECT_GE(waited, std::chrono::milliseconds(2500))
      << "the second terminal did not wait for the first";
  EXPECT_NE(busy_topup.exit_code, 0) << busy_topup.out;
  EXPECT_SAYS(busy_topup, "the SE is busy with another terminal");
  EXPECT_SAYS(busy_topup, "nothing moved");
  EXPECT_EQ(se_balance("alice"), 2000);
  // The SE is free again.
  Said after = wallet("alice", {"balance"}, std::nullopt);
  EXPECT_EQ(after.exit_code, 0) << after.out;
  EXPECT_SAYS(after, "E-cash: CNY 20.00");
  EXPECT_TRUE(audit()["ok"].get<bool>());
}

}  // namespace
}  // namespace zf::test
