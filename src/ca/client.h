// Client calls to the CA's HTTPS API, for registration authorities, SE
// personalization, admins and verifiers.
#pragma once

#include <optional>
#include <string>

#include "core/enroll.h"
#include "net/http.h"

namespace zf::ca {

class CaClient {
 public:
  // Connects to `url`, trusting only `root` and only the CA that root names.
  static Result<CaClient> connect(const std::string& url, const Certificate& root, std::string token = {});

  Result<std::string> enrollment_code(const std::string& user_id, std::int64_t ttl_s = 86400);
  // Sends a CSR; attestation and code only for the secure-element role.
  Result<Certificate> request_certificate(const std::string& role, const std::string& csr_pem,
                                          const std::optional<Attestation>& attestation = std::nullopt,
                                          const std::string& enrollment_code = {});
  Status revoke(const std::string& serial_hex, const std::string& reason);
  Result<Crl> crl();
  Result<Json> lookup_serial(const std::string& serial_hex);
  // GET /v1/secure-elements/{who}: the certificate records of the SE named
  // `who`, or of the SEs of user `who` (newest first, revoked ones flagged).
  Result<Json> find_secure_elements(const std::string& who);
  Result<std::string> add_registration_authority(const std::string& name);

 private:
  explicit CaClient(net::HttpsClient c) : http_(std::move(c)) {}
  net::HttpsClient http_;
};

}  // namespace zf::ca
