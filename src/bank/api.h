// The JSON shapes of the bank API (docs/bank-api.md), shared by the service and
// BankClient so both sides agree field by field. Parsers are strict.
#pragma once

#include "bank/bank.h"
#include "core/json.h"

namespace zf::bank {

// {"account","kind","currency","user_id","se_id"?,"balance_minor","created_at"}
Json account_to_json(const AccountRecord& a);
Result<AccountRecord> account_from_json(const Json& j);

// {"account","currency","balance_minor","history":[{"entry_id","doc_id","kind","amount_minor","created_at"}]}
Json statement_to_json(const Statement& s);
// {account, currency, next, events: [{entry_id, doc_id, kind, amount_minor, held_minor, created_at, receipt}]}
Json feed_to_json(const Feed& f);
Result<Statement> statement_from_json(const Json& j);

// {"account","currency","user_id","se_id"?}
Json open_account_to_json(const OpenAccountRequest& r);
Result<OpenAccountRequest> open_account_from_json(const Json& j);

// A cash-in request: {"account","amount_minor","currency","ref"}.
struct CashInRequest {
  std::string account;
  Amount amount;
  std::string ref;
};
Json cash_in_request_to_json(const CashInRequest& r);
Result<CashInRequest> cash_in_from_json(const Json& j);
// {"ref","account","amount_minor","currency","entry_id","replayed"}
Json cash_in_to_json(const CashInResult& c);
Result<CashInResult> cash_in_result_from_json(const Json& j);

// {"ok","accounts","entries","currencies":[{...figures...}],"violations":[...]}
Json audit_to_json(const ledger::AuditReport& r);
Result<ledger::AuditReport> audit_from_json(const Json& j);

}  // namespace zf::bank
