// The primitives under every document (src/core/crypto.h, OpenSSL 3 EVP):
// ES256 vs EdDSA sign and verify (DESIGN.md §4 picks ES256 for its verify
// speed), and what a face-to-face session uses (ECDH P-256, HKDF, AES-256-GCM).
#include <benchmark/benchmark.h>

#include "bench_world.h"
#include "core/crypto.h"

namespace zf::bench {
namespace {

// The size of a payment.note's JWS signing input (header with a two-certificate
// x5c, then the payload; jose/OpenSignedDocument's JWS is ~1960 bytes with its
// signature), so hashing costs what it costs there.
constexpr std::size_t kSigningInputBytes = 1880;

void Sign(benchmark::State& state, SigAlg alg) {
  PrivateKey key = must(PrivateKey::generate(alg), "key");
  Bytes message = random_bytes(kSigningInputBytes);
  for (auto _ : state) {
    auto sig = key.sign(message);
    if (failed(state, sig)) break;
    benchmark::DoNotOptimize(sig);
  }
  state.SetItemsProcessed(state.iterations());
}

void Verify(benchmark::State& state, SigAlg alg) {
  PrivateKey key = must(PrivateKey::generate(alg), "key");
  PublicKey pub = key.public_key();
  Bytes message = random_bytes(kSigningInputBytes);
  Bytes sig = must(key.sign(message), "sign");
  for (auto _ : state) {
    auto ok = pub.verify(message, sig);
    if (failed(state, ok)) break;
  }
  state.SetItemsProcessed(state.iterations());
}

void EcdhP256(benchmark::State& state) {
  PrivateKey mine = must(PrivateKey::generate(SigAlg::ES256), "key");
  PublicKey theirs = must(PrivateKey::generate(SigAlg::ES256), "peer key").public_key();
  for (auto _ : state) {
    auto z = ecdh(mine, theirs);
    if (failed(state, z)) break;
    benchmark::DoNotOptimize(z);
  }
  state.SetItemsProcessed(state.iterations());
}

void P256Keygen(benchmark::State& state) {
  for (auto _ : state) {
    auto key = PrivateKey::generate(SigAlg::ES256);
    if (failed(state, key)) break;
    benchmark::DoNotOptimize(key);
  }
  state.SetItemsProcessed(state.iterations());
}

constexpr std::size_t kKiB = 1024;

void Aes256GcmEncrypt1KiB(benchmark::State& state) {
  Bytes key = random_bytes(32), iv = random_bytes(12), aad = random_bytes(32);
  Bytes plaintext = random_bytes(kKiB);
  for (auto _ : state) {
    auto sealed = aes256gcm_encrypt(key, iv, aad, plaintext);
    if (failed(state, sealed)) break;
    benchmark::DoNotOptimize(sealed);
  }
  state.SetItemsProcessed(state.iterations());
  state.SetBytesProcessed(state.iterations() * static_cast<std::int64_t>(kKiB));
}

void Aes256GcmDecrypt1KiB(benchmark::State& state) {
  Bytes key = random_bytes(32), iv = random_bytes(12), aad = random_bytes(32);
  GcmSealed sealed = must(aes256gcm_encrypt(key, iv, aad, random_bytes(kKiB)), "encrypt");
  for (auto _ : state) {
    auto plain = aes256gcm_decrypt(key, iv, aad, sealed.ciphertext, sealed.tag);
    if (failed(state, plain)) break;
    benchmark::DoNotOptimize(plain);
  }
  state.SetItemsProcessed(state.iterations());
  state.SetBytesProcessed(state.iterations() * static_cast<std::int64_t>(kKiB));
}

// A face-to-face session's key schedule: 32-byte ECDH secret -> two 32-byte keys.
void HkdfSha256(benchmark::State& state) {
  Bytes ikm = random_bytes(32), salt = random_bytes(32);
  std::string info = "zf f2f session v1";
  for (auto _ : state) {
    auto okm = hkdf_sha256(ikm, salt, as_bytes(info), 64);
    if (failed(state, okm)) break;
    benchmark::DoNotOptimize(okm);
  }
  state.SetItemsProcessed(state.iterations());
}

BENCHMARK_CAPTURE(Sign, ES256, SigAlg::ES256)->Name("crypto/Es256Sign");
BENCHMARK_CAPTURE(Verify, ES256, SigAlg::ES256)->Name("crypto/Es256Verify");
BENCHMARK_CAPTURE(Sign, EdDSA, SigAlg::EdDSA)->Name("crypto/EdDsaSign");
BENCHMARK_CAPTURE(Verify, EdDSA, SigAlg::EdDSA)->Name("crypto/EdDsaVerify");
BENCHMARK(P256Keygen)->Name("crypto/P256Keygen");
BENCHMARK(EcdhP256)->Name("crypto/EcdhP256");
BENCHMARK(Aes256GcmEncrypt1KiB)->Name("crypto/Aes256GcmEncrypt1KiB");
BENCHMARK(Aes256GcmDecrypt1KiB)->Name("crypto/Aes256GcmDecrypt1KiB");
BENCHMARK(HkdfSha256)->Name("crypto/HkdfSha256");

}  // namespace
}  // namespace zf::bench
