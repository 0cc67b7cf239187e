// JOSE: JWS compact and JSON serializations with x5c, and JWE (A256GCM + ECDH-ES+A256KW).
// Every refusal is checked with its exact error code.
#include "core/jose.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "test_pki.h"
#include "test_util.h"

namespace zf {
namespace {

using test::bytes_of;
using test::FailsWith;
using test::FailsWithField;
using test::IsOk;
using test::issue;
using test::kDay;
using test::KeyCert;
using test::kNow;
using test::make_root;
using test::must;
using test::Party;
using test::unb64url;
using test::verifier_at;

std::string b64u(std::string_view text) { return b64url_encode(as_bytes(text)); }
std::string b64j(const Json& j) { return b64url_encode(as_bytes(dump_json(j))); }

struct Parts {
  std::string header, payload, signature;
};
Parts split(const std::string& compact) {
  auto d1 = compact.find('.');
  auto d2 = compact.find('.', d1 + 1);
  return {compact.substr(0, d1), compact.substr(d1 + 1, d2 - d1 - 1), compact.substr(d2 + 1)};
}
std::string join(const Parts& p) { return p.header + "." + p.payload + "." + p.signature; }

Json x5c_of(const std::vector<Certificate>& chain) {
  Json a = Json::array();
  for (const auto& c : chain) a.push_back(b64_encode(c.der()));
  return a;
}

class Jose : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    root_ = new KeyCert(make_root());
    other_root_ = new KeyCert(make_root("other root"));
    se1_ = new Party(issue(*root_, Role::secure_element, "se-1", "user-1"));
    se2_ = new Party(issue(*root_, Role::secure_element, "se-2", "user-2"));
    se_ed_ = new Party(issue(*root_, Role::secure_element, "se-ed", "user-3", kNow - kDay,
                             kNow + 365 * kDay, SigAlg::EdDSA));
    bank_ = new Party(issue(*root_, Role::custody, "bank-a"));
    foreign_ = new Party(issue(*other_root_, Role::secure_element, "se-x"));
  }
  static void TearDownTestSuite() {
    delete foreign_;
    delete bank_;
    delete se_ed_;
    delete se2_;
    delete se1_;
    delete other_root_;
    delete root_;
  }

  static const KeyCert& root() { return *root_; }
  static const Party& se1() { return *se1_; }
  static const Party& se2() { return *se2_; }
  static const Party& se_ed() { return *se_ed_; }
  static const Party& bank() { return *bank_; }
  static const Party& foreign() { return *foreign_; }
  static CertVerifier verifier() { return verifier_at(*root_); }

  static std::string sign(const Party& p, std::string_view payload, std::string_view typ = {}) {
    return must(jws_sign_compact(as_bytes(payload), p.jws_signer(), typ));
  }

 private:
  static KeyCert* root_;
  static KeyCert* other_root_;
  static Party* se1_;
  static Party* se2_;
  static Party* se_ed_;
  static Party* bank_;
  static Party* foreign_;
};
KeyCert* Jose::root_ = nullptr;
KeyCert* Jose::other_root_ = nullptr;
Party* Jose::se1_ = nullptr;
Party* Jose::se2_ = nullptr;
Party* Jose::se_ed_ = nullptr;
Party* Jose::bank_ = nullptr;
Party* Jose::foreign_ = nullptr;

// ---- JWS compact: good path

TEST_F(Jose, CompactRoundTrip) {
  std::string jws = sign(se1(), R"({"amount":1250})", "zf+jws");
  auto parsed = jws_parse_compact(jws);
  ASSERT_THAT(parsed, IsOk());
  EXPECT_EQ(to_string(parsed->payload), R"({"amount":1250})");
  EXPECT_EQ(parsed->payload_b64, split(jws).payload);
  ASSERT_EQ(parsed->signatures.size(), 1u);
  const JwsSignature& s = parsed->signatures[0];
  EXPECT_EQ(s.alg, SigAlg::ES256);
  EXPECT_EQ(s.typ, "zf+jws");
  EXPECT_EQ(s.protected_b64, split(jws).header);
  ASSERT_EQ(s.x5c.size(), 1u);
  EXPECT_EQ(s.x5c[0].der(), se1().cert().der());
  EXPECT_EQ(s.signature.size(), 64u);
  EXPECT_THAT(jws_check_signature(*parsed, 0), IsOk());
  auto leaves = jws_verify(*parsed, verifier(), Role::secure_element);
  ASSERT_THAT(leaves, IsOk());
  ASSERT_EQ(leaves->size(), 1u);
  EXPECT_EQ((*leaves)[0].subject_cn(), "se-1");
}

TEST_F(Jose, CompactHeaderIsExactlyAlgTypX5c) {
  std::string jws = sign(se1(), "x", "zf+jws");
  Json header = must(parse_json_strict(to_string(unb64url(split(jws).header))));
  EXPECT_EQ(header, (Json{{"alg", "ES256"}, {"typ", "zf+jws"}, {"x5c", x5c_of({se1().cert()})}}));
  // Without typ, the member is absent rather than empty.
  Json bare = must(parse_json_strict(to_string(unb64url(split(sign(se1(), "x")).header))));
  EXPECT_FALSE(bare.contains("typ"));
  EXPECT_EQ(must(jws_parse(sign(se1(), "x"))).signatures[0].typ, "");
}

TEST_F(Jose, CompactEdDsaRoundTrip) {
  std::string jws = sign(se_ed(), "hello");
  auto parsed = jws_parse(jws);
  ASSERT_THAT(parsed, IsOk());
  EXPECT_EQ(parsed->signatures[0].alg, SigAlg::EdDSA);
  EXPECT_THAT(jws_verify(*parsed, verifier(), Role::secure_element), IsOk());
}

TEST_F(Jose, CompactWithFullChain) {
  JwsSigner signer = se1().jws_signer();
  signer.chain.push_back(root().cert);
  std::string jws = must(jws_sign_compact(as_bytes(std::string("p")), signer));
  auto parsed = jws_parse(jws);
  ASSERT_THAT(parsed, IsOk());
  EXPECT_EQ(parsed->signatures[0].x5c.size(), 2u);
  EXPECT_THAT(jws_verify(*parsed, verifier(), Role::secure_element), IsOk());
}

TEST_F(Jose, EmptyAndBinaryPayloads) {
  for (std::string payload : {std::string(), std::string("\0\xff\x01", 3)}) {
    std::string jws = sign(se1(), payload);
    auto parsed = jws_parse(jws);
    ASSERT_THAT(parsed, IsOk());
    EXPECT_EQ(to_string(parsed->payload), payload);
    EXPECT_THAT(jws_check_signature(*parsed, 0), IsOk());
  }
}

TEST_F(Jose, SignerWithoutChainIsRefused) {
  KeySigner signer(se1().key());
  EXPECT_THAT(jws_sign_compact(as_bytes(std::string("p")), JwsSigner{&signer, {}}),
              FailsWith(Errc::internal));
}

// ---- JWS compact: algorithm attacks

