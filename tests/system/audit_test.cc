// `zf audit` itemizes the notes in flight from the registry's records
// (DESIGN.md §3, §7): every payment note an SE still lists is received, claimed
// (the payee's terminal must retry), in transit, or seq_reused (a restored or
// cloned payer); the items must add up to the SE counters, and a registry alert
// fails the audit.
#include <filesystem>

#include "core/claims.h"
#include "registry/client.h"
#include "store/sqlite.h"
#include "system_fixture.h"

namespace zf::test {
namespace {

class NotesAuditTest : public NetworkTest {
 protected:
  std::vector<std::string> users() const override { return {"alice", "bob", "carol"}; }

  // The audit's not-received entry for a note id (null if it is not listed).
  static Json item(const Json& audit, const std::string& id) {
    for (const auto& i : audit["notes"]["not_received"])
      if (i["id"] == id) return i;
    return nullptr;
  }
};

TEST_F(NotesAuditTest, NotesInFlightAreItemizedUntilTheyAreReceived) {
  auto alice = terminal("alice");
  ASSERT_TRUE(alice->topup(*Amount::parse("CNY 100.00"), net_->bank_id, se("alice").account));
  auto to_bob = alice->pay(*Amount::parse("CNY 12.50"), se("bob").se_id);
  auto to_carol = alice->pay(*Amount::parse("CNY 7.00"), se("carol").se_id);
  ASSERT_TRUE(to_bob && to_carol);

  Json a = audit();
  ASSERT_TRUE(a["ok"].get<bool>()) << a.dump(2);
  EXPECT_EQ(a["alerts"], 0);
  EXPECT_EQ(a["notes"]["complete"], true);
  const Json& cny = a["notes"]["currencies"]["CNY"];
  EXPECT_EQ(cny["in_transit_minor"], 1950);
  EXPECT_EQ(cny["claimed_minor"], 0);
  EXPECT_EQ(cny["seq_reused_minor"], 0);
  EXPECT_EQ(cny["notes_in_flight_minor"], a["system"]["CNY"]["notes_in_flight_minor"]);
  EXPECT_EQ(cny["notes_consistent"], true);
  Json b = item(a, "se-alice:2");
  ASSERT_FALSE(b.is_null()) << a.dump(2);
  EXPECT_EQ(b["state"], "in_transit");
  EXPECT_EQ(b["payer"], "se-alice");
  EXPECT_EQ(b["payee"], "se-bob");
  EXPECT_EQ(b["amount_minor"], 1250);
  EXPECT_EQ(b["currency"], "CNY");
  EXPECT_FALSE(b.contains("processor"));
  EXPECT_EQ(item(a, "se-alice:3")["state"], "in_transit");

  // Bob receives his note: it is no longer in flight.
  ASSERT_TRUE(terminal("bob")->receive(*to_bob));
  a = audit();
  ASSERT_TRUE(a["ok"].get<bool>()) << a.dump(2);
  EXPECT_TRUE(item(a, "se-alice:2").is_null()) << a.dump(2);
  EXPECT_EQ(a["notes"]["currencies"]["CNY"]["in_transit_minor"], 700);
  EXPECT_EQ(a["notes"]["currencies"]["CNY"]["notes_consistent"], true);

  // Carol's terminal claims her note and stops before its SE credits it (as if
  // it crashed between the two steps of Wallet::receive): claimed, not received.
  {
    auto carol = terminal("carol");
    auto claim = carol->se().claim_note(*to_carol);
    ASSERT_TRUE(claim) << claim.error().message();
    auto root = *Certificate::from_pem(carol->config().root_pem);
    auto reg = registry::RegistryClient::connect(net_->registry_url, root, net_->registry_id, {});
    ASSERT_TRUE(reg);
    auto record = reg->claim((*claim)["claim"].get<std::string>());
    ASSERT_TRUE(record) << record.error().message();
  }
  a = audit();
  ASSERT_TRUE(a["ok"].get<bool>()) << a.dump(2);
  Json c = item(a, "se-alice:3");
  EXPECT_EQ(c["state"], "claimed") << a.dump(2);
  EXPECT_EQ(c["processor"], "se-carol");
  EXPECT_EQ(a["notes"]["currencies"]["CNY"]["claimed_minor"], 700);
  EXPECT_EQ(a["notes"]["currencies"]["CNY"]["in_transit_minor"], 0);
  EXPECT_EQ(a["notes"]["currencies"]["CNY"]["notes_consistent"], true);

  // The retry the audit asks for: the same claim again is the registry's retry, the SE credits.
  ASSERT_TRUE(terminal("carol")->receive(*to_carol));
  a = audit();
  ASSERT_TRUE(a["ok"].get<bool>()) << a.dump(2);
  EXPECT_EQ(a["notes"]["not_received"], Json::array());
  EXPECT_EQ(a["notes"]["currencies"]["CNY"]["claimed_minor"], 0);
  EXPECT_EQ(a["system"]["CNY"]["notes_in_flight_minor"], 0);

  // The itemization reads registry.db itself: it works while the registry is down.
  net_->kill9("registry");
  a = audit();
  EXPECT_TRUE(a["ok"].get<bool>()) << a.dump(2);

  // An alert alone fails the audit, whatever the notes say. (Written straight
  // into the stopped registry's database: here only the audit's reading of
  // alerts is under test; ARestoredPayerFailsTheAudit raises a real one.)
  {
    auto db = store::Db::open((std::filesystem::path(net_->registry_dir) / "registry.db").string());
    ASSERT_TRUE(db);
    ASSERT_TRUE((*db)->exec("INSERT INTO alerts (se_id, seq, first_doc_id, second_doc_id, second_processor,"
                            " second_claim_jws, created_at) VALUES ('se-bob', 1, 'se-bob:1', 'se-bob:1',"
                            " 'se-carol', 'x', 0)"));
  }
  a = audit();
  EXPECT_FALSE(a["ok"].get<bool>()) << a.dump(2);
  EXPECT_EQ(a["alerts"], 1);
  EXPECT_EQ(a["alerted_ses"], Json::array({"se-bob"}));
  EXPECT_EQ(a["notes"]["not_received"], Json::array()) << "only the alert is wrong";
}

TEST_F(NotesAuditTest, ARestoredPayerFailsTheAudit) {
  namespace fs = std::filesystem;
  ASSERT_TRUE(terminal("alice")->topup(*Amount::parse("CNY 100.00"), net_->bank_id, se("alice").account));
  fs::path state = fs::path(se("alice").dir) / "state.seal";
  fs::path backup = dir_ / "alice-state.backup";
  fs::copy_file(state, backup);
  auto to_bob = terminal("alice")->pay(*Amount::parse("CNY 60.00"), se("bob").se_id);
  ASSERT_TRUE(to_bob);
  ASSERT_TRUE(terminal("bob")->receive(*to_bob));
  ASSERT_TRUE(audit()["ok"].get<bool>());

  // Alice puts the old state back and spends seq 2 again on another note.
  net_->kill9("se-alice");
  fs::copy_file(backup, state, fs::copy_options::overwrite_existing);
  ASSERT_TRUE(net_->restart("se-alice"));
  auto to_carol = terminal("alice")->pay(*Amount::parse("CNY 50.00"), se("carol").se_id);
  ASSERT_TRUE(to_carol);

  // Before anyone claims the second note the audit already sees it: the
  // registry holds se-alice:2 for a document with another digest.
  Json a = audit();
  EXPECT_FALSE(a["ok"].get<bool>()) << a.dump(2);
  EXPECT_EQ(a["alerts"], 0);
  Json reused = item(a, "se-alice:2");
  EXPECT_EQ(reused["state"], "seq_reused") << a.dump(2);
  EXPECT_EQ(reused["payee"], "se-carol");
  EXPECT_EQ(reused["processor"], "se-bob") << "the holder of the id is named";
  EXPECT_EQ(a["notes"]["currencies"]["CNY"]["seq_reused_minor"], 5000);
  // The counters no longer match the notes: Bob received 60.00 that Alice's
  // restored state never sent, and her 50.00 note is refused.
  EXPECT_EQ(a["notes"]["currencies"]["CNY"]["notes_consistent"], false);

  auto refused = terminal("carol")->receive(*to_carol);
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().code, Errc::seq_reused);
  a = audit();
  EXPECT_FALSE(a["ok"].get<bool>());
  EXPECT_EQ(a["alerts"], 1);
  EXPECT_EQ(a["alerted_ses"], Json::array({"se-alice"}));
}

}  // namespace
}  // namespace zf::test
