// A bank keeps serving its customers while a thousand idle and slow
// connections are open against it and its registry (DESIGN.md §2: the services
// face untrusted clients). Real `zf` processes; the attackers are raw sockets
// and TLS sessions from this process.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/ssl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <fstream>
#include <thread>

#include "system_fixture.h"

namespace zf::test {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

int port_of(const std::string& url) { return std::stoi(url.substr(url.rfind(':') + 1)); }

// A TCP connection to 127.0.0.1:port, or -1.
int dial(int port) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return -1;
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<std::uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

// Sockets of `pid` (entries of /proc/pid/fd that are sockets).
int open_sockets(pid_t pid) {
  int n = 0;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator("/proc/" + std::to_string(pid) + "/fd", ec)) {
    std::error_code ec2;
    if (fs::read_symlink(e.path(), ec2).string().starts_with("socket:")) ++n;
  }
  return n;
}

int threads_of(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  for (std::string line; std::getline(in, line);)
    if (line.starts_with("Threads:")) return std::stoi(line.substr(8));
  return -1;
}

// One attacker's connection: a socket, and a TLS session over it once the
// handshake is done.
struct Slow {
  int fd = -1;
  SSL* ssl = nullptr;
};

class SlowClientsTest : public NetworkTest {
 protected:
  std::vector<std::string> users() const override { return {"alice"}; }

  void SetUp() override {
    // A thousand and more sockets on this side too.
    rlimit nofile{};
    ::getrlimit(RLIMIT_NOFILE, &nofile);
    nofile.rlim_cur = nofile.rlim_max;
    ::setrlimit(RLIMIT_NOFILE, &nofile);
    NetworkTest::SetUp();
    ctx_ = SSL_CTX_new(TLS_client_method());
    SSL_CTX_set_verify(ctx_, SSL_VERIFY_NONE, nullptr);  // the attacker trusts anything
  }
  void TearDown() override {
    stop_ = true;
    if (trickler_.joinable()) trickler_.join();
    for (auto& s : conns_) {
      if (s.ssl) SSL_free(s.ssl);
      if (s.fd >= 0) ::close(s.fd);
    }
    SSL_CTX_free(ctx_);
    NetworkTest::TearDown();
  }

  pid_t pid_of(const std::string& name) { return net_->children.at(name).pid(); }

  // `n` connections that never send a byte.
  void idle(int port, int n) {
    for (int i = 0; i < n; ++i) conns_.push_back({dial(port), nullptr});
  }
  // `n` connections that send the first bytes of a TLS ClientHello and stop.
  void half_handshakes(int port, int n) {
    for (int i = 0; i < n; ++i) {
      int fd = dial(port);
      if (fd >= 0) (void)!::write(fd, "\x16\x03\x01\x02", 4);
      conns_.push_back({fd, nullptr});
    }
  }
  // `n` TLS sessions that send `start` and then one more byte of `drip` every
  // 100 ms: a header that never ends, or a body that comes a byte at a time.
  std::vector<std::size_t> tricklers(int port, int n, const std::string& start) {
    std::vector<std::size_t> out;
    for (int i = 0; i < n; ++i) {
      Slow s{dial(port), nullptr};
      if (s.fd >= 0) {
        s.ssl = SSL_new(ctx_);
        SSL_set_fd(s.ssl, s.fd);
        if (SSL_connect(s.ssl) == 1) SSL_write(s.ssl, start.data(), static_cast<int>(start.size()));
      }
      out.push_back(conns_.size());
      conns_.push_back(s);
    }
    return out;
  }
  void start_trickling(std::vector<std::size_t> which) {
    trickler_ = std::thread([this, which = std::move(which)] {
      while (!stop_) {
        for (std::size_t i : which)
          if (conns_[i].ssl) {
            if (SSL_write(conns_[i].ssl, "a", 1) <= 0) {
              // Closed by the server: remember when.
              SSL_free(conns_[i].ssl);
              conns_[i].ssl = nullptr;
              ++closed_by_server_;
            }
          }
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
      }
    });
  }

