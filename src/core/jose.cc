#include "core/jose.h"

#include <optional>

namespace zf {
namespace {

constexpr std::size_t kMaxChain = 4;
constexpr std::size_t kMaxSignatures = 16;
constexpr std::size_t kMaxRecipients = 8;

Result<Bytes> b64url_field(std::string_view text, std::string_view field) {
  auto b = b64url_decode(text);
  if (!b) return fail(Errc::bad_base64url, b.error().detail, std::string(field));
  return b;
}

std::string protected_header(const JwsSigner& s, std::string_view typ) {
  Json h = Json::object();
  h["alg"] = sig_alg_name(s.signer->alg());
  if (!typ.empty()) h["typ"] = typ;
  Json chain = Json::array();
  for (const auto& c : s.chain) chain.push_back(b64_encode(c.der()));
  h["x5c"] = chain;
  return b64url_encode(as_bytes(dump_json(h)));
}

Result<Bytes> sign_input(const JwsSigner& s, const std::string& prot, const std::string& payload_b64) {
  if (s.chain.empty()) return fail(Errc::internal, "signer has no certificate chain");
  std::string input = prot + "." + payload_b64;
  return s.signer->sign(as_bytes(input));
}

// Parses a protected header: exactly alg + x5c, optional typ; anything else is refused.
Result<JwsSignature> parse_protected(std::string_view prot_b64) {
  JwsSignature sig;
  sig.protected_b64 = std::string(prot_b64);
  auto raw = b64url_field(prot_b64, "protected");
  if (!raw) return std::unexpected(raw.error());
  auto h = parse_json_strict(to_string(*raw), {8 * 1024 * 4, 4});
  if (!h) return fail(h.error().code, "protected header: " + h.error().detail, "protected");
  if (!h->is_object()) return fail(Errc::bad_header, "header must be an object", "protected");
  for (const auto& [key, _] : h->items()) {
    if (key != "alg" && key != "x5c" && key != "typ")
      return fail(Errc::bad_header, "header field not allowed", key);
  }
  auto alg_name = get_string(*h, "alg", 16);
  if (!alg_name) return fail(Errc::bad_header, alg_name.error().detail, "alg");
  auto alg = sig_alg_from_name(*alg_name);
  if (!alg) return std::unexpected(alg.error());
  sig.alg = *alg;
  if (h->contains("typ")) {
    auto typ = get_string(*h, "typ", 64);
    if (!typ) return fail(Errc::bad_header, typ.error().detail, "typ");
    sig.typ = *typ;
  }
  auto it = h->find("x5c");
  if (it == h->end()) return fail(Errc::bad_header, "x5c is required", "x5c");
  if (!it->is_array() || it->empty() || it->size() > kMaxChain)
    return fail(Errc::bad_header, "x5c must be an array of 1..4 certificates", "x5c");
  for (const auto& entry : *it) {
    if (!entry.is_string()) return fail(Errc::bad_header, "x5c entries must be strings", "x5c");
    auto der = b64_decode(entry.get_ref<const std::string&>());
    if (!der) return fail(Errc::bad_header, "x5c entry is not base64", "x5c");
    auto cert = Certificate::from_der(*der);
    if (!cert) return std::unexpected(cert.error());
    sig.x5c.push_back(std::move(*cert));
  }
  return sig;
}

Status check_signature_matches_key(const JwsSignature& sig) {
  PublicKey key = sig.x5c.front().public_key();
  if (key.alg() != sig.alg) return fail(Errc::bad_header, "alg does not match the x5c key", "alg");
  return {};
}

// JWA §4.6.2: OtherInfo = AlgorithmID || PartyUInfo || PartyVInfo || SuppPubInfo.
Bytes kdf_other_info(std::string_view alg, ByteView apu, ByteView apv, std::uint32_t keybits) {
  Bytes out;
  auto put_len = [&](std::size_t n) {
    for (int s = 24; s >= 0; s -= 8) out.push_back(static_cast<std::uint8_t>(n >> s));
  };
  put_len(alg.size());
  out.insert(out.end(), alg.begin(), alg.end());
  put_len(apu.size());
  out.insert(out.end(), apu.begin(), apu.end());
  put_len(apv.size());
  out.insert(out.end(), apv.begin(), apv.end());
  put_len(keybits);
  return out;
}

constexpr std::string_view kKeyAlg = "ECDH-ES+A256KW";

Result<SecretBytes> derive_kek(const PrivateKey& mine, const PublicKey& theirs, ByteView apu, ByteView apv) {
  auto z = ecdh(mine, theirs);
  if (!z) return std::unexpected(z.error());
  return concat_kdf_sha256(z->view(), kdf_other_info(kKeyAlg, apu, apv, 256), 32);
}

Json epk_jwk(const PublicKey& key) {
  auto xy = key.p256_xy();
  return Json{{"kty", "EC"}, {"crv", "P-256"}, {"x", b64url_encode(xy->first)},
              {"y", b64url_encode(xy->second)}};
}

Result<PublicKey> parse_epk(const Json& epk) {
  if (auto s = only_fields(epk, {"kty", "crv", "x", "y"}); !s)
    return fail(Errc::bad_header, s.error().detail, "epk." + s.error().field);
  auto kty = get_string(epk, "kty", 8);
  auto crv = get_string(epk, "crv", 16);
  if (!kty || *kty != "EC" || !crv || *crv != "P-256")
    return fail(Errc::unsupported_alg, "epk must be an EC P-256 key", "epk");
  auto xs = get_string(epk, "x", 64);
  auto ys = get_string(epk, "y", 64);
  if (!xs || !ys) return fail(Errc::bad_header, "epk needs x and y", "epk");
  auto x = b64url_field(*xs, "epk.x");
  auto y = b64url_field(*ys, "epk.y");
  if (!x) return std::unexpected(x.error());
  if (!y) return std::unexpected(y.error());
  return PublicKey::from_p256_xy(*x, *y);
}

// The per-recipient key-management header. Its only possible companion is an "epk" in the
// protected header of a single-recipient JWE (see check_jwe_shape); the two must be disjoint.
struct RecipientHeader {
  PublicKey epk;
  std::string kid;
  Bytes apu, apv;
  Bytes encrypted_key;
};

Result<RecipientHeader> parse_recipient(const Json& r, const std::optional<Json>& protected_epk) {
  if (auto s = only_fields(r, {"header", "encrypted_key"}); !s)
    return fail(Errc::bad_header, s.error().detail, "recipients." + s.error().field);
  auto hit = r.find("header");
  if (hit == r.end() || !hit->is_object())
    return fail(Errc::bad_header, "recipient header required", "recipients.header");
  const Json& h = *hit;
  if (auto s = only_fields(h, {"alg", "epk", "kid", "apu", "apv"}); !s)
    return fail(Errc::bad_header, s.error().detail, s.error().field);
  auto alg = get_string(h, "alg", 32);
  if (!alg) return fail(Errc::bad_header, alg.error().detail, "alg");
  if (*alg == "none") return fail(Errc::alg_none, "alg 'none' is never accepted", "alg");
  if (*alg != kKeyAlg) return fail(Errc::unsupported_alg, "key management alg not allowed", "alg");
  auto eit = h.find("epk");
  const Json* epk_json = protected_epk ? &*protected_epk : nullptr;
  if (epk_json && eit != h.end())  // RFC 7516 §7.2.1: header parameter names must be disjoint
    return fail(Errc::bad_header, "epk in both the protected and the recipient header", "epk");
  if (!epk_json) {
    if (eit == h.end() || !eit->is_object()) return fail(Errc::bad_header, "epk required", "epk");
    epk_json = &*eit;
  }
  auto epk = parse_epk(*epk_json);
  if (!epk) return std::unexpected(epk.error());
  RecipientHeader out{std::move(*epk), {}, {}, {}, {}};
  if (h.contains("kid")) {
    auto kid = get_string(h, "kid", 128);
    if (!kid) return fail(Errc::bad_header, kid.error().detail, "kid");
    out.kid = *kid;
  }
  for (auto [name, dest] : {std::pair{"apu", &out.apu}, std::pair{"apv", &out.apv}}) {
    if (!h.contains(name)) continue;
    auto v = get_string(h, name, 256);
    if (!v) return fail(Errc::bad_header, v.error().detail, name);
    auto b = b64url_field(*v, name);
    if (!b) return std::unexpected(b.error());
    *dest = std::move(*b);
  }
  auto ek = get_string(r, "encrypted_key", 512);
  if (!ek) return fail(Errc::bad_header, ek.error().detail, "encrypted_key");
  auto ekb = b64url_field(*ek, "encrypted_key");
  if (!ekb) return std::unexpected(ekb.error());
  out.encrypted_key = std::move(*ekb);
  return out;
}

// The protected header is {"enc":"A256GCM"}, plus, only when there is exactly one recipient,
// that recipient's ECDH-ES "epk". RFC 7516 §7.2.1 lets any header parameter be protected, and
// the npm jose library (GeneralEncrypt and FlattenedEncrypt with one recipient) always puts
// the ephemeral key there. It is then covered by the GCM tag, so nothing is lost; with several
// recipients each has its own ephemeral key, so a shared one is refused.
struct JweShape {
  std::optional<Json> protected_epk;
};

Result<JweShape> check_jwe_shape(const Json& jwe) {
  if (auto s = only_fields(jwe, {"protected", "recipients", "iv", "ciphertext", "tag", "aad"}); !s)
    return fail(Errc::bad_header, s.error().detail, s.error().field);
  auto prot = get_string(jwe, "protected", 1024);
  if (!prot) return std::unexpected(prot.error());
  auto raw = b64url_field(*prot, "protected");
  if (!raw) return std::unexpected(raw.error());
  auto h = parse_json_strict(to_string(*raw), {1024, 4});
  if (!h) return fail(h.error().code, "protected header: " + h.error().detail, "protected");
  if (auto s = only_fields(*h, {"enc", "epk"}); !s)
    return fail(Errc::bad_header, "protected header field not allowed", s.error().field);
  auto enc = get_string(*h, "enc", 16);
  if (!enc) return fail(Errc::bad_header, enc.error().detail, "enc");
  if (*enc != "A256GCM") return fail(Errc::unsupported_alg, "content encryption must be A256GCM", "enc");
  auto rit = jwe.find("recipients");
  if (rit == jwe.end() || !rit->is_array() || rit->empty() || rit->size() > kMaxRecipients)
    return fail(Errc::bad_header, "recipients must be an array of 1..8", "recipients");
  JweShape shape;
  if (auto eit = h->find("epk"); eit != h->end()) {
    if (!eit->is_object()) return fail(Errc::bad_header, "epk must be an object", "epk");
    if (rit->size() != 1)
      return fail(Errc::bad_header, "a protected epk needs exactly one recipient", "epk");
    shape.protected_epk = *eit;
  }
  for (const auto& f : {"iv", "ciphertext", "tag"}) {
    auto v = get_string(jwe, f, kMaxJoseBytes);
    if (!v) return std::unexpected(v.error());
    if (auto b = b64url_field(*v, f); !b) return std::unexpected(b.error());
  }
  return shape;
}

}  // namespace

// ---- JWS

Result<std::string> jws_sign_compact(ByteView payload, const JwsSigner& signer, std::string_view typ) {
  std::string prot = protected_header(signer, typ);
  std::string body = b64url_encode(payload);
  auto sig = sign_input(signer, prot, body);
  if (!sig) return std::unexpected(sig.error());
  return prot + "." + body + "." + b64url_encode(*sig);
}

Result<Json> jws_sign_general(ByteView payload, const std::vector<JwsSigner>& signers, std::string_view typ) {
  if (signers.empty() || signers.size() > kMaxSignatures) return fail(Errc::internal, "1..16 signers");
  std::string body = b64url_encode(payload);
  Json sigs = Json::array();
  for (const auto& s : signers) {
    std::string prot = protected_header(s, typ);
    auto sig = sign_input(s, prot, body);
    if (!sig) return std::unexpected(sig.error());
    sigs.push_back(Json{{"protected", prot}, {"signature", b64url_encode(*sig)}});
  }
  return Json{{"payload", body}, {"signatures", sigs}};
}

Result<std::string> jws_join(const std::vector<std::string>& jwses) {
  std::optional<std::string> body;
  Json sigs = Json::array();
  for (const auto& text : jwses) {
    auto jws = jws_parse(text);
    if (!jws) return std::unexpected(jws.error());
    if (body && *body != jws->payload_b64)
      return fail(Errc::bad_header, "the signatures are over different payloads", "payload");
    body = jws->payload_b64;
    for (const auto& sig : jws->signatures)
      sigs.push_back(Json{{"protected", sig.protected_b64}, {"signature", b64url_encode(sig.signature)}});
  }
  if (!body || sigs.size() > kMaxSignatures) return fail(Errc::bad_header, "1..16 signatures", "signatures");
  return dump_json(Json{{"payload", *body}, {"signatures", sigs}});
}

Result<Jws> jws_parse_compact(std::string_view text) {
  if (text.size() > kMaxJoseBytes) return fail(Errc::too_large, "JWS larger than 64 KiB");
  auto d1 = text.find('.');
  auto d2 = d1 == std::string_view::npos ? d1 : text.find('.', d1 + 1);
  if (d2 == std::string_view::npos || text.find('.', d2 + 1) != std::string_view::npos)
    return fail(Errc::malformed_json, "compact JWS needs exactly three parts");
  auto sig = parse_protected(text.substr(0, d1));
  if (!sig) return std::unexpected(sig.error());
  Jws jws;
  jws.payload_b64 = std::string(text.substr(d1 + 1, d2 - d1 - 1));
  auto payload = b64url_field(jws.payload_b64, "payload");
  if (!payload) return std::unexpected(payload.error());
  jws.payload = std::move(*payload);
  auto s = b64url_field(text.substr(d2 + 1), "signature");
  if (!s) return std::unexpected(s.error());
  sig->signature = std::move(*s);
  if (auto ok = check_signature_matches_key(*sig); !ok) return std::unexpected(ok.error());
  jws.signatures.push_back(std::move(*sig));
  return jws;
}

Result<Jws> jws_parse_json(std::string_view text) {
  auto j = parse_json_strict(text, {kMaxJoseBytes, 8});
  if (!j) return std::unexpected(j.error());
  if (!j->is_object()) return fail(Errc::malformed_json, "JWS JSON must be an object");
  bool general = j->contains("signatures");
  if (general) {
    if (auto s = only_fields(*j, {"payload", "signatures"}); !s) return fail(Errc::bad_header, s.error().detail, s.error().field);
  } else if (auto s = only_fields(*j, {"payload", "protected", "signature"}); !s) {
    return fail(Errc::bad_header, s.error().detail, s.error().field);
  }
  Jws jws;
  auto payload_b64 = get_string(*j, "payload", kMaxJoseBytes);
  if (!payload_b64) return std::unexpected(payload_b64.error());
  jws.payload_b64 = *payload_b64;
  auto payload = b64url_field(jws.payload_b64, "payload");
  if (!payload) return std::unexpected(payload.error());
  jws.payload = std::move(*payload);
  std::vector<Json> entries;
  if (general) {
    const Json& sigs = (*j)["signatures"];
    if (!sigs.is_array() || sigs.empty() || sigs.size() > kMaxSignatures)
      return fail(Errc::bad_header, "signatures must be an array of 1..16", "signatures");
    entries.assign(sigs.begin(), sigs.end());
  } else {
    // Copy only the members that are there, so a missing one is reported as missing.
    Json e = Json::object();
    for (const char* member : {"protected", "signature"})
      if (auto it = j->find(member); it != j->end()) e[member] = *it;
    entries.push_back(std::move(e));
  }
  for (const auto& e : entries) {
    if (!e.is_object()) return fail(Errc::bad_header, "signature entry must be an object", "signatures");
    if (auto s = only_fields(e, {"protected", "signature"}); !s)
      return fail(Errc::bad_header, "unprotected header not allowed", s.error().field);
    auto prot = get_string(e, "protected", kMaxJoseBytes);
    if (!prot) return std::unexpected(prot.error());
    auto sig = parse_protected(*prot);
    if (!sig) return std::unexpected(sig.error());
    auto sig_b64 = get_string(e, "signature", 1024);
    if (!sig_b64) return std::unexpected(sig_b64.error());
    auto s = b64url_field(*sig_b64, "signature");
    if (!s) return std::unexpected(s.error());
    sig->signature = std::move(*s);
    if (auto ok = check_signature_matches_key(*sig); !ok) return std::unexpected(ok.error());
    jws.signatures.push_back(std::move(*sig));
  }
  return jws;
}

Result<Jws> jws_parse(std::string_view text) {
  if (!text.empty() && text.front() == '{') return jws_parse_json(text);
  return jws_parse_compact(text);
}

Status jws_check_signature(const Jws& jws, std::size_t index) {
  if (index >= jws.signatures.size()) return fail(Errc::internal, "no such signature");
  const auto& sig = jws.signatures[index];
  std::string input = sig.protected_b64 + "." + jws.payload_b64;
  return sig.x5c.front().public_key().verify(as_bytes(input), sig.signature);
}

Result<std::vector<Certificate>> jws_verify(const Jws& jws, const CertVerifier& verifier, Role role) {
  std::vector<Certificate> leaves;
  for (std::size_t i = 0; i < jws.signatures.size(); ++i) {
    // Signature first: it is cheaper to reject garbage than to build a chain for it.
    if (auto s = jws_check_signature(jws, i); !s) return std::unexpected(s.error());
    auto leaf = verifier.verify(jws.signatures[i].x5c, role);
    if (!leaf) return std::unexpected(leaf.error());
    leaves.push_back(std::move(*leaf));
  }
  return leaves;
}

// ---- JWE

Result<Json> jwe_encrypt(ByteView plaintext, const std::vector<JweRecipient>& recipients) {
  SecretBytes cek(random_bytes(32));
  return jwe_encrypt_with_cek(plaintext, cek.view(), recipients);
}

Result<Json> jwe_encrypt_with_cek(ByteView plaintext, ByteView cek,
                                  const std::vector<JweRecipient>& recipients) {
  if (recipients.empty() || recipients.size() > kMaxRecipients)
    return fail(Errc::internal, "1..8 recipients");
  if (cek.size() != 32) return fail(Errc::internal, "content key must be 32 bytes");
  Json rs = Json::array();
  for (const auto& r : recipients) {
    auto eph = PrivateKey::generate(SigAlg::ES256);
    if (!eph) return std::unexpected(eph.error());
    auto kek = derive_kek(*eph, *r.key, {}, {});
    if (!kek) return std::unexpected(kek.error());
    auto wrapped = aes256_key_wrap(kek->view(), cek);
    if (!wrapped) return std::unexpected(wrapped.error());
    Json header{{"alg", kKeyAlg}, {"epk", epk_jwk(eph->public_key())}};
    if (!r.kid.empty()) header["kid"] = r.kid;
    rs.push_back(Json{{"header", header}, {"encrypted_key", b64url_encode(*wrapped)}});
  }
  std::string prot = b64url_encode(as_bytes(dump_json(Json{{"enc", "A256GCM"}})));
  Bytes iv = random_bytes(12);
  auto sealed = aes256gcm_encrypt(cek, iv, as_bytes(prot), plaintext);
  if (!sealed) return std::unexpected(sealed.error());
  return Json{{"protected", prot},
              {"recipients", rs},
              {"iv", b64url_encode(iv)},
              {"ciphertext", b64url_encode(sealed->ciphertext)},
              {"tag", b64url_encode(sealed->tag)}};
}

Result<SecretBytes> jwe_unwrap_cek(const Json& jwe, const PrivateKey& key, std::string_view kid) {
  auto shape = check_jwe_shape(jwe);
  if (!shape) return std::unexpected(shape.error());
  // Every entry is validated before any is tried, so a malformed entry after the one that
  // unwraps cannot slip through (jwe_parse and this function must agree on validity).
  std::vector<RecipientHeader> recipients;
  for (const auto& r : jwe["recipients"]) {
    auto rh = parse_recipient(r, shape->protected_epk);
    if (!rh) return std::unexpected(rh.error());
    recipients.push_back(std::move(*rh));
  }
  bool any_kid_match = false;
  for (const auto& rh : recipients) {
    if (!kid.empty() && rh.kid != kid) continue;
    any_kid_match = true;
    auto kek = derive_kek(key, rh.epk, rh.apu, rh.apv);
    if (!kek) return std::unexpected(kek.error());
    auto cek = aes256_key_unwrap(kek->view(), rh.encrypted_key);
    if (cek && cek->size() == 32) return cek;
  }
  if (!kid.empty() && !any_kid_match) return fail(Errc::no_recipient, "no recipient with this kid", "kid");
  return fail(Errc::decrypt_failed, "no recipient key unwraps with this key", "recipients");
}

Result<SecretBytes> jwe_decrypt_with_cek(const Json& jwe, ByteView cek) {
  if (auto s = check_jwe_shape(jwe); !s) return std::unexpected(s.error());
  const std::string& prot = jwe["protected"].get_ref<const std::string&>();
  std::string aad = prot;
  if (jwe.contains("aad")) {
    auto extra = get_string(jwe, "aad", 4096);
    if (!extra) return std::unexpected(extra.error());
    if (auto b = b64url_field(*extra, "aad"); !b) return std::unexpected(b.error());
    aad += "." + *extra;
  }
  auto iv = b64url_decode(jwe["iv"].get_ref<const std::string&>());
  auto ct = b64url_decode(jwe["ciphertext"].get_ref<const std::string&>());
  auto tag = b64url_decode(jwe["tag"].get_ref<const std::string&>());
  return aes256gcm_decrypt(cek, *iv, as_bytes(aad), *ct, *tag);
}

Result<SecretBytes> jwe_decrypt(const Json& jwe, const PrivateKey& key, std::string_view kid) {
  auto cek = jwe_unwrap_cek(jwe, key, kid);
  if (!cek) return std::unexpected(cek.error());
  return jwe_decrypt_with_cek(jwe, cek->view());
}

Result<Json> jwe_parse(std::string_view text) {
  auto j = parse_json_strict(text, {kMaxJoseBytes, 8});
  if (!j) return std::unexpected(j.error());
  auto shape = check_jwe_shape(*j);
  if (!shape) return std::unexpected(shape.error());
  for (const auto& r : (*j)["recipients"])
    if (auto rh = parse_recipient(r, shape->protected_epk); !rh) return std::unexpected(rh.error());
  return j;
}

}  // namespace zf
