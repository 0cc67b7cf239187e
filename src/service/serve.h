// The serve loop shared by the bank and the registry: bind 127.0.0.1, publish
// the port, run until SIGTERM or SIGINT.
#pragma once

#include <functional>
#include <string>

#include "net/http.h"
#include "service/trust.h"

namespace zf::service {

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
