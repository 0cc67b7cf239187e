// ISO/IEC 7816-4 command and response APDUs, short and extended length.
#pragma once

#include <cstdint>
#include <optional>

#include "core/encoding.h"
#include "core/error.h"

namespace zf::se {

// The largest APDU we accept on any transport (extended Lc + header + Le).
inline constexpr std::size_t kMaxApduBytes = 65535 + 9;

struct Command {
  std::uint8_t cla = 0;
  std::uint8_t ins = 0;
  std::uint8_t p1 = 0;
  std::uint8_t p2 = 0;
  Bytes data;
  std::optional<std::uint32_t> le;  // expected response length; 65536 means "all" (extended 0000)
};

struct Response {
  Bytes data;
  std::uint16_t sw = 0x9000;
  bool ok() const { return sw == 0x9000; }
};

// Parses cases 1, 2S/2E, 3S/3E, 4S/4E strictly; anything else is bad_apdu.
Result<Command> parse_command(ByteView raw);
// Encodes with short length fields when they fit, extended otherwise.
Bytes encode_command(const Command& cmd);
Bytes encode_response(const Response& res);
// Splits data || SW1 SW2.
Result<Response> parse_response(ByteView raw);

}  // namespace zf::se
