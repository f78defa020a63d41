#include "dfrp/storage/proof.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <cstring>
#include <nlohmann/json.hpp>

#include "dfrp/core/bytes.h"
#include "dfrp/crypto/merkle.h"
#include "dfrp/storage/format.h"

namespace dfrp::storage {

using core::Err;
using core::Result;
using core::Status;
using crypto::Hash;
using nlohmann::json;

namespace {

constexpr uint8_t kBinaryVersion = 1;
constexpr uint8_t kKindProof = 1;
constexpr uint8_t kKindAudit = 2;
constexpr std::string_view kJsonProof = "dfrp-proof";
constexpr std::string_view kJsonAudit = "dfrp-audit";

std::string HashHex(const Hash& h) { return core::ToHex(h); }

bool ValidLeafSize(uint64_t n) {
  return n >= kMinLeafSize && n <= kMaxLeafSize && (n & (n - 1)) == 0;
}

Status Bad(std::string_view what) {
  return Status::Corruption(fmt::format("the proof is malformed: {}", what));
}

// Shape checks shared by both decoders, so that a decoded ProofSet is always within limits.
Status CheckLimits(const ProofSet& p) {
  if (!ValidLeafSize(p.leaf_size))
    return Bad(fmt::format("leaf size {} is not a power of two between {} and {}", p.leaf_size,
                           kMinLeafSize, kMaxLeafSize));
  if (p.tree_size == 0) return Bad("tree size 0 (an empty shard has no leaf to prove)");
  if (p.seed && (p.seed->empty() || p.seed->size() > kMaxSeedBytes))
    return Bad(fmt::format("seed of {} bytes (1 to {} allowed)", p.seed->size(), kMaxSeedBytes));
  const size_t max_proofs = p.seed ? kMaxAuditChallenges : 1;
  if (p.proofs.empty() || p.proofs.size() > max_proofs)
    return Bad(fmt::format("{} leaf proofs ({} allowed)", p.proofs.size(), max_proofs));
  for (const LeafProof& lp : p.proofs) {
    if (lp.leaf.empty() || lp.leaf.size() > p.leaf_size)
      return Bad(fmt::format("leaf {} has {} bytes (1 to the leaf size {} allowed)", lp.leaf_index,
                             lp.leaf.size(), p.leaf_size));
    if (lp.path.size() > kMaxProofPath)
      return Bad(fmt::format("path of {} nodes (at most {})", lp.path.size(), kMaxProofPath));
  }
  return Status::OK();
}

}  // namespace

std::vector<uint64_t> ChallengeIndices(std::string_view seed, const core::Uuid& shard_id,
                                       uint64_t tree_size, uint32_t k) {
  std::vector<uint64_t> out;
  if (tree_size == 0) return out;
  out.reserve(k);
  std::string msg(seed);
  msg.append(shard_id.AsBytes());
  const size_t counter_at = msg.size();
  msg.resize(counter_at + 4);
  for (uint32_t j = 0; j < k; ++j) {
    core::EncodeU32(msg.data() + counter_at, j);
    const Hash h = crypto::Sha256Of(msg);
    out.push_back(core::GetU64(reinterpret_cast<const char*>(h.data())) % tree_size);
  }
  return out;
}

size_t ExpectedPathLength(uint64_t index, uint64_t tree_size) {
  size_t n = 0;
  for (uint64_t size = tree_size; size > 1; size = (size + 1) / 2, index >>= 1)
    if ((index ^ 1) < size) ++n;
  return n;
}

namespace {

Status VerifyLeaf(const ProofSet& p, const LeafProof& lp, size_t which) {
  const std::string name = p.is_audit() ? fmt::format("proof {} (leaf {})", which, lp.leaf_index)
                                        : fmt::format("leaf {}", lp.leaf_index);
  if (lp.leaf_index >= p.tree_size)
    return Status::Corruption(fmt::format("{} is beyond the tree of {} leaves", name, p.tree_size));
  const bool last = lp.leaf_index + 1 == p.tree_size;
  if ((!last && lp.leaf.size() != p.leaf_size) || lp.leaf.empty() || lp.leaf.size() > p.leaf_size)
    return Status::Corruption(fmt::format(
        "{} has {} bytes; a {} leaf has {}", name, lp.leaf.size(), last ? "last" : "full",
        last ? fmt::format("1 to {}", p.leaf_size) : std::to_string(p.leaf_size)));
  const size_t want = ExpectedPathLength(lp.leaf_index, p.tree_size);
  if (lp.path.size() != want)
    return Status::Corruption(fmt::format("{} has a path of {} nodes; a tree of {} leaves needs {}",
                                          name, lp.path.size(), p.tree_size, want));
  if (!crypto::VerifyInclusion(crypto::LeafHash(lp.leaf), lp.leaf_index, p.tree_size, lp.path,
                               p.root))
    return Status::Corruption(
        fmt::format("{} does not verify against the root: its bytes or its path are wrong", name));
  return Status::OK();
}

}  // namespace

Status VerifyProofSet(const ProofSet& p, const Hash& root) {
  DFRP_RETURN_IF_ERROR(CheckLimits(p));
  if (p.root != root)
    return Status::Corruption(fmt::format("the proof is for root {}, not for the given root {}",
                                          HashHex(p.root), HashHex(root)));
  if (p.is_audit()) {
    const std::vector<uint64_t> want =
        ChallengeIndices(*p.seed, p.shard_id, p.tree_size, static_cast<uint32_t>(p.proofs.size()));
    for (size_t j = 0; j < want.size(); ++j)
      if (p.proofs[j].leaf_index != want[j])
        return Status::Corruption(
            fmt::format("proof {} answers leaf {} but the seed asks for leaf {}", j,
                        p.proofs[j].leaf_index, want[j]));
  }
  for (size_t j = 0; j < p.proofs.size(); ++j) DFRP_RETURN_IF_ERROR(VerifyLeaf(p, p.proofs[j], j));
  return Status::OK();
}

Status VerifyProofAgainst(const ProofSet& p, const ProofExpectation& e) {
  if (p.is_audit()) {
    std::vector<std::string> missing;
    if (!e.shard_id) missing.push_back("--shard");
    if (!e.size) missing.push_back("--size");
    if (!e.leaf_size) missing.push_back("--leaf-size");
    if (!e.seed) missing.push_back("--seed");
    if (!e.challenges) missing.push_back("--challenges");
    if (!missing.empty())
      return Status::InvalidArgument(fmt::format(
          "an audit answer proves something only against what the verifier knows: give {} "
          "(the shard's id, size and leaf size as write-shard reported them, and the seed and "
          "challenge count of the audit you issued)",
          fmt::join(missing, ", ")));
  }
  if (e.shard_id && p.shard_id != *e.shard_id)
    return Status::Corruption(fmt::format("the proof is for shard {}, not for shard {}",
                                          p.shard_id.ToString(), e.shard_id->ToString()));
  if (e.leaf_size && p.leaf_size != *e.leaf_size)
    return Status::Corruption(fmt::format("the proof uses leaves of {} bytes; the shard's are {}",
                                          p.leaf_size, *e.leaf_size));
  if (e.size) {
    const uint32_t leaf = e.leaf_size ? *e.leaf_size : p.leaf_size;
    const uint64_t leaves = crypto::LeafCount(*e.size, leaf);
    if (p.tree_size != leaves)
      return Status::Corruption(fmt::format(
          "the proof claims a tree of {} leaves; a shard of {} bytes in {}-byte leaves has {}",
          p.tree_size, *e.size, leaf, leaves));
    const uint64_t last_len = *e.size == 0 ? 0 : *e.size - (leaves - 1) * uint64_t{leaf};
    for (size_t j = 0; j < p.proofs.size(); ++j)
      if (p.proofs[j].leaf_index + 1 == leaves && p.proofs[j].leaf.size() != last_len)
        return Status::Corruption(fmt::format("proof {} gives the last leaf {} bytes; it has {}", j,
                                              p.proofs[j].leaf.size(), last_len));
  }
  if (e.seed && (!p.is_audit() || *p.seed != *e.seed))
    return Status::Corruption(
        p.is_audit() ? fmt::format("the audit answers seed {}, not the seed given ({})",
                                   core::ToHex(*p.seed), core::ToHex(*e.seed))
                     : std::string("a single proof answers no seed; --seed needs an audit"));
  if (e.challenges && p.proofs.size() != *e.challenges)
    return Status::Corruption(fmt::format("the answer has {} proof(s); the audit asked for {}",
                                          p.proofs.size(), *e.challenges));
  return VerifyProofSet(p, e.root);
}

// ---- JSON ----

namespace {

json LeafJson(const LeafProof& lp) {
  json path = json::array();
  for (const Hash& h : lp.path) path.push_back(HashHex(h));
  return {{"leaf_index", lp.leaf_index}, {"leaf", core::ToHex(lp.leaf)}, {"path", path}};
}

// Typed field readers over an untrusted object; each names the field when it fails.
Result<uint64_t> UintField(const json& o, const char* key) {
  auto it = o.find(key);
  if (it == o.end() || !it->is_number_unsigned())
    return Err(Bad(fmt::format("\"{}\" is missing or not a non-negative integer", key)));
  return it->get<uint64_t>();
}

Result<std::string> HexField(const json& o, const char* key) {
  auto it = o.find(key);
  if (it == o.end() || !it->is_string())
    return Err(Bad(fmt::format("\"{}\" is missing or not a string", key)));
  auto raw = core::FromHex(it->get<std::string>());
  if (!raw) return Err(Bad(fmt::format("\"{}\" is not hex", key)));
  return *raw;
}

Result<Hash> HashFrom(const json& v, std::string_view what) {
  if (!v.is_string()) return Err(Bad(fmt::format("{} is not a string", what)));
  auto raw = core::FromHex(v.get<std::string>());
  if (!raw || raw->size() != 32)
    return Err(Bad(fmt::format("{} is not 64 hex digits (a SHA-256 hash)", what)));
  Hash h;
  std::memcpy(h.data(), raw->data(), 32);
  return h;
}

Status CheckKeys(const json& o, std::initializer_list<std::string_view> allowed,
                 std::string_view where) {
  for (auto it = o.begin(); it != o.end(); ++it) {
    bool known = false;
    for (std::string_view a : allowed) known = known || it.key() == a;
    if (!known) return Bad(fmt::format("unknown field \"{}\" in {}", it.key(), where));
  }
  return Status::OK();
}

Result<LeafProof> LeafFromJson(const json& o) {
  if (!o.is_object()) return Err(Bad("a leaf proof is not an object"));
  DFRP_RETURN_IF_ERROR(CheckKeys(o, {"leaf_index", "leaf", "path"}, "a leaf proof"));
  LeafProof lp;
  DFRP_ASSIGN_OR_RETURN(lp.leaf_index, UintField(o, "leaf_index"));
  DFRP_ASSIGN_OR_RETURN(lp.leaf, HexField(o, "leaf"));
  auto path = o.find("path");
  if (path == o.end() || !path->is_array()) return Err(Bad("\"path\" is missing or not a list"));
  if (path->size() > kMaxProofPath)
    return Err(Bad(fmt::format("path of {} nodes (at most {})", path->size(), kMaxProofPath)));
  for (size_t i = 0; i < path->size(); ++i) {
    DFRP_ASSIGN_OR_RETURN(Hash h, HashFrom((*path)[i], fmt::format("path node {}", i)));
    lp.path.push_back(h);
  }
  return lp;
}

Result<ProofSet> DecodeJson(std::string_view text) {
  json o = json::parse(text, nullptr, false);
  if (o.is_discarded() || !o.is_object()) return Err(Bad("not a JSON object"));
  auto format = o.find("format");
  const std::string kind =
      format != o.end() && format->is_string() ? format->get<std::string>() : "";
  if (kind != kJsonProof && kind != kJsonAudit)
    return Err(Bad("\"format\" is not \"dfrp-proof\" or \"dfrp-audit\""));
  const bool audit = kind == kJsonAudit;
  ProofSet p;
  DFRP_ASSIGN_OR_RETURN(uint64_t version, UintField(o, "version"));
  if (version != 1) return Err(Bad(fmt::format("version {} (this build reads 1)", version)));
  auto id = o.find("shard_id");
  std::optional<core::Uuid> uuid;
  if (id != o.end() && id->is_string()) uuid = core::Uuid::Parse(id->get<std::string>());
  if (!uuid) return Err(Bad("\"shard_id\" is missing or not a UUID"));
  p.shard_id = *uuid;
  auto root = o.find("merkle_root");
  if (root == o.end()) return Err(Bad("\"merkle_root\" is missing"));
  DFRP_ASSIGN_OR_RETURN(p.root, HashFrom(*root, "\"merkle_root\""));
  DFRP_ASSIGN_OR_RETURN(p.tree_size, UintField(o, "tree_size"));
  DFRP_ASSIGN_OR_RETURN(uint64_t leaf_size, UintField(o, "leaf_size"));
  if (!ValidLeafSize(leaf_size)) return Err(Bad(fmt::format("leaf size {}", leaf_size)));
  p.leaf_size = static_cast<uint32_t>(leaf_size);
  if (!audit) {
    DFRP_RETURN_IF_ERROR(CheckKeys(o,
                                   {"format", "version", "shard_id", "merkle_root", "tree_size",
                                    "leaf_size", "leaf_index", "leaf", "path"},
                                   "a proof"));
    json leaf = {{"leaf_index", o.value("leaf_index", json())},
                 {"leaf", o.value("leaf", json())},
                 {"path", o.value("path", json())}};
    DFRP_ASSIGN_OR_RETURN(LeafProof lp, LeafFromJson(leaf));
    p.proofs.push_back(std::move(lp));
  } else {
    DFRP_RETURN_IF_ERROR(CheckKeys(o,
                                   {"format", "version", "shard_id", "merkle_root", "tree_size",
                                    "leaf_size", "seed", "challenges", "proofs"},
                                   "an audit"));
    DFRP_ASSIGN_OR_RETURN(p.seed, HexField(o, "seed"));
    DFRP_ASSIGN_OR_RETURN(uint64_t k, UintField(o, "challenges"));
    auto proofs = o.find("proofs");
    if (proofs == o.end() || !proofs->is_array())
      return Err(Bad("\"proofs\" is missing or not a list"));
    if (proofs->size() != k || k > kMaxAuditChallenges)
      return Err(Bad(fmt::format("\"challenges\" is {} but {} proofs follow (at most {})", k,
                                 proofs->size(), kMaxAuditChallenges)));
    for (const json& item : *proofs) {
      DFRP_ASSIGN_OR_RETURN(LeafProof lp, LeafFromJson(item));
      p.proofs.push_back(std::move(lp));
    }
  }
  DFRP_RETURN_IF_ERROR(CheckLimits(p));
  return p;
}

}  // namespace

std::string EncodeProofJson(const ProofSet& p, int indent) {
  json o = {{"format", std::string(p.is_audit() ? kJsonAudit : kJsonProof)},
            {"version", 1},
            {"shard_id", p.shard_id.ToString()},
            {"merkle_root", HashHex(p.root)},
            {"tree_size", p.tree_size},
            {"leaf_size", p.leaf_size}};
  if (p.is_audit()) {
    o["seed"] = core::ToHex(*p.seed);
    o["challenges"] = p.proofs.size();
    json arr = json::array();
    for (const LeafProof& lp : p.proofs) arr.push_back(LeafJson(lp));
    o["proofs"] = std::move(arr);
  } else if (!p.proofs.empty()) {
    o.update(LeafJson(p.proofs[0]));
  }
  return o.dump(indent);
}

// ---- binary ----

std::string EncodeProofBinary(const ProofSet& p) {
  std::string out(kProofMagic);
  core::PutU8(&out, kBinaryVersion);
  core::PutU8(&out, p.is_audit() ? kKindAudit : kKindProof);
  core::PutU16(&out, 0);
  core::PutU32(&out, p.leaf_size);
  out.append(p.shard_id.AsBytes());
  out.append(crypto::HashBytes(p.root));
  core::PutU64(&out, p.tree_size);
  const std::string seed = p.seed.value_or("");
  core::PutU16(&out, static_cast<uint16_t>(seed.size()));
  out.append(seed);
  core::PutU16(&out, static_cast<uint16_t>(p.proofs.size()));
  for (const LeafProof& lp : p.proofs) {
    core::PutU64(&out, lp.leaf_index);
    core::PutU32(&out, static_cast<uint32_t>(lp.leaf.size()));
    out.append(lp.leaf);
    core::PutU8(&out, static_cast<uint8_t>(lp.path.size()));
    for (const Hash& h : lp.path) out.append(crypto::HashBytes(h));
  }
  return out;
}

namespace {

Status Truncated(std::string_view field) {
  return Bad(fmt::format("it ends inside the {} (truncated)", field));
}

Result<LeafProof> LeafFromBinary(core::Reader& r, uint32_t leaf_size) {
  LeafProof lp;
  uint32_t len = 0;
  if (!r.U64(&lp.leaf_index) || !r.U32(&len)) return Err(Truncated("leaf header"));
  if (len == 0 || len > leaf_size)
    return Err(Bad(fmt::format("leaf {} has {} bytes (1 to the leaf size {} allowed)",
                               lp.leaf_index, len, leaf_size)));
  std::string_view leaf;
  if (!r.Bytes(len, &leaf)) return Err(Truncated("leaf bytes"));
  lp.leaf.assign(leaf);
  uint8_t n = 0;
  if (!r.U8(&n)) return Err(Truncated("path length"));
  if (n > kMaxProofPath)
    return Err(Bad(fmt::format("path of {} nodes (at most {})", n, kMaxProofPath)));
  lp.path.resize(n);
  for (Hash& h : lp.path) {
    std::string_view node;
    if (!r.Bytes(32, &node)) return Err(Truncated("path"));
    std::memcpy(h.data(), node.data(), 32);
  }
  return lp;
}

Result<ProofSet> DecodeBinary(std::string_view bytes) {
  core::Reader r(bytes.substr(kProofMagic.size()));
  uint8_t version = 0, kind = 0;
  uint16_t reserved = 0, seed_len = 0, count = 0;
  ProofSet p;
  std::string_view id, root, seed;
  if (!r.U8(&version) || !r.U8(&kind) || !r.U16(&reserved) || !r.U32(&p.leaf_size) ||
      !r.Bytes(16, &id) || !r.Bytes(32, &root) || !r.U64(&p.tree_size) || !r.U16(&seed_len))
    return Err(Truncated("header"));
  if (version != kBinaryVersion)
    return Err(Bad(fmt::format("version {} (this build reads {})", version, kBinaryVersion)));
  if ((kind != kKindProof && kind != kKindAudit) || reserved != 0)
    return Err(Bad(fmt::format("kind {} or reserved bits set", kind)));
  if (!ValidLeafSize(p.leaf_size)) return Err(Bad(fmt::format("leaf size {}", p.leaf_size)));
  if ((kind == kKindProof) != (seed_len == 0))
    return Err(Bad("a proof carries no seed and an audit needs one"));
  if (!r.Bytes(seed_len, &seed)) return Err(Truncated("seed"));
  if (kind == kKindAudit) p.seed = std::string(seed);
  p.shard_id = core::Uuid::FromBytes(id);
  std::memcpy(p.root.data(), root.data(), 32);
  if (!r.U16(&count)) return Err(Truncated("proof count"));
  if (count == 0 || count > (kind == kKindAudit ? kMaxAuditChallenges : 1))
    return Err(Bad(fmt::format("{} leaf proofs", count)));
  for (uint16_t i = 0; i < count; ++i) {
    DFRP_ASSIGN_OR_RETURN(LeafProof lp, LeafFromBinary(r, p.leaf_size));
    p.proofs.push_back(std::move(lp));
  }
  if (r.remaining() != 0)
    return Err(Bad(fmt::format("{} bytes follow the last leaf proof (too long)", r.remaining())));
  DFRP_RETURN_IF_ERROR(CheckLimits(p));
  return p;
}

}  // namespace

Result<ProofSet> DecodeProof(std::string_view bytes) {
  if (bytes.starts_with(kProofMagic)) return DecodeBinary(bytes);
  size_t i = 0;
  while (i < bytes.size() && std::strchr(" \t\r\n", bytes[i]) != nullptr && bytes[i] != '\0') ++i;
  if (i < bytes.size() && bytes[i] == '{') return DecodeJson(bytes);
  return Err(Bad("it is neither a binary proof (magic DFRPPROF) nor a JSON one"));
}

}  // namespace dfrp::storage
