// The face-to-face link between two SEs (DESIGN.md §6.5, docs/se-apdu.md
// "Face-to-face payment"): the pure parts both SEs share. Each side makes an
// ephemeral P-256 key and a nonce; the transcript hash binds both points, both
// SE ids and both nonces; each SE signs the transcript with its certified key;
// HKDF-SHA256 over the ECDH secret, salted with the transcript, gives one
// AES-256-GCM key per direction and the six-digit code both terminals show.
// No I/O.
#pragma once

#include <string>
#include <string_view>

#include "core/crypto.h"

namespace zf::se::f2f {

inline constexpr std::size_t kNonceBytes = 16;

// SHA-256 over a label, the payer's and the payee's point (64 bytes each),
// both ids and both nonces, each length-prefixed.
Bytes transcript(ByteView payer_point, ByteView payee_point, std::string_view payer_id, std::string_view payee_id,
                 ByteView payer_nonce, ByteView payee_nonce);

struct Keys {
  SecretBytes to_payee;  // seals what the payer sends
  SecretBytes to_payer;  // seals what the payee answers
  std::string code;      // six digits, the same on both terminals
};
Result<Keys> derive(ByteView z, ByteView transcript);

// One sealed message: base64url of IV (12) || ciphertext || tag (16), the
// transcript as associated data. Each key seals one message per session.
Result<std::string> seal(ByteView key, ByteView transcript, ByteView plaintext);
Result<SecretBytes> open(ByteView key, ByteView transcript, std::string_view box);

// What an SE signs to prove it holds its certified key in this session.
Bytes signed_part(ByteView transcript, std::string_view role);  // role "payer" | "payee"

}  // namespace zf::se::f2f
