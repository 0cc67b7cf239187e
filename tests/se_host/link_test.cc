// The SE link serves one terminal at a time: a second terminal waits, takes
// the link over only when the first has closed or fallen silent, and is told
// the SE is busy when its wait is over. Its frames never reach the SE before
// it holds the link, and a new link always starts a new session first, so two
// terminals' commands never interleave.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <mutex>
#include <thread>
#include <vector>

#include "net/apdu_link.h"

namespace zf::test {
namespace {

using namespace std::chrono_literals;

// A server in its own thread; the handler echoes each frame and records what
// reached it (frames, and "new link" for each on_connect).
class LinkTest : public ::testing::Test {
 protected:
  void start(net::LinkPolicy policy) {
    const std::string busy = "busy";
    policy.busy_answer = Bytes(busy.begin(), busy.end());
    server_ = std::make_unique<net::ApduServer>(policy);
    auto port = server_->bind(0);
    ASSERT_TRUE(port) << port.error().message();
    port_ = *port;
    thread_ = std::thread([this] {
      server_->run(
          [this](ByteView apdu) {
            std::lock_guard lock(mu_);
            seen_.push_back(to_string(apdu));
            return Bytes(apdu.begin(), apdu.end());
          },
          [this] {
            std::lock_guard lock(mu_);
            seen_.push_back("new link");
          });
    });
  }
  void TearDown() override {
    if (server_) server_->stop();
    if (thread_.joinable()) thread_.join();
  }
  net::ApduClient connect() {
    auto c = net::ApduClient::connect("127.0.0.1", port_);
    EXPECT_TRUE(c) << c.error().message();
    return c ? std::move(*c) : net::ApduClient();
  }
  std::vector<std::string> seen() {
    std::lock_guard lock(mu_);
    return seen_;
  }
  static std::string say(net::ApduClient& c, const std::string& what) {
    auto r = c.transmit(as_bytes(what));
    return r ? to_string(*r) : "error: " + r.error().message();
  }

  std::unique_ptr<net::ApduServer> server_;
  std::thread thread_;
  int port_ = 0;
  std::mutex mu_;
  std::vector<std::string> seen_;
};

TEST_F(LinkTest, ASecondTerminalIsToldTheSeIsBusyWhileTheFirstKeepsTalking) {
  start(net::LinkPolicy{600, 300, {}});
  auto a = connect();
  ASSERT_EQ(say(a, "a1"), "a1");
  auto b = connect();
  std::string b_heard;
  std::thread b_thread([&] { b_heard = say(b, "b1"); });
  // A keeps the link busy (a frame every 50 ms) for longer than B's wait.
  auto begin = std::chrono::steady_clock::now();
  int n = 2;
  while (std::chrono::steady_clock::now() - begin < 1200ms) {
    std::string f = "a" + std::to_string(n++);
    ASSERT_EQ(say(a, f), f);
    std::this_thread::sleep_for(50ms);
  }
  b_thread.join();
  EXPECT_EQ(b_heard, "busy");
  auto s = seen();
  EXPECT_EQ(std::count(s.begin(), s.end(), "new link"), 1);
  EXPECT_EQ(std::count(s.begin(), s.end(), "b1"), 0) << "a waiting terminal's frame reached the SE";
  // B's link is closed; A still holds its own.
  EXPECT_NE(say(b, "b2"), "b2");
  EXPECT_EQ(say(a, "a-last"), "a-last");
}

TEST_F(LinkTest, AWaitingTerminalGetsTheLinkWhenTheFirstCloses) {
  start(net::LinkPolicy{3000, 2000, {}});
  auto a = std::make_unique<net::ApduClient>(connect());
  ASSERT_EQ(say(*a, "a1"), "a1");
  auto b = connect();
  std::string b_heard;
  std::thread b_thread([&] { b_heard = say(b, "b1"); });
  std::this_thread::sleep_for(200ms);
  ASSERT_EQ(say(*a, "a2"), "a2");
  a.reset();  // the first terminal has finished
  b_thread.join();
  EXPECT_EQ(b_heard, "b1");
  EXPECT_EQ(seen(), (std::vector<std::string>{"new link", "a1", "a2", "new link", "b1"}));
}

TEST_F(LinkTest, ASilentHolderIsTakenOverAndItsNextFrameFails) {
  start(net::LinkPolicy{3000, 300, {}});
  auto a = connect();
  ASSERT_EQ(say(a, "a1"), "a1");
  auto b = connect();
  auto begin = std::chrono::steady_clock::now();
  EXPECT_EQ(say(b, "b1"), "b1");
  EXPECT_GE(std::chrono::steady_clock::now() - begin, 250ms)
      << "took over a holder that was not silent";
  EXPECT_NE(say(a, "a2"), "a2");
  EXPECT_EQ(seen(), (std::vector<std::string>{"new link", "a1", "new link", "b1"}));
}

}  // namespace
}  // namespace zf::test
