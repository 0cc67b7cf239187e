#include "core/error.h"

#include <array>
#include <utility>

namespace zf {
namespace {

struct ErrcInfo {
  Errc code;
  std::string_view name;
  int http;
  std::uint16_t sw;
};

// 6A80 = wrong data, 6982 = security status not satisfied, 6985 = conditions
// not satisfied, 6A88 = referenced data not found, 6F00 = no precise diagnosis.
constexpr std::array kInfo = {
    ErrcInfo{Errc::ok, "ok", 200, 0x9000},
    ErrcInfo{Errc::malformed_json, "malformed_json", 400, 0x6A80},
    ErrcInfo{Errc::duplicate_key, "duplicate_key", 400, 0x6A80},
    ErrcInfo{Errc::too_large, "too_large", 413, 0x6700},
    ErrcInfo{Errc::too_deep, "too_deep", 400, 0x6A80},
    ErrcInfo{Errc::bad_base64url, "bad_base64url", 400, 0x6A80},
    ErrcInfo{Errc::bad_field, "bad_field", 400, 0x6A80},
    ErrcInfo{Errc::missing_field, "missing_field", 400, 0x6A80},
    ErrcInfo{Errc::unknown_field, "unknown_field", 400, 0x6A80},
    ErrcInfo{Errc::trailing_data, "trailing_data", 400, 0x6A80},
    ErrcInfo{Errc::unknown_type, "unknown_type", 400, 0x6A80},
    ErrcInfo{Errc::unknown_version, "unknown_version", 400, 0x6A80},
    ErrcInfo{Errc::expired, "expired", 400, 0x6985},
    ErrcInfo{Errc::not_yet_valid, "not_yet_valid", 400, 0x6985},
    ErrcInfo{Errc::bad_amount, "bad_amount", 400, 0x6A80},
    ErrcInfo{Errc::bad_currency, "bad_currency", 400, 0x6A80},
    ErrcInfo{Errc::amount_negative, "amount_negative", 400, 0x6A80},
    ErrcInfo{Errc::amount_overflow, "amount_overflow", 400, 0x6A80},
    ErrcInfo{Errc::amount_zero, "amount_zero", 400, 0x6A80},
    ErrcInfo{Errc::currency_mismatch, "currency_mismatch", 400, 0x6A80},
    ErrcInfo{Errc::bad_header, "bad_header", 400, 0x6A80},
    ErrcInfo{Errc::unsupported_alg, "unsupported_alg", 400, 0x6A80},
    ErrcInfo{Errc::alg_none, "alg_none", 400, 0x6A80},
    ErrcInfo{Errc::bad_signature, "bad_signature", 400, 0x6982},
    ErrcInfo{Errc::decrypt_failed, "decrypt_failed", 400, 0x6982},
    ErrcInfo{Errc::no_recipient, "no_recipient", 400, 0x6A88},
    ErrcInfo{Errc::cert_malformed, "cert_malformed", 400, 0x6A80},
    ErrcInfo{Errc::cert_untrusted, "cert_untrusted", 403, 0x6982},
    ErrcInfo{Errc::cert_expired, "cert_expired", 403, 0x6982},
    ErrcInfo{Errc::cert_not_yet_valid, "cert_not_yet_valid", 403, 0x6982},
    ErrcInfo{Errc::cert_wrong_role, "cert_wrong_role", 403, 0x6982},
    ErrcInfo{Errc::cert_revoked, "cert_revoked", 403, 0x6982},
    ErrcInfo{Errc::csr_malformed, "csr_malformed", 400, 0x6A80},
    ErrcInfo{Errc::csr_bad_signature, "csr_bad_signature", 400, 0x6982},
    ErrcInfo{Errc::attestation_missing, "attestation_missing", 403, 0x6982},
    ErrcInfo{Errc::attestation_untrusted, "attestation_untrusted", 403, 0x6982},
    ErrcInfo{Errc::attestation_bad_signature, "attestation_bad_signature", 403, 0x6982},
    ErrcInfo{Errc::enrollment_code_unknown, "enrollment_code_unknown", 403, 0x6982},
    ErrcInfo{Errc::enrollment_code_used, "enrollment_code_used", 409, 0x6982},
    ErrcInfo{Errc::enrollment_code_expired, "enrollment_code_expired", 403, 0x6982},
    ErrcInfo{Errc::enrollment_code_wrong_user, "enrollment_code_wrong_user", 403, 0x6982},
    ErrcInfo{Errc::insufficient_funds, "insufficient_funds", 409, 0x6985},
    ErrcInfo{Errc::insufficient_ecash, "insufficient_ecash", 409, 0x6A84},
    ErrcInfo{Errc::limit_exceeded, "limit_exceeded", 409, 0x6985},
    ErrcInfo{Errc::account_unknown, "account_unknown", 404, 0x6A88},
    ErrcInfo{Errc::not_owner, "not_owner", 403, 0x6982},
    ErrcInfo{Errc::misaddressed, "misaddressed", 400, 0x6A80},
    ErrcInfo{Errc::replayed, "replayed", 409, 0x6985},
    ErrcInfo{Errc::doc_id_reused, "doc_id_reused", 409, 0x6985},
    ErrcInfo{Errc::receipt_mismatch, "receipt_mismatch", 400, 0x6A80},
    ErrcInfo{Errc::seq_reused, "seq_reused", 409, 0x6985},
    ErrcInfo{Errc::pin_wrong, "pin_wrong", 403, 0x63C0},
    ErrcInfo{Errc::pin_blocked, "pin_blocked", 403, 0x6983},
    ErrcInfo{Errc::not_verified, "not_verified", 403, 0x6982},
    ErrcInfo{Errc::wrong_state, "wrong_state", 409, 0x6985},
    ErrcInfo{Errc::bad_apdu, "bad_apdu", 400, 0x6700},
    ErrcInfo{Errc::unknown_instruction, "unknown_instruction", 400, 0x6D00},
    ErrcInfo{Errc::unauthorized, "unauthorized", 401, 0x6982},
    ErrcInfo{Errc::forbidden, "forbidden", 403, 0x6982},
    ErrcInfo{Errc::not_found, "not_found", 404, 0x6A88},
    ErrcInfo{Errc::conflict, "conflict", 409, 0x6985},
    ErrcInfo{Errc::bad_request, "bad_request", 400, 0x6A80},
    ErrcInfo{Errc::unavailable, "unavailable", 503, 0x6F00},
    ErrcInfo{Errc::io_error, "io_error", 500, 0x6F00},
    ErrcInfo{Errc::crypto_error, "crypto_error", 500, 0x6F00},
    ErrcInfo{Errc::internal, "internal", 500, 0x6F00},
    ErrcInfo{Errc::record_required, "record_required", 403, 0x6982},
    ErrcInfo{Errc::record_mismatch, "record_mismatch", 400, 0x6A80},
    ErrcInfo{Errc::issuer_mismatch, "issuer_mismatch", 403, 0x6982},
    ErrcInfo{Errc::unsupported_media_type, "unsupported_media_type", 415, 0x6A80},
    ErrcInfo{Errc::method_not_allowed, "method_not_allowed", 405, 0x6D00},
    ErrcInfo{Errc::secure_channel_required, "secure_channel_required", 403, 0x6982},
    ErrcInfo{Errc::not_paired, "not_paired", 409, 0x6985},
    ErrcInfo{Errc::auth_failed, "auth_failed", 403, 0x6300},
    ErrcInfo{Errc::secure_messaging_failed, "secure_messaging_failed", 400, 0x6988},
    ErrcInfo{Errc::not_expired, "not_expired", 409, 0x6985},
    ErrcInfo{Errc::not_receiving, "not_receiving", 409, 0x6985},
    ErrcInfo{Errc::unreconciled, "unreconciled", 409, 0x6985},
    ErrcInfo{Errc::same_account, "same_account", 400, 0x6A80},
    ErrcInfo{Errc::hold_unknown, "hold_unknown", 404, 0x6A88},
    ErrcInfo{Errc::hold_resolved, "hold_resolved", 409, 0x6985},
    ErrcInfo{Errc::threshold_not_met, "threshold_not_met", 403, 0x6982},
    ErrcInfo{Errc::process_no_unknown, "process_no_unknown", 404, 0x6A88},
    ErrcInfo{Errc::process_no_expired, "process_no_expired", 409, 0x6985},
    ErrcInfo{Errc::process_no_used, "process_no_used", 409, 0x6985},
};

// Every code has exactly one row, in enum order.
constexpr bool table_matches_enum() {
  for (std::size_t i = 0; i < kInfo.size(); ++i) {
    if (static_cast<std::size_t>(kInfo[i].code) != i) return false;
  }
  return static_cast<std::size_t>(Errc::kCount) == kInfo.size();
}
static_assert(table_matches_enum(), "error table out of order");

const ErrcInfo& info(Errc code) {
  auto i = static_cast<std::size_t>(code);
  return i < kInfo.size() ? kInfo[i] : kInfo[static_cast<std::size_t>(Errc::internal)];
}

}  // namespace

std::string_view errc_name(Errc code) { return info(code).name; }
int http_status(Errc code) { return info(code).http; }
std::uint16_t status_word(Errc code) { return info(code).sw; }

Errc errc_from_name(std::string_view name) {
  for (const auto& row : kInfo) {
    if (row.name == name) return row.code;
  }
  return Errc::internal;
}

std::string Error::message() const {
  std::string out(errc_name(code));
  if (!detail.empty()) out += ": " + detail;
  if (!field.empty()) out += " (field " + field + ")";
  return out;
}

}  // namespace zf
