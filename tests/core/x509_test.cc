// X.509: roles, issuance, CSRs (proof of possession), CRLs, and the verifier's
// chain / validity / role / revocation decisions (DESIGN.md §2).
#include "core/x509.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include <ctime>
#include <set>
#include <string>
#include <vector>

#include "test_pki.h"
#include "test_util.h"

namespace zf {
namespace {

using test::FailsWith;
using test::FailsWithField;
using test::IsOk;
using test::issue;
using test::issue_params;
using test::kDay;
using test::KeyCert;
using test::kNow;
using test::make_root;
using test::make_test_crl;
using test::must;
using test::serial_bytes;
using test::verifier_at;

constexpr Role kAllRoles[] = {Role::secure_element, Role::custody, Role::registry, Role::tls_server,
                              Role::ca_admin};

// PEM body -> DER (first block only).
Bytes pem_to_der(std::string_view pem) {
  auto begin = pem.find("-----\n");
  auto end = pem.find("-----END");
  std::string b64;
  for (char c : pem.substr(begin + 6, end - begin - 6))
    if (c != '\n') b64 += c;
  return must(b64_decode(b64), "pem body");
}

std::string der_to_pem(ByteView der, std::string_view label) {
  std::string b64 = b64_encode(der);
  std::string out = "-----BEGIN " + std::string(label) + "-----\n";
  for (std::size_t i = 0; i < b64.size(); i += 64) out += b64.substr(i, 64) + "\n";
  out += "-----END " + std::string(label) + "-----\n";
  return out;
}

// Replaces the first occurrence of `from` in `der` with `to` (same length).
Bytes replace_bytes(Bytes der, std::string_view from, std::string_view to) {
  std::string s = to_string(der);
  auto at = s.find(from);
  if (at == std::string::npos || from.size() != to.size())
    throw std::runtime_error("no such bytes");
  s.replace(at, from.size(), to);
  return Bytes(s.begin(), s.end());
}

// ---- Roles

TEST(Roles, NamesAndOidsRoundTrip) {
  std::set<std::string_view> oids;
  for (Role r : kAllRoles) {
    auto back = role_from_name(role_name(r));
    ASSERT_THAT(back, IsOk()) << role_name(r);
    EXPECT_EQ(*back, r);
    // The project's arc, and every arc small enough for stacks that keep arcs
    // in 31 bits (Go encoding/asn1 refuses larger; Python cryptography 38 refuses
    // the 128-bit arc of 2.25.<UUID>).
    EXPECT_TRUE(role_oid(r).starts_with(
        "1.2.840.113556.1.8000.2554.47257.40399.21107.16631.44565.3319016.9006337.1."))
        << role_oid(r);
    std::string_view rest = role_oid(r);
    while (!rest.empty()) {
      std::size_t dot = rest.find('.');
      std::string_view arc = rest.substr(0, dot);
      ASSERT_FALSE(arc.empty()) << role_oid(r);
      EXPECT_LE(std::stoull(std::string(arc)), 0x7FFFFFFFull) << role_oid(r);
      rest = dot == std::string_view::npos ? std::string_view{} : rest.substr(dot + 1);
    }
    oids.insert(role_oid(r));
  }
  EXPECT_EQ(oids.size(), std::size(kAllRoles)) << "every role has its own OID";
  EXPECT_EQ(role_name(Role::secure_element), "secure-element");
  EXPECT_EQ(role_name(Role::tls_server), "tls-server");
}

TEST(Roles, UnknownNameIsRefused) {
  for (const char* n : {"", "admin", "Secure-Element", "secure_element", "custody "})
    EXPECT_THAT(role_from_name(n), FailsWithField(Errc::bad_field, "role")) << n;
}

// ---- Issuance

class Pki : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    root_ = new KeyCert(make_root());
    other_root_ = new KeyCert(make_root("other root"));
  }
  static void TearDownTestSuite() {
    delete root_;
    delete other_root_;
  }
  static const KeyCert& root() { return *root_; }
  static const KeyCert& other_root() { return *other_root_; }

 private:
  static KeyCert* root_;
  static KeyCert* other_root_;
};
KeyCert* Pki::root_ = nullptr;
KeyCert* Pki::other_root_ = nullptr;

TEST_F(Pki, RootIsASelfSignedCa) {
  const Certificate& c = root().cert;
  EXPECT_TRUE(c.is_ca());
  EXPECT_EQ(c.subject_cn(), "zf test root");
  EXPECT_EQ(c.not_before(), kNow - 30 * kDay);
  EXPECT_EQ(c.not_after(), kNow + 3650 * kDay);
  EXPECT_FALSE(c.subject_key_id().empty());
  EXPECT_EQ(c.public_key().spki_der(), root().key.public_key().spki_der());
  EXPECT_EQ(X509_check_issued(c.get(), c.get()), X509_V_OK);
}

