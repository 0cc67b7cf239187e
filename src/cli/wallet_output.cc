#include "cli/wallet_output.h"

#include <algorithm>
#include <cstdio>
#include <ctime>
#include <map>
#include <set>

#include "core/document.h"
#include "core/jose.h"

namespace zf::cli::out {
namespace {

std::int64_t int_of(const Json& j, const char* key) {
  auto it = j.find(key);
  return it != j.end() && it->is_number_integer() ? it->get<std::int64_t>() : 0;
}

std::string str_of(const Json& j, const char* key) {
  auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
}

// The payload of a document the outbox holds, exactly as the SE signed it.
std::optional<Document> outbox_doc(const std::vector<wallet::OutboxEntry>& outbox,
                                   const std::string& doc_id) {
  for (const auto& e : outbox) {
    if (e.doc_id != doc_id) continue;
    auto jws = jws_parse(e.doc);
    if (!jws) return std::nullopt;
    auto doc = Document::parse(to_string(jws->payload));
    if (doc) return std::move(*doc);
  }
  return std::nullopt;
}

std::string amount_of(const Document& doc) {
  return doc.amount() ? doc.amount()->to_string() : "?";
}

std::string plural(std::size_t n, const char* one, const char* many) {
  return std::to_string(n) + " " + (n == 1 ? one : many);
}

// Pads `s` to `width` columns (its bytes are ASCII: ids, codes and amounts).
std::string pad(const std::string& s, std::size_t width) {
  return s.size() >= width ? s + " " : s + std::string(width - s.size(), ' ');
}
std::string pad_left(const std::string& s, std::size_t width) {
  return s.size() >= width ? s : std::string(width - s.size(), ' ') + s;
}

}  // namespace

std::string money(const std::string& currency, std::int64_t minor) {
  auto a = Amount::of(currency, minor);
  return a ? a->to_string() : "? " + std::to_string(minor);
}

std::string signed_money(const std::string& currency, std::int64_t minor) {
  if (minor == 0) return money(currency, 0);
  // Amount is never negative: the sign is written in front of the magnitude.
  return (minor < 0 ? "-" : "+") + money(currency, minor < 0 ? -minor : minor);
}

std::string duration_words(std::int64_t seconds) {
  struct Unit {
    std::int64_t s;
    const char *one, *many;
  };
  static constexpr Unit kUnits[] = {{86400, "day", "days"}, {3600, "hour", "hours"}, {60, "minute", "minutes"}};
  for (const auto& u : kUnits)
    if (seconds >= u.s) return plural(static_cast<std::size_t>(seconds / u.s), u.one, u.many);
  return plural(static_cast<std::size_t>(std::max<std::int64_t>(seconds, 0)), "second", "seconds");
}

std::string local_date(std::int64_t unix_s) {
  std::time_t t = static_cast<std::time_t>(unix_s);
  std::tm tm{};
  char buf[32];
  if (!::localtime_r(&t, &tm) || std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M", &tm) == 0)
    return "?";
  return buf;
}

std::string holdings_text(const Json& info) {
  std::string held;
  if (auto b = info.find("balances"); b != info.end() && b->is_object())
    for (const auto& [currency, minor] : b->items())
      if (minor.is_number_integer())
        held += (held.empty() ? "" : ", ") + money(currency, minor.get<std::int64_t>());
  return held.empty() ? "E-cash: none yet (`zf wallet topup` moves money in from a bank account).\n"
                      : "E-cash: " + held + "\n";
}

std::string retry_text(const Json& r) {
  const auto count = [&](const char* k) { return static_cast<std::size_t>(int_of(r, k)); };
  std::string text;
  if (count("adopted") > 0)
    text += "Recovered " + plural(count("adopted"), "document", "documents") +
            " the SE had signed that never reached the outbox.\n";
  if (count("settled") > 0)
    text += "Finished " + plural(count("settled"), "top-up or deposit", "top-ups and deposits") +
            ", each exactly once: the bank's answer is applied in the SE.\n";
  if (count("refused") > 0)
    text += plural(count("refused"), "document was", "documents were") +
            " refused by the bank (a refused deposit's value is back in the SE):\n";
  if (count("pending") > 0)
    text += plural(count("pending"), "document is", "documents are") +
            " still unanswered; nothing moved twice, run `zf wallet retry` again when the bank answers:\n";
  if (auto errors = r.find("errors"); errors != r.end() && errors->is_array())
    for (const auto& e : *errors) text += "  " + str_of(e, "doc_id") + ": " + str_of(e, "error") + "\n";
  if (text.empty()) text = "Nothing to retry: every top-up, deposit and transfer has its answer.\n";
  return text;
}

std::string balance_text(const Json& info, const std::vector<wallet::OutboxEntry>& outbox,
                         const Result<Json>& not_received) {
  std::string text;
  const std::int64_t tries = int_of(info, "pin_tries_left");
  std::string state = str_of(info, "state");
  if (state == "active" && tries == 0) state = "pin blocked";
  text += "SE " + str_of(info, "se_id");
  if (!str_of(info, "user_id").empty()) text += " of " + str_of(info, "user_id");
  text += ": " + state + ", " + plural(static_cast<std::size_t>(tries), "PIN try", "PIN tries") +
          " left.";
  if (state == "pin blocked") text += " `zf wallet unblock` with the PUK sets a new PIN.";
  text += "\n";

  text += holdings_text(info);
  auto sums_text = [&](const char* field) {
    std::string t;
    if (info.contains(field))
      for (const auto& [cur, v] : info[field].items())
        if (v.get<std::int64_t>() > 0) t += (t.empty() ? "" : ", ") + money(cur, v.get<std::int64_t>());
    return t;
  };
  if (auto t = sums_text("f2f_unreconciled_minor"); !t.empty())
    text += "Of this, " + t + " was taken face to face and is not settled yet: once online, `zf wallet reconcile` "
            "settles it so that it can be spent.\n";
  if (auto t = sums_text("escrow_minor"); !t.empty())
    text += "In escrow: " + t + " (`zf wallet escrow list` shows each note and how it ends).\n";
  if (auto t = sums_text("f2f_undelivered_minor"); !t.empty())
    text += "Paid face to face with no answer yet: " + t + " (`zf wallet undelivered` says how to end it).\n";

  std::vector<std::string> waiting;
  for (const char* kind : {"pending_topups", "pending_deposits"}) {
    auto list = info.find(kind);
    if (list == info.end() || !list->is_array()) continue;
    const bool topup = std::string(kind) == "pending_topups";
    for (const auto& id_json : *list) {
      if (!id_json.is_string()) continue;
      const std::string id = id_json.get<std::string>();
      auto doc = outbox_doc(outbox, id);
      std::string line = topup ? "  top-up " + id : "  deposit " + id;
      if (!doc)
        line += " (not in this terminal's outbox; `zf wallet retry` recovers it from the SE)";
      else if (topup)
        line += ": " + amount_of(*doc) + " from account " + doc->str("account") + " at " +
                doc->str("bank");
      else
        line += ": " + amount_of(*doc) + " into account " + doc->str("account") + " at " +
                doc->str("bank") + " (the SE has debited it)";
      waiting.push_back(line);
    }
  }
  if (!waiting.empty()) {
    text += "Awaiting the bank's receipt (`zf wallet retry` finishes each exactly once):\n";
    for (const auto& l : waiting) text += l + "\n";
  }

  if (!not_received) {
    text += "Paid notes: the registry could not be asked which have been received (" +
            not_received.error().message() + ").\n";
    return text;
  }
  const Json& notes = (*not_received)["notes"];
  const std::int64_t asked = int_of(*not_received, "asked");
  const std::int64_t total = int_of(*not_received, "total");
  if (total == 0) return text;
  std::string of = asked < total
                       ? " (of the newest " + std::to_string(asked) + " of " +
                             std::to_string(total) + " notes; `zf wallet notes` asks about all)"
                       : "";
  if (notes.empty()) return text + "Paid notes: none is waiting to be received" + of + ".\n";
  std::map<std::string, std::int64_t> sums;
  std::set<std::string> payees;
  std::size_t expired = 0;
  const std::int64_t now = std::time(nullptr);
  for (const auto& n : notes) {
    sums[str_of(n, "currency")] += int_of(n, "amount_minor");
    payees.insert(str_of(n, "payee"));
    if (n.contains("exp") && int_of(n, "exp") <= now) ++expired;
  }
  std::string amounts, to;
  for (const auto& [currency, minor] : sums)
    amounts += (amounts.empty() ? "" : ", ") + money(currency, minor);
  for (const auto& p : payees) to += (to.empty() ? "" : ", ") + p;
  text += "Paid, not yet received: " + amounts + " in " + plural(notes.size(), "note", "notes") + " to " + to + of +
          " (`zf wallet notes` lists them).\n";
  if (expired > 0)
    text += plural(expired, "note has", "notes have") +
            " expired unreceived: `zf wallet reclaim` takes the value back.\n";
  return text;
}

std::string se_log_text(const Json& se_log) {
  if (!se_log.is_array() || se_log.empty()) return "The SE's log is empty.\n";
  static const std::map<std::string, std::string> kWords = {
      {"topup.request", "top-up requested"},
      {"topup", "topped up"},
      {"topup.refused", "top-up refused by the bank"},
      {"payment.note", "paid (note signed)"},
      {"receive", "received"},
      {"deposit.note", "deposited (note signed)"},
      {"deposit", "deposit credited to the account"},
      {"deposit.refund", "deposit refused, value back"},
      {"reclaim", "reclaimed (note expired unreceived)"},
      {"transfer.order", "transfer ordered (account to account)"},
      {"hold.request", "hold requested (payer)"},
      {"hold.cosign", "hold cosigned (payee)"},
      {"hold.confirm", "hold confirmed (pay the payee)"},
      {"hold.release", "hold released (back to the payer)"},
  };
  std::string text = pad("WHEN", 18) + pad("WHAT", 34) + pad_left("AMOUNT", 15) + "  " +
                     pad("WITH", 16) + "DOCUMENT\n";
  for (const auto& e : se_log) {
    const std::string op = str_of(e, "op");
    auto word = kWords.find(op);
    const std::int64_t minor = int_of(e, "amount_minor");
    // Entries that move no value (a request, the bank's acknowledgement) show no amount.
    std::string amount = minor == 0 ? "" : signed_money(str_of(e, "currency"), minor);
    text += pad(local_date(int_of(e, "at")), 18) +
            pad(word != kWords.end() ? word->second : op, 34) + pad_left(amount, 15) + "  " +
            pad(str_of(e, "counterparty"), 16) + str_of(e, "doc_id") + "\n";
  }
  return text;
}

std::string terminal_history_text(const Json& events,
                                  const std::vector<wallet::OutboxEntry>& outbox) {
  if (!events.is_array() || events.empty()) return "This terminal has no history yet.\n";
  std::string text;
  for (const auto& e : events) {
    const std::string op = str_of(e, "op");
    const std::string id = str_of(e, "doc_id");
    const Json result = e.value("result", Json::object());
    std::string line;
    if (op == "topup") {
      if (result.contains("credited_minor"))
        line = "topped up " + money(str_of(result, "currency"), int_of(result, "credited_minor")) +
               " from " + str_of(e, "bank") + " (" + id + ")";
      else if (result.contains("refused"))
        line = "top-up " + id + " refused by " + str_of(e, "bank") + " (" +
               str_of(result, "reason") + "); no money moved";
      else
        line = "top-up " + id + " at " + str_of(e, "bank") + " (its receipt was applied before)";
    } else if (op == "deposit") {
      auto doc = outbox_doc(outbox, id);
      std::string what =
          doc ? amount_of(*doc) + " into account " + doc->str("account") + " at " + doc->str("bank")
              : "at " + str_of(e, "bank");
      if (result.contains("refunded_minor"))
        line = "deposit " + id + " refused by " + str_of(e, "bank") + " (" +
               str_of(result, "reason") + "); " +
               money(doc && doc->amount() ? std::string(doc->amount()->currency().code()) : "CNY",
                     int_of(result, "refunded_minor")) +
               " came back into the SE";
      else
        line = "deposited " + what + " (" + id + ")";
    } else if (op == "transfer") {
      const std::string what = money(str_of(result, "currency"), int_of(result, "amount_minor")) + " from " +
                               str_of(result, "from") + " to " + str_of(result, "to") + " at " + str_of(e, "bank");
      if (str_of(result, "status") == "refused")
        line = "transfer of " + what + " refused (" + str_of(result, "reason") + "); no money moved (" + id + ")";
      else
        line = "transferred " + what + " (" + id + ")";
    } else if (op == "hold" || op == "hold_confirm" || op == "hold_release") {
      const std::string what = money(str_of(result, "currency"), int_of(result, "amount_minor")) + " from " +
                               str_of(result, "payer_account") + " to " + str_of(result, "payee_account") + " at " +
                               str_of(e, "bank");
      const std::string status = str_of(result, "status");
      line = status == "refused"   ? "hold of " + what + " refused (" + str_of(result, "reason") + "); no money moved"
             : status == "held"    ? "held " + what
             : status == "confirmed" ? "hold confirmed: paid " + what
                                     : "hold released: " + what + " went back";
      line += " (hold " + str_of(result, "hold_id") + ")";
    } else if (op == "pay") {
      line = "paid " + str_of(e, "amount") + " to " + str_of(e, "payee") + " (note " + id + ")";
    } else if (op == "receive") {
      line = "received " + money(str_of(result, "currency"), int_of(result, "credited_minor")) +
             " from " + str_of(result, "payer") + " (note " + str_of(result, "note_id") + ")";
    } else {
      line = op + (id.empty() ? "" : " " + id);
    }
    text += pad(e.contains("at") ? local_date(int_of(e, "at")) : "(no date)", 18) + line + "\n";
  }
  return text;
}

std::string bank_reason(Errc reason, const std::string& bank, const std::string& account,
                        const std::optional<Amount>& amount) {
  std::string words;
  switch (reason) {
    case Errc::insufficient_funds:
      words =
          "account " + account + " cannot cover " + (amount ? amount->to_string() : "the amount");
      break;
    case Errc::not_owner:
      words = "this SE is not bound to account " + account;
      break;
    case Errc::account_unknown:
      words = bank + " has no account " + account;
      break;
    case Errc::currency_mismatch:
      words = "account " + account + " is not kept in " +
              (amount ? std::string(amount->currency().code()) : std::string("this currency"));
      break;
    case Errc::process_no_unknown:
      words = bank + " never handed out that processing number";
      break;
    case Errc::process_no_used:
      words = "that processing number was used by another document";
      break;
    case Errc::process_no_expired:
      words = "that processing number has expired";
      break;
    case Errc::cert_revoked:
      words = "this SE's certificate is revoked";
      break;
    case Errc::cert_expired:
      words = "this SE's certificate has expired";
      break;
    default:
      return std::string(errc_name(reason));
  }
  return words + " (" + std::string(errc_name(reason)) + ")";
}

namespace {

std::int64_t held(const Json& info, const std::string& currency) {
  auto b = info.find("balances");
  return b != info.end() && b->is_object() ? b->value(currency, std::int64_t{0}) : 0;
}

// The ids in `after[key]` that are not in `before[key]`.
std::vector<std::string> new_ids(const Json& before, const Json& after, const char* key) {
  std::vector<std::string> out;
  auto was = before.find(key);
  auto now = after.find(key);
  if (now == after.end() || !now->is_array()) return out;
  for (const auto& id : *now) {
    bool old = was != before.end() && was->is_array() &&
               std::find(was->begin(), was->end(), id) != was->end();
    if (!old && id.is_string()) out.push_back(id.get<std::string>());
  }
  return out;
}

bool says(const std::string& text, const char* what) {
  return text.find(what) != std::string::npos;
}

}  // namespace

std::string value_failure(const std::string& kind, const Error& e, const Amount& amount,
                          const std::string& bank, const std::string& account,
                          const Result<Json>& before, const Result<Json>& after) {
  const bool topup = kind == "topup";
  const std::string currency(amount.currency().code());
  if (wallet::Wallet::refused_by_bank(e)) {
    std::string why = bank_reason(e.code, bank, account, amount);
    if (topup)
      return "the bank refused the top-up: " + why +
             "; no money moved, the account and the SE are as they were";
    return "the bank refused the deposit: " + why + "; the " + amount.to_string() +
           " came back into the SE" +
           (after ? ", which holds " + money(currency, held(*after, currency)) : std::string()) +
           "; nothing moved";
  }
  // What moved goes with the error's own words, before the field it names.
  auto with = [&](const std::string& more) {
    Error told = e;
    told.detail += more;
    return told.message();
  };
  const std::string text = e.message();
  // The library's words already tell what moved (an unanswered request, a debit kept in the
  // outbox).
  if (says(text, "nothing moved") || says(text, "no money moved") || says(text, "has debited") ||
      says(text, "may or may not"))
    return text;
  if (!before || !after)
    return with(
        "; the SE could not be asked what it did: `zf wallet balance` shows it, `zf wallet retry` "
        "finishes "
        "anything left unanswered");
  const std::int64_t was = held(*before, currency), now = held(*after, currency);
  auto signed_deposits = new_ids(*before, *after, "pending_deposits");
  if (!topup && now < was && !signed_deposits.empty())
    return with("; the SE has debited " + money(currency, was - now) + " for the deposit note " +
                signed_deposits.front() +
                ", which is kept in the outbox (the bank did not take it)");
  if (now == was) return with("; nothing moved, the SE still holds " + money(currency, now));
  return with("; the SE now holds " + money(currency, now) + " (before: " + money(currency, was) +
              ")");
}

std::string query_failure(const Error& e, const std::string& bank, const std::string& account) {
  switch (e.code) {
    case Errc::not_owner:
    case Errc::account_unknown:
    case Errc::cert_revoked:
    case Errc::cert_expired:
    case Errc::misaddressed:
      return "the bank refused: " + bank_reason(e.code, bank, account, std::nullopt) +
             "; nothing was shown";
    default:
      return e.message() + "; nothing was shown";
  }
}

std::string statement_text(const Json& statement, const std::string& bank) {
  const std::string currency = str_of(statement, "currency");
  std::string text = "Account " + str_of(statement, "account") + " at " + bank + ": " +
                     money(currency, int_of(statement, "balance_minor")) + "\n";
  auto history = statement.find("history");
  if (history == statement.end() || !history->is_array() || history->empty())
    return text + "No entries yet.\n";
  static const std::map<std::string, std::string> kWords = {
      {"cash_in", "cash in"},
      {"topup", "top-up to an SE"},
      {"deposit", "deposit from an SE"},
      {"transfer", "transfer"},
      {"hold", "held for a payee"},
      {"hold_confirm", "hold paid"},
      {"hold_release", "hold given back"},
      {"hold_expiry", "hold expired, back"},
  };
  text += "Recent entries, newest first:\n";
  for (const auto& h : *history) {
    const std::string kind = str_of(h, "kind");
    auto word = kWords.find(kind);
    text += "  " + pad(local_date(int_of(h, "created_at")), 18) +
            pad(word != kWords.end() ? word->second : kind, 20) +
            pad_left(signed_money(currency, int_of(h, "amount_minor")), 15) + "  " +
            str_of(h, "doc_id") + "\n";
  }
  return text;
}


std::string feed_event_text(const std::string& currency, const Json& event) {
  static const Json kNone = Json::object();
  auto d = event.find("details");
  const Json& details = d != event.end() && d->is_object() ? *d : kNone;
  const std::string kind = str_of(event, "kind");
  const std::int64_t minor = int_of(event, "amount_minor");
  const std::int64_t held = int_of(event, "held_minor");
  const std::string payer = str_of(details, "payer_account"), payee = str_of(details, "payee_account");
  const std::string until = details.contains("release_at") ? local_date(int_of(details, "release_at")) : "?";
  std::string figure = held != 0 ? "held " + money(currency, held) : signed_money(currency, minor);
  std::string words;
  if (kind == "cash_in") {
    words = "cash paid in at the bank";
  } else if (kind == "topup") {
    words = "topped up SE " + str_of(details, "se");
  } else if (kind == "deposit") {
    words = "deposited from SE " + str_of(details, "se");
  } else if (kind == "transfer") {
    words = minor >= 0 ? "transfer from " + str_of(details, "from") : "transfer to " + str_of(details, "to");
  } else if (kind == "hold") {
    words = held != 0 ? payer + " froze this for you until " + until + "; it is yours once they confirm"
                      : "frozen for " + payee + " until " + until + "; theirs once you confirm";
  } else if (kind == "hold_confirm") {
    words = held != 0 ? "your hold for " + payee + " was confirmed: the money is theirs"
                      : "hold from " + payer + " confirmed: the money is yours";
  } else if (kind == "hold_release") {
    words = held != 0 ? "you gave back the hold from " + payer : payee + " gave the hold back: the money is yours again";
  } else if (kind == "hold_expiry") {
    words = held != 0 ? "the hold from " + payer + " expired: the money went back to them"
                      : "the hold for " + payee + " expired: the money is yours again";
  } else {
    words = kind;
  }
  return pad(local_date(int_of(event, "created_at")), 18) + pad_left(figure, 18) + "  " + words + " (" +
         str_of(event, "doc_id") + ", feed " + std::to_string(int_of(event, "entry_id")) + ")\n";
}

}  // namespace zf::cli::out
