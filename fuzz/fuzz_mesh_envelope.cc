// Fuzzes the mesh's decoders of outside bytes (mesh/envelope.h, mesh/node_record.h): the first
// byte picks the message (0: envelope, through DecodeEnvelope and an EnvelopeGate; 1: node key
// delegation; 2: node record, through a PeerTable; 3: an exchange's record list), the rest is
// its wire.
//
// Properties: no crash, no uncaught exception; every refusal of the decoders is
// InvalidArgument; what decodes re-encodes to exactly the input (one canonical encoding); the
// gate admits nothing twice.
#include <cstdint>
#include <string>

#include "dfrp/core/clock.h"
#include "dfrp/mesh/envelope.h"
#include "dfrp/mesh/node_record.h"
#include "fuzz_util.h"

using namespace dfrp::mesh;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const std::string wire(reinterpret_cast<const char*>(data) + 1, size - 1);
  const dfrp::crypto::Hash net{};  // the seeds are made for the all-zero network id
  switch (data[0] % 4) {
    case 0: {
      auto e = DecodeEnvelope(wire);
      if (!e) {
        DFRP_FUZZ_CHECK(e.error().code() == dfrp::core::Status::Code::kInvalidArgument);
      } else {
        DFRP_FUZZ_CHECK(EncodeEnvelope(*e) == wire);
      }
      // The seeds' clock: their envelopes are live at it.
      static dfrp::core::ManualClock clock(1'800'000'000'000);
      EnvelopeGate gate(net, &clock);
      const bool first = gate.Admit(wire).has_value();
      DFRP_FUZZ_CHECK(!first || !gate.Admit(wire).has_value());
      break;
    }
    case 1: {
      auto d = DecodeDelegation(wire);
      if (!d) {
        DFRP_FUZZ_CHECK(d.error().code() == dfrp::core::Status::Code::kInvalidArgument);
        return 0;
      }
      DFRP_FUZZ_CHECK(EncodeDelegation(*d) == wire);
      (void)VerifyDelegation(*d, net, 1'800'000'000'000);
      break;
    }
    case 2: {
      auto r = DecodeRecord(wire);
      if (!r) {
        DFRP_FUZZ_CHECK(r.error().code() == dfrp::core::Status::Code::kInvalidArgument);
      } else {
        DFRP_FUZZ_CHECK(EncodeRecord(*r) == wire);
      }
      PeerTable table(net, {}, {});
      auto first = table.Offer(wire, 1'800'000'000'000);
      if (first && *first == OfferOutcome::kNew)
        DFRP_FUZZ_CHECK(*table.Offer(wire, 1'800'000'000'000) == OfferOutcome::kStale);
      break;
    }
    case 3: {
      auto list = DecodeRecordList(wire);
      if (!list) {
        DFRP_FUZZ_CHECK(list.error().code() == dfrp::core::Status::Code::kInvalidArgument);
        return 0;
      }
      std::vector<std::string> copies(list->begin(), list->end());
      DFRP_FUZZ_CHECK(EncodeRecordList(copies) == wire);
      break;
    }
  }
  return 0;
}
