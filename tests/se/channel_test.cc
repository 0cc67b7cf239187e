// The paired link between terminal and SE (DESIGN.md §5, docs/se-apdu.md
// "Pairing and secure messaging"), in-process against the real applet: what an
// unpaired peer may do, mutual authentication, secured frames that were
// tampered with, replayed, reordered or cut, and re-pairing with the PUK. Every
// refusal is checked to leave the persistent state as it was.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "se/secure_channel.h"
#include "se_fixture.h"

namespace zf::test {
namespace {

using se::Applet;
using wallet::SeClient;
namespace sc = se::sc;

class ChannelTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto dev = must(ca::make_device(w.world.mfr_dir, "se-a"), "make_device");
    applet = std::make_unique<Applet>("se-a", std::move(dev.key), std::move(dev.chain));
    owner = std::make_unique<SeClient>(terminal());
    w.activate(*owner, "alice", {}, [this] { return applet->display(); });
    w.topup(*owner, 1000);
  }

  // A terminal on the same link: the transport hands every frame to `hook`
  // first (a man on the link may change it), then to the applet.
  SeClient terminal(std::function<void(Bytes&)> hook = {}) {
    return SeClient([this, hook](ByteView apdu) -> Result<Bytes> {
      Bytes frame(apdu.begin(), apdu.end());
      frames.push_back(frame);
      if (hook) hook(frame);
      return applet->process_raw(frame, w.now);
    });
  }

  se::Response raw(ByteView apdu) { return must(se::parse_response(applet->process_raw(apdu, w.now)), "response"); }
  se::Response raw(const se::Command& c) { return raw(se::encode_command(c)); }
  static std::string code_of(const se::Response& r) {
    auto j = parse_json_strict(to_string(r.data));
    return j && j->is_object() ? j->value("code", "") : "";
  }

  // A terminal-side session opened by hand with `key`, for crafting frames.
  struct Manual {
    sc::Session terminal;
    sc::Session se_twin;  // the SE's keys for the same session, to answer frames the SE never saw
  };
  Manual open_by_hand(ByteView key, bool right_key = true) {
    Bytes host = random_bytes(sc::kChallengeBytes);
    se::Command begin{0x80, se::ins::kAuthBegin, 0, 0,
                      bytes_of(dump_json(Json{{"challenge", b64url_encode(host)}})), 65536u};
    se::Response r = raw(begin);
    EXPECT_TRUE(r.ok()) << code_of(r);
    Json j = must(parse_json_strict(to_string(r.data)));
    Bytes card = must(b64url_decode(j.at("challenge").get<std::string>()));
    auto t = must(sc::Session::derive(key, host, card, "se-a", sc::Session::Side::terminal));
    auto twin = must(sc::Session::derive(key, host, card, "se-a", sc::Session::Side::se));
    std::string fin = dump_json(Json{{"cryptogram", b64url_encode(t.host_cryptogram())}});
    se::Response f = raw(se::Command{0x80, se::ins::kAuthFinish, 0, 0, bytes_of(fin), 65536u});
    EXPECT_EQ(f.sw, right_key ? 0x9000 : 0x6300) << code_of(f);
    return Manual{std::move(t), std::move(twin)};
  }

  static se::Command info_cmd() { return se::Command{0x80, se::ins::kGetData, 0, se::tag::kInfo, {}, 65536u}; }
  se::Command pay_cmd(std::int64_t amount) {
    std::string d = dump_json(w.pay_to("se-b", amount));
    return se::Command{0x80, se::ins::kPaymentNote, 0, 0, Bytes(d.begin(), d.end()), 65536u};
  }

  // Checks that persistent state and the answers of a fresh paired session are as before.
  void expect_unchanged(const Json& state_before) {
    EXPECT_FALSE(applet->dirty()) << "a refused frame asked to persist state";
    EXPECT_EQ(applet->state_json(), state_before) << "a refused frame changed the SE";
  }

  SeWorld w;
  std::unique_ptr<Applet> applet;
  std::unique_ptr<SeClient> owner;
  std::vector<Bytes> frames;
};

