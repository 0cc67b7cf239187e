// The registry's rules in-process: a real CA (Authority), banks and SEs with
// certificates from it, claims signed with their keys, a SQLite registry.db in
// a temp dir. Every answer must verify as a `record` signed by a registry key.
#include "registry/registry.h"

#include <atomic>
#include <barrier>
#include <mutex>
#include <set>
#include <thread>

#include "registry_fixture.h"

namespace zf::test {
namespace {

using registry::RecordStatus;
using registry::Registry;

constexpr const char* kRegistry = "registry-1";

class RegistryTest : public ::testing::Test {
 public:
  // The claim fields a processor makes for a genuine document it acts on.
  registry::ClaimFields fields_for(const std::string& doc_jws, const std::string& processor) {
    CertVerifier v(world.root());
    auto d = open_signed_document(doc_jws, v, Role::secure_element);
    EXPECT_TRUE(d) << d.error().message();
    return registry::claim_fields_for(*d, processor);
  }

 protected:
  void SetUp() override {
    auto a = ca::Authority::open(world.ca_dir);
    ASSERT_TRUE(a) << a.error().message();
    authority = std::move(*a);
    issue = in_process_issuer(*authority);
    reg_dir = (world.tmp.path() / "registry").string();
    registry::InitOptions o{reg_dir, kRegistry, "https://127.0.0.1:1", world.root().pem(), {}};
    ASSERT_TRUE(registry::init_registry(o, [this](const std::string& role, const std::string& csr) {
      return issue(role, csr, std::nullopt, "");
    }));
    ASSERT_NO_FATAL_FAILURE(open_registry());
    bank_a = certified(issue, world, "bank-a");
    bank_b = certified(issue, world, "bank-b");
    se_pay = enrolled_se(issue, in_process_codes(*authority), world, "se-pay", "carol");
  }

  void open_registry() {
    reg.reset();
    auto r = Registry::open(reg_dir);
    ASSERT_TRUE(r) << r.error().message();
    reg = std::move(*r);
    ASSERT_TRUE(reg->install_crl(*authority->crl()));
  }

  // Claims and expects a signed answer; returns it opened.
  registry::RecordView claim_ok(const std::string& jws, RecordStatus expected) {
    auto a = reg->claim(jws);
    EXPECT_TRUE(a) << a.error().message();
    if (!a) return {};
    EXPECT_EQ(a->status, expected);
    auto r = open_ok(a->record_jws, world.root(), kRegistry);
    EXPECT_EQ(r.status, expected);
    EXPECT_TRUE(r.signer.has_role(Role::registry));
    EXPECT_EQ(r.signer.subject_cn(), kRegistry);
    last_record = a->record_jws;
    return r;
  }

  registry::RegistryStats stats() {
    auto s = reg->store().stats();
    EXPECT_TRUE(s);
    return s ? *s : registry::RegistryStats{-1, -1};
  }

  // Expects the claim to be refused with `code` and nothing to be stored.
  void expect_refused(const std::string& jws, Errc code, const std::string& why = {}) {
    auto before = stats();
    auto r = reg->claim(jws);
    ASSERT_FALSE(r) << "expected " << errc_name(code) << " " << why;
    EXPECT_EQ(r.error().code, code) << r.error().message() << " " << why;
    auto after = stats();
    EXPECT_EQ(after.records, before.records) << why;
    EXPECT_EQ(after.alerts, before.alerts) << why;
  }