TEST_F(Jose, AlgNoneIsRefused) {
  std::string payload = b64u(R"({"amount":1})");
  // The classic: no signature at all.
  EXPECT_THAT(jws_parse(b64u(R"({"alg":"none"})") + "." + payload + "."),
              FailsWithField(Errc::alg_none, "alg"));
  // With a plausible chain and a signature.
  Json h = {{"alg", "none"}, {"x5c", x5c_of({se1().cert()})}};
  EXPECT_THAT(jws_parse(b64j(h) + "." + payload + "." + split(sign(se1(), "x")).signature),
              FailsWithField(Errc::alg_none, "alg"));
  // In the JSON serialization too.
  Json general = {{"payload", payload},
                  {"signatures", Json::array({{{"protected", b64j(h)}, {"signature", ""}}})}};
  EXPECT_THAT(jws_parse(dump_json(general)), FailsWithField(Errc::alg_none, "alg"));
}

TEST_F(Jose, UnknownAlgIsUnsupported) {
  Parts p = split(sign(se1(), "x"));
  for (const char* alg : {"RS256", "HS256", "ES384", "PS256", "None", "es256", "EdDSA "}) {
    Parts q = p;
    q.header = b64j(Json{{"alg", alg}, {"x5c", x5c_of({se1().cert()})}});
    EXPECT_THAT(jws_parse(join(q)), FailsWithField(Errc::unsupported_alg, "alg")) << alg;
  }
}

TEST_F(Jose, AlgMustMatchTheCertificateKey) {
  // An ES256 header over an Ed25519 certificate (and vice versa): key confusion.
  Parts p = split(sign(se_ed(), "x"));
  p.header = b64j(Json{{"alg", "ES256"}, {"x5c", x5c_of({se_ed().cert()})}});
  EXPECT_THAT(jws_parse(join(p)), FailsWithField(Errc::bad_header, "alg"));
  Parts q = split(sign(se1(), "x"));
  q.header = b64j(Json{{"alg", "EdDSA"}, {"x5c", x5c_of({se1().cert()})}});
  EXPECT_THAT(jws_parse(join(q)), FailsWithField(Errc::bad_header, "alg"));
}

TEST_F(Jose, AlgMissingOrNotAString) {
  Parts p = split(sign(se1(), "x"));
  p.header = b64j(Json{{"x5c", x5c_of({se1().cert()})}});
  EXPECT_THAT(jws_parse(join(p)), FailsWithField(Errc::bad_header, "alg"));
  p.header = b64j(Json{{"alg", 256}, {"x5c", x5c_of({se1().cert()})}});
  EXPECT_THAT(jws_parse(join(p)), FailsWithField(Errc::bad_header, "alg"));
}

// ---- JWS compact: header shape

TEST_F(Jose, HeaderMembersBeyondAlgTypX5cAreRefused) {
  Parts p = split(sign(se1(), "x"));
  for (const char* extra : {"jwk", "kid", "crit", "x5u", "jku", "b64", "cty"}) {
    Json h = {{"alg", "ES256"}, {"x5c", x5c_of({se1().cert()})}, {extra, "v"}};
    p.header = b64j(h);
    EXPECT_THAT(jws_parse(join(p)), FailsWithField(Errc::bad_header, extra)) << extra;
  }
}

TEST_F(Jose, X5cIsRequiredAndBounded) {
  Parts p = split(sign(se1(), "x"));
  const std::string der = b64_encode(se1().cert().der());
  struct Case {
    Json x5c;
    Errc code;
  };
  for (const auto& c :
       {Case{Json::array(), Errc::bad_header}, Case{Json(der), Errc::bad_header},
        Case{Json::array({der, der, der, der, der}), Errc::bad_header},
        Case{Json::array({1}), Errc::bad_header},
        Case{Json::array({b64url_encode(se1().cert().der())}), Errc::bad_header},
        Case{Json::array({"!!!!"}), Errc::bad_header},
        Case{Json::array({b64_encode(bytes_of("not a certificate"))}), Errc::cert_malformed}}) {
    p.header = b64j(Json{{"alg", "ES256"}, {"x5c", c.x5c}});
    EXPECT_THAT(jws_parse(join(p)), FailsWith(c.code)) << dump_json(c.x5c).substr(0, 80);
  }
  p.header = b64j(Json{{"alg", "ES256"}});
  EXPECT_THAT(jws_parse(join(p)), FailsWithField(Errc::bad_header, "x5c"));
}

TEST_F(Jose, TypMustBeAString) {
  Parts p = split(sign(se1(), "x"));
  p.header = b64j(Json{{"alg", "ES256"}, {"typ", 1}, {"x5c", x5c_of({se1().cert()})}});
  EXPECT_THAT(jws_parse(join(p)), FailsWithField(Errc::bad_header, "typ"));
}

TEST_F(Jose, ProtectedHeaderEncodingErrors) {
  Parts p = split(sign(se1(), "x"));
  Parts q = p;
  q.header = p.header + "=";
  EXPECT_THAT(jws_parse(join(q)), FailsWithField(Errc::bad_base64url, "protected"));
  q.header = b64u("not json");
  EXPECT_THAT(jws_parse(join(q)), FailsWithField(Errc::malformed_json, "protected"));
  q.header = b64u("[\"alg\"]");
  EXPECT_THAT(jws_parse(join(q)), FailsWithField(Errc::bad_header, "protected"));
  q.header = b64u(R"({"alg":"ES256","alg":"none","x5c":[]})");
  EXPECT_THAT(jws_parse(join(q)), FailsWithField(Errc::duplicate_key, "protected"));
  q.header = b64u(R"({"alg":"ES256","x5c":[]} trailing)");
  EXPECT_THAT(jws_parse(join(q)), FailsWithField(Errc::malformed_json, "protected"));
  q.header = b64u(R"({"alg":{"a":{"b":{"c":{}}}}})");
  EXPECT_THAT(jws_parse(join(q)), FailsWithField(Errc::too_deep, "protected"));
}

TEST_F(Jose, CompactNeedsExactlyThreeParts) {
  Parts p = split(sign(se1(), "x"));
  EXPECT_THAT(jws_parse_compact(p.header + "." + p.payload), FailsWith(Errc::malformed_json));
  EXPECT_THAT(jws_parse_compact(join(p) + ".extra"), FailsWith(Errc::malformed_json));
  EXPECT_THAT(jws_parse_compact(""), FailsWith(Errc::malformed_json));
  EXPECT_THAT(jws_parse_compact(p.header), FailsWith(Errc::malformed_json));
}

TEST_F(Jose, PayloadAndSignatureMustBeStrictBase64url) {
  Parts p = split(sign(se1(), "xy"));
  Parts q = p;
  q.payload = p.payload + "=";
  EXPECT_THAT(jws_parse(join(q)), FailsWithField(Errc::bad_base64url, "payload"));
  q = p;
  q.payload = "eHk+";  // standard alphabet
  EXPECT_THAT(jws_parse(join(q)), FailsWithField(Errc::bad_base64url, "payload"));
  q = p;
  q.signature = p.signature + "==";
  EXPECT_THAT(jws_parse(join(q)), FailsWithField(Errc::bad_base64url, "signature"));
  q = p;
  q.signature[5] = '*';
  EXPECT_THAT(jws_parse(join(q)), FailsWithField(Errc::bad_base64url, "signature"));
}