TEST_F(ChannelTest, AnUnpairedPeerGetsOnlySelectPairingAndPublicData) {
  SeClient stranger = terminal();
  Json before = applet->state_json();
  Json sel = must(stranger.select());
  EXPECT_EQ(sel.at("se_id"), "se-a");
  EXPECT_EQ(sel.at("paired"), true);
  Json status = must(stranger.status());
  EXPECT_EQ(status, (Json{{"se_id", "se-a"}, {"state", "active"}, {"paired", true}}));
  EXPECT_THAT(stranger.certificate_pem(), IsOk());

  // It cannot use up the PIN's or the PUK's tries, however often it tries.
  for (int i = 0; i < 5; ++i) {
    EXPECT_THAT(stranger.verify_pin("000000"), FailsWith(Errc::secure_channel_required));
    EXPECT_THAT(stranger.verify_pin(kPin), FailsWith(Errc::secure_channel_required));
  }
  for (int i = 0; i < 12; ++i)
    EXPECT_THAT(stranger.unblock("87654321", "4321"), FailsWith(Errc::secure_channel_required));
  // Nor sign, move value or read the SE's private data.
  EXPECT_THAT(stranger.payment_note(w.pay_to("se-b", 1)),
              FailsWith(Errc::secure_channel_required));
  EXPECT_THAT(stranger.topup_request({{"amount", 1}, {"currency", "CNY"}, {"bank", kBank}, {"account", kAccount}}),
              FailsWith(Errc::secure_channel_required));
  EXPECT_THAT(stranger.sign_query({{"account", kAccount}, {"bank", kBank}}), FailsWith(Errc::secure_channel_required));
  EXPECT_THAT(stranger.info(), FailsWith(Errc::secure_channel_required));
  EXPECT_THAT(stranger.log(), FailsWith(Errc::secure_channel_required));
  EXPECT_THAT(stranger.issued(), FailsWith(Errc::secure_channel_required));
  EXPECT_THAT(stranger.update_crl(w.crl_pem()), FailsWith(Errc::secure_channel_required));
  EXPECT_THAT(stranger.authenticate(), FailsWith(Errc::not_paired));
  // The raw status word is 6982 and the body names the reason.
  se::Response r = raw(se::Command{0x00, se::ins::kVerify, 0x00, 0x80, bytes_of("000000"), std::nullopt});
  EXPECT_EQ(r.sw, 0x6982);
  EXPECT_EQ(code_of(r), "secure_channel_required");
  expect_unchanged(before);

  // The owner's terminal still has every try.
  Json info = must(owner->info());
  EXPECT_EQ(info.at("pin_tries_left"), 3);
  EXPECT_EQ(applet->state_json().at("puk_tries_left"), 10);
  EXPECT_THAT(owner->verify_pin(kPin), IsOk());
  EXPECT_THAT(owner->payment_note(w.pay_to("se-b", 10)), IsOk());
}

TEST_F(ChannelTest, TheLogAndIssuedDocumentsNeedTheVerifiedUser) {
  must(owner->select());  // a new session: the channel is there, the user is not
  EXPECT_THAT(owner->info(), IsOk());
  Json before = applet->state_json();
  EXPECT_THAT(owner->log(), FailsWith(Errc::not_verified));
  EXPECT_THAT(owner->issued(), FailsWith(Errc::not_verified));
  expect_unchanged(before);
  must(owner->verify_pin(kPin));
  EXPECT_EQ(must(owner->log()).size(), 2u);  // the top-up request and its credit
  EXPECT_EQ(must(owner->issued()).size(), 1u);
}

