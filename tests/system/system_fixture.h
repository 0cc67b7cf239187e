// A local network of real processes (CA, bank, SEs) in a temporary directory.
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <sys/wait.h>

#include <atomic>
#include <cctype>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>

#include "bank/client.h"
#include "cli/network.h"
#include "se_host/device.h"
#include "wallet/wallet.h"

namespace zf::test {

// A peer that dies mid-write must give an error, not SIGPIPE the test.
inline const bool kIgnoreSigpipe = [] {
  std::signal(SIGPIPE, SIG_IGN);
  return true;
}();

inline std::string slurp(const std::filesystem::path& p) {
  std::ifstream in(p);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// What a `zf` command run as a process printed (stdout and stderr together).
struct CmdResult {
  int exit_code;
  std::string out;
};

class NetworkTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = (std::filesystem::temp_directory_path() / "zf-sys-XXXXXX").string();
    dir_ = ::mkdtemp(tmpl.data());
    cli::NetworkOptions o;
    o.dir = dir_.string();
    o.users = users();
    o.detach = false;
    o.zf_binary = ZF_BINARY;
    customize(o);
    opts_ = o;
    auto n = cli::network_up(o, [](const std::string&) {});
    ASSERT_TRUE(n) << n.error().message();
    net_ = std::make_unique<cli::Network>(std::move(*n));
  }
  void TearDown() override {
    if (net_) net_->stop_all();
    if (!HasFailure()) std::filesystem::remove_all(dir_);
    else std::fprintf(stderr, "network kept in %s\n", dir_.c_str());
  }
  virtual std::vector<std::string> users() const { return {"alice", "bob"}; }
  virtual void customize(cli::NetworkOptions&) const {}

  // A fresh terminal for `user` with the PIN verified.
  std::unique_ptr<wallet::Wallet> terminal(const std::string& user) {
    for (const auto& se : net_->ses) {
      if (se.user != user) continue;
      auto w = wallet::Wallet::open(se.wallet);
      if (!w) return nullptr;
      if (!(*w)->unlock(opts_.pin)) return nullptr;
      return std::move(*w);
    }
    return nullptr;
  }
  const cli::NetworkSe& se(const std::string& user) const {
    for (const auto& s : net_->ses)
      if (s.user == user) return s;
    return net_->ses.front();
  }
  // Runs `zf wallet <args> --wallet <user's wallet>` as a person would: the
  // PIN in ZF_PIN, or none at all (no ZF_PIN, no terminal).
  CmdResult zf_wallet(const std::string& user, const std::vector<std::string>& args,
                      std::optional<std::string> pin = "123456") {
    const std::string out = (dir_ / ("out-" + std::to_string(++cli_calls_) + ".txt")).string();
    std::string cmd = pin ? "ZF_PIN='" + *pin + "' " : "env -u ZF_PIN ";
    cmd += std::string(ZF_BINARY) + " wallet";
    for (const auto& a : args) cmd += " '" + a + "'";
    cmd += " --wallet '" + se(user).wallet + "' < /dev/null > '" + out + "' 2>&1";
    int status = std::system(cmd.c_str());
    return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, slurp(out)};
  }
  Json audit() {
    auto r = cli::network_audit(net_->dir);
    EXPECT_TRUE(r) << r.error().message();
    return r ? *r : Json{{"ok", false}};
  }
  // Reads the SE's balance from its sealed state file, without taking over the
  // SE's link from the terminal that holds it.
  // An account's balance at the network's bank, asked with the admin token.
  std::int64_t account_balance(const std::string& account) {
    auto root = Certificate::from_pem(slurp(net_->root_file));
    EXPECT_TRUE(root);
    std::string token = slurp(std::filesystem::path(net_->bank_dir) / "admin.token");
    while (!token.empty() && std::isspace(static_cast<unsigned char>(token.back()))) token.pop_back();
    auto admin = bank::BankClient::connect(net_->bank_url, *root, net_->bank_id, token);
    EXPECT_TRUE(admin) << admin.error().message();
    auto a = admin->account(account);
    EXPECT_TRUE(a) << a.error().message();
    return a ? a->balance_minor : -1;
  }
  void expect_audit_ok(const std::string& when) {
    Json a = audit();
    EXPECT_TRUE(a["ok"].get<bool>()) << when << ": " << a.dump(2);
  }
  std::int64_t se_balance(const std::string& user) {
    auto device = se::Device::open(se(user).dir);
    return device ? (*device)->applet().balance("CNY") : -1;
  }

  std::filesystem::path dir_;
  cli::NetworkOptions opts_;
  std::unique_ptr<cli::Network> net_;
  std::atomic<int> cli_calls_{0};
};

}  // namespace zf::test
