#include "core/x509.h"

#include <openssl/asn1.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <mutex>
#include <optional>
#include <unordered_map>

namespace zf {
namespace {

struct RoleRow {
  Role role;
  std::string_view name;
  std::string_view oid;
};
// The project's private arc: the project UUID b8999dcf-5273-40f7-ae15-32a4e8896d01
// in the GUID-based private-use branch 1.2.840.113556.1.8000.2554 (the UUID split
// into 16-, 16-, 16-, 16-, 16-, 24- and 24-bit arcs), then .1.<n> for the roles.
// It was 2.25.<the same UUID as one 128-bit integer>, which OpenSSL reads but
// Python's cryptography (Debian 12: 38) refuses and Go's encoding/asn1 cannot hold:
// a certificate must be readable by every common X.509 stack (DESIGN.md §2), so
// every arc here fits in 31 bits (Go's limit). A deployment with its own IANA enterprise number
// replaces the prefix with 1.3.6.1.4.1.<number> (docs/ca-api.md "Roles"); the
// suffixes and everything that checks roles stay as they are.
constexpr std::string_view kRoleArc = "1.2.840.113556.1.8000.2554.47257.40399.21107.16631.44565.3319016.9006337";
constexpr std::array kRoles = {
    RoleRow{Role::secure_element, "secure-element", "1.2.840.113556.1.8000.2554.47257.40399.21107.16631.44565.3319016.9006337.1.1"},
    RoleRow{Role::custody, "custody", "1.2.840.113556.1.8000.2554.47257.40399.21107.16631.44565.3319016.9006337.1.2"},
    RoleRow{Role::registry, "registry", "1.2.840.113556.1.8000.2554.47257.40399.21107.16631.44565.3319016.9006337.1.3"},
    RoleRow{Role::tls_server, "tls-server", "1.2.840.113556.1.8000.2554.47257.40399.21107.16631.44565.3319016.9006337.1.4"},
    RoleRow{Role::ca_admin, "ca-admin", "1.2.840.113556.1.8000.2554.47257.40399.21107.16631.44565.3319016.9006337.1.5"},
    RoleRow{Role::se_attestation, "se-attestation", "1.2.840.113556.1.8000.2554.47257.40399.21107.16631.44565.3319016.9006337.1.6"},
};
static_assert([] {
  for (const auto& r : kRoles)
    if (!r.oid.starts_with(kRoleArc)) return false;
  return true;
}(), "every role OID lies under the project's arc");

struct Free {
  void operator()(BIO* p) const { BIO_free(p); }
  void operator()(BIGNUM* p) const { BN_free(p); }
  // ASN1_INTEGER and ASN1_TIME are both ASN1_STRING.
  void operator()(ASN1_STRING* p) const { ASN1_STRING_free(p); }
  void operator()(X509_STORE* p) const { X509_STORE_free(p); }
  void operator()(X509_STORE_CTX* p) const { X509_STORE_CTX_free(p); }
  void operator()(STACK_OF(X509) * p) const { sk_X509_free(p); }
  void operator()(EXTENDED_KEY_USAGE* p) const { EXTENDED_KEY_USAGE_free(p); }
  void operator()(X509_EXTENSION* p) const { X509_EXTENSION_free(p); }
};
template <class T>
using Own = std::unique_ptr<T, Free>;

std::string bio_string(BIO* bio) {
  char* data = nullptr;
  long len = BIO_get_mem_data(bio, &data);
  return std::string(data, static_cast<std::size_t>(len));
}

std::time_t asn1_to_time(const ASN1_TIME* t) {
  struct tm tm {};
  if (!t || ASN1_TIME_to_tm(t, &tm) != 1) return 0;
  return timegm(&tm);
}

const EVP_MD* md_for(const PrivateKey& key) {
  return key.alg() == SigAlg::ES256 ? EVP_sha256() : nullptr;
}

std::string name_entry(const X509_NAME* name, int nid) {
  int idx = X509_NAME_get_index_by_NID(name, nid, -1);
  if (idx < 0) return {};
  const ASN1_STRING* s = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, idx));
  unsigned char* utf8 = nullptr;
  int len = ASN1_STRING_to_UTF8(&utf8, s);
  if (len < 0) return {};
  std::string out(reinterpret_cast<char*>(utf8), static_cast<std::size_t>(len));
  OPENSSL_free(utf8);
  return out;
}

