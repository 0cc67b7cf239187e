// Real processes for service tests (bank, registry): `zf ca serve` and a
// service on loopback port 0 with temporary state directories, and the `zf`
// command line. Needs ZF_BINARY (the path of the zf executable under test).
#pragma once

#include <sys/wait.h>

#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "ca/client.h"
#include "ca_fixture.h"
#include "net/process.h"

namespace zf::test {

struct CommandResult {
  int exit_code;
  std::string output;
};

// Runs the zf binary with `args`; captures stdout+stderr in `dir`/`out_name`.
inline CommandResult run_zf(const std::vector<std::string>& args, const std::filesystem::path& dir,
                            const std::string& out_name = "cmd.out") {
  std::string cmd = ZF_BINARY;
  for (const auto& a : args) cmd += " '" + a + "'";
  cmd += " > '" + (dir / out_name).string() + "' 2>&1";
  int status = std::system(cmd.c_str());
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, slurp(dir / out_name)};
}

// The first line of a token file.
inline std::string read_token(const std::string& path) {
  std::string t = slurp(path);
  while (!t.empty() && (t.back() == '\n' || t.back() == '\r')) t.pop_back();
  return t;
}

// A CA world with its `zf ca serve` process; services start next to it.
class ServiceProcesses {
 public:
  CaWorld world;
  net::Child ca;
  std::string ca_url;
  std::string root_file = (std::filesystem::path(world.ca_dir) / "root.pem").string();
  std::string ca_token_file = (std::filesystem::path(world.ca_dir) / "admin.token").string();

  void start_ca() {
    ASSERT_NO_FATAL_FAILURE(
        spawn("ca", {"ca", "serve", "--dir", world.ca_dir}, ca, ca_url));
  }

  // Starts `zf <args> --port 0 --port-file <tmp>/<name>.port`, logging to
  // <tmp>/<name>.log, and waits until it serves; `url` is its base URL.
  void spawn(const std::string& name, std::vector<std::string> args, net::Child& child,
             std::string& url) {
    std::string port_file = (world.tmp.path() / (name + ".port")).string();
    std::filesystem::remove(port_file);
    args.insert(args.begin(), ZF_BINARY);
    args.insert(args.end(), {"--port", "0", "--port-file", port_file});
    std::string log = (world.tmp.path() / (name + ".log")).string();
    auto spawned = net::Child::spawn(args, log);
    ASSERT_TRUE(spawned);
    child = std::move(*spawned);
    auto port = net::wait_for_port_file(port_file, child);
    ASSERT_TRUE(port) << port.error().message() << slurp(log);
    url = "https://127.0.0.1:" + std::to_string(*port);
  }

  ca::CaClient ca_admin() const {
    return *ca::CaClient::connect(ca_url, world.root(), world.admin_token());
  }
};

}  // namespace zf::test
