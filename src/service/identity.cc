#include "service/identity.h"

#include "store/file.h"

#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <sstream>

namespace zf::service {
namespace fs = std::filesystem;
namespace {

template <class T>
std::unexpected<Error> up(const Result<T>& r) {
  return std::unexpected(r.error());
}

// A new key certified by the CA for `role` with CN `id`; fails unless the
// certificate is for exactly this key, name and role and chains to `root`.
Result<std::pair<PrivateKey, Certificate>> certify_new_key(const std::string& id, Role role,
                                                           const CertVerifier& verifier,
                                                           const CertificateIssuer& issue) {
  auto key = PrivateKey::generate();
  if (!key) return up(key);
  auto csr = make_csr_pem(*key, CsrInfo{id, ""});
  if (!csr) return up(csr);
  auto cert = issue(std::string(role_name(role)), *csr);
  if (!cert) return up(cert);
  if (!cert->has_role(role) || cert->subject_cn() != id ||
      cert->public_key().spki_der() != key->public_key().spki_der())
    return fail(Errc::cert_wrong_role, "the CA returned a certificate that is not our " +
                                           std::string(role_name(role)) + " certificate");
  if (auto ok = verifier.verify({*cert}, role); !ok) return up(ok);
  return std::pair{std::move(*key), std::move(*cert)};
}

}  // namespace

bool valid_name(std::string_view s, std::size_t max_len, std::string_view extra) {
  if (s.empty() || s.size() > max_len) return false;
  for (char c : s)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || extra.find(c) != std::string_view::npos))
      return false;
  return true;
}

Result<std::string> read_text_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return fail(Errc::io_error, "cannot read " + path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

Status write_text_file(const std::string& path, std::string_view data, unsigned mode) {
  return store::write_file_atomic(path, data, mode);
}

Bytes token_hash(std::string_view token) { return sha256(as_bytes(token)); }

Result<ServiceConfig> read_service_config(const std::string& dir, std::string_view file,
                                          std::string_view what) {
  auto text = read_text_file((fs::path(dir) / file).string());
  if (!text)
    return fail(Errc::not_found, "no " + std::string(what) + " in " + dir + " (run `zf " +
                                     std::string(what) + " init`)");
  auto j = parse_json_strict(*text);
  if (!j) return up(j);
  auto id = get_string(*j, "id", 64);
  if (!id) return up(id);
  auto url = get_string(*j, "ca_url", 1024);
  if (!url) return up(url);
  std::string db;
  if (j->contains("db")) {
    auto d = get_string(*j, "db", 4096);
    if (!d) return up(d);
    db = std::move(*d);
  }
  return ServiceConfig{std::move(*id), std::move(*url), std::move(*j), std::move(db)};
}

Result<std::string> provision_identity(const IdentitySpec& spec, const std::string& ca_root_pem,
                                       const CertificateIssuer& issue) {
  auto root = Certificate::from_pem(ca_root_pem);
  if (!root) return up(root);
  CertVerifier verifier(*root);
  auto own = certify_new_key(spec.id, spec.role, verifier, issue);
  if (!own) return up(own);
  auto tls = certify_new_key(spec.id, Role::tls_server, verifier, issue);
  if (!tls) return up(tls);

  fs::path dir(spec.dir);
  std::string admin = b64url_encode(random_bytes(32));
  if (auto s = write_text_file((dir / kRootFile).string(), root->pem(), 0644); !s) return up(s);
  if (auto s = store::save_private_key((dir / spec.key_file).string(), own->first); !s) return up(s);
  if (auto s = write_text_file((dir / spec.chain_file).string(), own->second.pem() + root->pem(),
                               0644);
      !s)
    return up(s);
  if (auto s = store::save_private_key((dir / kTlsKey).string(), tls->first); !s) return up(s);
  if (auto s = write_text_file((dir / kTlsChain).string(), tls->second.pem() + root->pem(), 0644);
      !s)
    return up(s);
  if (auto s = write_text_file((dir / kAdminTokenFile).string(), admin + "\n", 0600); !s)
    return up(s);
  return admin;
}

Result<Identity> load_identity(const IdentitySpec& spec) {
  fs::path d(spec.dir);
  auto key = PrivateKey::load_pem_file((d / spec.key_file).string());
  if (!key) return up(key);
  auto chain_pem = read_text_file((d / spec.chain_file).string());
  if (!chain_pem) return up(chain_pem);
  auto chain = certificates_from_pem(*chain_pem);
  if (!chain) return up(chain);
  if (chain->empty() || chain->front().subject_cn() != spec.id ||
      !chain->front().has_role(spec.role))
    return fail(Errc::cert_wrong_role,
                spec.chain_file + " does not hold this service's " +
                    std::string(role_name(spec.role)) + " certificate");
  auto root_pem = read_text_file((d / kRootFile).string());
  if (!root_pem) return up(root_pem);
  auto root = Certificate::from_pem(*root_pem);
  if (!root) return up(root);
  return Identity{std::make_shared<OwnedKeySigner>(std::move(*key)), std::move(*chain),
                  std::move(*root)};
}

Result<TlsIdentity> load_tls(const std::string& dir) {
  auto pem = read_text_file((fs::path(dir) / kTlsChain).string());
  if (!pem) return up(pem);
  auto cert = Certificate::from_pem(*pem);
  if (!cert) return up(cert);
  auto key = PrivateKey::load_pem_file((fs::path(dir) / kTlsKey).string());
  if (!key) return up(key);
  return TlsIdentity{std::move(*cert), std::move(*key)};
}

}  // namespace zf::service
