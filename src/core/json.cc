#include "core/json.h"

#include <set>
#include <vector>

namespace zf {

Result<Json> parse_json_strict(std::string_view text, JsonLimits limits) {
  if (text.size() > limits.max_bytes)
    return fail(Errc::too_large, "JSON larger than " + std::to_string(limits.max_bytes) + " bytes");
  // nlohmann treats a NUL byte as the end of input, so "{}\0anything" would parse as "{}".
  // A raw NUL is never valid JSON text (inside strings it must be escaped).
  if (text.find('\0') != std::string_view::npos)
    return fail(Errc::malformed_json, "NUL byte in JSON text");
  // The parser callback sees keys in order; one key set per open object catches duplicates
  // (nlohmann would otherwise keep the last value silently).
  std::vector<std::set<std::string>> keys;
  Error problem;
  bool failed = false;
  auto cb = [&](int depth, Json::parse_event_t event, Json& parsed) -> bool {
    if (failed) return false;
    // `depth` counts the containers around the event; a container that starts here is one
    // level deeper itself, so an empty innermost array counts like a non-empty one.
    bool opens =
        event == Json::parse_event_t::object_start || event == Json::parse_event_t::array_start;
    if (depth + (opens ? 1 : 0) > limits.max_depth) {
      problem = Error{Errc::too_deep, {}, "JSON nested deeper than " + std::to_string(limits.max_depth)};
      failed = true;
      return false;
    }
    switch (event) {
      case Json::parse_event_t::object_start:
        keys.emplace_back();
        break;
      case Json::parse_event_t::object_end:
        if (!keys.empty()) keys.pop_back();
        break;
      case Json::parse_event_t::key: {
        auto key = parsed.get<std::string>();
        if (!keys.empty() && !keys.back().insert(key).second) {
          problem = Error{Errc::duplicate_key, key, "duplicate key"};
          failed = true;
          return false;
        }
        break;
      }
      default:
        break;
    }
    return true;
  };
  try {
    Json j = Json::parse(text.begin(), text.end(), cb, /*allow_exceptions=*/true,
                         /*ignore_comments=*/false);
    if (failed) return std::unexpected(problem);
    if (j.is_discarded()) return fail(Errc::malformed_json, "JSON rejected");
    return j;
  } catch (const Json::parse_error& e) {
    if (failed) return std::unexpected(problem);
    // Our own words: the parser's message names its internals ("[json.exception...").
    return fail(Errc::malformed_json, "not valid JSON (at byte " + std::to_string(e.byte) + ")");
  } catch (const Json::exception&) {
    if (failed) return std::unexpected(problem);
    return fail(Errc::malformed_json, "not valid JSON");
  }
}

std::string dump_json(const Json& j) {
  // Replace invalid UTF-8 rather than throw; input was validated on the way in.
  return j.dump(-1, ' ', false, Json::error_handler_t::replace);
}

Result<std::string> get_string(const Json& obj, std::string_view field, std::size_t max_len) {
  auto it = obj.find(field);
  if (it == obj.end()) return fail(Errc::missing_field, "required", std::string(field));
  if (!it->is_string()) return fail(Errc::bad_field, "must be a string", std::string(field));
  const auto& s = it->get_ref<const std::string&>();
  if (s.size() > max_len) return fail(Errc::bad_field, "string too long", std::string(field));
  return s;
}

Result<std::int64_t> get_int(const Json& obj, std::string_view field) {
  auto it = obj.find(field);
  if (it == obj.end()) return fail(Errc::missing_field, "required", std::string(field));
  if (it->is_number_integer()) {
    if (it->is_number_unsigned() && it->get<std::uint64_t>() > INT64_MAX)
      return fail(Errc::bad_field, "integer out of range", std::string(field));
    return it->get<std::int64_t>();
  }
  return fail(Errc::bad_field, "must be an integer", std::string(field));
}

Result<bool> get_bool(const Json& obj, std::string_view field) {
  auto it = obj.find(field);
  if (it == obj.end()) return fail(Errc::missing_field, "required", std::string(field));
  if (!it->is_boolean()) return fail(Errc::bad_field, "must be a boolean", std::string(field));
  return it->get<bool>();
}

bool has_field(const Json& obj, std::string_view field) {
  return obj.is_object() && obj.find(field) != obj.end();
}

Status only_fields(const Json& obj, std::initializer_list<std::string_view> allowed) {
  if (!obj.is_object()) return fail(Errc::bad_field, "must be an object");
  for (const auto& [key, _] : obj.items()) {
    bool ok = false;
    for (auto a : allowed) ok = ok || a == key;
    if (!ok) return fail(Errc::unknown_field, "field not allowed", key);
  }
  return {};
}

}  // namespace zf
