// `zf wallet hold ...`: controlled transfer between two bank accounts
// (docs/wallet-cli.md "Holds", docs/bank-api.md "Holds"). The payer's SE signs
// a request, the payee's SE adds its signature, the bank freezes the money;
// then the payer confirms (the payee is paid), the payee releases (the payer
// gets it back), or the bank gives it back at the release time.
#include <cstdio>
#include <ctime>

#include "cli/wallet_common.h"
#include "cli/wallet_output.h"
#include "store/file.h"

namespace zf::cli::wallet_cli {
namespace {

std::string money_of(const Json& j) {
  return out::money(j.value("currency", std::string()), j.value("amount_minor", std::int64_t{0}));
}

Status write_out(const std::string& path, const std::string& text) {
  return store::write_file_atomic(path, text + "\n", 0600);
}

// "CNY 50.00 from alice-main to bob-main at bank-a, given back to alice-main on <date>"
std::string hold_words(const Json& r) {
  return money_of(r) + " from " + r.value("payer_account", "") + " to " + r.value("payee_account", "") + " at " +
         r.value("bank", "");
}

std::string release_words(const Json& r) {
  return out::local_date(r.value("release_at", std::int64_t{0}));
}

// A refusal in the words of a bank that looked at the hold; the library's own
// words (what is kept, what to run) otherwise.
int report_hold(const Error& e, const char* what) {
  switch (e.code) {
    case Errc::hold_resolved:
    case Errc::hold_unknown:
    case Errc::insufficient_funds:
    case Errc::not_owner:
    case Errc::account_unknown:
    case Errc::currency_mismatch:
    case Errc::same_account:
      std::fprintf(stderr, "zf wallet %s: %s (%s)%s\n", what, e.detail.c_str(), std::string(errc_name(e.code)).c_str(),
                   e.detail.find("nothing") == std::string::npos && e.detail.find("no money") == std::string::npos
                       ? "; no money moved"
                       : "");
      return 2;
    default:
      return report(e, what);
  }
}

}  // namespace

void add_hold_commands(CLI::App* w, int& exit_code) {
  auto* h = w->add_subcommand("hold", "controlled transfer: money frozen at the bank until the payer confirms, "
                                      "the payee releases it, or its release time passes");
  h->require_subcommand(1);
  {
    auto c = std::make_shared<Common>();
    auto amount = std::make_shared<std::string>();
    auto bank = std::make_shared<std::string>();
    auto from = std::make_shared<std::string>();
    auto to = std::make_shared<std::string>();
    auto release = std::make_shared<std::string>("7d");
    auto outp = std::make_shared<std::string>();
    auto json = std::make_shared<bool>(false);
    auto* cmd = with_common(h->add_subcommand("request", "payer: sign a request to hold money for a payee"), c);
    cmd->add_option("amount", *amount, "e.g. 'CNY 50.00'")->required();
    cmd->add_option("--bank", *bank, "bank id")->required();
    cmd->add_option("--from", *from, "your account at that bank (one this SE may sign for)")->required();
    cmd->add_option("--to", *to, "the payee's account at the same bank")->required();
    cmd->add_option("--release-in", *release,
                    "unless confirmed or released before, the bank gives the money back after this (default 7d)");
    cmd->add_option("--out", *outp, "write the request here, for the payee to cosign")->required();
    cmd->add_flag("--json", *json, "print the request's facts as JSON");
    cmd->callback([=, &exit_code] {
      auto a = Amount::parse(*amount);
      if (!a) return void(exit_code = report(amount_error(a.error()), "hold request"));
      auto ttl = parse_duration(*release);
      if (!ttl) return void(exit_code = report(ttl.error(), "hold request"));
      auto wl = open_unlocked(*c, "hold request", exit_code);
      if (!wl) return;
      auto r = wl->hold_request(*a, *bank, *from, *to, static_cast<std::int64_t>(std::time(nullptr)) + *ttl);
      say_notices(*wl);
      if (!r) return void(exit_code = report_hold(r.error(), "hold request"));
      if (auto s = write_out(*outp, (*r)["request"].get<std::string>()); !s)
        return void(exit_code = report(Error{Errc::io_error, "",
                                             "the request is signed and kept in the outbox, but it could not be "
                                             "written to " + *outp + "; nothing moved"},
                                       "hold request"));
      if (*json) return print(*r);
      std::printf("Signed a request to hold %s (hold %s); nothing has moved yet.\n", hold_words(*r).c_str(),
                  r->value("hold_id", "").c_str());
      std::printf("Give %s to the payee: they run `zf wallet hold cosign %s` and send it, or give it back to you "
                  "to send with `zf wallet hold submit`. The bank takes it for 10 minutes.\n",
                  outp->c_str(), outp->c_str());
    });
  }
  {
    auto c = std::make_shared<Common>();
    auto file = std::make_shared<std::string>();
    auto outp = std::make_shared<std::string>();
    auto submit = std::make_shared<bool>(false);
    auto json = std::make_shared<bool>(false);
    auto* cmd = with_common(h->add_subcommand("cosign", "payee: add your SE's signature to a hold request"), c);
    cmd->add_option("file", *file, "the payer's request ('-' for stdin)")->required();
    cmd->add_option("--out", *outp, "write the request with both signatures here (default: over FILE)");
    cmd->add_flag("--submit", *submit, "send it to the bank at once");
    cmd->add_flag("--json", *json, "print the result as JSON");
    cmd->callback([=, &exit_code] {
      std::string text;
      auto wl = open_with_file(*c, *file, "hold cosign", exit_code, text);
      if (!wl) return;
      auto r = wl->hold_cosign(text);
      say_notices(*wl);
      if (!r) return void(exit_code = report_hold(r.error(), "hold cosign"));
      std::string dest = outp->empty() ? *file : *outp;
      if (dest != "-")
        if (auto s = write_out(dest, (*r)["request"].get<std::string>()); !s)
          return void(exit_code = report(s.error(), "hold cosign"));
      if (*submit) {
        auto held = wl->hold_submit((*r)["request"].get<std::string>());
        if (!held) return void(exit_code = report_hold(held.error(), "hold cosign"));
        if (*json) return print(*held);
        std::printf("Cosigned and sent: %s is now held (hold %s). It goes back to %s on %s unless confirmed or "
                    "released before.\n",
                    hold_words(*held).c_str(), held->value("hold_id", "").c_str(),
                    held->value("payer_account", "").c_str(), release_words(*held).c_str());
        return;
      }
      if (*json) return print(*r);
      std::printf("Cosigned the request to hold %s (hold %s). Send it with `zf wallet hold submit %s`, or give it "
                  "back to the payer to send.\n",
                  hold_words(*r).c_str(), r->value("hold_id", "").c_str(), dest.c_str());
    });
  }
  {
    auto c = std::make_shared<Common>();
    auto file = std::make_shared<std::string>();
    auto json = std::make_shared<bool>(false);
    auto* cmd = with_common(h->add_subcommand("submit", "send a request both SEs signed to the bank"), c);
    cmd->add_option("file", *file, "the request with both signatures ('-' for stdin)")->required();
    cmd->add_flag("--json", *json, "print the hold receipt's facts as JSON");
    cmd->callback([=, &exit_code] {
      std::string text;
      auto wl = open_with_file(*c, *file, "hold submit", exit_code, text);
      if (!wl) return;
      auto r = wl->hold_submit(text);
      say_notices(*wl);
      if (!r) return void(exit_code = report_hold(r.error(), "hold submit"));
      if (*json) return print(*r);
      std::printf("Held %s (hold %s, receipt %s). It goes back to %s on %s unless the payer confirms or the payee "
                  "releases it before.\n",
                  hold_words(*r).c_str(), r->value("hold_id", "").c_str(), r->value("receipt_id", "").c_str(),
                  r->value("payer_account", "").c_str(), release_words(*r).c_str());
    });
  }
  for (bool confirm : {true, false}) {
    auto c = std::make_shared<Common>();
    auto id = std::make_shared<std::string>();
    auto json = std::make_shared<bool>(false);
    const char* what = confirm ? "hold confirm" : "hold release";
    auto* cmd = with_common(
        h->add_subcommand(confirm ? "confirm" : "release",
                          confirm ? "payer: pay the held money to the payee" : "payee: give the held money back to the payer"),
        c);
    cmd->add_option("id", *id, "the hold's id")->required();
    cmd->add_flag("--json", *json, "print the hold receipt's facts as JSON");
    cmd->callback([=, &exit_code] {
      auto wl = open_unlocked(*c, what, exit_code);
      if (!wl) return;
      auto r = wl->hold_end(*id, confirm);
      say_notices(*wl);
      if (!r) return void(exit_code = report_hold(r.error(), what));
      if (*json) return print(*r);
      if (confirm)
        std::printf("Paid %s from hold %s to %s (receipt %s).\n", money_of(*r).c_str(), id->c_str(),
                    r->value("payee_account", "").c_str(), r->value("receipt_id", "").c_str());
      else
        std::printf("Gave %s from hold %s back to %s (receipt %s).\n", money_of(*r).c_str(), id->c_str(),
                    r->value("payer_account", "").c_str(), r->value("receipt_id", "").c_str());
    });
  }
}

}  // namespace zf::cli::wallet_cli
