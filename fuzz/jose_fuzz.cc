// Fuzz target: JOSE objects (JWS compact, general and flattened JSON; JWE general JSON).
// A parsed JWS gets every signature checked and its chain verified against the fixed
// fuzz root (fuzz_fixtures.h); a JSON object is tried as a JWE with the fixed recipient
// key, with and without the recipient's kid.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "core/document.h"
#include "core/jose.h"
#include "fuzz_fixtures.h"

namespace {

const zf::CertVerifier& verifier() {
  static const zf::CertVerifier v = [] {
    zf::CertVerifier out(zf::fuzz::root_cert());
    out.set_time(zf::fuzz::kFuzzNow);
    return out;
  }();
  return v;
}

void exercise_jws(const zf::Jws& jws) {
  for (std::size_t i = 0; i < jws.signatures.size(); ++i) {
    (void)zf::jws_check_signature(jws, i);
    const auto& sig = jws.signatures[i];
    if (sig.x5c.empty()) __builtin_trap();  // the parser promises a chain
    const zf::Certificate& leaf = sig.x5c.front();
    (void)leaf.subject_cn();
    (void)leaf.serial_hex();
    (void)leaf.roles();
    (void)leaf.public_key().alg();
  }
  (void)zf::jws_check_signature(jws, jws.signatures.size());  // out of range: an error
  (void)zf::jws_verify(jws, verifier(), zf::Role::secure_element);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);

  auto jws = zf::jws_parse(text);
  if (jws) exercise_jws(*jws);
  for (auto parsed : {zf::jws_parse_compact(text), zf::jws_parse_json(text)}) {
    if (parsed) exercise_jws(*parsed);
  }
  // The whole pipeline a receiving party runs: parse, verify signatures and chain, payload.
  (void)zf::open_signed_document(text, verifier(), zf::Role::secure_element);

  const zf::PrivateKey& key = zf::fuzz::recipient_key();
  if (auto jwe = zf::jwe_parse(text)) {
    (void)zf::jwe_decrypt(*jwe, key);
    (void)zf::jwe_decrypt(*jwe, key, zf::fuzz::kRecipientKid);
  }
  // jwe_decrypt also takes JSON that never went through jwe_parse (a document's nested
  // "sealed" object), so it must hold up on any object by itself.
  if (auto j = zf::parse_json_strict(text, {zf::kMaxJoseBytes, 8}); j && j->is_object()) {
    (void)zf::jwe_decrypt(*j, key, "");
    if (auto sealed = j->find("sealed"); sealed != j->end()) (void)zf::jwe_decrypt(*sealed, key);
  }
  return 0;
}
