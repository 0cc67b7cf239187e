// Pairing with a terminal and mutual authentication.
#include "se/applet.h"
#include "se/applet_internal.h"

namespace zf::se {
using namespace detail;

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
    if (st_.puk_tries_left == 0) return fail(Errc::pin_blocked, "PUK blocked; the issuer must replace the SE");
    if (st_.puk_tries_left <= kPukTriesKeptForUnblock)
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
      sc::derive_pairing(z->view(), pairing_->terminal_point, pairing_->se_point, *t_nonce, pairing_->se_nonce, st_.se_id);
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
    if (!ct_equal(salted_hash(st_.pin_salt, *puk), st_.puk_hash)) {
      --st_.puk_tries_left;
      dirty_ = true;  // the PUK counter must survive a power cut
      if (st_.puk_tries_left == 0) return fail(Errc::pin_blocked, "wrong PUK; now blocked", "puk");
      return fail(Errc::pin_wrong, "wrong PUK; " + std::to_string(st_.puk_tries_left) + " tries left", "puk");
    }
    st_.puk_tries_left = kPukTries;
  } else if (j->contains("puk")) {
    return fail(Errc::unknown_field, "a factory SE has no PUK yet", "puk");
  }
  // The old terminal's key is gone with this: its sessions no longer authenticate.
  st_.pairing_key = run.secrets->pairing_key;
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
  auto session = sc::Session::derive(st_.pairing_key.view(), *host, card, st_.se_id, sc::Session::Side::se);
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

}  // namespace zf::se
