#include "registry/registry.h"

#include <algorithm>
#include <filesystem>

#include "store/sql.h"

namespace zf::registry {
namespace fs = std::filesystem;
using service::token_hash;
using service::valid_name;
namespace {

template <class T>
std::unexpected<Error> up(const Result<T>& r) {
  return std::unexpected(r.error());
}

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

// The role a document's signer must hold: secure-element when its leaf
// certificate claims it, else custody (the verification then checks the
// claim; any other role fails cert_wrong_role).
Role signer_role(std::string_view jws) {
  auto parsed = jws_parse(jws);
  if (parsed && !parsed->signatures.empty() && !parsed->signatures.front().x5c.empty() &&
      parsed->signatures.front().x5c.front().has_role(Role::secure_element))
    return Role::secure_element;
  return Role::custody;
}

// Expiry and reclaim (docs/registry-api.md "Expiry and reclaim"), judged at
// `at`, the time the record will state as claimed_at: a document's processor
// may claim it only before its expiry; its own issuer may claim it only to
// take back a payment note nobody received, and only from the expiry on. The
// first claim still wins: a payee's claim in time and the payer's reclaim
// after it cannot both hold the note.
Status expiry_allows(const RecordRow& row, std::optional<std::int64_t> doc_exp, std::int64_t at) {
  const DocTypeSpec* spec = find_doc_type(row.doc_type);
  if (row.processor != row.doc_issuer || !spec || !spec->se_issued) {
    if (doc_exp && at >= *doc_exp)
      return fail(Errc::expired,
                  row.doc_id + " expired at " + utc_time_text(*doc_exp) +
                      "; it can no longer be received, and its payer may reclaim its value; nothing was recorded",
                  "doc_exp");
    return {};
  }
  // An escrow note's payer claims it to take its value back: its SE does so
  // only on the payee's signed refund, or after the note's expiry, when the
  // payee can no longer claim it. Either way the first claim wins.
  if (row.doc_type == "cpay.note") return {};
  // A face-to-face payment's payer claims it to settle the value the payee's
  // signed refusal gave back: its SE does so only on that refusal (F2F CLOSE,
  // then F2F RECONCILE), and the first claim wins against the payee's, so a
  // payee whose state was restored from before its refusal cannot take the
  // payment too.
  if (row.doc_type == "f2f.payment") return {};
  if (row.doc_type != "payment.note")
    return fail(Errc::not_owner, "an SE claims its own document only to reclaim a payment note nobody received",
                "processor");
  if (!doc_exp)
    return fail(Errc::missing_field, "a reclaim names the note's expiry", "doc_exp");
  if (at < *doc_exp)
    return fail(Errc::not_expired,
                row.doc_id + " can still be received until " + utc_time_text(*doc_exp) +
                    "; reclaim it after that; nothing was recorded",
                "doc_exp");
  return {};
}

// Documents one SE signs for another: their processor is always an SE.
bool is_se_to_se(std::string_view doc_type) {
  static constexpr std::string_view kTypes[] = {"payment.note", "payment.ack", "f2f.payment", "cpay.note",
                                                "cpay.refund"};
  return std::find(std::begin(kTypes), std::end(kTypes), doc_type) != std::end(kTypes);
}

}  // namespace

bool is_doc_id(std::string_view s) { return valid_name(s, 128, "._:-"); }

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
  service::IdentitySpec spec{opts.dir, opts.registry_id, Role::registry,
                            std::string(kRegistryKey), std::string(kRegistryChain)};
  auto admin = service::provision_identity(spec, opts.ca_root_pem, issue);
  if (!admin) return up(admin);
  if (!opts.db_url.empty() && !store::Database::is_postgresql(opts.db_url))
    return fail(Errc::bad_field, "the registry's database URL must be postgresql://… (or none, for registry.db)",
                "db");
  auto store = open_store(opts.db_url.empty() ? (dir / kDbFile).string() : opts.db_url);
  if (!store) return up(store);
  if (auto s = (*store)->add_admin_token(token_hash(*admin), "admin"); !s) return s;
  Json config{{"id", opts.registry_id}, {"ca_url", opts.ca_url}};
  if (!opts.db_url.empty()) config["db"] = opts.db_url;
  // A database URL may carry a password: then the config is the owner's alone.
  return write_text_file((dir / kConfigFile).string(), config.dump(2) + "\n", opts.db_url.empty() ? 0644 : 0600);
}

