#include "ca/manufacturer.h"

#include "store/file.h"

#include <filesystem>
#include <fstream>
#include <sstream>

namespace zf::ca {
namespace fs = std::filesystem;
namespace {

Result<std::string> slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  if (!in) return fail(Errc::io_error, "cannot read " + p.string());
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

Status put(const fs::path& p, const std::string& data) {
  return store::write_file_atomic(p.string(), std::string_view(data), 0644);
}

}  // namespace

Status init_manufacturer(const std::string& dir, const std::string& name) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (fs::exists(fs::path(dir) / "manufacturer.key")) return fail(Errc::conflict, "manufacturer exists in " + dir);
  auto key = PrivateKey::generate();
  if (!key) return std::unexpected(key.error());
  std::time_t now = std::time(nullptr);
  IssueParams p;
  p.common_name = name;
  p.not_before = now - 60;
  p.not_after = now + 20LL * 365 * 86400;
  p.serial = new_serial();
  auto root = make_self_signed_ca(*key, p);
  if (!root) return std::unexpected(root.error());
  if (auto s = put(fs::path(dir) / "manufacturer.pem", root->pem()); !s) return s;
  return store::save_private_key((fs::path(dir) / "manufacturer.key").string(), *key);
}

Result<DeviceIdentity> make_device(const std::string& manufacturer_dir, const std::string& se_id) {
  auto mkey = PrivateKey::load_pem_file((fs::path(manufacturer_dir) / "manufacturer.key").string());
  if (!mkey) return std::unexpected(mkey.error());
  auto mpem = slurp(fs::path(manufacturer_dir) / "manufacturer.pem");
  if (!mpem) return std::unexpected(mpem.error());
  auto mroot = Certificate::from_pem(*mpem);
  if (!mroot) return std::unexpected(mroot.error());
  auto key = PrivateKey::generate();
  if (!key) return std::unexpected(key.error());
  std::time_t now = std::time(nullptr);
  IssueParams p;
  p.common_name = se_id;
  p.roles = {Role::se_attestation};
  p.not_before = now - 60;
  p.not_after = now + 15LL * 365 * 86400;
  p.serial = new_serial();
  auto cert = issue_certificate(*mroot, *mkey, key->public_key(), p);
  if (!cert) return std::unexpected(cert.error());
  return DeviceIdentity{std::move(*key), {std::move(*cert), std::move(*mroot)}};
}

Status save_device(const DeviceIdentity& dev, const std::string& out_dir) {
  std::error_code ec;
  fs::create_directories(out_dir, ec);
  std::string chain;
  for (const auto& c : dev.chain) chain += c.pem();
  if (auto s = put(fs::path(out_dir) / "attest.pem", chain); !s) return s;
  return store::save_private_key((fs::path(out_dir) / "attest.key").string(), dev.key);
}

Result<DeviceIdentity> load_device(const std::string& dir) {
  auto key = PrivateKey::load_pem_file((fs::path(dir) / "attest.key").string());
  if (!key) return std::unexpected(key.error());
  auto pem = slurp(fs::path(dir) / "attest.pem");
  if (!pem) return std::unexpected(pem.error());
  auto chain = certificates_from_pem(*pem);
  if (!chain) return std::unexpected(chain.error());
  return DeviceIdentity{std::move(*key), std::move(*chain)};
}

}  // namespace zf::ca
