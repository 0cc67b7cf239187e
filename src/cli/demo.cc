// `zf demo`: a narrated tour on a fresh local network in a temporary directory:
// top-up, online payment (the note travels as a file), deposit, refusals of
// replayed, tampered and forged notes, a note checked at the registry before it
// is accepted, a payer who restores an old copy of her SE state caught by the
// registry's signed record and alert, revocation, and an audit after each act.
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <map>
#include <filesystem>
#include <thread>
#include <fstream>
#include <future>
#include <sstream>

#include "bank/client.h"
#include "ca/client.h"
#include "cli/commands.h"
#include "cli/network.h"
#include "cli/wallet_output.h"
#include "core/document.h"
#include "core/claims.h"
#include "registry/client.h"
#include "wallet/wallet.h"

namespace zf::cli {
namespace fs = std::filesystem;
namespace {

class Narrator {
 public:
  void step(const std::string& text) { std::printf("\n== %d. %s\n", ++n_, text.c_str()); }
  void say(const std::string& text) { std::printf("   %s\n", text.c_str()); }
  // Records an expectation; the demo fails if any is false.
  bool expect(bool ok, const std::string& what) {
    std::printf("   [%s] %s\n", ok ? "ok" : "FAILED", what.c_str());
    if (!ok) ++failures_;
    return ok;
  }
  int failures() const { return failures_; }

