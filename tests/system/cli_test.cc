// The terminal as a person uses it: `zf wallet ...` commands against a local
// network of real processes. Every refusal has a name and changes nothing.
#include <sys/wait.h>

#include <chrono>
#include <fstream>
#include <thread>
#include <sstream>

#include "ca/client.h"
#include "core/document.h"
#include "core/claims.h"
#include "system_fixture.h"

namespace zf::test {
namespace {

class CliTest : public NetworkTest {
 protected:
  std::vector<std::string> users() const override { return {"alice", "bob", "carol"}; }

  // Runs `zf wallet <args> --wallet <user's wallet>` with the PIN in the environment.
  CmdResult wallet(const std::string& user, const std::vector<std::string>& args, const std::string& pin = "123456") {
    return zf_wallet(user, args, pin);
  }

  // Everything the audit sees, to compare before and after a refusal.
  Json books() {
    Json a = audit();
    EXPECT_TRUE(a["ok"].get<bool>()) << a.dump(2);
    return Json{{"system", a["system"]}, {"bank", a["banks"][0]["currencies"]},
                {"alice", se_balance("alice")}, {"bob", se_balance("bob")}};
  }

  // Expects a refusal named `code` that leaves the books as they were.
  void expect_refused(const std::string& user, const std::vector<std::string>& args, const std::string& code) {
    Json before = books();
    CmdResult r = wallet(user, args);
    EXPECT_NE(r.exit_code, 0) << r.out;
    EXPECT_NE(r.out.find(code), std::string::npos) << "expected " << code << ", got: " << r.out;
    EXPECT_EQ(books(), before) << "a refused command changed the books";
  }

