// The secure-element applet (DESIGN.md §5): a pure state machine fed APDUs.
// It owns the user's key (generated inside, never exported), the e-cash
// balances, the monotonic sequence counter and the sets of applied documents,
// and it validates everything it signs or accepts: the terminal is not trusted.
// Persistence is the host's job: after a command that changed state the host
// seals state_json() and replaces the state file before releasing the response.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>

#include "core/claims.h"
#include "core/document.h"
#include "se/apdu.h"
#include "se/secure_channel.h"

namespace zf::se {

// Instruction bytes (CLA 0x00 for ISO commands, 0x80 for ours). docs/se-apdu.md.
namespace ins {
inline constexpr std::uint8_t kSelect = 0xA4;          // 00 A4 04 00 <AID>
inline constexpr std::uint8_t kVerify = 0x20;          // 00 20 00 80 <PIN> | 00 20 00 81 <bio hash>
inline constexpr std::uint8_t kResetRetry = 0x2C;      // 00 2C 00 80 {"puk","new_pin"}
inline constexpr std::uint8_t kGetData = 0xCA;         // 80 CA 00 <tag>
inline constexpr std::uint8_t kPersonalize = 0x10;     // 80 10: set user, PIN, limits, root; make key + CSR
inline constexpr std::uint8_t kInstallCert = 0x12;     // 80 12: install the CA-issued certificate
inline constexpr std::uint8_t kUpdateCrl = 0x14;       // 80 14: newer CRL signed by the root
inline constexpr std::uint8_t kTopupRequest = 0x20;    // 80 20: sign a topup.request
inline constexpr std::uint8_t kTopupReceipt = 0x22;    // 80 22: apply a topup.receipt
inline constexpr std::uint8_t kPaymentNote = 0x30;     // 80 30: debit and sign a payment.note
inline constexpr std::uint8_t kReceiveNote = 0x32;     // 80 32: verify and credit a payment.note with its registry record
inline constexpr std::uint8_t kClaimNote = 0x34;       // 80 34: sign a registry claim for a note it would accept
inline constexpr std::uint8_t kReclaimClaim = 0x36;    // 80 36: sign a reclaim claim for an expired note it paid
inline constexpr std::uint8_t kCloseNote = 0x38;       // 80 38: close a note it paid with the registry's record
inline constexpr std::uint8_t kDepositNote = 0x40;     // 80 40: debit and sign a deposit.note
inline constexpr std::uint8_t kDepositReceipt = 0x42;  // 80 42: record a deposit.receipt
inline constexpr std::uint8_t kSignQuery = 0x50;       // 80 50: sign an account.query
// Bank operations (docs/se-apdu.md "Account transfer"): the SE signs, the bank moves the money.
inline constexpr std::uint8_t kTransferOrder = 0x44;   // 80 44: sign a transfer.order between two accounts
inline constexpr std::uint8_t kHoldRequest = 0x46;     // 80 46: payer: sign a hold.request
inline constexpr std::uint8_t kCosign = 0x48;          // 80 48: add its signature to a hold.request or a joint.spend
inline constexpr std::uint8_t kHoldConfirm = 0x4A;     // 80 4A: payer: sign a hold.confirm (pay the payee)
inline constexpr std::uint8_t kHoldRelease = 0x4C;     // 80 4C: payee: sign a hold.release (give it back)
inline constexpr std::uint8_t kJointRequest = 0x4E;    // 80 4E: co-manager: sign a joint.spend from a joint account
// Face to face (docs/se-apdu.md "Face-to-face payment").
inline constexpr std::uint8_t kF2fReceive = 0x90;      // 80 90: be found nearby and take payments for a while
inline constexpr std::uint8_t kF2fPay = 0x92;          // 80 92: find the payee, agree keys, show the code
inline constexpr std::uint8_t kF2fSend = 0x94;         // 80 94: debit, send the payment, take the answer
inline constexpr std::uint8_t kF2fCancel = 0x96;       // 80 96: drop the agreed session, nothing debited
inline constexpr std::uint8_t kF2fClose = 0x98;        // 80 98: close an undelivered payment with an ack, refusal or record
inline constexpr std::uint8_t kF2fRefuse = 0x9A;       // 80 9A: payee: refuse a payment it never credited
inline constexpr std::uint8_t kF2fReconcile = 0x9C;    // 80 9C: payee: sign the registry claim for a payment taken offline
inline constexpr std::uint8_t kF2fSettle = 0x9E;       // 80 9E: payee: settle it on the registry's record
// Controlled payment, escrow between two SEs (docs/se-apdu.md "Controlled payment"); 5x: no ISO
// instruction uses these, so our class never reuses an ISO INS byte.
inline constexpr std::uint8_t kCpayNote = 0x52;        // 80 52: payer: debit and sign a sealed cpay.note
inline constexpr std::uint8_t kCpayRelease = 0x54;     // 80 54: payer: release the payee's key (agree to pay)
inline constexpr std::uint8_t kCpayClaim = 0x56;       // 80 56: payee: sign the registry claim to accept
inline constexpr std::uint8_t kCpayAccept = 0x58;      // 80 58: payee: open with the key and credit, on the record
inline constexpr std::uint8_t kCpayRefund = 0x5A;      // 80 5A: payee: sign a refund (never accept afterwards)
inline constexpr std::uint8_t kCpayRefundClaim = 0x5C; // 80 5C: payer: sign the registry claim to take it back
inline constexpr std::uint8_t kCpayClose = 0x5E;       // 80 5E: payer: close on the registry's record
// Pairing and the secure channel (docs/se-apdu.md "Pairing and secure messaging"); sent in the clear.
inline constexpr std::uint8_t kPairBegin = 0x60;       // 80 60: terminal's ephemeral key -> SE's key + commitment
inline constexpr std::uint8_t kPairNonce = 0x62;       // 80 62: terminal's nonce -> SE's nonce; SE shows the code
inline constexpr std::uint8_t kPairConfirm = 0x64;     // 80 64: terminal's key confirmation (+ sealed PUK to re-pair)
inline constexpr std::uint8_t kAuthBegin = 0x70;       // 80 70: host challenge -> card challenge + cryptogram
inline constexpr std::uint8_t kAuthFinish = 0x82;      // 80 82: host cryptogram (as EXTERNAL AUTHENTICATE)
}  // namespace ins

// GET DATA tags (P2).
namespace tag {
inline constexpr std::uint8_t kInfo = 0x01;     // JSON: ids, state, balances, counters, limits
inline constexpr std::uint8_t kCertificate = 0x02;  // PEM chain
inline constexpr std::uint8_t kLog = 0x03;      // JSON array, newest last
inline constexpr std::uint8_t kIssued = 0x05;   // JSON array of documents this SE signed, newest last
inline constexpr std::uint8_t kStatus = 0x06;   // JSON: se_id, state, paired (public)
inline constexpr std::uint8_t kOutstanding = 0x07;  // JSON array: notes this SE paid that are not yet closed
inline constexpr std::uint8_t kF2f = 0x08;          // JSON: face-to-face state (receiving, code, undelivered, unreconciled)
inline constexpr std::uint8_t kEscrow = 0x09;       // JSON array: escrow notes this SE paid that are not closed
}  // namespace tag

// True unless the command is one an unauthenticated link may send in the clear:
// SELECT, the pairing and authentication commands, public GET DATA (status, certificate).
bool needs_secure_channel(std::uint8_t cla, std::uint8_t ins, std::uint8_t p2);

// The applet's AID (proprietary, RID-less "F0" range).
inline constexpr std::uint8_t kAid[] = {0xF0, 0x7A, 0x68, 0x75, 0x61, 0x6E, 0x66, 0x75, 0x01};

enum class Lifecycle { factory, personalized, active };

struct LogEntry {
  std::int64_t seq;  // SE counter at the time (0 for entries that did not sign)
  std::string op;
  std::string doc_id;
  std::string currency;
  std::int64_t amount_minor;  // signed: + credit, - debit, 0 no value
  std::string counterparty;
  std::int64_t at;
};

// Ids this SE has finished with (applied top-up receipts, settled deposits),
// newest kept: a receipt is acted on only while its document is pending, so a
// forgotten id only changes which error a replay gets (receipt_mismatch
// instead of replayed), never what it does.
class RecentIds {
 public:
  explicit RecentIds(std::size_t keep) : keep_(keep) {}
  bool contains(const std::string& id) const;
  void insert(const std::string& id);
  // Forgets every id for which `keep` is false.
  template <class F>
  void retain(F&& keep);
  std::size_t size() const { return order_.size(); }
  std::size_t capacity() const { return keep_; }
  Json to_json() const;  // oldest first
  static RecentIds from_json(const Json& j, std::size_t keep);

