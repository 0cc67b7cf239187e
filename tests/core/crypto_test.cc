// Crypto wrappers: known-answer tests from the RFCs, sign/verify, ECDH, KDFs, AEAD, key wrap.
#include "core/crypto.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <string>

#include "test_util.h"

namespace zf {
namespace {

using test::bytes_of;
using test::FailsWith;
using test::FailsWithField;
using test::IsOk;
using test::must;
using test::unb64url;
using test::unhex;

// A P-256 private key from the JWK "d", "x", "y" members (test vectors only).
PrivateKey p256_from_jwk(std::string_view d, std::string_view x, std::string_view y) {
  Bytes db = unb64url(d);
  Bytes point{0x04};
  for (auto part : {unb64url(x), unb64url(y)}) point.insert(point.end(), part.begin(), part.end());
  BIGNUM* priv = BN_bin2bn(db.data(), static_cast<int>(db.size()), nullptr);
  OSSL_PARAM_BLD* bld = OSSL_PARAM_BLD_new();
  OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME, "prime256v1", 0);
  OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_PRIV_KEY, priv);
  OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, point.data(), point.size());
  OSSL_PARAM* params = OSSL_PARAM_BLD_to_param(bld);
  EVP_PKEY_CTX* ctx = EVP_PKEY_CTX_new_from_name(nullptr, "EC", nullptr);
  EVP_PKEY* key = nullptr;
  bool ok =
      EVP_PKEY_fromdata_init(ctx) > 0 && EVP_PKEY_fromdata(ctx, &key, EVP_PKEY_KEYPAIR, params) > 0;
  EVP_PKEY_CTX_free(ctx);
  OSSL_PARAM_free(params);
  OSSL_PARAM_BLD_free(bld);
  BN_clear_free(priv);
  if (!ok) throw std::runtime_error("bad P-256 test key");
  return PrivateKey(PkeyPtr(key));
}

PrivateKey ed25519_from_seed(ByteView seed) {
  EVP_PKEY* key = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, nullptr, seed.data(), seed.size());
  if (!key) throw std::runtime_error("bad Ed25519 test key");
  return PrivateKey(PkeyPtr(key));
}

PublicKey ed25519_public(ByteView raw) {
  EVP_PKEY* key = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, nullptr, raw.data(), raw.size());
  if (!key) throw std::runtime_error("bad Ed25519 test key");
  return PublicKey(PkeyPtr(key));
}

PkeyPtr rsa_key() { return PkeyPtr(EVP_RSA_gen(2048)); }

Bytes flip(Bytes b, std::size_t i, std::uint8_t mask = 0x01) {
  b.at(i) ^= mask;
  return b;
}

// ---- Algorithm names

TEST(SigAlgNames, RoundTrip) {
  EXPECT_EQ(sig_alg_name(SigAlg::ES256), "ES256");
  EXPECT_EQ(sig_alg_name(SigAlg::EdDSA), "EdDSA");
  EXPECT_EQ(*sig_alg_from_name("ES256"), SigAlg::ES256);
  EXPECT_EQ(*sig_alg_from_name("EdDSA"), SigAlg::EdDSA);
}

TEST(SigAlgNames, NoneIsItsOwnError) {
  EXPECT_THAT(sig_alg_from_name("none"), FailsWithField(Errc::alg_none, "alg"));
}

TEST(SigAlgNames, AnythingElseIsUnsupported) {
  for (const char* n : {"RS256", "HS256", "ES384", "PS256", "es256", "EDDSA", "Ed25519", "", "None",
                        "NONE", "ES256 "})
    EXPECT_THAT(sig_alg_from_name(n), FailsWithField(Errc::unsupported_alg, "alg")) << n;
}

// ---- Sign and verify

class SignVerify : public ::testing::TestWithParam<SigAlg> {};

TEST_P(SignVerify, RoundTrip) {
  PrivateKey key = must(PrivateKey::generate(GetParam()));
  EXPECT_EQ(key.alg(), GetParam());
  EXPECT_EQ(key.public_key().alg(), GetParam());
  Bytes msg = bytes_of("pay 12.50 to se-2");
  Bytes sig = must(key.sign(msg));
  EXPECT_EQ(sig.size(), 64u);  // JOSE raw format for both algorithms
  EXPECT_THAT(key.public_key().verify(msg, sig), IsOk());
}

