// Documents (DESIGN.md §4): the type registry, strict payload validation with the
// offending field named, time checks, and signing / opening signed documents.
#include "core/document.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <set>
#include <string>

#include "test_pki.h"
#include "test_util.h"

namespace zf {
namespace {

using test::FailsWith;
using test::FailsWithField;
using test::IsOk;
using test::issue;
using test::kDay;
using test::KeyCert;
using test::kNow;
using test::make_root;
using test::must;
using test::Party;
using test::verifier_at;

// A value of the right kind for a field of that kind.
Json sample(FieldKind kind) {
  switch (kind) {
    case FieldKind::id:
      return "x-1";
    case FieldKind::text:
      return "text";
    case FieldKind::minor:
      return 100;
    case FieldKind::currency:
      return "CNY";
    case FieldKind::uint:
      return 1;
    case FieldKind::digest:
      return b64url_encode(Bytes(32, 0xab));
    case FieldKind::object:
      return Json::object();
    case FieldKind::nonce:
      return b64url_encode(Bytes(16, 0x5a));
  }
  return nullptr;
}

// The smallest valid payload of a registered type.
// 16 bytes 00..0f, base64url: a valid `nonce`.
constexpr const char* kNonce = "AAECAwQFBgcICQoLDA0ODw";

Json minimal(const DocTypeSpec& spec) {
  Json j = {
      {"type", spec.type}, {"v", spec.version}, {"id", "doc-1"}, {"issuer", "se-1"}, {"iat", kNow}};
  if (spec.se_issued) j["seq"] = 1;
  if (spec.se_issued) j["nonce"] = kNonce;
  for (const auto& f : spec.fields)
    if (f.required) j[std::string(f.name)] = sample(f.kind);
  return j;
}

Json payment_note() {
  return {{"type", "payment.note"},
          {"v", 1},
          {"id", "se-1:42"},
          {"issuer", "se-1"},
          {"seq", 42},
          {"iat", kNow},
          {"nonce", kNonce},
          {"amount", 1250},
          {"currency", "CNY"},
          {"payer", "se-1"},
          {"payee", "se-2"}};
}

Json with(Json j, const std::string& key, Json value) {
  j[key] = std::move(value);
  return j;
}
Json without(Json j, const std::string& key) {
  j.erase(key);
  return j;
}

// ---- Registry

TEST(DocRegistry, HasEveryTypeOfTheDesign) {
  for (const char* t : {"topup.request", "topup.receipt", "payment.note", "payment.ack",
                        "deposit.note", "deposit.receipt", "f2f.payment", "cpay.note",
                        "cpay.refund", "transfer.order", "transfer.receipt", "hold.request",
                        "hold.confirm", "hold.release", "hold.receipt", "joint.spend", "record"}) {
    const DocTypeSpec* spec = find_doc_type(t);
    ASSERT_NE(spec, nullptr) << t;
    EXPECT_EQ(spec->type, t);
    EXPECT_EQ(spec->version, 1) << t;
  }
  EXPECT_EQ(find_doc_type("payment"), nullptr);
  EXPECT_EQ(find_doc_type("Payment.Note"), nullptr);
  EXPECT_EQ(find_doc_type(""), nullptr);
}

TEST(DocRegistry, SpecsAreConsistent) {
  std::set<std::string_view> types;
  for (const auto& spec : doc_types()) {
    EXPECT_TRUE(types.insert(spec.type).second) << "duplicate type " << spec.type;
    std::set<std::string_view> names;
    bool has_minor = false, has_currency = false;
    for (const auto& f : spec.fields) {
      EXPECT_TRUE(names.insert(f.name).second) << spec.type << " repeats " << f.name;
      for (const char* common :
           {"type", "v", "id", "issuer", "seq", "iat", "exp", "nonce", "process_no"})
        EXPECT_NE(f.name, common) << spec.type << " redefines a common field";
      has_minor = has_minor || f.kind == FieldKind::minor;
      has_currency = has_currency || f.kind == FieldKind::currency;
      if (f.kind == FieldKind::minor) {
        EXPECT_EQ(f.name, "amount") << spec.type;
      }
    }
    // An amount is only meaningful with its currency.
    EXPECT_EQ(has_minor, has_currency) << spec.type;
  }
}

// ---- from_json: good path

TEST(DocumentFromJson, AcceptsAPaymentNote) {
  auto doc = Document::from_json(payment_note());
  ASSERT_THAT(doc, IsOk());
  EXPECT_EQ(doc->type(), "payment.note");
  EXPECT_EQ(doc->version(), 1);
  EXPECT_EQ(doc->id(), "se-1:42");
  EXPECT_EQ(doc->issuer(), "se-1");
  EXPECT_EQ(doc->seq(), 42);
  EXPECT_EQ(doc->iat(), kNow);
  EXPECT_FALSE(doc->exp().has_value());
  EXPECT_FALSE(doc->process_no().has_value());
  ASSERT_TRUE(doc->amount().has_value());
  EXPECT_EQ(*doc->amount(), must(Amount::of("CNY", 1250)));
  EXPECT_EQ(doc->str("payee"), "se-2");
  EXPECT_EQ(doc->str("amount"), "") << "not a string";
  EXPECT_EQ(doc->str("absent"), "");
  EXPECT_EQ(doc->json(), payment_note());
}

TEST(DocumentFromJson, OptionalCommonFields) {
  Json j = payment_note();
  j["exp"] = kNow + 600;
  j["nonce"] = "AAECAwQFBgcICQoLDA0ODw";
  j["process_no"] = "pn:9f8e7d";
  auto doc = Document::from_json(j);
  ASSERT_THAT(doc, IsOk());
  EXPECT_EQ(doc->exp(), kNow + 600);
  EXPECT_EQ(doc->process_no(), "pn:9f8e7d");
  EXPECT_EQ(doc->str("nonce"), "AAECAwQFBgcICQoLDA0ODw");
}

TEST(DocumentFromJson, EveryRegisteredTypeAcceptsItsMinimalPayload) {
  for (const auto& spec : doc_types()) {
    Json j = minimal(spec);
    auto doc = Document::from_json(j);
    ASSERT_THAT(doc, IsOk()) << spec.type << " " << dump_json(j);
    EXPECT_EQ(doc->type(), spec.type);
    bool has_amount = j.contains("amount");
    EXPECT_EQ(doc->amount().has_value(), has_amount) << spec.type;
    if (has_amount) {
      EXPECT_EQ(*doc->amount(), must(Amount::of("CNY", 100)));
    }
  }
}

TEST(DocumentFromJson, EveryRequiredFieldIsNamedWhenMissing) {
  for (const auto& spec : doc_types()) {
    const Json full = minimal(spec);
    for (const auto& [key, _] : full.items()) {
      EXPECT_THAT(Document::from_json(without(full, key)), FailsWithField(Errc::missing_field, key))
          << spec.type << " without " << key;
    }
  }
}

TEST(DocumentFromJson, SeqIsRequiredOnlyForSeIssuedTypes) {
  for (const auto& spec : doc_types()) {
    Json j = without(minimal(spec), "seq");
    if (spec.se_issued) {
      EXPECT_THAT(Document::from_json(j), FailsWithField(Errc::missing_field, "seq")) << spec.type;
    } else {
      EXPECT_THAT(Document::from_json(j), IsOk()) << spec.type;
    }
  }
  // A server-issued document may still carry one.
  Json receipt = with(minimal(*find_doc_type("topup.receipt")), "seq", 7);
  EXPECT_EQ(must(Document::from_json(receipt)).seq(), 7);
}

// The registry's record of an SE document carries the SHA-256 of its payload;
// the nonce is what keeps amount, payee and time from being found by trying
// them (issue 8: a record's payment was recovered in under a second).
TEST(DocumentFromJson, NonceIsRequiredForSeIssuedTypesAndIsSixteenRandomBytes) {
  for (const auto& spec : doc_types()) {
    Json j = without(minimal(spec), "nonce");
    if (spec.se_issued) {
      EXPECT_THAT(Document::from_json(j), FailsWithField(Errc::missing_field, "nonce")) << spec.type;
    } else {
      EXPECT_THAT(Document::from_json(j), IsOk()) << spec.type;
    }
  }
  for (const std::string& bad : {std::string("AAECAwQFBgcICQoLDA0OD"), std::string("AAECAwQFBgcICQoLDA0ODwA"),
                                 std::string("AAECAwQFBgcICQoLDA0OD="), std::string("AAECAwQFBgcICQoLDA0OD+"),
                                 std::string("0")})
    EXPECT_THAT(Document::from_json(with(payment_note(), "nonce", bad)), FailsWithField(Errc::bad_field, "nonce"))
        << bad;
  std::string a = new_nonce(), b = new_nonce();
  EXPECT_NE(a, b);
  EXPECT_THAT(Document::from_json(with(payment_note(), "nonce", a)), IsOk());
}

TEST(DocumentFromJson, OptionalTypeFieldMayBeAbsentOrPresent) {
  Json receipt = minimal(*find_doc_type("transfer.receipt"));
  EXPECT_FALSE(receipt.contains("status"));
  EXPECT_THAT(Document::from_json(receipt), IsOk());
  EXPECT_THAT(Document::from_json(with(receipt, "status", "refused")), IsOk());
  EXPECT_THAT(Document::from_json(with(receipt, "status", "bad id")),
              FailsWithField(Errc::bad_field, "status"));
}

// ---- from_json: type and version

TEST(DocumentFromJson, UnknownTypeIsRefused) {
  for (const char* t : {"payment.notes", "PAYMENT.NOTE", "payment", "", "transfer"})
    EXPECT_THAT(Document::from_json(with(payment_note(), "type", t)),
                FailsWithField(Errc::unknown_type, "type"))
        << t;
}

TEST(DocumentFromJson, TypeMustBeAString) {
  EXPECT_THAT(Document::from_json(without(payment_note(), "type")),
              FailsWithField(Errc::missing_field, "type"));
  EXPECT_THAT(Document::from_json(with(payment_note(), "type", 1)),
              FailsWithField(Errc::bad_field, "type"));
  EXPECT_THAT(Document::from_json(with(payment_note(), "type", std::string(65, 'a'))),
              FailsWithField(Errc::bad_field, "type"));
}

TEST(DocumentFromJson, UnknownVersionIsRefused) {
  for (int v : {0, 2, -1, 100})
    EXPECT_THAT(Document::from_json(with(payment_note(), "v", v)),
                FailsWithField(Errc::unknown_version, "v"))
        << v;
}

TEST(DocumentFromJson, VersionMustBeAnInteger) {
  EXPECT_THAT(Document::from_json(without(payment_note(), "v")),
              FailsWithField(Errc::missing_field, "v"));
  EXPECT_THAT(Document::from_json(with(payment_note(), "v", "1")),
              FailsWithField(Errc::bad_field, "v"));
  EXPECT_THAT(Document::from_json(with(payment_note(), "v", 1.0)),
              FailsWithField(Errc::bad_field, "v"));
}

TEST(DocumentFromJson, PayloadMustBeAnObject) {
  EXPECT_THAT(Document::from_json(Json::array()), FailsWith(Errc::bad_field));
  EXPECT_THAT(Document::from_json(Json("payment.note")), FailsWith(Errc::bad_field));
  EXPECT_THAT(Document::from_json(Json()), FailsWith(Errc::bad_field));
}

// ---- from_json: unknown and malformed fields

TEST(DocumentFromJson, UnknownFieldIsRefusedAndNamed) {
  EXPECT_THAT(Document::from_json(with(payment_note(), "memo", "hi")),
              FailsWithField(Errc::unknown_field, "memo"));
  // A field of another type is just as unknown here.
  EXPECT_THAT(Document::from_json(with(payment_note(), "session", "s-1")),
              FailsWithField(Errc::unknown_field, "session"));
  EXPECT_THAT(Document::from_json(with(payment_note(), "Amount", 1)),
              FailsWithField(Errc::unknown_field, "Amount"));
}

TEST(DocumentFromJson, IdFields) {
  EXPECT_THAT(Document::from_json(with(payment_note(), "id", std::string(128, 'a'))), IsOk());
  EXPECT_THAT(Document::from_json(with(payment_note(), "id", "A-z_0.9:x")), IsOk());
  for (const std::string& bad :
       {std::string(""), std::string(129, 'a'), std::string("a b"), std::string("a/b"),
        std::string("a\nb"), std::string("\xe4\xb8\xad"), std::string("a\0b", 3)})
    EXPECT_THAT(Document::from_json(with(payment_note(), "id", bad)),
                FailsWithField(Errc::bad_field, "id"))
        << bad;
  EXPECT_THAT(Document::from_json(with(payment_note(), "id", 5)),
              FailsWithField(Errc::bad_field, "id"));
  EXPECT_THAT(Document::from_json(with(payment_note(), "issuer", "")),
              FailsWithField(Errc::bad_field, "issuer"));
  EXPECT_THAT(Document::from_json(with(payment_note(), "payee", Json::array({"se-2"}))),
              FailsWithField(Errc::bad_field, "payee"));
  EXPECT_THAT(Document::from_json(with(payment_note(), "nonce", "bad nonce")),
              FailsWithField(Errc::bad_field, "nonce"));
  EXPECT_THAT(Document::from_json(with(payment_note(), "process_no", 12345)),
              FailsWithField(Errc::bad_field, "process_no"));
}

TEST(DocumentFromJson, UnsignedIntegerFields) {
  for (const char* f : {"seq", "iat", "exp"}) {
    EXPECT_THAT(Document::from_json(with(payment_note(), f, -1)),
                FailsWithField(Errc::bad_field, f))
        << f;
    EXPECT_THAT(Document::from_json(with(payment_note(), f, 1.5)),
                FailsWithField(Errc::bad_field, f))
        << f;
    EXPECT_THAT(Document::from_json(with(payment_note(), f, "1")),
                FailsWithField(Errc::bad_field, f))
        << f;
    EXPECT_THAT(Document::from_json(with(payment_note(), f, std::uint64_t{1} << 63)),
                FailsWithField(Errc::bad_field, f))
        << f;
    EXPECT_THAT(Document::from_json(with(payment_note(), f, INT64_MAX)), IsOk()) << f;
    EXPECT_THAT(Document::from_json(with(payment_note(), f, 0)), IsOk()) << f;
  }
}

TEST(DocumentFromJson, DigestField) {
  Json rec = minimal(*find_doc_type("record"));
  EXPECT_THAT(Document::from_json(rec), IsOk());
  for (const Json& bad :
       {Json(b64url_encode(Bytes(31, 1))), Json(b64url_encode(Bytes(33, 1))),
        Json(b64_encode(Bytes(32, 0xfb))), Json(b64url_encode(Bytes(32, 1)) + "="),
        Json(hex_encode(Bytes(32, 1))), Json(32)})
    EXPECT_THAT(Document::from_json(with(rec, "result_digest", bad)),
                FailsWithField(Errc::bad_field, "result_digest"))
        << dump_json(bad);
}

TEST(DocumentFromJson, ObjectField) {
  Json note = minimal(*find_doc_type("cpay.note"));
  EXPECT_THAT(Document::from_json(with(note, "sealed", Json{{"protected", "x"}})), IsOk());
  for (const Json& bad : {Json("sealed"), Json::array(), Json(1), Json()})
    EXPECT_THAT(Document::from_json(with(note, "sealed", bad)),
                FailsWithField(Errc::bad_field, "sealed"))
        << dump_json(bad);
}

// ---- from_json: amounts

TEST(DocumentFromJson, AmountRange) {
  auto max = Document::from_json(with(payment_note(), "amount", Amount::kMaxMinor));
  ASSERT_THAT(max, IsOk());
  EXPECT_EQ(max->amount()->minor(), Amount::kMaxMinor);
  EXPECT_THAT(Document::from_json(with(payment_note(), "amount", 1)), IsOk());
}

TEST(DocumentFromJson, ZeroAmountIsRefused) {
  EXPECT_THAT(Document::from_json(with(payment_note(), "amount", 0)),
              FailsWithField(Errc::amount_zero, "amount"));
}

TEST(DocumentFromJson, NegativeAmountIsRefused) {
  EXPECT_THAT(Document::from_json(with(payment_note(), "amount", -1)),
              FailsWithField(Errc::amount_negative, "amount"));
  EXPECT_THAT(Document::from_json(with(payment_note(), "amount", INT64_MIN)),
              FailsWithField(Errc::amount_negative, "amount"));
}

TEST(DocumentFromJson, AmountOverflowIsRefused) {
  EXPECT_THAT(Document::from_json(with(payment_note(), "amount", Amount::kMaxMinor + 1)),
              FailsWithField(Errc::amount_overflow, "amount"));
  EXPECT_THAT(Document::from_json(with(payment_note(), "amount", INT64_MAX)),
              FailsWithField(Errc::amount_overflow, "amount"));
  // Beyond int64: must not wrap around into a small or negative number.
  EXPECT_THAT(Document::from_json(with(payment_note(), "amount", std::uint64_t{1} << 63)),
              FailsWithField(Errc::amount_overflow, "amount"));
  EXPECT_THAT(Document::from_json(with(payment_note(), "amount", UINT64_MAX)),
              FailsWithField(Errc::amount_overflow, "amount"));
  EXPECT_THAT(Document::from_json(with(payment_note(), "amount", (std::uint64_t{1} << 63) + 100)),
              FailsWithField(Errc::amount_overflow, "amount"));
}

TEST(DocumentFromJson, AmountMustBeAnIntegerOfMinorUnits) {
  for (const Json& bad : {Json(12.5), Json(1250.0), Json("1250"), Json("CNY 12.50"), Json(true),
                          Json(), Json::array({1250})})
    EXPECT_THAT(Document::from_json(with(payment_note(), "amount", bad)),
                FailsWithField(Errc::bad_amount, "amount"))
        << dump_json(bad);
}

TEST(DocumentFromJson, WrongCurrencyIsRefused) {
  for (const Json& bad : {Json("XXX"), Json("cny"), Json(""), Json("CNY "), Json(156), Json()})
    EXPECT_THAT(Document::from_json(with(payment_note(), "currency", bad)),
                FailsWithField(Errc::bad_currency, "currency"))
        << dump_json(bad);
  EXPECT_THAT(Document::from_json(without(payment_note(), "currency")),
              FailsWithField(Errc::missing_field, "currency"));
}

TEST(DocumentFromJson, AmountUsesTheCurrencyOfTheDocument) {
  auto doc = Document::from_json(with(with(payment_note(), "currency", "JPY"), "amount", 500));
  ASSERT_THAT(doc, IsOk());
  EXPECT_EQ(doc->amount()->to_string(), "JPY 500");
}

// ---- parse (text)

TEST(DocumentParse, ParsesText) {
  auto doc = Document::parse(dump_json(payment_note()));
  ASSERT_THAT(doc, IsOk());
  EXPECT_EQ(doc->id(), "se-1:42");
}

TEST(DocumentParse, TextLevelErrors) {
  std::string text = dump_json(payment_note());
  EXPECT_THAT(Document::parse(text.substr(0, text.size() - 1)), FailsWith(Errc::malformed_json));
  EXPECT_THAT(Document::parse(text + "{}"), FailsWith(Errc::malformed_json));
  EXPECT_THAT(Document::parse(""), FailsWith(Errc::malformed_json));
  // The same field twice: readers could disagree about the amount.
  std::string dup = R"({"amount":1,)" + text.substr(1);
  EXPECT_THAT(Document::parse(dup), FailsWithField(Errc::duplicate_key, "amount"));
}

TEST(DocumentParse, OversizeIsRefused) {
  Json j = minimal(*find_doc_type("cpay.note"));
  j["sealed"] = {{"blob", std::string(kMaxJoseBytes, 'x')}};
  EXPECT_THAT(Document::parse(dump_json(j)), FailsWith(Errc::too_large));
}

TEST(DocumentParse, DeepNestingIsRefused) {
  Json j = minimal(*find_doc_type("cpay.note"));
  Json deep = Json::object();
  for (int i = 0; i < 10; ++i) deep = Json{{"n", deep}};
  j["sealed"] = deep;
  EXPECT_THAT(Document::parse(dump_json(j)), FailsWith(Errc::too_deep));
}

// ---- check_time

TEST(DocumentTime, IssuedInTheFuture) {
  Document doc = must(Document::from_json(with(payment_note(), "iat", kNow + 301)));
  EXPECT_THAT(doc.check_time(kNow), FailsWithField(Errc::not_yet_valid, "iat"));
  EXPECT_THAT(doc.check_time(kNow, 301), IsOk());
  EXPECT_THAT(doc.check_time(kNow + 1), IsOk()) << "within the default 300 s skew";
}

TEST(DocumentTime, Expiry) {
  Document doc = must(Document::from_json(with(payment_note(), "exp", kNow + 60)));
  EXPECT_THAT(doc.check_time(kNow), IsOk());
  EXPECT_THAT(doc.check_time(kNow + 59), IsOk());
  EXPECT_THAT(doc.check_time(kNow + 60), FailsWithField(Errc::expired, "exp"));
  EXPECT_THAT(doc.check_time(kNow + 3600), FailsWithField(Errc::expired, "exp"));
}

TEST(DocumentTime, NoExpiryNeverExpires) {
  Document doc = must(Document::from_json(payment_note()));
  EXPECT_THAT(doc.check_time(kNow + 3650 * kDay), IsOk());
}

// ---- Signed documents

class SignedDocs : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    root_ = new KeyCert(make_root());
    se1_ = new Party(issue(*root_, Role::secure_element, "se-1", "user-1"));
    se2_ = new Party(issue(*root_, Role::secure_element, "se-2", "user-2"));
    bank_ = new Party(issue(*root_, Role::custody, "bank-a"));
  }
  static void TearDownTestSuite() {
    delete bank_;
    delete se2_;
    delete se1_;
    delete root_;
  }
  static const KeyCert& root() { return *root_; }
  static const Party& se1() { return *se1_; }
  static const Party& se2() { return *se2_; }
  static const Party& bank() { return *bank_; }
  static CertVerifier verifier() { return verifier_at(*root_); }