TEST_F(Jose, NonCanonicalPayloadEncodingIsRefused) {
  // "eHk" is "xy"; "eHl" decodes to the same bytes only if unused bits are ignored.
  Parts p = split(sign(se1(), "xy"));
  ASSERT_EQ(p.payload, "eHk");
  p.payload = "eHl";
  EXPECT_THAT(jws_parse(join(p)), FailsWithField(Errc::bad_base64url, "payload"));
}

TEST_F(Jose, OversizeIsRefused) {
  std::string big(kMaxJoseBytes + 1, 'a');
  EXPECT_THAT(jws_parse_compact(big), FailsWith(Errc::too_large));
  EXPECT_THAT(jws_parse_json("{" + std::string(kMaxJoseBytes, ' ') + "}"),
              FailsWith(Errc::too_large));
  // A genuinely signed but oversize payload.
  std::string jws = sign(se1(), std::string(kMaxJoseBytes, 'p'));
  EXPECT_THAT(jws_parse(jws), FailsWith(Errc::too_large));
}

// ---- JWS: signature checks

TEST_F(Jose, TamperedPayloadBreaksTheSignature) {
  Parts p = split(sign(se1(), R"({"amount":100})"));
  p.payload = b64u(R"({"amount":999})");
  auto parsed = jws_parse(join(p));
  ASSERT_THAT(parsed, IsOk());
  EXPECT_THAT(jws_check_signature(*parsed, 0), FailsWith(Errc::bad_signature));
  EXPECT_THAT(jws_verify(*parsed, verifier(), Role::secure_element),
              FailsWith(Errc::bad_signature));
}

TEST_F(Jose, SwappedCertificateBreaksTheSignature) {
  // se-2's certificate on se-1's signature: the signer is not who the chain says.
  Parts p = split(sign(se1(), "pay"));
  for (const Party* other : {&se2(), &bank()}) {
    Parts q = p;
    q.header = b64j(Json{{"alg", "ES256"}, {"x5c", x5c_of({other->cert()})}});
    auto parsed = jws_parse(join(q));
    ASSERT_THAT(parsed, IsOk());
    EXPECT_THAT(jws_verify(*parsed, verifier(), Role::secure_element),
                FailsWith(Errc::bad_signature));
  }
}

TEST_F(Jose, HeaderReencodingBreaksTheSignature) {
  // Same header JSON, different bytes: the signature covers the bytes as sent.
  Parts p = split(sign(se1(), "pay"));
  std::string header = to_string(unb64url(p.header));
  p.header = b64u(" " + header);
  auto parsed = jws_parse(join(p));
  ASSERT_THAT(parsed, IsOk());
  EXPECT_THAT(jws_check_signature(*parsed, 0), FailsWith(Errc::bad_signature));
}

TEST_F(Jose, TruncatedOrWrongSizeSignatureIsRefused) {
  for (const Party* party : {&se1(), &se_ed()}) {
    Parts p = split(sign(*party, "pay"));
    Bytes sig = unb64url(p.signature);
    for (std::size_t n : {std::size_t{0}, std::size_t{32}, std::size_t{63}}) {
      Parts q = p;
      q.signature = b64url_encode(ByteView(sig.data(), n));
      auto parsed = jws_parse(join(q));
      ASSERT_THAT(parsed, IsOk());
      EXPECT_THAT(jws_verify(*parsed, verifier(), Role::secure_element),
                  FailsWith(Errc::bad_signature))
          << n;
    }
    Bytes longer = sig;
    longer.push_back(0);
    Parts q = p;
    q.signature = b64url_encode(longer);
    EXPECT_THAT(jws_check_signature(must(jws_parse(join(q))), 0), FailsWith(Errc::bad_signature));
  }
}

TEST_F(Jose, DerEncodedEs256SignatureIsRefused) {
  // JOSE wants raw r||s; a DER ECDSA-Sig-Value from another library must not slip through.
  Parts p = split(sign(se1(), "pay"));
  Bytes raw = unb64url(p.signature);
  Bytes der{0x30, 0x44, 0x02, 0x20};
  der.insert(der.end(), raw.begin(), raw.begin() + 32);
  der.insert(der.end(), {0x02, 0x20});
  der.insert(der.end(), raw.begin() + 32, raw.end());
  p.signature = b64url_encode(der);
  EXPECT_THAT(jws_check_signature(must(jws_parse(join(p))), 0), FailsWith(Errc::bad_signature));
}

TEST_F(Jose, CheckSignatureIndexOutOfRange) {
  Jws jws = must(jws_parse(sign(se1(), "x")));
  EXPECT_THAT(jws_check_signature(jws, 1), FailsWith(Errc::internal));
}

TEST_F(Jose, TrustDecisionsComeFromTheVerifier) {
  auto by_bank = must(jws_parse(sign(bank(), "x")));
  EXPECT_THAT(jws_check_signature(by_bank, 0), IsOk());
  EXPECT_THAT(jws_verify(by_bank, verifier(), Role::secure_element),
              FailsWithField(Errc::cert_wrong_role, "x5c"));
  EXPECT_THAT(jws_verify(by_bank, verifier(), Role::custody), IsOk());

  auto by_foreign = must(jws_parse(sign(foreign(), "x")));
  EXPECT_THAT(jws_check_signature(by_foreign, 0), IsOk());
  EXPECT_THAT(jws_verify(by_foreign, verifier(), Role::secure_element),
              FailsWith(Errc::cert_untrusted));

  auto by_se = must(jws_parse(sign(se1(), "x")));
  EXPECT_THAT(jws_verify(by_se, verifier_at(root(), kNow + 400 * kDay), Role::secure_element),
              FailsWith(Errc::cert_expired));
  CertVerifier revoking = verifier();
  revoking.set_crl(test::make_test_crl(root(), {se1().cert()}));
  EXPECT_THAT(jws_verify(by_se, revoking, Role::secure_element), FailsWith(Errc::cert_revoked));
}

TEST_F(Jose, SelfMadeCertificateIsRefused) {
  KeyCert fake_root = make_root("zf test root");
  Party fake(issue(fake_root, Role::secure_element, "se-1", "user-1"));
  auto parsed = must(jws_parse(sign(fake, "mint money")));
  EXPECT_THAT(jws_check_signature(parsed, 0), IsOk());
  EXPECT_THAT(jws_verify(parsed, verifier(), Role::secure_element),
              FailsWith(Errc::cert_untrusted));
}

