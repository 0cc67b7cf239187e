// Shared set-up for registry tests: a CA world (tests/ca/ca_fixture.h),
// certified processors (banks with custody certificates, SEs enrolled with
// attestation and an enrollment code), rogue keys, and claim builders.
#pragma once

#include <gtest/gtest.h>

#include <ctime>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "ca/authority.h"
#include "ca/manufacturer.h"
#include "ca_fixture.h"
#include "core/document.h"
#include "core/enroll.h"
#include "core/claims.h"
#include "registry/registry.h"

namespace zf {
// Error codes print by name in test failures.
inline void PrintTo(Errc code, std::ostream* os) { *os << errc_name(code); }
}  // namespace zf

namespace zf::test {

// A key with a certificate chain that signs claims: a bank, an SE, or a rogue.
struct Processor {
  std::string id;  // the certificate CN
  std::shared_ptr<PrivateKey> key;
  std::vector<Certificate> chain;  // leaf first

  const Certificate& cert() const { return chain.front(); }

  // Claim fields for document `doc_id` with a digest derived from `result`.
  registry::ClaimFields fields(const std::string& doc_id, const std::string& result = "ok",
                               const std::string& doc_issuer = "bank-z",
                               std::optional<std::int64_t> doc_seq = std::nullopt,
                               const std::string& doc_type = "topup.receipt") const {
    return registry::ClaimFields{doc_id,   doc_issuer, doc_seq,
                                 doc_type, id,         sha256(as_bytes(result)), std::nullopt};
  }
  // A signed claim (validated the way the registry will validate it).
  std::string claim(const registry::ClaimFields& f) const {
    KeySigner s(*key);
    auto jws = registry::sign_claim(f, JwsSigner{&s, chain});
    EXPECT_TRUE(jws) << jws.error().message();
    return jws ? *jws : std::string();
  }
  std::string claim(const std::string& doc_id, const std::string& result = "ok") const {
    return claim(fields(doc_id, result));
  }
  // A genuine document of this SE: a payment note with seq `seq` (and a fresh nonce).
  // `exp`: the note's expiry, if it has one.
  std::string note(std::int64_t seq, std::int64_t amount = 1000, const std::string& payee = "se-payee",
                   std::optional<std::int64_t> exp = std::nullopt) const {
    Json p{{"type", "payment.note"}, {"v", 1}, {"id", id + ":" + std::to_string(seq)},
           {"issuer", id}, {"seq", seq}, {"iat", static_cast<std::int64_t>(std::time(nullptr))},
           {"nonce", new_nonce()}, {"amount", amount}, {"currency", "CNY"}, {"payer", id},
           {"payee", payee}};
    if (exp) p["exp"] = *exp;
    return sign_doc(p);
  }
  // A record.query for `doc_id` by this processor, valid for `ttl_s` seconds.
  std::string record_query(const std::string& doc_id, std::int64_t ttl_s = 60) const {
    auto now = static_cast<std::int64_t>(std::time(nullptr));
    return sign_doc(Json{{"type", "record.query"}, {"v", 1}, {"id", id + ":rq:" + new_nonce()},
                         {"issuer", id}, {"iat", now}, {"exp", now + ttl_s}, {"doc_id", doc_id}});
  }
  std::string sign_doc(const Json& p) const {
    KeySigner s(*key);
    auto jws = sign_document(p, JwsSigner{&s, chain});
    EXPECT_TRUE(jws) << jws.error().message();
    return jws ? *jws : std::string();
  }
  // Signs any payload bytes, valid document or not (to test the registry's own checks).
  std::string sign_raw(const Json& p) const {
    KeySigner s(*key);
    auto jws = jws_sign_compact(as_bytes(dump_json(p)), JwsSigner{&s, chain}, "zf+jws");
    EXPECT_TRUE(jws) << jws.error().message();
    return jws ? *jws : std::string();
  }
};

// (role, csr, attestation or none, enrollment code) -> certificate.
using IssueFn = std::function<Result<Certificate>(
    const std::string&, const std::string&, const std::optional<Attestation>&, const std::string&)>;
using CodeFn = std::function<Result<std::string>(const std::string& user)>;

inline IssueFn in_process_issuer(ca::Authority& ca) {
  return
      [&ca](const std::string& role, const std::string& csr, const std::optional<Attestation>& att,
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
}

inline CodeFn in_process_codes(ca::Authority& ca) {
  return [&ca](const std::string& user) -> Result<std::string> {
    auto c = ca.issue_enrollment_code(ca::Caller::admin, user, 600);
    if (!c) return std::unexpected(c.error());
    return c->code;
  };
}

// A bank (role custody, CN = id), or any other non-SE role for wrong-role tests.
inline Processor certified(const IssueFn& issue, const CaWorld& world, const std::string& id,
                           const std::string& role = "custody") {
  Processor p;
  p.id = id;
  p.key = std::make_shared<PrivateKey>(*PrivateKey::generate());
  auto cert = issue(role, *make_csr_pem(*p.key, {id, ""}), std::nullopt, "");
  EXPECT_TRUE(cert) << cert.error().message();
  p.chain = {*cert, world.root()};
  return p;
}

// An SE personalized the way DESIGN.md §2 says: device attestation + enrollment code.
inline Processor enrolled_se(const IssueFn& issue, const CodeFn& codes, const CaWorld& world,
                             const std::string& se_id, const std::string& user_id) {
  Processor p;
  p.id = se_id;
  p.key = std::make_shared<PrivateKey>(*PrivateKey::generate());
  auto dev = ca::make_device(world.mfr_dir, se_id);
  EXPECT_TRUE(dev) << dev.error().message();
  KeySigner att_signer(dev->key);
  auto att = make_attestation(att_signer, dev->chain, p.key->public_key());
  EXPECT_TRUE(att);
  auto code = codes(user_id);
  EXPECT_TRUE(code) << code.error().message();
  auto cert = issue("secure-element", *make_csr_pem(*p.key, {se_id, user_id}), *att, *code);
  EXPECT_TRUE(cert) << cert.error().message();
  p.chain = {*cert, world.root()};
  return p;
}

// A key with a custody certificate from a CA nobody trusts ("self-made").
inline Processor rogue(const std::string& id) {
  Processor p;
  p.id = id;
  p.key = std::make_shared<PrivateKey>(*PrivateKey::generate());
  PrivateKey root_key = *PrivateKey::generate();
  IssueParams rp;
  rp.common_name = "zhuanfu Root CA";  // the real root's name: only the key differs
  rp.is_ca = true;
  rp.not_before = std::time(nullptr) - 60;
  rp.not_after = rp.not_before + 86400;
  rp.serial = new_serial();
  auto root = make_self_signed_ca(root_key, rp);
  IssueParams lp;
  lp.common_name = id;
  lp.roles = {Role::custody};
  lp.not_before = rp.not_before;
  lp.not_after = rp.not_after;
  lp.serial = new_serial();
  auto leaf = issue_certificate(*root, root_key, p.key->public_key(), lp);
  EXPECT_TRUE(leaf);
  p.chain = {*leaf, *root};
  return p;
}

// Replaces one character of the JWS payload part by another base64url character.
inline std::string tamper_payload(std::string jws) {
  auto d1 = jws.find('.');
  std::size_t i = d1 + 10;  // well inside the payload
  jws[i] = jws[i] == 'A' ? 'B' : 'A';
  return jws;
}

// Opens a record as anyone with the root would, expecting success.
inline registry::RecordView open_ok(const std::string& jws, const Certificate& root,
                                    const std::string& registry_id) {
  auto r = registry::open_record(jws, CertVerifier(root), registry_id);
  EXPECT_TRUE(r) << r.error().message();
  return r ? *r : registry::RecordView{};
}

}  // namespace zf::test
