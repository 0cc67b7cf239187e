// The emulated SE device: applet + sealed state in a directory. handle()
// persists a changed state before the response leaves, a refused command
// leaves the file alone, and a state file that was altered or belongs to
// another device does not open.
#include "se_host/device.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <memory>
#include <string>

#include "se_fixture.h"

namespace zf::test {
namespace {

namespace fs = std::filesystem;
using se::Device;
using wallet::SeClient;

Bytes read_bytes(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return Bytes(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

void write_bytes(const fs::path& p, const Bytes& b) {
  std::ofstream out(p, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(b.data()), static_cast<std::streamsize>(b.size()));
}

class DeviceTest : public ::testing::Test {
 protected:
  std::string dir(const std::string& name) const { return (w.world.tmp.path() / name).string(); }

  std::unique_ptr<Device> create_and_open(const std::string& name, const std::string& se_id) {
    must(Device::create(dir(name), se_id, w.world.mfr_dir), "create device");
    return must(Device::open(dir(name)), "open device");
  }

  // The terminal's client over the device's APDU handler (what the socket link carries).
  SeClient client(Device& d) {
    return SeClient([this, &d](ByteView apdu) -> Result<Bytes> { return d.handle(apdu, w.now); });
  }
  // The emulated SE's display as a person (or a script) reads it: pairing.code in its directory.
  std::function<std::string()> display(const std::string& name) {
    return [this, name] {
      std::ifstream in(fs::path(dir(name)) / "pairing.code");
      std::string code;
      std::getline(in, code);
      return code;
    };
  }

  SeWorld w;
};

TEST_F(DeviceTest, CreateWritesASealedFactoryStateThatOpens) {
  auto d = create_and_open("se1", "se-d1");
  EXPECT_EQ(d->applet().se_id(), "se-d1");
  EXPECT_EQ(d->applet().lifecycle(), se::Lifecycle::factory);
  fs::path key = fs::path(dir("se1")) / "device.key";
  ASSERT_TRUE(fs::exists(key));
  EXPECT_EQ(fs::status(key).permissions() & fs::perms::all,
            fs::perms::owner_read | fs::perms::owner_write);
  // The state is sealed: the attestation key is nowhere in the file in the clear.
  Bytes sealed = read_bytes(fs::path(dir("se1")) / "state.seal");
  std::string attest = d->applet().state_json().at("attest_key");
  std::string text(sealed.begin(), sealed.end());
  EXPECT_EQ(text.find(attest), std::string::npos);
  EXPECT_EQ(text.find("zf-se-state-1"), std::string::npos);
  // A second SE in the same directory is refused.
  EXPECT_THAT(Device::create(dir("se1"), "se-d1", w.world.mfr_dir), FailsWith(Errc::conflict));
  EXPECT_THAT(Device::open(dir("nothing-here")), FailsWith(Errc::not_found));
}

TEST_F(DeviceTest, HandlePersistsBeforeResponding) {
  auto d = create_and_open("se1", "se-d1");
  SeClient se = client(*d);
  w.activate(se, "alice", {}, display("se1"));
  Json req = jws_payload(
      must(se.topup_request(
               {{"amount", 2500}, {"currency", "CNY"}, {"bank", kBank}, {"account", kAccount}}))
          .at("request"));
  // Whatever the device answered is already on disk: a second open sees it.
  {
    auto again = must(Device::open(dir("se1")));
    EXPECT_EQ(again->applet().lifecycle(), se::Lifecycle::active);
    EXPECT_EQ(again->applet().seq(), 1);
    EXPECT_EQ(again->applet().balance("CNY"), 0);
  }
  Json applied = must(se.apply_topup_receipt(w.topup_receipt(req)));
  EXPECT_EQ(applied.at("balance_minor"), 2500);
  auto again = must(Device::open(dir("se1")));
  EXPECT_EQ(again->applet().balance("CNY"), 2500);
  EXPECT_EQ(again->applet().seq(), 1);
  EXPECT_EQ(again->applet().state_json(), d->applet().state_json());
  // The reopened device refuses the same receipt: the applied set was persisted with the credit.
  SeClient se2 = client(*again);
  EXPECT_THAT(se2.verify_pin(kPin), FailsWith(Errc::secure_channel_required));  // no pairing key
  se2.set_pairing_key(se.pairing_key());
  must(se2.verify_pin(kPin));
  EXPECT_THAT(se2.apply_topup_receipt(w.topup_receipt(req)), FailsWith(Errc::replayed));
  EXPECT_EQ(again->applet().balance("CNY"), 2500);
}

TEST_F(DeviceTest, RefusedCommandLeavesTheFileAloneButAWrongPinIsSaved) {
  auto d = create_and_open("se1", "se-d1");
  SeClient se = client(*d);
  w.activate(se, "alice", {}, display("se1"));
  fs::path state = fs::path(dir("se1")) / "state.seal";
  Bytes before = read_bytes(state);
  // Sealing uses a fresh nonce, so any rewrite would change the bytes.
  EXPECT_THAT(se.payment_note(w.pay_to("se-b", 1)),
              FailsWith(Errc::insufficient_ecash));
  EXPECT_THAT(se.payment_note(w.pay_to("se-b", 0)),
              FailsWith(Errc::amount_zero));
  EXPECT_THAT(se.info(), IsOk());
  EXPECT_EQ(read_bytes(state), before);

  d->new_link();  // a new terminal connection forgets the verified user and the session
  must(se.select());
  EXPECT_THAT(se.topup_request(
                  {{"amount", 1}, {"currency", "CNY"}, {"bank", kBank}, {"account", kAccount}}),
              FailsWith(Errc::not_verified));
  EXPECT_THAT(se.verify_pin("000000"), FailsWith(Errc::pin_wrong));
  EXPECT_NE(read_bytes(state), before);
  auto again = must(Device::open(dir("se1")));
  EXPECT_EQ(again->applet().state_json().at("pin_tries_left"), 2);
}

TEST_F(DeviceTest, CorruptedStateDoesNotOpen) {
  auto d = create_and_open("se1", "se-d1");
  d.reset();
  fs::path state = fs::path(dir("se1")) / "state.seal";
  Bytes good = read_bytes(state);
  ASSERT_GT(good.size(), 64u);
  for (std::size_t pos : {std::size_t{0}, good.size() / 2, good.size() - 1}) {
    SCOPED_TRACE(pos);
    Bytes bad = good;
    bad[pos] ^= 0x01;
    write_bytes(state, bad);
    EXPECT_THAT(Device::open(dir("se1")), FailsWith(Errc::decrypt_failed));
  }
  // Truncated.
  write_bytes(state, Bytes(good.begin(), good.begin() + static_cast<long>(good.size() - 16)));
  EXPECT_THAT(Device::open(dir("se1")), FailsWith(Errc::decrypt_failed));
  write_bytes(state, good);
  EXPECT_THAT(Device::open(dir("se1")), IsOk());
}

TEST_F(DeviceTest, StateFromAnotherDeviceDoesNotOpen) {
  auto d1 = create_and_open("se1", "se-d1");
  auto d2 = create_and_open("se2", "se-d2");
  SeClient se2 = client(*d2);
  w.activate(se2, "bob", {}, display("se2"));
  w.topup(se2, 900);
  d1.reset();
  d2.reset();
  fs::copy_file(fs::path(dir("se2")) / "state.seal", fs::path(dir("se1")) / "state.seal",
                fs::copy_options::overwrite_existing);
  EXPECT_THAT(Device::open(dir("se1")), FailsWith(Errc::decrypt_failed));
  // Even with the other device's id file too: the sealing key differs.
  fs::copy_file(fs::path(dir("se2")) / "se.id", fs::path(dir("se1")) / "se.id",
                fs::copy_options::overwrite_existing);
  EXPECT_THAT(Device::open(dir("se1")), FailsWith(Errc::decrypt_failed));
  EXPECT_EQ(must(Device::open(dir("se2")))->applet().balance("CNY"), 900);
}

}  // namespace
}  // namespace zf::test