TEST_P(SignVerify, EmptyMessage) {
  PrivateKey key = must(PrivateKey::generate(GetParam()));
  Bytes sig = must(key.sign(Bytes{}));
  EXPECT_THAT(key.public_key().verify(Bytes{}, sig), IsOk());
  EXPECT_THAT(key.public_key().verify(bytes_of("x"), sig), FailsWith(Errc::bad_signature));
}

TEST_P(SignVerify, AnotherKeyDoesNotVerify) {
  PrivateKey key = must(PrivateKey::generate(GetParam()));
  PrivateKey other = must(PrivateKey::generate(GetParam()));
  Bytes msg = bytes_of("message");
  Bytes sig = must(key.sign(msg));
  EXPECT_THAT(other.public_key().verify(msg, sig), FailsWith(Errc::bad_signature));
}

TEST_P(SignVerify, TamperedMessageDoesNotVerify) {
  PrivateKey key = must(PrivateKey::generate(GetParam()));
  Bytes msg = bytes_of("message");
  Bytes sig = must(key.sign(msg));
  EXPECT_THAT(key.public_key().verify(flip(msg, 0), sig), FailsWith(Errc::bad_signature));
  EXPECT_THAT(key.public_key().verify(bytes_of("message "), sig), FailsWith(Errc::bad_signature));
}

TEST_P(SignVerify, TamperedSignatureDoesNotVerify) {
  PrivateKey key = must(PrivateKey::generate(GetParam()));
  Bytes msg = bytes_of("message");
  Bytes sig = must(key.sign(msg));
  for (std::size_t i : {std::size_t{0}, std::size_t{31}, std::size_t{32}, std::size_t{63}})
    EXPECT_THAT(key.public_key().verify(msg, flip(sig, i)), FailsWith(Errc::bad_signature)) << i;
}

TEST_P(SignVerify, WrongLengthSignatureIsRefused) {
  PrivateKey key = must(PrivateKey::generate(GetParam()));
  Bytes msg = bytes_of("message");
  Bytes sig = must(key.sign(msg));
  Bytes truncated(sig.begin(), sig.end() - 1);
  Bytes longer = sig;
  longer.push_back(0);
  EXPECT_THAT(key.public_key().verify(msg, truncated), FailsWith(Errc::bad_signature));
  EXPECT_THAT(key.public_key().verify(msg, longer), FailsWith(Errc::bad_signature));
  EXPECT_THAT(key.public_key().verify(msg, Bytes{}), FailsWith(Errc::bad_signature));
  EXPECT_THAT(key.public_key().verify(msg, Bytes(32, 1)), FailsWith(Errc::bad_signature));
}

TEST_P(SignVerify, AllZeroSignatureIsRefused) {
  PrivateKey key = must(PrivateKey::generate(GetParam()));
  EXPECT_THAT(key.public_key().verify(bytes_of("m"), Bytes(64, 0)), FailsWith(Errc::bad_signature));
  EXPECT_THAT(key.public_key().verify(bytes_of("m"), Bytes(64, 0xff)),
              FailsWith(Errc::bad_signature));
}

TEST_P(SignVerify, KeySignerIsTheSameKey) {
  PrivateKey key = must(PrivateKey::generate(GetParam()));
  KeySigner signer(key);
  const Signer& s = signer;
  EXPECT_EQ(s.alg(), GetParam());
  Bytes msg = bytes_of("through the narrow interface");
  EXPECT_THAT(key.public_key().verify(msg, must(s.sign(msg))), IsOk());
}

INSTANTIATE_TEST_SUITE_P(Algs, SignVerify, ::testing::Values(SigAlg::ES256, SigAlg::EdDSA),
                         [](const auto& info) { return std::string(sig_alg_name(info.param)); });

TEST(SignVerifyCross, SignatureOfOneAlgDoesNotVerifyUnderTheOther) {
  PrivateKey es = must(PrivateKey::generate(SigAlg::ES256));
  PrivateKey ed = must(PrivateKey::generate(SigAlg::EdDSA));
  Bytes msg = bytes_of("m");
  EXPECT_THAT(ed.public_key().verify(msg, must(es.sign(msg))), FailsWith(Errc::bad_signature));
  EXPECT_THAT(es.public_key().verify(msg, must(ed.sign(msg))), FailsWith(Errc::bad_signature));
}

TEST(SignVerifyCross, Es256IsRandomizedEdDsaIsDeterministic) {
  PrivateKey es = must(PrivateKey::generate(SigAlg::ES256));
  PrivateKey ed = must(PrivateKey::generate(SigAlg::EdDSA));
  Bytes msg = bytes_of("m");
  EXPECT_NE(must(es.sign(msg)), must(es.sign(msg)));
  EXPECT_EQ(must(ed.sign(msg)), must(ed.sign(msg)));
}

