// Fuzz target: command APDUs (ISO 7816-4) and the SE applet behind them (DESIGN.md §5).
// The input goes to se::parse_command; a command that parses is sealed by the harness,
// playing the paired terminal, and run by one applet that is paired, personalized,
// active, holds e-cash and has a verified user in an open secure session, so every
// instruction is reached past the channel, PIN and lifecycle checks. An input whose
// CLA already carries the secure-messaging bit (04) goes to the SE as it is, as a
// forged secure-channel frame: it must be refused without any change. Traps when, for any input:
// - the codec does not round-trip (parse(encode(c)) != c) or a parse failure is
//   answered with 9000 by process_raw;
// - dirty() is false but the persistent state changed, or a refused command asked to
//   persist state without moving a PIN/PUK retry counter ("untrusted input changes
//   nothing", STYLE.md item 6);
// - the counter goes back, a balance leaves 0..max, or a response carries either of
//   the applet's private keys.
// The applet is restored to the same starting state after any input that changed it,
// so every input runs against the same state and a crash replays on its own.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/document.h"
#include "core/x509.h"
#include "fuzz_fixtures.h"
#include "se/applet.h"
#include "se/secure_channel.h"

namespace {

using zf::Bytes;
using zf::ByteView;
using zf::Json;

constexpr std::int64_t kNow = zf::fuzz::kFuzzNow;
constexpr std::string_view kSeId = "se-apdu-fuzz";
constexpr std::string_view kUser = "fuzzer";
constexpr std::string_view kPin = "123456";
constexpr std::string_view kBank = "bank-fuzz";
constexpr std::int64_t kMaxBalance = 100'000'000;

// A broken fixture is a bug in this file, not an input: stop at once.
template <class T>
T need(zf::Result<T> r, const char* what) {
  if (!r) {
    std::fprintf(stderr, "apdu_fuzz setup: %s: %s\n", what, r.error().message().c_str());
    std::abort();
  }
  return std::move(*r);
}

namespace sc = zf::se::sc;

zf::se::Response clear(zf::se::Applet& a, std::uint8_t ins, const Json& data) {
  std::string d = zf::dump_json(data);
  zf::se::Command c{0x80, ins, 0x00, 0x00, Bytes(d.begin(), d.end()), 65536u};
  return a.process(c, kNow);
}

Json clear_json(zf::se::Applet& a, std::uint8_t ins, const Json& data) {
  zf::se::Response r = clear(a, ins, data);
  if (!r.ok()) {
    std::fprintf(stderr, "apdu_fuzz setup: INS %02X: SW %04X %s\n", ins, r.sw, zf::to_string(r.data).c_str());
    std::abort();
  }
  if (r.data.empty()) return Json::object();
  return need(zf::parse_json_strict(zf::to_string(r.data)), "answer");
}

Bytes b64(const Json& j, const char* f) { return need(zf::b64url_decode(j.at(f).get<std::string>()), f); }

// The paired terminal's side: the pairing key and the open session.
zf::SecretBytes g_pairing_key;
std::optional<sc::Session> g_session;

// Pairs a factory applet as the terminal does (docs/se-apdu.md "Pairing").
void pair(zf::se::Applet& a) {
  auto eph = need(zf::PrivateKey::generate(), "ephemeral key");
  Bytes t_point = need(sc::encode_point(eph.public_key()), "point");
  Json begun = clear_json(a, zf::se::ins::kPairBegin, Json{{"pk", zf::b64url_encode(t_point)}});
  Bytes t_nonce = zf::random_bytes(sc::kNonceBytes);
  Json nonced = clear_json(a, zf::se::ins::kPairNonce, Json{{"nonce", zf::b64url_encode(t_nonce)}});
  Bytes se_point = b64(begun, "pk");
  auto z = need(zf::ecdh(eph, need(sc::decode_point(se_point), "SE point")), "ECDH");
  auto secrets = need(sc::derive_pairing(z.view(), t_point, se_point, t_nonce, b64(nonced, "nonce"), kSeId), "derive");
  if (secrets.code != a.display()) std::abort();
  Bytes mac = need(sc::terminal_confirmation(secrets), "mac");
  clear_json(a, zf::se::ins::kPairConfirm, Json{{"mac", zf::b64url_encode(mac)}});
  g_pairing_key = secrets.pairing_key;
}

// Opens a secure session on the applet (AUTH BEGIN, AUTH FINISH).
void authenticate(zf::se::Applet& a) {
  Bytes host = zf::random_bytes(sc::kChallengeBytes);
  Json begun = clear_json(a, zf::se::ins::kAuthBegin, Json{{"challenge", zf::b64url_encode(host)}});
  auto s = need(sc::Session::derive(g_pairing_key.view(), host, b64(begun, "challenge"), kSeId,
                                    sc::Session::Side::terminal),
                "session");
  clear_json(a, zf::se::ins::kAuthFinish, Json{{"cryptogram", zf::b64url_encode(s.host_cryptogram())}});
  g_session = std::move(s);
}

// Runs one command through the secure channel; the SE's own answer, or nullopt
// when the channel itself refused or ended (the plain answer is in `plain`).
std::optional<zf::se::Response> secured(zf::se::Applet& a, const zf::se::Command& c, zf::se::Response* plain = nullptr) {
  if (!g_session) return std::nullopt;
  auto frame = g_session->wrap_command(c);
  if (!frame) std::abort();
  Bytes out = a.process_raw(*frame, kNow);
  auto inner = g_session->unwrap_response(out);
  if (inner) return *inner;
  g_session.reset();
  if (plain) {
    auto p = zf::se::parse_response(out);
    if (p) *plain = *p;
  }
  return std::nullopt;
}

zf::se::Response run(zf::se::Applet& a, std::uint8_t cla, std::uint8_t ins, std::uint8_t p2,
                     const std::string& data) {
  zf::se::Command c{cla, ins, 0x00, p2, Bytes(data.begin(), data.end()), 65536u};
  auto r = secured(a, c);
  if (!r) {
    std::fprintf(stderr, "apdu_fuzz setup: INS %02X: the secure channel refused\n", ins);
    std::abort();
  }
  return *r;
}

Json ok_json(const zf::se::Response& r, const char* what) {
  if (!r.ok()) {
    std::fprintf(stderr, "apdu_fuzz setup: %s: SW %04X %s\n", what, r.sw,
                 zf::to_string(r.data).c_str());
    std::abort();
  }
  if (r.data.empty()) return Json::object();
  return need(zf::parse_json_strict(zf::to_string(r.data), {1 << 20, 16}), what);
}

zf::IssueParams leaf_params(std::string_view cn, std::string_view user, zf::Role role) {
  zf::IssueParams p;
  p.common_name = std::string(cn);
  p.user_id = std::string(user);
  p.roles = {role};
  p.not_before = zf::fuzz::kNotBefore;
  p.not_after = zf::fuzz::kNotAfter;
  p.serial = zf::new_serial();
  return p;
}

// The starting state every input runs against, and what must never leave the applet.
struct Baseline {
  Json state;
  std::vector<Bytes> secrets;  // private keys as PKCS#8 DER, base64url text and raw scalar
};

Baseline make_baseline() {
  const zf::Certificate& root = zf::fuzz::root_cert();
  const zf::PrivateKey& root_key = zf::fuzz::root_key();
  // The attestation identity: the applet signs with it at personalization, nobody verifies it here.
  auto attest_key = need(zf::PrivateKey::generate(), "attestation key");
  auto attest_cert = need(zf::issue_certificate(root, root_key, attest_key.public_key(),
                                                leaf_params(kSeId, "", zf::Role::se_attestation)),
                          "attestation certificate");
  zf::se::Applet a(std::string(kSeId), std::move(attest_key), {attest_cert, root});
  namespace ins = zf::se::ins;
  pair(a);
  authenticate(a);

  // Personalize, certify the key from the CSR, install, CRL, PIN.
  Json params{{"user_id", kUser},
              {"pin", kPin},
              {"puk", "12345678"},
              {"root", root.pem()},
              {"max_balance_minor", kMaxBalance},
              {"max_payment_minor", 1'000'000}};
  Json csr = ok_json(run(a, 0x80, ins::kPersonalize, 0, zf::dump_json(params)), "personalize");
  auto parsed = need(zf::parse_csr_pem(csr.at("csr").get<std::string>()), "CSR");
  auto cert = need(zf::issue_certificate(root, root_key, parsed.key,
                                         leaf_params(kSeId, kUser, zf::Role::secure_element)),
                   "SE certificate");
  ok_json(run(a, 0x80, ins::kInstallCert, 0, zf::dump_json(Json{{"certificate", cert.pem()}})),
          "install");
  zf::CrlParams cp;
  cp.this_update = kNow - 60;
  cp.next_update = kNow + 86400;
  cp.number = 1;
  auto crl = need(zf::make_crl(root, root_key, cp), "CRL");
  ok_json(run(a, 0x80, ins::kUpdateCrl, 0, zf::dump_json(Json{{"crl", crl.pem()}})), "CRL");
  ok_json(run(a, 0x00, ins::kVerify, 0x80, std::string(kPin)), "verify");

  // E-cash through a real top-up, then one top-up and one deposit left pending, so the
  // receipt commands have something to look up.
  auto bank_key = need(zf::PrivateKey::generate(), "bank key");
  auto bank_cert = need(zf::issue_certificate(root, root_key, bank_key.public_key(),
                                              leaf_params(kBank, "", zf::Role::custody)),
                        "bank certificate");
  Json topup{{"amount", 50'000}, {"currency", "CNY"}, {"bank", kBank}, {"account", "acct-fuzz"}};
  Json req = ok_json(run(a, 0x80, ins::kTopupRequest, 0, zf::dump_json(topup)), "topup");
  Json rp{{"type", "topup.receipt"},
          {"v", 1},
          {"id", "bank-fuzz:1"},
          {"issuer", kBank},
          {"iat", kNow},
          {"request_id", req.at("id")},
          {"se", kSeId},
          {"amount", 50'000},
          {"currency", "CNY"},
          {"account", "acct-fuzz"},
          {"bank", kBank}};
  zf::KeySigner bank_signer(bank_key);
  std::string receipt =
      need(zf::sign_document(rp, zf::JwsSigner{&bank_signer, {bank_cert}}), "receipt");
  ok_json(run(a, 0x80, ins::kTopupReceipt, 0, zf::dump_json(Json{{"receipt", receipt}})),
          "receipt");
  ok_json(run(a, 0x80, ins::kTopupRequest, 0, zf::dump_json(topup)), "pending topup");
  Json deposit{{"amount", 700}, {"currency", "CNY"}, {"bank", kBank}, {"account", "acct-fuzz"}};
  ok_json(run(a, 0x80, ins::kDepositNote, 0, zf::dump_json(deposit)), "pending deposit");

  Baseline b;
  b.state = a.state_json();
  for (const char* field : {"key", "attest_key"}) {
    std::string text = b.state.at(field).get<std::string>();
    Bytes der = need(zf::b64url_decode(text), "key");
    // ECPrivateKey { version 1, privateKey OCTET STRING (32) }: the raw scalar.
    const Bytes marker{0x02, 0x01, 0x01, 0x04, 0x20};
    auto at = std::search(der.begin(), der.end(), marker.begin(), marker.end());
    if (at == der.end() || der.end() - at < 37) std::abort();
    b.secrets.emplace_back(at + 5, at + 37);
    b.secrets.push_back(der);
    b.secrets.emplace_back(text.begin(), text.end());
  }
  // The pairing key never leaves either (only the sealed state holds it).
  b.secrets.push_back(Bytes(g_pairing_key.data(), g_pairing_key.data() + g_pairing_key.size()));
  std::string pk = zf::b64url_encode(g_pairing_key.view());
  b.secrets.emplace_back(pk.begin(), pk.end());
  return b;
}

std::unique_ptr<zf::se::Applet> restore(const Baseline& b) {
  auto a = need(zf::se::Applet::from_state(b.state), "restore");
  // A new session with the user verified, as when the baseline was made.
  authenticate(*a);
  zf::se::Response r = run(*a, 0x00, zf::se::ins::kVerify, 0x80, std::string(kPin));
  if (!r.ok() || a->dirty()) std::abort();
  return a;
}

bool leaks(const Baseline& b, const Bytes& data) {
  for (const Bytes& s : b.secrets)
    if (std::search(data.begin(), data.end(), s.begin(), s.end()) != data.end()) return true;
  return false;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const Baseline base = make_baseline();
  static std::unique_ptr<zf::se::Applet> applet = restore(base);
  ByteView raw(data, size);

  auto cmd = zf::se::parse_command(raw);
  if (!cmd) {
    Bytes out = applet->process_raw(raw, kNow);
    auto res = zf::se::parse_response(out);
    if (!res || res->ok() || applet->dirty() || leaks(base, res->data)) __builtin_trap();
    return 0;
  }
  auto back = zf::se::parse_command(zf::se::encode_command(*cmd));
  if (!back || back->cla != cmd->cla || back->ins != cmd->ins || back->p1 != cmd->p1 ||
      back->p2 != cmd->p2 || back->data != cmd->data || back->le != cmd->le)
    __builtin_trap();

  std::int64_t seq_before = applet->seq();
  if (cmd->cla & sc::kSmBit) {
    // A forged secure-channel frame: it cannot open, so it changes nothing and ends the session.
    Bytes out = applet->process_raw(raw, kNow);
    auto res = zf::se::parse_response(out);
    bool ours = cmd->cla == 0x04 || cmd->cla == 0x84;  // any other class is refused before the channel
    if (!res || res->ok() || applet->dirty() || (ours && applet->secure_session()) || leaks(base, res->data))
      __builtin_trap();
    if (applet->state_json() != base.state || applet->seq() != seq_before) __builtin_trap();
    g_session.reset();
  } else {
    zf::se::Response plain;
    auto inner = secured(*applet, *cmd, &plain);
    // Pairing or authentication inside the channel ends the session; the SE then answers in the clear.
    zf::se::Response res = inner ? *inner : plain;
    bool dirty = applet->dirty();
    bool pin_counter = (cmd->cla == 0x00 && (cmd->ins == zf::se::ins::kVerify || cmd->ins == zf::se::ins::kResetRetry)) ||
                       (cmd->cla == 0x80 && cmd->ins == zf::se::ins::kPairConfirm);
    if (!res.ok() && dirty && !pin_counter) __builtin_trap();
    if (!dirty && applet->state_json() != base.state) __builtin_trap();
    if (applet->seq() < seq_before || (!res.ok() && applet->seq() != seq_before)) __builtin_trap();
    std::int64_t cny = applet->balance("CNY");
    if (cny < 0 || cny > kMaxBalance) __builtin_trap();
    if (leaks(base, res.data)) __builtin_trap();
    if (dirty) {
      applet = restore(base);
      return 0;
    }
  }
  // SELECT, pairing, a failed VERIFY or a refused frame may have ended the
  // session or the verification: start the next input in a verified session.
  applet->reset_session();
  authenticate(*applet);
  if (!run(*applet, 0x00, zf::se::ins::kVerify, 0x80, std::string(kPin)).ok()) __builtin_trap();
  return 0;
}
