#include "bank/client.h"

namespace zf::bank {

Result<BankClient> BankClient::connect(const std::string& url, const Certificate& root,
                                       const std::string& bank_id, std::string token) {
  auto c = net::HttpsClient::connect(url, root, net::ServerId::bank(bank_id));
  if (!c) return std::unexpected(c.error());
  if (!token.empty()) c->set_bearer(std::move(token));
  return BankClient(std::move(*c));
}

Result<std::string> BankClient::post_jws(const std::string& path, const char* field,
                                         const std::string& jws) {
  auto r = http_.post_json(path, Json{{field, jws}});
  if (!r) return std::unexpected(r.error());
  return get_string(*r, "receipt", kMaxJoseBytes);
}

Result<std::string> BankClient::topup(const std::string& request_jws) {
  return post_jws("/v1/topup", "request", request_jws);
}

Result<std::string> BankClient::deposit(const std::string& note_jws) {
  return post_jws("/v1/deposit", "note", note_jws);
}

Result<std::string> BankClient::transfer(const std::string& order_jws) {
  return post_jws("/v1/transfer", "order", order_jws);
}

Result<Statement> BankClient::query(const std::string& query_jws) {
  auto r = http_.post_json("/v1/query", Json{{"query", query_jws}});
  if (!r) return std::unexpected(r.error());
  return statement_from_json(*r);
}

Result<Json> BankClient::process_no(const std::string& query_jws) {
  return http_.post_json("/v1/process-no", Json{{"query", query_jws}});
}

Result<Json> BankClient::events(const std::string& query_jws, std::int64_t after, std::int64_t wait_ms) {
  Json body{{"query", query_jws}, {"after", after}};
  if (wait_ms > 0) body["wait_ms"] = wait_ms;
  return http_.post_json("/v1/events", body);
}

Result<BankInfo> BankClient::info() {
  auto r = http_.get_json("/v1/info");
  if (!r) return std::unexpected(r.error());
  auto id = get_string(*r, "bank", 64);
  if (!id) return std::unexpected(id.error());
  auto pem = get_string(*r, "custody_certificate", 16 * 1024);
  if (!pem) return std::unexpected(pem.error());
  auto cert = Certificate::from_pem(*pem);
  if (!cert) return std::unexpected(cert.error());
  auto valid = get_bool(*r, "crl_valid");
  if (!valid) return std::unexpected(valid.error());
  return BankInfo{*id, std::move(*cert), *valid};
}

Result<AccountRecord> BankClient::open_account(const OpenAccountRequest& req) {
  auto r = http_.post_json("/v1/accounts", open_account_to_json(req));
  if (!r) return std::unexpected(r.error());
  return account_from_json(*r);
}

Result<AccountRecord> BankClient::account(const std::string& id) {
  if (id.empty() || id.size() > 128 ||
      id.find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._:-") !=
          std::string::npos)
    return fail(Errc::bad_field, "not an account id", "account");
  auto r = http_.get_json("/v1/accounts/" + id);
  if (!r) return std::unexpected(r.error());
  return account_from_json(*r);
}

Result<CashInResult> BankClient::cash_in(const std::string& account, const Amount& amount,
                                         const std::string& ref) {
  auto r =
      http_.post_json("/v1/cash-in", cash_in_request_to_json(CashInRequest{account, amount, ref}));
  if (!r) return std::unexpected(r.error());
  return cash_in_result_from_json(*r);
}

Result<ledger::AuditReport> BankClient::audit() {
  auto r = http_.get_json("/v1/audit");
  if (!r) return std::unexpected(r.error());
  return audit_from_json(*r);
}

Status BankClient::refresh_crl() {
  auto r = http_.post_json("/v1/admin/refresh-crl", Json::object());
  if (!r) return std::unexpected(r.error());
  return {};
}

}  // namespace zf::bank
