// Internal to the ledger library: the pieces every ledger message is built from. Big-endian
// writers, a bounds-checked reader that names the field it failed on, the signed prefix, and
// the quorum part (epoch, bitmap, aggregate) that certificates, settlement certificates and
// beacons share. The mesh's messages (src/dfrp/mesh) are built from the same pieces, so there
// is one canonical encoding in the project; nothing else includes this.
//
// Thread-safety: plain values and pure functions.
#pragma once

#include <array>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "dfrp/core/status.h"
#include "dfrp/ledger/messages.h"

namespace dfrp::ledger::wire {

inline void PutBe(std::string* out, uint64_t v, int bytes) {
  for (int i = bytes - 1; i >= 0; --i) out->push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

template <size_t N>
void PutArray(std::string* out, const std::array<uint8_t, N>& a) {
  out->append(reinterpret_cast<const char*>(a.data()), N);
}

template <size_t N>
std::string_view View(const std::array<uint8_t, N>& a) {
  return {reinterpret_cast<const char*>(a.data()), N};
}

// Reads fields from outside bytes; every read checks the remaining length first and names
// the field it failed on (InvalidArgument "<what>: truncated at <field> ...").
class Reader {
 public:
  Reader(std::string_view data, std::string_view what) : data_(data), what_(what) {}

  core::Status Be(uint64_t* v, int bytes, std::string_view field);
  template <size_t N>
  core::Status Array(std::array<uint8_t, N>* a, std::string_view field) {
    if (data_.size() - pos_ < N) return Short(field);
    std::memcpy(a->data(), data_.data() + pos_, N);
    pos_ += N;
    return core::Status::OK();
  }
  core::Status Bytes(size_t n, std::string_view* out, std::string_view field);
  // InvalidArgument when bytes are left after the last field.
  core::Status End() const;
  size_t pos() const { return pos_; }
  std::string_view what() const { return what_; }
  core::Status Bad(std::string_view field, std::string_view why) const;

 private:
  core::Status Short(std::string_view field) const;
  std::string_view data_;
  std::string_view what_;
  size_t pos_ = 0;
};

// Reads and checks a SignedPrefix with `tag`; returns the epoch.
core::Result<uint64_t> ReadPrefix(Reader& r, std::string_view tag, const crypto::Hash& network_id);
// A key or signature read from outside bytes must be a valid point.
core::Status CheckKey(const KeyBytes& k, const Reader& r, std::string_view field);
core::Status CheckSig(const SigBytes& s, const Reader& r, std::string_view field);

// The quorum part of a certificate: which committee members signed the item (by its hash,
// through their votes) and the sum of their vote signatures.
struct Quorum {
  uint64_t epoch = 0;
  std::vector<bool> signers;  // one per committee member
  SigBytes aggregate{};
};
// Aggregates distinct votes for `item_hash`; InvalidArgument when they are fewer than
// `need`, repeat an authority, or are for another item or committee.
core::Result<Quorum> AggregateVotes(const crypto::Hash& item_hash, const std::vector<Vote>& votes,
                                    const Committee& c, size_t need);
// u64 epoch ‖ u16 n ‖ bitmap (ceil(n/8) bytes, bit i of byte i/8 from the least significant,
// unused bits zero) ‖ aggregate (96).
void PutQuorum(std::string* out, const Quorum& q);
std::string Bitmap(const std::vector<bool>& signers);
core::Status ReadQuorum(Reader& r, Quorum* q);
// The epoch and size are the committee's, at least `min_signers` (exactly, when `exact`)
// signed, and fast-aggregate-verify of the vote bytes for `item_hash` over their proven keys
// succeeds. `what` names the message in errors.
core::Status VerifyQuorum(const Quorum& q, const crypto::Hash& item_hash, const Committee& c,
                          const crypto::Hash& network_id, std::string_view what, bool exact,
                          crypto::bls::GroupVerifier* verifier = nullptr);
// bls::Verify, or through `verifier` when one is given.
bool VerifyOne(const crypto::bls::PublicKey& key, std::string_view message,
               const crypto::bls::Signature& sig, crypto::bls::GroupVerifier* verifier);

// Moves a quorum into a certified message's epoch, signers and aggregate fields.
template <typename T>
void TakeQuorum(T* out, Quorum&& q) {
  out->epoch = q.epoch;
  out->signers = std::move(q.signers);
  out->aggregate = q.aggregate;
}

// Reads the shape every certificate has, u32 body length ‖ body ‖ quorum, from at most `max`
// outside bytes; `decode` turns the body's bytes into the certified item.
template <typename Decode>
auto ReadCertified(std::string_view w, size_t max, std::string_view what,
                   const std::string& body_name, Decode decode)
    -> core::Result<std::pair<std::remove_cvref_t<decltype(*decode(std::string_view()))>, Quorum>> {
  if (w.size() > max)
    return core::Err(core::Status::InvalidArgument(std::string(what) + ": " +
                                                   std::to_string(w.size()) + " bytes, more than " +
                                                   std::to_string(max)));
  Reader r(w, what);
  uint64_t len = 0;
  DFRP_RETURN_IF_ERROR(r.Be(&len, 4, body_name + " length"));
  std::string_view body;
  DFRP_RETURN_IF_ERROR(r.Bytes(len, &body, body_name));
  DFRP_ASSIGN_OR_RETURN(auto item, decode(body));
  Quorum q;
  DFRP_RETURN_IF_ERROR(ReadQuorum(r, &q));
  DFRP_RETURN_IF_ERROR(r.End());
  return std::make_pair(std::move(item), std::move(q));
}

}  // namespace dfrp::ledger::wire
