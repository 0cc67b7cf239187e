#include "service/serve.h"

#include <atomic>
#include <csignal>
#include <cstdio>

namespace zf::service {
namespace {

std::atomic<httplib::Server*> g_server{nullptr};

void on_signal(int) {
  if (auto* s = g_server.load()) s->stop();
}

}  // namespace

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
  g_server = &server.raw();
  std::signal(SIGTERM, on_signal);
  std::signal(SIGINT, on_signal);
  std::printf("zf %s: serving https://127.0.0.1:%d\n", loop.name.c_str(), *bound);
  std::fflush(stdout);
  server.run();
  g_server = nullptr;
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