TEST_F(ChannelTest, AWrongPairingKeyFailsMutualAuthenticationOnBothSides) {
  Json before = applet->state_json();
  // The terminal side: the SE's cryptogram does not match, so it sends nothing secret.
  SeClient impostor = terminal();
  impostor.set_pairing_key(SecretBytes(random_bytes(32)));
  EXPECT_THAT(impostor.info(), FailsWith(Errc::auth_failed));
  EXPECT_THAT(impostor.verify_pin(kPin), FailsWith(Errc::auth_failed));
  EXPECT_FALSE(impostor.secure());
  // The SE side: a host cryptogram from the wrong key is refused (6300) and no session opens.
  Bytes wrong = random_bytes(32);
  Manual m = open_by_hand(wrong, /*right_key=*/false);
  EXPECT_FALSE(applet->secure_session());
  auto frame = must(m.terminal.wrap_command(info_cmd()));
  se::Response r = raw(frame);
  EXPECT_EQ(r.sw, 0x6982);
  EXPECT_EQ(code_of(r), "secure_channel_required");
  std::string bad = dump_json(Json{{"cryptogram", b64url_encode(random_bytes(32))}});
  std::string hello = dump_json(Json{{"challenge", b64url_encode(random_bytes(16))}});
  EXPECT_TRUE(raw(se::Command{0x80, se::ins::kAuthBegin, 0, 0, bytes_of(hello), 65536u}).ok());
  r = raw(se::Command{0x80, se::ins::kAuthFinish, 0, 0, bytes_of(bad), 65536u});
  EXPECT_EQ(r.sw, 0x6300);
  EXPECT_EQ(code_of(r), "auth_failed");
  EXPECT_FALSE(applet->secure_session());
  expect_unchanged(before);
  EXPECT_THAT(owner->info(), IsOk());
}

TEST_F(ChannelTest, TamperedReplayedReorderedAndCutFramesAreRefusedAndEndTheSession) {
  const SecretBytes& key = owner->pairing_key();
  Json before = applet->state_json();
  auto refused = [&](ByteView frame, const char* what, bool session_open = true) {
    SCOPED_TRACE(what);
    se::Response r = raw(frame);
    // In a session: the frame does not open. After it: there is no session to open it in.
    EXPECT_EQ(r.sw, session_open ? 0x6988 : 0x6982);
    EXPECT_EQ(code_of(r), session_open ? "secure_messaging_failed" : "secure_channel_required");
    EXPECT_FALSE(applet->secure_session()) << "the session must end";
    expect_unchanged(before);
  };
  must(owner->verify_pin(kPin));
  before = applet->state_json();

  // A good frame opens, and its answer opens at the terminal.
  Manual m = open_by_hand(key.view());
  Bytes good = must(m.terminal.wrap_command(info_cmd()));
  se::Response ok = must(m.terminal.unwrap_response(applet->process_raw(good, w.now)));
  EXPECT_EQ(ok.sw, 0x9000);
  EXPECT_EQ(must(parse_json_strict(to_string(ok.data))).at("se_id"), "se-a");
  // Replayed: the same frame again.
  refused(good, "replayed");
  // After the session ended even a correct next frame is refused, until the terminal authenticates again.
  Bytes next = must(m.terminal.wrap_command(info_cmd()));
  refused(next, "after the end", false);

  // Tampered: one bit of the ciphertext, of the tag, or of the header (the AAD).
  for (std::size_t pos : {std::size_t{7}, std::size_t{0}, std::size_t{1}}) {
    Manual t = open_by_hand(key.view());
    Bytes frame = must(t.terminal.wrap_command(pay_cmd(5)));
    if (pos == 7) frame[frame.size() - 3] ^= 0x01;  // inside the tag (before the 2-byte Le)
    else if (pos == 0) frame[8] ^= 0x80;             // ciphertext
    else frame[3] ^= 0x01;                           // P2
    refused(frame, "tampered");
  }
  // Reordered: the terminal's second frame arrives before its first.
  {
    Manual t = open_by_hand(key.view());
    Bytes first = must(t.terminal.wrap_command(info_cmd()));
    // The SE's twin answers the first frame the real SE never sees.
    auto inner = must(t.se_twin.unwrap_command(must(se::parse_command(first))));
    Bytes answer = se::encode_response(t.se_twin.wrap_response(se::Response{{}, 0x9000}));
    must(t.terminal.unwrap_response(answer));
    (void)inner;
    Bytes second = must(t.terminal.wrap_command(pay_cmd(5)));
    refused(second, "reordered");
    refused(first, "first after the second", false);
  }
  // Cut: the last byte of the sealed data dropped, or only a tag's worth left.
  {
    Manual t = open_by_hand(key.view());
    Bytes frame = must(t.terminal.wrap_command(pay_cmd(5)));
    se::Command c = must(se::parse_command(frame));
    c.data.pop_back();
    refused(se::encode_command(c), "cut by a byte");
    Manual u = open_by_hand(key.view());
    c = must(se::parse_command(must(u.terminal.wrap_command(pay_cmd(5)))));
    c.data.resize(10);
    refused(se::encode_command(c), "shorter than a tag");
  }
  // A response frame is never taken as a command (other key, other IV).
  {
    Manual t = open_by_hand(key.view());
    Bytes frame = must(t.terminal.wrap_command(info_cmd()));
    se::Response reply = must(se::parse_response(applet->process_raw(frame, w.now)));
    se::Command reflected{0x84, se::ins::kGetData, 0, se::tag::kInfo, reply.data, 65536u};
    refused(se::encode_command(reflected), "reflected");
  }
  // The owner's terminal notices nothing but a new session.
  EXPECT_THAT(owner->info(), IsOk());
}

