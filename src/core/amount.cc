#include "core/amount.h"

#include <array>
#include <cstring>

namespace zf {
namespace {

struct CurrencyRow {
  std::string_view code;
  int exponent;
};

// The currencies the system knows; adding one is a deliberate change.
constexpr std::array kCurrencies = {
    CurrencyRow{"CNY", 2}, CurrencyRow{"HKD", 2}, CurrencyRow{"MOP", 2}, CurrencyRow{"TWD", 2},
    CurrencyRow{"USD", 2}, CurrencyRow{"EUR", 2}, CurrencyRow{"GBP", 2}, CurrencyRow{"CHF", 2},
    CurrencyRow{"SGD", 2}, CurrencyRow{"JPY", 0}, CurrencyRow{"KRW", 0}, CurrencyRow{"BHD", 3},
};

std::int64_t pow10(int n) {
  std::int64_t p = 1;
  for (int i = 0; i < n; ++i) p *= 10;
  return p;
}

}  // namespace

Currency::Currency(std::string_view code, int exponent) : exponent_(exponent) {
  std::memcpy(code_, code.data(), 3);
}

Result<Currency> Currency::parse(std::string_view code) {
  for (const auto& row : kCurrencies) {
    if (row.code == code) return Currency(row.code, row.exponent);
  }
  return fail(Errc::bad_currency, "unknown currency '" + std::string(code.substr(0, 8)) + "'",
              "currency");
}

Result<Amount> Amount::of(Currency currency, std::int64_t minor) {
  if (minor < 0) return fail(Errc::amount_negative, "amount is negative", "amount");
  if (minor > kMaxMinor) return fail(Errc::amount_overflow, "amount exceeds maximum", "amount");
  return Amount(currency, minor);
}

Result<Amount> Amount::of(std::string_view currency, std::int64_t minor) {
  auto cur = Currency::parse(currency);
  if (!cur) return std::unexpected(cur.error());
  return of(*cur, minor);
}

Result<Amount> Amount::parse(std::string_view text) {
  if (text.size() > 64) return fail(Errc::bad_amount, "amount text too long", "amount");
  if (text.size() < 5 || text[3] != ' ')
    return fail(Errc::bad_amount, "expected 'CUR digits[.digits]'", "amount");
  auto cur = Currency::parse(text.substr(0, 3));
  if (!cur) return std::unexpected(cur.error());
  std::string_view num = text.substr(4);
  if (num.front() == '-') return fail(Errc::amount_negative, "amount is negative", "amount");
  auto dot = num.find('.');
  std::string_view whole = num.substr(0, dot);
  std::string_view frac = dot == std::string_view::npos ? std::string_view{} : num.substr(dot + 1);
  auto all_digits = [](std::string_view s) {
    for (char c : s)
      if (c < '0' || c > '9') return false;
    return true;
  };
  if (whole.empty() || !all_digits(whole) || !all_digits(frac) ||
      (dot != std::string_view::npos && frac.empty()))
    return fail(Errc::bad_amount, "amount is not a decimal number", "amount");
  if (whole.size() > 1 && whole.front() == '0')
    return fail(Errc::bad_amount, "leading zeros", "amount");
  if (static_cast<int>(frac.size()) > cur->exponent())
    return fail(Errc::bad_amount, "too many fraction digits for " + std::string(cur->code()),
                "amount");
  // Accumulate with an explicit bound so no intermediate can overflow int64.
  std::int64_t minor = 0;
  auto push = [&](char c) -> bool {
    if (minor > (kMaxMinor - (c - '0')) / 10) return false;
    minor = minor * 10 + (c - '0');
    return true;
  };
  for (char c : whole)
    if (!push(c)) return fail(Errc::amount_overflow, "amount exceeds maximum", "amount");
  for (char c : frac)
    if (!push(c)) return fail(Errc::amount_overflow, "amount exceeds maximum", "amount");
  for (int i = static_cast<int>(frac.size()); i < cur->exponent(); ++i)
    if (!push('0')) return fail(Errc::amount_overflow, "amount exceeds maximum", "amount");
  return Amount(*cur, minor);
}

std::string Amount::to_string() const {
  std::string out(currency_.code());
  out += ' ';
  int e = currency_.exponent();
  std::int64_t unit = pow10(e);
  out += std::to_string(minor_ / unit);
  if (e > 0) {
    std::string frac = std::to_string(minor_ % unit);
    out += '.';
    out.append(static_cast<std::size_t>(e) - frac.size(), '0');
    out += frac;
  }
  return out;
}

Result<Amount> Amount::add(const Amount& other) const {
  if (!(currency_ == other.currency_))
    return fail(Errc::currency_mismatch,
                std::string(currency_.code()) + " vs " + std::string(other.currency_.code()),
                "currency");
  // Both operands are <= kMaxMinor < INT64_MAX / 2, so the sum cannot wrap.
  std::int64_t sum = minor_ + other.minor_;
  if (sum > kMaxMinor) return fail(Errc::amount_overflow, "sum exceeds maximum", "amount");
  return Amount(currency_, sum);
}

Result<Amount> Amount::sub(const Amount& other) const {
  if (!(currency_ == other.currency_))
    return fail(Errc::currency_mismatch,
                std::string(currency_.code()) + " vs " + std::string(other.currency_.code()),
                "currency");
  if (other.minor_ > minor_) return fail(Errc::amount_negative, "result would be negative", "amount");
  return Amount(currency_, minor_ - other.minor_);
}

Result<std::strong_ordering> Amount::compare(const Amount& other) const {
  if (!(currency_ == other.currency_))
    return fail(Errc::currency_mismatch,
                std::string(currency_.code()) + " vs " + std::string(other.currency_.code()),
                "currency");
  return minor_ <=> other.minor_;
}

}  // namespace zf
