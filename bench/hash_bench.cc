// vellum-bench-hash: cost of Vellum's one SHA-256 hasher (merkle/hasher.h).
//
// The figure that matters is BM_HashChildren: one RFC 9162 interior node,
// SHA256(0x01 || left || right), a 65-byte message (two SHA-256 blocks after
// padding). Issue 2 targets ~0.2 µs per node hash with SHA-NI. The BM_Evp*
// cases hash the same bytes straight through OpenSSL's EVP API (fresh context
// per call, and one reused context), so the wrapper's overhead is visible next
// to `openssl speed -evp sha256 -bytes 64` (docs/BENCHMARKS.md);
// BM_LowLevelSha256Node uses OpenSSL's deprecated SHA256_* functions to show
// what is left once EVP's per-message dispatch is gone.
//
// Run: build-bench/bin/vellum-bench-hash [--benchmark_repetitions=3 ...]
#include <benchmark/benchmark.h>
#include <openssl/evp.h>
#include <openssl/sha.h>

#include <cstdint>
#include <cstdlib>
#include <string>

#include "vellum/journal/format.h"
#include "vellum/merkle/hasher.h"

namespace {

using vellum::merkle::Hash;

Hash SeedHash(std::uint8_t seed) {
  Hash h;
  for (size_t i = 0; i < h.size(); ++i) h[i] = static_cast<std::uint8_t>(seed * 31 + i);
  return h;
}

// One interior node per iteration; the output feeds the next input so the
// compiler cannot hoist or batch the calls.
void BM_HashChildren(benchmark::State& state) {
  Hash left = SeedHash(1);
  const Hash right = SeedHash(2);
  for (auto _ : state) {
    left = vellum::merkle::HashChildren(left, right);
    benchmark::DoNotOptimize(left);
  }
  state.SetItemsProcessed(state.iterations());
  state.SetBytesProcessed(state.iterations() * 64);
}
BENCHMARK(BM_HashChildren);

// RFC 9162 leaf hash SHA256(0x00 || data) of small inputs.
void BM_HashLeaf(benchmark::State& state) {
  const std::string data(static_cast<size_t>(state.range(0)), 'x');
  for (auto _ : state) {
    Hash h = vellum::merkle::HashLeaf(data);
    benchmark::DoNotOptimize(h);
  }
  state.SetItemsProcessed(state.iterations());
  state.SetBytesProcessed(state.iterations() * state.range(0));
}
BENCHMARK(BM_HashLeaf)->Arg(0)->Arg(32)->Arg(64)->Arg(100)->Arg(256)->Arg(1024);

// Plain SHA-256 of 64 bytes through the wrapper (what `openssl speed -bytes 64` measures).
void BM_Sha256Of64(benchmark::State& state) {
  const std::string data(64, 'x');
  for (auto _ : state) {
    Hash h = vellum::merkle::Sha256Of(data);
    benchmark::DoNotOptimize(h);
  }
  state.SetItemsProcessed(state.iterations());
  state.SetBytesProcessed(state.iterations() * 64);
}
BENCHMARK(BM_Sha256Of64);

// What the sequencer does per ~100-byte transaction: the tagged transaction
// hash and its leaf hash in the block's transaction tree.
void BM_TransactionHash100(benchmark::State& state) {
  vellum::journal::Transaction tx;
  tx.operations.push_back({1, std::string(84, 'v')});  // 16 bytes of framing: 100 bytes encoded
  const std::string encoded = vellum::journal::EncodeTransaction(tx);
  if (encoded.size() != 100) state.SkipWithError("encoded transaction is not 100 bytes");
  for (auto _ : state) {
    Hash h = vellum::journal::TransactionHash(encoded);
    benchmark::DoNotOptimize(h);
    h = vellum::merkle::HashLeaf(vellum::merkle::HashView(h));
    benchmark::DoNotOptimize(h);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_TransactionHash100);

// Baselines straight on OpenSSL, same 65-byte node message.
void BM_EvpOneShotNode(benchmark::State& state) {
  const EVP_MD* md = EVP_sha256();
  unsigned char msg[65];
  msg[0] = 0x01;
  for (size_t i = 1; i < sizeof msg; ++i) msg[i] = static_cast<unsigned char>(i);
  unsigned char out[32];
  for (auto _ : state) {
    if (EVP_Digest(msg, sizeof msg, out, nullptr, md, nullptr) != 1) std::abort();
    benchmark::DoNotOptimize(out);
    msg[1] = out[0];
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_EvpOneShotNode);

void BM_EvpReusedCtxNode(benchmark::State& state) {
  EVP_MD* md = EVP_MD_fetch(nullptr, "SHA256", nullptr);
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  unsigned char msg[65];
  msg[0] = 0x01;
  for (size_t i = 1; i < sizeof msg; ++i) msg[i] = static_cast<unsigned char>(i);
  unsigned char out[32];
  unsigned int len = 0;
  for (auto _ : state) {
    if (EVP_DigestInit_ex2(ctx, md, nullptr) != 1 || EVP_DigestUpdate(ctx, msg, sizeof msg) != 1 ||
        EVP_DigestFinal_ex(ctx, out, &len) != 1) {
      std::abort();
    }
    benchmark::DoNotOptimize(out);
    msg[1] = out[0];
  }
  EVP_MD_CTX_free(ctx);
  EVP_MD_free(md);
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_EvpReusedCtxNode);

// OpenSSL's low-level SHA256_* API (deprecated in OpenSSL 3, no provider
// dispatch): how much of the node cost is EVP overhead rather than SHA-256.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
void BM_LowLevelSha256Node(benchmark::State& state) {
  unsigned char msg[65];
  msg[0] = 0x01;
  for (size_t i = 1; i < sizeof msg; ++i) msg[i] = static_cast<unsigned char>(i);
  unsigned char out[32];
  SHA256_CTX ctx;
  for (auto _ : state) {
    SHA256_Init(&ctx);
    SHA256_Update(&ctx, msg, sizeof msg);
    SHA256_Final(out, &ctx);
    benchmark::DoNotOptimize(out);
    msg[1] = out[0];
  }
  state.SetItemsProcessed(state.iterations());
}
#pragma GCC diagnostic pop
BENCHMARK(BM_LowLevelSha256Node);

}  // namespace

BENCHMARK_MAIN();