TEST(SignVerifyCross, OtherKeyTypesAreUnsupported) {
  PublicKey rsa_pub(rsa_key());
  EXPECT_THAT(rsa_pub.verify(bytes_of("m"), Bytes(64, 1)), FailsWith(Errc::unsupported_alg));
}

// RFC 7515 Appendix A.3: an ES256 JWS published with its key; our verify must accept it.
TEST(KnownAnswer, Rfc7515A3Es256Verifies) {
  PublicKey key =
      must(PublicKey::from_p256_xy(unb64url("f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU"),
                                   unb64url("x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0")));
  std::string input =
      "eyJhbGciOiJFUzI1NiJ9."
      "eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVl"
      "fQ";
  Bytes sig = unb64url(
      "DtEhU3ljbEg8L38VWAfUAqOyKAM6-Xx-F4GawxaepmXFCgfTjDxw5djxLa8ISlSApmWQxfKTUJqPP3-Kg6NU1Q");
  EXPECT_THAT(key.verify(as_bytes(input), sig), IsOk());
  EXPECT_THAT(key.verify(as_bytes(input + "x"), sig), FailsWith(Errc::bad_signature));
  // The private key of the same appendix signs something the public key accepts.
  PrivateKey priv = p256_from_jwk("jpsQnnGQmL-YBIffH1136cspYG6-0iY7X1fCE9-E9LI",
                                  "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",
                                  "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0");
  EXPECT_THAT(key.verify(as_bytes(input), must(priv.sign(as_bytes(input)))), IsOk());
}

// RFC 8037 Appendix A.4: Ed25519 is deterministic, so our signature must match byte for byte.
TEST(KnownAnswer, Rfc8037A4EdDsaSignsExactly) {
  PrivateKey key = ed25519_from_seed(unb64url("nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A"));
  PublicKey pub = ed25519_public(unb64url("11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"));
  EXPECT_EQ(key.public_key().spki_der(), pub.spki_der());
  std::string input = "eyJhbGciOiJFZERTQSJ9.RXhhbXBsZSBvZiBFZDI1NTE5IHNpZ25pbmc";
  Bytes expected = unb64url(
      "hgyY0il_MGCjP0JzlnLWG1PPOt7-09PGcvMg3AIbQR6dWbhijcNR4ki4iylGjg5BhVsPt9g7sVvpAr_MuM0KAg");
  EXPECT_EQ(must(key.sign(as_bytes(input))), expected);
  EXPECT_THAT(pub.verify(as_bytes(input), expected), IsOk());
}

// ---- Public key encodings

TEST(PublicKeyEncoding, SpkiRoundTrips) {
  for (SigAlg alg : {SigAlg::ES256, SigAlg::EdDSA}) {
    PrivateKey key = must(PrivateKey::generate(alg));
    Bytes der = key.public_key().spki_der();
    ASSERT_FALSE(der.empty());
    auto back = PublicKey::from_spki_der(der);
    ASSERT_THAT(back, IsOk());
    EXPECT_EQ(back->alg(), alg);
    EXPECT_EQ(back->spki_der(), der);
    Bytes msg = bytes_of("m");
    EXPECT_THAT(back->verify(msg, must(key.sign(msg))), IsOk());
  }
}

TEST(PublicKeyEncoding, MalformedSpkiIsRefused) {
  Bytes der = must(PrivateKey::generate()).public_key().spki_der();
  Bytes trailing = der;
  trailing.push_back(0);
  Bytes truncated(der.begin(), der.end() - 1);
  for (const Bytes& b : {Bytes{}, Bytes{0x30, 0x00}, bytes_of("not der"), trailing, truncated})
    EXPECT_THAT(PublicKey::from_spki_der(b), FailsWithField(Errc::bad_field, "public_key"));
}

TEST(PublicKeyEncoding, RsaSpkiIsUnsupported) {
  PublicKey rsa(rsa_key());
  EXPECT_THAT(PublicKey::from_spki_der(rsa.spki_der()), FailsWith(Errc::unsupported_alg));
}

