// The CA's HTTPS API (/v1, problem+json errors). See docs/ca-api.md.
#pragma once

#include "ca/authority.h"
#include "net/http.h"

namespace zf::ca {

// The CA's route table. `ca` may be null for a table that is only listed
// (tests hold it against the OpenAPI file), never served.
net::Routes routes(Authority* ca);

// `zf ca serve`: opens the CA in `dir`, binds 127.0.0.1:port (0 = any), writes the
// port to `port_file` if given, and serves until SIGTERM/SIGINT.
int serve(const std::string& dir, int port, const std::string& port_file, std::int64_t crl_validity_s = 86400);

}  // namespace zf::ca
