// Fuzz target: strict JSON parsing (the first gate every untrusted body passes).
// Besides "no crash", checks that accepted text holds no raw NUL and that an accepted value
// re-serializes into text that parses back to the same value (signatures are made over
// dump_json output).
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "core/json.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  // Tight limits too, so the size and depth refusals are reached with short inputs.
  (void)zf::parse_json_strict(text, {256, 3});
  auto j = zf::parse_json_strict(text);
  if (!j) return 0;
  // A raw NUL is never part of valid JSON text; accepting one means the parser stopped early.
  if (text.find('\0') != std::string_view::npos) __builtin_trap();

  std::string again = zf::dump_json(*j);
  auto back = zf::parse_json_strict(again, {again.size(), zf::JsonLimits{}.max_depth});
  if (!back || *back != *j) __builtin_trap();

  // The typed accessors must answer with a value or an error for any shape.
  for (std::string_view field : {"type", "v", "id", "amount", ""}) {
    (void)zf::get_string(*j, field);
    (void)zf::get_int(*j, field);
    (void)zf::get_bool(*j, field);
    (void)zf::has_field(*j, field);
  }
  (void)zf::only_fields(*j, {"type", "v", "id"});
  return 0;
}
