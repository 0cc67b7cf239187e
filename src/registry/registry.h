// The transfer-record server's logic (DESIGN.md §1, §7; issue 4): verifies
// claims signed by certified processors (banks, SEs through their terminals),
// decides "first claim wins" atomically in its store, and answers with `record`
// documents signed by its `registry` key. No HTTP here; service.cc maps
// requests onto these calls. See docs/registry-api.md.
#pragma once

#include <ctime>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/document.h"
#include "core/x509.h"
#include "service/identity.h"
#include "service/serve.h"
#include "service/trust.h"
#include "core/claims.h"
#include "registry/store.h"

namespace zf::registry {

// Files of a registry state directory (and those of every service: service/identity.h).
inline constexpr std::string_view kConfigFile = "registry.json";    // {"id", "ca_url"}
inline constexpr std::string_view kRegistryKey = "registry.key";    // 0600
inline constexpr std::string_view kRegistryChain = "registry.pem";  // registry cert, root
inline constexpr std::string_view kDbFile = "registry.db";
using service::kAdminTokenFile;
using service::kCrlCache;
using service::kRootFile;
using service::kTlsChain;
using service::kTlsKey;

struct InitOptions {
  std::string dir;
  std::string registry_id;  // 1..64 of [A-Za-z0-9._-]; the registry certificate's CN
  std::string ca_url;       // where the CRL is fetched from
  std::string ca_root_pem;
  // Where the records are: postgresql://… (libpq's URI) or empty for registry.db in dir.
  std::string db_url;
};

// Asks the CA to certify `csr_pem` for `role` ("registry", "tls-server").
using service::CertificateIssuer;

// Creates a registry state directory: registry key (0600) and certificate (CN =
// registry id, role registry), TLS key and certificate, admin token (0600, only
// its hash is stored), registry.db, and registry.json last. Fails (conflict) if
// the directory already holds a registry.
Status init_registry(const InitOptions& opts, const CertificateIssuer& issue);

// A registry's settings as read from registry.json.
struct RegistryConfig {
  std::string id;
  std::string ca_url;
  std::string db_url;  // InitOptions::db_url; registry.db in the directory when empty
};
Result<RegistryConfig> read_config(const std::string& dir);
// The database URL of the registry in `dir` (its config's, else its registry.db).
std::string db_url_of(const std::string& dir, const RegistryConfig& config);

// The answer to a claim: the signed record and its status.
struct ClaimAnswer {
  RecordStatus status = RecordStatus::claimed;
  std::string record_jws;
};

class Registry final : public service::CrlHolder, public service::AdminGate {
 public:
  // `signer` is the registry key; `chain` is [registry certificate, root].
  Registry(std::string id, std::shared_ptr<const Signer> signer, std::vector<Certificate> chain,
           Certificate root, std::unique_ptr<RegistryStore> store);
  // Opens a state directory written by init_registry (and the cached CRL, if still valid).
  static Result<std::unique_ptr<Registry>> open(const std::string& dir);

  // Replaces the clock (tests); seconds since the epoch.
  void set_clock(std::function<std::time_t()> clock) { clock_ = std::move(clock); }
  const std::string& id() const { return id_; }
  const Certificate& certificate() const { return chain_.front(); }
  const std::vector<Certificate>& chain() const { return chain_; }
  const Certificate& root() const override { return trust_.root(); }
  RegistryStore& store() { return *store_; }

  // Accepts a CRL signed by our root whose next update is in the future and
  // that is not older than the one in use; claims are checked against it.
  Status install_crl(const Crl& crl) override { return trust_.install_crl(crl, now()); }
  // The CRL in use, if any (it may have expired).
  std::optional<Crl> crl() const override { return trust_.crl(); }
  // True when a CRL is installed and its next update is still in the future.
  bool has_valid_crl() const override { return trust_.has_valid_crl(now()); }

  // True for a bearer token whose hash is an admin token.
  bool authenticate_admin(std::string_view bearer) override;

  // Verifies a signed `claim` and claims its document id atomically. Every
  // accepted claim is answered with a signed record (status claimed,
  // already_processed or seq_reused); an error means the claim was not
  // considered and nothing was stored.
  Result<ClaimAnswer> claim(std::string_view claim_jws);
  // The stored record (status claimed) of a document id; not_found if none.
  // No access check: for the admin API and in-process callers.
  Result<std::string> query(std::string_view doc_id);
  // A record for a reader who is not the admin (docs/registry-api.md "Who may
  // read a record"): one who presents the document itself (`document_jws`: a
  // genuine SE document with this id and the digest the record holds), or a
  // `record.query` for this id (`request_jws`) signed by the record's claimant
  // or by the document's issuer. Exactly one of the two is non-empty. Anyone
  // else is forbidden, whether or not a record exists; a presented document of
  // which the registry holds another under the id is doc_id_reused.
  Result<std::string> read_record(std::string_view doc_id, std::string_view document_jws,
                                  std::string_view request_jws);
  // Admin: clone/rollback alerts with id > after_id, oldest first (limit 1..1000).
  Result<std::vector<Alert>> alerts(std::int64_t after_id = 0, int limit = 100);

 private:
  struct VerifiedClaim {
    SignedDocument doc;
    RecordRow row;  // record_jws and claimed_at not yet set
  };
  // CRL in hand, signature, chain, role (custody or secure-element), revocation,
  // type `claim`, time, processor = signer, known doc_type, doc_seq for SE documents.
  Result<VerifiedClaim> verify(std::string_view claim_jws);
  // Signs a record payload about `row` with `status`.
  // `doc_exp` (the claimed document's expiry) goes into the records of new claims.
  Result<std::string> sign_record(const RecordRow& row, RecordStatus status,
                                  std::optional<std::int64_t> claimed_at,
                                  std::optional<std::int64_t> doc_exp = std::nullopt);
  std::time_t now() const { return clock_ ? clock_() : std::time(nullptr); }

  std::string id_;
  std::shared_ptr<const Signer> signer_;
  std::vector<Certificate> chain_;
  service::TrustStore trust_;
  std::unique_ptr<RegistryStore> store_;
  std::function<std::time_t()> clock_;
};

// The longest a record.query may stay valid (its exp - now).
inline constexpr std::int64_t kRecordQueryMaxAgeS = 300;

// True for a document id as DESIGN.md §4 defines it: 1..128 of [A-Za-z0-9._:-].
bool is_doc_id(std::string_view s);

using service::read_text_file;
using service::write_text_file;

}  // namespace zf::registry
