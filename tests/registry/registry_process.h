// Real processes for registry tests: `zf ca serve` and `zf registry serve` on
// loopback port 0 with temporary state directories; the registry set up by
// `zf registry init`.
#pragma once

#include "ca/client.h"
#include "net/process.h"
#include "registry/client.h"
#include "registry_fixture.h"
#include "service_process.h"

namespace zf::test {

class RegistryProcesses : public ServiceProcesses {
 public:
  static constexpr const char* kRegistryId = "registry-1";

  net::Child reg;
  std::string reg_url;
  std::string reg_dir = (world.tmp.path() / "registry").string();
  std::string reg_token_file = (std::filesystem::path(reg_dir) / "admin.token").string();

  // Starts the CA process and initializes the registry directory with the CLI.
  void start_ca_and_init_registry() {
    start_ca();
    auto init = run_zf({"registry", "init", "--dir", reg_dir, "--id", kRegistryId, "--ca-url",
                        ca_url, "--ca-root", root_file, "--ca-token-file", ca_token_file},
                       world.tmp.path());
    ASSERT_EQ(init.exit_code, 0) << init.output;
  }

  // Starts (or restarts) `zf registry serve` on a fresh port.
  void start_registry(std::vector<std::string> extra = {}) {
    std::vector<std::string> args = {"registry", "serve", "--dir", reg_dir};
    args.insert(args.end(), extra.begin(), extra.end());
    ASSERT_NO_FATAL_FAILURE(spawn("registry", args, reg, reg_url));
  }

  std::string reg_token() const { return read_token(reg_token_file); }
  registry::RegistryClient admin() const {
    return *registry::RegistryClient::connect(reg_url, world.root(), kRegistryId, reg_token());
  }
  registry::RegistryClient anonymous() const {
    return *registry::RegistryClient::connect(reg_url, world.root(), kRegistryId, {});
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
