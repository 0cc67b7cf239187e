#include "bank/bank.h"

#include <algorithm>
#include <filesystem>

#include "core/claims.h"
#include "store/sql.h"

namespace zf::bank {
namespace fs = std::filesystem;
using service::token_hash;
using service::valid_name;
namespace {

template <class T>
std::unexpected<Error> up(const Result<T>& r) {
  return std::unexpected(r.error());
}

}  // namespace

std::string Bank::answer_id(const std::string& bank, std::string_view tag, const std::string& doc_id) {
  std::string id = bank + ":" + std::string(tag) + ":" + doc_id;
  if (id.size() <= 128) return id;
  return bank.substr(0, 64) + ":" + std::string(tag) + ":h" +
         b64url_encode(sha256(as_bytes(doc_id)));
}

// Initialization: generate keys and CSRs, have the CA certify them, then write
// the files. bank.json is written last: its presence marks a complete directory.
Status init_bank(const InitOptions& opts, const CertificateIssuer& issue) {
  if (!opts.registry_url.empty() && !valid_name(opts.registry_id, 64, "._-"))
    return fail(Errc::bad_field, "a registry URL needs the registry's id (1..64 of [A-Za-z0-9._-])",
                "registry_id");
  if (!opts.registry_url.empty() && opts.registry_url.rfind("https://", 0) != 0)
    return fail(Errc::bad_field, "the registry URL must be https://", "registry_url");
  if (!valid_name(opts.bank_id, 64, "._-"))
    return fail(Errc::bad_field, "bank id: 1..64 of [A-Za-z0-9._-]", "id");
  fs::path dir(opts.dir);
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (fs::exists(dir / kConfigFile))
    return fail(Errc::conflict, "a bank already exists in " + opts.dir);
  service::IdentitySpec spec{opts.dir, opts.bank_id, Role::custody, std::string(kCustodyKey),
                            std::string(kCustodyChain)};
  auto admin = service::provision_identity(spec, opts.ca_root_pem, issue);
  if (!admin) return up(admin);
  if (!opts.db_url.empty() && !store::Database::is_postgresql(opts.db_url))
    return fail(Errc::bad_field, "the bank's database URL must be postgresql://… (or none, for bank.db)", "db");
  auto store = open_store(opts.db_url.empty() ? (dir / kDbFile).string() : opts.db_url);
  if (!store) return up(store);
  if (auto s = (*store)->add_admin_token(token_hash(*admin), "admin"); !s) return s;
  Json config{{"id", opts.bank_id}, {"ca_url", opts.ca_url}};
  if (!opts.db_url.empty()) config["db"] = opts.db_url;
  if (!opts.registry_url.empty()) {
    config["registry_url"] = opts.registry_url;
    config["registry_id"] = opts.registry_id;
  }
  // A database URL may carry a password: then the config is the owner's alone.
  return write_text_file((dir / kConfigFile).string(), config.dump(2) + "\n", opts.db_url.empty() ? 0644 : 0600);
}

Result<BankConfig> read_config(const std::string& dir) {
  auto base = service::read_service_config(dir, kConfigFile, "bank");
  if (!base) return up(base);
  BankConfig config{base->id, base->ca_url, {}, {}, base->db_url};
  if (base->json.contains("registry_url")) {
    auto reg_url = get_string(base->json, "registry_url", 1024);
    if (!reg_url) return up(reg_url);
    auto reg_id = get_string(base->json, "registry_id", 64);
    if (!reg_id) return up(reg_id);
    config.registry_url = *reg_url;
    config.registry_id = *reg_id;
  }
  return config;
}

std::string db_url_of(const std::string& dir, const BankConfig& config) {
  return config.db_url.empty() ? (fs::path(dir) / kDbFile).string() : config.db_url;
}

Bank::Bank(std::string id, std::shared_ptr<const Signer> signer, std::vector<Certificate> chain,
           Certificate root, std::unique_ptr<BankStore> store)
    : id_(std::move(id)),
      signer_(std::move(signer)),
      chain_(std::move(chain)),
      trust_(std::move(root)),
      store_(std::move(store)) {}

Result<std::unique_ptr<Bank>> Bank::open(const std::string& dir) {
  fs::path d(dir);
  auto config = read_config(dir);
  if (!config) return up(config);
  auto identity = service::load_identity(
      {dir, config->id, Role::custody, std::string(kCustodyKey), std::string(kCustodyChain)});
  if (!identity) return up(identity);
  auto store = open_store(db_url_of(dir, *config));
  if (!store) return up(store);
  auto bank = std::make_unique<Bank>(config->id, std::move(identity->signer),
                                     std::move(identity->chain), std::move(identity->root),
                                     std::move(*store));
  // A cached CRL lets the bank work while the CA is briefly unreachable.
  bank->trust_.install_cached((d / kCrlCache).string(), bank->now());
  return bank;
}

bool Bank::authenticate_admin(std::string_view bearer) {
  return service::is_admin_bearer(bearer, [this](ByteView h) { return store_->is_admin_token(h); });
}

// Verification, in order: a valid CRL is in hand (else unavailable: money never
// moves unchecked); JWS structure and signature; chain to our root, validity,
// role secure-element and revocation; document fields (amounts, types); the
// type this operation takes; issue and expiry times.
Result<Bank::Verified> Bank::verify(std::string_view jws, std::string_view expected_type,
                                    std::size_t signers, std::size_t max_signers) {
  std::time_t t = now();
  auto verifier = trust_.verifier(t);
  if (!verifier) return up(verifier);
  if (clock_) verifier->set_time(t);
  auto signed_doc = open_signed_document(jws, *verifier, Role::secure_element);
  if (!signed_doc) return up(signed_doc);
  const Document& doc = signed_doc->doc;
  if (doc.type() != expected_type)
    return fail(Errc::unknown_type,
                "this operation takes " + std::string(expected_type) + ", not " + doc.type(),
                "type");
  const std::size_t n = signed_doc->signers.size(), most = std::max(signers, max_signers);
  if (n < signers || n > most)
    return fail(Errc::bad_header,
                doc.type() + " carries " + (most == signers ? "exactly " + std::to_string(signers)
                                                            : std::to_string(signers) + " to " + std::to_string(most)) +
                    (most == 1 ? " signature" : " signatures"),
                "signatures");
  Certificate signer = signed_doc->signers.front();
  DocKey key{doc.id(), signer.subject_cn(), doc.type(), sha256(signed_doc->jws.payload)};
  // Outside its validity a document is refused, unless this bank already
  // processed this very document: then a retry after its expiry still gets
  // the stored receipt (the operation answers it from its table) instead of
  // an `expired` that would tell the terminal nothing happened.
  if (auto s = doc.check_time(t); !s) {
    auto prior = prior_response(key);
    if (!prior || !*prior) return up(s);
  }
  // A top-up request or a deposit note waits in its SE until a receipt answers
  // it: a number the bank will not take is a refusal it signs (topup(),
  // deposit()), so the SE may drop the document. Other documents are refused.
  std::optional<Error> process_no_refused;
  if (auto s = check_process_no(doc, signer, t); !s) {
    if (expected_type != "topup.request" && expected_type != "deposit.note") return up(s);
    process_no_refused = s.error();
  }
  // A document with a (valid) processing number goes in front of the others
  // waiting for the bank's transaction slots (the priority lane, §6.10).
  auto ticket = lanes_.enter(doc.process_no().has_value() && !process_no_refused);
  return Verified{std::move(*signed_doc), std::move(signer), std::move(key), std::move(ticket),
                  std::move(process_no_refused)};
}

// A processing number: handed out by this bank to this very SE, not expired,
// and not used by another document (the guard in the transaction makes the
// last check final: with_process_no).
Status Bank::check_process_no(const Document& doc, const Certificate& signer, std::int64_t t) {
  if (!doc.process_no()) return {};
  const std::string& number = *doc.process_no();
  auto found = store_->find_process_no(number);
  if (!found) return up(found);
  if (!*found) return fail(Errc::process_no_unknown, "this bank never handed out processing number " + number, "process_no");
  if ((*found)->se_id != signer.subject_cn())
    return fail(Errc::not_owner, "processing number " + number + " was handed to another SE", "process_no");
  auto holder = store_->guard_holder(process_no_guard(number));
  if (!holder) return up(holder);
  if (*holder && **holder != doc.id())
    return fail(Errc::process_no_used, "processing number " + number + " was used by " + **holder, "process_no");
  if (!*holder && t >= (*found)->expires_at)
    return fail(Errc::process_no_expired, "processing number " + number + " has expired", "process_no");
  return {};
}

Effects Bank::with_process_no(const Verified& v, Effects fx) {
  // A document refused for its number does not take it.
  if (const auto& n = v.doc.doc.process_no(); n && !v.process_no_refused)
    fx.guards.push_back({process_no_guard(*n), Errc::process_no_used});
  return fx;
}

Result<ProcessNumber> Bank::issue_process_no(std::string_view query_jws) {
  auto reader = read_access(query_jws);
  if (!reader) return up(reader);
  // 128 random bits: a number nobody can guess, so holding one is what lets a document into the lane.
  ProcessNumber n{"pn-" + b64url_encode(random_bytes(16)), reader->se, now() + kProcessNoLifetimeS};
  if (auto s = store_->add_process_no(n, now()); !s) return up(s);
  return n;
}

Result<AccountRecord> Bank::document_account(const Document& doc, const char* field) {
  if (doc.str("bank") != id_)
    return fail(Errc::misaddressed, "addressed to bank " + doc.str("bank"), "bank");
  std::string id = doc.str(field);
  auto account = store_->find_account(id);
  if (!account) return up(account);
  // System accounts are not customers' accounts, whatever a document says.
  if (!*account || !ledger::is_customer_money((*account)->kind) ||
      (*account)->kind == ledger::AccountKind::hold)
    return fail(Errc::account_unknown, "no account " + id + " at " + id_, field);
  if (doc.amount() && std::string(doc.amount()->currency().code()) != (*account)->currency)
    return fail(Errc::currency_mismatch, "account " + id + " is kept in " + (*account)->currency,
                "currency");
  return **account;
}

// A joint account is spent only by a joint.spend its co-managers signed
// (joint.cc): no single SE signs for it.
bool Bank::signs_for(const Certificate& signer, const AccountRecord& account) {
  if (account.kind == ledger::AccountKind::joint) return false;
  return signer.user_id() == account.user_id && (!account.se_id || *account.se_id == signer.subject_cn());
}

Result<std::optional<std::string>> Bank::prior_response(const DocKey& key) {
  auto prior = store_->find_processed(key.doc_id);
  if (!prior) return up(prior);
  if (!*prior) return std::optional<std::string>{};
  const DocKey& k = (*prior)->key;
  if (k.signer != key.signer || k.doc_type != key.doc_type ||
      k.payload_digest != key.payload_digest)
    return fail(Errc::doc_id_reused,
                "another document with id " + key.doc_id + " was already processed", "id");
  return std::optional<std::string>((*prior)->response);
}

void Bank::set_registry(std::string registry_id, RegistryLink link) {
  registry_id_ = std::move(registry_id);
  registry_link_ = std::move(link);
}

// SAFETY-CRITICAL: the registry half of exactly-once (DESIGN.md §7). The claim
// comes before the store transaction that moves money (or records a refusal),
// so no document is acted on unless this bank holds it at the registry. A crash
// between the claim and the commit is harmless: the retry claims again, gets
// the same record (same processor, same digest) and goes on.
Status Bank::claim_at_registry(const Verified& v) {
  if (!registry_link_) return {};
  // The digest of an SE document is its payload's (docs/registry-api.md).
  registry::ClaimFields fields = registry::claim_fields_for(v.doc, id_);
  auto claim = registry::sign_claim(fields, JwsSigner{signer_.get(), chain_}, now());
  if (!claim) return up(claim);
  auto unavailable = [](const std::string& why) {
    return fail(Errc::unavailable,
                "the registry could not record this document (" + why + "); the bank moved nothing, send the same document again");
  };
  auto record_jws = registry_link_(*claim);
  if (!record_jws) return unavailable(record_jws.error().message());
  auto verifier = trust_.verifier(now());
  if (!verifier) return up(verifier);
  if (clock_) verifier->set_time(now());
  auto record = registry::open_record(*record_jws, *verifier, registry_id_);
  if (!record) return unavailable("its answer does not verify: " + record.error().message());
  if (auto s = registry::check_record_answers(*record, fields); !s)
    return unavailable("its answer is about another claim");
  if (record->won_by(id_, fields.result_digest)) {
    if (after_claim_) after_claim_(v.doc.doc.type());
    return {};
  }
  Error e;
  e.field = "id";
  e.evidence = *record_jws;
  if (record->status == registry::RecordStatus::seq_reused) {
    e.code = Errc::seq_reused;
    e.detail = v.key.signer + " already spent seq " + std::to_string(v.doc.doc.seq().value_or(0)) +
               " on another document (registry record " + record->id + ")";
  } else {
    e.code = Errc::replayed;
    e.detail = "already processed by " + record->processor + " (registry record " + record->id + ")";
  }
  return std::unexpected(std::move(e));
}

// Our own table already holds another document under this id. For an SE
// document that is a second document under a spent (SE, seq): the claim makes
// the registry refuse it with a signed seq_reused record and raise the alert
// naming the SE, which our table alone would keep to itself.
std::unexpected<Error> Bank::refuse_reused(const Verified& v, const Error& why) {
  if (why.code != Errc::doc_id_reused || !v.doc.doc.seq()) return std::unexpected(why);
  auto claimed = claim_at_registry(v);
  if (!claimed && claimed.error().code == Errc::seq_reused) return std::unexpected(claimed.error());
  return std::unexpected(why);
}

Result<std::string> Bank::sign_receipt(const Json& payload) {
  return sign_document(payload, JwsSigner{signer_.get(), chain_});
}

// The receipt for a verified top-up request or deposit note, crediting `account`:
// id "<bank>:r:<request id>" / "<bank>:d:<note id>", answering it by id.
Json Bank::receipt_payload(const Verified& v, std::string_view type, const std::string& account) {
  const Document& doc = v.doc.doc;
  const Amount& amount = *doc.amount();
  bool topup = type == "topup.receipt";
  return Json{{"type", std::string(type)},
              {"v", 1},
              {"id", answer_id(id_, topup ? "r" : "d", doc.id())},
              {"issuer", id_},
              {"iat", static_cast<std::int64_t>(now())},
              {"nonce", new_nonce()},
              {topup ? "request_id" : "note_id", doc.id()},
              {"se", v.signer.subject_cn()},
              {"amount", amount.minor()},
              {"currency", std::string(amount.currency().code())},
              {"account", account},
              {"bank", id_}};
}

// The transfer.receipt answering order (or joint spend) `v`: id "<bank>:t:<order id>".
Json Bank::transfer_receipt(const Verified& v, const std::string& from, const std::string& to) {
  const Amount& amount = *v.doc.doc.amount();
  return Json{{"type", "transfer.receipt"},
              {"v", 1},
              {"id", answer_id(id_, "t", v.doc.doc.id())},
              {"issuer", id_},
              {"iat", static_cast<std::int64_t>(now())},
              {"nonce", new_nonce()},
              {"order_id", v.doc.doc.id()},
              {"se", v.signer.subject_cn()},
              {"amount", amount.minor()},
              {"currency", std::string(amount.currency().code())},
              {"from", from},
              {"to", to},
              {"bank", id_}};
}

// Signs `receipt` and moves the money with it in one transaction; a payer
// who cannot cover the amount gets the receipt signed as a refusal, and the
// document is consumed (record_refusal).
Result<std::string> Bank::apply_or_refuse(const Verified& v, const ledger::JournalEntry& entry, Json receipt,
                                          Effects fx) {
  auto signed_receipt = sign_receipt(receipt);
  if (!signed_receipt) return up(signed_receipt);
  auto applied = commit(v.key, entry, *signed_receipt, with_process_no(v, std::move(fx)));
  if (!applied && applied.error().code == Errc::insufficient_funds)
    return record_refusal(v, std::move(receipt), Errc::insufficient_funds);
  if (!applied) return up(applied);
  return applied->response;
}

// Signs `receipt` as a refusal for `reason` and records the document as
// processed without a journal entry: it is consumed, no money moves.
Result<std::string> Bank::record_refusal(const Verified& v, Json receipt, Errc reason) {
  receipt["status"] = "refused";
  receipt["reason"] = std::string(errc_name(reason));
  auto signed_refusal = sign_receipt(receipt);
  if (!signed_refusal) return up(signed_refusal);
  // "topup_refused", "deposit_refused", "transfer_refused"
  std::string type = receipt["type"];
  std::string kind = type.substr(0, type.find('.')) + "_refused";
  ledger::JournalEntry none{0, v.doc.doc.id(), kind, {}};
  auto recorded = commit(v.key, none, *signed_refusal, with_process_no(v));
  if (!recorded) return up(recorded);
  return recorded->response;
}

// Top-up (§6.2):
//   1. verify the request (no transaction);
//   2. check it against the account: this bank, account exists, currency, the
//      signer's user owns the account (the SE too, if the account names one);
//   3. a retry of a processed request returns its stored receipt (fast path);
//   4. claim the request at the registry (if the bank has one): only a request
//      this bank holds there goes on, refused or not;
//   5. build and sign the receipt;
//   6. ONE store transaction: claim the id, debit the account (insufficient_funds
//      rolls back), credit e-cash outstanding, store the receipt. A retry racing
//      us is settled inside that transaction and gets the stored receipt.
Result<std::string> Bank::topup(std::string_view request_jws) {
  auto v = verify(request_jws, "topup.request");
  if (!v) return up(v);
  const Document& doc = v->doc.doc;
  auto prior = prior_response(v->key);
  if (!prior) return refuse_reused(*v, prior.error());
  if (*prior) return **prior;
  const Amount& amount = *doc.amount();
  // A request for this bank that it will not serve is answered with a signed
  // refusal and consumed, so the SE can drop it from its pending top-ups (the
  // terminal, untrusted, cannot) and it can never move money later.
  auto refuse = [&](const Error& why) {
    return record_refusal(*v, receipt_payload(*v, "topup.receipt", doc.str("account")), why.code);
  };
  auto account = document_account(doc);
  if (!account && account.error().code == Errc::misaddressed) return up(account);  // not ours
  if (auto claimed = claim_at_registry(*v); !claimed) return up(claimed);
  if (v->process_no_refused) return refuse(*v->process_no_refused);
  if (!account) return refuse(account.error());
  if (!signs_for(v->signer, *account))
    return refuse(Error{Errc::not_owner, "account", "the signer does not own account " + account->id});

  auto signed_receipt = sign_receipt(receipt_payload(*v, "topup.receipt", account->id));
  if (!signed_receipt) return up(signed_receipt);
  auto entry = ledger::topup(doc.id(), account->id, amount);
  if (!entry) return up(entry);
  auto applied = commit(v->key, *entry, *signed_receipt, with_process_no(*v));
  if (!applied && applied.error().code == Errc::insufficient_funds) return refuse(applied.error());
  if (!applied && applied.error().code == Errc::process_no_used) {
    // Another document took the number in between: refused, without the number.
    v->process_no_refused = applied.error();
    return refuse(applied.error());
  }
  if (!applied) return up(applied);
  return applied->response;
}

// Deposit (§6.4): the same steps as top-up; any customer account of this bank
// may receive a deposit, so there is no owner check. The e-cash is redeemed:
// outstanding is debited, the account credited.
Result<std::string> Bank::deposit(std::string_view note_jws) {
  auto v = verify(note_jws, "deposit.note");
  if (!v) return up(v);
  const Document& doc = v->doc.doc;
  auto account = document_account(doc);
  auto prior = prior_response(v->key);
  if (!prior) return refuse_reused(*v, prior.error());
  if (*prior) return **prior;
  const Amount& amount = *doc.amount();
  if (!account && account.error().code != Errc::account_unknown &&
      account.error().code != Errc::currency_mismatch)
    return up(account);
  if (auto claimed = claim_at_registry(*v); !claimed) return up(claimed);
  // The SE already debited itself: a number the bank will not take is a signed refusal too.
  if (v->process_no_refused)
    return record_refusal(*v, receipt_payload(*v, "deposit.receipt", doc.str("account")), v->process_no_refused->code);
  if (!account) {
    // The SE already debited itself for this note. A note for this bank that no
    // account here can take is answered with a signed refusal, which returns the
    // value to the SE, and the note is consumed so it can never be credited later.
    // A note for another bank is not ours to consume: it stays valid there.
    return record_refusal(*v, receipt_payload(*v, "deposit.receipt", doc.str("account")),
                          account.error().code);
  }

  auto signed_receipt = sign_receipt(receipt_payload(*v, "deposit.receipt", account->id));
  if (!signed_receipt) return up(signed_receipt);
  auto entry = ledger::deposit(doc.id(), account->id, amount);
  if (!entry) return up(entry);
  auto applied = commit(v->key, *entry, *signed_receipt, with_process_no(*v));
  if (!applied && applied.error().code == Errc::process_no_used) {
    v->process_no_refused = applied.error();
    return record_refusal(*v, receipt_payload(*v, "deposit.receipt", account->id), Errc::process_no_used);
  }
  if (!applied) return up(applied);
  return applied->response;
}

// Account transfer (§6.7): the SE bound to `from` orders money moved to `to`,
// at this bank, in one journal entry.
//   1. verify the order; it names this bank (else misaddressed, not ours);
//   2. a retry of a processed order returns its stored receipt;
//   3. checks that need no money, refused by name before anything is
//      recorded: both accounts exist here in the order's currency, they
//      differ, and the signer's SE may sign for `from`;
//   4. claim the order at the registry;
//   5. ONE store transaction: claim the id, debit `from` (insufficient_funds:
//      the order is consumed with a signed refusal, nothing moves), credit
//      `to`, store the receipt.
Result<std::string> Bank::transfer(std::string_view order_jws) {
  auto v = verify(order_jws, "transfer.order");
  if (!v) return up(v);
  const Document& doc = v->doc.doc;
  if (doc.str("bank") != id_) return fail(Errc::misaddressed, "addressed to bank " + doc.str("bank"), "bank");
  auto prior = prior_response(v->key);
  if (!prior) return refuse_reused(*v, prior.error());
  if (*prior) return **prior;
  const Amount& amount = *doc.amount();
  auto from = document_account(doc, "from");
  if (!from) return up(from);
  if (!signs_for(v->signer, *from))
    return fail(Errc::not_owner,
                v->signer.subject_cn() + " may not sign for account " + from->id + "; nothing moved", "from");
  if (doc.str("to") == from->id)
    return fail(Errc::same_account, "the order names " + from->id + " on both sides; nothing moved", "to");
  auto to = document_account(doc, "to");
  if (!to) return up(to);
  if (auto claimed = claim_at_registry(*v); !claimed) return up(claimed);

  auto entry = ledger::transfer(doc.id(), from->id, to->id, amount);
  if (!entry) return up(entry);
  return apply_or_refuse(*v, *entry, transfer_receipt(*v, from->id, to->id));
}

// A query is a bearer credential for the account's statement or feed: it
// answers once. Its id is remembered until it has expired, so the table stays
// as small as the queries still valid; a query without a near expiry could
// never be forgotten. The owner's SE reads the account, and so does each
// co-manager of a joint account.
Result<Bank::Reader> Bank::read_access(std::string_view query_jws) {
  auto v = verify(query_jws, "account.query");
  if (!v) return up(v);
  auto account = document_account(v->doc.doc);
  if (!account) return up(account);
  const auto& members = account->co_managers;
  const bool co_manager = std::find(members.begin(), members.end(), v->signer.subject_cn()) != members.end();
  if (!signs_for(v->signer, *account) && !co_manager)
    return fail(Errc::not_owner, "the signer does not own account " + account->id, "account");
  const auto exp = v->doc.doc.exp();
  if (!exp) return fail(Errc::missing_field, "a query carries an expiry", "exp");
  if (*exp > v->doc.doc.iat() + kMaxQueryLifetimeS)
    return fail(Errc::bad_field,
                "a query expires at most " + std::to_string(kMaxQueryLifetimeS) + " s after iat",
                "exp");
  auto first = store_->use_once(v->key.signer, v->key.doc_id, *exp, now());
  if (!first) return up(first);
  if (!*first) return fail(Errc::replayed, "this query was already answered", "id");
  return Reader{std::move(*account), v->signer.subject_cn()};
}

Result<Statement> Bank::query(std::string_view query_jws, int history_limit) {
  auto reader = read_access(query_jws);
  if (!reader) return up(reader);
  auto history = store_->history(reader->account.id, std::clamp(history_limit, 1, 100));
  if (!history) return up(history);
  return Statement{std::move(reader->account), std::move(*history)};
}

Result<Feed> Bank::events(std::string_view query_jws, std::int64_t after) {
  auto reader = read_access(query_jws);
  if (!reader) return up(reader);
  return feed(reader->account.id, reader->account.currency, after);
}

Result<Feed> Bank::feed(const std::string& account, const std::string& currency, std::int64_t after) {
  after = std::max<std::int64_t>(0, after);
  auto items = store_->feed(account, after, 100);
  if (!items) return up(items);
  Feed f{account, currency, std::move(*items), after};
  if (!f.events.empty()) f.next = f.events.back().entry_id;
  return f;
}

Result<Applied> Bank::commit(const DocKey& key, const ledger::JournalEntry& entry, const std::string& response,
                             const Effects& fx) {
  auto applied = store_->apply(key, entry, response, now(), fx);
  if (applied && applied->entry_id != 0 && feed_listener_) {
    for (const auto& p : entry.postings) feed_listener_(p.account_id);
    for (const auto& n : fx.notices) feed_listener_(n.first);
  }
  return applied;
}

Result<AccountRecord> Bank::open_account(const OpenAccountRequest& req) {
  if (auto s = ledger::check_account_id(req.account); !s) return up(s);
  auto currency = Currency::parse(req.currency);
  if (!currency) return up(currency);
  if (!valid_name(req.user_id, 64, "._-@"))
    return fail(Errc::bad_field, "1..64 of [A-Za-z0-9._-@]", "user_id");
  if (req.se_id && !valid_name(*req.se_id, 128, "._:-"))
    return fail(Errc::bad_field, "not an SE id", "se_id");
  AccountRecord a{
      req.account, ledger::AccountKind::customer, req.currency, req.user_id, req.se_id, 0, now(), {}, 0};
  if (!req.co_managers.empty()) {
    std::vector<std::string> members = req.co_managers;
    std::sort(members.begin(), members.end());
    if (members.size() > 16 || std::adjacent_find(members.begin(), members.end()) != members.end())
      return fail(Errc::bad_field, "1..16 distinct co-manager SE ids", "co_managers");
    for (const auto& se : members)
      if (!valid_name(se, 128, "._:-")) return fail(Errc::bad_field, "not an SE id: " + se.substr(0, 64), "co_managers");
    if (req.se_id) return fail(Errc::bad_field, "a joint account names co-managers, not one SE", "se_id");
    const int n = static_cast<int>(members.size());
    if (req.threshold < 0 || req.threshold > n)
      return fail(Errc::bad_field, "a threshold of 1.." + std::to_string(n) + " co-managers (0: all)", "threshold");
    a.kind = ledger::AccountKind::joint;
    a.co_managers = std::move(members);
    a.threshold = req.threshold == 0 ? n : req.threshold;
  } else if (req.threshold != 0) {
    return fail(Errc::bad_field, "a threshold needs co-managers", "threshold");
  }
  return store_->open_account(a);
}

// Cash-in: money enters the bank (issuance -> account). The admin's reference
// is the exactly-once key, kept apart from document ids by a '/' that no
// document id may contain.
Result<CashInResult> Bank::cash_in(const std::string& account_id, const Amount& amount,
                                   const std::string& ref) {
  if (!valid_name(ref, 120, "._:-"))
    return fail(Errc::bad_field, "1..120 of [A-Za-z0-9._:-]", "ref");
  if (amount.is_zero()) return fail(Errc::amount_zero, "amount must be positive", "amount_minor");
  auto account = store_->find_account(account_id);
  if (!account) return up(account);
  if (!*account || !ledger::is_customer_money((*account)->kind) ||
      (*account)->kind == ledger::AccountKind::hold)
    return fail(Errc::account_unknown, "no account " + account_id, "account");
  if ((*account)->currency != amount.currency().code())
    return fail(Errc::currency_mismatch,
                "account " + account_id + " is kept in " + (*account)->currency, "currency");
  std::string currency(amount.currency().code());
  Json params{{"account", account_id},
              {"amount_minor", amount.minor()},
              {"currency", currency},
              {"ref", ref}};
  std::string doc_id = "cash-in/" + ref;
  DocKey key{doc_id, "admin", "cash_in", sha256(as_bytes(dump_json(params)))};
  auto entry = ledger::cash_in(doc_id, account_id, amount);
  if (!entry) return up(entry);
  auto applied = commit(key, *entry, dump_json(params));
  if (!applied) return up(applied);
  return CashInResult{ref,      account_id,        amount.minor(),
                      currency, applied->entry_id, applied->replayed};
}

Result<ledger::AuditReport> Bank::audit() { return store_->audit(); }

}  // namespace zf::bank
