// Expiry and reclaim of notes this SE paid.
#include "se/applet.h"

#include "core/claims.h"
#include "se/applet_internal.h"

namespace zf::se {
using namespace detail;

// ---- Expiry and reclaim (docs/se-apdu.md "Expiry and reclaim")
//
// Every note this SE pays stays in st_.outstanding_notes until it is closed with
// a record of the registry: the payee's claim (received: the entry goes, no
// value moves) or this SE's own reclaim, which the registry takes only after
// the note's expiry and only if nobody claimed it before (the value comes
// back, once: the entry leaves in the same state update as the credit).

Result<Bytes> Applet::reclaim_claim(const Command& c, std::int64_t now_s) {
  if (auto s = require_user(); !s) return std::unexpected(s.error());
  auto j = json_data(c);
  if (!j) return std::unexpected(j.error());
  if (auto s = only_fields(*j, {"id"}); !s) return std::unexpected(s.error());
  auto id = get_string(*j, "id", 128);
  if (!id) return std::unexpected(id.error());
  auto it = st_.outstanding_notes.find(*id);
  if (it == st_.outstanding_notes.end())
    return fail(Errc::not_found, "this SE has no open note " + *id + ": it was received, reclaimed, or never paid here",
                "id");
  const Json& n = it->second;
  std::int64_t exp = n.at("exp").get<std::int64_t>();
  if (now_s < exp)
    return fail(Errc::not_expired, *id + " can still be received until " + utc_time_text(exp) +
                                       "; it can be reclaimed after that",
                "id");
  auto digest = b64url_decode(n.at("digest").get<std::string>());
  if (!digest) return std::unexpected(digest.error());
  registry::ClaimFields f{*id, st_.se_id, n.at("seq").get<std::int64_t>(), "payment.note", st_.se_id, std::move(*digest), exp};
  return sign_claim(f, now_s);
}

Result<Bytes> Applet::close_note(const Command& c, std::int64_t now_s) {
  if (auto s = require_user(); !s) return std::unexpected(s.error());
  auto j = json_data(c);
  if (!j) return std::unexpected(j.error());
  if (auto s = only_fields(*j, {"id", "record"}); !s) return std::unexpected(s.error());
  auto id = get_string(*j, "id", 128);
  if (!id) return std::unexpected(id.error());
  auto text = get_string(*j, "record", kMaxJoseBytes);
  if (!text) return std::unexpected(text.error());
  auto it = st_.outstanding_notes.find(*id);
  if (it == st_.outstanding_notes.end())
    return fail(Errc::not_found,
                "this SE has no open note " + *id + ": it was received, reclaimed, or never paid here; nothing changed",
                "id");
  const Json& n = it->second;
  auto record = record_about(*text, *id, st_.se_id, n.at("seq").get<std::int64_t>(), "payment.note", now_s);
  if (!record) return std::unexpected(record.error());
  if (record->status == registry::RecordStatus::seq_reused)
    return fail(Errc::seq_reused, "another document was claimed under this note's sequence number", "record");
  auto digest = b64url_decode(n.at("digest").get<std::string>());
  if (!digest) return std::unexpected(digest.error());
  if (!ct_equal(record->result_digest, *digest))
    return fail(Errc::record_mismatch, "the record holds another document under this id", "record");
  auto amount = Amount::of(n.at("currency").get<std::string>(), n.at("amount").get<std::int64_t>());
  if (!amount) return std::unexpected(amount.error());
  const std::string payee = n.at("payee").get<std::string>();
  const std::int64_t exp = n.at("exp").get<std::int64_t>();
  if (record->processor == payee) {
    // The registry takes a payee's claim only before the expiry; a record saying
    // otherwise closes nothing (the payee's SE would not credit on it either).
    if (!record->claimed_at || *record->claimed_at >= exp)
      return fail(Errc::record_mismatch, "the record says the payee claimed the note after its expiry", "record");
    // Received: nothing comes back, and the note needs no more room here.
    st_.outstanding_notes.erase(it);
    dirty_ = true;
    return json_bytes(Json{{"closed", *id}, {"outcome", "received"}, {"payee", payee},
                           {"claimed_at", record->claimed_at.value_or(record->iat)}});
  }
  if (record->processor != st_.se_id || record->status != registry::RecordStatus::claimed)
    return fail(Errc::record_mismatch, "the record names " + record->processor + ", neither the payee nor this SE",
                "record");
  if (!record->claimed_at || *record->claimed_at < exp)
    return fail(Errc::record_mismatch, "the registry recorded the reclaim before the note expired", "record");
  // The value comes back under the same limit as any credit. The note stays
  // open and the registry keeps the record: once there is room, the same
  // reclaim credits it, once.
  if (amount->minor() > headroom(amount->currency().code()))
    return fail(Errc::limit_exceeded,
                "taking " + amount->to_string() +
                    " back would pass this SE's maximum balance; deposit or pay first, then reclaim again (the note "
                    "stays open and nothing is lost)",
                "amount");
  // Safety-critical: the entry leaves in the same state update as the credit.
  if (auto s = fits_total(st_.reclaimed_minor, *amount); !s) return std::unexpected(s.error());
  if (auto s = credit(*amount); !s) return std::unexpected(s.error());
  st_.outstanding_notes.erase(it);
  st_.reclaimed_minor[std::string(amount->currency().code())] += amount->minor();
  log("reclaim", *id, &*amount, true, payee, now_s);
  dirty_ = true;
  return json_bytes(Json{{"closed", *id},
                         {"outcome", "reclaimed"},
                         {"payee", payee},
                         {"credited_minor", amount->minor()},
                         {"currency", std::string(amount->currency().code())},
                         {"balance_minor", balance(amount->currency().code())}});
}

}  // namespace zf::se
