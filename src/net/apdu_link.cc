#include "net/apdu_link.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <deque>
#include <vector>

namespace zf::net {
namespace {

bool write_all(int fd, const std::uint8_t* p, std::size_t n) {
  while (n > 0) {
    ssize_t w = ::send(fd, p, n, MSG_NOSIGNAL);
    if (w <= 0) {
      if (w < 0 && errno == EINTR) continue;
      return false;
    }
    p += w;
    n -= static_cast<std::size_t>(w);
  }
  return true;
}

bool read_all(int fd, std::uint8_t* p, std::size_t n) {
  while (n > 0) {
    ssize_t r = ::recv(fd, p, n, 0);
    if (r <= 0) {
      if (r < 0 && errno == EINTR) continue;
      return false;
    }
    p += r;
    n -= static_cast<std::size_t>(r);
  }
  return true;
}

bool send_frame(int fd, ByteView data) {
  std::uint8_t len[4] = {static_cast<std::uint8_t>(data.size() >> 24), static_cast<std::uint8_t>(data.size() >> 16),
                         static_cast<std::uint8_t>(data.size() >> 8), static_cast<std::uint8_t>(data.size())};
  return write_all(fd, len, 4) && write_all(fd, data.data(), data.size());
}

// Returns false on EOF, error or an oversize frame (the peer is then dropped).
bool recv_frame(int fd, Bytes& out) {
  std::uint8_t len[4];
  if (!read_all(fd, len, 4)) return false;
  std::size_t n = (std::size_t{len[0]} << 24) | (std::size_t{len[1]} << 16) | (std::size_t{len[2]} << 8) | len[3];
  if (n > kMaxFrameBytes) return false;
  out.resize(n);
  return read_all(fd, out.data(), n);
}

}  // namespace

ApduServer::~ApduServer() {
  if (listen_fd_ >= 0) ::close(listen_fd_);
}

Result<int> ApduServer::bind(int port) {
  listen_fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (listen_fd_ < 0) return fail(Errc::io_error, "socket failed");
  int one = 1;
  ::setsockopt(listen_fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(static_cast<std::uint16_t>(port));
  if (::bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 || ::listen(listen_fd_, 4) != 0)
    return fail(Errc::io_error, "cannot bind 127.0.0.1:" + std::to_string(port));
  socklen_t len = sizeof(addr);
  ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len);
  return ntohs(addr.sin_port);
}

// One link at a time, like a Bluetooth connection: a terminal that connects
// while another holds the link waits (nothing of it is read) until the holder
// closes or falls silent for policy_.idle_ms; then the oldest waiting terminal
// gets the link and a new session (on_connect). One still waiting after
// policy_.wait_ms is told the SE is busy, never served.
void ApduServer::run(const Handler& handler, const OnConnect& on_connect) {
  using Clock = std::chrono::steady_clock;
  struct Waiting {
    int fd;
    Clock::time_point since;
  };
  const auto wait = std::chrono::milliseconds(policy_.wait_ms);
  const auto idle = std::chrono::milliseconds(policy_.idle_ms);
  // A waiting terminal that sends nothing at all is dropped this much after its wait.
  const auto give_up = wait + std::chrono::seconds(2);
  constexpr std::size_t kMaxWaiting = 16;
  int fd = -1;  // the link being served
  Clock::time_point last_frame{};
  std::deque<Waiting> waiting;  // oldest first
  Bytes frame;
  while (!stopping_) {
    auto now = Clock::now();
    if (fd >= 0 && !waiting.empty() && now - last_frame >= idle) {
      ::close(fd);
      fd = -1;
    }
    if (fd < 0 && !waiting.empty()) {
      fd = waiting.front().fd;
      waiting.pop_front();
      last_frame = now;
      on_connect();
    }
    std::vector<pollfd> p;
    p.push_back({listen_fd_, POLLIN, 0});
    p.push_back({fd, POLLIN, 0});  // fd -1 is ignored by poll
    // Only a terminal whose wait is over is read from, and only to be told it is busy.
    for (const auto& w : waiting) p.push_back({w.fd, static_cast<short>(now - w.since >= wait ? POLLIN : 0), 0});
    int ready = ::poll(p.data(), p.size(), waiting.empty() ? 200 : 50);
    if (ready < 0) continue;
    if (fd >= 0 && (p[1].revents & (POLLIN | POLLHUP | POLLERR))) {
      if (!recv_frame(fd, frame)) {
        ::close(fd);
        fd = -1;
      } else {
        Bytes reply = handler(frame);
        last_frame = Clock::now();
        if (!send_frame(fd, reply)) {
          ::close(fd);
          fd = -1;
        }
      }
    }
    now = Clock::now();
    std::deque<Waiting> still;
    for (std::size_t i = 0; i < waiting.size(); ++i) {
      const Waiting& w = waiting[i];
      const short ev = p[2 + i].revents;
      if (ev & (POLLIN | POLLHUP | POLLERR)) {
        // Read its frame before answering, so that closing sends a FIN, not a reset
        // that could destroy the answer before the terminal reads it.
        timeval tv{0, 200 * 1000};
        ::setsockopt(w.fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
        if (recv_frame(w.fd, frame) && !policy_.busy_answer.empty()) send_frame(w.fd, policy_.busy_answer);
        ::close(w.fd);
      } else if (now - w.since >= give_up) {
        ::close(w.fd);
      } else {
        still.push_back(w);
      }
    }
    waiting.swap(still);
    if (p[0].revents & POLLIN) {
      int fresh = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (fresh >= 0) {
        int one = 1;
        ::setsockopt(fresh, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        if (fd < 0 && waiting.empty()) {
          fd = fresh;
          last_frame = Clock::now();
          on_connect();
        } else if (waiting.size() < kMaxWaiting) {
          waiting.push_back({fresh, Clock::now()});
        } else {
          ::close(fresh);
        }
      }
    }
  }
  if (fd >= 0) ::close(fd);
  for (const auto& w : waiting) ::close(w.fd);
}

void ApduServer::stop() { stopping_ = true; }

ApduClient& ApduClient::operator=(ApduClient&& o) noexcept {
  if (this != &o) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = o.fd_;
    o.fd_ = -1;
  }
  return *this;
}

ApduClient::~ApduClient() {
  if (fd_ >= 0) ::close(fd_);
}

Result<ApduClient> ApduClient::connect(const std::string& host, int port, int timeout_ms) {
  ApduClient c;
  c.fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (c.fd_ < 0) return fail(Errc::io_error, "socket failed");
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<std::uint16_t>(port));
  if (::inet_pton(AF_INET, host.c_str(), &addr.sin_addr) != 1) return fail(Errc::bad_field, "bad SE host", "host");
  if (::connect(c.fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0)
    return fail(Errc::unavailable, "SE not reachable at " + host + ":" + std::to_string(port));
  timeval tv{timeout_ms / 1000, (timeout_ms % 1000) * 1000};
  ::setsockopt(c.fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  ::setsockopt(c.fd_, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
  int one = 1;
  ::setsockopt(c.fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  return c;
}

Result<Bytes> ApduClient::transmit(ByteView apdu) {
  if (fd_ < 0) return fail(Errc::unavailable, "SE link closed");
  Bytes reply;
  if (!send_frame(fd_, apdu) || !recv_frame(fd_, reply)) {
    ::close(fd_);
    fd_ = -1;
    return fail(Errc::unavailable, "SE link dropped");
  }
  return reply;
}

}  // namespace zf::net
