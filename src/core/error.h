// Stable error codes for every untrusted input the system rejects.
// One list, mapped to HTTP problem+json (DESIGN.md §9) and to SE status words.
#pragma once

#include <cstdint>
#include <expected>
#include <string>
#include <string_view>
#include <utility>

namespace zf {

// Order is stable; append only. Names (errc_name) are the wire codes.
enum class Errc : std::uint16_t {
  ok = 0,
  // Input shape.
  malformed_json,
  duplicate_key,
  too_large,
  too_deep,
  bad_base64url,
  bad_field,        // a field has the wrong JSON type or an invalid value
  missing_field,
  unknown_field,
  trailing_data,
  // Documents.
  unknown_type,
  unknown_version,
  expired,
  not_yet_valid,
  // Amounts.
  bad_amount,
  bad_currency,
  amount_negative,
  amount_overflow,
  amount_zero,
  currency_mismatch,
  // JOSE.
  bad_header,
  unsupported_alg,
  alg_none,
  bad_signature,
  decrypt_failed,
  no_recipient,
  // Certificates.
  cert_malformed,
  cert_untrusted,
  cert_expired,
  cert_not_yet_valid,
  cert_wrong_role,
  cert_revoked,
  csr_malformed,
  csr_bad_signature,
  // Enrollment.
  attestation_missing,
  attestation_untrusted,
  attestation_bad_signature,
  enrollment_code_unknown,
  enrollment_code_used,
  enrollment_code_expired,
  enrollment_code_wrong_user,
  // Money and accounts.
  insufficient_funds,   // a bank account cannot cover the amount
  insufficient_ecash,   // the SE balance cannot cover the amount
  limit_exceeded,       // an SE limit (max balance, max single payment)
  account_unknown,
  not_owner,            // the signer does not own the account
  misaddressed,         // a document names another bank or payee
  replayed,             // this document (id) was already applied
  doc_id_reused,        // a different document reuses an applied id
  receipt_mismatch,     // a receipt does not answer our own request
  seq_reused,           // the registry saw another document with this (SE, seq): clone or rollback
  // Secure element.
  pin_wrong,
  pin_blocked,
  not_verified,         // the user has not been verified in this session
  wrong_state,          // the command is not allowed in the SE's current state
  bad_apdu,
  unknown_instruction,
  // Service level.
  unauthorized,
  forbidden,
  not_found,
  conflict,
  bad_request,
  unavailable,
  io_error,
  crypto_error,
  internal,
  // Appended after the first release of the list.
  record_required,         // an SE credits online value only with the registry's record for it
  record_mismatch,         // a registry record answers another document or another claimant
  issuer_mismatch,         // an SE document's issuer or id is not its signer's (issuer:seq)
  unsupported_media_type,  // a request body that is not application/json
  method_not_allowed,      // a known path asked with another method
  secure_channel_required, // an SE command that only a paired, authenticated terminal may send
  not_paired,              // the SE has no pairing key, or the terminal has none for it
  auth_failed,             // mutual authentication or pairing confirmation failed (wrong pairing key)
  secure_messaging_failed, // a secure-channel frame failed its check (tampered, replayed, reordered, cut)
  not_expired,             // a reclaim before the note's expiry: the payee may still receive it
  not_receiving,           // the payee SE is not taking face-to-face payments now
  unreconciled,            // value taken face to face that the registry has not yet settled
  same_account,            // a transfer or hold names one account on both sides
  hold_unknown,            // no hold with this id at this bank
  hold_resolved,           // the hold already ended (confirmed, released or expired): nothing moved
  threshold_not_met,       // a joint spend carries fewer distinct co-managers' signatures than its account needs
  process_no_unknown,      // a processing number this bank never handed out
  process_no_expired,      // a processing number past its expiry
  process_no_used,         // a processing number another document already used
  kCount,                  // not a code: the number of codes
};

// The stable wire name of a code, e.g. "amount_overflow".
std::string_view errc_name(Errc code);
// HTTP status used when the code is returned by a service.
int http_status(Errc code);
// ISO 7816 status word used when the code is returned by the SE applet.
std::uint16_t status_word(Errc code);
// Looks a wire name up again (for clients parsing problem+json); internal if unknown.
Errc errc_from_name(std::string_view name);

// An error value: what went wrong, which field (if any), and a human detail.
struct Error {
  Error() = default;
  Error(Errc c, std::string f = {}, std::string d = {}, std::string e = {})
      : code(c), field(std::move(f)), detail(std::move(d)), evidence(std::move(e)) {}

  Errc code = Errc::internal;
  std::string field;
  std::string detail;
  // A signed document that backs the refusal (e.g. the registry's record of who
  // already processed a document), for the refused party to keep and show.
  std::string evidence;

  // "code: detail (field)" for logs and CLI messages.
  std::string message() const;
};

template <class T>
using Result = std::expected<T, Error>;
using Status = std::expected<void, Error>;

// Shorthand to build an unexpected error.
inline std::unexpected<Error> fail(Errc code, std::string detail = {}, std::string field = {}) {
  return std::unexpected(Error{code, std::move(field), std::move(detail)});
}

}  // namespace zf
