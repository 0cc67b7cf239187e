// Personalization, the certificate and the CRL.
#include "se/applet.h"

#include "core/enroll.h"
#include "se/applet_internal.h"

namespace zf::se {
using namespace detail;

// ---- Personalization

Result<Bytes> Applet::personalize(const Command& c, std::int64_t) {
  if (st_.lifecycle != Lifecycle::factory) return fail(Errc::wrong_state, "already personalized");
  auto j = json_data(c);
  if (!j) return std::unexpected(j.error());
  if (auto s = only_fields(*j, {"user_id", "pin", "puk", "root", "max_balance_minor", "max_payment_minor", "pin_tries",
                                "bio_hash", "note_ttl_s", "f2f_max_payment_minor", "f2f_max_unreconciled_minor",
                                "f2f_max_unreconciled_count", "f2f_spend_unreconciled_minor"});
      !s)
    return std::unexpected(s.error());
  auto user = get_string(*j, "user_id", 64);
  auto pin = get_string(*j, "pin", 12);
  auto puk = get_string(*j, "puk", 16);
  auto root_pem = get_string(*j, "root", 8192);
  for (auto* r : {&user, &pin, &puk, &root_pem})
    if (!*r) return std::unexpected(r->error());
  if (user->empty()) return fail(Errc::bad_field, "user id required", "user_id");
  if (!digits(*pin, 4, 12)) return fail(Errc::bad_field, "PIN must be 4..12 digits", "pin");
  if (!digits(*puk, 8, 16)) return fail(Errc::bad_field, "PUK must be 8..16 digits", "puk");
  auto root = Certificate::from_pem(*root_pem);
  if (!root || !root->is_ca()) return fail(Errc::cert_malformed, "root must be a CA certificate", "root");
  std::int64_t max_balance = Amount::kMaxMinor, max_payment = Amount::kMaxMinor, tries = kDefaultPinTries;
  std::int64_t note_ttl = kDefaultNoteTtlS;
  for (auto [name, dest] : {std::pair{"max_balance_minor", &max_balance}, std::pair{"max_payment_minor", &max_payment},
                            std::pair{"pin_tries", &tries}, std::pair{"note_ttl_s", &note_ttl}}) {
    if (!j->contains(name)) continue;
    auto v = get_int(*j, name);
    if (!v) return std::unexpected(v.error());
    if (*v < 1 || *v > Amount::kMaxMinor) return fail(Errc::bad_field, "out of range", name);
    *dest = *v;
  }
  // Offline risk (DESIGN.md §6.5): 0 turns that part of face to face off.
  State defaults;
  std::int64_t f2f_max = defaults.f2f_max_payment_minor, f2f_unrec = defaults.f2f_max_unreconciled_minor,
               f2f_count = defaults.f2f_max_unreconciled_count, f2f_spend = defaults.f2f_spend_unreconciled_minor;
  for (auto [name, dest] : {std::pair{"f2f_max_payment_minor", &f2f_max}, std::pair{"f2f_max_unreconciled_minor", &f2f_unrec},
                            std::pair{"f2f_max_unreconciled_count", &f2f_count},
                            std::pair{"f2f_spend_unreconciled_minor", &f2f_spend}}) {
    if (!j->contains(name)) continue;
    auto v = get_int(*j, name);
    if (!v) return std::unexpected(v.error());
    if (*v < 0 || *v > Amount::kMaxMinor) return fail(Errc::bad_field, "out of range", name);
    *dest = *v;
  }
  if (f2f_count > 1024) return fail(Errc::bad_field, "at most 1024 payments taken offline", "f2f_max_unreconciled_count");
  if (tries > 15) return fail(Errc::bad_field, "at most 15 tries", "pin_tries");
  if (note_ttl > kMaxNoteTtlS) return fail(Errc::bad_field, "a note expires in 1 s to 366 days", "note_ttl_s");
  Bytes bio;
  if (j->contains("bio_hash")) {
    auto h = get_string(*j, "bio_hash", 64);
    if (!h) return std::unexpected(h.error());
    auto b = hex_decode(*h);
    if (!b || b->size() != 32) return fail(Errc::bad_field, "SHA-256 hex of the template", "bio_hash");
    bio = std::move(*b);
  }
  // The user's key is generated here and never leaves the applet.
  auto key = PrivateKey::generate(SigAlg::ES256);
  if (!key) return std::unexpected(key.error());
  auto csr = make_csr_pem(*key, CsrInfo{st_.se_id, *user});
  if (!csr) return std::unexpected(csr.error());
  KeySigner attest(*st_.attest_key);
  auto att = make_attestation(attest, st_.attest_chain, key->public_key());
  if (!att) return std::unexpected(att.error());

  st_.user_id = *user;
  st_.pin_salt = random_bytes(16);
  st_.pin_hash = salted_hash(st_.pin_salt, *pin);
  st_.puk_hash = salted_hash(st_.pin_salt, *puk);
  st_.bio_hash = std::move(bio);
  st_.pin_tries_max = st_.pin_tries_left = static_cast<int>(tries);
  st_.max_balance_minor = max_balance;
  st_.max_payment_minor = max_payment;
  st_.note_ttl_s = note_ttl;
  st_.f2f_max_payment_minor = f2f_max;
  st_.f2f_max_unreconciled_minor = f2f_unrec;
  st_.f2f_max_unreconciled_count = f2f_count;
  st_.f2f_spend_unreconciled_minor = f2f_spend;
  st_.root = std::move(*root);
  st_.key = std::make_unique<PrivateKey>(std::move(*key));
  st_.lifecycle = Lifecycle::personalized;
  dirty_ = true;
  return json_bytes(Json{{"csr", *csr}, {"attestation", attestation_to_json(*att)}});
}

Result<Bytes> Applet::install_cert(const Command& c, std::int64_t now_s) {
  if (st_.lifecycle != Lifecycle::personalized) return fail(Errc::wrong_state, "install needs a personalized SE");
  auto j = json_data(c);
  if (!j) return std::unexpected(j.error());
  if (auto s = only_fields(*j, {"certificate"}); !s) return std::unexpected(s.error());
  auto pem = get_string(*j, "certificate", 16 * 1024);
  if (!pem) return std::unexpected(pem.error());
  auto chain = certificates_from_pem(*pem);
  if (!chain) return std::unexpected(chain.error());
  CertVerifier v(*st_.root);
  v.set_time(now_s);
  auto leaf = v.verify(*chain, Role::secure_element);
  if (!leaf) return std::unexpected(leaf.error());
  if (leaf->public_key().spki_der() != st_.key->public_key().spki_der())
    return fail(Errc::bad_field, "certificate is for another key", "certificate");
  if (leaf->subject_cn() != st_.se_id || leaf->user_id() != st_.user_id)
    return fail(Errc::bad_field, "certificate names another SE or user", "certificate");
  st_.chain = {*leaf};  // documents carry the leaf; verifiers hold the root
  st_.lifecycle = Lifecycle::active;
  dirty_ = true;
  return Bytes{};
}

Result<Bytes> Applet::update_crl(const Command& c, std::int64_t) {
  if (st_.lifecycle == Lifecycle::factory) return fail(Errc::wrong_state, "personalize first");
  auto j = json_data(c);
  if (!j) return std::unexpected(j.error());
  if (auto s = only_fields(*j, {"crl"}); !s) return std::unexpected(s.error());
  auto pem = get_string(*j, "crl", 60 * 1024);
  if (!pem) return std::unexpected(pem.error());
  auto crl = Crl::from_pem(*pem);
  if (!crl) return std::unexpected(crl.error());
  if (auto s = crl->verify_signature(*st_.root); !s) return std::unexpected(s.error());
  std::uint64_t current = st_.crl ? st_.crl->number() : 0;
  // A CRL never goes back: an older list could un-revoke a key.
  if (crl->number() < current) return fail(Errc::replayed, "older CRL than the installed one", "crl");
  if (crl->number() > current || !st_.crl || crl->next_update() > st_.crl->next_update()) {
    st_.crl = std::move(*crl);
    dirty_ = true;
  }
  return json_bytes(Json{{"crl_number", st_.crl->number()}});
}

}  // namespace zf::se