TEST_F(Pki, IssuedCertificateCarriesTheParameters) {
  PrivateKey key = must(PrivateKey::generate());
  IssueParams p;
  p.common_name = "se-0001";
  p.user_id = "user-42";
  p.roles = {Role::secure_element};
  p.not_before = kNow - kDay;
  p.not_after = kNow + 100 * kDay;
  p.serial = {0x01, 0x02};
  Certificate c = must(issue_certificate(root().cert, root().key, key.public_key(), p));
  EXPECT_EQ(c.subject_cn(), "se-0001");
  EXPECT_EQ(c.user_id(), "user-42");
  EXPECT_EQ(c.roles(), std::vector<Role>{Role::secure_element});
  EXPECT_TRUE(c.has_role(Role::secure_element));
  EXPECT_FALSE(c.has_role(Role::custody));
  EXPECT_FALSE(c.is_ca());
  EXPECT_EQ(c.not_before(), kNow - kDay);
  EXPECT_EQ(c.not_after(), kNow + 100 * kDay);
  EXPECT_EQ(c.serial_hex(), "102");
  EXPECT_EQ(c.public_key().spki_der(), key.public_key().spki_der());
  EXPECT_FALSE(c.subject_key_id().empty());
  EXPECT_NE(c.subject_key_id(), root().cert.subject_key_id());
  EXPECT_EQ(X509_check_issued(root().cert.get(), c.get()), X509_V_OK);
}

TEST_F(Pki, SerialHexHasNoLeadingZeros) {
  IssueParams p;
  p.common_name = "x";
  p.roles = {Role::custody};
  p.not_before = kNow - kDay;
  p.not_after = kNow + kDay;
  p.serial = {0x00, 0x0a, 0xbc};
  KeyCert kc = issue_params(root(), p);
  EXPECT_EQ(kc.cert.serial_hex(), "abc");
  EXPECT_EQ(serial_bytes(kc.cert), (Bytes{0x0a, 0xbc}));
}

TEST_F(Pki, Utf8NamesSurvive) {
  KeyCert kc = issue(root(), Role::secure_element, "\xe5\xbc\xa0\xe4\xb8\x89-se", "\xe7\x94\xa8-1");
  EXPECT_EQ(kc.cert.subject_cn(), "\xe5\xbc\xa0\xe4\xb8\x89-se");
  EXPECT_EQ(kc.cert.user_id(), "\xe7\x94\xa8-1");
}

TEST_F(Pki, UserIdIsOptional) {
  KeyCert kc = issue(root(), Role::custody, "bank-a");
  EXPECT_EQ(kc.cert.user_id(), "");
}

TEST_F(Pki, SeveralRoles) {
  IssueParams p;
  p.common_name = "multi";
  p.roles = {Role::custody, Role::registry};
  p.not_before = kNow - kDay;
  p.not_after = kNow + kDay;
  KeyCert kc = issue_params(root(), p);
  EXPECT_EQ(kc.cert.roles(), (std::vector<Role>{Role::custody, Role::registry}));
  EXPECT_THAT(verifier_at(root()).verify({kc.cert}, Role::custody), IsOk());
  EXPECT_THAT(verifier_at(root()).verify({kc.cert}, Role::registry), IsOk());
  EXPECT_THAT(verifier_at(root()).verify({kc.cert}, Role::secure_element),
              FailsWith(Errc::cert_wrong_role));
}

TEST_F(Pki, TlsServerCertificateIsUsableByTlsClients) {
  IssueParams p;
  p.common_name = "bank-a.local";
  p.roles = {Role::tls_server};
  p.dns_names = {"localhost", "bank-a.local"};
  p.ip_addrs = {"127.0.0.1", "::1"};
  p.not_before = kNow - kDay;
  p.not_after = kNow + kDay;
  KeyCert kc = issue_params(root(), p);
  EXPECT_EQ(kc.cert.roles(), std::vector<Role>{Role::tls_server});
  EXPECT_NE(X509_get_extended_key_usage(kc.cert.get()) & XKU_SSL_SERVER, 0u);
  EXPECT_EQ(X509_check_host(kc.cert.get(), "localhost", 0, 0, nullptr), 1);
  EXPECT_EQ(X509_check_host(kc.cert.get(), "bank-a.local", 0, 0, nullptr), 1);
  EXPECT_NE(X509_check_host(kc.cert.get(), "evil.local", 0, 0, nullptr), 1);
  EXPECT_EQ(X509_check_ip_asc(kc.cert.get(), "127.0.0.1", 0), 1);
  EXPECT_EQ(X509_check_ip_asc(kc.cert.get(), "::1", 0), 1);
  EXPECT_NE(X509_check_ip_asc(kc.cert.get(), "10.0.0.1", 0), 1);
}