Result<RegistryConfig> read_config(const std::string& dir) {
  auto base = service::read_service_config(dir, kConfigFile, "registry");
  if (!base) return up(base);
  return RegistryConfig{base->id, base->ca_url, base->db_url};
}

std::string db_url_of(const std::string& dir, const RegistryConfig& config) {
  return config.db_url.empty() ? (fs::path(dir) / kDbFile).string() : config.db_url;
}


Registry::Registry(std::string id, std::shared_ptr<const Signer> signer,
                   std::vector<Certificate> chain, Certificate root,
                   std::unique_ptr<RegistryStore> store)
    : id_(std::move(id)),
      signer_(std::move(signer)),
      chain_(std::move(chain)),
      trust_(std::move(root)),
      store_(std::move(store)) {}

Result<std::unique_ptr<Registry>> Registry::open(const std::string& dir) {
  fs::path d(dir);
  auto config = read_config(dir);
  if (!config) return up(config);
  auto identity = service::load_identity({dir, config->id, Role::registry,
                                          std::string(kRegistryKey), std::string(kRegistryChain)});
  if (!identity) return up(identity);
  auto store = open_store(db_url_of(dir, *config));
  if (!store) return up(store);
  auto registry = std::make_unique<Registry>(config->id, std::move(identity->signer),
                                             std::move(identity->chain),
                                             std::move(identity->root), std::move(*store));
  // A cached CRL lets the registry work while the CA is briefly unreachable.
  registry->trust_.install_cached((d / kCrlCache).string(), registry->now());
  return registry;
}

bool Registry::authenticate_admin(std::string_view bearer) {
  return service::is_admin_bearer(bearer, [this](ByteView h) { return store_->is_admin_token(h); });
}

