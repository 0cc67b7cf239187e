// The serve loop shared by the bank and the registry: bind 127.0.0.1, publish
// the port, run until SIGTERM or SIGINT.
#pragma once

#include <functional>
#include <string>
#include <string_view>

#include "net/http.h"
#include "service/trust.h"

namespace zf::service {

// Who may call a service's admin routes.
class AdminGate {
 public:
  virtual ~AdminGate() = default;
  // True for a bearer token whose hash is one of the service's admin tokens.
  virtual bool authenticate_admin(std::string_view bearer) = 0;
};

// The check both services make: a non-empty bearer of at most 256 bytes whose
// SHA-256 `is_admin_hash` knows.
bool is_admin_bearer(std::string_view bearer,
                     const std::function<Result<bool>(ByteView token_hash)>& is_admin_hash);

// Admin routes check the token before looking at the body; false after writing 401.
bool require_admin(AdminGate& gate, const httplib::Request& req, httplib::Response& res);

// POST /v1/admin/refresh-crl (admin): fetch the CA's CRL now; answers
// {crl_next_update, crl_valid}. `refresher` may be null (no CA configured: 404);
// `gate` and `holder` may be null only in a table that is listed, never served.
void add_refresh_crl_route(net::Routes& routes, AdminGate* gate, const CrlHolder* holder,
                           CrlRefresher* refresher);

struct ServeLoop {
  std::string name;       // "bank bank-a", "registry registry-1": for the log lines
  int port = 0;           // 0 picks a free one
  std::string port_file;  // written once bound, if set
  CrlRefresher* refresher = nullptr;  // started once bound and stopped at the end, if set
};

// Binds `server`, writes the port file, starts the refresher and serves until a
// signal stops it. Returns the process exit code.
int serve_until_signal(net::HttpsServer& server, const ServeLoop& loop);

// Fetches the CRL once before serving; says on stderr what happens if it cannot.
void first_crl(CrlRefresher& refresher, const CrlHolder& holder, const std::string& name,
               const std::string& ca_url, const std::string& refused);

}  // namespace zf::service
