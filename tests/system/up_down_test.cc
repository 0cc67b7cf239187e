// `zf up` and `zf down` as a person runs them: the real binary, a network
// directory in a temp dir, the services left running between the two commands.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "cli/network.h"
#include "net/process.h"

namespace zf::test {
namespace {

namespace fs = std::filesystem;

struct Run {
  int exit_code;
  std::string output;
};

Run run_zf(const std::vector<std::string>& args, const fs::path& out) {
  std::string cmd = ZF_BINARY;
  for (const auto& a : args) cmd += " '" + a + "'";
  cmd += " > '" + out.string() + "' 2>&1 < /dev/null";
  int status = std::system(cmd.c_str());
  std::ifstream in(out);
  std::stringstream ss;
  ss << in.rdbuf();
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, ss.str()};
}

bool alive(pid_t pid) { return ::kill(pid, 0) == 0; }

class UpDownTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = (fs::temp_directory_path() / "zf-updown-XXXXXX").string();
    tmp = ::mkdtemp(tmpl.data());
    net = tmp / "net";
    auto up = run_zf({"up", net.string(), "--users", "alice"}, tmp / "up.out");
    ASSERT_EQ(up.exit_code, 0) << up.output;
    std::ifstream in(net / "run" / "pids");
    Service s;
    while (in >> s.pid >> s.name >> s.start_time) services.push_back(s);
    ASSERT_GE(services.size(), 4u);  // CA, registry, bank, alice's SE
  }
  void TearDown() override {
    // Whatever a failed test left running is ours to stop: only the recorded pids.
    for (const auto& s : services)
      if (cli::is_network_process(s.pid, net.string(), s.name, s.start_time))
        ::kill(s.pid, SIGKILL);
    if (!HasFailure()) fs::remove_all(tmp);
  }

  struct Service {
    pid_t pid = 0;
    std::string name;
    std::uint64_t start_time = 0;
  };
  fs::path tmp, net;
  std::vector<Service> services;
};

// Public by design, and nothing else: certificates and CRLs, a device's id and
// the services' configs (URLs and ids) may be read by anyone.
bool is_public_file(const fs::path& p) {
  std::string name = p.filename().string();
  if (name == "se.id" || name == "bank.json" || name == "registry.json") return true;
  if (p.extension() != ".pem") return false;
  std::ifstream in(p);
  std::stringstream ss;
  ss << in.rdbuf();
  std::string text = ss.str();
  return text.find("PRIVATE KEY") == std::string::npos &&
         (text.rfind("-----BEGIN CERTIFICATE-----", 0) == 0 ||
          text.rfind("-----BEGIN X509 CRL-----", 0) == 0);
}

TEST_F(UpDownTest, EveryFileOfANetworkButCertificatesIsTheOwnersAlone) {
  // `zf up` opened accounts and cashed in, so the services' WAL and SHM files exist.
  std::vector<std::string> open_files;
  int dbs = 0, side_files = 0, keys = 0;
  for (const auto& e : fs::recursive_directory_iterator(net)) {
    if (!e.is_regular_file()) continue;
    struct stat st {};
    ASSERT_EQ(::stat(e.path().c_str(), &st), 0);
    std::string name = e.path().filename().string();
    if (e.path().extension() == ".db") ++dbs;
    if (name.ends_with(".db-wal") || name.ends_with(".db-shm")) ++side_files;
    if (e.path().extension() == ".key") ++keys;
    if ((st.st_mode & 077) != 0 && !is_public_file(e.path())) {
      std::ostringstream os;
      os << e.path().lexically_relative(net).string() << " " << std::oct << (st.st_mode & 0777);
      open_files.push_back(os.str());
    }
  }
  EXPECT_GE(dbs, 2) << "bank and registry databases";
  EXPECT_GE(side_files, 4) << "their WAL and SHM files";
  EXPECT_GE(keys, 4) << "CA, bank, registry and TLS keys";
  EXPECT_TRUE(open_files.empty()) << ::testing::PrintToString(open_files);
  auto down = run_zf({"down", net.string()}, tmp / "down.out");
  EXPECT_EQ(down.exit_code, 0) << down.output;
}

TEST_F(UpDownTest, DownSignalsOnlyTheProcessesUpStarted) {
  // A pid file gone stale: an unrelated live process now has a recorded pid.
  // Both ways a pid is recognised are exercised: a line without a start time
  // (older zf) and one with the process's true start time but another command.
  auto sleeper = net::Child::spawn({"/bin/sleep", "60"}, (tmp / "sleep.log").string());
  ASSERT_TRUE(sleeper) << sleeper.error().message();
  pid_t sleep_pid = sleeper->pid();
  std::this_thread::sleep_for(std::chrono::milliseconds(50));  // exec'd, /proc shows sleep
  auto start = cli::process_start_time(sleep_pid);
  ASSERT_TRUE(start);
  EXPECT_FALSE(cli::is_network_process(sleep_pid, net.string(), "bank", 0));
  {
    std::ofstream pids(net / "run" / "pids", std::ios::app);
    pids << sleep_pid << " bank\n" << sleep_pid << " ca " << *start << "\n";
    // A recorded service whose start time no longer matches is someone else too.
    pids << services.front().pid << " " << services.front().name << " 1\n";
  }
  auto down = run_zf({"down", net.string()}, tmp / "down.out");
  EXPECT_EQ(down.exit_code, 0) << down.output;
  EXPECT_NE(down.output.find("left alone"), std::string::npos) << down.output;

  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  for (const auto& s : services) {
    pid_t p = s.pid;
    while (alive(p) && std::chrono::steady_clock::now() < deadline)
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    EXPECT_FALSE(alive(p)) << "service pid " << p << " still running after zf down";
  }
  EXPECT_TRUE(sleeper->running()) << "zf down signalled an unrelated process";
  EXPECT_FALSE(fs::exists(net / "run" / "pids"));
}

