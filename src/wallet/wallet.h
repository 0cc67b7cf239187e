// The terminal (DESIGN.md §1, §6.2–6.4): a wallet directory holding which SE to
// talk to, which banks and CA, an outbox of signed documents not yet
// acknowledged (written before sending, so a crash or a dropped connection is
// retried with the same document), and the history.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <utility>
#include <string>

#include "bank/client.h"
#include "core/amount.h"
#include "core/x509.h"
#include "wallet/se_client.h"

namespace zf::wallet {

struct BankEndpoint {
  std::string url;
};

struct WalletConfig {
  int se_port = 0;
  std::string ca_url;
  std::string root_pem;  // the CA root this wallet trusts
  std::map<std::string, BankEndpoint> banks;
  std::string registry_url;  // optional: claim every note at the registry before receiving it
  std::string registry_id;   // the registry its TLS certificate must name (empty: any registry)
};

// One signed document on its way to a bank, or a note on its way to a payee.
struct OutboxEntry {
  std::string doc_id;
  // "topup", "deposit", "transfer", "payment", "escrow", "hold" (a hold
  // request, this wallet's or one it cosigned), "hold_confirm",
  // "hold_release", "joint" (a joint spend)
  std::string kind;
  std::string doc;   // the JWS exactly as the SE signed it
  std::string bank;  // for topup and deposit
  // "pending", "done", "refused"; a hold request also "cosign" (the payer's,
  // waiting for the payee's signature) and "cosigned" (the payee's, not sent)
  std::string state;
  std::string receipt;
  std::string error;
};

// The terminal's long-term pairing key for its SE: <wallet>/pairing.key
// (base64url, mode 0600, replaced atomically). Without it the SE answers only
// SELECT, pairing and public GET DATA.
Status save_pairing_key(const std::string& dir, const SecretBytes& key);
Result<SecretBytes> load_pairing_key(const std::string& dir);

class Wallet {
 public:
  static Status init(const std::string& dir, const WalletConfig& config);
  static Result<std::unique_ptr<Wallet>> open(const std::string& dir);

  const WalletConfig& config() const { return config_; }
  // Connects to the SE (if not yet) and verifies the PIN for this session.
  Status unlock(const std::string& pin);
  bool unlocked() const { return unlocked_; }
  // Lets the SE go, so another terminal may use it (it serves one at a time);
  // unlock() again before the SE signs anything more.
  void release_se() {
    se_.reset();
    unlocked_ = false;
  }
  SeClient& se();

  // Pairs this terminal with its SE (`puk` once the SE is personalized) and
  // keeps the key; `confirm` compares the code as the person does (SeClient::pair).
  Status pair(const std::string& puk, const std::function<bool(const std::string&)>& confirm);

