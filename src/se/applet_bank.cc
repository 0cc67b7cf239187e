// Operations a bank answers: top-up, deposit and the account query.
#include <algorithm>

#include "se/applet.h"
#include "se/applet_internal.h"

namespace zf::se {
using namespace detail;

// ---- Account transfer (DESIGN.md §6.7): money moves between two accounts
// at a bank; no e-cash moves, so nothing here changes the SE's balance. The
// SE signs what the person confirmed with the PIN, for a short while, and
// spends a seq: the bank claims the order at the registry like a top-up.

namespace {
// How long a bank may act on a signed order: one held back longer is refused as expired.
constexpr std::int64_t kOrderLifetimeS = 600;
}  // namespace

// A bank order of `type` from the command's `fields` (the person confirmed it
// with the PIN): valid kOrderLifetimeS, spending a seq, moving no e-cash;
// `check` refuses what the SE will not sign. Answers {<key>: JWS, id, exp}.
Result<Bytes> Applet::sign_bank_order(const Command& c, std::int64_t now_s, std::string_view type,
                                      std::initializer_list<std::string_view> fields, std::string_view key,
                                      const std::function<Status(const Document&)>& check) {
  if (auto s = require_user(); !s) return std::unexpected(s.error());
  auto j = json_data(c);
  if (!j) return std::unexpected(j.error());
  auto payload = take_fields(*j, fields);
  if (!payload) return std::unexpected(payload.error());
  (*payload)["type"] = std::string(type);
  (*payload)["exp"] = now_s + kOrderLifetimeS;
  auto d = draft(std::move(*payload), now_s);
  if (!d) return std::unexpected(d.error());
  if (auto s = check(d->doc); !s) return std::unexpected(s.error());
  auto jws = sign_value_document(*d, Spend::none, now_s);
  if (!jws) return std::unexpected(jws.error());
  const std::string id = st_.se_id + ":" + std::to_string(st_.seq);
  std::string counterparty = d->doc.str("to");
  if (counterparty.empty()) counterparty = d->doc.str("payee_account");
  if (counterparty.empty()) counterparty = d->doc.str("hold_id");
  log(std::string(type), id, &d->amount(), false, counterparty, now_s);
  st_.log.back().amount_minor = 0;  // no e-cash moves
  dirty_ = true;
  return json_bytes(Json{{std::string(key), *jws}, {"id", id}, {"exp", now_s + kOrderLifetimeS}});
}

Result<Bytes> Applet::transfer_order(const Command& c, std::int64_t now_s) {
  return sign_bank_order(c, now_s, "transfer.order", {"amount", "currency", "bank", "from", "to", "process_no"},
                         "order", [](const Document& d) -> Status {
                           if (d.str("from") == d.str("to"))
                             return fail(Errc::same_account,
                                         "the order names " + d.str("from") + " on both sides; nothing was signed", "to");
                           return {};
                         });
}

// ---- Controlled transfer, a hold (DESIGN.md §6.8): the payer's SE signs the
// request, the payee's SE adds its signature to the same payload, and the bank
// freezes the amount until the payer confirms, the payee releases, or
// release_at passes.

Result<Bytes> Applet::hold_request(const Command& c, std::int64_t now_s) {
  return sign_bank_order(
      c, now_s, "hold.request",
      {"amount", "currency", "bank", "payer_account", "payee_account", "release_at", "process_no"}, "request",
      [now_s](const Document& d) -> Status {
        if (d.str("payer_account") == d.str("payee_account"))
          return fail(Errc::same_account,
                      "the hold names " + d.str("payer_account") + " on both sides; nothing was signed",
                      "payee_account");
        if (d.json().at("release_at").get<std::int64_t>() <= now_s)
          return fail(Errc::bad_field, "release_at is not in the future; nothing was signed", "release_at");
        return {};
      });
}

// A further signature over another SE's document, exactly its payload bytes:
// the payee's consent to a hold.request (which carries the payer's signature
// alone), or a co-manager's to a joint.spend (which carries the signatures
// gathered so far, not this SE's). The SE checks every signature and
// certificate on it and that it is still valid, and signs nothing else. No
// seq: the document's seq is its issuer's, and one registry claim covers it.
Result<Bytes> Applet::cosign(const Command& c, std::int64_t now_s) {
  if (auto s = require_user(); !s) return std::unexpected(s.error());
  auto j = json_data(c);
  if (!j) return std::unexpected(j.error());
  if (auto s = only_fields(*j, {"document"}); !s) return std::unexpected(s.error());
  auto text = get_string(*j, "document", kMaxJoseBytes);
  if (!text) return std::unexpected(text.error());
  auto signed_doc = open_signed_document(*text, verifier(now_s), Role::secure_element);
  if (!signed_doc) return std::unexpected(signed_doc.error());
  const Document& doc = signed_doc->doc;
  const bool hold = doc.type() == "hold.request";
  if (!hold && doc.type() != "joint.spend")
    return fail(Errc::unknown_type, "only a hold.request or a joint.spend is cosigned", "type");
  if (hold && signed_doc->signers.size() != 1)
    return fail(Errc::bad_header, "the request must carry the payer's signature alone", "signatures");
  for (const auto& signer : signed_doc->signers)
    if (signer.subject_cn() == st_.se_id)
      return fail(Errc::bad_header,
                  hold ? "this SE signed the request as the payer; the payee's SE cosigns" : "this SE has signed it already",
                  "signatures");
  if (auto s = doc.check_time(now_s); !s) return std::unexpected(s.error());
  KeySigner signer(*st_.key);
  auto jws = jws_sign_compact(signed_doc->jws.payload, JwsSigner{&signer, st_.chain});
  if (!jws) return std::unexpected(jws.error());
  log(hold ? "hold.cosign" : "joint.cosign", doc.id(), &*doc.amount(), true,
      hold ? doc.str("payer_account") : doc.str("account"), now_s);
  st_.log.back().amount_minor = 0;  // no e-cash moves
  dirty_ = true;
  Json out = doc.json();
  for (const char* k : {"v", "nonce", "iat", "exp", "seq"}) out.erase(k);
  out["signature"] = *jws;
  out["signers"] = static_cast<std::int64_t>(signed_doc->signers.size() + 1);
  return json_bytes(out);
}

// ---- Joint accounts (DESIGN.md §6.9): a co-manager asks for a spend from the
// joint account; the others add their signatures with COSIGN; the bank acts
// when enough distinct co-managers signed. A top-up goes into the SE that
// asked, so it is pending here exactly as its own top-up request would be.

namespace {
// How long co-managers have to gather their signatures for a joint transfer.
constexpr std::int64_t kJointLifetimeS = 24 * 3600;
}  // namespace

Result<Bytes> Applet::joint_request(const Command& c, std::int64_t now_s) {
  if (auto s = require_user(); !s) return std::unexpected(s.error());
  auto j = json_data(c);
  if (!j) return std::unexpected(j.error());
  auto payload = take_fields(*j, {"amount", "currency", "bank", "account", "action", "to", "process_no"});
  if (!payload) return std::unexpected(payload.error());
  (*payload)["type"] = "joint.spend";
  const bool topup = payload->value("action", "") == "topup";
  if (topup) {
    // Into this SE, like a top-up request: no expiry, since the SE holds it
    // pending until the bank's receipt or refusal, whenever that comes.
    (*payload)["to"] = st_.se_id;
  } else {
    (*payload)["exp"] = now_s + kJointLifetimeS;
  }
  auto d = draft(std::move(*payload), now_s);
  if (!d) return std::unexpected(d.error());
  const std::string action = d->doc.str("action");
  if (action != "topup" && action != "transfer")
    return fail(Errc::bad_field, "action is transfer or topup", "action");
  if (!topup && d->doc.str("to") == d->doc.str("account"))
    return fail(Errc::same_account, "the spend names " + d->doc.str("account") + " on both sides; nothing was signed", "to");
  if (topup && d->amount().minor() > headroom(d->currency()))
    return fail(Errc::limit_exceeded, "top-up would exceed the SE's maximum balance", "amount");
  if (topup && st_.pending_topups.size() >= kMaxPending)
    return fail(Errc::wrong_state, "too many top-ups awaiting receipts; retry them first");
  auto jws = sign_value_document(*d, Spend::none, now_s);
  if (!jws) return std::unexpected(jws.error());
  const std::string id = st_.se_id + ":" + std::to_string(st_.seq);
  if (topup) {
    Json stored = d->payload;
    stored["id"] = id;
    st_.pending_topups[id] = stored;
  }
  log("joint.spend", id, &d->amount(), false, topup ? d->doc.str("bank") : d->doc.str("to"), now_s);
  st_.log.back().amount_minor = 0;  // nothing moves until the bank acts
  dirty_ = true;
  Json out{{"spend", *jws}, {"id", id}};
  if (!topup) out["exp"] = now_s + kJointLifetimeS;
  return json_bytes(out);
}

// True for "<this SE's id>:<seq>", an id this SE signed under: a prefix is not
// enough, since another SE's id may begin with ours and a colon.
bool Applet::own_document_id(std::string_view id) const {
  const std::string prefix = st_.se_id + ":";
  if (!id.starts_with(prefix) || id.size() == prefix.size() || id.size() > prefix.size() + 19) return false;
  return std::all_of(id.begin() + static_cast<std::ptrdiff_t>(prefix.size()), id.end(),
                     [](char c) { return c >= '0' && c <= '9'; });
}

// The payer pays a hold it requested: the hold id is this SE's own request
// (id "<se id>:<seq>"), so an SE never confirms someone else's hold.
Result<Bytes> Applet::hold_confirm(const Command& c, std::int64_t now_s) {
  return sign_bank_order(c, now_s, "hold.confirm", {"hold_id", "bank", "amount", "currency", "process_no"}, "confirm",
                         [this](const Document& d) -> Status {
                           if (!own_document_id(d.str("hold_id")))
                             return fail(Errc::not_owner, "only the SE that requested a hold confirms it", "hold_id");
                           return {};
                         });
}

// The payee gives a hold back to the payer: never one this SE requested.
Result<Bytes> Applet::hold_release(const Command& c, std::int64_t now_s) {
  return sign_bank_order(c, now_s, "hold.release", {"hold_id", "bank", "amount", "currency", "process_no"}, "release",
                         [this](const Document& d) -> Status {
                           if (own_document_id(d.str("hold_id")))
                             return fail(Errc::not_owner, "the payer confirms its own hold; the payee releases it",
                                         "hold_id");
                           return {};
                         });
}

// ---- Top-up (DESIGN.md §6.2)

Result<Bytes> Applet::topup_request(const Command& c, std::int64_t now_s) {
  if (auto s = require_user(); !s) return std::unexpected(s.error());
  auto j = json_data(c);
  if (!j) return std::unexpected(j.error());
  auto payload = take_fields(*j, {"amount", "currency", "bank", "account", "process_no"});
  if (!payload) return std::unexpected(payload.error());
  (*payload)["type"] = "topup.request";
  auto d = draft(std::move(*payload), now_s);
  if (!d) return std::unexpected(d.error());
  if (d->amount().minor() > headroom(d->currency()))
    return fail(Errc::limit_exceeded, "top-up would exceed the SE's maximum balance", "amount");
  if (st_.pending_topups.size() >= kMaxPending)
    return fail(Errc::wrong_state, "too many top-ups awaiting receipts; retry them first");
  auto jws = sign_value_document(*d, Spend::none, now_s);
  if (!jws) return std::unexpected(jws.error());
  std::string id = st_.se_id + ":" + std::to_string(st_.seq);
  Json stored = d->payload;
  stored["id"] = id;
  st_.pending_topups[id] = stored;
  log("topup.request", id, &d->amount(), true, d->doc.str("bank"), now_s);
  st_.log.back().amount_minor = 0;  // no value moves until the receipt
  dirty_ = true;
  return json_bytes(Json{{"request", *jws}, {"id", id}});
}

// A bank's receipt for one of our pending documents (top-up request, deposit
// note): signed by a custody certificate of our CA and by the bank the
// document named, of type `type`, for this SE, answering (`key_field`) an id
// that is pending and not yet done, with the document's amount, currency,
// account and bank, and a known status. Nothing changes here.
Result<Applet::BankReceipt> Applet::open_bank_receipt(const Command& c, std::int64_t now_s, std::string_view type,
                                                      std::string_view key_field, const RecentIds& done,
                                                      const std::map<std::string, Json>& pending) {
  auto j = json_data(c);
  if (!j) return std::unexpected(j.error());
  if (auto s = only_fields(*j, {"receipt"}); !s) return std::unexpected(s.error());
  auto text = get_string(*j, "receipt", kMaxJoseBytes);
  if (!text) return std::unexpected(text.error());
  auto signed_doc = open_signed_document(*text, verifier(now_s), Role::custody);
  if (!signed_doc) return std::unexpected(signed_doc.error());
  const Document& doc = signed_doc->doc;
  const std::string field(key_field);
  if (doc.type() != type) return fail(Errc::unknown_type, "expected a " + std::string(type), "type");
  std::string answers = doc.str(field);
  if (done.contains(answers)) return fail(Errc::replayed, "receipt already applied", field);
  auto it = pending.find(answers);
  if (it == pending.end()) return fail(Errc::receipt_mismatch, "nothing pending with this id", field);
  if (doc.str("se") != st_.se_id) return fail(Errc::misaddressed, "receipt is for another SE", "se");
  for (const char* f : {"amount", "currency", "account", "bank"})
    if (doc.json().at(f) != it->second.at(f)) return fail(Errc::receipt_mismatch, "receipt differs from what we signed", f);
  if (signed_doc->signers.front().subject_cn() != it->second.at("bank").get<std::string>())
    return fail(Errc::receipt_mismatch, "receipt signed by another bank", "bank");
  std::string status = doc.str("status");
  if (!status.empty() && status != "credited" && status != "refused")
    return fail(Errc::bad_field, "unknown receipt status", "status");
  return BankReceipt{doc, std::move(answers), std::move(status)};
}

Result<Bytes> Applet::topup_receipt(const Command& c, std::int64_t now_s) {
  if (auto s = require_user(); !s) return std::unexpected(s.error());
  auto receipt = open_bank_receipt(c, now_s, "topup.receipt", "request_id", st_.applied_topups, st_.pending_topups);
  if (!receipt) return std::unexpected(receipt.error());
  const Document& doc = receipt->doc;
  const std::string& request_id = receipt->answers;
  auto it = st_.pending_topups.find(request_id);
  const std::string& status = receipt->status;
  if (status == "refused") {
    // The bank consumed the request without moving money: drop it, credit nothing.
    st_.pending_topups.erase(it);
    st_.applied_topups.insert(request_id);
    log("topup.refused", doc.id(), nullptr, true, doc.str("bank"), now_s);
    dirty_ = true;
    return json_bytes(Json{{"refused", request_id}, {"reason", doc.str("reason")}});
  }
  if (auto s = credit(*doc.amount()); !s) return std::unexpected(s.error());
  // Safety-critical: the request id moves to the applied set in the same state update as the credit.
  st_.pending_topups.erase(it);
  st_.applied_topups.insert(request_id);
  log("topup", doc.id(), &*doc.amount(), true, doc.str("bank"), now_s);
  dirty_ = true;
  return json_bytes(Json{{"credited_minor", doc.amount()->minor()},
                         {"currency", std::string(doc.amount()->currency().code())},
                         {"balance_minor", balance(doc.amount()->currency().code())}});
}

// ---- Deposit (§6.4)

Result<Bytes> Applet::deposit_note(const Command& c, std::int64_t now_s) {
  if (auto s = require_user(); !s) return std::unexpected(s.error());
  auto j = json_data(c);
  if (!j) return std::unexpected(j.error());
  auto payload = take_fields(*j, {"amount", "currency", "bank", "account", "process_no"});
  if (!payload) return std::unexpected(payload.error());
  (*payload)["type"] = "deposit.note";
  auto d = draft(std::move(*payload), now_s);
  if (!d) return std::unexpected(d.error());
  if (st_.pending_deposits.size() >= kMaxPending)
    return fail(Errc::wrong_state, "too many deposits awaiting receipts; retry them first");
  auto jws = sign_value_document(*d, Spend::online, now_s);
  if (!jws) return std::unexpected(jws.error());
  std::string id = st_.se_id + ":" + std::to_string(st_.seq);
  Json stored = d->payload;
  stored["id"] = id;
  st_.pending_deposits[id] = stored;
  log("deposit.note", id, &d->amount(), false, d->doc.str("bank"), now_s);
  dirty_ = true;
  return json_bytes(Json{{"note", *jws}, {"id", id}});
}

Result<Bytes> Applet::deposit_receipt(const Command& c, std::int64_t now_s) {
  if (auto s = require_user(); !s) return std::unexpected(s.error());
  auto receipt = open_bank_receipt(c, now_s, "deposit.receipt", "note_id", st_.settled_deposits, st_.pending_deposits);
  if (!receipt) return std::unexpected(receipt.error());
  const Document& doc = receipt->doc;
  const std::string& note_id = receipt->answers;
  auto it = st_.pending_deposits.find(note_id);
  const std::string& status = receipt->status;
  if (status == "refused") {
    // The bank refused the note and consumed it: its value comes back here, once.
    if (auto s = credit(*doc.amount()); !s) return std::unexpected(s.error());
    st_.pending_deposits.erase(it);
    st_.settled_deposits.insert(note_id);
    log("deposit.refund", doc.id(), &*doc.amount(), true, doc.str("bank"), now_s);
    dirty_ = true;
    return json_bytes(Json{{"settled", note_id},
                           {"refunded_minor", doc.amount()->minor()},
                           {"reason", doc.str("reason")},
                           {"balance_minor", balance(doc.amount()->currency().code())}});
  }
  st_.pending_deposits.erase(it);
  st_.settled_deposits.insert(note_id);
  log("deposit", doc.id(), &*doc.amount(), false, doc.str("bank"), now_s);
  st_.log.back().amount_minor = 0;  // the value left when the note was signed
  dirty_ = true;
  return json_bytes(Json{{"settled", note_id}});
}

Result<Bytes> Applet::sign_query(const Command& c, std::int64_t now_s) {
  if (auto s = require_user(); !s) return std::unexpected(s.error());
  auto j = json_data(c);
  if (!j) return std::unexpected(j.error());
  auto payload = take_fields(*j, {"account", "bank"});
  if (!payload) return std::unexpected(payload.error());
  (*payload)["type"] = "account.query";
  (*payload)["exp"] = now_s + 300;
  auto jws = sign_unsequenced(*payload, "q", now_s);
  if (!jws) return std::unexpected(jws.error());
  return json_bytes(Json{{"query", *jws}});
}

}  // namespace zf::se