TEST(PublicKeyEncoding, P256CoordinatesRoundTrip) {
  PrivateKey key = must(PrivateKey::generate(SigAlg::ES256));
  auto xy = key.public_key().p256_xy();
  ASSERT_THAT(xy, IsOk());
  EXPECT_EQ(xy->first.size(), 32u);
  EXPECT_EQ(xy->second.size(), 32u);
  auto back = PublicKey::from_p256_xy(xy->first, xy->second);
  ASSERT_THAT(back, IsOk());
  EXPECT_EQ(back->spki_der(), key.public_key().spki_der());
}

TEST(PublicKeyEncoding, P256CoordinatesOfEd25519AreUnsupported) {
  PrivateKey key = must(PrivateKey::generate(SigAlg::EdDSA));
  EXPECT_THAT(key.public_key().p256_xy(), FailsWith(Errc::unsupported_alg));
}

TEST(PublicKeyEncoding, OffCurvePointIsRefused) {
  auto xy = must(must(PrivateKey::generate()).public_key().p256_xy());
  Bytes y = xy.second;
  y[31] ^= 1;  // (x, y') with y' != ±y is not on the curve
  EXPECT_THAT(PublicKey::from_p256_xy(xy.first, y), FailsWithField(Errc::bad_field, "epk"));
  EXPECT_THAT(PublicKey::from_p256_xy(Bytes(32, 0), Bytes(32, 0)),
              FailsWithField(Errc::bad_field, "epk"));
  // Coordinates at or above the field prime are not field elements.
  EXPECT_THAT(PublicKey::from_p256_xy(Bytes(32, 0xff), xy.second),
              FailsWithField(Errc::bad_field, "epk"));
}

TEST(PublicKeyEncoding, WrongCoordinateSizesAreRefused) {
  auto xy = must(must(PrivateKey::generate()).public_key().p256_xy());
  Bytes short_x(xy.first.begin() + 1, xy.first.end());
  Bytes long_y = xy.second;
  long_y.insert(long_y.begin(), 0);
  EXPECT_THAT(PublicKey::from_p256_xy(short_x, xy.second), FailsWithField(Errc::bad_field, "epk"));
  EXPECT_THAT(PublicKey::from_p256_xy(xy.first, long_y), FailsWithField(Errc::bad_field, "epk"));
  EXPECT_THAT(PublicKey::from_p256_xy(Bytes{}, Bytes{}), FailsWithField(Errc::bad_field, "epk"));
}

TEST(PublicKeyEncoding, CloneSharesTheKey) {
  PrivateKey key = must(PrivateKey::generate());
  PublicKey pub = key.public_key();
  PublicKey copy = pub.clone();
  EXPECT_EQ(copy.get(), pub.get());
  Bytes msg = bytes_of("m");
  EXPECT_THAT(copy.verify(msg, must(key.sign(msg))), IsOk());
}

// ---- Private key storage

TEST(PrivateKeyStorage, Pkcs8RoundTrips) {
  for (SigAlg alg : {SigAlg::ES256, SigAlg::EdDSA}) {
    PrivateKey key = must(PrivateKey::generate(alg));
    SecretBytes der = key.export_pkcs8();
    ASSERT_GT(der.size(), 0u);
    auto back = PrivateKey::from_pkcs8_der(der.view());
    ASSERT_THAT(back, IsOk());
    EXPECT_EQ(back->alg(), alg);
    EXPECT_EQ(back->public_key().spki_der(), key.public_key().spki_der());
    Bytes msg = bytes_of("m");
    EXPECT_THAT(key.public_key().verify(msg, must(back->sign(msg))), IsOk());
  }
}

TEST(PrivateKeyStorage, ExportIsPkcs8PrivateKeyInfo) {
  // The name promises PKCS#8 (what other tools and the SE state format expect),
  // not a type-specific encoding such as SEC1 ECPrivateKey.
  for (SigAlg alg : {SigAlg::ES256, SigAlg::EdDSA}) {
    SecretBytes der = must(PrivateKey::generate(alg)).export_pkcs8();
    const unsigned char* p = der.data();
    PKCS8_PRIV_KEY_INFO* info = d2i_PKCS8_PRIV_KEY_INFO(nullptr, &p, static_cast<long>(der.size()));
    EXPECT_NE(info, nullptr) << sig_alg_name(alg);
    if (info) {
      EXPECT_EQ(p, der.data() + der.size()) << "no trailing bytes";
    }
    PKCS8_PRIV_KEY_INFO_free(info);
  }
}

