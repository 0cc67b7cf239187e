#include "registry/registry.h"

#include <openssl/x509.h>
#include <sys/stat.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <sstream>

namespace zf::registry {
namespace fs = std::filesystem;
namespace {

template <class T>
std::unexpected<Error> up(const Result<T>& r) {
  return std::unexpected(r.error());
}

bool valid_name(std::string_view s, std::size_t max_len, std::string_view extra) {
  if (s.empty() || s.size() > max_len) return false;
  for (char c : s)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || extra.find(c) != std::string_view::npos))
      return false;
  return true;
}

Bytes token_hash(std::string_view token) { return sha256(as_bytes(token)); }

// "<registry>:rec:<document id>", or a digest of the id when that would not fit
// a document id. Only the stored "claimed" record carries this id.
std::string record_id(const std::string& registry, const std::string& doc_id) {
  std::string id = registry + ":rec:" + doc_id;
  if (id.size() <= 128) return id;
  return registry.substr(0, 64) + ":rec:h" + b64url_encode(sha256(as_bytes(doc_id)));
}

// Answers that are not stored (already_processed, seq_reused) are fresh
// statements: each gets its own random id, so no two records share an id.
std::string answer_id(const std::string& registry) {
  return registry.substr(0, 64) + ":ans:" + b64url_encode(random_bytes(16));
}

// The CRL's thisUpdate, for "never go back to an older list".
std::time_t crl_this_update(const Crl& crl) {
  const ASN1_TIME* t = X509_CRL_get0_lastUpdate(crl.get());
  if (!t) return 0;
  struct tm tm {};
  if (ASN1_TIME_to_tm(t, &tm) != 1) return 0;
  return timegm(&tm);
}

}  // namespace

bool is_doc_id(std::string_view s) { return valid_name(s, 128, "._:-"); }

Result<std::string> read_text_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return fail(Errc::io_error, "cannot read " + path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

Status write_text_file(const std::string& path, std::string_view data, unsigned mode) {
  std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    if (!out) return fail(Errc::io_error, "cannot write " + tmp);
    ::chmod(tmp.c_str(), static_cast<mode_t>(mode));
    out << data;
    if (!out.flush()) return fail(Errc::io_error, "cannot write " + tmp);
  }
  std::error_code ec;
  fs::rename(tmp, path, ec);
  if (ec) return fail(Errc::io_error, "cannot rename to " + path);
  return {};
}

// Initialization: generate keys and CSRs, have the CA certify them, then write
// the files. registry.json is written last: its presence marks a complete directory.
Status init_registry(const InitOptions& opts, const CertificateIssuer& issue) {
  if (!valid_name(opts.registry_id, 64, "._-"))
    return fail(Errc::bad_field, "registry id: 1..64 of [A-Za-z0-9._-]", "id");
  fs::path dir(opts.dir);
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (fs::exists(dir / kConfigFile))
    return fail(Errc::conflict, "a registry already exists in " + opts.dir);
  auto root = Certificate::from_pem(opts.ca_root_pem);
  if (!root) return up(root);
  CertVerifier v(*root);

  auto key = PrivateKey::generate();
  if (!key) return up(key);
  auto csr = make_csr_pem(*key, CsrInfo{opts.registry_id, ""});
  if (!csr) return up(csr);
  auto cert = issue("registry", *csr);
  if (!cert) return up(cert);
  if (!cert->has_role(Role::registry) || cert->subject_cn() != opts.registry_id ||
      cert->public_key().spki_der() != key->public_key().spki_der())
    return fail(Errc::cert_wrong_role,
                "the CA returned a certificate that is not our registry certificate");
  if (auto ok = v.verify({*cert}, Role::registry); !ok) return up(ok);

  auto tls_key = PrivateKey::generate();
  if (!tls_key) return up(tls_key);
  auto tls_csr = make_csr_pem(*tls_key, CsrInfo{opts.registry_id, ""});
  if (!tls_csr) return up(tls_csr);
  auto tls = issue("tls-server", *tls_csr);
  if (!tls) return up(tls);
  if (auto ok = v.verify({*tls}, Role::tls_server); !ok) return up(ok);

  std::string admin = b64url_encode(random_bytes(32));
  auto store = open_sqlite_store((dir / kDbFile).string());
  if (!store) return up(store);
  if (auto s = (*store)->add_admin_token(token_hash(admin), "admin"); !s) return s;

  if (auto s = write_text_file((dir / kRootFile).string(), root->pem(), 0644); !s) return s;
  if (auto s = key->save_pem_file((dir / kRegistryKey).string()); !s) return s;
  if (auto s = write_text_file((dir / kRegistryChain).string(), cert->pem() + root->pem(), 0644);
      !s)
    return s;
  if (auto s = tls_key->save_pem_file((dir / kTlsKey).string()); !s) return s;
  if (auto s = write_text_file((dir / kTlsChain).string(), tls->pem() + root->pem(), 0644); !s)
    return s;
  if (auto s = write_text_file((dir / kAdminTokenFile).string(), admin + "\n", 0600); !s) return s;
  Json config{{"id", opts.registry_id}, {"ca_url", opts.ca_url}};
  return write_text_file((dir / kConfigFile).string(), config.dump(2) + "\n", 0644);
}