  Result<Json> balance();
  // Fetches the CA's CRL and installs it in the SE when newer.
  Status refresh_crl();
  // Renews the SE's CRL when it is within an hour of its next update (or
  // past it): an SE refuses every certificate once its CRL has expired, so a
  // network left up for days would stop paying. Runs before every command
  // that moves value. Fails only when the CRL has expired and cannot be
  // renewed; a failed early renewal is a notice, and the command goes on.
  Status keep_crl_fresh();
  // What the terminal did on the person's behalf since the last call (e.g. a
  // renewed CRL), in sentences, for the CLI to show.
  std::vector<std::string> take_notices() { return std::exchange(notices_, {}); }
  // With `process_no` (a designated processing number of this SE from
  // process_number()), the document carries it and the bank serves it first.
  Result<Json> topup(const Amount& amount, const std::string& bank, const std::string& account,
                     const std::string& process_no = {});
  // Account transfer (DESIGN.md §6.7): the SE signs a transfer.order from
  // `from` to `to` at `bank`, kept in the outbox, sent; answers {order_id,
  // receipt_id, bank, from, to, amount_minor, currency, status "moved"}.
  // A refusal by the bank is its reason as the error; no money moved.
  Result<Json> transfer(const Amount& amount, const std::string& bank, const std::string& from,
                        const std::string& to, const std::string& process_no = {});
  // A designated processing number from `bank` for one document of this SE
  // (docs/bank-api.md "Processing numbers"), asked with a query for `account`
  // the SE signs: {process_no, se, expires_at}.
  Result<Json> process_number(const std::string& bank, const std::string& account);
  // Controlled transfer, a hold (DESIGN.md §6.8; src/wallet/wallet_hold.cc).
  // The payer: the SE signs a hold.request for `amount` from `payer_account`
  // to `payee_account` at `bank`, given back at `release_at` unless it ended
  // before; kept in the outbox until the payee's signature comes back. Answers
  // {request, hold_id, bank, amount_minor, currency, payer_account, payee_account, release_at}.
  Result<Json> hold_request(const Amount& amount, const std::string& bank, const std::string& payer_account,
                            const std::string& payee_account, std::int64_t release_at);
  // The payee: the SE checks the payer's request and adds its signature. The
  // same facts, `request` now carrying both signatures.
  Result<Json> hold_cosign(const std::string& request_jws);
  // Either party: sends a request with both signatures to its bank. Answers
  // the hold receipt's facts: {hold_id, status "held", receipt_id, ...}.
  Result<Json> hold_submit(const std::string& request_jws);
  // The payer pays the held money to the payee (`confirm`), or the payee
  // gives it back (release): the SE signs, the bank ends the hold once. A hold
  // that had already ended is hold_resolved, naming how; nothing moved.
  Result<Json> hold_end(const std::string& hold_id, bool confirm);
  // Joint accounts (DESIGN.md §6.9; src/wallet/wallet_joint.cc). A co-manager
  // asks: the SE signs a joint.spend of `amount` from `account` at `bank`,
  // action "transfer" to account `to`, or "topup" into this SE. Answers
  // {spend, id, bank, account, action, to, amount_minor, currency, signers}.
  Result<Json> joint_request(const Amount& amount, const std::string& bank, const std::string& account,
                             const std::string& action, const std::string& to);
  // Another co-manager: the SE shows and checks the spend and adds its
  // signature. The same facts, `spend` now carrying one more signature.
  Result<Json> joint_sign(const std::string& spend_jws);
  // Any co-manager: sends the spend to its bank. A transfer answers as
  // transfer() does; a top-up is applied to this SE when it asked for it,
  // and otherwise answered {status "moved", to} for that SE's terminal.
  Result<Json> joint_submit(const std::string& spend_jws);
  // The SE a payment to `who` (an SE id, or a user id with one SE) goes to, as
  // the CA certifies it: {se_id, user_id, certificate (PEM)}. not_found for a
  // name the CA does not know, cert_revoked when every certificate of it is
  // revoked or expired, bad_field when a user has several SEs.
  Result<Json> resolve_payee(const std::string& who);
  // kind "payment" (PAYMENT NOTE) or "escrow" (CPAY NOTE): the SE's answer, with "payee".
  Result<Json> sign_note_to(const Amount& amount, const std::string& payee, std::optional<std::int64_t> expires_in_s,
                            const std::string& kind);
  // Resolves the payee, then debits the SE, which checks the payee's
  // certificate itself, and returns the signed payment note (kept in the outbox
  // until acknowledged). An unknown or revoked payee moves nothing.
  // `expires_in_s`: how long the payee may receive the note (default: the SE's
  // note lifetime, 30 days); after it the value can be reclaimed (reclaim()).
  Result<std::string> pay(const Amount& amount, const std::string& payee,
                          std::optional<std::int64_t> expires_in_s = std::nullopt);
  // Claims the note at the registry and hands it with the record to the SE.
  // A note this SE already holds is `replayed` with field "note"
  // (already_received): nothing changed, and a person need do nothing.
  Result<Json> receive(const std::string& note_jws);
  static bool already_received(const Error& e);
  // What the registry says about a note before this terminal accepts it
  // (DESIGN.md §7 "query, then process"): verifies the note against the CA root,
  // queries its id and verifies the record. Returns {doc_id, status "unclaimed"}
  // or {doc_id, status "claimed", processor, claimed_at, record, same_document},
  // plus the note's facts and for_me (payee is this wallet's SE). Needs no PIN.
  Result<Json> check(const std::string& note_jws);
  Result<Json> deposit(const Amount& amount, const std::string& bank, const std::string& account);
  // Re-sends every pending outbox entry, first adopting documents the SE signed
  // that the outbox never saw (a crash between SE and disk). Returns a summary.
  Result<Json> retry();
  // The payment notes this SE signed, oldest first, each with what the registry
  // says of it: first adopting notes the SE signed that the outbox never saw
  // (a crash after the debit, before the note reached the disk). Each item:
  // {doc_id, payee, amount_minor, currency, iat, exp?, open, status,
  // processor?, claimed_at?, registry_error?}; status "received" (the payee's
  // claim holds it), "not_received" (no claim yet, still receivable),
  // "reclaimable" (no claim and past its expiry: reclaim() takes it back),
  // "reclaimed" (this SE's reclaim holds it), "held_by_other" (another SE's
  // claim holds the id: a reused sequence number), or "unknown" (the registry
  // could not be asked; registry_error says why). `open`: the SE still keeps
  // the note for a reclaim. A note the registry shows received is closed in
  // the SE on the way, which frees its room (Applet::kMaxOutstanding).
  Result<Json> notes();
  // Takes back the value of note `doc_id`, which this SE paid and nobody
  // received before its expiry (docs/registry-api.md "Expiry and reclaim"):
  // the SE signs a reclaim claim, the registry records it (only after the
  // expiry, only if the payee did not claim first), and the SE credits the
  // value on that record, once. Returns {doc_id, outcome, payee, ...}:
  // outcome "reclaimed" (credited_minor, currency, balance_minor) or
  // "received" (the payee's claim holds the note: nothing comes back;
  // claimed_at). not_expired before the expiry; replayed with field "id" when
  // this SE reclaimed the note before; not_found for a note it has no record of.
  // Safe to repeat after any crash: the registry answers a repeated reclaim
  // with the same record, and the SE credits only while the note is open.
  Result<Json> reclaim(const std::string& doc_id);
  // The open notes past their expiry (what reclaim() would take back).
  Result<std::vector<std::string>> reclaimable();
  // The outbox's copy of payment note `doc_id`, exactly as the SE signed it.
  Result<std::string> note(const std::string& doc_id) const;
  Result<Json> history();
  std::vector<OutboxEntry> outbox() const;

