#include "se_host/device.h"

#include <csignal>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <thread>

#include "ca/manufacturer.h"
#include "net/apdu_link.h"
#include "net/http.h"
#include "store/sealed.h"

namespace zf::se {
namespace fs = std::filesystem;
namespace {

std::string state_path(const std::string& dir) { return (fs::path(dir) / "state.seal").string(); }
std::string key_path(const std::string& dir) { return (fs::path(dir) / "device.key").string(); }
std::string id_path(const std::string& dir) { return (fs::path(dir) / "se.id").string(); }

Result<std::unique_ptr<Applet>> load_applet(const std::string& dir, ByteView key, const std::string& se_id) {
  auto plain = store::read_sealed(state_path(dir), key, se_id);
  if (!plain) return std::unexpected(plain.error());
  auto j = parse_json_strict(to_string(plain->view()), {16 * 1024 * 1024, 16});
  if (!j) return std::unexpected(j.error());
  return Applet::from_state(*j);
}

std::atomic<net::ApduServer*> g_server{nullptr};
std::atomic<net::ApduServer*> g_peer_server{nullptr};
void on_signal(int) {
  if (auto* s = g_server.load()) s->stop();
  if (auto* s = g_peer_server.load()) s->stop();
}

}  // namespace

Status Device::create(const std::string& dir, const std::string& se_id, const std::string& manufacturer_dir) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (fs::exists(state_path(dir))) return fail(Errc::conflict, "an SE already exists in " + dir);
  auto dev = ca::make_device(manufacturer_dir, se_id);
  if (!dev) return std::unexpected(dev.error());
  if (auto s = store::create_device_key(key_path(dir)); !s) return s;
  auto key = store::load_device_key(key_path(dir));
  if (!key) return std::unexpected(key.error());
  Applet applet(se_id, std::move(dev->key), std::move(dev->chain));
  std::string state = dump_json(applet.state_json());
  if (auto s = store::write_file_atomic(id_path(dir), as_bytes(se_id + "\n"), 0644); !s) return s;
  return store::write_sealed(state_path(dir), key->view(), se_id, as_bytes(state));
}

Result<std::unique_ptr<Device>> Device::open(const std::string& dir) {
  std::unique_ptr<Device> d(new Device());
  d->dir_ = dir;
  std::ifstream in(id_path(dir));
  if (!(in >> d->se_id_)) return fail(Errc::not_found, "no SE in " + dir + " (run `zf se create`)");
  auto key = store::load_device_key(key_path(dir));
  if (!key) return std::unexpected(key.error());
  d->key_ = std::move(*key);
  auto applet = load_applet(dir, d->key_.view(), d->se_id_);
  if (!applet) return std::unexpected(applet.error());
  d->applet_ = std::move(*applet);
  return d;
}

Status Device::save() {
  std::string state = dump_json(applet_->state_json());
  SecretBytes plain(Bytes(state.begin(), state.end()));
  std::fill(state.begin(), state.end(), '\0');
  return store::write_sealed(state_path(dir_), key_.view(), se_id_, plain.view());
}

namespace {

Bytes persist_refusal(const std::string& detail) {
  std::string body = dump_json(Json{{"code", "io_error"}, {"detail", detail}});
  return encode_response(Response{Bytes(body.begin(), body.end()), 0x6F00});
}

// What a terminal hears when another one holds the link past its wait: the
// applet never sees its command (net::LinkPolicy).
Bytes busy_answer() {
  std::string body = dump_json(Json{{"code", "unavailable"},
                                    {"field", "link"},
                                    {"detail", "the SE is busy with another terminal; try again when it has finished"}});
  return encode_response(Response{Bytes(body.begin(), body.end()), 0x6F00});
}

}  // namespace

// The emulated SE's display (docs/se-apdu.md "Pairing"): the code goes to the
// host's console and, for scripts, to pairing.code in the device directory,
// where a person (or `zf up`) reads it; it disappears when the pairing ends.
void Device::show_display() {
  const std::string& shown = applet_->display();
  if (shown == shown_) return;
  shown_ = shown;
  std::string path = (fs::path(dir_) / "pairing.code").string();
  if (shown.empty()) {
    std::error_code ec;
    fs::remove(path, ec);
    return;
  }
  std::printf("zf se %s: pairing code %s (compare it with the terminal's)\n", se_id_.c_str(), shown.c_str());
  std::fflush(stdout);
  if (auto s = store::write_file_atomic(path, as_bytes(shown + "\n"), 0600); !s)
    std::fprintf(stderr, "zf se: cannot show the pairing code: %s\n", s.error().message().c_str());
}

