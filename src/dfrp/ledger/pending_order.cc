#include "dfrp/ledger/pending_order.h"

#include <fmt/format.h>

#include "dfrp/core/bytes.h"

namespace dfrp::ledger {

core::Result<SignedOrder> ReadPendingOrder(core::FileSystem* fs, const std::string& path,
                                           const crypto::Hash& network_id, const KeyBytes& me) {
  DFRP_ASSIGN_OR_RETURN(std::string text, core::ReadWholeFile(fs, path));
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.pop_back();
  const auto bytes = core::FromHex(text);
  if (!bytes)
    return core::Err(core::Status::Corruption(fmt::format(
        "{} is not the hex of a signed order: move it aside only if you know that order was "
        "never sent",
        path)));
  DFRP_ASSIGN_OR_RETURN(SignedOrder o, DecodeSignedOrder(*bytes, network_id));
  if (o.order.sender != me)
    return core::Err(core::Status::InvalidArgument(
        fmt::format("{} holds an order of another wallet: it is not this wallet's journal", path)));
  return o;
}

core::Status WritePendingOrder(core::FileSystem* fs, const std::string& path,
                               const SignedOrder& order, const crypto::Hash& network_id) {
  return core::WriteFileAtomic(fs, path, core::ToHex(EncodeSignedOrder(order, network_id)) + "\n");
}

}  // namespace dfrp::ledger
