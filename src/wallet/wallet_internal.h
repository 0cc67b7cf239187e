// Helpers the terminal's translation units share (not part of its interface).
#pragma once

#include <string>

#include "core/document.h"
#include "core/jose.h"

namespace zf::wallet::detail {

// Worth sending again: the service was unreachable or failed inside, not a refusal.
inline bool retryable(const Error& e) {
  return e.code == Errc::unavailable || e.code == Errc::internal || e.code == Errc::io_error ||
         (e.code == Errc::cert_untrusted && e.field == "tls");
}

// The payload of a JWS we signed ourselves (already verified by our SE).
inline Result<Document> payload_of(const std::string& jws) {
  auto parsed = jws_parse(jws);
  if (!parsed) return std::unexpected(parsed.error());
  return Document::parse(to_string(parsed->payload));
}

}  // namespace zf::wallet::detail