TEST_F(ChannelTest, AManOnTheLinkCannotChangeOrReplayTheTerminalsCommands) {
  // Flips a bit in the third secured frame of the session: the payment it carried is not made.
  int secured = 0;
  SeClient t = terminal([&](Bytes& frame) {
    if ((frame[0] & sc::kSmBit) && ++secured == 3) frame[9] ^= 0x01;  // inside the sealed data
  });
  t.set_pairing_key(owner->pairing_key());
  must(t.verify_pin(kPin));                                                  // secured frame 1
  must(t.info());                                                            // 2
  Json before = applet->state_json();
  EXPECT_THAT(t.payment_note(w.pay_to("se-b", 100)),
              FailsWith(Errc::secure_messaging_failed));                    // 3, tampered
  expect_unchanged(before);
  EXPECT_FALSE(t.secure());
  // Replaying a recorded frame of an earlier session (the VERIFY) after a new authentication.
  Bytes verify_frame;
  for (const Bytes& f : frames)
    if ((f[0] & sc::kSmBit) && verify_frame.empty()) verify_frame = f;
  ASSERT_FALSE(verify_frame.empty());
  must(t.info());  // authenticates again
  before = applet->state_json();
  se::Response r = raw(verify_frame);
  EXPECT_EQ(r.sw, 0x6988);
  expect_unchanged(before);
  // The terminal authenticates once more and carries on: the user must verify again.
  EXPECT_THAT(t.payment_note(w.pay_to("se-b", 100)),
              FailsWith(Errc::not_verified));
  must(t.verify_pin(kPin));
  EXPECT_THAT(t.payment_note(w.pay_to("se-b", 100)), IsOk());
  EXPECT_EQ(applet->balance("CNY"), 900);
}

