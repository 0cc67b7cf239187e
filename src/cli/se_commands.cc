// `zf se ...`: the emulated secure element (one process per device).
#include <cstdio>

#include "cli/commands.h"
#include "se_host/device.h"
#include "wallet/se_client.h"

namespace zf::cli {

void add_se_commands(CLI::App& app, int& exit_code) {
  auto* se = app.add_subcommand("se", "emulated secure element (one process per device)");
  se->require_subcommand(1);
  {
    auto* cmd = se->add_subcommand("create", "manufacture an SE: attestation identity, sealing key, sealed state");
    auto dir = std::make_shared<std::string>();
    auto id = std::make_shared<std::string>();
    auto mfr = std::make_shared<std::string>();
    cmd->add_option("--dir", *dir, "device directory")->required();
    cmd->add_option("--se-id", *id, "the SE's serial")->required();
    cmd->add_option("--manufacturer", *mfr, "manufacturer directory (zf manufacturer init)")->required();
    cmd->callback([=, &exit_code] {
      if (auto s = zf::se::Device::create(*dir, *id, *mfr); !s) {
        std::fprintf(stderr, "zf se create: %s\n", s.error().message().c_str());
        exit_code = 2;
      }
    });
  }
  {
    auto* cmd = se->add_subcommand("serve", "serve the SE's APDU link on 127.0.0.1");
    auto dir = std::make_shared<std::string>();
    auto port = std::make_shared<int>(0);
    auto port_file = std::make_shared<std::string>();
    cmd->add_option("--dir", *dir, "device directory")->required();
    cmd->add_option("--port", *port, "TCP port (0 picks a free one)");
    cmd->add_option("--port-file", *port_file, "write the bound port here");
    auto nearby = std::make_shared<std::string>();
    cmd->add_option("--nearby", *nearby,
                    "the directory that stands for radio range: SEs that share it can pay face to face "
                    "(default: 'nearby' beside --dir)");
    cmd->callback([=, &exit_code] { exit_code = zf::se::serve(*dir, *port, *port_file, *nearby); });
  }
  {
    auto* cmd = se->add_subcommand("apdu", "send raw APDUs (hex) to an SE and print the responses");
    auto port = std::make_shared<int>(0);
    auto apdus = std::make_shared<std::vector<std::string>>();
    cmd->add_option("--port", *port, "the SE's APDU port")->required();
    cmd->add_option("apdu", *apdus, "hex APDUs, sent in order on one link")->required();
    cmd->callback([=, &exit_code] {
      auto link = net::ApduClient::connect("127.0.0.1", *port);
      if (!link) {
        std::fprintf(stderr, "zf se apdu: %s\n", link.error().message().c_str());
        exit_code = 2;
        return;
      }
      for (const auto& hex : *apdus) {
        auto raw = hex_decode(hex);
        if (!raw) {
          std::fprintf(stderr, "zf se apdu: not hex: %s\n", hex.c_str());
          exit_code = 2;
          return;
        }
        auto reply = link->transmit(*raw);
        if (!reply) {
          std::fprintf(stderr, "zf se apdu: %s\n", reply.error().message().c_str());
          exit_code = 2;
          return;
        }
        std::printf("%s\n", hex_encode(*reply).c_str());
      }
    });
  }
}

}  // namespace zf::cli