 private:
  static KeyCert* root_;
  static Party* se1_;
  static Party* se2_;
  static Party* bank_;
};
KeyCert* SignedDocs::root_ = nullptr;
Party* SignedDocs::se1_ = nullptr;
Party* SignedDocs::se2_ = nullptr;
Party* SignedDocs::bank_ = nullptr;

TEST_F(SignedDocs, SignAndOpenRoundTrip) {
  std::string jws = must(sign_document(payment_note(), se1().jws_signer()));
  auto opened = open_signed_document(jws, verifier(), Role::secure_element);
  ASSERT_THAT(opened, IsOk());
  EXPECT_EQ(opened->doc.id(), "se-1:42");
  EXPECT_EQ(*opened->doc.amount(), must(Amount::of("CNY", 1250)));
  EXPECT_EQ(opened->doc.json(), payment_note());
  ASSERT_EQ(opened->signers.size(), 1u);
  EXPECT_EQ(opened->signers[0].subject_cn(), "se-1");
  EXPECT_EQ(opened->signers[0].user_id(), "user-1");
  EXPECT_EQ(opened->jws.signatures[0].typ, "zf+jws");
  // The payload is the canonical serialization.
  EXPECT_EQ(to_string(opened->jws.payload), dump_json(payment_note()));
}