TEST_F(ChannelTest, ThePairingCodeIsShownOnlyWhileAPairingWaitsAndMustMatch) {
  SeClient other = terminal();
  EXPECT_EQ(applet->display(), "");
  std::string seen_by_terminal, shown_by_se;
  Json before = applet->state_json();
  // The person sees different codes (or says no): the terminal abandons, nothing is paired.
  auto r = other.pair(kPuk, [&](const std::string& code) {
    seen_by_terminal = code;
    shown_by_se = applet->display();
    return false;
  });
  EXPECT_THAT(r, FailsWith(Errc::auth_failed));
  EXPECT_EQ(seen_by_terminal.size(), 6u);
  EXPECT_EQ(seen_by_terminal, shown_by_se);  // an honest link: both show the same code
  EXPECT_EQ(applet->state_json(), before);
  EXPECT_THAT(owner->info(), IsOk());
  EXPECT_EQ(applet->display(), "");  // the SE's next session cleared the screen

  // A confirmation that does not come from the same key agreement is refused by the SE.
  std::string pk = dump_json(Json{{"pk", b64url_encode(must(sc::encode_point(must(PrivateKey::generate()).public_key())))}});
  ASSERT_TRUE(raw(se::Command{0x80, se::ins::kPairBegin, 0, 0, bytes_of(pk), 65536u}).ok());
  std::string nonce = dump_json(Json{{"nonce", b64url_encode(random_bytes(16))}});
  ASSERT_TRUE(raw(se::Command{0x80, se::ins::kPairNonce, 0, 0, bytes_of(nonce), 65536u}).ok());
  EXPECT_EQ(applet->display().size(), 6u);
  std::string mac = dump_json(Json{{"mac", b64url_encode(random_bytes(32))}, {"puk", b64url_encode(random_bytes(24))}});
  se::Response c = raw(se::Command{0x80, se::ins::kPairConfirm, 0, 0, bytes_of(mac), 65536u});
  EXPECT_EQ(c.sw, 0x6300);
  EXPECT_EQ(code_of(c), "auth_failed");
  EXPECT_EQ(applet->display(), "");
  expect_unchanged(before);  // and no PUK try was used
  // PAIR CONFIRM without a run first is out of order.
  EXPECT_EQ(raw(se::Command{0x80, se::ins::kPairConfirm, 0, 0, bytes_of(mac), 65536u}).sw, 0x6985);
}

TEST_F(ChannelTest, RePairingNeedsThePukAndRetiresTheOldTerminal) {
  SeClient phone2 = terminal();
  auto confirm = [this](const std::string& code) { return code == applet->display(); };
  // Without the PUK the terminal does not even send the confirmation.
  EXPECT_THAT(phone2.pair("", confirm), FailsWith(Errc::missing_field));
  // A wrong PUK is counted like RESET RETRY COUNTER's, and the old pairing stays.
  Json before = applet->state_json();
  auto wrong = phone2.pair("87654321", confirm);
  EXPECT_THAT(wrong, FailsWith(Errc::pin_wrong));
  EXPECT_NE(wrong.error().detail.find("9 tries left"), std::string::npos) << wrong.error().detail;
  EXPECT_TRUE(applet->dirty());  // the PUK counter is saved before the answer
  Json after = applet->state_json();
  EXPECT_EQ(after.at("puk_tries_left"), 9);
  after["puk_tries_left"] = before.at("puk_tries_left");
  EXPECT_EQ(after, before);
  EXPECT_FALSE(phone2.has_pairing_key());
  EXPECT_THAT(owner->info(), IsOk());

  // With the PUK: the new terminal is paired, the PUK counter is whole again, and
  // the old terminal's key no longer authenticates.
  SecretBytes k2 = must(phone2.pair(kPuk, confirm));
  EXPECT_EQ(applet->state_json().at("puk_tries_left"), 10);
  EXPECT_NE(applet->state_json().at("pairing_key"), before.at("pairing_key"));
  must(phone2.verify_pin(kPin));
  EXPECT_EQ(must(phone2.info()).at("balances").at("CNY"), 1000);
  must(owner->select());  // the old phone comes back on a new link
  EXPECT_THAT(owner->info(), FailsWith(Errc::auth_failed));
  EXPECT_THAT(owner->verify_pin(kPin), FailsWith(Errc::auth_failed));
  // Balances, counters and the log moved over untouched: the pairing is only the link.
  EXPECT_EQ(applet->balance("CNY"), 1000);
  must(phone2.verify_pin(kPin));
  EXPECT_EQ(must(phone2.log()).size(), 2u);
  (void)k2;
}

