#include "registry/api.h"

#include "core/jose.h"

namespace zf::registry {

Json alert_to_json(const Alert& a) {
  return Json{{"id", a.id},
              {"se_id", a.se_id},
              {"seq", a.seq},
              {"first_doc_id", a.first_doc_id},
              {"first_processor", a.first_processor},
              {"second_doc_id", a.second_doc_id},
              {"second_processor", a.second_processor},
              {"second_claim", a.second_claim_jws},
              {"created_at", a.created_at}};
}

Result<Alert> alert_from_json(const Json& j) {
  Alert a;
  auto str = [&](const char* field, std::size_t max_len, std::string& out) -> Status {
    auto v = get_string(j, field, max_len);
    if (!v) return std::unexpected(v.error());
    out = std::move(*v);
    return {};
  };
  auto num = [&](const char* field, std::int64_t& out) -> Status {
    auto v = get_int(j, field);
    if (!v) return std::unexpected(v.error());
    out = *v;
    return {};
  };
  for (Status s :
       {num("id", a.id), str("se_id", 128, a.se_id), num("seq", a.seq),
        str("first_doc_id", 128, a.first_doc_id), str("first_processor", 128, a.first_processor),
        str("second_doc_id", 128, a.second_doc_id),
        str("second_processor", 128, a.second_processor),
        str("second_claim", kMaxJoseBytes, a.second_claim_jws), num("created_at", a.created_at)})
    if (!s) return std::unexpected(s.error());
  return a;
}

}  // namespace zf::registry
