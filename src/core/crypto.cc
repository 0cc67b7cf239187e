#include "core/crypto.h"

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/kdf.h>
#include <openssl/param_build.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>

namespace zf {
namespace {

struct CtxDeleter {
  void operator()(EVP_MD_CTX* p) const { EVP_MD_CTX_free(p); }
  void operator()(EVP_PKEY_CTX* p) const { EVP_PKEY_CTX_free(p); }
  void operator()(EVP_CIPHER_CTX* p) const { EVP_CIPHER_CTX_free(p); }
  void operator()(BIO* p) const { BIO_free(p); }
  void operator()(BIGNUM* p) const { BN_free(p); }
  void operator()(ECDSA_SIG* p) const { ECDSA_SIG_free(p); }
  void operator()(EVP_KDF* p) const { EVP_KDF_free(p); }
  void operator()(EVP_KDF_CTX* p) const { EVP_KDF_CTX_free(p); }
  void operator()(OSSL_PARAM_BLD* p) const { OSSL_PARAM_BLD_free(p); }
  void operator()(OSSL_PARAM* p) const { OSSL_PARAM_free(p); }
};
template <class T>
using Own = std::unique_ptr<T, CtxDeleter>;

std::unexpected<Error> ossl_fail(Errc code, std::string what) {
  return fail(code, what + ": " + openssl_error());
}

bool is_p256(EVP_PKEY* key) {
  if (EVP_PKEY_get_base_id(key) != EVP_PKEY_EC) return false;
  char name[64] = {};
  size_t len = 0;
  if (!EVP_PKEY_get_utf8_string_param(key, OSSL_PKEY_PARAM_GROUP_NAME, name, sizeof(name), &len))
    return false;
  return std::string_view(name, len) == "prime256v1";
}

Result<SigAlg> alg_of(EVP_PKEY* key) {
  if (EVP_PKEY_get_base_id(key) == EVP_PKEY_ED25519) return SigAlg::EdDSA;
  if (is_p256(key)) return SigAlg::ES256;
  return fail(Errc::unsupported_alg, "key is neither P-256 nor Ed25519");
}

}  // namespace

std::string openssl_error() {
  std::string out;
  unsigned long e;
  char buf[256];
  while ((e = ERR_get_error()) != 0) {
    ERR_error_string_n(e, buf, sizeof(buf));
    if (!out.empty()) out += "; ";
    out += buf;
  }
  return out.empty() ? "unknown OpenSSL error" : out;
}

SecretBytes::~SecretBytes() {
  if (!data_.empty()) OPENSSL_cleanse(data_.data(), data_.size());
}

std::string_view sig_alg_name(SigAlg alg) { return alg == SigAlg::ES256 ? "ES256" : "EdDSA"; }

Result<SigAlg> sig_alg_from_name(std::string_view name) {
  if (name == "ES256") return SigAlg::ES256;
  if (name == "EdDSA") return SigAlg::EdDSA;
  if (name == "none") return fail(Errc::alg_none, "alg 'none' is never accepted", "alg");
  return fail(Errc::unsupported_alg, "alg not in allow-list", "alg");
}

// ---- PublicKey

Result<PublicKey> PublicKey::from_spki_der(ByteView der) {
  const unsigned char* p = der.data();
  EVP_PKEY* raw = d2i_PUBKEY(nullptr, &p, static_cast<long>(der.size()));
  if (!raw || p != der.data() + der.size()) {
    EVP_PKEY_free(raw);
    ERR_clear_error();
    return fail(Errc::bad_field, "not a DER SubjectPublicKeyInfo", "public_key");
  }
  PkeyPtr key(raw);
  if (auto a = alg_of(raw); !a) return std::unexpected(a.error());
  return PublicKey(std::move(key));
}

Result<PublicKey> PublicKey::from_p256_xy(ByteView x, ByteView y) {
  if (x.size() != 32 || y.size() != 32)
    return fail(Errc::bad_field, "P-256 coordinates must be 32 bytes", "epk");
  Bytes point{0x04};
  point.insert(point.end(), x.begin(), x.end());
  point.insert(point.end(), y.begin(), y.end());
  Own<OSSL_PARAM_BLD> bld(OSSL_PARAM_BLD_new());
  OSSL_PARAM_BLD_push_utf8_string(bld.get(), OSSL_PKEY_PARAM_GROUP_NAME, "prime256v1", 0);
  OSSL_PARAM_BLD_push_octet_string(bld.get(), OSSL_PKEY_PARAM_PUB_KEY, point.data(), point.size());
  Own<OSSL_PARAM> params(OSSL_PARAM_BLD_to_param(bld.get()));
  Own<EVP_PKEY_CTX> ctx(EVP_PKEY_CTX_new_from_name(nullptr, "EC", nullptr));
  EVP_PKEY* raw = nullptr;
  if (!ctx || EVP_PKEY_fromdata_init(ctx.get()) <= 0 ||
      EVP_PKEY_fromdata(ctx.get(), &raw, EVP_PKEY_PUBLIC_KEY, params.get()) <= 0) {
    ERR_clear_error();
    return fail(Errc::bad_field, "not a P-256 point", "epk");
  }
  PkeyPtr key(raw);
  // Refuse points off the curve (invalid-curve attacks on ECDH).
  Own<EVP_PKEY_CTX> check(EVP_PKEY_CTX_new_from_pkey(nullptr, raw, nullptr));
  if (!check || EVP_PKEY_public_check(check.get()) <= 0) {
    ERR_clear_error();
    return fail(Errc::bad_field, "point is not on P-256", "epk");
  }
  return PublicKey(std::move(key));
}

SigAlg PublicKey::alg() const { return alg_of(key_.get()).value_or(SigAlg::ES256); }

Bytes PublicKey::spki_der() const {
  unsigned char* out = nullptr;
  int len = i2d_PUBKEY(key_.get(), &out);
  Bytes der(out, out + (len > 0 ? len : 0));
  OPENSSL_free(out);
  return der;
}

Result<std::pair<Bytes, Bytes>> PublicKey::p256_xy() const {
  if (!is_p256(key_.get())) return fail(Errc::unsupported_alg, "not a P-256 key");
  BIGNUM* x = nullptr;
  BIGNUM* y = nullptr;
  if (!EVP_PKEY_get_bn_param(key_.get(), OSSL_PKEY_PARAM_EC_PUB_X, &x) ||
      !EVP_PKEY_get_bn_param(key_.get(), OSSL_PKEY_PARAM_EC_PUB_Y, &y)) {
    BN_free(x);
    BN_free(y);
    return ossl_fail(Errc::crypto_error, "reading EC point");
  }
  Own<BIGNUM> ox(x), oy(y);
  Bytes bx(32), by(32);
  BN_bn2binpad(x, bx.data(), 32);
  BN_bn2binpad(y, by.data(), 32);
  return std::pair{std::move(bx), std::move(by)};
}

Status PublicKey::verify(ByteView message, ByteView signature) const {
  auto alg = alg_of(key_.get());
  if (!alg) return std::unexpected(alg.error());
  Bytes der;
  const EVP_MD* md = nullptr;
  ByteView sig = signature;
  if (*alg == SigAlg::ES256) {
    if (signature.size() != 64) return fail(Errc::bad_signature, "ES256 signature must be 64 bytes");
    Own<ECDSA_SIG> s(ECDSA_SIG_new());
    BIGNUM* r = BN_bin2bn(signature.data(), 32, nullptr);
    BIGNUM* ss = BN_bin2bn(signature.data() + 32, 32, nullptr);
    ECDSA_SIG_set0(s.get(), r, ss);
    unsigned char* out = nullptr;
    int len = i2d_ECDSA_SIG(s.get(), &out);
    if (len <= 0) return ossl_fail(Errc::crypto_error, "encoding signature");
    der.assign(out, out + len);
    OPENSSL_free(out);
    sig = der;
    md = EVP_sha256();
  } else if (signature.size() != 64) {
    return fail(Errc::bad_signature, "EdDSA signature must be 64 bytes");
  }
  Own<EVP_MD_CTX> ctx(EVP_MD_CTX_new());
  if (EVP_DigestVerifyInit(ctx.get(), nullptr, md, nullptr, key_.get()) <= 0)
    return ossl_fail(Errc::crypto_error, "verify init");
  int rc = EVP_DigestVerify(ctx.get(), sig.data(), sig.size(), message.data(), message.size());
  ERR_clear_error();
  if (rc != 1) return fail(Errc::bad_signature, "signature does not verify");
  return {};
}

PublicKey PublicKey::clone() const {
  EVP_PKEY_up_ref(key_.get());
  return PublicKey(PkeyPtr(key_.get()));
}

// ---- PrivateKey

Result<PrivateKey> PrivateKey::generate(SigAlg alg) {
  EVP_PKEY* raw = alg == SigAlg::ES256 ? EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256")
                                       : EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519");
  if (!raw) return ossl_fail(Errc::crypto_error, "key generation");
  return PrivateKey(PkeyPtr(raw));
}

Result<PrivateKey> PrivateKey::from_pkcs8_der(ByteView der) {
  const unsigned char* p = der.data();
  EVP_PKEY* raw = d2i_AutoPrivateKey(nullptr, &p, static_cast<long>(der.size()));
  if (!raw) {
    ERR_clear_error();
    return fail(Errc::bad_field, "not a PKCS#8 private key");
  }
  PkeyPtr key(raw);
  if (auto a = alg_of(raw); !a) return std::unexpected(a.error());
  return PrivateKey(std::move(key));
}

Result<PrivateKey> PrivateKey::load_pem_file(const std::string& path) {
  Own<BIO> bio(BIO_new_file(path.c_str(), "r"));
  if (!bio) return fail(Errc::io_error, "cannot open key file " + path);
  EVP_PKEY* raw = PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr);
  if (!raw) return ossl_fail(Errc::bad_field, "reading key file " + path);
  PkeyPtr key(raw);
  if (auto a = alg_of(raw); !a) return std::unexpected(a.error());
  return PrivateKey(std::move(key));
}