// The payer SE's end of the short-range link: finds the payee in the nearby
// directory (the stand-in for a radio scan) and keeps one connection to it
// for the session. The announcement is only a hint where to connect: who
// answers is proven by the key agreement, never by the directory.
class Device::NearbyLink : public se::PeerLink {
 public:
  explicit NearbyLink(Device& d) : d_(d) {}
  Result<Bytes> exchange(const std::string& peer_id, ByteView message) override {
    if (!conn_ || peer_ != peer_id) {
      conn_.reset();
      auto port = find(peer_id);
      if (!port) return std::unexpected(port.error());
      auto c = net::ApduClient::connect("127.0.0.1", *port, kTimeoutMs);
      if (!c) return fail(Errc::unavailable, peer_id + " is announced nearby but does not answer");
      conn_ = std::make_unique<net::ApduClient>(std::move(*c));
      peer_ = peer_id;
    }
    auto r = conn_->transmit(message);
    if (!r) {
      conn_.reset();
      return fail(Errc::unavailable, "the link to " + peer_id + " dropped");
    }
    return r;
  }
  // Called from inside a command, under the device's lock.
  Status persist() override { return d_.save(); }
  void close() override { conn_.reset(); }

 private:
  static constexpr int kTimeoutMs = 5000;
  Result<int> find(const std::string& peer_id) const {
    const std::string not_near = "no SE called " + peer_id + " is taking face-to-face payments nearby";
    if (d_.nearby_dir_.empty()) return fail(Errc::unavailable, "this SE has no short-range link", "link");
    if (peer_id.empty() || peer_id.find('/') != std::string::npos || peer_id[0] == '.')
      return fail(Errc::bad_field, "not an SE id", "payee");
    std::ifstream in(fs::path(d_.nearby_dir_) / (peer_id + ".json"));
    std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    auto j = parse_json_strict(text, {4096, 4});
    if (!in.good() && text.empty()) return fail(Errc::not_receiving, not_near);
    if (!j || !j->is_object()) return fail(Errc::not_receiving, not_near);
    const std::int64_t until = j->value("until", std::int64_t{0});
    const int port = j->value("port", 0);
    if (j->value("se_id", "") != peer_id || until <= std::time(nullptr) || port <= 0 || port > 65535)
      return fail(Errc::not_receiving, not_near);
    // Our own port would wait on the lock this command holds.
    if (port == d_.peer_port_) return fail(Errc::misaddressed, "that announcement is this SE's own", "payee");
    return port;
  }
  Device& d_;
  std::unique_ptr<net::ApduClient> conn_;
  std::string peer_;
};

Bytes Device::handle(ByteView apdu, std::int64_t now_s) {
  std::lock_guard lock(mu_);
  if (failed_) return persist_refusal("the SE cannot persist its state; restart it once its storage works");
  return settle_command(applet_->process_raw(apdu, now_s), now_s);
}

Bytes Device::settle_command(Bytes reply, std::int64_t now_s) {
  show_display();
  if (applet_->dirty()) {
    if (auto s = save(); !s) {
      // The new state is not durable: go back to the last saved one and answer with
      // an error. If the saved one cannot be read either, the only state left is
      // one the disk does not hold, and answering from it could hand out value
      // that a restart forgets: refuse everything from now on.
      std::fprintf(stderr, "zf se: cannot persist state: %s\n", s.error().message().c_str());
      auto reloaded = load_applet(dir_, key_.view(), se_id_);
      if (!reloaded) {
        failed_ = true;
        std::fprintf(stderr, "zf se: cannot reload the saved state either (%s); refusing every command\n",
                     reloaded.error().message().c_str());
        return persist_refusal("the SE cannot persist its state; restart it once its storage works");
      }
      applet_ = std::move(*reloaded);
      applet_->set_peer_link(peer_link_.get());
      return persist_refusal("the SE could not save this change; it was undone");
    }
  }
  announce(now_s);
  return reply;
}

// ---- Face to face

namespace {
Bytes json_answer(const Json& j) {
  std::string s = dump_json(j);
  return Bytes(s.begin(), s.end());
}
}  // namespace

Device::Device() = default;
Device::~Device() = default;

void Device::enable_face_to_face(const std::string& nearby_dir, int peer_port) {
  std::lock_guard lock(mu_);
  nearby_dir_ = nearby_dir;
  peer_port_ = peer_port;
  std::error_code ec;
  fs::create_directories(nearby_dir, ec);
  peer_link_ = std::make_unique<NearbyLink>(*this);
  applet_->set_peer_link(peer_link_.get());
}

