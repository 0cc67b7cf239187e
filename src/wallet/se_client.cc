#include "wallet/se_client.h"

namespace zf::wallet {
namespace {

// Maps a failed response to a named error, preferring the applet's own detail.
Error response_error(const se::Response& r) {
  auto j = parse_json_strict(to_string(r.data), {64 * 1024, 4});
  Error e;
  e.code = Errc::internal;
  if (j && j->is_object() && j->contains("code") && (*j)["code"].is_string()) {
    e.code = errc_from_name((*j)["code"].get<std::string>());
    e.detail = j->value("detail", "");
    e.field = j->value("field", "");
  }
  if ((r.sw & 0xFFF0) == 0x63C0) {
    e.code = Errc::pin_wrong;
    e.detail = std::to_string(r.sw & 0x0F) + " tries left";
  } else if (r.sw == 0x6983) {
    e.code = Errc::pin_blocked;
  }
  char sw[8];
  std::snprintf(sw, sizeof(sw), "%04X", r.sw);
  e.detail = (e.detail.empty() ? std::string() : e.detail + " ") + "[SW " + sw + "]";
  return e;
}

}  // namespace

Result<SeClient> SeClient::connect(int port) {
  auto link = net::ApduClient::connect("127.0.0.1", port);
  if (!link) return std::unexpected(link.error());
  auto shared = std::make_shared<net::ApduClient>(std::move(*link));
  SeClient c([shared](ByteView apdu) { return shared->transmit(apdu); });
  c.link_ = shared;
  if (auto s = c.select(); !s) return std::unexpected(s.error());
  return c;
}

SeClient SeClient::in_process(se::Applet& applet, std::function<std::int64_t()> clock) {
  return SeClient([&applet, clock](ByteView apdu) -> Result<Bytes> { return applet.process_raw(apdu, clock()); });
}

Result<Bytes> SeClient::call(std::uint8_t cla, std::uint8_t ins, std::uint8_t p1, std::uint8_t p2, ByteView data) {
  // An extended APDU carries at most 65535 bytes; larger input never reaches the SE.
  if (data.size() > 65535) return fail(Errc::too_large, "command data exceeds one extended APDU");
  se::Command cmd{cla, ins, p1, p2, Bytes(data.begin(), data.end()), 65536u};
  auto raw = transport_(se::encode_command(cmd));
  if (!raw) return std::unexpected(raw.error());
  auto res = se::parse_response(*raw);
  if (!res) return std::unexpected(res.error());
  if (!res->ok()) return std::unexpected(response_error(*res));
  return res->data;
}

Result<Json> SeClient::call_json(std::uint8_t ins, const Json& data, std::uint8_t p2) {
  std::string body = data.is_null() ? std::string() : dump_json(data);
  auto r = call(0x80, ins, 0x00, p2, as_bytes(body));
  if (!r) return std::unexpected(r.error());
  if (r->empty()) return Json::object();
  return parse_json_strict(to_string(*r), {16 * 1024 * 1024, 16});
}

Result<Json> SeClient::select() {
  auto r = call(0x00, se::ins::kSelect, 0x04, 0x00, ByteView(se::kAid, sizeof(se::kAid)));
  if (!r) return std::unexpected(r.error());
  return parse_json_strict(to_string(*r));
}

Status SeClient::verify_pin(const std::string& pin) {
  auto r = call(0x00, se::ins::kVerify, 0x00, 0x80, as_bytes(pin));
  if (!r) return std::unexpected(r.error());
  return {};
}

Status SeClient::verify_biometric(ByteView template_bytes) {
  auto r = call(0x00, se::ins::kVerify, 0x00, 0x81, template_bytes);
  if (!r) return std::unexpected(r.error());
  return {};
}

Status SeClient::unblock(const std::string& puk, const std::string& new_pin) {
  auto r = call(0x00, se::ins::kResetRetry, 0x00, 0x80, as_bytes(dump_json(Json{{"puk", puk}, {"new_pin", new_pin}})));
  if (!r) return std::unexpected(r.error());
  return {};
}

Result<Json> SeClient::info() { return call_json(se::ins::kGetData, Json(), se::tag::kInfo); }

Result<std::string> SeClient::certificate_pem() {
  auto r = call(0x80, se::ins::kGetData, 0x00, se::tag::kCertificate, {});
  if (!r) return std::unexpected(r.error());
  return to_string(*r);
}

Result<Json> SeClient::log() { return call_json(se::ins::kGetData, Json(), se::tag::kLog); }
Result<Json> SeClient::issued() { return call_json(se::ins::kGetData, Json(), se::tag::kIssued); }
Result<Json> SeClient::personalize(const Json& params) { return call_json(se::ins::kPersonalize, params); }

Status SeClient::install_certificate(const std::string& chain_pem) {
  auto r = call_json(se::ins::kInstallCert, Json{{"certificate", chain_pem}});
  if (!r) return std::unexpected(r.error());
  return {};
}

Status SeClient::update_crl(const std::string& crl_pem) {
  auto r = call_json(se::ins::kUpdateCrl, Json{{"crl", crl_pem}});
  if (!r) return std::unexpected(r.error());
  return {};
}

Result<Json> SeClient::topup_request(const Json& p) { return call_json(se::ins::kTopupRequest, p); }
Result<Json> SeClient::apply_topup_receipt(const std::string& jws) {
  return call_json(se::ins::kTopupReceipt, Json{{"receipt", jws}});
}
Result<Json> SeClient::payment_note(const Json& p) { return call_json(se::ins::kPaymentNote, p); }
Result<Json> SeClient::receive_note(const std::string& jws, const std::string& record_jws) {
  Json data{{"note", jws}};
  if (!record_jws.empty()) data["record"] = record_jws;
  return call_json(se::ins::kReceiveNote, data);
}
Result<Json> SeClient::claim_note(const std::string& jws) { return call_json(se::ins::kClaimNote, Json{{"note", jws}}); }
Result<Json> SeClient::deposit_note(const Json& p) { return call_json(se::ins::kDepositNote, p); }
Result<Json> SeClient::apply_deposit_receipt(const std::string& jws) {
  return call_json(se::ins::kDepositReceipt, Json{{"receipt", jws}});
}
Result<Json> SeClient::sign_query(const Json& p) { return call_json(se::ins::kSignQuery, p); }

}  // namespace zf::wallet