  CaWorld world;
  std::unique_ptr<ca::Authority> authority;
  IssueFn issue;
  std::string reg_dir;
  std::unique_ptr<Registry> reg;
  Processor bank_a, bank_b, se_pay;
  std::string last_record;
};

TEST_F(RegistryTest, FirstClaimWinsWithASignedRecord) {
  auto f = bank_a.fields("se-x:1", "receipt-1", "se-x", 1, "deposit.note");
  auto r = claim_ok(bank_a.claim(f), RecordStatus::claimed);
  EXPECT_EQ(r.id, std::string(kRegistry) + ":rec:se-x:1");
  EXPECT_EQ(r.registry, kRegistry);
  EXPECT_EQ(r.doc_id, "se-x:1");
  EXPECT_EQ(r.processor, "bank-a");
  EXPECT_EQ(r.result_digest, f.result_digest);
  EXPECT_EQ(r.doc_issuer, "se-x");
  EXPECT_EQ(r.doc_seq, 1);
  EXPECT_EQ(r.doc_type, "deposit.note");
  ASSERT_TRUE(r.claimed_at);
  EXPECT_LE(std::abs(*r.claimed_at - std::time(nullptr)), 5);
  EXPECT_TRUE(r.won_by("bank-a", f.result_digest));
  EXPECT_FALSE(r.won_by("bank-b", f.result_digest));
  EXPECT_TRUE(registry::check_record_answers(r, f));
  // The query answers the stored record, byte for byte.
  auto q = reg->query("se-x:1");
  ASSERT_TRUE(q) << q.error().message();
  EXPECT_EQ(*q, last_record);
  EXPECT_EQ(stats().records, 1);
}

TEST_F(RegistryTest, ALaterClaimIsAlreadyProcessedAndNamesTheFirstProcessor) {
  auto first = bank_a.fields("note-7", "a-result");
  std::string winner = reg->claim(bank_a.claim(first))->record_jws;
  auto r = claim_ok(bank_b.claim("note-7", "b-result"), RecordStatus::already_processed);
  EXPECT_EQ(r.doc_id, "note-7");
  EXPECT_EQ(r.processor, "bank-a");
  EXPECT_EQ(r.result_digest, first.result_digest);
  auto stored = open_ok(winner, world.root(), kRegistry);
  EXPECT_EQ(r.claimed_at, stored.claimed_at);
  EXPECT_NE(r.id, stored.id) << "a fresh answer never reuses the stored record's id";
  EXPECT_FALSE(r.won_by("bank-b", bank_b.fields("note-7", "b-result").result_digest));
  // An SE claiming through its terminal is told the same.
  auto s = claim_ok(se_pay.claim("note-7", "se-result"), RecordStatus::already_processed);
  EXPECT_EQ(s.processor, "bank-a");
  EXPECT_EQ(*reg->query("note-7"), winner);
  EXPECT_EQ(stats().records, 1);
}

TEST_F(RegistryTest, AnIdempotentRetryGetsTheOriginalRecordUnchanged) {
  auto f = bank_a.fields("se-x:9", "r", "se-x", 9, "deposit.note");
  auto first = reg->claim(bank_a.claim(f));
  ASSERT_TRUE(first);
  // A new claim document (new claim id, new iat, new signature) with the same facts.
  auto again = reg->claim(bank_a.claim(f));
  ASSERT_TRUE(again);
  EXPECT_EQ(again->status, RecordStatus::claimed);
  EXPECT_EQ(again->record_jws, first->record_jws);
  // The same claim bytes again, too.
  std::string jws = bank_a.claim(f);
  EXPECT_EQ(reg->claim(jws)->record_jws, first->record_jws);
  EXPECT_EQ(reg->claim(jws)->record_jws, first->record_jws);
  // The same processor with another result for a document no SE signed is not a
  // retry: it already processed the id.
  auto g = bank_a.fields("bank-doc-9", "r", "bank-a", std::nullopt, "topup.receipt");
  claim_ok(bank_a.claim(g), RecordStatus::claimed);
  auto other = claim_ok(
      bank_a.claim(bank_a.fields("bank-doc-9", "another", "bank-a", std::nullopt, "topup.receipt")),
      RecordStatus::already_processed);
  EXPECT_EQ(other.processor, "bank-a");
  EXPECT_EQ(other.result_digest, g.result_digest);
  // For an SE document the digest is the document's: another digest under its
  // id "<se>:<seq>" is another document under a spent seq (see the next test).
  claim_ok(bank_a.claim(bank_a.fields("se-x:9", "another", "se-x", 9, "deposit.note")),
           RecordStatus::seq_reused);
  EXPECT_EQ(stats().records, 2);
}

TEST_F(RegistryTest, AReusedSequenceNumberIsRefusedAndRaisesAnAlertNamingTheSe) {
  // se-pay signed deposit note 41 and bank-a credited it...
  auto first = bank_a.fields("se-pay:41", "dep", "se-pay", 41, "deposit.note");
  claim_ok(bank_a.claim(first), RecordStatus::claimed);
  // ...then a restored copy of se-pay's state signs another deposit with seq 41:
  // the same id "se-pay:41", another document.
  auto clone = bank_b.fields("se-pay:41", "dep2", "se-pay", 41, "deposit.note");
  auto r = claim_ok(bank_b.claim(clone), RecordStatus::seq_reused);
  EXPECT_EQ(r.doc_id, "se-pay:41");
  EXPECT_EQ(r.processor, "bank-b") << "a refusal echoes the refused claim";
  EXPECT_EQ(r.doc_issuer, "se-pay");
  EXPECT_EQ(r.doc_seq, 41);
  EXPECT_FALSE(r.claimed_at);
  EXPECT_FALSE(r.won_by("bank-b", clone.result_digest));
  EXPECT_TRUE(registry::check_record_answers(r, clone));
  EXPECT_EQ(registry::check_record_answers(r, first).error().code, Errc::receipt_mismatch);
  EXPECT_EQ(stats().records, 1);
  // The id's record still names the first document and its processor.
  auto held = open_ok(*reg->query("se-pay:41"), world.root(), kRegistry);
  EXPECT_EQ(held.processor, "bank-a");
  EXPECT_EQ(held.result_digest, first.result_digest);

  auto alerts = reg->alerts();
  ASSERT_TRUE(alerts) << alerts.error().message();
  ASSERT_EQ(alerts->size(), 1u);
  const auto& a = alerts->front();
  EXPECT_EQ(a.se_id, "se-pay");
  EXPECT_EQ(a.seq, 41);
  EXPECT_EQ(a.first_doc_id, "se-pay:41");
  EXPECT_EQ(a.first_processor, "bank-a");
  EXPECT_EQ(a.second_doc_id, "se-pay:41");
  EXPECT_EQ(a.second_processor, "bank-b");
  // The refused claim is kept as evidence and still verifies.
  CertVerifier v(world.root());
  auto evidence = open_signed_document(a.second_claim_jws, v, Role::custody);
  ASSERT_TRUE(evidence) << evidence.error().message();
  EXPECT_EQ(evidence->doc.str("result_digest"), b64url_encode(clone.result_digest));
  // Retrying the refused claim refuses it again without a second alert.
  claim_ok(bank_b.claim(clone), RecordStatus::seq_reused);
  EXPECT_EQ(reg->alerts()->size(), 1u);
  // The first document's own retry is still fine.
  claim_ok(bank_a.claim(first), RecordStatus::claimed);
}

TEST_F(RegistryTest, SecureElementsClaimThroughTheirTerminals) {
  auto f = se_pay.fields("bank-a:r:se-q:3", "credited", "bank-a", std::nullopt, "topup.receipt");
  auto r = claim_ok(se_pay.claim(f), RecordStatus::claimed);
  EXPECT_EQ(r.processor, "se-pay");
  claim_ok(
      bank_a.claim(bank_a.fields("bank-a:r:se-q:3", "x", "bank-a", std::nullopt, "topup.receipt")),
      RecordStatus::already_processed);
  // The SE applet's CLAIM NOTE signs its claims without spending a seq: id
  // "<se>:c:<random>". Two payees handed copies of one note: the second
  // payee's SE is told the first one took it.
  Processor se_two = enrolled_se(issue, in_process_codes(*authority), world, "se-two", "dave");
  Json note_claim = registry::claim_payload(
      se_pay.fields("se-payer:17", "note", "se-payer", 17, "payment.note"), std::time(nullptr));
  note_claim["id"] = "se-pay:c:Zm9yLXRlc3Q";
  claim_ok(se_pay.sign_raw(note_claim), RecordStatus::claimed);
  Json copy_claim = registry::claim_payload(
      se_two.fields("se-payer:17", "note", "se-payer", 17, "payment.note"), std::time(nullptr));
  copy_claim["id"] = "se-two:c:b3RoZXItb25l";
  auto lost = claim_ok(se_two.sign_raw(copy_claim), RecordStatus::already_processed);
  EXPECT_EQ(lost.processor, "se-pay");
}

TEST_F(RegistryTest, QueriesNameUnknownAndMalformedIds) {
  EXPECT_EQ(reg->query("never-seen").error().code, Errc::not_found);
  for (std::string bad : {std::string(), std::string("has space"), std::string("a/b"),
                          std::string("é"), std::string(129, 'a')})
    EXPECT_EQ(reg->query(bad).error().code, Errc::bad_field) << bad;
  EXPECT_EQ(reg->alerts(-1).error().code, Errc::bad_field);
  EXPECT_EQ(reg->alerts(0, 0).error().code, Errc::bad_field);
}

TEST_F(RegistryTest, LongIdsGetAHashedRecordId) {
  std::string id(128, 'n');
  auto r = claim_ok(bank_a.claim(id), RecordStatus::claimed);
  EXPECT_EQ(r.doc_id, id);
  EXPECT_EQ(r.id.rfind(std::string(kRegistry) + ":rec:h", 0), 0u) << r.id;
  EXPECT_LE(r.id.size(), 128u);
  EXPECT_EQ(*reg->query(id), last_record);
}

TEST_F(RegistryTest, BadClaimsGetNamedErrorsAndNothingIsStored) {
  ASSERT_TRUE(reg->claim(bank_a.claim("existing")));
  ASSERT_TRUE(reg->claim(bank_a.claim(bank_a.fields("se-z:1", "r", "se-z", 1, "deposit.note"))));
  ASSERT_TRUE(reg->claim(bank_b.claim(bank_b.fields("se-z:1", "r2", "se-z", 1, "deposit.note"))));
  ASSERT_EQ(stats().records, 2);
  ASSERT_EQ(stats().alerts, 1);

  // Not a signed document at all.
  expect_refused("", Errc::malformed_json, "empty");
  expect_refused("garbage", Errc::malformed_json, "garbage");
  expect_refused("{\"payload\": 1}", Errc::bad_field, "json garbage");
  expect_refused(tamper_payload(bank_a.claim("new-1")), Errc::bad_signature, "tampered");
  // Unsigned: alg none, and an empty signature.
  Json payload = registry::claim_payload(bank_a.fields("new-2"), std::time(nullptr));
  std::string body = b64url_encode(as_bytes(dump_json(payload)));
  expect_refused(b64url_encode(as_bytes(R"({"alg":"none"})")) + "." + body + ".", Errc::alg_none,
                 "alg none");
  std::string signed_claim = bank_a.claim("new-2");
  expect_refused(signed_claim.substr(0, signed_claim.rfind('.') + 1), Errc::bad_signature,
                 "no signature");

  // Signed by a key nobody certified, though its certificate says custody.
  Processor self_made = rogue("bank-a");
  expect_refused(self_made.claim("new-3"), Errc::cert_untrusted, "self-made certificate");
  // Signed by certified keys of roles that do not process documents.
  Processor reg_key;
  reg_key.id = kRegistry;
  reg_key.key = std::make_shared<PrivateKey>(*PrivateKey::load_pem_file(reg_dir + "/registry.key"));
  reg_key.chain = *certificates_from_pem(slurp(reg_dir + "/registry.pem"));
  expect_refused(reg_key.claim("new-4"), Errc::cert_wrong_role, "registry key");
  Processor tls_key;
  tls_key.id = kRegistry;
  tls_key.key = std::make_shared<PrivateKey>(*PrivateKey::load_pem_file(reg_dir + "/tls.key"));
  tls_key.chain = *certificates_from_pem(slurp(reg_dir + "/tls.pem"));
  expect_refused(tls_key.claim("new-4"), Errc::cert_wrong_role, "tls key");
  Processor admin = certified(issue, world, "ops", "ca-admin");
  expect_refused(admin.claim("new-4"), Errc::cert_wrong_role, "ca-admin key");

  // A processor claiming in another's name.
  auto as_b = bank_a.fields("new-5");
  as_b.processor = "bank-b";
  expect_refused(bank_a.claim(as_b), Errc::not_owner, "processor is not the signer");
  Json p = registry::claim_payload(bank_a.fields("new-5"), std::time(nullptr));
  p["issuer"] = "bank-b";
  expect_refused(bank_a.sign_raw(p), Errc::not_owner, "issuer is not the signer");
  // Even for an id someone else holds: the claim is refused before the store is asked.
  auto stolen = bank_b.fields("existing");
  stolen.processor = "bank-a";
  expect_refused(bank_b.claim(stolen), Errc::not_owner, "claiming for the holder");

  // Fields.
  auto with = [&](const char* field, Json value) {
    Json q = registry::claim_payload(bank_a.fields("new-6"), std::time(nullptr));
    if (value.is_null())
      q.erase(field);
    else
      q[field] = std::move(value);
    return bank_a.sign_raw(q);
  };
  expect_refused(with("doc_id", "has space"), Errc::bad_field, "doc_id with a space");
  expect_refused(with("doc_id", std::string(129, 'a')), Errc::bad_field, "doc_id too long");
  expect_refused(with("doc_id", ""), Errc::bad_field, "empty doc_id");
  expect_refused(with("doc_id", 7), Errc::bad_field, "numeric doc_id");
  expect_refused(with("doc_id", nullptr), Errc::missing_field, "no doc_id");
  expect_refused(with("doc_issuer", "a/b"), Errc::bad_field, "doc_issuer");
  expect_refused(bank_a.claim(bank_a.fields("se-z:2x", "r", "se-z", 2, "deposit.note")),
                 Errc::bad_field, "an SE document id that is not <issuer>:<seq>");
  expect_refused(bank_a.claim(bank_a.fields("se-z:3", "r", "se-z", 2, "deposit.note")),
                 Errc::bad_field, "an SE document id with another seq");
  expect_refused(with("doc_seq", -1), Errc::bad_field, "negative seq");
  expect_refused(with("doc_seq", "1"), Errc::bad_field, "string seq");
  expect_refused(with("result_digest", b64url_encode(Bytes(31, 1))), Errc::bad_field,
                 "short digest");
  expect_refused(with("result_digest", "not base64!"), Errc::bad_field, "digest not base64url");
  expect_refused(with("result_digest", nullptr), Errc::missing_field, "no digest");
  expect_refused(with("extra", 1), Errc::unknown_field, "unknown field");
  expect_refused(with("type", "claim.v2"), Errc::unknown_type, "unknown claim type");
  expect_refused(with("type", "topup.request"), Errc::unknown_field, "another type's fields");
  expect_refused(with("v", 2), Errc::unknown_version, "unknown version");
  expect_refused(with("doc_type", "cheque"), Errc::unknown_type, "unknown document type");
  expect_refused(with("doc_type", "record"), Errc::unknown_type, "records are not claimed");
  expect_refused(with("doc_type", "payment.note"), Errc::missing_field, "SE document without seq");
  expect_refused(with("exp", std::time(nullptr) - 1), Errc::expired, "expired claim");
  expect_refused(with("iat", std::time(nullptr) + 3600), Errc::not_yet_valid, "future claim");
  // A valid document of another type is not a claim.
  Json receipt{{"type", "topup.receipt"}, {"v", 1},         {"id", "bank-a:r1"}, {"issuer", "bank-a"},
               {"iat", std::time(nullptr)}, {"request_id", "se-x:1"}, {"se", "se-x"},  {"amount", 100},
               {"currency", "CNY"},      {"account", "a-1"}, {"bank", "bank-a"}};
  expect_refused(bank_a.sign_raw(receipt), Errc::unknown_type, "not a claim");
  // An SE's document signed by a bank is not even a document.
  Json ack{{"type", "payment.ack"}, {"v", 1},          {"id", "ack-1"},
           {"issuer", "bank-a"},    {"seq", 1},        {"iat", std::time(nullptr)},
           {"nonce", new_nonce()},  {"note_id", "n"},        {"payer", "se-x"}, {"payee", "se-y"}};
  expect_refused(bank_a.sign_raw(ack), Errc::cert_wrong_role, "an SE document signed by a bank");

  // A revoked processor.
  ASSERT_TRUE(authority->revoke(ca::Caller::admin, bank_b.cert().serial_hex(), "key stolen"));
  ASSERT_TRUE(reg->install_crl(*authority->crl()));
  expect_refused(bank_b.claim("new-7"), Errc::cert_revoked, "revoked");
  expect_refused(bank_b.claim("existing"), Errc::cert_revoked, "revoked, existing id");

  EXPECT_EQ(stats().records, 2);
  EXPECT_EQ(stats().alerts, 1);
  for (const char* id : {"new-1", "new-2", "new-3", "new-4", "new-5", "new-6", "new-7"})
    EXPECT_EQ(reg->query(id).error().code, Errc::not_found) << id;
  // The unrevoked bank still claims.
  claim_ok(bank_a.claim("new-8"), RecordStatus::claimed);
}

TEST_F(RegistryTest, WithoutACurrentCrlClaimsAreUnavailable) {
  std::string jws = bank_a.claim("d-1");
  // A fresh registry has no CRL until its refresher brings one.
  reg.reset();
  auto r = Registry::open(reg_dir);
  ASSERT_TRUE(r);
  reg = std::move(*r);
  EXPECT_FALSE(reg->has_valid_crl());
  expect_refused(jws, Errc::unavailable, "no CRL");
  // A CRL from another CA, or a stale one, is not accepted.
  ASSERT_TRUE(reg->install_crl(*authority->crl()));
  EXPECT_TRUE(reg->has_valid_crl());
  // Two days later the CRL (next update one day ahead) is stale: claims wait for a new one.
  std::time_t later = std::time(nullptr) + 2 * 86400;
  reg->set_clock([later] { return later; });
  EXPECT_FALSE(reg->has_valid_crl());
  expect_refused(jws, Errc::unavailable, "stale CRL");
  reg->set_clock(nullptr);
  EXPECT_EQ(reg->claim(jws)->status, RecordStatus::claimed);
  // Queries need no CRL: the record is the registry's own.
  EXPECT_TRUE(reg->query("d-1"));
}

TEST_F(RegistryTest, RecordsSurviveReopening) {
  std::string rec = reg->claim(bank_a.claim("kept-1"))->record_jws;
  ASSERT_NO_FATAL_FAILURE(open_registry());
  EXPECT_EQ(*reg->query("kept-1"), rec);
  claim_ok(bank_b.claim("kept-1", "late"), RecordStatus::already_processed);
  // A second init on the same directory is refused.
  registry::InitOptions o{reg_dir, kRegistry, "https://127.0.0.1:1", world.root().pem(), {}};
  auto again = registry::init_registry(o, [this](const std::string& role, const std::string& csr) {
    return issue(role, csr, std::nullopt, "");
  });
  EXPECT_EQ(again.error().code, Errc::conflict);
}

TEST_F(RegistryTest, RecordsAreCheckedByWhoeverOpensThem) {
  std::string rec = reg->claim(bank_a.claim("doc-r"))->record_jws;
  CertVerifier v(world.root());
  EXPECT_EQ(registry::open_record(rec, v, "registry-2").error().code, Errc::cert_untrusted);
  EXPECT_EQ(registry::open_record(tamper_payload(rec), v).error().code, Errc::bad_signature);
  // A claim is not a record, and a bank cannot sign records.
  EXPECT_EQ(registry::open_record(bank_a.claim("doc-r"), v).error().code, Errc::cert_wrong_role);
  CertVerifier other(rogue("x").chain.back());
  EXPECT_EQ(registry::open_record(rec, other).error().code, Errc::cert_untrusted);
}

// Four processors (two banks, two SEs) race on the same document id, 200 times:
// exactly one claim wins each round; every other one is told who won.
TEST_F(RegistryTest, RacingProcessorsWinEachDocumentExactlyOnce) {
  constexpr int kRounds = 200;
  Processor se_2 = enrolled_se(issue, in_process_codes(*authority), world, "se-two", "dave");
  std::vector<Processor*> procs = {&bank_a, &bank_b, &se_pay, &se_2};
  const int n = static_cast<int>(procs.size());
  // Claims are signed up front so that the threads only race on the registry.
  std::vector<std::vector<std::string>> claims(kRounds);
  for (int round = 0; round < kRounds; ++round)
    for (int t = 0; t < n; ++t)
      claims[round].push_back(procs[t]->claim("race-" + std::to_string(round), procs[t]->id));
  std::vector<std::vector<registry::ClaimAnswer>> answers(kRounds,
                                                          std::vector<registry::ClaimAnswer>(n));
  std::barrier sync(n);
  std::vector<std::thread> threads;
  for (int t = 0; t < n; ++t)
    threads.emplace_back([&, t] {
      for (int round = 0; round < kRounds; ++round) {
        sync.arrive_and_wait();
        auto a = reg->claim(claims[round][t]);
        ASSERT_TRUE(a) << a.error().message();
        answers[round][t] = *a;
      }
    });
  for (auto& th : threads) th.join();

  std::map<std::string, int> wins;
  for (int round = 0; round < kRounds; ++round) {
    std::string doc = "race-" + std::to_string(round);
    int winner = -1;
    for (int t = 0; t < n; ++t)
      if (answers[round][t].status == RecordStatus::claimed) {
        EXPECT_EQ(winner, -1) << "two winners in round " << round;
        winner = t;
      }
    ASSERT_NE(winner, -1) << "no winner in round " << round;
    ++wins[procs[winner]->id];
    auto stored = reg->query(doc);
    ASSERT_TRUE(stored);
    EXPECT_EQ(*stored, answers[round][winner].record_jws);
    for (int t = 0; t < n; ++t) {
      auto r = open_ok(answers[round][t].record_jws, world.root(), kRegistry);
      EXPECT_EQ(r.doc_id, doc);
      EXPECT_EQ(r.processor, procs[winner]->id) << "round " << round;
      EXPECT_EQ(r.result_digest, sha256(as_bytes(procs[winner]->id)));
      if (t != winner) {
        EXPECT_EQ(r.status, RecordStatus::already_processed);
      }
    }
  }
  EXPECT_EQ(stats().records, kRounds);
  EXPECT_EQ(stats().alerts, 0);
  // Not a proof of fairness, but a sign the race was real: more than one processor won.
  RecordProperty("distinct_winners", static_cast<int>(wins.size()));
}

}  // namespace
}  // namespace zf::test

