// The SE applet as a state machine (DESIGN.md §5, §6.1-6.4): SEs personalized
// fully in-process against a real CA, driven through the terminal's SeClient.
// Every refused command is checked to change nothing: the same GET DATA info,
// the same persistent state, and no request to persist (dirty() false), except
// where a PIN/PUK retry counter had to go down.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <limits>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "se_fixture.h"

namespace zf::test {
namespace {

using se::Applet;
using wallet::SeClient;

std::string sw_hex(std::uint16_t sw) {
  char buf[8];
  std::snprintf(buf, sizeof(buf), "%04X", sw);
  return buf;
}

// One SE under test: the applet and the terminal's client talking to it.
struct Se {
  std::string id;
  std::string user;
  std::string serial;  // its certificate's serial at the CA
  std::unique_ptr<Applet> applet;
  std::unique_ptr<SeClient> client;
  bool record = false;
  std::vector<Bytes> responses;  // every response as the SE meant it, when `record` is set
  SecretBytes pairing_key;       // the terminal's, kept across reloads
};

// What a refused command must leave exactly as it was.
struct Snapshot {
  Json info;   // GET DATA info, as the terminal sees it
  Json state;  // everything the host would persist
};

class AppletTest : public ::testing::Test {
 protected:
  // A new SE straight from the manufacturer (lifecycle factory).
  Se& factory_se(const std::string& id, const std::string& user, bool record = false) {
    auto dev = must(ca::make_device(w.world.mfr_dir, id), "make_device");
    auto se = std::make_unique<Se>();
    se->id = id;
    se->user = user;
    se->record = record;
    se->applet = std::make_unique<Applet>(id, std::move(dev.key), std::move(dev.chain));
    attach_client(*se);
    // The terminal pairs at the issuer's desk, comparing the code on the SE's display.
    Se* p = se.get();
    se->pairing_key = must(se->client->pair("", [p](const std::string& code) {
      return code == p->applet->display();
    }), "pair");
    ses.push_back(std::move(se));
    return *ses.back();
  }

  // An active SE whose user has verified the PIN in this session.
  Se& active_se(const std::string& id, const std::string& user, const Json& limits = {},
                bool record = false) {
    Se& se = factory_se(id, user, record);
    se.serial = w.activate(*se.client, user, limits, [&se] { return se.applet->display(); });
    payee_certs[id] = must(se.client->certificate_pem(), "certificate_pem");
    return se;
  }

  // The terminal's client: SeClient::in_process on the fixture clock, holding the
  // pairing key; when `record` is set it also keeps every response the SE meant
  // (opened from the secure channel) and every raw frame on the link.
  void attach_client(Se& se) {
    Se* p = &se;
    se.client = std::make_unique<SeClient>([this, p](ByteView apdu) -> Result<Bytes> {
      Bytes r = p->applet->process_raw(apdu, w.now);
      if (p->record) p->responses.push_back(r);
      return r;
    });
    if (se.pairing_key.size()) se.client->set_pairing_key(se.pairing_key);
    if (se.record)
      se.client->set_observer([p](const se::Response& r) { p->responses.push_back(se::encode_response(r)); });
  }

  // Sends one command as the paired terminal does (through the secure channel
  // when it needs one) and returns the SE's response (for status words).
  se::Response send(Se& se, std::uint8_t cla, std::uint8_t ins, std::uint8_t p1, std::uint8_t p2,
                    std::string_view data = {}) {
    se::Command c{cla, ins, p1, p2, Bytes(data.begin(), data.end()), 65536u};
    return must(se.client->transmit(c), "transmit");
  }
  // Raw bytes on the link, past the secure channel (for the codec and the channel itself).
  se::Response send_raw(Se& se, ByteView apdu) {
    Bytes r = se.applet->process_raw(apdu, w.now);
    if (se.record) se.responses.push_back(r);
    return must(se::parse_response(r), "response");
  }

  // RECEIVE NOTE as an honest terminal sends it: with the registry's record of
  // this SE's won claim (made by the fixture's registry key). A note too broken
  // to describe in a record goes without one.
  Result<Json> receive(Se& se, const std::string& note) {
    std::string record;
    try {
      record = w.record_for(note, se.id);
    } catch (const std::exception&) {
    }
    return se.client->receive_note(note, record);
  }

  Snapshot snapshot(Se& se) { return {must(se.client->info(), "info"), se.applet->state_json()}; }

  // Checks that nothing changed since `before`, except the state fields in `may_change`.
  void expect_unchanged(Se& se, const Snapshot& before, bool dirty_expected = false,
                        std::initializer_list<const char*> may_change = {}) {
    // dirty() describes the last command, so it is read before GET DATA runs.
    EXPECT_EQ(se.applet->dirty(), dirty_expected) << "refused command asked to persist state";
    Snapshot after = snapshot(se);
    EXPECT_EQ(after.info.at("balances"), before.info.at("balances"));
    EXPECT_EQ(after.info.at("seq"), before.info.at("seq"));
    Json a = after.state, b = before.state;
    for (const char* f : may_change) {
      a.erase(f);
      b.erase(f);
    }
    std::vector<std::string> changed;
    for (const auto& [k, v] : a.items())
      if (!b.contains(k) || b.at(k) != v) changed.push_back(k);
    EXPECT_THAT(changed, ::testing::IsEmpty()) << "persistent state changed";
    if (may_change.size() == 0) {
      EXPECT_EQ(after.info, before.info);
    }
  }

  // Runs a command that must be refused with `code` and change nothing.
  template <class F>
  Error refused(Se& se, Errc code, F&& command) {
    Snapshot before = snapshot(se);
    auto r = command();
    if (r)
      ADD_FAILURE() << "succeeded; expected " << errc_name(code);
    else
      EXPECT_EQ(r.error().code, code) << r.error().message();
    expect_unchanged(se, before);
    return r ? Error{} : r.error();
  }
  // The same for a raw command refused with status word `sw`; returns the error body.
  template <class F>
  Json refused_sw(Se& se, std::uint16_t sw, F&& command) {
    Snapshot before = snapshot(se);
    se::Response r = command();
    EXPECT_EQ(r.sw, sw) << "got SW " << sw_hex(r.sw);
    expect_unchanged(se, before);
    auto body = parse_json_strict(to_string(r.data));
    return body ? *body : Json();
  }

  Json note_payload(const std::string& payer, const std::string& payee, std::int64_t amount,
                    std::int64_t seq) {
    return Json{{"type", "payment.note"},
                {"v", 1},
                {"id", payer + ":" + std::to_string(seq)},
                {"issuer", payer},
                {"seq", seq},
                {"iat", w.now},
                {"nonce", new_nonce()},
                {"amount", amount},
                {"currency", "CNY"},
                {"payer", payer},
                {"payee", payee}};
  }

  // PAYMENT NOTE as an honest terminal sends it: with the payee's certificate
  // from the CA (as the payee SE was activated in this test, or one the CA
  // issued for that name to a key the test holds).
  Json pay_params(const std::string& payee, std::int64_t amount, const char* currency = "CNY") {
    Json p{{"amount", amount}, {"currency", currency}, {"payee", payee}};
    auto it = payee_certs.find(payee);
    p["payee_cert"] = it != payee_certs.end() ? it->second : w.payee_cert(payee);
    return p;
  }
  std::map<std::string, std::string> payee_certs;  // SE id -> its certificate chain (PEM)
  // Tops `payer` up with 1000 and pays se-b `amount` in a note that expires in 60 s: {note, id}.
  Json pay_for_a_minute(Se& payer, std::int64_t amount) {
    w.topup(*payer.client, 1000);
    Json params = pay_params("se-b", amount);
    params["expires_in_s"] = 60;
    return must(payer.client->payment_note(params));
  }
  Json bank_params(std::int64_t amount, const char* currency = "CNY") {
    return Json{{"amount", amount}, {"currency", currency}, {"bank", kBank}, {"account", kAccount}};
  }

  // Restarts an SE from its persisted state, as the host does after a power cycle.
  void reload(Se& se) {
    Json state = se.applet->state_json();
    se.applet = must(Applet::from_state(state), "from_state");
    attach_client(se);
  }

