// `zf wallet escrow ...`: controlled payment (docs/se-apdu.md "Controlled
// payment"). The payer puts value in escrow for a payee; it ends once, when
// the payer releases the key and the payee accepts, or when the payee refunds.
#include <cstdio>

#include "cli/wallet_common.h"
#include "cli/wallet_output.h"
#include "store/file.h"

namespace zf::cli::wallet_cli {
namespace {

std::string money_of(const Json& j, const char* minor = "amount_minor") {
  return out::money(j.value("currency", std::string()), j.value(minor, std::int64_t{0}));
}

Status write_out(const std::string& path, const std::string& text) {
  return store::write_file_atomic(path, text + "\n", 0600);
}

}  // namespace

void add_escrow_commands(CLI::App* w, int& exit_code) {
  auto* e = w->add_subcommand("escrow", "controlled payment: value held until the payer releases it or the payee refunds");
  e->require_subcommand(1);
  {
    auto c = std::make_shared<Common>();
    auto amount = std::make_shared<std::string>();
    auto payee = std::make_shared<std::string>();
    auto outp = std::make_shared<std::string>();
    auto expires = std::make_shared<std::string>();
    auto json = std::make_shared<bool>(false);
    auto* cmd = with_common(e->add_subcommand("pay", "put an amount in escrow for a payee (the SE debits at once)"), c);
    cmd->add_option("amount", *amount, "e.g. 'CNY 12.50'")->required();
    cmd->add_option("--to", *payee, "the payee: an SE id, or a user id with one SE")->required();
    cmd->add_option("--out", *outp, "write the escrow note here")->required();
    cmd->add_option("--expires", *expires, "after this the payee can no longer accept (default 30d)");
    cmd->add_flag("--json", *json, "print the SE's answer as JSON");
    cmd->callback([=, &exit_code] {
      auto a = Amount::parse(*amount);
      if (!a) return void(exit_code = report(amount_error(a.error()), "escrow pay"));
      std::optional<std::int64_t> ttl;
      if (!expires->empty()) {
        auto t = parse_duration(*expires);
        if (!t) return void(exit_code = report(t.error(), "escrow pay"));
        ttl = *t;
      }
      auto wl = open_unlocked(*c, "escrow pay", exit_code);
      if (!wl) return;
      auto r = wl->escrow_pay(*a, *payee, ttl);
      say_notices(*wl);
      if (!r) return void(exit_code = report(r.error(), "escrow pay"));
      if (auto s = write_out(*outp, (*r)["note"].get<std::string>()); !s)
        return void(exit_code = report(Error{Errc::io_error, "",
                                             "the SE has put " + a->to_string() + " in escrow (" +
                                                 (*r)["id"].get<std::string>() + ") but the note could not be written to " +
                                                 *outp + "; it is kept in the outbox"},
                                       "escrow pay"));
      if (*json) return print(*r);
      const std::string id = (*r)["id"], to = (*r)["payee"];
      std::printf("Put %s in escrow for %s (note %s, code %s). The note is in %s: give it to %s.\n",
                  a->to_string().c_str(), to.c_str(), id.c_str(), (*r)["code"].get<std::string>().c_str(),
                  outp->c_str(), to.c_str());
      std::printf("To pay: `zf wallet escrow release %s --out KEY` and give KEY to %s. To cancel: %s runs "
                  "`zf wallet escrow refund %s`. %s can accept until %s.\n",
                  id.c_str(), to.c_str(), to.c_str(), outp->c_str(), to.c_str(),
                  out::local_date((*r)["exp"].get<std::int64_t>()).c_str());
    });
  }
  {
    auto c = std::make_shared<Common>();
    auto id = std::make_shared<std::string>();
    auto outp = std::make_shared<std::string>();
    auto* cmd = with_common(e->add_subcommand("release", "agree to pay: write the key the payee needs to accept"), c);
    cmd->add_option("id", *id, "the escrow note's id")->required();
    cmd->add_option("--out", *outp, "write the key here")->required();
    cmd->callback([=, &exit_code] {
      auto wl = open_unlocked(*c, "escrow release", exit_code);
      if (!wl) return;
      auto r = wl->escrow_release(*id);
      if (!r) return void(exit_code = report(r.error(), "escrow release"));
      if (auto s = write_out(*outp, (*r)["key"].dump()); !s) return void(exit_code = report(s.error(), "escrow release"));
      std::printf("Released %s: give %s to %s, who runs `zf wallet escrow accept NOTE %s`.\n", id->c_str(),
                  outp->c_str(), (*r)["payee"].get<std::string>().c_str(), outp->c_str());
    });
  }
  {
    auto c = std::make_shared<Common>();
    auto note = std::make_shared<std::string>();
    auto key = std::make_shared<std::string>();
    auto json = std::make_shared<bool>(false);
    auto* cmd = with_common(e->add_subcommand("accept", "take an escrow note with the key its payer released"), c);
    cmd->add_option("note", *note, "file holding the escrow note")->required();
    cmd->add_option("key", *key, "file holding the released key")->required();
    cmd->add_flag("--json", *json, "print the SE's answer as JSON");
    cmd->callback([=, &exit_code] {
      auto n = read_note(*note);
      auto k = read_note(*key);
      if (!n) return void(exit_code = report(n.error(), "escrow accept"));
      if (!k) return void(exit_code = report(k.error(), "escrow accept"));
      auto kj = parse_json_strict(*k);
      if (!kj) return void(exit_code = report(kj.error(), "escrow accept"));
      auto wl = open_unlocked(*c, "escrow accept", exit_code);
      if (!wl) return;
      auto r = wl->escrow_accept(*n, *kj);
      if (!r) return void(exit_code = report(r.error(), "escrow accept"));
      if (*json) return print(*r);
      std::printf("Accepted %s from %s (note %s, code %s). The SE now holds %s.\n",
                  money_of(*r, "credited_minor").c_str(), (*r)["payer"].get<std::string>().c_str(),
                  (*r)["note_id"].get<std::string>().c_str(), (*r)["code"].get<std::string>().c_str(),
                  money_of(*r, "balance_minor").c_str());
    });
  }
  {
    auto c = std::make_shared<Common>();
    auto note = std::make_shared<std::string>();
    auto outp = std::make_shared<std::string>();
    auto* cmd = with_common(e->add_subcommand("refund", "give an escrow note back: its payer takes the value back"), c);
    cmd->add_option("note", *note, "file holding the escrow note")->required();
    cmd->add_option("--out", *outp, "write the signed refund here")->required();
    cmd->callback([=, &exit_code] {
      std::string n;
      auto wl = open_with_file(*c, *note, "escrow refund", exit_code, n);
      if (!wl) return;
      auto r = wl->escrow_refund(n);
      if (!r) return void(exit_code = report(r.error(), "escrow refund"));
      if (auto s = write_out(*outp, (*r)["refund"].get<std::string>()); !s)
        return void(exit_code = report(s.error(), "escrow refund"));
      std::printf("Refunded %s: this SE will never accept it. Give %s to the payer, who runs "
                  "`zf wallet escrow close %s %s`.\n",
                  (*r)["note_id"].get<std::string>().c_str(), outp->c_str(), (*r)["note_id"].get<std::string>().c_str(),
                  outp->c_str());
    });
  }
  {
    auto c = std::make_shared<Common>();
    auto id = std::make_shared<std::string>();
    auto refund = std::make_shared<std::string>();
    auto json = std::make_shared<bool>(false);
    auto* cmd = with_common(
        e->add_subcommand("close", "end an escrow note: take it back on the payee's refund (or after its expiry), "
                                   "or close it once the payee accepted"),
        c);
    cmd->add_option("id", *id, "the escrow note's id")->required();
    cmd->add_option("refund", *refund, "file holding the payee's refund");
    cmd->add_flag("--json", *json, "print the SE's answer as JSON");
    cmd->callback([=, &exit_code] {
      std::string refund_jws;
      if (!refund->empty()) {
        auto r = read_note(*refund);
        if (!r) return void(exit_code = report(r.error(), "escrow close"));
        refund_jws = *r;
      }
      auto wl = open_unlocked(*c, "escrow close", exit_code);
      if (!wl) return;
      auto r = wl->escrow_close(*id, refund_jws);
      if (!r) return void(exit_code = report(r.error(), "escrow close"));
      if (*json) return print(*r);
      if ((*r)["outcome"] == "refunded")
        std::printf("Took back %s from escrow note %s. The SE now holds %s.\n", money_of(*r).c_str(), id->c_str(),
                    money_of(*r, "balance_minor").c_str());
      else
        std::printf("%s accepted escrow note %s (%s): it is closed.\n", (*r)["payee"].get<std::string>().c_str(),
                    id->c_str(), money_of(*r).c_str());
    });
  }
  {
    auto c = std::make_shared<Common>();
    auto json = std::make_shared<bool>(false);
    auto* cmd = with_common(e->add_subcommand("list", "the escrow notes this SE paid that are still open"), c);
    cmd->add_flag("--json", *json, "print them as JSON");
    cmd->callback([=, &exit_code] {
      auto wl = open_unlocked(*c, "escrow list", exit_code);
      if (!wl) return;
      auto r = wl->escrow_list();
      if (!r) return void(exit_code = report(r.error(), "escrow list"));
      if (*json) return print(*r);
      if (r->empty()) return void(std::printf("No escrow note of this SE is open.\n"));
      for (const auto& n : *r)
        std::printf("%s: %s for %s, code %s, %s; acceptable until %s.\n", n.value("id", std::string()).c_str(),
                    money_of(n, "amount").c_str(), n.value("payee", std::string()).c_str(),
                    n.value("code", std::string()).c_str(),
                    n.value("released", false) ? "key released" : "key not released",
                    out::local_date(n.value("exp", std::int64_t{0})).c_str());
    });
  }
}

}  // namespace zf::cli::wallet_cli
