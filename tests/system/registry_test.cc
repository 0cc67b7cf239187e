// The registry in the payment path (DESIGN.md §5 persistence, §7): a payer who
// restores an old copy of its SE state and spends the same sequence number
// again is stopped at the registry, which answers with a signed record.
#include <filesystem>
#include <fstream>

#include "registry/claims.h"
#include "system_fixture.h"

namespace zf::test {
namespace {

class RegistryPathTest : public NetworkTest {
 protected:
  std::vector<std::string> users() const override { return {"alice", "bob", "carol"}; }
};

TEST_F(RegistryPathTest, RestoredPayerStateCannotSpendTheSameSequenceTwice) {
  namespace fs = std::filesystem;
  {
    auto alice = terminal("alice");
    ASSERT_TRUE(alice->topup(*Amount::parse("CNY 100.00"), net_->bank_id, se("alice").account));
  }
  // Alice keeps a copy of her SE's state as it is now.
  fs::path state = fs::path(se("alice").dir) / "state.seal";
  fs::path backup = dir_ / "alice-state.backup";
  fs::copy_file(state, backup);

  std::string to_bob;
  {
    auto alice = terminal("alice");
    auto note = alice->pay(*Amount::parse("CNY 60.00"), se("bob").se_id);
    ASSERT_TRUE(note) << note.error().message();
    to_bob = *note;
  }
  {
    auto bob = terminal("bob");
    auto got = bob->receive(to_bob);
    ASSERT_TRUE(got) << got.error().message();
  }
  EXPECT_TRUE(fs::exists(fs::path(se("bob").wallet) / "records" / "se-alice_2.jws"))
      << "the payee keeps the registry's signed record";

  // Alice restores the old state: her SE has the CNY 60.00 again and reuses seq 2.
  net_->kill9("se-alice");
  fs::copy_file(backup, state, fs::copy_options::overwrite_existing);
  ASSERT_TRUE(net_->restart("se-alice"));
  EXPECT_EQ(se_balance("alice"), 10000);
  std::string to_carol;
  {
    auto alice = terminal("alice");
    auto note = alice->pay(*Amount::parse("CNY 60.00"), se("carol").se_id);
    ASSERT_TRUE(note) << note.error().message();
    to_carol = *note;
  }
  // Carol's SE alone would accept the note (it is genuine and addressed to her);
  // the registry already holds se-alice:2 (Bob's note) and refuses this second
  // document under the same seq with a signed record.
  auto carol = terminal("carol");
  auto refused = carol->receive(to_carol);
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().code, Errc::seq_reused) << refused.error().message();
  EXPECT_EQ(se_balance("carol"), 0);
  std::ifstream rec(fs::path(se("carol").wallet) / "records" / "se-alice_2.jws");
  std::string record_jws((std::istreambuf_iterator<char>(rec)), {});
  CertVerifier v(*Certificate::from_pem(carol->config().root_pem));
  auto record = registry::open_record(record_jws, v);
  ASSERT_TRUE(record) << record.error().message();
  EXPECT_EQ(record->status, registry::RecordStatus::seq_reused);
  EXPECT_EQ(record->doc_issuer, se("alice").se_id);
  EXPECT_EQ(record->doc_seq, 2);
  EXPECT_EQ(record->processor, se("carol").se_id) << "the refusal answers Carol's own claim";
}

}  // namespace
}  // namespace zf::test
