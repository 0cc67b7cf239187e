// The registry's HTTPS API (/v1, problem+json errors) and its CRL refresher.
// See docs/registry-api.md.
#pragma once

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <string>
#include <thread>

#include "net/http.h"
#include "registry/registry.h"

namespace zf::registry {

// Keeps the registry's CRL current: fetches it from the CA now and then every
// `interval` (every 2 s while the registry has none that is valid), caches the
// last accepted one in `cache_path`. If the CA is unreachable the last CRL stays
// in use until its next update; after that the registry refuses claims.
class CrlRefresher {
 public:
  CrlRefresher(Registry& registry, std::string ca_url, std::string cache_path,
               std::chrono::seconds interval);
  ~CrlRefresher();
  CrlRefresher(const CrlRefresher&) = delete;

  // Fetches, verifies and installs the CA's current CRL (and caches it).
  Status refresh_now();
  // Starts / stops the background thread.
  void start();
  void stop();

 private:
  void loop();

  Registry& registry_;
  std::string ca_url_;
  std::string cache_path_;
  std::chrono::seconds interval_;
  std::mutex fetch_mu_;  // one fetch at a time
  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;
  std::thread thread_;
};

// Registers the registry routes on `server`. `crl` may be null (no refresh endpoint).
void register_routes(httplib::Server& server, Registry& registry, CrlRefresher* crl);

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