 private:
  std::size_t keep_;
  std::deque<std::string> order_;
  std::set<std::string> ids_;
};

template <class F>
void RecentIds::retain(F&& keep) {
  std::deque<std::string> kept;
  for (auto& id : order_) {
    if (keep(id))
      kept.push_back(std::move(id));
    else
      ids_.erase(id);
  }
  order_ = std::move(kept);
}

// Payment documents credited here (payment notes, face-to-face payments), so
// that none is credited twice. It keeps the newest kKept by the payer's iat;
// when one is forgotten, `floor` rises to its iat, and every document issued
// at or before the floor is refused as one that may have been credited
// already. Safety-critical: the floor never goes down, and a document is
// credited only if it is above the floor and not in the set.
class ReceivedIds {
 public:
  static constexpr std::size_t kKept = 1024;
  // True if `id` (issued at `iat`) may have been credited here before.
  bool seen(const std::string& id, std::int64_t iat) const;
  bool contains(const std::string& id) const { return ids_.count(id) != 0; }
  void insert(const std::string& id, std::int64_t iat);
  std::int64_t floor() const { return floor_; }
  std::size_t size() const { return ids_.size(); }
  Json to_json() const;  // {id: iat}
  static Result<ReceivedIds> from_json(const Json& ids, std::int64_t floor);