TEST_F(SignedDocs, SignRefusesAnInvalidPayload) {
  EXPECT_THAT(sign_document(with(payment_note(), "type", "payment.nope"), se1().jws_signer()),
              FailsWithField(Errc::unknown_type, "type"));
  EXPECT_THAT(sign_document(with(payment_note(), "amount", 0), se1().jws_signer()),
              FailsWithField(Errc::amount_zero, "amount"));
  EXPECT_THAT(sign_document(with(payment_note(), "extra", 1), se1().jws_signer()),
              FailsWithField(Errc::unknown_field, "extra"));
}

TEST_F(SignedDocs, SignRefusesWhatNoReceiverWouldOpen) {
  // A signed note nobody can open would leave value in flight forever.
  Json big = minimal(*find_doc_type("cpay.note"));
  big["sealed"] = {{"blob", std::string(60 * 1024, 'x')}};
  EXPECT_THAT(sign_document(big, se1().jws_signer()), FailsWith(Errc::too_large));
  Json deep = minimal(*find_doc_type("cpay.note"));
  Json nest = Json::object();
  for (int i = 0; i < 10; ++i) nest = Json{{"n", nest}};
  deep["sealed"] = nest;
  EXPECT_THAT(sign_document(deep, se1().jws_signer()), FailsWith(Errc::too_deep));
}

