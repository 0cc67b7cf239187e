// What a service trusts (DESIGN.md §2): the CA root and the newest CRL the root
// signed, kept current by a CrlRefresher. A service checks every document and
// claim against it and refuses them (unavailable) while it has no current CRL.
#pragma once

#include <chrono>
#include <condition_variable>
#include <ctime>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <string>
#include <thread>

#include "core/x509.h"

namespace zf::service {

// The root and the CRL in use. Thread-safe.
class TrustStore {
 public:
  explicit TrustStore(Certificate root) : root_(std::move(root)) {}
  const Certificate& root() const { return root_; }

  // Accepts a CRL signed by the root whose next update is after `now` and that is
  // not older than the one in use.
  Status install_crl(const Crl& crl, std::time_t now);
  // The CRL in use, if any (it may have expired).
  std::optional<Crl> crl() const;
  bool has_valid_crl(std::time_t now) const;
  // A verifier over the root with the CRL in use; unavailable without a CRL that
  // is current at `now` (nothing is checked against a stale list).
  Result<CertVerifier> verifier(std::time_t now) const;
  // Installs the CRL cached at `path` if it is still acceptable: a service can
  // start while the CA is briefly unreachable. Anything else is ignored.
  void install_cached(const std::string& path, std::time_t now);
  // The chains its verifiers have verified (shared by all of them).
  const VerifiedChains& verified_chains() const { return *chains_; }

 private:
  Certificate root_;
  std::shared_ptr<VerifiedChains> chains_ = std::make_shared<VerifiedChains>();
  mutable std::shared_mutex mu_;
  std::optional<Crl> crl_;
};

// What a CrlRefresher keeps current: a bank or the registry.
class CrlHolder {
 public:
  virtual ~CrlHolder() = default;
  virtual const Certificate& root() const = 0;
  virtual Status install_crl(const Crl& crl) = 0;
  // The CRL in use, if any (it may have expired).
  virtual std::optional<Crl> crl() const = 0;
  virtual bool has_valid_crl() const = 0;
};

// Keeps a holder's CRL current: fetches it from the CA now and then every
// `interval` (every 2 s while the holder has none that is valid), caches the
// last accepted one in `cache_path`. If the CA is unreachable the last CRL stays
// in use until its next update; after that the holder refuses what it checks.
class CrlRefresher {
 public:
  // `name` and `refused` make the log lines: "zf <name>: ...; refusing <refused> ...".
  CrlRefresher(CrlHolder& holder, std::string name, std::string refused, std::string ca_url,
               std::string cache_path, std::chrono::seconds interval);
  ~CrlRefresher();
  CrlRefresher(const CrlRefresher&) = delete;

  // Fetches, verifies and installs the CA's current CRL (and caches it).
  Status refresh_now();
  // Starts / stops the background thread.
  void start();
  void stop();

 private:
  void loop();

  CrlHolder& holder_;
  std::string name_;
  std::string refused_;
  std::string ca_url_;
  std::string cache_path_;
  std::chrono::seconds interval_;
  std::mutex fetch_mu_;  // one fetch at a time
  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace zf::service
