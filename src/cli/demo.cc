// `zf demo`: a narrated tour on a fresh local network in a temporary directory:
// top-up, online payment (the note travels as a file), deposit, refusals of
// replayed, tampered and forged notes, revocation, and an audit after each act.
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "bank/client.h"
#include "ca/client.h"
#include "cli/commands.h"
#include "cli/network.h"
#include "core/document.h"
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

  n.step("A local network starts: manufacturer, CA, bank-a, and SEs for Alice and Bob, each its own process");
  NetworkOptions opts;
  opts.dir = dir.string();
  opts.users = {"alice", "bob"};
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
  auto se_balance = [&](Party& x) -> std::int64_t {
    auto info = x.wallet->balance();
    return info && (*info)["balances"].contains("CNY") ? (*info)["balances"]["CNY"].get<std::int64_t>() : 0;
  };
  auto account_balance = [&](Party& x) -> std::int64_t {
    auto q = x.wallet->se().sign_query(Json{{"account", x.se.account}, {"bank", net->bank_id}});
    if (!q) return -1;
    auto bank = bank::BankClient::connect(net->bank_url, *root);
    auto st = bank->query((*q)["query"]);
    return st ? st->account.balance_minor : -1;
  };
  auto show = [&]() {
    for (auto& x : p)
      n.say(x.se.user + ": SE " + money(se_balance(x)) + ", account " + x.se.account + " " + money(account_balance(x)));
  };
  auto audit = [&](const std::string& when) {
    auto r = network_audit(net->dir);
    bool ok = r && (*r)["ok"].get<bool>();
    std::string detail;
    if (r) {
      const Json& c = (*r)["system"]["CNY"];
      detail = ": outstanding " + money(c["ecash_outstanding_minor"]) + " = SE balances " +
               money(c["se_balances_minor"]) + " + notes in flight " + money(c["notes_in_flight_minor"]);
    }
    n.expect(ok, "audit " + when + detail);
  };
  show();

  n.step("Alice tops up CNY 200.00 from her account (patent claim 1)");
  n.say("terminal builds the request, the SE checks her PIN and limits and signs it,");
  n.say("bank-a debits the account and returns a signed receipt, the SE credits itself once");
  auto amount = *Amount::parse("CNY 200.00");
  auto topped = alice.wallet->topup(amount, net->bank_id, alice.se.account);
  n.expect(topped.has_value(), "top-up " + (topped ? "receipt applied" : topped.error().message()));
  show();
  audit("after the top-up");

  n.step("Alice pays Bob CNY 12.50 online; the signed note travels as a file");
  auto note = alice.wallet->pay(*Amount::parse("CNY 12.50"), bob.se.se_id);
  if (!n.expect(note.has_value(), "Alice's SE debited itself and signed a payment.note")) return 1;
  fs::path note_file = dir / "note-alice-to-bob.jws";
  std::ofstream(note_file) << *note << "\n";
  n.say("note file " + note_file.string() + " (" + std::to_string(note->size()) + " bytes, payer certificate in x5c)");
  auto got = bob.wallet->receive(slurp(note_file));
  n.expect(got.has_value(), "Bob's SE verified the note (certified SE, addressed to it, never seen) and credited " +
                                (got ? money((*got)["credited_minor"]) : got.error().message()));
  show();
  audit("after the payment");

  n.step("Bad notes change nothing");
  n.expect(refusal(bob.wallet->receive(*note)) == "replayed", "the same note again: " + refusal(bob.wallet->receive(*note)));
  std::string tampered = *note;
  tampered[tampered.find('.') + 12] ^= 0x01;
  n.expect(refusal(bob.wallet->receive(tampered)) == "bad_signature" || refusal(bob.wallet->receive(tampered)) == "bad_base64url",
           "a note with one byte changed: " + refusal(bob.wallet->receive(tampered)));
  auto carol_note = alice.wallet->pay(*Amount::parse("CNY 1.00"), "se-carol");
  n.expect(refusal(bob.wallet->receive(*carol_note)) == "misaddressed",
           "a note Alice wrote to someone else: " + refusal(bob.wallet->receive(*carol_note)));
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
              {"iat", std::time(nullptr)}, {"amount", 100000}, {"currency", "CNY"}, {"payer", "se-mallory"},
              {"payee", bob.se.se_id}};
  auto forged_jws = sign_document(forged, JwsSigner{&fake_signer, {*fake_cert}});
  n.expect(refusal(bob.wallet->receive(*forged_jws)) == "cert_untrusted",
           "a note from a software key with a self-made certificate: " + refusal(bob.wallet->receive(*forged_jws)));
  show();
  audit("after the refusals (Alice's note to se-carol is still in flight)");

  n.step("Bob deposits CNY 10.00 into his account");
  auto dep = bob.wallet->deposit(*Amount::parse("CNY 10.00"), net->bank_id, bob.se.account);
  n.expect(dep.has_value(), "deposit " + (dep ? "settled by a signed receipt" : dep.error().message()));
  show();
  audit("after the deposit");

  n.step("Alice reports her SE lost: the CA revokes it; Bob's terminal installs the new CRL");
  std::string admin = slurp(fs::path(net->ca_dir) / "admin.token");
  auto ca = ca::CaClient::connect(net->ca_url, *root, admin);
  auto alice_cert = Certificate::from_pem(*alice.wallet->se().certificate_pem());
  n.expect(ca->revoke(alice_cert->serial_hex(), "keyCompromise").has_value(), "revoked " + alice_cert->serial_hex());
  n.expect(bob.wallet->refresh_crl().has_value(), "Bob's SE accepted the newer CRL (signed by the root)");
  n.expect(refusal(bob.wallet->receive(*carol_note)) == "cert_revoked",
           "any note from Alice's SE is now refused: " + refusal(bob.wallet->receive(*carol_note)));
  audit("at the end");

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