  int topup_cli(const std::string& amount) {
    std::string cmd = "ZF_PIN='" + opts_.pin + "' " + std::string(ZF_BINARY) + " wallet topup '" + amount +
                      "' --bank " + net_->bank_id + " --account " + se("alice").account + " --wallet '" +
                      se("alice").wallet + "' > '" + (dir_ / "topup.txt").string() + "' 2>&1";
    int status = std::system(cmd.c_str());
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  }

  SSL_CTX* ctx_ = nullptr;
  std::vector<Slow> conns_;
  std::thread trickler_;
  std::atomic<bool> stop_{false};
  std::atomic<int> closed_by_server_{0};
};

TEST_F(SlowClientsTest, ATopupCompletesWhileAThousandSlowConnectionsAreOpen) {
  const pid_t bank = pid_of(net_->bank_id);
  const pid_t registry = pid_of("registry");
  const int bank_port = port_of(net_->bank_url);
  const int registry_port = port_of(net_->registry_url);
  const int bank_threads = threads_of(bank);
  ASSERT_GT(bank_threads, 0);

  // Against the bank: 400 idle, 200 stalled handshakes, 200 endless headers,
  // 200 bodies a byte at a time. Against its registry: 300 idle.
  idle(bank_port, 400);
  half_handshakes(bank_port, 200);
  auto headers = tricklers(bank_port, 200, "POST /v1/topup HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ");
  auto bodies = tricklers(bank_port, 200,
                          "POST /v1/topup HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                          "Content-Length: 60000\r\n\r\n{\"jws\": \"");
  idle(registry_port, 300);
  std::size_t dialed = 0;
  for (const auto& c : conns_) dialed += c.fd >= 0;
  ASSERT_EQ(dialed, 1300u) << "the attacker could not open its connections";
  std::vector<std::size_t> slow = headers;
  slow.insert(slow.end(), bodies.begin(), bodies.end());
  const auto slow_started = Clock::now();
  start_trickling(slow);

  // The bank holds them without a thread each: its per-peer bound (512) keeps
  // the newest, so most are open at once, and its thread count is unchanged.
  const int held = open_sockets(bank);
  EXPECT_GE(held, 450) << "the bank holds few of the connections";
  EXPECT_LE(threads_of(bank), bank_threads + 1);

  const auto t0 = Clock::now();
  int rc = topup_cli("CNY 10.00");
  const auto took = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t0);
  std::ifstream out(dir_ / "topup.txt");
  std::string text(std::istreambuf_iterator<char>(out), {});
  ASSERT_EQ(rc, 0) << text;
  std::fprintf(stderr, "topup with %d bank sockets and %d registry sockets open: %lld ms\n", held,
               open_sockets(registry), static_cast<long long>(took.count()));
  EXPECT_LT(took.count(), 1000) << text;
  EXPECT_EQ(se_balance("alice"), 1000);

  // A header or body that never completes is cut at its deadline (5 s and
  // 10 s), however steadily it trickles.
  while (closed_by_server_ < static_cast<int>(slow.size()) && Clock::now() - slow_started < std::chrono::seconds(20))
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  const auto cut = std::chrono::duration_cast<std::chrono::seconds>(Clock::now() - slow_started);
  EXPECT_EQ(closed_by_server_.load(), static_cast<int>(slow.size())) << "trickling connections still open";
  EXPECT_LE(cut.count(), 15);

  // And the bank still answers; the books are whole.
  ASSERT_EQ(topup_cli("CNY 5.00"), 0);
  EXPECT_EQ(se_balance("alice"), 1500);
  Json a = audit();
  EXPECT_TRUE(a["ok"].get<bool>()) << a.dump(2);
}

}  // namespace
}  // namespace zf::test