// A service's name travels as a SAN URI (docs/ca-api.md "TLS certificates"):
// read back exactly, and never taken for a host name.
TEST_F(Pki, TlsServerCertificateNamesItsServiceAsAUri) {
  EXPECT_EQ(service_uri("bank", "bank-a"), "urn:zhuanfu:bank:bank-a");
  EXPECT_EQ(service_uri("registry", "reg_1.x~y"), "urn:zhuanfu:registry:reg_1.x~y");
  EXPECT_EQ(service_uri("ca", "zhuanfu Root CA"), "urn:zhuanfu:ca:zhuanfu%20Root%20CA");
  EXPECT_EQ(service_uri("ca", "a,b/c:d%\xe4"), "urn:zhuanfu:ca:a%2Cb%2Fc%3Ad%25%E4");
  EXPECT_EQ(service_uri("bank", ""), "urn:zhuanfu:bank:");

  IssueParams p;
  p.common_name = "bank-a";
  p.roles = {Role::tls_server};
  p.dns_names = {"localhost"};
  p.ip_addrs = {"127.0.0.1"};
  p.uris = {service_uri("bank", "bank-a")};
  p.not_before = kNow - kDay;
  p.not_after = kNow + kDay;
  KeyCert kc = issue_params(root(), p);
  EXPECT_EQ(kc.cert.san_uris(), std::vector<std::string>{"urn:zhuanfu:bank:bank-a"});
  EXPECT_EQ(X509_check_host(kc.cert.get(), "localhost", 0, 0, nullptr), 1);
  EXPECT_NE(X509_check_host(kc.cert.get(), "bank-a", 0, 0, nullptr), 1);
  EXPECT_NE(X509_check_host(kc.cert.get(), "urn:zhuanfu:bank:bank-a", 0, 0, nullptr), 1);
  EXPECT_TRUE(issue(root(), Role::custody, "bank-a").cert.san_uris().empty());

  p.uris = {"urn:zhuanfu:bank:a,DNS:evil.example"};
  p.serial = new_serial();
  PrivateKey key = must(PrivateKey::generate());
  EXPECT_THAT(issue_certificate(root().cert, root().key, key.public_key(), p),
              FailsWithField(Errc::bad_field, "uris"));
}

TEST_F(Pki, IssuanceRefusesBadParameters) {
  PrivateKey key = must(PrivateKey::generate());
  IssueParams good;
  good.common_name = "ok";
  good.roles = {Role::custody};
  good.not_before = kNow;
  good.not_after = kNow + kDay;
  good.serial = new_serial();
  EXPECT_THAT(issue_certificate(root().cert, root().key, key.public_key(), good), IsOk());

  IssueParams p = good;
  p.not_after = p.not_before;
  EXPECT_THAT(issue_certificate(root().cert, root().key, key.public_key(), p),
              FailsWith(Errc::bad_field));
  p = good;
  p.not_after = p.not_before - 1;
  EXPECT_THAT(issue_certificate(root().cert, root().key, key.public_key(), p),
              FailsWith(Errc::bad_field));
  p = good;
  p.common_name = "";
  EXPECT_THAT(issue_certificate(root().cert, root().key, key.public_key(), p),
              FailsWithField(Errc::bad_field, "common_name"));
  p = good;
  p.common_name = std::string(65, 'c');
  EXPECT_THAT(issue_certificate(root().cert, root().key, key.public_key(), p),
              FailsWithField(Errc::bad_field, "common_name"));
  p.common_name = std::string(64, 'c');
  EXPECT_THAT(issue_certificate(root().cert, root().key, key.public_key(), p), IsOk());
  p = good;
  p.user_id = std::string(65, 'u');
  EXPECT_THAT(issue_certificate(root().cert, root().key, key.public_key(), p),
              FailsWithField(Errc::bad_field, "user_id"));
  p = good;
  p.serial.clear();
  EXPECT_THAT(issue_certificate(root().cert, root().key, key.public_key(), p),
              FailsWith(Errc::internal));
}

TEST(NewSerial, IsPositiveNonZeroAndUnique) {
  std::set<Bytes> seen;
  for (int i = 0; i < 200; ++i) {
    Bytes s = new_serial();
    ASSERT_EQ(s.size(), 16u);
    EXPECT_EQ(s[0] & 0x80, 0) << "positive";
    EXPECT_NE(s[0], 0) << "fixed length, never zero";
    EXPECT_TRUE(seen.insert(s).second);
  }
}

// ---- Encodings

TEST_F(Pki, DerAndPemRoundTrip) {
  KeyCert kc = issue(root(), Role::custody, "bank-a");
  Bytes der = kc.cert.der();
  auto from_der = Certificate::from_der(der);
  ASSERT_THAT(from_der, IsOk());
  EXPECT_EQ(from_der->der(), der);
  std::string pem = kc.cert.pem();
  EXPECT_TRUE(pem.starts_with("-----BEGIN CERTIFICATE-----\n"));
  auto from_pem = Certificate::from_pem(pem);
  ASSERT_THAT(from_pem, IsOk());
  EXPECT_EQ(from_pem->der(), der);
}

TEST_F(Pki, ChainFileParsesInOrder) {
  KeyCert kc = issue(root(), Role::custody, "bank-a");
  auto certs = certificates_from_pem(kc.cert.pem() + root().cert.pem());
  ASSERT_THAT(certs, IsOk());
  ASSERT_EQ(certs->size(), 2u);
  EXPECT_EQ((*certs)[0].der(), kc.cert.der());
  EXPECT_EQ((*certs)[1].der(), root().cert.der());
}

