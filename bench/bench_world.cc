#include "bench_world.h"

#include <stdlib.h>

#include <fstream>
#include <sstream>

#include "ca/manufacturer.h"
#include "core/enroll.h"

namespace zf::bench {

namespace fs = std::filesystem;

void must(const Status& s, std::string_view what) {
  if (!s) throw std::runtime_error(std::string(what) + ": " + s.error().message());
}

TempDir::TempDir() {
  std::string tmpl = (fs::temp_directory_path() / "zf-bench-XXXXXX").string();
  if (::mkdtemp(tmpl.data()) == nullptr) throw std::runtime_error("mkdtemp " + tmpl);
  path_ = tmpl;
}

TempDir::~TempDir() {
  std::error_code ec;
  fs::remove_all(path_, ec);
}

std::int64_t now_s() { return static_cast<std::int64_t>(std::time(nullptr)); }

namespace {

std::string slurp(const fs::path& p) {
  std::ifstream in(p);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::function<std::int64_t()> system_clock() {
  return [] { return now_s(); };
}

}  // namespace

CaWorld::CaWorld()
    : ca_dir_((tmp_.path() / "ca").string()), mfr_dir_((tmp_.path() / "mfr").string()) {
  must(ca::init_manufacturer(mfr_dir_, "Bench Manufacturer"), "init manufacturer");
  ca::InitOptions o;
  o.dir = ca_dir_;
  o.manufacturer_roots_pem = slurp(fs::path(mfr_dir_) / "manufacturer.pem");
  must(ca::init_ca(o), "init CA");
  ca_ = must(ca::Authority::open(ca_dir_), "open CA");
}

Crl CaWorld::crl() {
  // As a bank or an SE receives it: DER over the wire, parsed.
  return must(Crl::from_der(must(ca_->crl(), "CRL").der()), "CRL DER");
}

KeyCert CaWorld::certified_key(const std::string& role, const std::string& cn) {
  PrivateKey key = must(PrivateKey::generate(), "service key");
  ca::CertRequest req;
  req.role = role;
  req.csr_pem = must(make_csr_pem(key, CsrInfo{cn, ""}), "service CSR");
  auto issued = must(ca_->issue(ca::Caller::admin, req), "issue " + role);
  return {std::move(key), std::move(issued.cert)};
}

KeyCert CaWorld::enrolled_software_se(const std::string& se_id, const std::string& user_id) {
  PrivateKey key = must(PrivateKey::generate(), "software SE key");
  auto dev = must(ca::make_device(mfr_dir_, se_id), "device");
  KeySigner attest(dev.key);
  auto att = must(make_attestation(attest, dev.chain, key.public_key()), "attestation");
  auto code = must(ca_->issue_enrollment_code(ca::Caller::registration_authority, user_id, 600),
                   "enrollment code");
  ca::CertRequest req;
  req.role = "secure-element";
  req.csr_pem = must(make_csr_pem(key, CsrInfo{se_id, user_id}), "SE CSR");
  req.attestation = attestation_to_json(att);
  req.enrollment_code = code.code;
  auto issued = must(ca_->issue(ca::Caller::anonymous, req), "issue SE");
  return {std::move(key), std::move(issued.cert)};
}

void CaWorld::activate(wallet::SeClient& se, const std::string& user_id) {
  // Pairing first, as at the issuer's desk; the code comparison is the tests' business, not the benchmarks'.
  if (!se.has_pairing_key()) must(se.pair("", [](const std::string&) { return true; }), "pair");
  Json params{{"user_id", user_id}, {"pin", kPin}, {"puk", kPuk}, {"root", root().pem()}};
  Json csr = must(se.personalize(params), "personalize");
  auto code = must(ca_->issue_enrollment_code(ca::Caller::registration_authority, user_id, 600),
                   "enrollment code");
  ca::CertRequest req;
  req.role = "secure-element";
  req.csr_pem = csr.at("csr").get<std::string>();
  req.attestation = csr.at("attestation");
  req.enrollment_code = code.code;
  auto issued = must(ca_->issue(ca::Caller::anonymous, req), "CA issue");
  must(se.install_certificate(issued.cert.pem()), "install certificate");
  must(se.update_crl(crl().pem()), "update CRL");
  must(se.select(), "select");
  must(se.verify_pin(kPin), "verify PIN");
}

std::string sign_payload(const PrivateKey& key, const std::vector<Certificate>& chain,
                         const Json& payload) {
  KeySigner signer(key);
  return must(sign_document(payload, JwsSigner{&signer, chain}), "sign_document");
}

Json jws_payload(const std::string& jws) {
  auto parsed = must(jws_parse(jws), "JWS");
  return must(parse_json_strict(to_string(parsed.payload)), "JWS payload");
}

namespace {

// A bank-signed topup.receipt for a topup.request payload (what Bank::topup answers).
std::string receipt_for(const KeyCert& bank, const Json& request, std::int64_t n) {
  Json p{{"type", "topup.receipt"},
         {"v", 1},
         {"id", std::string(kBankId) + ":r" + std::to_string(n)},
         {"issuer", kBankId},
         {"iat", now_s()},
         {"request_id", request.at("id")},
         {"se", request.at("issuer")},
         {"amount", request.at("amount")},
         {"currency", request.at("currency")},
         {"account", request.at("account")},
         {"bank", request.at("bank")}};
  return sign_payload(bank.key, {bank.cert}, p);
}

void topup_via(wallet::SeClient& se, const KeyCert& bank, std::int64_t minor, std::int64_t n) {
  Json r = must(
      se.topup_request(
          {{"amount", minor}, {"currency", kCurrency}, {"bank", kBankId}, {"account", kAccount}}),
      "topup request");
  must(se.apply_topup_receipt(receipt_for(bank, jws_payload(r.at("request")), n)), "topup receipt");
}

// Enough e-cash that no benchmark run of 1-minor payments can exhaust it.
constexpr std::int64_t kFloat = 1'000'000'000'000;

}  // namespace

SeWorld::SeWorld()
    : bank(world.certified_key("custody", kBankId)), registry(world.certified_key("registry", kRegistryId)) {
  auto make = [this](const std::string& id) {
    auto dev = must(ca::make_device(world.manufacturer_dir(), id), "make_device");
    return std::make_unique<se::Applet>(id, std::move(dev.key), std::move(dev.chain));
  };
  payer_applet = make("se-payer");
  payee_applet = make(payee_id);
  payer = std::make_unique<wallet::SeClient>(
      wallet::SeClient::in_process(*payer_applet, system_clock()));
  payee = std::make_unique<wallet::SeClient>(
      wallet::SeClient::in_process(*payee_applet, system_clock()));
  world.activate(*payer, "payer-user");
  world.activate(*payee, "payee-user");
  payee_cert = must(payee->certificate_pem(), "payee certificate");
  topup(*payer, kFloat);
}

std::string SeWorld::topup_receipt(const Json& request) {
  return receipt_for(bank, request, ++receipts_);
}

std::string SeWorld::record_for(const std::string& note_jws) {
  auto jws = must(jws_parse(note_jws), "note");
  Json note = jws_payload(note_jws);
  Json p{{"type", "record"},         {"v", 1},
         {"id", std::string(kRegistryId) + ":rec:" + note.at("id").get<std::string>()},
         {"issuer", kRegistryId},    {"iat", now_s()},
         {"status", "claimed"},      {"doc_id", note.at("id")},
         {"processor", payee_id},    {"result_digest", b64url_encode(sha256(jws.payload))},
         {"doc_issuer", note.at("issuer")}, {"doc_seq", note.at("seq")},
         {"doc_type", note.at("type")}, {"claimed_at", now_s()}};
  return sign_payload(registry.key, {registry.cert}, p);
}

void SeWorld::topup(wallet::SeClient& se, std::int64_t minor) {
  topup_via(se, bank, minor, ++receipts_);
}

SeDeviceWorld::SeDeviceWorld() : bank(world.certified_key("custody", kBankId)) {
  std::string dir = (world.dir() / "se-device").string();
  must(se::Device::create(dir, "se-device", world.manufacturer_dir()), "create device");
  device = must(se::Device::open(dir), "open device");
  client = std::make_unique<wallet::SeClient>(
      [this](ByteView apdu) -> Result<Bytes> { return device->handle(apdu, now_s()); });
  world.activate(*client, "device-user");
  topup_via(*client, bank, kFloat, 1);
  payee_cert = world.enrolled_software_se("se-payee", "payee-user").cert.pem();
}

BankWorld::BankWorld(bool with_registry)
    : se_(world.enrolled_software_se("se-bench", "bench-user")) {
  std::string dir = (world.dir() / "bank").string();
  bank::InitOptions o{dir, kBankId, "https://127.0.0.1:1", world.root().pem(), {}, {}, {}};
  auto issue = [this](const std::string& role, const std::string& csr) -> Result<Certificate> {
    ca::CertRequest r;
    r.role = role;
    r.csr_pem = csr;
    auto issued = world.ca().issue(ca::Caller::admin, r);
    if (!issued) return std::unexpected(issued.error());
    return issued->cert;
  };
  must(bank::init_bank(o, issue), "init bank");
  bank = must(bank::Bank::open(dir), "open bank");
  must(bank->install_crl(world.crl()), "install CRL");
  if (with_registry) {
    std::string reg_dir = (world.dir() / "registry").string();
    must(registry::init_registry({reg_dir, "registry-bench", "https://127.0.0.1:1",
                                  world.root().pem(), {}},
                                 issue),
         "init registry");
    registry = must(registry::Registry::open(reg_dir), "open registry");
    must(registry->install_crl(world.crl()), "registry CRL");
    bank->set_registry("registry-bench", [this](const std::string& claim) -> Result<std::string> {
      auto answer = registry->claim(claim);
      if (!answer) return std::unexpected(answer.error());
      return answer->record_jws;
    });
  }
  se_chain_ = {se_.cert, world.root()};
  must(bank->open_account({kAccount, kCurrency, "bench-user", std::nullopt}), "open account");
  must(bank->cash_in(kAccount, must(Amount::of(kCurrency, 2 * kFloat), "amount"), "bench-float"),
       "cash in");
  // E-cash outstanding for the deposits to come back from.
  must(bank->topup(topup_request(kFloat)), "first top-up");
}

Json BankWorld::se_payload(const std::string& type, std::int64_t minor) {
  ++seq_;
  return Json{{"type", type},
              {"v", 1},
              {"id", "se-bench:" + std::to_string(seq_)},
              {"issuer", "se-bench"},
              {"seq", seq_},
              {"iat", now_s()},
              {"nonce", new_nonce()},
              {"amount", minor},
              {"currency", kCurrency},
              {"account", kAccount},
              {"bank", kBankId}};
}

std::string BankWorld::topup_request(std::int64_t minor) {
  return sign_payload(se_.key, se_chain_, se_payload("topup.request", minor));
}

std::string BankWorld::deposit_note(std::int64_t minor) {
  return sign_payload(se_.key, se_chain_, se_payload("deposit.note", minor));
}

std::vector<std::function<void()>>& world_releasers() {
  static std::vector<std::function<void()>> releasers;
  return releasers;
}

void release_worlds() {
  auto& r = world_releasers();
  for (auto it = r.rbegin(); it != r.rend(); ++it) (*it)();
  r.clear();
}

}  // namespace zf::bench
