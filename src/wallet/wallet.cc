#include "wallet/wallet.h"

#include <algorithm>
#include <chrono>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>
#include <thread>

#include "bank/client.h"
#include "core/document.h"
#include "net/http.h"
#include "core/claims.h"
#include "registry/client.h"
#include "store/sealed.h"
#include "wallet/wallet_internal.h"

namespace zf::wallet {
namespace fs = std::filesystem;
using detail::payload_of;
using detail::retryable;
namespace {

Result<std::string> slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  if (!in) return fail(Errc::not_found, "cannot read " + p.string());
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Errors after which the same document may succeed later. A server our TLS
// check refused (field "tls") never saw the document: it stays pending for
// `retry` once the configuration points at the right bank.
// An unanswered service, in words a person acts on: `what` says what moved
// and what to do; the transport's own words follow in parentheses.
Error when_unavailable(Error e, const std::string& what) {
  if (e.code == Errc::unavailable) e.detail = what + " (" + e.detail + ")";
  return e;
}

// Where an outbox entry of `kind` goes at its bank, and the field that carries it.
Result<std::pair<std::string, std::string>> bank_route(std::string_view kind) {
  static const std::map<std::string, std::pair<std::string, std::string>, std::less<>> kRoutes = {
      {"topup", {"/v1/topup", "request"}},       {"deposit", {"/v1/deposit", "note"}},
      {"transfer", {"/v1/transfer", "order"}},   {"hold", {"/v1/hold", "request"}},
      {"hold_confirm", {"/v1/hold/confirm", "confirm"}}, {"hold_release", {"/v1/hold/release", "release"}},
      {"joint", {"/v1/joint", "spend"}}};
  auto it = kRoutes.find(kind);
  if (it == kRoutes.end()) return fail(Errc::internal, "no bank takes a " + std::string(kind), "kind");
  return it->second;
}

Json entry_json(const OutboxEntry& e) {
  return Json{{"doc_id", e.doc_id}, {"kind", e.kind},         {"doc", e.doc},    {"bank", e.bank},
              {"state", e.state},   {"receipt", e.receipt}, {"error", e.error}};
}

OutboxEntry entry_from(const Json& j) {
  return OutboxEntry{j.value("doc_id", ""), j.value("kind", ""),    j.value("doc", ""),  j.value("bank", ""),
                     j.value("state", ""),  j.value("receipt", ""), j.value("error", "")};
}

std::string file_name(const std::string& doc_id) {
  std::string out = doc_id;
  for (auto& c : out)
    if (c == ':') c = '_';
  return out + ".json";
}

}  // namespace

namespace {
Status write_key_file(const fs::path& path, const SecretBytes& key) {
  std::string text = b64url_encode(key.view()) + "\n";
  SecretBytes wipe(Bytes(text.begin(), text.end()));
  std::fill(text.begin(), text.end(), '\0');
  return store::write_file_atomic(path.string(), wipe.view(), 0600);
}
}  // namespace

Status save_pairing_key(const std::string& dir, const SecretBytes& key) {
  return write_key_file(fs::path(dir) / "pairing.key", key);
}

Result<SecretBytes> load_pairing_key(const std::string& dir) {
  auto text = slurp(fs::path(dir) / "pairing.key");
  if (!text) return fail(Errc::not_paired, "no pairing key in " + dir + " (run `zf wallet pair`)");
  while (!text->empty() && (text->back() == '\n' || text->back() == '\r')) text->pop_back();
  auto key = b64url_decode(*text);
  std::fill(text->begin(), text->end(), '\0');
  if (!key || key->size() != se::sc::kKeyBytes) return fail(Errc::bad_field, "malformed pairing.key in " + dir);
  return SecretBytes(std::move(*key));
}

Status Wallet::init(const std::string& dir, const WalletConfig& c) {
  std::error_code ec;
  fs::create_directories(fs::path(dir) / "outbox", ec);
  if (fs::exists(fs::path(dir) / "wallet.json")) return fail(Errc::conflict, "a wallet exists in " + dir);
  Json banks = Json::object();
  for (const auto& [id, b] : c.banks) banks[id] = Json{{"url", b.url}};
  Json j{{"se_port", c.se_port}, {"ca_url", c.ca_url}, {"root", c.root_pem}, {"banks", banks},
         {"registry", c.registry_url}, {"registry_id", c.registry_id}};
  return store::write_file_atomic((fs::path(dir) / "wallet.json").string(), as_bytes(j.dump(2)), 0600);
}

Result<std::unique_ptr<Wallet>> Wallet::open(const std::string& dir) {
  auto text = slurp(fs::path(dir) / "wallet.json");
  if (!text)
    return fail(Errc::not_found, "no wallet in " + dir +
                                     ": check the --wallet path (`zf up` printed each person's wallet directory)");
  auto j = parse_json_strict(*text);
  if (!j) return std::unexpected(j.error());
  std::unique_ptr<Wallet> w(new Wallet());
  w->dir_ = dir;
  try {
    w->config_.se_port = j->at("se_port");
    w->config_.ca_url = j->at("ca_url");
    w->config_.root_pem = j->at("root");
    for (const auto& [id, b] : j->at("banks").items()) w->config_.banks[id] = BankEndpoint{b.at("url")};
    w->config_.registry_url = j->value("registry", "");
    w->config_.registry_id = j->value("registry_id", "");
  } catch (const Json::exception& e) {
    return fail(Errc::bad_field, std::string("wallet.json: ") + e.what());
  }
  auto root = Certificate::from_pem(w->config_.root_pem);
  if (!root) return std::unexpected(root.error());
  w->root_ = std::move(*root);
  return w;
}

Status Wallet::ensure_se() {
  if (se_) return {};
  // An unpaired terminal still connects: it may pair, or read public data.
  auto key = load_pairing_key(dir_);
  auto c = SeClient::connect(config_.se_port, key ? std::move(*key) : SecretBytes());
  if (!c) return std::unexpected(c.error());
  se_ = std::move(*c);
  return {};
}

Status Wallet::pair(const std::string& puk, const std::function<bool(const std::string&)>& confirm) {
  if (auto s = ensure_se(); !s) return s;
  // The new key is on disk (pairing.key.new) before the SE takes it, and replaces
  // the old one only once the SE did: a refused re-pairing keeps the old pairing.
  fs::path pending = fs::path(dir_) / "pairing.key.new";
  auto key = se_->pair(puk, confirm, [&](const SecretBytes& k) { return write_key_file(pending, k); });
  std::error_code ec;
  if (!key) {
    fs::remove(pending, ec);
    return std::unexpected(key.error());
  }
  if (auto s = save_pairing_key(dir_, *key); !s) return s;
  fs::remove(pending, ec);
  return {};
}

SeClient& Wallet::se() { return *se_; }

Status Wallet::unlock(const std::string& pin) {
  if (auto s = ensure_se(); !s) return s;
  if (auto s = se_->verify_pin(pin); !s) return s;
  unlocked_ = true;
  return {};
}

Result<Json> Wallet::balance() {
  if (auto s = ensure_se(); !s) return std::unexpected(s.error());
  return se_->info();
}

Status Wallet::refresh_crl() {
  if (auto s = ensure_se(); !s) return s;
  auto c = net::HttpsClient::connect(config_.ca_url, *root_, net::ServerId::ca(root_->subject_cn()));
  if (!c) return std::unexpected(c.error());
  auto r = c->get_json("/v1/crl");
  if (!r) return std::unexpected(r.error());
  auto pem = get_string(*r, "crl", 1024 * 1024);
  if (!pem) return std::unexpected(pem.error());
  return se_->update_crl(*pem);
}

Status Wallet::keep_crl_fresh() {
  if (auto s = ensure_se(); !s) return s;
  auto info = se_->info();
  if (!info) return std::unexpected(info.error());
  const std::int64_t next = info->value("crl_next_update", std::int64_t{0});
  const std::int64_t now = std::time(nullptr);
  if (next - now > 3600) return {};
  auto renewed = refresh_crl();
  if (renewed) {
    auto after = se_->info();
    std::int64_t until = after ? after->value("crl_next_update", std::int64_t{0}) : 0;
    notices_.push_back("renewed the SE's certificate revocation list from the CA (valid for " +
                       std::to_string(std::max<std::int64_t>(0, until - now)) + " s more)");
    return {};
  }
  if (next == 0 || next > now) {  // no CRL yet (none to check against), or not expired yet
    notices_.push_back("could not renew the SE's certificate revocation list" +
                       (next ? ", which expires in " + std::to_string(next - now) + " s" : std::string()) + ": " +
                       renewed.error().message());
    return {};
  }
  return fail(Errc::unavailable,
              "the SE's certificate revocation list has expired and the CA could not be reached to renew it (" +
                  renewed.error().message() + "); nothing moved; try again when the CA is reachable",
              "crl");
}

Status Wallet::save_entry(const OutboxEntry& e) {
  return store::write_file_atomic((fs::path(dir_) / "outbox" / file_name(e.doc_id)).string(),
                                  as_bytes(dump_json(entry_json(e))), 0600);
}

std::optional<OutboxEntry> Wallet::find_entry(const std::string& doc_id) const {
  auto text = slurp(fs::path(dir_) / "outbox" / file_name(doc_id));
  if (!text) return std::nullopt;
  auto j = parse_json_strict(*text);
  if (!j) return std::nullopt;
  OutboxEntry e = entry_from(*j);
  if (e.doc_id != doc_id) return std::nullopt;
  return e;
}

Status Wallet::may_replace(const std::optional<OutboxEntry>& prior, std::string_view kind) {
  if (!prior || prior->kind == kind) return {};
  return fail(Errc::conflict,
              "this wallet keeps a " + prior->kind + " under id " + prior->doc_id + "; the file is not the document it "
              "says it is; nothing was sent",
              "id");
}

Status Wallet::append_history(const Json& event) {
  Json dated = event;
  if (!dated.contains("at")) dated["at"] = static_cast<std::int64_t>(std::time(nullptr));  // for the person's dates
  std::ofstream out(fs::path(dir_) / "history.jsonl", std::ios::app);
  if (!(out << dump_json(dated) << "\n") || !out.flush()) return fail(Errc::io_error, "cannot write history");
  return {};
}

std::vector<OutboxEntry> Wallet::outbox() const {
  std::vector<OutboxEntry> out;
  std::error_code ec;
  for (const auto& f : fs::directory_iterator(fs::path(dir_) / "outbox", ec)) {
    if (f.path().extension() != ".json") continue;
    auto text = slurp(f.path());
    if (!text) continue;
    auto j = parse_json_strict(*text);
    if (j) out.push_back(entry_from(*j));
  }
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.doc_id < b.doc_id; });
  return out;
}

