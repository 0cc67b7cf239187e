// The one atomic file writer (STYLE.md 10b) for every file whose loss or
// tearing could lose money or keys: sealed SE state, key files, tokens, service
// configs, port files, wallet files. A crash leaves the old file or the new one,
// never a mix, and success is reported only once the new file and its name are
// on disk.
#pragma once

#include <string>
#include <string_view>

#include "core/crypto.h"
#include "core/encoding.h"
#include "core/error.h"

namespace zf::store {

// Replaces `path` with `data`: a fresh temporary file beside it (mode `mode`,
// whatever the umask), a write loop, fsync, close, rename over `path`, fsync of
// the directory. Every step's result is checked; on failure the temporary file
// is removed, `path` is unchanged and the error names the step (io_error).
Status write_file_atomic(const std::string& path, ByteView data, unsigned mode = 0600);
// The same for text.
Status write_file_atomic(const std::string& path, std::string_view text, unsigned mode = 0600);

// Appends `line` and a newline to `path` (created with `mode`), then fsyncs it
// (and the directory when the file is new): a log that survives a crash up to
// its last whole line. Every result is checked.
Status append_line_durable(const std::string& path, std::string_view line, unsigned mode = 0600);

// Writes a private key as PKCS#8 PEM, mode 0600, atomically; the PEM bytes are
// wiped from memory afterwards.
Status save_private_key(const std::string& path, const PrivateKey& key);

}  // namespace zf::store