  SeWorld w;
  std::vector<std::unique_ptr<Se>> ses;
};

#define EXPECT_REFUSED(se, code, expr)             \
  do {                                             \
    SCOPED_TRACE(#expr);                           \
    refused((se), (code), [&] { return (expr); }); \
  } while (0)
#define EXPECT_REFUSED_SW(se, sw, expr)             \
  do {                                              \
    SCOPED_TRACE(#expr);                            \
    refused_sw((se), (sw), [&] { return (expr); }); \
  } while (0)

// ---------------------------------------------------------------- personalization

TEST_F(AppletTest, PersonalizationMakesAnActiveSeWithACertifiedKey) {
  Se& a = active_se("se-a", "alice");
  EXPECT_EQ(a.applet->lifecycle(), se::Lifecycle::active);
  Json info = must(a.client->info());
  EXPECT_EQ(info.at("state"), "active");
  EXPECT_EQ(info.at("user_id"), "alice");
  EXPECT_EQ(info.at("seq"), 0);
  EXPECT_EQ(info.at("pin_tries_left"), 3);
  EXPECT_EQ(info.at("verified"), true);
  EXPECT_EQ(info.at("crl_number"), 1);
  // The installed certificate is the CA's, for this SE and user, with the SE role.
  auto chain = must(certificates_from_pem(must(a.client->certificate_pem())));
  ASSERT_EQ(chain.size(), 1u);
  EXPECT_EQ(chain[0].subject_cn(), "se-a");
  EXPECT_EQ(chain[0].user_id(), "alice");
  EXPECT_EQ(chain[0].serial_hex(), a.serial);
  CertVerifier v(w.ca->root());
  EXPECT_THAT(v.verify(chain, Role::secure_element), IsOk());
}

TEST_F(AppletTest, SelectAnswersWithIdAndStateAndRefusesAnotherAid) {
  Se& a = factory_se("se-a", "alice");
  Json sel = must(a.client->select());
  EXPECT_EQ(sel.at("se_id"), "se-a");
  EXPECT_EQ(sel.at("state"), "factory");
  std::string other_aid = "\xF0\x7A\x68\x75\x61\x6E\x66\x75\x02";
  EXPECT_REFUSED_SW(a, 0x6A88, send(a, 0x00, se::ins::kSelect, 0x04, 0x00, other_aid));
  EXPECT_REFUSED_SW(
      a, 0x6A88,
      send(a, 0x00, se::ins::kSelect, 0x00, 0x00,
           std::string_view(reinterpret_cast<const char*>(se::kAid), sizeof(se::kAid))));
}

TEST_F(AppletTest, CommandsInTheWrongLifecycleStateAreRefused) {
  Se& a = factory_se("se-a", "alice");
  // Factory: nothing but SELECT, GET DATA and PERSONALIZE.
  EXPECT_REFUSED(a, Errc::wrong_state, a.client->verify_pin(kPin));
  EXPECT_REFUSED(a, Errc::wrong_state, a.client->unblock(kPuk, "1111"));
  EXPECT_REFUSED(a, Errc::wrong_state, a.client->topup_request(bank_params(100)));
  EXPECT_REFUSED(a, Errc::wrong_state, a.client->payment_note(pay_params("se-b", 100)));
  EXPECT_REFUSED(a, Errc::wrong_state, a.client->install_certificate(w.root_pem()));
  EXPECT_REFUSED(a, Errc::wrong_state, a.client->update_crl(w.crl_pem()));
  EXPECT_REFUSED(a, Errc::wrong_state, a.client->certificate_pem());

  // Personalized (key made, no certificate yet): no value commands, no second personalization.
  Json csr = must(a.client->personalize(
      {{"user_id", "alice"}, {"pin", kPin}, {"puk", kPuk}, {"root", w.root_pem()}}));
  EXPECT_EQ(a.applet->lifecycle(), se::Lifecycle::personalized);
  EXPECT_REFUSED(
      a, Errc::wrong_state,
      a.client->personalize(
          {{"user_id", "mallory"}, {"pin", "0000"}, {"puk", "00000000"}, {"root", w.root_pem()}}));
  EXPECT_REFUSED(a, Errc::wrong_state, a.client->verify_pin(kPin));
  EXPECT_REFUSED(a, Errc::wrong_state, a.client->topup_request(bank_params(100)));
  EXPECT_REFUSED(a, Errc::wrong_state, a.client->deposit_note(bank_params(100)));
  EXPECT_REFUSED(a, Errc::wrong_state,
                 a.client->sign_query({{"account", kAccount}, {"bank", kBank}}));

  // Active: personalization and certificate installation are over.
  auto code = must(w.ca->issue_enrollment_code(ca::Caller::registration_authority, "alice", 600));
  ca::CertRequest req;
  req.role = "secure-element";
  req.csr_pem = csr.at("csr").get<std::string>();
  req.attestation = csr.at("attestation");
  req.enrollment_code = code.code;
  auto issued = must(w.ca->issue(ca::Caller::anonymous, req));
  must(a.client->install_certificate(issued.cert.pem()));
  EXPECT_EQ(a.applet->lifecycle(), se::Lifecycle::active);
  EXPECT_REFUSED(a, Errc::wrong_state, a.client->install_certificate(issued.cert.pem()));
  EXPECT_REFUSED(a, Errc::wrong_state,
                 a.client->personalize(
                     {{"user_id", "alice"}, {"pin", kPin}, {"puk", kPuk}, {"root", w.root_pem()}}));
}

TEST_F(AppletTest, PersonalizeRefusesBadParameters) {
  Se& a = factory_se("se-a", "alice");
  Json good{{"user_id", "alice"}, {"pin", kPin}, {"puk", kPuk}, {"root", w.root_pem()}};
  auto with = [&](const Json& change) {
    Json p = good;
    p.update(change);
    return p;
  };
  EXPECT_REFUSED(a, Errc::bad_field, a.client->personalize(with({{"pin", "12a4"}})));
  EXPECT_REFUSED(a, Errc::bad_field, a.client->personalize(with({{"pin", "123"}})));
  EXPECT_REFUSED(a, Errc::bad_field, a.client->personalize(with({{"puk", "1234"}})));
  EXPECT_REFUSED(a, Errc::bad_field, a.client->personalize(with({{"user_id", ""}})));
  EXPECT_REFUSED(a, Errc::bad_field, a.client->personalize(with({{"max_balance_minor", 0}})));
  EXPECT_REFUSED(a, Errc::bad_field, a.client->personalize(with({{"pin_tries", 16}})));
  EXPECT_REFUSED(a, Errc::unknown_field, a.client->personalize(with({{"key", "mine"}})));
  EXPECT_REFUSED(a, Errc::missing_field, a.client->personalize({{"user_id", "alice"}}));
  // The root must be a CA certificate: the bank's leaf is not.
  EXPECT_REFUSED(a, Errc::cert_malformed,
                 a.client->personalize(with({{"root", w.bank.cert.pem()}})));
  EXPECT_EQ(a.applet->lifecycle(), se::Lifecycle::factory);
}

TEST_F(AppletTest, InstallCertificateChecksChainRoleKeyAndSubject) {
  Se& a = factory_se("se-a", "alice");
  Json csr = must(a.client->personalize(
      {{"user_id", "alice"}, {"pin", kPin}, {"puk", kPuk}, {"root", w.root_pem()}}));
  // A genuine SE certificate, but for another key.
  KeyCert other = w.enrolled_software_se("se-a", "alice");
  EXPECT_REFUSED(a, Errc::bad_field, a.client->install_certificate(other.cert.pem()));
  // A custody certificate from the right CA.
  EXPECT_REFUSED(a, Errc::cert_wrong_role, a.client->install_certificate(w.bank.cert.pem()));
  // A self-made certificate.
  KeyCert fake = self_made_root("zhuanfu Root CA", w.now);
  KeyCert leaf = issue_under(fake, Role::secure_element, "se-a", "alice", w.now);
  EXPECT_REFUSED(a, Errc::cert_untrusted,
                 a.client->install_certificate(leaf.cert.pem() + fake.cert.pem()));
  EXPECT_REFUSED(a, Errc::cert_malformed, a.client->install_certificate("not a certificate"));
  EXPECT_EQ(a.applet->lifecycle(), se::Lifecycle::personalized);
  (void)csr;
}

// ---------------------------------------------------------------- top-up (§6.2)

// TRANSFER ORDER signs what the person asked, spends a seq, moves no e-cash,
// and needs the PIN; one account on both sides is refused before anything is signed.
TEST_F(AppletTest, TransferOrderSignsTheOrderAndMovesNoEcash) {
  Se& a = active_se("se-a", "alice");
  Json params{{"amount", 2500}, {"currency", "CNY"}, {"bank", "bank-a"}, {"from", kAccount}, {"to", "bob-cny"}};
  Json r = must(a.client->transfer_order(params));
  CertVerifier v(w.ca->root());
  v.set_time(w.now);
  auto order = must(open_signed_document(r.at("order").get<std::string>(), v, Role::secure_element));
  EXPECT_EQ(order.doc.type(), "transfer.order");
  EXPECT_EQ(order.doc.id(), "se-a:1");
  EXPECT_EQ(order.doc.str("from"), kAccount);
  EXPECT_EQ(order.doc.str("to"), "bob-cny");
  EXPECT_EQ(order.doc.amount()->minor(), 2500);
  ASSERT_TRUE(order.doc.exp());
  EXPECT_EQ(*order.doc.exp(), w.now + 600) << "a bank acts on an order for 10 minutes";
  EXPECT_EQ(a.applet->balance("CNY"), 0);
  Json same = params;
  same["to"] = kAccount;
  EXPECT_REFUSED(a, Errc::same_account, a.client->transfer_order(same));
  Json extra = params;
  extra["note"] = "x";
  EXPECT_REFUSED(a, Errc::unknown_field, a.client->transfer_order(extra));
  Json zero = params;
  zero["amount"] = 0;
  EXPECT_REFUSED(a, Errc::amount_zero, a.client->transfer_order(zero));
  EXPECT_EQ(must(a.client->transfer_order(params)).at("id"), "se-a:2") << "refusals spend no seq";
  a.applet->reset_session();
  EXPECT_REFUSED(a, Errc::not_verified, a.client->transfer_order(params));
}

// HOLD REQUEST signs for the payer; HOLD COSIGN adds the payee's signature over
// exactly the same payload bytes, only for another SE's valid request; HOLD
// CONFIRM only for this SE's own hold and HOLD RELEASE never for it. None
// moves e-cash; each needs the PIN.
TEST_F(AppletTest, HoldCommandsSignOnlyTheirSideOfAHold) {
  Se& a = active_se("se-a", "alice");
  Se& b = active_se("se-b", "bob");
  Json params{{"amount", 5000},           {"currency", "CNY"},          {"bank", "bank-a"},
              {"payer_account", kAccount}, {"payee_account", "bob-cny"}, {"release_at", w.now + 3600}};
  Json r = must(a.client->hold_request(params));
  const std::string request = r.at("request");
  EXPECT_EQ(r.at("id"), "se-a:1");
  CertVerifier v(w.ca->root());
  v.set_time(w.now);
  auto opened = must(open_signed_document(request, v, Role::secure_element));
  EXPECT_EQ(opened.doc.type(), "hold.request");
  EXPECT_EQ(*opened.doc.exp(), w.now + 600);
  Json past = params;
  past["release_at"] = w.now;
  EXPECT_REFUSED(a, Errc::bad_field, a.client->hold_request(past));
  Json same = params;
  same["payee_account"] = kAccount;
  EXPECT_REFUSED(a, Errc::same_account, a.client->hold_request(same));

  // The payer's SE does not cosign its own request; the payee's does.
  EXPECT_REFUSED(a, Errc::bad_header, a.client->cosign(request));
  Json cos = must(b.client->cosign(request));
  EXPECT_EQ(cos.at("amount"), 5000);
  EXPECT_EQ(cos.at("payee_account"), "bob-cny");
  auto joined = must(jws_join({request, cos.at("signature").get<std::string>()}));
  auto both = must(open_signed_document(joined, v, Role::secure_element));
  ASSERT_EQ(both.signers.size(), 2u);
  EXPECT_EQ(both.signers[0].subject_cn(), "se-a");
  EXPECT_EQ(both.signers[1].subject_cn(), "se-b");
  EXPECT_EQ(b.applet->seq(), 0) << "a cosignature spends no seq";
  // Not twice, not a tampered request, not another type.
  EXPECT_REFUSED(b, Errc::bad_header, b.client->cosign(joined));
  std::string tampered = request;
  auto dot = tampered.find('.');
  tampered[dot + 5] = tampered[dot + 5] == 'A' ? 'B' : 'A';
  EXPECT_FALSE(b.client->cosign(tampered)) << "a tampered request is not cosigned";
  Json order = must(a.client->transfer_order(
      Json{{"amount", 1}, {"currency", "CNY"}, {"bank", "bank-a"}, {"from", kAccount}, {"to", "bob-cny"}}));
  EXPECT_REFUSED(b, Errc::unknown_type, b.client->cosign(order.at("order").get<std::string>()));

  Json end{{"hold_id", "se-a:1"}, {"bank", "bank-a"}, {"amount", 5000}, {"currency", "CNY"}};
  Json confirm = must(a.client->hold_confirm(end));
  EXPECT_EQ(jws_payload(confirm.at("confirm").get<std::string>()).at("type"), "hold.confirm");
  EXPECT_REFUSED(b, Errc::not_owner, b.client->hold_confirm(end));
  EXPECT_REFUSED(a, Errc::not_owner, a.client->hold_release(end));
  Json release = must(b.client->hold_release(end));
  EXPECT_EQ(jws_payload(release.at("release").get<std::string>()).at("hold_id"), "se-a:1");
  EXPECT_EQ(a.applet->balance("CNY"), 0);
  EXPECT_EQ(b.applet->balance("CNY"), 0);
  b.applet->reset_session();
  EXPECT_REFUSED(b, Errc::not_verified, b.client->cosign(request));
}

// JOINT REQUEST signs a spend from a joint account; a top-up goes into this
// SE and waits as a pending top-up, applied by the bank's receipt like its
// own. COSIGN adds one signature per SE over the same payload.
TEST_F(AppletTest, JointRequestAndCosignSignASpendFromAJointAccount) {
  Se& a = active_se("se-a", "alice");
  Se& b = active_se("se-b", "bob");
  Json transfer{{"amount", 3000}, {"currency", "CNY"}, {"bank", "bank-a"}, {"account", "family"},
                {"action", "transfer"}, {"to", "carol-cny"}};
  Json t = must(a.client->joint_request(transfer));
  const std::string spend = t.at("spend");
  Json payload = jws_payload(spend);
  EXPECT_EQ(payload.at("type"), "joint.spend");
  EXPECT_EQ(payload.at("exp"), w.now + 24 * 3600) << "co-managers have a day to sign a transfer";
  Json cos = must(b.client->cosign(spend));
  EXPECT_EQ(cos.at("signers"), 2);
  auto joined = must(jws_join({spend, cos.at("signature").get<std::string>()}));
  EXPECT_REFUSED(b, Errc::bad_header, b.client->cosign(joined));  // not twice
  EXPECT_REFUSED(a, Errc::bad_header, a.client->cosign(spend));   // the asker has signed
  Json same = transfer;
  same["to"] = "family";
  EXPECT_REFUSED(a, Errc::same_account, a.client->joint_request(same));
  Json unknown = transfer;
  unknown["action"] = "withdraw";
  EXPECT_REFUSED(a, Errc::bad_field, a.client->joint_request(unknown));

  Json topup{{"amount", 2000}, {"currency", "CNY"}, {"bank", "bank-a"}, {"account", "family"}, {"action", "topup"}};
  Json made = must(a.client->joint_request(topup));
  Json req = jws_payload(made.at("spend").get<std::string>());
  EXPECT_EQ(req.at("to"), "se-a") << "a joint top-up goes into the SE that asked";
  EXPECT_FALSE(req.contains("exp"));
  EXPECT_EQ(must(a.client->info()).at("pending_topups"), Json::array({req.at("id")}));
  must(a.client->apply_topup_receipt(w.topup_receipt(req)));
  EXPECT_EQ(a.applet->balance("CNY"), 2000);
  EXPECT_EQ(b.applet->balance("CNY"), 0);
}

TEST_F(AppletTest, RefusedTopupIsDroppedAndCreditsNothing) {
  Se& a = active_se("se-a", "alice");
  Json made = must(a.client->topup_request(bank_params(5000)));
  Json req = jws_payload(made.at("request").get<std::string>());
  EXPECT_REFUSED(a, Errc::bad_field, a.client->apply_topup_receipt(w.topup_receipt(req, {{"status", "maybe"}})));
  Json answer = must(a.client->apply_topup_receipt(
      w.topup_receipt(req, {{"status", "refused"}, {"reason", "insufficient_funds"}})));
  EXPECT_EQ(answer.at("reason"), "insufficient_funds");
  Json info = must(a.client->info());
  EXPECT_EQ(info.at("balances"), Json::object());
  EXPECT_EQ(info.at("pending_topups"), Json::array());
  // The bank consumed the request: no credited receipt for it can ever apply.
  EXPECT_REFUSED(a, Errc::replayed, a.client->apply_topup_receipt(w.topup_receipt(req)));
  EXPECT_EQ(a.applet->balance("CNY"), 0);
}

TEST_F(AppletTest, TopupCreditsOnceAndTheSameReceiptIsReplayed) {
  Se& a = active_se("se-a", "alice");
  Json r = must(a.client->topup_request(bank_params(5000)));
  // The request is signed by the SE's certified key and names what the user asked.
  CertVerifier v(w.ca->root());
  v.set_time(w.now);
  auto req =
      must(open_signed_document(r.at("request").get<std::string>(), v, Role::secure_element));
  EXPECT_EQ(req.doc.type(), "topup.request");
  EXPECT_EQ(req.doc.id(), "se-a:1");
  EXPECT_EQ(r.at("id"), "se-a:1");
  EXPECT_EQ(req.doc.seq(), 1);
  EXPECT_EQ(req.doc.str("account"), kAccount);
  EXPECT_EQ(req.doc.amount()->minor(), 5000);
  // No value moves before the receipt.
  Json info = must(a.client->info());
  EXPECT_EQ(info.at("balances"), Json::object());
  EXPECT_EQ(info.at("pending_topups"), Json::array({"se-a:1"}));

  std::string receipt = w.topup_receipt(req.doc.json());
  Json applied = must(a.client->apply_topup_receipt(receipt));
  EXPECT_TRUE(a.applet->dirty());
  EXPECT_EQ(applied.at("credited_minor"), 5000);
  EXPECT_EQ(applied.at("balance_minor"), 5000);
  EXPECT_EQ(a.applet->balance("CNY"), 5000);
  info = must(a.client->info());
  EXPECT_EQ(info.at("pending_topups"), Json::array());
  EXPECT_EQ(info.at("seq"), 1);

  // The terminal retries with the same receipt (or a re-signed copy of it): credited once.
  EXPECT_REFUSED(a, Errc::replayed, a.client->apply_topup_receipt(receipt));
  EXPECT_REFUSED(a, Errc::replayed, a.client->apply_topup_receipt(w.topup_receipt(req.doc.json())));
  EXPECT_EQ(a.applet->balance("CNY"), 5000);
}

TEST_F(AppletTest, ReceiptForUnknownRequestIsAMismatch) {
  Se& a = active_se("se-a", "alice");
  Json r = must(a.client->topup_request(bank_params(100)));
  Json req = jws_payload(r.at("request"));
  EXPECT_REFUSED(a, Errc::receipt_mismatch,
                 a.client->apply_topup_receipt(w.topup_receipt(req, {{"request_id", "se-a:77"}})));
  // Another SE's request id is not pending here either.
  EXPECT_REFUSED(a, Errc::receipt_mismatch,
                 a.client->apply_topup_receipt(w.topup_receipt(req, {{"request_id", "se-b:1"}})));
}

TEST_F(AppletTest, ReceiptThatDiffersFromTheRequestIsAMismatch) {
  Se& a = active_se("se-a", "alice");
  Json req = jws_payload(must(a.client->topup_request(bank_params(100))).at("request"));
  for (const Json& change : {Json{{"amount", 101}}, Json{{"amount", 99}}, Json{{"currency", "USD"}},
                             Json{{"account", "acct-2"}}, Json{{"bank", "bank-b"}}}) {
    SCOPED_TRACE(change.dump());
    EXPECT_REFUSED(a, Errc::receipt_mismatch,
                   a.client->apply_topup_receipt(w.topup_receipt(req, change)));
  }
  // The request is still pending and the right receipt still works.
  EXPECT_THAT(a.client->apply_topup_receipt(w.topup_receipt(req)), IsOk());
  EXPECT_EQ(a.applet->balance("CNY"), 100);
}

TEST_F(AppletTest, ReceiptForAnotherSeIsMisaddressed) {
  Se& a = active_se("se-a", "alice");
  Json req = jws_payload(must(a.client->topup_request(bank_params(100))).at("request"));
  EXPECT_REFUSED(a, Errc::misaddressed,
                 a.client->apply_topup_receipt(w.topup_receipt(req, {{"se", "se-b"}})));
}

TEST_F(AppletTest, ReceiptMustBeSignedByTheCertifiedBankOfTheRequest) {
  Se& a = active_se("se-a", "alice");
  Json req = jws_payload(must(a.client->topup_request(bank_params(100))).at("request"));
  Json payload = w.topup_receipt_payload(req);
  // Signed by a secure element's certificate: wrong role.
  KeyCert se_key = w.enrolled_software_se("se-x", "xavier");
  EXPECT_REFUSED(a, Errc::cert_wrong_role,
                 a.client->apply_topup_receipt(sign_with(se_key.key, {se_key.cert}, payload)));
  // Signed with a self-made custody certificate named like the bank and its CA.
  KeyCert fake = self_made_root("zhuanfu Root CA", w.now);
  KeyCert fake_bank = issue_under(fake, Role::custody, kBank, "", w.now);
  EXPECT_REFUSED(a, Errc::cert_untrusted,
                 a.client->apply_topup_receipt(
                     sign_with(fake_bank.key, {fake_bank.cert, fake.cert}, payload)));
  EXPECT_REFUSED(
      a, Errc::cert_untrusted,
      a.client->apply_topup_receipt(sign_with(fake_bank.key, {fake_bank.cert}, payload)));
  // Signed by another certified bank than the one the request names.
  KeyCert bank_b = w.custody_key("bank-b");
  EXPECT_REFUSED(a, Errc::receipt_mismatch,
                 a.client->apply_topup_receipt(sign_with(bank_b.key, {bank_b.cert}, payload)));
  // A deposit receipt is not a top-up receipt.
  Json wrong_type = payload;
  wrong_type["type"] = "deposit.receipt";
  wrong_type["note_id"] = wrong_type.at("request_id");
  wrong_type.erase("request_id");
  EXPECT_REFUSED(a, Errc::unknown_type,
                 a.client->apply_topup_receipt(sign_with(w.bank.key, {w.bank.cert}, wrong_type)));
  EXPECT_EQ(a.applet->balance("CNY"), 0);
}

TEST_F(AppletTest, ReceiptFromARevokedBankIsRefused) {
  Se& a = active_se("se-a", "alice");
  Json req = jws_payload(must(a.client->topup_request(bank_params(100))).at("request"));
  must(w.ca->revoke(ca::Caller::admin, w.bank.cert.serial_hex(), "key compromise"));
  must(a.client->update_crl(w.crl_pem()));
  EXPECT_REFUSED(a, Errc::cert_revoked, a.client->apply_topup_receipt(w.topup_receipt(req)));
}

TEST_F(AppletTest, TopupRequestRefusesOverMaxBalanceCountingPendingTopups) {
  Se& a = active_se("se-a", "alice", {{"max_balance_minor", 1000}});
  EXPECT_REFUSED(a, Errc::limit_exceeded, a.client->topup_request(bank_params(1001)));
  Json first = jws_payload(must(a.client->topup_request(bank_params(600))).at("request"));
  // 600 is already promised by a pending request: another 600 could end above the limit,
  // and a receipt cannot be refused once the bank has debited the account.
  EXPECT_REFUSED(a, Errc::limit_exceeded, a.client->topup_request(bank_params(600)));
  Json second = jws_payload(must(a.client->topup_request(bank_params(400))).at("request"));
  must(a.client->apply_topup_receipt(w.topup_receipt(first)));
  must(a.client->apply_topup_receipt(w.topup_receipt(second)));
  EXPECT_EQ(a.applet->balance("CNY"), 1000);
  EXPECT_REFUSED(a, Errc::limit_exceeded, a.client->topup_request(bank_params(1)));
  // The limit is per currency.
  EXPECT_THAT(a.client->topup_request(bank_params(1000, "USD")), IsOk());
}

TEST_F(AppletTest, ReceivingANoteCannotOutrunAPendingTopup) {
  Se& a = active_se("se-a", "alice");
  Se& b = active_se("se-b", "bob", {{"max_balance_minor", 1000}});
  w.topup(*a.client, 1000);
  Json pending = jws_payload(must(b.client->topup_request(bank_params(600))).at("request"));
  std::string note = must(a.client->payment_note(pay_params("se-b", 500))).at("note");
  // Crediting 500 now would let the pending 600 end at 1100.
  EXPECT_REFUSED(b, Errc::limit_exceeded, receive(b, note));
  must(b.client->apply_topup_receipt(w.topup_receipt(pending)));
  EXPECT_REFUSED(b, Errc::limit_exceeded, receive(b, note));
  // Once b spends, the same note (still in flight) fits.
  std::string spend = must(b.client->payment_note(pay_params("se-a", 200))).at("note");
  EXPECT_THAT(receive(b, note), IsOk());
  EXPECT_EQ(b.applet->balance("CNY"), 900);
  EXPECT_THAT(receive(a, spend), IsOk());
  EXPECT_EQ(a.applet->balance("CNY"), 700);
}

TEST_F(AppletTest, TooManyPendingTopupsAreRefused) {
  Se& a = active_se("se-a", "alice");
  for (int i = 0; i < 16; ++i) ASSERT_THAT(a.client->topup_request(bank_params(1)), IsOk());
  EXPECT_REFUSED(a, Errc::wrong_state, a.client->topup_request(bank_params(1)));
}

// ---------------------------------------------------------------- payment (§6.3)

TEST_F(AppletTest, PaymentNoteDebitsPayerAndCreditsPayeeOnce) {
  Se& a = active_se("se-a", "alice");
  Se& b = active_se("se-b", "bob");
  w.topup(*a.client, 1000);
  Json made = must(a.client->payment_note(pay_params("se-b", 300)));
  EXPECT_TRUE(a.applet->dirty());
  EXPECT_EQ(a.applet->balance("CNY"), 700);
  EXPECT_EQ(made.at("id"), "se-a:2");
  Json note = jws_payload(made.at("note"));
  EXPECT_EQ(note.at("payer"), "se-a");
  EXPECT_EQ(note.at("payee"), "se-b");
  EXPECT_EQ(note.at("amount"), 300);
  EXPECT_EQ(note.at("seq"), 2);

  Json got = must(receive(b, made.at("note")));
  EXPECT_TRUE(b.applet->dirty());
  EXPECT_EQ(got.at("credited_minor"), 300);
  EXPECT_EQ(got.at("payer"), "se-a");
  EXPECT_EQ(got.at("note_id"), "se-a:2");
  EXPECT_EQ(b.applet->balance("CNY"), 300);
  // Receiving never signs: the payee's counter does not move.
  EXPECT_EQ(b.applet->seq(), 0);
  EXPECT_EQ(must(a.client->info()).at("sent_minor"), Json({{"CNY", 300}}));
  EXPECT_EQ(must(b.client->info()).at("received_minor"), Json({{"CNY", 300}}));

  EXPECT_REFUSED(b, Errc::replayed, receive(b, made.at("note")));
  EXPECT_EQ(b.applet->balance("CNY"), 300);
  EXPECT_EQ(a.applet->balance("CNY") + b.applet->balance("CNY"), 1000);
}

TEST_F(AppletTest, NoteAddressedToAnotherSeIsMisaddressed) {
  Se& a = active_se("se-a", "alice");
  Se& b = active_se("se-b", "bob");
  Se& c = active_se("se-c", "carol");
  w.topup(*a.client, 1000);
  std::string note = must(a.client->payment_note(pay_params("se-c", 250))).at("note");
  EXPECT_REFUSED(b, Errc::misaddressed, receive(b, note));
  // The refusal at b did not use the note up: its payee can still take it.
  EXPECT_THAT(receive(c, note), IsOk());
  EXPECT_EQ(c.applet->balance("CNY"), 250);
}

TEST_F(AppletTest, PayingYourselfIsMisaddressed) {
  Se& a = active_se("se-a", "alice");
  w.topup(*a.client, 1000);
  EXPECT_REFUSED(a, Errc::misaddressed, a.client->payment_note(pay_params("se-a", 10)));
}

// The payer SE addresses a note only to an SE the CA certified, and checks the
// payee's certificate itself: a terminal that skips the CA lookup, or makes
// up a certificate, moves nothing.
TEST_F(AppletTest, ANoteGoesOnlyToAPayeeWhoseCertificateTheSeChecked) {
  Se& a = active_se("se-a", "alice");
  Se& b = active_se("se-b", "bob");
  w.topup(*a.client, 1000);
  auto pay = [&](Json p) { return a.client->payment_note(p); };
  Json base{{"amount", 100}, {"currency", "CNY"}};

  // No certificate: the name alone addresses nothing.
  EXPECT_REFUSED(a, Errc::missing_field, pay(Json{{"amount", 100}, {"currency", "CNY"}, {"payee", "se-dave"}}));
  // Not a certificate.
  Json junk = base;
  junk["payee_cert"] = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
  EXPECT_REFUSED(a, Errc::bad_field, pay(junk));
  // A certificate for "se-dave" from a root the SE does not trust.
  KeyCert fake = self_made_root("zhuanfu Root CA", w.now);
  Json forged = base;
  forged["payee_cert"] = issue_under(fake, Role::secure_element, "se-dave", "dave", w.now).cert.pem();
  EXPECT_REFUSED(a, Errc::cert_untrusted, pay(forged));
  // A genuine certificate of another role (the bank's custody key).
  Json custody = base;
  custody["payee_cert"] = w.bank.cert.pem();
  EXPECT_REFUSED(a, Errc::cert_wrong_role, pay(custody));
  // b's certificate with another payee named beside it.
  Json mixed = pay_params("se-b", 100);
  mixed["payee"] = "se-dave";
  EXPECT_REFUSED(a, Errc::misaddressed, pay(mixed));
  // Its own certificate.
  EXPECT_REFUSED(a, Errc::misaddressed, pay(pay_params("se-a", 100)));

  // b's certificate alone addresses b (no payee name needed).
  Json by_cert = base;
  by_cert["payee_cert"] = payee_certs.at("se-b");
  Json made = must(pay(by_cert));
  EXPECT_EQ(jws_payload(made.at("note")).at("payee"), "se-b");
  EXPECT_EQ(a.applet->balance("CNY"), 900);

  // Once b's certificate is revoked on a's CRL, a pays b nothing more.
  must(w.ca->revoke(ca::Caller::admin, b.serial, "device lost"));
  must(a.client->update_crl(w.crl_pem()));
  EXPECT_REFUSED(a, Errc::cert_revoked, pay(pay_params("se-b", 100)));
  EXPECT_EQ(a.applet->balance("CNY"), 900);
}

TEST_F(AppletTest, TamperedNoteIsABadSignature) {
  Se& a = active_se("se-a", "alice");
  Se& b = active_se("se-b", "bob");
  w.topup(*a.client, 1000);
  std::string note = must(a.client->payment_note(pay_params("se-b", 100))).at("note");
  // Flip one payload character to another base64url character, and one signature character.
  auto d1 = note.find('.'), d2 = note.rfind('.');
  for (std::size_t pos : {d1 + (d2 - d1) / 2, d2 + 10}) {
    std::string bad = note;
    bad[pos] = bad[pos] == 'A' ? 'B' : 'A';
    SCOPED_TRACE(pos);
    EXPECT_REFUSED(b, Errc::bad_signature, receive(b, bad));
  }
  // A note whose payload was rewritten to a larger amount and re-encoded.
  Json p = jws_payload(note);
  p["amount"] = 100000;
  std::string forged =
      note.substr(0, d1 + 1) + b64url_encode(as_bytes(dump_json(p))) + note.substr(d2);
  EXPECT_REFUSED(b, Errc::bad_signature, receive(b, forged));
  EXPECT_THAT(receive(b, note), IsOk());
  EXPECT_EQ(b.applet->balance("CNY"), 100);
}

TEST_F(AppletTest, NoteFromASoftwareKeyWithASelfMadeCertificateIsUntrusted) {
  Se& b = active_se("se-b", "bob");
  KeyCert fake = self_made_root("zhuanfu Root CA", w.now);
  KeyCert forger = issue_under(fake, Role::secure_element, "se-a", "alice", w.now);
  Json payload = note_payload("se-a", "se-b", 1000, 1);
  EXPECT_REFUSED(b, Errc::cert_untrusted,
                 receive(b, sign_with(forger.key, {forger.cert, fake.cert}, payload)));
  EXPECT_REFUSED(b, Errc::cert_untrusted,
                 receive(b, sign_with(forger.key, {forger.cert}, payload)));
  // A self-signed certificate alone.
  EXPECT_REFUSED(b, Errc::cert_untrusted,
                 receive(b, sign_with(fake.key, {fake.cert}, payload)));
  EXPECT_EQ(b.applet->balance("CNY"), 0);
}

TEST_F(AppletTest, OnlyASecureElementCertificateCreatesValue) {
  Se& b = active_se("se-b", "bob");
  // The bank's genuine custody certificate cannot sign e-cash.
  Json payload = note_payload(kBank, "se-b", 1000, 1);
  EXPECT_REFUSED(b, Errc::cert_wrong_role,
                 receive(b, sign_with(w.bank.key, {w.bank.cert}, payload)));
}

TEST_F(AppletTest, NoteWhosePayerIsNotItsSignerIsRefused) {
  Se& a = active_se("se-a", "alice");
  Se& b = active_se("se-b", "bob");
  (void)a;
  // A genuine SE certificate (se-x) signing a note that claims to come from se-a.
  KeyCert x = w.enrolled_software_se("se-x", "xavier");
  EXPECT_REFUSED(
      b, Errc::issuer_mismatch,
      receive(b, sign_with(x.key, {x.cert}, note_payload("se-a", "se-b", 10, 1))));
  Json id_mismatch = note_payload("se-x", "se-b", 10, 5);
  id_mismatch["id"] = "se-x:6";
  EXPECT_REFUSED(b, Errc::issuer_mismatch, receive(b, sign_with(x.key, {x.cert}, id_mismatch)));
  Json other_ids = note_payload("se-x", "se-b", 10, 5);
  other_ids["id"] = "se-a:5";
  EXPECT_REFUSED(b, Errc::issuer_mismatch, receive(b, sign_with(x.key, {x.cert}, other_ids)));
  Json payer_only = note_payload("se-x", "se-b", 10, 5);
  payer_only["payer"] = "se-a";
  EXPECT_REFUSED(b, Errc::issuer_mismatch, receive(b, sign_with(x.key, {x.cert}, payer_only)));
  // Nor will the SE sign a registry claim for any of them.
  EXPECT_REFUSED(b, Errc::issuer_mismatch, b.client->claim_note(sign_with(x.key, {x.cert}, other_ids)));
  // Other document types are not notes.
  Json ack{{"type", "payment.ack"}, {"v", 1},          {"id", "se-x:7"},
           {"issuer", "se-x"},      {"seq", 7},        {"iat", w.now},
           {"nonce", new_nonce()},  {"note_id", "se-a:1"},   {"payer", "se-a"}, {"payee", "se-b"}};
  EXPECT_REFUSED(b, Errc::unknown_type, receive(b, sign_with(x.key, {x.cert}, ack)));
}

TEST_F(AppletTest, NoteFromARevokedSeIsRefusedAfterTheCrlUpdate) {
  Se& a = active_se("se-a", "alice");
  Se& b = active_se("se-b", "bob");
  w.topup(*a.client, 1000);
  std::string before = must(a.client->payment_note(pay_params("se-b", 100))).at("note");
  std::string after = must(a.client->payment_note(pay_params("se-b", 200))).at("note");
  EXPECT_THAT(receive(b, before), IsOk());

  must(w.ca->revoke(ca::Caller::admin, a.serial, "device lost"));
  must(b.client->update_crl(w.crl_pem()));
  EXPECT_EQ(must(b.client->info()).at("crl_number"), 2);
  EXPECT_REFUSED(b, Errc::cert_revoked, receive(b, after));
  EXPECT_EQ(b.applet->balance("CNY"), 100);
}

TEST_F(AppletTest, NoteIssuedInTheFutureIsNotYetValid) {
  Se& a = active_se("se-a", "alice");
  Se& b = active_se("se-b", "bob");
  w.topup(*a.client, 1000);
  std::int64_t real_now = w.now;
  w.now = real_now + 3600;  // the payer's clock runs an hour ahead
  std::string note = must(a.client->payment_note(pay_params("se-b", 100))).at("note");
  w.now = real_now;
  EXPECT_REFUSED(b, Errc::not_yet_valid, receive(b, note));
}

TEST_F(AppletTest, AStaleCrlRefusesNotesUntilANewOneArrives) {
  Se& a = active_se("se-a", "alice");
  Se& b = active_se("se-b", "bob");
  w.topup(*a.client, 1000);
  std::string note = must(a.client->payment_note(pay_params("se-b", 100))).at("note");
  w.now += 2 * 86400;  // the CRL said "next update within a day"
  EXPECT_REFUSED(b, Errc::cert_untrusted, receive(b, note));
  must(b.client->update_crl(w.crl_pem()));
  EXPECT_THAT(receive(b, note), IsOk());
}

TEST_F(AppletTest, ClaimIsSignedOnlyForANoteThisSeWouldAccept) {
  Se& a = active_se("se-a", "alice");
  Se& b = active_se("se-b", "bob");
  Se& c = active_se("se-c", "carol");
  w.topup(*a.client, 1000);
  std::string note = must(a.client->payment_note(pay_params("se-b", 300))).at("note");
  std::int64_t seq_before = b.applet->seq();
  Json claimed = must(b.client->claim_note(note));
  EXPECT_EQ(b.applet->seq(), seq_before) << "a claim moves no value and spends no seq";
  EXPECT_EQ(b.applet->balance("CNY"), 0) << "a claim credits nothing";
  CertVerifier v(w.ca->root());
  v.set_time(w.now);
  auto claim = must(open_signed_document(claimed.at("claim").get<std::string>(), v, Role::secure_element));
  EXPECT_EQ(claim.doc.type(), "claim");
  EXPECT_EQ(claim.doc.id().rfind("se-b:c:", 0), 0u) << claim.doc.id();
  EXPECT_FALSE(claim.doc.seq());
  EXPECT_NE(must(open_signed_document(must(b.client->claim_note(note)).at("claim").get<std::string>(), v,
                                      Role::secure_element))
                .doc.id(),
            claim.doc.id())
      << "every claim has its own id";
  EXPECT_EQ(claim.doc.str("doc_id"), "se-a:2");
  EXPECT_EQ(claim.doc.str("doc_issuer"), "se-a");
  EXPECT_EQ(claim.doc.json().at("doc_seq"), 2);
  EXPECT_EQ(claim.doc.str("doc_type"), "payment.note");
  EXPECT_EQ(claim.doc.str("processor"), "se-b");
  EXPECT_EQ(claim.doc.str("result_digest"), b64url_encode(sha256(must(jws_parse(note)).payload)));
  // Not for a note addressed elsewhere, nor for one already received.
  EXPECT_REFUSED(c, Errc::misaddressed, c.client->claim_note(note));
  must(receive(b, note));
  EXPECT_REFUSED(b, Errc::replayed, b.client->claim_note(note));
}

// DESIGN.md §7 "the receiver checks the evidence itself": a terminal that skips
// the registry claim, or brings any record but the one this SE won for this
// very note, gets nothing credited.
TEST_F(AppletTest, ANoteIsCreditedOnlyWithTheRegistrysRecordWonByThisSe) {
  Se& a = active_se("se-a", "alice");
  Se& b = active_se("se-b", "bob");
  w.topup(*a.client, 1000);
  std::string note = must(a.client->payment_note(pay_params("se-b", 300))).at("note");
  std::string other = must(a.client->payment_note(pay_params("se-b", 200))).at("note");

  Error e = refused(b, Errc::record_required, [&] { return b.client->receive_note(note, ""); });
  EXPECT_EQ(e.field, "record");
  EXPECT_REFUSED(b, Errc::record_mismatch, b.client->receive_note(note, w.record_for(other, "se-b")));
  EXPECT_REFUSED(b, Errc::replayed, b.client->receive_note(note, w.record_for(note, "se-c")));
  EXPECT_REFUSED(b, Errc::replayed,
                 b.client->receive_note(note, w.record_for(note, "se-b", {{"status", "already_processed"}})));
  EXPECT_REFUSED(b, Errc::seq_reused,
                 b.client->receive_note(note, w.record_for(note, "se-b", {{"status", "seq_reused"}})));
  // The id is ours but the registry holds another document under it.
  EXPECT_REFUSED(b, Errc::record_mismatch,
                 b.client->receive_note(
                     note, w.record_for(note, "se-b", {{"result_digest", b64url_encode(sha256(as_bytes("x")))}})));
  EXPECT_REFUSED(b, Errc::record_mismatch,
                 b.client->receive_note(note, w.record_for(note, "se-b", {{"doc_seq", 9}})));
  // Records from anything but a certified registry key.
  KeyCert fake = self_made_root("zhuanfu Root CA", w.now);
  KeyCert fake_registry = issue_under(fake, Role::registry, kRegistry, "", w.now);
  EXPECT_REFUSED(b, Errc::cert_untrusted,
                 b.client->receive_note(note, sign_with(fake_registry.key, {fake_registry.cert, fake.cert},
                                                        w.record_payload(note, "se-b"))));
  Json bank_record = w.record_payload(note, "se-b");
  bank_record["issuer"] = kBank;
  EXPECT_REFUSED(b, Errc::cert_wrong_role,
                 b.client->receive_note(note, sign_with(w.bank.key, {w.bank.cert}, bank_record)));
  std::string tampered = w.record_for(note, "se-b");
  std::size_t in_signature = tampered.size() - 10;  // an ES256 signature is 86 characters
  tampered[in_signature] = tampered[in_signature] == 'A' ? 'B' : 'A';
  EXPECT_REFUSED(b, Errc::bad_signature, b.client->receive_note(note, tampered));
  EXPECT_REFUSED(b, Errc::bad_field, b.client->call(0x80, se::ins::kReceiveNote, 0, 0,
                                                    as_bytes(dump_json(Json{{"note", note}, {"record", 7}}))));
  EXPECT_EQ(b.applet->balance("CNY"), 0);

  // The genuine record credits once; the same record again is a replay.
  std::string record = w.record_for(note, "se-b");
  EXPECT_EQ(must(b.client->receive_note(note, record)).at("credited_minor"), 300);
  EXPECT_REFUSED(b, Errc::replayed, b.client->receive_note(note, record));
  EXPECT_EQ(b.applet->balance("CNY"), 300);
}

TEST_F(AppletTest, ARecordFromARevokedRegistryKeyIsRefused) {
  Se& a = active_se("se-a", "alice");
  Se& b = active_se("se-b", "bob");
  w.topup(*a.client, 1000);
  std::string note = must(a.client->payment_note(pay_params("se-b", 300))).at("note");
  std::string record = w.record_for(note, "se-b");
  must(w.ca->revoke(ca::Caller::admin, w.registry.cert.serial_hex(), "key compromise"));
  must(b.client->update_crl(w.crl_pem()));
  EXPECT_REFUSED(b, Errc::cert_revoked, b.client->receive_note(note, record));
  EXPECT_EQ(b.applet->balance("CNY"), 0);
}

TEST_F(AppletTest, PaymentNeedsEnoughECashInThatCurrency) {
  Se& a = active_se("se-a", "alice");
  w.topup(*a.client, 1000);
  Error e = refused(a, Errc::insufficient_ecash,
                    [&] { return a.client->payment_note(pay_params("se-b", 1001)); });
  EXPECT_EQ(e.field, "amount");
  EXPECT_REFUSED(a, Errc::insufficient_ecash, a.client->payment_note(pay_params("se-b", 1, "USD")));
  Json body = refused_sw(a, 0x6A84, [&] {
    return send(a, 0x80, se::ins::kPaymentNote, 0, 0, dump_json(pay_params("se-b", 5000)));
  });
  EXPECT_EQ(body.at("code"), "insufficient_ecash");
  // Exactly the balance is fine.
  EXPECT_THAT(a.client->payment_note(pay_params("se-b", 1000)), IsOk());
  EXPECT_EQ(a.applet->balance("CNY"), 0);
}

TEST_F(AppletTest, PaymentOverTheMaximumSinglePaymentIsRefused) {
  Se& a = active_se("se-a", "alice", {{"max_payment_minor", 500}});
  w.topup(*a.client, 1000);
  EXPECT_REFUSED(a, Errc::limit_exceeded, a.client->payment_note(pay_params("se-b", 501)));
  Json body = refused_sw(a, 0x6985, [&] {
    return send(a, 0x80, se::ins::kPaymentNote, 0, 0, dump_json(pay_params("se-b", 600)));
  });
  EXPECT_EQ(body.at("code"), "limit_exceeded");
  EXPECT_THAT(a.client->payment_note(pay_params("se-b", 500)), IsOk());
  EXPECT_EQ(a.applet->balance("CNY"), 500);
}

TEST_F(AppletTest, ReceivingOverTheMaximumBalanceIsRefused) {
  Se& a = active_se("se-a", "alice");
  Se& b = active_se("se-b", "bob", {{"max_balance_minor", 1000}});
  w.topup(*a.client, 5000);
  w.topup(*b.client, 900);
  std::string note = must(a.client->payment_note(pay_params("se-b", 101))).at("note");
  EXPECT_REFUSED(b, Errc::limit_exceeded, receive(b, note));
  std::string fits = must(a.client->payment_note(pay_params("se-b", 100))).at("note");
  EXPECT_THAT(receive(b, fits), IsOk());
  EXPECT_EQ(b.applet->balance("CNY"), 1000);
}

// Each bad amount, currency or field, for each command that takes one.
struct BadInput {
  const char* name;
  Json change;  // merged into good parameters; a null value removes the field
  Errc code;
};

void PrintTo(const BadInput& b, std::ostream* os) { *os << b.name << " " << b.change.dump(); }

class AppletBadInputTest : public AppletTest, public ::testing::WithParamInterface<BadInput> {};

TEST_P(AppletBadInputTest, IsRefusedByEveryValueCommandAndChangesNothing) {
  Se& a = active_se("se-a", "alice");
  w.topup(*a.client, 100000);
  const BadInput& bad = GetParam();
  auto apply = [&](Json p) {
    for (const auto& [k, v] : bad.change.items()) {
      if (v.is_null())
        p.erase(k);
      else
        p[k] = v;
    }
    return p;
  };
  EXPECT_REFUSED(a, bad.code, a.client->payment_note(apply(pay_params("se-b", 100))));
  EXPECT_REFUSED(a, bad.code, a.client->topup_request(apply(bank_params(100))));
  EXPECT_REFUSED(a, bad.code, a.client->deposit_note(apply(bank_params(100))));
}

INSTANTIATE_TEST_SUITE_P(
    Amounts, AppletBadInputTest,
    ::testing::Values(BadInput{"zero", {{"amount", 0}}, Errc::amount_zero},
                      BadInput{"negative", {{"amount", -5}}, Errc::amount_negative},
                      BadInput{"int64_min",
                               {{"amount", std::numeric_limits<std::int64_t>::min()}},
                               Errc::amount_negative},
                      BadInput{
                          "over_max", {{"amount", Amount::kMaxMinor + 1}}, Errc::amount_overflow},
                      BadInput{"int64_max",
                               {{"amount", std::numeric_limits<std::int64_t>::max()}},
                               Errc::amount_overflow},
                      BadInput{"uint64_max",
                               {{"amount", std::numeric_limits<std::uint64_t>::max()}},
                               Errc::amount_overflow},
                      BadInput{"fraction", {{"amount", 1.5}}, Errc::bad_amount},
                      BadInput{"string", {{"amount", "100"}}, Errc::bad_amount},
                      BadInput{"missing", {{"amount", nullptr}}, Errc::missing_field},
                      BadInput{"unknown_currency", {{"currency", "XYZ"}}, Errc::bad_currency},
                      BadInput{"lowercase_currency", {{"currency", "cny"}}, Errc::bad_currency},
                      BadInput{"currency_number", {{"currency", 156}}, Errc::bad_currency},
                      BadInput{"unknown_field", {{"memo", "hi"}}, Errc::unknown_field},
                      BadInput{"signer_fields", {{"seq", 99}}, Errc::unknown_field},
                      BadInput{"issuer", {{"issuer", "se-z"}}, Errc::unknown_field},
                      BadInput{"process_no_bad", {{"process_no", "has space"}}, Errc::bad_field}),
    [](const ::testing::TestParamInfo<BadInput>& info) { return std::string(info.param.name); });

TEST_F(AppletTest, MalformedCommandDataIsRefused) {
  Se& a = active_se("se-a", "alice");
  w.topup(*a.client, 1000);
  struct Case {
    std::string data;
    std::uint16_t sw;
    const char* code;
  };
  const Case cases[] = {
      {"{", 0x6A80, "malformed_json"},
      {"not json", 0x6A80, "malformed_json"},
      {"{\"amount\":1,\"amount\":2,\"currency\":\"CNY\",\"payee\":\"se-b\"}", 0x6A80,
       "duplicate_key"},
      {"{} {}", 0x6A80, "malformed_json"},
      {std::string("{\"amount\":1}\0x", 14), 0x6A80, "malformed_json"},
      {"[1,2]", 0x6A80, "bad_field"},
      {"\"text\"", 0x6A80, "bad_field"},
      {"{\"a\":[[[[[[[[[1]]]]]]]]]}", 0x6A80, "too_deep"},
      {"", 0x6A80, "malformed_json"},
  };
  for (std::uint8_t ins : {se::ins::kTopupRequest, se::ins::kTopupReceipt, se::ins::kPaymentNote,
                           se::ins::kReceiveNote, se::ins::kDepositNote, se::ins::kDepositReceipt,
                           se::ins::kSignQuery, se::ins::kUpdateCrl}) {
    for (const Case& c : cases) {
      SCOPED_TRACE(testing::Message() << "INS " << std::hex << int(ins) << " data " << c.data);
      Json body = refused_sw(a, c.sw, [&] { return send(a, 0x80, ins, 0, 0, c.data); });
      EXPECT_EQ(body.value("code", ""), c.code);
    }
  }
  // Unknown fields are named.
  Error e = refused(a, Errc::unknown_field, [&] {
    return a.client->call(0x80, se::ins::kReceiveNote, 0, 0, as_bytes(R"({"note":"x","extra":1})"));
  });
  EXPECT_EQ(e.field, "extra");
  EXPECT_REFUSED(a, Errc::bad_field,
                 a.client->call(0x80, se::ins::kReceiveNote, 0, 0, as_bytes(R"({"note":5})")));
  EXPECT_REFUSED(a, Errc::malformed_json, receive(a, "no-dots-here"));
  EXPECT_REFUSED(a, Errc::bad_base64url, receive(a, "not.a.jws"));
}

TEST_F(AppletTest, UnknownInstructionAndClassAreRefused) {
  Se& a = active_se("se-a", "alice");
  w.topup(*a.client, 1000);
  Json body = refused_sw(a, 0x6D00, [&] { return send(a, 0x80, 0x99, 0, 0); });
  EXPECT_EQ(body.at("code"), "unknown_instruction");
  // A proprietary instruction under the ISO class, and an ISO one under ours.
  EXPECT_REFUSED_SW(a, 0x6D00,
                    send(a, 0x00, se::ins::kPaymentNote, 0, 0, dump_json(pay_params("se-b", 1))));
  EXPECT_REFUSED_SW(a, 0x6D00, send(a, 0x80, se::ins::kSelect, 4, 0));
  EXPECT_REFUSED_SW(a, 0x6D00, send(a, 0x00, 0xB0, 0, 0));  // READ BINARY: no files here
  // (84 is our class with secure messaging: the channel itself, tested below.)
  for (std::uint8_t cla : {0x01, 0x0C, 0x88, 0x90, 0xFF}) {
    SCOPED_TRACE(int(cla));
    Json b =
        refused_sw(a, 0x6E00, [&] { return send(a, cla, se::ins::kGetData, 0, se::tag::kInfo); });
    EXPECT_EQ(b.at("code"), "bad_apdu");
  }
  EXPECT_REFUSED_SW(a, 0x6A88, send(a, 0x80, se::ins::kGetData, 0, 0x7F));
  // Bytes that are not an APDU at all.
  EXPECT_REFUSED_SW(a, 0x6700, send_raw(a, Bytes{0x80, 0x30, 0x00}));
  EXPECT_REFUSED_SW(a, 0x6700, send_raw(a, Bytes{0x80, 0x30, 0x00, 0x00, 0x05, 0x7B}));
}

// ---------------------------------------------------------------- deposit (§6.4)

TEST_F(AppletTest, DepositNoteDebitsAndItsReceiptSettlesOnce) {
  Se& a = active_se("se-a", "alice");
  w.topup(*a.client, 1000);
  Json made = must(a.client->deposit_note(bank_params(400)));
  EXPECT_EQ(a.applet->balance("CNY"), 600);
  CertVerifier v(w.ca->root());
  v.set_time(w.now);
  auto note =
      must(open_signed_document(made.at("note").get<std::string>(), v, Role::secure_element));
  EXPECT_EQ(note.doc.type(), "deposit.note");
  EXPECT_EQ(note.doc.id(), made.at("id"));
  EXPECT_EQ(note.doc.str("bank"), kBank);
  EXPECT_EQ(must(a.client->info()).at("pending_deposits"), Json::array({made.at("id")}));

  const Json& p = note.doc.json();
  EXPECT_REFUSED(a, Errc::receipt_mismatch,
                 a.client->apply_deposit_receipt(w.deposit_receipt(p, {{"note_id", "se-a:99"}})));
  EXPECT_REFUSED(a, Errc::receipt_mismatch,
                 a.client->apply_deposit_receipt(w.deposit_receipt(p, {{"amount", 500}})));
  EXPECT_REFUSED(a, Errc::receipt_mismatch,
                 a.client->apply_deposit_receipt(w.deposit_receipt(p, {{"account", "acct-9"}})));
  EXPECT_REFUSED(a, Errc::misaddressed,
                 a.client->apply_deposit_receipt(w.deposit_receipt(p, {{"se", "se-b"}})));
  KeyCert bank_b = w.custody_key("bank-b");
  Json rp = jws_payload(w.deposit_receipt(p));
  EXPECT_REFUSED(a, Errc::receipt_mismatch,
                 a.client->apply_deposit_receipt(sign_with(bank_b.key, {bank_b.cert}, rp)));
  KeyCert se_key = w.enrolled_software_se("se-x", "xavier");
  EXPECT_REFUSED(a, Errc::cert_wrong_role,
                 a.client->apply_deposit_receipt(sign_with(se_key.key, {se_key.cert}, rp)));

  std::string receipt = w.deposit_receipt(p);
  Json settled = must(a.client->apply_deposit_receipt(receipt));
  EXPECT_EQ(settled.at("settled"), made.at("id"));
  // The value left when the note was signed: the receipt moves none.
  EXPECT_EQ(a.applet->balance("CNY"), 600);
  EXPECT_EQ(must(a.client->info()).at("pending_deposits"), Json::array());
  EXPECT_REFUSED(a, Errc::replayed, a.client->apply_deposit_receipt(receipt));
  // A top-up receipt is not a deposit receipt.
  Json as_topup = rp;
  as_topup["type"] = "topup.receipt";
  as_topup["request_id"] = as_topup.at("note_id");
  as_topup.erase("note_id");
  EXPECT_REFUSED(a, Errc::unknown_type,
                 a.client->apply_deposit_receipt(sign_with(w.bank.key, {w.bank.cert}, as_topup)));
}

TEST_F(AppletTest, RefusedDepositReturnsTheValueOnce) {
  Se& a = active_se("se-a", "alice");
  w.topup(*a.client, 1000);
  Json made = must(a.client->deposit_note(bank_params(400)));
  EXPECT_EQ(a.applet->balance("CNY"), 600);
  Json p = jws_payload(made.at("note").get<std::string>());
  EXPECT_REFUSED(a, Errc::bad_field,
                 a.client->apply_deposit_receipt(w.deposit_receipt(p, {{"status", "lost"}})));
  std::string refusal = w.deposit_receipt(p, {{"status", "refused"}, {"reason", "account_unknown"}});
  Json back = must(a.client->apply_deposit_receipt(refusal));
  EXPECT_EQ(back.at("refunded_minor"), 400);
  EXPECT_EQ(back.at("reason"), "account_unknown");
  EXPECT_EQ(a.applet->balance("CNY"), 1000);
  EXPECT_EQ(must(a.client->info()).at("pending_deposits"), Json::array());
  // Neither the refusal nor a "credited" receipt for the same note moves value again.
  EXPECT_REFUSED(a, Errc::replayed, a.client->apply_deposit_receipt(refusal));
  EXPECT_REFUSED(a, Errc::replayed, a.client->apply_deposit_receipt(w.deposit_receipt(p)));
  EXPECT_EQ(a.applet->balance("CNY"), 1000);
}

TEST_F(AppletTest, DepositNeedsEnoughECash) {
  Se& a = active_se("se-a", "alice");
  w.topup(*a.client, 1000);
  EXPECT_REFUSED(a, Errc::insufficient_ecash, a.client->deposit_note(bank_params(1001)));
  EXPECT_THAT(a.client->deposit_note(bank_params(1000)), IsOk());
  EXPECT_EQ(a.applet->balance("CNY"), 0);
}

TEST_F(AppletTest, SignQueryMakesAShortLivedAccountQuery) {
  Se& a = active_se("se-a", "alice");
  Json q = must(a.client->sign_query({{"account", kAccount}, {"bank", kBank}}));
  CertVerifier v(w.ca->root());
  v.set_time(w.now);
  auto doc = must(open_signed_document(q.at("query").get<std::string>(), v, Role::secure_element));
  EXPECT_EQ(doc.doc.type(), "account.query");
  EXPECT_EQ(doc.doc.exp(), w.now + 300);
  EXPECT_EQ(a.applet->seq(), 0) << "a query moves no value and spends no seq";
  EXPECT_EQ(doc.doc.id().rfind("se-a:q:", 0), 0u) << doc.doc.id();
  EXPECT_REFUSED(a, Errc::unknown_field,
                 a.client->sign_query({{"account", kAccount}, {"bank", kBank}, {"exp", 1}}));
  EXPECT_REFUSED(a, Errc::missing_field, a.client->sign_query({{"account", kAccount}}));
}

TEST_F(AppletTest, LogAndIssuedRecordWhatHappened) {
  Se& a = active_se("se-a", "alice");
  Se& b = active_se("se-b", "bob");
  w.topup(*a.client, 1000);
  std::string note = must(a.client->payment_note(pay_params("se-b", 300))).at("note");
  must(receive(b, note));
  Json log = must(a.client->log());
  ASSERT_EQ(log.size(), 3u);
  EXPECT_EQ(log[0].at("op"), "topup.request");
  EXPECT_EQ(log[0].at("amount_minor"), 0);
  EXPECT_EQ(log[1].at("op"), "topup");
  EXPECT_EQ(log[1].at("amount_minor"), 1000);
  EXPECT_EQ(log[2].at("op"), "payment.note");
  EXPECT_EQ(log[2].at("amount_minor"), -300);
  EXPECT_EQ(log[2].at("counterparty"), "se-b");
  Json issued = must(a.client->issued());
  ASSERT_EQ(issued.size(), 2u);
  EXPECT_EQ(issued[1], note);
  Json blog = must(b.client->log());
  ASSERT_EQ(blog.size(), 1u);
  EXPECT_EQ(blog[0].at("op"), "receive");
  EXPECT_EQ(blog[0].at("amount_minor"), 300);
}

// ---------------------------------------------------------------- PIN and PUK

TEST_F(AppletTest, WrongPinCountsDownWithStatusWordsThenBlocks) {
  Se& a = active_se("se-a", "alice");
  w.topup(*a.client, 1000);
  must(a.client->select());  // new session: not verified
  Snapshot s0 = snapshot(a);
  se::Response r = send(a, 0x00, se::ins::kVerify, 0x00, 0x80, "000000");
  EXPECT_EQ(r.sw, 0x63C2) << sw_hex(r.sw);
  // The counter is persistent state: the host must save it before answering.
  expect_unchanged(a, s0, /*dirty_expected=*/true, {"pin_tries_left"});
  EXPECT_EQ(a.applet->state_json().at("pin_tries_left"), 2);

  Status st = a.client->verify_pin("999999");
  EXPECT_THAT(st, FailsWith(Errc::pin_wrong));
  EXPECT_NE(st.error().detail.find("63C1"), std::string::npos) << st.error().detail;
  EXPECT_TRUE(a.applet->dirty());

  s0 = snapshot(a);
  r = send(a, 0x00, se::ins::kVerify, 0x00, 0x80, "111111");
  EXPECT_EQ(r.sw, 0x6983) << sw_hex(r.sw);
  EXPECT_EQ(must(parse_json_strict(to_string(r.data))).at("code"), "pin_blocked");
  expect_unchanged(a, s0, true, {"pin_tries_left"});
  EXPECT_EQ(a.applet->state_json().at("pin_tries_left"), 0);

  // Blocked: even the right PIN is refused, and nothing changes any more.
  EXPECT_REFUSED_SW(a, 0x6983, send(a, 0x00, se::ins::kVerify, 0x00, 0x80, kPin));
  EXPECT_REFUSED(a, Errc::pin_blocked, a.client->verify_pin(kPin));
  EXPECT_REFUSED(a, Errc::pin_blocked, a.client->payment_note(pay_params("se-b", 1)));
  EXPECT_REFUSED(a, Errc::pin_blocked, a.client->topup_request(bank_params(1)));
  EXPECT_REFUSED(a, Errc::pin_blocked, a.client->deposit_note(bank_params(1)));
  EXPECT_REFUSED(a, Errc::pin_blocked, receive(a, "x.y.z"));
  EXPECT_REFUSED(a, Errc::pin_blocked,
                 a.client->sign_query({{"account", kAccount}, {"bank", kBank}}));
  EXPECT_EQ(must(a.client->info()).at("pin_tries_left"), 0);
}

TEST_F(AppletTest, ValueCommandsNeedAVerifiedUser) {
  Se& a = active_se("se-a", "alice");
  Se& b = active_se("se-b", "bob");
  w.topup(*a.client, 1000);
  std::string note = must(a.client->payment_note(pay_params("se-b", 100))).at("note");
  Json req = jws_payload(must(a.client->topup_request(bank_params(100))).at("request"));
  must(a.client->select());
  must(b.client->select());
  Json body = refused_sw(a, 0x6982, [&] {
    return send(a, 0x80, se::ins::kPaymentNote, 0, 0, dump_json(pay_params("se-b", 1)));
  });
  EXPECT_EQ(body.at("code"), "not_verified");
  EXPECT_REFUSED(a, Errc::not_verified, a.client->topup_request(bank_params(1)));
  EXPECT_REFUSED(a, Errc::not_verified, a.client->apply_topup_receipt(w.topup_receipt(req)));
  EXPECT_REFUSED(a, Errc::not_verified, a.client->deposit_note(bank_params(1)));
  EXPECT_REFUSED(a, Errc::not_verified,
                 a.client->sign_query({{"account", kAccount}, {"bank", kBank}}));
  EXPECT_REFUSED(b, Errc::not_verified, receive(b, note));
  // GET DATA needs no PIN; VERIFY without data reports the counter without using a try.
  EXPECT_THAT(a.client->info(), IsOk());
  EXPECT_REFUSED_SW(a, 0x63C3, send(a, 0x00, se::ins::kVerify, 0x00, 0x80));
  // A power cycle forgets the verification as well, and the secure session with it:
  // the terminal authenticates again, and the user must verify again.
  must(a.client->verify_pin(kPin));
  EXPECT_EQ(send(a, 0x00, se::ins::kVerify, 0x00, 0x80).sw, 0x9000);
  a.applet->reset_session();
  EXPECT_FALSE(a.applet->secure_session());
  EXPECT_REFUSED(a, Errc::not_verified, a.client->topup_request(bank_params(1)));
  // Bad P1/P2 for VERIFY.
  EXPECT_REFUSED_SW(a, 0x6700, send(a, 0x00, se::ins::kVerify, 0x00, 0x01, kPin));
}

TEST_F(AppletTest, RightPinRestoresTheCounter) {
  Se& a = active_se("se-a", "alice");
  must(a.client->select());
  EXPECT_THAT(a.client->verify_pin("000000"), FailsWith(Errc::pin_wrong));
  EXPECT_THAT(a.client->verify_pin(kPin), IsOk());
  EXPECT_TRUE(a.applet->dirty());  // the counter went back up
  EXPECT_EQ(must(a.client->info()).at("pin_tries_left"), 3);
  EXPECT_THAT(a.client->verify_pin(kPin), IsOk());
  EXPECT_FALSE(a.applet->dirty());  // nothing to save this time
}

TEST_F(AppletTest, BiometricTemplateVerifiesAndSharesThePinCounter) {
  Bytes tmpl = bytes_of("alice's fingerprint template");
  Se& a = active_se("se-a", "alice", {{"bio_hash", hex_encode(sha256(tmpl))}});
  Se& b = active_se("se-b", "bob");  // enrolled without a template
  must(a.client->select());
  EXPECT_THAT(a.client->verify_biometric(bytes_of("someone else")), FailsWith(Errc::pin_wrong));
  EXPECT_EQ(must(a.client->info()).at("pin_tries_left"), 2);
  EXPECT_THAT(a.client->verify_biometric(tmpl), IsOk());
  Json info = must(a.client->info());
  EXPECT_EQ(info.at("verified"), true);
  EXPECT_EQ(info.at("pin_tries_left"), 3);
  EXPECT_THAT(a.client->topup_request(bank_params(100)), IsOk());
  must(b.client->select());
  EXPECT_THAT(b.client->verify_biometric(tmpl), FailsWith(Errc::pin_wrong));
  EXPECT_EQ(must(b.client->info()).at("verified"), false);
}

TEST_F(AppletTest, PukUnblocksAndSetsANewPin) {
  Se& a = active_se("se-a", "alice");
  w.topup(*a.client, 1000);
  must(a.client->select());
  for (int i = 0; i < 3; ++i) (void)a.client->verify_pin("000000");
  EXPECT_THAT(a.client->verify_pin(kPin), FailsWith(Errc::pin_blocked));
  // A bad new PIN is refused before the PUK is even compared (no try used).
  EXPECT_REFUSED(a, Errc::bad_field, a.client->unblock(kPuk, "12"));
  EXPECT_REFUSED(a, Errc::unknown_field,
                 a.client->call(0x00, se::ins::kResetRetry, 0, 0x80,
                                as_bytes(R"({"puk":"12345678","new_pin":"4321","x":1})")));

  EXPECT_THAT(a.client->unblock(kPuk, "4321"), IsOk());
  EXPECT_TRUE(a.applet->dirty());
  Json info = must(a.client->info());
  EXPECT_EQ(info.at("pin_tries_left"), 3);
  EXPECT_EQ(info.at("verified"), false);
  EXPECT_REFUSED(a, Errc::not_verified, a.client->payment_note(pay_params("se-b", 1)));
  EXPECT_THAT(a.client->verify_pin(kPin), FailsWith(Errc::pin_wrong));
  EXPECT_THAT(a.client->verify_pin("4321"), IsOk());
  EXPECT_THAT(a.client->payment_note(pay_params("se-b", 1)), IsOk());
  EXPECT_EQ(a.applet->balance("CNY"), 999);
}

TEST_F(AppletTest, WrongPukCountsDownThePukCounter) {
  Se& a = active_se("se-a", "alice");
  must(a.client->select());
  for (int i = 0; i < 3; ++i) (void)a.client->verify_pin("000000");
  Snapshot s0 = snapshot(a);
  se::Response r =
      send(a, 0x00, se::ins::kResetRetry, 0x00, 0x80, R"({"puk":"87654321","new_pin":"4321"})");
  // 63Cx reports the PUK's tries left, not the (blocked) PIN's.
  EXPECT_EQ(r.sw, 0x63C9) << sw_hex(r.sw);
  expect_unchanged(a, s0, true, {"puk_tries_left"});
  EXPECT_EQ(a.applet->state_json().at("puk_tries_left"), 9);
  Status st = a.client->unblock("87654321", "4321");
  EXPECT_THAT(st, FailsWith(Errc::pin_wrong));
  EXPECT_NE(st.error().detail.find("8 tries left"), std::string::npos) << st.error().detail;
  // The PIN stays blocked, and the right PUK still works and restores the PUK counter.
  EXPECT_THAT(a.client->verify_pin(kPin), FailsWith(Errc::pin_blocked));
  EXPECT_THAT(a.client->unblock(kPuk, "4321"), IsOk());
  EXPECT_EQ(a.applet->state_json().at("puk_tries_left"), 10);
}

TEST_F(AppletTest, TenWrongPuksBlockThePukForGood) {
  Se& a = active_se("se-a", "alice");
  must(a.client->select());
  for (int i = 0; i < 3; ++i) (void)a.client->verify_pin("000000");
  for (int i = 0; i < 9; ++i)
    EXPECT_THAT(a.client->unblock("87654321", "4321"), FailsWith(Errc::pin_wrong));
  Snapshot s0 = snapshot(a);
  se::Response last =
      send(a, 0x00, se::ins::kResetRetry, 0x00, 0x80, R"({"puk":"87654321","new_pin":"4321"})");
  EXPECT_EQ(last.sw, 0x6983) << sw_hex(last.sw);
  expect_unchanged(a, s0, true, {"puk_tries_left"});
  EXPECT_REFUSED(a, Errc::pin_blocked, a.client->unblock(kPuk, "4321"));
  EXPECT_REFUSED(a, Errc::pin_blocked, a.client->verify_pin(kPin));
}

// ---------------------------------------------------------------- CRL

TEST_F(AppletTest, CrlNeverGoesBackAndMustComeFromTheRoot) {
  Se& a = active_se("se-a", "alice");
  std::string crl1 = w.crl_pem();
  KeyCert other = w.enrolled_software_se("se-x", "xavier");
  must(w.ca->revoke(ca::Caller::admin, other.cert.serial_hex(), "test"));
  std::string crl2 = w.crl_pem();
  EXPECT_THAT(a.client->update_crl(crl2), IsOk());
  EXPECT_EQ(must(a.client->info()).at("crl_number"), 2);
  EXPECT_REFUSED(a, Errc::replayed, a.client->update_crl(crl1));
  // The same CRL again is accepted and changes nothing.
  EXPECT_THAT(a.client->update_crl(crl2), IsOk());
  EXPECT_FALSE(a.applet->dirty());

  // A CRL from a root with the same name but another key, and from another root.
  KeyCert same_name = self_made_root("zhuanfu Root CA", w.now);
  KeyCert other_root = self_made_root("Mallory Root", w.now);
  CrlParams p;
  p.this_update = w.now - 60;
  p.next_update = w.now + 86400;
  p.number = 99;
  EXPECT_REFUSED(a, Errc::bad_signature,
                 a.client->update_crl(must(make_crl(same_name.cert, same_name.key, p)).pem()));
  EXPECT_REFUSED(a, Errc::cert_untrusted,
                 a.client->update_crl(must(make_crl(other_root.cert, other_root.key, p)).pem()));
  EXPECT_REFUSED(a, Errc::cert_malformed,
                 a.client->update_crl("-----BEGIN X509 CRL-----\nAAAA\n-----END X509 CRL-----\n"));
}

// ---------------------------------------------------------------- expiry and reclaim

// Issue 9: a note the payee never received comes back to the payer after its
// expiry, once, and only on the registry's record of the payer's own reclaim.
TEST_F(AppletTest, AnUnreceivedNoteComesBackOnceAfterItsExpiry) {
  Se& a = active_se("se-a", "alice");
  Se& b = active_se("se-b", "bob");
  Json paid = pay_for_a_minute(a, 300);
  const std::string note = paid.at("note");
  const std::string id = paid.at("id");
  EXPECT_EQ(jws_payload(note).at("exp"), w.now + 60);
  Json open = must(a.client->open_notes());
  ASSERT_EQ(open.size(), 1u);
  EXPECT_EQ(open[0].at("id"), id);
  EXPECT_EQ(open[0].at("amount"), 300);
  EXPECT_EQ(open[0].at("payee"), "se-b");
  EXPECT_FALSE(open[0].contains("digest")) << "the terminal sees what it needs, not the SE's bookkeeping";

  // Before the expiry the payee may still receive it: no reclaim claim.
  w.now += 59;
  EXPECT_REFUSED(a, Errc::not_expired, a.client->reclaim_claim(id));
  EXPECT_REFUSED(a, Errc::not_found, a.client->reclaim_claim("se-a:99"));
  w.now += 1;
  Json claim = jws_payload(must(a.client->reclaim_claim(id)).at("claim"));
  EXPECT_EQ(claim.at("type"), "claim");
  EXPECT_EQ(claim.at("doc_id"), id);
  EXPECT_EQ(claim.at("doc_issuer"), "se-a");
  EXPECT_EQ(claim.at("processor"), "se-a");
  EXPECT_EQ(claim.at("doc_type"), "payment.note");
  EXPECT_EQ(claim.at("doc_exp"), w.now);
  EXPECT_EQ(claim.at("result_digest"), b64url_encode(sha256(must(jws_parse(note)).payload)))
      << "the same digest the payee would claim, so the registry sees one note";
  EXPECT_EQ(a.applet->seq(), 2) << "a claim spends no sequence number";

  // Records that must not credit anything.
  EXPECT_REFUSED(a, Errc::record_mismatch,
                 a.client->close_note(id, w.record_for(note, "se-a", {{"claimed_at", w.now - 1}})));
  EXPECT_REFUSED(a, Errc::record_mismatch, a.client->close_note(id, w.record_for(note, "se-c")));
  EXPECT_REFUSED(a, Errc::record_mismatch,
                 a.client->close_note(id, w.record_for(note, "se-a", {{"status", "already_processed"}})));
  EXPECT_REFUSED(a, Errc::seq_reused,
                 a.client->close_note(id, w.record_for(note, "se-a", {{"status", "seq_reused"}})));
  EXPECT_REFUSED(a, Errc::record_mismatch,
                 a.client->close_note(
                     id, w.record_for(note, "se-a", {{"result_digest", b64url_encode(sha256(as_bytes("x")))}})));
  EXPECT_REFUSED(a, Errc::record_mismatch, a.client->close_note(id, w.record_for(note, "se-a", {{"doc_seq", 1}})));
  KeyCert fake = self_made_root("zhuanfu Root CA", w.now);
  KeyCert fake_registry = issue_under(fake, Role::registry, kRegistry, "", w.now);
  EXPECT_REFUSED(a, Errc::cert_untrusted,
                 a.client->close_note(id, sign_with(fake_registry.key, {fake_registry.cert, fake.cert},
                                                    w.record_payload(note, "se-a"))));
  EXPECT_EQ(a.applet->balance("CNY"), 700);

  // The registry's record of the reclaim credits once, and survives a restart.
  std::string record = w.record_for(note, "se-a");
  Json back = must(a.client->close_note(id, record));
  EXPECT_EQ(back.at("outcome"), "reclaimed");
  EXPECT_EQ(back.at("credited_minor"), 300);
  EXPECT_EQ(a.applet->balance("CNY"), 1000);
  EXPECT_REFUSED(a, Errc::not_found, a.client->close_note(id, record));
  EXPECT_REFUSED(a, Errc::not_found, a.client->reclaim_claim(id));
  reload(a);
  must(a.client->verify_pin(kPin));
  EXPECT_REFUSED(a, Errc::not_found, a.client->close_note(id, record));
  EXPECT_EQ(a.applet->balance("CNY"), 1000);
  Json info = must(a.client->info());
  EXPECT_EQ(info.at("reclaimed_minor").at("CNY"), 300);
  EXPECT_EQ(info.at("open_notes"), 0);
  EXPECT_EQ(must(a.client->log()).back().at("op"), "reclaim");

  // The payee is too late: its SE signs no claim and credits on no record made after the expiry.
  EXPECT_REFUSED(b, Errc::expired, b.client->claim_note(note));
  EXPECT_REFUSED(b, Errc::expired, b.client->receive_note(note, w.record_for(note, "se-b")));
  EXPECT_EQ(b.applet->balance("CNY"), 0);
}

TEST_F(AppletTest, ANoteClaimedInTimeIsCreditedAfterItsExpiryAndClosesThePayersEntry) {
  Se& a = active_se("se-a", "alice");
  Se& b = active_se("se-b", "bob");
  Json paid = pay_for_a_minute(a, 300);
  const std::string note = paid.at("note");
  const std::string id = paid.at("id");
  paid["exp"] = jws_payload(note).at("exp");
  // Claimed a second before the expiry; the payee's terminal crashed and comes back later.
  std::string record = w.record_for(note, "se-b", {{"claimed_at", w.now + 59}});
  w.now += 600;
  EXPECT_EQ(must(b.client->receive_note(note, record)).at("credited_minor"), 300);
  // The payer cannot take it back: the record names the payee, so the note just closes.
  Json closed = must(a.client->close_note(
      id, w.record_for(note, "se-b", {{"status", "already_processed"}, {"claimed_at", paid.value("exp", 0) - 1}})));
  EXPECT_EQ(closed.at("outcome"), "received");
  EXPECT_EQ(a.applet->balance("CNY"), 700);
  EXPECT_EQ(must(a.client->open_notes()).size(), 0u);
  EXPECT_REFUSED(a, Errc::not_found, a.client->reclaim_claim(id));
}

TEST_F(AppletTest, ANoteLivesThirtyDaysUnlessTheSeOrThePaymentSaysOtherwise) {
  Se& a = active_se("se-a", "alice");
  Se& c = active_se("se-c", "carol", Json{{"note_ttl_s", 7 * 86400}});
  w.topup(*a.client, 1000);
  w.topup(*c.client, 1000);
  EXPECT_EQ(jws_payload(must(a.client->payment_note(pay_params("se-b", 1))).at("note")).at("exp"),
            w.now + 30 * 86400);
  EXPECT_EQ(jws_payload(must(c.client->payment_note(pay_params("se-b", 1))).at("note")).at("exp"),
            w.now + 7 * 86400);
  for (Json bad : {Json(0), Json(-5), Json(366 * 86400 + 1), Json("60")}) {
    Json p = pay_params("se-b", 1);
    p["expires_in_s"] = bad;
    EXPECT_REFUSED(a, Errc::bad_field, a.client->payment_note(p));
  }
  Json p = pay_params("se-b", 1);
  p["expires_in_s"] = 366 * 86400;
  EXPECT_THAT(a.client->payment_note(p), IsOk());
}

TEST_F(AppletTest, AnSeKeepsABoundedNumberOfOpenNotes) {
  Se& a = active_se("se-a", "alice");
  w.topup(*a.client, 100000);
  std::string first_note, first_id;
  for (std::size_t i = 0; i < Applet::kMaxOutstanding; ++i) {
    Json paid = must(a.client->payment_note(pay_params("se-b", 1)));
    if (i == 0) first_note = paid.at("note"), first_id = paid.at("id");
  }
  Error e = refused(a, Errc::limit_exceeded, [&] { return a.client->payment_note(pay_params("se-b", 1)); });
  EXPECT_EQ(e.field, "outstanding");
  // The payee's record of one of them makes room again.
  must(a.client->close_note(first_id, w.record_for(first_note, "se-b")));
  EXPECT_THAT(a.client->payment_note(pay_params("se-b", 1)), IsOk());
}

// ---------------------------------------------------------------- persistence

TEST_F(AppletTest, StateRoundTripKeepsValueCountersAndExactlyOnceSets) {
  Se& a = active_se("se-a", "alice");
  Se& b = active_se("se-b", "bob");
  w.topup(*a.client, 1000);
  std::string note = must(a.client->payment_note(pay_params("se-b", 300))).at("note");
  std::string note2 = must(a.client->payment_note(pay_params("se-b", 50))).at("note");
  must(receive(b, note));
  Json pending = jws_payload(must(a.client->topup_request(bank_params(200))).at("request"));
  Json dep = jws_payload(must(a.client->deposit_note(bank_params(100))).at("note"));
  Json a_state = a.applet->state_json();
  Json b_info = must(b.client->info());

  reload(a);
  reload(b);
  EXPECT_EQ(a.applet->state_json(), a_state);
  EXPECT_EQ(a.applet->balance("CNY"), 550);
  EXPECT_EQ(a.applet->seq(), 5);
  EXPECT_EQ(b.applet->balance("CNY"), 300);
  Json info = must(b.client->info());
  EXPECT_EQ(info.at("verified"), false);  // a restart is a new session
  info["verified"] = true;
  EXPECT_EQ(info, b_info);

  // The restored SEs need the PIN again, then behave exactly as before.
  EXPECT_REFUSED(b, Errc::not_verified, receive(b, note2));
  must(a.client->verify_pin(kPin));
  must(b.client->verify_pin(kPin));
  EXPECT_REFUSED(b, Errc::replayed, receive(b, note));
  EXPECT_THAT(receive(b, note2), IsOk());
  EXPECT_THAT(a.client->apply_topup_receipt(w.topup_receipt(pending)), IsOk());
  EXPECT_THAT(a.client->apply_deposit_receipt(w.deposit_receipt(dep)), IsOk());
  EXPECT_EQ(a.applet->balance("CNY"), 750);
  // The counter continues: no sequence number is ever signed twice.
  Json next = must(a.client->payment_note(pay_params("se-b", 1)));
  EXPECT_EQ(next.at("id"), "se-a:6");
}

// The received set keeps only the newest ids (se::ReceivedIds); a note issued
// at or before the floor of what it forgot is refused, even one it never saw,
// because the SE cannot tell it from one it credited.
TEST_F(AppletTest, ANoteOlderThanWhatTheSeForgotIsRefusedAndChangesNothing) {
  Se& a = active_se("se-a", "alice");
  Se& b = active_se("se-b", "bob");
  w.topup(*a.client, 1000);
  std::string first = must(a.client->payment_note(pay_params("se-b", 100))).at("note");
  must(receive(b, first));
  std::string old_note = must(a.client->payment_note(pay_params("se-b", 200))).at("note");
  // As if bob had since received so many newer notes that the floor passed old_note's iat.
  Json state = b.applet->state_json();
  state["received_floor_iat"] = jws_payload(old_note).at("iat");
  b.applet = must(Applet::from_state(state), "from_state");
  attach_client(b);
  must(b.client->verify_pin(kPin));
  Snapshot before = snapshot(b);
  EXPECT_REFUSED(b, Errc::replayed, receive(b, old_note));
  EXPECT_REFUSED(b, Errc::replayed, b.client->claim_note(old_note));
  expect_unchanged(b, before);
  EXPECT_EQ(b.applet->balance("CNY"), 100);
  // The floor is kept: a reload does not forget it.
  reload(b);
  must(b.client->verify_pin(kPin));
  EXPECT_EQ(b.applet->state_json().at("received_floor_iat"), jws_payload(old_note).at("iat"));
  // A newer note is still taken.
  w.now += 1;
  std::string newer = must(a.client->payment_note(pay_params("se-b", 300))).at("note");
  must(receive(b, newer));
  EXPECT_EQ(b.applet->balance("CNY"), 400);
}

TEST_F(AppletTest, MalformedStateIsAnErrorNotACrash) {
  Se& a = active_se("se-a", "alice");
  Json good = a.applet->state_json();
  EXPECT_THAT(Applet::from_state(Json::object()), FailsWith(Errc::bad_field));
  Json wrong_format = good;
  wrong_format["format"] = "zf-se-state-0";
  EXPECT_THAT(Applet::from_state(wrong_format), FailsWith(Errc::unknown_version));
  Json wrong_type = good;
  wrong_type["seq"] = "five";
  EXPECT_FALSE(Applet::from_state(wrong_type));
  Json bad_key = good;
  bad_key["key"] = "AAAA";
  EXPECT_FALSE(Applet::from_state(bad_key));
}

TEST_F(AppletTest, ThePrivateKeyNeverLeavesInAnyResponse) {
  Se& a = active_se("se-a", "alice", {}, /*record=*/true);
  Se& b = active_se("se-b", "bob", {}, /*record=*/true);
  // Every command there is, successful and refused.
  w.topup(*a.client, 1000);
  std::string note = must(a.client->payment_note(pay_params("se-b", 300))).at("note");
  must(receive(b, note));
  (void)receive(b, note);
  Json dep = jws_payload(must(a.client->deposit_note(bank_params(100))).at("note"));
  must(a.client->apply_deposit_receipt(w.deposit_receipt(dep)));
  must(a.client->sign_query({{"account", kAccount}, {"bank", kBank}}));
  for (std::uint8_t tag :
       {se::tag::kInfo, se::tag::kCertificate, se::tag::kLog, se::tag::kIssued, std::uint8_t{0x04}})
    (void)send(a, 0x80, se::ins::kGetData, 0, tag);
  for (std::uint8_t ins = 0; ins < 0xFF; ++ins) {
    (void)send(a, 0x80, ins, 0, 0);
    (void)send(a, 0x00, ins, 0, 0);
  }
  (void)a.client->verify_pin("000000");
  (void)a.client->unblock("00000000", "1111");
  (void)a.client->personalize({{"user_id", "alice"}});
  ASSERT_GT(a.responses.size(), 500u);

  for (Se* se : {&a, &b}) {
    Json state = se->applet->state_json();
    for (const char* field : {"key", "attest_key"}) {
      std::string b64 = state.at(field);
      Bytes der = must(b64url_decode(b64));
      ASSERT_GT(der.size(), 32u);
      // The raw private scalar: ECPrivateKey { version 1, privateKey OCTET STRING (32) }.
      const Bytes marker{0x02, 0x01, 0x01, 0x04, 0x20};
      auto at = std::search(der.begin(), der.end(), marker.begin(), marker.end());
      ASSERT_NE(at, der.end());
      Bytes scalar(at + 5, at + 5 + 32);
      std::vector<Bytes> needles{der, scalar, bytes_of(b64), bytes_of(b64url_encode(scalar)),
                                 bytes_of(hex_encode(scalar))};
      // The search works: the sealed state itself does hold the key.
      std::string state_text = dump_json(state);
      EXPECT_NE(state_text.find(b64), std::string::npos);
      for (const Bytes& response : se->responses) {
        for (const Bytes& needle : needles) {
          auto hit = std::search(response.begin(), response.end(), needle.begin(), needle.end());
          EXPECT_EQ(hit, response.end()) << se->id << ": " << field << " found in a response";
        }
      }
    }
  }
}

}  // namespace
}  // namespace zf::test
