// Face-to-face payment between two SEs, with no server (DESIGN.md §6.5,
// docs/se-apdu.md "Face-to-face payment").
//
// Payer terminal            payer SE                 payee SE          payee terminal
//                                                       <- F2F RECEIVE (be found, a while)
//   F2F PAY (amount, payee) -> hello ------------------>  checks, signs the transcript
//                             <- accept --------------
//   <- code, payee            checks, derives keys        (code on its display)
//   F2F SEND                -> debit, sign f2f.payment, persist
//                             pay (sealed) ------------>  checks, credits, persist
//                             <- ack | refused (sealed)
//   <- outcome                close the payment
//
// The payer's value is in flight from the debit until it holds the payee's
// signed ack (delivered) or refusal (the value comes back). If the link drops
// in between, the payment stays undelivered: it can be delivered later by
// any channel (the payee's ordinary receive path, with the registry's record)
// and comes back only on the payee's signed refusal. Never both, never neither.
#include "core/claims.h"
#include "se/applet.h"
#include "se/applet_internal.h"
#include "se/f2f.h"

namespace zf::se {
using namespace detail;

namespace {

Json peer_error(const Error& e) {
  Json m{{"t", "error"}, {"code", std::string(errc_name(e.code))}, {"detail", e.detail}};
  if (!e.field.empty()) m["field"] = e.field;
  return m;
}

// A peer's message: a JSON object of bounded size whose "t" is one of `types`.
Result<Json> peer_message(ByteView bytes, std::initializer_list<std::string_view> types) {
  auto j = parse_json_strict(to_string(bytes), {kMaxJoseBytes + 8192, 8});
  if (!j) return std::unexpected(j.error());
  if (!j->is_object() || !j->contains("t") || !(*j)["t"].is_string())
    return fail(Errc::bad_field, "a face-to-face message is a JSON object with a type", "t");
  const std::string t = (*j)["t"];
  for (auto want : types)
    if (t == want) return j;
  if (t == "error") {
    Error e{errc_from_name(j->value("code", "internal")), j->value("field", ""),
            "the payee's SE answered: " + j->value("detail", "")};
    return std::unexpected(e);
  }
  return fail(Errc::bad_field, "unexpected face-to-face message " + t, "t");
}

std::string digest_text(ByteView payload) { return b64url_encode(sha256(payload)); }

// The seq of one of this SE's own document ids (<se_id>:<seq>, as sign_next makes them).
std::int64_t seq_of(const std::string& own_id) { return std::stoll(own_id.substr(own_id.rfind(':') + 1)); }

}  // namespace

std::int64_t Applet::unreconciled(std::string_view currency) const {
  std::int64_t sum = 0;
  for (const auto& [id, e] : st_.f2f_unreconciled)
    if (e.at("currency").get<std::string>() == currency) sum += e.at("amount").get<std::int64_t>();
  return sum;
}

Status Applet::covers_spend(const Amount& a, bool face_to_face) const {
  if (auto s = covers(a); !s) return s;
  const std::string cur(a.currency().code());
  std::int64_t locked = unreconciled(cur);
  if (face_to_face) locked = std::max<std::int64_t>(0, locked - st_.f2f_spend_unreconciled_minor);
  if (balance(cur) - locked >= a.minor()) return {};
  auto held = Amount::of(cur, locked);
  return fail(Errc::unreconciled,
              (held ? held->to_string() : cur) +
                  " of this SE's balance was taken face to face and is not yet settled at the registry; go online "
                  "once (`zf wallet reconcile`) and it can be spent; nothing was debited",
              "amount");
}

Status Applet::f2f_can_take(const Amount& a) const {
  const std::string cur(a.currency().code());
  if (a.minor() > st_.f2f_max_payment_minor)
    return fail(Errc::limit_exceeded, "over this SE's maximum face-to-face payment", "amount");
  if (a.minor() > headroom(cur)) return fail(Errc::limit_exceeded, "would exceed the payee SE's maximum balance", "amount");
  if (static_cast<std::int64_t>(st_.f2f_unreconciled.size()) >= st_.f2f_max_unreconciled_count ||
      unreconciled(cur) + a.minor() > st_.f2f_max_unreconciled_minor)
    return fail(Errc::limit_exceeded,
                "the payee SE has taken as much face to face as it may before it settles online", "amount");
  return {};
}

Json Applet::f2f_info() const {
  Json undelivered = Json::array(), unrec = Json::array();
  for (const auto& [id, e] : st_.f2f_undelivered) {
    Json item = e;
    item["id"] = id;
    undelivered.push_back(std::move(item));
  }
  for (const auto& [id, e] : st_.f2f_unreconciled) {
    Json item = e;
    item.erase("digest");
    item["id"] = id;
    unrec.push_back(std::move(item));
  }
  Json out{{"receiving_until", receiving_until_}, {"undelivered", undelivered}, {"unreconciled", unrec}};
  if (f2f_in_) out["code"] = f2f_in_->code, out["payer"] = f2f_in_->peer_id;
  if (!f2f_last_.is_null()) out["last"] = f2f_last_;
  return out;
}

// ---- Payee: be found, then answer a payer.

Result<Bytes> Applet::f2f_receive(const Command& c, std::int64_t now_s) {
  if (auto s = require_user(); !s) return std::unexpected(s.error());
  auto j = json_data(c);
  if (!j) return std::unexpected(j.error());
  if (auto s = only_fields(*j, {"seconds"}); !s) return std::unexpected(s.error());
  std::int64_t seconds = 120;
  if (j->contains("seconds")) {
    auto v = get_int(*j, "seconds");
    if (!v) return std::unexpected(v.error());
    if (*v < 0 || *v > kMaxReceiveS) return fail(Errc::bad_field, "0 to 600 seconds (0 stops receiving)", "seconds");
    seconds = *v;
  }
  receiving_until_ = seconds == 0 ? 0 : now_s + seconds;
  f2f_in_.reset();
  if (seconds > 0) f2f_last_ = Json();
  f2f_code_.clear();
  return json_bytes(Json{{"se_id", st_.se_id}, {"receiving_until", receiving_until_}});
}

Bytes Applet::process_peer(ByteView message, std::int64_t now_s) {
  dirty_ = false;
  Result<Json> out = fail(Errc::bad_field, "unknown message");
  try {
    auto m = peer_message(message, {"hello", "pay"});
    if (!m)
      out = std::unexpected(m.error());
    else if ((*m)["t"] == "hello")
      out = peer_hello(*m, now_s);
    else
      out = peer_pay(*m, now_s);
  } catch (const std::exception& e) {
    out = fail(Errc::internal, e.what());
  }
  return json_bytes(out ? *out : peer_error(out.error()));
}

Result<Json> Applet::peer_hello(const Json& m, std::int64_t now_s) {
  if (auto s = require_active(); !s) return std::unexpected(s.error());
  if (now_s >= receiving_until_)
    return fail(Errc::not_receiving, st_.se_id + " is not taking face-to-face payments now; its owner starts that");
  // A new hello replaces a session that never got its payment (the payer
  // gave up, or the link dropped): no value is held by a session.
  if (auto s = only_fields(m, {"t", "from", "to", "cert", "pk", "nonce", "amount", "currency"}); !s)
    return std::unexpected(s.error());
  auto from = get_string(m, "from", 128);
  auto to = get_string(m, "to", 128);
  auto pem = get_string(m, "cert", 16 * 1024);
  auto cur = get_string(m, "currency", 8);
  for (auto* r : {&from, &to, &pem, &cur})
    if (!*r) return std::unexpected(r->error());
  auto minor = get_int(m, "amount");
  if (!minor) return std::unexpected(minor.error());
  auto amount = Amount::of(*cur, *minor);
  if (!amount) return std::unexpected(amount.error());
  if (amount->minor() <= 0) return fail(Errc::amount_zero, "amount must be positive", "amount");
  if (*to != st_.se_id) return fail(Errc::misaddressed, "this is " + st_.se_id + ", not " + *to, "to");
  if (*from == st_.se_id) return fail(Errc::misaddressed, "an SE does not pay itself", "from");
  auto point = get_b64(m, "pk", 64);
  if (!point) return std::unexpected(point.error());
  auto nonce = get_b64(m, "nonce", f2f::kNonceBytes);
  if (!nonce) return std::unexpected(nonce.error());
  // The payer is a certified SE under our root, not revoked on the last CRL this SE installed.
  auto certs = certificates_from_pem(*pem);
  if (!certs || certs->empty()) return fail(Errc::cert_malformed, "the payer's certificate", "cert");
  auto cert = verifier(now_s).verify({certs->front()}, Role::secure_element);
  if (!cert) return std::unexpected(cert.error());
  if (cert->subject_cn() != *from)
    return fail(Errc::issuer_mismatch, "the certificate is " + cert->subject_cn() + "'s, not " + *from + "'s", "cert");
  if (auto s = f2f_can_take(*amount); !s) return std::unexpected(s.error());
  auto theirs = sc::decode_point(*point);
  if (!theirs) return std::unexpected(theirs.error());

  auto eph = PrivateKey::generate(SigAlg::ES256);
  if (!eph) return std::unexpected(eph.error());
  auto mine = sc::encode_point(eph->public_key());
  if (!mine) return std::unexpected(mine.error());
  F2fRun run;
  run.peer_id = *from;
  run.peer_cert = std::move(*cert);
  run.payer_point = std::move(*point);
  run.payee_point = std::move(*mine);
  run.payer_nonce = std::move(*nonce);
  run.payee_nonce = random_bytes(f2f::kNonceBytes);
  run.transcript = f2f::transcript(run.payer_point, run.payee_point, *from, st_.se_id, run.payer_nonce, run.payee_nonce);
  auto z = ecdh(*eph, *theirs);
  if (!z) return std::unexpected(z.error());
  auto keys = f2f::derive(z->view(), run.transcript);
  if (!keys) return std::unexpected(keys.error());
  auto sig = st_.key->sign(f2f::signed_part(run.transcript, "payee"));
  if (!sig) return std::unexpected(sig.error());
  run.to_payee = std::move(keys->to_payee);
  run.to_payer = std::move(keys->to_payer);
  run.code = keys->code;
  run.amount_minor = amount->minor();
  run.currency = *cur;
  run.started = now_s;
  run.received_floor = st_.received_notes.floor();
  run.ephemeral = std::make_unique<PrivateKey>(std::move(*eph));
  Json reply{{"t", "accept"},
             {"cert", st_.chain.front().pem()},
             {"pk", b64url_encode(run.payee_point)},
             {"nonce", b64url_encode(run.payee_nonce)},
             {"sig", b64url_encode(*sig)}};
  f2f_code_ = run.code;
  f2f_in_ = std::move(run);
  return reply;
}

Result<std::string> Applet::sign_f2f_answer(const Document& payment, ByteView digest, const std::string& reason,
                                            std::int64_t now_s) {
  Json p{{"type", reason.empty() ? "f2f.ack" : "f2f.refusal"},
         {"payment_id", payment.id()},
         {"payment_digest", b64url_encode(digest)},
         {"payer", payment.str("payer")},
         {"payee", st_.se_id}};
  if (!reason.empty()) p["reason"] = reason.substr(0, 256);
  return sign_unsequenced(std::move(p), reason.empty() ? "a" : "r", now_s);
}

Applet::F2fTaken Applet::f2f_taken(const Document& payment) const {
  const std::string& id = payment.id();
  // Before the received set: a refused id is in both.
  if (st_.f2f_refused.contains(id)) return F2fTaken::refused;
  // Held as unsettled means credited here, even once the received set has
  // forgotten the id: a restored payer's second document under the same id
  // must not be taken for a new payment (crediting it would replace the entry,
  // and the first value would pass as settled with no record).
  if (st_.received_notes.contains(id) || st_.f2f_unreconciled.count(id) != 0) return F2fTaken::credited;
  if (st_.received_notes.seen(id, payment.iat())) return F2fTaken::unknown;
  return F2fTaken::no;
}

Result<std::string> Applet::refuse_f2f(const Document& payment, ByteView digest, const std::string& reason,
                                       std::int64_t now_s) {
  // The registry's record of this SE's claim closes the payment at its payer
  // as delivered; a refusal too would leave the value in nobody's balance.
  if (st_.claimed_notes.seen(payment.id(), payment.iat()))
    return fail(Errc::conflict,
                "this SE claimed " + payment.id() +
                    " at the registry (or cannot tell that it did not): it takes it with the registry's record "
                    "(RECEIVE NOTE) and signs no refusal for it; nothing changed",
                "payment");
  auto refusal = sign_f2f_answer(payment, digest, reason, now_s);
  if (!refusal) return refusal;
  st_.received_notes.insert(payment.id(), payment.iat());
  // Safety-critical: f2f_refused must hold every refused id the received set
  // holds. Dropping first the ids the received set forgot (they are refused as
  // seen anyway) keeps it within the received set's size, so it never has to
  // forget one it still needs.
  st_.f2f_refused.retain([&](const std::string& id) { return st_.received_notes.contains(id); });
  st_.f2f_refused.insert(payment.id());
  log("f2f.refused", payment.id(), nullptr, true, payment.issuer(), now_s);
  dirty_ = true;
  return refusal;
}

Result<Json> Applet::peer_pay(const Json& m, std::int64_t now_s) {
  if (!f2f_in_) return fail(Errc::wrong_state, "no face-to-face session: the payer starts with hello");
  // One payment per session: whatever happens next, this session is used up.
  F2fRun run = std::move(*f2f_in_);
  f2f_in_.reset();
  f2f_code_.clear();
  if (now_s - run.started >= kF2fSessionS) return fail(Errc::expired, "the face-to-face session timed out");
  if (auto s = only_fields(m, {"t", "sig", "box"}); !s) return std::unexpected(s.error());
  auto sig = get_b64(m, "sig", 64);
  if (!sig) return std::unexpected(sig.error());
  if (auto s = run.peer_cert->public_key().verify(f2f::signed_part(run.transcript, "payer"), *sig); !s)
    return fail(Errc::bad_signature, "the payer did not sign this session", "sig");
  auto box = get_string(m, "box", 2 * kMaxJoseBytes);
  if (!box) return std::unexpected(box.error());
  auto plain = f2f::open(run.to_payee.view(), run.transcript, *box);
  if (!plain) return std::unexpected(plain.error());
  auto signed_doc = open_signed_document(to_string(plain->view()), verifier(now_s), Role::secure_element);
  if (!signed_doc) return std::unexpected(signed_doc.error());
  const Document& doc = signed_doc->doc;
  if (doc.type() != "f2f.payment") return fail(Errc::unknown_type, "expected an f2f.payment", "type");
  if (doc.issuer() != run.peer_id || doc.str("payer") != run.peer_id)
    return fail(Errc::issuer_mismatch, "the payment is not signed by the SE this session is with", "payer");
  if (doc.str("payee") != st_.se_id) return fail(Errc::misaddressed, "the payment is for another SE", "payee");
  if (doc.str("session") != b64url_encode(run.transcript))
    return fail(Errc::receipt_mismatch, "the payment was made for another session", "session");
  if (doc.amount()->minor() != run.amount_minor || doc.amount()->currency().code() != run.currency)
    return fail(Errc::receipt_mismatch, "the payment is not for the amount the session agreed", "amount");
  auto jws = jws_parse(to_string(plain->view()));
  if (!jws) return std::unexpected(jws.error());
  const Bytes digest = sha256(jws->payload);
  auto seal = [&](const std::string& t, const std::string& answer) -> Result<Json> {
    auto sealed = f2f::seal(run.to_payer.view(), run.transcript, as_bytes(answer));
    if (!sealed) return std::unexpected(sealed.error());
    return Json{{"t", t}, {"box", *sealed}};
  };
  // Answered before (the answer was lost): the same answer again, nothing moves.
  Status ok;
  switch (f2f_taken(doc)) {
    case F2fTaken::refused: {
      auto refusal = sign_f2f_answer(doc, digest, "refused by the payee", now_s);
      if (!refusal) return std::unexpected(refusal.error());
      return seal("refused", *refusal);
    }
    case F2fTaken::credited: {
      auto ack = sign_f2f_answer(doc, digest, "", now_s);
      if (!ack) return std::unexpected(ack.error());
      return seal("ack", *ack);
    }
    case F2fTaken::unknown:
      // Dated at or before what the received set already forgot when this
      // session began, by a payer whose clock is behind: it was never taken
      // here, but it cannot be taken now either. The refusal gives the payer
      // its value back; without it the payment could never be ended (nothing
      // that cannot tell it apart may answer for it later).
      if (doc.iat() > run.received_floor)
        return fail(Errc::replayed, "the payment is older than what this SE remembers receiving", "iat");
      ok = fail(Errc::replayed, "the payment is dated before what this SE can tell apart (the payer's clock is behind)",
                "iat");
      break;
    case F2fTaken::no:
      ok = f2f_can_take(*doc.amount());
      if (ok) ok = fits_total(st_.received_minor, *doc.amount());
      break;
  }
  if (!ok) {
    // Refused for good: the id is marked so this SE never credits it, and the
    // signed refusal gives the payer its value back.
    auto refusal = refuse_f2f(doc, digest, ok.error().detail, now_s);
    if (!refusal) return std::unexpected(refusal.error());
    f2f_last_ = Json{{"id", doc.id()}, {"payer", run.peer_id}, {"code", run.code}, {"outcome", "refused"}};
    return seal("refused", *refusal);
  }
  auto ack = sign_f2f_answer(doc, digest, "", now_s);
  if (!ack) return std::unexpected(ack.error());
  if (auto s = credit(*doc.amount()); !s) return std::unexpected(s.error());
  // Safety-critical: the id, the credit and the unreconciled entry are one state update.
  st_.received_notes.insert(doc.id(), doc.iat());
  st_.received_minor[std::string(doc.amount()->currency().code())] += doc.amount()->minor();
  st_.f2f_unreconciled[doc.id()] = Json{{"payer", run.peer_id},
                                        {"seq", *doc.seq()},
                                        {"amount", doc.amount()->minor()},
                                        {"currency", std::string(doc.amount()->currency().code())},
                                        {"iat", doc.iat()},
                                        {"digest", b64url_encode(digest)}};
  log("f2f.receive", doc.id(), &*doc.amount(), true, run.peer_id, now_s);
  f2f_last_ = Json{{"id", doc.id()}, {"payer", run.peer_id}, {"code", run.code}, {"outcome", "received"}};
  dirty_ = true;
  return seal("ack", *ack);
}

// ---- Payer: agree a session, then pay over it.

Result<Bytes> Applet::f2f_pay(const Command& c, std::int64_t now_s) {
  if (auto s = require_user(); !s) return std::unexpected(s.error());
  auto j = json_data(c);
  if (!j) return std::unexpected(j.error());
  if (auto s = only_fields(*j, {"amount", "currency", "payee"}); !s) return std::unexpected(s.error());
  auto payee = get_string(*j, "payee", 128);
  if (!payee) return std::unexpected(payee.error());
  Json probe{{"type", "f2f.payment"}, {"amount", j->value("amount", Json())}, {"currency", j->value("currency", Json())},
             {"payer", st_.se_id}, {"payee", *payee}, {"session", "probe"}};
  auto d = draft(probe, now_s);
  if (!d) return std::unexpected(d.error());
  if (*payee == st_.se_id) return fail(Errc::misaddressed, "cannot pay yourself", "payee");
  if (d->amount().minor() > st_.max_payment_minor || d->amount().minor() > st_.f2f_max_payment_minor)
    return fail(Errc::limit_exceeded, "over this SE's maximum face-to-face payment", "amount");
  if (auto s = covers_spend(d->amount(), true); !s) return std::unexpected(s.error());
  if (st_.f2f_undelivered.size() >= kMaxUndelivered)
    return fail(Errc::limit_exceeded,
                std::to_string(kMaxUndelivered) +
                    " face-to-face payments of this SE have no answer from their payee yet; deliver or close them "
                    "first; nothing was debited",
                "undelivered");
  if (!peer_link_) return fail(Errc::unavailable, "this SE has no face-to-face link", "link");
  f2f_out_.reset();
  peer_link_->close();

  auto eph = PrivateKey::generate(SigAlg::ES256);
  if (!eph) return std::unexpected(eph.error());
  auto mine = sc::encode_point(eph->public_key());
  if (!mine) return std::unexpected(mine.error());
  F2fRun run;
  run.peer_id = *payee;
  run.payer_point = std::move(*mine);
  run.payer_nonce = random_bytes(f2f::kNonceBytes);
  run.amount_minor = d->amount().minor();
  run.currency = d->currency();
  run.started = now_s;
  Json hello{{"t", "hello"},
             {"from", st_.se_id},
             {"to", *payee},
             {"cert", st_.chain.front().pem()},
             {"pk", b64url_encode(run.payer_point)},
             {"nonce", b64url_encode(run.payer_nonce)},
             {"amount", run.amount_minor},
             {"currency", run.currency}};
  auto answer = peer_link_->exchange(*payee, json_bytes(hello));
  auto fail_link = [&](Error e) -> Result<Bytes> {
    peer_link_->close();
    e.detail += "; nothing was debited";
    return std::unexpected(e);
  };
  if (!answer) return fail_link(answer.error());
  auto m = peer_message(*answer, {"accept"});
  if (!m) return fail_link(m.error());
  if (auto s = only_fields(*m, {"t", "cert", "pk", "nonce", "sig"}); !s) return fail_link(s.error());
  auto pem = get_string(*m, "cert", 16 * 1024);
  auto point = get_b64(*m, "pk", 64);
  auto nonce = get_b64(*m, "nonce", f2f::kNonceBytes);
  auto sig = get_b64(*m, "sig", 64);
  if (!pem) return fail_link(pem.error());
  if (!point) return fail_link(point.error());
  if (!nonce) return fail_link(nonce.error());
  if (!sig) return fail_link(sig.error());
  // The payee is the SE the user asked for, certified under our root and not on our CRL.
  auto certs = certificates_from_pem(*pem);
  if (!certs || certs->empty()) return fail_link(Error{Errc::cert_malformed, "cert", "the payee's certificate"});
  auto cert = verifier(now_s).verify({certs->front()}, Role::secure_element);
  if (!cert) return fail_link(cert.error());
  if (cert->subject_cn() != *payee)
    return fail_link(Error{Errc::misaddressed, "payee",
                           "the SE that answered is " + cert->subject_cn() + ", not " + *payee});
  run.payee_point = std::move(*point);
  run.payee_nonce = std::move(*nonce);
  run.transcript = f2f::transcript(run.payer_point, run.payee_point, st_.se_id, *payee, run.payer_nonce, run.payee_nonce);
  if (auto s = cert->public_key().verify(f2f::signed_part(run.transcript, "payee"), *sig); !s)
    return fail_link(Error{Errc::bad_signature, "sig", "the payee's SE did not sign this session"});
  auto theirs = sc::decode_point(run.payee_point);
  if (!theirs) return fail_link(theirs.error());
  auto z = ecdh(*eph, *theirs);
  if (!z) return fail_link(z.error());
  auto keys = f2f::derive(z->view(), run.transcript);
  if (!keys) return fail_link(keys.error());
  run.to_payee = std::move(keys->to_payee);
  run.to_payer = std::move(keys->to_payer);
  run.code = keys->code;
  run.peer_cert = std::move(*cert);
  run.ephemeral = std::make_unique<PrivateKey>(std::move(*eph));
  Json out{{"payee", *payee},
           {"payee_user", run.peer_cert->user_id()},
           {"code", run.code},
           {"amount_minor", run.amount_minor},
           {"currency", run.currency}};
  f2f_out_ = std::move(run);
  return json_bytes(out);
}

Result<Bytes> Applet::f2f_cancel(const Command&, std::int64_t) {
  const bool had = f2f_out_.has_value();
  f2f_out_.reset();
  if (peer_link_) peer_link_->close();
  return json_bytes(Json{{"cancelled", had}});
}

Result<Bytes> Applet::f2f_send(const Command& c, std::int64_t now_s) {
  if (auto s = require_user(); !s) return std::unexpected(s.error());
  if (!c.data.empty()) {
    auto j = json_data(c);
    if (!j) return std::unexpected(j.error());
    if (auto s = only_fields(*j, {}); !s) return std::unexpected(s.error());
  }
  if (!f2f_out_) return fail(Errc::wrong_state, "no face-to-face session: F2F PAY first; nothing was debited");
  if (now_s - f2f_out_->started >= kF2fSessionS) {
    f2f_out_.reset();
    if (peer_link_) peer_link_->close();
    return fail(Errc::expired, "the face-to-face session timed out: start again; nothing was debited");
  }
  if (!peer_link_) return fail(Errc::unavailable, "this SE has no face-to-face link", "link");
  F2fRun run = std::move(*f2f_out_);
  f2f_out_.reset();
  Json payload{{"type", "f2f.payment"},
               {"amount", run.amount_minor},
               {"currency", run.currency},
               {"payer", st_.se_id},
               {"payee", run.peer_id},
               {"session", b64url_encode(run.transcript)}};
  auto d = draft(std::move(payload), now_s);
  if (!d) return std::unexpected(d.error());
  if (auto s = fits_total(st_.sent_minor, d->amount()); !s) return std::unexpected(s.error());
  auto sig = st_.key->sign(f2f::signed_part(run.transcript, "payer"));
  if (!sig) return std::unexpected(sig.error());
  auto jws = sign_value_document(*d, Spend::face_to_face, now_s);
  if (!jws) return std::unexpected(jws.error());
  const std::string id = st_.se_id + ":" + std::to_string(st_.seq);
  auto parsed = jws_parse(*jws);
  if (!parsed) return std::unexpected(parsed.error());
  const std::string digest = digest_text(parsed->payload);
  st_.sent_minor[d->currency()] += d->amount().minor();
  st_.f2f_undelivered[id] = Json{{"payee", run.peer_id}, {"amount", run.amount_minor}, {"currency", run.currency},
                                 {"iat", now_s},         {"digest", digest},          {"payment", *jws}};
  log("f2f.pay", id, &d->amount(), false, run.peer_id, now_s);
  dirty_ = true;
  // Safety-critical: the debit and the undelivered payment are durable before
  // the payment leaves; otherwise a crash here would keep the value on both sides.
  if (auto s = peer_link_->persist(); !s) {
    peer_link_->close();
    return std::unexpected(s.error());
  }
  auto box = f2f::seal(run.to_payee.view(), run.transcript, as_bytes(*jws));
  Result<Bytes> answer = box ? peer_link_->exchange(run.peer_id, json_bytes(Json{{"t", "pay"},
                                                                                 {"sig", b64url_encode(*sig)},
                                                                                 {"box", *box}}))
                             : Result<Bytes>(std::unexpected(box.error()));
  peer_link_->close();
  Json undelivered{{"outcome", "undelivered"},
                   {"id", id},
                   {"payee", run.peer_id},
                   {"amount_minor", run.amount_minor},
                   {"currency", run.currency},
                   {"balance_minor", balance(run.currency)}};
  if (!answer) {
    undelivered["detail"] = answer.error().detail;
    return json_bytes(undelivered);
  }
  auto m = peer_message(*answer, {"ack", "refused"});
  if (!m) {
    undelivered["detail"] = m.error().detail;
    return json_bytes(undelivered);
  }
  auto box_in = get_string(*m, "box", 2 * kMaxJoseBytes);
  auto plain = box_in ? f2f::open(run.to_payer.view(), run.transcript, *box_in)
                      : Result<SecretBytes>(std::unexpected(box_in.error()));
  if (!plain) {
    undelivered["detail"] = plain.error().detail;
    return json_bytes(undelivered);
  }
  auto applied = apply_f2f_answer(id, to_string(plain->view()), now_s);
  if (!applied) {
    undelivered["detail"] = applied.error().detail;
    return json_bytes(undelivered);
  }
  (*applied)["code"] = run.code;
  return json_bytes(*applied);
}

Result<Json> Applet::apply_f2f_answer(const std::string& id, std::string_view text, std::int64_t now_s) {
  auto it = st_.f2f_undelivered.find(id);
  if (it == st_.f2f_undelivered.end())
    return fail(Errc::not_found, "this SE has no undelivered payment " + id + "; nothing changed", "id");
  const Json& e = it->second;
  auto signed_doc = open_signed_document(text, verifier(now_s), Role::secure_element);
  if (!signed_doc) return std::unexpected(signed_doc.error());
  const Document& doc = signed_doc->doc;
  const std::string payee = e.at("payee").get<std::string>();
  if (doc.type() != "f2f.ack" && doc.type() != "f2f.refusal")
    return fail(Errc::unknown_type, "expected the payee's f2f.ack or f2f.refusal", "type");
  if (doc.issuer() != payee || doc.str("payee") != payee)
    return fail(Errc::issuer_mismatch, "the answer is not signed by the payee " + payee, "issuer");
  if (doc.str("payment_id") != id || doc.str("payer") != st_.se_id ||
      doc.str("payment_digest") != e.at("digest").get<std::string>())
    return fail(Errc::receipt_mismatch, "the answer is about another payment", "payment_id");
  auto amount = Amount::of(e.at("currency").get<std::string>(), e.at("amount").get<std::int64_t>());
  if (!amount) return std::unexpected(amount.error());
  Json out{{"id", id}, {"payee", payee}, {"amount_minor", amount->minor()}, {"currency", std::string(amount->currency().code())}};
  if (doc.type() == "f2f.ack") {
    st_.f2f_undelivered.erase(it);
    dirty_ = true;
    out["outcome"] = "delivered";
    out["balance_minor"] = balance(amount->currency().code());
    return out;
  }
  // The payee will never credit it: the value comes back here, once.
  if (amount->minor() > headroom(amount->currency().code()))
    return fail(Errc::limit_exceeded,
                "taking " + amount->to_string() +
                    " back would pass this SE's maximum balance; deposit or pay first, then close it again (nothing "
                    "is lost)",
                "amount");
  if (auto s = fits_total(st_.reclaimed_minor, *amount); !s) return std::unexpected(s.error());
  if (auto s = credit(*amount); !s) return std::unexpected(s.error());
  // The refusal lives only in the payee's state, which its host could restore
  // from before it: the value that came back is unsettled until this SE has
  // claimed its own payment at the registry (F2F RECONCILE), so that a
  // restored payee's later claim finds it held, and a payee that claimed it
  // first makes it come out again (F2F SETTLE). Until then it is spent on no
  // online payment or deposit, as value taken face to face is.
  const std::int64_t seq = seq_of(id);
  // Safety-critical: the undelivered entry leaves, and the unsettled one
  // comes, in the same state update as the credit.
  st_.f2f_unreconciled[id] = Json{{"payer", st_.se_id},
                                  {"payee", payee},
                                  {"seq", seq},
                                  {"amount", amount->minor()},
                                  {"currency", std::string(amount->currency().code())},
                                  {"iat", e.at("iat")},
                                  {"digest", e.at("digest")},
                                  {"refund", true}};
  st_.f2f_undelivered.erase(it);
  st_.reclaimed_minor[std::string(amount->currency().code())] += amount->minor();
  log("f2f.refund", id, &*amount, true, payee, now_s);
  dirty_ = true;
  out["outcome"] = "refused";
  out["reason"] = doc.str("reason");
  out["balance_minor"] = balance(amount->currency().code());
  return out;
}

// An undelivered payment closes on the payee's signed answer, however it came
// back, or on the registry's record that the payee claimed it (delivered by
// the online receive path).
Result<Bytes> Applet::f2f_close(const Command& c, std::int64_t now_s) {
  if (auto s = require_user(); !s) return std::unexpected(s.error());
  auto j = json_data(c);
  if (!j) return std::unexpected(j.error());
  if (auto s = only_fields(*j, {"id", "answer", "record"}); !s) return std::unexpected(s.error());
  auto id = get_string(*j, "id", 128);
  if (!id) return std::unexpected(id.error());
  if (j->contains("answer") == j->contains("record"))
    return fail(Errc::missing_field, "give the payee's answer or the registry's record, one of them", "answer");
  if (j->contains("answer")) {
    auto text = get_string(*j, "answer", kMaxJoseBytes);
    if (!text) return std::unexpected(text.error());
    auto out = apply_f2f_answer(*id, *text, now_s);
    if (!out) return std::unexpected(out.error());
    return json_bytes(*out);
  }
  auto it = st_.f2f_undelivered.find(*id);
  if (it == st_.f2f_undelivered.end())
    return fail(Errc::not_found, "this SE has no undelivered payment " + *id + "; nothing changed", "id");
  auto text = get_string(*j, "record", kMaxJoseBytes);
  if (!text) return std::unexpected(text.error());
  auto record = record_about(*text, *id, st_.se_id, seq_of(*id), "f2f.payment", now_s);
  if (!record) return std::unexpected(record.error());
  const Json& e = it->second;
  auto digest = b64url_decode(e.at("digest").get<std::string>());
  if (!digest) return std::unexpected(digest.error());
  if (!record->won_by(e.at("payee").get<std::string>(), *digest))
    return fail(Errc::record_mismatch, "the record does not show the payee holding this payment", "record");
  Json out{{"id", *id}, {"payee", e.at("payee")}, {"outcome", "delivered"},
           {"amount_minor", e.at("amount")}, {"currency", e.at("currency")}};
  st_.f2f_undelivered.erase(it);
  dirty_ = true;
  return json_bytes(out);
}

// The payee refuses a payment it was given another way and never credited:
// the id is marked so it is never credited here, and the signed refusal
// gives the payer its value back. One it did credit gets its ack again.
Result<Bytes> Applet::f2f_refuse(const Command& c, std::int64_t now_s) {
  if (auto s = require_user(); !s) return std::unexpected(s.error());
  auto j = json_data(c);
  if (!j) return std::unexpected(j.error());
  if (auto s = only_fields(*j, {"payment", "reason"}); !s) return std::unexpected(s.error());
  auto text = get_string(*j, "payment", kMaxJoseBytes);
  if (!text) return std::unexpected(text.error());
  std::string reason = "refused by the payee";
  if (j->contains("reason")) {
    auto r = get_string(*j, "reason", 200);
    if (!r) return std::unexpected(r.error());
    if (!r->empty()) reason = *r;
  }
  auto signed_doc = open_signed_document(*text, verifier(now_s), Role::secure_element);
  if (!signed_doc) return std::unexpected(signed_doc.error());
  const Document& doc = signed_doc->doc;
  if (doc.type() != "f2f.payment") return fail(Errc::unknown_type, "expected an f2f.payment", "type");
  if (doc.str("payee") != st_.se_id) return fail(Errc::misaddressed, "the payment is for another SE", "payee");
  // The answer names the payer: only the SE that signed the payment.
  if (doc.str("payer") != doc.issuer())
    return fail(Errc::issuer_mismatch, "the payer is not the signing SE; nothing was signed", "payer");
  auto jws = jws_parse(*text);
  if (!jws) return std::unexpected(jws.error());
  const Bytes digest = sha256(jws->payload);
  switch (f2f_taken(doc)) {
    case F2fTaken::refused: {
      // Refused before (the refusal was lost): refused again, nothing changes.
      auto refusal = sign_f2f_answer(doc, digest, reason, now_s);
      if (!refusal) return std::unexpected(refusal.error());
      return json_bytes(Json{{"outcome", "refused"}, {"answer", *refusal}});
    }
    case F2fTaken::credited: {
      auto ack = sign_f2f_answer(doc, digest, "", now_s);
      if (!ack) return std::unexpected(ack.error());
      return json_bytes(Json{{"outcome", "received"}, {"answer", *ack}});
    }
    case F2fTaken::unknown:
      return fail(Errc::replayed,
                  "the payment is older than what this SE remembers receiving: it cannot tell whether it took it, so "
                  "it signs neither an ack nor a refusal",
                  "iat");
    case F2fTaken::no:
      break;
  }
  auto refusal = refuse_f2f(doc, digest, reason, now_s);
  if (!refusal) return std::unexpected(refusal.error());
  return json_bytes(Json{{"outcome", "refused"}, {"answer", *refusal}});
}

// ---- Payee: settle what it took offline on the registry's record.

Result<Bytes> Applet::f2f_reconcile(const Command& c, std::int64_t now_s) {
  if (auto s = require_user(); !s) return std::unexpected(s.error());
  auto j = json_data(c);
  if (!j) return std::unexpected(j.error());
  if (auto s = only_fields(*j, {"id"}); !s) return std::unexpected(s.error());
  auto id = get_string(*j, "id", 128);
  if (!id) return std::unexpected(id.error());
  auto it = st_.f2f_unreconciled.find(*id);
  if (it == st_.f2f_unreconciled.end())
    return fail(Errc::not_found, "this SE has no unsettled face-to-face payment " + *id, "id");
  const Json& e = it->second;
  auto digest = b64url_decode(e.at("digest").get<std::string>());
  if (!digest) return std::unexpected(digest.error());
  registry::ClaimFields f{*id, e.at("payer").get<std::string>(), e.at("seq").get<std::int64_t>(), "f2f.payment",
                          st_.se_id, std::move(*digest), std::nullopt};
  return sign_claim(f, now_s);
}

Result<Bytes> Applet::f2f_settle(const Command& c, std::int64_t now_s) {
  if (auto s = require_user(); !s) return std::unexpected(s.error());
  auto j = json_data(c);
  if (!j) return std::unexpected(j.error());
  if (auto s = only_fields(*j, {"id", "record"}); !s) return std::unexpected(s.error());
  auto id = get_string(*j, "id", 128);
  if (!id) return std::unexpected(id.error());
  auto text = get_string(*j, "record", kMaxJoseBytes);
  if (!text) return std::unexpected(text.error());
  auto it = st_.f2f_unreconciled.find(*id);
  if (it == st_.f2f_unreconciled.end())
    return fail(Errc::not_found, "this SE has no unsettled face-to-face payment " + *id + "; nothing changed", "id");
  const Json& e = it->second;
  const std::string payer = e.at("payer").get<std::string>();
  auto record = record_about(*text, *id, payer, e.at("seq").get<std::int64_t>(), "f2f.payment", now_s);
  if (!record) return std::unexpected(record.error());
  auto digest = b64url_decode(e.at("digest").get<std::string>());
  if (!digest) return std::unexpected(digest.error());
  auto amount = Amount::of(e.at("currency").get<std::string>(), e.at("amount").get<std::int64_t>());
  if (!amount) return std::unexpected(amount.error());
  Json out{{"id", *id}, {"payer", payer}, {"amount_minor", amount->minor()},
           {"currency", std::string(amount->currency().code())}};
  if (e.value("refund", false)) {
    out["refund"] = true;
    out["payee"] = e.at("payee");
  }
  if (record->won_by(st_.se_id, *digest)) {
    st_.f2f_unreconciled.erase(it);
    dirty_ = true;
    out["outcome"] = "settled";
    return json_bytes(out);
  }
  // The registry holds another document under the payer's (se, seq), or this
  // one for someone else: the payer's SE was cloned or restored. The value it
  // made is taken back out of this SE (it could not have left: unsettled value
  // is spent only face to face, within f2f_spend_unreconciled).
  //
  // Only two records say so: a seq_reused answer to this SE's own claim (it
  // echoes the claimant and its digest), or a record naming another SE as the
  // holder. A seq_reused answer to someone else's claim says nothing about who
  // holds the id (this SE may), and one naming this SE as the holder says it
  // holds it: neither takes anything out.
  const bool ours = record->processor == st_.se_id;
  const bool shows_spent_elsewhere = record->status == registry::RecordStatus::seq_reused
                                         ? ours && ct_equal(record->result_digest, *digest)
                                         : !ours;
  if (!shows_spent_elsewhere)
    return fail(Errc::record_mismatch,
                "the record does not show another SE holding this payment, nor answer this SE's claim of it; nothing "
                "changed",
                "record");
  const std::string cur(amount->currency().code());
  const std::int64_t removed = std::min(amount->minor(), balance(cur));
  st_.balances[cur] -= removed;
  st_.revoked_minor[cur] += removed;
  st_.f2f_unreconciled.erase(it);
  if (auto r = Amount::of(cur, removed); r && removed > 0) log("f2f.revoked", *id, &*r, false, payer, now_s);
  dirty_ = true;
  out["outcome"] = "revoked";
  out["removed_minor"] = removed;
  if (out.value("refund", false))  // (e went with the entry)
    out["detail"] = "the registry gave the payment to " + record->processor +
                    ", which received it after all (its refusal came from a state its host has since restored)";
  else
    out["detail"] = payer + " also spent this value elsewhere (its SE was cloned or restored): " +
                    (record->status == registry::RecordStatus::seq_reused ? "another document holds its sequence number"
                                                                          : "the registry gave the payment to " + record->processor);
  out["balance_minor"] = balance(cur);
  return json_bytes(out);
}

}  // namespace zf::se
