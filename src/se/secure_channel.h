// The paired terminal–SE channel (DESIGN.md §5, docs/se-apdu.md "Pairing and
// secure messaging"): the pure parts both ends share — the pairing key
// agreement and its comparison code, session keys from the pairing key and two
// fresh challenges (in the manner of GlobalPlatform SCP03), and the AES-GCM
// frame wrap/unwrap with per-direction counters. No I/O.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "core/crypto.h"
#include "se/apdu.h"

namespace zf::se::sc {

// CLA bit b3: proprietary secure messaging (ISO/IEC 7816-4 §5.4.1). A secured
// command is sent with CLA | kSmBit; its data is AES-GCM ciphertext || tag.
inline constexpr std::uint8_t kSmBit = 0x04;
inline constexpr std::size_t kTagBytes = 16;
inline constexpr std::size_t kChallengeBytes = 16;
inline constexpr std::size_t kNonceBytes = 16;
inline constexpr std::size_t kKeyBytes = 32;
// The largest inner command data that still fits one extended APDU once sealed.
inline constexpr std::size_t kMaxInnerData = 65535 - kTagBytes;

// P-256 public point as 64 bytes x || y (the pairing commands carry it base64url).
Result<Bytes> encode_point(const PublicKey& key);
Result<PublicKey> decode_point(ByteView xy);

// The SE's commitment to its pairing nonce and key, sent before it sees the
// terminal's nonce, so neither side can steer the comparison code.
Bytes pairing_commitment(ByteView se_nonce, ByteView se_point, ByteView terminal_point);

// What both ends derive from one pairing run.
struct PairingSecrets {
  SecretBytes pairing_key;  // long-term, 32 bytes: kept by both
  SecretBytes confirm_key;  // this run only: the terminal's key confirmation
  SecretBytes puk_key;      // this run only: seals the PUK when re-pairing
  Bytes transcript;         // SHA-256 over both points, both nonces and the SE id
  std::string code;         // six digits the person compares on both devices
};
// Z = ECDH of the two ephemeral keys; points as encode_point gives them.
Result<PairingSecrets> derive_pairing(ByteView z, ByteView terminal_point, ByteView se_point,
                                      ByteView terminal_nonce, ByteView se_nonce, std::string_view se_id);
// The terminal's proof that it derived the same secrets (PAIR CONFIRM).
Result<Bytes> terminal_confirmation(const PairingSecrets& s);
// The PUK sealed for PAIR CONFIRM (the link is not trusted even while pairing).
Result<Bytes> seal_puk(const PairingSecrets& s, std::string_view puk);
Result<std::string> open_puk(const PairingSecrets& s, ByteView sealed);

// One end of an authenticated session. Created from the pairing key and both
// challenges; open after the cryptograms were checked. Every command and its
// response share one counter value n; command and response use different keys,
// so a frame can never be reflected back as the other direction.
class Session {
 public:
  enum class Side { terminal, se };
  static Result<Session> derive(ByteView pairing_key, ByteView host_challenge, ByteView card_challenge,
                                std::string_view se_id, Side side);
  // The SE's and the terminal's proof of the pairing key for this session.
  const Bytes& card_cryptogram() const { return card_cryptogram_; }
  const Bytes& host_cryptogram() const { return host_cryptogram_; }

  // Terminal: seal a command (counter n), then open its response (n, then n + 1).
  Result<Bytes> wrap_command(const Command& inner);
  Result<Response> unwrap_response(ByteView raw);
  // SE: open a secured command (counter n), then seal its response (n, then n + 1).
  Result<Command> unwrap_command(const Command& outer);
  Response wrap_response(const Response& inner);

  std::uint64_t counter() const { return counter_; }

 private:
  Session() = default;
  SecretBytes k_cmd_, k_rsp_;
  Bytes card_cryptogram_, host_cryptogram_;
  std::uint64_t counter_ = 0;
  std::uint8_t header_[4] = {0, 0, 0, 0};  // outer header of the command in flight
  bool in_flight_ = false;
  Side side_ = Side::terminal;
};

}  // namespace zf::se::sc
