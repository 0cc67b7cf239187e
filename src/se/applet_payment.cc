// Online payment: the payer signs a note, the payee claims and receives it.
#include "se/applet.h"

#include "core/claims.h"
#include "se/applet_internal.h"

namespace zf::se {
using namespace detail;

// ---- Online payment (§6.3)

Result<Bytes> Applet::payment_note(const Command& c, std::int64_t now_s) {
  if (auto s = require_user(); !s) return std::unexpected(s.error());
  auto j = json_data(c);
  if (!j) return std::unexpected(j.error());
  if (auto s = only_fields(*j, {"amount", "currency", "payee", "payee_cert", "process_no", "expires_in_s"}); !s)
    return std::unexpected(s.error());
  auto payee = certified_payee(*j, now_s);
  if (!payee) return std::unexpected(payee.error());
  auto lifetime = note_lifetime(*j, now_s);
  if (!lifetime) return std::unexpected(lifetime.error());
  const std::int64_t ttl = *lifetime;
  if (st_.outstanding_notes.size() >= kMaxOutstanding)
    return fail(Errc::limit_exceeded,
                std::to_string(kMaxOutstanding) +
                    " notes this SE paid are not yet known to be received; `zf wallet notes` closes the received "
                    "ones and reclaims the expired ones; nothing was debited",
                "outstanding");
  Json fields = *j;
  fields.erase("payee_cert");  // checked above; the note names the payee, not its certificate
  fields.erase("expires_in_s");
  auto payload = take_fields(fields, {"amount", "currency", "payee", "process_no"});
  if (!payload) return std::unexpected(payload.error());
  (*payload)["payee"] = *payee;
  (*payload)["type"] = "payment.note";
  (*payload)["payer"] = st_.se_id;
  // After this the payee can no longer receive the note, and this SE may take its value back (RECLAIM).
  (*payload)["exp"] = now_s + ttl;
  auto d = draft(std::move(*payload), now_s);
  if (!d) return std::unexpected(d.error());
  if (*payee == st_.se_id) return fail(Errc::misaddressed, "cannot pay yourself", "payee");
  if (d->amount().minor() > st_.max_payment_minor)
    return fail(Errc::limit_exceeded, "over the SE's maximum single payment", "amount");
  if (auto s = fits_total(st_.sent_minor, d->amount()); !s) return std::unexpected(s.error());
  // The debit and the signed note are one state update: the host persists both or neither.
  auto jws = sign_value_document(*d, Spend::online, now_s);
  if (!jws) return std::unexpected(jws.error());
  st_.sent_minor[d->currency()] += d->amount().minor();
  std::string id = st_.se_id + ":" + std::to_string(st_.seq);
  auto signed_jws = jws_parse(*jws);
  if (!signed_jws) return std::unexpected(signed_jws.error());
  // What a reclaim claims and a record is checked against: the payload's digest, as the payee claims it.
  st_.outstanding_notes[id] = Json{{"seq", st_.seq},
                                {"payee", *payee},
                                {"amount", d->amount().minor()},
                                {"currency", d->currency()},
                                {"iat", now_s},
                                {"exp", now_s + ttl},
                                {"digest", b64url_encode(sha256(signed_jws->payload))}};
  log("payment.note", id, &d->amount(), false, *payee, now_s);
  dirty_ = true;
  return json_bytes(Json{{"note", *jws}, {"id", id}});
}

Result<std::int64_t> Applet::note_lifetime(const Json& j, std::int64_t now_s) const {
  std::int64_t ttl = st_.note_ttl_s;
  if (j.contains("expires_in_s")) {
    auto v = get_int(j, "expires_in_s");
    if (!v) return std::unexpected(v.error());
    if (*v < 1 || *v > kMaxNoteTtlS) return fail(Errc::bad_field, "a note expires in 1 s to 366 days", "expires_in_s");
    ttl = *v;
  }
  // A reclaim is signed under this SE's certificate, and the payee checks it
  // when it receives: no note may outlive the certificate, with a week to spare
  // for taking it back. The default lifetime shrinks to fit; a lifetime asked
  // for explicitly is refused rather than silently cut.
  const std::int64_t latest = static_cast<std::int64_t>(st_.chain.front().not_after()) - kReclaimWindowS;
  if (now_s + ttl > latest) {
    if (j.contains("expires_in_s") || latest - now_s < 3600)
      return fail(Errc::bad_field,
                  "this SE's certificate ends at " + utc_time_text(st_.chain.front().not_after()) +
                      ": a note must expire by " + utc_time_text(latest) +
                      " so that it can still be taken back; nothing was debited",
                  "expires_in_s");
    ttl = latest - now_s;
  }
  return ttl;
}

// The SE a note may be addressed to: the CN of `payee_cert`, a secure-element
// certificate that chains to our root and is not revoked on our CRL, as the
// terminal fetched it from the CA. A terminal cannot address value to an SE
// that does not exist, or to a name the CA never certified: the SE checks the
// certificate itself. A `payee` given beside it must be the same SE.
Result<std::string> Applet::certified_payee(const Json& j, std::int64_t now_s) const {
  auto pem = get_string(j, "payee_cert", 16 * 1024);
  if (!pem) {
    Error e = pem.error();
    if (e.code == Errc::missing_field)
      e.detail = "the payee's SE certificate is required (the terminal fetches it from the CA)";
    return std::unexpected(e);
  }
  auto certs = certificates_from_pem(*pem);
  if (!certs || certs->empty()) return fail(Errc::bad_field, "payee_cert is not a PEM certificate", "payee_cert");
  auto cert = verifier(now_s).verify({certs->front()}, Role::secure_element);
  if (!cert) {
    Error e = cert.error();
    e.field = "payee_cert";
    e.detail = "the payee's certificate: " + e.detail;
    return std::unexpected(e);
  }
  std::string id = cert->subject_cn();
  if (id.empty()) return fail(Errc::bad_field, "the payee's certificate names no SE", "payee_cert");
  if (j.contains("payee")) {
    auto asked = get_string(j, "payee", 128);
    if (!asked) return std::unexpected(asked.error());
    if (*asked != id)
      return fail(Errc::misaddressed, "the payee certificate is " + id + "'s, not " + *asked + "'s", "payee");
  }
  return id;
}

// Every check a payee SE makes on an incoming note before it would credit it.
// `j` is the command's data; its "note" member is the note's JWS.
Result<SignedDocument> Applet::check_incoming_note(const Json& j, std::int64_t now_s, bool expired_ok) const {
  if (auto s = require_user(); !s) return std::unexpected(s.error());
  auto text = get_string(j, "note", kMaxJoseBytes);
  if (!text) return std::unexpected(text.error());
  // Only a certified SE can create e-cash value: the note must chain to our root with that role.
  auto signed_doc = open_signed_document(*text, verifier(now_s), Role::secure_element);
  if (!signed_doc) return std::unexpected(signed_doc.error());
  const Document& doc = signed_doc->doc;
  // A face-to-face payment that never got its answer may be delivered this way too (applet_f2f.cc).
  if (doc.type() != "payment.note" && doc.type() != "f2f.payment")
    return fail(Errc::unknown_type, "expected a payment.note or an f2f.payment", "type");
  if (auto s = doc.check_time(now_s); !s) {
    if (!(expired_ok && s.error().code == Errc::expired)) {
      Error e = s.error();
      if (e.code == Errc::expired)
        e.detail = "the note expired at " + utc_time_text(*doc.exp()) +
                   ": it can no longer be received, and its payer can reclaim the value; nothing was credited";
      return std::unexpected(e);
    }
  }
  if (doc.str("payee") != st_.se_id) return fail(Errc::misaddressed, "note is addressed to another SE", "payee");
  const std::string signer = signed_doc->signers.front().subject_cn();
  // issuer and id are bound to the signer by open_signed_document; the payer is too.
  if (doc.str("payer") != signer) return fail(Errc::issuer_mismatch, "the payer is not the signing SE", "payer");
  if (st_.received_notes.contains(doc.id())) return fail(Errc::replayed, "note already received", "id");
  if (st_.received_notes.seen(doc.id(), doc.iat()))
    return fail(Errc::replayed,
                "the note was paid at " + utc_time_text(doc.iat()) +
                    ", before the oldest note this SE still remembers receiving; it cannot tell whether it took this "
                    "one already, so it credits nothing (the payer can reclaim a note nobody received)",
                "iat");
  if (doc.amount()->minor() > headroom(doc.amount()->currency().code()))
    return fail(Errc::limit_exceeded, "would exceed the SE's maximum balance", "amount");
  return signed_doc;
}

// The registry's signed record that this SE won the claim for `note` (DESIGN.md
// §7, docs/se-apdu.md "The registry rule"): signed by a certified `registry` key
// (chain, role, CRL), about this note's id, issuer, seq and payload digest, and
// held by this SE. The terminal carries the record but cannot make one, so a
// terminal that skips the claim cannot get a note credited that a restored or
// cloned payer also spent elsewhere. Nothing changes here.
Status Applet::check_won_record(const Json& j, const SignedDocument& note, std::int64_t now_s) const {
  if (!j.contains("record"))
    return fail(Errc::record_required, "claim the note at the registry first; its signed record must come with it",
                "record");
  auto text = get_string(j, "record", kMaxJoseBytes);
  if (!text) return std::unexpected(text.error());
  const auto ours = registry::claim_fields_for(note, st_.se_id);
  auto record = record_about(*text, ours.doc_id, ours.doc_issuer, ours.doc_seq, ours.doc_type, now_s);
  if (!record) return std::unexpected(record.error());
  if (record->status == registry::RecordStatus::seq_reused)
    return fail(Errc::seq_reused, "the payer signed another document under this sequence number", "record");
  if (record->status == registry::RecordStatus::already_processed || record->processor != st_.se_id)
    return fail(Errc::replayed, "the note is held at the registry by " + record->processor, "record");
  if (!record->won_by(st_.se_id, ours.result_digest))
    return fail(Errc::record_mismatch, "the record holds another document under this id", "record");
  // The registry takes a payee's claim only before the note's expiry; a record
  // that says otherwise is not one this SE credits on.
  if (note.doc.exp() && (!record->claimed_at || *record->claimed_at >= *note.doc.exp()))
    return fail(Errc::expired, "the registry recorded the claim after the note expired", "record");
  return {};
}

Result<Bytes> Applet::receive_note(const Command& c, std::int64_t now_s) {
  auto j = json_data(c);
  if (!j) return std::unexpected(j.error());
  if (auto s = only_fields(*j, {"note", "record"}); !s) return std::unexpected(s.error());
  // A note claimed in time may be credited after its expiry (the record says when it was claimed).
  auto signed_doc = check_incoming_note(*j, now_s, true);
  if (!signed_doc) return std::unexpected(signed_doc.error());
  if (auto s = check_won_record(*j, *signed_doc, now_s); !s) return std::unexpected(s.error());
  const Document& doc = signed_doc->doc;
  const std::string signer = signed_doc->signers.front().subject_cn();
  std::string ack;
  if (doc.type() == "f2f.payment") {
    // The payer holds this payment as undelivered: the signed ack closes it there.
    auto a = sign_f2f_answer(doc, sha256(signed_doc->jws.payload), "", now_s);
    if (!a) return std::unexpected(a.error());
    ack = std::move(*a);
  }
  if (auto s = fits_total(st_.received_minor, *doc.amount()); !s) return std::unexpected(s.error());
  if (auto s = credit(*doc.amount()); !s) return std::unexpected(s.error());
  st_.received_minor[std::string(doc.amount()->currency().code())] += doc.amount()->minor();
  // Safety-critical: the note id joins the received set in the same state update as the credit.
  st_.received_notes.insert(doc.id(), doc.iat());
  log("receive", doc.id(), &*doc.amount(), true, signer, now_s);
  dirty_ = true;
  Json out{{"credited_minor", doc.amount()->minor()},
           {"currency", std::string(doc.amount()->currency().code())},
           {"payer", signer},
           {"note_id", doc.id()},
           {"balance_minor", balance(doc.amount()->currency().code())}};
  if (!ack.empty()) out["answer"] = ack;
  return json_bytes(out);
}

// A claim for the registry (DESIGN.md §7), signed only for a note this SE would
// accept now, so a terminal cannot make its SE claim notes it may not take.
Result<Bytes> Applet::claim_note(const Command& c, std::int64_t now_s) {
  auto j = json_data(c);
  if (!j) return std::unexpected(j.error());
  if (auto s = only_fields(*j, {"note"}); !s) return std::unexpected(s.error());
  auto signed_doc = check_incoming_note(*j, now_s);
  if (!signed_doc) return std::unexpected(signed_doc.error());
  // The same fields the record is checked against at RECEIVE NOTE.
  auto claim = sign_claim(registry::claim_fields_for(*signed_doc, st_.se_id), now_s);
  if (!claim) return claim;
  // The registry's record of this claim closes a face-to-face payment at its
  // payer as delivered (F2F CLOSE): from now on this SE never refuses it. The
  // host persists that before the claim leaves.
  if (signed_doc->doc.type() == "f2f.payment") {
    st_.claimed_notes.insert(signed_doc->doc.id(), signed_doc->doc.iat());
    dirty_ = true;
  }
  return claim;
}

}  // namespace zf::se