TEST_F(ChannelTest, AnUnpairedPeerCannotBrickThePukThroughPairing) {
  SeClient stranger = terminal();
  auto confirm = [this](const std::string& code) { return code == applet->display(); };
  // Wrong PUKs through pairing count, but stop while 3 tries are left for the owner.
  for (int i = 0; i < Applet::kPukTries - Applet::kPukTriesKeptForUnblock; ++i)
    EXPECT_THAT(stranger.pair("87654321", confirm), FailsWith(Errc::pin_wrong));
  EXPECT_EQ(applet->state_json().at("puk_tries_left"), Applet::kPukTriesKeptForUnblock);
  Json before = applet->state_json();
  EXPECT_THAT(stranger.pair(kPuk, confirm), FailsWith(Errc::pin_blocked));
  EXPECT_EQ(applet->state_json(), before);
  // The paired owner still unblocks with the PUK, which also makes the counter whole again.
  must(owner->unblock(kPuk, "4321"));
  EXPECT_EQ(applet->state_json().at("puk_tries_left"), Applet::kPukTries);
  EXPECT_THAT(owner->verify_pin("4321"), IsOk());
}

TEST_F(ChannelTest, AFactorySePairsWithoutAPukAndOnlyAPairedOnePersonalizes) {
  auto dev = must(ca::make_device(w.world.mfr_dir, "se-f"), "make_device");
  Applet fresh("se-f", std::move(dev.key), std::move(dev.chain));
  SeClient t([&](ByteView apdu) -> Result<Bytes> { return fresh.process_raw(apdu, w.now); });
  EXPECT_EQ(must(t.status()).at("paired"), false);
  Json params{{"user_id", "frank"}, {"pin", kPin}, {"puk", kPuk}, {"root", w.root_pem()}};
  EXPECT_THAT(t.personalize(params), FailsWith(Errc::secure_channel_required));
  EXPECT_EQ(fresh.lifecycle(), se::Lifecycle::factory);
  auto confirm = [&](const std::string& code) { return code == fresh.display(); };
  // An unpaired SE refuses to authenticate.
  t.set_pairing_key(SecretBytes(random_bytes(32)));
  EXPECT_THAT(t.info(), FailsWith(Errc::not_paired));
  SecretBytes first = must(t.pair("", confirm));
  EXPECT_TRUE(fresh.dirty());
  EXPECT_EQ(must(t.status()).at("paired"), true);
  EXPECT_THAT(t.personalize(params), IsOk());
  EXPECT_EQ(fresh.lifecycle(), se::Lifecycle::personalized);
  // Once personalized, pairing again needs the PUK.
  SeClient other([&](ByteView apdu) -> Result<Bytes> { return fresh.process_raw(apdu, w.now); });
  EXPECT_THAT(other.pair("", confirm), FailsWith(Errc::missing_field));
  // The first terminal is still the paired one: its commands run (and are judged on their content).
  auto r = t.install_certificate(w.root_pem());
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().code, Errc::secure_channel_required) << r.error().message();
  EXPECT_NE(r.error().code, Errc::auth_failed) << r.error().message();
  (void)first;
}

TEST_F(ChannelTest, ThePairingKeySurvivesARestartAndTheSessionDoesNot) {
  Json state = applet->state_json();
  ASSERT_FALSE(state.at("pairing_key").get<std::string>().empty());
  applet = must(Applet::from_state(state));
  EXPECT_FALSE(applet->secure_session());
  // The old session is gone: the SE says so without running the command, and
  // the terminal authenticates again and sends it once more.
  frames.clear();
  EXPECT_THAT(owner->info(), IsOk());
  EXPECT_GE(frames.size(), 4u);  // the refused frame, AUTH BEGIN, AUTH FINISH, the frame again
  EXPECT_THAT(owner->verify_pin(kPin), IsOk());
  // A state from before pairing existed opens unpaired: only the PUK pairs it.
  state.erase("pairing_key");
  applet = must(Applet::from_state(state));
  EXPECT_FALSE(applet->paired());
  SeClient t = terminal();
  auto confirm = [this](const std::string& code) { return code == applet->display(); };
  EXPECT_THAT(t.pair("", confirm), FailsWith(Errc::missing_field));
  EXPECT_THAT(t.pair(kPuk, confirm), IsOk());
  EXPECT_TRUE(applet->paired());
}

}  // namespace
}  // namespace zf::test
