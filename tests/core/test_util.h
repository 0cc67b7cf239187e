// Small helpers shared by the core tests: readable printing of error values,
// matchers on Result<T>/Status, and byte helpers. Header-only, namespace zf::test.
#pragma once

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <ostream>
#include <stdexcept>
#include <string>
#include <string_view>

#include "core/encoding.h"
#include "core/error.h"

namespace zf {

// gtest finds these by ADL, so failures print "amount_overflow" instead of raw bytes.
inline void PrintTo(Errc code, std::ostream* os) { *os << errc_name(code); }
inline void PrintTo(const Error& e, std::ostream* os) { *os << e.message(); }

}  // namespace zf

namespace zf::test {

// Unwraps a result that a test's setup needs; throws (gtest reports it) when it failed.
template <class T>
T must(Result<T> r, std::string_view what = "setup") {
  if (!r) throw std::runtime_error(std::string(what) + ": " + r.error().message());
  return std::move(*r);
}
inline void must(const Status& s, std::string_view what = "setup") {
  if (!s) throw std::runtime_error(std::string(what) + ": " + s.error().message());
}

// Succeeds when the Result/Status holds a value.
MATCHER(IsOk, "succeeds") {
  if (arg.has_value()) return true;
  *result_listener << "failed with " << arg.error().message();
  return false;
}

// Succeeds when the Result/Status failed with exactly `code`.
MATCHER_P(FailsWith, code, "fails with " + std::string(errc_name(code))) {
  if (arg.has_value()) {
    *result_listener << "succeeded";
    return false;
  }
  *result_listener << "failed with " << arg.error().message();
  return arg.error().code == code;
}

// Succeeds when the Result/Status failed with exactly `code` naming `field`.
MATCHER_P2(FailsWithField, code, field,
           "fails with " + std::string(errc_name(code)) + " on field '" + std::string(field) +
               "'") {
  if (arg.has_value()) {
    *result_listener << "succeeded";
    return false;
  }
  *result_listener << "failed with " << arg.error().message();
  return arg.error().code == code && arg.error().field == std::string(field);
}

// Hex text (test vectors) to bytes; throws on bad hex.
inline Bytes unhex(std::string_view hex) { return must(hex_decode(hex), "test vector hex"); }
inline Bytes bytes_of(std::string_view s) {
  auto v = as_bytes(s);
  return Bytes(v.begin(), v.end());
}
// Base64url text (test vectors) to bytes; throws on bad input.
inline Bytes unb64url(std::string_view text) {
  return must(b64url_decode(text), "test vector base64url");
}

}  // namespace zf::test
