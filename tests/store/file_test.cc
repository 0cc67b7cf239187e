// The atomic file writer: the new content or the old, never a mix, with the
// mode asked for whatever the umask, no temporary file left behind, and every
// failure an io_error that leaves the target as it was.
#include "store/file.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "core/test_util.h"

namespace zf::test {
namespace {

namespace fs = std::filesystem;

class FileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = (fs::temp_directory_path() / "zf-file-XXXXXX").string();
    dir = ::mkdtemp(tmpl.data());
  }
  void TearDown() override { fs::remove_all(dir); }

  static std::string read(const fs::path& p) {
    std::ifstream in(p, std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
  }
  static unsigned mode(const fs::path& p) {
    struct stat st {};
    EXPECT_EQ(::stat(p.c_str(), &st), 0) << p;
    return st.st_mode & 0777;
  }
  // Every entry of the directory, to see that no temporary file was left.
  std::vector<std::string> entries() const {
    std::vector<std::string> out;
    for (const auto& e : fs::directory_iterator(dir)) out.push_back(e.path().filename().string());
    std::sort(out.begin(), out.end());
    return out;
  }

  fs::path dir;
};

TEST_F(FileTest, WritesWithTheModeAskedForWhateverTheUmask) {
  mode_t old = ::umask(0);  // would give 0666 to a plain open()
  EXPECT_THAT(store::write_file_atomic((dir / "secret").string(), std::string_view("k\n")), IsOk());
  ::umask(077);  // would take the group and other bits away
  EXPECT_THAT(store::write_file_atomic((dir / "public").string(), std::string_view("p\n"), 0644),
              IsOk());
  ::umask(old);
  EXPECT_EQ(mode(dir / "secret"), 0600u);
  EXPECT_EQ(mode(dir / "public"), 0644u);
  EXPECT_EQ(read(dir / "secret"), "k\n");
  EXPECT_EQ(entries(), (std::vector<std::string>{"public", "secret"}));
}

TEST_F(FileTest, ReplacesTheWholeFile) {
  std::string path = (dir / "state").string();
  ASSERT_THAT(store::write_file_atomic(path, std::string(100000, 'a')), IsOk());
  ASSERT_THAT(store::write_file_atomic(path, std::string_view("short")), IsOk());
  EXPECT_EQ(read(path), "short");
  Bytes binary{0, 1, 2, 255, 0};
  ASSERT_THAT(store::write_file_atomic(path, ByteView(binary)), IsOk());
  std::string back = read(path);
  EXPECT_EQ(Bytes(back.begin(), back.end()), binary);
  EXPECT_EQ(entries(), (std::vector<std::string>{"state"}));
}

TEST_F(FileTest, FailuresAreIoErrorsThatLeaveTheTargetAlone) {
  // No such directory.
  EXPECT_THAT(store::write_file_atomic((dir / "no" / "such" / "file").string(), std::string_view("x")),
              FailsWith(Errc::io_error));
  // The directory's path names a file (fails for root too).
  std::ofstream(dir / "plain") << "old";
  EXPECT_THAT(store::write_file_atomic((dir / "plain" / "file").string(), std::string_view("x")),
              FailsWith(Errc::io_error));
  // The target is a directory: the rename fails and the temporary file goes.
  fs::create_directory(dir / "target");
  std::ofstream(dir / "target" / "inside") << "kept";
  auto r = store::write_file_atomic((dir / "target").string(), std::string_view("x"));
  ASSERT_THAT(r, FailsWith(Errc::io_error));
  EXPECT_NE(r.error().detail.find("rename"), std::string::npos) << r.error().detail;
  EXPECT_EQ(read(dir / "target" / "inside"), "kept");
  EXPECT_EQ(read(dir / "plain"), "old");
  EXPECT_EQ(entries(), (std::vector<std::string>{"plain", "target"}));
}

TEST_F(FileTest, PrivateKeysRoundTripWithMode0600) {
  for (SigAlg alg : {SigAlg::ES256, SigAlg::EdDSA}) {
    PrivateKey key = must(PrivateKey::generate(alg));
    std::string path = (dir / "key.pem").string();
    ASSERT_THAT(store::save_private_key(path, key), IsOk());
    EXPECT_EQ(mode(path), 0600u);
    auto back = PrivateKey::load_pem_file(path);
    ASSERT_THAT(back, IsOk());
    EXPECT_EQ(back->alg(), alg);
    EXPECT_EQ(back->public_key().spki_der(), key.public_key().spki_der());
  }
  EXPECT_EQ(entries(), (std::vector<std::string>{"key.pem"}));
  EXPECT_THAT(store::save_private_key((dir / "no" / "key.pem").string(),
                                      must(PrivateKey::generate())),
              FailsWith(Errc::io_error));
}

TEST_F(FileTest, AppendedLinesAreKeptInOrderInAPrivateFile) {
  std::string path = (dir / "history.jsonl").string();
  mode_t old = ::umask(0);
  ASSERT_THAT(store::append_line_durable(path, "{\"n\":1}"), IsOk());
  ::umask(old);
  ASSERT_THAT(store::append_line_durable(path, "{\"n\":2}"), IsOk());
  EXPECT_EQ(read(path), "{\"n\":1}\n{\"n\":2}\n");
  EXPECT_EQ(mode(path), 0600u);
  EXPECT_THAT(store::append_line_durable((dir / "no" / "h").string(), "x"),
              FailsWith(Errc::io_error));
}

}  // namespace
}  // namespace zf::test
