// SE enrollment evidence (DESIGN.md §2): the device attestation key, burned in
// by the manufacturer, signs the public key the SE generated for its CSR.
#pragma once

#include <string>
#include <vector>

#include "core/json.h"
#include "core/x509.h"

namespace zf {

// An attestation: the device chain (leaf first) and its signature over the CSR key.
struct Attestation {
  std::vector<Certificate> chain;
  Bytes signature;
};

// The signed message: a domain-separation label, then the SubjectPublicKeyInfo DER.
Bytes attestation_message(ByteView csr_spki_der);
// Made inside the SE with its attestation key.
Result<Attestation> make_attestation(const Signer& attestation_key, std::vector<Certificate> chain,
                                     const PublicKey& csr_key);
// {"x5c": [...], "sig": "..."}.
Json attestation_to_json(const Attestation& a);
Result<Attestation> attestation_from_json(const Json& j);
// Checks the device chain against the manufacturer root and the signature over `csr_key`.
// Errors: attestation_untrusted (chain), attestation_bad_signature (signature).
Status verify_attestation(const Attestation& a, const CertVerifier& manufacturer, const PublicKey& csr_key);

}  // namespace zf