 private:
  std::map<std::string, std::int64_t> ids_;
  std::set<std::pair<std::int64_t, std::string>> by_iat_;
  std::int64_t floor_ = 0;
};

// How an SE reaches another SE face to face: the host's short-range link
// (docs/se-apdu.md "Face-to-face payment"). The applet calls it from inside a
// command; it never sees the network.
class PeerLink {
 public:
  virtual ~PeerLink() = default;
  // Finds `peer_id` nearby (first call) and sends one message; returns its answer.
  virtual Result<Bytes> exchange(const std::string& peer_id, ByteView message) = 0;
  // Makes the applet's current state durable: called before a message that
  // moves value leaves the SE.
  virtual Status persist() = 0;
  // Ends the link (after the payment, or when the session is dropped).
  virtual void close() = 0;
};

class Applet {
 public:
  static constexpr std::size_t kLogSize = 64;
  static constexpr std::size_t kIssuedKept = 32;
  static constexpr std::size_t kRecentKept = 256;  // applied top-ups, settled deposits
  // Notes paid and not yet closed (received by the payee, or reclaimed): the
  // SE keeps what it needs to take each one back after its expiry.
  static constexpr std::size_t kMaxOutstanding = 256;
  static constexpr std::int64_t kDefaultNoteTtlS = 30 * 24 * 3600;
  static constexpr std::int64_t kMaxNoteTtlS = 366 * 24 * 3600;
  // A note expires at least this long before the SE's certificate does, so its
  // value can still be reclaimed under that certificate.
  static constexpr std::int64_t kReclaimWindowS = 7 * 24 * 3600;
  static constexpr int kDefaultPinTries = 3;
  static constexpr int kPukTries = 10;
  // Re-pairing over an unauthenticated link stops while this few PUK tries are
  // left: they stay for RESET RETRY COUNTER, which only the paired terminal sends.
  static constexpr int kPukTriesKeptForUnblock = 3;

  // A new SE as it leaves the factory: its serial and burned-in attestation identity.
  Applet(std::string se_id, PrivateKey attestation_key, std::vector<Certificate> attestation_chain);
  // Restores from state_json(); errors if the state is malformed.
  static Result<std::unique_ptr<Applet>> from_state(const Json& state);
  Json state_json() const;