TEST_F(Jose, NonAllowListedKeyInX5cIsRefused) {
  // An RSA certificate under the real root, presented with alg ES256.
  PrivateKey rsa(PkeyPtr(EVP_RSA_gen(2048)));
  IssueParams ip;
  ip.common_name = "rsa-se";
  ip.roles = {Role::secure_element};
  ip.not_before = kNow - kDay;
  ip.not_after = kNow + kDay;
  ip.serial = new_serial();
  Certificate cert = must(issue_certificate(root().cert, root().key, rsa.public_key(), ip));
  Parts p = split(sign(se1(), "x"));
  p.header = b64j(Json{{"alg", "ES256"}, {"x5c", x5c_of({cert})}});
  auto parsed = jws_parse(join(p));
  if (parsed) {
    EXPECT_THAT(jws_verify(*parsed, verifier(), Role::secure_element),
                FailsWith(Errc::unsupported_alg));
  } else {
    EXPECT_THAT(parsed, FailsWith(Errc::unsupported_alg));
  }
}

// ---- JWS JSON serialization

TEST_F(Jose, GeneralWithTwoSignersBothVerify) {
  std::string payload = R"({"type":"hold.request"})";
  Json j =
      must(jws_sign_general(as_bytes(payload), {se1().jws_signer(), se2().jws_signer()}, "zf+jws"));
  EXPECT_EQ(j["signatures"].size(), 2u);
  auto parsed = jws_parse(dump_json(j));
  ASSERT_THAT(parsed, IsOk());
  EXPECT_EQ(to_string(parsed->payload), payload);
  ASSERT_EQ(parsed->signatures.size(), 2u);
  EXPECT_THAT(jws_check_signature(*parsed, 0), IsOk());
  EXPECT_THAT(jws_check_signature(*parsed, 1), IsOk());
  auto leaves = jws_verify(*parsed, verifier(), Role::secure_element);
  ASSERT_THAT(leaves, IsOk());
  ASSERT_EQ(leaves->size(), 2u);
  EXPECT_EQ((*leaves)[0].subject_cn(), "se-1");
  EXPECT_EQ((*leaves)[1].subject_cn(), "se-2");
}

TEST_F(Jose, GeneralWithMixedAlgorithms) {
  Json j = must(
      jws_sign_general(as_bytes(std::string("p")), {se1().jws_signer(), se_ed().jws_signer()}));
  auto parsed = jws_parse_json(dump_json(j));
  ASSERT_THAT(parsed, IsOk());
  EXPECT_EQ(parsed->signatures[0].alg, SigAlg::ES256);
  EXPECT_EQ(parsed->signatures[1].alg, SigAlg::EdDSA);
  EXPECT_THAT(jws_verify(*parsed, verifier(), Role::secure_element), IsOk());
}

TEST_F(Jose, GeneralTamperedPayloadBreaksEverySignature) {
  Json j = must(jws_sign_general(as_bytes(std::string(R"({"amount":100})")),
                                 {se1().jws_signer(), se2().jws_signer()}));
  j["payload"] = b64u(R"({"amount":999})");
  auto parsed = jws_parse(dump_json(j));
  ASSERT_THAT(parsed, IsOk());
  EXPECT_THAT(jws_check_signature(*parsed, 0), FailsWith(Errc::bad_signature));
  EXPECT_THAT(jws_check_signature(*parsed, 1), FailsWith(Errc::bad_signature));
  EXPECT_THAT(jws_verify(*parsed, verifier(), Role::secure_element),
              FailsWith(Errc::bad_signature));
}

TEST_F(Jose, GeneralOneBadSignatureFailsTheWhole) {
  Json j =
      must(jws_sign_general(as_bytes(std::string("p")), {se1().jws_signer(), se2().jws_signer()}));
  // Swap the signatures between the two entries.
  Json swapped = j;
  swapped["signatures"][0]["signature"] = j["signatures"][1]["signature"];
  swapped["signatures"][1]["signature"] = j["signatures"][0]["signature"];
  EXPECT_THAT(jws_verify(must(jws_parse(dump_json(swapped))), verifier(), Role::secure_element),
              FailsWith(Errc::bad_signature));
  // Replace the second signer by a signature from another document.
  Json spliced = j;
  spliced["signatures"][1]["signature"] = split(sign(se2(), "other")).signature;
  auto parsed = must(jws_parse(dump_json(spliced)));
  EXPECT_THAT(jws_check_signature(parsed, 0), IsOk());
  EXPECT_THAT(jws_check_signature(parsed, 1), FailsWith(Errc::bad_signature));
  EXPECT_THAT(jws_verify(parsed, verifier(), Role::secure_element), FailsWith(Errc::bad_signature));
  // One signer from a foreign root.
  Json mixed = must(
      jws_sign_general(as_bytes(std::string("p")), {se1().jws_signer(), foreign().jws_signer()}));
  EXPECT_THAT(jws_verify(must(jws_parse(dump_json(mixed))), verifier(), Role::secure_element),
              FailsWith(Errc::cert_untrusted));
}

TEST_F(Jose, FlattenedSerializationIsAccepted) {
  Parts p = split(sign(se1(), "flat"));
  Json flat = {{"payload", p.payload}, {"protected", p.header}, {"signature", p.signature}};
  auto parsed = jws_parse(dump_json(flat));
  ASSERT_THAT(parsed, IsOk());
  EXPECT_EQ(to_string(parsed->payload), "flat");
  EXPECT_THAT(jws_verify(*parsed, verifier(), Role::secure_element), IsOk());
}

TEST_F(Jose, FlattenedMissingMembersAreNamed) {
  Parts p = split(sign(se1(), "flat"));
  EXPECT_THAT(jws_parse(dump_json(Json{{"payload", p.payload}, {"protected", p.header}})),
              FailsWithField(Errc::missing_field, "signature"));
  EXPECT_THAT(jws_parse(dump_json(Json{{"payload", p.payload}, {"signature", p.signature}})),
              FailsWithField(Errc::missing_field, "protected"));
  EXPECT_THAT(jws_parse(dump_json(Json{{"protected", p.header}, {"signature", p.signature}})),
              FailsWithField(Errc::missing_field, "payload"));
}

