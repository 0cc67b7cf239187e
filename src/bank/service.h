// The bank's HTTPS API (/v1, problem+json errors) and its CRL refresher.
// See docs/bank-api.md.
#pragma once

#include <string>

#include "bank/bank.h"
#include "net/http.h"
#include "service/trust.h"

namespace zf::bank {

// The bank's CRL refresher (service/trust.h).
using service::CrlRefresher;

// The bank's route table. `crl` may be null (refresh-crl answers 404); `bank`
// may be null for a table that is only listed (tests hold it against the
// OpenAPI file), never served.
net::Routes routes(Bank* bank, CrlRefresher* crl);

struct ServeOptions {
  std::string dir;
  int port = 0;
  std::string port_file;
  std::string ca_url;  // overrides bank.json when set
  std::string registry_url;  // overrides bank.json when set (the registry id stays)
  int crl_refresh_s = 60;
  // How often the bank looks for holds past their release time (and at start).
  int hold_check_ms = 1000;
  // Fault injection for crash tests: hold every answer this long after the
  // handler finished (so after the money moved), widening the window in which
  // a kill loses a receipt of a committed movement. 0 in normal operation.
  int fault_reply_delay_ms = 0;
  // Fault injection for crash tests: after each POST handler returned (its
  // transaction committed or rolled back) and before the answer is sent, append
  // "<path> <status>" to this file. Empty in normal operation.
  std::string fault_answer_marker;
  // Fault injection for crash tests: if this file does not exist, the bank
  // creates it and kills itself (SIGKILL) right after the registry recorded
  // its claim of a document of type `fault_die_after_claim_type`, before its
  // own transaction: the claim is held, the books know nothing. Once per file.
  std::string fault_die_after_claim;
  std::string fault_die_after_claim_type;
};

// `zf bank serve`: opens the bank in `dir`, fetches the CRL, binds
// 127.0.0.1:port (0 = any), writes the port file and serves until SIGTERM/SIGINT.
int serve(const ServeOptions& opts);

}  // namespace zf::bank
