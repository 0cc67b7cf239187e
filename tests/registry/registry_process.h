// Real processes for registry tests: `zf ca serve` and `zf registry serve` on
// loopback port 0 with temporary state directories; the registry set up by
// `zf registry init`.
#pragma once

#include <sys/wait.h>

#include <cstdlib>

#include "ca/client.h"
#include "net/process.h"
#include "registry/client.h"
#include "registry_fixture.h"

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

class RegistryProcesses {
 public:
  static constexpr const char* kRegistryId = "registry-1";

  CaWorld world;
  net::Child ca;
  net::Child reg;
  std::string ca_url;
  std::string reg_url;
  std::string reg_dir = (world.tmp.path() / "registry").string();
  std::string root_file = (std::filesystem::path(world.ca_dir) / "root.pem").string();
  std::string ca_token_file = (std::filesystem::path(world.ca_dir) / "admin.token").string();
  std::string reg_token_file = (std::filesystem::path(reg_dir) / "admin.token").string();

  // Starts the CA process and initializes the registry directory with the CLI.
  void start_ca_and_init_registry() {
    start_ca();
    auto init = run_zf({"registry", "init", "--dir", reg_dir, "--id", kRegistryId, "--ca-url",
                        ca_url, "--ca-root", root_file, "--ca-token-file", ca_token_file},
                       world.tmp.path());
    ASSERT_EQ(init.exit_code, 0) << init.output;
  }

  void start_ca() {
    std::string port_file = (world.tmp.path() / "ca.port").string();
    std::filesystem::remove(port_file);
    auto child = net::Child::spawn(
        {ZF_BINARY, "ca", "serve", "--dir", world.ca_dir, "--port", "0", "--port-file", port_file},
        (world.tmp.path() / "ca.log").string());
    ASSERT_TRUE(child);
    ca = std::move(*child);
    auto port = net::wait_for_port_file(port_file, ca);
    ASSERT_TRUE(port) << port.error().message() << slurp(world.tmp.path() / "ca.log");
    ca_url = "https://127.0.0.1:" + std::to_string(*port);
  }

  // Starts (or restarts) `zf registry serve` on a fresh port.
  void start_registry(std::vector<std::string> extra = {}) {
    std::string port_file = (world.tmp.path() / "registry.port").string();
    std::filesystem::remove(port_file);
    std::vector<std::string> argv = {ZF_BINARY, "registry", "serve",       "--dir",  reg_dir,
                                     "--port",  "0",        "--port-file", port_file};
    argv.insert(argv.end(), extra.begin(), extra.end());
    auto child = net::Child::spawn(argv, (world.tmp.path() / "registry.log").string());
    ASSERT_TRUE(child);
    reg = std::move(*child);
    auto port = net::wait_for_port_file(port_file, reg);
    ASSERT_TRUE(port) << port.error().message() << slurp(world.tmp.path() / "registry.log");
    reg_url = "https://127.0.0.1:" + std::to_string(*port);
  }

  std::string reg_token() const {
    std::string t = slurp(reg_token_file);
    while (!t.empty() && t.back() == '\n') t.pop_back();
    return t;
  }
  registry::RegistryClient admin() const {
    return *registry::RegistryClient::connect(reg_url, world.root(), reg_token());
  }
  registry::RegistryClient anonymous() const {
    return *registry::RegistryClient::connect(reg_url, world.root());
  }
  ca::CaClient ca_admin() const {
    return *ca::CaClient::connect(ca_url, world.root(), world.admin_token());
  }

  // Certificates over HTTPS from the CA process.
  IssueFn issuer() {
    return [this](const std::string& role, const std::string& csr,
                  const std::optional<Attestation>& att,
                  const std::string& code) -> Result<Certificate> {
      if (att)
        return ca::CaClient::connect(ca_url, world.root())
            ->request_certificate(role, csr, att, code);
      return ca_admin().request_certificate(role, csr);
    };
  }
  Processor bank(const std::string& id) { return certified(issuer(), world, id); }
  Processor se(const std::string& se_id, const std::string& user) {
    return enrolled_se(
        issuer(), [this](const std::string& u) { return ca_admin().enrollment_code(u, 600); },
        world, se_id, user);
  }

  // Opens a record as anyone with the root would.
  registry::RecordView open(const std::string& jws) const {
    return open_ok(jws, world.root(), kRegistryId);
  }
};

}  // namespace zf::test