TEST_F(Jose, JsonSerializationShapeErrors) {
  Json j = must(jws_sign_general(as_bytes(std::string("p")), {se1().jws_signer()}));
  const Json entry = j["signatures"][0];

  Json extra_top = j;
  extra_top["header"] = Json::object();
  EXPECT_THAT(jws_parse(dump_json(extra_top)), FailsWithField(Errc::bad_header, "header"));

  Json unprotected = j;
  unprotected["signatures"][0]["header"] = {{"kid", "x"}};
  EXPECT_THAT(jws_parse(dump_json(unprotected)), FailsWithField(Errc::bad_header, "header"));

  Json empty = j;
  empty["signatures"] = Json::array();
  EXPECT_THAT(jws_parse(dump_json(empty)), FailsWithField(Errc::bad_header, "signatures"));

  Json not_array = j;
  not_array["signatures"] = entry;
  EXPECT_THAT(jws_parse(dump_json(not_array)), FailsWithField(Errc::bad_header, "signatures"));

  Json too_many = j;
  too_many["signatures"] = Json::array();
  for (int i = 0; i < 17; ++i) too_many["signatures"].push_back(entry);
  EXPECT_THAT(jws_parse(dump_json(too_many)), FailsWithField(Errc::bad_header, "signatures"));

  Json not_object = j;
  not_object["signatures"] = Json::array({"sig"});
  EXPECT_THAT(jws_parse(dump_json(not_object)), FailsWithField(Errc::bad_header, "signatures"));

  Json payload_number = j;
  payload_number["payload"] = 5;
  EXPECT_THAT(jws_parse(dump_json(payload_number)), FailsWithField(Errc::bad_field, "payload"));

  Json bad_payload = j;
  bad_payload["payload"] = "cA==";
  EXPECT_THAT(jws_parse(dump_json(bad_payload)), FailsWithField(Errc::bad_base64url, "payload"));

  Json no_sig = j;
  no_sig["signatures"][0].erase("signature");
  EXPECT_THAT(jws_parse(dump_json(no_sig)), FailsWithField(Errc::missing_field, "signature"));
}

TEST_F(Jose, JsonSerializationParseErrors) {
  EXPECT_THAT(jws_parse_json("{"), FailsWith(Errc::malformed_json));
  EXPECT_THAT(jws_parse_json("[]"), FailsWith(Errc::malformed_json));
  EXPECT_THAT(jws_parse_json(R"({"payload":"cA","payload":"cQ","signatures":[]})"),
              FailsWithField(Errc::duplicate_key, "payload"));
  Json j = must(jws_sign_general(as_bytes(std::string("p")), {se1().jws_signer()}));
  EXPECT_THAT(jws_parse(dump_json(j) + " "), IsOk());
  EXPECT_THAT(jws_parse(dump_json(j) + "{}"), FailsWith(Errc::malformed_json));
}

TEST_F(Jose, GeneralSignerCountLimits) {
  EXPECT_THAT(jws_sign_general(as_bytes(std::string("p")), {}), FailsWith(Errc::internal));
  std::vector<JwsSigner> many(17, se1().jws_signer());
  EXPECT_THAT(jws_sign_general(as_bytes(std::string("p")), many), FailsWith(Errc::internal));
  std::vector<JwsSigner> sixteen(16, se1().jws_signer());
  Json j = must(jws_sign_general(as_bytes(std::string("p")), sixteen));
  EXPECT_THAT(jws_verify(must(jws_parse(dump_json(j))), verifier(), Role::secure_element), IsOk());
}

// ---- JWE

class Jwe : public ::testing::Test {
 protected:
  PrivateKey payee = must(PrivateKey::generate());
  PrivateKey payer = must(PrivateKey::generate());
  PrivateKey stranger = must(PrivateKey::generate());
  PublicKey payee_pub = payee.public_key();
  PublicKey payer_pub = payer.public_key();
  Bytes secret = bytes_of(R"({"amount":1250,"memo":"escrow"})");

  Json encrypt_for_both() {
    return must(jwe_encrypt(secret, {{&payee_pub, "se-payee"}, {&payer_pub, "se-payer"}}));
  }
  static Bytes plain(const SecretBytes& s) { return Bytes(s.data(), s.data() + s.size()); }
  // Re-encodes a base64url member of `j` after flipping one bit of its bytes.
  static void flip_member(Json& j, const std::string& member, std::size_t index = 0) {
    Bytes b = unb64url(j[member].get<std::string>());
    b.at(index) ^= 0x01;
    j[member] = b64url_encode(b);
  }
};

TEST_F(Jwe, OneRecipientRoundTrip) {
  Json jwe = must(jwe_encrypt(secret, {{&payee_pub, "se-payee"}}));
  EXPECT_EQ(plain(must(jwe_decrypt(jwe, payee))), secret);
  EXPECT_EQ(plain(must(jwe_decrypt(jwe, payee, "se-payee"))), secret);
}

TEST_F(Jwe, WireShape) {
  Json jwe = must(jwe_encrypt(secret, {{&payee_pub, "se-payee"}}));
  EXPECT_EQ(must(parse_json_strict(to_string(unb64url(jwe["protected"].get<std::string>())))),
            (Json{{"enc", "A256GCM"}}));
  const Json& r = jwe["recipients"][0];
  EXPECT_EQ(r["header"]["alg"], "ECDH-ES+A256KW");
  EXPECT_EQ(r["header"]["kid"], "se-payee");
  EXPECT_EQ(r["header"]["epk"]["kty"], "EC");
  EXPECT_EQ(r["header"]["epk"]["crv"], "P-256");
  EXPECT_FALSE(r["header"]["epk"].contains("d")) << "the ephemeral private key never travels";
  EXPECT_EQ(unb64url(r["encrypted_key"].get<std::string>()).size(), 40u);
  EXPECT_EQ(unb64url(jwe["iv"].get<std::string>()).size(), 12u);
  EXPECT_EQ(unb64url(jwe["tag"].get<std::string>()).size(), 16u);
  EXPECT_EQ(unb64url(jwe["ciphertext"].get<std::string>()).size(), secret.size());
  EXPECT_FALSE(jwe.contains("aad"));
}

// Decrypts with nothing but RFC 7518 §4.6 and the primitives: the wire format is standard.
TEST_F(Jwe, DecryptsByTheRfcRecipe) {
  Json jwe = must(jwe_encrypt(secret, {{&payee_pub, ""}}));
  const Json& h = jwe["recipients"][0]["header"];
  EXPECT_FALSE(h.contains("kid"));
  PublicKey epk = must(PublicKey::from_p256_xy(unb64url(h["epk"]["x"].get<std::string>()),
                                               unb64url(h["epk"]["y"].get<std::string>())));
  SecretBytes z = must(ecdh(payee, epk));
  std::string alg = "ECDH-ES+A256KW";
  Bytes other_info{0, 0, 0, static_cast<std::uint8_t>(alg.size())};
  other_info.insert(other_info.end(), alg.begin(), alg.end());
  other_info.insert(other_info.end(), {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0});  // apu, apv, 256
  SecretBytes kek = must(concat_kdf_sha256(z.view(), other_info, 32));
  SecretBytes cek = must(aes256_key_unwrap(
      kek.view(), unb64url(jwe["recipients"][0]["encrypted_key"].get<std::string>())));
  std::string aad = jwe["protected"].get<std::string>();
  SecretBytes pt = must(aes256gcm_decrypt(
      cek.view(), unb64url(jwe["iv"].get<std::string>()), as_bytes(aad),
      unb64url(jwe["ciphertext"].get<std::string>()), unb64url(jwe["tag"].get<std::string>())));
  EXPECT_EQ(plain(pt), secret);
}

