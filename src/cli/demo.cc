// `zf demo`: a narrated tour on a fresh local network in a temporary directory.
// Today it covers the trust foundation: manufacturer, CA, enrollment of an SE
// and a bank, a signed document, refusals, revocation and the CRL.
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "ca/authority.h"
#include "ca/client.h"
#include "ca/manufacturer.h"
#include "cli/commands.h"
#include "core/document.h"
#include "net/process.h"

namespace zf::cli {
namespace fs = std::filesystem;
namespace {

class Narrator {
 public:
  void step(const std::string& text) { std::printf("\n== %d. %s\n", ++n_, text.c_str()); }
  void say(const std::string& text) { std::printf("   %s\n", text.c_str()); }
  // Records an expectation; the demo fails if any is false.
  void expect(bool ok, const std::string& what) {
    std::printf("   [%s] %s\n", ok ? "ok" : "FAILED", what.c_str());
    if (!ok) ++failures_;
  }
  int failures() const { return failures_; }

 private:
  int n_ = 0;
  int failures_ = 0;
};

std::string slurp(const fs::path& p) {
  std::ifstream in(p);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

template <class T>
bool refused_with(const Result<T>& r, Errc code) {
  return !r && r.error().code == code;
}

int run_demo(const std::string& keep_dir) {
  Narrator n;
  fs::path dir = keep_dir.empty() ? fs::temp_directory_path() / ("zf-demo-" + std::to_string(::getpid())) : fs::path(keep_dir);
  fs::remove_all(dir);
  fs::create_directories(dir);
  std::setvbuf(stdout, nullptr, _IOLBF, 0);
  std::printf("zhuanfu demo in %s\n", dir.c_str());

  n.step("The SE manufacturer creates its CA and burns an attestation key into two devices");
  auto mfr = dir / "manufacturer";
  if (auto s = ca::init_manufacturer(mfr.string(), "Demo SE Manufacturer"); !s) return n.expect(false, s.error().message()), 1;
  auto dev_alice = ca::make_device(mfr.string(), "se-alice-0001");
  auto dev_bob = ca::make_device(mfr.string(), "se-bob-0002");
  n.expect(dev_alice && dev_bob, "device identities se-alice-0001 and se-bob-0002 made");
  if (!dev_alice || !dev_bob) return 1;

  n.step("The certificate authority is created and trusts that manufacturer");
  ca::InitOptions init;
  init.dir = (dir / "ca").string();
  init.manufacturer_roots_pem = slurp(mfr / "manufacturer.pem");
  if (auto s = ca::init_ca(init); !s) return n.expect(false, s.error().message()), 1;
  auto root = Certificate::from_pem(slurp(dir / "ca" / "root.pem"));
  n.say("root: " + root->subject_cn() + ", serial " + root->serial_hex());

  n.step("`zf ca serve` starts as its own process on a free loopback port (HTTPS)");
  auto child = net::Child::spawn({net::self_exe(), "ca", "serve", "--dir", init.dir, "--port", "0", "--port-file",
                                  (dir / "ca" / "port").string()},
                                 (dir / "ca" / "ca.log").string());
  if (!child) return n.expect(false, child.error().message()), 1;
  auto port = net::wait_for_port_file((dir / "ca" / "port").string(), *child);
  if (!port) return n.expect(false, port.error().message()), 1;
  std::string url = "https://127.0.0.1:" + std::to_string(*port);
  n.say("CA listening at " + url + " (pid " + std::to_string(child->pid()) + ")");
  std::string admin_token = slurp(dir / "ca" / "admin.token");
  while (!admin_token.empty() && admin_token.back() == '\n') admin_token.pop_back();
  auto admin = ca::CaClient::connect(url, *root, admin_token);
  if (!admin) return n.expect(false, admin.error().message()), 1;

  n.step("Bank A becomes a registration authority and gets a custody certificate");
  auto ra_token = admin->add_registration_authority("bank-a");
  n.expect(ra_token.has_value(), "RA token issued to bank-a");
  auto bank_key = PrivateKey::generate();
  auto bank_cert = admin->request_certificate("custody", *make_csr_pem(*bank_key, {"bank-a", ""}));
  n.expect(bank_cert && bank_cert->has_role(Role::custody), "custody certificate for bank-a, serial " +
                                                                 (bank_cert ? bank_cert->serial_hex() : "-"));
  if (!ra_token || !bank_cert) return 1;
  auto ra = ca::CaClient::connect(url, *root, *ra_token);

  n.step("Bank A identifies Alice and obtains a one-time enrollment code for her");
  auto code = ra->enrollment_code("alice");
  n.expect(code.has_value(), "enrollment code for user alice");
  if (!code) return 1;

  n.step("Alice's SE generates its key inside, attests it with the device key, and is certified");
  auto se_key = PrivateKey::generate();
  KeySigner attest_signer(dev_alice->key);
  auto att = make_attestation(attest_signer, dev_alice->chain, se_key->public_key());
  auto csr = make_csr_pem(*se_key, {"se-alice-0001", "alice"});
  auto se_cert = ra->request_certificate("secure-element", *csr, *att, *code);
  n.expect(se_cert && se_cert->has_role(Role::secure_element) && se_cert->user_id() == "alice",
           "secure-element certificate for se-alice-0001 bound to user alice");
  if (!se_cert) return n.say(se_cert.error().message()), 1;

  n.step("The same enrollment code cannot enroll a second device");
  auto bob_key = PrivateKey::generate();
  KeySigner bob_attest(dev_bob->key);
  auto bob_att = make_attestation(bob_attest, dev_bob->chain, bob_key->public_key());
  auto reused = ra->request_certificate("secure-element", *make_csr_pem(*bob_key, {"se-bob-0002", "alice"}), *bob_att, *code);
  n.expect(refused_with(reused, Errc::enrollment_code_used), "refused: enrollment_code_used");

  n.step("A plain software key without device attestation is refused");
  auto soft_key = PrivateKey::generate();
  auto code2 = ra->enrollment_code("mallory");
  auto soft = ra->request_certificate("secure-element", *make_csr_pem(*soft_key, {"se-fake", "mallory"}), std::nullopt, *code2);
  n.expect(refused_with(soft, Errc::attestation_missing), "refused: attestation_missing");

  n.step("Alice's SE signs a payment note; anyone with the CA root verifies it");
  CertVerifier verifier(*root);
  auto crl = admin->crl();
  n.expect(crl.has_value(), "CRL fetched from the CA" + (crl ? std::string() : ": " + crl.error().message()));
  if (!crl) return 1;
  verifier.set_crl(*crl);
  KeySigner se_signer(*se_key);
  Json note{{"type", "payment.note"}, {"v", 1},           {"id", "se-alice-0001:1"},
            {"issuer", "se-alice-0001"}, {"seq", 1},     {"iat", std::time(nullptr)},
            {"amount", 1250},          {"currency", "CNY"}, {"payer", "se-alice-0001"},
            {"payee", "se-bob-0002"}};
  auto jws = sign_document(note, JwsSigner{&se_signer, {*se_cert, *root}});
  auto opened = open_signed_document(*jws, verifier, Role::secure_element);
  n.expect(opened.has_value(), "payment.note of " + (opened ? opened->doc.amount()->to_string() : "?") +
                                   " verified: chain, role secure-element, CRL");
  n.say("note (JWS, " + std::to_string(jws->size()) + " bytes): " + jws->substr(0, 60) + "...");

  n.step("A note signed by the bank's custody key is not e-cash: only SE certificates create value");
  KeySigner bank_signer(*bank_key);
  auto forged = sign_document(note, JwsSigner{&bank_signer, {*bank_cert, *root}});
  n.expect(refused_with(open_signed_document(*forged, verifier, Role::secure_element), Errc::cert_wrong_role),
           "refused: cert_wrong_role");

  n.step("Alice reports her device lost: the CA revokes it and publishes a new CRL");
  n.expect(admin->revoke(se_cert->serial_hex(), "keyCompromise").has_value(), "revoked " + se_cert->serial_hex());
  auto crl2 = admin->crl();
  n.expect(crl2.has_value(), "CRL fetched, next update in 24 h");
  if (!crl2) return 1;
  verifier.set_crl(*crl2);
  n.expect(refused_with(open_signed_document(*jws, verifier, Role::secure_element), Errc::cert_revoked),
           "the same note is now refused: cert_revoked");

  child->stop();
  std::printf("\n%s: %d expectation(s) failed\n", n.failures() == 0 ? "demo passed" : "DEMO FAILED", n.failures());
  if (keep_dir.empty()) fs::remove_all(dir);
  return n.failures() == 0 ? 0 : 1;
}

}  // namespace

void add_demo_command(CLI::App& app, int& exit_code) {
  auto* cmd = app.add_subcommand("demo", "narrated tour of zhuanfu on a fresh local network");
  auto keep = std::make_shared<std::string>();
  cmd->add_option("--keep", *keep, "use this directory and keep it afterwards");
  cmd->callback([keep, &exit_code] { exit_code = run_demo(*keep); });
}

}  // namespace zf::cli
