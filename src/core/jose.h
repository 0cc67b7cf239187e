// JWS (RFC 7515) compact and general JSON serialization with x5c, and JWE
// (RFC 7516) general JSON serialization with A256GCM + ECDH-ES+A256KW.
// Parsing is strict: exact header fields, alg allow-list, no 'none', size limits.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "core/crypto.h"
#include "core/json.h"
#include "core/x509.h"

namespace zf {

// Largest JOSE object we parse (a document with its certificate chain).
inline constexpr std::size_t kMaxJoseBytes = 64 * 1024;

// One signature over the payload, with its verified-shape header.
struct JwsSignature {
  std::string protected_b64;   // as received; part of the signing input
  SigAlg alg = SigAlg::ES256;
  std::string typ;             // optional
  std::vector<Certificate> x5c;  // signer chain, leaf first
  Bytes signature;
};

// A parsed JWS whose structure is valid; signatures are not yet checked.
struct Jws {
  std::string payload_b64;
  Bytes payload;
  std::vector<JwsSignature> signatures;
};

// What a signer contributes: a key and the chain that certifies it.
struct JwsSigner {
  const Signer* signer;
  std::vector<Certificate> chain;
};

Result<std::string> jws_sign_compact(ByteView payload, const JwsSigner& signer, std::string_view typ = {});
// General JSON serialization with one signature per signer (joint and hold documents).
Result<Json> jws_sign_general(ByteView payload, const std::vector<JwsSigner>& signers,
                              std::string_view typ = {});

// Joins JWSes over the same payload (each compact or JSON) into one general
// JSON serialization carrying all their signatures, in order: how two SEs that
// sign one hold.request one after the other make one document. bad_header when
// the payloads differ or there would be more than 16 signatures; no signature
// is checked here.
Result<std::string> jws_join(const std::vector<std::string>& jwses);

Result<Jws> jws_parse_compact(std::string_view text);
// Accepts general ({"payload","signatures"}) and flattened ({"payload","protected","signature"}).
Result<Jws> jws_parse_json(std::string_view text);
// Either serialization, picked by the first character.
Result<Jws> jws_parse(std::string_view text);

// Checks signature `index` with the leaf key of its own x5c (no trust decision).
Status jws_check_signature(const Jws& jws, std::size_t index);
// Checks every signature and every chain against the verifier for `role`; returns leaves in order.
Result<std::vector<Certificate>> jws_verify(const Jws& jws, const CertVerifier& verifier, Role role);

// A JWE recipient for encryption.
struct JweRecipient {
  const PublicKey* key;  // P-256
  std::string kid;       // optional label, e.g. the recipient's SE id
};

// Encrypts with a fresh content key wrapped for every recipient.
Result<Json> jwe_encrypt(ByteView plaintext, const std::vector<JweRecipient>& recipients);
// Same, with a caller-chosen content key (so a holder can release it later).
Result<Json> jwe_encrypt_with_cek(ByteView plaintext, ByteView cek,
                                  const std::vector<JweRecipient>& recipients);
// Unwraps the content key for `key` (the recipient with `kid`, or any that unwraps).
Result<SecretBytes> jwe_unwrap_cek(const Json& jwe, const PrivateKey& key, std::string_view kid = {});
// Decrypts with a known content key.
Result<SecretBytes> jwe_decrypt_with_cek(const Json& jwe, ByteView cek);
// unwrap + decrypt.
Result<SecretBytes> jwe_decrypt(const Json& jwe, const PrivateKey& key, std::string_view kid = {});
// Parses JWE JSON text strictly (size, duplicate keys, fields).
Result<Json> jwe_parse(std::string_view text);

}  // namespace zf