TEST_F(SignedDocs, WrongRoleIsRefused) {
  std::string by_bank = must(sign_document(payment_note(), bank().jws_signer()));
  EXPECT_THAT(open_signed_document(by_bank, verifier(), Role::secure_element),
              FailsWithField(Errc::cert_wrong_role, "x5c"));
  // Nor does opening it as a bank's document make it one: an SE signs payment notes.
  EXPECT_THAT(open_signed_document(by_bank, verifier(), Role::custody),
              FailsWithField(Errc::cert_wrong_role, "x5c"));
}

TEST_F(SignedDocs, SelfMadeSeCertificateIsRefused) {
  // Only a certified SE can create e-cash (DESIGN.md §2).
  KeyCert fake_root = make_root("zf test root");
  Party fake(issue(fake_root, Role::secure_element, "se-1", "user-1"));
  std::string jws = must(sign_document(payment_note(), fake.jws_signer()));
  EXPECT_THAT(open_signed_document(jws, verifier(), Role::secure_element),
              FailsWith(Errc::cert_untrusted));
}

TEST_F(SignedDocs, RevokedSignerIsRefused) {
  std::string jws = must(sign_document(payment_note(), se1().jws_signer()));
  CertVerifier v = verifier();
  v.set_crl(test::make_test_crl(root(), {se1().cert()}));
  EXPECT_THAT(open_signed_document(jws, v, Role::secure_element), FailsWith(Errc::cert_revoked));
}

