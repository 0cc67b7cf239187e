#include "wallet/se_client.h"

namespace zf::wallet {
namespace {

// Maps a failed response to a named error, preferring the applet's own detail.
Error response_error(const se::Response& r) {
  auto j = parse_json_strict(to_string(r.data), {64 * 1024, 4});
  Error e;
  e.code = Errc::internal;
  if (j && j->is_object() && j->contains("code") && (*j)["code"].is_string()) {
    e.code = errc_from_name((*j)["code"].get<std::string>());
    e.detail = j->value("detail", "");
    e.field = j->value("field", "");
  }
  if ((r.sw & 0xFFF0) == 0x63C0) {
    e.code = Errc::pin_wrong;
    e.detail = std::to_string(r.sw & 0x0F) + " tries left";
  } else if (r.sw == 0x6983) {
    e.code = Errc::pin_blocked;
  }
  char sw[8];
  std::snprintf(sw, sizeof(sw), "%04X", r.sw);
  e.detail = (e.detail.empty() ? std::string() : e.detail + " ") + "[SW " + sw + "]";
  return e;
}

}  // namespace

Result<SeClient> SeClient::connect(int port, SecretBytes pairing_key) {
  auto link = net::ApduClient::connect("127.0.0.1", port);
  if (!link) return std::unexpected(link.error());
  auto shared = std::make_shared<net::ApduClient>(std::move(*link));
  SeClient c([shared](ByteView apdu) { return shared->transmit(apdu); });
  c.link_ = shared;
  c.pairing_key_ = std::move(pairing_key);
  if (auto s = c.select(); !s) {
    // The host answered for the SE: another terminal holds the link (net::LinkPolicy).
    if (s.error().code == Errc::unavailable && s.error().field == "link")
      return fail(Errc::unavailable,
                  "the SE is busy with another terminal; try again when it has finished; nothing moved", "link");
    return std::unexpected(s.error());
  }
  return c;
}

SeClient SeClient::in_process(se::Applet& applet, std::function<std::int64_t()> clock) {
  return SeClient([&applet, clock](ByteView apdu) -> Result<Bytes> { return applet.process_raw(apdu, clock()); });
}

Result<se::Response> SeClient::exchange_clear(const se::Command& cmd) {
  auto raw = transport_(se::encode_command(cmd));
  if (!raw) {
    session_.reset();
    return std::unexpected(raw.error());
  }
  return se::parse_response(*raw);
}

Result<se::Response> SeClient::observed(Result<se::Response> r) {
  if (r && observer_) observer_(*r);
  return r;
}

Result<se::Response> SeClient::transmit(const se::Command& cmd) {
  // Only our two classes have a secured form (CLA | 04); anything else goes as it is, and the SE refuses it.
  bool securable = cmd.cla == 0x00 || cmd.cla == 0x80;
  if (!securable || !se::needs_secure_channel(cmd.cla, cmd.ins, cmd.p2)) {
    // SELECT, pairing and authentication end the SE's session; so they end ours.
    if (securable && cmd.ins != se::ins::kGetData) session_.reset();
    return observed(exchange_clear(cmd));
  }
  // Unpaired: sent in the clear, and the SE answers secure_channel_required.
  if (!session_ && !has_pairing_key()) return observed(exchange_clear(cmd));
  // The SE may have ended the session (a restart, another link, SELECT) without
  // running the command: it then says secure_channel_required, and the command
  // is sent once more in a new session. A frame it refused as tampered or out of
  // order is reported, never resent.
  for (int attempt = 0;; ++attempt) {
    if (!session_)
      if (auto s = authenticate(); !s) return std::unexpected(s.error());
    auto frame = session_->wrap_command(cmd);
    if (!frame) return std::unexpected(frame.error());
    auto raw = transport_(*frame);
    if (!raw) {
      session_.reset();
      return std::unexpected(raw.error());
    }
    auto inner = session_->unwrap_response(*raw);
    if (inner) return observed(std::move(inner));
    // The session is over either way; prefer the SE's own reason when it gave one in the clear.
    session_.reset();
    auto plain = se::parse_response(*raw);
    if (!plain || plain->ok()) return std::unexpected(inner.error());
    if (attempt == 0 && response_error(*plain).code == Errc::secure_channel_required) continue;
    return observed(std::move(plain));
  }
}

Result<Bytes> SeClient::call(std::uint8_t cla, std::uint8_t ins, std::uint8_t p1, std::uint8_t p2, ByteView data) {
  // An extended APDU carries at most 65535 bytes (less the tag once sealed); larger input never reaches the SE.
  if (data.size() > se::sc::kMaxInnerData) return fail(Errc::too_large, "command data exceeds one extended APDU");
  se::Command cmd{cla, ins, p1, p2, Bytes(data.begin(), data.end()), 65536u};
  auto res = transmit(cmd);
  if (!res) return std::unexpected(res.error());
  if (!res->ok()) return std::unexpected(response_error(*res));
  return res->data;
}

void SeClient::set_pairing_key(SecretBytes key) {
  pairing_key_ = std::move(key);
  session_.reset();
}

Status SeClient::authenticate() {
  session_.reset();
  if (!has_pairing_key()) return fail(Errc::not_paired, "this terminal holds no pairing key for the SE");
  auto status = this->status();
  if (!status) return std::unexpected(status.error());
  std::string se_id = status->value("se_id", "");
  Bytes host = random_bytes(se::sc::kChallengeBytes);
  auto begun = call_json(se::ins::kAuthBegin, Json{{"challenge", b64url_encode(host)}});
  if (!begun) return std::unexpected(begun.error());
  auto card = b64url_decode(begun->value("challenge", ""));
  auto card_cryptogram = b64url_decode(begun->value("cryptogram", ""));
  if (!card || !card_cryptogram) return fail(Errc::bad_field, "SE's AUTH BEGIN answer", "challenge");
  auto session = se::sc::Session::derive(pairing_key_.view(), host, *card, se_id, se::sc::Session::Side::terminal);
  if (!session) return std::unexpected(session.error());
  // The SE proves the pairing key first: a terminal never talks to an SE that is not its own.
  if (!ct_equal(*card_cryptogram, session->card_cryptogram()))
    return fail(Errc::auth_failed, "the SE's cryptogram does not match: not paired with this terminal's key");
  auto finished = call_json(se::ins::kAuthFinish, Json{{"cryptogram", b64url_encode(session->host_cryptogram())}});
  if (!finished) return std::unexpected(finished.error());
  session_ = std::move(*session);
  return {};
}

Result<SecretBytes> SeClient::pair(const std::string& puk, const std::function<bool(const std::string&)>& confirm,
                                   const std::function<Status(const SecretBytes&)>& keep) {
  session_.reset();
  auto status = this->status();
  if (!status) return std::unexpected(status.error());
  std::string se_id = status->value("se_id", "");
  auto eph = PrivateKey::generate(SigAlg::ES256);
  if (!eph) return std::unexpected(eph.error());
  auto t_point = se::sc::encode_point(eph->public_key());
  if (!t_point) return std::unexpected(t_point.error());
  auto begun = call_json(se::ins::kPairBegin, Json{{"pk", b64url_encode(*t_point)}});
  if (!begun) return std::unexpected(begun.error());
  auto se_point = b64url_decode(begun->value("pk", ""));
  auto commit = b64url_decode(begun->value("commit", ""));
  if (!se_point || !commit) return fail(Errc::bad_field, "SE's PAIR BEGIN answer", "pk");
  auto theirs = se::sc::decode_point(*se_point);
  if (!theirs) return std::unexpected(theirs.error());
  Bytes t_nonce = random_bytes(se::sc::kNonceBytes);
  auto nonced = call_json(se::ins::kPairNonce, Json{{"nonce", b64url_encode(t_nonce)}});
  if (!nonced) return std::unexpected(nonced.error());
  auto se_nonce = b64url_decode(nonced->value("nonce", ""));
  if (!se_nonce) return fail(Errc::bad_field, "SE's PAIR NONCE answer", "nonce");
  // The SE committed to its nonce before it saw ours: it could not pick one to match a code.
  if (!ct_equal(*commit, se::sc::pairing_commitment(*se_nonce, *se_point, *t_point)))
    return fail(Errc::auth_failed, "the SE's nonce does not match its commitment");
  auto z = ecdh(*eph, *theirs);
  if (!z) return std::unexpected(z.error());
  auto secrets = se::sc::derive_pairing(z->view(), *t_point, *se_point, t_nonce, *se_nonce, se_id);
  if (!secrets) return std::unexpected(secrets.error());
  if (!confirm(secrets->code))
    return fail(Errc::auth_failed, "the codes on the terminal and the SE differ: pairing abandoned");
  auto mac = se::sc::terminal_confirmation(*secrets);
  if (!mac) return std::unexpected(mac.error());
  Json data{{"mac", b64url_encode(*mac)}};
  if (begun->value("puk_required", false)) {
    if (puk.empty()) return fail(Errc::missing_field, "re-pairing a personalized SE needs the PUK", "puk");
    auto sealed = se::sc::seal_puk(*secrets, puk);
    if (!sealed) return std::unexpected(sealed.error());
    data["puk"] = b64url_encode(*sealed);
  }
  if (keep)
    if (auto s = keep(secrets->pairing_key); !s) return std::unexpected(s.error());
  auto confirmed = call_json(se::ins::kPairConfirm, data);
  if (!confirmed) return std::unexpected(confirmed.error());
  set_pairing_key(secrets->pairing_key);
  return secrets->pairing_key;
}

Result<Json> SeClient::call_json(std::uint8_t ins, const Json& data, std::uint8_t p2) {
  std::string body = data.is_null() ? std::string() : dump_json(data);
  auto r = call(0x80, ins, 0x00, p2, as_bytes(body));
  if (!r) return std::unexpected(r.error());
  if (r->empty()) return Json::object();
  return parse_json_strict(to_string(*r), {16 * 1024 * 1024, 16});
}

Result<Json> SeClient::select() {
  auto r = call(0x00, se::ins::kSelect, 0x04, 0x00, ByteView(se::kAid, sizeof(se::kAid)));
  if (!r) return std::unexpected(r.error());
  return parse_json_strict(to_string(*r));
}

Status SeClient::verify_pin(const std::string& pin) {
  auto r = call(0x00, se::ins::kVerify, 0x00, 0x80, as_bytes(pin));
  if (!r) return std::unexpected(r.error());
  return {};
}

Status SeClient::verify_biometric(ByteView template_bytes) {
  auto r = call(0x00, se::ins::kVerify, 0x00, 0x81, template_bytes);
  if (!r) return std::unexpected(r.error());
  return {};
}

Status SeClient::unblock(const std::string& puk, const std::string& new_pin) {
  auto r = call(0x00, se::ins::kResetRetry, 0x00, 0x80, as_bytes(dump_json(Json{{"puk", puk}, {"new_pin", new_pin}})));
  if (!r) return std::unexpected(r.error());
  return {};
}

Result<Json> SeClient::status() {
  auto r = call(0x80, se::ins::kGetData, 0x00, se::tag::kStatus, {});
  if (!r) return std::unexpected(r.error());
  return parse_json_strict(to_string(*r));
}

Result<Json> SeClient::info() { return call_json(se::ins::kGetData, Json(), se::tag::kInfo); }

Result<std::string> SeClient::certificate_pem() {
  auto r = call(0x80, se::ins::kGetData, 0x00, se::tag::kCertificate, {});
  if (!r) return std::unexpected(r.error());
  return to_string(*r);
}

Result<Json> SeClient::log() { return call_json(se::ins::kGetData, Json(), se::tag::kLog); }
Result<Json> SeClient::issued() { return call_json(se::ins::kGetData, Json(), se::tag::kIssued); }
Result<Json> SeClient::personalize(const Json& params) { return call_json(se::ins::kPersonalize, params); }

Status SeClient::install_certificate(const std::string& chain_pem) {
  auto r = call_json(se::ins::kInstallCert, Json{{"certificate", chain_pem}});
  if (!r) return std::unexpected(r.error());
  return {};
}

Status SeClient::update_crl(const std::string& crl_pem) {
  auto r = call_json(se::ins::kUpdateCrl, Json{{"crl", crl_pem}});
  if (!r) return std::unexpected(r.error());
  return {};
}

Result<Json> SeClient::topup_request(const Json& p) { return call_json(se::ins::kTopupRequest, p); }
Result<Json> SeClient::apply_topup_receipt(const std::string& jws) {
  return call_json(se::ins::kTopupReceipt, Json{{"receipt", jws}});
}
Result<Json> SeClient::payment_note(const Json& p) { return call_json(se::ins::kPaymentNote, p); }
Result<Json> SeClient::receive_note(const std::string& jws, const std::string& record_jws) {
  Json data{{"note", jws}};
  if (!record_jws.empty()) data["record"] = record_jws;
  return call_json(se::ins::kReceiveNote, data);
}
Result<Json> SeClient::claim_note(const std::string& jws) { return call_json(se::ins::kClaimNote, Json{{"note", jws}}); }
Result<Json> SeClient::open_notes() { return call_json(se::ins::kGetData, Json(), se::tag::kOutstanding); }
Result<Json> SeClient::reclaim_claim(const std::string& id) {
  return call_json(se::ins::kReclaimClaim, Json{{"id", id}});
}
Result<Json> SeClient::close_note(const std::string& id, const std::string& record_jws) {
  return call_json(se::ins::kCloseNote, Json{{"id", id}, {"record", record_jws}});
}
Result<Json> SeClient::deposit_note(const Json& p) { return call_json(se::ins::kDepositNote, p); }
Result<Json> SeClient::apply_deposit_receipt(const std::string& jws) {
  return call_json(se::ins::kDepositReceipt, Json{{"receipt", jws}});
}
Result<Json> SeClient::sign_query(const Json& p) { return call_json(se::ins::kSignQuery, p); }
Result<Json> SeClient::transfer_order(const Json& p) { return call_json(se::ins::kTransferOrder, p); }
Result<Json> SeClient::hold_request(const Json& p) { return call_json(se::ins::kHoldRequest, p); }
Result<Json> SeClient::cosign(const std::string& document_jws) {
  return call_json(se::ins::kCosign, Json{{"document", document_jws}});
}
Result<Json> SeClient::joint_request(const Json& p) { return call_json(se::ins::kJointRequest, p); }
Result<Json> SeClient::hold_confirm(const Json& p) { return call_json(se::ins::kHoldConfirm, p); }
Result<Json> SeClient::hold_release(const Json& p) { return call_json(se::ins::kHoldRelease, p); }

Result<Json> SeClient::f2f_receive(std::int64_t seconds) {
  return call_json(se::ins::kF2fReceive, Json{{"seconds", seconds}});
}
Result<Json> SeClient::f2f_pay(const Json& p) { return call_json(se::ins::kF2fPay, p); }
Result<Json> SeClient::f2f_send() { return call_json(se::ins::kF2fSend, Json::object()); }
Result<Json> SeClient::f2f_cancel() { return call_json(se::ins::kF2fCancel, Json::object()); }
Result<Json> SeClient::f2f_state() { return call_json(se::ins::kGetData, Json(), se::tag::kF2f); }
Result<Json> SeClient::f2f_close(const std::string& id, const std::string& answer, const std::string& record) {
  Json d{{"id", id}};
  if (!answer.empty()) d["answer"] = answer;
  if (!record.empty()) d["record"] = record;
  return call_json(se::ins::kF2fClose, d);
}
Result<Json> SeClient::f2f_refuse(const std::string& payment, const std::string& reason) {
  Json d{{"payment", payment}};
  if (!reason.empty()) d["reason"] = reason;
  return call_json(se::ins::kF2fRefuse, d);
}
Result<Json> SeClient::f2f_reconcile_claim(const std::string& id) {
  return call_json(se::ins::kF2fReconcile, Json{{"id", id}});
}
Result<Json> SeClient::cpay_note(const Json& p) { return call_json(se::ins::kCpayNote, p); }
Result<Json> SeClient::cpay_release(const std::string& id) { return call_json(se::ins::kCpayRelease, Json{{"id", id}}); }
Result<Json> SeClient::cpay_claim(const std::string& note, const Json& key) {
  return call_json(se::ins::kCpayClaim, Json{{"note", note}, {"key", key}});
}
Result<Json> SeClient::cpay_accept(const std::string& note, const Json& key, const std::string& record) {
  return call_json(se::ins::kCpayAccept, Json{{"note", note}, {"key", key}, {"record", record}});
}
Result<Json> SeClient::cpay_refund(const std::string& note) { return call_json(se::ins::kCpayRefund, Json{{"note", note}}); }
Result<Json> SeClient::cpay_refund_claim(const std::string& id, const std::string& refund) {
  Json d{{"id", id}};
  if (!refund.empty()) d["refund"] = refund;
  return call_json(se::ins::kCpayRefundClaim, d);
}
Result<Json> SeClient::cpay_close(const std::string& id, const std::string& record) {
  return call_json(se::ins::kCpayClose, Json{{"id", id}, {"record", record}});
}
Result<Json> SeClient::escrow() { return call_json(se::ins::kGetData, Json(), se::tag::kEscrow); }
Result<Json> SeClient::f2f_settle(const std::string& id, const std::string& record) {
  return call_json(se::ins::kF2fSettle, Json{{"id", id}, {"record", record}});
}

}  // namespace zf::wallet