TEST_F(Jwe, TwoRecipientsEachDecrypt) {
  Json jwe = encrypt_for_both();
  ASSERT_EQ(jwe["recipients"].size(), 2u);
  EXPECT_EQ(plain(must(jwe_decrypt(jwe, payee))), secret);
  EXPECT_EQ(plain(must(jwe_decrypt(jwe, payer))), secret);
  EXPECT_EQ(plain(must(jwe_decrypt(jwe, payee, "se-payee"))), secret);
  EXPECT_EQ(plain(must(jwe_decrypt(jwe, payer, "se-payer"))), secret);
  // Both unwrap the same content key.
  SecretBytes a = must(jwe_unwrap_cek(jwe, payee));
  SecretBytes b = must(jwe_unwrap_cek(jwe, payer));
  EXPECT_TRUE(ct_equal(a.view(), b.view()));
  EXPECT_EQ(a.size(), 32u);
  // Each recipient has its own ephemeral key.
  EXPECT_NE(jwe["recipients"][0]["header"]["epk"], jwe["recipients"][1]["header"]["epk"]);
}

TEST_F(Jwe, NonRecipientCannotDecrypt) {
  Json jwe = encrypt_for_both();
  EXPECT_THAT(jwe_decrypt(jwe, stranger), FailsWithField(Errc::decrypt_failed, "recipients"));
  EXPECT_THAT(jwe_unwrap_cek(jwe, stranger), FailsWith(Errc::decrypt_failed));
  // Claiming someone else's kid does not help.
  EXPECT_THAT(jwe_decrypt(jwe, stranger, "se-payee"), FailsWith(Errc::decrypt_failed));
  EXPECT_THAT(jwe_decrypt(jwe, payer, "se-payee"), FailsWith(Errc::decrypt_failed));
}

TEST_F(Jwe, UnknownKidIsNoRecipient) {
  Json jwe = encrypt_for_both();
  EXPECT_THAT(jwe_decrypt(jwe, payee, "se-nobody"), FailsWithField(Errc::no_recipient, "kid"));
}

TEST_F(Jwe, NonP256KeyCannotDecrypt) {
  Json jwe = encrypt_for_both();
  PrivateKey ed = must(PrivateKey::generate(SigAlg::EdDSA));
  EXPECT_THAT(jwe_decrypt(jwe, ed), FailsWith(Errc::unsupported_alg));
  PublicKey ed_pub = ed.public_key();
  EXPECT_THAT(jwe_encrypt(secret, {{&ed_pub, ""}}), FailsWith(Errc::unsupported_alg));
}

TEST_F(Jwe, CallerChosenContentKey) {
  Bytes cek = random_bytes(32);
  Json jwe = must(jwe_encrypt_with_cek(secret, cek, {{&payer_pub, "se-payer"}}));
  // The holder of the content key decrypts without any recipient key (a released key).
  EXPECT_EQ(plain(must(jwe_decrypt_with_cek(jwe, cek))), secret);
  EXPECT_TRUE(ct_equal(must(jwe_unwrap_cek(jwe, payer)).view(), cek));
  EXPECT_THAT(jwe_decrypt_with_cek(jwe, random_bytes(32)), FailsWith(Errc::decrypt_failed));
  EXPECT_THAT(jwe_decrypt_with_cek(jwe, Bytes(16, 0)), FailsWith(Errc::decrypt_failed));
}

TEST_F(Jwe, EncryptArgumentChecks) {
  EXPECT_THAT(jwe_encrypt(secret, {}), FailsWith(Errc::internal));
  std::vector<JweRecipient> nine(9, JweRecipient{&payee_pub, ""});
  EXPECT_THAT(jwe_encrypt(secret, nine), FailsWith(Errc::internal));
  std::vector<JweRecipient> eight(8, JweRecipient{&payee_pub, ""});
  EXPECT_THAT(jwe_decrypt(must(jwe_encrypt(secret, eight)), payee), IsOk());
  EXPECT_THAT(jwe_encrypt_with_cek(secret, Bytes(31, 0), {{&payee_pub, ""}}),
              FailsWith(Errc::internal));
}

TEST_F(Jwe, EncryptionIsFreshEachTime) {
  Json a = must(jwe_encrypt(secret, {{&payee_pub, ""}}));
  Json b = must(jwe_encrypt(secret, {{&payee_pub, ""}}));
  EXPECT_NE(a["iv"], b["iv"]);
  EXPECT_NE(a["ciphertext"], b["ciphertext"]);
  EXPECT_NE(a["recipients"][0]["encrypted_key"], b["recipients"][0]["encrypted_key"]);
}

TEST_F(Jwe, EmptyPlaintextRoundTrip) {
  Json jwe = must(jwe_encrypt(Bytes{}, {{&payee_pub, ""}}));
  EXPECT_EQ(must(jwe_decrypt(jwe, payee)).size(), 0u);
}

TEST_F(Jwe, TamperingFailsDecryption) {
  const Json jwe = encrypt_for_both();
  for (const char* member : {"ciphertext", "tag", "iv"}) {
    Json t = jwe;
    flip_member(t, member);
    EXPECT_THAT(jwe_decrypt(t, payee), FailsWith(Errc::decrypt_failed)) << member;
  }
  Json last = jwe;
  flip_member(last, "tag", 15);
  EXPECT_THAT(jwe_decrypt(last, payer), FailsWith(Errc::decrypt_failed));
  // Truncated ciphertext.
  Json shorter = jwe;
  Bytes ct = unb64url(jwe["ciphertext"].get<std::string>());
  ct.pop_back();
  shorter["ciphertext"] = b64url_encode(ct);
  EXPECT_THAT(jwe_decrypt(shorter, payee), FailsWith(Errc::decrypt_failed));
  // Wrapped key.
  Json wrapped = jwe;
  Bytes ek = unb64url(jwe["recipients"][0]["encrypted_key"].get<std::string>());
  ek[3] ^= 0x80;
  wrapped["recipients"][0]["encrypted_key"] = b64url_encode(ek);
  EXPECT_THAT(jwe_decrypt(wrapped, payee, "se-payee"), FailsWith(Errc::decrypt_failed));
  EXPECT_THAT(jwe_decrypt(wrapped, payer, "se-payer"), IsOk()) << "other recipient unaffected";
}

TEST_F(Jwe, TamperedProtectedHeaderFailsDecryption) {
  // Still a valid header, but different bytes: it is the AAD.
  Json t = encrypt_for_both();
  t["protected"] = b64u(R"({ "enc":"A256GCM"})");
  EXPECT_THAT(jwe_decrypt(t, payee), FailsWith(Errc::decrypt_failed));
}

TEST_F(Jwe, AddedAadFailsDecryption) {
  Json t = encrypt_for_both();
  t["aad"] = b64u("extra");
  EXPECT_THAT(jwe_decrypt(t, payee), FailsWith(Errc::decrypt_failed));
  t["aad"] = "a=";
  EXPECT_THAT(jwe_decrypt(t, payee), FailsWithField(Errc::bad_base64url, "aad"));
}

TEST_F(Jwe, SwappedEphemeralKeyFailsDecryption) {
  Json t = encrypt_for_both();
  t["recipients"][0]["header"]["epk"] = t["recipients"][1]["header"]["epk"];
  EXPECT_THAT(jwe_decrypt(t, payee, "se-payee"), FailsWith(Errc::decrypt_failed));
}

