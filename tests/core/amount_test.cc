// Currency and Amount: parsing, range, formatting, checked arithmetic (DESIGN.md §3).
#include "core/amount.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdint>
#include <limits>
#include <string>

#include "test_util.h"

namespace zf {
namespace {

using test::FailsWith;
using test::FailsWithField;
using test::IsOk;
using test::must;

Amount amt(std::string_view cur, std::int64_t minor) { return must(Amount::of(cur, minor)); }

// ---- Currency

TEST(Currency, KnownCodesCarryTheirExponent) {
  struct Row {
    const char* code;
    int exponent;
  };
  for (Row r : {Row{"CNY", 2}, Row{"USD", 2}, Row{"EUR", 2}, Row{"HKD", 2}, Row{"JPY", 0},
                Row{"KRW", 0}, Row{"BHD", 3}}) {
    auto c = Currency::parse(r.code);
    ASSERT_THAT(c, IsOk()) << r.code;
    EXPECT_EQ(c->code(), r.code);
    EXPECT_EQ(c->exponent(), r.exponent) << r.code;
  }
}

TEST(Currency, UnknownOrMalformedCodesAreRefused) {
  for (const char* code : {"XXX", "cny", "Cny", "", "CN", "CNYY", "CNY ", " CNY", "123"}) {
    EXPECT_THAT(Currency::parse(code), FailsWithField(Errc::bad_currency, "currency"))
        << "'" << code << "'";
  }
  // An embedded NUL must not be cut off and matched as a prefix.
  EXPECT_THAT(Currency::parse(std::string_view("CNY\0", 4)), FailsWith(Errc::bad_currency));
  EXPECT_THAT(Currency::parse(std::string_view("CN\0", 3)), FailsWith(Errc::bad_currency));
}

TEST(Currency, EqualityIsByCode) {
  EXPECT_EQ(must(Currency::parse("CNY")), must(Currency::parse("CNY")));
  EXPECT_FALSE(must(Currency::parse("CNY")) == must(Currency::parse("HKD")));
}

// ---- Amount::of

TEST(AmountOf, AcceptsZeroToMaximum) {
  EXPECT_THAT(Amount::of("CNY", 0), IsOk());
  EXPECT_TRUE(amt("CNY", 0).is_zero());
  EXPECT_FALSE(amt("CNY", 1).is_zero());
  auto max = Amount::of("CNY", Amount::kMaxMinor);
  ASSERT_THAT(max, IsOk());
  EXPECT_EQ(max->minor(), 1'000'000'000'000'000);
  EXPECT_EQ(max->currency().code(), "CNY");
}

TEST(AmountOf, MaximumIsBelowTwoToThe53) {
  // Every amount must survive a JSON number in any language (IEEE double).
  EXPECT_LT(Amount::kMaxMinor, std::int64_t{1} << 53);
}

TEST(AmountOf, NegativeIsRefused) {
  EXPECT_THAT(Amount::of("CNY", -1), FailsWithField(Errc::amount_negative, "amount"));
  EXPECT_THAT(Amount::of("CNY", std::numeric_limits<std::int64_t>::min()),
              FailsWithField(Errc::amount_negative, "amount"));
}

TEST(AmountOf, AboveMaximumIsOverflow) {
  EXPECT_THAT(Amount::of("CNY", Amount::kMaxMinor + 1),
              FailsWithField(Errc::amount_overflow, "amount"));
  EXPECT_THAT(Amount::of("CNY", std::numeric_limits<std::int64_t>::max()),
              FailsWithField(Errc::amount_overflow, "amount"));
}

TEST(AmountOf, UnknownCurrencyIsRefused) {
  EXPECT_THAT(Amount::of("XXX", 100), FailsWithField(Errc::bad_currency, "currency"));
  EXPECT_THAT(Amount::of("", 100), FailsWithField(Errc::bad_currency, "currency"));
}

TEST(AmountOf, ZeroFactoryIsZeroOfThatCurrency) {
  Amount z = Amount::zero(must(Currency::parse("JPY")));
  EXPECT_TRUE(z.is_zero());
  EXPECT_EQ(z, amt("JPY", 0));
}

// ---- Amount::parse

struct ParseOk {
  const char* text;
  const char* currency;
  std::int64_t minor;
};

class AmountParseOk : public ::testing::TestWithParam<ParseOk> {};

TEST_P(AmountParseOk, Parses) {
  const auto& p = GetParam();
  auto a = Amount::parse(p.text);
  ASSERT_THAT(a, IsOk()) << p.text;
  EXPECT_EQ(a->currency().code(), p.currency);
  EXPECT_EQ(a->minor(), p.minor);
}

INSTANTIATE_TEST_SUITE_P(
    Good, AmountParseOk,
    ::testing::Values(ParseOk{"CNY 12.50", "CNY", 1250}, ParseOk{"CNY 12.5", "CNY", 1250},
                      ParseOk{"CNY 12", "CNY", 1200}, ParseOk{"CNY 0", "CNY", 0},
                      ParseOk{"CNY 0.00", "CNY", 0}, ParseOk{"CNY 0.01", "CNY", 1},
                      ParseOk{"CNY 0.1", "CNY", 10}, ParseOk{"USD 1", "USD", 100},
                      ParseOk{"JPY 1000", "JPY", 1000}, ParseOk{"JPY 0", "JPY", 0},
                      ParseOk{"BHD 1.234", "BHD", 1234}, ParseOk{"BHD 0.001", "BHD", 1},
                      ParseOk{"CNY 10000000000000.00", "CNY", Amount::kMaxMinor},
                      ParseOk{"CNY 9999999999999.99", "CNY", Amount::kMaxMinor - 1},
                      ParseOk{"JPY 1000000000000000", "JPY", Amount::kMaxMinor},
                      ParseOk{"BHD 1000000000000.000", "BHD", Amount::kMaxMinor}));

struct ParseBad {
  std::string text;
  Errc code;
};

class AmountParseBad : public ::testing::TestWithParam<ParseBad> {};

TEST_P(AmountParseBad, IsRefusedWithItsCode) {
  const auto& p = GetParam();
  auto a = Amount::parse(p.text);
  EXPECT_THAT(a, FailsWith(p.code)) << "'" << p.text << "'";
  if (!a) {
    EXPECT_FALSE(a.error().field.empty()) << "errors name the field";
  }
}

INSTANTIATE_TEST_SUITE_P(
    Bad, AmountParseBad,
    ::testing::Values(
        // Shape.
        ParseBad{"", Errc::bad_amount}, ParseBad{"CNY", Errc::bad_amount},
        ParseBad{"CNY ", Errc::bad_amount}, ParseBad{"CNY12.50", Errc::bad_amount},
        ParseBad{"CNY  12", Errc::bad_amount}, ParseBad{" CNY 12", Errc::bad_amount},
        ParseBad{"CNY 12 ", Errc::bad_amount}, ParseBad{"CNY 12.", Errc::bad_amount},
        ParseBad{"CNY .5", Errc::bad_amount}, ParseBad{"CNY 1.2.3", Errc::bad_amount},
        ParseBad{"CNY 1,00", Errc::bad_amount}, ParseBad{"CNY 1e3", Errc::bad_amount},
        ParseBad{"CNY +1", Errc::bad_amount}, ParseBad{"CNY 0x10", Errc::bad_amount},
        ParseBad{"CNY 012", Errc::bad_amount}, ParseBad{"CNY 00", Errc::bad_amount},
        ParseBad{"CNY 1.-5", Errc::bad_amount}, ParseBad{"CNY\t12", Errc::bad_amount},
        ParseBad{std::string("CNY 1\0", 6), Errc::bad_amount},
        ParseBad{"CNY " + std::string(61, '1'), Errc::bad_amount},  // over 64 chars
        // Too many fraction digits for the currency.
        ParseBad{"CNY 12.505", Errc::bad_amount}, ParseBad{"JPY 1.5", Errc::bad_amount},
        ParseBad{"JPY 1.", Errc::bad_amount}, ParseBad{"BHD 1.2345", Errc::bad_amount},
        // Currency.
        ParseBad{"XXX 1.00", Errc::bad_currency}, ParseBad{"cny 1.00", Errc::bad_currency},
        // Sign.
        ParseBad{"CNY -1.00", Errc::amount_negative}, ParseBad{"CNY -0", Errc::amount_negative},
        // Range: just above the maximum, and far beyond int64 (must not wrap).
        ParseBad{"CNY 10000000000000.01", Errc::amount_overflow},
        ParseBad{"CNY 10000000000001", Errc::amount_overflow},
        ParseBad{"JPY 1000000000000001", Errc::amount_overflow},
        ParseBad{"CNY 9223372036854775807", Errc::amount_overflow},
        ParseBad{"CNY 99999999999999999999999999999999", Errc::amount_overflow},
        ParseBad{"CNY 92233720368547758.08", Errc::amount_overflow}));

// ---- to_string

TEST(AmountToString, FormatsWithTheCurrencyExponent) {
  EXPECT_EQ(amt("CNY", 1250).to_string(), "CNY 12.50");
  EXPECT_EQ(amt("CNY", 5).to_string(), "CNY 0.05");
  EXPECT_EQ(amt("CNY", 0).to_string(), "CNY 0.00");
  EXPECT_EQ(amt("CNY", 100).to_string(), "CNY 1.00");
  EXPECT_EQ(amt("JPY", 1000).to_string(), "JPY 1000");
  EXPECT_EQ(amt("JPY", 0).to_string(), "JPY 0");
  EXPECT_EQ(amt("BHD", 1005).to_string(), "BHD 1.005");
  EXPECT_EQ(amt("BHD", 7).to_string(), "BHD 0.007");
  EXPECT_EQ(amt("CNY", Amount::kMaxMinor).to_string(), "CNY 10000000000000.00");
}

TEST(AmountToString, RoundTripsThroughParse) {
  for (const char* cur : {"CNY", "JPY", "BHD", "USD"}) {
    for (std::int64_t m : {std::int64_t{0}, std::int64_t{1}, std::int64_t{9}, std::int64_t{10},
                           std::int64_t{99}, std::int64_t{100}, std::int64_t{101},
                           std::int64_t{123456789}, Amount::kMaxMinor - 1, Amount::kMaxMinor}) {
      Amount a = amt(cur, m);
      auto back = Amount::parse(a.to_string());
      ASSERT_THAT(back, IsOk()) << a.to_string();
      EXPECT_EQ(*back, a) << a.to_string();
    }
  }
}

// ---- Equality

TEST(AmountEquality, NeedsSameCurrencyAndMinor) {
  EXPECT_EQ(amt("CNY", 100), amt("CNY", 100));
  EXPECT_FALSE(amt("CNY", 100) == amt("CNY", 101));
  EXPECT_FALSE(amt("CNY", 100) == amt("HKD", 100));
}

// ---- add

TEST(AmountAdd, AddsSameCurrency) {
  auto s = amt("CNY", 1250).add(amt("CNY", 75));
  ASSERT_THAT(s, IsOk());
  EXPECT_EQ(*s, amt("CNY", 1325));
  EXPECT_EQ(*amt("CNY", 0).add(amt("CNY", 0)), amt("CNY", 0));
}

TEST(AmountAdd, ReachingTheMaximumIsAllowed) {
  auto s = amt("CNY", Amount::kMaxMinor - 1).add(amt("CNY", 1));
  ASSERT_THAT(s, IsOk());
  EXPECT_EQ(s->minor(), Amount::kMaxMinor);
  EXPECT_THAT(amt("CNY", Amount::kMaxMinor).add(amt("CNY", 0)), IsOk());
}

TEST(AmountAdd, PassingTheMaximumIsOverflow) {
  EXPECT_THAT(amt("CNY", Amount::kMaxMinor).add(amt("CNY", 1)),
              FailsWithField(Errc::amount_overflow, "amount"));
  EXPECT_THAT(amt("CNY", Amount::kMaxMinor).add(amt("CNY", Amount::kMaxMinor)),
              FailsWithField(Errc::amount_overflow, "amount"));
  EXPECT_THAT(amt("JPY", Amount::kMaxMinor / 2 + 1).add(amt("JPY", Amount::kMaxMinor / 2)),
              FailsWith(Errc::amount_overflow));
}

TEST(AmountAdd, CurrencyMismatchIsRefused) {
  EXPECT_THAT(amt("CNY", 100).add(amt("HKD", 100)),
              FailsWithField(Errc::currency_mismatch, "currency"));
  // Even zero of another currency is a mismatch: no implicit conversions.
  EXPECT_THAT(amt("CNY", 100).add(amt("USD", 0)), FailsWith(Errc::currency_mismatch));
}

// ---- sub

TEST(AmountSub, SubtractsSameCurrency) {
  auto d = amt("CNY", 1250).sub(amt("CNY", 250));
  ASSERT_THAT(d, IsOk());
  EXPECT_EQ(*d, amt("CNY", 1000));
  auto z = amt("CNY", 1250).sub(amt("CNY", 1250));
  ASSERT_THAT(z, IsOk());
  EXPECT_TRUE(z->is_zero());
}

TEST(AmountSub, NegativeResultIsRefused) {
  EXPECT_THAT(amt("CNY", 100).sub(amt("CNY", 101)),
              FailsWithField(Errc::amount_negative, "amount"));
  EXPECT_THAT(amt("CNY", 0).sub(amt("CNY", Amount::kMaxMinor)), FailsWith(Errc::amount_negative));
}

TEST(AmountSub, CurrencyMismatchIsRefused) {
  EXPECT_THAT(amt("CNY", 100).sub(amt("JPY", 1)),
              FailsWithField(Errc::currency_mismatch, "currency"));
}

// ---- compare

TEST(AmountCompare, OrdersByMinorUnits) {
  EXPECT_EQ(*amt("CNY", 1).compare(amt("CNY", 2)), std::strong_ordering::less);
  EXPECT_EQ(*amt("CNY", 2).compare(amt("CNY", 2)), std::strong_ordering::equal);
  EXPECT_EQ(*amt("CNY", 3).compare(amt("CNY", 2)), std::strong_ordering::greater);
}

TEST(AmountCompare, CurrencyMismatchIsRefused) {
  EXPECT_THAT(amt("CNY", 1).compare(amt("EUR", 1)),
              FailsWithField(Errc::currency_mismatch, "currency"));
}

}  // namespace
}  // namespace zf