// `zf up` on an existing network starts what is stopped, on the same ports,
// with every balance as it was; what still runs is left alone.
TEST_F(UpDownTest, UpAgainStartsAStoppedNetworkWithItsState) {
  const std::string wallet = (net / "wallets" / "alice").string();
  ASSERT_EQ(std::system(("ZF_PIN=123456 " + std::string(ZF_BINARY) + " wallet topup 'CNY 10.00' --wallet '" + wallet +
                         "' --bank bank-a --account alice-main > /dev/null 2>&1")
                            .c_str()),
            0);
  ASSERT_EQ(run_zf({"down", net.string()}, tmp / "down.out").exit_code, 0);
  for (const auto& s : services)
    for (int i = 0; i < 100 && alive(s.pid); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  for (const auto& s : services) EXPECT_FALSE(alive(s.pid)) << s.name;
  // The audit of a stopped network works from its files.
  auto stopped = run_zf({"audit", net.string()}, tmp / "audit0.out");
  EXPECT_EQ(stopped.exit_code, 0) << stopped.output;

  auto up = run_zf({"up", net.string()}, tmp / "up2.out");
  ASSERT_EQ(up.exit_code, 0) << up.output;
  EXPECT_NE(up.output.find("started ca again"), std::string::npos) << up.output;
  EXPECT_NE(up.output.find("with the state it had"), std::string::npos) << up.output;
  services.clear();
  {
    std::ifstream in(net / "run" / "pids");
    Service s;
    while (in >> s.pid >> s.name >> s.start_time) services.push_back(s);
  }
  ASSERT_GE(services.size(), 4u);
  for (const auto& s : services) EXPECT_TRUE(cli::is_network_process(s.pid, net.string(), s.name, s.start_time)) << s.name;

  auto bal = run_zf({"wallet", "balance", "--json", "--wallet", wallet}, tmp / "bal.out");
  ASSERT_EQ(bal.exit_code, 0) << bal.output;
  EXPECT_NE(bal.output.find("\"CNY\": 1000"), std::string::npos) << bal.output;
  auto again = run_zf({"up", net.string()}, tmp / "up3.out");
  ASSERT_EQ(again.exit_code, 0) << again.output;
  EXPECT_NE(again.output.find("ca is already running"), std::string::npos) << again.output;
  EXPECT_EQ(again.output.find("started"), std::string::npos) << again.output;
  auto audit = run_zf({"audit", net.string()}, tmp / "audit.out");
  EXPECT_EQ(audit.exit_code, 0) << audit.output;
}

// The README's first command: the narrated demo on a fresh network of its own
// must pass every expectation it states, and leave nothing running.
TEST(DemoTest, TheDemoPassesEveryStepOnAFreshNetwork) {
  std::string tmpl = (fs::temp_directory_path() / "zf-demo-XXXXXX").string();
  fs::path tmp = ::mkdtemp(tmpl.data());
  zf::test::Run demo = run_zf({"demo", "--keep", (tmp / "net").string()}, tmp / "demo.out");
  EXPECT_EQ(demo.exit_code, 0) << demo.output;
  EXPECT_NE(demo.output.find("demo passed: 0 expectation(s) failed"), std::string::npos) << demo.output;
  EXPECT_EQ(demo.output.find("[FAILED]"), std::string::npos) << demo.output;
  // In a payer's words: every balance change said where it happens, every refused query with its reason.
  EXPECT_EQ(demo.output.find("patent"), std::string::npos) << demo.output;
  EXPECT_NE(demo.output.find("Alice signs a CNY 1.00 note to Carol: her SE takes CNY 1.00 off now"),
            std::string::npos)
      << demo.output;
  EXPECT_NE(demo.output.find("alice: SE CNY 186.50 (-CNY 1.00)"), std::string::npos) << demo.output;
  EXPECT_NE(demo.output.find("not shown: the bank refused the query: this SE's certificate is revoked (cert_revoked)"),
            std::string::npos)
      << demo.output;
  std::ifstream in(tmp / "net" / "run" / "pids");
  pid_t pid = 0;
  std::string name;
  std::uint64_t start = 0;
  while (in >> pid >> name >> start)
    if (cli::is_network_process(pid, (tmp / "net").string(), name, start)) {
      ADD_FAILURE() << name << " still runs after the demo";
      ::kill(pid, SIGKILL);
    }
  if (!::testing::Test::HasFailure()) fs::remove_all(tmp);
}

}  // namespace
}  // namespace zf::test
