// Shared set-up for the SE tests: a real CA (with a manufacturer) opened
// in-process on a controllable clock, a bank with a CA-issued custody
// certificate that signs receipts, and the steps that take an SE from the
// factory to active over its APDU interface (personalize -> CSR + attestation
// -> CA issues with a one-time enrollment code -> install -> CRL -> PIN).
#pragma once

#include <algorithm>
#include <ctime>
#include <functional>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "ca/authority.h"
#include "ca/ca_fixture.h"
#include "ca/manufacturer.h"
#include "core/document.h"
#include "core/enroll.h"
#include "core/test_util.h"
#include "se/applet.h"
#include "wallet/se_client.h"

namespace zf::test {

inline constexpr const char* kPin = "123456";
inline constexpr const char* kPuk = "12345678";
inline constexpr const char* kBank = "bank-a";
inline constexpr const char* kAccount = "acct-1";
inline constexpr const char* kRegistry = "registry-1";

// A key held by the test and the certificate that binds it.
struct KeyCert {
  PrivateKey key;
  Certificate cert;
};

// The payload of a compact JWS (no verification: the tests check what the SE signed).
inline Json jws_payload(const std::string& jws) {
  auto parsed = must(jws_parse(jws), "JWS");
  return must(parse_json_strict(to_string(parsed.payload)), "JWS payload");
}

// Signs a document payload with `key` and puts `chain` in x5c.
inline std::string sign_with(const PrivateKey& key, const std::vector<Certificate>& chain,
                             const Json& payload) {
  KeySigner signer(key);
  return must(sign_document(payload, JwsSigner{&signer, chain}), "sign_document");
}

// A root the CA never heard of, for "self-made certificate" attacks.
inline KeyCert self_made_root(const std::string& cn, std::time_t now) {
  PrivateKey key = must(PrivateKey::generate(), "fake root key");
  IssueParams p;
  p.common_name = cn;
  p.not_before = now - 3600;
  p.not_after = now + 365 * 86400;
  p.serial = new_serial();
  Certificate cert = must(make_self_signed_ca(key, p), "fake root");
  return {std::move(key), std::move(cert)};
}

// A leaf under `issuer` with one role, for a fresh software key.
inline KeyCert issue_under(const KeyCert& issuer, Role role, const std::string& cn,
                           const std::string& user_id, std::time_t now) {
  PrivateKey key = must(PrivateKey::generate(), "leaf key");
  IssueParams p;
  p.common_name = cn;
  p.user_id = user_id;
  p.roles = {role};
  p.not_before = now - 3600;
  p.not_after = now + 365 * 86400;
  p.serial = new_serial();
  Certificate cert = must(issue_certificate(issuer.cert, issuer.key, key.public_key(), p), "leaf");
  return {std::move(key), std::move(cert)};
}

// The CA, the manufacturer and one bank, all in a temporary directory.
class SeWorld {
 public:
  SeWorld() {
    ca = must(ca::Authority::open(world.ca_dir), "open CA");
    ca->set_clock([this] { return static_cast<std::time_t>(now); });
    bank = custody_key(kBank);
    registry = certified_key("registry", kRegistry);
  }

  std::string root_pem() const { return ca->root().pem(); }
  std::string crl_pem() { return must(ca->crl(), "CRL").pem(); }
  std::function<std::int64_t()> clock() {
    return [this] { return now; };
  }

  // A key with a certificate for `role` ("custody", "registry") issued by the CA (admin).
  KeyCert certified_key(const std::string& role, const std::string& cn) {
    PrivateKey key = must(PrivateKey::generate(), "service key");
    ca::CertRequest req;
    req.role = role;
    req.csr_pem = must(make_csr_pem(key, CsrInfo{cn, ""}), "service CSR");
    auto issued = must(ca->issue(ca::Caller::admin, req), "issue " + role);
    return {std::move(key), std::move(issued.cert)};
  }
  KeyCert custody_key(const std::string& bank_id) { return certified_key("custody", bank_id); }

  // The payload of a registry record about `note_jws` (not verified: tests also
  // make records for notes an SE must refuse), held by `processor`, status
  // claimed; `change` overrides fields.
  Json record_payload(const std::string& note_jws, const std::string& processor,
                      const Json& change = Json::object()) {
    auto jws = must(jws_parse(note_jws), "note JWS");
    Json note = must(parse_json_strict(to_string(jws.payload)), "note payload");
    Json p{{"type", "record"},
           {"v", 1},
           {"id", std::string(kRegistry) + ":rec:" + note.at("id").get<std::string>()},
           {"issuer", kRegistry},
           {"iat", now},
           {"status", "claimed"},
           {"doc_id", note.at("id")},
           {"processor", processor},
           {"result_digest", b64url_encode(sha256(jws.payload))},
           {"doc_issuer", note.at("issuer")},
           {"doc_type", note.at("type")},
           {"claimed_at", now}};
    if (note.contains("seq")) p["doc_seq"] = note.at("seq");
    p.update(change);
    return p;
  }
  // That record signed by the fixture's registry key.
  std::string record_for(const std::string& note_jws, const std::string& processor,
                         const Json& change = Json::object()) {
    return sign_with(registry.key, {registry.cert}, record_payload(note_jws, processor, change));
  }