Result<SecretBytes> PrivateKey::export_pem() const {
  Own<BIO> mem(BIO_new(BIO_s_mem()));
  if (!mem || !PEM_write_bio_PKCS8PrivateKey(mem.get(), key_.get(), nullptr, nullptr, 0, nullptr, nullptr))
    return ossl_fail(Errc::crypto_error, "encoding key");
  char* data = nullptr;
  long len = BIO_get_mem_data(mem.get(), &data);
  if (len <= 0 || !data) return fail(Errc::crypto_error, "encoding key");
  SecretBytes out(Bytes(data, data + len));
  OPENSSL_cleanse(data, static_cast<size_t>(len));
  return out;
}

SecretBytes PrivateKey::export_pkcs8() const {
  // i2d_PrivateKey would write the type-specific form (SEC1 ECPrivateKey for P-256);
  // PrivateKeyInfo is what the name promises and what other tools read.
  PKCS8_PRIV_KEY_INFO* p8 = EVP_PKEY2PKCS8(key_.get());
  unsigned char* out = nullptr;
  int len = p8 ? i2d_PKCS8_PRIV_KEY_INFO(p8, &out) : 0;
  PKCS8_PRIV_KEY_INFO_free(p8);
  SecretBytes s(Bytes(out, out + (len > 0 ? len : 0)));
  if (out) OPENSSL_clear_free(out, static_cast<size_t>(len));
  return s;
}

