// The custody server's logic (DESIGN.md §6.2 top-up, §6.4 deposit, §7 exactly
// once): verifies documents signed by secure elements, checks them against the
// accounts, moves money through the ledger and answers with signed receipts.
// No HTTP here; service.cc maps requests onto these calls.
#pragma once

#include <ctime>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "bank/lanes.h"
#include "bank/store.h"
#include "core/document.h"
#include "core/x509.h"
#include "service/identity.h"
#include "service/serve.h"
#include "service/trust.h"

namespace zf::bank {

// Files of a bank state directory (and those of every service: service/identity.h).
inline constexpr std::string_view kConfigFile = "bank.json";      // {"id", "ca_url", registry}
inline constexpr std::string_view kCustodyKey = "custody.key";    // 0600
inline constexpr std::string_view kCustodyChain = "custody.pem";  // custody cert, root
inline constexpr std::string_view kDbFile = "bank.db";
// The longest an account.query may be valid (the SE signs them for 300 s).
inline constexpr std::int64_t kMaxQueryLifetimeS = 3600;
// How long a designated processing number may be used after it is handed out.
inline constexpr std::int64_t kProcessNoLifetimeS = 600;
// Documents the bank works on at once; more wait, those with a processing number first.
inline constexpr int kBankLanes = 8;
// Longest an events query may wait for news (POST /v1/events wait_ms), well
// inside the clients' 30 s read timeout.
inline constexpr std::int64_t kMaxEventWaitMs = 20000;
using service::kAdminTokenFile;
using service::kCrlCache;
using service::kRootFile;
using service::kTlsChain;
using service::kTlsKey;

struct InitOptions {
  std::string dir;
  std::string bank_id;  // 1..64 of [A-Za-z0-9._-]
  std::string ca_url;   // where the CRL is fetched from
  std::string ca_root_pem;
  // The registry every document is claimed at before it moves money (DESIGN.md
  // §7). Empty: a bank that is the only processor of its documents.
  std::string registry_url;
  std::string registry_id;  // the registry certificate's CN; required with the URL
  // Where the books are: postgresql://… (libpq's URI) or empty for bank.db in dir.
  std::string db_url;
};

// Asks the CA to certify `csr_pem` for `role` ("custody", "tls-server").
using service::CertificateIssuer;

// Creates a bank state directory: custody key (0600) and certificate (CN = bank
// id), TLS key and certificate, admin token (0600, only its hash is stored),
// bank.db, and bank.json last. Fails if the directory already holds a bank.
Status init_bank(const InitOptions& opts, const CertificateIssuer& issue);

// A bank's settings as read from bank.json.
struct BankConfig {
  std::string id;
  std::string ca_url;
  std::string registry_url;  // empty: no registry
  std::string registry_id;
  std::string db_url;  // the books (InitOptions::db_url); bank.db in the directory when empty
};
// The database URL of the bank in `dir` (its config's, else its bank.db).
std::string db_url_of(const std::string& dir, const BankConfig& config);
Result<BankConfig> read_config(const std::string& dir);

// The answer to an account query.
struct Statement {
  AccountRecord account;
  std::vector<HistoryItem> history;  // newest first
};

// The answer to an events query: the account's feed after a point.
struct Feed {
  std::string account;
  std::string currency;
  std::vector<FeedItem> events;  // oldest first
  std::int64_t next = 0;         // ask with after = next for what comes later
};

// The result of an admin cash-in.
struct CashInResult {
  std::string ref;
  std::string account;
  std::int64_t amount_minor = 0;
  std::string currency;
  std::int64_t entry_id = 0;
  bool replayed = false;
};

// What an admin asks for when opening an account.
struct OpenAccountRequest {
  OpenAccountRequest() = default;
  OpenAccountRequest(std::string account_id, std::string currency_code, std::string user,
                     std::optional<std::string> se = std::nullopt, std::vector<std::string> managers = {},
                     int min_signers = 0)
      : account(std::move(account_id)),
        currency(std::move(currency_code)),
        user_id(std::move(user)),
        se_id(std::move(se)),
        co_managers(std::move(managers)),
        threshold(min_signers) {}
  std::string account;
  std::string currency;
  std::string user_id;
  std::optional<std::string> se_id;
  // Non-empty: a joint account managed by these SEs (1..16 distinct SE ids);
  // a spend needs `threshold` of them (0: all of them, as the patent has it).
  std::vector<std::string> co_managers;
  int threshold = 0;
};

// Sends a signed claim to the registry and returns the registry's signed
// record (compact JWS). The service sends it over HTTPS; tests may call an
// in-process registry.
using RegistryLink = std::function<Result<std::string>(const std::string& claim_jws)>;

class Bank final : public service::CrlHolder, public service::AdminGate {
 public:
  // `signer` is the custody key; `chain` is [custody certificate, root].
  Bank(std::string id, std::shared_ptr<const Signer> signer, std::vector<Certificate> chain,
       Certificate root, std::unique_ptr<BankStore> store);
  // Opens a state directory written by init_bank (and the cached CRL, if still valid).
  static Result<std::unique_ptr<Bank>> open(const std::string& dir);

