#include "registry/client.h"

#include "registry/api.h"
#include "registry/registry.h"

namespace zf::registry {

Result<RegistryClient> RegistryClient::connect(const std::string& url, const Certificate& root,
                                               const std::string& registry_id, std::string token) {
  auto c = net::HttpsClient::connect(url, root, net::ServerId::registry(registry_id));
  if (!c) return std::unexpected(c.error());
  if (!token.empty()) c->set_bearer(std::move(token));
  return RegistryClient(std::move(*c));
}

Result<std::string> RegistryClient::claim(const std::string& claim_jws) {
  auto r = http_.post_json("/v1/claims", Json{{"claim", claim_jws}});
  if (!r) return std::unexpected(r.error());
  return get_string(*r, "record", kMaxJoseBytes);
}

Result<RecordView> RegistryClient::claim_and_open(const std::string& claim_jws,
                                                  const ClaimFields& fields,
                                                  const CertVerifier& verifier,
                                                  std::string_view registry_id) {
  auto jws = claim(claim_jws);
  if (!jws) return std::unexpected(jws.error());
  auto record = open_record(*jws, verifier, registry_id);
  if (!record) return std::unexpected(record.error());
  if (auto s = check_record_answers(*record, fields); !s) return std::unexpected(s.error());
  return record;
}

namespace {
Result<std::string> record_of(Result<Json> r) {
  if (!r) return std::unexpected(r.error());
  return get_string(*r, "record", kMaxJoseBytes);
}
}  // namespace

Result<std::string> RegistryClient::query(const std::string& doc_id) {
  return record_of(http_.post_json("/v1/records/query", Json{{"doc_id", doc_id}}));
}

Result<std::string> RegistryClient::query_with_document(const std::string& doc_id, const std::string& document_jws) {
  return record_of(http_.post_json("/v1/records/query", Json{{"doc_id", doc_id}, {"document", document_jws}}));
}

Result<std::string> RegistryClient::query_signed(const std::string& doc_id, const std::string& request_jws) {
  return record_of(http_.post_json("/v1/records/query", Json{{"doc_id", doc_id}, {"request", request_jws}}));
}

Result<std::vector<Alert>> RegistryClient::alerts(std::int64_t after_id, int limit) {
  auto r = http_.get_json("/v1/alerts?after=" + std::to_string(after_id) +
                          "&limit=" + std::to_string(limit));
  if (!r) return std::unexpected(r.error());
  auto it = r->find("alerts");
  if (it == r->end() || !it->is_array()) return fail(Errc::bad_field, "must be an array", "alerts");
  std::vector<Alert> out;
  for (const auto& j : *it) {
    auto a = alert_from_json(j);
    if (!a) return std::unexpected(a.error());
    out.push_back(std::move(*a));
  }
  return out;
}

Result<RegistryInfo> RegistryClient::info() {
  auto r = http_.get_json("/v1/info");
  if (!r) return std::unexpected(r.error());
  auto id = get_string(*r, "registry", 64);
  if (!id) return std::unexpected(id.error());
  auto pem = get_string(*r, "certificate", 16 * 1024);
  if (!pem) return std::unexpected(pem.error());
  auto cert = Certificate::from_pem(*pem);
  if (!cert) return std::unexpected(cert.error());
  auto valid = get_bool(*r, "crl_valid");
  if (!valid) return std::unexpected(valid.error());
  return RegistryInfo{*id, std::move(*cert), *valid};
}

Status RegistryClient::refresh_crl() {
  auto r = http_.post_json("/v1/admin/refresh-crl", Json::object());
  if (!r) return std::unexpected(r.error());
  return {};
}

}  // namespace zf::registry
