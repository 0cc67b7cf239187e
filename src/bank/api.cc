#include "bank/api.h"

namespace zf::bank {
namespace {

template <class T>
std::unexpected<Error> up(const Result<T>& r) {
  return std::unexpected(r.error());
}

Result<std::vector<std::string>> string_array(const Json& j, std::string_view field) {
  auto it = j.find(field);
  if (it == j.end() || !it->is_array())
    return fail(Errc::bad_field, "must be an array", std::string(field));
  std::vector<std::string> out;
  for (const auto& e : *it) {
    if (!e.is_string()) return fail(Errc::bad_field, "entries must be strings", std::string(field));
    out.push_back(e.get<std::string>());
  }
  return out;
}

}  // namespace

// "co_managers": an array of at most 16 SE ids, if present.
static Result<std::vector<std::string>> co_managers_from_json(const Json& j) {
  std::vector<std::string> out;
  if (!has_field(j, "co_managers")) return out;
  const Json& list = j.at("co_managers");
  if (!list.is_array() || list.empty() || list.size() > 16)
    return fail(Errc::bad_field, "an array of 1..16 SE ids", "co_managers");
  for (const auto& se : list) {
    if (!se.is_string() || se.get_ref<const std::string&>().size() > 128)
      return fail(Errc::bad_field, "an array of 1..16 SE ids", "co_managers");
    out.push_back(se.get<std::string>());
  }
  return out;
}

Json account_to_json(const AccountRecord& a) {
  Json j{{"account", a.id},
         {"kind", std::string(ledger::kind_name(a.kind))},
         {"currency", a.currency},
         {"user_id", a.user_id},
         {"balance_minor", a.balance_minor},
         {"created_at", a.created_at}};
  if (a.se_id) j["se_id"] = *a.se_id;
  if (!a.co_managers.empty()) {
    j["co_managers"] = a.co_managers;
    j["threshold"] = a.threshold;
  }
  return j;
}

Result<AccountRecord> account_from_json(const Json& j) {
  AccountRecord a;
  auto id = get_string(j, "account", 128);
  if (!id) return up(id);
  a.id = *id;
  auto kind = get_string(j, "kind", 32);
  if (!kind) return up(kind);
  auto k = ledger::kind_from_name(*kind);
  if (!k) return up(k);
  a.kind = *k;
  auto cur = get_string(j, "currency", 3);
  if (!cur) return up(cur);
  a.currency = *cur;
  auto user = get_string(j, "user_id", 64);
  if (!user) return up(user);
  a.user_id = *user;
  if (has_field(j, "se_id")) {
    auto se = get_string(j, "se_id", 128);
    if (!se) return up(se);
    a.se_id = *se;
  }
  if (auto m = co_managers_from_json(j); !m) return up(m);
  else a.co_managers = std::move(*m);
  if (has_field(j, "threshold")) {
    auto t = get_int(j, "threshold");
    if (!t) return up(t);
    a.threshold = static_cast<int>(*t);
  }
  auto bal = get_int(j, "balance_minor");
  if (!bal) return up(bal);
  a.balance_minor = *bal;
  auto created = get_int(j, "created_at");
  if (!created) return up(created);
  a.created_at = *created;
  return a;
}

Json feed_to_json(const Feed& f) {
  Json events = Json::array();
  for (const auto& e : f.events)
    events.push_back(Json{{"entry_id", e.entry_id},
                          {"doc_id", e.doc_id},
                          {"kind", e.kind},
                          {"amount_minor", e.amount_minor},
                          {"held_minor", e.held_minor},
                          {"created_at", e.created_at},
                          {"receipt", e.receipt}});
  return Json{{"account", f.account}, {"currency", f.currency}, {"next", f.next}, {"events", events}};
}

Json statement_to_json(const Statement& s) {
  Json history = Json::array();
  for (const auto& h : s.history)
    history.push_back(Json{{"entry_id", h.entry_id},
                           {"doc_id", h.doc_id},
                           {"kind", h.kind},
                           {"amount_minor", h.amount_minor},
                           {"created_at", h.created_at}});
  return Json{{"account", s.account.id},
              {"currency", s.account.currency},
              {"balance_minor", s.account.balance_minor},
              {"history", history}};
}

Result<Statement> statement_from_json(const Json& j) {
  Statement s;
  auto id = get_string(j, "account", 128);
  if (!id) return up(id);
  s.account.id = *id;
  auto cur = get_string(j, "currency", 3);
  if (!cur) return up(cur);
  s.account.currency = *cur;
  auto bal = get_int(j, "balance_minor");
  if (!bal) return up(bal);
  s.account.balance_minor = *bal;
  auto it = j.find("history");
  if (it == j.end() || !it->is_array()) return fail(Errc::bad_field, "must be an array", "history");
  for (const auto& h : *it) {
    HistoryItem item;
    auto e = get_int(h, "entry_id");
    if (!e) return up(e);
    item.entry_id = *e;
    auto d = get_string(h, "doc_id", 256);
    if (!d) return up(d);
    item.doc_id = *d;
    auto k = get_string(h, "kind", 32);
    if (!k) return up(k);
    item.kind = *k;
    auto a = get_int(h, "amount_minor");
    if (!a) return up(a);
    item.amount_minor = *a;
    auto c = get_int(h, "created_at");
    if (!c) return up(c);
    item.created_at = *c;
    s.history.push_back(std::move(item));
  }
  return s;
}

Json open_account_to_json(const OpenAccountRequest& r) {
  Json j{{"account", r.account}, {"currency", r.currency}, {"user_id", r.user_id}};
  if (r.se_id) j["se_id"] = *r.se_id;
  if (!r.co_managers.empty()) j["co_managers"] = r.co_managers;
  if (r.threshold != 0) j["threshold"] = r.threshold;
  return j;
}

Result<OpenAccountRequest> open_account_from_json(const Json& j) {
  if (auto s = only_fields(j, {"account", "currency", "user_id", "se_id", "co_managers", "threshold"}); !s) return up(s);
  OpenAccountRequest r;
  auto id = get_string(j, "account", 128);
  if (!id) return up(id);
  r.account = *id;
  auto cur = get_string(j, "currency", 8);
  if (!cur) return up(cur);
  r.currency = *cur;
  auto user = get_string(j, "user_id", 64);
  if (!user) return up(user);
  r.user_id = *user;
  if (has_field(j, "se_id")) {
    auto se = get_string(j, "se_id", 128);
    if (!se) return up(se);
    r.se_id = *se;
  }
  auto members = co_managers_from_json(j);
  if (!members) return up(members);
  r.co_managers = std::move(*members);
  if (has_field(j, "threshold")) {
    auto t = get_int(j, "threshold");
    if (!t) return up(t);
    if (*t < 0 || *t > 16) return fail(Errc::bad_field, "0..16", "threshold");
    r.threshold = static_cast<int>(*t);
  }
  return r;
}

Json cash_in_request_to_json(const CashInRequest& r) {
  return Json{{"account", r.account},
              {"amount_minor", r.amount.minor()},
              {"currency", std::string(r.amount.currency().code())},
              {"ref", r.ref}};
}

Result<CashInRequest> cash_in_from_json(const Json& j) {
  if (auto s = only_fields(j, {"account", "amount_minor", "currency", "ref"}); !s) return up(s);
  auto id = get_string(j, "account", 128);
  if (!id) return up(id);
  auto cur = get_string(j, "currency", 8);
  if (!cur) return up(cur);
  auto it = j.find("amount_minor");
  if (it == j.end()) return fail(Errc::missing_field, "required", "amount_minor");
  if (!it->is_number_integer())
    return fail(Errc::bad_amount, "must be an integer of minor units", "amount_minor");
  if (it->is_number_unsigned() &&
      it->get<std::uint64_t>() > static_cast<std::uint64_t>(Amount::kMaxMinor))
    return fail(Errc::amount_overflow, "amount exceeds maximum", "amount_minor");
  auto amount = Amount::of(*cur, it->get<std::int64_t>());
  if (!amount) return up(amount);
  auto ref = get_string(j, "ref", 128);
  if (!ref) return up(ref);
  return CashInRequest{*id, *amount, *ref};
}

Json cash_in_to_json(const CashInResult& c) {
  return Json{{"ref", c.ref},           {"account", c.account},   {"amount_minor", c.amount_minor},
              {"currency", c.currency}, {"entry_id", c.entry_id}, {"replayed", c.replayed}};
}

Result<CashInResult> cash_in_result_from_json(const Json& j) {
  CashInResult c;
  auto ref = get_string(j, "ref", 128);
  if (!ref) return up(ref);
  c.ref = *ref;
  auto id = get_string(j, "account", 128);
  if (!id) return up(id);
  c.account = *id;
  auto amount = get_int(j, "amount_minor");
  if (!amount) return up(amount);
  c.amount_minor = *amount;
  auto cur = get_string(j, "currency", 8);
  if (!cur) return up(cur);
  c.currency = *cur;
  auto e = get_int(j, "entry_id");
  if (!e) return up(e);
  c.entry_id = *e;
  auto r = get_bool(j, "replayed");
  if (!r) return up(r);
  c.replayed = *r;
  return c;
}

Json audit_to_json(const ledger::AuditReport& r) {
  Json currencies = Json::array();
  for (const auto& f : r.currencies)
    currencies.push_back(Json{{"currency", f.currency},
                              {"customer_minor", f.customer_minor},
                              {"joint_minor", f.joint_minor},
                              {"hold_minor", f.hold_minor},
                              {"ecash_outstanding_minor", f.ecash_outstanding_minor},
                              {"settlement_minor", f.settlement_minor},
                              {"issued_minor", f.issued_minor},
                              {"conserved", f.conserved}});
  return Json{{"ok", r.ok()},
              {"accounts", r.accounts},
              {"entries", r.entries},
              {"currencies", currencies},
              {"violations", r.violations}};
}

Result<ledger::AuditReport> audit_from_json(const Json& j) {
  ledger::AuditReport r;
  auto accounts = get_int(j, "accounts");
  if (!accounts) return up(accounts);
  r.accounts = static_cast<std::size_t>(*accounts);
  auto entries = get_int(j, "entries");
  if (!entries) return up(entries);
  r.entries = static_cast<std::size_t>(*entries);
  auto it = j.find("currencies");
  if (it == j.end() || !it->is_array())
    return fail(Errc::bad_field, "must be an array", "currencies");
  for (const auto& c : *it) {
    ledger::CurrencyFigures f;
    auto cur = get_string(c, "currency", 8);
    if (!cur) return up(cur);
    f.currency = *cur;
    struct Field {
      const char* name;
      std::int64_t* out;
    };
    for (Field fld :
         {Field{"customer_minor", &f.customer_minor}, Field{"joint_minor", &f.joint_minor},
          Field{"hold_minor", &f.hold_minor},
          Field{"ecash_outstanding_minor", &f.ecash_outstanding_minor},
          Field{"settlement_minor", &f.settlement_minor}, Field{"issued_minor", &f.issued_minor}}) {
      auto v = get_int(c, fld.name);
      if (!v) return up(v);
      *fld.out = *v;
    }
    auto conserved = get_bool(c, "conserved");
    if (!conserved) return up(conserved);
    f.conserved = *conserved;
    r.currencies.push_back(std::move(f));
  }
  auto violations = string_array(j, "violations");
  if (!violations) return up(violations);
  r.violations = std::move(*violations);
  // A server that says ok with violations, or not ok without any, is not believed.
  auto ok = get_bool(j, "ok");
  if (!ok) return up(ok);
  if (*ok != r.ok()) return fail(Errc::bad_field, "ok disagrees with violations", "ok");
  return r;
}

}  // namespace zf::bank
