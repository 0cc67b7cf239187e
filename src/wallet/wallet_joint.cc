// The terminal's side of a joint account (DESIGN.md §6.9): one co-manager's SE
// signs a joint.spend, the others add their signatures one after another (the
// file travels between them), and any of them sends it to the bank.
#include "core/jose.h"
#include "wallet/wallet.h"
#include "wallet/wallet_internal.h"

namespace zf::wallet {
using detail::payload_of;

namespace {

Json spend_facts(const Document& doc, const std::string& spend_jws, std::size_t signers) {
  return Json{{"spend", spend_jws},
              {"id", doc.id()},
              {"bank", doc.str("bank")},
              {"account", doc.str("account")},
              {"action", doc.str("action")},
              {"to", doc.str("to")},
              {"amount_minor", doc.amount()->minor()},
              {"currency", std::string(doc.amount()->currency().code())},
              {"signers", signers}};
}

Result<std::size_t> signature_count(const std::string& jws) {
  auto parsed = jws_parse(jws);
  if (!parsed) return std::unexpected(parsed.error());
  return parsed->signatures.size();
}

}  // namespace

Result<Json> Wallet::joint_request(const Amount& amount, const std::string& bank, const std::string& account,
                                   const std::string& action, const std::string& to) {
  if (!unlocked_) return fail(Errc::not_verified, "unlock the SE with the PIN first");
  if (auto s = keep_crl_fresh(); !s) return std::unexpected(s.error());
  if (!config_.banks.count(bank)) return fail(Errc::not_found, "no bank '" + bank + "' in wallet.json", "bank");
  Json params{{"amount", amount.minor()},
              {"currency", std::string(amount.currency().code())},
              {"bank", bank},
              {"account", account},
              {"action", action}};
  if (action != "topup") params["to"] = to;
  auto signed_spend = se_->joint_request(params);
  if (!signed_spend) return std::unexpected(signed_spend.error());
  // Kept so that `joint submit` of the finished file applies a top-up here.
  OutboxEntry e{(*signed_spend)["id"], "joint", (*signed_spend)["spend"], bank, "cosign", "", ""};
  if (auto s = save_entry(e); !s) return std::unexpected(s.error());
  auto doc = payload_of(e.doc);
  if (!doc) return std::unexpected(doc.error());
  return spend_facts(*doc, e.doc, 1);
}

Result<Json> Wallet::joint_sign(const std::string& spend_jws) {
  if (!unlocked_) return fail(Errc::not_verified, "unlock the SE with the PIN first");
  if (auto s = keep_crl_fresh(); !s) return std::unexpected(s.error());
  auto signature = se_->cosign(spend_jws);
  if (!signature) return std::unexpected(signature.error());
  auto joined = jws_join({spend_jws, (*signature)["signature"].get<std::string>()});
  if (!joined) return std::unexpected(joined.error());
  auto doc = payload_of(*joined);
  if (!doc) return std::unexpected(doc.error());
  auto n = signature_count(*joined);
  if (!n) return std::unexpected(n.error());
  return spend_facts(*doc, *joined, *n);
}

Result<Json> Wallet::joint_submit(const std::string& spend_jws) {
  if (!unlocked_) return fail(Errc::not_verified, "unlock the SE with the PIN first");
  if (auto s = keep_crl_fresh(); !s) return std::unexpected(s.error());
  auto opened = detail::open_handed_over(spend_jws, *root_, "joint.spend");
  if (!opened) return std::unexpected(opened.error());
  const Document* doc = &opened->doc;
  const std::string bank = doc->str("bank");
  if (!config_.banks.count(bank)) return fail(Errc::not_found, "no bank '" + bank + "' in wallet.json", "bank");
  OutboxEntry e{doc->id(), "joint", spend_jws, bank, "pending", "", ""};
  auto prior = find_entry(e.doc_id);
  if (auto s = may_replace(prior, "joint"); !s) return std::unexpected(s.error());
  if (prior && (prior->state == "done" || prior->state == "pending")) e = *prior;  // sent from here before
  if (e.state != "done") {
    e.state = "pending";
    if (auto s = save_entry(e); !s) return std::unexpected(s.error());
  }
  const Amount amount = *doc->amount();
  auto settled = settle(e);
  if (!settled) return std::unexpected(unfinished(e, amount, settled.error()));
  if (settled->value("status", "") == "refused" || settled->contains("refused"))
    return fail(errc_from_name(settled->value("reason", "insufficient_funds")),
                "the bank refused the joint spend of " + amount.to_string() + " from " + doc->str("account") +
                    "; no money moved",
                "account");
  return settled;
}

// A joint transfer's receipt is a transfer receipt. A joint top-up's is a
// top-up receipt for the SE that asked: that SE applies it (TOPUP RECEIPT
// checks it against its pending request); any other co-manager's terminal
// only reports it.
Result<Json> Wallet::finish_joint(OutboxEntry& e) {
  auto doc = payload_of(e.doc);
  if (!doc) return std::unexpected(doc.error());
  if (doc->str("action") == "transfer") return finish_transfer(e);
  auto me = se_->info();
  if (!me) return std::unexpected(me.error());
  Json out;
  if ((*me)["se_id"] == doc->str("to")) {
    auto applied = se_->apply_topup_receipt(e.receipt);
    if (!applied && applied.error().code != Errc::replayed) return std::unexpected(applied.error());
    out = applied ? *applied : Json{{"already_applied", true}};
  } else {
    CertVerifier verifier(*root_);
    auto receipt = open_signed_document(e.receipt, verifier, Role::custody);
    if (!receipt) return std::unexpected(receipt.error());
    const Document& r = receipt->doc;
    if (r.type() != "topup.receipt" || r.str("request_id") != e.doc_id || receipt->signers.front().subject_cn() != e.bank)
      return fail(Errc::receipt_mismatch, "the bank's answer is not the receipt of " + e.doc_id, "receipt");
    out = Json{{"status", r.str("status").empty() ? "moved" : r.str("status")}, {"to", doc->str("to")}};
    if (!r.str("reason").empty()) out["reason"] = r.str("reason");
  }
  e.state = "done";
  if (auto s = save_entry(e); !s) return std::unexpected(s.error());
  (void)append_history(Json{{"op", "joint"}, {"doc_id", e.doc_id}, {"bank", e.bank}, {"result", out}});
  return out;
}

}  // namespace zf::wallet