  // Runs one command as it came over the link, at time `now_s` (the host's
  // clock): a secured frame (CLA | 04) is opened under the session, run, and its
  // response sealed; a clear command is run only if the clear link may send it. Never throws.
  Response process(const Command& cmd, std::int64_t now_s);
  Bytes process_raw(ByteView apdu, std::int64_t now_s);
  // True when the last command changed persistent state (the host must save it first).
  bool dirty() const { return dirty_; }
  // A power cycle / new link: the verified user is forgotten.
  void reset_session();
  // What the SE's display shows: the six-digit code while a pairing waits for
  // the terminal's confirmation, else empty. The host puts it where a person sees it.
  const std::string& display() const { return display_; }
  bool paired() const { return st_.pairing_key.size() != 0; }
  bool secure_session() const { return session_.has_value(); }
  const std::string& se_id() const { return st_.se_id; }
  Lifecycle lifecycle() const { return st_.lifecycle; }
  // Balance of one currency in minor units (0 if none).
  std::int64_t balance(std::string_view currency) const;
  std::int64_t seq() const { return st_.seq; }

  // Face to face. The host installs its link (nullptr: none); messages from
  // another SE come in through process_peer, never over the terminal link.
  void set_peer_link(PeerLink* link) { peer_link_ = link; }
  Bytes process_peer(ByteView message, std::int64_t now_s);
  // Until when this SE takes face-to-face payments (0: not receiving), for the
  // host's advertisement; the code of the payment being agreed, for its display.
  std::int64_t receiving_until() const { return receiving_until_; }
  const std::string& f2f_code() const { return f2f_code_; }

  static constexpr std::size_t kMaxUndelivered = 16;
  static constexpr std::int64_t kF2fSessionS = 60;   // an agreed session is used within this
  static constexpr std::int64_t kMaxReceiveS = 600;  // one F2F RECEIVE lasts at most this

 private:
  // Everything the SE keeps across power cycles; state_json() and from_state()
  // read and write it through one field list (applet_state.cc).
  struct State {
    // Identity.
    std::string se_id;
    std::string user_id;
    Lifecycle lifecycle = Lifecycle::factory;
    std::unique_ptr<PrivateKey> attest_key;
    std::vector<Certificate> attest_chain;
    std::unique_ptr<PrivateKey> key;
    std::vector<Certificate> chain;  // own certificate (and intermediates)
    std::optional<Certificate> root;
    std::optional<Crl> crl;
    // User verification.
    Bytes pin_salt, pin_hash, puk_hash, bio_hash;
    int pin_tries_left = kDefaultPinTries;
    int pin_tries_max = kDefaultPinTries;
    int puk_tries_left = kPukTries;
    // The paired terminal's key (the rest of the link ends with the session).
    SecretBytes pairing_key;
    // Value.
    std::map<std::string, std::int64_t> balances;
    std::int64_t max_balance_minor = Amount::kMaxMinor;
    std::int64_t max_payment_minor = Amount::kMaxMinor;
    std::int64_t note_ttl_s = kDefaultNoteTtlS;  // how long a payee may receive a note
    std::int64_t seq = 0;
    // Exactly-once sets. Safety-critical: an id enters these in the same state
    // update that moves the value, and the host persists both atomically.
    std::map<std::string, Json> pending_topups;    // request id -> request payload
    RecentIds applied_topups{kRecentKept};         // request ids whose receipt was applied
    ReceivedIds received_notes;                    // payment documents credited here
    std::map<std::string, Json> pending_deposits;  // deposit note id -> payload
    RecentIds settled_deposits{kRecentKept};
    // Payment notes this SE signed and has not closed: note id -> {seq, payee,
    // amount, currency, exp, digest}. An entry leaves when the registry's record
    // shows the payee received the note, or in the same state update as the
    // reclaim credit, so a note's value comes back at most once.
    std::map<std::string, Json> outstanding_notes;
    // Lifetime totals per currency, for the audit of notes in flight.
    std::map<std::string, std::int64_t> sent_minor;       // payment notes signed here
    std::map<std::string, std::int64_t> received_minor;   // payment notes credited here
    std::map<std::string, std::int64_t> reclaimed_minor;  // own notes whose value came back here
    std::deque<LogEntry> log;
    std::deque<std::string> issued;  // JWS of documents this SE signed, newest last
    // Face to face (applet_f2f.cc). Offline risk is bounded by amounts and
    // counts, never by time (DESIGN.md §6.5).
    std::int64_t f2f_max_payment_minor = 50000;        // one payment, paid or taken
    std::int64_t f2f_max_unreconciled_minor = 200000;  // per currency, taken offline and not yet settled
    std::int64_t f2f_max_unreconciled_count = 32;
    std::int64_t f2f_spend_unreconciled_minor = 0;     // how much of that may be paid on face to face
    // Paid, debited, and no answer from the payee yet: id -> {payee, amount,
    // currency, iat, digest, payment (the JWS, to deliver by another way)}.
    std::map<std::string, Json> f2f_undelivered;
    // Taken face to face and not yet settled on the registry's record:
    // id -> {payer, seq, amount, currency, iat, digest}.
    std::map<std::string, Json> f2f_unreconciled;
    std::map<std::string, std::int64_t> revoked_minor;  // taken offline, removed on a seq_reused record
    // Payments this SE refused (also in received_notes: never credited).
    // Safety-critical: it holds every refused id the received set still holds
    // (mark_f2f_refused), so that an id in received_notes and not here was
    // credited; a refused payment is then never answered with an ack.
    RecentIds f2f_refused{ReceivedIds::kKept + 1};
    // Face-to-face payments and escrow notes this SE claimed at the registry
    // to receive them. The registry's record of such a claim closes the
    // payment or note at its payer (as delivered, as paid), so this SE never
    // refuses or refunds one it may have claimed (models/README.md).
    ReceivedIds claimed_notes;
    // Escrow notes this SE paid and has not closed: id -> {seq, payee,
    // amount, currency, iat, exp, digest, code, payee_key (its wrapped
    // content key, kept here until the payer releases it), released}.
    std::map<std::string, Json> cpay_open;
    RecentIds cpay_refunded{kRecentKept};  // escrow notes this SE refunded as payee (never accepted)
  };
  template <class S, class V>
  static void visit_state(S& s, V&& v);

