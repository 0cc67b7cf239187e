#include "service/serve.h"

#include <cstdio>

#include "service/identity.h"

namespace zf::service {

bool is_admin_bearer(std::string_view bearer,
                     const std::function<Result<bool>(ByteView token_hash)>& is_admin_hash) {
  if (bearer.empty() || bearer.size() > 256) return false;
  auto ok = is_admin_hash(token_hash(bearer));
  return ok && *ok;
}

bool require_admin(AdminGate& gate, const httplib::Request& req, httplib::Response& res) {
  if (gate.authenticate_admin(net::bearer_token(req))) return true;
  net::write_problem(res, Error{Errc::unauthorized, {}, "admin token required"});
  return false;
}

void add_refresh_crl_route(net::Routes& routes, AdminGate* gate, const CrlHolder* holder,
                           CrlRefresher* refresher) {
  routes.post("/v1/admin/refresh-crl", [gate, holder, refresher](const httplib::Request& req,
                                                                 httplib::Response& res) {
    if (!require_admin(*gate, req, res)) return;
    if (!refresher) return net::write_problem(res, Error{Errc::not_found, {}, "no CA configured"});
    if (auto s = refresher->refresh_now(); !s) return net::write_problem(res, s.error());
    auto c = holder->crl();
    net::write_json(res, Json{{"crl_next_update", c ? c->next_update() : 0},
                              {"crl_valid", holder->has_valid_crl()}});
  });
}

int serve_until_signal(net::HttpsServer& server, const ServeLoop& loop) {
  auto bound = server.bind("127.0.0.1", loop.port);
  if (!bound) {
    std::fprintf(stderr, "zf %s: %s\n", loop.name.c_str(), bound.error().message().c_str());
    return 1;
  }
  if (!loop.port_file.empty())
    if (auto s = net::write_port_file(loop.port_file, *bound); !s) {
      std::fprintf(stderr, "zf %s: %s\n", loop.name.c_str(), s.error().message().c_str());
      return 1;
    }
  if (loop.refresher) loop.refresher->start();
  server.stop_on_signals();
  std::printf("zf %s: serving https://127.0.0.1:%d\n", loop.name.c_str(), *bound);
  std::fflush(stdout);
  server.run();
  if (loop.refresher) loop.refresher->stop();
  return 0;
}

void first_crl(CrlRefresher& refresher, const CrlHolder& holder, const std::string& name,
               const std::string& ca_url, const std::string& refused) {
  if (auto s = refresher.refresh_now(); !s)
    std::fprintf(stderr, "zf %s serve: cannot fetch the CRL from %s (%s); %s\n", name.c_str(),
                 ca_url.c_str(), s.error().message().c_str(),
                 holder.has_valid_crl() ? "using the cached CRL"
                                        : ("refusing " + refused + " until it can").c_str());
}

}  // namespace zf::service
