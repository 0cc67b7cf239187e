// Helpers the applet's command files share (not part of its interface).
#pragma once

#include <algorithm>
#include <initializer_list>
#include <string>
#include <string_view>

#include "core/json.h"
#include "se/applet.h"

namespace zf::se::detail {


inline constexpr std::size_t kMaxPending = 16;

inline Result<Json> json_data(const Command& c) {
  auto j = parse_json_strict(to_string(c.data), {kMaxJoseBytes, 8});
  if (!j) return j;
  if (!j->is_object()) return fail(Errc::bad_field, "command data must be a JSON object");
  return j;
}

inline Bytes json_bytes(const Json& j) {
  std::string s = dump_json(j);
  return Bytes(s.begin(), s.end());
}

inline bool digits(std::string_view s, std::size_t min, std::size_t max) {
  return s.size() >= min && s.size() <= max &&
         std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

inline Bytes salted_hash(ByteView salt, std::string_view secret) {
  Bytes in(salt.begin(), salt.end());
  in.insert(in.end(), secret.begin(), secret.end());
  Bytes h = sha256(in);
  std::fill(in.begin(), in.end(), 0);
  return h;
}

inline const char* lifecycle_name(Lifecycle l) {
  switch (l) {
    case Lifecycle::factory:
      return "factory";
    case Lifecycle::personalized:
      return "personalized";
    case Lifecycle::active:
      return "active";
  }
  return "?";
}

// Copies the named fields of a JSON command into a document payload, refusing any other field.
inline Result<Json> take_fields(const Json& in, std::initializer_list<std::string_view> fields) {
  if (auto s = only_fields(in, fields); !s) return std::unexpected(s.error());
  Json out = Json::object();
  for (auto f : fields)
    if (in.contains(f)) out[std::string(f)] = in[std::string(f)];
  return out;
}

// A base64url field of exactly `size` bytes.
inline Result<Bytes> get_b64(const Json& j, const char* field, std::size_t size) {
  auto text = get_string(j, field, 4 * size);
  if (!text) return std::unexpected(text.error());
  auto b = b64url_decode(*text);
  if (!b || b->size() != size)
    return fail(Errc::bad_field, "base64url of " + std::to_string(size) + " bytes", field);
  return b;
}

inline Json log_entry_json(const LogEntry& e) {
  return Json{{"seq", e.seq},           {"op", e.op},   {"doc_id", e.doc_id},
              {"currency", e.currency}, {"amount_minor", e.amount_minor},
              {"counterparty", e.counterparty}, {"at", e.at}};
}

}  // namespace zf::se::detail
