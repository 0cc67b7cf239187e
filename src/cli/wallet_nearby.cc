// `zf wallet` face to face (docs/se-apdu.md "Face-to-face payment"): pay a
// person standing next to you with no network, and the follow-ups that end a
// payment whose answer never came.
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <iostream>

#include "cli/wallet_common.h"
#include "cli/wallet_output.h"
#include "core/document.h"
#include "core/jose.h"
#include "store/file.h"

namespace zf::cli::wallet_cli {
namespace {

std::string money_of(const Json& j, const char* minor = "amount_minor") {
  return out::money(j.value("currency", std::string()), j.value(minor, std::int64_t{0}));
}

// What an undelivered payment means, and what ends it.
std::string undelivered_text(const Json& r) {
  return money_of(r) + " left this SE for " + r.value("payee", std::string("the payee")) +
         ", but its answer never came" + (r.contains("detail") ? " (" + r.value("detail", std::string()) + ")" : "") +
         ". The payment is kept in this SE as undelivered: " + r.value("payee", std::string("the payee")) +
         " can receive it once, or refuse it, which brings the value back. `zf wallet undelivered --out DIR` writes "
         "it to a file to hand over.";
}

}  // namespace

void add_nearby_commands(CLI::App* w, int& exit_code) {
  {
    auto c = std::make_shared<Common>();
    auto span = std::make_shared<std::string>("2m");
    auto json = std::make_shared<bool>(false);
    auto* cmd = with_common(
        w->add_subcommand("receive-nearby", "let a payer standing nearby find this SE and pay it (no network)"), c);
    cmd->add_option("--for", *span, "how long to wait for the payment: 90s, 5m (at most 10m)");
    cmd->add_flag("--json", *json, "print the result as JSON");
    cmd->callback([=, &exit_code] {
      auto seconds = parse_duration(*span);
      if (!seconds || *seconds > 600)
        return void(exit_code = report(Error{Errc::bad_field, "for", "wait 1 s to 10 minutes, e.g. 90s or 5m"},
                                       "receive-nearby"));
      auto wl = open_unlocked(*c, "receive-nearby", exit_code);
      if (!wl) return;
      auto me = wl->se().info();
      const std::string se_id = me ? me->value("se_id", std::string("this SE")) : "this SE";
      if (!*json)
        std::printf("%s is taking face-to-face payments for %s. The payer runs `zf wallet pay-nearby AMOUNT --to %s`.\n",
                    se_id.c_str(), out::duration_words(*seconds).c_str(), se_id.c_str());
      std::fflush(stdout);
      auto r = wl->receive_nearby(*seconds, [&](const Json& st) {
        if (*json) return;
        std::printf("%s is paying: code %s. It must be the code on the payer's screen.\n",
                    st.value("payer", std::string("A payer")).c_str(), st.value("code", std::string()).c_str());
        std::fflush(stdout);
      });
      if (!r) return void(exit_code = report(r.error(), "receive-nearby"));
      if (*json) return print(*r);
      if (r->value("received", false)) {
        auto info = wl->se().info();
        const std::string cur = r->value("currency", std::string());
        std::printf("Received %s from %s face to face%s. ", money_of(*r).c_str(),
                    r->value("counterparty", std::string("?")).c_str(),
                    r->contains("code") ? (" (code " + r->value("code", std::string()) + ")").c_str() : "");
        if (info && (*info)["balances"].contains(cur))
          std::printf("The SE now holds %s. ", out::money(cur, (*info)["balances"][cur].get<std::int64_t>()).c_str());
        std::printf("It can be spent once this terminal has been online and run `zf wallet reconcile`.\n");
      } else if (r->value("op", std::string()) == "f2f.refused") {
        std::printf("A payment from %s could not be taken (over this SE's limits) and was refused; the payer has "
                    "its value back. Nothing changed here.\n",
                    r->value("counterparty", std::string("?")).c_str());
      } else {
        std::printf("No payment arrived in %s; nothing changed.\n", out::duration_words(*seconds).c_str());
        exit_code = 1;
      }
    });
  }
  {
    auto c = std::make_shared<Common>();
    auto amount = std::make_shared<std::string>();
    auto payee = std::make_shared<std::string>();
    auto yes = std::make_shared<bool>(false);
    auto json = std::make_shared<bool>(false);
    auto* cmd = with_common(
        w->add_subcommand("pay-nearby", "pay an SE standing nearby, face to face, with no network"), c);
    cmd->add_option("amount", *amount, "e.g. 'CNY 12.50'")->required();
    cmd->add_option("--to", *payee, "the payee's SE id, as its screen shows it")->required();
    cmd->add_flag("--yes", *yes, "pay without asking whether the codes match (scripts)");
    cmd->add_flag("--json", *json, "print the SE's answer as JSON");
    cmd->callback([=, &exit_code] {
      auto a = Amount::parse(*amount);
      if (!a) return void(exit_code = report(amount_error(a.error()), "pay-nearby"));
      auto wl = open_unlocked(*c, "pay-nearby", exit_code);
      if (!wl) return;
      auto r = wl->pay_nearby(*a, *payee, [&](const Json& agreed) {
        const std::string code = agreed.value("code", std::string());
        if (*yes) {
          if (!*json) std::printf("%s (%s) answered; code %s.\n", agreed.value("payee", std::string()).c_str(),
                                  agreed.value("payee_user", std::string()).c_str(), code.c_str());
          return true;
        }
        std::printf("%s (%s) answered. Code %s: does its screen show the same code? Pay %s? [y/N] ",
                    agreed.value("payee", std::string()).c_str(), agreed.value("payee_user", std::string()).c_str(),
                    code.c_str(), a->to_string().c_str());
        std::fflush(stdout);
        std::string line;
        if (!std::getline(std::cin, line)) return false;
        return line == "y" || line == "Y" || line == "yes";
      });
      say_notices(*wl);
      if (!r) return void(exit_code = report(r.error(), "pay-nearby"));
      if (*json) return print(*r);
      const std::string outcome = r->value("outcome", std::string());
      if (outcome == "delivered") {
        std::printf("Paid %s to %s face to face (code %s). The SE now holds %s.\n", money_of(*r).c_str(),
                    r->value("payee", std::string()).c_str(), r->value("code", std::string()).c_str(),
                    money_of(*r, "balance_minor").c_str());
      } else if (outcome == "refused") {
        std::printf("%s refused the payment (%s); the %s is back in this SE, which holds %s. Once online, `zf wallet "
                    "reconcile` settles it at the registry so that it can be spent online again.\n",
                    r->value("payee", std::string()).c_str(), r->value("reason", std::string()).c_str(),
                    money_of(*r).c_str(), money_of(*r, "balance_minor").c_str());
      } else {
        std::printf("%s\n", undelivered_text(*r).c_str());
        exit_code = 3;
      }
    });
  }
  {
    auto c = std::make_shared<Common>();
    auto dir = std::make_shared<std::string>();
    auto json = std::make_shared<bool>(false);
    auto* cmd = with_common(
        w->add_subcommand("undelivered", "face-to-face payments this SE paid whose answer never came"), c);
    cmd->add_option("--out", *dir, "write each payment to DIR/<id>.f2f for the payee");
    cmd->add_flag("--json", *json, "print them as JSON");
    cmd->callback([=, &exit_code] {
      auto wl = open_unlocked(*c, "undelivered", exit_code);
      if (!wl) return;
      auto st = wl->nearby_state();
      if (!st) return void(exit_code = report(st.error(), "undelivered"));
      const Json& list = (*st)["undelivered"];
      if (!dir->empty()) {
        std::error_code ec;
        std::filesystem::create_directories(*dir, ec);
        for (const auto& u : list) {
          std::string name = u.value("id", std::string());
          for (char& ch : name)
            if (ch == ':') ch = '_';
          auto path = (std::filesystem::path(*dir) / (name + ".f2f")).string();
          if (auto s = store::write_file_atomic(path, u.value("payment", std::string()) + "\n", 0600); !s)
            return void(exit_code = report(s.error(), "undelivered"));
          if (!*json)
            std::printf("%s: %s to %s, written to %s. The payee runs `zf wallet receive %s` (online) or "
                        "`zf wallet refuse %s`; its answer comes back with `zf wallet answer FILE`.\n",
                        u.value("id", std::string()).c_str(), money_of(u, "amount").c_str(),
                        u.value("payee", std::string()).c_str(), path.c_str(), path.c_str(), path.c_str());
        }
      }
      if (*json) return print(list);
      if (list.empty()) return void(std::printf("Every face-to-face payment of this SE has its answer.\n"));
      if (dir->empty())
        for (const auto& u : list)
          std::printf("%s: %s to %s, paid %s, no answer yet (`--out DIR` writes it out).\n",
                      u.value("id", std::string()).c_str(), money_of(u, "amount").c_str(),
                      u.value("payee", std::string()).c_str(), out::local_date(u.value("iat", std::int64_t{0})).c_str());
    });
  }
  {
    auto c = std::make_shared<Common>();
    auto file = std::make_shared<std::string>();
    auto json = std::make_shared<bool>(false);
    auto* cmd = with_common(
        w->add_subcommand("answer", "hand the payee's answer (ack or refusal) to the SE that paid face to face"), c);
    cmd->add_option("answer", *file, "file holding the answer ('-' for stdin)")->required();
    cmd->add_flag("--json", *json, "print the SE's answer as JSON");
    cmd->callback([=, &exit_code] {
      std::string text;
      auto wl = open_with_file(*c, *file, "answer", exit_code, text);
      if (!wl) return;
      auto r = wl->apply_answer(text);
      if (!r) return void(exit_code = report(r.error(), "answer"));
      if (*json) return print(*r);
      if (r->value("outcome", std::string()) == "refused")
        std::printf("%s refused payment %s: the %s is back in this SE, which holds %s. Once online, `zf wallet "
                    "reconcile` settles it at the registry so that it can be spent online again.\n",
                    r->value("payee", std::string()).c_str(), r->value("id", std::string()).c_str(),
                    money_of(*r).c_str(), money_of(*r, "balance_minor").c_str());
      else
        std::printf("%s received payment %s (%s): it is closed.\n", r->value("payee", std::string()).c_str(),
                    r->value("id", std::string()).c_str(), money_of(*r).c_str());
    });
  }
  {
    auto c = std::make_shared<Common>();
    auto file = std::make_shared<std::string>();
    auto reason = std::make_shared<std::string>();
    auto outp = std::make_shared<std::string>();
    auto* cmd = with_common(
        w->add_subcommand("refuse", "refuse a face-to-face payment this SE never took; its payer gets the value back"),
        c);
    cmd->add_option("payment", *file, "file holding the payment ('-' for stdin)")->required();
    cmd->add_option("--reason", *reason, "why, in words the payer reads");
    cmd->add_option("--out", *outp, "write the signed answer here (default stdout)");
    cmd->callback([=, &exit_code] {
      std::string text;
      auto wl = open_with_file(*c, *file, "refuse", exit_code, text);
      if (!wl) return;
      auto r = wl->refuse(text, *reason);
      if (!r) return void(exit_code = report(r.error(), "refuse"));
      const std::string answer = r->value("answer", std::string());
      const bool received = r->value("outcome", std::string()) == "received";
      if (outp->empty()) {
        std::printf("%s\n", answer.c_str());
        return;
      }
      if (auto s = store::write_file_atomic(*outp, answer + "\n", 0600); !s)
        return void(exit_code = report(s.error(), "refuse"));
      std::printf(received ? "This SE had already received that payment, so it answers with its receipt, not a "
                             "refusal. Give %s to the payer: `zf wallet answer %s`.\n"
                           : "Refused: this SE will never take that payment. Give %s to the payer: `zf wallet "
                             "answer %s` brings the value back to it.\n",
                  outp->c_str(), outp->c_str());
    });
  }
  {
    auto c = std::make_shared<Common>();
    auto json = std::make_shared<bool>(false);
    auto* cmd = with_common(
        w->add_subcommand("reconcile", "settle at the registry what this SE took face to face, so it can be spent"), c);
    cmd->add_flag("--json", *json, "print the result as JSON");
    cmd->callback([=, &exit_code] {
      auto wl = open_unlocked(*c, "reconcile", exit_code);
      if (!wl) return;
      auto r = wl->reconcile();
      if (!r) return void(exit_code = report(r.error(), "reconcile"));
      if (*json) return print(*r);
      if ((*r)["settled"].empty() && (*r)["revoked"].empty() && (*r)["errors"].empty())
        return void(std::printf("Nothing to settle: this SE holds no unsettled face-to-face payments.\n"));
      for (const auto& s : (*r)["settled"])
        if (s.value("refund", false))
          std::printf("Settled %s that %s refused (%s): it can be spent now.\n", money_of(s).c_str(),
                      s.value("payee", std::string()).c_str(), s.value("id", std::string()).c_str());
        else
          std::printf("Settled %s from %s (%s): it can be spent now.\n", money_of(s).c_str(),
                      s.value("payer", std::string()).c_str(), s.value("id", std::string()).c_str());
      for (const auto& s : (*r)["revoked"])
        std::printf("Taken back %s from %s (%s): %s.\n", money_of(s, "removed_minor").c_str(),
                    s.value("payer", std::string()).c_str(), s.value("id", std::string()).c_str(),
                    s.value("detail", std::string()).c_str());
      for (const auto& e : (*r)["errors"]) {
        std::printf("Not settled %s: %s (%s); run `zf wallet reconcile` again later.\n",
                    e.value("id", std::string()).c_str(), e.value("detail", std::string()).c_str(),
                    e.value("code", std::string()).c_str());
        exit_code = 2;
      }
    });
  }
}

}  // namespace zf::cli::wallet_cli
