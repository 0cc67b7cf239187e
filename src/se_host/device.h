// An emulated SE device: the applet plus its sealed state file, served over
// the APDU link. Every state change is sealed and written before the response
// leaves the device, so `kill -9` at any moment leaves the old or the new state.
#pragma once

#include <memory>
#include <mutex>
#include <string>

#include "core/crypto.h"
#include "se/applet.h"

namespace zf::se {

class Device {
 public:
  // Factory: makes the attestation identity through the manufacturer, a sealing
  // key (device.key, 0600) and the first sealed state in `dir`.
  static Status create(const std::string& dir, const std::string& se_id, const std::string& manufacturer_dir);
  static Result<std::unique_ptr<Device>> open(const std::string& dir);
  ~Device();

  // Runs one APDU; persists first when the applet changed state. When a new
  // state cannot be saved the device goes back to the last saved one; if even
  // that cannot be read back it has no state it can stand behind and refuses
  // every later command (6F00, io_error) until it is restarted.
  Bytes handle(ByteView apdu, std::int64_t now_s);
  // True once the device refuses everything because it cannot persist.
  bool failed() const { return failed_; }
  // A new terminal connection: the verified user is forgotten.
  void new_link();
  const Applet& applet() const { return *applet_; }

  // Face to face (docs/se-apdu.md "Face-to-face payment"). The short-range
  // link is a second port that carries only SE-to-SE messages; `nearby` is
  // the directory that stands in for radio range: an SE taking face-to-face
  // payments announces itself there, and a payer's SE looks there for its payee.
  void enable_face_to_face(const std::string& nearby_dir, int peer_port);
  // One message from another SE; persisted before the answer leaves.
  Bytes handle_peer(ByteView message, std::int64_t now_s);
  // Takes this SE's announcement down (shutdown).
  void withdraw();

 private:
  class NearbyLink;
  Device();
  Status save();
  // Writes or removes the announcement as the applet's receive window says.
  void announce(std::int64_t now_s);
  // After every command: persist when dirty (or undo), show the display, announce.
  Bytes settle_command(Bytes reply, std::int64_t now_s);
  // Puts what the applet's display shows where a person sees it (console, pairing.code).
  void show_display();
  std::string shown_;
  std::mutex mu_;
  std::string dir_;
  SecretBytes key_;
  std::string se_id_;
  std::unique_ptr<Applet> applet_;
  bool failed_ = false;  // sticky: the in-memory state is not one the disk holds
  std::unique_ptr<NearbyLink> peer_link_;
  std::string nearby_dir_;
  int peer_port_ = 0;
  std::int64_t announced_until_ = 0;
  std::string shown_f2f_;
};

// `zf se serve`: open the device in `dir` and serve APDUs on 127.0.0.1:port
// until SIGTERM, and the short-range link on another port, announced in
// `nearby_dir` (empty: the "nearby" directory beside `dir`).
int serve(const std::string& dir, int port, const std::string& port_file, const std::string& nearby_dir = {});

}  // namespace zf::se
