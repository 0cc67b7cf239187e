#include "store/sealed.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

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

Status write_file_atomic(const std::string& path, ByteView data, unsigned mode) {
  std::string tmp = path + ".tmp";
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
  if (fd < 0) return fail(Errc::io_error, "cannot create " + tmp);
  ::fchmod(fd, mode);
  std::size_t off = 0;
  while (off < data.size()) {
    ssize_t n = ::write(fd, data.data() + off, data.size() - off);
    if (n <= 0) {
      ::close(fd);
      return fail(Errc::io_error, "cannot write " + tmp);
    }
    off += static_cast<std::size_t>(n);
  }
  if (::fsync(fd) != 0) {
    ::close(fd);
    return fail(Errc::io_error, "fsync failed for " + tmp);
  }
  ::close(fd);
  if (::rename(tmp.c_str(), path.c_str()) != 0) return fail(Errc::io_error, "cannot rename onto " + path);
  // The rename itself must reach the disk before we report success.
  std::string dir = std::filesystem::path(path).parent_path().string();
  int dfd = ::open(dir.empty() ? "." : dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    ::fsync(dfd);
    ::close(dfd);
  }
  return {};
}

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