  // A key outside any SE, enrolled as `se_id` with a genuine device attestation:
  // only possible here because the test holds the manufacturer key.
  KeyCert enrolled_software_se(const std::string& se_id, const std::string& user) {
    PrivateKey key = must(PrivateKey::generate(), "software SE key");
    auto dev = must(ca::make_device(world.mfr_dir, se_id), "device");
    KeySigner attest(dev.key);
    auto att = must(make_attestation(attest, dev.chain, key.public_key()), "attestation");
    auto code = must(ca->issue_enrollment_code(ca::Caller::registration_authority, user, 600));
    ca::CertRequest req;
    req.role = "secure-element";
    req.csr_pem = must(make_csr_pem(key, CsrInfo{se_id, user}), "CSR");
    req.attestation = attestation_to_json(att);
    req.enrollment_code = code.code;
    auto issued = must(ca->issue(ca::Caller::anonymous, req), "issue SE");
    return {std::move(key), std::move(issued.cert)};
  }

  // A certificate (PEM) the CA issued for an SE called `se_id`, as a payer's
  // terminal fetches it to address a payment (the key stays with the test).
  std::string payee_cert(const std::string& se_id, const std::string& user = "payee") {
    auto it = payee_certs_.find(se_id);
    if (it == payee_certs_.end()) it = payee_certs_.emplace(se_id, enrolled_software_se(se_id, user).cert.pem()).first;
    return it->second;
  }
  // PAYMENT NOTE parameters as an honest terminal sends them.
  Json pay_to(const std::string& se_id, std::int64_t amount, const std::string& currency = "CNY") {
    return Json{{"amount", amount}, {"currency", currency}, {"payee", se_id}, {"payee_cert", payee_cert(se_id)}};
  }

  // Pairs a terminal with a factory SE, comparing its code with what the SE
  // shows (`display`, read as a person reads the device's screen).
  void pair(wallet::SeClient& se, const std::function<std::string()>& display) {
    must(se.pair("", [&](const std::string& code) { return code == display(); }), "pair");
  }

  // Factory -> active over the SE's own commands; returns the certificate serial.
  // Pairs first when the client holds no pairing key (`display` is the SE's
  // screen). The session ends verified with kPin.
  std::string activate(wallet::SeClient& se, const std::string& user, const Json& limits = {},
                       const std::function<std::string()>& display = {}) {
    if (!se.has_pairing_key()) {
      if (!display) throw std::runtime_error("activate: pairing needs the SE's display");
      pair(se, display);
    }
    Json params{{"user_id", user}, {"pin", kPin}, {"puk", kPuk}, {"root", root_pem()}};
    if (limits.is_object()) params.update(limits);
    Json csr = must(se.personalize(params), "personalize");
    auto code = must(ca->issue_enrollment_code(ca::Caller::registration_authority, user, 600));
    ca::CertRequest req;
    req.role = "secure-element";
    req.csr_pem = csr.at("csr").get<std::string>();
    req.attestation = csr.at("attestation");
    req.enrollment_code = code.code;
    auto issued = must(ca->issue(ca::Caller::anonymous, req), "CA issue");
    must(se.install_certificate(issued.cert.pem()), "install certificate");
    must(se.update_crl(crl_pem()), "update CRL");
    must(se.select(), "select");
    must(se.verify_pin(kPin), "verify PIN");
    return issued.serial;
  }

  // A topup.receipt for a topup.request payload; `change` overrides fields.
  Json topup_receipt_payload(const Json& request, const Json& change = Json::object()) {
    Json p{{"type", "topup.receipt"},
           {"v", 1},
           {"id", std::string(kBank) + ":r" + std::to_string(++receipt_counter)},
           {"issuer", kBank},
           {"iat", now},
           {"request_id", request.at("id")},
           {"se", request.at("issuer")},
           {"amount", request.at("amount")},
           {"currency", request.at("currency")},
           {"account", request.at("account")},
           {"bank", request.at("bank")}};
    p.update(change);
    return p;
  }
  std::string topup_receipt(const Json& request, const Json& change = Json::object()) {
    return sign_with(bank.key, {bank.cert}, topup_receipt_payload(request, change));
  }

  // A deposit.receipt for a deposit.note payload; `change` overrides fields.
  std::string deposit_receipt(const Json& note, const Json& change = Json::object()) {
    Json p{{"type", "deposit.receipt"},
           {"v", 1},
           {"id", std::string(kBank) + ":d" + std::to_string(++receipt_counter)},
           {"issuer", kBank},
           {"iat", now},
           {"note_id", note.at("id")},
           {"se", note.at("issuer")},
           {"amount", note.at("amount")},
           {"currency", note.at("currency")},
           {"account", note.at("account")},
           {"bank", note.at("bank")}};
    p.update(change);
    return sign_with(bank.key, {bank.cert}, p);
  }

  // Request, bank receipt, apply: the SE ends `amount` richer.
  void topup(wallet::SeClient& se, std::int64_t amount, const std::string& currency = "CNY") {
    Json r = must(
        se.topup_request(
            {{"amount", amount}, {"currency", currency}, {"bank", kBank}, {"account", kAccount}}),
        "topup request");
    must(se.apply_topup_receipt(topup_receipt(jws_payload(r.at("request")))), "topup receipt");
  }

  CaWorld world;
  std::unique_ptr<ca::Authority> ca;
  std::int64_t now = std::time(nullptr);
  KeyCert bank{PrivateKey{nullptr}, Certificate{nullptr}};
  KeyCert registry{PrivateKey{nullptr}, Certificate{nullptr}};
  int receipt_counter = 0;

 private:
  std::map<std::string, std::string> payee_certs_;
};

}  // namespace zf::test