  Applet() = default;
  using Handler = Result<Bytes> (Applet::*)(const Command&, std::int64_t);
  Response dispatch(const Command& cmd, std::int64_t now_s, bool secured);
  Result<Bytes> pair_begin(const Command&, std::int64_t);
  Result<Bytes> pair_nonce(const Command&, std::int64_t);
  Result<Bytes> pair_confirm(const Command&, std::int64_t);
  Result<Bytes> auth_begin(const Command&, std::int64_t);
  Result<Bytes> auth_finish(const Command&, std::int64_t);
  // Pairing needs the PUK once the SE is personalized (a factory SE holds nothing yet).
  bool pairing_needs_puk() const { return st_.lifecycle != Lifecycle::factory; }
  Result<Bytes> select(const Command&, std::int64_t);
  Result<Bytes> verify(const Command&, std::int64_t);
  Result<Bytes> reset_retry(const Command&, std::int64_t);
  Result<Bytes> get_data(const Command&, std::int64_t);
  Result<Bytes> personalize(const Command&, std::int64_t);
  Result<Bytes> install_cert(const Command&, std::int64_t);
  Result<Bytes> update_crl(const Command&, std::int64_t);
  Result<Bytes> topup_request(const Command&, std::int64_t);
  Result<Bytes> topup_receipt(const Command&, std::int64_t);
  struct BankReceipt {
    Document doc;
    std::string answers;  // the id of our pending document it answers
    std::string status;   // "", "credited" or "refused"
  };
  Result<BankReceipt> open_bank_receipt(const Command& c, std::int64_t now_s, std::string_view type,
                                        std::string_view key_field, const RecentIds& done,
                                        const std::map<std::string, Json>& pending);
  Result<Bytes> payment_note(const Command&, std::int64_t);
  Result<std::string> certified_payee(const Json& data, std::int64_t now_s) const;
  Result<Bytes> receive_note(const Command&, std::int64_t);
  Result<Bytes> claim_note(const Command&, std::int64_t);
  Result<Bytes> reclaim_claim(const Command&, std::int64_t);
  Result<Bytes> close_note(const Command&, std::int64_t);
  // `expired_ok`: the note may be past its expiry (RECEIVE NOTE, whose record
  // must then show the claim was made in time).
  Result<SignedDocument> check_incoming_note(const Json& data, std::int64_t now_s, bool expired_ok = false) const;
  Status check_won_record(const Json& data, const SignedDocument& note, std::int64_t now_s) const;
  Result<Bytes> deposit_note(const Command&, std::int64_t);
  Result<Bytes> deposit_receipt(const Command&, std::int64_t);
  Result<Bytes> sign_query(const Command&, std::int64_t);
  Result<Bytes> transfer_order(const Command&, std::int64_t);
  Result<Bytes> hold_request(const Command&, std::int64_t);
  Result<Bytes> cosign(const Command&, std::int64_t);
  Result<Bytes> joint_request(const Command&, std::int64_t);
  bool own_document_id(std::string_view id) const;
  Result<Bytes> hold_confirm(const Command&, std::int64_t);
  Result<Bytes> hold_release(const Command&, std::int64_t);
  Result<Bytes> sign_bank_order(const Command& c, std::int64_t now_s, std::string_view type,
                                std::initializer_list<std::string_view> fields, std::string_view key,
                                const std::function<Status(const Document&)>& check);
  Result<Bytes> f2f_receive(const Command&, std::int64_t);
  Result<Bytes> f2f_pay(const Command&, std::int64_t);
  Result<Bytes> f2f_send(const Command&, std::int64_t);
  Result<Bytes> f2f_cancel(const Command&, std::int64_t);
  Result<Bytes> f2f_close(const Command&, std::int64_t);
  Result<Bytes> f2f_refuse(const Command&, std::int64_t);
  Result<Bytes> f2f_reconcile(const Command&, std::int64_t);
  Result<Bytes> f2f_settle(const Command&, std::int64_t);
  Json f2f_info() const;
  Result<Bytes> cpay_note(const Command&, std::int64_t);
  Result<Bytes> cpay_release(const Command&, std::int64_t);
  Result<Bytes> cpay_claim(const Command&, std::int64_t);
  Result<Bytes> cpay_accept(const Command&, std::int64_t);
  Result<Bytes> cpay_refund(const Command&, std::int64_t);
  Result<Bytes> cpay_refund_claim(const Command&, std::int64_t);
  Result<Bytes> cpay_close(const Command&, std::int64_t);
  Json escrow_info() const;
  // An escrow note addressed to this SE, opened with the released key: the
  // note, its sealed terms, and the claim fields a record is checked against.
  struct OpenedCpay {
    SignedDocument note;
    std::optional<Amount> amount;  // with the key only
    std::string code;
    registry::ClaimFields claim;
  };
  // What the note is opened for: a refund needs no key; a claim must be made
  // before the expiry; an accept may come later, on the record of a claim
  // the registry took before it (check_won_record).
  enum class CpayUse { refund, claim, accept };
  Result<OpenedCpay> open_cpay(const Json& data, std::int64_t now_s, CpayUse use) const;
  // The lifetime a new note gets (payment or escrow): `asked`, or the default,
  // never past this SE's certificate less the reclaim window.
  Result<std::int64_t> note_lifetime(const Json& data, std::int64_t now_s) const;
  Result<Json> peer_hello(const Json& m, std::int64_t now_s);
  Result<Json> peer_pay(const Json& m, std::int64_t now_s);
  // The checks a payee makes on a face-to-face payment before crediting it offline.
  Status f2f_can_take(const Amount& a) const;
  // Value of `currency` taken offline and not yet settled.
  std::int64_t unreconciled(std::string_view currency) const;
  // What the SE may pay out of `currency`: online (`face_to_face` false) only
  // settled value; face to face also up to f2f_spend_unreconciled of the rest.
  Status covers_spend(const Amount& a, bool face_to_face) const;
  // The payee's signed answer to a payment it was given: ack or refusal.
  Result<std::string> sign_f2f_answer(const Document& payment, ByteView digest, const std::string& reason,
                                      std::int64_t now_s);
  // What this SE did with a face-to-face payment before: nothing, credited
  // it, refused it, or it cannot tell (it may have done either and forgotten).
  enum class F2fTaken { no, credited, refused, unknown };
  F2fTaken f2f_taken(const Document& payment) const;
  // Signs a refusal of a payment it never credited and, in the same state
  // update, marks it so that it never credits it.
  Result<std::string> refuse_f2f(const Document& payment, ByteView digest, const std::string& reason,
                                 std::int64_t now_s);
  // Applies a payee's signed ack or refusal to an undelivered payment.
  Result<Json> apply_f2f_answer(const std::string& id, std::string_view jws, std::int64_t now_s);

