#include "core/encoding.h"

#include <array>
#include <ctime>

namespace zf {
namespace {

constexpr char kUrl[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
constexpr char kStd[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

std::string encode(ByteView data, const char* alphabet, bool pad) {
  std::string out;
  out.reserve((data.size() + 2) / 3 * 4);
  std::size_t i = 0;
  for (; i + 3 <= data.size(); i += 3) {
    std::uint32_t v = (data[i] << 16) | (data[i + 1] << 8) | data[i + 2];
    out += alphabet[(v >> 18) & 63];
    out += alphabet[(v >> 12) & 63];
    out += alphabet[(v >> 6) & 63];
    out += alphabet[v & 63];
  }
  std::size_t rest = data.size() - i;
  if (rest == 1) {
    std::uint32_t v = data[i] << 16;
    out += alphabet[(v >> 18) & 63];
    out += alphabet[(v >> 12) & 63];
    if (pad) out += "==";
  } else if (rest == 2) {
    std::uint32_t v = (data[i] << 16) | (data[i + 1] << 8);
    out += alphabet[(v >> 18) & 63];
    out += alphabet[(v >> 12) & 63];
    out += alphabet[(v >> 6) & 63];
    if (pad) out += '=';
  }
  return out;
}

std::array<int, 256> reverse(const char* alphabet) {
  std::array<int, 256> r{};
  r.fill(-1);
  for (int i = 0; i < 64; ++i) r[static_cast<unsigned char>(alphabet[i])] = i;
  return r;
}

Result<Bytes> decode(std::string_view text, const char* alphabet, bool padded) {
  static const auto url = reverse(kUrl);
  static const auto std_ = reverse(kStd);
  const auto& rev = alphabet == kUrl ? url : std_;
  if (padded) {
    if (text.size() % 4 != 0) return fail(Errc::bad_base64url, "base64 length not a multiple of 4");
    if (!text.empty() && text.back() == '=') text.remove_suffix(1);
    if (!text.empty() && text.back() == '=') text.remove_suffix(1);
  }
  if (text.size() % 4 == 1) return fail(Errc::bad_base64url, "impossible base64 length");
  Bytes out;
  out.reserve(text.size() * 3 / 4);
  std::uint32_t acc = 0;
  int bits = 0;
  for (char c : text) {
    int v = rev[static_cast<unsigned char>(c)];
    if (v < 0) return fail(Errc::bad_base64url, "invalid base64 character");
    acc = (acc << 6) | static_cast<std::uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<std::uint8_t>((acc >> bits) & 0xFF));
    }
  }
  // Non-zero leftover bits mean a non-canonical encoding: two texts for one value.
  if (bits > 0 && (acc & ((1u << bits) - 1)) != 0)
    return fail(Errc::bad_base64url, "non-canonical base64 (unused bits set)");
  return out;
}

}  // namespace

std::string b64url_encode(ByteView data) { return encode(data, kUrl, false); }
Result<Bytes> b64url_decode(std::string_view text) { return decode(text, kUrl, false); }
std::string b64_encode(ByteView data) { return encode(data, kStd, true); }
Result<Bytes> b64_decode(std::string_view text) { return decode(text, kStd, true); }

std::string hex_encode(ByteView data) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(data.size() * 2);
  for (auto b : data) {
    out += kHex[b >> 4];
    out += kHex[b & 15];
  }
  return out;
}

Result<Bytes> hex_decode(std::string_view text) {
  if (text.size() % 2 != 0) return fail(Errc::bad_field, "odd hex length");
  auto nib = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  Bytes out;
  out.reserve(text.size() / 2);
  for (std::size_t i = 0; i < text.size(); i += 2) {
    int hi = nib(text[i]), lo = nib(text[i + 1]);
    if (hi < 0 || lo < 0) return fail(Errc::bad_field, "invalid hex character");
    out.push_back(static_cast<std::uint8_t>(hi << 4 | lo));
  }
  return out;
}

std::string utc_time_text(std::int64_t unix_s) {
  std::time_t t = static_cast<std::time_t>(unix_s);
  std::tm tm{};
  char buf[32];
  if (!::gmtime_r(&t, &tm) || std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M UTC", &tm) == 0)
    return std::to_string(unix_s);
  return buf;
}

}  // namespace zf
