// Sealed state files: AES-256-GCM under a device key, replaced atomically
// (store/file.h: write temp, fsync, rename, fsync dir) so a crash leaves the old or the new
// state, never a mix (DESIGN.md §5 Persistence).
#pragma once

#include <string>

#include "core/crypto.h"
#include "store/file.h"  // write_file_atomic

namespace zf::store {

// Creates a new random 32-byte device key file (0600); fails if it exists.
Status create_device_key(const std::string& path);
Result<SecretBytes> load_device_key(const std::string& path);

// Seals `plaintext` (bound to `label`, e.g. the SE id) and replaces `path` atomically.
Status write_sealed(const std::string& path, ByteView key, std::string_view label, ByteView plaintext);
// Opens a sealed file; decrypt_failed if it was altered or sealed under another key/label.
Result<SecretBytes> read_sealed(const std::string& path, ByteView key, std::string_view label);

}  // namespace zf::store