// Topup/deposit settlement:
//   1. send the stored JWS to the bank (the bank is idempotent on the document id);
//   2. record the receipt in the outbox entry (so a crash here needs no bank call);
//   3. hand the receipt to the SE; "replayed" means it was applied before.
// Records are evidence: one never replaces another. The first record of a
// document is records/<id>.jws, later different ones <id>.2.jws, <id>.3.jws...;
// the same record again (a retry answered from the registry's store) is not
// written twice.
void Wallet::keep_record(const std::string& doc_id, const std::string& record_jws) {
  fs::path dir = fs::path(dir_) / "records";
  std::error_code ec;
  fs::create_directories(dir, ec);
  std::string stem = fs::path(file_name(doc_id)).replace_extension("").string();
  for (int n = 1; n < 1000; ++n) {
    fs::path p = dir / (n == 1 ? stem + ".jws" : stem + "." + std::to_string(n) + ".jws");
    if (!fs::exists(p)) {
      (void)store::write_file_atomic(p.string(), as_bytes(record_jws), 0600);
      return;
    }
    std::ifstream in(p, std::ios::binary);
    std::string held((std::istreambuf_iterator<char>(in)), {});
    if (held == record_jws) return;
  }
}

std::optional<std::string> Wallet::kept_record(const std::string& doc_id) const {
  fs::path p = fs::path(dir_) / "records" / fs::path(file_name(doc_id)).replace_extension(".jws");
  std::ifstream in(p, std::ios::binary);
  if (!in) return std::nullopt;
  return std::string((std::istreambuf_iterator<char>(in)), {});
}

Result<Json> Wallet::settle(OutboxEntry& e) {
  auto endpoint = config_.banks.find(e.bank);
  if (endpoint == config_.banks.end()) return fail(Errc::not_found, "no bank '" + e.bank + "' in wallet.json", "bank");
  if (e.receipt.empty()) {
    // Only bank e.bank's endpoint gets the document: another service of ours
    // at that URL is refused in the handshake, before anything is sent.
    auto c = net::HttpsClient::connect(endpoint->second.url, *root_, net::ServerId::bank(e.bank));
    if (!c) return std::unexpected(c.error());
    auto route = bank_route(e.kind);
    if (!route) return std::unexpected(route.error());
    auto r = c->post_json(route->first, Json{{route->second, e.doc}});
    if (!r) {
      // A bank refusing because the registry says the document is someone else's
      // (replayed, seq_reused) sends the registry's record: keep it as proof.
      if (!r.error().evidence.empty()) keep_record(e.doc_id, r.error().evidence);
      if (!retryable(r.error())) {
        e.state = "refused";
        e.error = r.error().message();
        (void)save_entry(e);
      }
      return std::unexpected(r.error());
    }
    auto receipt = get_string(*r, "receipt", kMaxJoseBytes);
    if (!receipt) return std::unexpected(receipt.error());
    e.receipt = *receipt;
    if (auto s = save_entry(e); !s) return std::unexpected(s.error());
  }
  if (e.kind == "transfer") return finish_transfer(e);
  if (e.kind.starts_with("hold")) return finish_hold(e);
  if (e.kind == "joint") return finish_joint(e);
  auto applied = e.kind == "topup" ? se_->apply_topup_receipt(e.receipt) : se_->apply_deposit_receipt(e.receipt);
  if (!applied && applied.error().code != Errc::replayed) return std::unexpected(applied.error());
  e.state = "done";
  if (auto s = save_entry(e); !s) return std::unexpected(s.error());
  Json event{{"op", e.kind}, {"doc_id", e.doc_id}, {"bank", e.bank}};
  if (applied) event["result"] = *applied;
  (void)append_history(event);
  return applied ? *applied : Json{{"already_applied", true}};
}