TEST(PrivateKeyStorage, MalformedPkcs8IsRefused) {
  EXPECT_THAT(PrivateKey::from_pkcs8_der(Bytes{}), FailsWith(Errc::bad_field));
  EXPECT_THAT(PrivateKey::from_pkcs8_der(bytes_of("garbage")), FailsWith(Errc::bad_field));
  SecretBytes der = must(PrivateKey::generate()).export_pkcs8();
  Bytes truncated(der.data(), der.data() + der.size() / 2);
  EXPECT_THAT(PrivateKey::from_pkcs8_der(truncated), FailsWith(Errc::bad_field));
}

class PemFile : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::path(::testing::TempDir()) /
           ("zf_crypto_test_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::filesystem::path dir_;
};

TEST_F(PemFile, ExportIsPkcs8Pem) {
  // Core writes no files: the key file itself is store::save_private_key (tests/store).
  for (SigAlg alg : {SigAlg::ES256, SigAlg::EdDSA}) {
    PrivateKey key = must(PrivateKey::generate(alg));
    SecretBytes pem = must(key.export_pem());
    std::string text(pem.view().begin(), pem.view().end());
    EXPECT_EQ(text.rfind("-----BEGIN PRIVATE KEY-----\n", 0), 0u);
    EXPECT_NE(text.find("-----END PRIVATE KEY-----"), std::string::npos);
  }
}

TEST_F(PemFile, LoadErrors) {
  EXPECT_THAT(PrivateKey::load_pem_file((dir_ / "missing.pem").string()),
              FailsWith(Errc::io_error));
  std::string junk = (dir_ / "junk.pem").string();
  FILE* f = std::fopen(junk.c_str(), "w");
  ASSERT_NE(f, nullptr);
  std::fputs("-----BEGIN PRIVATE KEY-----\nnot a key\n-----END PRIVATE KEY-----\n", f);
  std::fclose(f);
  EXPECT_THAT(PrivateKey::load_pem_file(junk), FailsWith(Errc::bad_field));
}

// ---- ECDH

TEST(Ecdh, AgreementIsSymmetric) {
  PrivateKey a = must(PrivateKey::generate());
  PrivateKey b = must(PrivateKey::generate());
  SecretBytes ab = must(ecdh(a, b.public_key()));
  SecretBytes ba = must(ecdh(b, a.public_key()));
  EXPECT_EQ(ab.size(), 32u);
  EXPECT_TRUE(ct_equal(ab.view(), ba.view()));
  PrivateKey c = must(PrivateKey::generate());
  SecretBytes ac = must(ecdh(a, c.public_key()));
  EXPECT_FALSE(ct_equal(ab.view(), ac.view()));
}

// RFC 7518 Appendix C: the shared secret Z between Alice's and Bob's keys.
TEST(Ecdh, Rfc7518AppendixCKnownAnswer) {
  PrivateKey alice = p256_from_jwk("0_NxaRPUMQoAJt50Gz8YiTr8gRTwyEaCumd-MToTmIo",
                                   "gI0GAILBdu7T53akrFmMyGcsF3n5dO7MmwNBHKW5SV0",
                                   "SLW_xSffzlPWrHEVI30DHM_4egVwt3NQqeUD7nMFpps");
  PublicKey bob =
      must(PublicKey::from_p256_xy(unb64url("weNJy2HscCSM6AEDTDg04biOvhFhyyWvOHQfeF_PxMQ"),
                                   unb64url("e8lnCO-AlStT-NJVX-crhB7QRYhiix03illJOVAOyck")));
  Bytes expected{158, 86, 217, 29,  129, 113, 53,  211, 114, 131, 66,  131, 191, 132, 38,  156,
                 251, 49, 110, 163, 218, 128, 106, 72,  246, 218, 167, 121, 140, 254, 144, 196};
  SecretBytes z = must(ecdh(alice, bob));
  EXPECT_EQ(Bytes(z.data(), z.data() + z.size()), expected);
}

TEST(Ecdh, NonP256KeysAreUnsupported) {
  PrivateKey p = must(PrivateKey::generate(SigAlg::ES256));
  PrivateKey ed = must(PrivateKey::generate(SigAlg::EdDSA));
  EXPECT_THAT(ecdh(ed, p.public_key()), FailsWith(Errc::unsupported_alg));
  EXPECT_THAT(ecdh(p, ed.public_key()), FailsWith(Errc::unsupported_alg));
}

// ---- KDFs

// RFC 5869 Appendix A.1 (test case 1).
TEST(Hkdf, Rfc5869TestCase1) {
  SecretBytes okm = must(hkdf_sha256(Bytes(22, 0x0b), unhex("000102030405060708090a0b0c"),
                                     unhex("f0f1f2f3f4f5f6f7f8f9"), 42));
  EXPECT_EQ(hex_encode(okm.view()),
            "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865");
}

