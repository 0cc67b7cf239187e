// base64url (JOSE, strict), base64 (x5c, strict, padded) and hex.
#include "core/encoding.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <random>
#include <string>

#include "test_util.h"

namespace zf {
namespace {

using test::bytes_of;
using test::FailsWith;
using test::IsOk;

// RFC 4648 §10 test vectors.
struct Vector {
  const char* plain;
  const char* b64;
  const char* b64url;
};
constexpr Vector kRfc4648[] = {
    {"", "", ""},
    {"f", "Zg==", "Zg"},
    {"fo", "Zm8=", "Zm8"},
    {"foo", "Zm9v", "Zm9v"},
    {"foob", "Zm9vYg==", "Zm9vYg"},
    {"fooba", "Zm9vYmE=", "Zm9vYmE"},
    {"foobar", "Zm9vYmFy", "Zm9vYmFy"},
};

TEST(Base64Url, EncodesRfc4648VectorsWithoutPadding) {
  for (const auto& v : kRfc4648) EXPECT_EQ(b64url_encode(as_bytes(v.plain)), v.b64url) << v.plain;
}

TEST(Base64Url, DecodesRfc4648Vectors) {
  for (const auto& v : kRfc4648) {
    auto d = b64url_decode(v.b64url);
    ASSERT_THAT(d, IsOk()) << v.b64url;
    EXPECT_EQ(to_string(*d), v.plain);
  }
}

TEST(Base64Url, UsesTheUrlSafeAlphabet) {
  Bytes b{0xfb, 0xff, 0xbf};
  EXPECT_EQ(b64url_encode(b), "-_-_");
  EXPECT_EQ(b64_encode(b), "+/+/");
  EXPECT_EQ(*b64url_decode("-_-_"), b);
}

TEST(Base64Url, RoundTripsEveryLength) {
  std::mt19937 rng(42);
  for (std::size_t n = 0; n <= 70; ++n) {
    Bytes b(n);
    for (auto& x : b) x = static_cast<std::uint8_t>(rng());
    std::string t = b64url_encode(b);
    EXPECT_EQ(t.find('='), std::string::npos);
    auto back = b64url_decode(t);
    ASSERT_THAT(back, IsOk()) << n;
    EXPECT_EQ(*back, b) << n;
  }
}

TEST(Base64Url, RefusesPadding) {
  for (const char* t : {"Zg==", "Zg=", "Zm8=", "Zm9vYg==", "=", "===="})
    EXPECT_THAT(b64url_decode(t), FailsWith(Errc::bad_base64url)) << t;
}

TEST(Base64Url, RefusesCharactersOutsideTheAlphabet) {
  for (const char* t : {"Zm9v+g", "Zm9v/g", "Zm 9v", "Zm9v\n", " Zm9v", "Zm9v ", "Zm.9v", "Zm9\"",
                        "Zm\\9v", "Zm9v\t", "\xc3\xa9Zm9v"})
    EXPECT_THAT(b64url_decode(t), FailsWith(Errc::bad_base64url)) << t;
  EXPECT_THAT(b64url_decode(std::string_view("Zm9v\0\0", 6)), FailsWith(Errc::bad_base64url));
}

TEST(Base64Url, RefusesImpossibleLengths) {
  for (const char* t : {"Z", "Zm9vY", "Zm9vYmFyZ"})
    EXPECT_THAT(b64url_decode(t), FailsWith(Errc::bad_base64url)) << t;
}

TEST(Base64Url, RefusesNonCanonicalTrailingBits) {
  // "Zg" is the only encoding of "f"; "Zh".."Zv" set the 4 unused bits.
  for (const char* t : {"Zh", "Zi", "Zp", "Zv", "Zm9", "Zm-", "Zm_", "Zm9vYh", "Zm9vYmF"})
    EXPECT_THAT(b64url_decode(t), FailsWith(Errc::bad_base64url)) << t;
  // Their canonical neighbours decode.
  EXPECT_THAT(b64url_decode("Zg"), IsOk());
  EXPECT_THAT(b64url_decode("Zm8"), IsOk());
  EXPECT_THAT(b64url_decode("Zm9vYmE"), IsOk());
}

TEST(Base64, EncodesRfc4648VectorsWithPadding) {
  for (const auto& v : kRfc4648) EXPECT_EQ(b64_encode(as_bytes(v.plain)), v.b64) << v.plain;
}

TEST(Base64, DecodesRfc4648Vectors) {
  for (const auto& v : kRfc4648) {
    auto d = b64_decode(v.b64);
    ASSERT_THAT(d, IsOk()) << v.b64;
    EXPECT_EQ(to_string(*d), v.plain);
  }
}

TEST(Base64, RoundTripsEveryLength) {
  std::mt19937 rng(7);
  for (std::size_t n = 0; n <= 70; ++n) {
    Bytes b(n);
    for (auto& x : b) x = static_cast<std::uint8_t>(rng());
    std::string t = b64_encode(b);
    EXPECT_EQ(t.size() % 4, 0u);
    auto back = b64_decode(t);
    ASSERT_THAT(back, IsOk()) << n;
    EXPECT_EQ(*back, b) << n;
  }
}

TEST(Base64, RefusesMissingOrWrongPadding) {
  for (const char* t :
       {"Zg", "Zm8", "Zg=", "Zg===", "Z===", "Zm9v====", "Zm9vYg=", "=Zg=", "Zm=v", "Z=g=", "===="})
    EXPECT_THAT(b64_decode(t), FailsWith(Errc::bad_base64url)) << t;
}

TEST(Base64, RefusesUrlAlphabetAndWhitespace) {
  for (const char* t : {"-_-_", "Zm9v\nYmFy", "Zm9v YmFy", "Zm9vYmFy\n", "Zm9vYmF\r"})
    EXPECT_THAT(b64_decode(t), FailsWith(Errc::bad_base64url)) << t;
}

TEST(Base64, RefusesNonCanonicalTrailingBits) {
  for (const char* t : {"Zh==", "Zm9=", "Zm9vYh=="})
    EXPECT_THAT(b64_decode(t), FailsWith(Errc::bad_base64url)) << t;
}

TEST(Hex, EncodesLowerCase) {
  EXPECT_EQ(hex_encode(Bytes{}), "");
  EXPECT_EQ(hex_encode(Bytes{0x00, 0x01, 0xab, 0xff}), "0001abff");
}

TEST(Hex, DecodesEitherCase) {
  EXPECT_EQ(*hex_decode("0001abff"), (Bytes{0x00, 0x01, 0xab, 0xff}));
  EXPECT_EQ(*hex_decode("0001ABFF"), (Bytes{0x00, 0x01, 0xab, 0xff}));
  EXPECT_EQ(*hex_decode(""), Bytes{});
}

TEST(Hex, RefusesOddLengthAndBadCharacters) {
  EXPECT_THAT(hex_decode("abc"), FailsWith(Errc::bad_field));
  for (const char* t : {"0g", "g0", "0x00", " 0", "0 ", "zz", "-1"})
    EXPECT_THAT(hex_decode(t), FailsWith(Errc::bad_field)) << t;
}

TEST(Hex, RoundTrips) {
  Bytes all(256);
  for (int i = 0; i < 256; ++i) all[i] = static_cast<std::uint8_t>(i);
  EXPECT_EQ(*hex_decode(hex_encode(all)), all);
}

TEST(ByteHelpers, AsBytesAndToStringRoundTrip) {
  std::string s("a\0b\xff", 4);
  Bytes b = bytes_of(s);
  ASSERT_EQ(b.size(), 4u);
  EXPECT_EQ(b[1], 0);
  EXPECT_EQ(b[3], 0xff);
  EXPECT_EQ(to_string(b), s);
}

}  // namespace
}  // namespace zf
