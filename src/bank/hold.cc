// Controlled transfer (DESIGN.md §6.8): money frozen in the bank's hold
// account, then paid to the payee, given back to the payer by the payee, or
// given back by the bank itself at the expiry written in the request. A hold
// ends exactly once: confirm, release and expiry take one guard key
// (bank/store.h hold_guard) in the transaction that moves the money.
#include "bank/bank.h"

namespace zf::bank {
namespace {

template <class T>
std::unexpected<Error> up(const Result<T>& r) {
  return std::unexpected(r.error());
}

// The longest a hold may run before the bank gives the money back.
constexpr std::int64_t kMaxHoldS = 90LL * 24 * 3600;
// How many due holds one expiry pass ends (the rest wait for the next pass).
constexpr int kExpiryBatch = 100;

}  // namespace

Json Bank::hold_receipt(const HoldRecord& hold, std::string_view status, const std::string& doc_id,
                        std::string_view tag) {
  return Json{{"type", "hold.receipt"},
                           {"v", 1},
                           {"id", answer_id(id_, tag, doc_id)},
                           {"issuer", id_},
                           {"iat", static_cast<std::int64_t>(now())},
                           {"nonce", new_nonce()},
                           {"hold_id", hold.id},
                           {"status", std::string(status)},
                           {"doc_id", doc_id},
                           {"amount", hold.amount_minor},
                           {"currency", hold.currency},
                           {"payer_account", hold.payer_account},
                           {"payee_account", hold.payee_account},
                           {"release_at", hold.release_at},
                           {"bank", id_}};
}

std::unexpected<Error> Bank::already_ended(const HoldRecord& hold, const std::string& winner_doc_id) {
  Error e{Errc::hold_resolved, "hold_id",
          "hold " + hold.id + " already ended (" + hold.status + " by " + winner_doc_id + "); nothing moved"};
  if (auto prior = store_->find_processed(winner_doc_id); prior && *prior) e.evidence = (*prior)->response;
  return std::unexpected(std::move(e));
}

// Placing a hold:
//   1. verify the request and both signatures (payer's SE first, then the payee's);
//   2. a retry of a processed request returns its stored receipt;
//   3. refused by name before anything is recorded: another bank's request,
//      an account that is not a customer account here in the request's
//      currency, one account on both sides, a signer that may not sign for its
//      side, one SE signing both sides, a release time not in (now, now + 90 days];
//   4. claim the request at the registry;
//   5. ONE store transaction: claim the id, debit the payer (insufficient_funds:
//      consumed with a signed refusal, nothing moves), credit the hold account,
//      record the hold.
Result<std::string> Bank::hold(std::string_view request_jws) {
  auto v = verify(request_jws, "hold.request", 2);
  if (!v) return up(v);
  const Document& doc = v->doc.doc;
  if (doc.str("bank") != id_) return fail(Errc::misaddressed, "addressed to bank " + doc.str("bank"), "bank");
  auto prior = prior_response(v->key);
  if (!prior) return refuse_reused(*v, prior.error());
  if (*prior) return **prior;
  const Amount& amount = *doc.amount();
  const Certificate& payee_se = v->doc.signers[1];
  auto payer = document_account(doc, "payer_account");
  if (!payer) return up(payer);
  if (!signs_for(v->signer, *payer))
    return fail(Errc::not_owner, v->signer.subject_cn() + " may not sign for account " + payer->id + "; nothing moved",
                "payer_account");
  if (doc.str("payee_account") == payer->id)
    return fail(Errc::same_account, "the hold names " + payer->id + " on both sides; nothing moved", "payee_account");
  auto payee = document_account(doc, "payee_account");
  if (!payee) return up(payee);
  if (payee_se.subject_cn() == v->signer.subject_cn())
    return fail(Errc::bad_header, "the payer's and the payee's signatures come from one SE; nothing moved",
                "signatures");
  if (!signs_for(payee_se, *payee))
    return fail(Errc::not_owner,
                payee_se.subject_cn() + " may not sign for account " + payee->id + "; nothing moved", "payee_account");
  const std::int64_t release_at = doc.json().at("release_at").get<std::int64_t>();
  if (release_at <= now() || release_at > now() + kMaxHoldS)
    return fail(Errc::bad_field, "release_at must be after now and at most 90 days ahead; nothing moved",
                "release_at");
  if (auto claimed = claim_at_registry(*v); !claimed) return up(claimed);

  HoldRecord hold{doc.id(),
                  payer->id,
                  payee->id,
                  v->signer.subject_cn(),
                  payee_se.subject_cn(),
                  std::string(amount.currency().code()),
                  amount.minor(),
                  release_at,
                  "held",
                  "",
                  now()};
  auto entry = ledger::hold(doc.id(), payer->id, amount);
  if (!entry) return up(entry);
  return apply_or_refuse(*v, *entry, hold_receipt(hold, "held", doc.id(), "h"), Effects{{}, hold, std::nullopt, {{payee->id, amount.minor()}}});
}

Result<std::string> Bank::hold_confirm(std::string_view confirm_jws) {
  auto v = verify(confirm_jws, "hold.confirm");
  if (!v) return up(v);
  return end_hold(*v, "confirmed");
}

Result<std::string> Bank::hold_release(std::string_view release_jws) {
  auto v = verify(release_jws, "hold.release");
  if (!v) return up(v);
  return end_hold(*v, "released");
}

// Ending a hold by a document:
//   1. it names this bank (else misaddressed) and a hold kept here (hold_unknown);
//   2. a retry of a processed document returns its stored receipt;
//   3. its amount and currency are the hold's; its signer may sign for the
//      side that ends it: the payer's account to confirm, the payee's to release
//      (not_owner otherwise, whoever else signed);
//   4. a hold already ended: hold_resolved with the receipt that ended it;
//   5. claim the document at the registry;
//   6. ONE store transaction: the document id, the hold's guard key, the hold
//      account to the payee (confirm) or the payer (release), the hold row. A
//      confirm, release or expiry that won the key in between: hold_resolved.
Result<std::string> Bank::end_hold(const Verified& v, std::string_view status) {
  const Document& doc = v.doc.doc;
  const bool confirm = status == "confirmed";
  if (doc.str("bank") != id_) return fail(Errc::misaddressed, "addressed to bank " + doc.str("bank"), "bank");
  auto found = store_->find_hold(doc.str("hold_id"));
  if (!found) return up(found);
  if (!*found) return fail(Errc::hold_unknown, "no hold " + doc.str("hold_id") + " at " + id_, "hold_id");
  const HoldRecord& hold = **found;
  auto prior = prior_response(v.key);
  if (!prior) return refuse_reused(v, prior.error());
  if (*prior) return **prior;
  // The signer first: a third party learns nothing about the hold's terms.
  const std::string& side = confirm ? hold.payer_account : hold.payee_account;
  auto account = store_->find_account(side);
  if (!account) return up(account);
  if (!*account || !signs_for(v.signer, **account))
    return fail(Errc::not_owner,
                std::string(confirm ? "only the payer confirms" : "only the payee releases") + " hold " + hold.id +
                    "; nothing moved",
                "issuer");
  const Amount& amount = *doc.amount();
  if (amount.minor() != hold.amount_minor || amount.currency().code() != hold.currency)
    return fail(Errc::bad_field, "the amount is not the hold's; nothing moved", "amount");
  if (hold.status != "held") return already_ended(hold, hold.resolved_by);
  // release_at is the payer's deadline: a confirm the bank takes up after it
  // is refused (the expiry gives the money back). A release may still come:
  // it does what the expiry does.
  if (confirm && now() >= hold.release_at)
    return fail(Errc::expired,
                "hold " + hold.id + " passed its release time; the bank gives it back to " + hold.payer_account +
                    "; nothing moved",
                "hold_id");
  if (auto claimed = claim_at_registry(v); !claimed) return up(claimed);

  auto receipt = sign_receipt(hold_receipt(hold, status, doc.id(), "h"));
  if (!receipt) return up(receipt);
  auto entry = ledger::unhold(doc.id(), confirm ? ledger::kEntryHoldConfirm : ledger::kEntryHoldRelease,
                              confirm ? hold.payee_account : hold.payer_account, amount);
  if (!entry) return up(entry);
  // The side whose money did not move is told too: the payer of a confirm, the payee of a release.
  Effects fx{{{hold_guard(hold.id), Errc::hold_resolved}},
             std::nullopt,
             std::pair{hold.id, std::string(status)},
             {{confirm ? hold.payer_account : hold.payee_account, hold.amount_minor}}};
  auto applied = commit(v.key, *entry, *receipt, with_process_no(v, std::move(fx)));
  if (!applied && applied.error().code == Errc::hold_resolved) {
    auto now_hold = store_->find_hold(hold.id);
    if (now_hold && *now_hold) return already_ended(**now_hold, (*now_hold)->resolved_by);
    return up(applied);
  }
  if (!applied) return up(applied);
  return applied->response;
}

// SAFETY-CRITICAL: the bank's own end of a hold. Each due hold is given back to
// the payer in one transaction that takes the hold's guard key, so an expiry
// racing a confirm or a release loses or wins as a whole. Its document id is
// "<bank>:x:<hold id>": a second pass over the same hold is a replay.
Result<Bank::ExpiryPass> Bank::expire_holds() {
  auto due = store_->due_holds(now(), kExpiryBatch);
  if (!due) return up(due);
  ExpiryPass pass;
  for (const HoldRecord& hold : *due) {
    auto ended = expire_hold(hold);
    // One hold that cannot end now does not keep the others from ending.
    if (!ended) pass.failed.push_back(Error{ended.error().code, hold.id, ended.error().message()});
    else if (*ended) ++pass.ended;
  }
  return pass;
}

// The expiry's exactly-once key is "hold-expiry/<hold id>": a '/' is in no
// document id, so no SE can take the key first by naming itself after it.
Result<bool> Bank::expire_hold(const HoldRecord& hold) {
  const std::string doc_id = "hold-expiry/" + hold.id;
  auto receipt = sign_receipt(hold_receipt(hold, "expired", hold.id, "x"));
  if (!receipt) return up(receipt);
  auto amount = Amount::of(hold.currency, hold.amount_minor);
  if (!amount) return up(amount);
  auto entry = ledger::unhold(doc_id, ledger::kEntryHoldExpiry, hold.payer_account, *amount);
  if (!entry) return up(entry);
  DocKey key{doc_id, id_, "hold.expiry", sha256(as_bytes(hold.id))};
  Effects fx{{{hold_guard(hold.id), Errc::hold_resolved}},
             std::nullopt,
             std::pair{hold.id, std::string("expired")},
             {{hold.payee_account, hold.amount_minor}}};
  auto applied = commit(key, *entry, *receipt, fx);
  if (!applied && applied.error().code == Errc::hold_resolved) return false;  // confirmed or released first
  if (!applied) return up(applied);
  return !applied->replayed;
}

}  // namespace zf::bank
