// Fuzz target: document payloads (DESIGN.md §4), from text and from parsed JSON.
// Checks that both entry points agree and that an accepted document survives the
// re-serialization it is signed in (dump_json) unchanged.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "core/document.h"
#include "fuzz_fixtures.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  auto from_text = zf::Document::parse(text);

  // Document::parse uses these limits; from_json over the same JSON must agree with it.
  auto j = zf::parse_json_strict(text, {zf::kMaxJoseBytes, 8});
  if (!j) {
    if (from_text) __builtin_trap();
    return 0;
  }
  auto doc = zf::Document::from_json(*j);
  if (doc.has_value() != from_text.has_value()) __builtin_trap();
  if (!doc) return 0;

  // Accepted documents carry what their type promises.
  const zf::DocTypeSpec* spec = zf::find_doc_type(doc->type());
  if (!spec || spec->version != doc->version()) __builtin_trap();
  if (spec->se_issued && !doc->seq()) __builtin_trap();
  if (doc->amount() && (doc->amount()->is_zero() || doc->amount()->minor() > zf::Amount::kMaxMinor))
    __builtin_trap();
  (void)doc->check_time(zf::fuzz::kFuzzNow);
  (void)doc->str("account");

  std::string again = zf::dump_json(doc->json());
  if (again.size() <= zf::kMaxJoseBytes) {
    auto back = zf::Document::parse(again);
    if (!back || back->json() != doc->json() || back->id() != doc->id() ||
        back->amount() != doc->amount())
      __builtin_trap();
  }
  return 0;
}
