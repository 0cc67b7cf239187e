// The registry's HTTPS API (/v1, problem+json errors) and its CRL refresher.
// See docs/registry-api.md.
#pragma once

#include <string>

#include "net/http.h"
#include "registry/registry.h"
#include "service/trust.h"

namespace zf::registry {

// The registry's CRL refresher (service/trust.h).
using service::CrlRefresher;

// The registry's route table. `crl` may be null (refresh-crl answers 404);
// `registry` may be null for a table that is only listed (tests hold it against
// the OpenAPI file), never served.
net::Routes routes(Registry* registry, CrlRefresher* crl);

struct ServeOptions {
  std::string dir;
  int port = 0;
  std::string port_file;
  std::string ca_url;  // overrides registry.json when set
  int crl_refresh_s = 60;
};

// `zf registry serve`: opens the registry in `dir`, fetches the CRL, binds
// 127.0.0.1:port (0 = any), writes the port file and serves until SIGTERM/SIGINT.
int serve(const ServeOptions& opts);

}  // namespace zf::registry