  // The bank's statement of `account` at `bank`, through an account.query the
  // SE signs (so the PIN must be verified): {account, currency, balance_minor,
  // history: [{entry_id, doc_id, kind, amount_minor, created_at}]}, newest
  // first (docs/bank-api.md). The bank refuses an account not bound to this SE
  // (not_owner) or unknown to it (account_unknown). Moves nothing.
  Result<Json> account_statement(const std::string& bank, const std::string& account);
  // What happened on the account after feed position `after` (the SE signs a
  // query each time): {account, next, events: [{entry_id, doc_id, kind,
  // amount_minor, held_minor, created_at, receipt, details}]}, each receipt
  // checked as signed by the bank when it is a document, its payload given as
  // `details`. With wait_ms, the bank holds an empty answer that long for
  // news, and the SE is let go (release_se) once it signed the query.
  Result<Json> account_events(const std::string& bank, const std::string& account, std::int64_t after,
                              std::int64_t wait_ms = 0);
  // The newest `limit` payment notes of the outbox that no claim at the
  // registry holds yet: value paid that no payee has received. Needs no PIN
  // (each note is presented to the registry itself). {notes: [{doc_id, payee,
  // amount_minor, currency}], asked, total}: `asked` notes asked about of the
  // `total` the outbox holds. Fails when the registry cannot be asked.
  Result<Json> notes_not_received(std::size_t limit = 32);
  // Face to face (docs/se-apdu.md "Face-to-face payment"), with no server.
  // The payee: lets its SE be found for `seconds` and waits until one payment
  // arrives (or the time is up); `on_code` gets each payer's session code as
  // it is agreed, for the screen. Returns {received: bool, ...the SE's log
  // entry: doc_id, counterparty, amount_minor, currency}.
  Result<Json> receive_nearby(std::int64_t seconds, const std::function<void(const Json&)>& on_code = {});
  // The payer: agrees a session with `payee` (an SE id) nearby; `confirm`
  // gets {payee, payee_user, code, amount_minor, currency} and answers
  // whether the person wants to pay (the codes match); then the SE debits and
  // pays. Returns the SE's outcome: "delivered", "refused" (value back) or
  // "undelivered" (value in flight: deliver() or the payee's answer ends it).
  // cancelled with nothing debited when `confirm` says no.
  Result<Json> pay_nearby(const Amount& amount, const std::string& payee,
                          const std::function<bool(const Json&)>& confirm);
  // The SE's face-to-face state: {receiving_until, undelivered: [...], unreconciled: [...]}.
  Result<Json> nearby_state();
  // Closes an undelivered payment with the payee's signed answer (from its
  // `zf wallet receive` or `zf wallet refuse`).
  Result<Json> apply_answer(const std::string& answer_jws);
  // The payee refuses a payment it was given and never credited: returns the signed refusal.
  Result<Json> refuse(const std::string& payment_jws, const std::string& reason);
  // Settles at the registry every payment this SE took offline: {settled: [...], revoked: [...], errors: [...]}.
  Result<Json> reconcile();

