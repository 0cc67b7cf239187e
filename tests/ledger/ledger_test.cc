// The ledger rules without any store: entries, zero-sum, balances, audit.
#include "ledger/ledger.h"

#include <gtest/gtest.h>

namespace zf::ledger {
namespace {

Amount cny(std::int64_t minor) { return *Amount::of("CNY", minor); }

std::vector<Account> fresh_books() {
  return {{"alice", AccountKind::customer, "CNY", 0},
          {"bob", AccountKind::customer, "CNY", 0},
          {issuance_account_id("CNY"), AccountKind::issuance, "CNY", 0},
          {outstanding_account_id("CNY"), AccountKind::ecash_outstanding, "CNY", 0}};
}

// Applies `e` to `books` in place (the way a store does inside its transaction).
Status post(std::vector<Account>& books, JournalEntry e, std::vector<JournalEntry>& journal) {
  auto next = apply_entry(e, books);
  if (!next) return std::unexpected(next.error());
  for (const auto& a : *next)
    for (auto& b : books)
      if (b.id == a.id) b.balance_minor = a.balance_minor;
  e.entry_id = static_cast<std::int64_t>(journal.size() + 1);
  journal.push_back(std::move(e));
  return {};
}

std::int64_t balance(const std::vector<Account>& books, const std::string& id) {
  for (const auto& a : books)
    if (a.id == id) return a.balance_minor;
  ADD_FAILURE() << "no account " << id;
  return 0;
}

TEST(LedgerRules, CashInTopupDepositMoveMoneyAsDesigned) {
  auto e = cash_in("c1", "alice", cny(10000));
  ASSERT_TRUE(e);
  EXPECT_EQ(e->kind, kEntryCashIn);
  ASSERT_EQ(e->postings.size(), 2u);
  EXPECT_EQ(e->postings[0].account_id, issuance_account_id("CNY"));
  EXPECT_EQ(e->postings[0].amount_minor, -10000);
  EXPECT_EQ(e->postings[1].account_id, "alice");
  EXPECT_EQ(e->postings[1].amount_minor, 10000);

  auto t = topup("t1", "alice", cny(2500));
  ASSERT_TRUE(t);
  EXPECT_EQ(t->postings[0].account_id, "alice");
  EXPECT_EQ(t->postings[0].amount_minor, -2500);
  EXPECT_EQ(t->postings[1].account_id, outstanding_account_id("CNY"));
  EXPECT_EQ(t->postings[1].amount_minor, 2500);

  auto d = deposit("d1", "bob", cny(700));
  ASSERT_TRUE(d);
  EXPECT_EQ(d->postings[0].account_id, outstanding_account_id("CNY"));
  EXPECT_EQ(d->postings[0].amount_minor, -700);
  EXPECT_EQ(d->postings[1].account_id, "bob");
  EXPECT_EQ(d->postings[1].amount_minor, 700);
}

TEST(LedgerRules, ZeroAmountIsRefused) {
  auto e = topup("t1", "alice", cny(0));
  ASSERT_FALSE(e);
  EXPECT_EQ(e.error().code, Errc::amount_zero);
}

TEST(LedgerRules, ConservationHoldsThroughASequence) {
  auto books = fresh_books();
  std::vector<JournalEntry> journal;
  ASSERT_TRUE(post(books, *cash_in("c1", "alice", cny(10000)), journal));
  ASSERT_TRUE(post(books, *topup("t1", "alice", cny(2500)), journal));
  ASSERT_TRUE(post(books, *deposit("d1", "bob", cny(1000)), journal));
  EXPECT_EQ(balance(books, "alice"), 7500);
  EXPECT_EQ(balance(books, "bob"), 1000);
  EXPECT_EQ(balance(books, outstanding_account_id("CNY")), 1500);
  EXPECT_EQ(balance(books, issuance_account_id("CNY")), -10000);

  AuditReport r = audit(books, journal);
  EXPECT_TRUE(r.ok()) << (r.violations.empty() ? "" : r.violations.front());
  EXPECT_EQ(r.entries, 3u);
  EXPECT_EQ(r.accounts, 4u);
  ASSERT_EQ(r.currencies.size(), 1u);
  const CurrencyFigures& f = r.currencies[0];
  EXPECT_EQ(f.currency, "CNY");
  EXPECT_EQ(f.customer_minor, 8500);
  EXPECT_EQ(f.ecash_outstanding_minor, 1500);
  EXPECT_EQ(f.issued_minor, 10000);
  EXPECT_TRUE(f.conserved);
}

TEST(LedgerRules, CustomerMoneyNeverGoesNegative) {
  auto books = fresh_books();
  std::vector<JournalEntry> journal;
  ASSERT_TRUE(post(books, *cash_in("c1", "alice", cny(100)), journal));
  auto over = post(books, *topup("t1", "alice", cny(101)), journal);
  ASSERT_FALSE(over);
  EXPECT_EQ(over.error().code, Errc::insufficient_funds);
  EXPECT_EQ(balance(books, "alice"), 100);
  // Exactly the balance is fine.
  EXPECT_TRUE(post(books, *topup("t2", "alice", cny(100)), journal));
  EXPECT_EQ(balance(books, "alice"), 0);
  EXPECT_TRUE(audit(books, journal).ok());
}

TEST(LedgerRules, ApplyRefusesUnknownAccountsCurrencyMismatchAndOverflow) {
  auto books = fresh_books();
  auto unknown = apply_entry(*topup("t1", "carol", cny(1)), books);
  ASSERT_FALSE(unknown);
  EXPECT_EQ(unknown.error().code, Errc::account_unknown);

  books.push_back({"usd-acct", AccountKind::customer, "USD", 500});
  JournalEntry wrong = *topup("t2", "usd-acct", cny(100));
  auto mismatch = apply_entry(wrong, books);
  ASSERT_FALSE(mismatch);
  EXPECT_EQ(mismatch.error().code, Errc::currency_mismatch);

  books[0].balance_minor = Amount::kMaxMinor;  // alice at the maximum
  books[2].balance_minor = -Amount::kMaxMinor;
  auto overflow = apply_entry(*cash_in("c1", "alice", cny(1)), books);
  ASSERT_FALSE(overflow);
  EXPECT_EQ(overflow.error().code, Errc::amount_overflow);
}

TEST(LedgerRules, CheckEntryCatchesADeliberateImbalance) {
  JournalEntry e = *topup("t1", "alice", cny(500));
  EXPECT_TRUE(check_entry(e));
  e.postings[1].amount_minor = 499;  // one fen vanishes
  auto s = check_entry(e);
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error().code, Errc::internal);
  EXPECT_NE(s.error().detail.find("does not sum to zero"), std::string::npos);
  // apply_entry refuses it too, so a store can never write it.
  auto applied = apply_entry(e, fresh_books());
  ASSERT_FALSE(applied);
  EXPECT_EQ(applied.error().code, Errc::internal);
}

TEST(LedgerRules, CheckEntryIsPerCurrency) {
  // +5 CNY and -5 USD sum to zero as integers but not per currency.
  JournalEntry e{0, "x", "fx", {{"a", "CNY", 5}, {"b", "USD", -5}}};
  EXPECT_FALSE(check_entry(e));
  JournalEntry ok{
      0, "y", "fx", {{"a", "CNY", 5}, {"b", "CNY", -5}, {"c", "USD", 7}, {"d", "USD", -7}}};
  EXPECT_TRUE(check_entry(ok));
}

TEST(LedgerRules, CheckEntryRefusesDegenerateEntries) {
  EXPECT_FALSE(check_entry(JournalEntry{0, "x", "k", {}}));
  EXPECT_FALSE(check_entry(JournalEntry{0, "x", "k", {{"a", "CNY", 0}, {"b", "CNY", 0}}}));
  EXPECT_FALSE(check_entry(JournalEntry{
      0, "x", "k", {{"a", "CNY", Amount::kMaxMinor + 1}, {"b", "CNY", -Amount::kMaxMinor - 1}}}));
  EXPECT_FALSE(check_entry(JournalEntry{0, "x", "k", {{"a", "CNY", 5}, {"a", "CNY", -5}}}));
  EXPECT_FALSE(check_entry(JournalEntry{0, "x", "k", {{"a", "XXX", 5}, {"b", "XXX", -5}}}));
}

TEST(LedgerAudit, CatchesABrokenBalance) {
  auto books = fresh_books();
  std::vector<JournalEntry> journal;
  ASSERT_TRUE(post(books, *cash_in("c1", "alice", cny(10000)), journal));
  ASSERT_TRUE(post(books, *topup("t1", "alice", cny(3000)), journal));
  ASSERT_TRUE(audit(books, journal).ok());

  auto broken = books;
  broken[0].balance_minor += 1;  // alice gains a fen from nowhere
  AuditReport r = audit(broken, journal);
  EXPECT_FALSE(r.ok());
  ASSERT_GE(r.violations.size(), 2u);
  bool names_alice = false, names_currency = false;
  for (const auto& v : r.violations) {
    names_alice |= v.find("account alice") != std::string::npos;
    names_currency |= v.rfind("CNY:", 0) == 0;
  }
  EXPECT_TRUE(names_alice);
  EXPECT_TRUE(names_currency);
  EXPECT_FALSE(r.currencies[0].conserved);
}

TEST(LedgerAudit, CatchesAnUnbalancedJournalEntryEvenWhenBalancesMatchIt) {
  auto books = fresh_books();
  std::vector<JournalEntry> journal;
  ASSERT_TRUE(post(books, *cash_in("c1", "alice", cny(100)), journal));
  // A forged entry written behind the rules' back, with balances "fixed up" to match.
  journal.push_back(JournalEntry{2, "forged", "topup", {{"alice", "CNY", 50}}});
  books[0].balance_minor += 50;
  AuditReport r = audit(books, journal);
  EXPECT_FALSE(r.ok());
  bool names_entry = false;
  for (const auto& v : r.violations) names_entry |= v.find("entry 2 (forged)") != std::string::npos;
  EXPECT_TRUE(names_entry);
}

TEST(LedgerAudit, CatchesNegativeCustomerMoneyAndUnknownAccounts) {
  auto books = fresh_books();
  std::vector<JournalEntry> journal;
  journal.push_back(JournalEntry{
      1, "t", "topup", {{"alice", "CNY", -5}, {outstanding_account_id("CNY"), "CNY", 5}}});
  books[0].balance_minor = -5;
  books[3].balance_minor = 5;
  AuditReport r = audit(books, journal);
  EXPECT_FALSE(r.ok());
  EXPECT_TRUE(
      r.currencies[0].conserved);  // the sums still balance; the negative balance is the finding

  journal.push_back(JournalEntry{
      2, "g", "cash_in", {{"ghost", "CNY", 5}, {issuance_account_id("CNY"), "CNY", -5}}});
  AuditReport r2 = audit(fresh_books(), journal);
  bool ghost = false;
  for (const auto& v : r2.violations) ghost |= v.find("unknown account ghost") != std::string::npos;
  EXPECT_TRUE(ghost);
}

// A bank that redeemed more e-cash than it issued (a note credited without the
// registry, then deposited) has its books still summing up; the audit names it.
TEST(LedgerAudit, CatchesNegativeECashOutstanding) {
  auto books = fresh_books();
  std::vector<JournalEntry> journal;
  ASSERT_TRUE(post(books, *cash_in("c1", "alice", cny(10000)), journal));
  ASSERT_TRUE(post(books, *topup("t1", "alice", cny(5000)), journal));
  ASSERT_TRUE(post(books, *deposit("d1", "alice", cny(5000)), journal));
  ASSERT_TRUE(audit(books, journal).ok());
  ASSERT_TRUE(post(books, *deposit("d2", "bob", cny(5000)), journal));
  EXPECT_EQ(balance(books, outstanding_account_id("CNY")), -5000);
  AuditReport r = audit(books, journal);
  EXPECT_FALSE(r.ok());
  EXPECT_TRUE(r.currencies[0].conserved) << "the sums balance; the negative liability is the finding";
  bool named = false;
  for (const auto& v : r.violations) named |= v.find("e-cash outstanding is negative (-5000)") != std::string::npos;
  EXPECT_TRUE(named);
}

TEST(LedgerAccounts, IdsAndKinds) {
  EXPECT_TRUE(check_account_id("alice-cny.01"));
  EXPECT_FALSE(check_account_id(""));
  EXPECT_FALSE(check_account_id("a b"));
  EXPECT_FALSE(check_account_id(std::string(129, 'a')));
  EXPECT_FALSE(check_account_id(issuance_account_id("CNY")));
  EXPECT_TRUE(is_reserved_account_id(outstanding_account_id("USD")));
  for (auto k : {AccountKind::customer, AccountKind::joint, AccountKind::hold,
                 AccountKind::ecash_outstanding, AccountKind::issuance, AccountKind::settlement})
    EXPECT_EQ(*kind_from_name(kind_name(k)), k);
  EXPECT_EQ(kind_from_name("vault").error().code, Errc::bad_field);
  EXPECT_TRUE(is_customer_money(AccountKind::hold));
  EXPECT_FALSE(is_customer_money(AccountKind::ecash_outstanding));
}

}  // namespace
}  // namespace zf::ledger
