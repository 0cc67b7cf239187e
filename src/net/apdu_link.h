// The SE link: a stand-in for the Bluetooth connection between terminal and SE.
// TCP on loopback carrying frames of a 4-byte big-endian length and one APDU.
#pragma once

#include <atomic>
#include <functional>
#include <string>
#include <utility>

#include "core/encoding.h"
#include "core/error.h"

namespace zf::net {

// Largest frame either side accepts (an extended APDU plus headroom).
inline constexpr std::size_t kMaxFrameBytes = 70 * 1024;

// How terminals share the one link (docs/se-apdu.md "Transport and framing").
struct LinkPolicy {
  // A terminal that connects while another holds the link waits this long for
  // it, then is answered `busy_answer` and closed.
  int wait_ms = 3000;
  // A holder silent this long has finished or gone away: a waiting terminal
  // takes the link over. A holder that keeps talking keeps the link.
  int idle_ms = 2000;
  // The answer to a waiting terminal's first frame once its wait is over (an
  // APDU response the SE never produced: no command of it ran). Empty: just close.
  Bytes busy_answer;
};

// Serves one terminal connection at a time: frames of one link only ever reach
// the handler, and a new link starts only after on_connect, so two terminals'
// commands never interleave.
class ApduServer {
 public:
  using Handler = std::function<Bytes(ByteView apdu)>;
  using OnConnect = std::function<void()>;
  explicit ApduServer(LinkPolicy policy = {}) : policy_(std::move(policy)) {}
  ~ApduServer();
  // Binds 127.0.0.1:port (0 = any) and returns the port.
  Result<int> bind(int port);
  // Accepts and serves until stop(). `on_connect` runs for every new link.
  void run(const Handler& handler, const OnConnect& on_connect);
  void stop();

 private:
  LinkPolicy policy_;
  int listen_fd_ = -1;
  std::atomic<bool> stopping_{false};
};

// A terminal's end of the link.
class ApduClient {
 public:
  ApduClient() = default;
  ApduClient(ApduClient&& o) noexcept : fd_(o.fd_) { o.fd_ = -1; }
  ApduClient& operator=(ApduClient&& o) noexcept;
  ~ApduClient();
  static Result<ApduClient> connect(const std::string& host, int port, int timeout_ms = 10000);
  // Sends one APDU and waits for its response frame.
  Result<Bytes> transmit(ByteView apdu);

 private:
  int fd_ = -1;
};

}  // namespace zf::net