// RFC 5869 Appendix A.2 (test case 2: long inputs, output longer than two blocks).
TEST(Hkdf, Rfc5869TestCase2) {
  Bytes ikm(80), salt(80), info(80);
  for (int i = 0; i < 80; ++i) {
    ikm[i] = static_cast<std::uint8_t>(i);
    salt[i] = static_cast<std::uint8_t>(0x60 + i);
    info[i] = static_cast<std::uint8_t>(0xb0 + i);
  }
  SecretBytes okm = must(hkdf_sha256(ikm, salt, info, 82));
  EXPECT_EQ(hex_encode(okm.view()),
            "b11e398dc80327a1c8e7f78c596a49344f012eda2d4efad8a050cc4c19afa97c59045a99cac7827271cb41"
            "c65e590e09da3275600c2f09b8367793a9aca3db71cc30c58179ec3e87c14c01d5c1f3434f1d87");
}

// RFC 5869 Appendix A.3 (test case 3: empty salt and info).
TEST(Hkdf, Rfc5869TestCase3EmptySaltAndInfo) {
  SecretBytes okm = must(hkdf_sha256(Bytes(22, 0x0b), Bytes{}, Bytes{}, 42));
  EXPECT_EQ(hex_encode(okm.view()),
            "8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d9d201395faa4b61a96c8");
}

// RFC 7518 Appendix C: Concat KDF of Z with AlgorithmID "A128GCM", apu "Alice", apv "Bob".
TEST(ConcatKdf, Rfc7518AppendixCKnownAnswer) {
  Bytes z{158, 86, 217, 29,  129, 113, 53,  211, 114, 131, 66,  131, 191, 132, 38,  156,
          251, 49, 110, 163, 218, 128, 106, 72,  246, 218, 167, 121, 140, 254, 144, 196};
  Bytes other_info = unhex("00000007");
  for (const Bytes& part : {bytes_of("A128GCM"), unhex("00000005"), bytes_of("Alice"),
                            unhex("00000003"), bytes_of("Bob"), unhex("00000080")})
    other_info.insert(other_info.end(), part.begin(), part.end());
  SecretBytes key = must(concat_kdf_sha256(z, other_info, 16));
  EXPECT_EQ(b64url_encode(key.view()), "VqqN6vgjbSBcIijNcacQGg");
}

TEST(ConcatKdf, LongerOutputUsesMoreRoundsAndPrefixIsStable) {
  Bytes z(32, 7);
  SecretBytes k32 = must(concat_kdf_sha256(z, bytes_of("info"), 32));
  SecretBytes k48 = must(concat_kdf_sha256(z, bytes_of("info"), 48));
  ASSERT_EQ(k48.size(), 48u);
  EXPECT_TRUE(ct_equal(k32.view(), ByteView(k48.data(), 32)));
  // Round one is SHA-256(counter=1 || Z || OtherInfo).
  Bytes input = unhex("00000001");
  input.insert(input.end(), z.begin(), z.end());
  for (char c : std::string("info")) input.push_back(static_cast<std::uint8_t>(c));
  EXPECT_EQ(Bytes(k32.data(), k32.data() + 32), sha256(input));
}

// ---- AES-256-GCM

// The GCM specification's test case 16 (AES-256, 96-bit IV, with AAD).
TEST(Aes256Gcm, KnownAnswer) {
  Bytes key = unhex("feffe9928665731c6d6a8f9467308308feffe9928665731c6d6a8f9467308308");
  Bytes iv = unhex("cafebabefacedbaddecaf888");
  Bytes pt = unhex(
      "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a721c3c0c95956809532fcf0e2449a6"
      "b525b16aedf5aa0de657ba637b39");
  Bytes aad = unhex("feedfacedeadbeeffeedfacedeadbeefabaddad2");
  GcmSealed sealed = must(aes256gcm_encrypt(key, iv, aad, pt));
  EXPECT_EQ(
      hex_encode(sealed.ciphertext),
      "522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa8cb08e48590dbb3da7b08b1056"
      "828838c5f61e6393ba7a0abcc9f662");
  EXPECT_EQ(hex_encode(sealed.tag), "76fc6ece0f4e1768cddf8853bb2d551b");
  SecretBytes back = must(aes256gcm_decrypt(key, iv, aad, sealed.ciphertext, sealed.tag));
  EXPECT_TRUE(ct_equal(back.view(), pt));
}

