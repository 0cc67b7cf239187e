// SE tests with the real registry in-process (on its own clock, with its
// SQLite store): real applets driven over their APDU interface by terminals
// the test controls, as the attack tests need them.
#pragma once

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/claims.h"
#include "registry/registry.h"
#include "se_fixture.h"

namespace zf::test {

using registry::RecordStatus;
using registry::Registry;
using se::Applet;
using wallet::SeClient;

constexpr const char* kRealRegistry = "registry-r";

// One SE and the terminal that holds it. `skew` is how far its host's clock
// is from the world's (the SE has no clock of its own: the host tells it).
struct Se {
  std::string id;
  std::string user;
  std::unique_ptr<Applet> applet;
  std::unique_ptr<SeClient> client;
  SecretBytes pairing_key;
  std::int64_t skew = 0;
  Json saved;  // the state its host last made durable (face-to-face tests)
};

class SeRegistryTest : public ::testing::Test {
 protected:
  void SetUp() override {
    reg_dir = (w.world.tmp.path() / "registry").string();
    registry::InitOptions o{reg_dir, kRealRegistry, "https://127.0.0.1:1", w.root_pem(), {}};
    ASSERT_TRUE(registry::init_registry(o, [this](const std::string& role, const std::string& csr) {
      ca::CertRequest req;
      req.role = role;
      req.csr_pem = csr;
      auto issued = w.ca->issue(ca::Caller::admin, req);
      if (!issued) return Result<Certificate>(std::unexpected(issued.error()));
      return Result<Certificate>(std::move(issued->cert));
    }));
    open_registry();
  }

  void open_registry() {
    reg.reset();
    reg = must(Registry::open(reg_dir), "open registry");
    reg->set_clock([this] { return static_cast<std::time_t>(w.now + registry_skew); });
    ASSERT_TRUE(reg->install_crl(must(w.ca->crl(), "CRL")));
  }

  Se& active_se(const std::string& id, const std::string& user, const Json& limits = {},
                int cert_days = 0) {
    auto dev = must(ca::make_device(w.world.mfr_dir, id), "make_device");
    auto se = std::make_unique<Se>();
    se->id = id;
    se->user = user;
    se->applet = std::make_unique<Applet>(id, std::move(dev.key), std::move(dev.chain));
    attach(*se);
    Se* p = se.get();
    se->pairing_key = must(
        se->client->pair("", [p](const std::string& code) { return code == p->applet->display(); }),
        "pair");
    if (cert_days == 0) {
      w.activate(*se->client, user, limits);
    } else {
      // As SeWorld::activate, with a certificate valid for `cert_days` only.
      Json params{{"user_id", user}, {"pin", kPin}, {"puk", kPuk}, {"root", w.root_pem()}};
      if (limits.is_object()) params.update(limits);
      Json csr = must(se->client->personalize(params), "personalize");
      auto code = must(w.ca->issue_enrollment_code(ca::Caller::registration_authority, user, 600));
      ca::CertRequest req;
      req.role = "secure-element";
      req.csr_pem = csr.at("csr").get<std::string>();
      req.attestation = csr.at("attestation");
      req.enrollment_code = code.code;
      req.validity_days = cert_days;
      auto issued = must(w.ca->issue(ca::Caller::anonymous, req), "CA issue");
      must(se->client->install_certificate(issued.cert.pem()), "install certificate");
      must(se->client->update_crl(w.crl_pem()), "update CRL");
      must(se->client->select(), "select");
      must(se->client->verify_pin(kPin), "verify PIN");
    }
    certs[id] = must(se->client->certificate_pem(), "certificate");
    ses.push_back(std::move(se));
    return *ses.back();
  }
  void attach(Se& se) {
    Se* p = &se;
    se.client = std::make_unique<SeClient>([this, p](ByteView apdu) -> Result<Bytes> {
      return p->applet->process_raw(apdu, w.now + p->skew);
    });
    if (se.pairing_key.size()) se.client->set_pairing_key(se.pairing_key);
  }
  // The host loads a sealed state: the current one after a power cycle, or an
  // older copy the attacker kept.
  void load(Se& se, const Json& state) {
    se.applet = must(Applet::from_state(state), "from_state");
    attach(se);
    must(se.client->verify_pin(kPin), "verify PIN");
  }

