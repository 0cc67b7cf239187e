#include "core/claims.h"

namespace zf::registry {
namespace {

template <class T>
std::unexpected<Error> up(const Result<T>& r) {
  return std::unexpected(r.error());
}

}  // namespace

std::string_view record_status_name(RecordStatus s) {
  switch (s) {
    case RecordStatus::claimed:
      return "claimed";
    case RecordStatus::already_processed:
      return "already_processed";
    case RecordStatus::seq_reused:
      return "seq_reused";
  }
  return "claimed";
}

Result<RecordStatus> record_status_from_name(std::string_view name) {
  for (auto s : {RecordStatus::claimed, RecordStatus::already_processed, RecordStatus::seq_reused})
    if (record_status_name(s) == name) return s;
  return fail(Errc::bad_field, "unknown record status '" + std::string(name) + "'", "status");
}

ClaimFields claim_fields_for(const SignedDocument& doc, std::string processor,
                             std::optional<Bytes> result_digest) {
  ClaimFields f;
  f.doc_id = doc.doc.id();
  f.doc_issuer = doc.doc.issuer();
  f.doc_seq = doc.doc.seq();
  f.doc_type = doc.doc.type();
  f.processor = std::move(processor);
  f.result_digest = result_digest ? std::move(*result_digest) : sha256(doc.jws.payload);
  f.doc_exp = doc.doc.exp();
  return f;
}

Json claim_payload(const ClaimFields& fields, std::int64_t now) {
  Json p{{"type", "claim"},
         {"v", 1},
         {"id", "claim:" + b64url_encode(random_bytes(16))},
         {"issuer", fields.processor},
         {"iat", now},
         {"nonce", new_nonce()},
         {"doc_id", fields.doc_id},
         {"doc_issuer", fields.doc_issuer},
         {"doc_type", fields.doc_type},
         {"processor", fields.processor},
         {"result_digest", b64url_encode(fields.result_digest)}};
  if (fields.doc_seq) p["doc_seq"] = *fields.doc_seq;
  if (fields.doc_exp) p["doc_exp"] = *fields.doc_exp;
  return p;
}

Result<std::string> sign_claim(const ClaimFields& fields, const JwsSigner& signer,
                               std::int64_t now) {
  if (fields.result_digest.size() != 32)
    return fail(Errc::bad_field, "must be 32 bytes", "result_digest");
  return sign_document(claim_payload(fields, now), signer);
}

bool RecordView::won_by(std::string_view processor_id, ByteView digest) const {
  return status == RecordStatus::claimed && processor == processor_id &&
         ct_equal(result_digest, digest);
}

Result<RecordView> open_record(std::string_view record_jws, const CertVerifier& verifier,
                               std::string_view registry_id) {
  auto d = open_signed_document(record_jws, verifier, Role::registry);
  if (!d) return up(d);
  const Document& doc = d->doc;
  if (doc.type() != "record")
    return fail(Errc::unknown_type, "expected a record, got " + doc.type(), "type");
  if (d->signers.size() != 1)
    return fail(Errc::bad_header, "exactly one signature expected", "signatures");
  RecordView r;
  r.signer = d->signers.front();
  if (r.signer.subject_cn() != doc.issuer())
    return fail(Errc::bad_field, "the record's issuer is not its signer", "issuer");
  if (!registry_id.empty() && doc.issuer() != registry_id)
    return fail(Errc::cert_untrusted, "signed by registry " + doc.issuer(), "issuer");
  auto status = record_status_from_name(doc.str("status"));
  if (!status) return up(status);
  auto digest = b64url_decode(doc.str("result_digest"));
  if (!digest) return up(digest);
  r.status = *status;
  r.id = doc.id();
  r.registry = doc.issuer();
  r.iat = doc.iat();
  r.doc_id = doc.str("doc_id");
  r.processor = doc.str("processor");
  r.result_digest = std::move(*digest);
  const Json& j = doc.json();
  if (j.contains("doc_issuer")) r.doc_issuer = j["doc_issuer"].get<std::string>();
  if (j.contains("doc_seq")) r.doc_seq = j["doc_seq"].get<std::int64_t>();
  if (j.contains("doc_type")) r.doc_type = j["doc_type"].get<std::string>();
  if (j.contains("claimed_at")) r.claimed_at = j["claimed_at"].get<std::int64_t>();
  if (j.contains("doc_exp")) r.doc_exp = j["doc_exp"].get<std::int64_t>();
  return r;
}

Status check_record_answers(const RecordView& record, const ClaimFields& claim) {
  if (record.doc_id != claim.doc_id)
    return fail(Errc::receipt_mismatch, "the record is about " + record.doc_id, "doc_id");
  // A refusal must be about our own claim, or it could be a replayed answer to someone else's.
  if (record.status == RecordStatus::seq_reused &&
      (record.processor != claim.processor || record.result_digest != claim.result_digest ||
       record.doc_issuer != claim.doc_issuer || record.doc_seq != claim.doc_seq))
    return fail(Errc::receipt_mismatch, "the refusal answers another claim", "processor");
  return {};
}

}  // namespace zf::registry