// A transfer moves no e-cash, so the SE takes no receipt: the terminal checks
// that the bank named in the order signed it and that it answers the order,
// and keeps it.
Result<Json> Wallet::finish_transfer(OutboxEntry& e) {
  CertVerifier verifier(*root_);
  auto receipt = open_signed_document(e.receipt, verifier, Role::custody);
  if (!receipt) return std::unexpected(receipt.error());
  const Document& r = receipt->doc;
  if (r.type() != "transfer.receipt" || r.str("order_id") != e.doc_id ||
      receipt->signers.front().subject_cn() != e.bank)
    return fail(Errc::receipt_mismatch, "the bank's answer is not the receipt of order " + e.doc_id, "receipt");
  Json out{{"order_id", e.doc_id},
           {"receipt_id", r.id()},
           {"bank", e.bank},
           {"from", r.str("from")},
           {"to", r.str("to")},
           {"amount_minor", r.amount()->minor()},
           {"currency", std::string(r.amount()->currency().code())},
           {"status", r.str("status").empty() ? "moved" : r.str("status")}};
  if (!r.str("reason").empty()) out["reason"] = r.str("reason");
  e.state = "done";
  if (auto s = save_entry(e); !s) return std::unexpected(s.error());
  (void)append_history(Json{{"op", "transfer"}, {"doc_id", e.doc_id}, {"bank", e.bank}, {"result", out}});
  return out;
}

// The order's fields, with the processing number when there is one.
static Json with_process_no(Json fields, const std::string& process_no) {
  if (!process_no.empty()) fields["process_no"] = process_no;
  return fields;
}

Result<Json> Wallet::transfer(const Amount& amount, const std::string& bank, const std::string& from,
                              const std::string& to, const std::string& process_no) {
  if (!unlocked_) return fail(Errc::not_verified, "unlock the SE with the PIN first");
  if (auto s = keep_crl_fresh(); !s) return std::unexpected(s.error());
  if (!config_.banks.count(bank)) return fail(Errc::not_found, "no bank '" + bank + "' in wallet.json", "bank");
  auto order = se_->transfer_order(with_process_no(Json{{"amount", amount.minor()},
                                                       {"currency", std::string(amount.currency().code())},
                                                       {"bank", bank},
                                                       {"from", from},
                                                       {"to", to}},
                                                  process_no));
  if (!order) return std::unexpected(order.error());
  OutboxEntry e{(*order)["id"], "transfer", (*order)["order"], bank, "pending", "", ""};
  // Written before sending: after a crash `retry` sends exactly this order again.
  if (auto s = save_entry(e); !s) return std::unexpected(s.error());
  auto settled = settle(e);
  if (!settled) return std::unexpected(unfinished(e, amount, settled.error()));
  if ((*settled)["status"] == "refused")
    return fail(errc_from_name((*settled)["reason"].get<std::string>()),
                "the bank refused the transfer of " + amount.to_string() + " from " + from + "; no money moved", "from");
  return settled;
}

Result<Json> Wallet::topup(const Amount& amount, const std::string& bank, const std::string& account,
                           const std::string& process_no) {
  if (!unlocked_) return fail(Errc::not_verified, "unlock the SE with the PIN first");
  if (auto s = keep_crl_fresh(); !s) return std::unexpected(s.error());
  if (!config_.banks.count(bank)) return fail(Errc::not_found, "no bank '" + bank + "' in wallet.json", "bank");
  auto signed_req = se_->topup_request(with_process_no(Json{{"amount", amount.minor()},
                                                           {"currency", std::string(amount.currency().code())},
                                                           {"bank", bank},
                                                           {"account", account}},
                                                      process_no));
  if (!signed_req) return std::unexpected(signed_req.error());
  OutboxEntry e{(*signed_req)["id"], "topup", (*signed_req)["request"], bank, "pending", "", ""};
  // Written before sending: after a crash `retry` sends exactly this document again.
  if (auto s = save_entry(e); !s) return std::unexpected(s.error());
  auto settled = settle(e);
  if (!settled) return std::unexpected(unfinished(e, amount, settled.error()));
  if (settled->contains("refused"))
    return fail(errc_from_name((*settled)["reason"].get<std::string>()),
                "the bank refused the top-up; no money moved", "account");
  return settled;
}

Result<Json> Wallet::resolve_payee(const std::string& who) {
  static const std::regex kId("[A-Za-z0-9._:@-]{1,128}");
  if (!std::regex_match(who, kId))
    return fail(Errc::bad_field, "'" + who + "' is not an SE id or a user id", "payee");
  auto c = net::HttpsClient::connect(config_.ca_url, *root_, net::ServerId::ca(root_->subject_cn()));
  if (!c) return std::unexpected(c.error());
  auto r = c->get_json("/v1/secure-elements/" + who);
  if (!r) {
    if (r.error().code == Errc::not_found)
      return fail(Errc::not_found, "the CA knows no SE and no user called '" + who + "'; nothing was paid",
                  "payee");
    return std::unexpected(r.error());
  }
  const Json* list = r->contains("certificates") ? &(*r)["certificates"] : nullptr;
  if (!list || !list->is_array()) return fail(Errc::bad_field, "the CA's answer has no certificates", "certificates");
  // Newest first: the first usable certificate of each SE is its current one.
  const std::int64_t now = std::time(nullptr);
  std::vector<std::string> ses;
  Json chosen;
  bool any = false;
  for (const auto& rec : *list) {
    if (!rec.is_object() || !rec.contains("subject") || !rec["subject"].is_string()) continue;
    any = true;
    bool usable = !rec.value("revoked", true) && rec.value("not_after", std::int64_t{0}) > now;
    std::string se_id = rec["subject"];
    if (!usable || std::find(ses.begin(), ses.end(), se_id) != ses.end()) continue;
    ses.push_back(se_id);
    if (chosen.is_null()) chosen = rec;
  }
  if (!any) return fail(Errc::not_found, "the CA knows no SE called '" + who + "'; nothing was paid", "payee");
  if (ses.empty())
    return fail(Errc::cert_revoked, "the certificate of '" + who + "' is revoked or expired; nothing was paid",
                "payee");
  if (ses.size() > 1) {
    std::string names;
    for (const auto& s : ses) names += (names.empty() ? "" : ", ") + s;
    return fail(Errc::bad_field, "user " + who + " has several SEs (" + names + "): pay one of them by its SE id",
                "payee");
  }
  return Json{{"se_id", chosen["subject"]}, {"user_id", chosen.value("user_id", "")},
              {"certificate", chosen.value("certificate", "")}};
}

Result<std::string> Wallet::pay(const Amount& amount, const std::string& payee,
                                std::optional<std::int64_t> expires_in_s) {
  auto note = sign_note_to(amount, payee, expires_in_s, "payment");
  if (!note) return std::unexpected(note.error());
  return (*note)["note"].get<std::string>();
}

// PAYMENT NOTE or CPAY NOTE to `payee` (an SE id or a name), kept in the
// outbox before anything else happens: the SE has debited.
Result<Json> Wallet::sign_note_to(const Amount& amount, const std::string& payee,
                                  std::optional<std::int64_t> expires_in_s, const std::string& kind) {
  if (!unlocked_) return fail(Errc::not_verified, "unlock the SE with the PIN first");
  if (auto s = keep_crl_fresh(); !s) return std::unexpected(s.error());
  auto to = resolve_payee(payee);
  if (!to) return std::unexpected(to.error());
  Json params{{"amount", amount.minor()},
              {"currency", std::string(amount.currency().code())},
              {"payee_cert", (*to)["certificate"]}};
  if (expires_in_s) params["expires_in_s"] = *expires_in_s;
  auto r = kind == "escrow" ? se_->cpay_note(params) : se_->payment_note(params);
  if (!r) return std::unexpected(r.error());
  OutboxEntry e{(*r)["id"], kind, (*r)["note"], "", "pending", "", ""};
  if (auto s = save_entry(e); !s) return std::unexpected(s.error());
  (void)append_history(Json{{"op", kind == "escrow" ? "escrow" : "pay"},
                            {"doc_id", e.doc_id},
                            {"payee", (*to)["se_id"]},
                            {"amount", amount.to_string()}});
  (*r)["payee"] = (*to)["se_id"];
  return r;
}

