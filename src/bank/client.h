// Client calls to a bank's HTTPS API (docs/bank-api.md): the wallet's top-up,
// deposit and query, and the admin operations behind `zf bank ...`.
#pragma once

#include <string>

#include "bank/api.h"
#include "net/http.h"

namespace zf::bank {

// What GET /v1/info tells about a bank.
struct BankInfo {
  std::string bank_id;
  Certificate custody_certificate;
  bool crl_valid = false;
};

class BankClient {
 public:
  // Connects to `url`, trusting only `root` and only a TLS certificate naming
  // bank `bank_id` (any bank if empty: admin tools given only a URL); `token` is
  // the admin token (optional).
  static Result<BankClient> connect(const std::string& url, const Certificate& root,
                                    const std::string& bank_id, std::string token);

  // POST /v1/topup: a signed topup.request (compact JWS) -> the signed topup.receipt.
  Result<std::string> topup(const std::string& request_jws);
  // POST /v1/deposit: a signed deposit.note -> the signed deposit.receipt.
  Result<std::string> deposit(const std::string& note_jws);
  // POST /v1/transfer: a signed transfer.order -> the signed transfer.receipt.
  Result<std::string> transfer(const std::string& order_jws);
  // POST /v1/query: a signed account.query -> balance and history.
  Result<Statement> query(const std::string& query_jws);
  // POST /v1/process-no: a signed account.query -> {process_no, se, expires_at}.
  Result<Json> process_no(const std::string& query_jws);
  // POST /v1/events: a signed account.query -> the account's feed after `after`
  // (feed_to_json); with wait_ms, an empty feed waits that long for news.
  Result<Json> events(const std::string& query_jws, std::int64_t after, std::int64_t wait_ms = 0);
  // GET /v1/info.
  Result<BankInfo> info();

  // Admin calls (need the admin token).
  Result<AccountRecord> open_account(const OpenAccountRequest& req);
  // Any account, system accounts included (GET /v1/accounts/{id}).
  Result<AccountRecord> account(const std::string& id);
  Result<CashInResult> cash_in(const std::string& account, const Amount& amount,
                               const std::string& ref);
  Result<ledger::AuditReport> audit();
  // Makes the bank fetch the CA's CRL now.
  Status refresh_crl();

 private:
  explicit BankClient(net::HttpsClient c) : http_(std::move(c)) {}
  Result<std::string> post_jws(const std::string& path, const char* field, const std::string& jws);
  net::HttpsClient http_;
};

}  // namespace zf::bank