class Aes256GcmTamper : public ::testing::Test {
 protected:
  Bytes key = random_bytes(32);
  Bytes iv = random_bytes(12);
  Bytes aad = bytes_of("protected header");
  Bytes pt = bytes_of("sensitive: pay 100 to se-2");
  GcmSealed sealed = must(aes256gcm_encrypt(key, iv, aad, pt));
};

TEST_F(Aes256GcmTamper, RoundTrip) {
  SecretBytes back = must(aes256gcm_decrypt(key, iv, aad, sealed.ciphertext, sealed.tag));
  EXPECT_TRUE(ct_equal(back.view(), pt));
}

TEST_F(Aes256GcmTamper, AnyChangeFailsAuthentication) {
  EXPECT_THAT(aes256gcm_decrypt(flip(key, 0), iv, aad, sealed.ciphertext, sealed.tag),
              FailsWith(Errc::decrypt_failed));
  EXPECT_THAT(aes256gcm_decrypt(key, flip(iv, 11), aad, sealed.ciphertext, sealed.tag),
              FailsWith(Errc::decrypt_failed));
  EXPECT_THAT(aes256gcm_decrypt(key, iv, flip(aad, 0), sealed.ciphertext, sealed.tag),
              FailsWith(Errc::decrypt_failed));
  EXPECT_THAT(aes256gcm_decrypt(key, iv, Bytes{}, sealed.ciphertext, sealed.tag),
              FailsWith(Errc::decrypt_failed));
  EXPECT_THAT(aes256gcm_decrypt(key, iv, aad, flip(sealed.ciphertext, 3), sealed.tag),
              FailsWith(Errc::decrypt_failed));
  EXPECT_THAT(aes256gcm_decrypt(key, iv, aad, sealed.ciphertext, flip(sealed.tag, 15)),
              FailsWith(Errc::decrypt_failed));
  Bytes shorter(sealed.ciphertext.begin(), sealed.ciphertext.end() - 1);
  EXPECT_THAT(aes256gcm_decrypt(key, iv, aad, shorter, sealed.tag),
              FailsWith(Errc::decrypt_failed));
}

TEST_F(Aes256GcmTamper, BadSizesFailWithoutCrashing) {
  EXPECT_THAT(aes256gcm_decrypt(Bytes(16, 0), iv, aad, sealed.ciphertext, sealed.tag),
              FailsWith(Errc::decrypt_failed));
  EXPECT_THAT(aes256gcm_decrypt(key, Bytes(16, 0), aad, sealed.ciphertext, sealed.tag),
              FailsWithField(Errc::decrypt_failed, "iv"));
  Bytes short_tag(sealed.tag.begin(), sealed.tag.begin() + 12);
  EXPECT_THAT(aes256gcm_decrypt(key, iv, aad, sealed.ciphertext, short_tag),
              FailsWithField(Errc::decrypt_failed, "tag"));
  EXPECT_THAT(aes256gcm_encrypt(Bytes(16, 0), iv, aad, pt), FailsWith(Errc::crypto_error));
  EXPECT_THAT(aes256gcm_encrypt(key, Bytes(8, 0), aad, pt), FailsWith(Errc::crypto_error));
}

TEST(Aes256Gcm, EmptyPlaintextStillAuthenticates) {
  Bytes key = random_bytes(32), iv = random_bytes(12);
  GcmSealed sealed = must(aes256gcm_encrypt(key, iv, bytes_of("aad"), Bytes{}));
  EXPECT_TRUE(sealed.ciphertext.empty());
  EXPECT_THAT(aes256gcm_decrypt(key, iv, bytes_of("aad"), Bytes{}, sealed.tag), IsOk());
  EXPECT_THAT(aes256gcm_decrypt(key, iv, bytes_of("aaX"), Bytes{}, sealed.tag),
              FailsWith(Errc::decrypt_failed));
}

// ---- AES key wrap

// RFC 3394 §4.6: wrap 256 bits of key data with a 256-bit KEK.
TEST(AesKeyWrap, Rfc3394Section46) {
  Bytes kek = unhex("000102030405060708090A0B0C0D0E0F101112131415161718191A1B1C1D1E1F");
  Bytes key = unhex("00112233445566778899AABBCCDDEEFF000102030405060708090A0B0C0D0E0F");
  Bytes wrapped = must(aes256_key_wrap(kek, key));
  EXPECT_EQ(hex_encode(wrapped),
            "28c9f404c4b810f4cbccb35cfb87f8263f5786e2d80ed326cbc7f0e71a99f43bfb988b9b7a02dd21");
  SecretBytes back = must(aes256_key_unwrap(kek, wrapped));
  EXPECT_TRUE(ct_equal(back.view(), key));
}

