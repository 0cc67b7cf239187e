// Client calls to a registry's HTTPS API (docs/registry-api.md), for banks,
// terminals and admins. Answers are returned as the registry signed them;
// open them with registry::open_record (claims.h) before trusting them.
#pragma once

#include <string>
#include <vector>

#include "net/http.h"
#include "core/claims.h"
#include "registry/store.h"

namespace zf::registry {

// What GET /v1/info tells about a registry.
struct RegistryInfo {
  std::string registry_id;
  Certificate certificate{nullptr};  // role registry, CN = registry id
  bool crl_valid = false;
};

class RegistryClient {
 public:
  // Connects to `url`, trusting only `root` and only a TLS certificate naming
  // registry `registry_id` (any registry if empty: admin tools given only a
  // URL); `token` is the admin token (optional).
  static Result<RegistryClient> connect(const std::string& url, const Certificate& root,
                                        const std::string& registry_id, std::string token);

  // Keeps the connection open between requests (net::HttpsClient::set_keep_alive).
  void set_keep_alive(bool on) { http_.set_keep_alive(on); }
  // POST /v1/claims: a signed claim (compact JWS) -> the signed record (compact
  // JWS). Its status (claimed / already_processed / seq_reused) is in the record.
  Result<std::string> claim(const std::string& claim_jws);
  // POST /v1/claims, then open_record against `verifier` (and the expected
  // registry id, if given) and check_record_answers against `fields`.
  Result<RecordView> claim_and_open(const std::string& claim_jws, const ClaimFields& fields,
                                    const CertVerifier& verifier,
                                    std::string_view registry_id = {});
  // POST /v1/records/query (docs/registry-api.md "Who may read a record"): the
  // stored record (status claimed) of `doc_id`; not_found if none. query() needs
  // the admin token; query_with_document presents the document itself;
  // query_signed presents a record.query signed by the claimant or the issuer.
  Result<std::string> query(const std::string& doc_id);
  Result<std::string> query_with_document(const std::string& doc_id, const std::string& document_jws);
  Result<std::string> query_signed(const std::string& doc_id, const std::string& request_jws);
  // GET /v1/alerts (admin): alerts with id > after_id, oldest first.
  Result<std::vector<Alert>> alerts(std::int64_t after_id = 0, int limit = 100);
  // GET /v1/info.
  Result<RegistryInfo> info();
  // Admin: makes the registry fetch the CA's CRL now.
  Status refresh_crl();

 private:
  explicit RegistryClient(net::HttpsClient c) : http_(std::move(c)) {}
  net::HttpsClient http_;
};

}  // namespace zf::registry