// Receiving a note (DESIGN.md §6.3, §7):
//   1. the SE checks the note and signs a claim for it (it credits nothing yet);
//   2. the registry answers with a signed record: only the first claim of a
//      document id wins, and a reused (payer SE, seq) is refused and reported;
//   3. the record is kept as proof, and the note goes to the SE together with
//      it: the SE credits only on a record it verifies itself, won by itself.
Result<Json> Wallet::receive(const std::string& note_jws) {
  if (!unlocked_) return fail(Errc::not_verified, "unlock the SE with the PIN first");
  if (auto s = keep_crl_fresh(); !s) return std::unexpected(s.error());
  if (config_.registry_url.empty())
    return fail(Errc::missing_field, "receiving a note needs the registry; set it in the wallet", "registry");
  auto record = claim_at_registry(note_jws);
  if (!record) {
    return std::unexpected(when_unavailable(
        record.error(), "nothing was credited; the note is still good, receive it again when the registry answers"));
  }
  auto r = se_->receive_note(note_jws, *record);
  if (!r) {
    Error e = r.error();
    // The registry's record says this SE won the claim, and the SE already
    // holds the note: it was received before (perhaps by a run whose answer
    // was lost). Nothing is wrong and nothing changes.
    if (e.code == Errc::replayed && e.field == "id") return std::unexpected(received_before(note_jws));
    return std::unexpected(when_unavailable(e, "the registry holds the note for this SE, but the SE did not answer; "
                                               "nothing was credited yet, receive the same note again to credit it"));
  }
  (void)append_history(Json{{"op", "receive"}, {"result", *r}});
  return r;
}

bool Wallet::already_received(const Error& e) { return e.code == Errc::replayed && e.field == "note"; }

Error Wallet::received_before(const std::string& note_jws) {
  auto doc = payload_of(note_jws);
  std::string what = doc && doc->amount() ? doc->amount()->to_string() + " from " + doc->issuer() : "its value";
  return Error{Errc::replayed, "note",
               "this SE already received note " + (doc ? doc->id() : std::string("?")) + " (" + what +
                   "); nothing changed"};
}

// A top-up or deposit the bank did not answer, in words a person acts on:
// what the SE has already done, and that `zf wallet retry` finishes it once.
Error Wallet::unfinished(const OutboxEntry& e, const Amount& amount, Error err) {
  if (e.state != "pending") return err;  // refused: the bank's word stands
  std::string what =
      e.kind == "deposit"
          ? "the SE has debited " + amount.to_string() + " for the deposit and the signed deposit note is kept in "
                                                         "the outbox"
      : e.kind == "joint"
          ? "the joint spend of " + amount.to_string() +
                " is signed and kept in the outbox; the bank may or may not have acted on it yet"
      : e.kind.starts_with("hold")
          ? "the " + std::string(e.kind == "hold" ? "request to hold " : e.kind == "hold_confirm" ? "confirmation of the hold of " : "release of the hold of ") +
                amount.to_string() +
                " is signed and kept in the outbox; the bank may or may not have acted on it yet, and acts on it only "
                "for 10 minutes after it was signed"
      : e.kind == "transfer"
          ? "the SE has signed the order to transfer " + amount.to_string() +
                " and it is kept in the outbox; the bank may or may not have moved the money yet, and acts on the "
                "order only for 10 minutes after it was signed"
          : "the SE has signed the top-up request for " + amount.to_string() +
                " and it is kept in the outbox; the bank may or may not have moved the money yet";
  err.detail = what + "; run `zf wallet retry` to finish it exactly once (" + err.detail + ")";
  return err;
}

Result<std::string> Wallet::claim_at_registry(const std::string& note_jws) {
  auto claim = se_->claim_note(note_jws);
  // The SE signs no claim for a note it already credited.
  if (!claim && claim.error().code == Errc::replayed && claim.error().field == "id")
    return std::unexpected(received_before(note_jws));
  // Nor for an expired note: but if this SE claimed it in time (and a crash
  // came before the credit), the registry holds its record, which still counts.
  if (!claim && claim.error().code == Errc::expired) {
    auto held = check(note_jws);
    auto me = se_->info();
    if (held && me && (*held)["status"] == "claimed" && (*held).value("same_document", false) &&
        (*held)["processor"] == (*me)["se_id"])
      return (*held)["record"].get<std::string>();
  }
  if (!claim) return std::unexpected(claim.error());
  auto info = se_->info();
  if (!info) return std::unexpected(info.error());
  auto note = jws_parse(note_jws);
  if (!note) return std::unexpected(note.error());
  auto doc = Document::parse(to_string(note->payload));
  if (!doc) return std::unexpected(doc.error());
  auto client = registry::RegistryClient::connect(config_.registry_url, *root_, config_.registry_id, {});
  if (!client) return std::unexpected(client.error());
  auto record_jws = client->claim((*claim)["claim"].get<std::string>());
  if (!record_jws) return std::unexpected(record_jws.error());
  CertVerifier verifier(*root_);
  auto record = registry::open_record(*record_jws, verifier);
  if (!record) return std::unexpected(record.error());
  if (record->doc_id != doc->id()) return fail(Errc::receipt_mismatch, "the record answers another document", "doc_id");
  // Kept as proof of what the registry said, whatever it said.
  keep_record(doc->id(), *record_jws);
  std::string me = (*info)["se_id"].get<std::string>();
  if (record->won_by(me, sha256(note->payload))) return *record_jws;
  if (record->status == registry::RecordStatus::seq_reused)
    return fail(Errc::seq_reused, "payer " + doc->issuer() + " already used seq " + std::to_string(*doc->seq()) +
                                      " for another document (record " + record->id + ")",
                "seq");
  return fail(Errc::replayed, "already processed by " + record->processor + " (record " + record->id + ")", "id");
}

