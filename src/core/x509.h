// X.509 certificates, CSRs and CRLs for the project's roles (DESIGN.md §2).
#pragma once

#include <openssl/x509.h>

#include <chrono>
#include <ctime>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "core/crypto.h"

namespace zf {

// A certificate's role, carried as an extended-key-usage OID of the project.
// `se_attestation` marks a manufacturer-issued device attestation certificate
// (DESIGN.md §2 enrollment); it is never accepted for documents.
enum class Role { secure_element, custody, registry, tls_server, ca_admin, se_attestation };
std::string_view role_name(Role role);
Result<Role> role_from_name(std::string_view name);
// The dotted OID of a role, under the project's private arc (every arc fits in 32
// bits, so every common X.509 stack reads it; docs/ca-api.md "Roles").
std::string_view role_oid(Role role);

struct X509Deleter {
  void operator()(X509* p) const { X509_free(p); }
  void operator()(X509_REQ* p) const { X509_REQ_free(p); }
  void operator()(X509_CRL* p) const { X509_CRL_free(p); }
};

// An immutable parsed certificate.
class Certificate {
 public:
  // Parses DER, or returns the certificate parsed earlier from the same bytes
  // (a process-wide cache: every document carries its signer's chain).
  static Result<Certificate> from_der(ByteView der);
  // Parses DER without the cache (to measure first sight).
  static Result<Certificate> from_der_uncached(ByteView der);
  static Result<Certificate> from_pem(std::string_view pem);
  Bytes der() const;
  std::string pem() const;

  // Serial as lower-case hex without leading zeros.
  std::string serial_hex() const;
  // Subject common name: the SE id, bank id, registry id or host name.
  std::string subject_cn() const;
  // Subject UID attribute: the user id bound to an SE certificate (empty if none).
  std::string user_id() const;
  std::vector<Role> roles() const;
  bool has_role(Role role) const;
  bool is_ca() const;
  std::time_t not_before() const;
  std::time_t not_after() const;
  // The URIs in the subject alternative name, in order (e.g. the service name
  // service_uri() gives a TLS certificate); empty if there are none.
  std::vector<std::string> san_uris() const;
  // Subject key identifier as hex (empty if the extension is absent).
  std::string subject_key_id() const;
  PublicKey public_key() const;
  X509* get() const { return cert_.get(); }
  // Takes ownership of an OpenSSL certificate.
  explicit Certificate(X509* c) : cert_(c, X509Deleter{}) {}

 private:
  std::shared_ptr<X509> cert_;
};

// What the subject asks to be certified for.
struct CsrInfo {
  std::string common_name;
  std::string user_id;  // optional
};

// Creates a PEM CSR signed by `key` (proof of possession).
Result<std::string> make_csr_pem(const PrivateKey& key, const CsrInfo& info);

// A parsed CSR whose self-signature has been verified.
struct ParsedCsr {
  PublicKey key;
  CsrInfo info;
};
// Parses and checks the CSR's signature; csr_bad_signature if it does not match its key.
Result<ParsedCsr> parse_csr_pem(std::string_view pem);

struct IssueParams {
  std::string common_name;
  std::string user_id;                 // UID attribute, optional
  std::vector<Role> roles;             // EKU OIDs
  std::vector<std::string> dns_names;  // SAN, for tls-server
  std::vector<std::string> ip_addrs;   // SAN, for tls-server
  std::vector<std::string> uris;       // SAN, for tls-server: the service name (service_uri)
  bool is_ca = false;
  std::time_t not_before = 0;
  std::time_t not_after = 0;
  Bytes serial;  // positive, non-zero; the caller guarantees uniqueness
};

// Issues a certificate for `subject` signed by the issuer.
Result<Certificate> issue_certificate(const Certificate& issuer, const PrivateKey& issuer_key,
                                      const PublicKey& subject, const IssueParams& params);
// Creates a self-signed CA certificate.
Result<Certificate> make_self_signed_ca(const PrivateKey& key, const IssueParams& params);
// The name a service's TLS certificate carries as a URI in its subject
// alternative name, and what a client expecting that service looks for:
// "urn:zhuanfu:<kind>:<id>", kind one of kServiceKinds ("bank", "registry",
// "ca"), the id percent-encoded outside [A-Za-z0-9._~-]. A URI never matches a
// host name check (those read DNS and IP names only), and a host name never
// names a service: the two checks stay apart.
std::string service_uri(std::string_view kind, std::string_view id);
inline constexpr std::string_view kServiceKinds[] = {"bank", "registry", "ca"};
// A fresh random 128-bit positive serial.
Bytes new_serial();

// A certificate revocation list.
class Crl {
 public:
  static Result<Crl> from_der(ByteView der);
  static Result<Crl> from_pem(std::string_view pem);
  Bytes der() const;
  std::string pem() const;
  std::time_t this_update() const;
  std::time_t next_update() const;
  // The CRL number extension (0 if absent).
  std::uint64_t number() const;
  // Checks the CRL's signature against `issuer`'s key and that it names that issuer.
  Status verify_signature(const Certificate& issuer) const;
  X509_CRL* get() const { return crl_.get(); }
  // Takes ownership of an OpenSSL CRL.
  explicit Crl(X509_CRL* c) : crl_(c, X509Deleter{}) {}