SigAlg PrivateKey::alg() const { return alg_of(key_.get()).value_or(SigAlg::ES256); }

PublicKey PrivateKey::public_key() const {
  unsigned char* out = nullptr;
  int len = i2d_PUBKEY(key_.get(), &out);
  const unsigned char* p = out;
  EVP_PKEY* pub = d2i_PUBKEY(nullptr, &p, len);
  OPENSSL_free(out);
  return PublicKey(PkeyPtr(pub));
}

Result<Bytes> PrivateKey::sign(ByteView message) const {
  SigAlg alg = this->alg();
  Own<EVP_MD_CTX> ctx(EVP_MD_CTX_new());
  const EVP_MD* md = alg == SigAlg::ES256 ? EVP_sha256() : nullptr;
  if (EVP_DigestSignInit(ctx.get(), nullptr, md, nullptr, key_.get()) <= 0)
    return ossl_fail(Errc::crypto_error, "sign init");
  size_t len = 0;
  if (EVP_DigestSign(ctx.get(), nullptr, &len, message.data(), message.size()) <= 0)
    return ossl_fail(Errc::crypto_error, "sign size");
  Bytes sig(len);
  if (EVP_DigestSign(ctx.get(), sig.data(), &len, message.data(), message.size()) <= 0)
    return ossl_fail(Errc::crypto_error, "sign");
  sig.resize(len);
  if (alg == SigAlg::EdDSA) return sig;
  // DER ECDSA-Sig-Value -> JOSE r||s.
  const unsigned char* p = sig.data();
  Own<ECDSA_SIG> s(d2i_ECDSA_SIG(nullptr, &p, static_cast<long>(sig.size())));
  if (!s) return ossl_fail(Errc::crypto_error, "decoding signature");
  Bytes out(64);
  BN_bn2binpad(ECDSA_SIG_get0_r(s.get()), out.data(), 32);
  BN_bn2binpad(ECDSA_SIG_get0_s(s.get()), out.data() + 32, 32);
  return out;
}