Status add_name(X509_NAME* name, const std::string& cn, const std::string& user_id) {
  if (cn.empty() || cn.size() > 64) return fail(Errc::bad_field, "common name 1..64 chars", "common_name");
  if (user_id.size() > 64) return fail(Errc::bad_field, "user id too long", "user_id");
  if (!X509_NAME_add_entry_by_NID(name, NID_commonName, MBSTRING_UTF8,
                                  reinterpret_cast<const unsigned char*>(cn.c_str()), -1, -1, 0))
    return fail(Errc::bad_field, "invalid common name", "common_name");
  if (!user_id.empty() &&
      !X509_NAME_add_entry_by_NID(name, NID_userId, MBSTRING_UTF8,
                                  reinterpret_cast<const unsigned char*>(user_id.c_str()), -1, -1, 0))
    return fail(Errc::bad_field, "invalid user id", "user_id");
  return {};
}

Status add_ext(X509* cert, X509V3_CTX* ctx, int nid, const std::string& value) {
  Own<X509_EXTENSION> ext(X509V3_EXT_conf_nid(nullptr, ctx, nid, value.c_str()));
  if (!ext || !X509_add_ext(cert, ext.get(), -1))
    return fail(Errc::crypto_error, "adding extension " + value + ": " + openssl_error());
  return {};
}

Result<Certificate> build(X509* issuer_or_null, const PrivateKey& issuer_key,
                          const PublicKey& subject, const IssueParams& p) {
  if (p.serial.empty()) return fail(Errc::internal, "serial missing");
  if (p.not_after <= p.not_before) return fail(Errc::bad_field, "empty validity period");
  X509* raw = X509_new();
  Certificate cert(raw);
  X509_set_version(raw, 2);
  Own<BIGNUM> bn(BN_bin2bn(p.serial.data(), static_cast<int>(p.serial.size()), nullptr));
  Own<ASN1_INTEGER> serial(BN_to_ASN1_INTEGER(bn.get(), nullptr));
  X509_set_serialNumber(raw, serial.get());
  X509_NAME* name = X509_get_subject_name(raw);
  if (auto s = add_name(name, p.common_name, p.user_id); !s) return std::unexpected(s.error());
  X509_set_issuer_name(raw, issuer_or_null ? X509_get_subject_name(issuer_or_null) : name);
  ASN1_TIME_set(X509_getm_notBefore(raw), p.not_before);
  ASN1_TIME_set(X509_getm_notAfter(raw), p.not_after);
  X509_set_pubkey(raw, subject.get());

  X509V3_CTX ctx;
  X509V3_set_ctx(&ctx, issuer_or_null ? issuer_or_null : raw, raw, nullptr, nullptr, 0);
  Status s = add_ext(raw, &ctx, NID_basic_constraints, p.is_ca ? "critical,CA:TRUE,pathlen:0" : "critical,CA:FALSE");
  if (s) s = add_ext(raw, &ctx, NID_key_usage,
                     p.is_ca ? "critical,keyCertSign,cRLSign,digitalSignature"
                             : (subject.alg() == SigAlg::ES256 ? "critical,digitalSignature,keyAgreement"
                                                               : "critical,digitalSignature"));
  if (s) s = add_ext(raw, &ctx, NID_subject_key_identifier, "hash");
  if (s) s = add_ext(raw, &ctx, NID_authority_key_identifier, "keyid:always");
  if (s && !p.roles.empty()) {
    std::string eku;
    for (Role r : p.roles) {
      if (!eku.empty()) eku += ",";
      // TLS clients (OpenSSL, browsers) require serverAuth on a server certificate.
      if (r == Role::tls_server) eku += "serverAuth,";
      eku += role_oid(r);
    }
    s = add_ext(raw, &ctx, NID_ext_key_usage, eku);
  }
  if (s && (!p.dns_names.empty() || !p.ip_addrs.empty() || !p.uris.empty())) {
    std::string san;
    for (const auto& d : p.dns_names) san += (san.empty() ? "" : ",") + std::string("DNS:") + d;
    for (const auto& ip : p.ip_addrs) san += (san.empty() ? "" : ",") + std::string("IP:") + ip;
    for (const auto& u : p.uris) {
      // The config syntax splits on commas; service_uri() never produces one.
      if (u.find(',') != std::string::npos) return fail(Errc::bad_field, "SAN URI with a comma", "uris");
      san += (san.empty() ? "" : ",") + std::string("URI:") + u;
    }
    s = add_ext(raw, &ctx, NID_subject_alt_name, san);
  }
  if (!s) return std::unexpected(s.error());
  if (X509_sign(raw, issuer_key.get(), md_for(issuer_key)) <= 0)
    return fail(Errc::crypto_error, "signing certificate: " + openssl_error());
  return cert;
}

