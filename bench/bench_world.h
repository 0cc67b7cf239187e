// Shared set-up for the benchmarks, in the shape of the test fixtures
// (tests/ca/ca_fixture.h, tests/se/se_fixture.h, tests/bank/bank_fixture.h) but
// without GoogleTest, since `zf` links this code: a manufacturer and a CA in a
// temporary directory, SEs taken from the factory to active over their APDU
// interface, and a bank on SQLite (WAL, synchronous=FULL) in the same directory.
// Set-up is never timed; a set-up failure throws and ends the run (run.cc).
#pragma once

#include <benchmark/benchmark.h>

#include <cstdint>
#include <ctime>
#include <filesystem>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "bank/bank.h"
#include "ca/authority.h"
#include "core/document.h"
#include "registry/registry.h"
#include "se/applet.h"
#include "se_host/device.h"
#include "wallet/se_client.h"

namespace zf::bench {

// Unwraps a set-up result; throws (the run stops, naming the step) when it failed.
template <class T>
T must(Result<T> r, std::string_view what) {
  if (!r) throw std::runtime_error(std::string(what) + ": " + r.error().message());
  return std::move(*r);
}
void must(const Status& s, std::string_view what);

// Marks the benchmark failed and returns true when `r` holds an error (use: if (failed(..))
// break;).
template <class R>
bool failed(benchmark::State& state, const R& r) {
  if (r) return false;
  state.SkipWithError(r.error().message().c_str());
  return true;
}

// A fresh directory under $TMPDIR (or /tmp), removed with everything in it.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

// A private key and the certificate that binds it.
struct KeyCert {
  PrivateKey key;
  Certificate cert;
};

inline constexpr const char* kPin = "123456";
inline constexpr const char* kPuk = "12345678";
inline constexpr const char* kBankId = "bank-bench";
inline constexpr const char* kRegistryId = "registry-bench";
inline constexpr const char* kAccount = "acct-bench";
inline constexpr const char* kCurrency = "CNY";

// Seconds since the epoch: every party runs on the system clock.
std::int64_t now_s();

// A manufacturer and a CA in a temporary directory; the CA is opened in-process.
class CaWorld {
 public:
  CaWorld();
  ca::Authority& ca() { return *ca_; }
  const std::filesystem::path& dir() const { return tmp_.path(); }
  const std::string& manufacturer_dir() const { return mfr_dir_; }
  const Certificate& root() const { return ca_->root(); }
  Crl crl();

  // A key with a `custody` certificate issued by the CA (admin), chain [cert].
  // A key with a certificate for `role` ("custody", "registry") issued by the CA.
  KeyCert certified_key(const std::string& role, const std::string& cn);
  // A key outside any SE enrolled as `se_id` with a genuine device attestation
  // and an enrollment code: possible only because we hold the manufacturer key.
  KeyCert enrolled_software_se(const std::string& se_id, const std::string& user_id);
  // Takes an SE from the factory to active over its own commands
  // (personalize -> CSR + attestation -> CA issues -> install -> CRL -> PIN);
  // the session ends verified.
  void activate(wallet::SeClient& se, const std::string& user_id);

 private:
  TempDir tmp_;
  std::string ca_dir_, mfr_dir_;
  std::unique_ptr<ca::Authority> ca_;
};

// Signs a document payload with `key`, `chain` in x5c (what an SE or a bank sends).
std::string sign_payload(const PrivateKey& key, const std::vector<Certificate>& chain,
                         const Json& payload);
// The payload of a compact JWS, unverified (we made it).
Json jws_payload(const std::string& jws);

// Two active SEs in-process (payer with e-cash, payee) and a bank key that
// signs their top-up receipts, as tests/se/se_fixture.h sets them up.
class SeWorld {
 public:
  SeWorld();
  // A bank-signed topup.receipt answering a topup.request payload.
  std::string topup_receipt(const Json& request);
  // Request, bank receipt, apply: `se` ends `minor` richer.
  void topup(wallet::SeClient& se, std::int64_t minor);
  // The registry's record that the payee won its claim for `note_jws`.
  std::string record_for(const std::string& note_jws);

  CaWorld world;
  KeyCert bank;
  KeyCert registry;
  std::unique_ptr<se::Applet> payer_applet, payee_applet;
  std::unique_ptr<wallet::SeClient> payer, payee;
  std::string payee_id = "se-payee";
  std::string payee_cert;  // the payee's certificate, as the payer's terminal fetches it

 private:
  std::int64_t receipts_ = 0;
};

// An emulated SE device (applet + sealed state file, fsync + rename per change)
// with e-cash, driven through the same SeClient; receipts from SeWorld's bank key.
class SeDeviceWorld {
 public:
  SeDeviceWorld();
  CaWorld world;
  KeyCert bank;
  std::unique_ptr<se::Device> device;
  std::unique_ptr<wallet::SeClient> client;
  std::string payee_cert;  // an SE "se-payee" certified by this world's CA
};

// A bank on SQLite (WAL, synchronous=FULL) in a temporary directory, with one
// customer account owned by an enrolled SE that has e-cash outstanding. With a
// registry, the bank claims every document at a Registry on its own SQLite
// file in the same directory, called in-process (no HTTPS).
class BankWorld {
 public:
  explicit BankWorld(bool with_registry = false);
  // A signed topup.request / deposit.note for `minor` from the enrolled SE, fresh id each time.
  std::string topup_request(std::int64_t minor);
  std::string deposit_note(std::int64_t minor);

  CaWorld world;
  std::unique_ptr<registry::Registry> registry;  // set with_registry
  std::unique_ptr<bank::Bank> bank;

 private:
  Json se_payload(const std::string& type, std::int64_t minor);
  KeyCert se_;
  std::vector<Certificate> se_chain_;
  std::int64_t seq_ = 0;
};

// The same bank claiming every document at an in-process registry.
struct BankRegistryWorld : BankWorld {
  BankRegistryWorld() : BankWorld(/*with_registry=*/true) {}
};

// Functions run by release_worlds().
std::vector<std::function<void()>>& world_releasers();
// One world of each kind, built on first use and shared by every run of the
// benchmarks that need it (a CA and enrolled SEs take far longer to build than
// any measured operation takes to run).
template <class W>
W& shared_world() {
  static std::unique_ptr<W> world;
  if (!world) {
    world = std::make_unique<W>();
    world_releasers().push_back([] { world.reset(); });
  }
  return *world;
}
// Destroys the shared worlds and their temporary directories.
void release_worlds();

}  // namespace zf::bench