// ---- Key agreement and derivation

Result<SecretBytes> ecdh(const PrivateKey& mine, const PublicKey& theirs) {
  if (!is_p256(mine.get()) || !is_p256(theirs.get()))
    return fail(Errc::unsupported_alg, "ECDH needs two P-256 keys");
  Own<EVP_PKEY_CTX> ctx(EVP_PKEY_CTX_new_from_pkey(nullptr, mine.get(), nullptr));
  if (!ctx || EVP_PKEY_derive_init(ctx.get()) <= 0 ||
      EVP_PKEY_derive_set_peer(ctx.get(), theirs.get()) <= 0)
    return ossl_fail(Errc::crypto_error, "ECDH init");
  size_t len = 0;
  if (EVP_PKEY_derive(ctx.get(), nullptr, &len) <= 0) return ossl_fail(Errc::crypto_error, "ECDH");
  SecretBytes z(len);
  if (EVP_PKEY_derive(ctx.get(), z.data(), &len) <= 0) return ossl_fail(Errc::crypto_error, "ECDH");
  return z;
}

Result<Bytes> hmac_sha256(ByteView key, ByteView data) {
  Bytes out(32);
  std::size_t len = 0;
  if (!EVP_Q_mac(nullptr, "HMAC", nullptr, "SHA256", nullptr, key.data(), key.size(), data.data(), data.size(),
                 out.data(), out.size(), &len) ||
      len != out.size())
    return ossl_fail(Errc::crypto_error, "HMAC");
  return out;
}

Result<SecretBytes> hkdf_sha256(ByteView ikm, ByteView salt, ByteView info, std::size_t length) {
  Own<EVP_KDF> kdf(EVP_KDF_fetch(nullptr, "HKDF", nullptr));
  Own<EVP_KDF_CTX> ctx(EVP_KDF_CTX_new(kdf.get()));
  if (!ctx) return ossl_fail(Errc::crypto_error, "HKDF");
  char digest[] = "SHA256";
  // RFC 5869 §2.2: an absent salt is HashLen zeros. OpenSSL 3.0 fails on an empty one.
  static constexpr std::uint8_t kZeroSalt[32] = {};
  if (salt.empty()) salt = ByteView(kZeroSalt, sizeof(kZeroSalt));
  OSSL_PARAM params[] = {
      OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, digest, 0),
      OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, const_cast<std::uint8_t*>(ikm.data()),
                                        ikm.size()),
      OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT,
                                        const_cast<std::uint8_t*>(salt.data()), salt.size()),
      OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO,
                                        const_cast<std::uint8_t*>(info.data()), info.size()),
      OSSL_PARAM_construct_end()};
  SecretBytes out(length);
  if (EVP_KDF_derive(ctx.get(), out.data(), length, params) <= 0)
    return ossl_fail(Errc::crypto_error, "HKDF derive");
  return out;
}