TEST_F(Pki, MalformedCertificatesAreRefused) {
  Bytes der = root().cert.der();
  Bytes trailing = der;
  trailing.push_back(0);
  Bytes truncated(der.begin(), der.end() - 1);
  for (const Bytes& b :
       {Bytes{}, Bytes{0x30, 0x00}, test::bytes_of("not a cert"), trailing, truncated})
    EXPECT_THAT(Certificate::from_der(b), FailsWithField(Errc::cert_malformed, "x5c"));
  EXPECT_THAT(Certificate::from_pem("not pem"), FailsWith(Errc::cert_malformed));
  EXPECT_THAT(Certificate::from_pem(""), FailsWith(Errc::cert_malformed));
  EXPECT_THAT(certificates_from_pem("no certificates here"), FailsWith(Errc::cert_malformed));
  EXPECT_THAT(certificates_from_pem(""), FailsWith(Errc::cert_malformed));
}

// ---- CSR

TEST(Csr, RoundTripCarriesKeyAndNames) {
  for (SigAlg alg : {SigAlg::ES256, SigAlg::EdDSA}) {
    PrivateKey key = must(PrivateKey::generate(alg));
    std::string pem = must(make_csr_pem(key, {"se-0001", "user-42"}));
    EXPECT_TRUE(pem.starts_with("-----BEGIN CERTIFICATE REQUEST-----"));
    auto parsed = parse_csr_pem(pem);
    ASSERT_THAT(parsed, IsOk()) << sig_alg_name(alg);
    EXPECT_EQ(parsed->key.spki_der(), key.public_key().spki_der());
    EXPECT_EQ(parsed->info.common_name, "se-0001");
    EXPECT_EQ(parsed->info.user_id, "user-42");
  }
}

TEST(Csr, UserIdIsOptional) {
  PrivateKey key = must(PrivateKey::generate());
  auto parsed = parse_csr_pem(must(make_csr_pem(key, {"bank-a", ""})));
  ASSERT_THAT(parsed, IsOk());
  EXPECT_EQ(parsed->info.user_id, "");
}

TEST(Csr, MakeRefusesBadNames) {
  PrivateKey key = must(PrivateKey::generate());
  EXPECT_THAT(make_csr_pem(key, {"", ""}), FailsWithField(Errc::bad_field, "common_name"));
  EXPECT_THAT(make_csr_pem(key, {std::string(65, 'x'), ""}),
              FailsWithField(Errc::bad_field, "common_name"));
  EXPECT_THAT(make_csr_pem(key, {"ok", std::string(65, 'x')}),
              FailsWithField(Errc::bad_field, "user_id"));
}

TEST(Csr, TamperedSubjectBreaksTheSignature) {
  PrivateKey key = must(PrivateKey::generate());
  std::string pem = must(make_csr_pem(key, {"tamper-me-cn", "user-1"}));
  Bytes der = pem_to_der(pem);
  ASSERT_THAT(parse_csr_pem(der_to_pem(der, "CERTIFICATE REQUEST")), IsOk()) << "helper sanity";
  std::string forged =
      der_to_pem(replace_bytes(der, "tamper-me-cn", "Tamper-me-cn"), "CERTIFICATE REQUEST");
  EXPECT_THAT(parse_csr_pem(forged), FailsWithField(Errc::csr_bad_signature, "csr"));
  std::string other_user =
      der_to_pem(replace_bytes(der, "user-1", "user-2"), "CERTIFICATE REQUEST");
  EXPECT_THAT(parse_csr_pem(other_user), FailsWithField(Errc::csr_bad_signature, "csr"));
}

TEST(Csr, TamperedSignatureBytesAreRefused) {
  PrivateKey key = must(PrivateKey::generate(SigAlg::EdDSA));
  Bytes der = pem_to_der(must(make_csr_pem(key, {"se-1", ""})));
  der.back() ^= 0x01;  // last byte of the Ed25519 signature
  EXPECT_THAT(parse_csr_pem(der_to_pem(der, "CERTIFICATE REQUEST")),
              FailsWithField(Errc::csr_bad_signature, "csr"));
}

TEST(Csr, SplicedPublicKeyIsRefused) {
  // Someone else's key with our signature: no proof of possession.
  PrivateKey mine = must(PrivateKey::generate());
  PrivateKey theirs = must(PrivateKey::generate());
  Bytes der = pem_to_der(must(make_csr_pem(mine, {"se-1", ""})));
  const unsigned char* p = der.data();
  X509_REQ* req = d2i_X509_REQ(nullptr, &p, static_cast<long>(der.size()));
  ASSERT_NE(req, nullptr);
  ASSERT_EQ(X509_REQ_set_pubkey(req, theirs.get()), 1);
  unsigned char* out = nullptr;
  int len = i2d_X509_REQ(req, &out);
  ASSERT_GT(len, 0);
  Bytes spliced(out, out + len);
  OPENSSL_free(out);
  X509_REQ_free(req);
  EXPECT_THAT(parse_csr_pem(der_to_pem(spliced, "CERTIFICATE REQUEST")),
              FailsWithField(Errc::csr_bad_signature, "csr"));
}