namespace zf::test {
namespace {

// Issue 8 (4): records used to be public, ids sequential and digests guessable,
// so anyone could learn who paid whom and how much. A record is read by the
// admin, by whoever presents the document itself, or by a party to it with a
// signed record.query; everyone else is forbidden, record or not.
TEST_F(RegistryTest, RecordsAreReadOnlyByTheClaimantTheIssuerAndWhoeverHoldsTheDocument) {
  Processor payee = enrolled_se(issue, in_process_codes(*authority), world, "se-payee", "dave");
  Processor stranger = enrolled_se(issue, in_process_codes(*authority), world, "se-eve", "eve");
  std::string note = se_pay.note(7);
  claim_ok(payee.claim(fields_for(note, "se-payee")), RecordStatus::claimed);
  std::string stored = *reg->query("se-pay:7");

  EXPECT_EQ(*reg->read_record("se-pay:7", note, ""), stored) << "the holder of the note";
  EXPECT_EQ(*reg->read_record("se-pay:7", "", payee.record_query("se-pay:7")), stored) << "the claimant";
  EXPECT_EQ(*reg->read_record("se-pay:7", "", se_pay.record_query("se-pay:7")), stored) << "the issuer";

  auto refused = [&](Errc code, const Result<std::string>& r, const char* what) {
    ASSERT_FALSE(r) << what;
    EXPECT_EQ(r.error().code, code) << what << ": " << r.error().message();
  };
  refused(Errc::forbidden, reg->read_record("se-pay:7", "", stranger.record_query("se-pay:7")), "a stranger");
  refused(Errc::forbidden, reg->read_record("se-pay:8", "", stranger.record_query("se-pay:8")),
          "a stranger learns nothing of an unclaimed id either");
  refused(Errc::not_found, reg->read_record("se-pay:8", "", se_pay.record_query("se-pay:8")),
          "the issuer learns its id is unclaimed");
  refused(Errc::misaddressed, reg->read_record("se-pay:7", "", payee.record_query("se-pay:6")), "another id");
  refused(Errc::bad_field, reg->read_record("se-pay:7", "", payee.record_query("se-pay:7", 3600)),
          "a request valid for an hour");
  refused(Errc::unknown_type, reg->read_record("se-pay:7", "", payee.claim("se-pay:7")), "a claim is no request");
  refused(Errc::bad_request, reg->read_record("se-pay:7", "", ""), "nothing presented");
  refused(Errc::bad_request, reg->read_record("se-pay:7", note, payee.record_query("se-pay:7")), "both");
  // Another document under the same id: the presenter learns only that.
  std::string clone = se_pay.note(7, 5000);
  refused(Errc::doc_id_reused, reg->read_record("se-pay:7", clone, ""), "a second note under the seq");
  refused(Errc::misaddressed, reg->read_record("se-pay:7", se_pay.note(9), ""), "a note with another id");
  // A made-up note: the registry checks it is an SE's signed document.
  std::string tampered = note;
  std::size_t sig = tampered.size() - 10;
  tampered[sig] = tampered[sig] == 'A' ? 'B' : 'A';
  refused(Errc::bad_signature, reg->read_record("se-pay:7", tampered, ""), "a tampered note");
  Processor fake = rogue("se-pay");
  refused(Errc::cert_untrusted, reg->read_record("se-pay:7", "", fake.record_query("se-pay:7")), "a rogue key");
}

// The record carries the SHA-256 of the note's payload. Knowing everything a
// record shows and guessing the rest (amount, payee, time) no longer finds it:
// the payload holds 128 random bits.
TEST_F(RegistryTest, ARecordsDigestCannotBeFoundFromWhatTheRecordShows) {
  Processor bob = enrolled_se(issue, in_process_codes(*authority), world, "se-bob", "bob");
  std::string note = se_pay.note(3, 4200, "se-bob");
  claim_ok(bob.claim(fields_for(note, "se-bob")), RecordStatus::claimed);
  auto rec = open_ok(*reg->query("se-pay:3"), world.root(), kRegistry);
  auto jws = jws_parse(note);
  ASSERT_TRUE(jws);
  auto parsed = parse_json_strict(to_string(jws->payload));
  ASSERT_TRUE(parsed);
  Json payload = *parsed;
  // The attacker's best guess: every field right, including the amount and payee.
  Json guess = payload;
  guess.erase("nonce");
  EXPECT_NE(sha256(as_bytes(dump_json(guess))), rec.result_digest);
  guess["nonce"] = new_nonce();
  EXPECT_NE(sha256(as_bytes(dump_json(guess))), rec.result_digest);
  // Only the real nonce gives it (the test can fail: this is what a brute force found before).
  guess["nonce"] = payload.at("nonce");
  EXPECT_EQ(sha256(as_bytes(dump_json(guess))), rec.result_digest);
}

// Issue 9: a payment note expires. Before its expiry only the payee may claim
// it; from the expiry on only its payer may, to take the value back (a
// reclaim). The first claim still wins, and neither can follow the other.
class NoteExpiryTest : public RegistryTest {
 protected:
  void SetUp() override {
    RegistryTest::SetUp();
    payee = enrolled_se(issue, in_process_codes(*authority), world, "se-payee", "dave");
    exp = static_cast<std::int64_t>(std::time(nullptr)) + 3600;
  }
  void at(std::int64_t t) {
    reg->set_clock([t] { return static_cast<std::time_t>(t); });
  }
  Processor payee;
  std::int64_t exp = 0;
};

TEST_F(NoteExpiryTest, AReclaimBeforeTheExpiryIsRefusedAndOneAfterItIsRecorded) {
  std::string note = se_pay.note(4, 700, "se-payee", exp);
  auto reclaim = fields_for(note, "se-pay");
  ASSERT_EQ(reclaim.doc_exp, exp) << "the claim carries the note's expiry";
  at(exp - 1);
  expect_refused(se_pay.claim(reclaim), Errc::not_expired, "a second before the expiry");
  at(exp);
  auto r = claim_ok(se_pay.claim(reclaim), RecordStatus::claimed);
  EXPECT_EQ(r.processor, "se-pay");
  EXPECT_EQ(r.doc_exp, exp);
  EXPECT_EQ(r.claimed_at, exp);
  // Repeating it (a crash before the SE credited) gets the same record.
  std::string first = last_record;
  claim_ok(se_pay.claim(reclaim), RecordStatus::claimed);
  EXPECT_EQ(last_record, first);
  // The payee is now too late, and is told who holds the note.
  at(exp + 10);
  auto late = claim_ok(payee.claim(fields_for(note, "se-payee")), RecordStatus::already_processed);
  EXPECT_EQ(late.processor, "se-pay");
}

TEST_F(NoteExpiryTest, APayeeClaimsOnlyBeforeTheExpiryAndThenNoReclaimIsPossible) {
  std::string late_note = se_pay.note(5, 700, "se-payee", exp);
  at(exp);
  expect_refused(payee.claim(fields_for(late_note, "se-payee")), Errc::expired, "at the expiry");

  std::string note = se_pay.note(6, 900, "se-payee", exp);
  at(exp - 1);
  auto won = claim_ok(payee.claim(fields_for(note, "se-payee")), RecordStatus::claimed);
  EXPECT_EQ(won.claimed_at, exp - 1);
  std::string stored = last_record;
  at(exp + 100);
  auto reclaim = claim_ok(se_pay.claim(fields_for(note, "se-pay")), RecordStatus::already_processed);
  EXPECT_EQ(reclaim.processor, "se-payee") << "the payer learns the payee received it";
  // A payee that claimed in time and crashed gets its record after the expiry.
  claim_ok(payee.claim(fields_for(note, "se-payee")), RecordStatus::claimed);
  EXPECT_EQ(last_record, stored);
}

TEST_F(NoteExpiryTest, OnlyAPaymentNoteWithItsExpiryCanBeReclaimedByItsIssuer) {
  at(exp + 1);
  // No expiry named: nothing says the payee's time is over.
  auto no_exp = fields_for(se_pay.note(7, 100, "se-payee"), "se-pay");
  expect_refused(se_pay.claim(no_exp), Errc::missing_field, "a reclaim without doc_exp");
  // An SE does not process its own deposit note (or any other SE document).
  auto own = se_pay.fields("se-pay:8", "x", "se-pay", 8, "deposit.note");
  own.doc_exp = exp;
  expect_refused(se_pay.claim(own), Errc::not_owner, "an SE claiming its own deposit");
  // A bank's claim of an SE document is untouched by the rule.
  claim_ok(bank_a.claim(bank_a.fields("se-pay:9", "r", "se-pay", 9, "deposit.note")), RecordStatus::claimed);
}

// Payee and payer racing across the expiry, from several threads: at most one
// ever holds the note, and once the expiry has passed the answer never changes.
TEST_F(NoteExpiryTest, APayeeAndThePayerRacingGetOneWinner) {
  for (int round = 0; round < 20; ++round) {
    std::string note = se_pay.note(100 + round, 100, "se-payee", exp);
    std::string payee_claim = payee.claim(fields_for(note, "se-payee"));
    std::string payer_claim = se_pay.claim(fields_for(note, "se-pay"));
    // The registry's clock passes the expiry somewhere in the middle of the race.
    std::atomic<int> calls{0};
    const int flip = 2 + round % 9;
    reg->set_clock([&calls, flip, e = exp] { return static_cast<std::time_t>(calls++ < flip ? e - 1 : e); });
    std::mutex mu;
    std::set<std::string> winners;
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t)
      threads.emplace_back([&, t] {
        auto r = reg->claim(t % 2 ? payee_claim : payer_claim);
        if (!r || r->status != RecordStatus::claimed) return;
        std::lock_guard lock(mu);
        winners.insert(open_ok(r->record_jws, world.root(), kRegistry).processor);
      });
    for (auto& t : threads) t.join();
    EXPECT_LE(winners.size(), 1u) << "round " << round;
    // After the expiry the payer can always settle it: its reclaim, or the payee's claim.
    at(exp + 5);
    auto payer = reg->claim(payer_claim);
    ASSERT_TRUE(payer) << payer.error().message();
    auto holder = open_ok(payer->record_jws, world.root(), kRegistry).processor;
    if (!winners.empty()) {
      EXPECT_EQ(holder, *winners.begin()) << "round " << round;
    }
    auto again = reg->claim(payee_claim);
    ASSERT_TRUE(again) << again.error().message();
    EXPECT_EQ(open_ok(again->record_jws, world.root(), kRegistry).processor, holder) << "round " << round;
    EXPECT_EQ(again->status == RecordStatus::claimed, holder == "se-payee");
  }
}

// Two copies of one SE signed two notes under one seq. The first reclaim
// holds the id; the second copy's reclaim (or a payee's claim of the second
// note, before or after its expiry) is a second document under a spent
// (SE, seq): seq_reused with an alert, never a second record.
TEST_F(NoteExpiryTest, AReclaimOfASecondNoteUnderOneSeqRaisesTheCloneAlert) {
  std::string first = se_pay.note(30, 700, "se-payee", exp);
  std::string second = se_pay.note(30, 900, "se-payee", exp);
  at(exp);
  claim_ok(se_pay.claim(fields_for(first, "se-pay")), RecordStatus::claimed);
  auto r = claim_ok(se_pay.claim(fields_for(second, "se-pay")), RecordStatus::seq_reused);
  EXPECT_EQ(r.processor, "se-pay");
  EXPECT_EQ(stats().alerts, 1);
  // A late payee claim of the second note is judged as a reuse, not let through by the expiry rule.
  claim_ok(payee.claim(fields_for(second, "se-payee")), RecordStatus::seq_reused);
  EXPECT_EQ(stats().records, 1);
  // The first note's payee, too late, learns who holds it.
  auto late = claim_ok(payee.claim(fields_for(first, "se-payee")), RecordStatus::already_processed);
  EXPECT_EQ(late.processor, "se-pay");
}

// A payee's claim signed before the expiry and held back until after it is
// judged at the registry's time of recording, not at the claim's iat.
TEST_F(NoteExpiryTest, AClaimSignedInTimeButSentLateIsRefused) {
  std::string note = se_pay.note(31, 700, "se-payee", exp);
  KeySigner s(*payee.key);
  std::string early =
      *registry::sign_claim(fields_for(note, "se-payee"), JwsSigner{&s, payee.chain}, exp - 60);
  at(exp);
  expect_refused(early, Errc::expired, "signed a minute before the expiry, sent at it");
  // And the payer's reclaim is judged the same way: signed after, sent before, refused.
  KeySigner p(*se_pay.key);
  std::string reclaim =
      *registry::sign_claim(fields_for(note, "se-pay"), JwsSigner{&p, se_pay.chain}, exp);
  at(exp - 1);
  expect_refused(reclaim, Errc::not_expired, "sent a second before the expiry");
  at(exp);
  claim_ok(reclaim, RecordStatus::claimed);
}

// No bank processes a payment note (its payee SE does), yet a custody key's
// claim for one was recorded, with any digest and with or without doc_exp,
// which the registry cannot check without the note: it blocked the payee
// before the expiry and the payer's reclaim after it, for ever. Now refused
// (not_owner), nothing stored.
TEST_F(NoteExpiryTest, ABankCannotClaimAPaymentNote) {
  std::string note = se_pay.note(32, 700, "se-payee", exp);
  at(exp - 10);
  auto as_bank = fields_for(note, "bank-a");
  expect_refused(bank_a.claim(as_bank), Errc::not_owner, "with the note's own fields");
  as_bank.doc_exp.reset();
  as_bank.result_digest = sha256(as_bytes("anything"));
  at(exp + 10);
  expect_refused(bank_a.claim(as_bank), Errc::not_owner, "after the expiry, without doc_exp");
  claim_ok(se_pay.claim(fields_for(note, "se-pay")), RecordStatus::claimed);
}

}  // namespace
}  // namespace zf::test