// Checking a note before accepting it (read-only: nothing is claimed, the SE
// only tells its id):
//   1. the note must be a genuine payment.note: signature, chain to our root with
//      role secure-element, one signer, and payer = issuer = signer, id =
//      signer:seq as the payee's SE requires, so a note cannot borrow another
//      note's record by naming its id. Revocation is not checked here: the
//      terminal keeps no CRL, its SE does and checks it at receive;
//   2. ask the registry for the record, presenting the note itself (records are
//      not public, docs/registry-api.md): not_found means nobody has claimed
//      the id yet, doc_id_reused that the id is held for another document;
//   3. a record must verify (role registry under our root) and answer this id.
Result<Json> Wallet::check(const std::string& note_jws) {
  if (config_.registry_url.empty())
    return fail(Errc::missing_field, "this wallet has no registry to ask (zf wallet init --registry URL)",
                "registry");
  CertVerifier verifier(*root_);
  auto note = open_signed_document(note_jws, verifier, Role::secure_element);
  if (!note) return std::unexpected(note.error());
  const Document& doc = note->doc;
  if (doc.type() != "payment.note")
    return fail(Errc::unknown_type, "expected a payment.note, not " + doc.type(), "type");
  if (note->signers.size() != 1) return fail(Errc::bad_header, "exactly one signature expected", "signatures");
  const std::string signer = note->signers.front().subject_cn();
  if (doc.str("payer") != signer || doc.issuer() != signer || !doc.seq() ||
      doc.id() != signer + ":" + std::to_string(*doc.seq()))
    return fail(Errc::bad_field, "payer, issuer, id and signing SE disagree", "payer");
  if (auto s = ensure_se(); !s) return std::unexpected(s.error());
  auto info = se_->info();
  if (!info) return std::unexpected(info.error());
  Json out{{"doc_id", doc.id()},
           {"payer", signer},
           {"payee", doc.str("payee")},
           {"amount_minor", doc.amount()->minor()},
           {"currency", std::string(doc.amount()->currency().code())},
           {"for_me", doc.str("payee") == info->value("se_id", "")}};
  auto client = registry::RegistryClient::connect(config_.registry_url, *root_, config_.registry_id, {});
  if (!client) return std::unexpected(client.error());
  auto record_jws = client->query_with_document(doc.id(), note_jws);
  if (!record_jws && record_jws.error().code == Errc::not_found) {
    out["status"] = "unclaimed";
    return out;
  }
  if (!record_jws && record_jws.error().code == Errc::doc_id_reused) {
    // The payer signed two notes under one sequence number; this one will be refused.
    out["status"] = "claimed";
    out["same_document"] = false;
    return out;
  }
  if (!record_jws) return std::unexpected(record_jws.error());
  auto record = registry::open_record(*record_jws, verifier);
  if (!record) return std::unexpected(record.error());
  if (record->doc_id != doc.id()) return fail(Errc::receipt_mismatch, "the record answers another document", "doc_id");
  if (record->status != registry::RecordStatus::claimed)
    return fail(Errc::bad_field, "a stored record must say claimed", "status");
  out["status"] = "claimed";
  out["processor"] = record->processor;
  out["claimed_at"] = record->claimed_at.value_or(record->iat);
  out["registry"] = record->registry;
  // A payment note's claim commits to the digest of the note's payload
  // (docs/registry-api.md): another digest means another document holds this
  // (payer, seq), i.e. the payer signed two notes under one sequence number.
  out["same_document"] = record->result_digest == sha256(note->jws.payload);
  out["record"] = *record_jws;
  return out;
}

Result<Json> Wallet::deposit(const Amount& amount, const std::string& bank, const std::string& account) {
  if (!unlocked_) return fail(Errc::not_verified, "unlock the SE with the PIN first");
  if (auto s = keep_crl_fresh(); !s) return std::unexpected(s.error());
  if (!config_.banks.count(bank)) return fail(Errc::not_found, "no bank '" + bank + "' in wallet.json", "bank");
  auto note = se_->deposit_note(Json{{"amount", amount.minor()},
                                     {"currency", std::string(amount.currency().code())},
                                     {"bank", bank},
                                     {"account", account}});
  if (!note) return std::unexpected(note.error());
  OutboxEntry e{(*note)["id"], "deposit", (*note)["note"], bank, "pending", "", ""};
  if (auto s = save_entry(e); !s) return std::unexpected(s.error());
  auto settled = settle(e);
  if (!settled) return std::unexpected(unfinished(e, amount, settled.error()));
  if (settled->contains("refunded_minor"))
    return fail(errc_from_name((*settled)["reason"].get<std::string>()),
                "the bank refused the deposit; the e-cash is back in the SE", "account");
  return settled;
}

Result<Json> Wallet::retry() {
  if (!unlocked_) return fail(Errc::not_verified, "unlock the SE with the PIN first");
  if (auto s = keep_crl_fresh(); !s) return std::unexpected(s.error());
  std::map<std::string, OutboxEntry> known;
  auto adopted = adopt_issued(known);
  if (!adopted) return std::unexpected(adopted.error());
  int settled = 0, still_pending = 0, refused = 0;
  Json errors = Json::array();
  for (auto& [id, e] : known) {
    if (e.state != "pending" || !bank_route(e.kind)) continue;
    auto r = settle(e);
    if (r) {
      ++settled;
    } else if (e.state == "refused") {
      ++refused;
      errors.push_back(Json{{"doc_id", id}, {"error", r.error().message()}});
    } else {
      ++still_pending;
      errors.push_back(Json{{"doc_id", id}, {"error", r.error().message()}});
    }
  }
  return Json{{"adopted", *adopted}, {"settled", settled}, {"pending", still_pending}, {"refused", refused},
              {"errors", errors}};
}

Result<int> Wallet::adopt_issued(std::map<std::string, OutboxEntry>& known) {
  auto info = se_->info();
  if (!info) return std::unexpected(info.error());
  auto issued = se_->issued();
  if (!issued) return std::unexpected(issued.error());
  for (auto& e : outbox()) known[e.doc_id] = e;
  int adopted = 0;
  for (const auto& jws : *issued) {
    auto doc = payload_of(jws.get<std::string>());
    if (!doc || known.count(doc->id())) continue;
    std::string kind = doc->type() == "topup.request"  ? "topup"
                       : doc->type() == "deposit.note" ? "deposit"
                       : doc->type() == "payment.note" ? "payment"
                                                       : "";
    if (kind.empty()) continue;
    bool pending_in_se = kind == "payment";
    for (const auto& id : (*info)[kind == "topup" ? "pending_topups" : "pending_deposits"])
      pending_in_se = pending_in_se || id == doc->id();
    if (!pending_in_se) continue;
    OutboxEntry e{doc->id(), kind, jws.get<std::string>(), doc->str("bank"), "pending", "", ""};
    if (auto s = save_entry(e); !s) return std::unexpected(s.error());
    known[e.doc_id] = e;
    ++adopted;
  }
  return adopted;
}

