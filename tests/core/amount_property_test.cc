// RapidCheck properties of Amount: formatting round-trips and checked arithmetic
// agrees with a plain integer model over the whole range 0..kMaxMinor.
#include <gtest/gtest.h>
#include <rapidcheck.h>
#include <rapidcheck/gtest.h>

#include <cstdint>
#include <string>

#include "core/amount.h"

namespace zf {
namespace {

constexpr std::int64_t kMax = Amount::kMaxMinor;

rc::Gen<std::string> gen_currency() {
  return rc::gen::element<std::string>("CNY", "USD", "EUR", "JPY", "KRW", "BHD", "HKD");
}

// Uniform over the range, plus small values and the edges where bugs live.
rc::Gen<std::int64_t> gen_minor() {
  return rc::gen::oneOf(
      rc::gen::inRange<std::int64_t>(0, kMax + 1), rc::gen::inRange<std::int64_t>(0, 1000),
      rc::gen::element<std::int64_t>(0, 1, 9, 10, 99, 100, kMax - 1, kMax, kMax / 2, kMax / 2 + 1));
}

Amount make(const std::string& cur, std::int64_t minor) { return *Amount::of(cur, minor); }

RC_GTEST_PROP(AmountProperty, ParseOfToStringIsIdentity, ()) {
  const auto cur = *gen_currency();
  const auto minor = *gen_minor();
  Amount a = make(cur, minor);
  auto back = Amount::parse(a.to_string());
  RC_ASSERT(back.has_value());
  RC_ASSERT(*back == a);
}

RC_GTEST_PROP(AmountProperty, AddMatchesIntegerModel, ()) {
  const auto cur = *gen_currency();
  const auto x = *gen_minor();
  const auto y = *gen_minor();
  auto sum = make(cur, x).add(make(cur, y));
  if (x + y <= kMax) {  // cannot wrap: both are <= 10^15
    RC_ASSERT(sum.has_value());
    RC_ASSERT(sum->minor() == x + y);
    // Add then subtract is the identity.
    auto back = sum->sub(make(cur, y));
    RC_ASSERT(back.has_value());
    RC_ASSERT(*back == make(cur, x));
  } else {
    RC_ASSERT(!sum.has_value());
    RC_ASSERT(sum.error().code == Errc::amount_overflow);
  }
}

RC_GTEST_PROP(AmountProperty, SubMatchesIntegerModel, ()) {
  const auto cur = *gen_currency();
  const auto x = *gen_minor();
  const auto y = *gen_minor();
  auto diff = make(cur, x).sub(make(cur, y));
  if (y <= x) {
    RC_ASSERT(diff.has_value());
    RC_ASSERT(diff->minor() == x - y);
    auto back = diff->add(make(cur, y));
    RC_ASSERT(back.has_value());
    RC_ASSERT(*back == make(cur, x));
  } else {
    RC_ASSERT(!diff.has_value());
    RC_ASSERT(diff.error().code == Errc::amount_negative);
  }
}

RC_GTEST_PROP(AmountProperty, CompareMatchesIntegerModel, ()) {
  const auto cur = *gen_currency();
  const auto x = *gen_minor();
  const auto y = *gen_minor();
  auto c = make(cur, x).compare(make(cur, y));
  RC_ASSERT(c.has_value());
  RC_ASSERT(*c == (x <=> y));
}

RC_GTEST_PROP(AmountProperty, DifferentCurrenciesNeverMix, ()) {
  const auto a = *gen_currency();
  const auto b = *gen_currency();
  RC_PRE(a != b);
  const auto x = *gen_minor();
  const auto y = *gen_minor();
  RC_ASSERT(make(a, x).add(make(b, y)).error().code == Errc::currency_mismatch);
  RC_ASSERT(make(a, x).sub(make(b, y)).error().code == Errc::currency_mismatch);
  RC_ASSERT(make(a, x).compare(make(b, y)).error().code == Errc::currency_mismatch);
}

// Arbitrary text never crashes the parser, and whatever it accepts is in range and
// re-parses to the same amount from its canonical form.
RC_GTEST_PROP(AmountProperty, ParseOfArbitraryTextIsSafe, ()) {
  const auto cur = *gen_currency();
  const auto body = *rc::gen::container<std::string>(
      rc::gen::element('0', '1', '5', '9', '.', '-', '+', ' ', 'e', 'x'));
  const auto text =
      *rc::gen::oneOf(rc::gen::just(cur + " " + body), rc::gen::arbitrary<std::string>());
  auto a = Amount::parse(text);
  if (a) {
    RC_ASSERT(a->minor() >= 0);
    RC_ASSERT(a->minor() <= kMax);
    auto again = Amount::parse(a->to_string());
    RC_ASSERT(again.has_value());
    RC_ASSERT(*again == *a);
  } else {
    RC_ASSERT(!a.error().field.empty());
  }
}

}  // namespace
}  // namespace zf
