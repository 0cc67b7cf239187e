// `zf wallet transfer` and `zf wallet joint ...`: operations on bank accounts
// that the SE signs and the bank carries out (docs/wallet-cli.md,
// docs/bank-api.md "Account transfer", "Joint accounts").
#include <chrono>
#include <cstdio>
#include <thread>

#include "bank/bank.h"
#include "store/file.h"

#include "cli/wallet_common.h"
#include "cli/wallet_output.h"

namespace zf::cli::wallet_cli {

void add_bank_commands(CLI::App* w, int& exit_code) {
  auto c = std::make_shared<Common>();
  auto amount = std::make_shared<std::string>();
  auto bank = std::make_shared<std::string>();
  auto from = std::make_shared<std::string>();
  auto to = std::make_shared<std::string>();
  auto json = std::make_shared<bool>(false);
  auto priority = std::make_shared<Priority>();
  auto* cmd = with_common(
      w->add_subcommand("transfer", "move money from your bank account to another account at the same bank"), c);
  add_priority_options(cmd, priority);
  cmd->add_option("amount", *amount, "e.g. 'CNY 25.00'")->required();
  cmd->add_option("--bank", *bank, "bank id")->required();
  cmd->add_option("--from", *from, "your account at that bank (one this SE may sign for)")->required();
  cmd->add_option("--to", *to, "the account the money goes to, at the same bank")->required();
  cmd->add_flag("--json", *json,
                "print the result as JSON: {order_id, receipt_id, bank, from, to, amount_minor, currency, status}");
  cmd->callback([=, &exit_code] {
    auto a = Amount::parse(*amount);
    if (!a) return void(exit_code = report(amount_error(a.error()), "transfer"));
    auto wl = open_unlocked(*c, "transfer", exit_code);
    if (!wl) return;
    auto pn = process_no_for(*wl, *priority, *bank, *from);
    if (!pn) return void(exit_code = report(pn.error(), "transfer"));
    auto r = wl->transfer(*a, *bank, *from, *to, *pn);
    say_notices(*wl);
    if (!r) {
      const Error& e = r.error();
      // The library's words say what moved; the bank's own refusals get the account in words.
      std::string text = e.message();
      if (e.code == Errc::insufficient_funds || e.code == Errc::not_owner || e.code == Errc::account_unknown ||
          e.code == Errc::currency_mismatch || e.code == Errc::same_account || e.code == Errc::process_no_unknown ||
          e.code == Errc::process_no_expired || e.code == Errc::process_no_used)
        text = "the bank refused the transfer: " + e.detail + " (" + std::string(errc_name(e.code)) + ")" +
               (e.detail.find("moved") == std::string::npos ? "; no money moved" : "");
      std::fprintf(stderr, "zf wallet transfer: %s\n", text.c_str());
      return void(exit_code = 2);
    }
    if (*json) return print(*r);
    std::printf("Moved %s from account %s to %s at %s (receipt %s).\n", a->to_string().c_str(), from->c_str(),
                to->c_str(), bank->c_str(), r->value("receipt_id", std::string()).c_str());
  });
}

namespace {

std::string money_of(const Json& j) {
  return out::money(j.value("currency", std::string()), j.value("amount_minor", std::int64_t{0}));
}

// "CNY 50.00 from family to carol-main at bank-a" / "... into se-alice's SE"
std::string spend_words(const Json& r) {
  const bool topup = r.value("action", "") == "topup";
  return money_of(r) + " from joint account " + r.value("account", "") + (topup ? " into " : " to ") +
         r.value("to", "") + (topup ? "'s SE" : "") + " at " + r.value("bank", "");
}

int report_joint(const Error& e, const char* what) {
  switch (e.code) {
    case Errc::threshold_not_met:
    case Errc::insufficient_funds:
    case Errc::not_owner:
    case Errc::account_unknown:
    case Errc::currency_mismatch:
    case Errc::same_account:
    case Errc::bad_header:
      std::fprintf(stderr, "zf wallet %s: the bank refused the joint spend: %s (%s)%s\n", what, e.detail.c_str(),
                   std::string(errc_name(e.code)).c_str(),
                   e.detail.find("nothing") == std::string::npos && e.detail.find("no money") == std::string::npos
                       ? "; no money moved"
                       : "");
      return 2;
    default:
      return report(e, what);
  }
}

}  // namespace

void add_process_no_command(CLI::App* w, int& exit_code) {
  auto c = std::make_shared<Common>();
  auto bank = std::make_shared<std::string>();
  auto account = std::make_shared<std::string>();
  auto json = std::make_shared<bool>(false);
  auto* cmd = with_common(w->add_subcommand("process-no", "get a designated processing number from a bank for one "
                                                          "document of this SE (then --process-no N)"),
                          c);
  cmd->add_option("--bank", *bank, "bank id")->required();
  cmd->add_option("--account", *account, "your account at that bank (the SE signs a query for it)")->required();
  cmd->add_flag("--json", *json, "print the bank's answer as JSON: {process_no, se, expires_at}");
  cmd->callback([=, &exit_code] {
    auto wl = open_unlocked(*c, "process-no", exit_code);
    if (!wl) return;
    auto r = wl->process_number(*bank, *account);
    if (!r) return void(exit_code = report(r.error(), "process-no"));
    if (*json) return print(*r);
    std::printf("%s\nProcessing number for one document of %s at %s, until %s: pass it as --process-no.\n",
                r->value("process_no", "").c_str(), r->value("se", "").c_str(), bank->c_str(),
                out::local_date(r->value("expires_at", std::int64_t{0})).c_str());
  });
}

void add_events_command(CLI::App* w, int& exit_code) {
  auto c = std::make_shared<Common>();
  auto bank = std::make_shared<std::string>();
  auto account = std::make_shared<std::string>();
  auto after = std::make_shared<std::int64_t>(0);
  auto follow = std::make_shared<bool>(false);
  auto count = std::make_shared<int>(0);
  auto json = std::make_shared<bool>(false);
  auto* cmd = with_common(
      w->add_subcommand("events", "what moved on a bank account, with the bank's signed receipts (--follow to wait for more)"),
      c);
  cmd->add_option("--bank", *bank, "bank id")->required();
  cmd->add_option("--account", *account, "your account (or a joint account you co-manage)")->required();
  cmd->add_option("--after", *after, "only events after this feed position (`next` of an earlier answer)");
  cmd->add_flag("--follow", *follow, "keep waiting and print each new event as it comes (the bank answers as soon as one does)");
  cmd->add_option("--count", *count, "with --follow: stop after this many events")->check(CLI::Range(1, 1000000));
  cmd->add_flag("--json", *json, "print each answer as JSON: {account, next, events: [...]}");
  cmd->callback([=, &exit_code] {
    // Following, the SE is let go while the bank waits (another terminal may
    // use it) and unlocked again, with the same PIN, for the next query.
    std::string pin;
    auto wl = open_unlocked(*c, "events", exit_code, &pin);
    if (!wl) return;
    std::int64_t next = *after;
    int shown = 0;
    // Following, a question the bank did not answer (its connection closed for
    // room, the bank restarting) is asked again, a second later, this many
    // times in a row before giving up.
    constexpr int kMaxLost = 30;
    int lost = 0;
    for (;;) {
      if (!wl->unlocked())
        if (auto s = wl->unlock(pin); !s) return void(exit_code = report(s.error(), "events"));
      // Following, each question waits at the bank for the next event (long polling).
      const auto asked = std::chrono::steady_clock::now();
      auto r = wl->account_events(*bank, *account, next, *follow ? bank::kMaxEventWaitMs : 0);
      if (!r && *follow && r.error().code == Errc::unavailable && ++lost <= kMaxLost) {
        std::fprintf(stderr, "zf wallet events: %s; asking again\n", r.error().message().c_str());
        std::this_thread::sleep_for(std::chrono::seconds(1));
        continue;
      }
      if (!r) return void(exit_code = report(r.error(), "events"));
      lost = 0;
      // An empty answer long before the wait was over: the bank could not hold
      // the question (too many waiting). Asking again at once would only spin.
      if (*follow && (*r)["events"].empty() && std::chrono::steady_clock::now() - asked < std::chrono::seconds(1))
        std::this_thread::sleep_for(std::chrono::seconds(1));
      next = r->value("next", next);
      if (*json) {
        print(*r);
      } else {
        for (const auto& e : (*r)["events"]) std::fputs(out::feed_event_text(r->value("currency", ""), e).c_str(), stdout);
        if ((*r)["events"].empty() && !*follow) std::printf("No events on %s after %lld.\n", account->c_str(),
                                                              static_cast<long long>(next));
      }
      std::fflush(stdout);
      shown += static_cast<int>((*r)["events"].size());
      if (!*follow || (*count > 0 && shown >= *count)) return;
    }
  });
}

void add_joint_commands(CLI::App* w, int& exit_code) {
  auto* j = w->add_subcommand("joint", "spend from a joint account: one co-manager asks, the others sign, any sends it");
  j->require_subcommand(1);
  {
    auto c = std::make_shared<Common>();
    auto amount = std::make_shared<std::string>();
    auto bank = std::make_shared<std::string>();
    auto account = std::make_shared<std::string>();
    auto to = std::make_shared<std::string>();
    auto topup = std::make_shared<bool>(false);
    auto outp = std::make_shared<std::string>();
    auto json = std::make_shared<bool>(false);
    auto* cmd = with_common(j->add_subcommand("request", "sign a spend from a joint account you co-manage"), c);
    cmd->add_option("amount", *amount, "e.g. 'CNY 50.00'")->required();
    cmd->add_option("--bank", *bank, "bank id")->required();
    cmd->add_option("--account", *account, "the joint account")->required();
    auto* to_opt = cmd->add_option("--to", *to, "transfer to this account at the same bank");
    auto* topup_opt = cmd->add_flag("--topup", *topup, "top up this SE from the joint account instead");
    to_opt->excludes(topup_opt);
    cmd->add_option("--out", *outp, "write the spend here, for the other co-managers to sign")->required();
    cmd->add_flag("--json", *json, "print the spend's facts as JSON");
    cmd->callback([=, &exit_code] {
      auto a = Amount::parse(*amount);
      if (!a) return void(exit_code = report(amount_error(a.error()), "joint request"));
      if (to->empty() && !*topup)
        return void(exit_code = report(Error{Errc::missing_field, "to", "say --to ACCOUNT or --topup; nothing was signed"},
                                       "joint request"));
      auto wl = open_unlocked(*c, "joint request", exit_code);
      if (!wl) return;
      auto r = wl->joint_request(*a, *bank, *account, *topup ? "topup" : "transfer", *to);
      say_notices(*wl);
      if (!r) return void(exit_code = report_joint(r.error(), "joint request"));
      if (auto s = store::write_file_atomic(*outp, (*r)["spend"].get<std::string>() + "\n", 0600); !s)
        return void(exit_code = report(s.error(), "joint request"));
      if (*json) return print(*r);
      std::printf("Signed a spend of %s (%s); nothing has moved yet.\n", spend_words(*r).c_str(),
                  r->value("id", "").c_str());
      std::printf("Give %s to the other co-managers: each runs `zf wallet joint sign %s`; then any of you sends it "
                  "with `zf wallet joint submit %s`.\n",
                  outp->c_str(), outp->c_str(), outp->c_str());
    });
  }
  {
    auto c = std::make_shared<Common>();
    auto file = std::make_shared<std::string>();
    auto json = std::make_shared<bool>(false);
    auto* cmd = with_common(j->add_subcommand("sign", "add your SE's signature to a joint spend (the file is updated)"), c);
    cmd->add_option("file", *file, "the spend")->required();
    cmd->add_flag("--json", *json, "print the spend's facts as JSON");
    cmd->callback([=, &exit_code] {
      std::string text;
      auto wl = open_with_file(*c, *file, "joint sign", exit_code, text);
      if (!wl) return;
      auto r = wl->joint_sign(text);
      say_notices(*wl);
      if (!r) return void(exit_code = report_joint(r.error(), "joint sign"));
      if (auto s = store::write_file_atomic(*file, (*r)["spend"].get<std::string>() + "\n", 0600); !s)
        return void(exit_code = report(s.error(), "joint sign"));
      if (*json) return print(*r);
      std::printf("Signed the spend of %s (%s); it now carries %d signatures. Send it with `zf wallet joint submit "
                  "%s` once enough co-managers signed.\n",
                  spend_words(*r).c_str(), r->value("id", "").c_str(), r->value("signers", 0), file->c_str());
    });
  }
  {
    auto c = std::make_shared<Common>();
    auto file = std::make_shared<std::string>();
    auto json = std::make_shared<bool>(false);
    auto* cmd = with_common(j->add_subcommand("submit", "send a joint spend to the bank"), c);
    cmd->add_option("file", *file, "the spend with its signatures")->required();
    cmd->add_flag("--json", *json, "print the result as JSON");
    cmd->callback([=, &exit_code] {
      std::string text;
      auto wl = open_with_file(*c, *file, "joint submit", exit_code, text);
      if (!wl) return;
      auto r = wl->joint_submit(text);
      say_notices(*wl);
      if (!r) return void(exit_code = report_joint(r.error(), "joint submit"));
      if (*json) return print(*r);
      if (r->contains("receipt_id"))
        std::printf("Moved %s from joint account %s to %s (receipt %s).\n", money_of(*r).c_str(),
                    r->value("from", "").c_str(), r->value("to", "").c_str(), r->value("receipt_id", "").c_str());
      else if (r->contains("credited_minor"))
        std::printf("Topped up this SE with %s from the joint account; it now holds %s.\n",
                    out::money(r->value("currency", ""), r->value("credited_minor", std::int64_t{0})).c_str(),
                    out::money(r->value("currency", ""), r->value("balance_minor", std::int64_t{0})).c_str());
      else
        std::printf("The bank took the top-up of %s's SE from the joint account; that SE adds it when its terminal "
                    "runs `zf wallet joint submit %s`.\n",
                    r->value("to", "").c_str(), file->c_str());
    });
  }
}

}  // namespace zf::cli::wallet_cli