Result<Json> Wallet::notes() {
  if (!unlocked_) return fail(Errc::not_verified, "unlock the SE with the PIN first");
  std::map<std::string, OutboxEntry> known;
  if (auto adopted = adopt_issued(known); !adopted) return std::unexpected(adopted.error());
  std::optional<registry::RegistryClient> client;
  Error unreachable{Errc::missing_field, "registry", "this wallet has no registry to ask"};
  if (!config_.registry_url.empty()) {
    auto c = registry::RegistryClient::connect(config_.registry_url, *root_, config_.registry_id, {});
    if (c) client.emplace(std::move(*c));
    else unreachable = c.error();
  }
  auto open_list = se_->open_notes();
  if (!open_list) return std::unexpected(open_list.error());
  std::map<std::string, Json> open;  // the notes the SE keeps for a reclaim
  for (const auto& n : *open_list) open[n.value("id", "")] = n;
  auto me = se_->info();
  if (!me) return std::unexpected(me.error());
  const std::string self = (*me)["se_id"].get<std::string>();
  const std::int64_t now = std::time(nullptr);
  CertVerifier verifier(*root_);
  std::vector<std::pair<std::int64_t, Json>> items;
  for (const auto& [id, e] : known) {
    if (e.kind != "payment") continue;
    auto doc = payload_of(e.doc);
    if (!doc || !doc->amount()) continue;
    const bool is_open = open.erase(id) > 0;
    const bool expired = doc->exp() && *doc->exp() <= now;
    Json item{{"doc_id", id},
              {"payee", doc->str("payee")},
              {"amount_minor", doc->amount()->minor()},
              {"currency", std::string(doc->amount()->currency().code())},
              {"iat", doc->iat()},
              {"open", is_open}};
    if (doc->exp()) item["exp"] = *doc->exp();
    Result<std::string> record = std::unexpected(unreachable);
    if (client) record = client->query_with_document(id, e.doc);
    if (!record && record.error().code == Errc::not_found) {
      item["status"] = is_open && expired ? "reclaimable" : "not_received";
    } else if (!record && record.error().code == Errc::doc_id_reused) {
      item["status"] = "held_by_other";
    } else if (!record) {
      item["status"] = "unknown";
      item["registry_error"] = record.error().message();
    } else {
      auto r = registry::open_record(*record, verifier, config_.registry_id);
      if (!r || r->doc_id != id) {
        item["status"] = "unknown";
        item["registry_error"] = r ? "the record answers another document" : r.error().message();
      } else {
        const bool by_payee = r->processor == doc->str("payee");
        // A reclaim the registry recorded and the SE has not credited yet: reclaim() finishes it.
        item["status"] = by_payee ? "received" : r->processor == self ? (is_open ? "reclaimable" : "reclaimed")
                                                                      : "held_by_other";
        item["processor"] = r->processor;
        item["claimed_at"] = r->claimed_at.value_or(r->iat);
        // Received: the SE need keep it no longer (this moves no value).
        if (by_payee && is_open && se_->close_note(id, *record)) item["open"] = false;
      }
    }
    items.emplace_back(doc->seq().value_or(0), std::move(item));
  }
  // Notes the SE keeps whose text this wallet lost: the registry cannot be
  // asked without it, but the SE can still reclaim them after their expiry.
  for (const auto& [id, n] : open) {
    std::int64_t exp = n.value("exp", std::int64_t{0});
    items.emplace_back(n.value("seq", std::int64_t{0}),
                       Json{{"doc_id", id},
                            {"payee", n.value("payee", "")},
                            {"amount_minor", n.value("amount", std::int64_t{0})},
                            {"currency", n.value("currency", "")},
                            {"iat", n.value("iat", std::int64_t{0})},
                            {"exp", exp},
                            {"open", true},
                            {"status", exp <= now ? "reclaimable" : "unknown"},
                            {"registry_error", "this wallet has no copy of the note to show the registry"}});
  }
  std::sort(items.begin(), items.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  Json out = Json::array();
  for (auto& [seq, item] : items) out.push_back(std::move(item));
  return out;
}

Result<Json> Wallet::reclaim(const std::string& doc_id) {
  if (!unlocked_) return fail(Errc::not_verified, "unlock the SE with the PIN first");
  if (auto s = keep_crl_fresh(); !s) return std::unexpected(s.error());
  if (config_.registry_url.empty())
    return fail(Errc::missing_field, "reclaiming a note needs the registry; set it in the wallet", "registry");
  auto open = se_->open_notes();
  if (!open) return std::unexpected(open.error());
  std::optional<Json> note;
  for (const auto& n : *open)
    if (n.value("id", "") == doc_id) note = n;
  if (!note) {
    auto log = se_->log();
    if (log)
      for (const auto& e : *log)
        if (e.value("op", "") == "reclaim" && e.value("doc_id", "") == doc_id) {
          auto a = Amount::of(e.value("currency", ""), e.value("amount_minor", std::int64_t{0}));
          return std::unexpected(Error{Errc::replayed, "id",
                                       "note " + doc_id + " was reclaimed before (" + (a ? a->to_string() : "its value") +
                                           " came back on " + utc_time_text(e.value("at", std::int64_t{0})) +
                                           "); nothing changed"});
        }
    // Closed already: the registry says by whom, if this wallet has the note to show it.
    if (auto text = this->note(doc_id); text && !config_.registry_url.empty()) {
      auto held = check(*text);
      auto doc = payload_of(*text);
      if (held && doc && (*held)["status"] == "claimed" && (*held).value("same_document", false) &&
          (*held)["processor"] == doc->str("payee"))
        return Json{{"doc_id", doc_id},
                    {"outcome", "received"},
                    {"payee", doc->str("payee")},
                    {"claimed_at", (*held)["claimed_at"]},
                    {"amount_minor", doc->amount()->minor()},
                    {"currency", std::string(doc->amount()->currency().code())}};
    }
    return fail(Errc::not_found,
                "this SE has no open note " + doc_id +
                    ": it was received or reclaimed, or this SE did not pay it; nothing changed (`zf wallet notes` "
                    "lists the notes)",
                "id");
  }
  auto claim = se_->reclaim_claim(doc_id);
  if (!claim) return std::unexpected(claim.error());
  auto client = registry::RegistryClient::connect(config_.registry_url, *root_, config_.registry_id, {});
  if (!client) return std::unexpected(client.error());
  auto record_jws = client->claim((*claim)["claim"].get<std::string>());
  if (!record_jws) {
    return std::unexpected(when_unavailable(
        record_jws.error(), "nothing came back yet and the note stays open; run the reclaim again when the registry "
                            "answers"));
  }
  CertVerifier verifier(*root_);
  auto record = registry::open_record(*record_jws, verifier, config_.registry_id);
  if (!record) return std::unexpected(record.error());
  if (record->doc_id != doc_id) return fail(Errc::receipt_mismatch, "the record answers another document", "doc_id");
  keep_record(doc_id, *record_jws);
  // The SE decides from the record: its own reclaim credits the value once; the payee's claim closes the note.
  auto closed = se_->close_note(doc_id, *record_jws);
  if (!closed) {
    return std::unexpected(when_unavailable(closed.error(), "the registry recorded the reclaim but the SE did not "
                                                            "answer; nothing is lost: run `zf wallet reclaim " +
                                                                doc_id + "` again to credit it, once"));
  }
  Json out = *closed;
  out["doc_id"] = doc_id;
  out["amount_minor"] = (*note)["amount"];
  out["currency"] = (*note)["currency"];
  out["exp"] = (*note)["exp"];
  (void)append_history(Json{{"op", "reclaim"}, {"doc_id", doc_id}, {"result", out}});
  return out;
}

Result<std::vector<std::string>> Wallet::reclaimable() {
  if (!unlocked_) return fail(Errc::not_verified, "unlock the SE with the PIN first");
  auto open = se_->open_notes();
  if (!open) return std::unexpected(open.error());
  std::vector<std::string> out;
  const std::int64_t now = std::time(nullptr);
  for (const auto& n : *open)
    if (n.value("exp", std::int64_t{0}) <= now) out.push_back(n.value("id", ""));
  return out;
}

Result<std::string> Wallet::note(const std::string& doc_id) const {
  for (const auto& e : outbox())
    if ((e.kind == "payment" || e.kind == "escrow") && e.doc_id == doc_id) return e.doc;
  return fail(Errc::not_found,
              "no payment note " + doc_id + " in this wallet's outbox; `zf wallet notes` lists them (and "
              "recovers notes the SE signed that never reached the disk)",
              "id");
}

Result<Json> Wallet::history() {
  Json out = Json::array();
  std::ifstream in(fs::path(dir_) / "history.jsonl");
  std::string line;
  while (std::getline(in, line)) {
    auto j = parse_json_strict(line);
    if (j) out.push_back(*j);
  }
  return out;
}

// An account statement: the SE signs an account.query (it expires in 300 s and
// the bank answers it once), the bank checks it is bound to the account and
// answers. Nothing is written: a statement is not evidence the terminal keeps.
Result<Wallet::BankQuery> Wallet::bank_query(const std::string& bank, const std::string& account) {
  if (!unlocked_) return fail(Errc::not_verified, "unlock the SE with the PIN first");
  auto endpoint = config_.banks.find(bank);
  if (endpoint == config_.banks.end()) return fail(Errc::not_found, "no bank '" + bank + "' in wallet.json", "bank");
  auto query = se_->sign_query(Json{{"account", account}, {"bank", bank}});
  if (!query) return std::unexpected(query.error());
  auto client = bank::BankClient::connect(endpoint->second.url, *root_, bank, {});
  if (!client) return std::unexpected(client.error());
  return BankQuery{std::move(*client), (*query)["query"].get<std::string>()};
}

Result<Json> Wallet::account_statement(const std::string& bank, const std::string& account) {
  auto q = bank_query(bank, account);
  if (!q) return std::unexpected(q.error());
  auto statement = q->client.query(q->query);
  if (!statement) return std::unexpected(statement.error());
  return bank::statement_to_json(*statement);
}

Result<Json> Wallet::process_number(const std::string& bank, const std::string& account) {
  auto q = bank_query(bank, account);
  if (!q) return std::unexpected(q.error());
  return q->client.process_no(q->query);
}

Result<Json> Wallet::account_events(const std::string& bank, const std::string& account, std::int64_t after,
                                   std::int64_t wait_ms) {
  auto q = bank_query(bank, account);
  if (!q) return std::unexpected(q.error());
  // Waiting at the bank needs no SE: free it for the person's other terminals.
  if (wait_ms > 0) release_se();
  auto feed = q->client.events(q->query, after, wait_ms);
  if (!feed) return std::unexpected(feed.error());
  // The receipts are the bank's word: a document one must verify as the bank's.
  CertVerifier verifier(*root_);
  for (auto& e : (*feed)["events"]) {
    const std::string receipt = e.value("receipt", "");
    if (receipt.empty() || receipt.front() == '{') continue;  // an admin cash-in's parameters
    auto doc = open_signed_document(receipt, verifier, Role::custody);
    if (!doc || doc->signers.front().subject_cn() != bank)
      return fail(Errc::receipt_mismatch, "the bank's feed carries a receipt it did not sign (" + e.value("doc_id", "") + ")",
                  "receipt");
    e["details"] = doc->doc.json();
  }
  return feed;
}

Result<Json> Wallet::notes_not_received(std::size_t limit) {
  if (config_.registry_url.empty())
    return fail(Errc::missing_field, "this wallet has no registry to ask", "registry");
  std::vector<std::pair<std::int64_t, OutboxEntry>> paid;
  for (auto& e : outbox()) {
    if (e.kind != "payment") continue;
    auto doc = payload_of(e.doc);
    if (doc && doc->amount()) paid.emplace_back(doc->seq().value_or(0), std::move(e));
  }
  // Newest first: those are the notes still likely to be on their way.
  std::sort(paid.begin(), paid.end(), [](const auto& a, const auto& b) { return a.first > b.first; });
  const std::size_t asked = std::min(limit, paid.size());
  Json notes = Json::array();
  if (asked > 0) {
    auto client = registry::RegistryClient::connect(config_.registry_url, *root_, config_.registry_id, {});
    if (!client) return std::unexpected(client.error());
    for (std::size_t i = 0; i < asked; ++i) {
      const OutboxEntry& e = paid[i].second;
      auto record = client->query_with_document(e.doc_id, e.doc);
      if (record) continue;  // some claim holds it: received, or refused for a reused id
      if (record.error().code == Errc::doc_id_reused) continue;
      if (record.error().code != Errc::not_found) return std::unexpected(record.error());
      auto doc = payload_of(e.doc);
      Json item{{"doc_id", e.doc_id},
                {"payee", doc->str("payee")},
                {"amount_minor", doc->amount()->minor()},
                {"currency", std::string(doc->amount()->currency().code())}};
      if (doc->exp()) item["exp"] = *doc->exp();
      notes.push_back(std::move(item));
    }
  }
  return Json{{"notes", notes}, {"asked", asked}, {"total", paid.size()}};
}

bool Wallet::refused_by_bank(const Error& e) {
  return e.field == "account" && e.detail.starts_with("the bank refused the ");
}

// ---- Face to face (docs/se-apdu.md "Face-to-face payment")

Result<Json> Wallet::receive_nearby(std::int64_t seconds, const std::function<void(const Json&)>& on_code) {
  if (!unlocked_) return fail(Errc::not_verified, "unlock the SE with the PIN first");
  auto log_before = se_->log();
  if (!log_before) return std::unexpected(log_before.error());
  auto last_of = [](const Json& log) { return log.empty() ? Json() : log.back(); };
  const Json before = last_of(*log_before);
  auto started = se_->f2f_receive(seconds);
  if (!started) return std::unexpected(started.error());
  const std::int64_t until = (*started)["receiving_until"].get<std::int64_t>();
  std::string shown;
  Json out{{"received", false}, {"receiving_until", until}};
  for (;;) {
    auto log = se_->log();
    if (!log) return std::unexpected(log.error());
    auto st = se_->f2f_state();
    if (!st) return std::unexpected(st.error());
    Json last = last_of(*log);
    if (last != before && last.is_object() &&
        (last["op"] == "f2f.receive" || last["op"] == "f2f.refused")) {
      out.update(last);
      out["received"] = last["op"] == "f2f.receive";
      if (st->contains("last") && (*st)["last"].value("id", "") == last.value("doc_id", ""))
        out["code"] = (*st)["last"]["code"];
      break;
    }
    if (st->contains("code") && (*st)["code"] != shown) {
      shown = (*st)["code"];
      if (on_code) on_code(*st);
    }
    if (std::time(nullptr) >= until) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  (void)se_->f2f_receive(0);
  if (out["received"] == true) (void)append_history(Json{{"op", "receive-nearby"}, {"result", out}});
  return out;
}

Result<Json> Wallet::pay_nearby(const Amount& amount, const std::string& payee,
                                const std::function<bool(const Json&)>& confirm) {
  if (!unlocked_) return fail(Errc::not_verified, "unlock the SE with the PIN first");
  // Offline is the point: a CA that does not answer is no reason to stop
  // (keep_crl_fresh fails only once the SE's CRL has expired).
  if (auto s = keep_crl_fresh(); !s) return std::unexpected(s.error());
  auto agreed = se_->f2f_pay(Json{{"amount", amount.minor()},
                                  {"currency", std::string(amount.currency().code())},
                                  {"payee", payee}});
  auto nothing_moved = [](Error e) {
    if (e.detail.find("nothing was debited") == std::string::npos) e.detail += "; nothing was debited";
    return e;
  };
  if (!agreed) return std::unexpected(nothing_moved(agreed.error()));
  if (confirm && !confirm(*agreed)) {
    (void)se_->f2f_cancel();
    return fail(Errc::wrong_state, "cancelled: the codes were not confirmed; nothing was debited", "code");
  }
  auto r = se_->f2f_send();
  if (!r) {
    // An SE that answered refused before debiting; one that did not answer may
    // have debited and kept the payment as undelivered.
    Error e = r.error();
    if (e.code == Errc::unavailable)
      e.detail = "the SE stopped answering while it paid (" + e.detail +
                 "): it may have debited and kept the payment for its answer; `zf wallet undelivered` shows it if so";
    else
      e = nothing_moved(e);
    return std::unexpected(e);
  }
  (void)append_history(Json{{"op", "pay-nearby"}, {"payee", payee}, {"amount", amount.to_string()}, {"result", *r}});
  return r;
}

Result<Json> Wallet::nearby_state() {
  if (!unlocked_) return fail(Errc::not_verified, "unlock the SE with the PIN first");
  return se_->f2f_state();
}

Result<Json> Wallet::apply_answer(const std::string& answer_jws) {
  if (!unlocked_) return fail(Errc::not_verified, "unlock the SE with the PIN first");
  auto jws = jws_parse(answer_jws);
  if (!jws) return std::unexpected(jws.error());
  auto doc = Document::parse(to_string(jws->payload));
  if (!doc) return std::unexpected(doc.error());
  auto r = se_->f2f_close(doc->str("payment_id"), answer_jws);
  if (!r) return std::unexpected(r.error());
  (void)append_history(Json{{"op", "close-nearby"}, {"result", *r}});
  return r;
}

Result<Json> Wallet::refuse(const std::string& payment_jws, const std::string& reason) {
  if (!unlocked_) return fail(Errc::not_verified, "unlock the SE with the PIN first");
  auto r = se_->f2f_refuse(payment_jws, reason);
  if (!r) return std::unexpected(r.error());
  (void)append_history(Json{{"op", "refuse"}, {"outcome", (*r)["outcome"]}});
  return r;
}

Result<Json> Wallet::reconcile() {
  if (!unlocked_) return fail(Errc::not_verified, "unlock the SE with the PIN first");
  if (config_.registry_url.empty())
    return fail(Errc::missing_field, "settling needs the registry; set it in the wallet", "registry");
  auto st = se_->f2f_state();
  if (!st) return std::unexpected(st.error());
  Json out{{"settled", Json::array()}, {"revoked", Json::array()}, {"errors", Json::array()}};
  if ((*st)["unreconciled"].empty()) return out;
  auto client = registry::RegistryClient::connect(config_.registry_url, *root_, config_.registry_id, {});
  if (!client) return std::unexpected(when_unavailable(client.error(), "nothing was settled; try again later"));
  for (const auto& u : (*st)["unreconciled"]) {
    const std::string id = u["id"];
    auto claim = se_->f2f_reconcile_claim(id);
    auto record = claim ? client->claim((*claim)["claim"].get<std::string>())
                        : Result<std::string>(std::unexpected(claim.error()));
    auto settled = record ? se_->f2f_settle(id, *record) : Result<Json>(std::unexpected(record.error()));
    if (record) keep_record(id, *record);
    if (!settled) {
      out["errors"].push_back(Json{{"id", id}, {"code", errc_name(settled.error().code)},
                                   {"detail", settled.error().detail}});
      continue;
    }
    out[(*settled)["outcome"] == "settled" ? "settled" : "revoked"].push_back(*settled);
  }
  (void)append_history(Json{{"op", "reconcile"}, {"result", out}});
  return out;
}

// ---- Controlled payment (docs/se-apdu.md "Controlled payment")

Result<Json> Wallet::escrow_pay(const Amount& amount, const std::string& payee,
                                std::optional<std::int64_t> expires_in_s) {
  return sign_note_to(amount, payee, expires_in_s, "escrow");
}

Result<Json> Wallet::escrow_release(const std::string& id) {
  if (!unlocked_) return fail(Errc::not_verified, "unlock the SE with the PIN first");
  auto r = se_->cpay_release(id);
  if (r) (void)append_history(Json{{"op", "escrow-release"}, {"doc_id", id}});
  return r;
}

Result<Json> Wallet::escrow_accept(const std::string& note_jws, const Json& key) {
  if (!unlocked_) return fail(Errc::not_verified, "unlock the SE with the PIN first");
  if (config_.registry_url.empty())
    return fail(Errc::missing_field, "accepting needs the registry; set it in the wallet", "registry");
  std::string note_id;
  if (auto note = jws_parse(note_jws))
    if (auto doc = Document::parse(to_string(note->payload))) note_id = doc->id();
  auto claim = se_->cpay_claim(note_jws, key);
  std::string record;
  if (claim) {
    auto client = registry::RegistryClient::connect(config_.registry_url, *root_, config_.registry_id, {});
    if (!client) return std::unexpected(when_unavailable(client.error(), "nothing was credited; accept it again later"));
    auto r = client->claim((*claim)["claim"].get<std::string>());
    if (!r) return std::unexpected(when_unavailable(r.error(), "nothing was credited; accept it again later"));
    record = std::move(*r);
    if (!note_id.empty()) keep_record(note_id, record);
  } else if (auto kept = note_id.empty() ? std::nullopt : kept_record(note_id);
             claim.error().code == Errc::expired && kept) {
    // Past the expiry the SE signs no new claim, but the record of one the
    // registry took in time still lets it accept (the payer closes on it as paid).
    record = std::move(*kept);
  } else {
    return std::unexpected(claim.error());
  }
  auto r = se_->cpay_accept(note_jws, key, record);
  if (!r) return std::unexpected(r.error());
  (void)append_history(Json{{"op", "escrow-accept"}, {"result", *r}});
  return r;
}

Result<Json> Wallet::escrow_refund(const std::string& note_jws) {
  if (!unlocked_) return fail(Errc::not_verified, "unlock the SE with the PIN first");
  auto r = se_->cpay_refund(note_jws);
  if (r) (void)append_history(Json{{"op", "escrow-refund"}, {"note_id", (*r)["note_id"]}});
  return r;
}

Result<Json> Wallet::escrow_close(const std::string& id, const std::string& refund_jws) {
  if (!unlocked_) return fail(Errc::not_verified, "unlock the SE with the PIN first");
  if (config_.registry_url.empty())
    return fail(Errc::missing_field, "closing needs the registry; set it in the wallet", "registry");
  auto client = registry::RegistryClient::connect(config_.registry_url, *root_, config_.registry_id, {});
  if (!client) return std::unexpected(when_unavailable(client.error(), "nothing changed; try again later"));
  // With a refund (or after the expiry) this SE claims its note; without, the
  // registry's record of the payee's claim, if there is one, closes it.
  std::string record;
  auto claim = se_->cpay_refund_claim(id, refund_jws);
  if (claim) {
    auto r = client->claim((*claim)["claim"].get<std::string>());
    if (!r) return std::unexpected(when_unavailable(r.error(), "nothing changed; try again later"));
    record = *r;
  } else if (claim.error().code == Errc::not_expired) {
    // Not refunded and not expired: closed only if the payee's claim holds it.
    auto note = this->note(id);
    if (!note) return std::unexpected(claim.error());
    auto held = client->query_with_document(id, *note);
    if (!held && held.error().code == Errc::not_found)
      return fail(Errc::not_expired,
                  id + " is still in escrow: the payee has neither accepted nor refunded it; nothing changed", "id");
    if (!held) return std::unexpected(when_unavailable(held.error(), "nothing changed; try again later"));
    record = *held;
  } else {
    return std::unexpected(claim.error());
  }
  keep_record(id, record);
  auto r = se_->cpay_close(id, record);
  if (!r) return std::unexpected(r.error());
  (void)append_history(Json{{"op", "escrow-close"}, {"result", *r}});
  return r;
}

Result<Json> Wallet::escrow_list() {
  if (!unlocked_) return fail(Errc::not_verified, "unlock the SE with the PIN first");
  return se_->escrow();
}

}  // namespace zf::wallet