  Json pay_params(const Se& payee, std::int64_t amount,
                  std::optional<std::int64_t> ttl = std::nullopt) {
    Json p{{"amount", amount},
           {"currency", "CNY"},
           {"payee", payee.id},
           {"payee_cert", certs.at(payee.id)}};
    if (ttl) p["expires_in_s"] = *ttl;
    return p;
  }
  struct Paid {
    std::string note, id;
    std::int64_t exp = 0;
  };
  Paid pay(Se& payer, const Se& payee, std::int64_t amount,
           std::optional<std::int64_t> ttl = std::nullopt) {
    Json r = must(payer.client->payment_note(pay_params(payee, amount, ttl)), "payment note");
    Paid p{r.at("note"), r.at("id"), 0};
    p.exp = jws_payload(p.note).at("exp").get<std::int64_t>();
    return p;
  }

  // The registry's answer to a claim, whatever its status.
  Result<registry::ClaimAnswer> at_registry(const std::string& claim_jws) {
    return reg->claim(claim_jws);
  }
  registry::RecordView view(const std::string& record_jws) {
    return must(registry::open_record(record_jws, CertVerifier(w.ca->root()), kRealRegistry),
                "record");
  }
  // CLAIM NOTE, the registry, RECEIVE NOTE: what an honest payee terminal does.
  Result<Json> receive(Se& payee, const std::string& note) {
    auto claim = payee.client->claim_note(note);
    if (!claim) return std::unexpected(claim.error());
    auto rec = at_registry(claim->at("claim").get<std::string>());
    if (!rec) return std::unexpected(rec.error());
    return payee.client->receive_note(note, rec->record_jws);
  }
  // RECLAIM CLAIM, the registry, CLOSE NOTE: what `zf wallet reclaim` does.
  Result<Json> reclaim(Se& payer, const std::string& id) {
    auto claim = payer.client->reclaim_claim(id);
    if (!claim) return std::unexpected(claim.error());
    auto rec = at_registry(claim->at("claim").get<std::string>());
    if (!rec) return std::unexpected(rec.error());
    return payer.client->close_note(id, rec->record_jws);
  }

  std::int64_t balance(const Se& se) const { return se.applet->balance("CNY"); }
  // Moves the world's clock (CA, registry, every SE host) and gives the
  // registry and `fresh` SEs the CA's CRL of the new day.
  void days_pass(std::int64_t days, std::initializer_list<Se*> fresh) {
    w.now += days * 86400;
    ASSERT_TRUE(reg->install_crl(must(w.ca->crl(), "CRL")));
    for (Se* se : fresh) must(se->client->update_crl(w.crl_pem()), "update CRL");
  }
  registry::RegistryStats stats() { return must(reg->store().stats(), "stats"); }
  std::vector<registry::Alert> alerts() { return must(reg->alerts(0, 1000), "alerts"); }

  // Expects `r` to be refused with `code` and the SE to have changed nothing.
  template <class F>
  void refused(Se& se, Errc code, F&& command, const char* what) {
    SCOPED_TRACE(what);
    Json before = se.applet->state_json();
    auto r = command();
    if (r) {
      ADD_FAILURE() << "succeeded; expected " << errc_name(code) << ": " << r->dump();
      return;
    }
    EXPECT_EQ(r.error().code, code) << r.error().message();
    Json after = se.applet->state_json();
    EXPECT_EQ(after.at("balances"), before.at("balances"));
    EXPECT_EQ(after.at("outstanding_notes"), before.at("outstanding_notes"));
    EXPECT_EQ(after.at("received_notes"), before.at("received_notes"));
    EXPECT_EQ(after.at("reclaimed_minor"), before.at("reclaimed_minor"));
    EXPECT_EQ(after.at("seq"), before.at("seq"));
  }
  // Expects the registry to refuse the claim with `code` and store nothing.
  void registry_refuses(const std::string& claim_jws, Errc code, const char* what) {
    SCOPED_TRACE(what);
    auto before = stats();
    auto r = at_registry(claim_jws);
    if (r) {
      ADD_FAILURE() << "the registry recorded it: " << registry::record_status_name(r->status);
      return;
    }
    EXPECT_EQ(r.error().code, code) << r.error().message();
    EXPECT_EQ(stats().records, before.records);
    EXPECT_EQ(stats().alerts, before.alerts);
  }
  // A claim signed by the bank's custody key (a CA-issued certificate), for
  // document fields it chooses: what a bank, honest or not, can send.
  std::string bank_claim(const registry::ClaimFields& f) {
    KeySigner s(w.bank.key);
    return must(registry::sign_claim(f, JwsSigner{&s, {w.bank.cert, w.ca->root()}}, w.now),
                "bank claim");
  }

  SeWorld w;
  std::int64_t registry_skew = 0;
  std::string reg_dir;
  std::unique_ptr<Registry> reg;
  std::map<std::string, std::string> certs;
  std::vector<std::unique_ptr<Se>> ses;
};

#define SE_REFUSES(se, code, expr) refused((se), (code), [&] { return (expr); }, #expr)

}  // namespace zf::test
