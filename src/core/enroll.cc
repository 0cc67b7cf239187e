#include "core/enroll.h"

namespace zf {

Bytes attestation_message(ByteView csr_spki_der) {
  constexpr std::string_view kLabel = "zhuanfu/se-attestation/v1";
  Bytes msg(kLabel.begin(), kLabel.end());
  msg.push_back(0);
  msg.insert(msg.end(), csr_spki_der.begin(), csr_spki_der.end());
  return msg;
}

Result<Attestation> make_attestation(const Signer& attestation_key, std::vector<Certificate> chain,
                                     const PublicKey& csr_key) {
  auto sig = attestation_key.sign(attestation_message(csr_key.spki_der()));
  if (!sig) return std::unexpected(sig.error());
  return Attestation{std::move(chain), std::move(*sig)};
}

Json attestation_to_json(const Attestation& a) {
  Json chain = Json::array();
  for (const auto& c : a.chain) chain.push_back(b64_encode(c.der()));
  return Json{{"x5c", chain}, {"sig", b64url_encode(a.signature)}};
}

Result<Attestation> attestation_from_json(const Json& j) {
  if (!j.is_object()) return fail(Errc::attestation_missing, "attestation must be an object", "attestation");
  if (auto s = only_fields(j, {"x5c", "sig"}); !s)
    return fail(Errc::bad_field, s.error().detail, "attestation." + s.error().field);
  auto it = j.find("x5c");
  if (it == j.end() || !it->is_array() || it->empty() || it->size() > 4)
    return fail(Errc::bad_field, "x5c must hold 1..4 certificates", "attestation.x5c");
  Attestation a;
  for (const auto& e : *it) {
    if (!e.is_string()) return fail(Errc::bad_field, "x5c entries are base64 strings", "attestation.x5c");
    auto der = b64_decode(e.get_ref<const std::string&>());
    if (!der) return fail(Errc::bad_field, "x5c entry is not base64", "attestation.x5c");
    auto cert = Certificate::from_der(*der);
    if (!cert) return fail(Errc::attestation_untrusted, "x5c entry is not a certificate", "attestation.x5c");
    a.chain.push_back(std::move(*cert));
  }
  auto sig = get_string(j, "sig", 256);
  if (!sig) return fail(sig.error().code, sig.error().detail, "attestation.sig");
  auto raw = b64url_decode(*sig);
  if (!raw) return fail(Errc::bad_base64url, raw.error().detail, "attestation.sig");
  a.signature = std::move(*raw);
  return a;
}

Status verify_attestation(const Attestation& a, const CertVerifier& manufacturer, const PublicKey& csr_key) {
  auto leaf = manufacturer.verify(a.chain, Role::se_attestation);
  if (!leaf) return fail(Errc::attestation_untrusted, leaf.error().message(), "attestation.x5c");
  if (auto s = leaf->public_key().verify(attestation_message(csr_key.spki_der()), a.signature); !s)
    return fail(Errc::attestation_bad_signature, "attestation does not sign this CSR key", "attestation.sig");
  return {};
}

}  // namespace zf
