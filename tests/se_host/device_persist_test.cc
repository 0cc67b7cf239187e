// An SE that cannot persist its state stops answering: after a failed save it
// goes back to the last saved state, and when even that cannot be read it
// refuses every command until restarted, so it never serves state the disk
// does not hold. Storage is broken in a way that fails for root too: the state
// directory's path is made to name a plain file.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "se_fixture.h"
#include "se_host/device.h"

namespace zf::test {
namespace {

namespace fs = std::filesystem;
using se::Device;
using wallet::SeClient;

class DevicePersistTest : public ::testing::Test {
 protected:

  SeClient client(Device& d) {
    return SeClient([this, &d](ByteView apdu) -> Result<Bytes> { return d.handle(apdu, w.now); });
  }
  // Takes the state directory away: its path names a file, so nothing under it
  // can be written or read, whoever we are.
  void break_storage() {
    fs::rename(dir, dir + ".away");
    std::ofstream(dir) << "not a directory\n";
  }
  void repair_storage() {
    fs::remove(dir);
    fs::rename(dir + ".away", dir);
  }

  SeWorld w;  // before `dir`, which lives in its temp directory
  std::string dir = (w.world.tmp.path() / "se1").string();
};

TEST_F(DevicePersistTest, AnSeThatCannotSaveOrReloadRefusesEveryCommand) {
  must(Device::create(dir, "se-p1", w.world.mfr_dir), "create device");
  auto d = must(Device::open(dir), "open device");
  SeClient se = client(*d);
  w.activate(se, "alice", {}, [&] { return d->applet().display(); });
  Json topup{{"amount", 2500}, {"currency", "CNY"}, {"bank", kBank}, {"account", kAccount}};
  ASSERT_TRUE(se.topup_request(topup));
  auto issued_before = must(se.issued(), "issued");

  break_storage();
  // Signing a request changes the state (the sequence number): it cannot be saved.
  auto signed_ = se.topup_request(topup);
  ASSERT_FALSE(signed_);
  EXPECT_EQ(signed_.error().code, Errc::io_error) << signed_.error().message();
  EXPECT_TRUE(d->failed());
  // From now on nothing is answered, not even what would change nothing.
  for (auto r : {se.info(), se.select(), se.issued(), se.topup_request(topup)}) {
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, Errc::io_error);
  }
  // Storage back: this device still refuses (its memory is not the disk's) ...
  repair_storage();
  auto still = se.info();
  ASSERT_FALSE(still);
  EXPECT_EQ(still.error().code, Errc::io_error);
  // ... and a restart serves exactly the last saved state.
  auto restarted = must(Device::open(dir), "reopen device");
  EXPECT_FALSE(restarted->failed());
  SeClient again = client(*restarted);
  again.set_pairing_key(se.pairing_key());  // the same paired terminal, reconnecting
  ASSERT_TRUE(again.select());
  ASSERT_TRUE(again.verify_pin(kPin));
  EXPECT_EQ(must(again.issued(), "issued"), issued_before);
  ASSERT_TRUE(again.topup_request(topup));
}

}  // namespace
}  // namespace zf::test