TEST(Csr, MalformedInputIsRefused) {
  EXPECT_THAT(parse_csr_pem(""), FailsWithField(Errc::csr_malformed, "csr"));
  EXPECT_THAT(parse_csr_pem("hello"), FailsWithField(Errc::csr_malformed, "csr"));
  EXPECT_THAT(parse_csr_pem("-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n"
                            "-----END CERTIFICATE REQUEST-----\n"),
              FailsWithField(Errc::csr_malformed, "csr"));
  // A certificate is not a CSR.
  EXPECT_THAT(parse_csr_pem(make_root().cert.pem()), FailsWithField(Errc::csr_malformed, "csr"));
}

TEST(Csr, OversizeIsRefused) {
  std::string pem = must(make_csr_pem(must(PrivateKey::generate()), {"se-1", ""}));
  pem += std::string(16 * 1024, '\n');
  EXPECT_THAT(parse_csr_pem(pem), FailsWithField(Errc::too_large, "csr"));
}

TEST(Csr, OtherKeyTypesAreRefused) {
  PrivateKey rsa(PkeyPtr(EVP_RSA_gen(2048)));
  std::string pem = must(make_csr_pem(rsa, {"rsa-user", ""}));
  EXPECT_THAT(parse_csr_pem(pem), FailsWithField(Errc::csr_malformed, "csr"));
}

TEST(Csr, MissingCommonNameIsRefused) {
  PrivateKey key = must(PrivateKey::generate());
  X509_REQ* req = X509_REQ_new();
  X509_NAME* name = X509_REQ_get_subject_name(req);
  X509_NAME_add_entry_by_NID(name, NID_userId, MBSTRING_UTF8,
                             reinterpret_cast<const unsigned char*>("user-1"), -1, -1, 0);
  X509_REQ_set_pubkey(req, key.get());
  ASSERT_GT(X509_REQ_sign(req, key.get(), EVP_sha256()), 0);
  BIO* bio = BIO_new(BIO_s_mem());
  PEM_write_bio_X509_REQ(bio, req);
  char* data = nullptr;
  long len = BIO_get_mem_data(bio, &data);
  std::string pem(data, static_cast<std::size_t>(len));
  BIO_free(bio);
  X509_REQ_free(req);
  EXPECT_THAT(parse_csr_pem(pem), FailsWithField(Errc::csr_malformed, "csr"));
}

TEST_F(Pki, CsrToCertificateFlow) {
  PrivateKey se_key = must(PrivateKey::generate());
  ParsedCsr csr = must(parse_csr_pem(must(make_csr_pem(se_key, {"se-9", "user-9"}))));
  IssueParams p;
  p.common_name = csr.info.common_name;
  p.user_id = csr.info.user_id;
  p.roles = {Role::secure_element};
  p.not_before = kNow - kDay;
  p.not_after = kNow + kDay;
  p.serial = new_serial();
  Certificate cert = must(issue_certificate(root().cert, root().key, csr.key, p));
  EXPECT_EQ(cert.public_key().spki_der(), se_key.public_key().spki_der());
  auto leaf = verifier_at(root()).verify({cert}, Role::secure_element);
  ASSERT_THAT(leaf, IsOk());
  EXPECT_EQ(leaf->user_id(), "user-9");
}

// ---- CRL

TEST_F(Pki, CrlRoundTrips) {
  KeyCert a = issue(root(), Role::secure_element, "se-a");
  Crl crl = make_test_crl(root(), {a.cert});
  EXPECT_EQ(crl.next_update(), kNow + 7 * kDay);
  auto from_der = Crl::from_der(crl.der());
  ASSERT_THAT(from_der, IsOk());
  EXPECT_EQ(from_der->der(), crl.der());
  std::string pem = crl.pem();
  EXPECT_TRUE(pem.starts_with("-----BEGIN X509 CRL-----"));
  auto from_pem = Crl::from_pem(pem);
  ASSERT_THAT(from_pem, IsOk());
  EXPECT_EQ(from_pem->der(), crl.der());
  EXPECT_EQ(X509_CRL_verify(crl.get(), root().key.get()), 1);
}

TEST(CrlParse, MalformedIsRefused) {
  EXPECT_THAT(Crl::from_der(Bytes{}), FailsWithField(Errc::cert_malformed, "crl"));
  EXPECT_THAT(Crl::from_der(test::bytes_of("junk")), FailsWithField(Errc::cert_malformed, "crl"));
  EXPECT_THAT(Crl::from_pem("junk"), FailsWithField(Errc::cert_malformed, "crl"));
}

// ---- Verification

TEST_F(Pki, VerifiesAGoodLeafForItsRole) {
  KeyCert se = issue(root(), Role::secure_element, "se-1", "user-1");
  auto leaf = verifier_at(root()).verify({se.cert}, Role::secure_element);
  ASSERT_THAT(leaf, IsOk());
  EXPECT_EQ(leaf->der(), se.cert.der());
  // The root may travel in the chain too.
  EXPECT_THAT(verifier_at(root()).verify({se.cert, root().cert}, Role::secure_element), IsOk());
}

TEST_F(Pki, EveryRoleVerifiesOnlyForItself) {
  for (Role issued : kAllRoles) {
    KeyCert kc = issue(root(), issued, "party");
    for (Role wanted : kAllRoles) {
      auto r = verifier_at(root()).verify({kc.cert}, wanted);
      if (issued == wanted) {
        EXPECT_THAT(r, IsOk()) << role_name(issued);
      } else {
        EXPECT_THAT(r, FailsWithField(Errc::cert_wrong_role, "x5c"))
            << role_name(issued) << " as " << role_name(wanted);
      }
    }
  }
}