Result<SecretBytes> concat_kdf_sha256(ByteView z, ByteView other_info, std::size_t length) {
  SecretBytes out(length);
  std::size_t done = 0;
  for (std::uint32_t counter = 1; done < length; ++counter) {
    std::uint8_t c[4] = {static_cast<std::uint8_t>(counter >> 24),
                         static_cast<std::uint8_t>(counter >> 16),
                         static_cast<std::uint8_t>(counter >> 8), static_cast<std::uint8_t>(counter)};
    Own<EVP_MD_CTX> ctx(EVP_MD_CTX_new());
    unsigned char digest[32];
    unsigned int dlen = 0;
    if (!EVP_DigestInit_ex(ctx.get(), EVP_sha256(), nullptr) ||
        !EVP_DigestUpdate(ctx.get(), c, 4) || !EVP_DigestUpdate(ctx.get(), z.data(), z.size()) ||
        !EVP_DigestUpdate(ctx.get(), other_info.data(), other_info.size()) ||
        !EVP_DigestFinal_ex(ctx.get(), digest, &dlen))
      return ossl_fail(Errc::crypto_error, "Concat KDF");
    std::size_t n = std::min<std::size_t>(dlen, length - done);
    std::memcpy(out.data() + done, digest, n);
    OPENSSL_cleanse(digest, sizeof(digest));
    done += n;
  }
  return out;
}

// ---- Symmetric

Result<GcmSealed> aes256gcm_encrypt(ByteView key, ByteView iv, ByteView aad, ByteView plaintext) {
  if (key.size() != 32 || iv.size() != 12) return fail(Errc::crypto_error, "bad AES-GCM key/IV size");
  Own<EVP_CIPHER_CTX> ctx(EVP_CIPHER_CTX_new());
  // The AAD call reports its own length; it must not become the offset of the final write.
  int len = 0, aad_len = 0;
  GcmSealed out{Bytes(plaintext.size()), Bytes(16)};
  if (!EVP_EncryptInit_ex(ctx.get(), EVP_aes_256_gcm(), nullptr, key.data(), iv.data()) ||
      (!aad.empty() &&
       !EVP_EncryptUpdate(ctx.get(), nullptr, &aad_len, aad.data(),
                          static_cast<int>(aad.size()))) ||
      (!plaintext.empty() && !EVP_EncryptUpdate(ctx.get(), out.ciphertext.data(), &len,
                                                plaintext.data(), static_cast<int>(plaintext.size()))) ||
      !EVP_EncryptFinal_ex(ctx.get(), out.ciphertext.data() + len, &len) ||
      !EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_GET_TAG, 16, out.tag.data()))
    return ossl_fail(Errc::crypto_error, "AES-GCM encrypt");
  return out;
}