 private:
  int n_ = 0;
  int failures_ = 0;
};

std::string slurp(const fs::path& p) {
  std::ifstream in(p);
  std::stringstream ss;
  ss << in.rdbuf();
  std::string s = ss.str();
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

template <class T>
std::string refusal(const Result<T>& r) {
  return r ? std::string("accepted") : std::string(errc_name(r.error().code));
}

std::string money(std::int64_t minor) {
  auto a = Amount::of("CNY", minor);
  return a ? a->to_string() : std::to_string(minor);
}

// The id of a document we signed ourselves (for the narration).
std::string payload_id(const std::string& jws) {
  auto parsed = jws_parse(jws);
  if (!parsed) return "?";
  auto doc = Document::parse(to_string(parsed->payload));
  return doc ? doc->id() : "?";
}

// Why the bank would not show an account, in words.
std::string query_refusal(const Error& e, const std::string& bank, const std::string& account) {
  return "the bank refused the query: " + out::bank_reason(e.code, bank, account, std::nullopt);
}

// How the terminal names a document's files (wallet/records/<id with ':' as '_'>.jws).
std::string replace_colons(std::string id) {
  for (auto& c : id)
    if (c == ':') c = '_';
  return id;
}

struct Party {
  NetworkSe se;
  std::unique_ptr<wallet::Wallet> wallet;
};

int run_demo(const std::string& keep_dir) {
  std::setvbuf(stdout, nullptr, _IOLBF, 0);
  Narrator n;
  fs::path dir = keep_dir.empty() ? fs::temp_directory_path() / ("zf-demo-" + std::to_string(::getpid())) : fs::path(keep_dir);
  fs::remove_all(dir);
  std::printf("zhuanfu demo in %s\n", dir.c_str());

  n.step("A local network starts: manufacturer, CA, registry, bank-a, and SEs for Alice, Bob and Carol,"
         " each its own process");
  NetworkOptions opts;
  opts.dir = dir.string();
  opts.users = {"alice", "bob", "carol"};
  opts.detach = false;  // the services stop when the demo ends
  auto net = network_up(opts, [&](const std::string& line) { n.say(line); });
  if (!n.expect(net.has_value(), "network up" + (net ? "" : ": " + net.error().message()))) return 1;
  n.say("each SE generated its key inside, proved it with the manufacturer's attestation key,");
  n.say("and was certified by the CA with a one-time enrollment code bank-a obtained for its user");

  auto root = Certificate::from_pem(slurp(net->root_file));
  std::vector<Party> p;
  for (const auto& se : net->ses) {
    auto w = wallet::Wallet::open(se.wallet);
    if (!w || !(*w)->unlock(opts.pin)) return n.expect(false, "terminal for " + se.user), 1;
    p.push_back(Party{se, std::move(*w)});
  }
  Party& alice = p[0];
  Party& bob = p[1];
  Party& carol = p[2];
  auto se_balance = [&](Party& x) -> std::int64_t {
    auto info = x.wallet->balance();
    return info && (*info)["balances"].contains("CNY") ? (*info)["balances"]["CNY"].get<std::int64_t>() : 0;
  };
  // The account's balance, as `zf wallet account` asks for it (a query the SE signs).
  auto account_balance = [&](Party& x) -> Result<std::int64_t> {
    auto st = x.wallet->account_statement(net->bank_id, x.se.account);
    if (!st) return std::unexpected(st.error());
    return (*st)["balance_minor"].get<std::int64_t>();
  };
  // Everyone's SE and account, with what changed since the last look.
  std::map<std::string, std::int64_t> last_seen;
  auto figure = [&](const std::string& key, std::int64_t now) {
    auto was = last_seen.find(key);
    std::string text = money(now);
    if (was != last_seen.end() && was->second != now)
      text += " (" + std::string(now > was->second ? "+" : "-") + money(std::abs(now - was->second)) + ")";
    last_seen[key] = now;
    return text;
  };
  auto show = [&]() {
    for (auto& x : p) {
      auto account = account_balance(x);
      std::string shown = account ? figure(x.se.account, *account)
                                  : "not shown: " + query_refusal(account.error(), net->bank_id, x.se.account);
      n.say(x.se.user + ": SE " + figure(x.se.se_id, se_balance(x)) + ", account " + x.se.account + " " + shown);
    }
  };
  // Runs `zf audit`; expects it to pass unless told it must fail (`expect_ok`).
  auto audit = [&](const std::string& when, bool expect_ok = true) -> Json {
    auto r = network_audit(net->dir);
    if (!r) return n.expect(false, "audit " + when + ": " + r.error().message()), Json::object();
    const Json& c = (*r)["system"]["CNY"];
    const Json& items = (*r)["notes"]["currencies"]["CNY"];
    std::string detail = ": outstanding " + money(c["ecash_outstanding_minor"]) + " = SE balances " +
                         money(c["se_balances_minor"]) + " + notes in flight " + money(c["notes_in_flight_minor"]) +
                         " (registry: " + money(items["in_transit_minor"]) + " unclaimed, " +
                         money(items["claimed_minor"]) + " claimed, not yet received)";
    n.expect((*r)["ok"].get<bool>() == expect_ok, "audit " + when + (expect_ok ? " passes" : " fails") + detail);
    return *r;
  };
  show();

  n.step("Alice moves CNY 200.00 from her bank account into her SE");
  n.say("her SE checks her PIN and its limits and signs the request; bank-a takes CNY 200.00 out of");
  n.say(alice.se.account + " and answers with a signed receipt; on that receipt her SE adds CNY 200.00, once");
  auto amount = *Amount::parse("CNY 200.00");
  auto topped = alice.wallet->topup(amount, net->bank_id, alice.se.account);
  n.expect(topped.has_value(), "top-up " + (topped ? "done: her SE holds " + money((*topped)["balance_minor"])
                                                    : topped.error().message()));
  show();
  audit("after the top-up");

  n.step("Alice pays Bob CNY 12.50 online; the signed note travels as a file");
  auto note = alice.wallet->pay(*Amount::parse("CNY 12.50"), bob.se.se_id);
  if (!n.expect(note.has_value(), "Alice's SE took CNY 12.50 off her balance as it signed the payment note"))
    return 1;
  fs::path note_file = dir / "note-alice-to-bob.jws";
  std::ofstream(note_file) << *note << "\n";
  n.say("note file " + note_file.string() + " (" + std::to_string(note->size()) + " bytes, payer certificate in x5c)");
  auto got = bob.wallet->receive(slurp(note_file));
  n.expect(got.has_value(), "Bob's SE checked the note (a certified SE's, addressed to him, never seen) and added " +
                                (got ? money((*got)["credited_minor"]) : got.error().message()));
  show();
  audit("after the payment");

  n.step("Bob's SE refuses bad notes and adds nothing for them");
  n.expect(refusal(bob.wallet->receive(*note)) == "replayed", "the same note again: " + refusal(bob.wallet->receive(*note)));
  std::string tampered = *note;
  tampered[tampered.find('.') + 12] ^= 0x01;
  n.expect(refusal(bob.wallet->receive(tampered)) == "bad_signature" || refusal(bob.wallet->receive(tampered)) == "bad_base64url",
           "a note with one byte changed: " + refusal(bob.wallet->receive(tampered)));
  auto carol_note = alice.wallet->pay(*Amount::parse("CNY 1.00"), "se-carol");
  n.expect(carol_note.has_value(), "Alice signs a CNY 1.00 note to Carol: her SE takes CNY 1.00 off now, and the "
                                   "note is in flight until Carol receives it");
  n.expect(refusal(bob.wallet->receive(*carol_note)) == "misaddressed",
           "Bob tries to receive that note to Carol: " + refusal(bob.wallet->receive(*carol_note)));
  // A software key with a self-made certificate tries to mint e-cash.
  auto fake_key = PrivateKey::generate();
  IssueParams fp;
  fp.common_name = "se-mallory";
  fp.roles = {Role::secure_element};
  fp.not_before = std::time(nullptr) - 60;
  fp.not_after = fp.not_before + 86400;
  fp.serial = new_serial();
  auto fake_ca_key = PrivateKey::generate();
  IssueParams cp = fp;
  cp.common_name = "Mallory CA";
  cp.roles.clear();
  cp.serial = new_serial();
  auto fake_root = make_self_signed_ca(*fake_ca_key, cp);
  auto fake_cert = issue_certificate(*fake_root, *fake_ca_key, fake_key->public_key(), fp);
  KeySigner fake_signer(*fake_key);
  Json forged{{"type", "payment.note"}, {"v", 1}, {"id", "se-mallory:1"}, {"issuer", "se-mallory"}, {"seq", 1},
              {"iat", std::time(nullptr)}, {"nonce", new_nonce()}, {"amount", 100000}, {"currency", "CNY"}, {"payer", "se-mallory"},
              {"payee", bob.se.se_id}};
  auto forged_jws = sign_document(forged, JwsSigner{&fake_signer, {*fake_cert}});
  n.expect(refusal(bob.wallet->receive(*forged_jws)) == "cert_untrusted",
           "a note from a software key with a self-made certificate: " + refusal(bob.wallet->receive(*forged_jws)));
  show();
  audit("after the refusals (Alice's note to se-carol is still in flight)");

  n.step("Bob deposits CNY 10.00 into his account");
  auto dep = bob.wallet->deposit(*Amount::parse("CNY 10.00"), net->bank_id, bob.se.account);
  n.expect(dep.has_value(), "deposit " + (dep ? "done: his SE took CNY 10.00 off as it signed the deposit note, "
                                                "and bank-a added it to " + bob.se.account + " (signed receipt)"
                                              : dep.error().message()));
  show();
  audit("after the deposit");

  n.step("Alice pays Bob CNY 3.00, but the note never reaches him; when it expires her SE takes the value back");
  std::int64_t alice_was = se_balance(alice);
  auto lost = alice.wallet->pay(*Amount::parse("CNY 3.00"), bob.se.se_id, 2);
  if (!n.expect(lost.has_value(), "Alice's SE took CNY 3.00 off and signed a note Bob may receive for 2 seconds "
                                  "(notes last 30 days unless the payer says otherwise)"))
    return 1;
  const std::string lost_id = payload_id(*lost);
  auto early = alice.wallet->reclaim(lost_id);
  n.expect(!early && early.error().code == Errc::not_expired,
           "before the expiry Alice cannot take it back, Bob may still receive it: " + refusal(early));
  std::this_thread::sleep_for(std::chrono::milliseconds(2100));
  auto too_late = bob.wallet->receive(*lost);
  n.expect(!too_late && too_late.error().code == Errc::expired,
           "the file turns up after the expiry; Bob's SE refuses it and adds nothing: " + refusal(too_late));
  auto back = alice.wallet->reclaim(lost_id);
  n.expect(back && (*back)["outcome"] == "reclaimed" && se_balance(alice) == alice_was,
           back ? "the registry recorded Alice's reclaim (nobody had claimed the note), and on that record her SE "
                  "added the CNY 3.00 back, once"
                : "reclaim: " + back.error().message());
  auto twice = alice.wallet->reclaim(lost_id);
  n.expect(!twice && twice.error().code == Errc::replayed, "reclaiming it again changes nothing: " + refusal(twice));
  show();
  audit("after the reclaim");

  n.step("Alice pays Bob CNY 5.00 face to face, with the CA, the registry and bank-a switched off");
  for (const std::string& name : {std::string("ca"), std::string("registry"), net->bank_id}) net->kill9(name);
  n.say("the two SEs find each other in the 'nearby' directory that stands for radio range, check each other's");
  n.say("certificates against the root, agree session keys, and both terminals show the same six-digit code");
  std::int64_t alice_had = se_balance(alice), bob_had = se_balance(bob);
  auto bob_waits = std::async(std::launch::async, [&] { return bob.wallet->receive_nearby(30); });
  fs::path announced = fs::path(bob.se.dir).parent_path() / "nearby" / (bob.se.se_id + ".json");
  for (int i = 0; i < 100 && !fs::exists(announced); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  std::string alice_code;
  auto f2f = alice.wallet->pay_nearby(*Amount::parse("CNY 5.00"), bob.se.se_id, [&](const Json& agreed) {
    alice_code = agreed.value("code", std::string());
    return true;
  });
  auto bob_got = bob_waits.get();
  n.expect(f2f && (*f2f)["outcome"] == "delivered",
           f2f ? "Alice's terminal showed code " + alice_code + "; her SE took CNY 5.00 off and Bob's SE confirmed it "
                 "with its signature"
               : "face-to-face payment: " + f2f.error().message());
  n.expect(bob_got && (*bob_got).value("received", false) && (*bob_got).value("code", std::string()) == alice_code,
           bob_got ? "Bob's terminal showed the same code " + (*bob_got).value("code", std::string()) +
                         " and his SE added the CNY 5.00"
                   : "receive face to face: " + bob_got.error().message());
  n.expect(se_balance(alice) == alice_had - 500 && se_balance(bob) == bob_had + 500,
           "no server took part: the value moved once, from one SE to the other");
  auto bob_spends = bob.wallet->se().payment_note(Json{{"amount", bob_had + 500},
                                                       {"currency", "CNY"},
                                                       {"payee", alice.se.se_id},
                                                       {"payee_cert", alice.wallet->se().certificate_pem().value_or("")}});
  n.expect(!bob_spends && bob_spends.error().code == Errc::unreconciled,
           "until Bob's terminal is online, his SE keeps the CNY 5.00 as unsettled: " + refusal(bob_spends));
  for (const std::string& name : {std::string("ca"), std::string("registry"), net->bank_id})
    if (auto s = net->restart(name); !s) return n.expect(false, "restart " + name + ": " + s.error().message()), 1;
  auto settled = bob.wallet->reconcile();
  n.expect(settled && (*settled)["settled"].size() == 1,
           settled ? "back online, Bob's terminal claimed the payment at the registry; on its record his SE settled "
                     "it, and it can be spent like any e-cash"
                   : "reconcile: " + settled.error().message());
  show();
  audit("after the face-to-face payment");

  n.step("Alice pays Bob CNY 4.00 under escrow: the value waits until she agrees, and a second one Bob refunds");
  std::int64_t alice_pre = se_balance(alice), bob_pre = se_balance(bob);
  auto held = alice.wallet->escrow_pay(*Amount::parse("CNY 4.00"), bob.se.se_id);
  if (!n.expect(held.has_value(), held ? "Alice's SE took CNY 4.00 off and sealed the amount in an escrow note (code " +
                                             (*held)["code"].get<std::string>() + "); only her SE holds Bob's key"
                                       : "escrow: " + held.error().message()))
    return 1;
  const std::string held_id = (*held)["id"], held_note = (*held)["note"];
  audit("with CNY 4.00 in escrow");
  auto key = alice.wallet->escrow_release(held_id);
  auto taken = key ? bob.wallet->escrow_accept(held_note, (*key)["key"]) : Result<Json>(std::unexpected(key.error()));
  n.expect(taken && (*taken)["credited_minor"] == 400,
           taken ? "Alice agreed and released the key; Bob's SE opened the note, claimed it at the registry and "
                   "added CNY 4.00"
                 : "accept: " + taken.error().message());
  auto closed = alice.wallet->escrow_close(held_id);
  n.expect(closed && (*closed)["outcome"] == "paid", "Alice's SE closed the note on the registry's record of Bob's claim");
  auto second = alice.wallet->escrow_pay(*Amount::parse("CNY 2.00"), bob.se.se_id);
  auto refund = second ? bob.wallet->escrow_refund((*second)["note"]) : Result<Json>(std::unexpected(second.error()));
  auto late_key = second ? alice.wallet->escrow_release((*second)["id"]) : Result<Json>(std::unexpected(second.error()));
  auto refused_accept = late_key ? bob.wallet->escrow_accept((*second)["note"], (*late_key)["key"])
                       : Result<Json>(std::unexpected(late_key.error()));
  n.expect(refund && !refused_accept,
           "Bob refunded the second note; his SE will not accept it even with the key: " + refusal(refused_accept));
  auto back2 = refund ? alice.wallet->escrow_close((*second)["id"], (*refund)["refund"])
                      : Result<Json>(std::unexpected(refund.error()));
  n.expect(back2 && (*back2)["outcome"] == "refunded" && se_balance(alice) == alice_pre - 400 &&
               se_balance(bob) == bob_pre + 400,
           "on Bob's refund Alice's SE took the CNY 2.00 back, once");
  show();
  audit("after the escrow payments");

  n.step("Alice moves CNY 20.00 from her account to Bob's, then has CNY 30.00 held for him until she confirms");
  const Amount twenty = *Amount::parse("CNY 20.00"), thirty = *Amount::parse("CNY 30.00"), six = *Amount::parse("CNY 6.00");
  // Where Bob's feed of his account stands now: what follows is news to him.
  auto feed_before = bob.wallet->account_events(net->bank_id, bob.se.account, 0);
  const std::int64_t bob_feed = feed_before ? feed_before->value("next", std::int64_t{0}) : 0;
  auto moved = alice.wallet->transfer(twenty, net->bank_id, alice.se.account, bob.se.account);
  n.expect(moved && (*moved)["status"] == "moved",
           moved ? "her SE signed the order with her PIN; bank-a claimed it at the registry and moved the money in one "
                   "journal entry (receipt " + (*moved)["receipt_id"].get<std::string>() + ")"
                 : "transfer: " + moved.error().message());
  // A hold: Alice's SE signs the request, Bob's SE adds its signature over the same bytes, either sends it.
  auto hold_for = [&](const Amount& amount) -> Result<Json> {
    auto req = alice.wallet->hold_request(amount, net->bank_id, alice.se.account, bob.se.account,
                                          static_cast<std::int64_t>(std::time(nullptr)) + 3600);
    if (!req) return req;
    auto both = bob.wallet->hold_cosign((*req)["request"]);
    if (!both) return both;
    return bob.wallet->hold_submit((*both)["request"]);
  };
  auto placed = hold_for(thirty);
  if (!n.expect(placed && (*placed)["status"] == "held",
                placed ? "Alice's SE signed the hold request, Bob's SE checked it and signed the same document, and "
                         "bank-a froze CNY 30.00 of " + alice.se.account + " in its hold account until she confirms, "
                         "Bob gives it back, or an hour passes"
                       : "hold: " + placed.error().message()))
    return 1;
  const std::string hold_id = (*placed)["hold_id"];
  show();
  audit("with CNY 30.00 held (the audit checks the hold account against the open holds)");
  auto paid = alice.wallet->hold_end(hold_id, true);
  n.expect(paid && (*paid)["status"] == "confirmed", paid ? "Alice confirmed: bank-a paid the CNY 30.00 to " +
                                                                bob.se.account
                                                          : "confirm: " + paid.error().message());
  auto late_release = bob.wallet->hold_end(hold_id, false);
  n.expect(!late_release && late_release.error().code == Errc::hold_resolved,
           "a hold ends once: Bob's release after her confirm moves nothing: " + refusal(late_release));
  auto second_hold = hold_for(six);
  auto given_back = second_hold ? bob.wallet->hold_end((*second_hold)["hold_id"], false)
                                : Result<Json>(std::unexpected(second_hold.error()));
  n.expect(given_back && (*given_back)["status"] == "released",
           given_back ? "a second hold of CNY 6.00: Bob released it, and bank-a gave it back to " + alice.se.account
                      : "second hold: " + given_back.error().message());
  // Nobody told Bob: bank-a's feed of his account did (zf wallet events [--follow]).
  auto told = bob.wallet->account_events(net->bank_id, bob.se.account, bob_feed);
  if (n.expect(told && (*told)["events"].size() == 5,
               told ? "Bob's feed of " + bob.se.account + " shows the transfer, each hold placed for him and how it "
                      "ended, each with bank-a's signed receipt, checked by his terminal:"
                    : "events: " + told.error().message()))
    for (const auto& e : (*told)["events"]) {
      std::string line = out::feed_event_text((*told)["currency"], e);
      line.pop_back();  // the newline
      n.say("  " + line);
    }
  show();
  audit("after the transfer and the holds");

  n.step("Alice and Bob pay CNY 15.00 to Carol from their joint account, which needs both their signatures");
  const std::string joint = joint_account_id(alice.se.user, bob.se.user);
  auto asked = alice.wallet->joint_request(*Amount::parse("CNY 15.00"), net->bank_id, joint, "transfer",
                                           carol.se.account);
  if (!n.expect(asked.has_value(), asked ? "Alice's SE signed the spend from " + joint + " to " + carol.se.account
                                         : "joint request: " + asked.error().message()))
    return 1;
  auto alone = alice.wallet->joint_submit((*asked)["spend"]);
  n.expect(!alone && alone.error().code == Errc::threshold_not_met,
           "sent with her signature alone, bank-a refuses it and moves nothing: " + refusal(alone));
  auto both = bob.wallet->joint_sign((*asked)["spend"]);
  auto spent = both ? bob.wallet->joint_submit((*both)["spend"]) : Result<Json>(std::unexpected(both.error()));
  n.expect(spent && (*spent)["status"] == "moved",
           spent ? "Bob's SE showed him the spend and signed the same document; with both signatures bank-a moved "
                   "CNY 15.00 to " + carol.se.account
                 : "joint spend: " + spent.error().message());
  show();
  audit("after the joint spend");

  n.step("Bob's terminal asks the registry about a note before accepting it (zf wallet check)");
  // Alice quietly keeps a copy of her SE's sealed state file as it is now.
  fs::path alice_state = fs::path(alice.se.dir) / "state.seal";
  fs::path alice_backup = dir / "alice-state.backup";
  std::error_code copy_ec;
  fs::copy_file(alice_state, alice_backup, fs::copy_options::overwrite_existing, copy_ec);
  n.expect(!copy_ec, "Alice copied her SE's sealed state file aside (" + alice_backup.string() + ")");
  std::int64_t alice_before = se_balance(alice);
  auto to_bob = alice.wallet->pay(*Amount::parse("CNY 20.00"), bob.se.se_id);
  if (!n.expect(to_bob.has_value(), "Alice paid Bob CNY 20.00: her SE took it off at once")) return 1;
  std::string to_bob_id = payload_id(*to_bob);
  auto before = bob.wallet->check(*to_bob);
  n.expect(before && (*before)["status"] == "unclaimed" && (*before)["for_me"] == true,
           "note " + to_bob_id + " before Bob takes it: " +
               (before ? (*before)["status"].get<std::string>() + ", for Bob's SE" : before.error().message()));
  auto got_20 = bob.wallet->receive(*to_bob);
  n.expect(got_20.has_value(), "Bob's SE claimed it at the registry, won, and added " +
                                   (got_20 ? money((*got_20)["credited_minor"]) : got_20.error().message()));
  auto after = bob.wallet->check(*to_bob);
  bool kept = fs::exists(fs::path(bob.se.wallet) / "records" / (replace_colons(to_bob_id) + ".jws"));
  n.expect(after && (*after)["status"] == "claimed" && (*after)["processor"] == bob.se.se_id &&
               (*after)["same_document"] == true && kept,
           "the same note now: " + (after ? (*after)["status"].get<std::string>() + " by " +
                                                (*after)["processor"].get<std::string>() +
                                                "; Bob's terminal keeps the signed record"
                                          : after.error().message()));
  show();
  audit("after the checked payment");

  n.step("Alice restores the old copy of her SE state and pays Carol with the same money");
  net->kill9(alice.se.se_id);
  fs::copy_file(alice_backup, alice_state, fs::copy_options::overwrite_existing, copy_ec);
  auto restarted = net->restart(alice.se.se_id);
  auto reopened = wallet::Wallet::open(alice.se.wallet);
  if (!n.expect(!copy_ec && restarted && reopened && (*reopened)->unlock(opts.pin),
                "Alice's SE was stopped, its old state put back and started again"))
    return 1;
  alice.wallet = std::move(*reopened);
  n.expect(se_balance(alice) == alice_before,
           "her SE holds " + money(se_balance(alice)) + " again, as before paying Bob");
  auto to_carol = alice.wallet->pay(*Amount::parse("CNY 20.00"), carol.se.se_id);
  if (!n.expect(to_carol.has_value(), "her SE signed a CNY 20.00 note to Carol and took the CNY 20.00 off again"))
    return 1;
  n.expect(payload_id(*to_carol) == to_bob_id, "under the id " + payload_id(*to_carol) +
                                                   ": the sequence number it already spent on Bob's note");
  auto seen = carol.wallet->check(*to_carol);
  // The registry does not show Carol who holds the id (records are private to
  // their parties); presenting this note, she learns it is held for another.
  n.expect(seen && seen->value("status", "") == "claimed" && seen->value("same_document", true) == false,
           "Carol's terminal checks first: " +
               (seen ? (seen->value("status", "") == "claimed" && !seen->value("same_document", true)
                            ? std::string("the id is already claimed, for another document")
                            : "the registry says " + seen->value("status", "?"))
                     : seen.error().message()));
  std::int64_t carol_before = se_balance(carol);
  auto reused = carol.wallet->receive(*to_carol);
  n.expect(refusal(reused) == "seq_reused", "Carol's terminal claims it anyway: " + refusal(reused) +
                                                ", nothing credited; the CNY 20.00 stays in the refused note");
  n.expect(se_balance(carol) == carol_before, "Carol's SE still holds " + money(se_balance(carol)));
  std::string record_jws =
      slurp(fs::path(carol.se.wallet) / "records" / (replace_colons(to_bob_id) + ".jws"));
  auto record = registry::open_record(record_jws, CertVerifier(*root), "registry");
  if (n.expect(record.has_value(), "the registry's signed record kept by Carol's terminal verifies against the CA root" +
                                       (record ? "" : ": " + record.error().message()))) {
    n.say("record " + record->id + " from " + record->registry + ": status " +
          std::string(registry::record_status_name(record->status)) + ", doc_issuer " +
          record->doc_issuer.value_or("?") + ", doc_seq " + std::to_string(record->doc_seq.value_or(-1)) +
          ", claimant " + record->processor);
    n.expect(record->status == registry::RecordStatus::seq_reused && record->doc_issuer == alice.se.se_id &&
                 record->doc_id == to_bob_id,
             "it says: " + alice.se.se_id + " already used seq " + std::to_string(record->doc_seq.value_or(-1)) +
                 " for another document");
  }

  n.step("The registry's alert names Alice's SE; the CA revokes it and everyone takes the new CRL");
  auto registry_admin = registry::RegistryClient::connect(net->registry_url, *root, net->registry_id,
                                                          slurp(fs::path(net->registry_dir) / "admin.token"));
  Result<std::vector<registry::Alert>> alerts = std::unexpected(Error{Errc::unavailable, "", "no registry"});
  if (registry_admin) alerts = registry_admin->alerts();
  if (n.expect(alerts && alerts->size() == 1 && alerts->front().se_id == alice.se.se_id,
               "one alert: " + (alerts && !alerts->empty()
                                    ? alerts->front().se_id + " seq " + std::to_string(alerts->front().seq) +
                                          ", first claimed by " + alerts->front().first_processor +
                                          ", reused in a claim by " + alerts->front().second_processor
                                    : (alerts ? std::string("none") : alerts.error().message())))) {
    auto evidence =
        open_signed_document(alerts->front().second_claim_jws, CertVerifier(*root), Role::secure_element);
    n.expect(evidence && evidence->signers.front().subject_cn() == carol.se.se_id,
             "it keeps the refused claim, signed by Carol's SE, as evidence for the operator who revokes");
  }
  std::string admin = slurp(fs::path(net->ca_dir) / "admin.token");
  auto ca = ca::CaClient::connect(net->ca_url, *root, admin);
  auto alice_cert = Certificate::from_pem(*alice.wallet->se().certificate_pem());
  n.expect(ca->revoke(alice_cert->serial_hex(), "keyCompromise").has_value(),
           "the CA revoked " + alice.se.se_id + " (serial " + alice_cert->serial_hex() + ")");
  n.expect(registry_admin && registry_admin->refresh_crl().has_value(), "the registry fetched the new CRL");
  auto bank_admin =
      bank::BankClient::connect(net->bank_url, *root, net->bank_id, slurp(fs::path(net->bank_dir) / "admin.token"));
  n.expect(bank_admin && bank_admin->refresh_crl().has_value(), "bank-a fetched the new CRL");
  n.expect(bob.wallet->refresh_crl().has_value() && carol.wallet->refresh_crl().has_value(),
           "Bob's and Carol's SEs accepted the newer CRL (signed by the root)");
  auto late = alice.wallet->pay(*Amount::parse("CNY 5.00"), bob.se.se_id);
  n.expect(late.has_value(), "Alice's SE, which never installed that CRL, still signs a CNY 5.00 note to Bob "
                             "and takes the CNY 5.00 off her balance");
  if (late) {
    std::string why = refusal(bob.wallet->receive(*late));
    n.expect(why == "cert_revoked", "Bob's SE refuses it: " + why + "; nothing is added to his SE");
  }
  std::string why_old = refusal(bob.wallet->receive(*carol_note));
  n.expect(why_old == "cert_revoked", "and any older note from Alice's SE: " + why_old);
  show();
  Json final_audit = audit("at the end", false);
  if (!final_audit.empty()) {
    bool reused_listed = false;
    for (const auto& item : final_audit["notes"]["not_received"])
      reused_listed = reused_listed || (item["id"] == to_bob_id && item["state"] == "seq_reused");
    n.expect(final_audit["alerts"] == 1 && final_audit["alerted_ses"] == Json::array({alice.se.se_id}),
             "it fails because of the registry's alert naming " + alice.se.se_id);
    n.expect(reused_listed, "and lists Alice's second note " + to_bob_id +
                                " as seq_reused (the registry holds that id for the note Bob received)");
    n.expect(final_audit["system"]["CNY"]["conserved"] == true,
             "e-cash still adds up: the value the restore brought back left Alice's SE again in the refused note");
  }

  std::printf("\n%s: %d expectation(s) failed\n", n.failures() == 0 ? "demo passed" : "DEMO FAILED", n.failures());
  net->stop_all();
  if (keep_dir.empty()) fs::remove_all(dir);
  return n.failures() == 0 ? 0 : 1;
}

}  // namespace

void add_demo_command(CLI::App& app, int& exit_code) {
  auto* cmd = app.add_subcommand("demo", "narrated tour of zhuanfu on a fresh local network");
  auto keep = std::make_shared<std::string>();
  cmd->add_option("--keep", *keep, "use this directory and keep it afterwards");
  cmd->callback([keep, &exit_code] { exit_code = run_demo(*keep); });
}

}  // namespace zf::cli
