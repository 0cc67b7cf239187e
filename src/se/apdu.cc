#include "se/apdu.h"

namespace zf::se {

Result<Command> parse_command(ByteView raw) {
  if (raw.size() < 4) return fail(Errc::bad_apdu, "APDU shorter than its header");
  if (raw.size() > kMaxApduBytes) return fail(Errc::too_large, "APDU too long");
  Command c{raw[0], raw[1], raw[2], raw[3], {}, std::nullopt};
  std::size_t n = raw.size();
  if (n == 4) return c;  // case 1
  std::uint8_t b4 = raw[4];
  if (n == 5) {  // case 2S
    c.le = b4 == 0 ? 256u : b4;
    return c;
  }
  if (b4 != 0) {  // short Lc
    std::size_t lc = b4;
    if (n == 5 + lc) {  // case 3S
      c.data.assign(raw.begin() + 5, raw.end());
      return c;
    }
    if (n == 6 + lc) {  // case 4S
      c.data.assign(raw.begin() + 5, raw.begin() + 5 + static_cast<long>(lc));
      std::uint8_t le = raw[5 + lc];
      c.le = le == 0 ? 256u : le;
      return c;
    }
    return fail(Errc::bad_apdu, "length fields do not match the APDU size");
  }
  // Extended: b4 == 0.
  if (n < 7) return fail(Errc::bad_apdu, "truncated extended length");
  std::size_t l = (std::size_t{raw[5]} << 8) | raw[6];
  if (n == 7) {  // case 2E
    c.le = l == 0 ? 65536u : static_cast<std::uint32_t>(l);
    return c;
  }
  if (l == 0) return fail(Errc::bad_apdu, "extended Lc of zero");
  if (n == 7 + l) {  // case 3E
    c.data.assign(raw.begin() + 7, raw.end());
    return c;
  }
  if (n == 9 + l) {  // case 4E
    c.data.assign(raw.begin() + 7, raw.begin() + 7 + static_cast<long>(l));
    std::size_t le = (std::size_t{raw[7 + l]} << 8) | raw[8 + l];
    c.le = le == 0 ? 65536u : static_cast<std::uint32_t>(le);
    return c;
  }
  return fail(Errc::bad_apdu, "length fields do not match the APDU size");
}

Bytes encode_command(const Command& c) {
  Bytes out{c.cla, c.ins, c.p1, c.p2};
  bool extended = c.data.size() > 255 || (c.le && *c.le > 256);
  if (!extended) {
    if (!c.data.empty()) {
      out.push_back(static_cast<std::uint8_t>(c.data.size()));
      out.insert(out.end(), c.data.begin(), c.data.end());
    }
    if (c.le) out.push_back(static_cast<std::uint8_t>(*c.le == 256 ? 0 : *c.le));
    return out;
  }
  out.push_back(0);
  if (!c.data.empty()) {
    out.push_back(static_cast<std::uint8_t>(c.data.size() >> 8));
    out.push_back(static_cast<std::uint8_t>(c.data.size()));
    out.insert(out.end(), c.data.begin(), c.data.end());
  }
  if (c.le) {
    std::uint32_t le = *c.le == 65536 ? 0 : *c.le;
    out.push_back(static_cast<std::uint8_t>(le >> 8));
    out.push_back(static_cast<std::uint8_t>(le));
  }
  return out;
}

Bytes encode_response(const Response& r) {
  Bytes out = r.data;
  out.push_back(static_cast<std::uint8_t>(r.sw >> 8));
  out.push_back(static_cast<std::uint8_t>(r.sw));
  return out;
}

Result<Response> parse_response(ByteView raw) {
  if (raw.size() < 2) return fail(Errc::bad_apdu, "response shorter than its status word");
  Response r;
  r.data.assign(raw.begin(), raw.end() - 2);
  r.sw = static_cast<std::uint16_t>((raw[raw.size() - 2] << 8) | raw[raw.size() - 1]);
  return r;
}

}  // namespace zf::se
