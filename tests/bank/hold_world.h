// Holds in-process (tests/bank/bank_registry_world.h) with a clock the test
// moves: a payer (alice), a payee (bob) and a third party (carol), the
// request's two signatures made the way an honest or a hostile terminal
// would, and the books read back. Shared by the hold and hold-attack tests.
#pragma once

#include <atomic>

#include "bank_registry_world.h"
#include "core/jose.h"

namespace zf::test {

class HoldWorld : public BankRegistryTest {
 protected:
  void SetUp() override {
    BankRegistryTest::SetUp();
    bob = enroll_se(src, world, "se-bob", "bob");
    carol = enroll_se(src, world, "se-carol", "carol");
    bank->set_clock([this] { return static_cast<std::time_t>(clock.load()); });
    reg->set_clock([this] { return static_cast<std::time_t>(clock.load()); });
  }

  Json request(std::int64_t minor, const std::string& payer = "alice-cny",
               const std::string& payee = "bob-cny", std::int64_t release_in = 3600,
               TestSigner* issuer = nullptr) {
    TestSigner& who = issuer ? *issuer : alice;
    Json p = who.payload("hold.request", Json{{"amount", minor},
                                              {"currency", "CNY"},
                                              {"payer_account", payer},
                                              {"payee_account", payee},
                                              {"bank", kBank},
                                              {"release_at", clock + release_in}});
    p["iat"] = clock.load();
    p["exp"] = clock + 600;
    return p;
  }
  // One entry of a general JWS: `se`'s signature over exactly `payload` bytes.
  static Json signature_entry(const TestSigner& se, ByteView payload) {
    KeySigner s(*se.key);
    auto compact = jws_sign_compact(payload, JwsSigner{&s, se.chain}, "zf+jws");
    EXPECT_TRUE(compact) << compact.error().message();
    auto parsed = jws_parse(*compact);
    EXPECT_TRUE(parsed);
    return Json{{"protected", parsed->signatures[0].protected_b64},
                {"signature", b64url_encode(parsed->signatures[0].signature)}};
  }
  // What a hostile terminal can send: `payload` with these signature entries.
  static std::string general(const Json& payload, const std::vector<Json>& entries) {
    return dump_json(
        Json{{"payload", b64url_encode(as_bytes(dump_json(payload)))}, {"signatures", entries}});
  }
  // The honest request: the payer's signature, then the payee's, over the same bytes.
  std::string cosigned(const Json& p, const TestSigner& first, const TestSigner& second) {
    std::string bytes = dump_json(p);
    return dump_json(Json{
        {"payload", b64url_encode(as_bytes(bytes))},
        {"signatures",
         {signature_entry(first, as_bytes(bytes)), signature_entry(second, as_bytes(bytes))}}});
  }
  std::string end_doc(TestSigner& se, const char* type, const std::string& hold_id,
                      std::int64_t minor, const std::string& currency = "CNY",
                      const std::string& bank_id = kBank) {
    Json p = se.payload(
        type,
        Json{{"hold_id", hold_id}, {"bank", bank_id}, {"amount", minor}, {"currency", currency}});
    p["iat"] = clock.load();
    p["exp"] = clock + 600;
    return se.sign(p);
  }
  Document receipt_doc(const std::string& jws) {
    CertVerifier v(world.root());
    v.set_time(clock);
    auto d = open_signed_document(jws, v, Role::custody);
    EXPECT_TRUE(d) << d.error().message();
    return d ? d->doc : *Document::from_json(Json::object());
  }
  std::string place(std::int64_t minor, std::int64_t release_in = 3600) {
    Json p = request(minor, "alice-cny", "bob-cny", release_in);
    auto r = bank->hold(cosigned(p, alice, bob));
    EXPECT_TRUE(r) << r.error().message();
    if (r) {
      EXPECT_EQ(receipt_doc(*r).str("status"), "held");
    }
    return p["id"];
  }
  std::int64_t held() {
    auto a = bank->store().find_account(ledger::hold_account_id("CNY"));
    return a && *a ? (*a)->balance_minor : 0;
  }
  void expect_books(std::int64_t alice_minor, std::int64_t bob_minor, std::int64_t held_minor) {
    EXPECT_EQ(balance("alice-cny"), alice_minor);
    EXPECT_EQ(balance("bob-cny"), bob_minor);
    EXPECT_EQ(held(), held_minor);
  }
  std::atomic<std::int64_t> clock{static_cast<std::int64_t>(std::time(nullptr))};
  TestSigner bob, carol;
};

}  // namespace zf::test
