// Attacks on the SE's hold commands (docs/se-apdu.md "Controlled transfer
// (hold)"): real applets driven over their APDU interface by terminals the
// attacker controls. HOLD COSIGN is the payee's consent to terms the payer's
// SE signed; the SE must not be turned into a signer of anything else, of a
// request past its time, or of one whose signer it cannot hold to it. HOLD
// CONFIRM and HOLD RELEASE sign only their own side. No hold command moves
// e-cash: every refusal leaves balances, notes and the seq as they were.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdint>
#include <limits>
#include <string>

#include "core/jose.h"
#include "registry_world.h"

namespace zf::test {
namespace {

class HoldSeAttackTest : public SeRegistryTest {
 protected:
  Json terms(std::int64_t minor = 5000, std::int64_t release_in = 3600) {
    return Json{{"amount", minor},
                {"currency", "CNY"},
                {"bank", kBank},
                {"payer_account", kAccount},
                {"payee_account", "bob-cny"},
                {"release_at", w.now + release_in}};
  }
  std::string request(Se& payer, const Json& t) {
    return must(payer.client->hold_request(t), "hold request").at("request").get<std::string>();
  }
  // A hold.request payload as a certified SE (or a key) would sign it, valid now.
  Json request_payload(const std::string& issuer, std::int64_t seq) {
    Json p{{"type", "hold.request"},
           {"v", 1},
           {"id", issuer + ":" + std::to_string(seq)},
           {"issuer", issuer},
           {"seq", seq},
           {"iat", w.now},
           {"exp", w.now + 600},
           {"nonce", new_nonce()}};
    p.update(terms());
    return p;
  }
  std::string serial_of(const Se& se) {
    return must(Certificate::from_pem(certs.at(se.id)), "cert").serial_hex();
  }
  std::int64_t seq(const Se& se) { return se.applet->seq(); }
  std::size_t log_size(const Se& se) { return se.applet->state_json().at("log").size(); }
};

// The request's ten minutes are over (or, by the payer's host clock, not yet
// begun): the payee's SE does not consent to it.
TEST_F(HoldSeAttackTest, CosignRefusesARequestOutsideItsValidity) {
  Se& a = active_se("se-a", "alice");
  Se& b = active_se("se-b", "bob");
  std::string req = request(a, terms());
  w.now += 600;
  SE_REFUSES(b, Errc::expired, b.client->cosign(req));
  a.skew = 3600;  // the payer's host says it is an hour later
  std::string early = request(a, terms(5000, 7200));
  SE_REFUSES(b, Errc::not_yet_valid, b.client->cosign(early));
  EXPECT_EQ(seq(b), 0);
}

// Once the payer's SE is on the payee SE's CRL, its requests are not cosigned.
TEST_F(HoldSeAttackTest, CosignRefusesARequestFromARevokedSe) {
  Se& a = active_se("se-a", "alice");
  Se& b = active_se("se-b", "bob");
  std::string req = request(a, terms());
  must(w.ca->revoke(ca::Caller::admin, serial_of(a), "device lost"), "revoke");
  must(b.client->update_crl(w.crl_pem()), "update CRL");
  const std::size_t log_before = log_size(b);
  SE_REFUSES(b, Errc::cert_revoked, b.client->cosign(req));
  EXPECT_EQ(log_size(b), log_before) << "a refused cosign leaves no log line";
}

// A certified SE key signs a request in another SE's name: issuer or id are
// not its own. A key under a root the SE does not trust signs one in its own.
TEST_F(HoldSeAttackTest, CosignRefusesARequestWhoseIssuerIsNotItsSigner) {
  active_se("se-a", "alice");
  Se& b = active_se("se-b", "bob");
  KeyCert m = w.enrolled_software_se("se-m", "mallory");
  std::vector<Certificate> chain{m.cert, w.ca->root()};
  SE_REFUSES(b, Errc::issuer_mismatch,
             b.client->cosign(sign_with(m.key, chain, request_payload("se-a", 5))));
  Json wrong_id = request_payload("se-m", 5);
  wrong_id["id"] = "se-a:5";
  SE_REFUSES(b, Errc::issuer_mismatch, b.client->cosign(sign_with(m.key, chain, wrong_id)));
  // A self-made certificate with the right name.
  KeyCert fake_root = self_made_root(w.ca->root().subject_cn(), w.now);
  KeyCert fake = issue_under(fake_root, Role::secure_element, "se-a", "alice", w.now);
  auto r = b.client->cosign(
      sign_with(fake.key, {fake.cert, fake_root.cert}, request_payload("se-a", 9)));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, Errc::cert_untrusted) << r.error().message();
  // The genuine software key in its own name is cosigned: the rule is the signer, not the device.
  EXPECT_TRUE(b.client->cosign(sign_with(m.key, chain, request_payload("se-m", 6))));
}

// Only a hold.request with the payer's signature alone: not the payer's
// signature twice (the second cosignature a terminal could then claim), not a
// request the payee itself issued, not another document type.
TEST_F(HoldSeAttackTest, CosignSignsOnlyASingleSignedHoldRequestOfAnotherSe) {
  Se& a = active_se("se-a", "alice");
  Se& b = active_se("se-b", "bob");
  std::string req = request(a, terms());
  SE_REFUSES(b, Errc::bad_header, b.client->cosign(must(jws_join({req, req}), "join")));
  std::string own = request(b, terms());
  SE_REFUSES(b, Errc::bad_header, b.client->cosign(own));
  Json order = must(a.client->transfer_order(Json{
      {"amount", 1}, {"currency", "CNY"}, {"bank", kBank}, {"from", kAccount}, {"to", "bob-cny"}}));
  SE_REFUSES(b, Errc::unknown_type, b.client->cosign(order.at("order").get<std::string>()));
  // The payer's confirm of a hold is not a request either.
  Json confirm = must(a.client->hold_confirm(
      Json{{"hold_id", "se-a:1"}, {"bank", kBank}, {"amount", 5000}, {"currency", "CNY"}}));
  SE_REFUSES(b, Errc::unknown_type,
             b.client->cosign(confirm.at("confirm").get<std::string>()));
}

// What the payee's SE signs is exactly the payload the payer's SE signed: the
// two signatures join into one JWS whose both signatures verify, and a
// terminal that changes a term after the payer signed gets no cosignature.
TEST_F(HoldSeAttackTest, CosignSignsExactlyThePayersPayloadBytes) {
  Se& a = active_se("se-a", "alice");
  Se& b = active_se("se-b", "bob");
  std::string req = request(a, terms());
  Json cos = must(b.client->cosign(req), "cosign");
  auto mine = must(jws_parse(cos.at("signature").get<std::string>()), "cosignature");
  auto theirs = must(jws_parse(req), "request");
  EXPECT_EQ(mine.payload, theirs.payload);
  // A terminal rewrites the amount and re-encodes: the payer's signature no longer verifies.
  Json p = jws_payload(req);
  p["amount"] = 1;
  std::string forged = theirs.signatures[0].protected_b64 + "." +
                       b64url_encode(as_bytes(dump_json(p))) + "." +
                       b64url_encode(theirs.signatures[0].signature);
  SE_REFUSES(b, Errc::bad_signature, b.client->cosign(forged));
}

// Oversized and malformed command data: a named error, nothing signed.
TEST_F(HoldSeAttackTest, OversizedOrMalformedHoldCommandsAreRefused) {
  Se& a = active_se("se-a", "alice");
  Se& b = active_se("se-b", "bob");
  auto huge = b.client->cosign(std::string(70000, 'A'));
  EXPECT_FALSE(huge);
  auto big_jws = b.client->cosign(std::string(60000, 'A') + "." + std::string(10, 'B') + ".C");
  EXPECT_FALSE(big_jws);
  auto not_jws = b.client->cosign("{\"payload\":1}");
  EXPECT_FALSE(not_jws);
  // A request for a payer account longer than an id may be.
  Json t = terms();
  t["payer_account"] = std::string(129, 'x');
  SE_REFUSES(a, Errc::bad_field, a.client->hold_request(t));
  t = terms();
  t["signers"] = Json::array({"se-b"});  // a field a hold.request does not have
  EXPECT_FALSE(a.client->hold_request(t));
  EXPECT_EQ(seq(a), 0);
  EXPECT_EQ(seq(b), 0);
}

// The SE checks release_at is in the future and a real integer; the 90 days
// are the bank's rule. Amounts are positive and at most the maximum.
TEST_F(HoldSeAttackTest, HoldRequestTermsAreCheckedBeforeAnythingIsSigned) {
  Se& a = active_se("se-a", "alice");
  for (Json v : {Json(-1), Json(0), Json(w.now), Json(1.5), Json("soon"),
                 Json(static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()) + 1)}) {
    Json t = terms();
    t["release_at"] = v;
    SCOPED_TRACE(v.dump());
    auto r = a.client->hold_request(t);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, Errc::bad_field) << r.error().message();
  }
  for (auto [amount, code] :
       {std::pair{Json(0), Errc::amount_zero}, std::pair{Json(-5), Errc::amount_negative},
        std::pair{Json(Amount::kMaxMinor + 1), Errc::amount_overflow}}) {
    Json t = terms();
    t["amount"] = amount;
    SE_REFUSES(a, code, a.client->hold_request(t));
  }
  Json t = terms();
  t["amount"] = Amount::kMaxMinor;
  EXPECT_TRUE(a.client->hold_request(t)) << "the largest amount is a valid term";
  EXPECT_EQ(seq(a), 1);
  // No PIN, no signature, for any of the four.
  a.applet->reset_session();
  SE_REFUSES(a, Errc::not_verified, a.client->hold_request(terms()));
  SE_REFUSES(a, Errc::not_verified,
             a.client->hold_confirm(
                 Json{{"hold_id", "se-a:1"}, {"bank", kBank}, {"amount", 1}, {"currency", "CNY"}}));
  SE_REFUSES(a, Errc::not_verified,
             a.client->hold_release(
                 Json{{"hold_id", "se-b:1"}, {"bank", kBank}, {"amount", 1}, {"currency", "CNY"}}));
}

