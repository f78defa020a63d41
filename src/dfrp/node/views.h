// The JSON shapes of storage objects, shared by the CLIs and the daemon's HTTP API, so that
// `dfrp-storage ... --json` prints the same document whether it opened the store itself or
// asked a running dfrpd (docs/API.md).
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "dfrp/core/status.h"
#include "dfrp/core/uuid.h"
#include "dfrp/crypto/sha256.h"
#include "dfrp/storage/migrate.h"
#include "dfrp/storage/store.h"
#include "dfrp/vector/shard_vectors.h"

namespace dfrp::node {

std::string RootHex(const crypto::Hash& h);
// 2026-11-26T12:48:20.123Z
std::string IsoTime(int64_t unix_ms);

// One volume as list-volumes --json and GET /v1/volumes show it.
nlohmann::json VolumeJson(const storage::VolumeInfo& v);
// One written shard as write-shard --json and PUT /v1/shards show it.
nlohmann::json WrittenJson(const storage::WrittenShard& s);
// A shard's metadata as stat-shard --json and GET /v1/shards/{id}/meta show it.
nlohmann::json ShardInfoJson(const core::Uuid& id, const storage::ShardInfo& info);
// One verification result as verify-shard --json and POST /v1/shards/{id}/verify show it.
nlohmann::json VerifyJson(const storage::VerifyResult& r);
// A migration's report: the `result` of a migrate operation (GET /v1/operations/{id}), from
// which migrate --json prints its object.
nlohmann::json MigrateReportJson(const storage::MigrateReport& r);

// A search of the shard vector index, as search-shards and GET /v1/shards?near= take it.
struct SearchQuery {
  std::string near;  // "f1,f2,..."
  uint64_t k = 10;
  uint64_t ef = 0;  // 0: the index's default
  bool exact = false;
};
// Runs `q` on `index` and returns the document search-shards --json prints and GET
// /v1/shards?near= serves: {near, metric, k, ef, exact, indexed, search_ms, shards: [each a
// ShardInfoJson with its "distance", nearest first]}. `stat` reads each hit's metadata; a hit
// that cannot be read (its volume went missing) is left out and counted in "unavailable".
// InvalidArgument naming the argument for a bad vector, k (1 to 1000) or ef (at most 100000).
core::Result<nlohmann::json> SearchShardsJson(
    const vector::ShardVectors& index, const SearchQuery& q,
    const std::function<core::Result<storage::ShardInfo>(const core::Uuid&)>& stat,
    core::Clock* clock);

// The error document of the API: {"error": {"code", "exit_code", "message"}}.
nlohmann::json ErrorJson(const core::Status& s);
// The short name of a status code ("not_found", "integrity", ...).
const char* StatusCodeName(const core::Status& s);
// The Status an error document stands for (the inverse of ErrorJson; IOError if unreadable).
core::Status StatusFromErrorJson(const nlohmann::json& j, const std::string& fallback);

}  // namespace dfrp::node

namespace dfrp::node {

// A Merkle leaf size: a power of two from 512 to 1 MiB; InvalidArgument naming `what`.
core::Status CheckLeafSize(uint64_t leaf_size, const std::string& what);

}  // namespace dfrp::node