  // Replaces the clock (tests); seconds since the epoch.
  void set_clock(std::function<std::time_t()> clock) { clock_ = std::move(clock); }
  const std::string& id() const { return id_; }
  const Certificate& custody_certificate() const { return chain_.front(); }
  const std::vector<Certificate>& chain() const { return chain_; }
  const Certificate& root() const override { return trust_.root(); }
  BankStore& store() { return *store_; }

  // Accepts a CRL signed by our root whose next update is in the future and
  // that is not older than the one in use. From then on every document is
  // checked against it.
  Status install_crl(const Crl& crl) override { return trust_.install_crl(crl, now()); }
  // The CRL in use, if any (it may have expired).
  std::optional<Crl> crl() const override { return trust_.crl(); }
  // True when a CRL is installed and its next update is still in the future.
  bool has_valid_crl() const override { return trust_.has_valid_crl(now()); }

  // True for a bearer token whose hash is an admin token.
  bool authenticate_admin(std::string_view bearer) override;

  // From now on every top-up request and deposit note is claimed at the registry
  // `registry_id` through `link` before it moves money or is refused. Without a
  // registry the bank's own processed-documents table is the only guard.
  void set_registry(std::string registry_id, RegistryLink link);
  // Called with the document's type each time the registry named this bank
  // the holder of a claim, before the transaction (crash tests kill the
  // process here: ServeOptions::fault_die_after_claim).
  void set_after_claim(std::function<void(std::string_view doc_type)> f) { after_claim_ = std::move(f); }

  // §6.2: verifies a topup.request, debits the account, credits e-cash
  // outstanding and returns the signed topup.receipt (compact JWS). A retry of
  // the same request returns the same receipt bytes.
  Result<std::string> topup(std::string_view request_jws);
  // §6.4: verifies a deposit.note, credits the account, debits e-cash
  // outstanding and returns the signed deposit.receipt.
  Result<std::string> deposit(std::string_view note_jws);
  // §6.7: a transfer.order signed by the SE bound to its `from` account moves
  // the amount to `to` in one journal entry; answers the signed
  // transfer.receipt (status "refused" for insufficient funds: consumed,
  // nothing moved). A retry returns the same receipt bytes.
  Result<std::string> transfer(std::string_view order_jws);

  // §6.8 controlled transfer (src/bank/hold.cc). A hold.request signed by the
  // payer's SE and then the payee's (one payload, two signatures) moves the
  // amount from the payer's account into the hold account; the answer is a
  // signed hold.receipt (status "held", or "refused" for insufficient funds).
  Result<std::string> hold(std::string_view request_jws);
  // A hold.confirm signed by the payer's SE pays the held money to the payee; a
  // hold.release signed by the payee's SE gives it back to the payer. Either
  // ends the hold, once: a hold already ended is hold_resolved, with the
  // receipt of what ended it as the error's evidence.
  Result<std::string> hold_confirm(std::string_view confirm_jws);
  Result<std::string> hold_release(std::string_view release_jws);
  // Gives back every held amount whose release_at has passed (the bank's own
  // act, in the same guard as confirm and release): how many ended, and the
  // holds that could not end now (tried again on the next pass).
  struct ExpiryPass {
    int ended = 0;
    std::vector<Error> failed;  // field: the hold id
  };
  Result<ExpiryPass> expire_holds();
  // §6.9: a joint.spend from a joint account, signed by at least its threshold
  // of distinct co-managers over the same payload. action "transfer" moves the
  // amount to `to` at this bank (a transfer.receipt); action "topup" puts it
  // in the SE of the first signer, `to` (a topup.receipt that SE applies).
  Result<std::string> joint_spend(std::string_view spend_jws);
  // §6.10: a designated processing number for the SE that signed `query_jws`
  // (an account.query for an account it may read, answered once): 128 random
  // bits, valid kProcessNoLifetimeS. A document of that SE carrying it as
  // `process_no` is taken once, in the priority lane.
  Result<ProcessNumber> issue_process_no(std::string_view query_jws);
  // An account.query signed by the account owner's SE: balance and history, once
  // per query (a second presentation of the same query is `replayed`).
  Result<Statement> query(std::string_view query_jws, int history_limit = 20);

  // The account's feed after entry `after` (at most 100 items): what moved
  // on it and the signed receipts, for the owner's SE (or a co-manager's) on
  // a signed account.query, answered once like query().
  Result<Feed> events(std::string_view query_jws, std::int64_t after);

  // Admin: opens a customer account (idempotent for identical settings).
  Result<AccountRecord> open_account(const OpenAccountRequest& req);
  // Admin: money enters the bank (issuance -> account), exactly once per `ref`.
  Result<CashInResult> cash_in(const std::string& account, const Amount& amount,
                               const std::string& ref);
  // Admin: recomputes the books.
  Result<ledger::AuditReport> audit();

