#include "store/sealed.h"

#include <filesystem>
#include <fstream>
#include <iterator>

namespace zf::store {
namespace {

constexpr std::string_view kMagic = "ZFSEAL1";

Result<Bytes> read_all(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return fail(Errc::not_found, "cannot read " + path);
  return Bytes(std::istreambuf_iterator<char>(in), {});
}

Bytes aad_for(std::string_view label) {
  Bytes aad(kMagic.begin(), kMagic.end());
  aad.push_back(0);
  aad.insert(aad.end(), label.begin(), label.end());
  return aad;
}

}  // namespace

Status create_device_key(const std::string& path) {
  if (std::filesystem::exists(path)) return fail(Errc::conflict, "device key exists: " + path);
  SecretBytes key(random_bytes(32));
  return write_file_atomic(path, key.view(), 0600);
}

Result<SecretBytes> load_device_key(const std::string& path) {
  auto b = read_all(path);
  if (!b) return std::unexpected(b.error());
  if (b->size() != 32) return fail(Errc::bad_field, "device key must be 32 bytes", path);
  return SecretBytes(std::move(*b));
}

Status write_sealed(const std::string& path, ByteView key, std::string_view label, ByteView plaintext) {
  Bytes iv = random_bytes(12);
  auto sealed = aes256gcm_encrypt(key, iv, aad_for(label), plaintext);
  if (!sealed) return std::unexpected(sealed.error());
  Bytes out(kMagic.begin(), kMagic.end());
  out.insert(out.end(), iv.begin(), iv.end());
  out.insert(out.end(), sealed->tag.begin(), sealed->tag.end());
  out.insert(out.end(), sealed->ciphertext.begin(), sealed->ciphertext.end());
  return write_file_atomic(path, out, 0600);
}

Result<SecretBytes> read_sealed(const std::string& path, ByteView key, std::string_view label) {
  auto b = read_all(path);
  if (!b) return std::unexpected(b.error());
  const std::size_t header = kMagic.size() + 12 + 16;
  if (b->size() < header || !std::equal(kMagic.begin(), kMagic.end(), b->begin()))
    return fail(Errc::decrypt_failed, "not a sealed state file: " + path);
  ByteView all(*b);
  return aes256gcm_decrypt(key, all.subspan(kMagic.size(), 12), aad_for(label), all.subspan(header),
                           all.subspan(kMagic.size() + 12, 16));
}

}  // namespace zf::store