// OpenSSL parses a certificate whose SubjectPublicKeyInfo it cannot decode (unknown
// algorithm, point off the curve) and only fails later, returning a null key. Every
// Certificate must have a usable key (public_key() relies on it), so such input is refused.
bool public_key_decodes(X509* cert) {
  if (X509_get0_pubkey(cert) != nullptr) return true;
  ERR_clear_error();
  return false;
}

Errc map_verify_error(int err) {
  switch (err) {
    case X509_V_ERR_CERT_HAS_EXPIRED:
      return Errc::cert_expired;
    case X509_V_ERR_CERT_NOT_YET_VALID:
      return Errc::cert_not_yet_valid;
    case X509_V_ERR_CERT_REVOKED:
      return Errc::cert_revoked;
    default:
      return Errc::cert_untrusted;
  }
}

}  // namespace

std::string_view role_name(Role role) {
  for (const auto& r : kRoles)
    if (r.role == role) return r.name;
  return "unknown";
}

Result<Role> role_from_name(std::string_view name) {
  for (const auto& r : kRoles)
    if (r.name == name) return r.role;
  return fail(Errc::bad_field, "unknown role '" + std::string(name.substr(0, 32)) + "'", "role");
}

std::string_view role_oid(Role role) {
  for (const auto& r : kRoles)
    if (r.role == role) return r.oid;
  return {};
}

std::string service_uri(std::string_view kind, std::string_view id) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out = "urn:zhuanfu:" + std::string(kind) + ":";
  for (unsigned char c : id) {
    if (std::isalnum(c) || c == '.' || c == '_' || c == '~' || c == '-') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 0xF];
    }
  }
  return out;
}

// ---- Certificate

namespace {

// Parsed certificates by their exact DER bytes. Every signed document carries
// its signer's chain in `x5c`, so the same few certificates are parsed over and
// over; parsing is about half the cost of opening a document (BENCHMARKS.md).
// The key is the whole DER, so a cached entry is exactly what parsing those
// bytes again would give. Only successful parses are kept; the cache forgets
// everything when full rather than tracking recency.
class ParsedCertificateCache {
 public:
  std::optional<Certificate> find(ByteView der) {
    std::lock_guard lock(mu_);
    auto it = map_.find(key(der));
    if (it == map_.end()) return std::nullopt;
    return it->second;
  }
  void put(ByteView der, const Certificate& cert) {
    std::lock_guard lock(mu_);
    if (map_.size() >= kMaxEntries) map_.clear();
    map_.emplace(key(der), cert);
  }

 private:
  static constexpr std::size_t kMaxEntries = 4096;
  static std::string key(ByteView der) {
    return std::string(reinterpret_cast<const char*>(der.data()), der.size());
  }
  std::mutex mu_;
  std::unordered_map<std::string, Certificate> map_;
};

ParsedCertificateCache& parsed_certificates() {
  static ParsedCertificateCache cache;
  return cache;
}

}  // namespace

Result<Certificate> Certificate::from_der(ByteView der) {
  if (auto cached = parsed_certificates().find(der)) return *cached;
  auto cert = from_der_uncached(der);
  if (cert) parsed_certificates().put(der, *cert);
  return cert;
}

