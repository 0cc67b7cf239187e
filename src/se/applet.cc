// The applet core: dispatch, the secure-channel frame, and what every command shares.
#include "se/applet.h"

#include <cstring>

#include "se/applet_internal.h"

namespace zf::se {
using namespace detail;

bool needs_secure_channel(std::uint8_t cla, std::uint8_t ins, std::uint8_t p2) {
  if (cla == 0x00) return ins != ins::kSelect;
  if (cla != 0x80) return true;
  switch (ins) {
    case ins::kPairBegin:
    case ins::kPairNonce:
    case ins::kPairConfirm:
    case ins::kAuthBegin:
    case ins::kAuthFinish:
      return false;
    case ins::kGetData:
      return p2 != tag::kStatus && p2 != tag::kCertificate;
    default:
      return true;
  }
}

void Applet::reset_session() {
  verified_ = false;
  receiving_until_ = 0;
  f2f_in_.reset();
  f2f_out_.reset();
  f2f_code_.clear();
  if (peer_link_) peer_link_->close();
  session_.reset();
  auth_pending_.reset();
  pairing_.reset();
  display_.clear();
}

Applet::Applet(std::string se_id, PrivateKey attestation_key, std::vector<Certificate> attestation_chain) {
  st_.se_id = std::move(se_id);
  st_.attest_key = std::make_unique<PrivateKey>(std::move(attestation_key));
  st_.attest_chain = std::move(attestation_chain);
}

std::int64_t Applet::balance(std::string_view currency) const {
  auto it = st_.balances.find(std::string(currency));
  return it == st_.balances.end() ? 0 : it->second;
}

std::int64_t Applet::headroom(std::string_view currency) const {
  // A pending top-up counts as received: its receipt cannot be refused once the
  // bank has debited the account, so the room for it is kept from the start.
  std::int64_t promised = 0;
  for (const auto& [id, req] : st_.pending_topups)
    if (req.at("currency").get<std::string>() == currency) promised += req.at("amount").get<std::int64_t>();
  return st_.max_balance_minor - balance(currency) - promised;
}

Status Applet::require_active() const {
  if (st_.lifecycle != Lifecycle::active) return fail(Errc::wrong_state, std::string("SE is ") + lifecycle_name(st_.lifecycle));
  return {};
}

Status Applet::require_user() const {
  if (auto s = require_active(); !s) return s;
  if (st_.pin_tries_left == 0) return fail(Errc::pin_blocked, "PIN blocked; unblock with the PUK");
  if (!verified_) return fail(Errc::not_verified, "verify the PIN first");
  return {};
}

CertVerifier Applet::verifier(std::int64_t now_s) const {
  CertVerifier v(*st_.root);
  v.set_crl(st_.crl);
  v.set_time(now_s);
  return v;
}

Result<registry::RecordView> Applet::record_about(std::string_view text, const std::string& id,
                                                  const std::string& issuer, std::optional<std::int64_t> seq, std::string_view type,
                                                  std::int64_t now_s) const {
  auto record = registry::open_record(text, verifier(now_s));
  if (!record) return record;
  if (record->doc_id != id || record->doc_issuer != issuer || record->doc_seq != seq || record->doc_type != type)
    return fail(Errc::record_mismatch, "the record is about document " + record->doc_id, "record");
  return record;
}

// Documents that move no value (claims, account queries) spend no sequence
// number: every seq an SE spends is then recorded at the registry once what it
// signed takes effect, so a restored state that spends a seq again is caught
// there (DESIGN.md §5, docs/registry-api.md).
Result<std::string> Applet::sign_unsequenced(Json payload, std::string_view tag, std::int64_t now_s) {
  payload["v"] = 1;
  payload["id"] = st_.se_id + ":" + std::string(tag) + ":" + b64url_encode(random_bytes(12));
  payload["issuer"] = st_.se_id;
  payload["iat"] = now_s;
  payload["nonce"] = new_nonce();
  KeySigner signer(*st_.key);
  return sign_document(payload, JwsSigner{&signer, st_.chain});
}

Result<Bytes> Applet::sign_claim(const registry::ClaimFields& fields, std::int64_t now_s) {
  Json claim = registry::claim_payload(fields, now_s);
  // sign_unsequenced stamps these itself.
  for (const char* k : {"v", "id", "issuer", "iat"}) claim.erase(k);
  auto jws = sign_unsequenced(claim, "c", now_s);
  if (!jws) return std::unexpected(jws.error());
  return json_bytes(Json{{"claim", *jws}});
}

Result<std::string> Applet::sign_next(Json payload, std::int64_t now_s) {
  std::int64_t seq = st_.seq + 1;
  payload["v"] = 1;
  payload["id"] = st_.se_id + ":" + std::to_string(seq);
  payload["issuer"] = st_.se_id;
  payload["seq"] = seq;
  payload["iat"] = now_s;
  payload["nonce"] = new_nonce();  // the registry's digest of this document must not be guessable
  KeySigner signer(*st_.key);
  // sign_document validates the payload (types, amount > 0, currency) before signing.
  auto jws = sign_document(payload, JwsSigner{&signer, st_.chain});
  if (!jws) return std::unexpected(jws.error());
  st_.seq = seq;
  st_.issued.push_back(*jws);
  while (st_.issued.size() > kIssuedKept) st_.issued.pop_front();
  return jws;
}

void Applet::log(std::string op, std::string doc_id, const Amount* amount, bool credit, std::string counterparty,
                 std::int64_t now_s) {
  LogEntry e{st_.seq, std::move(op), std::move(doc_id), amount ? std::string(amount->currency().code()) : "",
             amount ? (credit ? amount->minor() : -amount->minor()) : 0, std::move(counterparty), now_s};
  st_.log.push_back(std::move(e));
  while (st_.log.size() > kLogSize) st_.log.pop_front();
}

Result<Applet::Draft> Applet::draft(Json payload, std::int64_t now_s) const {
  Json probe = payload;
  probe.update(Json{{"v", 1}, {"id", "probe"}, {"issuer", st_.se_id}, {"seq", 0}, {"iat", now_s}, {"nonce", new_nonce()}});
  auto doc = Document::from_json(probe);
  if (!doc) return std::unexpected(doc.error());
  if (!doc->amount()) return fail(Errc::missing_field, "a value document needs an amount", "amount");
  return Draft{std::move(payload), std::move(*doc)};
}

Result<std::string> Applet::sign_value_document(const Draft& d, Spend spend, std::int64_t now_s) {
  if (auto s = require_user(); !s) return std::unexpected(s.error());
  if (spend != Spend::none)
    if (auto s = covers_spend(d.amount(), spend == Spend::face_to_face); !s) return std::unexpected(s.error());
  auto jws = sign_next(d.payload, now_s);
  if (!jws) return std::unexpected(jws.error());
  if (spend != Spend::none)
    if (auto s = debit(d.amount()); !s) return std::unexpected(s.error());
  return jws;
}

Status Applet::fits_total(const std::map<std::string, std::int64_t>& totals, const Amount& a) {
  auto it = totals.find(std::string(a.currency().code()));
  std::int64_t sum = 0;
  if (it != totals.end() && __builtin_add_overflow(it->second, a.minor(), &sum))
    return fail(Errc::amount_overflow, "this SE's lifetime total of " + std::string(a.currency().code()) + " would overflow",
                "amount");
  return {};
}

Status Applet::credit(const Amount& a) {
  std::string cur(a.currency().code());
  auto now = Amount::of(a.currency(), balance(cur));
  if (!now) return std::unexpected(now.error());
  auto sum = now->add(a);
  if (!sum) return std::unexpected(sum.error());
  st_.balances[cur] = sum->minor();
  return {};
}

// insufficient_ecash in words: what the SE holds of that currency, if any.
Status Applet::covers(const Amount& a) const {
  std::string cur(a.currency().code());
  std::int64_t have = balance(cur);
  if (have >= a.minor()) return {};
  if (have == 0) return fail(Errc::insufficient_ecash, "this SE holds no " + cur + " e-cash", "amount");
  auto held = Amount::of(cur, have);
  return fail(Errc::insufficient_ecash,
              "this SE holds only " + (held ? held->to_string() : cur + " " + std::to_string(have)) + ", not " +
                  a.to_string(),
              "amount");
}

Status Applet::debit(const Amount& a) {
  std::string cur(a.currency().code());
  if (balance(cur) < a.minor())
    return fail(Errc::insufficient_ecash, "balance " + std::to_string(balance(cur)) + " < " + std::to_string(a.minor()),
                "amount");
  st_.balances[cur] -= a.minor();
  return {};
}

Response Applet::process(const Command& cmd, std::int64_t now_s) {
  dirty_ = false;
  auto plain_error = [](Errc code, std::string detail) {
    return Response{json_bytes(Json{{"code", std::string(errc_name(code))}, {"detail", std::move(detail)}}),
                    status_word(code)};
  };
  if ((cmd.cla == (0x00 | sc::kSmBit) || cmd.cla == (0x80 | sc::kSmBit))) {
    // A secured frame: it opens only under the current session at the expected
    // counter. Any failure ends the session and changes nothing else.
    if (!session_) return plain_error(Errc::secure_channel_required, "no secure session: authenticate first");
    auto inner = session_->unwrap_command(cmd);
    if (!inner) {
      reset_session();
      return plain_error(inner.error().code, inner.error().detail);
    }
    if (inner->ins == ins::kSelect && inner->cla == 0x00) {
      reset_session();
      return plain_error(Errc::secure_messaging_failed, "SELECT is sent in the clear");
    }
    Response r = dispatch(*inner, now_s, true);
    return session_ ? session_->wrap_response(r) : r;
  }
  return dispatch(cmd, now_s, false);
}

Response Applet::dispatch(const Command& cmd, std::int64_t now_s, bool secured) {
  struct Route {
    std::uint8_t cla, ins;
    Handler handler;
  };
  static const Route kRoutes[] = {
      {0x00, ins::kSelect, &Applet::select},
      {0x00, ins::kVerify, &Applet::verify},
      {0x00, ins::kResetRetry, &Applet::reset_retry},
      {0x80, ins::kGetData, &Applet::get_data},
      {0x80, ins::kPersonalize, &Applet::personalize},
      {0x80, ins::kInstallCert, &Applet::install_cert},
      {0x80, ins::kUpdateCrl, &Applet::update_crl},
      {0x80, ins::kTopupRequest, &Applet::topup_request},
      {0x80, ins::kTopupReceipt, &Applet::topup_receipt},
      {0x80, ins::kPaymentNote, &Applet::payment_note},
      {0x80, ins::kReceiveNote, &Applet::receive_note},
      {0x80, ins::kClaimNote, &Applet::claim_note},
      {0x80, ins::kReclaimClaim, &Applet::reclaim_claim},
      {0x80, ins::kCloseNote, &Applet::close_note},
      {0x80, ins::kDepositNote, &Applet::deposit_note},
      {0x80, ins::kDepositReceipt, &Applet::deposit_receipt},
      {0x80, ins::kSignQuery, &Applet::sign_query},
      {0x80, ins::kTransferOrder, &Applet::transfer_order},
      {0x80, ins::kHoldRequest, &Applet::hold_request},
      {0x80, ins::kCosign, &Applet::cosign},
      {0x80, ins::kHoldConfirm, &Applet::hold_confirm},
      {0x80, ins::kHoldRelease, &Applet::hold_release},
      {0x80, ins::kJointRequest, &Applet::joint_request},
      {0x80, ins::kF2fReceive, &Applet::f2f_receive},
      {0x80, ins::kF2fPay, &Applet::f2f_pay},
      {0x80, ins::kF2fSend, &Applet::f2f_send},
      {0x80, ins::kF2fCancel, &Applet::f2f_cancel},
      {0x80, ins::kF2fClose, &Applet::f2f_close},
      {0x80, ins::kF2fRefuse, &Applet::f2f_refuse},
      {0x80, ins::kF2fReconcile, &Applet::f2f_reconcile},
      {0x80, ins::kF2fSettle, &Applet::f2f_settle},
      {0x80, ins::kCpayNote, &Applet::cpay_note},
      {0x80, ins::kCpayRelease, &Applet::cpay_release},
      {0x80, ins::kCpayClaim, &Applet::cpay_claim},
      {0x80, ins::kCpayAccept, &Applet::cpay_accept},
      {0x80, ins::kCpayRefund, &Applet::cpay_refund},
      {0x80, ins::kCpayRefundClaim, &Applet::cpay_refund_claim},
      {0x80, ins::kCpayClose, &Applet::cpay_close},
      {0x80, ins::kPairBegin, &Applet::pair_begin},
      {0x80, ins::kPairNonce, &Applet::pair_nonce},
      {0x80, ins::kPairConfirm, &Applet::pair_confirm},
      {0x80, ins::kAuthBegin, &Applet::auth_begin},
      {0x80, ins::kAuthFinish, &Applet::auth_finish},
  };
  const Route* route = nullptr;
  bool class_known = false;
  for (const auto& r : kRoutes) {
    class_known = class_known || r.cla == cmd.cla;
    if (r.cla == cmd.cla && r.ins == cmd.ins) route = &r;
  }
  Result<Bytes> result = fail(Errc::unknown_instruction, "instruction not supported");
  if (!class_known) {
    return Response{json_bytes(Json{{"code", "bad_apdu"}, {"detail", "class not supported"}}), 0x6E00};
  }
  if (route && !secured && needs_secure_channel(cmd.cla, cmd.ins, cmd.p2)) {
    result = fail(Errc::secure_channel_required, "pair and authenticate first: this command needs the secure channel");
  } else if (route) {
    try {
      result = (this->*(route->handler))(cmd, now_s);
    } catch (const std::exception& e) {
      result = fail(Errc::internal, e.what());
    }
  }
  if (result) return Response{std::move(*result), 0x9000};
  const Error& e = result.error();
  std::uint16_t sw = status_word(e.code);
  if (e.code == Errc::pin_wrong) {
    // 63Cx counts the tries left for the secret just presented: the PUK for RESET RETRY COUNTER.
    bool puk = (cmd.cla == 0x00 && cmd.ins == ins::kResetRetry) || (cmd.cla == 0x80 && cmd.ins == ins::kPairConfirm);
    int left = puk ? st_.puk_tries_left : st_.pin_tries_left;
    sw = static_cast<std::uint16_t>(0x63C0 | std::min(left, 15));
  }
  Json detail{{"code", std::string(errc_name(e.code))}, {"detail", e.detail}};
  if (!e.field.empty()) detail["field"] = e.field;
  return Response{json_bytes(detail), sw};
}

Bytes Applet::process_raw(ByteView apdu, std::int64_t now_s) {
  auto cmd = parse_command(apdu);
  if (!cmd) {
    dirty_ = false;
    return encode_response(Response{json_bytes(Json{{"code", "bad_apdu"}, {"detail", cmd.error().detail}}),
                                    status_word(cmd.error().code)});
  }
  return encode_response(process(*cmd, now_s));
}

}  // namespace zf::se
