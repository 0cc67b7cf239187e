// A thin RAII layer over SQLite: one connection, prepared statements, and
// transactions. Durability settings follow DESIGN.md §8 (WAL, synchronous=FULL).
#pragma once

#include <sqlite3.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "core/encoding.h"
#include "core/error.h"
#include "store/sql.h"

namespace zf::store {

// A prepared statement. Binding indexes start at 1, columns at 0.
class Stmt {
 public:
  Stmt(sqlite3* db, sqlite3_stmt* stmt) : db_(db), stmt_(stmt) {}
  Stmt(Stmt&& o) noexcept : db_(o.db_), stmt_(o.stmt_) { o.stmt_ = nullptr; }
  Stmt(const Stmt&) = delete;
  ~Stmt();

  Stmt& bind(int idx, std::int64_t v);
  Stmt& bind(int idx, std::string_view v);
  Stmt& bind(int idx, ByteView v);
  Stmt& bind_null(int idx);
  // Steps once: true if a row is available, false when done; errors become io_error/conflict.
  Result<bool> step();
  // Runs to completion (for statements that return no rows).
  Status run();

  std::int64_t col_int(int i) const;
  std::string col_text(int i) const;
  Bytes col_blob(int i) const;
  bool col_null(int i) const;
  // The current row, for store::Rows.
  std::vector<Rows::Cell> cells() const;
  // True for a statement that writes nothing (a SELECT).
  bool readonly() const;

 private:
  sqlite3* db_;
  sqlite3_stmt* stmt_;
};

// One SQLite database file.
class Db {
 public:
  // Opens (creating) `path` with WAL, synchronous=FULL, foreign keys and a busy timeout.
  static Result<std::unique_ptr<Db>> open(const std::string& path);
  ~Db();
  Db(const Db&) = delete;

  Status exec(std::string_view sql);
  Result<Stmt> prepare(std::string_view sql);
  // Rows changed by the last statement.
  int changes() const;
  // Runs `body` inside BEGIN IMMEDIATE ... COMMIT; rolls back if it returns an error.
  Status transaction(const std::function<Status()>& body);

 private:
  explicit Db(sqlite3* db) : db_(db) {}
  sqlite3* db_;
};

// Admin tokens of a service (bank, registry): only the SHA-256 of each token is
// stored, in a table `admin_tokens(token_hash BLOB PRIMARY KEY, name TEXT NOT
// NULL UNIQUE)` the service's schema creates. The caller holds the connection.
Status add_admin_token(Db& db, ByteView token_hash, const std::string& name);
Result<bool> is_admin_token(Db& db, ByteView token_hash);

}  // namespace zf::store