TEST_F(Jwe, ContentEncryptionMustBeA256Gcm) {
  Json t = encrypt_for_both();
  for (const char* enc : {"A128GCM", "A256CBC-HS512", "none", ""}) {
    t["protected"] = b64j(Json{{"enc", enc}});
    EXPECT_THAT(jwe_decrypt(t, payee), FailsWithField(Errc::unsupported_alg, "enc")) << enc;
  }
  t["protected"] = b64j(Json{{"enc", 1}});
  EXPECT_THAT(jwe_decrypt(t, payee), FailsWithField(Errc::bad_header, "enc"));
  t["protected"] = b64j(Json::object());
  EXPECT_THAT(jwe_decrypt(t, payee), FailsWithField(Errc::bad_header, "enc"));
}

TEST_F(Jwe, ProtectedHeaderShape) {
  Json t = encrypt_for_both();
  t["protected"] = b64j(Json{{"enc", "A256GCM"}, {"zip", "DEF"}});
  EXPECT_THAT(jwe_decrypt(t, payee), FailsWithField(Errc::bad_header, "zip"));
  t["protected"] = b64j(Json{{"enc", "A256GCM"}, {"alg", "none"}});
  EXPECT_THAT(jwe_decrypt(t, payee), FailsWithField(Errc::bad_header, "alg"));
  t["protected"] = "eyJ=";
  EXPECT_THAT(jwe_decrypt(t, payee), FailsWithField(Errc::bad_base64url, "protected"));
  t["protected"] = b64u("{");
  EXPECT_THAT(jwe_decrypt(t, payee), FailsWithField(Errc::malformed_json, "protected"));
  t["protected"] = b64u(R"({"enc":"A256GCM","enc":"A128GCM"})");
  EXPECT_THAT(jwe_decrypt(t, payee), FailsWithField(Errc::duplicate_key, "protected"));
  t.erase("protected");
  EXPECT_THAT(jwe_decrypt(t, payee), FailsWithField(Errc::missing_field, "protected"));
}

TEST_F(Jwe, KeyManagementAlgorithm) {
  Json t = encrypt_for_both();
  for (const char* alg : {"ECDH-ES", "ECDH-ES+A128KW", "RSA-OAEP", "A256KW", "dir", ""}) {
    t["recipients"][0]["header"]["alg"] = alg;
    EXPECT_THAT(jwe_decrypt(t, payee), FailsWithField(Errc::unsupported_alg, "alg")) << alg;
  }
  t["recipients"][0]["header"]["alg"] = "none";
  EXPECT_THAT(jwe_decrypt(t, payee), FailsWithField(Errc::alg_none, "alg"));
  t["recipients"][0]["header"]["alg"] = 7;
  EXPECT_THAT(jwe_decrypt(t, payee), FailsWithField(Errc::bad_header, "alg"));
  t["recipients"][0]["header"].erase("alg");
  EXPECT_THAT(jwe_decrypt(t, payee), FailsWithField(Errc::bad_header, "alg"));
}

TEST_F(Jwe, AlgNoneInAnyRecipientIsRefused) {
  // A poisoned second entry must not be skipped just because the first one unwraps.
  Json t = encrypt_for_both();
  t["recipients"][1]["header"]["alg"] = "none";
  EXPECT_THAT(jwe_parse(dump_json(t)), FailsWith(Errc::alg_none));
  EXPECT_THAT(jwe_decrypt(t, payee), FailsWith(Errc::alg_none));
  EXPECT_THAT(jwe_decrypt(t, payee, "se-payee"), FailsWith(Errc::alg_none));
  // Any malformed entry makes the whole object invalid, as jwe_parse says.
  Json u = encrypt_for_both();
  u["recipients"][1]["header"]["epk"]["crv"] = "P-384";
  EXPECT_THAT(jwe_decrypt(u, payee), FailsWith(Errc::unsupported_alg));
}

TEST_F(Jwe, EphemeralKeyChecks) {
  const Json jwe = encrypt_for_both();
  Json t = jwe;
  Bytes y = unb64url(jwe["recipients"][0]["header"]["epk"]["y"].get<std::string>());
  y[31] ^= 1;
  t["recipients"][0]["header"]["epk"]["y"] = b64url_encode(y);
  EXPECT_THAT(jwe_decrypt(t, payee), FailsWithField(Errc::bad_field, "epk"));

  t = jwe;
  t["recipients"][0]["header"]["epk"]["crv"] = "P-384";
  EXPECT_THAT(jwe_decrypt(t, payee), FailsWithField(Errc::unsupported_alg, "epk"));
  t = jwe;
  t["recipients"][0]["header"]["epk"]["kty"] = "OKP";
  EXPECT_THAT(jwe_decrypt(t, payee), FailsWithField(Errc::unsupported_alg, "epk"));
  t = jwe;
  t["recipients"][0]["header"]["epk"]["d"] = "AAAA";
  EXPECT_THAT(jwe_decrypt(t, payee), FailsWithField(Errc::bad_header, "epk.d"));
  t = jwe;
  t["recipients"][0]["header"]["epk"].erase("x");
  EXPECT_THAT(jwe_decrypt(t, payee), FailsWithField(Errc::bad_header, "epk"));
  t = jwe;
  t["recipients"][0]["header"]["epk"]["x"] = "AA==";
  EXPECT_THAT(jwe_decrypt(t, payee), FailsWithField(Errc::bad_base64url, "epk.x"));
  t = jwe;
  t["recipients"][0]["header"]["epk"] = "not an object";
  EXPECT_THAT(jwe_decrypt(t, payee), FailsWithField(Errc::bad_header, "epk"));
  t = jwe;
  t["recipients"][0]["header"].erase("epk");
  EXPECT_THAT(jwe_decrypt(t, payee), FailsWithField(Errc::bad_header, "epk"));
}

TEST_F(Jwe, RecipientShape) {
  const Json jwe = encrypt_for_both();
  Json t = jwe;
  t["recipients"][0]["header"]["jku"] = "https://evil";
  EXPECT_THAT(jwe_decrypt(t, payee), FailsWithField(Errc::bad_header, "jku"));
  t = jwe;
  t["recipients"][0]["extra"] = 1;
  EXPECT_THAT(jwe_decrypt(t, payee), FailsWithField(Errc::bad_header, "recipients.extra"));
  t = jwe;
  t["recipients"][0].erase("header");
  EXPECT_THAT(jwe_decrypt(t, payee), FailsWithField(Errc::bad_header, "recipients.header"));
  t = jwe;
  t["recipients"][0].erase("encrypted_key");
  EXPECT_THAT(jwe_decrypt(t, payee, "se-payee"), FailsWithField(Errc::bad_header, "encrypted_key"));
  t = jwe;
  t["recipients"][0]["encrypted_key"] = "AA==";
  EXPECT_THAT(jwe_decrypt(t, payee, "se-payee"),
              FailsWithField(Errc::bad_base64url, "encrypted_key"));
  t = jwe;
  t["recipients"][0]["header"]["kid"] = 5;
  EXPECT_THAT(jwe_decrypt(t, payee), FailsWithField(Errc::bad_header, "kid"));
  t = jwe;
  t["recipients"][0]["header"]["apu"] = "A=";
  EXPECT_THAT(jwe_decrypt(t, payee), FailsWithField(Errc::bad_base64url, "apu"));
}

