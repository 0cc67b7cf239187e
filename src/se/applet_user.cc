// SELECT, VERIFY, RESET RETRY COUNTER and GET DATA.
#include "se/applet.h"

#include <cstring>

#include "se/applet_internal.h"

namespace zf::se {
using namespace detail;

// ---- ISO commands

Result<Bytes> Applet::select(const Command& c, std::int64_t) {
  if (c.p1 != 0x04 || c.data.size() != sizeof(kAid) || std::memcmp(c.data.data(), kAid, sizeof(kAid)) != 0)
    return fail(Errc::not_found, "no applet with this AID");
  reset_session();  // a new selection starts a new session
  return json_bytes(Json{{"se_id", st_.se_id}, {"state", lifecycle_name(st_.lifecycle)}, {"paired", paired()}});
}

Result<Bytes> Applet::verify(const Command& c, std::int64_t) {
  if (auto s = require_active(); !s) return std::unexpected(s.error());
  if (c.p1 != 0x00 || (c.p2 != 0x80 && c.p2 != 0x81)) return fail(Errc::bad_apdu, "P1/P2 must be 00 80 or 00 81");
  if (st_.pin_tries_left == 0) return fail(Errc::pin_blocked, "PIN blocked; unblock with the PUK");
  if (c.data.empty()) {  // ISO: ask for the retry counter
    if (verified_) return Bytes{};
    return fail(Errc::pin_wrong, "not verified");
  }
  bool match = false;
  if (c.p2 == 0x80) {
    std::string pin = to_string(c.data);
    match = digits(pin, 4, 12) && ct_equal(salted_hash(st_.pin_salt, pin), st_.pin_hash);
  } else {
    match = !st_.bio_hash.empty() && ct_equal(sha256(c.data), st_.bio_hash);
  }
  if (!match) {
    verified_ = false;
    --st_.pin_tries_left;
    dirty_ = true;  // the retry counter must survive a power cut
    if (st_.pin_tries_left == 0) return fail(Errc::pin_blocked, "wrong PIN; now blocked");
    return fail(Errc::pin_wrong, std::to_string(st_.pin_tries_left) + " tries left");
  }
  if (st_.pin_tries_left != st_.pin_tries_max) {
    st_.pin_tries_left = st_.pin_tries_max;
    dirty_ = true;
  }
  verified_ = true;
  return Bytes{};
}

Result<Bytes> Applet::reset_retry(const Command& c, std::int64_t) {
  if (auto s = require_active(); !s) return std::unexpected(s.error());
  if (st_.puk_tries_left == 0) return fail(Errc::pin_blocked, "PUK blocked; the issuer must replace the SE");
  auto j = json_data(c);
  if (!j) return std::unexpected(j.error());
  if (auto s = only_fields(*j, {"puk", "new_pin"}); !s) return std::unexpected(s.error());
  auto puk = get_string(*j, "puk", 16);
  auto pin = get_string(*j, "new_pin", 12);
  if (!puk) return std::unexpected(puk.error());
  if (!pin) return std::unexpected(pin.error());
  if (!digits(*pin, 4, 12)) return fail(Errc::bad_field, "PIN must be 4..12 digits", "new_pin");
  if (!ct_equal(salted_hash(st_.pin_salt, *puk), st_.puk_hash)) {
    --st_.puk_tries_left;
    dirty_ = true;
    if (st_.puk_tries_left == 0) return fail(Errc::pin_blocked, "wrong PUK; now blocked", "puk");
    return fail(Errc::pin_wrong, "wrong PUK; " + std::to_string(st_.puk_tries_left) + " tries left", "puk");
  }
  st_.pin_hash = salted_hash(st_.pin_salt, *pin);
  st_.pin_tries_left = st_.pin_tries_max;
  st_.puk_tries_left = kPukTries;
  verified_ = false;
  dirty_ = true;
  return Bytes{};
}

namespace {
// Per currency, the amounts of a map of payments {amount, currency}.
Json sums_of(const std::map<std::string, Json>& payments) {
  std::map<std::string, std::int64_t> sums;
  for (const auto& [id, p] : payments) sums[p.at("currency").get<std::string>()] += p.at("amount").get<std::int64_t>();
  return sums.empty() ? Json::object() : Json(sums);
}
}  // namespace

Result<Bytes> Applet::get_data(const Command& c, std::int64_t) {
  switch (c.p2) {
    case tag::kInfo: {
      Json balances = Json::object();
      for (const auto& [cur, v] : st_.balances) balances[cur] = v;
      Json pt = Json::array(), pd = Json::array();
      for (const auto& [id, _] : st_.pending_topups) pt.push_back(id);
      for (const auto& [id, _] : st_.pending_deposits) pd.push_back(id);
      return json_bytes(Json{{"se_id", st_.se_id},
                             {"user_id", st_.user_id},
                             {"state", lifecycle_name(st_.lifecycle)},
                             {"seq", st_.seq},
                             {"pin_tries_left", st_.pin_tries_left},
                             {"verified", verified_},
                             {"balances", balances},
                             {"max_balance_minor", st_.max_balance_minor},
                             {"max_payment_minor", st_.max_payment_minor},
                             {"crl_number", st_.crl ? st_.crl->number() : 0},
                             {"crl_next_update", st_.crl ? static_cast<std::int64_t>(st_.crl->next_update()) : 0},
                             {"pending_topups", pt},
                             {"pending_deposits", pd},
                             {"received_notes", st_.received_notes.size()},
                             {"open_notes", st_.outstanding_notes.size()},
                             {"note_ttl_s", st_.note_ttl_s},
                             {"sent_minor", st_.sent_minor},
                             {"received_minor", st_.received_minor},
                             {"reclaimed_minor", st_.reclaimed_minor},
                             {"f2f_undelivered", st_.f2f_undelivered.size()},
                             {"f2f_unreconciled", st_.f2f_unreconciled.size()},
                             {"f2f_undelivered_minor", sums_of(st_.f2f_undelivered)},
                             {"f2f_unreconciled_minor", sums_of(st_.f2f_unreconciled)},
                             {"escrow_open", st_.cpay_open.size()},
                             {"escrow_minor", sums_of(st_.cpay_open)},
                             {"revoked_minor", st_.revoked_minor},
                             {"f2f_max_payment_minor", st_.f2f_max_payment_minor},
                             {"f2f_max_unreconciled_minor", st_.f2f_max_unreconciled_minor},
                             {"f2f_max_unreconciled_count", st_.f2f_max_unreconciled_count},
                             {"f2f_spend_unreconciled_minor", st_.f2f_spend_unreconciled_minor}});
    }
    case tag::kCertificate: {
      if (st_.chain.empty()) return fail(Errc::wrong_state, "no certificate installed");
      std::string pem;
      for (const auto& cert : st_.chain) pem += cert.pem();
      return Bytes(pem.begin(), pem.end());
    }
    case tag::kStatus:
      return json_bytes(Json{{"se_id", st_.se_id}, {"state", lifecycle_name(st_.lifecycle)}, {"paired", paired()}});
    case tag::kLog: {
      // What the person did is theirs: the log and the issued documents need the verified user.
      if (auto s = require_user(); !s) return std::unexpected(s.error());
      Json arr = Json::array();
      for (const auto& e : st_.log) arr.push_back(log_entry_json(e));
      return json_bytes(arr);
    }
    case tag::kOutstanding: {
      if (auto s = require_user(); !s) return std::unexpected(s.error());
      Json arr = Json::array();
      for (const auto& [id, n] : st_.outstanding_notes) {
        Json item = n;
        item.erase("digest");
        item["id"] = id;
        arr.push_back(std::move(item));
      }
      return json_bytes(arr);
    }
    case tag::kF2f: {
      if (auto s = require_user(); !s) return std::unexpected(s.error());
      return json_bytes(f2f_info());
    }
    case tag::kEscrow: {
      if (auto s = require_user(); !s) return std::unexpected(s.error());
      return json_bytes(escrow_info());
    }
    case tag::kIssued: {
      if (auto s = require_user(); !s) return std::unexpected(s.error());
      Json arr = Json::array();
      for (const auto& d : st_.issued) arr.push_back(d);
      return json_bytes(arr);
    }
    default:
      return fail(Errc::not_found, "unknown GET DATA tag");
  }
}

}  // namespace zf::se
