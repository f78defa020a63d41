// CRC-32C (Castagnoli), as used by iSCSI, ext4 and LevelDB. Uses the SSE4.2 instruction
// when the CPU has it, a table otherwise; both give the same values.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace dfrp::core {

// Extends `crc` (the value of an earlier call, or 0 to start) with `data`.
uint32_t Crc32cExtend(uint32_t crc, const void* data, size_t n);
inline uint32_t Crc32c(std::string_view data) { return Crc32cExtend(0, data.data(), data.size()); }

}  // namespace dfrp::core
