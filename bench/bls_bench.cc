// BLS and keystore benchmarks (issue 5). Every dfrp operation has a "Raw" twin that makes the
// same sequence of blst (or libsodium) calls directly, so the wrapper's overhead shows as the
// ratio of the two in one run. Results are in docs/BENCHMARKS.md.
#include <benchmark/benchmark.h>
#include <sodium.h>

#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "blst.h"
#include "dfrp/crypto/bls.h"
#include "dfrp/wallet/keystore.h"
#include "dfrp/wallet/wallet.h"

namespace {

namespace bls = dfrp::crypto::bls;
using dfrp::core::AsBytes;
using dfrp::core::ByteSpan;

constexpr std::string_view kDst = bls::kSigDst;
const byte* U8(std::string_view s) { return reinterpret_cast<const byte*>(s.data()); }
const blst_p1_affine* P1(const bls::PublicKey& k) {
  return reinterpret_cast<const blst_p1_affine*>(k.point().raw.data());
}
const blst_p2_affine* P2(const bls::Signature& s) {
  return reinterpret_cast<const blst_p2_affine*>(s.point().raw.data());
}

// N signers with keys, proofs, one shared message and N distinct messages, all signed.
struct Fixture {
  std::vector<bls::SecretKey> keys;
  std::vector<bls::PublicKey> pks;
  std::vector<bls::ProvenPublicKey> proven;
  std::string same = std::string(32, 's');
  std::vector<std::string> msgs;
  std::vector<bls::Signature> same_sigs, sigs;