Result<Certificate> Certificate::from_der_uncached(ByteView der) {
  const unsigned char* p = der.data();
  X509* raw = d2i_X509(nullptr, &p, static_cast<long>(der.size()));
  if (!raw || p != der.data() + der.size()) {
    X509_free(raw);
    ERR_clear_error();
    return fail(Errc::cert_malformed, "not a DER certificate", "x5c");
  }
  Certificate cert(raw);
  if (!public_key_decodes(raw))
    return fail(Errc::cert_malformed, "certificate public key cannot be decoded", "x5c");
  return cert;
}

Result<Certificate> Certificate::from_pem(std::string_view pem) {
  Own<BIO> bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  X509* raw = PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr);
  if (!raw) {
    ERR_clear_error();
    return fail(Errc::cert_malformed, "not a PEM certificate");
  }
  Certificate cert(raw);
  if (!public_key_decodes(raw))
    return fail(Errc::cert_malformed, "certificate public key cannot be decoded");
  return cert;
}

Result<std::vector<Certificate>> certificates_from_pem(std::string_view pem) {
  Own<BIO> bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  std::vector<Certificate> out;
  while (X509* raw = PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr)) {
    out.emplace_back(raw);
    if (!public_key_decodes(raw))
      return fail(Errc::cert_malformed, "certificate public key cannot be decoded");
  }
  ERR_clear_error();
  if (out.empty()) return fail(Errc::cert_malformed, "no PEM certificate found");
  return out;
}

Bytes Certificate::der() const {
  unsigned char* out = nullptr;
  int len = i2d_X509(cert_.get(), &out);
  Bytes der(out, out + (len > 0 ? len : 0));
  OPENSSL_free(out);
  return der;
}

std::string Certificate::pem() const {
  Own<BIO> bio(BIO_new(BIO_s_mem()));
  PEM_write_bio_X509(bio.get(), cert_.get());
  return bio_string(bio.get());
}

