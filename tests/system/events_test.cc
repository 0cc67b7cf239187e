// Result notifications on a network of real processes (docs/bank-api.md
// "Events"): `zf wallet events --follow` waits at the bank and prints the
// payee's incoming transfer as soon as the payer's order commits, without the
// payer telling anyone; no one reads another's feed.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <future>
#include <thread>

#include "system_fixture.h"

namespace zf::test {
namespace {

using Clock = std::chrono::steady_clock;

class EventsSystemTest : public NetworkTest {
 protected:
  CmdResult events(const std::string& user, const std::string& account, std::vector<std::string> more = {}) {
    std::vector<std::string> args{"events", "--bank", net_->bank_id, "--account", account};
    args.insert(args.end(), more.begin(), more.end());
    return zf_wallet(user, args);
  }
};

TEST_F(EventsSystemTest, AFollowingPayeeIsToldOfTheTransferAsItCommits) {
  const std::string alice = se("alice").account, bob = se("bob").account;
  CmdResult before = events("bob", bob, {"--json"});
  ASSERT_EQ(before.exit_code, 0) << before.out;
  auto first = parse_json_strict(before.out);
  ASSERT_TRUE(first) << before.out;
  const std::int64_t next = (*first)["next"].get<std::int64_t>();

  // Bob follows his feed from where it stands; the bank holds his question.
  auto follower = std::async(std::launch::async, [&] {
    return events("bob", bob, {"--after", std::to_string(next), "--follow", "--count", "2"});
  });
  std::this_thread::sleep_for(std::chrono::seconds(2));
  ASSERT_EQ(follower.wait_for(std::chrono::seconds(0)), std::future_status::timeout) << "nothing to tell yet";
  // While the bank holds the question, Bob's other terminal uses his SE (it
  // serves one terminal at a time); the follower signs its next query after.
  CmdResult balance = zf_wallet("bob", {"balance"});
  EXPECT_EQ(balance.exit_code, 0) << balance.out;
  const auto sent = Clock::now();
  CmdResult moved = zf_wallet("alice", {"transfer", "CNY 25.00", "--bank", net_->bank_id, "--from", alice, "--to", bob});
  ASSERT_EQ(moved.exit_code, 0) << moved.out;
  CmdResult again = zf_wallet("alice", {"transfer", "CNY 1.50", "--bank", net_->bank_id, "--from", alice, "--to", bob});
  ASSERT_EQ(again.exit_code, 0) << again.out;
  // A question the bank holds ends at 20 s with nothing; woken by the commit it ends long before.
  ASSERT_EQ(follower.wait_for(std::chrono::seconds(15)), std::future_status::ready)
      << "the follower was not woken by the commit";
  CmdResult told = follower.get();
  EXPECT_LT(Clock::now() - sent, std::chrono::seconds(15));
  EXPECT_EQ(told.exit_code, 0) << told.out;
  EXPECT_NE(told.out.find("+CNY 25.00"), std::string::npos) << told.out;
  EXPECT_NE(told.out.find("transfer from " + alice), std::string::npos) << told.out;
  EXPECT_NE(told.out.find("+CNY 1.50"), std::string::npos) << told.out;

  // The same event for scripts: the bank's receipt, checked and opened.
  CmdResult json = events("bob", bob, {"--after", std::to_string(next), "--json"});
  ASSERT_EQ(json.exit_code, 0) << json.out;
  auto feed = parse_json_strict(json.out);
  ASSERT_TRUE(feed) << json.out;
  ASSERT_EQ((*feed)["events"].size(), 2u) << json.out;
  const Json& e = (*feed)["events"][0];
  EXPECT_EQ(e["kind"], "transfer");
  EXPECT_EQ(e["amount_minor"], 2500);
  EXPECT_EQ(e["details"]["from"], alice);
  EXPECT_EQ(e["details"]["type"], "transfer.receipt");
  // Alice's side of it.
  CmdResult hers = events("alice", alice);
  EXPECT_NE(hers.out.find("-CNY 25.00"), std::string::npos) << hers.out;
  EXPECT_NE(hers.out.find("transfer to " + bob), std::string::npos) << hers.out;
}

// docs/bank-api.md "Events": "A parked connection is idle: when the server
// needs room it may close it, like a keep-alive connection, and the follower
// asks again." Anyone can make the bank need room: here idle TCP connections
// from 19 loopback addresses (under the per-peer bound each) fill its table,
// and the oldest idle connection, Bob's parked question, is closed for room.
// The follower must ask again and still print Alice's transfer.
TEST_F(EventsSystemTest, AFollowerWhoseQuestionIsClosedForRoomAsksAgain) {
  const std::string alice = se("alice").account, bob = se("bob").account;
  CmdResult before = events("bob", bob, {"--json"});
  ASSERT_EQ(before.exit_code, 0) << before.out;
  const std::int64_t next = (*parse_json_strict(before.out))["next"].get<std::int64_t>();
  auto follower = std::async(std::launch::async, [&] {
    return events("bob", bob, {"--after", std::to_string(next), "--follow", "--count", "1"});
  });
  std::this_thread::sleep_for(std::chrono::seconds(2));
  ASSERT_EQ(follower.wait_for(std::chrono::seconds(0)), std::future_status::timeout) << "nothing to tell yet";

  const int port = std::stoi(net_->bank_url.substr(net_->bank_url.rfind(':') + 1));
  std::vector<int> fds;
  for (int host = 2; host <= 20; ++host)
    for (int k = 0; k < 480; ++k) {
      int fd = ::socket(AF_INET, SOCK_STREAM, 0);
      ASSERT_GE(fd, 0) << "socket: " << errno;
      sockaddr_in from{}, to{};
      from.sin_family = to.sin_family = AF_INET;
      from.sin_addr.s_addr = htonl(0x7f000000u | static_cast<unsigned>(host));
      to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
      to.sin_port = htons(static_cast<std::uint16_t>(port));
      if (::bind(fd, reinterpret_cast<sockaddr*>(&from), sizeof from) != 0 ||
          ::connect(fd, reinterpret_cast<sockaddr*>(&to), sizeof to) != 0) {
        ::close(fd);
        continue;
      }
      fds.push_back(fd);
    }
  EXPECT_GT(fds.size(), 8192u);
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  for (int fd : fds) ::close(fd);

  CmdResult moved = zf_wallet("alice", {"transfer", "CNY 25.00", "--bank", net_->bank_id, "--from", alice, "--to", bob});
  ASSERT_EQ(moved.exit_code, 0) << moved.out;
  ASSERT_EQ(follower.wait_for(std::chrono::seconds(30)), std::future_status::ready);
  CmdResult told = follower.get();
  EXPECT_EQ(told.exit_code, 0) << "the follower gave up: " << told.out;
  EXPECT_NE(told.out.find("+CNY 25.00"), std::string::npos) << told.out;
}

TEST_F(EventsSystemTest, NoOneReadsAnothersFeed) {
  CmdResult theirs = events("alice", se("bob").account);
  EXPECT_EQ(theirs.exit_code, 2) << theirs.out;
  EXPECT_NE(theirs.out.find("not_owner"), std::string::npos) << theirs.out;
  CmdResult follow = events("alice", se("bob").account, {"--follow"});
  EXPECT_EQ(follow.exit_code, 2) << "refused at once, not held: " << follow.out;
  CmdResult nothing = events("alice", se("alice").account, {"--after", "1000000"});
  EXPECT_EQ(nothing.exit_code, 0) << nothing.out;
  EXPECT_NE(nothing.out.find("No events on " + se("alice").account), std::string::npos) << nothing.out;
}

}  // namespace
}  // namespace zf::test
