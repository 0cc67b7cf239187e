// The certificate authority (DESIGN.md §2, §6.1): root key, issued
// certificates, enrollment codes for registration authorities, revocation and
// CRLs. No HTTP here; service.cc maps requests onto these calls.
#pragma once

#include <ctime>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "core/enroll.h"
#include "core/x509.h"
#include "store/sqlite.h"

namespace zf::ca {

// Who is calling, as established from a bearer token.
enum class Caller { anonymous, registration_authority, admin };

struct InitOptions {
  std::string dir;
  std::string name = "zhuanfu Root CA";
  std::string manufacturer_roots_pem;  // PEM of trusted manufacturer roots (may be empty)
  int root_validity_days = 3650;
};

// Creates a CA state directory: root key (0600) and certificate, TLS certificate,
// database and an admin token (0600). Fails if the directory already holds a CA.
Status init_ca(const InitOptions& opts);

struct IssuedCert {
  std::string serial;
  Certificate cert;
  std::string role;
  std::optional<std::time_t> revoked_at;
};

struct EnrollmentCode {
  std::string code;  // shown once; only its hash is stored
  std::string user_id;
  std::time_t expires_at;
};

// A certificate request as it arrives on the wire.
struct CertRequest {
  std::string role;
  std::string csr_pem;
  std::optional<Json> attestation;
  std::string enrollment_code;
  int validity_days = 0;  // 0: the role's default
};

class Authority {
 public:
  // Opens an initialized state directory.
  static Result<std::unique_ptr<Authority>> open(const std::string& dir);
  // Replaces the clock (tests).
  void set_clock(std::function<std::time_t()> clock) { clock_ = std::move(clock); }

  const Certificate& root() const { return root_; }
  const Certificate& tls_cert() const { return tls_cert_; }
  const PrivateKey& tls_key() const { return tls_key_; }

  // Maps a bearer token to a caller (constant work per token: a hash lookup).
  Caller authenticate(std::string_view bearer);
  // Adds a registration authority and returns its token (shown once).
  Result<std::string> add_registration_authority(const std::string& name);
  // Adds a trusted manufacturer root (PEM).
  Status trust_manufacturer(std::string_view pem);

  // One-time code binding an enrollment to `user_id`; only an RA or admin may ask.
  Result<EnrollmentCode> issue_enrollment_code(Caller caller, const std::string& user_id, std::int64_t ttl_s);
  // Verifies and issues. secure-element: attestation + enrollment code; other roles: admin only.
  Result<IssuedCert> issue(Caller caller, const CertRequest& req);
  Result<IssuedCert> find_by_serial(const std::string& serial_hex);
  Result<IssuedCert> find_by_key_id(const std::string& ski_hex);
  Result<std::vector<IssuedCert>> list(Caller caller);
  // The secure-element certificates of the SE named `who` or, if there is no
  // such SE, of every SE of the user `who`; newest first, revoked ones included
  // (flagged). Public: a payer's terminal resolves its payee with it.
  // not_found when there are none.
  Result<std::vector<IssuedCert>> find_secure_elements(const std::string& who);
  Status revoke(Caller caller, const std::string& serial_hex, const std::string& reason);
  // A freshly signed CRL of every revoked certificate; next update after the
  // CRL validity (one day unless set).
  Result<Crl> crl();
  // How long each CRL is valid, in seconds (a short one for tests of a network
  // that must keep its CRLs fresh by itself).
  void set_crl_validity(std::int64_t seconds) { crl_validity_s_ = seconds; }

 private:
  Authority() = default;
  Result<IssuedCert> store_issued(const Certificate& cert, Role role,
                                  const std::function<Status()>& in_same_tx);
  Result<IssuedCert> row_to_issued(store::Stmt& st);
  // Steps `st` to its end, appending each row as an IssuedCert.
  Status append_rows(store::Stmt& st, std::vector<IssuedCert>& out);
  std::time_t now() const { return clock_ ? clock_() : std::time(nullptr); }
  // The service kinds ("bank", "registry") this CA certified `cn` for in an
  // unrevoked certificate still valid at `t`: what its TLS certificate will name.
  Result<std::vector<std::string>> service_kinds_of(const std::string& cn, std::time_t t);

  std::mutex mu_;  // one writer at a time over the single connection
  std::string dir_;
  std::unique_ptr<store::Db> db_;
  Certificate root_{nullptr};
  std::unique_ptr<PrivateKey> root_key_;
  Certificate tls_cert_{nullptr};
  PrivateKey tls_key_{nullptr};
  std::function<std::time_t()> clock_;
  std::int64_t crl_validity_s_ = 86400;
};

}  // namespace zf::ca