 private:
  std::shared_ptr<X509_CRL> crl_;
};

struct RevokedEntry {
  Bytes serial;
  std::time_t revoked_at;
};
struct CrlParams {
  std::vector<RevokedEntry> revoked;
  std::time_t this_update = 0;
  std::time_t next_update = 0;
  std::uint64_t number = 1;
};
Result<Crl> make_crl(const Certificate& issuer, const PrivateKey& issuer_key, const CrlParams& params);

// Checks a chain (leaf first) against one configured root: signature chain,
// validity at `now`, the required role, and revocation when a CRL is set.
// Chains that verified, so that a known signer costs one signature check
// instead of a chain and CRL verification per document. Thread-safe, bounded
// (when full it starts again empty). An entry is keyed by the chain's DER
// bytes, the role asked for and the CRL (number and next update) it was
// checked against, so a newer CRL never finds an entry made under an older
// one; and it is used only while every certificate of the chain, the root
// included, is valid and the CRL is current (from its thisUpdate to its
// nextUpdate).
class VerifiedChains {
 public:
  explicit VerifiedChains(std::size_t capacity = 4096) : capacity_(capacity) {}
  std::optional<Certificate> find(const std::string& key, std::time_t t) const;
  void add(std::string key, Certificate leaf, std::time_t from, std::time_t until);
  std::size_t size() const;
  std::uint64_t hits() const;

 private:
  struct Entry {
    Certificate leaf;
    std::time_t from = 0, until = 0;  // usable for from <= t < until
  };
  std::size_t capacity_;
  mutable std::mutex mu_;
  std::unordered_map<std::string, Entry> map_;
  mutable std::uint64_t hits_ = 0;
};

class CertVerifier {
 public:
  explicit CertVerifier(Certificate root) : root_(std::move(root)) {}
  void set_crl(std::optional<Crl> crl) { crl_ = std::move(crl); }
  // Remember chains that verified against a CRL here, and look them up first.
  void set_cache(std::shared_ptr<VerifiedChains> cache) { cache_ = std::move(cache); }
  // Fixes the verification time (tests); 0 means the system clock.
  void set_time(std::time_t t) { time_ = t; }
  const Certificate& root() const { return root_; }
  const std::optional<Crl>& crl() const { return crl_; }

  Result<Certificate> verify(const std::vector<Certificate>& chain, Role role) const;

 private:
  Certificate root_;
  std::optional<Crl> crl_;
  std::time_t time_ = 0;
  std::shared_ptr<VerifiedChains> cache_;
};

// Reads all PEM certificates in a text (e.g. a chain file).
Result<std::vector<Certificate>> certificates_from_pem(std::string_view pem);

}  // namespace zf
