// zf: one command for every party of zhuanfu (DESIGN.md §9).
#include <openssl/ssl.h>

#include <sys/stat.h>

#include <csignal>

#include "cli/commands.h"

int main(int argc, char** argv) {
  std::signal(SIGPIPE, SIG_IGN);
  // Everything zf writes (databases and their WAL/SHM files, keys, state,
  // history, logs) is for the party that runs it alone; the services started
  // by `zf up` inherit this.
  ::umask(077);
  CLI::App app{"zhuanfu (转付): e-cash in secure elements, banks, a CA and a transfer-record registry"};
  app.require_subcommand(1);
  int exit_code = 0;
  zf::cli::add_ca_commands(app, exit_code);
  zf::cli::add_bank_commands(app, exit_code);
  zf::cli::add_registry_commands(app, exit_code);
  zf::cli::add_se_commands(app, exit_code);
  zf::cli::add_wallet_commands(app, exit_code);
  zf::cli::add_network_commands(app, exit_code);
  zf::cli::add_demo_command(app, exit_code);
  zf::cli::add_bench_command(app, exit_code);
  CLI11_PARSE(app, argc, argv);
  return exit_code;
}
