// OpenSSL 3 EVP behind small RAII types: keys, signatures, ECDH, HKDF, AES-GCM,
// AES key wrap, hashes and randomness. Secrets are wiped when they go out of scope.
#pragma once

#include <openssl/evp.h>

#include <memory>
#include <string>
#include <string_view>

#include "core/encoding.h"
#include "core/error.h"

namespace zf {

// A byte buffer that is wiped (OPENSSL_cleanse) on destruction.
class SecretBytes {
 public:
  SecretBytes() = default;
  explicit SecretBytes(std::size_t n) : data_(n) {}
  explicit SecretBytes(Bytes b) : data_(std::move(b)) {}
  SecretBytes(const SecretBytes&) = default;
  SecretBytes& operator=(const SecretBytes&) = default;
  SecretBytes(SecretBytes&&) noexcept = default;
  SecretBytes& operator=(SecretBytes&&) noexcept = default;
  ~SecretBytes();
  std::uint8_t* data() { return data_.data(); }
  const std::uint8_t* data() const { return data_.data(); }
  std::size_t size() const { return data_.size(); }
  ByteView view() const { return data_; }

 private:
  Bytes data_;
};

// Signature algorithms we accept (JOSE names).
enum class SigAlg { ES256, EdDSA };
std::string_view sig_alg_name(SigAlg alg);
Result<SigAlg> sig_alg_from_name(std::string_view name);

struct PkeyDeleter {
  void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
};
using PkeyPtr = std::unique_ptr<EVP_PKEY, PkeyDeleter>;

// A public key (P-256 or Ed25519).
class PublicKey {
 public:
  explicit PublicKey(PkeyPtr key) : key_(std::move(key)) {}
  static Result<PublicKey> from_spki_der(ByteView der);
  // P-256 from raw affine coordinates (32 bytes each), as in a JWK.
  static Result<PublicKey> from_p256_xy(ByteView x, ByteView y);

  SigAlg alg() const;
  Bytes spki_der() const;
  // P-256 raw coordinates (for JWK); error for other key types.
  Result<std::pair<Bytes, Bytes>> p256_xy() const;
  // Verifies a JOSE-format signature (ES256: r||s, 64 bytes; EdDSA: 64 bytes).
  Status verify(ByteView message, ByteView signature) const;
  EVP_PKEY* get() const { return key_.get(); }
  // Shares the underlying key (reference-counted).
  PublicKey clone() const;

 private:
  PkeyPtr key_;
};

// A private key that stays in this process. Sign and derive; export only into a
// 0600 key file (export_pem, written by store::save_private_key) or a sealed SE
// state (export_pkcs8).
class PrivateKey {
 public:
  explicit PrivateKey(PkeyPtr key) : key_(std::move(key)) {}
  static Result<PrivateKey> generate(SigAlg alg = SigAlg::ES256);
  static Result<PrivateKey> from_pkcs8_der(ByteView der);
  static Result<PrivateKey> load_pem_file(const std::string& path);
  // PKCS#8 PEM of the key, for a 0600 key file (core writes no files).
  Result<SecretBytes> export_pem() const;
  SecretBytes export_pkcs8() const;

  SigAlg alg() const;
  PublicKey public_key() const;
  // JOSE-format signature over `message` (ES256 hashes with SHA-256 first).
  Result<Bytes> sign(ByteView message) const;
  EVP_PKEY* get() const { return key_.get(); }

 private:
  PkeyPtr key_;
};

// The narrow shape every signing key has (key file, HSM, SE applet).
class Signer {
 public:
  virtual ~Signer() = default;
  virtual SigAlg alg() const = 0;
  virtual Result<Bytes> sign(ByteView message) const = 0;
};

// Signer over an in-process PrivateKey.
class KeySigner : public Signer {
 public:
  explicit KeySigner(const PrivateKey& key) : key_(key) {}
  SigAlg alg() const override { return key_.alg(); }
  Result<Bytes> sign(ByteView message) const override { return key_.sign(message); }

 private:
  const PrivateKey& key_;
};

// ECDH on P-256: the shared secret Z.
Result<SecretBytes> ecdh(const PrivateKey& mine, const PublicKey& theirs);
// HKDF-SHA256 (RFC 5869).
Result<SecretBytes> hkdf_sha256(ByteView ikm, ByteView salt, ByteView info, std::size_t length);
// HMAC-SHA256 (RFC 2104): 32 bytes.
Result<Bytes> hmac_sha256(ByteView key, ByteView data);
// Concat KDF with SHA-256 (NIST SP 800-56A, as JWA §4.6 uses it).
Result<SecretBytes> concat_kdf_sha256(ByteView z, ByteView other_info, std::size_t length);

struct GcmSealed {
  Bytes ciphertext;
  Bytes tag;  // 16 bytes
};
// AES-256-GCM with a 12-byte IV.
Result<GcmSealed> aes256gcm_encrypt(ByteView key, ByteView iv, ByteView aad, ByteView plaintext);
Result<SecretBytes> aes256gcm_decrypt(ByteView key, ByteView iv, ByteView aad, ByteView ciphertext,
                                      ByteView tag);
// AES key wrap (RFC 3394) with a 256-bit KEK.
Result<Bytes> aes256_key_wrap(ByteView kek, ByteView key);
Result<SecretBytes> aes256_key_unwrap(ByteView kek, ByteView wrapped);

Bytes sha256(ByteView data);
Bytes random_bytes(std::size_t n);
// Constant-time equality (lengths compared first; lengths are not secret).
bool ct_equal(ByteView a, ByteView b);

// The last OpenSSL error as text, and clears the queue.
std::string openssl_error();

}  // namespace zf