  // A value-moving document this SE is about to sign, validated exactly as
  // any verifier will validate it (types, amount > 0, currency) before
  // anything changes. `payload` is the command's fields plus the type.
  struct Draft {
    Json payload;
    Document doc;
    const Amount& amount() const { return *doc.amount(); }
    std::string currency() const { return std::string(doc.amount()->currency().code()); }
  };
  Result<Draft> draft(Json payload, std::int64_t now_s) const;
  // Signs a draft under the next sequence number and, unless `none`, takes
  // its amount from the balance in the same state update. Checks the user and
  // what the SE may spend (covers_spend) first.
  enum class Spend { none, online, face_to_face };
  Result<std::string> sign_value_document(const Draft& d, Spend spend, std::int64_t now_s);
  // Whether `a` can be added to a lifetime total without overflow; checked
  // before anything changes.
  static Status fits_total(const std::map<std::string, std::int64_t>& totals, const Amount& a);

  // Value this SE may still take in `currency` under max_balance, pending top-ups included.
  std::int64_t headroom(std::string_view currency) const;
  Status require_active() const;
  Status require_user() const;
  CertVerifier verifier(std::int64_t now_s) const;
  // The registry's signed record in `text`, verified, and about the document
  // this SE acts on (id, issuer, seq and type); record_mismatch otherwise.
  Result<registry::RecordView> record_about(std::string_view text, const std::string& id, const std::string& issuer,
                                            std::optional<std::int64_t> seq, std::string_view type, std::int64_t now_s) const;
  // Signs a payload after stamping the common fields with the next sequence number.
  Result<std::string> sign_next(Json payload, std::int64_t now_s);
  // A registry claim by this SE, signed (it spends no sequence number): {"claim": JWS}.
  Result<Bytes> sign_claim(const registry::ClaimFields& fields, std::int64_t now_s);
  // Signs a payload that spends no sequence number: id "<se id>:<tag>:<random>".
  Result<std::string> sign_unsequenced(Json payload, std::string_view tag, std::int64_t now_s);
  void log(std::string op, std::string doc_id, const Amount* amount, bool credit, std::string counterparty,
           std::int64_t now_s);
  Status credit(const Amount& a);
  Status debit(const Amount& a);
  Status covers(const Amount& a) const;

