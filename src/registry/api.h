// JSON shapes of the registry API that are not documents (docs/registry-api.md).
#pragma once

#include "core/json.h"
#include "registry/store.h"

namespace zf::registry {

// An alert as GET /v1/alerts shows it: {id, se_id, seq, first_doc_id,
// first_processor, second_doc_id, second_processor, second_claim, created_at}.
Json alert_to_json(const Alert& a);
Result<Alert> alert_from_json(const Json& j);

}  // namespace zf::registry