TEST_F(Pki, CertificateWithoutRolesHasNoRole) {
  IssueParams p;
  p.common_name = "no-role";
  p.not_before = kNow - kDay;
  p.not_after = kNow + kDay;
  KeyCert kc = issue_params(root(), p);
  EXPECT_TRUE(kc.cert.roles().empty());
  EXPECT_THAT(verifier_at(root()).verify({kc.cert}, Role::secure_element),
              FailsWith(Errc::cert_wrong_role));
}

TEST_F(Pki, EdDsaCertificatesVerify) {
  KeyCert ed_root = make_root("ed root", SigAlg::EdDSA);
  KeyCert ed_leaf =
      issue(ed_root, Role::secure_element, "se-ed", "", kNow - kDay, kNow + kDay, SigAlg::EdDSA);
  KeyCert es_leaf = issue(ed_root, Role::custody, "bank-es");
  KeyCert ed_under_es =
      issue(root(), Role::secure_element, "se-ed2", "", kNow - kDay, kNow + kDay, SigAlg::EdDSA);
  EXPECT_THAT(verifier_at(ed_root).verify({ed_leaf.cert}, Role::secure_element), IsOk());
  EXPECT_THAT(verifier_at(ed_root).verify({es_leaf.cert}, Role::custody), IsOk());
  EXPECT_THAT(verifier_at(root()).verify({ed_under_es.cert}, Role::secure_element), IsOk());
  EXPECT_EQ(ed_leaf.cert.public_key().alg(), SigAlg::EdDSA);
}

TEST_F(Pki, ExpiredCertificate) {
  KeyCert se = issue(root(), Role::secure_element, "se-1", "", kNow - 10 * kDay, kNow + kDay);
  EXPECT_THAT(verifier_at(root(), se.cert.not_after() - 1).verify({se.cert}, Role::secure_element),
              IsOk());
  EXPECT_THAT(verifier_at(root(), se.cert.not_after() + 1).verify({se.cert}, Role::secure_element),
              FailsWithField(Errc::cert_expired, "x5c"));
  EXPECT_THAT(verifier_at(root(), kNow + 365 * kDay).verify({se.cert}, Role::secure_element),
              FailsWith(Errc::cert_expired));
}

TEST_F(Pki, NotYetValidCertificate) {
  KeyCert se = issue(root(), Role::secure_element, "se-1", "", kNow + kDay, kNow + 10 * kDay);
  EXPECT_THAT(verifier_at(root()).verify({se.cert}, Role::secure_element),
              FailsWithField(Errc::cert_not_yet_valid, "x5c"));
  EXPECT_THAT(verifier_at(root(), se.cert.not_before() - 1).verify({se.cert}, Role::secure_element),
              FailsWith(Errc::cert_not_yet_valid));
  EXPECT_THAT(verifier_at(root(), se.cert.not_before() + 1).verify({se.cert}, Role::secure_element),
              IsOk());
}

TEST_F(Pki, ExpiredRootInvalidatesItsLeaves) {
  KeyCert short_root = make_root("short root", SigAlg::ES256, kNow - kDay, kNow + 10 * kDay);
  KeyCert se = issue(short_root, Role::secure_element, "se-1", "", kNow - kDay, kNow + 365 * kDay);
  EXPECT_THAT(verifier_at(short_root).verify({se.cert}, Role::secure_element), IsOk());
  EXPECT_THAT(verifier_at(short_root, kNow + 20 * kDay).verify({se.cert}, Role::secure_element),
              FailsWith(Errc::cert_expired));
}

TEST_F(Pki, SystemClockIsUsedWhenNoTimeIsSet) {
  std::time_t now = std::time(nullptr);
  KeyCert live_root = make_root("live root", SigAlg::ES256, now - kDay, now + 30 * kDay);
  KeyCert current = issue(live_root, Role::custody, "bank", "", now - kDay, now + kDay);
  KeyCert old = issue(live_root, Role::custody, "bank", "", now - 3 * kDay, now - 2 * kDay);
  CertVerifier v(live_root.cert);
  EXPECT_THAT(v.verify({current.cert}, Role::custody), IsOk());
  EXPECT_THAT(v.verify({old.cert}, Role::custody), FailsWith(Errc::cert_expired));
}

TEST_F(Pki, RevokedCertificate) {
  KeyCert lost = issue(root(), Role::secure_element, "se-lost");
  KeyCert fine = issue(root(), Role::secure_element, "se-fine");
  CertVerifier v = verifier_at(root());
  v.set_crl(make_test_crl(root(), {lost.cert}));
  EXPECT_THAT(v.verify({lost.cert}, Role::secure_element),
              FailsWithField(Errc::cert_revoked, "x5c"));
  EXPECT_THAT(v.verify({fine.cert}, Role::secure_element), IsOk());
  // Removing the CRL restores the old (unchecked) behaviour.
  v.set_crl(std::nullopt);
  EXPECT_THAT(v.verify({lost.cert}, Role::secure_element), IsOk());
}

