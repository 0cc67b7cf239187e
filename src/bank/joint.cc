// Joint accounts (DESIGN.md §6.9): an account managed by several SEs, spent
// only by a joint.spend that enough distinct co-managers signed over the same
// payload (JWS JSON serialization, one signature each).
#include <algorithm>
#include <set>

#include "bank/bank.h"

namespace zf::bank {
namespace {

template <class T>
std::unexpected<Error> up(const Result<T>& r) {
  return std::unexpected(r.error());
}

}  // namespace

// A joint spend:
//   1. verify the document and every signature on it (1..16);
//   2. it names this bank (misaddressed) and a joint account here in its
//      currency (account_unknown, currency_mismatch; not_owner for an account
//      that is not joint);
//   3. a retry of a processed spend returns its stored receipt;
//   4. the signers are co-managers of the account (not_owner, naming the
//      stranger), each at most once (bad_header), and at least the account's
//      threshold of them (threshold_not_met, saying how many more);
//   5. "transfer": `to` is another customer or joint account here in the same
//      currency; "topup": `to` is the first signer, whose SE takes the e-cash;
//   6. claim the spend at the registry, then ONE transaction as for a transfer
//      or a top-up (insufficient_funds: consumed with a signed refusal).
Result<std::string> Bank::joint_spend(std::string_view spend_jws) {
  auto v = verify(spend_jws, "joint.spend", 1, 16);
  if (!v) return up(v);
  const Document& doc = v->doc.doc;
  if (doc.str("bank") != id_) return fail(Errc::misaddressed, "addressed to bank " + doc.str("bank"), "bank");
  auto account = document_account(doc, "account");
  if (!account) return up(account);
  if (account->kind != ledger::AccountKind::joint)
    return fail(Errc::not_owner, "account " + account->id + " is not a joint account; nothing moved", "account");
  auto prior = prior_response(v->key);
  if (!prior) return refuse_reused(*v, prior.error());
  if (*prior) return **prior;

  std::set<std::string> signed_by;
  for (const auto& cert : v->doc.signers) {
    const std::string se = cert.subject_cn();
    if (!std::binary_search(account->co_managers.begin(), account->co_managers.end(), se))
      return fail(Errc::not_owner, se + " is not a co-manager of account " + account->id + "; nothing moved",
                  "signatures");
    if (!signed_by.insert(se).second)
      return fail(Errc::bad_header, se + " signed the spend twice; each co-manager signs once; nothing moved",
                  "signatures");
  }
  const int have = static_cast<int>(signed_by.size());
  if (have < account->threshold)
    return fail(Errc::threshold_not_met,
                "account " + account->id + " needs " + std::to_string(account->threshold) + " of its " +
                    std::to_string(account->co_managers.size()) + " co-managers to sign; this spend has " +
                    std::to_string(have) + "; nothing moved",
                "signatures");

  const std::string action = doc.str("action");
  const Amount& amount = *doc.amount();
  std::optional<AccountRecord> to;
  if (action == "transfer") {
    if (doc.str("to") == account->id)
      return fail(Errc::same_account, "the spend names " + account->id + " on both sides; nothing moved", "to");
    auto t = document_account(doc, "to");
    if (!t) return up(t);
    to = *t;
  } else if (action == "topup") {
    if (doc.str("to") != v->signer.subject_cn())
      return fail(Errc::bad_field, "a joint top-up goes into the SE of the co-manager who asked for it, " +
                                       v->signer.subject_cn() + "; nothing moved",
                  "to");
  } else {
    return fail(Errc::bad_field, "action is transfer or topup", "action");
  }
  if (auto claimed = claim_at_registry(*v); !claimed) return up(claimed);

  // The receipts are those of a transfer and of a top-up, so the SE applies a
  // joint top-up exactly as its own (TOPUP RECEIPT).
  Json receipt;
  Result<ledger::JournalEntry> entry = std::unexpected(Error{Errc::internal});
  if (to) {
    receipt = transfer_receipt(*v, account->id, to->id);
    entry = ledger::transfer(doc.id(), account->id, to->id, amount);
  } else {
    receipt = receipt_payload(*v, "topup.receipt", account->id);
    entry = ledger::topup(doc.id(), account->id, amount);
  }
  if (!entry) return up(entry);
  return apply_or_refuse(*v, *entry, std::move(receipt));
}

}  // namespace zf::bank
