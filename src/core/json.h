// Strict JSON: size and depth limits, duplicate keys refused, no trailing data,
// and typed field accessors that name the offending field.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "core/error.h"

namespace zf {

using Json = nlohmann::json;

struct JsonLimits {
  std::size_t max_bytes = 64 * 1024;
  int max_depth = 16;
};

// Parses untrusted text. Never throws.
Result<Json> parse_json_strict(std::string_view text, JsonLimits limits = {});
// Canonical-enough serialization for signing: compact, keys sorted (nlohmann default).
std::string dump_json(const Json& j);

// Typed accessors over an object; each error names `field`.
Result<std::string> get_string(const Json& obj, std::string_view field, std::size_t max_len = 256);
Result<std::int64_t> get_int(const Json& obj, std::string_view field);
Result<bool> get_bool(const Json& obj, std::string_view field);
bool has_field(const Json& obj, std::string_view field);
// Refuses any key not in `allowed`.
Status only_fields(const Json& obj, std::initializer_list<std::string_view> allowed);

}  // namespace zf
