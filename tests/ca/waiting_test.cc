// The services' HTTPS server holds long-polling requests (net::Wait) without a
// thread: a parked request is answered by a notify of its topic, or with its
// handler's first answer when its wait is over, and a notify that lands
// between the handler's read and its park is not lost. A real server on
// loopback, port 0, with real TLS clients.
#include <gtest/gtest.h>
#include <httplib.h>

#include <atomic>
#include <thread>

#include "net/http.h"

namespace zf::test {
namespace {

using namespace std::chrono_literals;

struct TlsIdentity {
  PrivateKey key = *PrivateKey::generate();
  Certificate cert{nullptr};
  TlsIdentity() {
    IssueParams p;
    p.common_name = "waiting-test";
    p.roles = {Role::tls_server};
    p.dns_names = {"localhost"};
    p.not_before = std::time(nullptr) - 60;
    p.not_after = p.not_before + 3600;
    p.serial = new_serial();
    cert = *make_self_signed_ca(key, p);
  }
};

// method path on the server at `port` -> the JSON answer, or {} for none.
Json call(int port, const std::string& method, const std::string& path) {
  httplib::Client c("https://127.0.0.1:" + std::to_string(port));
  c.enable_server_certificate_verification(false);
  c.set_read_timeout(30, 0);
  auto res = method == "GET" ? c.Get(path) : c.Post(path, "{}", "application/json");
  if (!res || res->status != 200) return Json::object();
  return Json::parse(res->body, nullptr, false);
}

// A server with one worker and a route that waits on a topic for `news`.
class WaitingServer {
 public:
  explicit WaitingServer(std::chrono::milliseconds wait, bool notify_before_park = false,
                         net::ServerLimits l = limits(), std::chrono::milliseconds again_takes = 0ms)
      : server_(identity_.cert, identity_.key, l) {
    net::Routes routes;
    routes.get("/v1/info", [](const httplib::Request&, httplib::Response& res) { net::write_json(res, Json{{"ok", true}}); });
    routes.post_waiting("/v1/wait", [this, wait, notify_before_park, again_takes](const httplib::Request&, httplib::Response& res)
                                        -> std::optional<net::Wait> {
      if (news_ > 0) return net::write_json(res, Json{{"news", news_.load()}}), std::nullopt;
      net::write_json(res, Json{{"news", 0}});
      // What a commit racing this handler does: its notify is posted before the park.
      if (notify_before_park) {
        news_ = 7;
        server_.notify("t");
      }
      return net::Wait{"t", wait, [this, again_takes](httplib::Response& r) {
                         std::this_thread::sleep_for(again_takes);
                         ++agains_;
                         if (news_ == 0) return false;
                         net::write_json(r, Json{{"news", news_.load()}});
                         return true;
                       }};
    });
    server_.serve_routes(routes);
    auto port = server_.bind("127.0.0.1", 0);
    EXPECT_TRUE(port) << port.error().message();
    port_ = port.value_or(0);
    thread_ = std::thread([this] { server_.run(); });
    while (!server_.is_running()) std::this_thread::sleep_for(1ms);
  }
  ~WaitingServer() {
    server_.stop();
    thread_.join();
  }
  static net::ServerLimits limits() {
    net::ServerLimits l;
    l.workers = 1;
    return l;
  }
  // POST /v1/wait -> the "news" of the answer, or -1.
  std::int64_t ask() const { return call(port_, "POST", "/v1/wait").value("news", std::int64_t{-1}); }
  void wait_parked(std::size_t n) const {
    for (int i = 0; i < 2000 && server_.waiting_requests() < n; ++i) std::this_thread::sleep_for(5ms);
    ASSERT_EQ(server_.waiting_requests(), n);
  }

