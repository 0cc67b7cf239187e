// Documents as every party handles them (src/core/document.h, jose.h): sign a
// payment.note with its chain in x5c, open one (JWS signature, chain to the
// root, role, CRL, strict payload), JWE for two recipients (a controlled
// payment's key for payee and payer), and the strict parsers on their own.
#include <benchmark/benchmark.h>

#include "bench_world.h"
#include "core/document.h"
#include "core/jose.h"

namespace zf::bench {
namespace {

// Revoked serials in the CRL every open checks against: a deployment with lost devices.
constexpr int kRevoked = 1000;

// A root, an SE certified under it (key of `alg`), and a CRL from the root
// revoking `revoked` other serials.
struct Pki {
  explicit Pki(SigAlg alg, int revoked = kRevoked) {
    std::time_t now = std::time(nullptr);
    root_key = std::make_unique<PrivateKey>(must(PrivateKey::generate(), "root key"));
    IssueParams rp;
    rp.common_name = "zf bench root";
    rp.roles = {Role::ca_admin};
    rp.is_ca = true;
    rp.not_before = now - 86400;
    rp.not_after = now + 3650 * 86400;
    rp.serial = new_serial();
    root = std::make_unique<Certificate>(must(make_self_signed_ca(*root_key, rp), "root"));
    se_key = std::make_unique<PrivateKey>(must(PrivateKey::generate(alg), "SE key"));
    IssueParams lp;
    lp.common_name = "se-alice";
    lp.user_id = "alice";
    lp.roles = {Role::secure_element};
    lp.not_before = now - 86400;
    lp.not_after = now + 365 * 86400;
    lp.serial = new_serial();
    Certificate leaf =
        must(issue_certificate(*root, *root_key, se_key->public_key(), lp), "SE certificate");
    // Everything a verifier holds came to it as DER (x5c, a fetched CRL): parse it
    // back, so OpenSSL checks signatures over the received encoding as it does
    // in service rather than re-encoding an object it just built.
    root = std::make_unique<Certificate>(must(Certificate::from_der(root->der()), "root DER"));
    chain = {must(Certificate::from_der(leaf.der()), "leaf DER"), *root};
    CrlParams cp;
    for (int i = 0; i < revoked; ++i) cp.revoked.push_back({new_serial(), now - 3600});
    cp.this_update = now - 3600;
    cp.next_update = now + 86400;
    verifier = std::make_unique<CertVerifier>(*root);
    Crl crl = must(make_crl(*root, *root_key, cp), "CRL");
    verifier->set_crl(must(Crl::from_der(crl.der()), "CRL DER"));
  }

