#include "se/f2f.h"

#include "core/encoding.h"

namespace zf::se::f2f {
namespace {

constexpr std::string_view kLabel = "zf-f2f-1";

void append(Bytes& out, ByteView b) { out.insert(out.end(), b.begin(), b.end()); }
void append(Bytes& out, std::string_view s) { out.insert(out.end(), s.begin(), s.end()); }
void append_field(Bytes& out, ByteView b) {
  out.push_back(static_cast<std::uint8_t>(b.size() >> 8));
  out.push_back(static_cast<std::uint8_t>(b.size()));
  append(out, b);
}
void append_field(Bytes& out, std::string_view s) {
  append_field(out, ByteView(reinterpret_cast<const std::uint8_t*>(s.data()), s.size()));
}

}  // namespace

Bytes transcript(ByteView payer_point, ByteView payee_point, std::string_view payer_id, std::string_view payee_id,
                 ByteView payer_nonce, ByteView payee_nonce) {
  Bytes t;
  append_field(t, kLabel);
  append_field(t, payer_point);
  append_field(t, payee_point);
  append_field(t, payer_id);
  append_field(t, payee_id);
  append_field(t, payer_nonce);
  append_field(t, payee_nonce);
  return sha256(t);
}

Result<Keys> derive(ByteView z, ByteView transcript) {
  Bytes info;
  append(info, kLabel);
  append(info, std::string_view(" keys"));
  auto okm = hkdf_sha256(z, transcript, info, 32 + 32 + 4);
  if (!okm) return std::unexpected(okm.error());
  ByteView b = okm->view();
  Keys k;
  k.to_payee = SecretBytes(Bytes(b.begin(), b.begin() + 32));
  k.to_payer = SecretBytes(Bytes(b.begin() + 32, b.begin() + 64));
  std::uint32_t n = (std::uint32_t{b[64]} << 24) | (std::uint32_t{b[65]} << 16) | (std::uint32_t{b[66]} << 8) | b[67];
  std::string code = std::to_string(n % 1000000);
  k.code = std::string(6 - code.size(), '0') + code;
  return k;
}

Result<std::string> seal(ByteView key, ByteView transcript, ByteView plaintext) {
  Bytes iv = random_bytes(12);
  auto sealed = aes256gcm_encrypt(key, iv, transcript, plaintext);
  if (!sealed) return std::unexpected(sealed.error());
  Bytes out = iv;
  append(out, sealed->ciphertext);
  append(out, sealed->tag);
  return b64url_encode(out);
}

Result<SecretBytes> open(ByteView key, ByteView transcript, std::string_view box) {
  auto raw = b64url_decode(box);
  if (!raw || raw->size() < 12 + 16) return fail(Errc::bad_field, "a sealed face-to-face message", "box");
  ByteView all(*raw);
  auto plain = aes256gcm_decrypt(key, all.subspan(0, 12), transcript, all.subspan(12, all.size() - 28),
                                 all.subspan(all.size() - 16));
  if (!plain) return fail(Errc::secure_messaging_failed, "the face-to-face message does not open under the session key", "box");
  return plain;
}

Bytes signed_part(ByteView transcript, std::string_view role) {
  Bytes m;
  append_field(m, kLabel);
  append_field(m, role);
  append_field(m, transcript);
  return m;
}

}  // namespace zf::se::f2f