  TlsIdentity identity_;
  net::HttpsServer server_;
  int port_ = 0;
  std::thread thread_;
  std::atomic<std::int64_t> news_{0};
  std::atomic<int> agains_{0};
};

TEST(WaitingRequests, ParkedRequestsHoldNoThreadAndANotifyAnswersThemAll) {
  WaitingServer s(20s);
  constexpr int kClients = 24;
  std::vector<std::int64_t> got(kClients, -2);
  std::vector<std::thread> clients;
  for (int i = 0; i < kClients; ++i) clients.emplace_back([&, i] { got[i] = s.ask(); });
  s.wait_parked(kClients);
  // The one worker is free: a plain request is answered while all of them wait.
  EXPECT_EQ(call(s.port_, "GET", "/v1/info").value("ok", false), true);
  s.news_ = 5;
  s.server_.notify("t");
  for (auto& t : clients) t.join();
  // 5 is what only a wake-up writes; the answer at the end of the wait says 0.
  for (int i = 0; i < kClients; ++i) EXPECT_EQ(got[i], 5) << "client " << i;
  EXPECT_EQ(s.server_.waiting_requests(), 0u);
}

TEST(WaitingRequests, AtTheEndOfItsWaitARequestGetsItsFirstAnswer) {
  WaitingServer s(300ms);
  EXPECT_EQ(s.ask(), 0);
  EXPECT_EQ(s.agains_, 0);
  EXPECT_EQ(s.server_.waiting_requests(), 0u);
}

TEST(WaitingRequests, ANotifyOfAnotherTopicOrWithoutNewsKeepsItWaiting) {
  WaitingServer s(20s);
  std::int64_t got = -2;
  std::thread client([&] { got = s.ask(); });
  s.wait_parked(1);
  s.server_.notify("other");
  s.server_.notify("t");  // no news yet: `again` runs and parks it again
  for (int i = 0; i < 2000 && s.agains_ < 1; ++i) std::this_thread::sleep_for(5ms);
  EXPECT_EQ(s.agains_, 1) << "only the notify of its own topic runs it again";
  s.wait_parked(1);
  s.news_ = 9;
  s.server_.notify("t");
  client.join();
  EXPECT_EQ(got, 9);
  EXPECT_EQ(s.agains_, 2);
}

TEST(WaitingRequests, ANotifyBetweenTheReadAndTheParkIsNotLost) {
  WaitingServer s(20s, /*notify_before_park=*/true);
  // Were the notify lost, the answer would come after 20 s and say 0.
  EXPECT_EQ(s.ask(), 7);
}

// A notify runs every request parked on its topic again, on the workers. Those
// runs are bounded by max_waiting already; they must not count against
// max_queued, the bound on fresh requests waiting for a worker, or one notify
// of a topic with many parked requests (one account's owner can park as many
// as he signs queries) has the server refuse everyone else as busy (503).
TEST(WaitingRequests, WakingManyParkedRequestsDoesNotRefuseFreshOnes) {
  net::ServerLimits l = WaitingServer::limits();
  l.max_queued = 4;
  WaitingServer s(20s, false, l, /*again_takes=*/100ms);
  constexpr int kClients = 12;
  std::vector<std::thread> clients;
  for (int i = 0; i < kClients; ++i) {  // one at a time: at most 4 may wait for the worker at once
    clients.emplace_back([&] { (void)s.ask(); });
    s.wait_parked(i + 1);
  }
  s.news_ = 3;
  s.server_.notify("t");
  for (int i = 0; i < 2000 && s.server_.waiting_requests() > 0; ++i) std::this_thread::sleep_for(1ms);
  // Twelve runs of 100 ms are queued on the one worker; a plain request waits its turn.
  EXPECT_EQ(call(s.port_, "GET", "/v1/info").value("ok", false), true) << "refused as busy by the wake-ups";
  for (auto& t : clients) t.join();
}

TEST(WaitingRequests, StoppingTheServerEndsParkedRequests) {
  std::int64_t got = -2;
  std::thread client;
  {
    WaitingServer s(20s);
    client = std::thread([&got, port = s.port_] { got = call(port, "POST", "/v1/wait").value("news", std::int64_t{-1}); });
    s.wait_parked(1);
  }
  client.join();
  EXPECT_EQ(got, -1) << "the connection is closed, no answer";
}

}  // namespace
}  // namespace zf::test