TEST_F(Pki, RevocationSurvivesCrlSerialization) {
  KeyCert lost = issue(root(), Role::custody, "bank-lost");
  Crl crl = must(Crl::from_pem(make_test_crl(root(), {lost.cert}).pem()));
  CertVerifier v = verifier_at(root());
  v.set_crl(crl);
  EXPECT_THAT(v.verify({lost.cert}, Role::custody), FailsWith(Errc::cert_revoked));
}

TEST_F(Pki, EmptyCrlRevokesNothing) {
  KeyCert se = issue(root(), Role::secure_element, "se-1");
  CertVerifier v = verifier_at(root());
  v.set_crl(make_test_crl(root(), {}));
  EXPECT_THAT(v.verify({se.cert}, Role::secure_element), IsOk());
}

TEST_F(Pki, StaleCrlFailsClosed) {
  KeyCert se = issue(root(), Role::secure_element, "se-1");
  CertVerifier v = verifier_at(root());
  v.set_crl(make_test_crl(root(), {}, kNow - 10 * kDay, kNow - kDay));
  EXPECT_THAT(v.verify({se.cert}, Role::secure_element), FailsWith(Errc::cert_untrusted));
}

TEST_F(Pki, CrlFromAnotherIssuerFailsClosed) {
  KeyCert se = issue(root(), Role::secure_element, "se-1");
  CertVerifier v = verifier_at(root());
  v.set_crl(make_test_crl(other_root(), {}));
  EXPECT_THAT(v.verify({se.cert}, Role::secure_element), FailsWith(Errc::cert_untrusted));
}

TEST_F(Pki, ChainToADifferentRootIsUntrusted) {
  KeyCert foreign = issue(other_root(), Role::secure_element, "se-foreign");
  EXPECT_THAT(verifier_at(root()).verify({foreign.cert}, Role::secure_element),
              FailsWithField(Errc::cert_untrusted, "x5c"));
  // Shipping the foreign root along does not help.
  EXPECT_THAT(verifier_at(root()).verify({foreign.cert, other_root().cert}, Role::secure_element),
              FailsWith(Errc::cert_untrusted));
}

TEST_F(Pki, SelfMadeCertificateIsUntrusted) {
  // A software key with its own "secure-element" certificate must be refused (DESIGN.md §2).
  PrivateKey key = must(PrivateKey::generate());
  IssueParams p;
  p.common_name = "zf test root";  // even with the real root's name
  p.roles = {Role::secure_element};
  p.not_before = kNow - kDay;
  p.not_after = kNow + kDay;
  p.serial = new_serial();
  Certificate self = must(make_self_signed_ca(key, p));
  EXPECT_THAT(verifier_at(root()).verify({self}, Role::secure_element),
              FailsWith(Errc::cert_untrusted));
  // And a leaf "issued" by an impostor CA carrying the root's name.
  KeyCert impostor{std::move(key), self};
  KeyCert leaf = issue(impostor, Role::secure_element, "se-fake");
  EXPECT_THAT(verifier_at(root()).verify({leaf.cert}, Role::secure_element),
              FailsWith(Errc::cert_untrusted));
  EXPECT_THAT(verifier_at(root()).verify({leaf.cert, self}, Role::secure_element),
              FailsWith(Errc::cert_untrusted));
}

TEST_F(Pki, LeafCannotIssueCertificates) {
  KeyCert se = issue(root(), Role::secure_element, "se-1");
  KeyCert sub = issue(se, Role::secure_element, "se-sub");
  EXPECT_THAT(verifier_at(root()).verify({sub.cert, se.cert}, Role::secure_element),
              FailsWith(Errc::cert_untrusted));
}

TEST_F(Pki, TamperedCertificateSignatureIsUntrusted) {
  KeyCert se = issue(root(), Role::secure_element, "se-1");
  Bytes der = se.cert.der();
  der.back() ^= 0x01;  // inside the signature value
  Certificate tampered = must(Certificate::from_der(der));
  EXPECT_THAT(verifier_at(root()).verify({tampered}, Role::secure_element),
              FailsWith(Errc::cert_untrusted));
  // A changed subject under the original signature is just as bad.
  Bytes renamed = replace_bytes(se.cert.der(), "se-1", "se-2");
  EXPECT_THAT(
      verifier_at(root()).verify({must(Certificate::from_der(renamed))}, Role::secure_element),
      FailsWith(Errc::cert_untrusted));
}

TEST_F(Pki, CaCertificateCannotBeALeaf) {
  IssueParams p;
  p.common_name = "sub ca";
  p.roles = {Role::secure_element};
  p.is_ca = true;
  p.not_before = kNow - kDay;
  p.not_after = kNow + kDay;
  KeyCert ca = issue_params(root(), p);
  EXPECT_TRUE(ca.cert.is_ca());
  EXPECT_THAT(verifier_at(root()).verify({ca.cert}, Role::secure_element),
              FailsWithField(Errc::cert_wrong_role, "x5c"));
  // The root itself is no leaf either, whatever role is asked for.
  for (Role r : kAllRoles)
    EXPECT_THAT(verifier_at(root()).verify({root().cert}, r), FailsWith(Errc::cert_wrong_role));
}