// Verification, in order: a valid CRL is in hand (else unavailable: nothing is
// recorded unchecked); JWS structure and signature; chain to our root,
// validity, role (secure-element if the leaf claims it, else custody: any other
// role fails cert_wrong_role) and revocation; the payload as a `claim` document;
// issue and expiry time; the processor and issuer are the signer (not_owner);
// doc_type is a document type we know; SE documents carry their doc_seq.
Result<Registry::VerifiedClaim> Registry::verify(std::string_view claim_jws) {
  std::time_t t = now();
  auto verifier = trust_.verifier(t);
  if (!verifier) return up(verifier);
  if (clock_) verifier->set_time(t);
  // Claims come from banks (custody) and from SEs through their terminals.
  auto signed_doc = open_signed_document(claim_jws, *verifier, signer_role(claim_jws));
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
  // An SE's note to another SE is processed by the SE it is addressed to (or
  // reclaimed by its payer), never by a bank: a bank's claim for one, which the
  // registry could not check against a note it never sees, would block both.
  if (is_se_to_se(doc_type) && !signed_doc->signers.front().has_role(Role::secure_element))
    return fail(Errc::not_owner, "only a secure element claims a " + doc_type, "processor");
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
                                          std::optional<std::int64_t> claimed_at,
                                          std::optional<std::int64_t> doc_exp) {
  Json p{{"type", "record"},
         {"v", 1},
         {"id", status == RecordStatus::claimed ? record_id(id_, row.doc_id) : answer_id(id_)},
         {"issuer", id_},
         {"iat", static_cast<std::int64_t>(now())},
         {"nonce", new_nonce()},
         {"doc_id", row.doc_id},
         {"processor", row.processor},
         {"result_digest", b64url_encode(row.result_digest)},
         {"status", std::string(record_status_name(status))},
         {"doc_issuer", row.doc_issuer},
         {"doc_type", row.doc_type}};
  if (row.doc_seq) p["doc_seq"] = *row.doc_seq;
  if (claimed_at) p["claimed_at"] = *claimed_at;
  if (doc_exp) p["doc_exp"] = *doc_exp;
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
  std::optional<std::int64_t> doc_exp = v->doc.doc.json().contains("doc_exp")
                                            ? std::optional(v->doc.doc.json()["doc_exp"].get<std::int64_t>())
                                            : std::nullopt;
  // Only a claim for a free id is judged against the expiry: a retry of the
  // claim that holds the id got its stored record above (a payee that claimed
  // in time and crashed still gets its record after the note expired), and a
  // reused seq still raises its alert.
  if (!*held)
    if (auto s = expiry_allows(row, doc_exp, row.claimed_at); !s) return up(s);
  auto record = sign_record(row, RecordStatus::claimed, row.claimed_at, doc_exp);
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

Result<std::string> Registry::read_record(std::string_view doc_id, std::string_view document_jws,
                                         std::string_view request_jws) {
  if (!is_doc_id(doc_id))
    return fail(Errc::bad_field, "a document id is 1..128 of [A-Za-z0-9._:-]", "doc_id");
  if (document_jws.empty() == request_jws.empty())
    return fail(Errc::bad_request, "present either the document or a signed record.query", "document");
  std::time_t t = now();
  auto verifier = trust_.verifier(t);
  if (!verifier) return up(verifier);
  if (clock_) verifier->set_time(t);
  auto row = store_->find(std::string(doc_id));
  if (!row) return up(row);

  if (!document_jws.empty()) {
    // A genuine SE document: a made-up payload with a guessed id learns nothing.
    auto doc = open_signed_document(document_jws, *verifier, Role::secure_element);
    if (!doc) return up(doc);
    if (doc->doc.id() != doc_id)
      return fail(Errc::misaddressed, "the document presented is " + doc->doc.id(), "document");
    if (!*row) return fail(Errc::not_found, "no record of " + std::string(doc_id), "doc_id");
    // The digest, not the id, says which document the holder claimed.
    if (!ct_equal(sha256(doc->jws.payload), (*row)->result_digest))
      return fail(Errc::doc_id_reused, "the registry holds another document under " + std::string(doc_id), "document");
    return (*row)->record_jws;
  }

  auto req = open_signed_document(request_jws, *verifier, signer_role(request_jws));
  if (!req) return up(req);
  const Document& q = req->doc;
  if (q.type() != "record.query")
    return fail(Errc::unknown_type, "expected a record.query, not " + q.type(), "type");
  if (req->signers.size() != 1) return fail(Errc::bad_header, "exactly one signature expected", "signatures");
  if (q.issuer() != req->signers.front().subject_cn())
    return fail(Errc::issuer_mismatch, "a record.query is issued by its signer", "issuer");
  // Short-lived: whoever holds a copy can read the same record until it expires.
  if (!q.exp() || *q.exp() > static_cast<std::int64_t>(t) + kRecordQueryMaxAgeS)
    return fail(Errc::bad_field, "a record.query expires within " + std::to_string(kRecordQueryMaxAgeS) + " s", "exp");
  if (auto s = q.check_time(t); !s) return up(s);
  if (q.str("doc_id") != doc_id) return fail(Errc::misaddressed, "the request is for " + q.str("doc_id"), "doc_id");
  const std::string& who = q.issuer();
  // SE documents are named "<issuer>:<seq>": their issuer may ask before anyone claimed.
  const bool issuer_of_id = std::string_view(doc_id).starts_with(who + ":");
  if (!*row) {
    if (!issuer_of_id) return fail(Errc::forbidden, who + " may not read the record of " + std::string(doc_id));
    return fail(Errc::not_found, "no record of " + std::string(doc_id), "doc_id");
  }
  if ((*row)->processor != who && (*row)->doc_issuer != who && !issuer_of_id)
    return fail(Errc::forbidden, who + " may not read the record of " + std::string(doc_id));
  return (*row)->record_jws;
}

Result<std::vector<Alert>> Registry::alerts(std::int64_t after_id, int limit) {
  if (after_id < 0) return fail(Errc::bad_field, "must be >= 0", "after");
  if (limit < 1 || limit > 1000) return fail(Errc::bad_field, "must be 1..1000", "limit");
  return store_->alerts(after_id, limit);
}

}  // namespace zf::registry
