// Fuzzes the compute decoders of outside bytes (compute/job.h, compute/catalog.h): the first
// byte picks the input (0: a signed job, 1: a provider's result claim, 2: an app catalog file,
// 3: a fraud record, compute/fraud.h), the rest is its bytes.
//
// Properties: no crash, no uncaught exception; every refusal is InvalidArgument; a job or a
// claim that decodes re-encodes to exactly the input (one canonical encoding) and keeps the id
// the client signed; a catalog that parses has only valid names and absolute paths; a fraud
// record is refused (InvalidArgument or Corruption) unless a quorum of the committee signed it,
// and with this committee of no members nothing is a quorum, so every input is refused.
#include <cstdint>
#include <string>

#include "dfrp/compute/catalog.h"
#include "dfrp/compute/fraud.h"
#include "dfrp/compute/job.h"
#include "fuzz_util.h"

using namespace dfrp::compute;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const std::string wire(reinterpret_cast<const char*>(data) + 1, size - 1);
  const dfrp::crypto::Hash net{};  // the seeds are made for the all-zero network id
  switch (data[0] % 4) {
    case 0: {
      auto j = DecodeJob(wire, net);
      if (!j) {
        DFRP_FUZZ_CHECK(j.error().code() == dfrp::core::Status::Code::kInvalidArgument);
        return 0;
      }
      DFRP_FUZZ_CHECK(EncodeJob(*j, net) == wire);
      DFRP_FUZZ_CHECK(j->ranks >= 1 && j->ranks <= kMaxRanks);
      (void)VerifyJob(*j, net);
      break;
    }
    case 1: {
      auto c = DecodeClaim(wire, net);
      if (!c) {
        DFRP_FUZZ_CHECK(c.error().code() == dfrp::core::Status::Code::kInvalidArgument);
        return 0;
      }
      DFRP_FUZZ_CHECK(EncodeClaim(*c, net) == wire);
      (void)VerifyClaim(*c, net);
      break;
    }
    case 2: {
      auto apps = ParseCatalog(wire, "fuzz.toml");
      if (!apps) {
        DFRP_FUZZ_CHECK(apps.error().code() == dfrp::core::Status::Code::kInvalidArgument);
        return 0;
      }
      for (const auto& a : *apps) {
        DFRP_FUZZ_CHECK(!a.name.empty() && a.name.size() <= kMaxAppName);
        DFRP_FUZZ_CHECK(!a.path.empty() && a.path[0] == '/');
        (void)CheckArgs(a, {"1", "2", "fast"}, 1);
      }
      break;
    }
    case 3: {
      static const dfrp::ledger::Committee nobody;
      auto r = CheckFraudCertificate(wire, nobody, net);
      DFRP_FUZZ_CHECK(!r.has_value());
      DFRP_FUZZ_CHECK(r.error().code() == dfrp::core::Status::Code::kInvalidArgument ||
                      r.error().code() == dfrp::core::Status::Code::kCorruption);
      break;
    }
  }
  return 0;
}
