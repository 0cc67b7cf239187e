#include "ca/client.h"

namespace zf::ca {

Result<CaClient> CaClient::connect(const std::string& url, const Certificate& root, std::string token) {
  // The CA serves with a TLS certificate naming its root: every client holds it.
  auto c = net::HttpsClient::connect(url, root, net::ServerId::ca(root.subject_cn()));
  if (!c) return std::unexpected(c.error());
  if (!token.empty()) c->set_bearer(std::move(token));
  return CaClient(std::move(*c));
}

Result<std::string> CaClient::enrollment_code(const std::string& user_id, std::int64_t ttl_s) {
  auto r = http_.post_json("/v1/enrollment-codes", Json{{"user_id", user_id}, {"ttl_s", ttl_s}});
  if (!r) return std::unexpected(r.error());
  return get_string(*r, "code", 64);
}

Result<Certificate> CaClient::request_certificate(const std::string& role, const std::string& csr_pem,
                                                  const std::optional<Attestation>& attestation,
                                                  const std::string& enrollment_code) {
  Json body{{"role", role}, {"csr", csr_pem}};
  if (attestation) body["attestation"] = attestation_to_json(*attestation);
  if (!enrollment_code.empty()) body["enrollment_code"] = enrollment_code;
  auto r = http_.post_json("/v1/certificates", body);
  if (!r) return std::unexpected(r.error());
  auto pem = get_string(*r, "certificate", 16 * 1024);
  if (!pem) return std::unexpected(pem.error());
  return Certificate::from_pem(*pem);
}

Status CaClient::revoke(const std::string& serial_hex, const std::string& reason) {
  auto r = http_.post_json("/v1/certificates/" + serial_hex + "/revoke", Json{{"reason", reason}});
  if (!r) return std::unexpected(r.error());
  return {};
}

Result<Crl> CaClient::crl() {
  auto r = http_.get_json("/v1/crl");
  if (!r) return std::unexpected(r.error());
  auto pem = get_string(*r, "crl", 1024 * 1024);
  if (!pem) return std::unexpected(pem.error());
  return Crl::from_pem(*pem);
}

Result<Json> CaClient::lookup_serial(const std::string& serial_hex) {
  return http_.get_json("/v1/certificates/" + serial_hex);
}

Result<Json> CaClient::find_secure_elements(const std::string& who) {
  auto r = http_.get_json("/v1/secure-elements/" + who);
  if (!r) return r;
  if (!r->contains("certificates") || !(*r)["certificates"].is_array())
    return fail(Errc::bad_field, "the CA's answer has no certificate list", "certificates");
  return (*r)["certificates"];
}

Result<std::string> CaClient::add_registration_authority(const std::string& name) {
  auto r = http_.post_json("/v1/registration-authorities", Json{{"name", name}});
  if (!r) return std::unexpected(r.error());
  return get_string(*r, "token", 128);
}

}  // namespace zf::ca
