// The terminal's side of the SE link: builds APDUs for the applet's commands
// and turns status words and error details into named errors. With a pairing
// key it authenticates the SE and sends every command that needs it through the
// secure channel (sealed and opened here, transparently for the caller).
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "core/json.h"
#include "net/apdu_link.h"
#include "se/applet.h"

namespace zf::wallet {

class SeClient {
 public:
  // Any function that carries one APDU to an SE and returns its response.
  using Transport = std::function<Result<Bytes>(ByteView)>;
  explicit SeClient(Transport t) : transport_(std::move(t)) {}
  // Connects over the socket link to 127.0.0.1:port and selects the applet.
  // While another terminal holds the link the SE keeps this one waiting a few
  // seconds, then answers unavailable with field "link" (busy; nothing was done).
  static Result<SeClient> connect(int port, SecretBytes pairing_key = {});
  // Talks to an in-process applet (tests).
  static SeClient in_process(se::Applet& applet, std::function<std::int64_t()> clock);

  Result<Json> select();
  // Public status, no channel needed: {se_id, state, paired}.
  Result<Json> status();

  // Pairs with the SE (docs/se-apdu.md "Pairing"): `confirm` gets the six-digit
  // code this terminal computed and answers whether the SE shows the same one
  // (the person compares both screens). `puk` is needed once the SE is
  // personalized. On success this client holds the new pairing key (returned
  // for the caller to keep) and the SE forgets any older one. `keep`, if given,
  // stores the key before the SE commits to it, so a failed write never leaves
  // an SE paired with a key nobody holds.
  Result<SecretBytes> pair(const std::string& puk, const std::function<bool(const std::string&)>& confirm,
                           const std::function<Status(const SecretBytes&)>& keep = {});
  void set_pairing_key(SecretBytes key);
  bool has_pairing_key() const { return pairing_key_.size() != 0; }
  // The key this terminal holds (the wallet keeps it in pairing.key).
  const SecretBytes& pairing_key() const { return pairing_key_; }
  // Mutual authentication under the pairing key; call() runs it when needed.
  Status authenticate();
  bool secure() const { return session_.has_value(); }
  // Sends one command, through the secure channel when the command needs it,
  // and returns the SE's own response (status word included).
  Result<se::Response> transmit(const se::Command& cmd);
  // Sees every response as the SE meant it (opened from the secure channel): for tests and traces.
  void set_observer(std::function<void(const se::Response&)> f) { observer_ = std::move(f); }
  Status verify_pin(const std::string& pin);
  Status verify_biometric(ByteView template_bytes);
  Status unblock(const std::string& puk, const std::string& new_pin);
  Result<Json> info();
  Result<std::string> certificate_pem();
  Result<Json> log();
  Result<Json> issued();
  // Personalization: returns {"csr", "attestation"}.
  Result<Json> personalize(const Json& params);
  Status install_certificate(const std::string& chain_pem);
  Status update_crl(const std::string& crl_pem);
  // Value commands: each returns the applet's JSON answer.
  Result<Json> topup_request(const Json& params);
  Result<Json> apply_topup_receipt(const std::string& receipt_jws);
  Result<Json> payment_note(const Json& params);
  // Credits a note; `record_jws` is the registry's record of this SE's won claim
  // (empty: sent without one, and the SE refuses with record_required).
  Result<Json> receive_note(const std::string& note_jws, const std::string& record_jws);
  // A registry claim for a note the SE would accept now: {"claim": JWS}.
  Result<Json> claim_note(const std::string& note_jws);
  // The notes this SE paid and has not closed: [{id, seq, payee, amount, currency, iat, exp}].
  Result<Json> open_notes();
  // A registry claim taking back open note `id` after its expiry: {"claim": JWS}.
  Result<Json> reclaim_claim(const std::string& id);
  // Closes open note `id` with the registry's record: {closed, outcome "received"|"reclaimed", ...}.
  Result<Json> close_note(const std::string& id, const std::string& record_jws);
  Result<Json> deposit_note(const Json& params);
  Result<Json> apply_deposit_receipt(const std::string& receipt_jws);
  Result<Json> sign_query(const Json& params);
  // TRANSFER ORDER {amount, currency, bank, from, to} -> {order, id, exp}.
  Result<Json> transfer_order(const Json& params);
  // Holds (docs/se-apdu.md "Controlled transfer"). HOLD REQUEST {amount,
  // currency, bank, payer_account, payee_account, release_at} -> {request, id,
  // exp}; HOLD CONFIRM / HOLD RELEASE {hold_id, bank, amount, currency} ->
  // {confirm|release, id, exp}.
  Result<Json> hold_request(const Json& params);
  // COSIGN {document}: this SE's signature over a hold.request or a
  // joint.spend -> the document's fields with {signature, signers}.
  Result<Json> cosign(const std::string& document_jws);
  // JOINT REQUEST {amount, currency, bank, account, action, to?} -> {spend, id, exp?}.
  Result<Json> joint_request(const Json& params);
  Result<Json> hold_confirm(const Json& params);
  Result<Json> hold_release(const Json& params);
  // Face to face (docs/se-apdu.md "Face-to-face payment"). The payee: be found
  // for `seconds` (0 stops). The payer: F2F PAY agrees a session with the
  // payee's SE and returns {payee, payee_user, code, amount_minor, currency};
  // F2F SEND debits and pays over it and returns {outcome
  // "delivered"|"refused"|"undelivered", id, ...}; F2F CANCEL drops it.
  Result<Json> f2f_receive(std::int64_t seconds);
  Result<Json> f2f_pay(const Json& params);
  Result<Json> f2f_send();
  Result<Json> f2f_cancel();
  // {receiving_until, code?, payer?, undelivered: [...], unreconciled: [...]}
  Result<Json> f2f_state();
  // Closes undelivered payment `id` with the payee's answer (ack or refusal) or the registry's record.
  Result<Json> f2f_close(const std::string& id, const std::string& answer_jws, const std::string& record_jws = {});
  // The payee refuses a payment it was given another way: {outcome, answer}.
  Result<Json> f2f_refuse(const std::string& payment_jws, const std::string& reason = {});
  // The payee settles a payment it took offline: the claim, then the record.
  Result<Json> f2f_reconcile_claim(const std::string& id);
  Result<Json> f2f_settle(const std::string& id, const std::string& record_jws);
  // Controlled payment (docs/se-apdu.md "Controlled payment").
  Result<Json> cpay_note(const Json& params);  // {note, id, code, exp}
  Result<Json> cpay_release(const std::string& id);  // {id, payee, key}
  Result<Json> cpay_claim(const std::string& note_jws, const Json& key);
  Result<Json> cpay_accept(const std::string& note_jws, const Json& key, const std::string& record_jws);
  Result<Json> cpay_refund(const std::string& note_jws);  // {refund, note_id}
  Result<Json> cpay_refund_claim(const std::string& id, const std::string& refund_jws = {});
  Result<Json> cpay_close(const std::string& id, const std::string& record_jws);
  Result<Json> escrow();  // [{id, seq, payee, amount, currency, iat, exp, code, released}]

  // Sends one command; data and answers are JSON unless `raw` is set.
  Result<Bytes> call(std::uint8_t cla, std::uint8_t ins, std::uint8_t p1, std::uint8_t p2, ByteView data);

 private:
  Result<Json> call_json(std::uint8_t ins, const Json& data, std::uint8_t p2 = 0);
  Result<se::Response> exchange_clear(const se::Command& cmd);
  Result<se::Response> observed(Result<se::Response> r);
  std::function<void(const se::Response&)> observer_;
  Transport transport_;
  std::shared_ptr<net::ApduClient> link_;
  SecretBytes pairing_key_;
  std::optional<se::sc::Session> session_;
};

}  // namespace zf::wallet
