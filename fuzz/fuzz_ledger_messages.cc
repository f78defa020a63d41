// Fuzzes the ledger's decoders of outside bytes (ledger/messages.h, ledger/escrow.h): the
// first byte picks the message (0: signed order, transfer or escrow_open; 1: vote;
// 2: certificate; 3: settlement; 4: settlement certificate; 5: beacon; 6: epoch proposal;
// 7: epoch certificate; 8: usage receipt), the rest is its wire. Orders include
// read_escrow_open, settlements redemptions and closes of read escrows.
//
// Properties: no crash, no uncaught exception; every refusal is InvalidArgument; what
// decodes re-encodes to exactly the input (one canonical encoding: no two wires for one
// message), and an order's hash is the SHA-256 of its signed part.
#include <cstdint>
#include <string>

#include "dfrp/ledger/epoch.h"
#include "dfrp/ledger/escrow.h"
#include "dfrp/ledger/messages.h"
#include "fuzz_util.h"

using namespace dfrp::ledger;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const std::string wire(reinterpret_cast<const char*>(data) + 1, size - 1);
  const dfrp::crypto::Hash net{};  // the seeds are made for the all-zero network id
  switch (data[0] % 9) {
    case 0: {
      auto o = DecodeSignedOrder(wire, net);
      if (!o) {
        DFRP_FUZZ_CHECK(o.error().code() == dfrp::core::Status::Code::kInvalidArgument);
        return 0;
      }
      DFRP_FUZZ_CHECK(EncodeSignedOrder(*o, net) == wire);
      DFRP_FUZZ_CHECK(o->hash == dfrp::crypto::Sha256Of(OrderSigningBytes(o->order, net)));
      (void)VerifyOrderSignature(*o, net);
      break;
    }
    case 1: {
      auto v = DecodeVote(wire);
      if (!v) {
        DFRP_FUZZ_CHECK(v.error().code() == dfrp::core::Status::Code::kInvalidArgument);
        return 0;
      }
      DFRP_FUZZ_CHECK(EncodeVote(*v) == wire);
      break;
    }
    case 2: {
      auto c = DecodeCertificate(wire, net);
      if (!c) {
        DFRP_FUZZ_CHECK(c.error().code() == dfrp::core::Status::Code::kInvalidArgument);
        return 0;
      }
      DFRP_FUZZ_CHECK(EncodeCertificate(*c, net) == wire);
      break;
    }
    case 3: {
      auto s = DecodeSettlement(wire, net);
      if (!s) {
        DFRP_FUZZ_CHECK(s.error().code() == dfrp::core::Status::Code::kInvalidArgument);
        return 0;
      }
      DFRP_FUZZ_CHECK(SettlementBytes(*s, net) == wire);
      DFRP_FUZZ_CHECK(s->hash == dfrp::crypto::Sha256Of(wire));
      break;
    }
    case 4: {
      auto c = DecodeSettleCertificate(wire, net);
      if (!c) {
        DFRP_FUZZ_CHECK(c.error().code() == dfrp::core::Status::Code::kInvalidArgument);
        return 0;
      }
      DFRP_FUZZ_CHECK(EncodeSettleCertificate(*c, net) == wire);
      break;
    }
    case 6: {
      auto p = DecodeEpochProposal(wire, net);
      if (!p) {
        DFRP_FUZZ_CHECK(p.error().code() == dfrp::core::Status::Code::kInvalidArgument);
        return 0;
      }
      DFRP_FUZZ_CHECK(EpochProposalBytes(*p, net) == wire);
      DFRP_FUZZ_CHECK(p->next_epoch == p->epoch + 1);
      break;
    }
    case 7: {
      auto c = DecodeEpochCertificate(wire, net);
      if (!c) {
        DFRP_FUZZ_CHECK(c.error().code() == dfrp::core::Status::Code::kInvalidArgument);
        return 0;
      }
      DFRP_FUZZ_CHECK(EncodeEpochCertificate(*c, net) == wire);
      break;
    }
    case 8: {
      auto r = DecodeReceipt(wire, net);
      if (!r) {
        DFRP_FUZZ_CHECK(r.error().code() == dfrp::core::Status::Code::kInvalidArgument);
        return 0;
      }
      DFRP_FUZZ_CHECK(EncodeReceipt(*r, net) == wire);
      (void)VerifyReceipt(*r, r->escrow_id, r->provider, r->provider, r->expiry_unix, net);
      break;
    }
    default: {
      auto b = DecodeBeacon(wire);
      if (!b) {
        DFRP_FUZZ_CHECK(b.error().code() == dfrp::core::Status::Code::kInvalidArgument);
        return 0;
      }
      DFRP_FUZZ_CHECK(EncodeBeacon(*b) == wire);
      break;
    }
  }
  return 0;
}
