// Helpers the terminal's translation units share (not part of its interface).
#pragma once

#include <string>

#include "core/document.h"
#include "core/x509.h"
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

// A document another party handed over: its signatures and certificates
// checked against our root (secure elements only, issuer and id bound to the
// first signer) before the terminal writes anything about it.
inline Result<SignedDocument> open_handed_over(const std::string& jws, const Certificate& root, std::string_view type) {
  CertVerifier verifier(root);
  auto doc = open_signed_document(jws, verifier, Role::secure_element);
  if (!doc) return doc;
  if (doc->doc.type() != type)
    return fail(Errc::unknown_type, "this is a " + doc->doc.type() + ", not a " + std::string(type), "type");
  return doc;
}

}  // namespace zf::wallet::detail
