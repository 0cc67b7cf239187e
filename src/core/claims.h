// Registry claims and records as processors see them (DESIGN.md §7; docs/registry-api.md):
// build and sign a `claim`, and open the registry's signed `record` answer.
// Pure functions in core: banks, terminals, the SE applet and the registry share them.
#pragma once

#include <cstdint>
#include <ctime>
#include <optional>
#include <string>
#include <string_view>

#include "core/document.h"

namespace zf::registry {

// The status a `record` carries.
enum class RecordStatus {
  claimed,            // the document id is held by `processor` (this claim, or an earlier one)
  already_processed,  // another claim holds the id; `processor` names the winner
  seq_reused,         // another document already used (doc_issuer, doc_seq): refused
};
std::string_view record_status_name(RecordStatus s);
Result<RecordStatus> record_status_from_name(std::string_view name);

// What a processor claims: "I, `processor`, act on document `doc_id` with this result".
struct ClaimFields {
  std::string doc_id;
  std::string doc_issuer;
  std::optional<std::int64_t> doc_seq;  // required for documents an SE signs
  std::string doc_type;
  std::string processor;  // must be the CN of the certificate that signs the claim
  Bytes result_digest;    // 32 bytes; see docs/registry-api.md for what to put here
  // The document's own expiry, when it has one (payment notes): the registry
  // lets its processor claim it only before, and its issuer reclaim it only after.
  std::optional<std::int64_t> doc_exp;
};

// The claim fields for a verified document. The result digest defaults to the
// SHA-256 of the document's payload (stable across retries of the same document).
ClaimFields claim_fields_for(const SignedDocument& doc, std::string processor,
                             std::optional<Bytes> result_digest = std::nullopt);

// A `claim` payload: id "claim:<128-bit random>", issuer = processor, iat = now.
Json claim_payload(const ClaimFields& fields, std::int64_t now);
// Builds, validates and signs a claim as compact JWS. `signer.chain` is the
// processor's chain [custody or secure-element certificate, root].
Result<std::string> sign_claim(const ClaimFields& fields, const JwsSigner& signer,
                               std::int64_t now = std::time(nullptr));

// A verified registry record.
struct RecordView {
  RecordStatus status = RecordStatus::claimed;
  std::string id;
  std::string registry;  // issuer = the registry certificate's CN
  std::int64_t iat = 0;
  std::string doc_id;
  std::string processor;
  Bytes result_digest;
  std::optional<std::string> doc_issuer;
  std::optional<std::int64_t> doc_seq;
  std::optional<std::string> doc_type;
  std::optional<std::int64_t> claimed_at;
  std::optional<std::int64_t> doc_exp;
  Certificate signer{nullptr};

  // True when the record says `processor` holds the id with `digest`: go ahead.
  bool won_by(std::string_view processor_id, ByteView digest) const;
};

// Verifies a record: JWS signature, chain to the verifier's root with role
// registry, revocation if the verifier has a CRL, type `record`, one signature,
// issuer = signer CN, and (if `registry_id` is given) that registry
// (cert_untrusted otherwise).
Result<RecordView> open_record(std::string_view record_jws, const CertVerifier& verifier,
                               std::string_view registry_id = {});

// Checks that `record` answers `claim` (same doc_id; for seq_reused also the
// claimant's own facts). receipt_mismatch otherwise.
Status check_record_answers(const RecordView& record, const ClaimFields& claim);

}  // namespace zf::registry
