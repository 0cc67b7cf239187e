// Writes the seed corpora of the fuzz targets: fuzz/corpus/{jose,document,amount,json}/.
//
// Usage: fuzz_make_seeds CORPUS_DIR   (normally <source>/fuzz/corpus)
//
// Valid seeds are made with zf_core itself: a leaf chain under the fixed fuzz root
// (fuzz_fixtures.h), signed documents of every type, JWEs for the fixed recipient key.
// Invalid seeds are those documents broken one way each (alg none, bad base64, truncated,
// extra header fields, ...). Every seed is checked against the parser before it is
// written, so a file named valid_* is accepted and invalid_* refused. Files of the same
// name are overwritten; other files (e.g. regression inputs added by hand) are kept.
// Not run by the tests: signatures and keys change on every run.
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>
#include <vector>

#include "core/amount.h"
#include "core/document.h"
#include "core/jose.h"
#include "fuzz_fixtures.h"

namespace fs = std::filesystem;
using zf::Json;

namespace {

fs::path g_root;
int g_written = 0;

[[noreturn]] void die(const std::string& what) {
  std::fprintf(stderr, "fuzz_make_seeds: %s\n", what.c_str());
  std::exit(1);
}

template <class T>
T must(zf::Result<T> r, std::string_view what) {
  if (!r) die(std::string(what) + ": " + r.error().message());
  return std::move(*r);
}

void must(const zf::Status& s, std::string_view what) {
  if (!s) die(std::string(what) + ": " + s.error().message());
}

void write(std::string_view target, std::string_view name, std::string_view content) {
  fs::path dir = g_root / target;
  fs::create_directories(dir);
  std::ofstream out(dir / name, std::ios::binary | std::ios::trunc);
  out.write(content.data(), static_cast<std::streamsize>(content.size()));
  if (!out) die("cannot write " + (dir / name).string());
  ++g_written;
}

std::string b64u(std::string_view s) { return zf::b64url_encode(zf::as_bytes(s)); }

// ---- Keys and certificates

struct Party {
  zf::PrivateKey key;
  zf::Certificate cert;
};

Party make_leaf(zf::SigAlg alg, std::string cn, zf::Role role, std::string user_id = {}) {
  auto key = must(zf::PrivateKey::generate(alg), "leaf key");
  zf::IssueParams p;
  p.common_name = std::move(cn);
  p.user_id = std::move(user_id);
  p.roles = {role};
  p.not_before = zf::fuzz::kNotBefore;
  p.not_after = zf::fuzz::kNotAfter;
  p.serial = zf::new_serial();
  auto cert =
      must(zf::issue_certificate(zf::fuzz::root_cert(), zf::fuzz::root_key(), key.public_key(), p),
           "leaf certificate");
  return Party{std::move(key), std::move(cert)};
}

std::string x5c_entry(const zf::Certificate& c) { return zf::b64_encode(c.der()); }

// A leaf on P-384, a curve the project does not accept: it parses, but must not verify.
zf::Certificate make_p384_leaf() {
  EVP_PKEY* raw = EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-384");
  if (!raw) die("P-384 key generation");
  zf::PublicKey key{zf::PkeyPtr(raw)};
  zf::IssueParams p;
  p.common_name = "se-p384";
  p.roles = {zf::Role::secure_element};
  p.not_before = zf::fuzz::kNotBefore;
  p.not_after = zf::fuzz::kNotAfter;
  p.serial = zf::new_serial();
  return must(zf::issue_certificate(zf::fuzz::root_cert(), zf::fuzz::root_key(), key, p),
              "P-384 certificate");
}

// A certificate whose subject key is not a point on P-256: it parses as DER, but
// OpenSSL cannot decode its public key.
zf::Bytes cert_with_undecodable_key(const zf::Certificate& c) {
  zf::Bytes der = c.der();
  // The SPKI of a P-256 key ends in BIT STRING (03 42 00) holding 04 || x || y.
  const zf::Bytes marker = {0x03, 0x42, 0x00, 0x04};
  for (std::size_t i = 0; i + marker.size() + 64 <= der.size(); ++i) {
    if (std::equal(marker.begin(), marker.end(), der.begin() + static_cast<long>(i))) {
      der[i + 5] ^= 0x01;  // first byte of x
      return der;
    }
  }
  die("no P-256 point in certificate");
}

// ---- Document payloads

std::string id_for(std::string_view field) {
  if (field == "issuer" || field == "payer" || field == "se" || field == "processor")
    return "se-0001";
  if (field == "payee") return "se-0002";
  if (field == "bank") return "bank-a";
  if (field == "account" || field == "from" || field == "payer_account") return "acct-100";
  if (field == "to" || field == "payee_account") return "acct-200";
  if (field == "status") return "accepted";
  if (field == "action") return "transfer";
  if (field == "session") return "f2f-42";
  if (field == "nonce") return "n-7f3a9c";
  if (field == "process_no") return "pn-2025-0001";
  return "se-0001:16";  // request_id, note_id, order_id, hold_id, doc_id
}

Json sealed_jwe() {
  auto pub = zf::fuzz::recipient_key().public_key();
  return must(zf::jwe_encrypt(zf::as_bytes("{\"memo\":\"order 17\"}"),
                              {zf::JweRecipient{&pub, std::string(zf::fuzz::kRecipientKid)}}),
              "sealed JWE");
}

// A valid payload of `type`, every optional field present when `full`.
Json payload(std::string_view type, bool full = false) {
  const zf::DocTypeSpec* spec = zf::find_doc_type(type);
  if (!spec) die("unknown type " + std::string(type));
  Json j = Json::object();
  j["type"] = spec->type;
  j["v"] = spec->version;
  j["id"] = "se-0001:17";
  j["issuer"] = spec->se_issued ? "se-0001" : "bank-a";
  if (spec->se_issued || full) j["seq"] = 17;
  if (spec->se_issued || full) j["nonce"] = zf::b64url_encode(zf::as_bytes("zhuanfu-seed-nce"));
  j["iat"] = zf::fuzz::kFuzzNow - 60;
  if (full) {
    j["exp"] = zf::fuzz::kFuzzNow + 3600;
    j["process_no"] = id_for("process_no");
  }
  for (const auto& f : spec->fields) {
    if (!f.required && !full) continue;
    switch (f.kind) {
      case zf::FieldKind::id:
        j[f.name] = id_for(f.name);
        break;
      case zf::FieldKind::text:
        j[f.name] = "text";
        break;
      case zf::FieldKind::minor:
        j[f.name] = 1250;
        break;
      case zf::FieldKind::currency:
        j[f.name] = "CNY";
        break;
      case zf::FieldKind::uint:
        j[f.name] = 3;
        break;
      case zf::FieldKind::digest:
        j[f.name] = zf::b64url_encode(zf::sha256(zf::as_bytes("result")));
        break;
      case zf::FieldKind::object:
        j[f.name] = sealed_jwe();
        break;
      case zf::FieldKind::nonce:
        j[f.name] = zf::b64url_encode(zf::Bytes(16, 0x5a));
        break;
    }
  }
  return j;
}

void document_valid(std::string_view name, const Json& j) {
  std::string text = zf::dump_json(j);
  must(zf::Document::parse(text), "valid document " + std::string(name));
  write("document", "valid_" + std::string(name), text);
}

void document_invalid_text(std::string_view name, std::string_view text) {
  if (zf::Document::parse(text)) die("invalid document seed is accepted: " + std::string(name));
  write("document", "invalid_" + std::string(name), text);
}

void document_invalid(std::string_view name, const Json& j) {
  document_invalid_text(name, zf::dump_json(j));
}

void make_document_seeds() {
  for (const auto& spec : zf::doc_types()) document_valid(spec.type, payload(spec.type));
  document_valid("topup.request.full", payload("topup.request", true));
  document_valid("joint.spend.full", payload("joint.spend", true));
  {
    Json j = payload("payment.note");
    j["amount"] = zf::Amount::kMaxMinor;
    j["currency"] = "JPY";
    document_valid("payment.note.max", j);
  }

  const Json base = payload("topup.request");
  auto with = [&](std::string_view field, Json value) {
    Json j = base;
    j[field] = std::move(value);
    return j;
  };
  auto without = [&](std::string_view field) {
    Json j = base;
    j.erase(std::string(field));
    return j;
  };
  document_invalid("unknown_type", with("type", "topup.bogus"));
  document_invalid("version_2", with("v", 2));
  document_invalid("version_string", with("v", "1"));
  document_invalid("unknown_field", with("memo", "hi"));
  document_invalid("missing_amount", without("amount"));
  document_invalid("missing_seq", without("seq"));
  document_invalid("missing_issuer", without("issuer"));
  document_invalid("amount_zero", with("amount", 0));
  document_invalid("amount_negative", with("amount", -5));
  document_invalid("amount_over_max", with("amount", zf::Amount::kMaxMinor + 1));
  document_invalid("amount_u64_max", with("amount", UINT64_MAX));
  document_invalid("amount_float", with("amount", 12.5));
  document_invalid("amount_string", with("amount", "1250"));
  document_invalid("currency_unknown", with("currency", "XXX"));
  document_invalid("currency_lowercase", with("currency", "cny"));
  document_invalid("id_space", with("id", "se 0001"));
  document_invalid("id_too_long", with("id", std::string(129, 'a')));
  document_invalid("id_empty", with("id", ""));
  document_invalid("seq_negative", with("seq", -1));
  document_invalid("iat_over_int64", with("iat", std::uint64_t{1} << 63));
  document_invalid("type_too_long", with("type", std::string(65, 't')));
  {
    Json j = payload("record");
    j["result_digest"] = zf::b64url_encode(zf::Bytes(31, 7));
    document_invalid("record_digest_31", j);
  }
  {
    Json j = payload("joint.spend");
    j["action"] = 1;
    document_invalid("joint_action_number", j);
    j = payload("joint.spend");
    j.erase("to");
    document_invalid("joint_to_missing", j);
  }
  {
    Json j = payload("cpay.note");
    j["sealed"] = "not an object";
    document_invalid("cpay_sealed_string", j);
    Json deep = Json::object();
    for (int i = 0; i < 10; ++i) deep = Json{{"d", deep}};
    j["sealed"] = deep;
    document_invalid("cpay_sealed_too_deep", j);
  }
  std::string text = zf::dump_json(base);
  document_invalid_text("duplicate_key", "{\"type\":\"payment.note\"," + text.substr(1));
  document_invalid_text("trailing_data", text + " {}");
  document_invalid_text("truncated", text.substr(0, text.size() / 2));
  document_invalid_text("array", "[" + text + "]");
  document_invalid_text("null", "null");
  document_invalid_text("empty", "");
  document_invalid_text("bad_utf8", "{\"type\":\"topup.\xff\xfe\",\"v\":1}");
  document_invalid_text("comment", "/* c */" + text);
}

// ---- JOSE

void jws_valid(std::string_view name, std::string_view text, bool trusted) {
  auto jws = must(zf::jws_parse(text), "valid JWS " + std::string(name));
  for (std::size_t i = 0; i < jws.signatures.size(); ++i)
    must(zf::jws_check_signature(jws, i), "JWS signature");
  if (trusted) {
    zf::CertVerifier v(zf::fuzz::root_cert());
    v.set_time(zf::fuzz::kFuzzNow);
    must(zf::open_signed_document(text, v, zf::Role::secure_element), "signed document");
  }
  write("jose", "valid_" + std::string(name), text);
}

// Refused by the parser, or parsed but with a signature that does not verify.
void jws_invalid(std::string_view name, std::string_view text) {
  if (auto jws = zf::jws_parse(text)) {
    bool all_ok = true;
    for (std::size_t i = 0; i < jws->signatures.size(); ++i)
      all_ok = all_ok && zf::jws_check_signature(*jws, i).has_value();
    if (all_ok) die("invalid JWS seed is accepted: " + std::string(name));
  }
  write("jose", "invalid_" + std::string(name), text);
}

void jwe_valid(std::string_view name, const Json& jwe) {
  std::string text = zf::dump_json(jwe);
  auto parsed = must(zf::jwe_parse(text), "valid JWE " + std::string(name));
  must(zf::jwe_decrypt(parsed, zf::fuzz::recipient_key()), "decrypting " + std::string(name));
  write("jose", "valid_" + std::string(name), text);
}

// Refused by jwe_parse or by decryption with the recipient key.
void jwe_invalid(std::string_view name, std::string_view text) {
  if (auto parsed = zf::jwe_parse(text);
      parsed && zf::jwe_decrypt(*parsed, zf::fuzz::recipient_key()))
    die("invalid JWE seed decrypts: " + std::string(name));
  write("jose", "invalid_" + std::string(name), text);
}

std::string compact(std::string_view header, std::string_view payload_text, const zf::Bytes& sig) {
  return b64u(header) + "." + b64u(payload_text) + "." + zf::b64url_encode(sig);
}

void make_jose_seeds() {
  Party se = make_leaf(zf::SigAlg::ES256, "se-0001", zf::Role::secure_element, "user-1");
  Party se_ed = make_leaf(zf::SigAlg::EdDSA, "se-0002", zf::Role::secure_element, "user-2");
  Party bank = make_leaf(zf::SigAlg::ES256, "bank-a", zf::Role::custody);
  zf::KeySigner se_signer(se.key), se_ed_signer(se_ed.key), bank_signer(bank.key);
  zf::JwsSigner se_js{&se_signer, {se.cert}};
  zf::JwsSigner se_ed_js{&se_ed_signer, {se_ed.cert}};
  zf::JwsSigner bank_js{&bank_signer, {bank.cert}};

  // Valid JWS.
  std::string topup = must(zf::sign_document(payload("topup.request"), se_js), "topup");
  jws_valid("compact_topup_es256", topup, true);
  jws_valid("compact_payment_eddsa",
            must(zf::sign_document(payload("payment.note"), se_ed_js), "p"), true);
  jws_valid("compact_cpay_sealed", must(zf::sign_document(payload("cpay.note"), se_js), "cpay"),
            true);
  zf::JwsSigner se_with_root{&se_signer, {se.cert, zf::fuzz::root_cert()}};
  jws_valid("compact_chain_with_root",
            must(zf::sign_document(payload("deposit.note"), se_with_root), "deposit"), true);
  jws_valid("compact_receipt_custody",
            must(zf::sign_document(payload("topup.receipt"), bank_js), "receipt"), false);
  std::string joint_text = zf::dump_json(payload("joint.spend"));
  Json general =
      must(zf::jws_sign_general(zf::as_bytes(joint_text), {se_js, se_ed_js}, "zf+jws"), "general");
  jws_valid("general_joint_two_se", zf::dump_json(general), true);
  Json mixed =
      must(zf::jws_sign_general(zf::as_bytes(joint_text), {se_js, bank_js}, "zf+jws"), "mixed");
  jws_valid("general_joint_se_and_bank", zf::dump_json(mixed), false);
  auto d1 = topup.find('.'), d2 = topup.rfind('.');
  Json flattened{{"protected", topup.substr(0, d1)},
                 {"payload", topup.substr(d1 + 1, d2 - d1 - 1)},
                 {"signature", topup.substr(d2 + 1)}};
  jws_valid("flattened_topup", zf::dump_json(flattened), true);

  // Invalid JWS.
  std::string prot = topup.substr(0, d1), body = topup.substr(d1 + 1, d2 - d1 - 1),
              sig = topup.substr(d2 + 1);
  std::string payload_text = zf::dump_json(payload("topup.request"));
  std::string x5c = "[\"" + x5c_entry(se.cert) + "\"]";
  zf::Bytes zero_sig(64, 0);
  jws_invalid("alg_none", compact("{\"alg\":\"none\",\"x5c\":" + x5c + "}", payload_text, {}));
  jws_invalid("alg_none_bare", compact("{\"alg\":\"none\"}", payload_text, {}));
  jws_invalid("alg_hs256",
              compact("{\"alg\":\"HS256\",\"x5c\":" + x5c + "}", payload_text, zero_sig));
  jws_invalid("alg_eddsa_on_p256_key",
              compact("{\"alg\":\"EdDSA\",\"x5c\":" + x5c + "}", payload_text, zero_sig));
  jws_invalid("header_kid", compact("{\"alg\":\"ES256\",\"kid\":\"k1\",\"x5c\":" + x5c + "}",
                                    payload_text, zero_sig));
  jws_invalid("header_jku", compact("{\"alg\":\"ES256\",\"jku\":\"http://x\",\"x5c\":" + x5c + "}",
                                    payload_text, zero_sig));
  jws_invalid(
      "header_duplicate_alg",
      compact("{\"alg\":\"EdDSA\",\"alg\":\"ES256\",\"x5c\":" + x5c + "}", payload_text, zero_sig));
  jws_invalid("header_not_object", compact("[\"ES256\"]", payload_text, zero_sig));
  jws_invalid("x5c_missing", compact("{\"alg\":\"ES256\"}", payload_text, zero_sig));
  jws_invalid("x5c_empty", compact("{\"alg\":\"ES256\",\"x5c\":[]}", payload_text, zero_sig));
  jws_invalid("x5c_string", compact("{\"alg\":\"ES256\",\"x5c\":\"" + x5c_entry(se.cert) + "\"}",
                                    payload_text, zero_sig));
  jws_invalid("x5c_five", compact("{\"alg\":\"ES256\",\"x5c\":[\"MA==\",\"MA==\",\"MA==\",\"MA==\","
                                  "\"MA==\"]}",
                                  payload_text, zero_sig));
  jws_invalid("x5c_not_der",
              compact("{\"alg\":\"ES256\",\"x5c\":[\"MIIBAAAA\"]}", payload_text, zero_sig));
  jws_invalid("x5c_urlsafe_alphabet",
              compact("{\"alg\":\"ES256\",\"x5c\":[\"" + zf::b64url_encode(se.cert.der()) + "\"]}",
                      payload_text, zero_sig));
  jws_invalid("x5c_undecodable_key",
              compact("{\"alg\":\"ES256\",\"x5c\":[\"" +
                          zf::b64_encode(cert_with_undecodable_key(se.cert)) + "\"]}",
                      payload_text, zero_sig));
  jws_invalid("x5c_p384_leaf",
              compact("{\"alg\":\"ES256\",\"x5c\":[\"" + x5c_entry(make_p384_leaf()) + "\"]}",
                      payload_text, zero_sig));
  jws_invalid("bad_base64_plus", prot + "." + body + "+." + sig);
  jws_invalid("bad_base64_padding", prot + "=." + body + "." + sig);
  jws_invalid("bad_base64_space",
              prot + "." + body.substr(0, 8) + " " + body.substr(8) + "." + sig);
  jws_invalid("bad_base64_length", prot + "." + body + "." + sig + "A");
  jws_invalid("truncated_half", topup.substr(0, topup.size() / 2));
  jws_invalid("truncated_signature", topup.substr(0, topup.size() - 4));
  jws_invalid("two_parts", prot + "." + body);
  jws_invalid("four_parts", topup + ".AAAA");
  jws_invalid("signature_63_bytes", prot + "." + body + "." + zf::b64url_encode(zf::Bytes(63, 1)));
  jws_invalid("signature_zero", prot + "." + body + "." + zf::b64url_encode(zero_sig));
  {
    Json tampered = payload("topup.request");
    tampered["amount"] = 999999;
    jws_invalid("payload_tampered", prot + "." + b64u(zf::dump_json(tampered)) + "." + sig);
  }
  jws_invalid("empty", "");
  jws_invalid("dots", "..");
  {
    Json j = flattened;
    j["header"] = Json{{"kid", "k1"}};
    jws_invalid("flattened_unprotected_header", zf::dump_json(j));
  }
  {
    Json j = general;
    j["signatures"] = Json::array();
    jws_invalid("general_no_signatures", zf::dump_json(j));
    Json many = Json::array();
    for (int i = 0; i < 17; ++i) many.push_back(Json{{"protected", "e30"}, {"signature", ""}});
    j["signatures"] = many;
    jws_invalid("general_17_signatures", zf::dump_json(j));
    std::string text = zf::dump_json(general);
    jws_invalid("general_truncated", text.substr(0, text.size() - 10));
  }

  // Valid JWE.
  auto recipient_pub = zf::fuzz::recipient_key().public_key();
  auto other = must(zf::PrivateKey::generate(zf::SigAlg::ES256), "other key");
  auto other_pub = other.public_key();
  std::string secret = "{\"memo\":\"controlled payment 17\",\"pin_hint\":\"none\"}";
  Json one = must(zf::jwe_encrypt(zf::as_bytes(secret),
                                  {{&recipient_pub, std::string(zf::fuzz::kRecipientKid)}}),
                  "jwe");
  jwe_valid("jwe_one_recipient", one);
  Json two = must(zf::jwe_encrypt(zf::as_bytes(secret),
                                  {{&other_pub, "se-other"},
                                   {&recipient_pub, std::string(zf::fuzz::kRecipientKid)}}),
                  "jwe2");
  jwe_valid("jwe_two_recipients", two);
  Json no_kid = must(zf::jwe_encrypt(zf::as_bytes(""), {{&recipient_pub, ""}}), "jwe3");
  jwe_valid("jwe_no_kid_empty_plaintext", no_kid);

  // Invalid JWE.
  auto broken = [&](std::string_view name, auto&& edit) {
    Json j = one;
    edit(j);
    jwe_invalid(name, zf::dump_json(j));
  };
  broken("jwe_alg_none", [](Json& j) { j["recipients"][0]["header"]["alg"] = "none"; });
  broken("jwe_alg_rsa", [](Json& j) { j["recipients"][0]["header"]["alg"] = "RSA-OAEP"; });
  broken("jwe_enc_a128gcm", [](Json& j) { j["protected"] = b64u("{\"enc\":\"A128GCM\"}"); });
  broken("jwe_protected_extra",
         [](Json& j) { j["protected"] = b64u("{\"enc\":\"A256GCM\",\"zip\":\"DEF\"}"); });
  broken("jwe_missing_tag", [](Json& j) { j.erase("tag"); });
  broken("jwe_tag_flipped", [](Json& j) {
    auto tag = *zf::b64url_decode(j["tag"].get<std::string>());
    tag[0] ^= 1;
    j["tag"] = zf::b64url_encode(tag);
  });
  broken("jwe_iv_11_bytes", [](Json& j) { j["iv"] = zf::b64url_encode(zf::Bytes(11, 0)); });
  broken("jwe_aad_added", [](Json& j) { j["aad"] = b64u("extra"); });
  broken("jwe_unprotected_field", [](Json& j) { j["unprotected"] = Json::object(); });
  broken("jwe_no_recipients", [](Json& j) { j["recipients"] = Json::array(); });
  broken("jwe_recipient_extra", [](Json& j) { j["recipients"][0]["foo"] = 1; });
  broken("jwe_epk_off_curve", [](Json& j) {
    j["recipients"][0]["header"]["epk"]["x"] = zf::b64url_encode(zf::Bytes(32, 1));
  });
  broken("jwe_epk_x25519", [](Json& j) {
    j["recipients"][0]["header"]["epk"] = Json{{"kty", "OKP"}, {"crv", "X25519"}, {"x", "AAAA"}};
  });
  broken("jwe_encrypted_key_short", [](Json& j) {
    j["recipients"][0]["encrypted_key"] = zf::b64url_encode(zf::Bytes(16, 0));
  });
  broken("jwe_ciphertext_bad_base64", [](Json& j) { j["ciphertext"] = "a+b/"; });
  std::string one_text = zf::dump_json(one);
  jwe_invalid("jwe_truncated", one_text.substr(0, one_text.size() / 2));
  jwe_invalid("jwe_duplicate_key", "{\"iv\":\"AAAA\"," + one_text.substr(1));
}

// ---- Amounts and JSON

void make_amount_seeds() {
  const std::vector<std::pair<std::string_view, std::string_view>> seeds = {
      {"valid_cny", "CNY 12.50"},
      {"valid_cny_one_digit", "CNY 12.5"},
      {"valid_cny_whole", "CNY 7"},
      {"valid_jpy", "JPY 100"},
      {"valid_bhd", "BHD 1.234"},
      {"valid_zero", "CNY 0.00"},
      {"valid_max", "CNY 10000000000000.00"},
      {"valid_jpy_max", "JPY 1000000000000000"},
      {"valid_pair_sum", "USD 0.01\nUSD 0.02"},
      {"valid_pair_overflow", "CNY 10000000000000.00\nCNY 0.01"},
      {"valid_pair_mismatch", "CNY 1\nJPY 1"},
      {"invalid_negative", "CNY -1"},
      {"invalid_overflow", "CNY 99999999999999999999"},
      {"invalid_over_max", "CNY 10000000000000.01"},
      {"invalid_jpy_fraction", "JPY 1.5"},
      {"invalid_bhd_4_digits", "BHD 1.2345"},
      {"invalid_trailing_dot", "CNY 1."},
      {"invalid_leading_dot", "CNY .5"},
      {"invalid_leading_zero", "CNY 012"},
      {"invalid_lowercase", "cny 1"},
      {"invalid_unknown_currency", "XXX 1"},
      {"invalid_two_spaces", "CNY  1"},
      {"invalid_exponent", "CNY 1e3"},
      {"invalid_plus", "CNY +1"},
      {"invalid_comma", "CNY 1,000"},
      {"invalid_nul", std::string_view("CNY 1\0", 6)},
      {"invalid_currency_only", "CNY"},
      {"invalid_empty", ""},
      {"invalid_long", "CNY 1000000000000000000000000000000000000000000000000000000000000000"},
  };
  for (const auto& [name, text] : seeds) {
    bool ok = name.starts_with("valid_pair") ? true : zf::Amount::parse(text).has_value();
    if (ok != name.starts_with("valid_")) die("amount seed mislabeled: " + std::string(name));
    write("amount", name, text);
  }
}

void make_json_seeds() {
  // A scalar under 16 arrays sits at depth 16, the limit; under 17 it is one too deep.
  std::string deep16 = std::string(16, '[') + "1" + std::string(16, ']');
  std::string deep17 = std::string(17, '[') + "1" + std::string(17, ']');
  const std::vector<std::pair<std::string_view, std::string>> seeds = {
      {"valid_object", "{\"a\":1,\"b\":[true,false,null],\"c\":{\"d\":\"e\"}}"},
      {"valid_document", zf::dump_json(payload("payment.note", true))},
      {"valid_numbers", "[0,-1,1.5,-0.0,1e10,18446744073709551615,-9223372036854775808,1E-7]"},
      {"valid_unicode",
       "[\"\\u00e9\\u4e2d\\ud83d\\ude00\",\"\xe4\xb8\xad\xe6\x96\x87\",\"\\n\\t\\\\\"]"},
      {"valid_whitespace", " \r\n\t{ \"k\" : [ ] } \n"},
      {"valid_scalar", "\"just a string\""},
      {"valid_depth_16", deep16},
      {"valid_empty_key", "{\"\":0}"},
      {"invalid_depth_17", deep17},
      {"invalid_duplicate_key", "{\"a\":1,\"a\":2}"},
      {"invalid_nested_duplicate", "{\"a\":{\"b\":1,\"c\":{},\"b\":2}}"},
      {"invalid_trailing_data", "{\"a\":1} x"},
      {"invalid_two_values", "{}{}"},
      {"invalid_comment", "{\"a\":1 /* c */}"},
      {"invalid_trailing_comma", "[1,2,]"},
      {"invalid_single_quotes", "{'a':1}"},
      {"invalid_number_overflow", "[1e400]"},
      {"invalid_leading_zero", "[01]"},
      {"invalid_lone_surrogate", "[\"\\ud800\"]"},
      {"invalid_utf8", "[\"\xc3\x28\"]"},
      {"invalid_control_char", std::string("[\"a\x01\"]")},
      {"invalid_nan", "[NaN]"},
      {"invalid_truncated", "{\"a\":[1,2"},
      {"invalid_empty", ""},
      {"invalid_nul_after_value", std::string("{}\0{\"a\":1}", 10)},
      {"valid_bom", "\xef\xbb\xbf{}"},  // nlohmann skips a UTF-8 BOM
  };
  for (const auto& [name, text] : seeds) {
    if (zf::parse_json_strict(text).has_value() != name.starts_with("valid_"))
      die("JSON seed mislabeled: " + std::string(name));
    write("json", name, text);
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s CORPUS_DIR\n", argv[0]);
    return 2;
  }
  g_root = argv[1];
  make_document_seeds();
  make_jose_seeds();
  make_amount_seeds();
  make_json_seeds();
  std::printf("wrote %d seed files under %s\n", g_written, g_root.c_str());
  return 0;
}