  std::unique_ptr<PrivateKey> root_key;
  std::unique_ptr<Certificate> root;
  std::unique_ptr<PrivateKey> se_key;
  std::vector<Certificate> chain;  // SE leaf, root
  std::unique_ptr<CertVerifier> verifier;
};

Json payment_note_payload(std::int64_t seq) {
  return Json{{"type", "payment.note"},
              {"v", 1},
              {"id", "se-alice:" + std::to_string(seq)},
              {"issuer", "se-alice"},
              {"seq", seq},
              {"iat", now_s()},
              {"nonce", new_nonce()},
              {"amount", 1250},
              {"currency", "CNY"},
              {"payer", "se-alice"},
              {"payee", "se-bob"}};
}

void SignDocument(benchmark::State& state, SigAlg alg) {
  Pki pki(alg);
  KeySigner signer(*pki.se_key);
  JwsSigner jws_signer{&signer, pki.chain};
  Json payload = payment_note_payload(1);
  for (auto _ : state) {
    auto jws = sign_document(payload, jws_signer);
    if (failed(state, jws)) break;
    benchmark::DoNotOptimize(jws);
  }
  state.SetItemsProcessed(state.iterations());
}

void OpenSignedDocument(benchmark::State& state, SigAlg alg) {
  Pki pki(alg);
  std::string jws = sign_payload(*pki.se_key, pki.chain, payment_note_payload(1));
  state.SetLabel(std::to_string(jws.size()) + " B JWS, " + std::to_string(kRevoked) + "-entry CRL");
  for (auto _ : state) {
    auto doc = open_signed_document(jws, *pki.verifier, Role::secure_element);
    if (failed(state, doc)) break;
    benchmark::DoNotOptimize(doc);
  }
  state.SetItemsProcessed(state.iterations());
}

// The sensitive part of a controlled payment (what cpay.note encrypts).
std::string sensitive_json() {
  return dump_json(Json{{"amount", 1250},
                        {"currency", "CNY"},
                        {"payee", "se-bob"},
                        {"memo", "deposit for flat 12B, returned if the keys are not handed over"},
                        {"nonce", b64url_encode(random_bytes(16))}});
}

void JweEncrypt2Recipients(benchmark::State& state) {
  PrivateKey payee = must(PrivateKey::generate(), "payee key");
  PrivateKey payer = must(PrivateKey::generate(), "payer key");
  PublicKey payee_pub = payee.public_key(), payer_pub = payer.public_key();
  std::vector<JweRecipient> recipients{{&payee_pub, "se-bob"}, {&payer_pub, "se-alice"}};
  std::string plaintext = sensitive_json();
  for (auto _ : state) {
    auto jwe = jwe_encrypt(as_bytes(plaintext), recipients);
    if (failed(state, jwe)) break;
    std::string text = dump_json(*jwe);
    benchmark::DoNotOptimize(text);
  }
  state.SetItemsProcessed(state.iterations());
}

// One recipient of two: strict parse of the JWE text, unwrap its key, decrypt.
void JweDecrypt(benchmark::State& state) {
  PrivateKey payee = must(PrivateKey::generate(), "payee key");
  PrivateKey payer = must(PrivateKey::generate(), "payer key");
  PublicKey payee_pub = payee.public_key(), payer_pub = payer.public_key();
  std::string text = dump_json(must(
      jwe_encrypt(as_bytes(sensitive_json()), {{&payee_pub, "se-bob"}, {&payer_pub, "se-alice"}}),
      "encrypt"));
  for (auto _ : state) {
    auto jwe = jwe_parse(text);
    if (failed(state, jwe)) break;
    auto plain = jwe_decrypt(*jwe, payer, "se-alice");
    if (failed(state, plain)) break;
    benchmark::DoNotOptimize(plain);
  }
  state.SetItemsProcessed(state.iterations());
}

// Strict JSON of a payment.note payload (limits, duplicate keys, trailing data).
void ParseStrictJson(benchmark::State& state) {
  std::string text = dump_json(payment_note_payload(42));
  for (auto _ : state) {
    auto j = parse_json_strict(text);
    if (failed(state, j)) break;
    benchmark::DoNotOptimize(j);
  }
  state.SetItemsProcessed(state.iterations());
  state.SetBytesProcessed(state.iterations() * static_cast<std::int64_t>(text.size()));
}

// The same text into a typed, validated Document (per-type fields, amount, ids).
void ParseDocument(benchmark::State& state) {
  std::string text = dump_json(payment_note_payload(42));
  for (auto _ : state) {
    auto doc = Document::parse(text);
    if (failed(state, doc)) break;
    benchmark::DoNotOptimize(doc);
  }
  state.SetItemsProcessed(state.iterations());
}

// A compact JWS with a two-certificate x5c into its parts (no signature checked).
void ParseJws(benchmark::State& state) {
  Pki pki(SigAlg::ES256);
  std::string jws = sign_payload(*pki.se_key, pki.chain, payment_note_payload(42));
  for (auto _ : state) {
    auto parsed = jws_parse(jws);
    if (failed(state, parsed)) break;
    benchmark::DoNotOptimize(parsed);
  }
  state.SetItemsProcessed(state.iterations());
  state.SetBytesProcessed(state.iterations() * static_cast<std::int64_t>(jws.size()));
}

// One certificate from DER: first sight (what an x5c entry costs the first
// time a process sees it), and again (the parsed-certificate cache).
template <bool kCached>
void ParseCertificate(benchmark::State& state) {
  Pki pki(SigAlg::ES256, 0);
  Bytes der = pki.chain.front().der();
  for (auto _ : state) {
    auto cert = kCached ? Certificate::from_der(der) : Certificate::from_der_uncached(der);
    if (failed(state, cert)) break;
    benchmark::DoNotOptimize(cert);
  }
  state.SetItemsProcessed(state.iterations());
}

// The chain check alone on parsed certificates: SE leaf -> root, validity,
// role, and the CRL (its signature and a lookup) with range(0) revoked entries.
void VerifyChain(benchmark::State& state) {
  Pki pki(SigAlg::ES256, static_cast<int>(state.range(0)));
  for (auto _ : state) {
    auto leaf = pki.verifier->verify(pki.chain, Role::secure_element);
    if (failed(state, leaf)) break;
    benchmark::DoNotOptimize(leaf);
  }
  state.SetItemsProcessed(state.iterations());
}

BENCHMARK_CAPTURE(SignDocument, ES256, SigAlg::ES256)->Name("jose/SignDocument/ES256");
BENCHMARK_CAPTURE(SignDocument, EdDSA, SigAlg::EdDSA)->Name("jose/SignDocument/EdDSA");
BENCHMARK_CAPTURE(OpenSignedDocument, ES256, SigAlg::ES256)->Name("jose/OpenSignedDocument/ES256");
BENCHMARK_CAPTURE(OpenSignedDocument, EdDSA, SigAlg::EdDSA)->Name("jose/OpenSignedDocument/EdDSA");
BENCHMARK(JweEncrypt2Recipients)->Name("jose/JweEncrypt2Recipients");
BENCHMARK(JweDecrypt)->Name("jose/JweDecrypt");
BENCHMARK(ParseCertificate<false>)->Name("x509/ParseCertificate");
BENCHMARK(ParseCertificate<true>)->Name("x509/ParseCertificateCached");
BENCHMARK(VerifyChain)->Name("x509/VerifyChain")->ArgName("crl_entries")->Arg(0)->Arg(kRevoked);
BENCHMARK(ParseStrictJson)->Name("json/ParseStrict");
BENCHMARK(ParseDocument)->Name("json/ParseDocument");
BENCHMARK(ParseJws)->Name("json/ParseJws");

}  // namespace
}  // namespace zf::bench