TEST_F(SignedDocs, ExpiredSignerIsRefused) {
  std::string jws = must(sign_document(payment_note(), se1().jws_signer()));
  EXPECT_THAT(
      open_signed_document(jws, verifier_at(root(), kNow + 400 * kDay), Role::secure_element),
      FailsWith(Errc::cert_expired));
}

TEST_F(SignedDocs, TamperedPayloadIsRefused) {
  std::string jws = must(sign_document(payment_note(), se1().jws_signer()));
  auto d1 = jws.find('.'), d2 = jws.rfind('.');
  std::string forged = jws.substr(0, d1 + 1) +
                       b64url_encode(as_bytes(dump_json(with(payment_note(), "amount", 999999)))) +
                       jws.substr(d2);
  EXPECT_THAT(open_signed_document(forged, verifier(), Role::secure_element),
              FailsWith(Errc::bad_signature));
}

TEST_F(SignedDocs, ValidSignatureOverAnInvalidDocumentIsRefused) {
  // jws_sign_compact does not validate: the opener must.
  auto signed_payload = [&](const Json& payload) {
    return must(jws_sign_compact(as_bytes(dump_json(payload)), se1().jws_signer()));
  };
  EXPECT_THAT(open_signed_document(signed_payload(with(payment_note(), "v", 2)), verifier(),
                                   Role::secure_element),
              FailsWithField(Errc::unknown_version, "v"));
  EXPECT_THAT(open_signed_document(signed_payload(with(payment_note(), "type", "x.y")), verifier(),
                                   Role::secure_element),
              FailsWithField(Errc::unknown_type, "type"));
  EXPECT_THAT(open_signed_document(signed_payload(without(payment_note(), "payee")), verifier(),
                                   Role::secure_element),
              FailsWithField(Errc::missing_field, "payee"));
  EXPECT_THAT(open_signed_document(signed_payload(with(payment_note(), "x", 1)), verifier(),
                                   Role::secure_element),
              FailsWithField(Errc::unknown_field, "x"));
  EXPECT_THAT(open_signed_document(signed_payload(with(payment_note(), "amount", -5)), verifier(),
                                   Role::secure_element),
              FailsWithField(Errc::amount_negative, "amount"));
  std::string not_json =
      must(jws_sign_compact(as_bytes(std::string("not json")), se1().jws_signer()));
  EXPECT_THAT(open_signed_document(not_json, verifier(), Role::secure_element),
              FailsWith(Errc::malformed_json));
  // Trailing data hidden behind a NUL byte.
  std::string nul = dump_json(payment_note()) + std::string(1, '\0') + R"({"amount":1})";
  std::string nul_jws = must(jws_sign_compact(as_bytes(nul), se1().jws_signer()));
  EXPECT_THAT(open_signed_document(nul_jws, verifier(), Role::secure_element),
              FailsWith(Errc::malformed_json));
  std::string dup = R"({"amount":1,)" + dump_json(payment_note()).substr(1);
  std::string dup_jws = must(jws_sign_compact(as_bytes(dup), se1().jws_signer()));
  EXPECT_THAT(open_signed_document(dup_jws, verifier(), Role::secure_element),
              FailsWithField(Errc::duplicate_key, "amount"));
}