Bytes Device::handle_peer(ByteView message, std::int64_t now_s) {
  std::lock_guard lock(mu_);
  if (failed_) return json_answer(Json{{"t", "error"}, {"code", "io_error"}, {"detail", "the SE cannot persist"}});
  Bytes reply = applet_->process_peer(message, now_s);
  Bytes settled = settle_command(reply, now_s);
  // An unsaved credit must not be acknowledged: the payer keeps the payment as undelivered.
  if (settled != reply)
    return json_answer(Json{{"t", "error"}, {"code", "io_error"}, {"detail", "the payee SE could not save"}});
  return reply;
}

// An SE taking face-to-face payments says so in the nearby directory:
// <nearby>/<se id>.json = {se_id, port, until}, written atomically, removed
// when the window closes (a payer ignores one past its `until` anyway).
void Device::announce(std::int64_t now_s) {
  if (nearby_dir_.empty()) return;
  const std::int64_t until = applet_->receiving_until() > now_s ? applet_->receiving_until() : 0;
  if (until == announced_until_) {
    if (until == 0 || until > now_s) return;
  }
  const auto path = fs::path(nearby_dir_) / (se_id_ + ".json");
  if (until == 0) {
    std::error_code ec;
    fs::remove(path, ec);
  } else {
    std::string text = dump_json(Json{{"se_id", se_id_}, {"port", peer_port_}, {"until", until}});
    if (auto s = store::write_file_atomic(path.string(), as_bytes(text), 0644); !s)
      std::fprintf(stderr, "zf se: cannot announce itself nearby: %s\n", s.error().message().c_str());
  }
  announced_until_ = until;
  const std::string& code = applet_->f2f_code();
  if (code != shown_f2f_) {
    shown_f2f_ = code;
    if (!code.empty()) {
      std::printf("zf se %s: face-to-face code %s (compare it with the payer's)\n", se_id_.c_str(), code.c_str());
      std::fflush(stdout);
    }
  }
}

void Device::withdraw() {
  std::lock_guard lock(mu_);
  if (nearby_dir_.empty()) return;
  std::error_code ec;
  fs::remove(fs::path(nearby_dir_) / (se_id_ + ".json"), ec);
  announced_until_ = 0;
}

void Device::new_link() {
  std::lock_guard lock(mu_);
  applet_->reset_session();
  show_display();
  announce(std::time(nullptr));  // the new link ended any receive window
}

int serve(const std::string& dir, int port, const std::string& port_file, const std::string& nearby_dir) {
  auto device = Device::open(dir);
  if (!device) {
    std::fprintf(stderr, "zf se serve: %s\n", device.error().message().c_str());
    return 1;
  }
  net::LinkPolicy policy;
  policy.busy_answer = busy_answer();
  net::ApduServer server(policy);
  auto bound = server.bind(port);
  if (!bound) {
    std::fprintf(stderr, "zf se serve: %s\n", bound.error().message().c_str());
    return 1;
  }
  // The short-range link: only other SEs talk on it, one at a time.
  net::ApduServer peer_server;
  auto peer_port = peer_server.bind(0);
  if (!peer_port) {
    std::fprintf(stderr, "zf se serve: %s\n", peer_port.error().message().c_str());
    return 1;
  }
  Device& d = **device;
  const std::string nearby =
      nearby_dir.empty() ? (fs::absolute(dir).lexically_normal().parent_path() / "nearby").string() : nearby_dir;
  d.enable_face_to_face(nearby, *peer_port);
  if (!port_file.empty()) {
    if (auto s = net::write_port_file(port_file, *bound); !s) {
      std::fprintf(stderr, "zf se serve: %s\n", s.error().message().c_str());
      return 1;
    }
  }
  g_server = &server;
  g_peer_server = &peer_server;
  std::signal(SIGTERM, on_signal);
  std::signal(SIGINT, on_signal);
  std::printf("zf se %s: APDU link on 127.0.0.1:%d, short-range link on 127.0.0.1:%d (nearby: %s)\n",
              d.applet().se_id().c_str(), *bound, *peer_port, nearby.c_str());
  std::fflush(stdout);
  std::thread peer([&] {
    peer_server.run([&](ByteView m) { return d.handle_peer(m, std::time(nullptr)); }, [] {});
  });
  server.run([&](ByteView apdu) { return d.handle(apdu, std::time(nullptr)); }, [&] { d.new_link(); });
  peer_server.stop();
  peer.join();
  d.withdraw();
  g_server = nullptr;
  g_peer_server = nullptr;
  return 0;
}

}  // namespace zf::se
