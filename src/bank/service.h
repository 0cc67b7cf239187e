// The bank's HTTPS API (/v1, problem+json errors) and its CRL refresher.
// See docs/bank-api.md.
#pragma once

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <string>
#include <thread>

#include "bank/bank.h"
#include "net/http.h"

namespace zf::bank {

// Keeps the bank's CRL current: fetches it from the CA now and then every
// `interval` (every few seconds while the bank has none that is valid), caches
// the last accepted one in `cache_path`. If the CA is unreachable the last CRL
// stays in use until its next update; after that the bank refuses documents.
class CrlRefresher {
 public:
  CrlRefresher(Bank& bank, std::string ca_url, std::string cache_path,
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

  Bank& bank_;
  std::string ca_url_;
  std::string cache_path_;
  std::chrono::seconds interval_;
  std::mutex fetch_mu_;  // one fetch at a time
  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;
  std::thread thread_;
};

// Registers the bank routes on `server`. `crl` may be null (no refresh endpoint).
void register_routes(httplib::Server& server, Bank& bank, CrlRefresher* crl);

struct ServeOptions {
  std::string dir;
  int port = 0;
  std::string port_file;
  std::string ca_url;  // overrides bank.json when set
  std::string registry_url;  // overrides bank.json when set (the registry id stays)
  int crl_refresh_s = 60;
  // Fault injection for crash tests: hold every answer this long after the
  // handler finished (so after the money moved), widening the window in which
  // a kill loses a receipt of a committed movement. 0 in normal operation.
  int fault_reply_delay_ms = 0;
};

// `zf bank serve`: opens the bank in `dir`, fetches the CRL, binds
// 127.0.0.1:port (0 = any), writes the port file and serves until SIGTERM/SIGINT.
int serve(const ServeOptions& opts);

}  // namespace zf::bank
