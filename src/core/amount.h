// Money: integer minor units plus an ISO-4217 currency. No floating point.
#pragma once

#include <compare>
#include <cstdint>
#include <string>
#include <string_view>

#include "core/error.h"

namespace zf {

// A known ISO-4217 currency code with its minor-unit exponent.
class Currency {
 public:
  // Accepts only currencies in the built-in table ("CNY", "USD", ...).
  static Result<Currency> parse(std::string_view code);
  std::string_view code() const { return std::string_view(code_, 3); }
  int exponent() const { return exponent_; }
  friend bool operator==(const Currency& a, const Currency& b) { return a.code() == b.code(); }

 private:
  Currency(std::string_view code, int exponent);
  char code_[3] = {};
  int exponent_ = 2;
};

// A non-negative amount of one currency, at most Amount::kMaxMinor minor units.
class Amount {
 public:
  // 10^15 minor units: below 2^53 so every amount survives a JSON number in any language.
  static constexpr std::int64_t kMaxMinor = 1'000'000'000'000'000;

  // Validates range (0..kMaxMinor).
  static Result<Amount> of(Currency currency, std::int64_t minor);
  static Result<Amount> of(std::string_view currency, std::int64_t minor);
  // Parses "CNY 12.50"; fraction digits may not exceed the currency's exponent.
  static Result<Amount> parse(std::string_view text);
  static Amount zero(Currency currency) { return Amount(currency, 0); }

  const Currency& currency() const { return currency_; }
  std::int64_t minor() const { return minor_; }
  bool is_zero() const { return minor_ == 0; }

  // "CNY 12.50".
  std::string to_string() const;

  // Checked arithmetic: currency mismatch, overflow past kMaxMinor and negative results are errors.
  Result<Amount> add(const Amount& other) const;
  Result<Amount> sub(const Amount& other) const;
  // Checked comparison; a currency mismatch is an error.
  Result<std::strong_ordering> compare(const Amount& other) const;

  friend bool operator==(const Amount& a, const Amount& b) {
    return a.currency_ == b.currency_ && a.minor_ == b.minor_;
  }

 private:
  Amount(Currency currency, std::int64_t minor) : currency_(currency), minor_(minor) {}
  Currency currency_;
  std::int64_t minor_ = 0;
};

}  // namespace zf
