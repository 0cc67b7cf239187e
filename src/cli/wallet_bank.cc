// `zf wallet transfer`: operations between bank accounts that the SE signs and
// the bank carries out (docs/wallet-cli.md, docs/bank-api.md "Account transfer").
#include <cstdio>

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
  auto* cmd = with_common(
      w->add_subcommand("transfer", "move money from your bank account to another account at the same bank"), c);
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
    auto r = wl->transfer(*a, *bank, *from, *to);
    say_notices(*wl);
    if (!r) {
      const Error& e = r.error();
      // The library's words say what moved; the bank's own refusals get the account in words.
      std::string text = e.message();
      if (e.code == Errc::insufficient_funds || e.code == Errc::not_owner || e.code == Errc::account_unknown ||
          e.code == Errc::currency_mismatch || e.code == Errc::same_account)
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

}  // namespace zf::cli::wallet_cli