  // Controlled payment (docs/se-apdu.md "Controlled payment"). The payer puts
  // `amount` in escrow for `payee` (resolved at the CA): {note, id, code, exp}.
  Result<Json> escrow_pay(const Amount& amount, const std::string& payee,
                          std::optional<std::int64_t> expires_in_s = std::nullopt);
  // The payer agrees to pay: the key the payee needs, {id, payee, key}.
  Result<Json> escrow_release(const std::string& id);
  // The payee accepts with the released key: claims at the registry, then credits.
  Result<Json> escrow_accept(const std::string& note_jws, const Json& key);
  // The payee refunds: {refund, note_id}; its SE never accepts the note afterwards.
  Result<Json> escrow_refund(const std::string& note_jws);
  // The payer takes the value back on the payee's refund (or after the expiry,
  // `refund_jws` empty), or closes a note the payee accepted: {id, outcome
  // "refunded" | "paid", ...}.
  Result<Json> escrow_close(const std::string& id, const std::string& refund_jws = {});
  // The payer's open escrow notes, each with what the registry says of it.
  Result<Json> escrow_list();

  // Whether `e` is a bank's signed refusal of a top-up or deposit from topup()
  // or deposit(): the document is consumed and e.code is the bank's reason; no
  // money moved (a deposit's value is back in the SE).
  static bool refused_by_bank(const Error& e);

 private:
  Wallet() = default;
  Status save_entry(const OutboxEntry& e);
  static Error unfinished(const OutboxEntry& e, const Amount& amount, Error err);
  static Error received_before(const std::string& note_jws);
  // Writes an outbox entry for every document the SE still lists as signed and
  // pending that the outbox does not hold; returns how many.
  Result<int> adopt_issued(std::map<std::string, OutboxEntry>& known);
  Status append_history(const Json& event);
  // Sends one topup/deposit entry to its bank and hands the receipt to the SE.
  Result<Json> settle(OutboxEntry& e);
  // The end of a transfer whose receipt is in `e`: checked, kept, the entry done.
  Result<Json> finish_transfer(OutboxEntry& e);
  // The end of a hold document (request, confirm, release) whose receipt is in `e`.
  Result<Json> finish_hold(OutboxEntry& e);
  // The end of a joint spend whose receipt is in `e`.
  Result<Json> finish_joint(OutboxEntry& e);
  // A connection to `bank` and a query for `account` the SE just signed.
  struct BankQuery {
    bank::BankClient client;
    std::string query;
  };
  Result<BankQuery> bank_query(const std::string& bank, const std::string& account);
  // The outbox entry `doc_id`, if this wallet has one.
  std::optional<OutboxEntry> find_entry(const std::string& doc_id) const;
  // A document handed over may take the place of `prior` only if that is an
  // entry of the same kind: never a deposit, payment or other document this
  // SE signed under the same id (conflict, nothing written).
  static Status may_replace(const std::optional<OutboxEntry>& prior, std::string_view kind);
  Status ensure_se();
  // Writes a registry record to records/<doc id>.jws, the terminal's proof of what the registry said.
  void keep_record(const std::string& doc_id, const std::string& record_jws);
  // The first record kept for `doc_id`, if any.
  std::optional<std::string> kept_record(const std::string& doc_id) const;
  // Claims a note at the registry through the SE; ok only if this SE's claim holds it.
  Result<std::string> claim_at_registry(const std::string& note_jws);

  std::string dir_;
  WalletConfig config_;
  std::optional<Certificate> root_;
  std::optional<SeClient> se_;
  bool unlocked_ = false;
  std::vector<std::string> notices_;
};

}  // namespace zf::wallet
