#include "se_host/device.h"

#include <csignal>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <fstream>

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
void on_signal(int) {
  if (auto* s = g_server.load()) s->stop();
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

Bytes Device::handle(ByteView apdu, std::int64_t now_s) {
  std::lock_guard lock(mu_);
  if (failed_) return persist_refusal("the SE cannot persist its state; restart it once its storage works");
  Bytes reply = applet_->process_raw(apdu, now_s);
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
      return persist_refusal("the SE could not save this change; it was undone");
    }
  }
  return reply;
}

void Device::new_link() {
  std::lock_guard lock(mu_);
  applet_->reset_session();
  show_display();
}

int serve(const std::string& dir, int port, const std::string& port_file) {
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
  if (!port_file.empty()) {
    if (auto s = net::write_port_file(port_file, *bound); !s) {
      std::fprintf(stderr, "zf se serve: %s\n", s.error().message().c_str());
      return 1;
    }
  }
  g_server = &server;
  std::signal(SIGTERM, on_signal);
  std::signal(SIGINT, on_signal);
  std::printf("zf se %s: APDU link on 127.0.0.1:%d\n", (*device)->applet().se_id().c_str(), *bound);
  std::fflush(stdout);
  Device& d = **device;
  server.run([&](ByteView apdu) { return d.handle(apdu, std::time(nullptr)); }, [&] { d.new_link(); });
  g_server = nullptr;
  return 0;
}

}  // namespace zf::se