Result<RegistryConfig> read_config(const std::string& dir) {
  auto text = read_text_file((fs::path(dir) / kConfigFile).string());
  if (!text) return fail(Errc::not_found, "no registry in " + dir + " (run `zf registry init`)");
  auto j = parse_json_strict(*text);
  if (!j) return up(j);
  auto id = get_string(*j, "id", 64);
  if (!id) return up(id);
  auto url = get_string(*j, "ca_url", 1024);
  if (!url) return up(url);
  return RegistryConfig{*id, *url};
}

namespace {

// A Signer over a key the registry owns (loaded from registry.key).
class OwnedKeySigner final : public Signer {
 public:
  explicit OwnedKeySigner(PrivateKey key) : key_(std::move(key)) {}
  SigAlg alg() const override { return key_.alg(); }
  Result<Bytes> sign(ByteView message) const override { return key_.sign(message); }

 private:
  PrivateKey key_;
};

}  // namespace

Registry::Registry(std::string id, std::shared_ptr<const Signer> signer,
                   std::vector<Certificate> chain, Certificate root,
                   std::unique_ptr<RegistryStore> store)
    : id_(std::move(id)),
      signer_(std::move(signer)),
      chain_(std::move(chain)),
      root_(std::move(root)),
      store_(std::move(store)) {}

Result<std::unique_ptr<Registry>> Registry::open(const std::string& dir) {
  fs::path d(dir);
  auto config = read_config(dir);
  if (!config) return up(config);
  auto key = PrivateKey::load_pem_file((d / kRegistryKey).string());
  if (!key) return up(key);
  auto chain_pem = read_text_file((d / kRegistryChain).string());
  if (!chain_pem) return up(chain_pem);
  auto chain = certificates_from_pem(*chain_pem);
  if (!chain) return up(chain);
  if (chain->empty() || chain->front().subject_cn() != config->id ||
      !chain->front().has_role(Role::registry))
    return fail(Errc::cert_wrong_role, "registry.pem does not hold this registry's certificate");
  auto root_pem = read_text_file((d / kRootFile).string());
  if (!root_pem) return up(root_pem);
  auto root = Certificate::from_pem(*root_pem);
  if (!root) return up(root);
  auto store = open_sqlite_store((d / kDbFile).string());
  if (!store) return up(store);
  auto registry =
      std::make_unique<Registry>(config->id, std::make_shared<OwnedKeySigner>(std::move(*key)),
                                 std::move(*chain), std::move(*root), std::move(*store));
  // A cached CRL lets the registry work while the CA is briefly unreachable; an
  // expired or foreign one is simply not installed.
  if (auto cached = read_text_file((d / kCrlCache).string()); cached)
    if (auto crl = Crl::from_pem(*cached); crl) (void)registry->install_crl(*crl);
  return registry;
}

Status Registry::install_crl(const Crl& crl) {
  if (X509_NAME_cmp(X509_CRL_get_issuer(crl.get()), X509_get_subject_name(root_.get())) != 0)
    return fail(Errc::cert_untrusted, "CRL names another issuer", "crl");
  if (X509_CRL_verify(crl.get(), X509_get0_pubkey(root_.get())) != 1)
    return fail(Errc::bad_signature, "CRL signature does not verify", "crl");
  if (crl.next_update() <= now()) return fail(Errc::expired, "CRL is past its next update", "crl");
  std::unique_lock lock(crl_mu_);
  if (crl_ && crl_this_update(crl) < crl_this_update(*crl_))
    return fail(Errc::conflict, "CRL is older than the one in use", "crl");
  crl_ = crl;
  return {};
}

