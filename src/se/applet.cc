#include "se/applet.h"

#include <algorithm>
#include <cstring>

#include "core/claims.h"
#include "core/enroll.h"

namespace zf::se {
namespace {

constexpr std::size_t kMaxPending = 16;

Result<Json> json_data(const Command& c) {
  auto j = parse_json_strict(to_string(c.data), {kMaxJoseBytes, 8});
  if (!j) return j;
  if (!j->is_object()) return fail(Errc::bad_field, "command data must be a JSON object");
  return j;
}

Bytes json_bytes(const Json& j) {
  std::string s = dump_json(j);
  return Bytes(s.begin(), s.end());
}

bool digits(std::string_view s, std::size_t min, std::size_t max) {
  return s.size() >= min && s.size() <= max &&
         std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

Bytes salted_hash(ByteView salt, std::string_view secret) {
  Bytes in(salt.begin(), salt.end());
  in.insert(in.end(), secret.begin(), secret.end());
  Bytes h = sha256(in);
  std::fill(in.begin(), in.end(), 0);
  return h;
}

const char* lifecycle_name(Lifecycle l) {
  switch (l) {
    case Lifecycle::factory:
      return "factory";
    case Lifecycle::personalized:
      return "personalized";
    case Lifecycle::active:
      return "active";
  }
  return "?";
}

// Copies the named fields of a JSON command into a document payload, refusing any other field.
Result<Json> take_fields(const Json& in, std::initializer_list<std::string_view> fields) {
  if (auto s = only_fields(in, fields); !s) return std::unexpected(s.error());
  Json out = Json::object();
  for (auto f : fields)
    if (in.contains(f)) out[std::string(f)] = in[std::string(f)];
  return out;
}

// A base64url field of exactly `size` bytes.
Result<Bytes> get_b64(const Json& j, const char* field, std::size_t size) {
  auto text = get_string(j, field, 4 * size);
  if (!text) return std::unexpected(text.error());
  auto b = b64url_decode(*text);
  if (!b || b->size() != size)
    return fail(Errc::bad_field, "base64url of " + std::to_string(size) + " bytes", field);
  return b;
}

}  // namespace

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
  session_.reset();
  auth_pending_.reset();
  pairing_.reset();
  display_.clear();
}

Applet::Applet(std::string se_id, PrivateKey attestation_key, std::vector<Certificate> attestation_chain)
    : se_id_(std::move(se_id)),
      attest_key_(std::make_unique<PrivateKey>(std::move(attestation_key))),
      attest_chain_(std::move(attestation_chain)) {}

std::int64_t Applet::balance(std::string_view currency) const {
  auto it = balances_.find(std::string(currency));
  return it == balances_.end() ? 0 : it->second;
}

std::int64_t Applet::headroom(std::string_view currency) const {
  // A pending top-up counts as received: its receipt cannot be refused once the
  // bank has debited the account, so the room for it is kept from the start.
  std::int64_t promised = 0;
  for (const auto& [id, req] : pending_topups_)
    if (req.at("currency").get<std::string>() == currency) promised += req.at("amount").get<std::int64_t>();
  return max_balance_minor_ - balance(currency) - promised;
}

Status Applet::require_active() const {
  if (lifecycle_ != Lifecycle::active) return fail(Errc::wrong_state, std::string("SE is ") + lifecycle_name(lifecycle_));
  return {};
}

Status Applet::require_user() const {
  if (auto s = require_active(); !s) return s;
  if (pin_tries_left_ == 0) return fail(Errc::pin_blocked, "PIN blocked; unblock with the PUK");
  if (!verified_) return fail(Errc::not_verified, "verify the PIN first");
  return {};
}

CertVerifier Applet::verifier(std::int64_t now_s) const {
  CertVerifier v(*root_);
  v.set_crl(crl_);
  v.set_time(now_s);
  return v;
}

// Documents that move no value (claims, account queries) spend no sequence
// number: every seq an SE spends is then recorded at the registry once what it
// signed takes effect, so a restored state that spends a seq again is caught
// there (DESIGN.md §5, docs/registry-api.md).
Result<std::string> Applet::sign_unsequenced(Json payload, std::string_view tag, std::int64_t now_s) {
  payload["v"] = 1;
  payload["id"] = se_id_ + ":" + std::string(tag) + ":" + b64url_encode(random_bytes(12));
  payload["issuer"] = se_id_;
  payload["iat"] = now_s;
  payload["nonce"] = new_nonce();
  KeySigner signer(*key_);
  return sign_document(payload, JwsSigner{&signer, chain_});
}

Result<std::string> Applet::sign_next(Json payload, std::int64_t now_s) {
  std::int64_t seq = seq_ + 1;
  payload["v"] = 1;
  payload["id"] = se_id_ + ":" + std::to_string(seq);
  payload["issuer"] = se_id_;
  payload["seq"] = seq;
  payload["iat"] = now_s;
  payload["nonce"] = new_nonce();  // the registry's digest of this document must not be guessable
  KeySigner signer(*key_);
  // sign_document validates the payload (types, amount > 0, currency) before signing.
  auto jws = sign_document(payload, JwsSigner{&signer, chain_});
  if (!jws) return std::unexpected(jws.error());
  seq_ = seq;
  issued_.push_back(*jws);
  while (issued_.size() > kIssuedKept) issued_.pop_front();
  return jws;
}

void Applet::log(std::string op, std::string doc_id, const Amount* amount, bool credit, std::string counterparty,
                 std::int64_t now_s) {
  LogEntry e{seq_, std::move(op), std::move(doc_id), amount ? std::string(amount->currency().code()) : "",
             amount ? (credit ? amount->minor() : -amount->minor()) : 0, std::move(counterparty), now_s};
  log_.push_back(std::move(e));
  while (log_.size() > kLogSize) log_.pop_front();
}

Status Applet::credit(const Amount& a) {
  std::string cur(a.currency().code());
  auto now = Amount::of(a.currency(), balance(cur));
  if (!now) return std::unexpected(now.error());
  auto sum = now->add(a);
  if (!sum) return std::unexpected(sum.error());
  balances_[cur] = sum->minor();
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
  balances_[cur] -= a.minor();
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
    int left = puk ? puk_tries_left_ : pin_tries_left_;
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

// ---- ISO commands

Result<Bytes> Applet::select(const Command& c, std::int64_t) {
  if (c.p1 != 0x04 || c.data.size() != sizeof(kAid) || std::memcmp(c.data.data(), kAid, sizeof(kAid)) != 0)
    return fail(Errc::not_found, "no applet with this AID");
  reset_session();  // a new selection starts a new session
  return json_bytes(Json{{"se_id", se_id_}, {"state", lifecycle_name(lifecycle_)}, {"paired", paired()}});
}

Result<Bytes> Applet::verify(const Command& c, std::int64_t) {
  if (auto s = require_active(); !s) return std::unexpected(s.error());
  if (c.p1 != 0x00 || (c.p2 != 0x80 && c.p2 != 0x81)) return fail(Errc::bad_apdu, "P1/P2 must be 00 80 or 00 81");
  if (pin_tries_left_ == 0) return fail(Errc::pin_blocked, "PIN blocked; unblock with the PUK");
  if (c.data.empty()) {  // ISO: ask for the retry counter
    if (verified_) return Bytes{};
    return fail(Errc::pin_wrong, "not verified");
  }
  bool match = false;
  if (c.p2 == 0x80) {
    std::string pin = to_string(c.data);
    match = digits(pin, 4, 12) && ct_equal(salted_hash(pin_salt_, pin), pin_hash_);
  } else {
    match = !bio_hash_.empty() && ct_equal(sha256(c.data), bio_hash_);
  }
  if (!match) {
    verified_ = false;
    --pin_tries_left_;
    dirty_ = true;  // the retry counter must survive a power cut
    if (pin_tries_left_ == 0) return fail(Errc::pin_blocked, "wrong PIN; now blocked");
    return fail(Errc::pin_wrong, std::to_string(pin_tries_left_) + " tries left");
  }
  if (pin_tries_left_ != pin_tries_max_) {
    pin_tries_left_ = pin_tries_max_;
    dirty_ = true;
  }
  verified_ = true;
  return Bytes{};
}

Result<Bytes> Applet::reset_retry(const Command& c, std::int64_t) {
  if (auto s = require_active(); !s) return std::unexpected(s.error());
  if (puk_tries_left_ == 0) return fail(Errc::pin_blocked, "PUK blocked; the issuer must replace the SE");
  auto j = json_data(c);
  if (!j) return std::unexpected(j.error());
  if (auto s = only_fields(*j, {"puk", "new_pin"}); !s) return std::unexpected(s.error());
  auto puk = get_string(*j, "puk", 16);
  auto pin = get_string(*j, "new_pin", 12);
  if (!puk) return std::unexpected(puk.error());
  if (!pin) return std::unexpected(pin.error());
  if (!digits(*pin, 4, 12)) return fail(Errc::bad_field, "PIN must be 4..12 digits", "new_pin");
  if (!ct_equal(salted_hash(pin_salt_, *puk), puk_hash_)) {
    --puk_tries_left_;
    dirty_ = true;
    if (puk_tries_left_ == 0) return fail(Errc::pin_blocked, "wrong PUK; now blocked", "puk");
    return fail(Errc::pin_wrong, "wrong PUK; " + std::to_string(puk_tries_left_) + " tries left", "puk");
  }
  pin_hash_ = salted_hash(pin_salt_, *pin);
  pin_tries_left_ = pin_tries_max_;
  puk_tries_left_ = kPukTries;
  verified_ = false;
  dirty_ = true;
  return Bytes{};
}

Result<Bytes> Applet::get_data(const Command& c, std::int64_t) {
  switch (c.p2) {
    case tag::kInfo: {
      Json balances = Json::object();
      for (const auto& [cur, v] : balances_) balances[cur] = v;
      Json pt = Json::array(), pd = Json::array();
      for (const auto& [id, _] : pending_topups_) pt.push_back(id);
      for (const auto& [id, _] : pending_deposits_) pd.push_back(id);
      return json_bytes(Json{{"se_id", se_id_},
                             {"user_id", user_id_},
                             {"state", lifecycle_name(lifecycle_)},
                             {"seq", seq_},
                             {"pin_tries_left", pin_tries_left_},
                             {"verified", verified_},
                             {"balances", balances},
                             {"max_balance_minor", max_balance_minor_},
                             {"max_payment_minor", max_payment_minor_},
                             {"crl_number", crl_ ? crl_->number() : 0},
                             {"crl_next_update", crl_ ? static_cast<std::int64_t>(crl_->next_update()) : 0},
                             {"pending_topups", pt},
                             {"pending_deposits", pd},
                             {"received_notes", received_notes_.size()},
                             {"open_notes", outstanding_notes_.size()},
                             {"note_ttl_s", note_ttl_s_},
                             {"sent_minor", sent_minor_},
                             {"received_minor", received_minor_},
                             {"reclaimed_minor", reclaimed_minor_}});
    }
    case tag::kCertificate: {
      if (chain_.empty()) return fail(Errc::wrong_state, "no certificate installed");
      std::string pem;
      for (const auto& cert : chain_) pem += cert.pem();
      return Bytes(pem.begin(), pem.end());
    }
    case tag::kStatus:
      return json_bytes(Json{{"se_id", se_id_}, {"state", lifecycle_name(lifecycle_)}, {"paired", paired()}});
    case tag::kLog: {
      // What the person did is theirs: the log and the issued documents need the verified user.
      if (auto s = require_user(); !s) return std::unexpected(s.error());
      Json arr = Json::array();
      for (const auto& e : log_)
        arr.push_back(Json{{"seq", e.seq}, {"op", e.op}, {"doc_id", e.doc_id}, {"currency", e.currency},
                           {"amount_minor", e.amount_minor}, {"counterparty", e.counterparty}, {"at", e.at}});
      return json_bytes(arr);
    }
    case tag::kOutstanding: {
      if (auto s = require_user(); !s) return std::unexpected(s.error());
      Json arr = Json::array();
      for (const auto& [id, n] : outstanding_notes_) {
        Json item = n;
        item.erase("digest");
        item["id"] = id;
        arr.push_back(std::move(item));
      }
      return json_bytes(arr);
    }
    case tag::kIssued: {
      if (auto s = require_user(); !s) return std::unexpected(s.error());
      Json arr = Json::array();
      for (const auto& d : issued_) arr.push_back(d);
      return json_bytes(arr);
    }
    default:
      return fail(Errc::not_found, "unknown GET DATA tag");
  }
}

// ---- Pairing and mutual authentication (docs/se-apdu.md "Pairing and secure messaging")
//
// Pairing: PAIR BEGIN (ephemeral keys; the SE commits to its nonce), PAIR NONCE
// (nonces swapped; both show the code), PAIR CONFIRM (the terminal proves the
// same secrets, and sends the sealed PUK when the SE is personalized). Only
// PAIR CONFIRM changes persistent state: the pairing key, or a PUK try.
// Authentication: AUTH BEGIN / AUTH FINISH swap challenges and cryptograms under
// keys derived from the pairing key; the session then carries secured frames.

Result<Bytes> Applet::pair_begin(const Command& c, std::int64_t) {
  if (pairing_needs_puk()) {
    if (puk_tries_left_ == 0) return fail(Errc::pin_blocked, "PUK blocked; the issuer must replace the SE");
    if (puk_tries_left_ <= kPukTriesKeptForUnblock)
      return fail(Errc::pin_blocked, "re-pairing locked: the last PUK tries are kept for RESET RETRY COUNTER");
  }
  auto j = json_data(c);
  if (!j) return std::unexpected(j.error());
  if (auto s = only_fields(*j, {"pk"}); !s) return std::unexpected(s.error());
  auto t_point = get_b64(*j, "pk", 64);
  if (!t_point) return std::unexpected(t_point.error());
  if (auto k = sc::decode_point(*t_point); !k) return std::unexpected(k.error());
  auto eph = PrivateKey::generate(SigAlg::ES256);
  if (!eph) return std::unexpected(eph.error());
  auto se_point = sc::encode_point(eph->public_key());
  if (!se_point) return std::unexpected(se_point.error());
  reset_session();  // pairing replaces whatever the link was doing
  PairingRun run;
  run.ephemeral = std::make_unique<PrivateKey>(std::move(*eph));
  run.terminal_point = std::move(*t_point);
  run.se_point = std::move(*se_point);
  run.se_nonce = random_bytes(sc::kNonceBytes);
  Bytes commit = sc::pairing_commitment(run.se_nonce, run.se_point, run.terminal_point);
  Json out{{"pk", b64url_encode(run.se_point)}, {"commit", b64url_encode(commit)}, {"puk_required", pairing_needs_puk()}};
  pairing_ = std::move(run);
  return json_bytes(out);
}

Result<Bytes> Applet::pair_nonce(const Command& c, std::int64_t) {
  if (!pairing_ || pairing_->secrets) return fail(Errc::wrong_state, "PAIR BEGIN first");
  auto j = json_data(c);
  if (!j) return std::unexpected(j.error());
  if (auto s = only_fields(*j, {"nonce"}); !s) return std::unexpected(s.error());
  auto t_nonce = get_b64(*j, "nonce", sc::kNonceBytes);
  if (!t_nonce) return std::unexpected(t_nonce.error());
  auto theirs = sc::decode_point(pairing_->terminal_point);
  if (!theirs) return std::unexpected(theirs.error());
  auto z = ecdh(*pairing_->ephemeral, *theirs);
  if (!z) return std::unexpected(z.error());
  auto secrets =
      sc::derive_pairing(z->view(), pairing_->terminal_point, pairing_->se_point, *t_nonce, pairing_->se_nonce, se_id_);
  if (!secrets) return std::unexpected(secrets.error());
  display_ = secrets->code;
  pairing_->secrets = std::move(*secrets);
  return json_bytes(Json{{"nonce", b64url_encode(pairing_->se_nonce)}});
}

Result<Bytes> Applet::pair_confirm(const Command& c, std::int64_t) {
  if (!pairing_ || !pairing_->secrets) return fail(Errc::wrong_state, "PAIR NONCE first");
  // Any answer but success ends this pairing run: the terminal starts again.
  PairingRun run = std::move(*pairing_);
  pairing_.reset();
  display_.clear();
  auto j = json_data(c);
  if (!j) return std::unexpected(j.error());
  if (auto s = only_fields(*j, {"mac", "puk"}); !s) return std::unexpected(s.error());
  auto mac = get_b64(*j, "mac", 32);
  if (!mac) return std::unexpected(mac.error());
  auto expected = sc::terminal_confirmation(*run.secrets);
  if (!expected) return std::unexpected(expected.error());
  if (!ct_equal(*mac, *expected)) return fail(Errc::auth_failed, "pairing confirmation does not match", "mac");
  if (pairing_needs_puk()) {
    if (!j->contains("puk")) return fail(Errc::missing_field, "re-pairing a personalized SE needs the PUK", "puk");
    auto sealed_text = get_string(*j, "puk", 256);
    if (!sealed_text) return std::unexpected(sealed_text.error());
    auto sealed = b64url_decode(*sealed_text);
    if (!sealed) return fail(Errc::bad_field, "base64url", "puk");
    auto puk = sc::open_puk(*run.secrets, *sealed);
    if (!puk) return std::unexpected(puk.error());
    if (!ct_equal(salted_hash(pin_salt_, *puk), puk_hash_)) {
      --puk_tries_left_;
      dirty_ = true;  // the PUK counter must survive a power cut
      if (puk_tries_left_ == 0) return fail(Errc::pin_blocked, "wrong PUK; now blocked", "puk");
      return fail(Errc::pin_wrong, "wrong PUK; " + std::to_string(puk_tries_left_) + " tries left", "puk");
    }
    puk_tries_left_ = kPukTries;
  } else if (j->contains("puk")) {
    return fail(Errc::unknown_field, "a factory SE has no PUK yet", "puk");
  }
  // The old terminal's key is gone with this: its sessions no longer authenticate.
  pairing_key_ = run.secrets->pairing_key;
  reset_session();
  dirty_ = true;
  return Bytes{};
}

Result<Bytes> Applet::auth_begin(const Command& c, std::int64_t) {
  if (!paired()) return fail(Errc::not_paired, "this SE is not paired with a terminal");
  auto j = json_data(c);
  if (!j) return std::unexpected(j.error());
  if (auto s = only_fields(*j, {"challenge"}); !s) return std::unexpected(s.error());
  auto host = get_b64(*j, "challenge", sc::kChallengeBytes);
  if (!host) return std::unexpected(host.error());
  Bytes card = random_bytes(sc::kChallengeBytes);
  auto session = sc::Session::derive(pairing_key_.view(), *host, card, se_id_, sc::Session::Side::se);
  if (!session) return std::unexpected(session.error());
  reset_session();  // a new authentication is a new session: the user verifies again
  Json out{{"challenge", b64url_encode(card)}, {"cryptogram", b64url_encode(session->card_cryptogram())}};
  auth_pending_ = std::move(*session);
  return json_bytes(out);
}

Result<Bytes> Applet::auth_finish(const Command& c, std::int64_t) {
  if (!auth_pending_) return fail(Errc::wrong_state, "AUTH BEGIN first");
  sc::Session session = std::move(*auth_pending_);
  auth_pending_.reset();
  auto j = json_data(c);
  if (!j) return std::unexpected(j.error());
  if (auto s = only_fields(*j, {"cryptogram"}); !s) return std::unexpected(s.error());
  auto host = get_b64(*j, "cryptogram", 32);
  if (!host) return std::unexpected(host.error());
  if (!ct_equal(*host, session.host_cryptogram()))
    return fail(Errc::auth_failed, "host cryptogram does not match: not the paired terminal", "cryptogram");
  session_ = std::move(session);
  return Bytes{};
}

// ---- Personalization

Result<Bytes> Applet::personalize(const Command& c, std::int64_t) {
  if (lifecycle_ != Lifecycle::factory) return fail(Errc::wrong_state, "already personalized");
  auto j = json_data(c);
  if (!j) return std::unexpected(j.error());
  if (auto s = only_fields(*j, {"user_id", "pin", "puk", "root", "max_balance_minor", "max_payment_minor", "pin_tries",
                                "bio_hash", "note_ttl_s"});
      !s)
    return std::unexpected(s.error());
  auto user = get_string(*j, "user_id", 64);
  auto pin = get_string(*j, "pin", 12);
  auto puk = get_string(*j, "puk", 16);
  auto root_pem = get_string(*j, "root", 8192);
  for (auto* r : {&user, &pin, &puk, &root_pem})
    if (!*r) return std::unexpected(r->error());
  if (user->empty()) return fail(Errc::bad_field, "user id required", "user_id");
  if (!digits(*pin, 4, 12)) return fail(Errc::bad_field, "PIN must be 4..12 digits", "pin");
  if (!digits(*puk, 8, 16)) return fail(Errc::bad_field, "PUK must be 8..16 digits", "puk");
  auto root = Certificate::from_pem(*root_pem);
  if (!root || !root->is_ca()) return fail(Errc::cert_malformed, "root must be a CA certificate", "root");
  std::int64_t max_balance = Amount::kMaxMinor, max_payment = Amount::kMaxMinor, tries = kDefaultPinTries;
  std::int64_t note_ttl = kDefaultNoteTtlS;
  for (auto [name, dest] : {std::pair{"max_balance_minor", &max_balance}, std::pair{"max_payment_minor", &max_payment},
                            std::pair{"pin_tries", &tries}, std::pair{"note_ttl_s", &note_ttl}}) {
    if (!j->contains(name)) continue;
    auto v = get_int(*j, name);
    if (!v) return std::unexpected(v.error());
    if (*v < 1 || *v > Amount::kMaxMinor) return fail(Errc::bad_field, "out of range", name);
    *dest = *v;
  }
  if (tries > 15) return fail(Errc::bad_field, "at most 15 tries", "pin_tries");
  if (note_ttl > kMaxNoteTtlS) return fail(Errc::bad_field, "a note expires in 1 s to 366 days", "note_ttl_s");
  Bytes bio;
  if (j->contains("bio_hash")) {
    auto h = get_string(*j, "bio_hash", 64);
    if (!h) return std::unexpected(h.error());
    auto b = hex_decode(*h);
    if (!b || b->size() != 32) return fail(Errc::bad_field, "SHA-256 hex of the template", "bio_hash");
    bio = std::move(*b);
  }
  // The user's key is generated here and never leaves the applet.
  auto key = PrivateKey::generate(SigAlg::ES256);
  if (!key) return std::unexpected(key.error());
  auto csr = make_csr_pem(*key, CsrInfo{se_id_, *user});
  if (!csr) return std::unexpected(csr.error());
  KeySigner attest(*attest_key_);
  auto att = make_attestation(attest, attest_chain_, key->public_key());
  if (!att) return std::unexpected(att.error());

  user_id_ = *user;
  pin_salt_ = random_bytes(16);
  pin_hash_ = salted_hash(pin_salt_, *pin);
  puk_hash_ = salted_hash(pin_salt_, *puk);
  bio_hash_ = std::move(bio);
  pin_tries_max_ = pin_tries_left_ = static_cast<int>(tries);
  max_balance_minor_ = max_balance;
  max_payment_minor_ = max_payment;
  note_ttl_s_ = note_ttl;
  root_ = std::move(*root);
  key_ = std::make_unique<PrivateKey>(std::move(*key));
  lifecycle_ = Lifecycle::personalized;
  dirty_ = true;
  return json_bytes(Json{{"csr", *csr}, {"attestation", attestation_to_json(*att)}});
}

Result<Bytes> Applet::install_cert(const Command& c, std::int64_t now_s) {
  if (lifecycle_ != Lifecycle::personalized) return fail(Errc::wrong_state, "install needs a personalized SE");
  auto j = json_data(c);
  if (!j) return std::unexpected(j.error());
  if (auto s = only_fields(*j, {"certificate"}); !s) return std::unexpected(s.error());
  auto pem = get_string(*j, "certificate", 16 * 1024);
  if (!pem) return std::unexpected(pem.error());
  auto chain = certificates_from_pem(*pem);
  if (!chain) return std::unexpected(chain.error());
  CertVerifier v(*root_);
  v.set_time(now_s);
  auto leaf = v.verify(*chain, Role::secure_element);
  if (!leaf) return std::unexpected(leaf.error());
  if (leaf->public_key().spki_der() != key_->public_key().spki_der())
    return fail(Errc::bad_field, "certificate is for another key", "certificate");
  if (leaf->subject_cn() != se_id_ || leaf->user_id() != user_id_)
    return fail(Errc::bad_field, "certificate names another SE or user", "certificate");
  chain_ = {*leaf};  // documents carry the leaf; verifiers hold the root
  lifecycle_ = Lifecycle::active;
  dirty_ = true;
  return Bytes{};
}

Result<Bytes> Applet::update_crl(const Command& c, std::int64_t) {
  if (lifecycle_ == Lifecycle::factory) return fail(Errc::wrong_state, "personalize first");
  auto j = json_data(c);
  if (!j) return std::unexpected(j.error());
  if (auto s = only_fields(*j, {"crl"}); !s) return std::unexpected(s.error());
  auto pem = get_string(*j, "crl", 60 * 1024);
  if (!pem) return std::unexpected(pem.error());
  auto crl = Crl::from_pem(*pem);
  if (!crl) return std::unexpected(crl.error());
  if (auto s = crl->verify_signature(*root_); !s) return std::unexpected(s.error());
  std::uint64_t current = crl_ ? crl_->number() : 0;
  // A CRL never goes back: an older list could un-revoke a key.
  if (crl->number() < current) return fail(Errc::replayed, "older CRL than the installed one", "crl");
  if (crl->number() > current || !crl_ || crl->next_update() > crl_->next_update()) {
    crl_ = std::move(*crl);
    dirty_ = true;
  }
  return json_bytes(Json{{"crl_number", crl_->number()}});
}

// ---- Top-up (DESIGN.md §6.2)

Result<Bytes> Applet::topup_request(const Command& c, std::int64_t now_s) {
  if (auto s = require_user(); !s) return std::unexpected(s.error());
  auto j = json_data(c);
  if (!j) return std::unexpected(j.error());
  auto payload = take_fields(*j, {"amount", "currency", "bank", "account", "process_no"});
  if (!payload) return std::unexpected(payload.error());
  (*payload)["type"] = "topup.request";
  // Validate the amount the same way any verifier will, before anything changes.
  Json probe = *payload;
  probe.update(Json{{"v", 1}, {"id", "probe"}, {"issuer", se_id_}, {"seq", 0}, {"iat", now_s}, {"nonce", new_nonce()}});
  auto doc = Document::from_json(probe);
  if (!doc) return std::unexpected(doc.error());
  if (doc->amount()->minor() > headroom(doc->amount()->currency().code()))
    return fail(Errc::limit_exceeded, "top-up would exceed the SE's maximum balance", "amount");
  if (pending_topups_.size() >= kMaxPending)
    return fail(Errc::wrong_state, "too many top-ups awaiting receipts; retry them first");
  auto jws = sign_next(*payload, now_s);
  if (!jws) return std::unexpected(jws.error());
  std::string id = se_id_ + ":" + std::to_string(seq_);
  Json stored = *payload;
  stored["id"] = id;
  pending_topups_[id] = stored;
  log("topup.request", id, &*doc->amount(), true, doc->str("bank"), now_s);
  log_.back().amount_minor = 0;  // no value moves until the receipt
  dirty_ = true;
  return json_bytes(Json{{"request", *jws}, {"id", id}});
}

// A bank's receipt for one of our pending documents (top-up request, deposit
// note): signed by a custody certificate of our CA and by the bank the
// document named, of type `type`, for this SE, answering (`key_field`) an id
// that is pending and not yet done, with the document's amount, currency,
// account and bank, and a known status. Nothing changes here.
Result<Applet::BankReceipt> Applet::open_bank_receipt(const Command& c, std::int64_t now_s, std::string_view type,
                                                      std::string_view key_field, const std::set<std::string>& done,
                                                      const std::map<std::string, Json>& pending) {
  auto j = json_data(c);
  if (!j) return std::unexpected(j.error());
  if (auto s = only_fields(*j, {"receipt"}); !s) return std::unexpected(s.error());
  auto text = get_string(*j, "receipt", kMaxJoseBytes);
  if (!text) return std::unexpected(text.error());
  auto signed_doc = open_signed_document(*text, verifier(now_s), Role::custody);
  if (!signed_doc) return std::unexpected(signed_doc.error());
  const Document& doc = signed_doc->doc;
  const std::string field(key_field);
  if (doc.type() != type) return fail(Errc::unknown_type, "expected a " + std::string(type), "type");
  std::string answers = doc.str(field);
  if (done.count(answers)) return fail(Errc::replayed, "receipt already applied", field);
  auto it = pending.find(answers);
  if (it == pending.end()) return fail(Errc::receipt_mismatch, "nothing pending with this id", field);
  if (doc.str("se") != se_id_) return fail(Errc::misaddressed, "receipt is for another SE", "se");
  for (const char* f : {"amount", "currency", "account", "bank"})
    if (doc.json().at(f) != it->second.at(f)) return fail(Errc::receipt_mismatch, "receipt differs from what we signed", f);
  if (signed_doc->signers.front().subject_cn() != it->second.at("bank").get<std::string>())
    return fail(Errc::receipt_mismatch, "receipt signed by another bank", "bank");
  std::string status = doc.str("status");
  if (!status.empty() && status != "credited" && status != "refused")
    return fail(Errc::bad_field, "unknown receipt status", "status");
  return BankReceipt{doc, std::move(answers), std::move(status)};
}

Result<Bytes> Applet::topup_receipt(const Command& c, std::int64_t now_s) {
  if (auto s = require_user(); !s) return std::unexpected(s.error());
  auto receipt = open_bank_receipt(c, now_s, "topup.receipt", "request_id", applied_topups_, pending_topups_);
  if (!receipt) return std::unexpected(receipt.error());
  const Document& doc = receipt->doc;
  const std::string& request_id = receipt->answers;
  auto it = pending_topups_.find(request_id);
  const std::string& status = receipt->status;
  if (status == "refused") {
    // The bank consumed the request without moving money: drop it, credit nothing.
    pending_topups_.erase(it);
    applied_topups_.insert(request_id);
    log("topup.refused", doc.id(), nullptr, true, doc.str("bank"), now_s);
    dirty_ = true;
    return json_bytes(Json{{"refused", request_id}, {"reason", doc.str("reason")}});
  }
  if (auto s = credit(*doc.amount()); !s) return std::unexpected(s.error());
  // Safety-critical: the request id moves to the applied set in the same state update as the credit.
  pending_topups_.erase(it);
  applied_topups_.insert(request_id);
  log("topup", doc.id(), &*doc.amount(), true, doc.str("bank"), now_s);
  dirty_ = true;
  return json_bytes(Json{{"credited_minor", doc.amount()->minor()},
                         {"currency", std::string(doc.amount()->currency().code())},
                         {"balance_minor", balance(doc.amount()->currency().code())}});
}

// ---- Online payment (§6.3)

Result<Bytes> Applet::payment_note(const Command& c, std::int64_t now_s) {
  if (auto s = require_user(); !s) return std::unexpected(s.error());
  auto j = json_data(c);
  if (!j) return std::unexpected(j.error());
  if (auto s = only_fields(*j, {"amount", "currency", "payee", "payee_cert", "process_no", "expires_in_s"}); !s)
    return std::unexpected(s.error());
  auto payee = certified_payee(*j, now_s);
  if (!payee) return std::unexpected(payee.error());
  std::int64_t ttl = note_ttl_s_;
  if (j->contains("expires_in_s")) {
    auto v = get_int(*j, "expires_in_s");
    if (!v) return std::unexpected(v.error());
    if (*v < 1 || *v > kMaxNoteTtlS) return fail(Errc::bad_field, "a note expires in 1 s to 366 days", "expires_in_s");
    ttl = *v;
  }
  // A reclaim is signed under this SE's certificate, and the payee checks it
  // when it receives: no note may outlive the certificate, with a week to spare
  // for taking it back. The default lifetime shrinks to fit; a lifetime asked
  // for explicitly is refused rather than silently cut.
  const std::int64_t latest = static_cast<std::int64_t>(chain_.front().not_after()) - kReclaimWindowS;
  if (now_s + ttl > latest) {
    if (j->contains("expires_in_s") || latest - now_s < 3600)
      return fail(Errc::bad_field,
                  "this SE's certificate ends at " + utc_time_text(chain_.front().not_after()) +
                      ": a note must expire by " + utc_time_text(latest) +
                      " so that it can still be taken back; nothing was debited",
                  "expires_in_s");
    ttl = latest - now_s;
  }
  if (outstanding_notes_.size() >= kMaxOutstanding)
    return fail(Errc::limit_exceeded,
                std::to_string(kMaxOutstanding) +
                    " notes this SE paid are not yet known to be received; `zf wallet notes` closes the received "
                    "ones and reclaims the expired ones; nothing was debited",
                "outstanding");
  Json fields = *j;
  fields.erase("payee_cert");  // checked above; the note names the payee, not its certificate
  fields.erase("expires_in_s");
  auto payload = take_fields(fields, {"amount", "currency", "payee", "process_no"});
  if (!payload) return std::unexpected(payload.error());
  (*payload)["payee"] = *payee;
  (*payload)["type"] = "payment.note";
  (*payload)["payer"] = se_id_;
  // After this the payee can no longer receive the note, and this SE may take its value back (RECLAIM).
  (*payload)["exp"] = now_s + ttl;
  Json probe = *payload;
  probe.update(Json{{"v", 1}, {"id", "probe"}, {"issuer", se_id_}, {"seq", 0}, {"iat", now_s}, {"nonce", new_nonce()}});
  auto doc = Document::from_json(probe);
  if (!doc) return std::unexpected(doc.error());
  if (doc->str("payee") == se_id_) return fail(Errc::misaddressed, "cannot pay yourself", "payee");
  if (doc->amount()->minor() > max_payment_minor_)
    return fail(Errc::limit_exceeded, "over the SE's maximum single payment", "amount");
  if (auto s = covers(*doc->amount()); !s) return std::unexpected(s.error());
  auto jws = sign_next(*payload, now_s);
  if (!jws) return std::unexpected(jws.error());
  // The debit and the signed note are one state update: the host persists both or neither.
  if (auto s = debit(*doc->amount()); !s) return std::unexpected(s.error());
  sent_minor_[std::string(doc->amount()->currency().code())] += doc->amount()->minor();
  std::string id = se_id_ + ":" + std::to_string(seq_);
  auto signed_jws = jws_parse(*jws);
  if (!signed_jws) return std::unexpected(signed_jws.error());
  // What a reclaim claims and a record is checked against: the payload's digest, as the payee claims it.
  outstanding_notes_[id] = Json{{"seq", seq_},
                                {"payee", doc->str("payee")},
                                {"amount", doc->amount()->minor()},
                                {"currency", std::string(doc->amount()->currency().code())},
                                {"iat", now_s},
                                {"exp", now_s + ttl},
                                {"digest", b64url_encode(sha256(signed_jws->payload))}};
  log("payment.note", id, &*doc->amount(), false, doc->str("payee"), now_s);
  dirty_ = true;
  return json_bytes(Json{{"note", *jws}, {"id", id}});
}

// The SE a note may be addressed to: the CN of `payee_cert`, a secure-element
// certificate that chains to our root and is not revoked on our CRL, as the
// terminal fetched it from the CA. A terminal cannot address value to an SE
// that does not exist, or to a name the CA never certified: the SE checks the
// certificate itself. A `payee` given beside it must be the same SE.
Result<std::string> Applet::certified_payee(const Json& j, std::int64_t now_s) const {
  auto pem = get_string(j, "payee_cert", 16 * 1024);
  if (!pem) {
    Error e = pem.error();
    if (e.code == Errc::missing_field)
      e.detail = "the payee's SE certificate is required (the terminal fetches it from the CA)";
    return std::unexpected(e);
  }
  auto certs = certificates_from_pem(*pem);
  if (!certs || certs->empty()) return fail(Errc::bad_field, "payee_cert is not a PEM certificate", "payee_cert");
  auto cert = verifier(now_s).verify({certs->front()}, Role::secure_element);
  if (!cert) {
    Error e = cert.error();
    e.field = "payee_cert";
    e.detail = "the payee's certificate: " + e.detail;
    return std::unexpected(e);
  }
  std::string id = cert->subject_cn();
  if (id.empty()) return fail(Errc::bad_field, "the payee's certificate names no SE", "payee_cert");
  if (j.contains("payee")) {
    auto asked = get_string(j, "payee", 128);
    if (!asked) return std::unexpected(asked.error());
    if (*asked != id)
      return fail(Errc::misaddressed, "the payee certificate is " + id + "'s, not " + *asked + "'s", "payee");
  }
  return id;
}

// Every check a payee SE makes on an incoming note before it would credit it.
// `j` is the command's data; its "note" member is the note's JWS.
Result<SignedDocument> Applet::check_incoming_note(const Json& j, std::int64_t now_s, bool expired_ok) const {
  if (auto s = require_user(); !s) return std::unexpected(s.error());
  auto text = get_string(j, "note", kMaxJoseBytes);
  if (!text) return std::unexpected(text.error());
  // Only a certified SE can create e-cash value: the note must chain to our root with that role.
  auto signed_doc = open_signed_document(*text, verifier(now_s), Role::secure_element);
  if (!signed_doc) return std::unexpected(signed_doc.error());
  const Document& doc = signed_doc->doc;
  if (doc.type() != "payment.note") return fail(Errc::unknown_type, "expected a payment.note", "type");
  if (auto s = doc.check_time(now_s); !s) {
    if (!(expired_ok && s.error().code == Errc::expired)) {
      Error e = s.error();
      if (e.code == Errc::expired)
        e.detail = "the note expired at " + utc_time_text(*doc.exp()) +
                   ": it can no longer be received, and its payer can reclaim the value; nothing was credited";
      return std::unexpected(e);
    }
  }
  if (doc.str("payee") != se_id_) return fail(Errc::misaddressed, "note is addressed to another SE", "payee");
  const std::string signer = signed_doc->signers.front().subject_cn();
  // issuer and id are bound to the signer by open_signed_document; the payer is too.
  if (doc.str("payer") != signer) return fail(Errc::issuer_mismatch, "the payer is not the signing SE", "payer");
  if (received_notes_.count(doc.id())) return fail(Errc::replayed, "note already received", "id");
  if (doc.amount()->minor() > headroom(doc.amount()->currency().code()))
    return fail(Errc::limit_exceeded, "would exceed the SE's maximum balance", "amount");
  return signed_doc;
}

// The registry's signed record that this SE won the claim for `note` (DESIGN.md
// §7, docs/se-apdu.md "The registry rule"): signed by a certified `registry` key
// (chain, role, CRL), about this note's id, issuer, seq and payload digest, and
// held by this SE. The terminal carries the record but cannot make one, so a
// terminal that skips the claim cannot get a note credited that a restored or
// cloned payer also spent elsewhere. Nothing changes here.
Status Applet::check_won_record(const Json& j, const SignedDocument& note, std::int64_t now_s) const {
  if (!j.contains("record"))
    return fail(Errc::record_required, "claim the note at the registry first; its signed record must come with it",
                "record");
  auto text = get_string(j, "record", kMaxJoseBytes);
  if (!text) return std::unexpected(text.error());
  auto record = registry::open_record(*text, verifier(now_s));
  if (!record) return std::unexpected(record.error());
  const auto ours = registry::claim_fields_for(note, se_id_);
  if (record->doc_id != ours.doc_id || record->doc_issuer != ours.doc_issuer || record->doc_seq != ours.doc_seq ||
      record->doc_type != ours.doc_type)
    return fail(Errc::record_mismatch, "the record is about document " + record->doc_id, "record");
  if (record->status == registry::RecordStatus::seq_reused)
    return fail(Errc::seq_reused, "the payer signed another document under this sequence number", "record");
  if (record->status == registry::RecordStatus::already_processed || record->processor != se_id_)
    return fail(Errc::replayed, "the note is held at the registry by " + record->processor, "record");
  if (!record->won_by(se_id_, ours.result_digest))
    return fail(Errc::record_mismatch, "the record holds another document under this id", "record");
  // The registry takes a payee's claim only before the note's expiry; a record
  // that says otherwise is not one this SE credits on.
  if (note.doc.exp() && (!record->claimed_at || *record->claimed_at >= *note.doc.exp()))
    return fail(Errc::expired, "the registry recorded the claim after the note expired", "record");
  return {};
}

Result<Bytes> Applet::receive_note(const Command& c, std::int64_t now_s) {
  auto j = json_data(c);
  if (!j) return std::unexpected(j.error());
  if (auto s = only_fields(*j, {"note", "record"}); !s) return std::unexpected(s.error());
  // A note claimed in time may be credited after its expiry (the record says when it was claimed).
  auto signed_doc = check_incoming_note(*j, now_s, true);
  if (!signed_doc) return std::unexpected(signed_doc.error());
  if (auto s = check_won_record(*j, *signed_doc, now_s); !s) return std::unexpected(s.error());
  const Document& doc = signed_doc->doc;
  const std::string signer = signed_doc->signers.front().subject_cn();
  if (auto s = credit(*doc.amount()); !s) return std::unexpected(s.error());
  // Safety-critical: the note id joins the received set in the same state update as the credit.
  received_notes_.insert(doc.id());
  received_minor_[std::string(doc.amount()->currency().code())] += doc.amount()->minor();
  log("receive", doc.id(), &*doc.amount(), true, signer, now_s);
  dirty_ = true;
  return json_bytes(Json{{"credited_minor", doc.amount()->minor()},
                         {"currency", std::string(doc.amount()->currency().code())},
                         {"payer", signer},
                         {"note_id", doc.id()},
                         {"balance_minor", balance(doc.amount()->currency().code())}});
}

// A claim for the registry (DESIGN.md §7), signed only for a note this SE would
// accept now, so a terminal cannot make its SE claim notes it may not take.
Result<Bytes> Applet::claim_note(const Command& c, std::int64_t now_s) {
  auto j = json_data(c);
  if (!j) return std::unexpected(j.error());
  if (auto s = only_fields(*j, {"note"}); !s) return std::unexpected(s.error());
  auto signed_doc = check_incoming_note(*j, now_s);
  if (!signed_doc) return std::unexpected(signed_doc.error());
  // The same fields the record is checked against at RECEIVE NOTE.
  Json claim = registry::claim_payload(registry::claim_fields_for(*signed_doc, se_id_), now_s);
  for (const char* f : {"v", "id", "issuer", "iat"}) claim.erase(f);
  auto jws = sign_unsequenced(claim, "c", now_s);
  if (!jws) return std::unexpected(jws.error());
  return json_bytes(Json{{"claim", *jws}});
}

// ---- Expiry and reclaim (docs/se-apdu.md "Expiry and reclaim")
//
// Every note this SE pays stays in outstanding_notes_ until it is closed with
// a record of the registry: the payee's claim (received: the entry goes, no
// value moves) or this SE's own reclaim, which the registry takes only after
// the note's expiry and only if nobody claimed it before (the value comes
// back, once: the entry leaves in the same state update as the credit).

Result<Bytes> Applet::reclaim_claim(const Command& c, std::int64_t now_s) {
  if (auto s = require_user(); !s) return std::unexpected(s.error());
  auto j = json_data(c);
  if (!j) return std::unexpected(j.error());
  if (auto s = only_fields(*j, {"id"}); !s) return std::unexpected(s.error());
  auto id = get_string(*j, "id", 128);
  if (!id) return std::unexpected(id.error());
  auto it = outstanding_notes_.find(*id);
  if (it == outstanding_notes_.end())
    return fail(Errc::not_found, "this SE has no open note " + *id + ": it was received, reclaimed, or never paid here",
                "id");
  const Json& n = it->second;
  std::int64_t exp = n.at("exp").get<std::int64_t>();
  if (now_s < exp)
    return fail(Errc::not_expired, *id + " can still be received until " + utc_time_text(exp) +
                                       "; it can be reclaimed after that",
                "id");
  auto digest = b64url_decode(n.at("digest").get<std::string>());
  if (!digest) return std::unexpected(digest.error());
  registry::ClaimFields f{*id, se_id_, n.at("seq").get<std::int64_t>(), "payment.note", se_id_, std::move(*digest), exp};
  Json claim = registry::claim_payload(f, now_s);
  for (const char* k : {"v", "id", "issuer", "iat"}) claim.erase(k);
  auto jws = sign_unsequenced(claim, "c", now_s);
  if (!jws) return std::unexpected(jws.error());
  return json_bytes(Json{{"claim", *jws}});
}

Result<Bytes> Applet::close_note(const Command& c, std::int64_t now_s) {
  if (auto s = require_user(); !s) return std::unexpected(s.error());
  auto j = json_data(c);
  if (!j) return std::unexpected(j.error());
  if (auto s = only_fields(*j, {"id", "record"}); !s) return std::unexpected(s.error());
  auto id = get_string(*j, "id", 128);
  if (!id) return std::unexpected(id.error());
  auto text = get_string(*j, "record", kMaxJoseBytes);
  if (!text) return std::unexpected(text.error());
  auto it = outstanding_notes_.find(*id);
  if (it == outstanding_notes_.end())
    return fail(Errc::not_found,
                "this SE has no open note " + *id + ": it was received, reclaimed, or never paid here; nothing changed",
                "id");
  const Json& n = it->second;
  auto record = registry::open_record(*text, verifier(now_s));
  if (!record) return std::unexpected(record.error());
  if (record->doc_id != *id || record->doc_issuer != se_id_ || record->doc_seq != n.at("seq").get<std::int64_t>() ||
      record->doc_type != "payment.note")
    return fail(Errc::record_mismatch, "the record is about document " + record->doc_id, "record");
  if (record->status == registry::RecordStatus::seq_reused)
    return fail(Errc::seq_reused, "another document was claimed under this note's sequence number", "record");
  auto digest = b64url_decode(n.at("digest").get<std::string>());
  if (!digest) return std::unexpected(digest.error());
  if (!ct_equal(record->result_digest, *digest))
    return fail(Errc::record_mismatch, "the record holds another document under this id", "record");
  auto amount = Amount::of(n.at("currency").get<std::string>(), n.at("amount").get<std::int64_t>());
  if (!amount) return std::unexpected(amount.error());
  const std::string payee = n.at("payee").get<std::string>();
  const std::int64_t exp = n.at("exp").get<std::int64_t>();
  if (record->processor == payee) {
    // The registry takes a payee's claim only before the expiry; a record saying
    // otherwise closes nothing (the payee's SE would not credit on it either).
    if (!record->claimed_at || *record->claimed_at >= exp)
      return fail(Errc::record_mismatch, "the record says the payee claimed the note after its expiry", "record");
    // Received: nothing comes back, and the note needs no more room here.
    outstanding_notes_.erase(it);
    dirty_ = true;
    return json_bytes(Json{{"closed", *id}, {"outcome", "received"}, {"payee", payee},
                           {"claimed_at", record->claimed_at.value_or(record->iat)}});
  }
  if (record->processor != se_id_ || record->status != registry::RecordStatus::claimed)
    return fail(Errc::record_mismatch, "the record names " + record->processor + ", neither the payee nor this SE",
                "record");
  if (!record->claimed_at || *record->claimed_at < exp)
    return fail(Errc::record_mismatch, "the registry recorded the reclaim before the note expired", "record");
  // The value comes back under the same limit as any credit. The note stays
  // open and the registry keeps the record: once there is room, the same
  // reclaim credits it, once.
  if (amount->minor() > headroom(amount->currency().code()))
    return fail(Errc::limit_exceeded,
                "taking " + amount->to_string() +
                    " back would pass this SE's maximum balance; deposit or pay first, then reclaim again (the note "
                    "stays open and nothing is lost)",
                "amount");
  // Safety-critical: the entry leaves in the same state update as the credit.
  if (auto s = credit(*amount); !s) return std::unexpected(s.error());
  outstanding_notes_.erase(it);
  reclaimed_minor_[std::string(amount->currency().code())] += amount->minor();
  log("reclaim", *id, &*amount, true, payee, now_s);
  dirty_ = true;
  return json_bytes(Json{{"closed", *id},
                         {"outcome", "reclaimed"},
                         {"payee", payee},
                         {"credited_minor", amount->minor()},
                         {"currency", std::string(amount->currency().code())},
                         {"balance_minor", balance(amount->currency().code())}});
}

// ---- Deposit (§6.4)

Result<Bytes> Applet::deposit_note(const Command& c, std::int64_t now_s) {
  if (auto s = require_user(); !s) return std::unexpected(s.error());
  auto j = json_data(c);
  if (!j) return std::unexpected(j.error());
  auto payload = take_fields(*j, {"amount", "currency", "bank", "account", "process_no"});
  if (!payload) return std::unexpected(payload.error());
  (*payload)["type"] = "deposit.note";
  Json probe = *payload;
  probe.update(Json{{"v", 1}, {"id", "probe"}, {"issuer", se_id_}, {"seq", 0}, {"iat", now_s}, {"nonce", new_nonce()}});
  auto doc = Document::from_json(probe);
  if (!doc) return std::unexpected(doc.error());
  if (auto s = covers(*doc->amount()); !s) return std::unexpected(s.error());
  if (pending_deposits_.size() >= kMaxPending)
    return fail(Errc::wrong_state, "too many deposits awaiting receipts; retry them first");
  auto jws = sign_next(*payload, now_s);
  if (!jws) return std::unexpected(jws.error());
  if (auto s = debit(*doc->amount()); !s) return std::unexpected(s.error());
  std::string id = se_id_ + ":" + std::to_string(seq_);
  Json stored = *payload;
  stored["id"] = id;
  pending_deposits_[id] = stored;
  log("deposit.note", id, &*doc->amount(), false, doc->str("bank"), now_s);
  dirty_ = true;
  return json_bytes(Json{{"note", *jws}, {"id", id}});
}

Result<Bytes> Applet::deposit_receipt(const Command& c, std::int64_t now_s) {
  if (auto s = require_user(); !s) return std::unexpected(s.error());
  auto receipt = open_bank_receipt(c, now_s, "deposit.receipt", "note_id", settled_deposits_, pending_deposits_);
  if (!receipt) return std::unexpected(receipt.error());
  const Document& doc = receipt->doc;
  const std::string& note_id = receipt->answers;
  auto it = pending_deposits_.find(note_id);
  const std::string& status = receipt->status;
  if (status == "refused") {
    // The bank refused the note and consumed it: its value comes back here, once.
    if (auto s = credit(*doc.amount()); !s) return std::unexpected(s.error());
    pending_deposits_.erase(it);
    settled_deposits_.insert(note_id);
    log("deposit.refund", doc.id(), &*doc.amount(), true, doc.str("bank"), now_s);
    dirty_ = true;
    return json_bytes(Json{{"settled", note_id},
                           {"refunded_minor", doc.amount()->minor()},
                           {"reason", doc.str("reason")},
                           {"balance_minor", balance(doc.amount()->currency().code())}});
  }
  pending_deposits_.erase(it);
  settled_deposits_.insert(note_id);
  log("deposit", doc.id(), &*doc.amount(), false, doc.str("bank"), now_s);
  log_.back().amount_minor = 0;  // the value left when the note was signed
  dirty_ = true;
  return json_bytes(Json{{"settled", note_id}});
}

Result<Bytes> Applet::sign_query(const Command& c, std::int64_t now_s) {
  if (auto s = require_user(); !s) return std::unexpected(s.error());
  auto j = json_data(c);
  if (!j) return std::unexpected(j.error());
  auto payload = take_fields(*j, {"account", "bank"});
  if (!payload) return std::unexpected(payload.error());
  (*payload)["type"] = "account.query";
  (*payload)["exp"] = now_s + 300;
  auto jws = sign_unsequenced(*payload, "q", now_s);
  if (!jws) return std::unexpected(jws.error());
  return json_bytes(Json{{"query", *jws}});
}

// ---- Persistence

Json Applet::state_json() const {
  auto b64 = [](ByteView b) { return b64url_encode(b); };
  Json chain = Json::array();
  for (const auto& c : chain_) chain.push_back(c.pem());
  Json attest_chain = Json::array();
  for (const auto& c : attest_chain_) attest_chain.push_back(c.pem());
  Json balances = Json::object();
  for (const auto& [k, v] : balances_) balances[k] = v;
  Json log = Json::array();
  for (const auto& e : log_)
    log.push_back(Json{{"seq", e.seq}, {"op", e.op}, {"doc_id", e.doc_id}, {"currency", e.currency},
                       {"amount_minor", e.amount_minor}, {"counterparty", e.counterparty}, {"at", e.at}});
  Json s{{"format", "zf-se-state-1"},
         {"se_id", se_id_},
         {"user_id", user_id_},
         {"lifecycle", lifecycle_name(lifecycle_)},
         {"attest_key", b64(attest_key_->export_pkcs8().view())},
         {"attest_chain", attest_chain},
         {"key", key_ ? b64(key_->export_pkcs8().view()) : ""},
         {"chain", chain},
         {"root", root_ ? root_->pem() : ""},
         {"crl", crl_ ? crl_->pem() : ""},
         {"pin_salt", b64(pin_salt_)},
         {"pin_hash", b64(pin_hash_)},
         {"puk_hash", b64(puk_hash_)},
         {"bio_hash", b64(bio_hash_)},
         {"pin_tries_left", pin_tries_left_},
         {"pin_tries_max", pin_tries_max_},
         {"puk_tries_left", puk_tries_left_},
         {"pairing_key", b64(pairing_key_.view())},
         {"balances", balances},
         {"max_balance_minor", max_balance_minor_},
         {"max_payment_minor", max_payment_minor_},
         {"note_ttl_s", note_ttl_s_},
         {"seq", seq_},
         {"pending_topups", pending_topups_},
         {"applied_topups", applied_topups_},
         {"received_notes", received_notes_},
         {"pending_deposits", pending_deposits_},
         {"settled_deposits", settled_deposits_},
         {"outstanding_notes", outstanding_notes_},
         {"sent_minor", sent_minor_},
         {"received_minor", received_minor_},
         {"reclaimed_minor", reclaimed_minor_},
         {"log", log},
         {"issued", issued_}};
  return s;
}

Result<std::unique_ptr<Applet>> Applet::from_state(const Json& s) {
  try {
    if (s.at("format") != "zf-se-state-1") return fail(Errc::unknown_version, "unknown SE state format");
    std::unique_ptr<Applet> a(new Applet());
    auto bytes = [&](const char* f) -> Bytes {
      auto b = b64url_decode(s.at(f).get<std::string>());
      return b ? *b : Bytes{};
    };
    a->se_id_ = s.at("se_id");
    a->user_id_ = s.at("user_id");
    std::string lc = s.at("lifecycle");
    a->lifecycle_ = lc == "active" ? Lifecycle::active : lc == "personalized" ? Lifecycle::personalized : Lifecycle::factory;
    auto ak = PrivateKey::from_pkcs8_der(bytes("attest_key"));
    if (!ak) return std::unexpected(ak.error());
    a->attest_key_ = std::make_unique<PrivateKey>(std::move(*ak));
    for (const auto& pem : s.at("attest_chain")) {
      auto c = Certificate::from_pem(pem.get<std::string>());
      if (!c) return std::unexpected(c.error());
      a->attest_chain_.push_back(std::move(*c));
    }
    if (!s.at("key").get<std::string>().empty()) {
      auto k = PrivateKey::from_pkcs8_der(bytes("key"));
      if (!k) return std::unexpected(k.error());
      a->key_ = std::make_unique<PrivateKey>(std::move(*k));
    }
    for (const auto& pem : s.at("chain")) {
      auto c = Certificate::from_pem(pem.get<std::string>());
      if (!c) return std::unexpected(c.error());
      a->chain_.push_back(std::move(*c));
    }
    if (!s.at("root").get<std::string>().empty()) {
      auto r = Certificate::from_pem(s.at("root").get<std::string>());
      if (!r) return std::unexpected(r.error());
      a->root_ = std::move(*r);
    }
    if (!s.at("crl").get<std::string>().empty()) {
      auto c = Crl::from_pem(s.at("crl").get<std::string>());
      if (!c) return std::unexpected(c.error());
      a->crl_ = std::move(*c);
    }
    a->pin_salt_ = bytes("pin_salt");
    a->pin_hash_ = bytes("pin_hash");
    a->puk_hash_ = bytes("puk_hash");
    a->bio_hash_ = bytes("bio_hash");
    a->pin_tries_left_ = s.at("pin_tries_left");
    a->pin_tries_max_ = s.at("pin_tries_max");
    a->puk_tries_left_ = s.at("puk_tries_left");
    // States from before pairing existed have no key: such an SE pairs only with its PUK.
    if (s.contains("pairing_key")) {
      Bytes k = bytes("pairing_key");
      if (!k.empty() && k.size() != sc::kKeyBytes) return fail(Errc::bad_field, "malformed pairing key in SE state");
      a->pairing_key_ = SecretBytes(std::move(k));
    }
    for (const auto& [k, v] : s.at("balances").items()) a->balances_[k] = v.get<std::int64_t>();
    a->max_balance_minor_ = s.at("max_balance_minor");
    a->max_payment_minor_ = s.at("max_payment_minor");
    a->seq_ = s.at("seq");
    a->pending_topups_ = s.at("pending_topups").get<std::map<std::string, Json>>();
    a->applied_topups_ = s.at("applied_topups").get<std::set<std::string>>();
    a->received_notes_ = s.at("received_notes").get<std::set<std::string>>();
    a->pending_deposits_ = s.at("pending_deposits").get<std::map<std::string, Json>>();
    a->settled_deposits_ = s.at("settled_deposits").get<std::set<std::string>>();
    for (const auto& e : s.at("log"))
      a->log_.push_back(LogEntry{e.at("seq"), e.at("op"), e.at("doc_id"), e.at("currency"), e.at("amount_minor"),
                                 e.at("counterparty"), e.at("at")});
    a->issued_ = s.at("issued").get<std::deque<std::string>>();
    a->sent_minor_ = s.at("sent_minor").get<std::map<std::string, std::int64_t>>();
    a->received_minor_ = s.at("received_minor").get<std::map<std::string, std::int64_t>>();
    // States from before notes expired have none of these: their notes cannot be reclaimed.
    a->note_ttl_s_ = s.value("note_ttl_s", kDefaultNoteTtlS);
    if (s.contains("outstanding_notes"))
      a->outstanding_notes_ = s.at("outstanding_notes").get<std::map<std::string, Json>>();
    if (s.contains("reclaimed_minor"))
      a->reclaimed_minor_ = s.at("reclaimed_minor").get<std::map<std::string, std::int64_t>>();
    return a;
  } catch (const Json::exception& e) {
    return fail(Errc::bad_field, std::string("malformed SE state: ") + e.what());
  }
}

}  // namespace zf::se
