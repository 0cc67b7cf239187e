// The document model of DESIGN.md §4: common payload fields, a registry of
// document types with their version and fields, strict per-type validation.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/amount.h"
#include "core/jose.h"
#include "core/json.h"

namespace zf {

// How a field's value is checked.
enum class FieldKind {
  id,        // 1..128 chars of [A-Za-z0-9._:-]
  text,      // UTF-8 string up to 256 bytes
  minor,     // integer minor units; with "currency" forms an Amount (> 0)
  currency,  // ISO-4217 code we know
  uint,      // integer >= 0
  digest,    // base64url of 32 bytes
  object,    // nested JSON object (validated by its own parser, e.g. a JWE)
  nonce,     // base64url of 16 random bytes (22 characters)
};

struct FieldSpec {
  std::string_view name;
  FieldKind kind;
  bool required = true;
};

struct DocTypeSpec {
  std::string_view type;
  int version;
  bool se_issued;  // documents an SE signs carry its monotonic `seq`
  std::vector<FieldSpec> fields;
};

// The registry of known types; unknown types/versions are refused.
const DocTypeSpec* find_doc_type(std::string_view type);
const std::vector<DocTypeSpec>& doc_types();

// A validated, immutable document payload.
class Document {
 public:
  // Validates common and per-type fields; names the offending field on failure.
  static Result<Document> from_json(const Json& payload);
  static Result<Document> parse(std::string_view payload_text);

  const std::string& type() const { return type_; }
  int version() const { return v_; }
  const std::string& id() const { return id_; }
  const std::string& issuer() const { return issuer_; }
  std::optional<std::int64_t> seq() const { return seq_; }
  std::int64_t iat() const { return iat_; }
  std::optional<std::int64_t> exp() const { return exp_; }
  const std::optional<std::string>& process_no() const { return process_no_; }
  // The amount, for types that carry one.
  const std::optional<Amount>& amount() const { return amount_; }
  // A string field of the payload (empty if absent).
  std::string str(std::string_view field) const;
  const Json& json() const { return json_; }

  // iat not in the future (beyond skew) and exp (if any) not passed.
  Status check_time(std::int64_t now_s, std::int64_t skew_s = 300) const;

 private:
  Document() = default;
  Json json_;
  std::string type_, id_, issuer_;
  int v_ = 0;
  std::optional<std::int64_t> seq_, exp_;
  std::int64_t iat_ = 0;
  std::optional<std::string> process_no_;
  std::optional<Amount> amount_;
};

// A document signed by one or more parties: the JWS, its verified payload and signers.
struct SignedDocument {
  Jws jws;
  Document doc;
  std::vector<Certificate> signers;  // leaves, in signature order
};

// Parses a JWS, checks signatures and chains for `role`, then validates the
// payload. A type an SE sequences must be opened with Role::secure_element.
// Anything opened with that role is bound to its (first) signer: issuer = the
// signer's SE id, and id = "<issuer>:<seq>" for the sequenced types
// (issuer_mismatch otherwise).
Result<SignedDocument> open_signed_document(std::string_view jws_text, const CertVerifier& verifier,
                                            Role role);
// A fresh `nonce` (DESIGN.md §4): 128 random bits, base64url. Every document an
// SE sequences must carry one, so the registry's digest of it reveals nothing.
std::string new_nonce();
// Serializes and signs a payload (validated first) as compact JWS.
Result<std::string> sign_document(const Json& payload, const JwsSigner& signer);

}  // namespace zf