std::optional<Crl> Registry::crl() const {
  std::shared_lock lock(crl_mu_);
  return crl_;
}

bool Registry::has_valid_crl() const {
  std::shared_lock lock(crl_mu_);
  return crl_ && crl_->next_update() > now();
}

bool Registry::authenticate_admin(std::string_view bearer) {
  if (bearer.empty() || bearer.size() > 256) return false;
  auto ok = store_->is_admin_token(token_hash(bearer));
  return ok && *ok;
}

// Verification, in order: a valid CRL is in hand (else unavailable: nothing is
// recorded unchecked); JWS structure and signature; chain to our root,
// validity, role (secure-element if the leaf claims it, else custody: any other
// role fails cert_wrong_role) and revocation; the payload as a `claim` document;
// issue and expiry time; the processor and issuer are the signer (not_owner);
// doc_type is a document type we know; SE documents carry their doc_seq.
Result<Registry::VerifiedClaim> Registry::verify(std::string_view claim_jws) {
  std::time_t t = now();
  CertVerifier verifier(root_);
  {
    std::shared_lock lock(crl_mu_);
    if (!crl_ || crl_->next_update() <= t)
      return fail(Errc::unavailable, "no current revocation list from the CA; try again later");
    verifier.set_crl(crl_);
  }
  if (clock_) verifier.set_time(t);
  // Claims come from banks (custody) and from SEs through their terminals.
  Role role = Role::custody;
  if (auto parsed = jws_parse(claim_jws);
      parsed && !parsed->signatures.empty() && !parsed->signatures.front().x5c.empty() &&
      parsed->signatures.front().x5c.front().has_role(Role::secure_element))
    role = Role::secure_element;
  auto signed_doc = open_signed_document(claim_jws, verifier, role);
  if (!signed_doc) return up(signed_doc);
  const Document& doc = signed_doc->doc;
  if (doc.type() != "claim")
    return fail(Errc::unknown_type, "the registry takes claims, not " + doc.type(), "type");
  if (signed_doc->signers.size() != 1)
    return fail(Errc::bad_header, "exactly one signature expected", "signatures");
  if (auto s = doc.check_time(t); !s) return up(s);
  std::string signer = signed_doc->signers.front().subject_cn();
  if (doc.str("processor") != signer)
    return fail(Errc::not_owner, "a claim names its signer (" + signer + ") as the processor",
                "processor");
  if (doc.issuer() != signer)
    return fail(Errc::not_owner, "a claim is issued by its signer (" + signer + ")", "issuer");
  std::string doc_type = doc.str("doc_type");
  const DocTypeSpec* spec = find_doc_type(doc_type);
  if (!spec || doc_type == "claim" || doc_type == "record")
    return fail(Errc::unknown_type, "no document type '" + doc_type + "' to claim", "doc_type");
  const Json& j = doc.json();
  std::optional<std::int64_t> seq;
  if (j.contains("doc_seq")) seq = j["doc_seq"].get<std::int64_t>();
  // Without the seq a cloned SE's second document would slip past the (issuer, seq) check.
  if (spec->se_issued && !seq)
    return fail(Errc::missing_field, doc_type + " is signed by an SE: its seq is required",
                "doc_seq");
  // An SE names its documents "<se id>:<seq>" (DESIGN.md §4), so one id is one
  // (issuer, seq) pair and a reused seq cannot hide behind another id.
  if (spec->se_issued && doc.str("doc_id") != doc.str("doc_issuer") + ":" + std::to_string(*seq))
    return fail(Errc::bad_field, "an SE document's id is <doc_issuer>:<doc_seq>", "doc_id");
  auto digest = b64url_decode(doc.str("result_digest"));
  if (!digest) return up(digest);
  RecordRow row;
  row.doc_id = doc.str("doc_id");
  row.doc_issuer = doc.str("doc_issuer");
  row.doc_seq = seq;
  row.doc_type = doc_type;
  row.processor = signer;
  row.result_digest = std::move(*digest);
  row.claim_jws = std::string(claim_jws);
  return VerifiedClaim{std::move(*signed_doc), std::move(row)};
}

