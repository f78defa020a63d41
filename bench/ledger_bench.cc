// Escrow release verification (issue 13): what an authority checks before it votes for a
// release (the beacon's aggregate and the audit answer against the escrow's terms), what it
// checks before it applies the release's certificate (a quorum's aggregate), and both (what
// an auditor replays), side by side with one plain BLS verification, the unit of the
// machine's bound, measured in the same run. Results are in docs/BENCHMARKS.md.
//
// The shard: 64 MiB in 4 KiB leaves (16,384 leaves: a 14-hash path per challenge); the
// committee: four authorities, quorums of three.
#include <benchmark/benchmark.h>

#include <string>
#include <vector>

#include "dfrp/crypto/bls.h"
#include "dfrp/crypto/merkle.h"
#include "dfrp/ledger/escrow.h"
#include "dfrp/ledger/messages.h"
#include "dfrp/storage/proof.h"

namespace {

namespace bls = dfrp::crypto::bls;
namespace ledger = dfrp::ledger;
using dfrp::core::AsBytes;

bls::SecretKey KeyOf(int i) {
  std::string ikm(32, static_cast<char>(i + 1));
  ikm[0] = 'b';
  return *bls::SecretKey::FromIkm(AsBytes(ikm));
}

struct Release {
  dfrp::crypto::Hash net{};
  std::vector<bls::SecretKey> keys;
  ledger::Committee committee;
  ledger::StorageTerms terms;
  ledger::PeriodWindow window;
  ledger::Settlement settlement;
  ledger::SettleCertificate certificate;
  size_t proof_bytes = 0;

  explicit Release(uint32_t challenges) {
    net.fill(0x11);
    std::vector<std::pair<std::string, std::string>> members;
    for (int a = 0; a < 4; ++a) {
      keys.push_back(KeyOf(100 + a));
      members.emplace_back(keys.back().GetPublicKey().ToHex(),
                           keys.back().ProvePossession().ToHex());
    }
    committee = *ledger::Committee::Make(0, members);
    constexpr uint32_t kLeaf = 4096;
    std::string data(64u << 20, '\0');
    for (size_t i = 0; i < data.size(); i += 8) data[i] = static_cast<char>(i * 2654435761u >> 24);
    std::vector<dfrp::crypto::Hash> leaves(dfrp::crypto::LeafCount(data.size(), kLeaf));
    dfrp::crypto::HashLeaves(data, kLeaf, leaves);
    terms.shard_id.bytes.fill(9);
    terms.root = dfrp::crypto::RootFromLeafHashes(leaves);
    terms.size = data.size();
    terms.leaf_size = kLeaf;
    terms.periods = 10;
    terms.period_seconds = 3600;
    terms.start_unix = 1'800'000'000;
    terms.challenges = challenges;
    const dfrp::crypto::Hash id = ledger::EscrowId(committee.key(0).key().bytes(), 0);
    dfrp::economy::StoragePolicy sp;
    window = ledger::WindowOf(id, terms, 0, sp);
    std::vector<ledger::Vote> beacon_votes;
    for (uint32_t a = 0; a < 3; ++a)
      beacon_votes.push_back(
          ledger::SignVote(ledger::BeaconItemHash(window.slot, 0, net), 0, a, keys[a], net));
    const ledger::Beacon beacon = *ledger::MakeBeacon(window.slot, beacon_votes, committee);
    const std::string seed = ledger::PeriodSeed(ledger::BeaconSeed(beacon, net), id, 0);
    dfrp::storage::ProofSet p;
    p.shard_id = terms.shard_id;
    p.root = terms.root;
    p.tree_size = leaves.size();
    p.leaf_size = kLeaf;
    p.seed = seed;
    for (uint64_t i :
         dfrp::storage::ChallengeIndices(seed, terms.shard_id, leaves.size(), challenges)) {
      auto inc = dfrp::crypto::ProofFromLeafHashes(leaves, i);
      p.proofs.push_back({i, data.substr(i * kLeaf, kLeaf), inc.path});
    }
    const std::string proof = dfrp::storage::EncodeProofBinary(p);
    proof_bytes = proof.size();
    settlement = ledger::MakeSettlement(id, 0, ledger::SettleKind::kRelease, 0, proof,
                                        ledger::EncodeBeacon(beacon), net);
    std::vector<ledger::Vote> votes;
    for (uint32_t a = 0; a < 3; ++a)
      votes.push_back(ledger::SignVote(settlement.hash, 0, a, keys[a], net));
    certificate = *ledger::MakeSettleCertificate(settlement, votes, committee);
  }
};

const Release& Fixture(uint32_t challenges) {
  static Release r4(4), r20(20), r100(100);
  return challenges == 4 ? r4 : challenges == 20 ? r20 : r100;
}

void Report(benchmark::State& state, const Release& r) {
  state.counters["releases_per_s"] =
      benchmark::Counter(static_cast<double>(state.iterations()), benchmark::Counter::kIsRate);
  state.counters["proof_bytes"] = static_cast<double>(r.proof_bytes);
}

// Before a vote: the beacon (one fast-aggregate verification) and the audit answer.
void BM_ReleaseCheck(benchmark::State& state) {
  const Release& r = Fixture(static_cast<uint32_t>(state.range(0)));
  for (auto _ : state) {
    auto s = ledger::CheckRelease(r.settlement, r.terms, r.window, r.committee, r.net);
    if (!s.ok()) state.SkipWithError(s.ToString().c_str());
  }
  Report(state, r);
}

// Before applying: the settlement certificate's quorum (one fast-aggregate verification).
void BM_ReleaseCertificate(benchmark::State& state) {
  const Release& r = Fixture(static_cast<uint32_t>(state.range(0)));
  for (auto _ : state) {
    auto s = ledger::VerifySettleCertificate(r.certificate, r.committee, r.net);
    if (!s.ok()) state.SkipWithError(s.ToString().c_str());
  }
  Report(state, r);
}

// Both, from the wire: what the auditor does for every certified release.
void BM_ReleaseProofAndCertificate(benchmark::State& state) {
  const Release& r = Fixture(static_cast<uint32_t>(state.range(0)));
  const std::string wire = ledger::EncodeSettleCertificate(r.certificate, r.net);
  for (auto _ : state) {
    auto c = ledger::DecodeSettleCertificate(wire, r.net);
    auto s = c ? ledger::VerifySettleCertificate(*c, r.committee, r.net) : c.error();
    if (s.ok()) s = ledger::CheckRelease(c->settlement, r.terms, r.window, r.committee, r.net);
    if (!s.ok()) state.SkipWithError(s.ToString().c_str());
  }
  Report(state, r);
}

// The unit: one BLS signature verified (decoded points, as the ledger has them).
void BM_BlsVerifyOne(benchmark::State& state) {
  const bls::SecretKey k = KeyOf(7);
  const bls::PublicKey pk = k.GetPublicKey();
  const std::string msg(32, 'm');
  const bls::Signature sig = k.Sign(AsBytes(msg));
  for (auto _ : state) benchmark::DoNotOptimize(bls::Verify(pk, AsBytes(msg), sig));
  state.counters["verifies_per_s"] =
      benchmark::Counter(static_cast<double>(state.iterations()), benchmark::Counter::kIsRate);
}

}  // namespace

BENCHMARK(BM_BlsVerifyOne)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_ReleaseCheck)->Arg(4)->Arg(20)->Arg(100)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_ReleaseCertificate)->Arg(20)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_ReleaseProofAndCertificate)->Arg(4)->Arg(20)->Arg(100)->Unit(benchmark::kMicrosecond);

BENCHMARK_MAIN();
