#include "core/document.h"

#include <algorithm>

namespace zf {
namespace {

using K = FieldKind;

// Common payload fields every type carries (DESIGN.md §4).
const std::vector<FieldSpec> kCommon = {
    {"type", K::text},          {"v", K::uint},           {"id", K::id},
    {"issuer", K::id},          {"seq", K::uint, false},  {"iat", K::uint},
    {"exp", K::uint, false},    {"nonce", K::nonce, false},  {"process_no", K::id, false},
};

const std::vector<DocTypeSpec> kTypes = {
    {"topup.request", 1, true,
     {{"amount", K::minor}, {"currency", K::currency}, {"account", K::id}, {"bank", K::id}}},
    // status "refused" (with a reason): the bank consumed the request and moved nothing.
    {"topup.receipt", 1, false,
     {{"request_id", K::id}, {"se", K::id}, {"amount", K::minor}, {"currency", K::currency},
      {"account", K::id}, {"bank", K::id}, {"status", K::id, false}, {"reason", K::id, false}}},
    {"payment.note", 1, true,
     {{"amount", K::minor}, {"currency", K::currency}, {"payer", K::id}, {"payee", K::id}}},
    {"payment.ack", 1, true, {{"note_id", K::id}, {"payer", K::id}, {"payee", K::id}}},
    {"deposit.note", 1, true,
     {{"amount", K::minor}, {"currency", K::currency}, {"account", K::id}, {"bank", K::id}}},
    // status "refused" (with a reason) returns the note's value to the SE that signed it.
    {"deposit.receipt", 1, false,
     {{"note_id", K::id}, {"se", K::id}, {"amount", K::minor}, {"currency", K::currency},
      {"account", K::id}, {"bank", K::id}, {"status", K::id, false}, {"reason", K::id, false}}},
    {"f2f.payment", 1, true,
     {{"amount", K::minor}, {"currency", K::currency}, {"payer", K::id}, {"payee", K::id},
      {"session", K::id}}},
    // A payee SE's answer to a face-to-face payment: it credited the payment
    // (ack), or never will (refusal: the value goes back to the payer, once).
    // Unsequenced: neither moves value at the registry.
    {"f2f.ack", 1, false,
     {{"payment_id", K::id}, {"payment_digest", K::id}, {"payer", K::id}, {"payee", K::id}}},
    {"f2f.refusal", 1, false,
     {{"payment_id", K::id}, {"payment_digest", K::id}, {"payer", K::id}, {"payee", K::id},
      {"reason", K::text}}},
    // An escrow note (DESIGN.md §6.6): the amount and the code travel sealed
    // (a JWE whose payee key the payer's SE releases later); the payee is in
    // the clear so that an SE refuses a note for another before any key exists.
    {"cpay.note", 1, true, {{"payer", K::id}, {"payee", K::id}, {"sealed", K::object}}},
    // The payee's refund of an escrow note; unsequenced: the payer's claim of its note moves the value.
    {"cpay.refund", 1, false, {{"note_id", K::id}, {"payer", K::id}, {"payee", K::id}}},
    {"transfer.order", 1, true,
     {{"amount", K::minor}, {"currency", K::currency}, {"from", K::id}, {"to", K::id},
      {"bank", K::id}}},
    // status "refused" (with a reason): the bank consumed the order and moved nothing.
    {"transfer.receipt", 1, false,
     {{"order_id", K::id}, {"se", K::id}, {"amount", K::minor}, {"currency", K::currency},
      {"from", K::id}, {"to", K::id}, {"bank", K::id}, {"status", K::id, false},
      {"reason", K::id, false}}},
    // A controlled transfer (DESIGN.md §6.8): one payload signed by the payer's
    // SE (the issuer, first) and the payee's; the bank gives the money back to
    // the payer at release_at unless the hold ended before.
    {"hold.request", 1, true,
     {{"amount", K::minor}, {"currency", K::currency}, {"payer_account", K::id},
      {"payee_account", K::id}, {"bank", K::id}, {"release_at", K::uint}}},
    // The payer's SE pays a hold to the payee; the payee's SE gives it back.
    // Each names the amount it ends, which the bank checks against the hold.
    {"hold.confirm", 1, true,
     {{"hold_id", K::id}, {"bank", K::id}, {"amount", K::minor}, {"currency", K::currency}}},
    {"hold.release", 1, true,
     {{"hold_id", K::id}, {"bank", K::id}, {"amount", K::minor}, {"currency", K::currency}}},
    // status: held, confirmed, released, expired, or refused (with a reason:
    // the request was consumed and nothing moved). doc_id: the document answered.
    {"hold.receipt", 1, false,
     {{"hold_id", K::id}, {"status", K::id}, {"bank", K::id}, {"doc_id", K::id},
      {"amount", K::minor}, {"currency", K::currency}, {"payer_account", K::id},
      {"payee_account", K::id}, {"release_at", K::uint}, {"reason", K::id, false}}},
    // A spend from a joint account (DESIGN.md §6.9): one payload signed by the
    // co-manager who asks (the issuer, first) and then by others, each over the
    // same bytes. action "transfer": to another account at the bank; "topup":
    // into the issuer's SE (`to` is its id).
    {"joint.spend", 1, true,
     {{"amount", K::minor}, {"currency", K::currency}, {"account", K::id}, {"bank", K::id},
      {"action", K::id}, {"to", K::id}}},
    // Moves no value, so it spends no seq (src/se/applet.cc sign_unsequenced).
    {"account.query", 1, false, {{"account", K::id}, {"bank", K::id}}},
    // A party's signed request to read the registry's record of doc_id: the
    // claimant or the document's issuer (docs/registry-api.md "Who may read a record").
    {"record.query", 1, false, {{"doc_id", K::id}}},
    // A processor's claim to the registry (DESIGN.md §7): "I am acting on doc_id".
    {"claim", 1, false,
     {{"doc_id", K::id}, {"doc_issuer", K::id}, {"doc_seq", K::uint, false}, {"doc_type", K::id},
      {"processor", K::id}, {"result_digest", K::digest}, {"doc_exp", K::uint, false}}},
    // The registry's signed answer to a claim or a query. status: "claimed" (this
    // claim won), "already_processed" (an earlier claim holds the id), "seq_reused"
    // (another document already used (doc_issuer, doc_seq): clone or rollback).
    {"record", 1, false,
     {{"doc_id", K::id}, {"processor", K::id}, {"result_digest", K::digest}, {"status", K::id},
      {"doc_issuer", K::id, false}, {"doc_seq", K::uint, false}, {"doc_type", K::id, false},
      {"claimed_at", K::uint, false}, {"doc_exp", K::uint, false}}},
};

bool is_id(std::string_view s) {
  if (s.empty() || s.size() > 128) return false;
  return std::all_of(s.begin(), s.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
           c == '_' || c == ':' || c == '-';
  });
}

Status check_field(const Json& obj, const FieldSpec& spec) {
  std::string name(spec.name);
  auto it = obj.find(spec.name);
  if (it == obj.end()) {
    if (spec.required) return fail(Errc::missing_field, "required", name);
    return {};
  }
  const Json& v = *it;
  switch (spec.kind) {
    case K::id:
      if (!v.is_string()) return fail(Errc::bad_field, "must be a string", name);
      if (!is_id(v.get_ref<const std::string&>()))
        return fail(Errc::bad_field, "must be 1..128 chars of [A-Za-z0-9._:-]", name);
      return {};
    case K::text:
      if (!v.is_string() || v.get_ref<const std::string&>().size() > 256)
        return fail(Errc::bad_field, "must be a string of at most 256 bytes", name);
      return {};
    case K::minor:
      // Sign and range are checked with the currency, as an Amount.
      if (!v.is_number_integer()) return fail(Errc::bad_amount, "must be an integer of minor units", name);
      return {};
    case K::currency:
      if (!v.is_string()) return fail(Errc::bad_currency, "must be a string", name);
      if (auto c = Currency::parse(v.get_ref<const std::string&>()); !c) return std::unexpected(c.error());
      return {};
    case K::uint:
      if (!v.is_number_integer() || (v.is_number_integer() && !v.is_number_unsigned() && v.get<std::int64_t>() < 0))
        return fail(Errc::bad_field, "must be a non-negative integer", name);
      if (v.is_number_unsigned() && v.get<std::uint64_t>() > static_cast<std::uint64_t>(INT64_MAX))
        return fail(Errc::bad_field, "integer out of range", name);
      return {};
    case K::digest: {
      if (!v.is_string()) return fail(Errc::bad_field, "must be a string", name);
      auto b = b64url_decode(v.get_ref<const std::string&>());
      if (!b || b->size() != 32) return fail(Errc::bad_field, "must be base64url of 32 bytes", name);
      return {};
    }
    case K::object:
      if (!v.is_object()) return fail(Errc::bad_field, "must be an object", name);
      return {};
    case K::nonce: {
      if (!v.is_string()) return fail(Errc::bad_field, "must be a string", name);
      const auto& text = v.get_ref<const std::string&>();
      auto b = b64url_decode(text);
      if (text.size() != 22 || !b || b->size() != 16)
        return fail(Errc::bad_field, "must be base64url of 16 random bytes", name);
      return {};
    }
  }
  return fail(Errc::internal, "unknown field kind", name);
}

}  // namespace