Result<SecretBytes> aes256gcm_decrypt(ByteView key, ByteView iv, ByteView aad, ByteView ciphertext,
                                      ByteView tag) {
  if (key.size() != 32) return fail(Errc::decrypt_failed, "bad key size");
  if (iv.size() != 12) return fail(Errc::decrypt_failed, "IV must be 12 bytes", "iv");
  if (tag.size() != 16) return fail(Errc::decrypt_failed, "tag must be 16 bytes", "tag");
  Own<EVP_CIPHER_CTX> ctx(EVP_CIPHER_CTX_new());
  // The AAD call reports its own length; it must not become the offset of the final write.
  int len = 0, aad_len = 0;
  SecretBytes out(ciphertext.size());
  if (!EVP_DecryptInit_ex(ctx.get(), EVP_aes_256_gcm(), nullptr, key.data(), iv.data()) ||
      (!aad.empty() &&
       !EVP_DecryptUpdate(ctx.get(), nullptr, &aad_len, aad.data(),
                          static_cast<int>(aad.size()))) ||
      (!ciphertext.empty() &&
       !EVP_DecryptUpdate(ctx.get(), out.data(), &len, ciphertext.data(),
                          static_cast<int>(ciphertext.size()))) ||
      !EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_TAG, 16, const_cast<std::uint8_t*>(tag.data())) ||
      EVP_DecryptFinal_ex(ctx.get(), out.data() + len, &len) <= 0) {
    ERR_clear_error();
    return fail(Errc::decrypt_failed, "authentication failed");
  }
  return out;
}

Result<Bytes> aes256_key_wrap(ByteView kek, ByteView key) {
  if (kek.size() != 32 || key.size() % 8 != 0 || key.size() < 16)
    return fail(Errc::crypto_error, "bad key-wrap sizes");
  Own<EVP_CIPHER_CTX> ctx(EVP_CIPHER_CTX_new());
  EVP_CIPHER_CTX_set_flags(ctx.get(), EVP_CIPHER_CTX_FLAG_WRAP_ALLOW);
  Bytes out(key.size() + 8);
  int len = 0, fin = 0;
  if (!EVP_EncryptInit_ex(ctx.get(), EVP_aes_256_wrap(), nullptr, kek.data(), nullptr) ||
      !EVP_EncryptUpdate(ctx.get(), out.data(), &len, key.data(), static_cast<int>(key.size())) ||
      !EVP_EncryptFinal_ex(ctx.get(), out.data() + len, &fin))
    return ossl_fail(Errc::crypto_error, "AES key wrap");
  out.resize(static_cast<std::size_t>(len + fin));
  return out;
}

Result<SecretBytes> aes256_key_unwrap(ByteView kek, ByteView wrapped) {
  if (kek.size() != 32 || wrapped.size() % 8 != 0 || wrapped.size() < 24)
    return fail(Errc::decrypt_failed, "bad wrapped key size", "encrypted_key");
  Own<EVP_CIPHER_CTX> ctx(EVP_CIPHER_CTX_new());
  EVP_CIPHER_CTX_set_flags(ctx.get(), EVP_CIPHER_CTX_FLAG_WRAP_ALLOW);
  SecretBytes out(wrapped.size());
  int len = 0, fin = 0;
  if (!EVP_DecryptInit_ex(ctx.get(), EVP_aes_256_wrap(), nullptr, kek.data(), nullptr) ||
      EVP_DecryptUpdate(ctx.get(), out.data(), &len, wrapped.data(),
                        static_cast<int>(wrapped.size())) <= 0 ||
      EVP_DecryptFinal_ex(ctx.get(), out.data() + len, &fin) <= 0) {
    ERR_clear_error();
    return fail(Errc::decrypt_failed, "key unwrap failed", "encrypted_key");
  }
  Bytes trimmed(out.data(), out.data() + len + fin);
  return SecretBytes(std::move(trimmed));
}

Bytes sha256(ByteView data) {
  Bytes out(32);
  unsigned int len = 0;
  EVP_Digest(data.data(), data.size(), out.data(), &len, EVP_sha256(), nullptr);
  return out;
}

Bytes random_bytes(std::size_t n) {
  Bytes out(n);
  // RAND_bytes only fails if the DRBG cannot be seeded; continuing would be unsafe.
  if (RAND_bytes(out.data(), static_cast<int>(n)) != 1) std::abort();
  return out;
}

bool ct_equal(ByteView a, ByteView b) {
  return a.size() == b.size() && CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

}  // namespace zf
