// Fixed keys and a fixed root shared by the JOSE fuzz target and the seed generator, so
// the seed corpus holds documents the target can fully verify and JWEs it can decrypt.
// These keys are public test fixtures: never use them outside fuzzing.
#pragma once

#include <cstdlib>
#include <ctime>
#include <string_view>

#include "core/encoding.h"
#include "core/x509.h"

namespace zf::fuzz {

// The verification time used by the target; the seed certificates are valid then.
inline constexpr std::time_t kFuzzNow = 1750000000;    // 2025-06-15
inline constexpr std::time_t kNotBefore = 1704067200;  // 2024-01-01
inline constexpr std::time_t kNotAfter = 2051222400;   // 2035-01-01
inline constexpr std::string_view kRecipientKid = "se-fuzz-1";

// PKCS#8 DER (hex) of two P-256 keys.
inline constexpr std::string_view kRootKeyHex =
    "308187020100301306072a8648ce3d020106082a8648ce3d030107046d306b0201010420592c99829643dd2eacae"
    "59a529b4ad6e13f4c42a9f995f61c0ffd537834e7700a14403420004504c8b0d91eca997efcd13c06b51eb7e707a"
    "4671b5d9bc032ec9020a0588f295cf4a0f6ba999adabe3ffe549fe35afaba4b1c5f8f63340c00b165c0d9c0deae8";
inline constexpr std::string_view kRecipientKeyHex =
    "308187020100301306072a8648ce3d020106082a8648ce3d030107046d306b0201010420341811e81d9da027c009"
    "dba6a0b3efb6c7d2e010b855a6b79752c5b57a90e449a144034200047285be6f9976ef01eb9fe947dd451eca84cd"
    "4975e39be183d33211f836ac530a89ed5de070929d4ccc0a9d818bca8f9803b53ce2b11177c5018caa1206713341";

// A broken fixture is a build bug, not an input: stop at once.
inline PrivateKey fixed_key(std::string_view hex) {
  auto der = hex_decode(hex);
  if (!der) std::abort();
  auto key = PrivateKey::from_pkcs8_der(*der);
  if (!key) std::abort();
  return std::move(*key);
}

inline const PrivateKey& root_key() {
  static const PrivateKey key = fixed_key(kRootKeyHex);
  return key;
}

// The JWE recipient key the target decrypts with.
inline const PrivateKey& recipient_key() {
  static const PrivateKey key = fixed_key(kRecipientKeyHex);
  return key;
}

// The root certificate. Re-created on each start (its signature differs every time), but
// subject, key and key identifier are fixed, so chains issued under any copy verify.
inline const Certificate& root_cert() {
  static const Certificate cert = [] {
    IssueParams p;
    p.common_name = "zf-fuzz-root";
    p.not_before = kNotBefore;
    p.not_after = kNotAfter;
    p.serial = {0x01};
    auto c = make_self_signed_ca(root_key(), p);
    if (!c) std::abort();
    return std::move(*c);
  }();
  return cert;
}

}  // namespace zf::fuzz
