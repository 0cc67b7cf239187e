// ISO/IEC 7816-4 command and response APDUs: every case, short and extended,
// the Le encodings of "all", round trips, and every malformed length refused.
#include "se/apdu.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "core/test_util.h"

namespace zf::test {
namespace {

using se::Command;
using se::encode_command;
using se::parse_command;

Bytes seq_bytes(std::size_t n, std::uint8_t start = 0) {
  Bytes b(n);
  for (std::size_t i = 0; i < n; ++i) b[i] = static_cast<std::uint8_t>(start + i);
  return b;
}

Bytes cat(std::initializer_list<Bytes> parts) {
  Bytes out;
  for (const auto& p : parts) out.insert(out.end(), p.begin(), p.end());
  return out;
}

const Bytes kHeader{0x80, 0x30, 0x01, 0x02};

void expect_header(const Command& c) {
  EXPECT_EQ(c.cla, 0x80);
  EXPECT_EQ(c.ins, 0x30);
  EXPECT_EQ(c.p1, 0x01);
  EXPECT_EQ(c.p2, 0x02);
}

TEST(ApduParse, Case1HeaderOnly) {
  Command c = must(parse_command(kHeader));
  expect_header(c);
  EXPECT_TRUE(c.data.empty());
  EXPECT_FALSE(c.le.has_value());
}

TEST(ApduParse, Case2ShortLe) {
  Command c = must(parse_command(cat({kHeader, {0x10}})));
  expect_header(c);
  EXPECT_TRUE(c.data.empty());
  EXPECT_EQ(c.le, 16u);
  // Le 00 means 256 in a short APDU.
  EXPECT_EQ(must(parse_command(cat({kHeader, {0x00}}))).le, 256u);
}

TEST(ApduParse, Case3ShortLcAndData) {
  Command c = must(parse_command(cat({kHeader, {0x03, 0xAA, 0xBB, 0xCC}})));
  expect_header(c);
  EXPECT_EQ(c.data, (Bytes{0xAA, 0xBB, 0xCC}));
  EXPECT_FALSE(c.le.has_value());
  // The largest short data field.
  Command big = must(parse_command(cat({kHeader, {0xFF}, seq_bytes(255)})));
  EXPECT_EQ(big.data, seq_bytes(255));
  EXPECT_FALSE(big.le.has_value());
}

TEST(ApduParse, Case4ShortLcDataLe) {
  Command c = must(parse_command(cat({kHeader, {0x02, 0x11, 0x22, 0x40}})));
  expect_header(c);
  EXPECT_EQ(c.data, (Bytes{0x11, 0x22}));
  EXPECT_EQ(c.le, 0x40u);
  EXPECT_EQ(must(parse_command(cat({kHeader, {0x02, 0x11, 0x22, 0x00}}))).le, 256u);
}

TEST(ApduParse, Case2ExtendedLe) {
  Command c = must(parse_command(cat({kHeader, {0x00, 0x01, 0x2C}})));
  expect_header(c);
  EXPECT_TRUE(c.data.empty());
  EXPECT_EQ(c.le, 300u);
  // Le 0000 means 65536 in an extended APDU.
  EXPECT_EQ(must(parse_command(cat({kHeader, {0x00, 0x00, 0x00}}))).le, 65536u);
  EXPECT_EQ(must(parse_command(cat({kHeader, {0x00, 0xFF, 0xFF}}))).le, 65535u);
}

TEST(ApduParse, Case3ExtendedLcAndData) {
  Command c = must(parse_command(cat({kHeader, {0x00, 0x01, 0x00}, seq_bytes(256)})));
  expect_header(c);
  EXPECT_EQ(c.data, seq_bytes(256));
  EXPECT_FALSE(c.le.has_value());
  // Extended lengths may also carry short data.
  EXPECT_EQ(must(parse_command(cat({kHeader, {0x00, 0x00, 0x02, 0x01, 0x02}}))).data,
            (Bytes{0x01, 0x02}));
  // The largest extended data field.
  Command max = must(parse_command(cat({kHeader, {0x00, 0xFF, 0xFF}, seq_bytes(65535)})));
  EXPECT_EQ(max.data.size(), 65535u);
}

TEST(ApduParse, Case4ExtendedLcDataLe) {
  Command c = must(parse_command(cat({kHeader, {0x00, 0x01, 0x01}, seq_bytes(257), {0x12, 0x34}})));
  expect_header(c);
  EXPECT_EQ(c.data, seq_bytes(257));
  EXPECT_EQ(c.le, 0x1234u);
  EXPECT_EQ(must(parse_command(cat({kHeader, {0x00, 0x00, 0x01, 0x7E, 0x00, 0x00}}))).le, 65536u);
  Command max =
      must(parse_command(cat({kHeader, {0x00, 0xFF, 0xFF}, seq_bytes(65535), {0x00, 0x00}})));
  EXPECT_EQ(max.data.size(), 65535u);
  EXPECT_EQ(max.le, 65536u);
}

TEST(ApduParse, MalformedLengthsAreBadApdu) {
  const std::vector<std::pair<const char*, Bytes>> cases = {
      {"empty", {}},
      {"one byte", {0x80}},
      {"three bytes", {0x80, 0x30, 0x00}},
      {"short Lc larger than data", cat({kHeader, {0x05, 0x01, 0x02}})},
      {"short Lc smaller than data", cat({kHeader, {0x01, 0x01, 0x02, 0x03}})},
      {"short Lc with two trailing bytes", cat({kHeader, {0x01, 0xAA, 0x00, 0x00}})},
      {"six-byte extended marker", cat({kHeader, {0x00, 0x01}})},
      {"extended Lc zero with data", cat({kHeader, {0x00, 0x00, 0x00, 0xAA}})},
      {"extended Lc zero with Le", cat({kHeader, {0x00, 0x00, 0x00, 0x00, 0x10}})},
      {"extended Lc larger than data", cat({kHeader, {0x00, 0x01, 0x00}, seq_bytes(255)})},
      {"extended Lc smaller than data", cat({kHeader, {0x00, 0x00, 0x02}, seq_bytes(3)})},
      {"extended case 4 with one-byte Le", cat({kHeader, {0x00, 0x00, 0x02, 0x01, 0x02, 0x00}})},
  };
  for (const auto& [name, raw] : cases) {
    SCOPED_TRACE(name);
    EXPECT_THAT(parse_command(raw), FailsWith(Errc::bad_apdu));
  }
}

TEST(ApduParse, OversizeIsTooLarge) {
  Bytes over = cat({kHeader, {0x00, 0xFF, 0xFF}, seq_bytes(65535), {0x00, 0x00, 0x00}});
  ASSERT_EQ(over.size(), se::kMaxApduBytes + 1);
  EXPECT_THAT(parse_command(over), FailsWith(Errc::too_large));
  EXPECT_THAT(parse_command(Bytes(1 << 20, 0x00)), FailsWith(Errc::too_large));
}

TEST(ApduEncode, UsesShortFormsWhenTheyFit) {
  EXPECT_EQ(encode_command({0x00, 0xA4, 0x04, 0x00, {}, std::nullopt}),
            (Bytes{0x00, 0xA4, 0x04, 0x00}));
  EXPECT_EQ(encode_command({0x00, 0xA4, 0x04, 0x00, {}, 256u}),
            (Bytes{0x00, 0xA4, 0x04, 0x00, 0x00}));
  EXPECT_EQ(encode_command({0x00, 0x20, 0x00, 0x80, {0x31, 0x32}, std::nullopt}),
            (Bytes{0x00, 0x20, 0x00, 0x80, 0x02, 0x31, 0x32}));
  EXPECT_EQ(encode_command({0x00, 0x20, 0x00, 0x80, {0x31}, 16u}),
            (Bytes{0x00, 0x20, 0x00, 0x80, 0x01, 0x31, 0x10}));
}

TEST(ApduEncode, UsesExtendedFormsWhenNeeded) {
  EXPECT_EQ(encode_command({0x80, 0xCA, 0x00, 0x01, {}, 65536u}),
            (Bytes{0x80, 0xCA, 0x00, 0x01, 0x00, 0x00, 0x00}));
  EXPECT_EQ(encode_command({0x80, 0xCA, 0x00, 0x01, {}, 257u}),
            (Bytes{0x80, 0xCA, 0x00, 0x01, 0x00, 0x01, 0x01}));
  Bytes enc = encode_command({0x80, 0x32, 0x00, 0x00, seq_bytes(300), 65536u});
  EXPECT_EQ(enc, cat({{0x80, 0x32, 0x00, 0x00, 0x00, 0x01, 0x2C}, seq_bytes(300), {0x00, 0x00}}));
  // Short data with a long Le goes extended as a whole (no mixing of forms).
  EXPECT_EQ(encode_command({0x80, 0x30, 0x00, 0x00, {0x7B, 0x7D}, 65536u}),
            (Bytes{0x80, 0x30, 0x00, 0x00, 0x00, 0x00, 0x02, 0x7B, 0x7D, 0x00, 0x00}));
}

TEST(ApduRoundTrip, EncodeThenParseGivesTheSameCommand) {
  std::vector<Command> cmds;
  for (std::size_t n : {0u, 1u, 255u, 256u, 1000u, 65535u}) {
    for (std::optional<std::uint32_t> le :
         {std::optional<std::uint32_t>{}, std::optional<std::uint32_t>{1u},
          std::optional<std::uint32_t>{256u}, std::optional<std::uint32_t>{257u},
          std::optional<std::uint32_t>{65535u}, std::optional<std::uint32_t>{65536u}}) {
      cmds.push_back({0x80, 0x30, static_cast<std::uint8_t>(n), 0x7F, seq_bytes(n, 3), le});
    }
  }
  for (const Command& c : cmds) {
    SCOPED_TRACE(testing::Message()
                 << "data " << c.data.size() << " le " << (c.le ? std::to_string(*c.le) : "none"));
    Bytes enc = encode_command(c);
    Command back = must(parse_command(enc));
    EXPECT_EQ(back.cla, c.cla);
    EXPECT_EQ(back.ins, c.ins);
    EXPECT_EQ(back.p1, c.p1);
    EXPECT_EQ(back.p2, c.p2);
    EXPECT_EQ(back.data, c.data);
    EXPECT_EQ(back.le, c.le);
    // And the encoding is stable.
    EXPECT_EQ(encode_command(back), enc);
  }
}

TEST(ApduResponse, RoundTripAndTooShort) {
  se::Response r{{0x01, 0x02, 0x03}, 0x6A84};
  Bytes enc = se::encode_response(r);
  EXPECT_EQ(enc, (Bytes{0x01, 0x02, 0x03, 0x6A, 0x84}));
  se::Response back = must(se::parse_response(enc));
  EXPECT_EQ(back.data, r.data);
  EXPECT_EQ(back.sw, 0x6A84);
  EXPECT_FALSE(back.ok());
  se::Response ok = must(se::parse_response(Bytes{0x90, 0x00}));
  EXPECT_TRUE(ok.ok());
  EXPECT_TRUE(ok.data.empty());
  EXPECT_THAT(se::parse_response(Bytes{0x90}), FailsWith(Errc::bad_apdu));
  EXPECT_THAT(se::parse_response(Bytes{}), FailsWith(Errc::bad_apdu));
}

}  // namespace
}  // namespace zf::test