// A one-recipient JWE the way the npm jose library writes it: the ephemeral key in the
// protected header (covered by the GCM tag) rather than in the recipient header.
Json with_protected_epk(const Json& jwe, ByteView cek, ByteView plaintext) {
  Json out = jwe;
  Json epk = out["recipients"][0]["header"]["epk"];
  out["recipients"][0]["header"].erase("epk");
  std::string prot = b64j(Json{{"enc", "A256GCM"}, {"epk", epk}});
  out["protected"] = prot;
  Bytes iv = unb64url(out["iv"].get<std::string>());
  GcmSealed sealed = must(aes256gcm_encrypt(cek, iv, as_bytes(prot), plaintext));
  out["ciphertext"] = b64url_encode(sealed.ciphertext);
  out["tag"] = b64url_encode(sealed.tag);
  return out;
}

TEST_F(Jwe, EphemeralKeyInTheProtectedHeader) {
  Bytes cek = random_bytes(32);
  Json jwe = with_protected_epk(must(jwe_encrypt_with_cek(secret, cek, {{&payee_pub, "se-payee"}})),
                                cek, secret);
  EXPECT_EQ(plain(must(jwe_decrypt(jwe, payee))), secret);
  EXPECT_THAT(jwe_parse(dump_json(jwe)), IsOk());
  EXPECT_THAT(jwe_decrypt(jwe, stranger), FailsWith(Errc::decrypt_failed));

  // Header names must be disjoint: an epk in both places is refused.
  Json both = jwe;
  both["recipients"][0]["header"]["epk"] =
      must(parse_json_strict(to_string(unb64url(jwe["protected"].get<std::string>()))))["epk"];
  EXPECT_THAT(jwe_decrypt(both, payee), FailsWithField(Errc::bad_header, "epk"));

  Json not_object = jwe;
  not_object["protected"] = b64j(Json{{"enc", "A256GCM"}, {"epk", "x"}});
  EXPECT_THAT(jwe_decrypt(not_object, payee), FailsWithField(Errc::bad_header, "epk"));
}

TEST_F(Jwe, SharedProtectedEphemeralKeyNeedsExactlyOneRecipient) {
  Bytes cek = random_bytes(32);
  Json two = must(jwe_encrypt_with_cek(secret, cek, {{&payee_pub, "a"}, {&payer_pub, "b"}}));
  Json epk = two["recipients"][0]["header"]["epk"];
  for (auto& r : two["recipients"]) r["header"].erase("epk");
  two["protected"] = b64j(Json{{"enc", "A256GCM"}, {"epk", epk}});
  EXPECT_THAT(jwe_decrypt(two, payee), FailsWithField(Errc::bad_header, "epk"));
  EXPECT_THAT(jwe_parse(dump_json(two)), FailsWithField(Errc::bad_header, "epk"));
}

TEST_F(Jwe, PartyInfoIsBoundIntoTheKey) {
  // apu/apv feed the KDF: adding them after the fact changes the KEK.
  Json t = encrypt_for_both();
  t["recipients"][0]["header"]["apv"] = b64u("Bob");
  EXPECT_THAT(jwe_decrypt(t, payee, "se-payee"), FailsWith(Errc::decrypt_failed));
}

TEST_F(Jwe, RecipientsListBounds) {
  const Json jwe = encrypt_for_both();
  Json t = jwe;
  t["recipients"] = Json::array();
  EXPECT_THAT(jwe_decrypt(t, payee), FailsWithField(Errc::bad_header, "recipients"));
  t["recipients"] = jwe["recipients"][0];
  EXPECT_THAT(jwe_decrypt(t, payee), FailsWithField(Errc::bad_header, "recipients"));
  t["recipients"] = Json::array();
  for (int i = 0; i < 9; ++i) t["recipients"].push_back(jwe["recipients"][0]);
  EXPECT_THAT(jwe_decrypt(t, payee), FailsWithField(Errc::bad_header, "recipients"));
  t.erase("recipients");
  EXPECT_THAT(jwe_decrypt(t, payee), FailsWithField(Errc::bad_header, "recipients"));
}

TEST_F(Jwe, TopLevelShape) {
  const Json jwe = encrypt_for_both();
  Json t = jwe;
  t["unprotected"] = {{"alg", "dir"}};
  EXPECT_THAT(jwe_decrypt(t, payee), FailsWithField(Errc::bad_header, "unprotected"));
  t = jwe;
  t["header"] = Json::object();
  EXPECT_THAT(jwe_decrypt(t, payee), FailsWithField(Errc::bad_header, "header"));
  for (const char* member : {"iv", "ciphertext", "tag"}) {
    t = jwe;
    t.erase(member);
    EXPECT_THAT(jwe_decrypt(t, payee), FailsWithField(Errc::missing_field, member)) << member;
    t = jwe;
    t[member] = "AA==";
    EXPECT_THAT(jwe_decrypt(t, payee), FailsWithField(Errc::bad_base64url, member)) << member;
    t = jwe;
    t[member] = 1;
    EXPECT_THAT(jwe_decrypt(t, payee), FailsWithField(Errc::bad_field, member)) << member;
  }
  EXPECT_THAT(jwe_decrypt(Json::array(), payee), FailsWith(Errc::bad_header));
}

TEST_F(Jwe, ParseTextRoundTrip) {
  Json jwe = encrypt_for_both();
  auto parsed = jwe_parse(dump_json(jwe));
  ASSERT_THAT(parsed, IsOk());
  EXPECT_EQ(*parsed, jwe);
  EXPECT_EQ(plain(must(jwe_decrypt(*parsed, payer))), secret);
}

TEST_F(Jwe, ParseTextErrors) {
  std::string text = dump_json(encrypt_for_both());
  EXPECT_THAT(jwe_parse(text.substr(0, text.size() - 1)), FailsWith(Errc::malformed_json));
  EXPECT_THAT(jwe_parse(text + "x"), FailsWith(Errc::malformed_json));
  std::string dup = "{\"iv\":\"AA\"," + text.substr(1);
  EXPECT_THAT(jwe_parse(dup), FailsWithField(Errc::duplicate_key, "iv"));
  EXPECT_THAT(jwe_parse(std::string(kMaxJoseBytes + 1, ' ')), FailsWith(Errc::too_large));
  Json bad = encrypt_for_both();
  bad["recipients"][1]["header"]["epk"]["crv"] = "P-521";
  EXPECT_THAT(jwe_parse(dump_json(bad)), FailsWith(Errc::unsupported_alg));
}

}  // namespace
}  // namespace zf
