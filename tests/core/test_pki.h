// A throwaway PKI for tests: a root CA and role certificates issued under it,
// at a fixed clock (kNow) so verification is deterministic. Header-only,
// namespace zf::test, reusable by other test directories.
#pragma once

#include <ctime>
#include <string>
#include <utility>
#include <vector>

#include "core/crypto.h"
#include "core/jose.h"
#include "core/x509.h"
#include "test_util.h"

namespace zf::test {

// 2025-06-15T15:06:40Z: the "current time" every test verifier runs at.
inline constexpr std::time_t kNow = 1'750'000'000;
inline constexpr std::time_t kDay = 24 * 60 * 60;

// A private key and the certificate that binds it.
struct KeyCert {
  PrivateKey key;
  Certificate cert;
};

// A self-signed root valid from 30 days before kNow for ten years.
inline KeyCert make_root(const std::string& cn = "zf test root", SigAlg alg = SigAlg::ES256,
                         std::time_t not_before = kNow - 30 * kDay,
                         std::time_t not_after = kNow + 3650 * kDay) {
  PrivateKey key = must(PrivateKey::generate(alg), "root key");
  IssueParams p;
  p.common_name = cn;
  p.roles = {Role::ca_admin};
  p.not_before = not_before;
  p.not_after = not_after;
  p.serial = new_serial();
  Certificate cert = must(make_self_signed_ca(key, p), "root certificate");
  return {std::move(key), std::move(cert)};
}

// Issues a certificate from `params` (serial filled in when empty) for a fresh key.
inline KeyCert issue_params(const KeyCert& issuer, IssueParams params, SigAlg alg = SigAlg::ES256) {
  PrivateKey key = must(PrivateKey::generate(alg), "subject key");
  if (params.serial.empty()) params.serial = new_serial();
  Certificate cert =
      must(issue_certificate(issuer.cert, issuer.key, key.public_key(), params), "issue");
  return {std::move(key), std::move(cert)};
}

// Issues an end-entity certificate with one role, valid from a day before kNow for a year.
inline KeyCert issue(const KeyCert& issuer, Role role, const std::string& cn,
                     const std::string& user_id = {}, std::time_t not_before = kNow - kDay,
                     std::time_t not_after = kNow + 365 * kDay, SigAlg alg = SigAlg::ES256) {
  IssueParams p;
  p.common_name = cn;
  p.user_id = user_id;
  p.roles = {role};
  p.not_before = not_before;
  p.not_after = not_after;
  return issue_params(issuer, std::move(p), alg);
}

// A verifier for `root` whose clock is fixed at `now`.
inline CertVerifier verifier_at(const KeyCert& root, std::time_t now = kNow) {
  CertVerifier v(root.cert);
  v.set_time(now);
  return v;
}

// The serial of `cert` as big-endian bytes (what make_crl wants).
inline Bytes serial_bytes(const Certificate& cert) {
  std::string hex = cert.serial_hex();
  if (hex.size() % 2 != 0) hex.insert(hex.begin(), '0');
  return unhex(hex);
}

// A CRL from `issuer` revoking `revoked`, current at kNow (this_update a day before,
// next_update a week after).
inline Crl make_test_crl(const KeyCert& issuer, const std::vector<Certificate>& revoked,
                         std::time_t this_update = kNow - kDay,
                         std::time_t next_update = kNow + 7 * kDay) {
  CrlParams p;
  for (const auto& c : revoked) p.revoked.push_back({serial_bytes(c), this_update});
  p.this_update = this_update;
  p.next_update = next_update;
  return must(make_crl(issuer.cert, issuer.key, p), "crl");
}

// A key with a signer and the chain that certifies it, ready for jws_sign_*.
// Not movable: the signer refers to the key.
class Party {
 public:
  explicit Party(KeyCert kc) : kc_(std::move(kc)), signer_(kc_.key) {}
  Party(const Party&) = delete;
  Party& operator=(const Party&) = delete;

  const PrivateKey& key() const { return kc_.key; }
  const Certificate& cert() const { return kc_.cert; }
  JwsSigner jws_signer() const { return JwsSigner{&signer_, {kc_.cert}}; }

 private:
  KeyCert kc_;
  KeySigner signer_;
};

}  // namespace zf::test
