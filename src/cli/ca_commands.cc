// `zf ca ...` (the certificate authority) and `zf manufacturer ...` (the emulated SE factory).
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>

#include "ca/authority.h"
#include "ca/client.h"
#include "ca/manufacturer.h"
#include "ca/service.h"
#include "cli/commands.h"
#include "cli/util.h"
#include "store/file.h"

namespace zf::cli {
namespace {

// Where a command finds the CA and how it authenticates.
struct Remote {
  std::string url;
  std::string root_file;
  std::string token_file;

  void add_to(CLI::App* cmd, bool with_token) {
    cmd->add_option("--url", url, "CA base URL, e.g. https://127.0.0.1:8443")->required();
    cmd->add_option("--root", root_file, "the CA root certificate (PEM) to trust")->required()->check(CLI::ExistingFile);
    if (with_token)
      cmd->add_option("--token-file", token_file, "file holding a bearer token (or set ZF_TOKEN)");
  }
  Result<ca::CaClient> connect() const {
    auto root = Certificate::from_pem(read_all(root_file));
    if (!root) return std::unexpected(root.error());
    std::string token;
    if (!token_file.empty()) token = strip(read_all(token_file));
    else if (const char* env = std::getenv("ZF_TOKEN")) token = env;
    return ca::CaClient::connect(url, *root, token);
  }
};

}  // namespace

void add_ca_commands(CLI::App& app, int& exit_code) {
  auto* ca = app.add_subcommand("ca", "certificate authority");
  ca->require_subcommand(1);

  {
    auto* cmd = ca->add_subcommand("init", "create a CA state directory (root key 0600, TLS cert, admin token)");
    auto opts = std::make_shared<zf::ca::InitOptions>();
    auto trust = std::make_shared<std::string>();
    cmd->add_option("--dir", opts->dir, "state directory")->required();
    cmd->add_option("--name", opts->name, "root certificate common name");
    cmd->add_option("--trust-manufacturer", *trust, "PEM file of a manufacturer root to trust")->check(CLI::ExistingFile);
    cmd->callback([opts, trust, &exit_code] {
      if (!trust->empty()) opts->manufacturer_roots_pem = read_all(*trust);
      if (auto s = zf::ca::init_ca(*opts); !s) {
        exit_code = complain(s.error(), "ca init");
        return;
      }
      std::printf("CA created in %s (root.pem, admin.token)\n", opts->dir.c_str());
    });
  }
  {
    auto* cmd = ca->add_subcommand("serve", "serve the CA over HTTPS on 127.0.0.1");
    auto dir = std::make_shared<std::string>();
    auto port = std::make_shared<int>(0);
    auto port_file = std::make_shared<std::string>();
    cmd->add_option("--dir", *dir, "state directory")->required();
    cmd->add_option("--port", *port, "TCP port (0 picks a free one)");
    cmd->add_option("--port-file", *port_file, "write the bound port here");
    auto crl_validity = std::make_shared<std::int64_t>(86400);
    cmd->add_option("--crl-validity-s", *crl_validity, "how long each CRL is valid (default one day)")
        ->check(CLI::Range(std::int64_t{2}, std::int64_t{30} * 86400));
    cmd->callback([=, &exit_code] { exit_code = zf::ca::serve(*dir, *port, *port_file, *crl_validity); });
  }
  {
    auto* cmd = ca->add_subcommand("add-ra", "register a registration authority; prints its token once");
    auto dir = std::make_shared<std::string>();
    auto name = std::make_shared<std::string>();
    cmd->add_option("--dir", *dir, "state directory")->required();
    cmd->add_option("--name", *name, "RA name, e.g. bank-a")->required();
    cmd->callback([=, &exit_code] {
      auto authority = zf::ca::Authority::open(*dir);
      if (!authority) return void(exit_code = complain(authority.error(), "ca add-ra"));
      auto token = (*authority)->add_registration_authority(*name);
      if (!token) return void(exit_code = complain(token.error(), "ca add-ra"));
      std::printf("%s\n", token->c_str());
    });
  }
  {
    auto* cmd = ca->add_subcommand("trust-manufacturer", "trust a manufacturer root for SE attestation");
    auto dir = std::make_shared<std::string>();
    auto cert = std::make_shared<std::string>();
    cmd->add_option("--dir", *dir, "state directory")->required();
    cmd->add_option("--cert", *cert, "manufacturer root (PEM)")->required()->check(CLI::ExistingFile);
    cmd->callback([=, &exit_code] {
      auto authority = zf::ca::Authority::open(*dir);
      if (!authority) return void(exit_code = complain(authority.error(), "ca trust-manufacturer"));
      if (auto s = (*authority)->trust_manufacturer(read_all(*cert)); !s)
        exit_code = complain(s.error(), "ca trust-manufacturer");
    });
  }
  {
    auto* cmd = ca->add_subcommand("enroll-code", "as a registration authority, get a one-time enrollment code");
    auto remote = std::make_shared<Remote>();
    auto user = std::make_shared<std::string>();
    auto ttl = std::make_shared<std::int64_t>(86400);
    remote->add_to(cmd, true);
    cmd->add_option("--user", *user, "user id the code is for")->required();
    cmd->add_option("--ttl", *ttl, "seconds the code stays valid");
    cmd->callback([=, &exit_code] {
      auto c = remote->connect();
      if (!c) return void(exit_code = complain(c.error(), "ca enroll-code"));
      auto code = c->enrollment_code(*user, *ttl);
      if (!code) return void(exit_code = complain(code.error(), "ca enroll-code"));
      std::printf("%s\n", code->c_str());
    });
  }
  {
    auto* cmd = ca->add_subcommand("request",
                                   "generate a key (0600) and CSR and have the CA certify it; "
                                   "secure-element requests need --device and --enrollment-code");
    auto remote = std::make_shared<Remote>();
    auto role = std::make_shared<std::string>();
    auto cn = std::make_shared<std::string>();
    auto user = std::make_shared<std::string>();
    auto out = std::make_shared<std::string>();
    auto device = std::make_shared<std::string>();
    auto code = std::make_shared<std::string>();
    remote->add_to(cmd, true);
    cmd->add_option("--role", *role, "secure-element | custody | registry | tls-server | ca-admin")->required();
    cmd->add_option("--cn", *cn, "subject common name (SE id, bank id, host)");
    cmd->add_option("--user", *user, "user id (secure-element)");
    cmd->add_option("--out", *out, "write <out>.key and <out>.pem")->required();
    cmd->add_option("--device", *device, "device directory with attest.key/attest.pem (secure-element)");
    cmd->add_option("--enrollment-code", *code, "one-time enrollment code (secure-element)");
    cmd->callback([=, &exit_code] {
      auto key = PrivateKey::generate();
      if (!key) return void(exit_code = complain(key.error(), "ca request"));
      std::optional<Attestation> att;
      std::string subject = *cn;
      if (!device->empty()) {
        auto dev = zf::ca::load_device(*device);
        if (!dev) return void(exit_code = complain(dev.error(), "ca request"));
        if (subject.empty()) subject = dev->chain.front().subject_cn();
        KeySigner signer(dev->key);
        auto a = make_attestation(signer, dev->chain, key->public_key());
        if (!a) return void(exit_code = complain(a.error(), "ca request"));
        att = std::move(*a);
      }
      auto csr = make_csr_pem(*key, CsrInfo{subject, *user});
      if (!csr) return void(exit_code = complain(csr.error(), "ca request"));
      auto c = remote->connect();
      if (!c) return void(exit_code = complain(c.error(), "ca request"));
      auto cert = c->request_certificate(*role, *csr, att, *code);
      if (!cert) return void(exit_code = complain(cert.error(), "ca request"));
      if (auto s = store::save_private_key(*out + ".key", *key); !s) return void(exit_code = complain(s.error(), "ca request"));
      if (auto s = store::write_file_atomic(*out + ".pem", cert->pem(), 0644); !s)
        return void(exit_code = complain(s.error(), "ca request"));
      std::printf("%s\n", cert->serial_hex().c_str());
    });
  }
  {
    auto* cmd = ca->add_subcommand("revoke", "revoke a certificate (admin)");
    auto remote = std::make_shared<Remote>();
    auto serial = std::make_shared<std::string>();
    auto reason = std::make_shared<std::string>("unspecified");
    remote->add_to(cmd, true);
    cmd->add_option("--serial", *serial, "serial (hex)")->required();
    cmd->add_option("--reason", *reason, "why");
    cmd->callback([=, &exit_code] {
      auto c = remote->connect();
      if (!c) return void(exit_code = complain(c.error(), "ca revoke"));
      if (auto s = c->revoke(*serial, *reason); !s) exit_code = complain(s.error(), "ca revoke");
    });
  }
  {
    auto* cmd = ca->add_subcommand("crl", "fetch the current CRL (PEM)");
    auto remote = std::make_shared<Remote>();
    auto out = std::make_shared<std::string>();
    remote->add_to(cmd, false);
    cmd->add_option("--out", *out, "write the PEM here instead of stdout");
    cmd->callback([=, &exit_code] {
      auto c = remote->connect();
      if (!c) return void(exit_code = complain(c.error(), "ca crl"));
      auto crl = c->crl();
      if (!crl) return void(exit_code = complain(crl.error(), "ca crl"));
      if (out->empty()) std::fputs(crl->pem().c_str(), stdout);
      else std::ofstream(*out) << crl->pem();
    });
  }

  auto* mf = app.add_subcommand("manufacturer", "the emulated SE manufacturer (attestation keys)");
  mf->require_subcommand(1);
  {
    auto* cmd = mf->add_subcommand("init", "create the manufacturer CA");
    auto dir = std::make_shared<std::string>();
    auto name = std::make_shared<std::string>("zhuanfu SE Manufacturer");
    cmd->add_option("--dir", *dir, "manufacturer directory")->required();
    cmd->add_option("--name", *name, "manufacturer root common name");
    cmd->callback([=, &exit_code] {
      if (auto s = zf::ca::init_manufacturer(*dir, *name); !s) exit_code = complain(s.error(), "manufacturer init");
    });
  }
  {
    auto* cmd = mf->add_subcommand("device", "make a device attestation key and certificate for one SE");
    auto dir = std::make_shared<std::string>();
    auto se = std::make_shared<std::string>();
    auto out = std::make_shared<std::string>();
    cmd->add_option("--dir", *dir, "manufacturer directory")->required();
    cmd->add_option("--se-id", *se, "the SE's serial")->required();
    cmd->add_option("--out", *out, "device directory to write attest.key/attest.pem")->required();
    cmd->callback([=, &exit_code] {
      auto dev = zf::ca::make_device(*dir, *se);
      if (!dev) return void(exit_code = complain(dev.error(), "manufacturer device"));
      if (auto s = zf::ca::save_device(*dev, *out); !s) exit_code = complain(s.error(), "manufacturer device");
    });
  }
}

}  // namespace zf::cli