const std::vector<DocTypeSpec>& doc_types() { return kTypes; }

const DocTypeSpec* find_doc_type(std::string_view type) {
  for (const auto& t : kTypes)
    if (t.type == type) return &t;
  return nullptr;
}

Result<Document> Document::from_json(const Json& payload) {
  if (!payload.is_object()) return fail(Errc::bad_field, "payload must be a JSON object");
  auto type = get_string(payload, "type", 64);
  if (!type) return std::unexpected(type.error());
  const DocTypeSpec* spec = find_doc_type(*type);
  if (!spec) return fail(Errc::unknown_type, "unknown document type '" + *type + "'", "type");
  auto v = get_int(payload, "v");
  if (!v) return std::unexpected(v.error());
  if (*v != spec->version)
    return fail(Errc::unknown_version, "unsupported version " + std::to_string(*v) + " of " + *type, "v");
  // Unknown fields are refused so two readers never disagree on what was signed.
  for (const auto& item : payload.items()) {
    // A plain reference, not a structured binding: clang < 16 cannot capture bindings.
    const std::string& key = item.key();
    bool known = std::any_of(kCommon.begin(), kCommon.end(), [&](const auto& f) { return f.name == key; }) ||
                 std::any_of(spec->fields.begin(), spec->fields.end(), [&](const auto& f) { return f.name == key; });
    if (!known) return fail(Errc::unknown_field, "field not defined for " + *type, key);
  }
  for (const auto& f : kCommon) {
    FieldSpec req = f;
    // What an SE sequences is claimed at the registry, whose record carries the
    // payload's digest: the nonce makes that digest impossible to guess.
    if ((f.name == "seq" || f.name == "nonce") && spec->se_issued) req.required = true;
    if (auto s = check_field(payload, req); !s) return std::unexpected(s.error());
  }
  for (const auto& f : spec->fields)
    if (auto s = check_field(payload, f); !s) return std::unexpected(s.error());

  Document doc;
  doc.json_ = payload;
  doc.type_ = *type;
  doc.v_ = static_cast<int>(*v);
  doc.id_ = payload["id"].get<std::string>();
  doc.issuer_ = payload["issuer"].get<std::string>();
  doc.iat_ = payload["iat"].get<std::int64_t>();
  if (payload.contains("seq")) doc.seq_ = payload["seq"].get<std::int64_t>();
  if (payload.contains("exp")) doc.exp_ = payload["exp"].get<std::int64_t>();
  if (payload.contains("process_no")) doc.process_no_ = payload["process_no"].get<std::string>();
  if (payload.contains("amount")) {
    const Json& a = payload["amount"];
    if (a.is_number_unsigned() && a.get<std::uint64_t>() > static_cast<std::uint64_t>(Amount::kMaxMinor))
      return fail(Errc::amount_overflow, "amount exceeds maximum", "amount");
    auto amount = Amount::of(payload["currency"].get<std::string>(), a.get<std::int64_t>());
    if (!amount) return std::unexpected(amount.error());
    if (amount->is_zero()) return fail(Errc::amount_zero, "amount must be positive", "amount");
    doc.amount_ = *amount;
  }
  return doc;
}