  std::string write(const std::string& name, const std::string& text) {
    std::string path = (dir_ / name).string();
    std::ofstream(path) << text << "\n";
    return path;
  }
};

TEST_F(CliTest, TopUpPayReceiveDepositThroughTheCommandLine) {
  CmdResult top = wallet("alice", {"topup", "CNY 100.00", "--bank", net_->bank_id, "--account", se("alice").account});
  ASSERT_EQ(top.exit_code, 0) << top.out;
  EXPECT_EQ(se_balance("alice"), 10000);
  std::string note = (dir_ / "note.jws").string();
  CmdResult pay = wallet("alice", {"pay", "CNY 12.50", "--to", se("bob").se_id, "--out", note});
  ASSERT_EQ(pay.exit_code, 0) << pay.out;
  EXPECT_EQ(se_balance("alice"), 8750);
  CmdResult rec = wallet("bob", {"receive", note});
  ASSERT_EQ(rec.exit_code, 0) << rec.out;
  EXPECT_NE(rec.out.find("Received CNY 12.50 from " + se("alice").se_id), std::string::npos) << rec.out;
  EXPECT_NE(rec.out.find("The SE now holds CNY 12.50."), std::string::npos) << rec.out;
  EXPECT_EQ(se_balance("bob"), 1250);
  // The same note again: already received, nothing to do, nothing changed.
  CmdResult again = wallet("bob", {"receive", note});
  EXPECT_EQ(again.exit_code, 0) << again.out;
  EXPECT_NE(again.out.find("Already received"), std::string::npos) << again.out;
  EXPECT_NE(again.out.find("nothing changed"), std::string::npos) << again.out;
  EXPECT_EQ(se_balance("bob"), 1250);
  CmdResult dep = wallet("bob", {"deposit", "CNY 2.50", "--bank", net_->bank_id, "--account", se("bob").account});
  ASSERT_EQ(dep.exit_code, 0) << dep.out;
  EXPECT_EQ(se_balance("bob"), 1000);
  CmdResult bal = wallet("bob", {"balance", "--json"});
  ASSERT_EQ(bal.exit_code, 0);
  EXPECT_NE(bal.out.find("\"CNY\": 1000"), std::string::npos) << bal.out;
  CmdResult hist = wallet("alice", {"history", "--json"});
  ASSERT_EQ(hist.exit_code, 0);
  EXPECT_NE(hist.out.find("payment.note"), std::string::npos) << hist.out;
  Json a = audit();
  ASSERT_TRUE(a["ok"].get<bool>()) << a.dump(2);
  EXPECT_EQ(a["system"]["CNY"]["ecash_outstanding_minor"], 9750);
  EXPECT_EQ(a["banks"][0]["currencies"]["CNY"]["customer_minor"], 300000 - 10000 + 250);
  std::string cmd = std::string(ZF_BINARY) + " audit '" + net_->dir + "' > /dev/null";
  EXPECT_EQ(std::system(cmd.c_str()), 0);
}

// A payee the CA does not know, or whose certificate is revoked, is refused
// before the SE debits anything; a user id with one SE pays that SE.
TEST_F(CliTest, PayeesAreResolvedAtTheCaBeforeAnythingIsDebited) {
  ASSERT_EQ(wallet("alice", {"topup", "CNY 100.00", "--bank", net_->bank_id, "--account", se("alice").account}).exit_code, 0);
  expect_refused("alice", {"pay", "CNY 1.00", "--to", "se-dave", "--out", (dir_ / "x.jws").string()}, "not_found");
  expect_refused("alice", {"pay", "CNY 1.00", "--to", "dave"}, "not_found");
  expect_refused("alice", {"pay", "CNY 1.00", "--to", "bob/../carol"}, "bad_field");
  EXPECT_FALSE(std::filesystem::exists(dir_ / "x.jws"));

  // By user id: the note is addressed to bob's SE, and the command says so.
  std::string note = (dir_ / "to-bob.jws").string();
  CmdResult pay = wallet("alice", {"pay", "CNY 2.50", "--to", "bob", "--out", note});
  ASSERT_EQ(pay.exit_code, 0) << pay.out;
  EXPECT_NE(pay.out.find("Paid CNY 2.50 to " + se("bob").se_id), std::string::npos) << pay.out;
  EXPECT_NE(pay.out.find(note), std::string::npos) << pay.out;
  ASSERT_EQ(wallet("bob", {"receive", note}).exit_code, 0);
  EXPECT_EQ(se_balance("bob"), 250);

  // Carol's SE certificate revoked at the CA: nobody can pay her SE any more.
  std::string token = slurp(std::filesystem::path(net_->ca_dir) / "admin.token");
  token = token.substr(0, token.find('\n'));
  auto ca = ca::CaClient::connect(net_->ca_url, *Certificate::from_pem(slurp(net_->root_file)), token);
  ASSERT_TRUE(ca) << ca.error().message();
  auto found = ca->find_secure_elements("carol");
  ASSERT_TRUE(found) << found.error().message();
  ASSERT_TRUE(ca->revoke((*found)[0]["serial"].get<std::string>(), "device lost"));
  expect_refused("alice", {"pay", "CNY 1.00", "--to", se("carol").se_id}, "cert_revoked");
  expect_refused("alice", {"pay", "CNY 1.00", "--to", "carol"}, "cert_revoked");
  EXPECT_EQ(se_balance("alice"), 10000 - 250);
}

// With the bank unreachable, a deposit says what the SE already did and what
// to do next; `retry` then finishes it once.
TEST_F(CliTest, AnUnansweredDepositSaysTheSeDebitedAndHowToFinishIt) {
  ASSERT_EQ(wallet("alice", {"topup", "CNY 10.00", "--bank", net_->bank_id, "--account", se("alice").account}).exit_code, 0);
  net_->kill9(net_->bank_id);
  CmdResult dep = wallet("alice", {"deposit", "CNY 4.00", "--bank", net_->bank_id, "--account", se("alice").account});
  EXPECT_NE(dep.exit_code, 0);
  EXPECT_NE(dep.out.find("the SE has debited CNY 4.00"), std::string::npos) << dep.out;
  EXPECT_NE(dep.out.find("run `zf wallet retry`"), std::string::npos) << dep.out;
  EXPECT_EQ(se_balance("alice"), 600);
  CmdResult top = wallet("alice", {"topup", "CNY 1.00", "--bank", net_->bank_id, "--account", se("alice").account});
  EXPECT_NE(top.exit_code, 0);
  EXPECT_NE(top.out.find("the bank may or may not have moved the money yet"), std::string::npos) << top.out;
  ASSERT_TRUE(net_->restart(net_->bank_id));
  CmdResult retry = wallet("alice", {"retry"});
  ASSERT_EQ(retry.exit_code, 0) << retry.out;
  EXPECT_NE(retry.out.find("Finished 2 top-ups and deposits, each exactly once"), std::string::npos) << retry.out;
  EXPECT_NE(retry.out.find("E-cash: CNY 7.00"), std::string::npos) << retry.out;
  EXPECT_EQ(se_balance("alice"), 700);
  // Nothing left unanswered: retry says so and needs no PIN (none is given here).
  CmdResult idle = wallet("alice", {"retry"}, "");
  EXPECT_EQ(idle.exit_code, 0) << idle.out;
  EXPECT_NE(idle.out.find("Nothing to retry"), std::string::npos) << idle.out;
  Json a = audit();
  EXPECT_TRUE(a["ok"].get<bool>()) << a.dump(2);
  EXPECT_EQ(a["banks"][0]["currencies"]["CNY"]["customer_minor"], 300000 - 1000 + 400 - 100);
}

// A terminal killed after the SE debited, before the note reached the disk,
// leaves the note only inside the SE: `notes` finds it again, `note` writes it
// out, and the payee can still receive it.
TEST_F(CliTest, ANoteLostBeforeItReachedTheDiskIsWrittenOutAgain) {
  ASSERT_EQ(wallet("alice", {"topup", "CNY 50.00", "--bank", net_->bank_id, "--account", se("alice").account}).exit_code, 0);
  std::string first = (dir_ / "first.jws").string();
  ASSERT_EQ(wallet("alice", {"pay", "CNY 3.00", "--to", "bob", "--out", first}).exit_code, 0);
  ASSERT_EQ(wallet("bob", {"receive", first}).exit_code, 0);
  std::string lost = (dir_ / "lost.jws").string();
  ASSERT_EQ(wallet("alice", {"pay", "CNY 7.00", "--to", "carol", "--out", lost}).exit_code, 0);
  std::string lost_jws = slurp(lost);
  lost_jws = lost_jws.substr(0, lost_jws.find('\n'));
  auto lost_doc = jws_parse(lost_jws);
  ASSERT_TRUE(lost_doc);
  const std::string lost_id = Document::parse(to_string(lost_doc->payload))->id();
  // What the crash leaves: the SE has debited, no outbox entry, no file.
  std::filesystem::remove(lost);
  for (const auto& f : std::filesystem::directory_iterator(std::filesystem::path(se("alice").wallet) / "outbox"))
    if (slurp(f.path()).find(lost_id) != std::string::npos) std::filesystem::remove(f.path());
  CmdResult gone = wallet("alice", {"note", lost_id});
  EXPECT_NE(gone.exit_code, 0);
  EXPECT_NE(gone.out.find("zf wallet notes"), std::string::npos) << gone.out;

  CmdResult table = wallet("alice", {"notes"});
  ASSERT_EQ(table.exit_code, 0) << table.out;
  EXPECT_NE(table.out.find("CNY 3.00"), std::string::npos) << table.out;
  EXPECT_NE(table.out.find("received by " + se("bob").se_id), std::string::npos) << table.out;
  EXPECT_NE(table.out.find("CNY 7.00"), std::string::npos) << table.out;
  EXPECT_NE(table.out.find("not received yet"), std::string::npos) << table.out;
  CmdResult json = wallet("alice", {"notes", "--json"});
  ASSERT_EQ(json.exit_code, 0) << json.out;
  auto list = parse_json_strict(json.out);
  ASSERT_TRUE(list && list->is_array() && list->size() == 2) << json.out;
  EXPECT_EQ((*list)[0]["status"], "received");
  EXPECT_EQ((*list)[0]["processor"], se("bob").se_id);
  EXPECT_EQ((*list)[1]["doc_id"], lost_id);
  EXPECT_EQ((*list)[1]["status"], "not_received");
  EXPECT_EQ((*list)[1]["payee"], se("carol").se_id);
  EXPECT_EQ((*list)[1]["amount_minor"], 700);

  CmdResult out = wallet("alice", {"note", lost_id, "--out", lost});
  ASSERT_EQ(out.exit_code, 0) << out.out;
  std::string again = slurp(lost);
  EXPECT_EQ(again.substr(0, again.find('\n')), lost_jws) << "not the note the SE signed";
  ASSERT_EQ(wallet("carol", {"receive", lost}).exit_code, 0);
  EXPECT_EQ(se_balance("carol"), 700);
  auto after = parse_json_strict(wallet("alice", {"notes", "--json"}).out);
  ASSERT_TRUE(after && after->size() == 2);
  EXPECT_EQ((*after)[1]["status"], "received");
  Json a = audit();
  EXPECT_TRUE(a["ok"].get<bool>()) << a.dump(2);
  EXPECT_EQ(a["system"]["CNY"]["ecash_outstanding_minor"], 5000);
}

// Issue 9: a note that nobody receives before its expiry comes back to the
// payer with `zf wallet reclaim`, once; the payee is then too late, and a
// note that was received cannot be taken back.
TEST_F(CliTest, AnUnreceivedNoteExpiresAndReclaimBringsItsValueBackOnce) {
  ASSERT_EQ(wallet("alice", {"topup", "CNY 20.00", "--bank", net_->bank_id, "--account", se("alice").account}).exit_code, 0);
  std::string late = (dir_ / "late.jws").string();
  CmdResult pay = wallet("alice", {"pay", "CNY 4.00", "--to", "bob", "--expires", "3s", "--out", late});
  ASSERT_EQ(pay.exit_code, 0) << pay.out;
  std::string late_jws = slurp(late);
  auto late_doc = Document::parse(to_string(jws_parse(late_jws.substr(0, late_jws.find('\n')))->payload));
  ASSERT_TRUE(late_doc);
  const std::string late_id = late_doc->id();
  EXPECT_NE(pay.out.find(se("bob").se_id + " can receive it until"), std::string::npos) << pay.out;
  EXPECT_NE(pay.out.find("`zf wallet reclaim " + late_id + "`"), std::string::npos) << pay.out;
  std::string on_time = (dir_ / "on-time.jws").string();
  ASSERT_EQ(wallet("alice", {"pay", "CNY 3.00", "--to", "carol", "--expires", "3s", "--out", on_time}).exit_code, 0);
  ASSERT_EQ(wallet("carol", {"receive", on_time}).exit_code, 0);
  auto on_time_doc = Document::parse(to_string(jws_parse(slurp(on_time).substr(0, slurp(on_time).find('\n')))->payload));
  ASSERT_TRUE(on_time_doc);

  expect_refused("alice", {"reclaim", late_id}, "not_expired");
  expect_refused("alice", {"pay", "CNY 1.00", "--to", "bob", "--expires", "soon"}, "expected a duration like 7d");
  std::this_thread::sleep_for(std::chrono::milliseconds(3200));
  expect_refused("bob", {"receive", late}, "expired");
  CmdResult notes = wallet("alice", {"notes"});
  ASSERT_EQ(notes.exit_code, 0) << notes.out;
  EXPECT_NE(notes.out.find("expired unreceived"), std::string::npos) << notes.out;
  EXPECT_NE(notes.out.find("received by " + se("carol").se_id), std::string::npos) << notes.out;
  auto listed = parse_json_strict(wallet("alice", {"notes", "--json"}).out);
  ASSERT_TRUE(listed && listed->size() == 2) << wallet("alice", {"notes", "--json"}).out;
  EXPECT_EQ((*listed)[0]["status"], "reclaimable");
  EXPECT_EQ((*listed)[0]["open"], true);
  EXPECT_EQ((*listed)[1]["status"], "received");
  EXPECT_EQ((*listed)[1]["open"], false) << "a received note is closed in the SE";

  CmdResult back = wallet("alice", {"reclaim"});
  ASSERT_EQ(back.exit_code, 0) << back.out;
  EXPECT_NE(back.out.find("Reclaimed CNY 4.00 from note " + late_id), std::string::npos) << back.out;
  EXPECT_NE(back.out.find("The SE now holds CNY 17.00."), std::string::npos) << back.out;
  EXPECT_EQ(se_balance("alice"), 1700);
  Json after = books();
  // Again: nothing to do, and nothing changes.
  CmdResult again = wallet("alice", {"reclaim", late_id});
  EXPECT_EQ(again.exit_code, 0) << again.out;
  EXPECT_NE(again.out.find("was reclaimed before (CNY 4.00 came back"), std::string::npos) << again.out;
  CmdResult none = wallet("alice", {"reclaim"});
  EXPECT_NE(none.out.find("nothing to reclaim"), std::string::npos) << none.out;
  CmdResult received = wallet("alice", {"reclaim", on_time_doc->id(), "--json"});
  ASSERT_EQ(received.exit_code, 0) << received.out;
  auto r = parse_json_strict(received.out);
  ASSERT_TRUE(r) << received.out;
  EXPECT_EQ((*r)["outcome"], "received");
  EXPECT_EQ((*r)["payee"], se("carol").se_id);
  expect_refused("bob", {"receive", late}, "expired");
  EXPECT_EQ(books(), after);
  EXPECT_EQ(parse_json_strict(wallet("alice", {"notes", "--json"}).out)->at(0)["status"], "reclaimed");
  Json a = audit();
  EXPECT_TRUE(a["ok"].get<bool>()) << a.dump(2);
  EXPECT_EQ(a["system"]["CNY"]["notes_in_flight_minor"], 0) << a.dump(2);
}

// A mistyped wallet path names the path to check and does not suggest making
// a new wallet (which would be a new, empty SE identity).
TEST_F(CliTest, AMistypedWalletPathSaysToCheckThePath) {
  std::string missing = (dir_ / "wallets" / "alcie").string();
  std::string cmd = "ZF_PIN=123456 " + std::string(ZF_BINARY) + " wallet balance --wallet '" + missing + "' > '" +
                    (dir_ / "out.txt").string() + "' 2>&1";
  int status = std::system(cmd.c_str());
  std::string out = slurp(dir_ / "out.txt");
  EXPECT_NE(WIFEXITED(status) ? WEXITSTATUS(status) : -1, 0) << out;
  EXPECT_NE(out.find("no wallet in " + missing + ": check the --wallet path"), std::string::npos) << out;
  EXPECT_EQ(out.find("wallet init"), std::string::npos) << out;
}

// An empty ZF_PIN is no PIN at all: the command stops before the SE and no try is spent.
TEST_F(CliTest, AnEmptyPinCostsNoTry) {
  CmdResult pay = wallet("alice", {"pay", "CNY 1.00", "--to", "bob"}, "");
  EXPECT_NE(pay.exit_code, 0) << pay.out;
  EXPECT_NE(pay.out.find("no PIN"), std::string::npos) << pay.out;
  CmdResult bal = wallet("alice", {"balance"});
  EXPECT_NE(bal.out.find("3 PIN tries left"), std::string::npos) << bal.out;
}

// The CA's CRLs here last 4 s. An SE refuses every certificate once its CRL has
// expired, so without the terminal renewing it a network left up for a day
// stops paying. Kept past several CRL periods, it still tops up, pays,
// receives and deposits, and the terminal says when it renewed.
class ShortCrlTest : public CliTest {
 protected:
  std::vector<std::string> users() const override { return {"alice", "bob"}; }
  void customize(cli::NetworkOptions& o) const override { o.crl_validity_s = 4; }
  void wait_a_crl_period() { std::this_thread::sleep_for(std::chrono::milliseconds(4500)); }
};

TEST_F(ShortCrlTest, ANetworkKeptPastSeveralCrlPeriodsStillMovesMoney) {
  wait_a_crl_period();
  CmdResult top = wallet("alice", {"topup", "CNY 20.00", "--bank", net_->bank_id, "--account", se("alice").account});
  ASSERT_EQ(top.exit_code, 0) << top.out;
  EXPECT_NE(top.out.find("renewed the SE's certificate revocation list"), std::string::npos) << top.out;
  wait_a_crl_period();
  std::string note = (dir_ / "note.jws").string();
  CmdResult pay = wallet("alice", {"pay", "CNY 5.00", "--to", "bob", "--out", note});
  ASSERT_EQ(pay.exit_code, 0) << pay.out;
  wait_a_crl_period();
  CmdResult rec = wallet("bob", {"receive", note});
  ASSERT_EQ(rec.exit_code, 0) << rec.out;
  wait_a_crl_period();
  CmdResult dep = wallet("bob", {"deposit", "CNY 2.00", "--bank", net_->bank_id, "--account", se("bob").account});
  ASSERT_EQ(dep.exit_code, 0) << dep.out;
  EXPECT_EQ(se_balance("alice"), 1500);
  EXPECT_EQ(se_balance("bob"), 300);
  Json a = audit();
  EXPECT_TRUE(a["ok"].get<bool>()) << a.dump(2);

  // With the CA stopped and the SE's CRL expired, nothing moves, and the
  // terminal says why and what to do.
  net_->kill9("ca");
  wait_a_crl_period();
  Json before = books();
  CmdResult stuck = wallet("alice", {"pay", "CNY 1.00", "--to", se("bob").se_id});
  EXPECT_NE(stuck.exit_code, 0) << stuck.out;
  EXPECT_NE(stuck.out.find("revocation list has expired"), std::string::npos) << stuck.out;
  EXPECT_NE(stuck.out.find("nothing moved"), std::string::npos) << stuck.out;
  EXPECT_EQ(books()["alice"], before["alice"]);
}

TEST_F(CliTest, BadAmountsAndLimitsAreRefusedByName) {
  ASSERT_EQ(wallet("alice", {"topup", "CNY 1000.00", "--bank", net_->bank_id, "--account", se("alice").account}).exit_code, 0);
  const std::string bob = se("bob").se_id;
  const std::string bank = net_->bank_id;
  const std::string acct = se("alice").account;
  expect_refused("alice", {"pay", "CNY 1500.00", "--to", bob}, "insufficient_ecash");
  expect_refused("alice", {"pay", "CNY 0.00", "--to", bob}, "amount_zero");
  expect_refused("alice", {"pay", "CNY -1.00", "--to", bob}, "amount_negative");
  expect_refused("alice", {"pay", "CNY 99999999999999999.99", "--to", bob}, "amount_overflow");
  expect_refused("alice", {"pay", "XYZ 1.00", "--to", bob}, "bad_currency");
  CmdResult typo = wallet("alice", {"pay", "12.50", "--to", bob});
  EXPECT_NE(typo.exit_code, 0);
  EXPECT_NE(typo.out.find("expected an amount like 'CNY 12.50'"), std::string::npos) << typo.out;
  CmdResult usd = wallet("alice", {"pay", "USD 5.00", "--to", bob});
  EXPECT_NE(usd.exit_code, 0);
  EXPECT_NE(usd.out.find("holds no USD e-cash"), std::string::npos) << usd.out;
  expect_refused("alice", {"pay", "CNY 1.00", "--to", se("alice").se_id}, "misaddressed");
  expect_refused("alice", {"topup", "CNY 500.00", "--bank", bank, "--account", acct}, "insufficient_funds");
  expect_refused("alice", {"topup", "USD 5.00", "--bank", bank, "--account", acct}, "currency_mismatch");
  expect_refused("alice", {"topup", "CNY 5.00", "--bank", bank, "--account", se("bob").account}, "not_owner");
  expect_refused("alice", {"topup", "CNY 5.00", "--bank", bank, "--account", "nobody"}, "account_unknown");
  expect_refused("alice", {"topup", "CNY 4500.00", "--bank", bank, "--account", acct}, "limit_exceeded");
  expect_refused("alice", {"deposit", "CNY 1.00", "--bank", "bank-z", "--account", acct}, "not_found");
  // The SE debits itself before the bank sees the note; the bank's signed refusal
  // returns the value, so the books end as they began.
  expect_refused("alice", {"deposit", "CNY 1.00", "--bank", bank, "--account", "nobody"}, "account_unknown");
  expect_refused("alice", {"deposit", "USD 1.00", "--bank", bank, "--account", acct}, "insufficient_ecash");
  // The bank's signed refusals let the SE drop the refused top-ups: none is left pending.
  auto device = se::Device::open(se("alice").dir);
  ASSERT_TRUE(device);
  EXPECT_EQ((*device)->applet().state_json()["pending_topups"], Json::object());
}

TEST_F(CliTest, OverTheSinglePaymentLimit) {
  // Limits are per SE: 2000.00 per payment, 5000.00 balance (NetworkOptions).
  ASSERT_EQ(wallet("alice", {"topup", "CNY 1000.00", "--bank", net_->bank_id, "--account", se("alice").account}).exit_code, 0);
  expect_refused("alice", {"pay", "CNY 2000.01", "--to", se("bob").se_id}, "limit_exceeded");
}

TEST_F(CliTest, BadNotesAreRefusedByName) {
  ASSERT_EQ(wallet("alice", {"topup", "CNY 50.00", "--bank", net_->bank_id, "--account", se("alice").account}).exit_code, 0);
  std::string to_carol = (dir_ / "to-carol.jws").string();
  ASSERT_EQ(wallet("alice", {"pay", "CNY 5.00", "--to", se("carol").se_id, "--out", to_carol}).exit_code, 0);
  expect_refused("bob", {"receive", to_carol}, "misaddressed");

  std::string to_bob = (dir_ / "to-bob.jws").string();
  ASSERT_EQ(wallet("alice", {"pay", "CNY 5.00", "--to", se("bob").se_id, "--out", to_bob}).exit_code, 0);
  std::string jws = slurp(to_bob);
  std::string tampered = jws;
  std::size_t pos = jws.find('.') + 20;  // inside the payload
  tampered[pos] = tampered[pos] == 'A' ? 'B' : 'A';
  expect_refused("bob", {"receive", write("tampered.jws", tampered)}, "bad_signature");
  expect_refused("bob", {"receive", write("garbage.jws", "not a note")}, "malformed_json");
  expect_refused("bob", {"receive", write("huge.jws", std::string(70 * 1024, 'a'))}, "too_large");

  // A software key with a self-made certificate claiming the secure-element role.
  auto key = *PrivateKey::generate();
  IssueParams p;
  p.common_name = "se-mallory";
  p.roles = {Role::secure_element};
  p.not_before = std::time(nullptr) - 60;
  p.not_after = p.not_before + 86400;
  p.serial = new_serial();
  auto self_made = *make_self_signed_ca(key, p);
  IssueParams leaf = p;
  leaf.serial = new_serial();
  auto leaf_key = *PrivateKey::generate();
  auto cert = *issue_certificate(self_made, key, leaf_key.public_key(), leaf);
  KeySigner signer(leaf_key);
  Json forged{{"type", "payment.note"}, {"v", 1}, {"id", "se-mallory:1"}, {"issuer", "se-mallory"}, {"seq", 1},
              {"iat", std::time(nullptr)}, {"nonce", new_nonce()}, {"amount", 100}, {"currency", "CNY"}, {"payer", "se-mallory"},
              {"payee", se("bob").se_id}};
  expect_refused("bob", {"receive", write("forged.jws", *sign_document(forged, JwsSigner{&signer, {cert}}))},
                 "cert_untrusted");

  // The payer's SE is revoked; once the payee's SE has the new CRL, its notes are refused.
  auto root = *Certificate::from_pem(slurp(net_->root_file));
  std::string admin = slurp(std::filesystem::path(net_->ca_dir) / "admin.token");
  admin.pop_back();
  auto ca = ca::CaClient::connect(net_->ca_url, root, admin);
  auto alice = terminal("alice");
  auto alice_cert = *Certificate::from_pem(*alice->se().certificate_pem());
  ASSERT_TRUE(ca->revoke(alice_cert.serial_hex(), "keyCompromise"));
  ASSERT_EQ(wallet("bob", {"refresh-crl"}).exit_code, 0);
  expect_refused("bob", {"receive", to_bob}, "cert_revoked");
}

// `zf wallet check`: a terminal asks the registry about a note before it takes it.
TEST_F(CliTest, CheckTellsWhetherTheRegistryHoldsANote) {
  ASSERT_EQ(wallet("alice", {"topup", "CNY 50.00", "--bank", net_->bank_id, "--account", se("alice").account}).exit_code, 0);
  std::string note = (dir_ / "to-bob.jws").string();
  ASSERT_EQ(wallet("alice", {"pay", "CNY 5.00", "--to", se("bob").se_id, "--out", note}).exit_code, 0);
  const std::string id = "se-alice:2";  // seq 1 was the top-up request

  // No PIN is needed: a wrong one is never even read.
  CmdResult before = wallet("bob", {"check", note}, "000000");
  ASSERT_EQ(before.exit_code, 0) << before.out;
  Json b = Json::parse(before.out);
  EXPECT_EQ(b["doc_id"], id);
  EXPECT_EQ(b["status"], "unclaimed");
  EXPECT_EQ(b["for_me"], true);
  EXPECT_EQ(b["amount_minor"], 500);
  EXPECT_FALSE(b.contains("record"));
  Json other = Json::parse(wallet("carol", {"check", note}).out);
  EXPECT_EQ(other["status"], "unclaimed");
  EXPECT_EQ(other["for_me"], false) << "the note is addressed to Bob's SE, not Carol's";
  EXPECT_EQ(se_balance("bob"), 0) << "checking claims nothing and credits nothing";

  ASSERT_EQ(wallet("bob", {"receive", note}).exit_code, 0);
  CmdResult after = wallet("carol", {"check", note});
  ASSERT_EQ(after.exit_code, 0) << after.out;
  Json a = Json::parse(after.out);
  EXPECT_EQ(a["status"], "claimed");
  EXPECT_EQ(a["processor"], se("bob").se_id);
  EXPECT_EQ(a["same_document"], true);
  EXPECT_GT(a["claimed_at"].get<std::int64_t>(), 0);
  // The record is the registry's signed statement: anyone with the root can verify it.
  auto root = *Certificate::from_pem(slurp(net_->root_file));
  auto record = registry::open_record(a["record"].get<std::string>(), CertVerifier(root), "registry");
  ASSERT_TRUE(record) << record.error().message();
  EXPECT_EQ(record->doc_id, id);
  EXPECT_EQ(record->processor, se("bob").se_id);
  EXPECT_EQ(record->status, registry::RecordStatus::claimed);

  std::string jws = slurp(note);
  jws.pop_back();
  std::string tampered = jws;
  std::size_t pos = jws.find('.') + 20;  // inside the payload
  tampered[pos] = tampered[pos] == 'A' ? 'B' : 'A';
  CmdResult bad = wallet("bob", {"check", write("tampered.jws", tampered)});
  EXPECT_NE(bad.exit_code, 0);
  EXPECT_NE(bad.out.find("bad_signature"), std::string::npos) << bad.out;

  // A terminal without a registry says so instead of guessing.
  std::string bare = (dir_ / "bare-wallet").string();
  std::string init = std::string(ZF_BINARY) + " wallet init --wallet '" + bare + "' --se-port " +
                     std::to_string(se("bob").port) + " --ca-url " + net_->ca_url + " --root '" + net_->root_file +
                     "' > /dev/null 2>&1";
  ASSERT_EQ(std::system(init.c_str()), 0);
  std::string cmd = std::string(ZF_BINARY) + " wallet check '" + note + "' --wallet '" + bare + "' > '" +
                    (dir_ / "out.txt").string() + "' 2>&1";
  int status = std::system(cmd.c_str());
  EXPECT_NE(WEXITSTATUS(status), 0);
  std::string out = slurp(dir_ / "out.txt");
  EXPECT_NE(out.find("missing_field"), std::string::npos) << out;
  EXPECT_NE(out.find("no registry"), std::string::npos) << out;

  // The registry is down: the check cannot tell, and says so by name.
  net_->kill9("registry");
  CmdResult down = wallet("bob", {"check", note});
  EXPECT_NE(down.exit_code, 0);
  EXPECT_NE(down.out.find("unavailable"), std::string::npos) << down.out;
}

TEST_F(CliTest, WrongPinsBlockTheSeUntilThePukUnblocksIt) {
  ASSERT_EQ(wallet("alice", {"topup", "CNY 50.00", "--bank", net_->bank_id, "--account", se("alice").account}).exit_code, 0);
  const std::string bob = se("bob").se_id;
  Json before = books();
  CmdResult w1 = wallet("alice", {"pay", "CNY 1.00", "--to", bob}, "000000");
  EXPECT_NE(w1.out.find("pin_wrong"), std::string::npos) << w1.out;
  EXPECT_NE(w1.out.find("63C2"), std::string::npos) << w1.out;
  CmdResult w2 = wallet("alice", {"pay", "CNY 1.00", "--to", bob}, "000000");
  EXPECT_NE(w2.out.find("63C1"), std::string::npos) << w2.out;
  CmdResult w3 = wallet("alice", {"pay", "CNY 1.00", "--to", bob}, "000000");
  EXPECT_NE(w3.out.find("pin_blocked"), std::string::npos) << w3.out;
  CmdResult right = wallet("alice", {"pay", "CNY 1.00", "--to", bob});
  EXPECT_NE(right.exit_code, 0);
  EXPECT_NE(right.out.find("pin_blocked"), std::string::npos) << "blocked even with the right PIN: " << right.out;
  EXPECT_EQ(books(), before);

  auto unblock = [&](const std::string& puk) {
    std::string cmd = "ZF_PUK=" + puk + " ZF_PIN=654321 " + std::string(ZF_BINARY) + " wallet unblock --wallet '" +
                      se("alice").wallet + "' > '" + (dir_ / "unblock.txt").string() + "' 2>&1";
    int status = std::system(cmd.c_str());
    return CmdResult{WIFEXITED(status) ? WEXITSTATUS(status) : -1, slurp(dir_ / "unblock.txt")};
  };
  CmdResult wrong_puk = unblock("11111111");
  EXPECT_NE(wrong_puk.exit_code, 0);
  EXPECT_NE(wrong_puk.out.find("wrong PUK, 9 tries left"), std::string::npos) << wrong_puk.out;
  EXPECT_NE(wrong_puk.out.find("the PIN is unchanged"), std::string::npos) << wrong_puk.out;
  CmdResult ok = unblock("12345678");
  ASSERT_EQ(ok.exit_code, 0) << ok.out;
  EXPECT_NE(ok.out.find("The PIN is set"), std::string::npos) << ok.out;
  CmdResult after = wallet("alice", {"pay", "CNY 1.00", "--to", bob, "--out", (dir_ / "n.jws").string()}, "654321");
  EXPECT_EQ(after.exit_code, 0) << after.out;
  EXPECT_EQ(se_balance("alice"), 4900);
}

// Any process on the machine can reach the SE's port (here: `zf se apdu`, raw
// APDUs on a new link to the real `zf se serve`); without the pairing key it can
// neither use up the PIN's or PUK's tries nor read the log. A terminal with a
// wrong key fails mutual authentication; re-pairing needs the PUK and retires
// the old terminal.
TEST_F(CliTest, OnlyThePairedTerminalMayUseTheSe) {
  const auto& alice = se("alice");
  auto run = [&](const std::string& cmd) {
    int status = std::system((cmd + " > '" + (dir_ / "out.txt").string() + "' 2>&1").c_str());
    return CmdResult{WIFEXITED(status) ? WEXITSTATUS(status) : -1, slurp(dir_ / "out.txt")};
  };
  auto state = [&] {
    auto d = se::Device::open(alice.dir);
    return d ? (*d)->applet().state_json() : Json();
  };
  auto text_of = [](const std::string& hex) {
    auto b = hex_decode(hex);
    return b ? to_string(*b) : std::string();
  };
  Json before = state();
  std::string apdus;
  const std::string select = "00A4040009F07A6875616E667501";
  for (int i = 0; i < 5; ++i) apdus += " 0020008006303030303030";  // VERIFY "000000"
  const std::string reset_data = R"({"puk":"87654321","new_pin":"4321"})";
  char lc[3];
  std::snprintf(lc, sizeof(lc), "%02X", static_cast<unsigned>(reset_data.size()));
  std::string reset = "002C0080" + std::string(lc) + hex_encode(as_bytes(reset_data));
  for (int i = 0; i < 12; ++i) apdus += " " + reset;
  apdus += " 80CA000300 80CA000500 80CA000100";  // log, issued, info
  apdus += " 80CA000600";                         // status (public)
  CmdResult raw = run(std::string(ZF_BINARY) + " se apdu --port " + std::to_string(alice.port) + " " + select + apdus);
  ASSERT_EQ(raw.exit_code, 0) << raw.out;
  std::istringstream lines(raw.out);
  std::vector<std::string> answers;
  for (std::string l; std::getline(lines, l);) answers.push_back(l);
  ASSERT_EQ(answers.size(), 1u + 5 + 12 + 3 + 1) << raw.out;
  EXPECT_EQ(answers.front().substr(answers.front().size() - 4), "9000");
  for (std::size_t i = 1; i + 1 < answers.size(); ++i) {
    EXPECT_EQ(answers[i].substr(answers[i].size() - 4), "6982") << i;
    EXPECT_NE(text_of(answers[i]).find("secure_channel_required"), std::string::npos) << i;
  }
  std::string status = text_of(answers.back());
  EXPECT_NE(status.find(R"("paired":true)"), std::string::npos) << status;
  EXPECT_EQ(state(), before) << "an unpaired link changed the SE";

  // The paired terminal has all its tries and does the whole flow.
  CmdResult bal = wallet("alice", {"balance", "--json"});
  ASSERT_EQ(bal.exit_code, 0) << bal.out;
  EXPECT_NE(bal.out.find(R"("pin_tries_left": 3)"), std::string::npos) << bal.out;
  ASSERT_EQ(wallet("alice", {"topup", "CNY 5.00", "--bank", net_->bank_id, "--account", alice.account}).exit_code, 0);

  // A second terminal with its own (wrong) key: mutual authentication fails, nothing moves.
  std::filesystem::path phone2 = dir_ / "phone2";
  std::filesystem::copy(alice.wallet, phone2, std::filesystem::copy_options::recursive);
  std::ofstream(phone2 / "pairing.key") << b64url_encode(random_bytes(32)) << "\n";
  std::string w2 = std::string(ZF_BINARY) + " wallet";
  CmdResult impostor = run("ZF_PIN=123456 " + w2 + " balance --wallet '" + phone2.string() + "'");
  EXPECT_NE(impostor.exit_code, 0);
  EXPECT_NE(impostor.out.find("auth_failed"), std::string::npos) << impostor.out;

  // Re-pairing it with a wrong PUK is counted and changes nothing else; with the PUK it works.
  before = state();
  std::string pair = w2 + " pair --wallet '" + phone2.string() + "' --se-dir '" + alice.dir + "'";
  CmdResult wrong = run("ZF_PUK=87654321 " + pair);
  EXPECT_NE(wrong.exit_code, 0);
  EXPECT_NE(wrong.out.find("pin_wrong"), std::string::npos) << wrong.out;
  Json after = state();
  EXPECT_EQ(after.at("puk_tries_left"), 9);
  EXPECT_EQ(after.at("pairing_key"), before.at("pairing_key"));
  EXPECT_EQ(wallet("alice", {"balance"}).exit_code, 0);
  CmdResult right = run("ZF_PUK=12345678 " + pair);
  ASSERT_EQ(right.exit_code, 0) << right.out;
  EXPECT_EQ(std::filesystem::status(phone2 / "pairing.key").permissions() & std::filesystem::perms::all,
            std::filesystem::perms::owner_read | std::filesystem::perms::owner_write);
  EXPECT_FALSE(std::filesystem::exists(std::filesystem::path(alice.dir) / "pairing.code"));
  EXPECT_EQ(state().at("puk_tries_left"), 10);
  CmdResult pay = run("ZF_PIN=123456 " + w2 + " pay 'CNY 1.00' --to " + se("bob").se_id + " --out '" +
                      (dir_ / "n.jws").string() + "' --wallet '" + phone2.string() + "'");
  EXPECT_EQ(pay.exit_code, 0) << pay.out;
  EXPECT_EQ(se_balance("alice"), 400);
  CmdResult old = wallet("alice", {"balance"});
  EXPECT_NE(old.exit_code, 0);
  EXPECT_NE(old.out.find("auth_failed"), std::string::npos) << old.out;
  EXPECT_TRUE(audit()["ok"].get<bool>());
}

}  // namespace
}  // namespace zf::test
