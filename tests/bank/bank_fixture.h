// Shared set-up for bank tests: a CA world (tests/ca/ca_fixture.h), secure
// elements enrolled with attestation and an enrollment code, and helpers that
// sign the documents an SE would sign.
#pragma once

#include <optional>

#include <gtest/gtest.h>

#include <atomic>
#include <ctime>
#include <functional>
#include <string>

#include "bank/bank.h"
#include "ca/authority.h"
#include "ca/manufacturer.h"
#include "ca_fixture.h"
#include "core/document.h"
#include "core/enroll.h"

namespace zf::test {

// A certified key that signs documents: an enrolled SE, or a rogue/bank key.
struct TestSigner {
  std::string se_id;
  std::string user_id;
  std::shared_ptr<PrivateKey> key;
  std::vector<Certificate> chain;  // leaf first
  std::int64_t seq = 0;

  const Certificate& cert() const { return chain.front(); }

  // A payload with the common fields filled in: id "<se>:<seq>", issuer, seq, iat.
  Json payload(const std::string& type, Json fields) {
    ++seq;
    Json p{{"type", type},    {"v", 1},     {"id", se_id + ":" + std::to_string(seq)},
           {"issuer", se_id}, {"seq", seq}, {"iat", static_cast<std::int64_t>(std::time(nullptr))},
           {"nonce", new_nonce()}};
    for (auto& [k, v] : fields.items()) p[k] = v;
    return p;
  }
  Json topup(const std::string& bank, const std::string& account, std::int64_t minor,
             const std::string& currency = "CNY") {
    return payload(
        "topup.request",
        Json{{"amount", minor}, {"currency", currency}, {"account", account}, {"bank", bank}});
  }
  Json deposit(const std::string& bank, const std::string& account, std::int64_t minor,
               const std::string& currency = "CNY") {
    return payload(
        "deposit.note",
        Json{{"amount", minor}, {"currency", currency}, {"account", account}, {"bank", bank}});
  }
  Json query(const std::string& bank, const std::string& account) {
    Json p = payload("account.query", Json{{"account", account}, {"bank", bank}});
    p["exp"] = p["iat"].get<std::int64_t>() + 300;  // as the SE signs it
    return p;
  }
  // Signs a payload that passes document validation.
  std::string sign(const Json& p) const {
    KeySigner s(*key);
    auto jws = sign_document(p, JwsSigner{&s, chain});
    EXPECT_TRUE(jws) << jws.error().message();
    return jws ? *jws : std::string();
  }
  // Signs any payload bytes, valid document or not (to test the bank's own checks).
  std::string sign_raw(const Json& p) const {
    KeySigner s(*key);
    auto jws = jws_sign_compact(as_bytes(dump_json(p)), JwsSigner{&s, chain}, "zf+jws");
    EXPECT_TRUE(jws) << jws.error().message();
    return jws ? *jws : std::string();
  }
};

// Issues certificates: in-process through an Authority, or over HTTPS through a CaClient.
struct CertSource {
  // (role, csr, attestation json or null, enrollment code) -> certificate
  std::function<Result<Certificate>(const std::string&, const std::string&,
                                    const std::optional<Attestation>&, const std::string&)>
      issue;
  std::function<Result<std::string>(const std::string& user)> enrollment_code;
};

inline CertSource in_process_source(ca::Authority& ca) {
  CertSource s;
  s.issue = [&ca](const std::string& role, const std::string& csr,
                  const std::optional<Attestation>& att,
                  const std::string& code) -> Result<Certificate> {
    ca::CertRequest r;
    r.role = role;
    r.csr_pem = csr;
    if (att) r.attestation = attestation_to_json(*att);
    r.enrollment_code = code;
    auto issued = ca.issue(att ? ca::Caller::anonymous : ca::Caller::admin, r);
    if (!issued) return std::unexpected(issued.error());
    return issued->cert;
  };
  s.enrollment_code = [&ca](const std::string& user) -> Result<std::string> {
    auto c = ca.issue_enrollment_code(ca::Caller::admin, user, 600);
    if (!c) return std::unexpected(c.error());
    return c->code;
  };
  return s;
}

// Personalizes an SE the way DESIGN.md §2 says: device attestation + enrollment code.
inline TestSigner enroll_se(const CertSource& src, const CaWorld& world, const std::string& se_id,
                            const std::string& user_id) {
  TestSigner se;
  se.se_id = se_id;
  se.user_id = user_id;
  se.key = std::make_shared<PrivateKey>(*PrivateKey::generate());
  auto dev = ca::make_device(world.mfr_dir, se_id);
  EXPECT_TRUE(dev) << dev.error().message();
  KeySigner att_signer(dev->key);
  auto att = make_attestation(att_signer, dev->chain, se.key->public_key());
  EXPECT_TRUE(att);
  auto code = src.enrollment_code(user_id);
  EXPECT_TRUE(code) << code.error().message();
  auto cert = src.issue("secure-element", *make_csr_pem(*se.key, {se_id, user_id}), *att, *code);
  EXPECT_TRUE(cert) << cert.error().message();
  se.chain = {*cert, world.root()};
  return se;
}

// A key with a secure-element certificate from a CA we do not trust (a "self-made" certificate).
inline TestSigner rogue_se(const std::string& se_id, const std::string& user_id) {
  TestSigner se;
  se.se_id = se_id;
  se.user_id = user_id;
  se.key = std::make_shared<PrivateKey>(*PrivateKey::generate());
  PrivateKey root_key = *PrivateKey::generate();
  IssueParams rp;
  rp.common_name = "zhuanfu Root CA";  // the same name as the real root: only the key differs
  rp.not_before = std::time(nullptr) - 60;
  rp.not_after = rp.not_before + 86400;
  rp.serial = new_serial();
  auto root = make_self_signed_ca(root_key, rp);
  IssueParams lp;
  lp.common_name = se_id;
  lp.user_id = user_id;
  lp.roles = {Role::secure_element};
  lp.not_before = rp.not_before;
  lp.not_after = rp.not_after;
  lp.serial = new_serial();
  auto leaf = issue_certificate(*root, root_key, se.key->public_key(), lp);
  EXPECT_TRUE(leaf);
  se.chain = {*leaf, *root};
  return se;
}

// Replaces one character of the JWS payload part by another base64url character.
inline std::string tamper_payload(std::string jws) {
  auto d1 = jws.find('.');
  std::size_t i = d1 + 10;  // well inside the payload
  jws[i] = jws[i] == 'A' ? 'B' : 'A';
  return jws;
}

// The balance of an account (or -1 if absent).
inline std::int64_t balance_of(bank::BankStore& store, const std::string& account) {
  auto a = store.find_account(account);
  return a && *a ? (*a)->balance_minor : -1;
}


// The reason of a signed refusal (a receipt with status "refused"), if `receipt` is one.
inline std::optional<std::string> refusal_reason(const std::string& receipt) {
  auto jws = jws_parse(receipt);
  if (!jws) return std::nullopt;
  auto doc = Document::parse(to_string(jws->payload));
  if (!doc || doc->str("status") != "refused") return std::nullopt;
  return doc->str("reason");
}

}  // namespace zf::test
