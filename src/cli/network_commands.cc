// `zf up`, `zf down` and `zf audit`.
#include <cstdio>
#include <filesystem>

#include "cli/commands.h"
#include "cli/network.h"

namespace zf::cli {

void add_network_commands(CLI::App& app, int& exit_code) {
  {
    auto* cmd = app.add_subcommand("up", "create and start a local network: CA, a bank, SEs with their terminals");
    auto opts = std::make_shared<NetworkOptions>();
    cmd->add_option("dir", opts->dir, "network directory")->required();
    cmd->add_option("--users", opts->users, "one SE and terminal per user")->delimiter(',');
    cmd->add_option("--bank", opts->bank_id, "bank id");
    cmd->add_option("--cash-in", opts->cash_in, "initial money in each user's account");
    cmd->add_option("--pin", opts->pin, "PIN set on every SE");
    cmd->add_option("--puk", opts->puk, "PUK set on every SE (unblocks a PIN after three wrong tries)");
    cmd->add_option("--postgres", opts->postgres,
                    "keep the bank's books and the registry's records in this PostgreSQL database "
                    "(postgresql://user:password@host/db), each in a new schema; default: SQLite files");
    cmd->callback([opts, &exit_code] {
      auto say = [](const std::string& line) { std::printf("%s\n", line.c_str()); };
      if (std::filesystem::exists(std::filesystem::path(opts->dir) / "network.json")) {
        // An existing network: start what is stopped, keep every balance and key.
        auto net = network_start(opts->dir, {}, say);
        if (!net) {
          std::fprintf(stderr, "zf up: %s\n", net.error().message().c_str());
          exit_code = 2;
          return;
        }
        std::printf("\nnetwork up again in %s, with the state it had.\n", net->dir.c_str());
        return;
      }
      auto net = network_up(*opts, say);
      if (!net) {
        std::fprintf(stderr, "zf up: %s\n", net.error().message().c_str());
        exit_code = 2;
        return;
      }
      std::printf("\nnetwork up in %s. Every SE has PIN %s and PUK %s (zf wallet unblock takes the PUK).\nTry:\n",
                  net->dir.c_str(), opts->pin.c_str(), opts->puk.c_str());
      const auto& a = net->ses.front();
      std::printf("  ZF_PIN=%s zf wallet balance --wallet %s\n", opts->pin.c_str(), a.wallet.c_str());
      std::printf("  ZF_PIN=%s zf wallet topup 'CNY 100.00' --wallet %s --bank %s --account %s\n", opts->pin.c_str(),
                  a.wallet.c_str(), net->bank_id.c_str(), a.account.c_str());
      if (net->ses.size() > 1)
        std::printf("  ZF_PIN=%s zf wallet pay 'CNY 12.50' --wallet %s --to %s --out note.jws\n", opts->pin.c_str(),
                    a.wallet.c_str(), net->ses[1].se_id.c_str());
      std::printf("  zf audit %s\n  zf down %s\n", net->dir.c_str(), net->dir.c_str());
    });
  }
  {
    auto* cmd = app.add_subcommand("down", "stop a local network's processes");
    auto dir = std::make_shared<std::string>();
    cmd->add_option("dir", *dir, "network directory")->required();
    cmd->callback([dir, &exit_code] {
      auto say = [](const std::string& line) { std::fprintf(stderr, "%s\n", line.c_str()); };
      if (auto s = network_down(*dir, say); !s) {
        std::fprintf(stderr, "zf down: %s\n", s.error().message().c_str());
        exit_code = 2;
      }
    });
  }
  {
    auto* cmd = app.add_subcommand(
        "audit", "check every bank's books, system-wide e-cash conservation, notes in flight and registry alerts");
    auto dir = std::make_shared<std::string>();
    cmd->add_option("dir", *dir, "network directory")->required();
    cmd->callback([dir, &exit_code] {
      auto r = network_audit(*dir);
      if (!r) {
        std::fprintf(stderr, "zf audit: %s\n", r.error().message().c_str());
        exit_code = 2;
        return;
      }
      std::printf("%s\n", r->dump(2).c_str());
      exit_code = (*r)["ok"].get<bool>() ? 0 : 1;
    });
  }
}

}  // namespace zf::cli