  // Called with each account a new journal entry posts to or notices (after
  // its commit, on the committing thread): what wakes waiting feed readers.
  void set_feed_listener(std::function<void(const std::string& account)> listener) {
    feed_listener_ = std::move(listener);
  }
  // The feed of an account whose reader was checked (by events()).
  Result<Feed> feed(const std::string& account, const std::string& currency, std::int64_t after);

 private:
  struct Verified {
    SignedDocument doc;
    Certificate signer;  // the first signer: the document's issuer
    DocKey key;
    Lanes::Ticket ticket;  // this document's place among those the bank works on
    // Why its processing number may not be used, for a document the bank
    // answers with a signed refusal (top-up, deposit) rather than an error.
    std::optional<Error> process_no_refused;
  };
  // The processing number a document carries, if any, may be used by it.
  Status check_process_no(const Document& doc, const Certificate& signer, std::int64_t t);
  // `fx` plus the guard of the document's processing number, if it carries one.
  static Effects with_process_no(const Verified& v, Effects fx = {});
  // Signature, chain, role, CRL, type and time of a document with exactly
  // `signers` signatures (or signers..max_signers), every one checked (chain to our root, role
  // secure-element, not revoked); fails unavailable without a valid CRL.
  Result<Verified> verify(std::string_view jws, std::string_view expected_type, std::size_t signers = 1,
                          std::size_t max_signers = 0);
  // "<bank>:<tag>:<document id>", or a digest of the id when that would not fit a document id.
  static std::string answer_id(const std::string& bank, std::string_view tag, const std::string& doc_id);
  // Ends a hold by `v` (confirm or release): the checks both share, then one
  // transaction in the hold's guard.
  Result<std::string> end_hold(const Verified& v, std::string_view status);
  // The hold.receipt payload of `hold` in `status`, answering document `doc_id`.
  Json hold_receipt(const HoldRecord& hold, std::string_view status, const std::string& doc_id,
                                   std::string_view tag);
  // One due hold back to its payer: true if this call ended it.
  Result<bool> expire_hold(const HoldRecord& hold);
  // hold_resolved for `hold`, with the receipt of the document that ended it.
  std::unexpected<Error> already_ended(const HoldRecord& hold, const std::string& winner_doc_id);
  // The account named in `field`: it exists here, may be used by documents,
  // and is kept in the document's currency.
  Result<AccountRecord> document_account(const Document& doc, const char* field = "account");
  // The SE certificate `signer` may sign for `account`: its user owns it, and
  // it is the SE the account names, if it names one.
  static bool signs_for(const Certificate& signer, const AccountRecord& account);
  // The same document again: its stored response; another one with its id: doc_id_reused.
  Result<std::optional<std::string>> prior_response(const DocKey& key);
  Result<std::string> sign_receipt(const Json& payload);
  // The receipt payload (topup.receipt / deposit.receipt) answering `v`, for `account`.
  Json receipt_payload(const Verified& v, std::string_view type, const std::string& account);
  // A verified account.query, used once, from an SE that may read the account:
  // the account and the SE.
  struct Reader {
    AccountRecord account;
    std::string se;
  };
  Result<Reader> read_access(std::string_view query_jws);
  // The transfer.receipt payload answering `v`, moving from `from` to `to`.
  Json transfer_receipt(const Verified& v, const std::string& from, const std::string& to);
  // Signs `receipt`, applies `entry` with it (and `fx`, and the document's
  // processing number); insufficient_funds: consumed with a signed refusal.
  Result<std::string> apply_or_refuse(const Verified& v, const ledger::JournalEntry& entry, Json receipt,
                                      Effects fx = {});
  // store_->apply at now(), then the feed listener for a new entry's accounts.
  Result<Applied> commit(const DocKey& key, const ledger::JournalEntry& entry, const std::string& response,
                         const Effects& fx = {});
  // Signs `receipt` as refused for `reason` and consumes the document (no journal entry).
  Result<std::string> record_refusal(const Verified& v, Json receipt, Errc reason);
  // Claims the document at the registry (if one is set): ok when this bank holds
  // it; replayed / seq_reused with the registry's record as evidence when another
  // document or processor holds it; unavailable (retryable) when the registry
  // cannot be reached or its answer does not verify. Nothing moves unrecorded.
  Status claim_at_registry(const Verified& v);
  // `why` from prior_response; for doc_id_reused on an SE document, reports the
  // reuse to the registry and answers with its seq_reused record if it gives one.
  std::unexpected<Error> refuse_reused(const Verified& v, const Error& why);
  std::time_t now() const { return clock_ ? clock_() : std::time(nullptr); }

  std::string id_;
  std::shared_ptr<const Signer> signer_;
  std::vector<Certificate> chain_;
  service::TrustStore trust_;
  std::unique_ptr<BankStore> store_;
  std::function<std::time_t()> clock_;
  std::string registry_id_;
  RegistryLink registry_link_;
  std::function<void(std::string_view)> after_claim_;
  Lanes lanes_{kBankLanes};
  std::function<void(const std::string&)> feed_listener_;
};

using service::OwnedKeySigner;
using service::read_text_file;
using service::write_text_file;

}  // namespace zf::bank