// SE ids that share a prefix: "se-a" is not "se-ab". Each confirms only its
// own holds and releases only others'.
TEST_F(HoldSeAttackTest, AnSeIdThatIsAPrefixOfAnothersDoesNotConfirmItsHolds) {
  Se& a = active_se("se-a", "alice");
  Se& ab = active_se("se-ab", "abby");
  auto end = [](const std::string& hold_id) {
    return Json{{"hold_id", hold_id}, {"bank", kBank}, {"amount", 5000}, {"currency", "CNY"}};
  };
  SE_REFUSES(a, Errc::not_owner, a.client->hold_confirm(end("se-ab:1")));
  SE_REFUSES(ab, Errc::not_owner, ab.client->hold_confirm(end("se-a:1")));
  SE_REFUSES(a, Errc::not_owner, a.client->hold_confirm(end("se-a")));
  SE_REFUSES(a, Errc::not_owner, a.client->hold_release(end("se-a:1")));
  EXPECT_TRUE(a.client->hold_confirm(end("se-a:1")));
  EXPECT_TRUE(a.client->hold_release(end("se-ab:1")));
  EXPECT_TRUE(ab.client->hold_release(end("se-a:1")));
}

// HOLE (SE side only; the bank stops the money): HOLD CONFIRM is documented
// to sign "only for a hold whose id is this SE's own (<own id>:<seq>)", but
// src/se/applet_bank.cc (hold_confirm's check) tests only
// hold_id.starts_with(se_id + ":"). SE ids may contain ':' (nothing in
// `zf se create`, the manufacturer or the CA restricts them), so SE "se-a"
// signs a confirm of hold "se-a:x:1", which SE "se-a:x" requested, and of ids
// that are no hold at all ("se-a:", "se-a:one"). The mirror image: the same
// SE refuses to RELEASE "se-a:x:1", so as the payee of SE "se-a:x" it cannot
// give that hold back. The bank still refuses the confirm unless the signer
// may sign for the payer's account, so no money moves the wrong way.
// Fix: accept hold_id only as se_id + ":" + a decimal seq (digits only, no
// further ':'), for both commands; and restrict SE ids to [A-Za-z0-9._-] at
// the CA so one id is never a prefix-with-colon of another.
TEST_F(HoldSeAttackTest, HoldConfirmSignsOnlyIdsOfTheFormOwnIdColonSeq) {
  Se& a = active_se("se-a", "alice");
  auto end = [](const std::string& hold_id) {
    return Json{{"hold_id", hold_id}, {"bank", kBank}, {"amount", 5000}, {"currency", "CNY"}};
  };
  SE_REFUSES(a, Errc::not_owner, a.client->hold_confirm(end("se-a:x:1")));
  SE_REFUSES(a, Errc::not_owner, a.client->hold_confirm(end("se-a:")));
  SE_REFUSES(a, Errc::not_owner, a.client->hold_confirm(end("se-a:one")));
  EXPECT_TRUE(a.client->hold_release(end("se-a:x:1")))
      << "the payee of SE se-a:x may release its hold";
}

}  // namespace
}  // namespace zf::test
