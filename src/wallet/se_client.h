// The terminal's side of the SE link: builds APDUs for the applet's commands
// and turns status words and error details into named errors.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "core/json.h"
#include "net/apdu_link.h"
#include "se/applet.h"

namespace zf::wallet {

class SeClient {
 public:
  // Any function that carries one APDU to an SE and returns its response.
  using Transport = std::function<Result<Bytes>(ByteView)>;
  explicit SeClient(Transport t) : transport_(std::move(t)) {}
  // Connects over the socket link to 127.0.0.1:port and selects the applet.
  static Result<SeClient> connect(int port);
  // Talks to an in-process applet (tests).
  static SeClient in_process(se::Applet& applet, std::function<std::int64_t()> clock);

  Result<Json> select();
  Status verify_pin(const std::string& pin);
  Status verify_biometric(ByteView template_bytes);
  Status unblock(const std::string& puk, const std::string& new_pin);
  Result<Json> info();
  Result<std::string> certificate_pem();
  Result<Json> log();
  Result<Json> issued();
  // Personalization: returns {"csr", "attestation"}.
  Result<Json> personalize(const Json& params);
  Status install_certificate(const std::string& chain_pem);
  Status update_crl(const std::string& crl_pem);
  // Value commands: each returns the applet's JSON answer.
  Result<Json> topup_request(const Json& params);
  Result<Json> apply_topup_receipt(const std::string& receipt_jws);
  Result<Json> payment_note(const Json& params);
  // Credits a note; `record_jws` is the registry's record of this SE's won claim
  // (empty: sent without one, and the SE refuses with record_required).
  Result<Json> receive_note(const std::string& note_jws, const std::string& record_jws);
  // A registry claim for a note the SE would accept now: {"claim": JWS}.
  Result<Json> claim_note(const std::string& note_jws);
  Result<Json> deposit_note(const Json& params);
  Result<Json> apply_deposit_receipt(const std::string& receipt_jws);
  Result<Json> sign_query(const Json& params);

  // Sends one command; data and answers are JSON unless `raw` is set.
  Result<Bytes> call(std::uint8_t cla, std::uint8_t ins, std::uint8_t p1, std::uint8_t p2, ByteView data);

 private:
  Result<Json> call_json(std::uint8_t ins, const Json& data, std::uint8_t p2 = 0);
  Transport transport_;
  std::shared_ptr<net::ApduClient> link_;
};

}  // namespace zf::wallet