TEST_F(Pki, ChainSizeLimits) {
  KeyCert se = issue(root(), Role::secure_element, "se-1");
  EXPECT_THAT(verifier_at(root()).verify({}, Role::secure_element),
              FailsWithField(Errc::cert_untrusted, "x5c"));
  std::vector<Certificate> five(5, se.cert);
  EXPECT_THAT(verifier_at(root()).verify(five, Role::secure_element),
              FailsWithField(Errc::too_large, "x5c"));
  std::vector<Certificate> four = {se.cert, root().cert, root().cert, root().cert};
  EXPECT_THAT(verifier_at(root()).verify(four, Role::secure_element), IsOk());
}

TEST_F(Pki, VerifierExposesItsConfiguration) {
  CertVerifier v(root().cert);
  EXPECT_EQ(v.root().der(), root().cert.der());
  EXPECT_FALSE(v.crl().has_value());
  v.set_crl(make_test_crl(root(), {}));
  EXPECT_TRUE(v.crl().has_value());
}


// ---- Verified-chain cache

class ChainCache : public Pki {
 protected:
  CertVerifier cached(const Crl& crl, std::time_t now = test::kNow) {
    CertVerifier v = verifier_at(root(), now);
    v.set_crl(crl);
    v.set_cache(cache);
    return v;
  }
  std::shared_ptr<VerifiedChains> cache = std::make_shared<VerifiedChains>(8);
};

TEST_F(ChainCache, AVerifiedChainIsFoundAgainForTheSameRoleAndCrl) {
  KeyCert se = issue(root(), Role::secure_element, "se-1");
  Crl crl = make_test_crl(root(), {});
  ASSERT_THAT(cached(crl).verify({se.cert}, Role::secure_element), IsOk());
  EXPECT_EQ(cache->size(), 1u);
  auto again = cached(crl).verify({se.cert}, Role::secure_element);
  ASSERT_THAT(again, IsOk());
  EXPECT_EQ(again->der(), se.cert.der());
  EXPECT_EQ(cache->hits(), 1u);
  // Another role is another question, answered in full.
  EXPECT_THAT(cached(crl).verify({se.cert}, Role::custody), FailsWith(Errc::cert_wrong_role));
  EXPECT_EQ(cache->hits(), 1u);
}

TEST_F(ChainCache, ANewerCrlThatRevokesTheSignerIsNeverAnsweredFromTheCache) {
  KeyCert se = issue(root(), Role::secure_element, "se-1");
  CrlParams p;
  p.this_update = test::kNow - test::kDay;
  p.next_update = test::kNow + 7 * test::kDay;
  p.number = 1;
  Crl first = must(make_crl(root().cert, root().key, p), "crl");
  ASSERT_THAT(cached(first).verify({se.cert}, Role::secure_element), IsOk());
  p.number = 2;
  p.revoked.push_back({test::serial_bytes(se.cert), test::kNow - 60});
  Crl newer = must(make_crl(root().cert, root().key, p), "crl");
  EXPECT_THAT(cached(newer).verify({se.cert}, Role::secure_element), FailsWith(Errc::cert_revoked));
  EXPECT_EQ(cache->hits(), 0u);
}

TEST_F(ChainCache, AnEntryIsNotUsedOutsideTheChainsValidity) {
  KeyCert se = issue(root(), Role::secure_element, "se-1", "", test::kNow - test::kDay, test::kNow + test::kDay);
  Crl crl = make_test_crl(root(), {}, test::kNow - 3 * test::kDay, test::kNow + 7 * test::kDay);
  ASSERT_THAT(cached(crl).verify({se.cert}, Role::secure_element), IsOk());
  EXPECT_THAT(cached(crl, se.cert.not_after() + 1).verify({se.cert}, Role::secure_element),
              FailsWith(Errc::cert_expired));
  EXPECT_THAT(cached(crl, se.cert.not_before() - 1).verify({se.cert}, Role::secure_element),
              FailsWith(Errc::cert_not_yet_valid));
  EXPECT_EQ(cache->hits(), 0u);
}

TEST_F(ChainCache, AChainThatFailsIsNotRemembered) {
  KeyCert stranger = issue(other_root(), Role::secure_element, "se-x");
  Crl crl = make_test_crl(root(), {});
  for (int i = 0; i < 2; ++i)
    EXPECT_THAT(cached(crl).verify({stranger.cert}, Role::secure_element), FailsWith(Errc::cert_untrusted));
  EXPECT_EQ(cache->size(), 0u);
}

TEST_F(ChainCache, ItStaysWithinItsCapacity) {
  Crl crl = make_test_crl(root(), {});
  for (int i = 0; i < 20; ++i) {
    KeyCert se = issue(root(), Role::secure_element, "se-" + std::to_string(i));
    ASSERT_THAT(cached(crl).verify({se.cert}, Role::secure_element), IsOk());
    EXPECT_LE(cache->size(), 8u);
  }
}

}  // namespace
}  // namespace zf