std::string Certificate::serial_hex() const {
  Own<BIGNUM> bn(ASN1_INTEGER_to_BN(X509_get0_serialNumber(cert_.get()), nullptr));
  char* hex = BN_bn2hex(bn.get());
  std::string out(hex);
  OPENSSL_free(hex);
  for (auto& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  while (out.size() > 1 && out.front() == '0') out.erase(out.begin());
  return out;
}

std::string Certificate::subject_cn() const {
  return name_entry(X509_get_subject_name(cert_.get()), NID_commonName);
}
std::string Certificate::user_id() const {
  return name_entry(X509_get_subject_name(cert_.get()), NID_userId);
}

std::vector<Role> Certificate::roles() const {
  std::vector<Role> out;
  Own<EXTENDED_KEY_USAGE> eku(static_cast<EXTENDED_KEY_USAGE*>(
      X509_get_ext_d2i(cert_.get(), NID_ext_key_usage, nullptr, nullptr)));
  if (!eku) return out;
  for (int i = 0; i < sk_ASN1_OBJECT_num(eku.get()); ++i) {
    char buf[128];
    int n = OBJ_obj2txt(buf, sizeof(buf), sk_ASN1_OBJECT_value(eku.get(), i), 1);
    if (n <= 0 || n >= static_cast<int>(sizeof(buf))) continue;
    for (const auto& r : kRoles)
      if (r.oid == std::string_view(buf, static_cast<std::size_t>(n))) out.push_back(r.role);
  }
  return out;
}

bool Certificate::has_role(Role role) const {
  for (Role r : roles())
    if (r == role) return true;
  return false;
}

bool Certificate::is_ca() const { return X509_check_ca(cert_.get()) != 0; }
std::time_t Certificate::not_before() const { return asn1_to_time(X509_get0_notBefore(cert_.get())); }
std::time_t Certificate::not_after() const { return asn1_to_time(X509_get0_notAfter(cert_.get())); }

std::vector<std::string> Certificate::san_uris() const {
  std::vector<std::string> out;
  auto* names = static_cast<GENERAL_NAMES*>(
      X509_get_ext_d2i(cert_.get(), NID_subject_alt_name, nullptr, nullptr));
  if (!names) return out;
  for (int i = 0; i < sk_GENERAL_NAME_num(names); ++i) {
    const GENERAL_NAME* g = sk_GENERAL_NAME_value(names, i);
    if (g->type != GEN_URI) continue;
    const ASN1_IA5STRING* u = g->d.uniformResourceIdentifier;
    out.emplace_back(reinterpret_cast<const char*>(ASN1_STRING_get0_data(u)),
                     static_cast<std::size_t>(ASN1_STRING_length(u)));
  }
  GENERAL_NAMES_free(names);
  return out;
}

std::string Certificate::subject_key_id() const {
  const ASN1_OCTET_STRING* ski = X509_get0_subject_key_id(cert_.get());
  if (!ski) return {};
  return hex_encode(ByteView(ASN1_STRING_get0_data(ski), static_cast<std::size_t>(ASN1_STRING_length(ski))));
}

PublicKey Certificate::public_key() const {
  EVP_PKEY* key = X509_get0_pubkey(cert_.get());
  EVP_PKEY_up_ref(key);
  return PublicKey(PkeyPtr(key));
}

// ---- CSR

Result<std::string> make_csr_pem(const PrivateKey& key, const CsrInfo& info) {
  std::unique_ptr<X509_REQ, X509Deleter> req(X509_REQ_new());
  X509_REQ_set_version(req.get(), 0);
  if (auto s = add_name(X509_REQ_get_subject_name(req.get()), info.common_name, info.user_id); !s)
    return std::unexpected(s.error());
  X509_REQ_set_pubkey(req.get(), key.get());
  if (X509_REQ_sign(req.get(), key.get(), md_for(key)) <= 0)
    return fail(Errc::crypto_error, "signing CSR: " + openssl_error());
  Own<BIO> bio(BIO_new(BIO_s_mem()));
  PEM_write_bio_X509_REQ(bio.get(), req.get());
  return bio_string(bio.get());
}

Result<ParsedCsr> parse_csr_pem(std::string_view pem) {
  if (pem.size() > 16 * 1024) return fail(Errc::too_large, "CSR too large", "csr");
  Own<BIO> bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  std::unique_ptr<X509_REQ, X509Deleter> req(PEM_read_bio_X509_REQ(bio.get(), nullptr, nullptr, nullptr));
  if (!req) {
    ERR_clear_error();
    return fail(Errc::csr_malformed, "not a PEM CSR", "csr");
  }
  EVP_PKEY* key = X509_REQ_get0_pubkey(req.get());
  if (!key) return fail(Errc::csr_malformed, "CSR has no public key", "csr");
  // Proof of possession: the CSR must be signed by the key it asks to certify.
  if (X509_REQ_verify(req.get(), key) != 1) {
    ERR_clear_error();
    return fail(Errc::csr_bad_signature, "CSR signature does not match its key", "csr");
  }
  EVP_PKEY_up_ref(key);
  PublicKey pub{PkeyPtr(key)};
  Bytes spki = pub.spki_der();
  auto checked = PublicKey::from_spki_der(spki);  // enforces P-256 / Ed25519
  if (!checked) return fail(Errc::csr_malformed, "CSR key type not allowed", "csr");
  X509_NAME* name = X509_REQ_get_subject_name(req.get());
  CsrInfo info{name_entry(name, NID_commonName), name_entry(name, NID_userId)};
  if (info.common_name.empty()) return fail(Errc::csr_malformed, "CSR has no common name", "csr");
  return ParsedCsr{std::move(*checked), std::move(info)};
}

// ---- Issuance

Bytes new_serial() {
  Bytes s = random_bytes(16);
  s[0] = static_cast<std::uint8_t>((s[0] & 0x7F) | 0x01);  // positive, never zero, fixed length
  return s;
}

Result<Certificate> issue_certificate(const Certificate& issuer, const PrivateKey& issuer_key,
                                      const PublicKey& subject, const IssueParams& params) {
  return build(issuer.get(), issuer_key, subject, params);
}

Result<Certificate> make_self_signed_ca(const PrivateKey& key, const IssueParams& params) {
  IssueParams p = params;
  p.is_ca = true;
  return build(nullptr, key, key.public_key(), p);
}

// ---- CRL

Result<Crl> Crl::from_der(ByteView der) {
  const unsigned char* p = der.data();
  X509_CRL* raw = d2i_X509_CRL(nullptr, &p, static_cast<long>(der.size()));
  if (!raw) {
    ERR_clear_error();
    return fail(Errc::cert_malformed, "not a DER CRL", "crl");
  }
  return Crl(raw);
}

Result<Crl> Crl::from_pem(std::string_view pem) {
  Own<BIO> bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  X509_CRL* raw = PEM_read_bio_X509_CRL(bio.get(), nullptr, nullptr, nullptr);
  if (!raw) {
    ERR_clear_error();
    return fail(Errc::cert_malformed, "not a PEM CRL", "crl");
  }
  return Crl(raw);
}

Bytes Crl::der() const {
  unsigned char* out = nullptr;
  int len = i2d_X509_CRL(crl_.get(), &out);
  Bytes der(out, out + (len > 0 ? len : 0));
  OPENSSL_free(out);
  return der;
}

std::string Crl::pem() const {
  Own<BIO> bio(BIO_new(BIO_s_mem()));
  PEM_write_bio_X509_CRL(bio.get(), crl_.get());
  return bio_string(bio.get());
}

std::time_t Crl::this_update() const { return asn1_to_time(X509_CRL_get0_lastUpdate(crl_.get())); }
std::time_t Crl::next_update() const { return asn1_to_time(X509_CRL_get0_nextUpdate(crl_.get())); }

std::uint64_t Crl::number() const {
  Own<ASN1_INTEGER> n(static_cast<ASN1_INTEGER*>(X509_CRL_get_ext_d2i(crl_.get(), NID_crl_number, nullptr, nullptr)));
  std::uint64_t v = 0;
  if (!n || ASN1_INTEGER_get_uint64(&v, n.get()) != 1) return 0;
  return v;
}

Status Crl::verify_signature(const Certificate& issuer) const {
  if (X509_NAME_cmp(X509_CRL_get_issuer(crl_.get()), X509_get_subject_name(issuer.get())) != 0)
    return fail(Errc::cert_untrusted, "CRL names another issuer", "crl");
  if (X509_CRL_verify(crl_.get(), X509_get0_pubkey(issuer.get())) != 1) {
    ERR_clear_error();
    return fail(Errc::bad_signature, "CRL signature does not verify", "crl");
  }
  return {};
}

Result<Crl> make_crl(const Certificate& issuer, const PrivateKey& issuer_key, const CrlParams& params) {
  X509_CRL* raw = X509_CRL_new();
  Crl crl(raw);
  X509_CRL_set_version(raw, 1);  // v2
  X509_CRL_set_issuer_name(raw, X509_get_subject_name(issuer.get()));
  Own<ASN1_TIME> last(ASN1_TIME_set(nullptr, params.this_update));
  Own<ASN1_TIME> next(ASN1_TIME_set(nullptr, params.next_update));
  X509_CRL_set1_lastUpdate(raw, last.get());
  X509_CRL_set1_nextUpdate(raw, next.get());
  for (const auto& entry : params.revoked) {
    X509_REVOKED* rev = X509_REVOKED_new();
    Own<BIGNUM> bn(BN_bin2bn(entry.serial.data(), static_cast<int>(entry.serial.size()), nullptr));
    Own<ASN1_INTEGER> serial(BN_to_ASN1_INTEGER(bn.get(), nullptr));
    Own<ASN1_TIME> when(ASN1_TIME_set(nullptr, entry.revoked_at));
    X509_REVOKED_set_serialNumber(rev, serial.get());
    X509_REVOKED_set_revocationDate(rev, when.get());
    X509_CRL_add0_revoked(raw, rev);
  }
  X509_CRL_sort(raw);
  X509V3_CTX ctx;
  X509V3_set_ctx(&ctx, issuer.get(), nullptr, nullptr, raw, 0);
  Own<X509_EXTENSION> aki(X509V3_EXT_conf_nid(nullptr, &ctx, NID_authority_key_identifier, "keyid:always"));
  Own<ASN1_INTEGER> number(ASN1_INTEGER_new());
  ASN1_INTEGER_set_uint64(number.get(), params.number);
  if (!aki || !X509_CRL_add_ext(raw, aki.get(), -1) ||
      X509_CRL_add1_ext_i2d(raw, NID_crl_number, number.get(), 0, 0) != 1)
    return fail(Errc::crypto_error, "CRL extensions: " + openssl_error());
  if (X509_CRL_sign(raw, issuer_key.get(), md_for(issuer_key)) <= 0)
    return fail(Errc::crypto_error, "signing CRL: " + openssl_error());
  return crl;
}

// ---- Verification

std::optional<Certificate> VerifiedChains::find(const std::string& key, std::time_t t) const {
  std::lock_guard lock(mu_);
  auto it = map_.find(key);
  if (it == map_.end() || t < it->second.from || t >= it->second.until) return std::nullopt;
  ++hits_;
  return it->second.leaf;
}

void VerifiedChains::add(std::string key, Certificate leaf, std::time_t from, std::time_t until) {
  std::lock_guard lock(mu_);
  if (map_.size() >= capacity_) map_.clear();
  map_.insert_or_assign(std::move(key), Entry{std::move(leaf), from, until});
}

std::size_t VerifiedChains::size() const {
  std::lock_guard lock(mu_);
  return map_.size();
}

std::uint64_t VerifiedChains::hits() const {
  std::lock_guard lock(mu_);
  return hits_;
}

Result<Certificate> CertVerifier::verify(const std::vector<Certificate>& chain, Role role) const {
  if (chain.empty()) return fail(Errc::cert_untrusted, "empty certificate chain", "x5c");
  if (chain.size() > 4) return fail(Errc::too_large, "certificate chain too long", "x5c");
  // Only a chain checked against a CRL is remembered; the key holds every
  // byte of the chain (length-prefixed), the role and the CRL's identity.
  std::string key;
  const std::time_t t = time_ != 0 ? time_ : std::time(nullptr);
  if (cache_ && crl_) {
    key = std::to_string(static_cast<int>(role)) + "|" + std::to_string(crl_->number()) + "|" +
          std::to_string(crl_->next_update());
    for (const auto& c : chain) {
      Bytes der = c.der();
      key += "|" + std::to_string(der.size()) + ":";
      key.append(reinterpret_cast<const char*>(der.data()), der.size());
    }
    if (auto leaf = cache_->find(key, t)) return *leaf;
  }
  Own<X509_STORE> store(X509_STORE_new());
  X509_STORE_add_cert(store.get(), root_.get());
  unsigned long flags = X509_V_FLAG_X509_STRICT;
  if (crl_) {
    X509_STORE_add_crl(store.get(), crl_->get());
    flags |= X509_V_FLAG_CRL_CHECK;
  }
  Own<STACK_OF(X509)> untrusted(sk_X509_new_null());
  for (std::size_t i = 1; i < chain.size(); ++i) sk_X509_push(untrusted.get(), chain[i].get());
  Own<X509_STORE_CTX> ctx(X509_STORE_CTX_new());
  if (!X509_STORE_CTX_init(ctx.get(), store.get(), chain[0].get(), untrusted.get()))
    return fail(Errc::crypto_error, "verify context");
  X509_STORE_CTX_set_flags(ctx.get(), flags);
  if (time_ != 0) X509_STORE_CTX_set_time(ctx.get(), 0, time_);
  if (X509_verify_cert(ctx.get()) != 1) {
    int err = X509_STORE_CTX_get_error(ctx.get());
    ERR_clear_error();
    return fail(map_verify_error(err), X509_verify_cert_error_string(err), "x5c");
  }
  const Certificate& leaf = chain[0];
  if (leaf.is_ca()) return fail(Errc::cert_wrong_role, "a CA certificate cannot sign documents", "x5c");
  if (!leaf.has_role(role))
    return fail(Errc::cert_wrong_role, "certificate lacks role " + std::string(role_name(role)), "x5c");
  if (!key.empty()) {
    std::time_t from = std::max(root_.not_before(), crl_->this_update()), until = std::min(root_.not_after(), crl_->next_update());
    for (const auto& c : chain) {
      from = std::max(from, c.not_before());
      until = std::min(until, c.not_after());
    }
    cache_->add(std::move(key), leaf, from, until);
  }
  return leaf;
}

}  // namespace zf
