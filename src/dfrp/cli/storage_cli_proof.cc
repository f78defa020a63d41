// dfrp-storage prove-shard, audit and verify-proof: proofs of storage on the command line.
// The formats are in docs/FORMAT.md ("Proofs"); the work is in storage/proof.h and
// storage/shard_reader.h.
#include <fmt/format.h>
#include <unistd.h>

#include <cstdio>
#include <memory>
#include <nlohmann/json.hpp>

#include "dfrp/cli/storage_cli_extra.h"
#include "dfrp/cli/storage_cli_internal.h"
#include "dfrp/core/bytes.h"
#include "dfrp/core/file_system.h"
#include "dfrp/storage/proof.h"

namespace dfrp::cli {

using core::Err;
using core::Result;
using core::Status;
using nlohmann::json;
using storage::ProofSet;

namespace {

std::string Hex(const crypto::Hash& h) { return core::ToHex(h); }

Result<std::string> SeedArg(const std::string& text) {
  auto seed = core::FromHex(text);
  if (!seed || seed->empty() || seed->size() > storage::kMaxSeedBytes)
    return Err(Status::InvalidArgument(
        fmt::format("--seed '{}' is not 1 to {} bytes of hex: give an even number of hex digits, "
                    "such as --seed 5eed0123",
                    text.substr(0, 80), storage::kMaxSeedBytes)));
  return *seed;
}

Result<crypto::Hash> RootArg(const std::string& text) {
  auto raw = core::FromHex(text);
  if (!raw || raw->size() != 32)
    return Err(Status::InvalidArgument(
        fmt::format("--root must be 64 hex digits (a SHA-256 Merkle root, as write-shard and "
                    "stat-shard print it); got {} characters",
                    text.size())));
  crypto::Hash h;
  std::copy(raw->begin(), raw->end(), reinterpret_cast<char*>(h.data()));
  return h;
}

void PrintHuman(const ProofSet& p) {
  std::printf("shard_id     %s\nmerkle_root  %s\ntree_size    %llu leaves of %u bytes\n",
              p.shard_id.ToString().c_str(), Hex(p.root).c_str(),
              static_cast<unsigned long long>(p.tree_size), p.leaf_size);
  if (p.is_audit())
    std::printf("seed         %s\nchallenges   %zu\n", core::ToHex(*p.seed).c_str(),
                p.proofs.size());
  for (const auto& lp : p.proofs) {
    std::printf("leaf_index   %llu\nleaf         %s\n",
                static_cast<unsigned long long>(lp.leaf_index), core::ToHex(lp.leaf).c_str());
    for (size_t i = 0; i < lp.path.size(); ++i)
      std::printf("%s %s\n", i == 0 ? "path        " : "            ", Hex(lp.path[i]).c_str());
  }
}

// Prints the proof (JSON with --json) or, with -o FILE, writes its binary form there.
Status Emit(const Context& ctx, const ProofSet& p, const std::string& out_path) {
  if (!out_path.empty()) {
    DFRP_RETURN_IF_ERROR(core::WriteFileAtomic(ctx.fs, out_path, storage::EncodeProofBinary(p)));
    if (ctx.g.json)
      std::printf("%s\n", json({{"shard_id", p.shard_id.ToString()},
                                {"merkle_root", Hex(p.root)},
                                {"proofs", p.proofs.size()},
                                {"path", out_path}})
                              .dump(2)
                              .c_str());
    else if (!ctx.g.quiet)
      std::printf("wrote %s (%zu proof(s) for shard %s)\n", out_path.c_str(), p.proofs.size(),
                  p.shard_id.ToString().c_str());
    return Status::OK();
  }
  if (ctx.g.json)
    std::printf("%s\n", storage::EncodeProofJson(p).c_str());
  else
    PrintHuman(p);
  return Status::OK();
}

struct ProveArgs {
  std::string id;
  uint64_t leaf = 0;
  std::string out;
};

Status CmdProve(Context& ctx, const ProveArgs& a) {
  DFRP_ASSIGN_OR_RETURN(core::Uuid id, ParseShardId(a.id));
  DFRP_ASSIGN_OR_RETURN(ProofSet p, ctx.service->Prove(id, a.leaf));
  return Emit(ctx, p, a.out);
}

struct AuditArgs {
  std::string id;
  uint32_t challenges = 0;
  std::string seed;
  std::string out;
};

Status CmdAudit(Context& ctx, const AuditArgs& a) {
  DFRP_ASSIGN_OR_RETURN(core::Uuid id, ParseShardId(a.id));
  DFRP_ASSIGN_OR_RETURN(std::string seed, SeedArg(a.seed));
  if (a.challenges == 0 || a.challenges > storage::kMaxAuditChallenges)
    return Status::InvalidArgument(fmt::format("--challenges {} is not between 1 and {}",
                                               a.challenges, storage::kMaxAuditChallenges));
  DFRP_ASSIGN_OR_RETURN(ProofSet p, ctx.service->Audit(id, seed, a.challenges));
  return Emit(ctx, p, a.out);
}

Result<std::string> ReadProofInput(core::FileSystem* fs, const std::string& path) {
  std::string data;
  if (path == "-") {
    auto in = core::SequentialFileFromFd(0, "standard input");
    char buf[65536];
    for (;;) {
      DFRP_ASSIGN_OR_RETURN(size_t n, in->Read(sizeof(buf), buf));
      if (n == 0) break;
      data.append(buf, n);
      if (data.size() > kMaxProofFileBytes) break;
    }
  } else {
    if (!fs->Exists(path))
      return Err(Status::NotFound(fmt::format("proof file {} does not exist", path)));
    DFRP_RETURN_IF_ERROR(fs->ReadFileUpTo(path, kMaxProofFileBytes + 1, &data));
  }
  if (data.size() > kMaxProofFileBytes)
    return Err(Status::Corruption(fmt::format("{} is larger than {} MiB: it is not a dfrp proof",
                                              path, kMaxProofFileBytes >> 20)));
  return data;
}

struct VerifyArgs {
  std::string file;
  std::string root;
  std::string seed;
  std::string shard;
  std::optional<uint64_t> size;
  std::optional<uint32_t> leaf_size;
  std::optional<uint32_t> challenges;
};

Status CmdVerifyProof(const Context& ctx, const VerifyArgs& a) {
  storage::ProofExpectation e;
  DFRP_ASSIGN_OR_RETURN(e.root, RootArg(a.root));
  const crypto::Hash& root = e.root;
  if (!a.seed.empty()) {
    DFRP_ASSIGN_OR_RETURN(e.seed, SeedArg(a.seed));
  }
  if (!a.shard.empty()) {
    DFRP_ASSIGN_OR_RETURN(e.shard_id, ParseShardId(a.shard));
  }
  e.size = a.size;
  e.leaf_size = a.leaf_size;
  e.challenges = a.challenges;
  DFRP_ASSIGN_OR_RETURN(std::string bytes, ReadProofInput(ctx.fs, a.file));
  auto decoded = storage::DecodeProof(bytes);
  if (!decoded) return decoded.error().WithContext(a.file);
  const ProofSet& p = *decoded;
  Status s = storage::VerifyProofAgainst(p, e);
  if (s.code() == Status::Code::kInvalidArgument) return s;
  if (!s.ok()) return s.WithContext(fmt::format("{} (shard {})", a.file, p.shard_id.ToString()));
  const bool position_proven = e.size && e.leaf_size;
  if (ctx.g.json) {
    json leaves = json::array();
    for (const auto& lp : p.proofs) leaves.push_back(lp.leaf_index);
    json j = {{"ok", true},
              {"kind", p.is_audit() ? "audit" : "proof"},
              {"shard_id", p.shard_id.ToString()},
              {"merkle_root", Hex(p.root)},
              {"tree_size", p.tree_size},
              {"leaf_indices", leaves},
              {"position_proven", p.is_audit() || position_proven}};
    if (p.is_audit()) j["seed"] = core::ToHex(*p.seed);
    std::printf("%s\n", j.dump(2).c_str());
  } else if (!ctx.g.quiet) {
    if (p.is_audit())
      std::printf("ok: %zu challenge(s) of seed %s answered for shard %s\n", p.proofs.size(),
                  core::ToHex(*p.seed).c_str(), p.shard_id.ToString().c_str());
    else if (position_proven)
      std::printf("ok: leaf %llu of shard %s verifies against %s\n",
                  static_cast<unsigned long long>(p.proofs[0].leaf_index),
                  p.shard_id.ToString().c_str(), Hex(root).c_str());
    else
      std::printf(
          "ok: leaf %llu of shard %s verifies against %s (its bytes belong to the shard; give "
          "--size and --leaf-size to prove its position too)\n",
          static_cast<unsigned long long>(p.proofs[0].leaf_index), p.shard_id.ToString().c_str(),
          Hex(root).c_str());
  }
  return Status::OK();
}

}  // namespace

Result<std::pair<uint64_t, uint64_t>> ParseRange(const std::string& text) {
  auto bad = [&] {
    return Err(Status::InvalidArgument(
        fmt::format("--range '{}' is not OFFSET:LENGTH in bytes, such as --range 4096:100", text)));
  };
  const size_t colon = text.find(':');
  if (colon == std::string::npos) return bad();
  uint64_t v[2];
  const std::string parts[2] = {text.substr(0, colon), text.substr(colon + 1)};
  for (int i = 0; i < 2; ++i) {
    if (parts[i].empty() || parts[i].size() > 19 ||
        parts[i].find_first_not_of("0123456789") != std::string::npos)
      return bad();
    v[i] = std::stoull(parts[i]);
  }
  return std::make_pair(v[0], v[1]);
}

void AddProofCommands(CLI::App& app, std::vector<ExtraCommand>* out) {
  auto prove = std::make_shared<ProveArgs>();
  auto* p = app.add_subcommand("prove-shard", "print a Merkle proof of one leaf of a shard");
  p->add_option("id", prove->id, "shard id")->required();
  p->add_option("--leaf", prove->leaf, "leaf index (0-based)")->required();
  p->add_option("-o,--output", prove->out, "write the binary proof to this file");
  out->push_back({p, true, [prove](Context& ctx) { return CmdProve(ctx, *prove); }});

  auto audit = std::make_shared<AuditArgs>();
  auto* a = app.add_subcommand(
      "audit", "answer a storage audit: proofs of the leaves that the seed and shard id pick");
  a->add_option("id", audit->id, "shard id")->required();
  a->add_option("--challenges", audit->challenges, "how many leaves to prove (1 to 1024)")
      ->required();
  a->add_option("--seed", audit->seed, "the challenger's seed, hex")->required();
  a->add_option("-o,--output", audit->out, "write the binary answer to this file");
  out->push_back({a, true, [audit](Context& ctx) { return CmdAudit(ctx, *audit); }});

  auto verify = std::make_shared<VerifyArgs>();
  auto* v = app.add_subcommand(
      "verify-proof", "check a proof or audit answer (JSON or binary) against a Merkle root");
  v->add_option("file", verify->file, "proof file, or - for standard input")->required();
  v->add_option("--root", verify->root, "the shard's Merkle root, hex")->required();
  v->add_option("--seed", verify->seed, "for an audit: the seed you issued, hex");
  v->add_option("--shard", verify->shard, "the shard's id (required for an audit)");
  v->add_option("--size", verify->size,
                "the shard's payload bytes, as write-shard reported (required for an audit)");
  v->add_option("--leaf-size", verify->leaf_size,
                "the shard's leaf size, as write-shard reported (required for an audit)");
  v->add_option("--challenges", verify->challenges,
                "how many challenges the audit asked (required for an audit)");
  out->push_back({v, false, [verify](Context& ctx) { return CmdVerifyProof(ctx, *verify); }});
}

}  // namespace dfrp::cli