// RFC 3394 §4.3: wrap 128 bits of key data with a 256-bit KEK.
TEST(AesKeyWrap, Rfc3394Section43) {
  Bytes kek = unhex("000102030405060708090A0B0C0D0E0F101112131415161718191A1B1C1D1E1F");
  Bytes key = unhex("00112233445566778899AABBCCDDEEFF");
  Bytes wrapped = must(aes256_key_wrap(kek, key));
  EXPECT_EQ(hex_encode(wrapped), "64e8c3f9ce0f5ba263e9777905818a2a93c8191e7d6e8ae7");
  EXPECT_TRUE(ct_equal(must(aes256_key_unwrap(kek, wrapped)).view(), key));
}

TEST(AesKeyWrap, WrongKekOrTamperedDataFailsIntegrityCheck) {
  Bytes kek = random_bytes(32), key = random_bytes(32);
  Bytes wrapped = must(aes256_key_wrap(kek, key));
  EXPECT_THAT(aes256_key_unwrap(flip(kek, 0), wrapped),
              FailsWithField(Errc::decrypt_failed, "encrypted_key"));
  for (std::size_t i : {std::size_t{0}, std::size_t{8}, std::size_t{39}})
    EXPECT_THAT(aes256_key_unwrap(kek, flip(wrapped, i)),
                FailsWithField(Errc::decrypt_failed, "encrypted_key"))
        << i;
}

TEST(AesKeyWrap, BadSizes) {
  Bytes kek = random_bytes(32);
  EXPECT_THAT(aes256_key_wrap(Bytes(16, 0), random_bytes(32)), FailsWith(Errc::crypto_error));
  EXPECT_THAT(aes256_key_wrap(kek, random_bytes(8)), FailsWith(Errc::crypto_error));
  EXPECT_THAT(aes256_key_wrap(kek, random_bytes(31)), FailsWith(Errc::crypto_error));
  Bytes wrapped = must(aes256_key_wrap(kek, random_bytes(32)));
  EXPECT_THAT(aes256_key_unwrap(Bytes(16, 0), wrapped), FailsWith(Errc::decrypt_failed));
  EXPECT_THAT(aes256_key_unwrap(kek, Bytes(wrapped.begin(), wrapped.end() - 1)),
              FailsWith(Errc::decrypt_failed));
  EXPECT_THAT(aes256_key_unwrap(kek, Bytes(16, 0)), FailsWith(Errc::decrypt_failed));
  EXPECT_THAT(aes256_key_unwrap(kek, Bytes{}), FailsWith(Errc::decrypt_failed));
}

// ---- Hashes, randomness, comparison

TEST(Sha256, KnownAnswers) {
  EXPECT_EQ(hex_encode(sha256(Bytes{})),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(hex_encode(sha256(bytes_of("abc"))),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST(RandomBytes, HasTheRequestedSizeAndVaries) {
  EXPECT_EQ(random_bytes(0).size(), 0u);
  EXPECT_EQ(random_bytes(33).size(), 33u);
  EXPECT_NE(random_bytes(16), random_bytes(16));
}

TEST(CtEqual, ComparesContentAndLength) {
  EXPECT_TRUE(ct_equal(Bytes{}, Bytes{}));
  EXPECT_TRUE(ct_equal(Bytes{1, 2, 3}, Bytes{1, 2, 3}));
  EXPECT_FALSE(ct_equal(Bytes{1, 2, 3}, Bytes{1, 2, 4}));
  EXPECT_FALSE(ct_equal(Bytes{1, 2, 3}, Bytes{1, 2}));
  EXPECT_FALSE(ct_equal(Bytes{}, Bytes{0}));
}

TEST(SecretBytesTest, HoldsItsBytes) {
  SecretBytes s(Bytes{1, 2, 3});
  EXPECT_EQ(s.size(), 3u);
  EXPECT_EQ(s.data()[2], 3);
  SecretBytes copy = s;
  EXPECT_TRUE(ct_equal(copy.view(), s.view()));
  SecretBytes moved = std::move(copy);
  EXPECT_EQ(moved.size(), 3u);
  EXPECT_EQ(SecretBytes(5).size(), 5u);
}

}  // namespace
}  // namespace zf
