// The SE's persistent state: one field list (visit_state) read by
// state_json() and written by from_state(), and the bounded sets of ids.
#include "se/applet.h"
#include "se/applet_internal.h"

namespace zf::se {
using namespace detail;

// ---- Bounded id sets

bool RecentIds::contains(const std::string& id) const { return ids_.count(id) != 0; }

void RecentIds::insert(const std::string& id) {
  if (!ids_.insert(id).second) return;
  order_.push_back(id);
  while (order_.size() > keep_) {
    ids_.erase(order_.front());
    order_.pop_front();
  }
}

Json RecentIds::to_json() const { return Json(order_); }

RecentIds RecentIds::from_json(const Json& j, std::size_t keep) {
  RecentIds r(keep);
  for (const auto& id : j) r.insert(id.get<std::string>());
  return r;
}

bool ReceivedIds::seen(const std::string& id, std::int64_t iat) const { return contains(id) || iat <= floor_; }

void ReceivedIds::insert(const std::string& id, std::int64_t iat) {
  if (!ids_.emplace(id, iat).second) return;
  by_iat_.emplace(iat, id);
  while (ids_.size() > kKept) {
    auto oldest = by_iat_.begin();
    floor_ = std::max(floor_, oldest->first);
    ids_.erase(oldest->second);
    by_iat_.erase(oldest);
  }
}

Json ReceivedIds::to_json() const { return Json(ids_); }

Result<ReceivedIds> ReceivedIds::from_json(const Json& ids, std::int64_t floor) {
  ReceivedIds r;
  r.floor_ = floor;
  if (ids.is_array()) {
    // States from before the set was bounded list ids only: they count as the oldest.
    for (const auto& id : ids) r.insert(id.get<std::string>(), 0);
  } else {
    for (const auto& [id, iat] : ids.items()) r.insert(id, iat.get<std::int64_t>());
  }
  return r;
}

// ---- Field codecs: put() writes one field's JSON, take() reads it back.

namespace {

struct Writer {
  Json& out;
  template <class T>
  void operator()(const char* name, const T& v, bool /*required*/ = true) {
    out[name] = put(v);
  }
  static Json put(const std::string& v) { return v; }
  static Json put(std::int64_t v) { return v; }
  static Json put(int v) { return v; }
  static Json put(Lifecycle l) { return lifecycle_name(l); }
  static Json put(const Bytes& b) { return b64url_encode(b); }
  static Json put(const SecretBytes& b) { return b64url_encode(b.view()); }
  static Json put(const std::unique_ptr<PrivateKey>& k) { return k ? b64url_encode(k->export_pkcs8().view()) : ""; }
  static Json put(const std::vector<Certificate>& chain) {
    Json a = Json::array();
    for (const auto& c : chain) a.push_back(c.pem());
    return a;
  }
  static Json put(const std::optional<Certificate>& c) { return c ? c->pem() : ""; }
  static Json put(const std::optional<Crl>& c) { return c ? c->pem() : ""; }
  static Json put(const std::map<std::string, std::int64_t>& m) { return m.empty() ? Json::object() : Json(m); }
  static Json put(const std::map<std::string, Json>& m) { return m.empty() ? Json::object() : Json(m); }
  static Json put(const RecentIds& r) { return r.to_json(); }
  static Json put(const ReceivedIds& r) { return r.to_json(); }
  static Json put(const std::deque<LogEntry>& log) {
    Json a = Json::array();
    for (const auto& e : log) a.push_back(log_entry_json(e));
    return a;
  }
  static Json put(const std::deque<std::string>& d) { return Json(d); }
};

// Reads fields in order; the first malformed one stops it. A field missing
// from the state is an error if required, else keeps its default (it came
// in after the state was written).
struct Reader {
  const Json& in;
  Status status{};
  template <class T>
  void operator()(const char* name, T& v, bool required = true) {
    if (!status) return;
    if (!in.contains(name)) {
      if (required) status = fail(Errc::bad_field, std::string("malformed SE state: no ") + name);
      return;
    }
    status = take(in.at(name), v);
    if (!status) status = fail(Errc::bad_field, std::string("malformed SE state: ") + name + ": " + status.error().detail);
  }
  static Status take(const Json& j, std::string& v) { return v = j.get<std::string>(), Status{}; }
  static Status take(const Json& j, std::int64_t& v) { return v = j.get<std::int64_t>(), Status{}; }
  static Status take(const Json& j, int& v) { return v = j.get<int>(), Status{}; }
  static Status take(const Json& j, Lifecycle& l) {
    std::string s = j.get<std::string>();
    if (s == "active") l = Lifecycle::active;
    else if (s == "personalized") l = Lifecycle::personalized;
    else if (s == "factory") l = Lifecycle::factory;
    else return fail(Errc::bad_field, "unknown lifecycle " + s);
    return {};
  }
  static Status take(const Json& j, Bytes& b) {
    auto d = b64url_decode(j.get<std::string>());
    if (!d) return std::unexpected(d.error());
    b = std::move(*d);
    return {};
  }
  static Status take(const Json& j, SecretBytes& k) {
    Bytes b;
    if (auto s = take(j, b); !s) return s;
    // A terminal pairing key is 32 bytes; a state from before pairing has none.
    if (!b.empty() && b.size() != sc::kKeyBytes) return fail(Errc::bad_field, "malformed pairing key");
    k = SecretBytes(std::move(b));
    return {};
  }
  static Status take(const Json& j, std::unique_ptr<PrivateKey>& k) {
    if (j.get<std::string>().empty()) return k.reset(), Status{};
    Bytes der;
    if (auto s = take(j, der); !s) return s;
    auto key = PrivateKey::from_pkcs8_der(der);
    std::fill(der.begin(), der.end(), 0);
    if (!key) return std::unexpected(key.error());
    k = std::make_unique<PrivateKey>(std::move(*key));
    return {};
  }
  static Status take(const Json& j, std::vector<Certificate>& chain) {
    chain.clear();
    for (const auto& pem : j) {
      auto c = Certificate::from_pem(pem.get<std::string>());
      if (!c) return std::unexpected(c.error());
      chain.push_back(std::move(*c));
    }
    return {};
  }
  template <class T>
  static Status take_pem(const Json& j, std::optional<T>& v) {
    const std::string pem = j.get<std::string>();
    if (pem.empty()) return v.reset(), Status{};
    auto c = T::from_pem(pem);
    if (!c) return std::unexpected(c.error());
    v = std::move(*c);
    return {};
  }
  static Status take(const Json& j, std::optional<Certificate>& c) { return take_pem(j, c); }
  static Status take(const Json& j, std::optional<Crl>& c) { return take_pem(j, c); }
  static Status take(const Json& j, std::map<std::string, std::int64_t>& m) {
    return m = j.get<std::map<std::string, std::int64_t>>(), Status{};
  }
  static Status take(const Json& j, std::map<std::string, Json>& m) {
    return m = j.get<std::map<std::string, Json>>(), Status{};
  }
  static Status take(const Json& j, RecentIds& r) { return r = RecentIds::from_json(j, r.capacity()), Status{}; }
  static Status take(const Json& j, std::deque<LogEntry>& log) {
    log.clear();
    for (const auto& e : j)
      log.push_back(LogEntry{e.at("seq"), e.at("op"), e.at("doc_id"), e.at("currency"), e.at("amount_minor"),
                             e.at("counterparty"), e.at("at")});
    return {};
  }
  static Status take(const Json& j, std::deque<std::string>& d) { return d = j.get<std::deque<std::string>>(), Status{}; }
};

}  // namespace

// The one list of what an SE keeps. `false` marks a field that states written
// before it existed do not have; from_state() then keeps its default.
template <class S, class V>
void Applet::visit_state(S& s, V&& v) {
  v("se_id", s.se_id);
  v("user_id", s.user_id);
  v("lifecycle", s.lifecycle);
  v("attest_key", s.attest_key);
  v("attest_chain", s.attest_chain);
  v("key", s.key);
  v("chain", s.chain);
  v("root", s.root);
  v("crl", s.crl);
  v("pin_salt", s.pin_salt);
  v("pin_hash", s.pin_hash);
  v("puk_hash", s.puk_hash);
  v("bio_hash", s.bio_hash);
  v("pin_tries_left", s.pin_tries_left);
  v("pin_tries_max", s.pin_tries_max);
  v("puk_tries_left", s.puk_tries_left);
  v("pairing_key", s.pairing_key, false);
  v("balances", s.balances);
  v("max_balance_minor", s.max_balance_minor);
  v("max_payment_minor", s.max_payment_minor);
  v("note_ttl_s", s.note_ttl_s, false);
  v("seq", s.seq);
  v("pending_topups", s.pending_topups);
  v("applied_topups", s.applied_topups);
  v("pending_deposits", s.pending_deposits);
  v("settled_deposits", s.settled_deposits);
  v("outstanding_notes", s.outstanding_notes, false);
  v("sent_minor", s.sent_minor);
  v("received_minor", s.received_minor);
  v("reclaimed_minor", s.reclaimed_minor, false);
  v("log", s.log);
  v("issued", s.issued);
  v("f2f_max_payment_minor", s.f2f_max_payment_minor, false);
  v("f2f_max_unreconciled_minor", s.f2f_max_unreconciled_minor, false);
  v("f2f_max_unreconciled_count", s.f2f_max_unreconciled_count, false);
  v("f2f_spend_unreconciled_minor", s.f2f_spend_unreconciled_minor, false);
  v("f2f_undelivered", s.f2f_undelivered, false);
  v("f2f_unreconciled", s.f2f_unreconciled, false);
  v("revoked_minor", s.revoked_minor, false);
  v("f2f_refused", s.f2f_refused, false);
  v("cpay_open", s.cpay_open, false);
  v("cpay_refunded", s.cpay_refunded, false);
}

Json Applet::state_json() const {
  Json s{{"format", "zf-se-state-1"}};
  visit_state(st_, Writer{s});
  // The received set and its floor are one value: written and read together.
  s["received_notes"] = st_.received_notes.to_json();
  s["received_floor_iat"] = st_.received_notes.floor();
  s["claimed_notes"] = st_.claimed_notes.to_json();
  s["claimed_notes_floor_iat"] = st_.claimed_notes.floor();
  return s;
}

Result<std::unique_ptr<Applet>> Applet::from_state(const Json& s) {
  try {
    if (!s.is_object() || !s.contains("format")) return fail(Errc::bad_field, "malformed SE state: no format");
    if (s.at("format") != "zf-se-state-1") return fail(Errc::unknown_version, "unknown SE state format");
    std::unique_ptr<Applet> a(new Applet());
    Reader r{s};
    visit_state(a->st_, r);
    if (!r.status) return std::unexpected(r.status.error());
    auto received = ReceivedIds::from_json(s.at("received_notes"), s.value("received_floor_iat", std::int64_t{0}));
    if (!received) return std::unexpected(received.error());
    a->st_.received_notes = std::move(*received);
    // States from before face-to-face claims were remembered have claimed none.
    auto claimed = ReceivedIds::from_json(s.value("claimed_notes", Json::object()),
                                          s.value("claimed_notes_floor_iat", std::int64_t{0}));
    if (!claimed) return std::unexpected(claimed.error());
    a->st_.claimed_notes = std::move(*claimed);
    return a;
  } catch (const Json::exception& e) {
    return fail(Errc::bad_field, std::string("malformed SE state: ") + e.what());
  }
}

}  // namespace zf::se
