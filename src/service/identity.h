// A certified service's state directory (DESIGN.md §2): its own key and
// certificate for its role (custody, registry), a TLS key and certificate, the
// CA root it trusts and an admin token. Banks and the registry are set up and
// opened the same way; only the role and the file names of the key differ.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/crypto.h"
#include "core/jose.h"
#include "core/json.h"
#include "core/x509.h"

namespace zf::service {

// Files every service directory holds.
inline constexpr std::string_view kTlsKey = "tls.key";              // 0600
inline constexpr std::string_view kTlsChain = "tls.pem";            // tls cert, root
inline constexpr std::string_view kRootFile = "root.pem";
inline constexpr std::string_view kAdminTokenFile = "admin.token";  // 0600
inline constexpr std::string_view kCrlCache = "crl.pem";            // the last CRL accepted

// True for 1..max_len characters of [A-Za-z0-9] and `extra`.
bool valid_name(std::string_view s, std::size_t max_len, std::string_view extra);
Result<std::string> read_text_file(const std::string& path);
// Writes atomically (temp file + rename) with `mode`.
Status write_text_file(const std::string& path, std::string_view data, unsigned mode);
// What the database keeps of an admin token.
Bytes token_hash(std::string_view token);

// What every service's config file (bank.json, registry.json) holds, and the
// whole parsed file for the service's own fields.
struct ServiceConfig {
  std::string id;
  std::string ca_url;
  Json json;
  std::string db_url;  // "db": the service's PostgreSQL database; empty for its SQLite file
};
// Reads `path` strictly; `what` names the service for "no bank in ..." messages.
Result<ServiceConfig> read_service_config(const std::string& dir, std::string_view file,
                                          std::string_view what);

// A Signer over a key the service owns (loaded from its key file).
class OwnedKeySigner final : public Signer {
 public:
  explicit OwnedKeySigner(PrivateKey key) : key_(std::move(key)) {}
  SigAlg alg() const override { return key_.alg(); }
  Result<Bytes> sign(ByteView message) const override { return key_.sign(message); }

 private:
  PrivateKey key_;
};

// Asks the CA to certify `csr_pem` for `role` ("custody", "registry", "tls-server").
using CertificateIssuer =
    std::function<Result<Certificate>(const std::string& role, const std::string& csr_pem)>;

// Who a service is and where its key lives.
struct IdentitySpec {
  std::string dir;
  std::string id;          // the certificate's CN: 1..64 of [A-Za-z0-9._-]
  Role role;               // Role::custody, Role::registry
  std::string key_file;    // e.g. "custody.key" (0600)
  std::string chain_file;  // e.g. "custody.pem": [certificate, root]
};

// Generates the service key and a TLS key, has the CA certify them (role with
// CN = id; tls-server), checks that what came back is ours, and writes the key
// files, the chains, root.pem and a fresh admin token. Returns the admin token
// so that the caller stores its hash; the caller writes its config file last.
Result<std::string> provision_identity(const IdentitySpec& spec, const std::string& ca_root_pem,
                                       const CertificateIssuer& issue);

// A service's signing identity as loaded from its directory.
struct Identity {
  std::shared_ptr<const Signer> signer;
  std::vector<Certificate> chain;  // [certificate, root]
  Certificate root;
};
// Loads what provision_identity wrote; the chain's leaf must carry `role` and CN `id`.
Result<Identity> load_identity(const IdentitySpec& spec);

// The TLS certificate and key a service serves with.
struct TlsIdentity {
  Certificate cert;
  PrivateKey key;
};
Result<TlsIdentity> load_tls(const std::string& dir);

}  // namespace zf::service