Result<Document> Document::parse(std::string_view payload_text) {
  auto j = parse_json_strict(payload_text, {kMaxJoseBytes, 8});
  if (!j) return std::unexpected(j.error());
  return from_json(*j);
}

std::string Document::str(std::string_view field) const {
  auto it = json_.find(field);
  return it != json_.end() && it->is_string() ? it->get<std::string>() : std::string{};
}

Status Document::check_time(std::int64_t now_s, std::int64_t skew_s) const {
  if (iat_ > now_s + skew_s) return fail(Errc::not_yet_valid, "issued in the future", "iat");
  if (exp_ && *exp_ <= now_s) return fail(Errc::expired, "document expired", "exp");
  return {};
}

Result<SignedDocument> open_signed_document(std::string_view jws_text, const CertVerifier& verifier,
                                            Role role) {
  auto jws = jws_parse(jws_text);
  if (!jws) return std::unexpected(jws.error());
  auto signers = jws_verify(*jws, verifier, role);
  if (!signers) return std::unexpected(signers.error());
  auto doc = Document::parse(to_string(jws->payload));
  if (!doc) return std::unexpected(doc.error());
  // Safety-critical (DESIGN.md §7): a document an SE signs is bound to that SE.
  // Without this one certified SE could sign under another's ids, and the
  // registry would then raise a clone alert against the innocent one.
  const bool se_type = find_doc_type(doc->type())->se_issued;
  if (se_type && role != Role::secure_element)
    return fail(Errc::cert_wrong_role, "a " + doc->type() + " is signed by a secure element", "x5c");
  if (role == Role::secure_element) {
    const std::string signer = signers->front().subject_cn();
    if (doc->issuer() != signer)
      return fail(Errc::issuer_mismatch, "issuer " + doc->issuer() + " is not the signing SE " + signer, "issuer");
    // Sequenced ids are "<se>:<seq>": the (se, seq) pair the registry keys on.
    // Unsequenced documents (claims, queries) carry random ids nobody can collide with.
    if (se_type && doc->id() != signer + ":" + std::to_string(*doc->seq()))
      return fail(Errc::issuer_mismatch, "id " + doc->id() + " is not <issuer>:<seq> of the signing SE", "id");
  }
  return SignedDocument{std::move(*jws), std::move(*doc), std::move(*signers)};
}

std::string new_nonce() { return b64url_encode(random_bytes(16)); }

Result<std::string> sign_document(const Json& payload, const JwsSigner& signer) {
  // Validate the exact text being signed the way open_signed_document will (size and depth
  // limits included): a signed note that no receiver can open would strand its value.
  std::string text = dump_json(payload);
  auto doc = Document::parse(text);
  if (!doc) return std::unexpected(doc.error());
  auto jws = jws_sign_compact(as_bytes(text), signer, "zf+jws");
  if (jws && jws->size() > kMaxJoseBytes)
    return fail(Errc::too_large,
                "signed document larger than " + std::to_string(kMaxJoseBytes) + " bytes");
  return jws;
}

}  // namespace zf
