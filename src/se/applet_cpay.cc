// Controlled payment: escrow between two SEs (DESIGN.md §6.6, docs/se-apdu.md
// "Controlled payment").
//
// The payer's SE debits and signs a cpay.note whose terms (amount, currency,
// payee, a code) are sealed in a JWE under a fresh content key, wrapped for
// the payer (in the note) and for the payee (kept in the payer's SE). The
// note then ends one of two ways, each claimed at the registry under the
// note's id, so the first claim wins even against a restored state:
//   pay:    the payer's SE releases the payee's wrapped key (CPAY RELEASE);
//           the payee's SE opens the note, claims it and credits on the record;
//   refund: the payee's SE signs a cpay.refund and never accepts the note
//           afterwards; the payer's SE claims its own note on that refund (or
//           after the expiry, when the payee can no longer claim) and credits
//           itself back on the record.
#include "se/applet.h"
#include "se/applet_internal.h"

namespace zf::se {
using namespace detail;

namespace {

constexpr std::size_t kMaxEscrow = 64;

std::string six_digits() {
  Bytes r = random_bytes(4);
  std::uint32_t n = (std::uint32_t{r[0]} << 24) | (std::uint32_t{r[1]} << 16) | (std::uint32_t{r[2]} << 8) | r[3];
  std::string code = std::to_string(n % 1000000);
  return std::string(6 - code.size(), '0') + code;
}

}  // namespace

Json Applet::escrow_info() const {
  Json arr = Json::array();
  for (const auto& [id, e] : st_.cpay_open) {
    Json item = e;
    for (const char* k : {"digest", "payee_key"}) item.erase(k);
    item["id"] = id;
    arr.push_back(std::move(item));
  }
  return arr;
}

// ---- Payer

Result<Bytes> Applet::cpay_note(const Command& c, std::int64_t now_s) {
  if (auto s = require_user(); !s) return std::unexpected(s.error());
  auto j = json_data(c);
  if (!j) return std::unexpected(j.error());
  if (auto s = only_fields(*j, {"amount", "currency", "payee", "payee_cert", "expires_in_s"}); !s)
    return std::unexpected(s.error());
  auto payee = certified_payee(*j, now_s);
  if (!payee) return std::unexpected(payee.error());
  if (*payee == st_.se_id) return fail(Errc::misaddressed, "cannot pay yourself", "payee");
  auto minor = get_int(*j, "amount");
  if (!minor) return std::unexpected(minor.error());
  auto cur = get_string(*j, "currency", 8);
  if (!cur) return std::unexpected(cur.error());
  auto amount = Amount::of(*cur, *minor);
  if (!amount) return std::unexpected(amount.error());
  if (amount->minor() <= 0) return fail(Errc::amount_zero, "amount must be positive", "amount");
  if (amount->minor() > st_.max_payment_minor)
    return fail(Errc::limit_exceeded, "over the SE's maximum single payment", "amount");
  auto lifetime = note_lifetime(*j, now_s);
  if (!lifetime) return std::unexpected(lifetime.error());
  if (st_.cpay_open.size() >= kMaxEscrow)
    return fail(Errc::limit_exceeded,
                std::to_string(kMaxEscrow) + " escrow notes of this SE are still open; close some first; nothing was "
                                             "debited",
                "escrow");
  if (auto s = covers_spend(*amount, false); !s) return std::unexpected(s.error());
  if (auto s = fits_total(st_.sent_minor, *amount); !s) return std::unexpected(s.error());

  // The terms, sealed for the payer (in the note) and the payee (kept here).
  auto payee_certs = certificates_from_pem(j->at("payee_cert").get<std::string>());
  if (!payee_certs || payee_certs->empty()) return fail(Errc::bad_field, "payee_cert", "payee_cert");
  const PublicKey payee_key = payee_certs->front().public_key();
  const PublicKey own_key = st_.key->public_key();
  const std::string code = six_digits();
  const std::int64_t exp = now_s + *lifetime;
  Json terms{{"amount", amount->minor()}, {"currency", *cur}, {"payee", *payee}, {"code", code}};
  SecretBytes cek(random_bytes(32));
  auto jwe = jwe_encrypt_with_cek(as_bytes(dump_json(terms)), cek.view(),
                                  {JweRecipient{&own_key, st_.se_id}, JweRecipient{&payee_key, *payee}});
  if (!jwe) return std::unexpected(jwe.error());
  Json payee_entry = (*jwe)["recipients"][1];
  (*jwe)["recipients"].erase(1);
  Json payload{{"type", "cpay.note"}, {"payer", st_.se_id}, {"payee", *payee}, {"sealed", *jwe}, {"exp", exp}};
  auto jws = sign_next(payload, now_s);
  if (!jws) return std::unexpected(jws.error());
  // The debit, the signed note and the open entry are one state update.
  if (auto s = debit(*amount); !s) return std::unexpected(s.error());
  st_.sent_minor[*cur] += amount->minor();
  const std::string id = st_.se_id + ":" + std::to_string(st_.seq);
  auto parsed = jws_parse(*jws);
  if (!parsed) return std::unexpected(parsed.error());
  st_.cpay_open[id] = Json{{"seq", st_.seq},
                           {"payee", *payee},
                           {"amount", amount->minor()},
                           {"currency", *cur},
                           {"iat", now_s},
                           {"exp", exp},
                           {"code", code},
                           {"digest", b64url_encode(sha256(parsed->payload))},
                           {"payee_key", payee_entry},
                           {"released", false}};
  log("cpay.note", id, &*amount, false, *payee, now_s);
  dirty_ = true;
  return json_bytes(Json{{"note", *jws}, {"id", id}, {"code", code}, {"exp", exp}});
}

// Agreeing to pay: the payee's wrapped content key leaves the SE. The note
// stays open until the registry's record shows the payee claimed it.
Result<Bytes> Applet::cpay_release(const Command& c, std::int64_t) {
  if (auto s = require_user(); !s) return std::unexpected(s.error());
  auto j = json_data(c);
  if (!j) return std::unexpected(j.error());
  if (auto s = only_fields(*j, {"id"}); !s) return std::unexpected(s.error());
  auto id = get_string(*j, "id", 128);
  if (!id) return std::unexpected(id.error());
  auto it = st_.cpay_open.find(*id);
  if (it == st_.cpay_open.end())
    return fail(Errc::not_found, "this SE has no open escrow note " + *id + "; nothing changed", "id");
  if (!it->second.value("released", false)) {
    it->second["released"] = true;
    dirty_ = true;
  }
  return json_bytes(Json{{"id", *id}, {"payee", it->second.at("payee")}, {"key", it->second.at("payee_key")}});
}

// Taking it back: on the payee's signed refund at any time, or on no refund
// after the expiry (the registry then takes no claim of the payee's).
Result<Bytes> Applet::cpay_refund_claim(const Command& c, std::int64_t now_s) {
  if (auto s = require_user(); !s) return std::unexpected(s.error());
  auto j = json_data(c);
  if (!j) return std::unexpected(j.error());
  if (auto s = only_fields(*j, {"id", "refund"}); !s) return std::unexpected(s.error());
  auto id = get_string(*j, "id", 128);
  if (!id) return std::unexpected(id.error());
  auto it = st_.cpay_open.find(*id);
  if (it == st_.cpay_open.end())
    return fail(Errc::not_found, "this SE has no open escrow note " + *id + "; nothing changed", "id");
  const Json& e = it->second;
  const std::string payee = e.at("payee").get<std::string>();
  const std::int64_t exp = e.at("exp").get<std::int64_t>();
  if (j->contains("refund")) {
    auto text = get_string(*j, "refund", kMaxJoseBytes);
    if (!text) return std::unexpected(text.error());
    auto refund = open_signed_document(*text, verifier(now_s), Role::secure_element);
    if (!refund) return std::unexpected(refund.error());
    const Document& r = refund->doc;
    if (r.type() != "cpay.refund") return fail(Errc::unknown_type, "expected the payee's cpay.refund", "type");
    if (r.issuer() != payee || r.str("payee") != payee)
      return fail(Errc::issuer_mismatch, "the refund is not signed by the payee " + payee, "refund");
    if (r.str("note_id") != *id || r.str("payer") != st_.se_id)
      return fail(Errc::receipt_mismatch, "the refund is for another note", "refund");
  } else if (now_s < exp) {
    return fail(Errc::not_expired,
                *id + " can be accepted by " + payee + " until " + utc_time_text(exp) +
                    "; before that only the payee's signed refund takes it back",
                "refund");
  }
  auto digest = b64url_decode(e.at("digest").get<std::string>());
  if (!digest) return std::unexpected(digest.error());
  registry::ClaimFields f{*id, st_.se_id, e.at("seq").get<std::int64_t>(), "cpay.note", st_.se_id, std::move(*digest),
                          exp};
  return sign_claim(f, now_s);
}

Result<Bytes> Applet::cpay_close(const Command& c, std::int64_t now_s) {
  if (auto s = require_user(); !s) return std::unexpected(s.error());
  auto j = json_data(c);
  if (!j) return std::unexpected(j.error());
  if (auto s = only_fields(*j, {"id", "record"}); !s) return std::unexpected(s.error());
  auto id = get_string(*j, "id", 128);
  auto text = get_string(*j, "record", kMaxJoseBytes);
  if (!id) return std::unexpected(id.error());
  if (!text) return std::unexpected(text.error());
  auto it = st_.cpay_open.find(*id);
  if (it == st_.cpay_open.end())
    return fail(Errc::not_found, "this SE has no open escrow note " + *id + "; nothing changed", "id");
  const Json& e = it->second;
  auto record = record_about(*text, *id, st_.se_id, e.at("seq").get<std::int64_t>(), "cpay.note", now_s);
  if (!record) return std::unexpected(record.error());
  auto digest = b64url_decode(e.at("digest").get<std::string>());
  if (!digest) return std::unexpected(digest.error());
  if (!ct_equal(record->result_digest, *digest))
    return fail(Errc::record_mismatch, "the record holds another document under this id", "record");
  auto amount = Amount::of(e.at("currency").get<std::string>(), e.at("amount").get<std::int64_t>());
  if (!amount) return std::unexpected(amount.error());
  const std::string payee = e.at("payee").get<std::string>();
  Json out{{"id", *id}, {"payee", payee}, {"amount_minor", amount->minor()},
           {"currency", std::string(amount->currency().code())}};
  if (record->processor == payee) {
    // The payee took it: nothing comes back.
    st_.cpay_open.erase(it);
    dirty_ = true;
    out["outcome"] = "paid";
    return json_bytes(out);
  }
  if (record->processor != st_.se_id || record->status != registry::RecordStatus::claimed)
    return fail(Errc::record_mismatch, "the record names " + record->processor + ", neither the payee nor this SE",
                "record");
  if (amount->minor() > headroom(amount->currency().code()))
    return fail(Errc::limit_exceeded,
                "taking " + amount->to_string() +
                    " back would pass this SE's maximum balance; deposit or pay first, then close it again (the note "
                    "stays open and nothing is lost)",
                "amount");
  if (auto s = fits_total(st_.reclaimed_minor, *amount); !s) return std::unexpected(s.error());
  if (auto s = credit(*amount); !s) return std::unexpected(s.error());
  // Safety-critical: the entry leaves in the same state update as the credit.
  st_.cpay_open.erase(it);
  st_.reclaimed_minor[std::string(amount->currency().code())] += amount->minor();
  log("cpay.refund", *id, &*amount, true, payee, now_s);
  dirty_ = true;
  out["outcome"] = "refunded";
  out["balance_minor"] = balance(amount->currency().code());
  return json_bytes(out);
}

// ---- Payee

Result<Applet::OpenedCpay> Applet::open_cpay(const Json& j, std::int64_t now_s, CpayUse use) const {
  if (auto s = require_user(); !s) return std::unexpected(s.error());
  auto text = get_string(j, "note", kMaxJoseBytes);
  if (!text) return std::unexpected(text.error());
  auto signed_doc = open_signed_document(*text, verifier(now_s), Role::secure_element);
  if (!signed_doc) return std::unexpected(signed_doc.error());
  const Document& doc = signed_doc->doc;
  if (doc.type() != "cpay.note") return fail(Errc::unknown_type, "expected a cpay.note", "type");
  if (doc.str("payee") != st_.se_id) return fail(Errc::misaddressed, "the escrow note is for another SE", "payee");
  if (doc.str("payer") != doc.issuer()) return fail(Errc::issuer_mismatch, "the payer is not the signing SE", "payer");
  if (st_.cpay_refunded.contains(doc.id()))
    return fail(Errc::replayed, "this SE refunded " + doc.id() + ": it never accepts it", "id");
  if (st_.received_notes.contains(doc.id()))
    return fail(Errc::replayed, "this SE already took " + doc.id(), "id");
  if (st_.received_notes.seen(doc.id(), doc.iat()))
    return fail(Errc::replayed, "the note is older than what this SE remembers receiving", "iat");
  auto jws = jws_parse(*text);
  if (!jws) return std::unexpected(jws.error());
  OpenedCpay out{*signed_doc, std::nullopt, "", registry::claim_fields_for(*signed_doc, st_.se_id)};
  if (use == CpayUse::refund) return out;
  // A claim only before the expiry (the registry takes none after it). An
  // accept may come after it: the record says the claim was made in time,
  // and the payer closes the note as paid on that record, so refusing the
  // credit then would leave the value in nobody's balance.
  if (auto s = doc.check_time(now_s); !s && (use == CpayUse::claim || s.error().code != Errc::expired)) {
    Error e = s.error();
    if (e.code == Errc::expired)
      e.detail = "the escrow note expired at " + utc_time_text(*doc.exp()) +
                 ": it can no longer be accepted, only refunded; nothing was credited";
    return std::unexpected(e);
  }
  if (!j.contains("key") || j.at("key").is_null())
    return fail(Errc::missing_field, "the payer's released key is needed", "key");
  Json sealed = doc.json().at("sealed");
  if (!sealed.is_object() || !sealed.contains("recipients") || !sealed["recipients"].is_array())
    return fail(Errc::bad_field, "the note's sealed terms are malformed", "sealed");
  sealed["recipients"] = Json::array({j.at("key")});
  auto terms_bytes = jwe_decrypt(sealed, *st_.key);
  if (!terms_bytes)
    return fail(Errc::decrypt_failed, "that key does not open this note (a key for another note, or tampered)", "key");
  auto terms = parse_json_strict(to_string(terms_bytes->view()), {4096, 4});
  if (!terms || !terms->is_object()) return fail(Errc::bad_field, "the sealed terms are malformed", "sealed");
  auto minor = get_int(*terms, "amount");
  auto cur = get_string(*terms, "currency", 8);
  auto payee = get_string(*terms, "payee", 128);
  auto code = get_string(*terms, "code", 16);
  if (!minor || !cur || !payee || !code) return fail(Errc::bad_field, "the sealed terms are incomplete", "sealed");
  if (*payee != st_.se_id) return fail(Errc::misaddressed, "the sealed terms name another payee", "payee");
  auto amount = Amount::of(*cur, *minor);
  if (!amount) return std::unexpected(amount.error());
  if (amount->minor() <= 0) return fail(Errc::amount_zero, "amount must be positive", "amount");
  if (amount->minor() > headroom(*cur)) return fail(Errc::limit_exceeded, "would exceed the SE's maximum balance", "amount");
  out.amount = *amount;
  out.code = *code;
  return out;
}

Result<Bytes> Applet::cpay_claim(const Command& c, std::int64_t now_s) {
  auto j = json_data(c);
  if (!j) return std::unexpected(j.error());
  if (auto s = only_fields(*j, {"note", "key"}); !s) return std::unexpected(s.error());
  auto opened = open_cpay(*j, now_s, CpayUse::claim);
  if (!opened) return std::unexpected(opened.error());
  auto claim = sign_claim(opened->claim, now_s);
  if (!claim) return claim;
  // The registry's record of this claim closes the note at its payer as
  // paid: from now on this SE never refunds it. The host persists that
  // before the claim leaves.
  st_.claimed_notes.insert(opened->note.doc.id(), opened->note.doc.iat());
  dirty_ = true;
  return claim;
}

Result<Bytes> Applet::cpay_accept(const Command& c, std::int64_t now_s) {
  auto j = json_data(c);
  if (!j) return std::unexpected(j.error());
  if (auto s = only_fields(*j, {"note", "key", "record"}); !s) return std::unexpected(s.error());
  // Accepted on the registry's record of a claim made before the expiry.
  auto opened = open_cpay(*j, now_s, CpayUse::accept);
  if (!opened) return std::unexpected(opened.error());
  if (auto s = check_won_record(*j, opened->note, now_s); !s) return std::unexpected(s.error());
  const Document& doc = opened->note.doc;
  const Amount& amount = *opened->amount;
  if (auto s = fits_total(st_.received_minor, amount); !s) return std::unexpected(s.error());
  if (auto s = credit(amount); !s) return std::unexpected(s.error());
  // Safety-critical: the id joins the received set in the same state update as the credit.
  st_.received_notes.insert(doc.id(), doc.iat());
  st_.received_minor[std::string(amount.currency().code())] += amount.minor();
  log("cpay.accept", doc.id(), &amount, true, doc.issuer(), now_s);
  dirty_ = true;
  return json_bytes(Json{{"credited_minor", amount.minor()},
                         {"currency", std::string(amount.currency().code())},
                         {"payer", doc.issuer()},
                         {"note_id", doc.id()},
                         {"code", opened->code},
                         {"balance_minor", balance(amount.currency().code())}});
}

// The payee gives the value back: a signed refund, after which this SE never
// accepts the note. One it accepted gets no refund.
Result<Bytes> Applet::cpay_refund(const Command& c, std::int64_t now_s) {
  auto j = json_data(c);
  if (!j) return std::unexpected(j.error());
  if (auto s = only_fields(*j, {"note"}); !s) return std::unexpected(s.error());
  auto text = get_string(*j, "note", kMaxJoseBytes);
  if (!text) return std::unexpected(text.error());
  auto sign_refund = [&](const Document& doc) {
    Json p{{"type", "cpay.refund"}, {"note_id", doc.id()}, {"payer", doc.issuer()}, {"payee", st_.se_id}};
    return sign_unsequenced(std::move(p), "r", now_s);
  };
  // Refunded before: the refund again (the payer may have lost it); nothing changes.
  if (auto s = require_user(); !s) return std::unexpected(s.error());
  if (auto note = open_signed_document(*text, verifier(now_s), Role::secure_element);
      note && note->doc.type() == "cpay.note" && note->doc.str("payee") == st_.se_id &&
      st_.cpay_refunded.contains(note->doc.id())) {
    auto again = sign_refund(note->doc);
    if (!again) return std::unexpected(again.error());
    return json_bytes(Json{{"refund", *again}, {"note_id", note->doc.id()}, {"again", true}});
  }
  auto opened = open_cpay(*j, now_s, CpayUse::refund);
  if (!opened) return std::unexpected(opened.error());
  const Document& doc = opened->note.doc;
  if (st_.claimed_notes.seen(doc.id(), doc.iat()))
    return fail(Errc::conflict,
                "this SE claimed " + doc.id() +
                    " at the registry (or cannot tell that it did not), which closes it at the payer as paid: accept "
                    "it with the registry's record instead; no refund was signed and nothing changed",
                "note");
  auto refund = sign_refund(doc);
  if (!refund) return std::unexpected(refund.error());
  // Exclusivity: the id is taken in the same state update that signs the refund.
  st_.received_notes.insert(doc.id(), doc.iat());
  st_.cpay_refunded.insert(doc.id());
  log("cpay.refunded", doc.id(), nullptr, true, doc.issuer(), now_s);
  dirty_ = true;
  return json_bytes(Json{{"refund", *refund}, {"note_id", doc.id()}});
}

}  // namespace zf::se
