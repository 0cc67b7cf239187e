#include "se/secure_channel.h"

#include <cstring>

namespace zf::se::sc {
namespace {

constexpr std::string_view kPairLabel = "zf-pair-1";
constexpr std::string_view kSessionLabel = "zf-scp-1";

void append(Bytes& out, ByteView b) { out.insert(out.end(), b.begin(), b.end()); }
void append(Bytes& out, std::string_view s) { out.insert(out.end(), s.begin(), s.end()); }
// Length-prefixed, so no two different transcripts hash the same bytes.
void append_field(Bytes& out, ByteView b) {
  out.push_back(static_cast<std::uint8_t>(b.size() >> 8));
  out.push_back(static_cast<std::uint8_t>(b.size()));
  append(out, b);
}

Bytes labelled(std::string_view label, std::string_view what) {
  Bytes b;
  append(b, label);
  b.push_back(0);
  append(b, what);
  return b;
}

// IV = direction (4 bytes) || counter (8 bytes, big-endian): unique per key.
Bytes iv_for(std::uint32_t direction, std::uint64_t n) {
  Bytes iv(12);
  for (int i = 0; i < 4; ++i) iv[i] = static_cast<std::uint8_t>(direction >> (24 - 8 * i));
  for (int i = 0; i < 8; ++i) iv[4 + i] = static_cast<std::uint8_t>(n >> (56 - 8 * i));
  return iv;
}

// AAD = the outer APDU header || counter: a frame moved to another command or
// another position in the session does not open.
Bytes aad_for(const std::uint8_t header[4], std::uint64_t n) {
  Bytes aad(header, header + 4);
  for (int i = 0; i < 8; ++i) aad.push_back(static_cast<std::uint8_t>(n >> (56 - 8 * i)));
  return aad;
}

constexpr std::uint32_t kDirCommand = 1;
constexpr std::uint32_t kDirResponse = 2;

}  // namespace

Result<Bytes> encode_point(const PublicKey& key) {
  auto xy = key.p256_xy();
  if (!xy) return std::unexpected(xy.error());
  Bytes out = xy->first;
  append(out, xy->second);
  return out;
}

Result<PublicKey> decode_point(ByteView xy) {
  if (xy.size() != 64) return fail(Errc::bad_field, "a P-256 point is 64 bytes x || y", "pk");
  auto k = PublicKey::from_p256_xy(xy.subspan(0, 32), xy.subspan(32, 32));
  if (!k) return fail(Errc::bad_field, "not a P-256 point", "pk");
  return k;
}

Bytes pairing_commitment(ByteView se_nonce, ByteView se_point, ByteView terminal_point) {
  Bytes in = labelled(kPairLabel, "commit");
  append_field(in, se_nonce);
  append_field(in, se_point);
  append_field(in, terminal_point);
  return sha256(in);
}

Result<PairingSecrets> derive_pairing(ByteView z, ByteView terminal_point, ByteView se_point,
                                      ByteView terminal_nonce, ByteView se_nonce, std::string_view se_id) {
  if (terminal_nonce.size() != kNonceBytes || se_nonce.size() != kNonceBytes)
    return fail(Errc::bad_field, "pairing nonces are 16 bytes", "nonce");
  Bytes t = labelled(kPairLabel, "transcript");
  append_field(t, terminal_point);
  append_field(t, se_point);
  append_field(t, terminal_nonce);
  append_field(t, se_nonce);
  append_field(t, as_bytes(se_id));
  PairingSecrets s;
  s.transcript = sha256(t);
  auto okm = hkdf_sha256(z, s.transcript, labelled(kPairLabel, "keys"), 3 * kKeyBytes);
  if (!okm) return std::unexpected(okm.error());
  const std::uint8_t* k = okm->data();
  s.pairing_key = SecretBytes(Bytes(k, k + kKeyBytes));
  s.confirm_key = SecretBytes(Bytes(k + kKeyBytes, k + 2 * kKeyBytes));
  s.puk_key = SecretBytes(Bytes(k + 2 * kKeyBytes, k + 3 * kKeyBytes));
  // The code depends on both nonces, and the SE committed to its nonce before it
  // saw the terminal's: a man in the middle matches the two codes with chance 1e-6.
  Bytes c = labelled(kPairLabel, "code");
  append(c, s.transcript);
  Bytes h = sha256(c);
  std::uint32_t v = (std::uint32_t{h[0]} << 24) | (std::uint32_t{h[1]} << 16) | (std::uint32_t{h[2]} << 8) | h[3];
  char code[8];
  std::snprintf(code, sizeof(code), "%06u", v % 1000000u);
  s.code = code;
  return s;
}

Result<Bytes> terminal_confirmation(const PairingSecrets& s) {
  Bytes in = labelled(kPairLabel, "terminal confirms");
  append(in, s.transcript);
  return hmac_sha256(s.confirm_key.view(), in);
}

Result<Bytes> seal_puk(const PairingSecrets& s, std::string_view puk) {
  // puk_key is used for this one message only, so a fixed IV is unique.
  auto sealed = aes256gcm_encrypt(s.puk_key.view(), Bytes(12, 0), s.transcript, as_bytes(puk));
  if (!sealed) return std::unexpected(sealed.error());
  Bytes out = sealed->ciphertext;
  append(out, sealed->tag);
  return out;
}

Result<std::string> open_puk(const PairingSecrets& s, ByteView sealed) {
  if (sealed.size() < kTagBytes) return fail(Errc::auth_failed, "sealed PUK too short", "puk");
  auto plain = aes256gcm_decrypt(s.puk_key.view(), Bytes(12, 0), s.transcript,
                                 sealed.subspan(0, sealed.size() - kTagBytes), sealed.subspan(sealed.size() - kTagBytes));
  if (!plain) return fail(Errc::auth_failed, "sealed PUK does not open", "puk");
  return std::string(plain->data(), plain->data() + plain->size());
}

Result<Session> Session::derive(ByteView pairing_key, ByteView host_challenge, ByteView card_challenge,
                                std::string_view se_id, Side side) {
  if (pairing_key.size() != kKeyBytes) return fail(Errc::not_paired, "no pairing key");
  if (host_challenge.size() != kChallengeBytes || card_challenge.size() != kChallengeBytes)
    return fail(Errc::bad_field, "challenges are 16 bytes", "challenge");
  Bytes salt(host_challenge.begin(), host_challenge.end());
  append(salt, card_challenge);
  auto okm = hkdf_sha256(pairing_key, salt, labelled(kSessionLabel, se_id), 3 * kKeyBytes);
  if (!okm) return std::unexpected(okm.error());
  Session s;
  s.side_ = side;
  const std::uint8_t* k = okm->data();
  s.k_cmd_ = SecretBytes(Bytes(k, k + kKeyBytes));
  s.k_rsp_ = SecretBytes(Bytes(k + kKeyBytes, k + 2 * kKeyBytes));
  ByteView k_auth(k + 2 * kKeyBytes, kKeyBytes);
  Bytes card = labelled(kSessionLabel, "card cryptogram");
  append(card, salt);
  Bytes host = labelled(kSessionLabel, "host cryptogram");
  append(host, salt);
  auto cc = hmac_sha256(k_auth, card);
  auto hc = hmac_sha256(k_auth, host);
  if (!cc || !hc) return fail(Errc::crypto_error, "cryptogram");
  s.card_cryptogram_ = std::move(*cc);
  s.host_cryptogram_ = std::move(*hc);
  return s;
}

Result<Bytes> Session::wrap_command(const Command& inner) {
  if (side_ != Side::terminal || in_flight_) return fail(Errc::internal, "secure channel out of step");
  if (inner.data.size() > kMaxInnerData) return fail(Errc::too_large, "command data exceeds one secured APDU");
  std::uint8_t header[4] = {static_cast<std::uint8_t>(inner.cla | kSmBit), inner.ins, inner.p1, inner.p2};
  auto sealed = aes256gcm_encrypt(k_cmd_.view(), iv_for(kDirCommand, counter_), aad_for(header, counter_), inner.data);
  if (!sealed) return std::unexpected(sealed.error());
  Command outer{header[0], inner.ins, inner.p1, inner.p2, std::move(sealed->ciphertext), 65536u};
  append(outer.data, sealed->tag);
  std::memcpy(header_, header, 4);
  in_flight_ = true;
  return encode_command(outer);
}

Result<Response> Session::unwrap_response(ByteView raw) {
  if (side_ != Side::terminal || !in_flight_) return fail(Errc::internal, "secure channel out of step");
  in_flight_ = false;
  auto outer = parse_response(raw);
  if (!outer) return fail(Errc::secure_messaging_failed, "response is not an APDU response");
  if (outer->sw != 0x9000 || outer->data.size() < kTagBytes + 2)
    return fail(Errc::secure_messaging_failed, "response is not a secured frame");
  ByteView d = outer->data;
  auto plain = aes256gcm_decrypt(k_rsp_.view(), iv_for(kDirResponse, counter_), aad_for(header_, counter_),
                                 d.subspan(0, d.size() - kTagBytes), d.subspan(d.size() - kTagBytes));
  if (!plain || plain->size() < 2) return fail(Errc::secure_messaging_failed, "response frame does not open");
  ++counter_;
  Response inner;
  inner.data.assign(plain->data(), plain->data() + plain->size() - 2);
  inner.sw = static_cast<std::uint16_t>((plain->data()[plain->size() - 2] << 8) | plain->data()[plain->size() - 1]);
  return inner;
}

Result<Command> Session::unwrap_command(const Command& outer) {
  if (side_ != Side::se || in_flight_) return fail(Errc::internal, "secure channel out of step");
  if (!(outer.cla & kSmBit) || outer.data.size() < kTagBytes)
    return fail(Errc::secure_messaging_failed, "not a secured frame");
  std::uint8_t header[4] = {outer.cla, outer.ins, outer.p1, outer.p2};
  ByteView d = outer.data;
  auto plain = aes256gcm_decrypt(k_cmd_.view(), iv_for(kDirCommand, counter_), aad_for(header, counter_),
                                 d.subspan(0, d.size() - kTagBytes), d.subspan(d.size() - kTagBytes));
  if (!plain)
    return fail(Errc::secure_messaging_failed, "command frame does not open (tampered, replayed, reordered or cut)");
  std::memcpy(header_, header, 4);
  in_flight_ = true;
  return Command{static_cast<std::uint8_t>(outer.cla & ~kSmBit), outer.ins, outer.p1, outer.p2,
                 Bytes(plain->data(), plain->data() + plain->size()), outer.le};
}

Response Session::wrap_response(const Response& inner) {
  Bytes plain = inner.data;
  plain.push_back(static_cast<std::uint8_t>(inner.sw >> 8));
  plain.push_back(static_cast<std::uint8_t>(inner.sw));
  auto sealed = aes256gcm_encrypt(k_rsp_.view(), iv_for(kDirResponse, counter_), aad_for(header_, counter_), plain);
  in_flight_ = false;
  ++counter_;
  if (!sealed) return Response{{}, 0x6F00};
  Response outer{std::move(sealed->ciphertext), 0x9000};
  append(outer.data, sealed->tag);
  return outer;
}

}  // namespace zf::se::sc
