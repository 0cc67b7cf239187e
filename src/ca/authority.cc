#include "ca/authority.h"

#include "store/file.h"

#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <sstream>

namespace zf::ca {
namespace fs = std::filesystem;
namespace {

constexpr std::string_view kSchema = R"sql(
CREATE TABLE IF NOT EXISTS certificates (
  serial TEXT PRIMARY KEY,            -- never reused: the primary key refuses a repeat
  ski TEXT NOT NULL,
  subject_cn TEXT NOT NULL,
  user_id TEXT NOT NULL,
  role TEXT NOT NULL,
  not_after INTEGER NOT NULL,
  der BLOB NOT NULL,
  issued_at INTEGER NOT NULL,
  revoked_at INTEGER,
  reason TEXT
);
CREATE INDEX IF NOT EXISTS certificates_ski ON certificates(ski);
CREATE TABLE IF NOT EXISTS enrollment_codes (
  code_hash BLOB PRIMARY KEY,
  user_id TEXT NOT NULL,
  issued_by TEXT NOT NULL,
  expires_at INTEGER NOT NULL,
  used_at INTEGER,
  used_serial TEXT
);
CREATE TABLE IF NOT EXISTS tokens (
  token_hash BLOB PRIMARY KEY,
  role TEXT NOT NULL,
  name TEXT NOT NULL UNIQUE
);
CREATE TABLE IF NOT EXISTS manufacturer_roots (der BLOB PRIMARY KEY);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
INSERT OR IGNORE INTO meta(key, value) VALUES ('crl_number', 1);
)sql";

Result<std::string> read_file(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  if (!in) return fail(Errc::io_error, "cannot read " + p.string());
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

Status write_file(const fs::path& p, std::string_view data, mode_t mode) {
  return store::write_file_atomic(p.string(), data, mode);
}

Bytes token_hash(std::string_view token) { return sha256(as_bytes(token)); }

std::string new_token() { return b64url_encode(random_bytes(32)); }

int default_validity_days(Role role) { return role == Role::secure_element ? 730 : 365; }

Status add_token(store::Db& db, const std::string& role, const std::string& name, const std::string& token) {
  auto st = db.prepare("INSERT INTO tokens(token_hash, role, name) VALUES (?1, ?2, ?3)");
  if (!st) return std::unexpected(st.error());
  Bytes h = token_hash(token);
  auto r = st->bind(1, ByteView(h)).bind(2, role).bind(3, name).run();
  if (!r && r.error().code == Errc::conflict)
    return fail(Errc::conflict, "a token named '" + name + "' exists", "name");
  return r;
}

bool valid_user_id(std::string_view s) {
  if (s.empty() || s.size() > 64) return false;
  for (char c : s)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-' || c == '@'))
      return false;
  return true;
}

}  // namespace

Status init_ca(const InitOptions& opts) {
  fs::path dir(opts.dir);
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (fs::exists(dir / "root.key")) return fail(Errc::conflict, "a CA already exists in " + opts.dir);
  auto key = PrivateKey::generate(SigAlg::ES256);
  if (!key) return std::unexpected(key.error());
  std::time_t now = std::time(nullptr);
  IssueParams rp;
  rp.common_name = opts.name;
  rp.not_before = now - 60;
  rp.not_after = now + std::int64_t{opts.root_validity_days} * 86400;
  rp.serial = new_serial();
  auto root = make_self_signed_ca(*key, rp);
  if (!root) return std::unexpected(root.error());

  auto tls_key = PrivateKey::generate(SigAlg::ES256);
  if (!tls_key) return std::unexpected(tls_key.error());
  IssueParams tp;
  tp.common_name = "localhost";
  tp.roles = {Role::tls_server};
  tp.dns_names = {"localhost"};
  tp.ip_addrs = {"127.0.0.1"};
  // The CA's id is its root's name: every client already holds the root.
  tp.uris = {service_uri("ca", opts.name)};
  tp.not_before = now - 60;
  tp.not_after = now + 365 * 86400;
  tp.serial = new_serial();
  auto tls = issue_certificate(*root, *key, tls_key->public_key(), tp);
  if (!tls) return std::unexpected(tls.error());

  auto db = store::Db::open((dir / "ca.db").string());
  if (!db) return std::unexpected(db.error());
  if (auto s = (*db)->exec(kSchema); !s) return s;
  std::string admin = new_token();
  Status s = (*db)->transaction([&]() -> Status {
    if (auto t = add_token(**db, "admin", "admin", admin); !t) return t;
    auto st = (*db)->prepare(
        "INSERT INTO certificates(serial, ski, subject_cn, user_id, role, not_after, der, issued_at)"
        " VALUES (?1, ?2, ?3, '', 'tls-server', ?4, ?5, ?6)");
    if (!st) return std::unexpected(st.error());
    Bytes der = tls->der();
    return st->bind(1, tls->serial_hex()).bind(2, tls->subject_key_id()).bind(3, tls->subject_cn())
        .bind(4, std::int64_t{tls->not_after()}).bind(5, ByteView(der)).bind(6, std::int64_t{now}).run();
  });
  if (!s) return s;
  if (auto w = write_file(dir / "root.pem", root->pem(), 0644); !w) return w;
  if (auto w = write_file(dir / "tls.pem", tls->pem() + root->pem(), 0644); !w) return w;
  if (auto w = store::save_private_key((dir / "tls.key").string(), *tls_key); !w) return w;
  if (auto w = write_file(dir / "admin.token", admin + "\n", 0600); !w) return w;
  // The root key is written last: its presence marks a complete CA directory.
  if (auto w = store::save_private_key((dir / "root.key").string(), *key); !w) return w;
  if (!opts.manufacturer_roots_pem.empty()) {
    auto ca = Authority::open(opts.dir);
    if (!ca) return std::unexpected(ca.error());
    return (*ca)->trust_manufacturer(opts.manufacturer_roots_pem);
  }
  return {};
}

Result<std::unique_ptr<Authority>> Authority::open(const std::string& dir) {
  fs::path d(dir);
  std::unique_ptr<Authority> ca(new Authority());
  ca->dir_ = dir;
  auto key = PrivateKey::load_pem_file((d / "root.key").string());
  if (!key) return fail(Errc::not_found, "no CA in " + dir + " (run `zf ca init`)");
  ca->root_key_ = std::make_unique<PrivateKey>(std::move(*key));
  auto root_pem = read_file(d / "root.pem");
  if (!root_pem) return std::unexpected(root_pem.error());
  auto root = Certificate::from_pem(*root_pem);
  if (!root) return std::unexpected(root.error());
  ca->root_ = std::move(*root);
  auto tls_pem = read_file(d / "tls.pem");
  if (!tls_pem) return std::unexpected(tls_pem.error());
  auto tls = Certificate::from_pem(*tls_pem);
  if (!tls) return std::unexpected(tls.error());
  ca->tls_cert_ = std::move(*tls);
  auto tls_key = PrivateKey::load_pem_file((d / "tls.key").string());
  if (!tls_key) return std::unexpected(tls_key.error());
  ca->tls_key_ = std::move(*tls_key);
  auto db = store::Db::open((d / "ca.db").string());
  if (!db) return std::unexpected(db.error());
  ca->db_ = std::move(*db);
  if (auto s = ca->db_->exec(kSchema); !s) return std::unexpected(s.error());
  return ca;
}

Caller Authority::authenticate(std::string_view bearer) {
  if (bearer.empty() || bearer.size() > 256) return Caller::anonymous;
  std::lock_guard lock(mu_);
  auto st = db_->prepare("SELECT role FROM tokens WHERE token_hash = ?1");
  if (!st) return Caller::anonymous;
  Bytes h = token_hash(bearer);
  auto row = st->bind(1, ByteView(h)).step();
  if (!row || !*row) return Caller::anonymous;
  std::string role = st->col_text(0);
  if (role == "admin") return Caller::admin;
  if (role == "ra") return Caller::registration_authority;
  return Caller::anonymous;
}

Result<std::string> Authority::add_registration_authority(const std::string& name) {
  if (!valid_user_id(name)) return fail(Errc::bad_field, "name: 1..64 of [A-Za-z0-9._-@]", "name");
  std::lock_guard lock(mu_);
  std::string token = new_token();
  if (auto s = add_token(*db_, "ra", name, token); !s) return std::unexpected(s.error());
  return token;
}

Status Authority::trust_manufacturer(std::string_view pem) {
  auto certs = certificates_from_pem(pem);
  if (!certs) return std::unexpected(certs.error());
  std::lock_guard lock(mu_);
  for (const auto& c : *certs) {
    if (!c.is_ca()) return fail(Errc::bad_field, "a manufacturer root must be a CA certificate");
    auto st = db_->prepare("INSERT OR IGNORE INTO manufacturer_roots(der) VALUES (?1)");
    if (!st) return std::unexpected(st.error());
    Bytes der = c.der();
    if (auto r = st->bind(1, ByteView(der)).run(); !r) return r;
  }
  return {};
}

Result<EnrollmentCode> Authority::issue_enrollment_code(Caller caller, const std::string& user_id,
                                                        std::int64_t ttl_s) {
  if (caller == Caller::anonymous) return fail(Errc::unauthorized, "registration authority token required");
  if (!valid_user_id(user_id)) return fail(Errc::bad_field, "1..64 of [A-Za-z0-9._-@]", "user_id");
  if (ttl_s < 1 || ttl_s > 30 * 86400) return fail(Errc::bad_field, "ttl_s must be 1..2592000", "ttl_s");
  std::lock_guard lock(mu_);
  EnrollmentCode code{b64url_encode(random_bytes(16)), user_id, now() + ttl_s};
  auto st = db_->prepare(
      "INSERT INTO enrollment_codes(code_hash, user_id, issued_by, expires_at) VALUES (?1, ?2, ?3, ?4)");
  if (!st) return std::unexpected(st.error());
  Bytes h = token_hash(code.code);
  if (auto r = st->bind(1, ByteView(h)).bind(2, user_id)
                   .bind(3, caller == Caller::admin ? "admin" : "ra").bind(4, std::int64_t{code.expires_at}).run();
      !r)
    return std::unexpected(r.error());
  return code;
}

// Issuance, secure-element role:
//   1. parse the CSR and check its self-signature (proof of possession);
//   2. verify the attestation chain against a trusted manufacturer root and its
//      signature over the CSR key; the CSR names the attested device;
//   3. one transaction: consume the enrollment code (unknown/used/expired/other
//      user are refused) and record the new certificate. Nothing is stored on failure.
// Other roles need the admin token and skip 2 and the code.
Result<IssuedCert> Authority::issue(Caller caller, const CertRequest& req) {
  auto role = role_from_name(req.role);
  if (!role) return std::unexpected(role.error());
  if (*role == Role::se_attestation)
    return fail(Errc::forbidden, "attestation certificates come from the manufacturer", "role");
  if (*role != Role::secure_element && caller != Caller::admin)
    return fail(caller == Caller::anonymous ? Errc::unauthorized : Errc::forbidden,
                "role " + req.role + " needs the admin token");
  if (req.validity_days < 0 || req.validity_days > 3650)
    return fail(Errc::bad_field, "validity_days must be 0..3650", "validity_days");
  auto csr = parse_csr_pem(req.csr_pem);
  if (!csr) return std::unexpected(csr.error());

  if (*role == Role::secure_element) {
    if (!req.attestation) return fail(Errc::attestation_missing, "SE certificates need a device attestation", "attestation");
    if (req.enrollment_code.empty()) return fail(Errc::missing_field, "required", "enrollment_code");
    if (!valid_user_id(csr->info.user_id)) return fail(Errc::csr_malformed, "CSR must carry the user id (UID)", "csr");
    auto att = attestation_from_json(*req.attestation);
    if (!att) return std::unexpected(att.error());
    std::vector<Certificate> roots;
    {
      std::lock_guard lock(mu_);
      auto st = db_->prepare("SELECT der FROM manufacturer_roots");
      if (!st) return std::unexpected(st.error());
      for (;;) {
        auto row = st->step();
        if (!row) return std::unexpected(row.error());
        if (!*row) break;
        auto c = Certificate::from_der(st->col_blob(0));
        if (c) roots.push_back(std::move(*c));
      }
    }
    Status verdict = fail(Errc::attestation_untrusted, "no trusted manufacturer", "attestation.x5c");
    for (const auto& r : roots) {
      CertVerifier v(r);
      if (clock_) v.set_time(now());
      verdict = verify_attestation(*att, v, csr->key);
      if (verdict || verdict.error().code != Errc::attestation_untrusted) break;
    }
    if (!verdict) return std::unexpected(verdict.error());
    if (att->chain.front().subject_cn() != csr->info.common_name)
      return fail(Errc::bad_field, "CSR common name must be the attested SE id", "csr");
  }

  IssueParams p;
  p.common_name = csr->info.common_name;
  p.user_id = csr->info.user_id;
  p.roles = {*role};
  std::time_t t = now();
  if (*role == Role::tls_server) {
    p.dns_names = {"localhost"};
    p.ip_addrs = {"127.0.0.1"};
    // The certificate also names the service it serves, so a client that means
    // to reach bank-a refuses the registry's endpoint (docs/ca-api.md "TLS
    // certificates"). The kind comes from what this CA certified the same id
    // for, never from the request; an id with no such certificate gets a TLS
    // certificate that names no service, which no client of ours accepts.
    auto kinds = service_kinds_of(p.common_name, t);
    if (!kinds) return std::unexpected(kinds.error());
    for (const auto& kind : *kinds) p.uris.push_back(service_uri(kind, p.common_name));
  }
  p.not_before = t - 60;
  p.not_after = t + std::int64_t{req.validity_days ? req.validity_days : default_validity_days(*role)} * 86400;

  std::lock_guard lock(mu_);
  // A random 128-bit serial practically never collides; the primary key makes sure.
  for (int attempt = 0; attempt < 3; ++attempt) {
    p.serial = new_serial();
    auto cert = issue_certificate(root_, *root_key_, csr->key, p);
    if (!cert) return std::unexpected(cert.error());
    std::function<Status()> consume_code = [] { return Status{}; };
    if (*role == Role::secure_element) {
      consume_code = [&]() -> Status {
        Bytes h = token_hash(req.enrollment_code);
        auto st = db_->prepare("SELECT user_id, expires_at, used_at FROM enrollment_codes WHERE code_hash = ?1");
        if (!st) return std::unexpected(st.error());
        auto row = st->bind(1, ByteView(h)).step();
        if (!row) return std::unexpected(row.error());
        if (!*row) return fail(Errc::enrollment_code_unknown, "no such enrollment code", "enrollment_code");
        if (!st->col_null(2)) return fail(Errc::enrollment_code_used, "code already used", "enrollment_code");
        if (st->col_int(1) <= t) return fail(Errc::enrollment_code_expired, "code expired", "enrollment_code");
        if (st->col_text(0) != csr->info.user_id)
          return fail(Errc::enrollment_code_wrong_user, "code was issued for another user id", "enrollment_code");
        // Safety-critical: the code is consumed in the same transaction that records the certificate.
        auto up = db_->prepare(
            "UPDATE enrollment_codes SET used_at = ?1, used_serial = ?2 WHERE code_hash = ?3 AND used_at IS NULL");
        if (!up) return std::unexpected(up.error());
        if (auto r = up->bind(1, std::int64_t{t}).bind(2, cert->serial_hex()).bind(3, ByteView(h)).run(); !r) return r;
        if (db_->changes() != 1) return fail(Errc::enrollment_code_used, "code already used", "enrollment_code");
        return {};
      };
    }
    auto issued = store_issued(*cert, *role, consume_code);
    if (issued || issued.error().code != Errc::conflict || issued.error().field != "serial") return issued;
  }
  return fail(Errc::internal, "could not allocate a unique serial");
}

Result<std::vector<std::string>> Authority::service_kinds_of(const std::string& cn, std::time_t t) {
  std::lock_guard lock(mu_);
  auto st = db_->prepare(
      "SELECT DISTINCT role FROM certificates WHERE subject_cn = ?1 AND role IN ('custody', 'registry')"
      " AND revoked_at IS NULL AND not_after > ?2 ORDER BY role");
  if (!st) return std::unexpected(st.error());
  st->bind(1, cn).bind(2, std::int64_t{t});
  std::vector<std::string> kinds;
  for (;;) {
    auto row = st->step();
    if (!row) return std::unexpected(row.error());
    if (!*row) break;
    kinds.push_back(st->col_text(0) == "custody" ? "bank" : "registry");
  }
  return kinds;
}

Result<IssuedCert> Authority::store_issued(const Certificate& cert, Role role,
                                           const std::function<Status()>& in_same_tx) {
  Status s = db_->transaction([&]() -> Status {
    if (auto c = in_same_tx(); !c) return c;
    auto st = db_->prepare(
        "INSERT INTO certificates(serial, ski, subject_cn, user_id, role, not_after, der, issued_at)"
        " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)");
    if (!st) return std::unexpected(st.error());
    Bytes der = cert.der();
    auto r = st->bind(1, cert.serial_hex()).bind(2, cert.subject_key_id()).bind(3, cert.subject_cn())
                 .bind(4, cert.user_id()).bind(5, role_name(role)).bind(6, std::int64_t{cert.not_after()})
                 .bind(7, ByteView(der)).bind(8, std::int64_t{now()}).run();
    if (!r && r.error().code == Errc::conflict) return fail(Errc::conflict, "serial reused", "serial");
    return r;
  });
  if (!s) return std::unexpected(s.error());
  return IssuedCert{cert.serial_hex(), cert, std::string(role_name(role)), std::nullopt};
}

Result<IssuedCert> Authority::row_to_issued(store::Stmt& st) {
  auto cert = Certificate::from_der(st.col_blob(1));
  if (!cert) return std::unexpected(cert.error());
  IssuedCert out{st.col_text(0), std::move(*cert), st.col_text(2), std::nullopt};
  if (!st.col_null(3)) out.revoked_at = st.col_int(3);
  return out;
}

Result<IssuedCert> Authority::find_by_serial(const std::string& serial_hex) {
  if (serial_hex.empty() || serial_hex.size() > 64) return fail(Errc::bad_field, "bad serial", "serial");
  std::lock_guard lock(mu_);
  auto st = db_->prepare("SELECT serial, der, role, revoked_at FROM certificates WHERE serial = ?1");
  if (!st) return std::unexpected(st.error());
  auto row = st->bind(1, serial_hex).step();
  if (!row) return std::unexpected(row.error());
  if (!*row) return fail(Errc::not_found, "no certificate with serial " + serial_hex, "serial");
  return row_to_issued(*st);
}

Result<IssuedCert> Authority::find_by_key_id(const std::string& ski_hex) {
  if (ski_hex.empty() || ski_hex.size() > 128) return fail(Errc::bad_field, "bad key id", "ski");
  std::lock_guard lock(mu_);
  auto st = db_->prepare(
      "SELECT serial, der, role, revoked_at FROM certificates WHERE ski = ?1 ORDER BY issued_at DESC LIMIT 1");
  if (!st) return std::unexpected(st.error());
  auto row = st->bind(1, ski_hex).step();
  if (!row) return std::unexpected(row.error());
  if (!*row) return fail(Errc::not_found, "no certificate with key id " + ski_hex, "ski");
  return row_to_issued(*st);
}

Result<std::vector<IssuedCert>> Authority::find_secure_elements(const std::string& who) {
  if (who.empty() || who.size() > 128) return fail(Errc::bad_field, "bad SE or user id", "id");
  std::lock_guard lock(mu_);
  std::vector<IssuedCert> out;
  // The SE's own name first; a user's SEs only when no SE has that name.
  for (const char* column : {"subject_cn", "user_id"}) {
    auto st = db_->prepare(std::string("SELECT serial, der, role, revoked_at FROM certificates WHERE role = "
                                       "'secure-element' AND ") +
                           column + " = ?1 ORDER BY issued_at DESC, serial LIMIT 64");
    if (!st) return std::unexpected(st.error());
    st->bind(1, who);
    if (auto s = append_rows(*st, out); !s) return std::unexpected(s.error());
    if (!out.empty()) return out;
  }
  return fail(Errc::not_found, "no secure element and no user '" + who + "' is certified by this CA", "payee");
}

Result<std::vector<IssuedCert>> Authority::list(Caller caller) {
  if (caller != Caller::admin) return fail(caller == Caller::anonymous ? Errc::unauthorized : Errc::forbidden, "admin only");
  std::lock_guard lock(mu_);
  auto st = db_->prepare("SELECT serial, der, role, revoked_at FROM certificates ORDER BY issued_at, serial");
  if (!st) return std::unexpected(st.error());
  std::vector<IssuedCert> out;
  if (auto s = append_rows(*st, out); !s) return std::unexpected(s.error());
  return out;
}

Status Authority::append_rows(store::Stmt& st, std::vector<IssuedCert>& out) {
  for (;;) {
    auto row = st.step();
    if (!row) return std::unexpected(row.error());
    if (!*row) return {};
    auto c = row_to_issued(st);
    if (!c) return std::unexpected(c.error());
    out.push_back(std::move(*c));
  }
}

Status Authority::revoke(Caller caller, const std::string& serial_hex, const std::string& reason) {
  if (caller != Caller::admin)
    return fail(caller == Caller::anonymous ? Errc::unauthorized : Errc::forbidden, "admin only");
  if (reason.size() > 256) return fail(Errc::bad_field, "reason too long", "reason");
  std::lock_guard lock(mu_);
  return db_->transaction([&]() -> Status {
    auto st = db_->prepare("UPDATE certificates SET revoked_at = ?1, reason = ?2 WHERE serial = ?3 AND revoked_at IS NULL");
    if (!st) return std::unexpected(st.error());
    if (auto r = st->bind(1, std::int64_t{now()}).bind(2, reason).bind(3, serial_hex).run(); !r) return r;
    if (db_->changes() == 0) {
      auto q = db_->prepare("SELECT 1 FROM certificates WHERE serial = ?1");
      if (!q) return std::unexpected(q.error());
      auto row = q->bind(1, serial_hex).step();
      if (!row) return std::unexpected(row.error());
      if (!*row) return fail(Errc::not_found, "no certificate with serial " + serial_hex, "serial");
      return {};  // already revoked: revoking again changes nothing
    }
    return db_->exec("UPDATE meta SET value = value + 1 WHERE key = 'crl_number'");
  });
}

Result<Crl> Authority::crl() {
  std::lock_guard lock(mu_);
  CrlParams p;
  auto st = db_->prepare("SELECT serial, revoked_at FROM certificates WHERE revoked_at IS NOT NULL ORDER BY serial");
  if (!st) return std::unexpected(st.error());
  for (;;) {
    auto row = st->step();
    if (!row) return std::unexpected(row.error());
    if (!*row) break;
    auto serial = hex_decode((st->col_text(0).size() % 2 ? "0" : "") + st->col_text(0));
    if (!serial) return std::unexpected(serial.error());
    p.revoked.push_back({std::move(*serial), static_cast<std::time_t>(st->col_int(1))});
  }
  auto num = db_->prepare("SELECT value FROM meta WHERE key = 'crl_number'");
  if (!num) return std::unexpected(num.error());
  if (auto row = num->step(); row && *row) p.number = static_cast<std::uint64_t>(num->col_int(0));
  p.this_update = now() - 60;
  p.next_update = now() + crl_validity_s_;
  return make_crl(root_, *root_key_, p);
}

}  // namespace zf::ca
