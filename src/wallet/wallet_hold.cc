// The terminal's side of a controlled transfer, a hold (DESIGN.md §6.8): the
// payer's SE signs the request, the payee's SE adds its signature, either
// terminal sends it to the bank; then the payer confirms or the payee
// releases. Every document is kept in the outbox before it is sent, so
// `zf wallet retry` finishes what a lost answer left open, exactly once.
#include "core/jose.h"
#include "wallet/wallet.h"
#include "wallet/wallet_internal.h"

namespace zf::wallet {
using detail::payload_of;

namespace {

// What a person is told about a hold request: its facts, from the payload.
Json request_facts(const Document& doc, const std::string& request_jws) {
  return Json{{"request", request_jws},
              {"hold_id", doc.id()},
              {"bank", doc.str("bank")},
              {"amount_minor", doc.amount()->minor()},
              {"currency", std::string(doc.amount()->currency().code())},
              {"payer_account", doc.str("payer_account")},
              {"payee_account", doc.str("payee_account")},
              {"release_at", doc.json().at("release_at")}};
}

}  // namespace

Result<Json> Wallet::hold_request(const Amount& amount, const std::string& bank, const std::string& payer_account,
                                  const std::string& payee_account, std::int64_t release_at) {
  if (!unlocked_) return fail(Errc::not_verified, "unlock the SE with the PIN first");
  if (auto s = keep_crl_fresh(); !s) return std::unexpected(s.error());
  if (!config_.banks.count(bank)) return fail(Errc::not_found, "no bank '" + bank + "' in wallet.json", "bank");
  auto signed_req = se_->hold_request(Json{{"amount", amount.minor()},
                                           {"currency", std::string(amount.currency().code())},
                                           {"bank", bank},
                                           {"payer_account", payer_account},
                                           {"payee_account", payee_account},
                                           {"release_at", release_at}});
  if (!signed_req) return std::unexpected(signed_req.error());
  OutboxEntry e{(*signed_req)["id"], "hold", (*signed_req)["request"], bank, "cosign", "", ""};
  if (auto s = save_entry(e); !s) return std::unexpected(s.error());
  auto doc = payload_of(e.doc);
  if (!doc) return std::unexpected(doc.error());
  return request_facts(*doc, e.doc);
}

Result<Json> Wallet::hold_cosign(const std::string& request_jws) {
  if (!unlocked_) return fail(Errc::not_verified, "unlock the SE with the PIN first");
  if (auto s = keep_crl_fresh(); !s) return std::unexpected(s.error());
  auto signature = se_->cosign(request_jws);
  if (!signature) return std::unexpected(signature.error());
  auto joined = jws_join({request_jws, (*signature)["signature"].get<std::string>()});
  if (!joined) return std::unexpected(joined.error());
  auto doc = payload_of(*joined);
  if (!doc) return std::unexpected(doc.error());
  // Kept so that this wallet can release the hold later, or send the request itself.
  OutboxEntry e{doc->id(), "hold", *joined, doc->str("bank"), "cosigned", "", ""};
  if (auto prior = find_entry(e.doc_id); !prior || (prior->kind == "hold" && prior->state == "cosigned"))
    if (auto s = save_entry(e); !s) return std::unexpected(s.error());
  return request_facts(*doc, *joined);
}

Result<Json> Wallet::hold_submit(const std::string& request_jws) {
  if (!unlocked_) return fail(Errc::not_verified, "unlock the SE with the PIN first");
  if (auto s = keep_crl_fresh(); !s) return std::unexpected(s.error());
  auto opened = detail::open_handed_over(request_jws, *root_, "hold.request");
  if (!opened) return std::unexpected(opened.error());
  const Document* doc = &opened->doc;
  if (opened->signers.size() != 2)
    return fail(Errc::bad_header,
                "the request carries " + std::to_string(opened->signers.size()) +
                    " signature(s); the payee's SE adds the second with `zf wallet hold cosign`; nothing was sent",
                "signatures");
  const std::string bank = doc->str("bank");
  if (!config_.banks.count(bank)) return fail(Errc::not_found, "no bank '" + bank + "' in wallet.json", "bank");
  OutboxEntry e{doc->id(), "hold", request_jws, bank, "pending", "", ""};
  auto prior = find_entry(e.doc_id);
  if (auto s = may_replace(prior, "hold"); !s) return std::unexpected(s.error());
  if (prior && (prior->state == "done" || prior->state == "pending"))
    e = *prior;  // already sent from here: the same document again, or its stored receipt
  if (e.state != "done") {
    e.state = "pending";
    if (auto s = save_entry(e); !s) return std::unexpected(s.error());
  }
  auto amount = *doc->amount();
  auto settled = settle(e);
  if (!settled) return std::unexpected(unfinished(e, amount, settled.error()));
  if ((*settled)["status"] == "refused")
    return fail(errc_from_name((*settled)["reason"].get<std::string>()),
                "the bank refused to hold " + amount.to_string() + " from " + doc->str("payer_account") +
                    "; no money moved",
                "payer_account");
  return settled;
}

Result<Json> Wallet::hold_end(const std::string& hold_id, bool confirm) {
  if (!unlocked_) return fail(Errc::not_verified, "unlock the SE with the PIN first");
  if (auto s = keep_crl_fresh(); !s) return std::unexpected(s.error());
  auto known = find_entry(hold_id);
  if (!known || known->kind != "hold")
    return fail(Errc::hold_unknown,
                "this wallet neither requested nor cosigned hold " + hold_id + "; nothing was signed", "hold_id");
  auto request = payload_of(known->doc);
  if (!request) return std::unexpected(request.error());
  const Amount amount = *request->amount();
  Json params{{"hold_id", hold_id},
              {"bank", known->bank},
              {"amount", amount.minor()},
              {"currency", std::string(amount.currency().code())}};
  auto signed_doc = confirm ? se_->hold_confirm(params) : se_->hold_release(params);
  if (!signed_doc) return std::unexpected(signed_doc.error());
  OutboxEntry e{(*signed_doc)["id"], confirm ? "hold_confirm" : "hold_release",
                (*signed_doc)[confirm ? "confirm" : "release"], known->bank, "pending", "", ""};
  if (auto s = save_entry(e); !s) return std::unexpected(s.error());
  auto settled = settle(e);
  if (!settled) return std::unexpected(unfinished(e, amount, settled.error()));
  return settled;
}

// A hold receipt answers the entry's document, from the bank it names; its
// facts are what the CLI shows. A request that was refused keeps its reason.
Result<Json> Wallet::finish_hold(OutboxEntry& e) {
  CertVerifier verifier(*root_);
  auto receipt = open_signed_document(e.receipt, verifier, Role::custody);
  if (!receipt) return std::unexpected(receipt.error());
  const Document& r = receipt->doc;
  if (r.type() != "hold.receipt" || r.str("doc_id") != e.doc_id || receipt->signers.front().subject_cn() != e.bank)
    return fail(Errc::receipt_mismatch, "the bank's answer is not the receipt of " + e.doc_id, "receipt");
  Json out{{"hold_id", r.str("hold_id")},
           {"status", r.str("status")},
           {"receipt_id", r.id()},
           {"doc_id", e.doc_id},
           {"bank", e.bank},
           {"amount_minor", r.amount()->minor()},
           {"currency", std::string(r.amount()->currency().code())},
           {"payer_account", r.str("payer_account")},
           {"payee_account", r.str("payee_account")},
           {"release_at", r.json().at("release_at")}};
  if (!r.str("reason").empty()) out["reason"] = r.str("reason");
  e.state = "done";
  if (auto s = save_entry(e); !s) return std::unexpected(s.error());
  (void)append_history(Json{{"op", e.kind}, {"doc_id", e.doc_id}, {"bank", e.bank}, {"result", out}});
  return out;
}

}  // namespace zf::wallet