  State st_;
  // Session state: never persisted.
  bool verified_ = false;
  struct PairingRun {
    std::unique_ptr<PrivateKey> ephemeral;
    Bytes terminal_point, se_point, se_nonce;
    std::optional<sc::PairingSecrets> secrets;  // after PAIR NONCE
  };
  std::optional<PairingRun> pairing_;
  std::optional<sc::Session> auth_pending_;  // after AUTH BEGIN, until the host cryptogram
  std::optional<sc::Session> session_;       // open secure channel
  std::string display_;
  bool dirty_ = false;
  // Face to face, session only: the payment being agreed on each side.
  struct F2fRun {
    std::string peer_id;
    std::optional<Certificate> peer_cert;
    std::unique_ptr<PrivateKey> ephemeral;
    Bytes payer_point, payee_point, payer_nonce, payee_nonce, transcript;
    SecretBytes to_payee, to_payer;
    std::string code;
    std::int64_t amount_minor = 0;
    std::string currency;
    std::int64_t started = 0;
    // Payee: the received set's floor when the session began. A payment that
    // names this session was signed after it, so one dated at or before this
    // floor was never credited or refused here (both refuse it as seen).
    std::int64_t received_floor = 0;
  };
  PeerLink* peer_link_ = nullptr;
  std::optional<F2fRun> f2f_out_;  // payer: F2F PAY .. F2F SEND
  std::optional<F2fRun> f2f_in_;   // payee: hello .. pay
  Json f2f_last_;                  // payee: the last payment taken or refused, with its code
  std::int64_t receiving_until_ = 0;
  std::string f2f_code_;
};

}  // namespace zf::se
