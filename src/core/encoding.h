// Byte strings and their text encodings (base64url without padding, base64, hex).
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/error.h"

namespace zf {

using Bytes = std::vector<std::uint8_t>;
using ByteView = std::span<const std::uint8_t>;

inline ByteView as_bytes(std::string_view s) {
  return {reinterpret_cast<const std::uint8_t*>(s.data()), s.size()};
}
inline std::string to_string(ByteView b) { return {b.begin(), b.end()}; }

// RFC 4648 §5 without padding (as JOSE requires).
std::string b64url_encode(ByteView data);
// Strict: no padding, no whitespace, only the url-safe alphabet, unused bits zero.
Result<Bytes> b64url_decode(std::string_view text);
// RFC 4648 §4 with padding (used by x5c).
std::string b64_encode(ByteView data);
// Strict standard base64 with padding.
Result<Bytes> b64_decode(std::string_view text);
std::string hex_encode(ByteView data);
Result<Bytes> hex_decode(std::string_view text);

// A Unix time as people read it in logs and errors: "2026-12-02 14:03 UTC".
std::string utc_time_text(std::int64_t unix_s);

}  // namespace zf
