#include "store/file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

namespace zf::store {
namespace {

std::unexpected<Error> io_fail(const std::string& what, const std::string& path, int err) {
  return fail(Errc::io_error, what + " " + path + ": " + std::strerror(err));
}

// write(2) until everything is written, retrying interrupted and short writes.
bool write_all(int fd, ByteView data) {
  std::size_t off = 0;
  while (off < data.size()) {
    ssize_t n = ::write(fd, data.data() + off, data.size() - off);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      if (n == 0) errno = EIO;
      return false;
    }
    off += static_cast<std::size_t>(n);
  }
  return true;
}

std::string dir_of(const std::string& path) {
  std::string dir = std::filesystem::path(path).parent_path().string();
  return dir.empty() ? "." : dir;
}

Status fsync_dir(const std::string& dir) {
  int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd < 0) return io_fail("cannot open directory", dir, errno);
  int rc = ::fsync(dfd);
  int err = errno;
  ::close(dfd);
  if (rc != 0) return io_fail("cannot fsync directory", dir, err);
  return {};
}

}  // namespace

Status write_file_atomic(const std::string& path, ByteView data, unsigned mode) {
  // A unique temporary name: two writers of one path never share a temp file.
  std::string tmp = path + ".tmp-XXXXXX";
  int fd = ::mkostemp(tmp.data(), O_CLOEXEC);
  if (fd < 0) return io_fail("cannot create a temporary file for", path, errno);
  auto abandon = [&](const std::string& what, int err) {
    if (fd >= 0) ::close(fd);
    ::unlink(tmp.c_str());
    return io_fail(what, tmp, err);
  };
  if (::fchmod(fd, static_cast<mode_t>(mode)) != 0) return abandon("cannot set the mode of", errno);
  if (!write_all(fd, data)) return abandon("cannot write", errno);
  if (::fsync(fd) != 0) return abandon("cannot fsync", errno);
  int rc = ::close(fd);
  fd = -1;
  if (rc != 0) return abandon("cannot close", errno);
  if (::rename(tmp.c_str(), path.c_str()) != 0)
    return abandon("cannot rename onto " + path + " from", errno);
  // The rename reaches the disk only with its directory.
  return fsync_dir(dir_of(path));
}

Status write_file_atomic(const std::string& path, std::string_view text, unsigned mode) {
  return write_file_atomic(path, as_bytes(text), mode);
}

Status append_line_durable(const std::string& path, std::string_view line, unsigned mode) {
  bool existed = ::access(path.c_str(), F_OK) == 0;
  int fd =
      ::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, static_cast<mode_t>(mode));
  if (fd < 0) return io_fail("cannot open", path, errno);
  std::string text(line);
  text.push_back('\n');
  bool ok = (existed || ::fchmod(fd, static_cast<mode_t>(mode)) == 0) &&
            write_all(fd, as_bytes(text)) && ::fsync(fd) == 0;
  int err = errno;
  if (::close(fd) != 0 && ok) {
    ok = false;
    err = errno;
  }
  if (!ok) return io_fail("cannot append to", path, err);
  if (!existed) return fsync_dir(dir_of(path));
  return {};
}

Status save_private_key(const std::string& path, const PrivateKey& key) {
  auto pem = key.export_pem();
  if (!pem) return std::unexpected(pem.error());
  return write_file_atomic(path, pem->view(), 0600);
}

}  // namespace zf::store
