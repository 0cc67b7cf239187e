#include "net/apdu_link.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>

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

void ApduServer::run(const Handler& handler, const OnConnect& on_connect) {
  // One link at a time, like a Bluetooth pairing: a new connection replaces the
  // current one (its terminal went away or is idle), and starts a new session.
  int fd = -1;
  Bytes frame;
  while (!stopping_) {
    pollfd p[2] = {{listen_fd_, POLLIN, 0}, {fd, POLLIN, 0}};
    int ready = ::poll(p, fd >= 0 ? 2 : 1, 200);
    if (ready <= 0) continue;
    if (p[0].revents & POLLIN) {
      int fresh = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (fresh >= 0) {
        if (fd >= 0) ::close(fd);
        fd = fresh;
        int one = 1;
        ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        on_connect();
      }
      continue;
    }
    if (fd >= 0 && (p[1].revents & (POLLIN | POLLHUP | POLLERR))) {
      if (!recv_frame(fd, frame)) {
        ::close(fd);
        fd = -1;
        continue;
      }
      Bytes reply = handler(frame);
      if (!send_frame(fd, reply)) {
        ::close(fd);
        fd = -1;
      }
    }
  }
  if (fd >= 0) ::close(fd);
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