TEST_F(SignedDocs, OversizeDocumentIsRefused) {
  Json big = minimal(*find_doc_type("cpay.note"));
  big["sealed"] = {{"blob", std::string(kMaxJoseBytes, 'x')}};
  std::string jws = must(jws_sign_compact(as_bytes(dump_json(big)), se1().jws_signer()));
  ASSERT_GT(jws.size(), kMaxJoseBytes);
  EXPECT_THAT(open_signed_document(jws, verifier(), Role::secure_element),
              FailsWith(Errc::too_large));
}

TEST_F(SignedDocs, AlgNoneIsRefused) {
  std::string jws = b64url_encode(as_bytes(std::string(R"({"alg":"none"})"))) + "." +
                    b64url_encode(as_bytes(dump_json(payment_note()))) + ".";
  EXPECT_THAT(open_signed_document(jws, verifier(), Role::secure_element),
              FailsWithField(Errc::alg_none, "alg"));
}

TEST_F(SignedDocs, GarbageIsRefused) {
  EXPECT_THAT(open_signed_document("", verifier(), Role::secure_element),
              FailsWith(Errc::malformed_json));
  EXPECT_THAT(open_signed_document("a.b.c", verifier(), Role::secure_element),
              FailsWithField(Errc::bad_base64url, "protected"));
  EXPECT_THAT(open_signed_document("a.b", verifier(), Role::secure_element),
              FailsWith(Errc::malformed_json));
  EXPECT_THAT(open_signed_document("{}", verifier(), Role::secure_element),
              FailsWith(Errc::missing_field));
}

TEST_F(SignedDocs, DocumentSignedByTwoParties) {
  Json hold = minimal(*find_doc_type("hold.request"));
  hold["issuer"] = "se-1";  // bound to the first signer
  hold["id"] = "se-1:" + std::to_string(hold.at("seq").get<std::int64_t>());
  Json general = must(jws_sign_general(as_bytes(dump_json(hold)),
                                       {se1().jws_signer(), se2().jws_signer()}, "zf+jws"));
  auto opened = open_signed_document(dump_json(general), verifier(), Role::secure_element);
  ASSERT_THAT(opened, IsOk());
  ASSERT_EQ(opened->signers.size(), 2u);
  EXPECT_EQ(opened->signers[0].subject_cn(), "se-1");
  EXPECT_EQ(opened->signers[1].subject_cn(), "se-2");
  EXPECT_EQ(opened->doc.type(), "hold.request");
  // A bank co-signature does not pass for an SE one.
  Json mixed =
      must(jws_sign_general(as_bytes(dump_json(hold)), {se1().jws_signer(), bank().jws_signer()}));
  EXPECT_THAT(open_signed_document(dump_json(mixed), verifier(), Role::secure_element),
              FailsWith(Errc::cert_wrong_role));
}

}  // namespace
}  // namespace zf
