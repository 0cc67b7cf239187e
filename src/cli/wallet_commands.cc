// `zf wallet ...`: the terminal. PIN from --pin-fd, $ZF_PIN or a prompt.
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>

#include "cli/commands.h"
#include "cli/wallet_common.h"
#include "cli/wallet_output.h"
#include "core/document.h"
#include "core/jose.h"
#include "store/file.h"
#include "wallet/wallet.h"

namespace zf::cli {
namespace wallet_cli {

Result<std::string> read_pin(const Common& c) {
  if (c.pin_fd >= 0) {
    std::string pin;
    char ch;
    while (::read(c.pin_fd, &ch, 1) == 1 && ch != '\n') pin += ch;
    return pin;
  }
  // An empty ZF_PIN is no PIN: it must not cost a try.
  if (const char* env = std::getenv("ZF_PIN"); env && *env) return std::string(env);
  if (::isatty(0)) {
    const char* p = ::getpass("PIN: ");
    if (p) return std::string(p);
  }
  return fail(Errc::not_verified, "no PIN: use --pin-fd, ZF_PIN or a terminal");
}

// An amount the person mistyped: say what one looks like.
Error amount_error(Error e) {
  if (e.code == Errc::bad_amount || e.code == Errc::bad_currency)
    e.detail += "; expected an amount like 'CNY 12.50'; nothing moved";
  return e;
}

int report(const Error& e, const char* what) {
  std::fprintf(stderr, "zf wallet %s: %s\n", what, e.message().c_str());
  return 2;
}

// Opens the wallet and verifies the PIN; on failure sets exit_code and returns null.
std::unique_ptr<wallet::Wallet> open_unlocked(const Common& c, const char* what, int& exit_code, std::string* pin_out) {
  auto w = wallet::Wallet::open(c.dir);
  if (!w) return exit_code = report(w.error(), what), nullptr;
  auto pin = read_pin(c);
  if (!pin) return exit_code = report(pin.error(), what), nullptr;
  if (pin_out) *pin_out = *pin;
  if (auto s = (*w)->unlock(*pin); !s) {
    Error e = s.error();
    if (e.detail.find("nothing moved") == std::string::npos) e.detail += "; nothing moved";
    return exit_code = report(e, what), nullptr;
  }
  return std::move(*w);
}

std::unique_ptr<wallet::Wallet> open_with_file(const Common& c, const std::string& file, const char* what,
                                               int& exit_code, std::string& doc) {
  auto text = read_note(file);
  if (!text) return exit_code = report(text.error(), what), nullptr;
  doc = std::move(*text);
  return open_unlocked(c, what, exit_code);
}

CLI::App* with_common(CLI::App* cmd, const std::shared_ptr<Common>& c) {
  cmd->add_option("--wallet", c->dir, "wallet directory")->required();
  cmd->add_option("--pin-fd", c->pin_fd, "read the PIN from this file descriptor");
  return cmd;
}

void print(const Json& j) { std::printf("%s\n", j.dump(2).c_str()); }

// What the terminal did on the person's behalf (a renewed CRL), on stderr.
void say_notices(wallet::Wallet& w) {
  for (const auto& n : w.take_notices()) std::fprintf(stderr, "zf wallet: %s\n", n.c_str());
}

// `zf wallet notes` as a table.
void print_notes(const Json& list) {
  if (list.empty()) return void(std::printf("This SE has signed no payment notes.\n"));
  std::printf("%-22s %-16s %-14s %-17s %s\n", "NOTE", "AMOUNT", "TO", "SIGNED", "STATUS");
  for (const auto& n : list) {
    auto amount = Amount::of(n.value("currency", std::string()), n.value("amount_minor", std::int64_t{0}));
    std::string status = n.value("status", "");
    if (status == "received")
      status = "received by " + n.value("processor", "") + " on " + out::local_date(n.value("claimed_at", std::int64_t{0}));
    else if (status == "not_received" && n.contains("exp"))
      status = "not received yet; receivable until " + out::local_date(n.value("exp", std::int64_t{0}));
    else if (status == "not_received")
      status = "not received yet (`zf wallet note ID --out FILE` writes it out again)";
    else if (status == "reclaimable")
      status = "expired unreceived on " + out::local_date(n.value("exp", std::int64_t{0})) +
               ": `zf wallet reclaim " + n.value("doc_id", "") + "` takes it back";
    else if (status == "reclaimed")
      status = "reclaimed on " + out::local_date(n.value("claimed_at", std::int64_t{0}));
    else if (status == "held_by_other")
      status = "refused: " + n.value("processor", std::string("another SE")) + " holds this id";
    else
      status = "unknown: " + n.value("registry_error", std::string("the registry could not be asked"));
    std::printf("%-22s %-16s %-14s %-17s %s\n", n.value("doc_id", "").c_str(),
                amount ? amount->to_string().c_str() : "?", n.value("payee", "").c_str(),
                out::local_date(n.value("iat", std::int64_t{0})).c_str(), status.c_str());
  }
}

// "90s", "30m", "12h", "7d" or plain seconds.
Result<std::int64_t> parse_duration(const std::string& text) {
  std::size_t used = 0;
  long long n = 0;
  try {
    n = std::stoll(text, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  std::string unit = used ? text.substr(used) : "";
  std::int64_t scale = unit.empty() || unit == "s" ? 1 : unit == "m" ? 60 : unit == "h" ? 3600 : unit == "d" ? 86400 : 0;
  if (!used || scale == 0 || n < 1 || n > 366LL * 86400 / scale)
    return fail(Errc::bad_field, "expected a duration like 7d, 12h, 30m or 90s (at most 366d): '" + text + "'; nothing moved",
                "expires");
  return n * scale;
}

void add_priority_options(CLI::App* cmd, const std::shared_ptr<Priority>& p) {
  auto* ask = cmd->add_flag("--priority", p->ask,
                            "ask the bank for a designated processing number first: it serves this document "
                            "ahead of others when busy");
  cmd->add_option("--process-no", p->number, "a processing number the bank gave this SE (pn-...)")->excludes(ask);
}

Result<std::string> process_no_for(wallet::Wallet& w, const Priority& p, const std::string& bank,
                                   const std::string& account) {
  if (!p.ask) return p.number;
  auto n = w.process_number(bank, account);
  if (!n) {
    Error e = n.error();
    e.detail = "could not get a processing number from " + bank + ": " + e.detail + "; nothing was signed or moved";
    return std::unexpected(e);
  }
  return (*n)["process_no"].get<std::string>();
}

// A note as a file holds it ('-' for stdin), without the trailing newline.
Result<std::string> read_note(const std::string& file) {
  std::stringstream ss;
  if (file == "-") {
    ss << std::cin.rdbuf();
  } else {
    std::ifstream in(file);
    if (!in) return fail(Errc::not_found, "cannot read " + file);
    ss << in.rdbuf();
  }
  std::string note = ss.str();
  while (!note.empty() && (note.back() == '\n' || note.back() == '\r' || note.back() == ' ')) note.pop_back();
  return note;
}

}  // namespace wallet_cli

namespace {
using namespace wallet_cli;
}  // namespace

void add_wallet_commands(CLI::App& app, int& exit_code) {
  auto* w = app.add_subcommand("wallet", "the terminal: talks to its SE, banks and the CA");
  w->require_subcommand(1);
  {
    auto* cmd = w->add_subcommand("init", "create a wallet directory");
    auto dir = std::make_shared<std::string>();
    auto cfg = std::make_shared<wallet::WalletConfig>();
    auto root = std::make_shared<std::string>();
    auto banks = std::make_shared<std::vector<std::string>>();
    cmd->add_option("--wallet", *dir, "wallet directory")->required();
    cmd->add_option("--se-port", cfg->se_port, "the SE's APDU port")->required();
    cmd->add_option("--ca-url", cfg->ca_url, "CA base URL")->required();
    cmd->add_option("--root", *root, "CA root certificate (PEM)")->required()->check(CLI::ExistingFile);
    cmd->add_option("--bank", *banks, "ID=URL of a bank (repeatable)");
    cmd->add_option("--registry", cfg->registry_url, "registry URL: claim every note there before receiving it");
    cmd->add_option("--registry-id", cfg->registry_id,
                    "the registry id its TLS certificate must name (without it, any registry of this CA)");
    cmd->callback([=, &exit_code] {
      std::ifstream in(*root);
      std::stringstream ss;
      ss << in.rdbuf();
      cfg->root_pem = ss.str();
      for (const auto& b : *banks) {
        auto eq = b.find('=');
        if (eq == std::string::npos) return void(exit_code = report(Error{Errc::bad_field, "bank", "use ID=URL"}, "init"));
        cfg->banks[b.substr(0, eq)] = wallet::BankEndpoint{b.substr(eq + 1)};
      }
      if (auto s = wallet::Wallet::init(*dir, *cfg); !s) exit_code = report(s.error(), "init");
    });
  }
  {
    auto c = std::make_shared<Common>();
    auto json = std::make_shared<bool>(false);
    auto* cmd = with_common(
        w->add_subcommand("balance", "show the SE's e-cash, its state and what awaits an answer (no PIN)"), c);
    cmd->add_flag("--json", *json, "print the SE's info as JSON (fields: docs/wallet-cli.md)");
    cmd->callback([=, &exit_code] {
      auto wl = wallet::Wallet::open(c->dir);
      if (!wl) return void(exit_code = report(wl.error(), "balance"));
      auto b = (*wl)->balance();
      if (!b) return void(exit_code = report(b.error(), "balance"));
      if (*json) return print(*b);
      std::fputs(out::balance_text(*b, (*wl)->outbox(), (*wl)->notes_not_received()).c_str(), stdout);
    });
  }
  {
    auto c = std::make_shared<Common>();
    auto amount = std::make_shared<std::string>();
    auto bank = std::make_shared<std::string>();
    auto account = std::make_shared<std::string>();
    auto json = std::make_shared<bool>(false);
    auto priority = std::make_shared<Priority>();
    auto* cmd = with_common(w->add_subcommand("topup", "move money from a bank account into the SE"), c);
    add_priority_options(cmd, priority);
    cmd->add_option("amount", *amount, "e.g. 'CNY 100.00'")->required();
    cmd->add_option("--bank", *bank, "bank id")->required();
    cmd->add_option("--account", *account, "account at that bank")->required();
    cmd->add_flag("--json", *json, "print the SE's answer as JSON: {credited_minor, currency, balance_minor}");
    cmd->callback([=, &exit_code] {
      auto a = Amount::parse(*amount);
      if (!a) return void(exit_code = report(amount_error(a.error()), "topup"));
      auto wl = open_unlocked(*c, "topup", exit_code);
      if (!wl) return;
      auto pn = process_no_for(*wl, *priority, *bank, *account);
      if (!pn) return void(exit_code = report(pn.error(), "topup"));
      auto before = wl->balance();  // to tell what a failure moved
      auto r = wl->topup(*a, *bank, *account, *pn);
      say_notices(*wl);
      if (!r) {
        std::fprintf(stderr, "zf wallet topup: %s\n",
                     out::value_failure("topup", r.error(), *a, *bank, *account, before, wl->balance()).c_str());
        return void(exit_code = 2);
      }
      if (*json) return print(*r);
      if (!r->contains("credited_minor"))
        return void(std::printf("This top-up was applied before; nothing changed.\n"));
      std::string currency = r->value("currency", "");
      std::printf("Topped up %s from account %s at %s. The SE now holds %s.\n",
                  out::money(currency, r->value("credited_minor", std::int64_t{0})).c_str(), account->c_str(),
                  bank->c_str(), out::money(currency, r->value("balance_minor", std::int64_t{0})).c_str());
    });
  }
  {
    auto c = std::make_shared<Common>();
    auto amount = std::make_shared<std::string>();
    auto payee = std::make_shared<std::string>();
    auto out = std::make_shared<std::string>();
    auto expires = std::make_shared<std::string>();
    auto* cmd = with_common(w->add_subcommand("pay", "sign a payment note (the SE debits at once)"), c);
    cmd->add_option("amount", *amount, "e.g. 'CNY 12.50'")->required();
    cmd->add_option("--to", *payee, "the payee: an SE id, or a user id with one SE (resolved at the CA)")
        ->required();
    cmd->add_option("--out", *out, "write the note to this file (default stdout)");
    cmd->add_option("--expires", *expires,
                    "how long the payee may receive the note, e.g. 7d, 12h, 30m, 90s (default: the SE's, 30d); "
                    "after that `zf wallet reclaim` takes the value back");
    cmd->callback([=, &exit_code] {
      auto a = Amount::parse(*amount);
      if (!a) return void(exit_code = report(amount_error(a.error()), "pay"));
      std::optional<std::int64_t> ttl;
      if (!expires->empty()) {
        auto t = parse_duration(*expires);
        if (!t) return void(exit_code = report(t.error(), "pay"));
        ttl = *t;
      }
      auto wl = open_unlocked(*c, "pay", exit_code);
      if (!wl) return;
      auto note = wl->pay(*a, *payee, ttl);
      say_notices(*wl);
      if (!note) return void(exit_code = report(note.error(), "pay"));
      if (out->empty()) {
        std::printf("%s\n", note->c_str());
        return;
      }
      if (auto s = store::write_file_atomic(*out, *note + "\n", 0600); !s)
        return void(exit_code = report(Error{Errc::io_error, "",
                                             "the SE has debited " + a->to_string() +
                                                 " but the note could not be written to " + *out +
                                                 "; it is kept in the outbox (" + s.error().detail + ")"},
                                       "pay"));
      auto doc = jws_parse(*note);
      auto payload = doc ? Document::parse(to_string(doc->payload)) : Result<Document>(std::unexpected(doc.error()));
      std::string to = payload ? payload->str("payee") : *payee;
      std::printf("Paid %s to %s. The note is in %s: give it to the payee, who runs "
                  "`zf wallet receive %s`.\n",
                  a->to_string().c_str(), to.c_str(), out->c_str(), out->c_str());
      if (payload && payload->exp())
        std::printf("%s can receive it until %s (in %s); if it has not by then, `zf wallet reclaim %s` takes the "
                    "value back.\n",
                    to.c_str(), out::local_date(*payload->exp()).c_str(),
                    out::duration_words(*payload->exp() - payload->iat()).c_str(), payload->id().c_str());
    });
  }
  {
    auto c = std::make_shared<Common>();
    auto file = std::make_shared<std::string>();
    auto* cmd = with_common(w->add_subcommand("receive", "hand a payment note to the SE"), c);
    cmd->add_option("note", *file, "file holding the note ('-' for stdin)")->required();
    auto json = std::make_shared<bool>(false);
    cmd->add_flag("--json", *json, "print the SE's answer as JSON: {credited_minor, currency, payer, note_id, balance_minor}");
    cmd->callback([=, &exit_code] {
      std::string note;
      auto wl = open_with_file(*c, *file, "receive", exit_code, note);
      if (!wl) return;
      auto r = wl->receive(note);
      say_notices(*wl);
      if (!r && wallet::Wallet::already_received(r.error()))
        return void(std::printf("Already received: %s.\n", r.error().detail.c_str()));
      if (!r) return void(exit_code = report(r.error(), "receive"));
      if (*json) return print(*r);
      auto got = Amount::of(r->value("currency", std::string()), r->value("credited_minor", std::int64_t{0}));
      auto now = Amount::of(r->value("currency", std::string()), r->value("balance_minor", std::int64_t{0}));
      std::printf("Received %s from %s (note %s). The SE now holds %s.\n",
                  got ? got->to_string().c_str() : "?", r->value("payer", "?").c_str(),
                  r->value("note_id", "?").c_str(), now ? now->to_string().c_str() : "?");
      if (r->contains("answer")) {
        // A face-to-face payment whose answer never reached its payer: this closes it there.
        const std::string path = *file == "-" ? "answer.jws" : *file + ".answer";
        if (auto s = store::write_file_atomic(path, (*r)["answer"].get<std::string>() + "\n", 0600); !s)
          return void(exit_code = report(s.error(), "receive"));
        std::printf("It was paid face to face and its payer is still waiting for the answer: give it %s "
                    "(`zf wallet answer %s`).\n",
                    path.c_str(), path.c_str());
      }
    });
  }
  {
    auto c = std::make_shared<Common>();
    auto file = std::make_shared<std::string>();
    auto* cmd = with_common(
        w->add_subcommand("check", "ask the registry whether a payment note was already claimed (no PIN)"), c);
    cmd->add_option("note", *file, "file holding the note ('-' for stdin)")->required();
    cmd->callback([=, &exit_code] {
      auto note = read_note(*file);
      if (!note) return void(exit_code = report(note.error(), "check"));
      auto wl = wallet::Wallet::open(c->dir);
      if (!wl) return void(exit_code = report(wl.error(), "check"));
      auto r = (*wl)->check(*note);
      if (!r) return void(exit_code = report(r.error(), "check"));
      // One line, like `zf registry query`: the record JWS inside is the proof.
      std::printf("%s\n", r->dump().c_str());
    });
  }
  {
    auto c = std::make_shared<Common>();
    auto amount = std::make_shared<std::string>();
    auto bank = std::make_shared<std::string>();
    auto account = std::make_shared<std::string>();
    auto json = std::make_shared<bool>(false);
    auto* cmd = with_common(w->add_subcommand("deposit", "move e-cash from the SE into a bank account"), c);
    cmd->add_option("amount", *amount, "e.g. 'CNY 20.00'")->required();
    cmd->add_option("--bank", *bank, "bank id")->required();
    cmd->add_option("--account", *account, "account at that bank")->required();
    cmd->add_flag("--json", *json, "print the SE's answer as JSON: {settled}");
    cmd->callback([=, &exit_code] {
      auto a = Amount::parse(*amount);
      if (!a) return void(exit_code = report(amount_error(a.error()), "deposit"));
      auto wl = open_unlocked(*c, "deposit", exit_code);
      if (!wl) return;
      auto before = wl->balance();  // to tell what a failure moved
      auto r = wl->deposit(*a, *bank, *account);
      say_notices(*wl);
      if (!r) {
        std::fprintf(stderr, "zf wallet deposit: %s\n",
                     out::value_failure("deposit", r.error(), *a, *bank, *account, before, wl->balance()).c_str());
        return void(exit_code = 2);
      }
      if (*json) return print(*r);
      if (!r->contains("settled")) return void(std::printf("This deposit was settled before; nothing changed.\n"));
      const std::string currency(a->currency().code());
      auto now = wl->balance();
      std::string held = now ? out::money(currency, (*now)["balances"].value(currency, std::int64_t{0})) : "?";
      // The account's balance, if this SE may ask (a deposit may go to anyone's account).
      auto statement = wl->account_statement(*bank, *account);
      std::printf("Deposited %s into account %s at %s. The SE now holds %s%s.\n", a->to_string().c_str(),
                  account->c_str(), bank->c_str(), held.c_str(),
                  statement ? ("; the account's balance is " +
                               out::money((*statement)["currency"].get<std::string>(),
                                          (*statement)["balance_minor"].get<std::int64_t>()))
                                  .c_str()
                            : "");
    });
  }
  {
    auto c = std::make_shared<Common>();
    auto json = std::make_shared<bool>(false);
    auto* cmd = with_common(w->add_subcommand("retry", "re-send every unacknowledged document in the outbox"), c);
    cmd->add_flag("--json", *json, "print {adopted, settled, pending, refused, errors: [{doc_id, error}]}");
    cmd->callback([=, &exit_code] {
      // Nothing unanswered, in the outbox or in the SE: no PIN needed to say so.
      if (auto plain = wallet::Wallet::open(c->dir); plain) {
        auto info = (*plain)->balance();
        bool outbox_pending = false;
        for (const auto& e : (*plain)->outbox())
          outbox_pending = outbox_pending || (e.state == "pending" && e.kind != "payment" && e.kind != "escrow");
        if (info && !outbox_pending && info->value("pending_topups", Json::array()).empty() &&
            info->value("pending_deposits", Json::array()).empty())
          return void(std::printf("Nothing to retry: every top-up, deposit, transfer and hold has its answer.\n"));
      }
      auto wl = open_unlocked(*c, "retry", exit_code);
      if (!wl) return;
      auto r = wl->retry();
      say_notices(*wl);
      if (!r) return void(exit_code = report(r.error(), "retry"));
      if ((*r)["pending"].get<int>() > 0) exit_code = 3;
      if (*json) return print(*r);
      std::fputs(out::retry_text(*r).c_str(), stdout);
      if (auto b = wl->balance(); b) std::fputs(out::holdings_text(*b).c_str(), stdout);
    });
  }
  {
    auto c = std::make_shared<Common>();
    auto* cmd = with_common(w->add_subcommand("unblock", "unblock the PIN with the PUK ($ZF_PUK) and set $ZF_PIN"), c);
    cmd->callback([=, &exit_code] {
      auto wl = wallet::Wallet::open(c->dir);
      if (!wl) return void(exit_code = report(wl.error(), "unblock"));
      const char* puk = std::getenv("ZF_PUK");
      auto pin = read_pin(*c);
      if (!puk || !pin) return void(exit_code = report(Error{Errc::missing_field, "puk", "set ZF_PUK and ZF_PIN"}, "unblock"));
      if (auto s = (*wl)->balance(); !s) return void(exit_code = report(s.error(), "unblock"));
      auto s = (*wl)->se().unblock(puk, *pin);
      if (!s) {
        Error e = s.error();
        if (e.code == Errc::pin_wrong && e.field == "puk")
          e.detail = "wrong PUK, " + e.detail + " before the PUK blocks too; the PIN is unchanged";
        return void(exit_code = report(e, "unblock"));
      }
      std::printf("The PIN is set and unblocked: the SE takes the new PIN from now on.\n");
    });
  }
  {
    auto c = std::make_shared<Common>();
    auto se_dir = std::make_shared<std::string>();
    auto* cmd = with_common(
        w->add_subcommand("pair", "pair the terminal with its SE, confirming the code both show (re-pairing: $ZF_PUK)"),
        c);
    cmd->add_option("--se-dir", *se_dir,
                    "read the code the emulated SE shows from its pairing.code (else: confirm at the prompt)");
    cmd->callback([=, &exit_code] {
      auto wl = wallet::Wallet::open(c->dir);
      if (!wl) return void(exit_code = report(wl.error(), "pair"));
      const char* puk = std::getenv("ZF_PUK");
      auto confirm = [&](const std::string& code) {
        if (!se_dir->empty()) {
          std::ifstream in(std::filesystem::path(*se_dir) / "pairing.code");
          std::string shown;
          std::getline(in, shown);
          std::printf("terminal shows %s, SE shows %s\n", code.c_str(), shown.c_str());
          return shown == code;
        }
        if (!::isatty(0)) return false;
        std::printf("Does the SE show %s? [y/N] ", code.c_str());
        std::fflush(stdout);
        std::string answer;
        std::getline(std::cin, answer);
        return answer == "y" || answer == "Y" || answer == "yes";
      };
      if (auto s = (*wl)->pair(puk ? puk : "", confirm); !s) return void(exit_code = report(s.error(), "pair"));
      std::printf("paired; key in %s/pairing.key\n", c->dir.c_str());
    });
  }
  {
    auto c = std::make_shared<Common>();
    auto* cmd = with_common(w->add_subcommand("refresh-crl", "fetch the CA's CRL and install it in the SE"), c);
    cmd->callback([=, &exit_code] {
      auto wl = wallet::Wallet::open(c->dir);
      if (!wl) return void(exit_code = report(wl.error(), "refresh-crl"));
      if (auto s = (*wl)->refresh_crl(); !s) exit_code = report(s.error(), "refresh-crl");
    });
  }
  {
    auto c = std::make_shared<Common>();
    auto json = std::make_shared<bool>(false);
    auto* cmd = with_common(w->add_subcommand("history", "the SE's log (with the PIN), else the terminal's history"), c);
    cmd->add_flag("--json", *json, "print {terminal, se_log} as JSON (fields: docs/wallet-cli.md)");
    cmd->callback([=, &exit_code] {
      auto wl = wallet::Wallet::open(c->dir);
      if (!wl) return void(exit_code = report(wl.error(), "history"));
      auto h = (*wl)->history();
      auto b = (*wl)->balance();
      Json history{{"terminal", h ? *h : Json::array()}};
      // The SE's log is the person's: it is shown when the PIN verifies.
      Result<Json> log = std::unexpected(b ? Error{} : b.error());
      if (b) {
        auto pin = read_pin(*c);
        Status unlocked = pin ? (*wl)->unlock(*pin) : Status(std::unexpected(pin.error()));
        log = unlocked ? (*wl)->se().log() : Result<Json>(std::unexpected(unlocked.error()));
        if (log) history["se_log"] = *log;
      }
      if (*json) return print(history);
      if (log) return void(std::fputs(out::se_log_text(*log).c_str(), stdout));
      std::printf("The SE's log is not shown (%s). This terminal's own record:\n", log.error().message().c_str());
      std::fputs(out::terminal_history_text(history["terminal"], (*wl)->outbox()).c_str(), stdout);
    });
  }
  {
    auto c = std::make_shared<Common>();
    auto json = std::make_shared<bool>(false);
    auto* cmd = with_common(
        w->add_subcommand("notes", "the payment notes this SE signed and whether each payee has received it"), c);
    cmd->add_flag("--json", *json, "print the list as JSON (fields: README, \"Notes in flight\")");
    cmd->callback([=, &exit_code] {
      auto wl = open_unlocked(*c, "notes", exit_code);
      if (!wl) return;
      auto list = wl->notes();
      if (!list) return void(exit_code = report(list.error(), "notes"));
      if (*json) return print(*list);
      print_notes(*list);
    });
  }
  {
    auto c = std::make_shared<Common>();
    auto id = std::make_shared<std::string>();
    auto out = std::make_shared<std::string>();
    auto* cmd = with_common(w->add_subcommand("note", "write one payment note out again (no PIN)"), c);
    cmd->add_option("id", *id, "the note's id, as `zf wallet notes` lists it")->required();
    cmd->add_option("--out", *out, "write the note to this file (default stdout)");
    cmd->callback([=, &exit_code] {
      auto wl = wallet::Wallet::open(c->dir);
      if (!wl) return void(exit_code = report(wl.error(), "note"));
      auto note = (*wl)->note(*id);
      if (!note) return void(exit_code = report(note.error(), "note"));
      if (out->empty()) return void(std::printf("%s\n", note->c_str()));
      if (auto s = store::write_file_atomic(*out, *note + "\n", 0600); !s)
        return void(exit_code = report(s.error(), "note"));
      std::printf("Wrote note %s to %s.\n", id->c_str(), out->c_str());
    });
  }
  {
    auto c = std::make_shared<Common>();
    auto ids = std::make_shared<std::vector<std::string>>();
    auto json = std::make_shared<bool>(false);
    auto* cmd = with_common(
        w->add_subcommand("reclaim", "take back the value of payment notes nobody received before they expired"), c);
    cmd->add_option("id", *ids, "the notes' ids (default: every expired note not received)");
    cmd->add_flag("--json", *json, "print one JSON object per note: {doc_id, outcome, payee, amount_minor, currency, ...}");
    cmd->callback([=, &exit_code] {
      auto wl = open_unlocked(*c, "reclaim", exit_code);
      if (!wl) return;
      std::vector<std::string> todo = *ids;
      if (todo.empty()) {
        auto r = wl->reclaimable();
        if (!r) return void(exit_code = report(r.error(), "reclaim"));
        todo = *r;
        if (todo.empty() && !*json) std::printf("No note has expired unreceived: there is nothing to reclaim.\n");
      }
      for (const auto& id : todo) {
        auto r = wl->reclaim(id);
        say_notices(*wl);
        if (!r) {
          // Reclaimed before: the value is already back; nothing to do.
          if (r.error().code == Errc::replayed && r.error().field == "id") {
            if (*json) print(Json{{"doc_id", id}, {"outcome", "already_reclaimed"}});
            else std::printf("Already done: %s.\n", r.error().detail.c_str());
            continue;
          }
          exit_code = report(r.error(), "reclaim");
          continue;
        }
        if (*json) {
          print(*r);
          continue;
        }
        auto amount = Amount::of(r->value("currency", ""), r->value("amount_minor", std::int64_t{0}));
        std::string what = amount ? amount->to_string() : "its value";
        if (r->value("outcome", "") == "received") {
          std::printf("Note %s (%s) was received by %s on %s: nothing comes back, and the SE no longer keeps it.\n",
                      id.c_str(), what.c_str(), r->value("payee", "").c_str(),
                      out::local_date(r->value("claimed_at", std::int64_t{0})).c_str());
          continue;
        }
        auto now = Amount::of(r->value("currency", ""), r->value("balance_minor", std::int64_t{0}));
        std::printf("Reclaimed %s from note %s, which %s did not receive before %s. The SE now holds %s.\n",
                    what.c_str(), id.c_str(), r->value("payee", "").c_str(),
                    out::local_date(r->value("exp", std::int64_t{0})).c_str(), now ? now->to_string().c_str() : "?");
      }
    });
  }
  {
    auto c = std::make_shared<Common>();
    auto bank = std::make_shared<std::string>();
    auto account = std::make_shared<std::string>();
    auto json = std::make_shared<bool>(false);
    auto* cmd = with_common(
        w->add_subcommand("account", "a bank account's balance and recent entries, asked with a query the SE signs"),
        c);
    cmd->add_option("--bank", *bank, "bank id")->required();
    cmd->add_option("--account", *account, "account at that bank")->required();
    cmd->add_flag("--json", *json, "print the bank's statement as JSON (fields: docs/wallet-cli.md)");
    cmd->callback([=, &exit_code] {
      auto wl = open_unlocked(*c, "account", exit_code);
      if (!wl) return;
      auto st = wl->account_statement(*bank, *account);
      if (!st) {
        std::fprintf(stderr, "zf wallet account: %s\n", out::query_failure(st.error(), *bank, *account).c_str());
        return void(exit_code = 2);
      }
      if (*json) return print(*st);
      std::fputs(out::statement_text(*st, *bank).c_str(), stdout);
    });
  }
  add_nearby_commands(w, exit_code);
  add_escrow_commands(w, exit_code);
  add_bank_commands(w, exit_code);
  add_hold_commands(w, exit_code);
  add_joint_commands(w, exit_code);
  add_events_command(w, exit_code);
  add_process_no_command(w, exit_code);
}

}  // namespace zf::cli