  explicit Fixture(size_t n) {
    for (size_t i = 0; i < n; ++i) {
      std::string ikm(32, 'k');
      ikm += std::to_string(i);
      keys.push_back(std::move(*bls::SecretKey::FromIkm(AsBytes(ikm))));
      pks.push_back(keys.back().GetPublicKey());
      proven.push_back(*bls::VerifyPossession(pks.back(), keys.back().ProvePossession()));
      msgs.push_back("message number " + std::to_string(i) + std::string(16, 'm'));
      same_sigs.push_back(keys.back().Sign(AsBytes(same)));
      sigs.push_back(keys.back().Sign(AsBytes(msgs.back())));
    }
  }
};

const Fixture& Get(size_t n) {
  static std::vector<std::unique_ptr<Fixture>> cache;
  for (auto& f : cache) {
    if (f->pks.size() == n) return *f;
  }
  cache.push_back(std::make_unique<Fixture>(n));
  return *cache.back();
}

// ---- the operations, each as a dfrp call and as the same raw blst calls ----

struct Aggs {
  bls::Signature same, distinct;
  std::vector<ByteSpan> spans;
  std::vector<bls::SignedMessage> batch;
};

const Aggs& AggsFor(const Fixture& f) {
  static std::vector<std::pair<const Fixture*, std::unique_ptr<Aggs>>> cache;
  for (auto& [k, v] : cache) {
    if (k == &f) return *v;
  }
  auto a = std::unique_ptr<Aggs>(
      new Aggs{*bls::AggregateSignatures(f.same_sigs), *bls::AggregateSignatures(f.sigs), {}, {}});
  for (size_t i = 0; i < f.pks.size(); ++i) {
    a->spans.push_back(AsBytes(f.msgs[i]));
    a->batch.push_back({&f.pks[i], AsBytes(f.msgs[i]), &f.sigs[i]});
  }
  cache.emplace_back(&f, std::move(a));
  return *cache.back().second;
}

blst_scalar RawKey() {  // the same scalar as Get(1).keys[0]
  blst_scalar sk;
  std::string ikm(32, 'k');
  ikm += "0";
  blst_keygen(&sk, U8(ikm), ikm.size(), nullptr, 0);
  return sk;
}

bool SignDfrp(const Fixture& f) {
  bls::Signature s = f.keys[0].Sign(AsBytes(f.same));
  benchmark::DoNotOptimize(s);
  return true;
}

bool SignRaw(const Fixture& f) {
  static const blst_scalar sk = RawKey();
  blst_p2 h, sig;
  blst_p2_affine aff;
  byte out[96];
  blst_hash_to_g2(&h, U8(f.same), f.same.size(), U8(kDst), kDst.size(), nullptr, 0);
  blst_sign_pk_in_g1(&sig, &h, &sk);
  blst_p2_to_affine(&aff, &sig);
  blst_p2_affine_compress(out, &aff);
  benchmark::DoNotOptimize(out);
  return true;
}

bool VerifyDfrp(const Fixture& f) {
  return bls::Verify(f.pks[0], AsBytes(f.same), f.same_sigs[0]).ok();
}

bool VerifyRaw(const Fixture& f) {
  return blst_core_verify_pk_in_g1(P1(f.pks[0]), P2(f.same_sigs[0]), true, U8(f.same),
                                   f.same.size(), U8(kDst), kDst.size(), nullptr,
                                   0) == BLST_SUCCESS;
}

bool FastAggDfrp(const Fixture& f) {
  return bls::FastAggregateVerify(f.proven, AsBytes(f.same), AggsFor(f).same).ok();
}

bool FastAggRaw(const Fixture& f) {
  blst_p1 acc;
  blst_p1_from_affine(&acc, P1(f.pks[0]));
  for (size_t i = 1; i < f.pks.size(); ++i) blst_p1_add_or_double_affine(&acc, &acc, P1(f.pks[i]));
  blst_p1_affine sum;
  blst_p1_to_affine(&sum, &acc);
  return blst_core_verify_pk_in_g1(&sum, P2(AggsFor(f).same), true, U8(f.same), f.same.size(),
                                   U8(kDst), kDst.size(), nullptr, 0) == BLST_SUCCESS;
}

bool AggDfrp(const Fixture& f) {
  const Aggs& a = AggsFor(f);
  return bls::AggregateVerify(f.pks, a.spans, a.distinct).ok();
}

bool AggRaw(const Fixture& f) {
  thread_local std::vector<uint64_t> buf((blst_pairing_sizeof() + 7) / 8);
  auto* ctx = reinterpret_cast<blst_pairing*>(buf.data());
  blst_pairing_init(ctx, true, U8(kDst), kDst.size());
  for (size_t i = 0; i < f.pks.size(); ++i) {
    blst_pairing_chk_n_aggr_pk_in_g1(ctx, P1(f.pks[i]), false,
                                     i == 0 ? P2(AggsFor(f).distinct) : nullptr, false,
                                     U8(f.msgs[i]), f.msgs[i].size(), nullptr, 0);
  }
  blst_pairing_commit(ctx);
  return blst_pairing_finalverify(ctx, nullptr);
}

template <unsigned kThreads>
bool BatchDfrp(const Fixture& f) {
  return bls::BatchVerify(AggsFor(f).batch, kThreads).ok();
}

// The same random-linear-combination batch, written directly against blst.
template <unsigned kThreads>
bool BatchRaw(const Fixture& f) {
  const size_t n = f.pks.size();
  std::vector<std::vector<uint64_t>> bufs(kThreads,
                                          std::vector<uint64_t>((blst_pairing_sizeof() + 7) / 8));
  std::vector<byte> scalars(8 * n);
  randombytes_buf(scalars.data(), scalars.size());
  auto work = [&](size_t t) {
    auto* ctx = reinterpret_cast<blst_pairing*>(bufs[t].data());
    blst_pairing_init(ctx, true, U8(kDst), kDst.size());
    for (size_t i = n * t / kThreads; i < n * (t + 1) / kThreads; ++i) {
      blst_pairing_chk_n_mul_n_aggr_pk_in_g1(ctx, P1(f.pks[i]), false, P2(f.sigs[i]), false,
                                             &scalars[8 * i], 64, U8(f.msgs[i]), f.msgs[i].size(),
                                             nullptr, 0);
    }
    blst_pairing_commit(ctx);
  };
  std::vector<std::thread> pool;
  for (size_t t = 1; t < kThreads; ++t) pool.emplace_back(work, t);
  work(0);
  for (auto& th : pool) th.join();
  auto* ctx0 = reinterpret_cast<blst_pairing*>(bufs[0].data());
  for (size_t t = 1; t < kThreads; ++t) {
    blst_pairing_merge(ctx0, reinterpret_cast<blst_pairing*>(bufs[t].data()));
  }
  return blst_pairing_finalverify(ctx0, nullptr);
}

// The baseline a batch is measured against: single verifies, one after the other.
bool SinglesDfrp(const Fixture& f) {
  bool ok = true;
  for (size_t i = 0; i < f.pks.size(); ++i) {
    ok &= bls::Verify(f.pks[i], AsBytes(f.msgs[i]), f.sigs[i]).ok();
  }
  return ok;
}

bool SinglesRaw(const Fixture& f) {
  bool ok = true;
  for (size_t i = 0; i < f.pks.size(); ++i) {
    ok &= blst_core_verify_pk_in_g1(P1(f.pks[i]), P2(f.sigs[i]), true, U8(f.msgs[i]),
                                    f.msgs[i].size(), U8(kDst), kDst.size(), nullptr,
                                    0) == BLST_SUCCESS;
  }
  return ok;
}

using Op = bool (*)(const Fixture&);

// One variant alone; range(0) is the number of signers (default 1).
void Run(benchmark::State& state, Op op) {
  const Fixture& f = Get(state.range(0));
  AggsFor(f);
  for (auto _ : state) {
    if (!op(f)) state.SkipWithError("verification failed");
  }
}

// Both variants in alternating order within each iteration, so that load from other processes
// hits both alike; reports each one's mean wall time and the dfrp/raw ratio as counters.
void Paired(benchmark::State& state, Op dfrp, Op raw) {
  using Clock = std::chrono::steady_clock;
  const Fixture& f = Get(state.range(0));
  AggsFor(f);
  Clock::duration td{}, tr{};
  bool flip = false;
  for (auto _ : state) {
    Op first = flip ? raw : dfrp, second = flip ? dfrp : raw;
    auto t0 = Clock::now();
    bool ok = first(f);
    auto t1 = Clock::now();
    ok &= second(f);
    auto t2 = Clock::now();
    (flip ? tr : td) += t1 - t0;
    (flip ? td : tr) += t2 - t1;
    flip = !flip;
    if (!ok) state.SkipWithError("verification failed");
  }
  double n = static_cast<double>(state.iterations());
  state.counters["dfrp_us"] = std::chrono::duration<double, std::micro>(td).count() / n;
  state.counters["raw_us"] = std::chrono::duration<double, std::micro>(tr).count() / n;
  state.counters["dfrp/raw"] = static_cast<double>(td.count()) / static_cast<double>(tr.count());
}

BENCHMARK_CAPTURE(Run, Sign, SignDfrp)->Arg(1)->Unit(benchmark::kMicrosecond)->UseRealTime();
BENCHMARK_CAPTURE(Run, Sign_Raw, SignRaw)->Arg(1)->Unit(benchmark::kMicrosecond)->UseRealTime();
BENCHMARK_CAPTURE(Run, Verify, VerifyDfrp)->Arg(1)->Unit(benchmark::kMicrosecond)->UseRealTime();
BENCHMARK_CAPTURE(Run, Verify_Raw, VerifyRaw)->Arg(1)->Unit(benchmark::kMicrosecond)->UseRealTime();
BENCHMARK_CAPTURE(Run, FastAggregateVerify, FastAggDfrp)
    ->Arg(10)
    ->Arg(100)
    ->Arg(1000)
    ->Unit(benchmark::kMicrosecond)
    ->UseRealTime();
BENCHMARK_CAPTURE(Run, FastAggregateVerify_Raw, FastAggRaw)
    ->Arg(10)
    ->Arg(100)
    ->Arg(1000)
    ->Unit(benchmark::kMicrosecond)
    ->UseRealTime();
BENCHMARK_CAPTURE(Run, AggregateVerify, AggDfrp)
    ->Arg(10)
    ->Arg(100)
    ->Arg(1000)
    ->Unit(benchmark::kMicrosecond)
    ->UseRealTime();
BENCHMARK_CAPTURE(Run, AggregateVerify_Raw, AggRaw)
    ->Arg(10)
    ->Arg(100)
    ->Arg(1000)
    ->Unit(benchmark::kMicrosecond)
    ->UseRealTime();
BENCHMARK_CAPTURE(Run, BatchVerify_2threads, BatchDfrp<2>)
    ->Arg(1000)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();
BENCHMARK_CAPTURE(Run, BatchVerify_2threads_Raw, BatchRaw<2>)
    ->Arg(1000)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();
BENCHMARK_CAPTURE(Run, BatchVerify_1thread, BatchDfrp<1>)
    ->Arg(1000)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();
BENCHMARK_CAPTURE(Run, SingleVerifies, SinglesDfrp)
    ->Arg(1000)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();
BENCHMARK_CAPTURE(Run, SingleVerifies_Raw, SinglesRaw)
    ->Arg(1000)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

// Paired runs: the overhead ratio measured robustly on a shared machine.
BENCHMARK_CAPTURE(Paired, Sign, SignDfrp, SignRaw)
    ->Arg(1)
    ->MinTime(2.0)
    ->Unit(benchmark::kMicrosecond)
    ->UseRealTime();
BENCHMARK_CAPTURE(Paired, Verify, VerifyDfrp, VerifyRaw)
    ->Arg(1)
    ->MinTime(2.0)
    ->Unit(benchmark::kMicrosecond)
    ->UseRealTime();
BENCHMARK_CAPTURE(Paired, FastAggregateVerify, FastAggDfrp, FastAggRaw)
    ->Arg(10)
    ->Arg(100)
    ->Arg(1000)
    ->MinTime(2.0)
    ->Unit(benchmark::kMicrosecond)
    ->UseRealTime();
BENCHMARK_CAPTURE(Paired, AggregateVerify, AggDfrp, AggRaw)
    ->Arg(10)
    ->Arg(100)
    ->Arg(1000)
    ->MinTime(2.0)
    ->Unit(benchmark::kMicrosecond)
    ->UseRealTime();
BENCHMARK_CAPTURE(Paired, BatchVerify_2threads, BatchDfrp<2>, BatchRaw<2>)
    ->Arg(1000)
    ->MinTime(2.0)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();
// Batch (dfrp, 2 threads) against 1000 single dfrp verifies: "dfrp/raw" here is batch/singles.
BENCHMARK_CAPTURE(Paired, BatchVsSingles, BatchDfrp<2>, SinglesDfrp)
    ->Arg(1000)
    ->MinTime(2.0)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

// ---- keystore unlock at the default Argon2id parameters ----

void BM_KeystoreUnlockDefault(benchmark::State& state) {
  const Fixture& f = Get(1);
  auto pub = *dfrp::wallet::MakeWalletPublic(f.keys[0], std::vector<float>(16, 0.25f));
  auto ks = *dfrp::wallet::SealKeystore(f.keys[0], pub, "passphrase", {});
  for (auto _ : state) {
    if (!dfrp::wallet::UnlockKeystore(ks, "passphrase", "bench").has_value()) {
      state.SkipWithError("");
    }
  }
  state.counters["memlimit_MiB"] = static_cast<double>(ks.kdf.memlimit >> 20);
  state.counters["opslimit"] = static_cast<double>(ks.kdf.opslimit);
}
BENCHMARK(BM_KeystoreUnlockDefault)->Unit(benchmark::kMillisecond)->Iterations(8);

// Raw: the Argon2id derivation alone (what dominates an unlock).
void BM_KeystoreUnlockDefault_RawArgon2id(benchmark::State& state) {
  if (sodium_init() < 0) state.SkipWithError("sodium");
  dfrp::wallet::KdfParams kdf;
  unsigned char key[32], salt[crypto_pwhash_SALTBYTES] = {1};
  for (auto _ : state) {
    if (crypto_pwhash(key, sizeof key, "passphrase", 10, salt, kdf.opslimit, kdf.memlimit,
                      crypto_pwhash_ALG_ARGON2ID13) != 0) {
      state.SkipWithError("");
    }
  }
}
BENCHMARK(BM_KeystoreUnlockDefault_RawArgon2id)->Unit(benchmark::kMillisecond)->Iterations(8);

}  // namespace
