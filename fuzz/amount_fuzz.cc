// Fuzz target: amount and currency text ("CNY 12.50").
// Checks the round trip parse(to_string(a)) == a and the checked arithmetic: an input
// with a newline is read as two amounts whose sum and difference are compared with
// plain integer arithmetic.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "core/amount.h"

namespace {

void check_one(const zf::Amount& a) {
  if (a.minor() < 0 || a.minor() > zf::Amount::kMaxMinor) __builtin_trap();
  auto back = zf::Amount::parse(a.to_string());
  if (!back || !(*back == a)) __builtin_trap();
  auto zero = a.sub(a);
  if (!zero || !zero->is_zero()) __builtin_trap();
  auto cmp = a.compare(a);
  if (!cmp || *cmp != std::strong_ordering::equal) __builtin_trap();
}

void check_pair(const zf::Amount& a, const zf::Amount& b) {
  auto sum = a.add(b);
  auto diff = a.sub(b);
  auto cmp = a.compare(b);
  if (!(a.currency() == b.currency())) {
    if (sum || diff || cmp) __builtin_trap();
    return;
  }
  // Both are <= kMaxMinor, so the plain sum cannot overflow int64.
  std::int64_t want_sum = a.minor() + b.minor();
  if (sum.has_value() != (want_sum <= zf::Amount::kMaxMinor)) __builtin_trap();
  if (sum && sum->minor() != want_sum) __builtin_trap();
  if (diff.has_value() != (a.minor() >= b.minor())) __builtin_trap();
  if (diff && diff->minor() != a.minor() - b.minor()) __builtin_trap();
  if (!cmp || *cmp != (a.minor() <=> b.minor())) __builtin_trap();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  (void)zf::Currency::parse(text);
  if (text.size() >= 3) {
    if (auto c = zf::Currency::parse(text.substr(0, 3)); c && c->code() != text.substr(0, 3))
      __builtin_trap();
  }

  auto a = zf::Amount::parse(text);
  if (a) check_one(*a);

  auto nl = text.find('\n');
  if (nl == std::string_view::npos) return 0;
  auto first = zf::Amount::parse(text.substr(0, nl));
  auto second = zf::Amount::parse(text.substr(nl + 1));
  if (first) check_one(*first);
  if (second) check_one(*second);
  if (first && second) {
    check_pair(*first, *second);
    check_pair(*second, *first);
  }
  return 0;
}