Result<std::string> Registry::sign_record(const RecordRow& row, RecordStatus status,
                                          std::optional<std::int64_t> claimed_at) {
  Json p{{"type", "record"},
         {"v", 1},
         {"id", status == RecordStatus::claimed ? record_id(id_, row.doc_id) : answer_id(id_)},
         {"issuer", id_},
         {"iat", static_cast<std::int64_t>(now())},
         {"doc_id", row.doc_id},
         {"processor", row.processor},
         {"result_digest", b64url_encode(row.result_digest)},
         {"status", std::string(record_status_name(status))},
         {"doc_issuer", row.doc_issuer},
         {"doc_type", row.doc_type}};
  if (row.doc_seq) p["doc_seq"] = *row.doc_seq;
  if (claimed_at) p["claimed_at"] = *claimed_at;
  return sign_document(p, JwsSigner{signer_.get(), chain_});
}

// Claim (DESIGN.md §7):
//   1. verify the claim (no transaction);
//   2. fast path: the id is already held (and not by another document under
//      the same SE seq) -> answer from the stored row;
//   3. sign the "claimed" record this claim would get (claimed_at = now);
//   4. ONE store transaction: insert-if-absent on doc_id and (doc_issuer,
//      doc_seq); a lost insert reads the holder; a reused seq stores an alert;
//   5. answer: claimed -> the record of step 3 (now stored); retry -> the stored
//      record, byte for byte; already_processed -> a fresh record naming the
//      holder; seq_reused -> a fresh record echoing this claim, refused.
Result<ClaimAnswer> Registry::claim(std::string_view claim_jws) {
  auto v = verify(claim_jws);
  if (!v) return up(v);
  RecordRow& row = v->row;

  auto answer = [&](const ClaimResult& r) -> Result<ClaimAnswer> {
    switch (r.outcome) {
      case ClaimOutcome::claimed:
      case ClaimOutcome::retry:
        return ClaimAnswer{RecordStatus::claimed, r.record.record_jws};
      case ClaimOutcome::already_processed: {
        auto jws = sign_record(r.record, RecordStatus::already_processed, r.record.claimed_at);
        if (!jws) return up(jws);
        return ClaimAnswer{RecordStatus::already_processed, std::move(*jws)};
      }
      case ClaimOutcome::seq_reused: {
        auto jws = sign_record(row, RecordStatus::seq_reused, std::nullopt);
        if (!jws) return up(jws);
        return ClaimAnswer{RecordStatus::seq_reused, std::move(*jws)};
      }
    }
    return fail(Errc::internal, "unknown claim outcome");
  };

  auto held = store_->find(row.doc_id);
  if (!held) return up(held);
  // A reused SE sequence number goes through the store, which records the alert.
  if (*held && !is_seq_reuse(**held, row)) {
    ClaimOutcome outcome =
        is_retry_of(**held, row) ? ClaimOutcome::retry : ClaimOutcome::already_processed;
    return answer(ClaimResult{outcome, std::move(**held), std::nullopt});
  }

  row.claimed_at = now();
  auto record = sign_record(row, RecordStatus::claimed, row.claimed_at);
  if (!record) return up(record);
  row.record_jws = std::move(*record);
  auto result = store_->claim(row, now());
  if (!result) return up(result);
  return answer(*result);
}

Result<std::string> Registry::query(std::string_view doc_id) {
  if (!is_doc_id(doc_id))
    return fail(Errc::bad_field, "a document id is 1..128 of [A-Za-z0-9._:-]", "doc_id");
  auto r = store_->find(std::string(doc_id));
  if (!r) return up(r);
  if (!*r) return fail(Errc::not_found, "no record of " + std::string(doc_id), "doc_id");
  return (*r)->record_jws;
}

Result<std::vector<Alert>> Registry::alerts(std::int64_t after_id, int limit) {
  if (after_id < 0) return fail(Errc::bad_field, "must be >= 0", "after");
  if (limit < 1 || limit > 1000) return fail(Errc::bad_field, "must be 1..1000", "limit");
  return store_->alerts(after_id, limit);
}

}  // namespace zf::registry
