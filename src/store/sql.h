// The one storage seam of the services (STYLE.md §3): the bank's and the
// registry's rules are written once, as SQL over Conn, and run on SQLite (the
// embedded default, one file) or on a PostgreSQL server, chosen by URL.
//
// Database::transaction is the only way to change data: it runs a body in one
// transaction, commits if the body succeeds, rolls back if it fails or throws,
// and runs it again when the database aborted it for a serialization failure
// or a deadlock (as GNU Taler's exchange does), so a body must be safe to run
// again from the start: it reads what it needs inside the transaction.
#pragma once

#include <cstdint>
#include <functional>
#include <initializer_list>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/encoding.h"
#include "core/error.h"

namespace zf::store {

enum class Dialect { sqlite, postgresql };

// A statement parameter: NULL, a 64-bit integer, text or bytes. It refers to
// the caller's bytes, which outlive the statement call.
class Param {
 public:
  enum class Kind { null, integer, text, blob };
  Param(std::nullptr_t) {}
  Param(std::int64_t v) : kind_(Kind::integer), int_(v) {}
  Param(int v) : Param(std::int64_t{v}) {}
  Param(std::string_view v) : kind_(Kind::text), bytes_(v) {}
  Param(const std::string& v) : Param(std::string_view(v)) {}
  Param(const char* v) : Param(std::string_view(v)) {}
  Param(ByteView v) : kind_(Kind::blob), bytes_(reinterpret_cast<const char*>(v.data()), v.size()) {}
  Param(const Bytes& v) : Param(ByteView(v)) {}
  Param(const std::optional<std::string>& v) {
    if (v) *this = Param(std::string_view(*v));
  }

  Kind kind() const { return kind_; }
  std::int64_t integer() const { return int_; }
  std::string_view bytes() const { return bytes_; }  // text or blob

 private:
  Kind kind_ = Kind::null;
  std::int64_t int_ = 0;
  std::string_view bytes_;
};

// What a statement returned: its rows (all of them, read at once) and how many
// rows it inserted, updated or deleted. Rows and columns count from 0.
class Rows {
 public:
  struct Cell {
    bool null = true;
    std::int64_t integer = 0;
    std::string bytes;  // text, or a blob's raw bytes
  };

  std::size_t size() const { return rows_.size(); }
  bool empty() const { return rows_.empty(); }
  std::int64_t changed() const { return changed_; }

  bool null(std::size_t row, int col) const { return cell(row, col).null; }
  std::int64_t integer(std::size_t row, int col) const { return cell(row, col).integer; }
  const std::string& text(std::size_t row, int col) const { return cell(row, col).bytes; }
  Bytes blob(std::size_t row, int col) const {
    const std::string& b = cell(row, col).bytes;
    return Bytes(b.begin(), b.end());
  }
  std::optional<std::string> optional_text(std::size_t row, int col) const {
    return null(row, col) ? std::nullopt : std::optional<std::string>(text(row, col));
  }

  // For the backends.
  void add_row(std::vector<Cell> cells) { rows_.push_back(std::move(cells)); }
  void set_changed(std::int64_t n) { changed_ = n; }

 private:
  const Cell& cell(std::size_t row, int col) const { return rows_.at(row).at(static_cast<std::size_t>(col)); }
  std::vector<std::vector<Cell>> rows_;
  std::int64_t changed_ = 0;
};

// One connection, inside a transaction the Database began.
class Conn {
 public:
  virtual ~Conn() = default;
  virtual Dialect dialect() const = 0;

  // Runs one statement; `?N` stands for parameter N (from 1) in both dialects.
  // A constraint violation is Errc::conflict; a lost connection or a busy
  // database Errc::unavailable; anything else Errc::io_error.
  Result<Rows> query(std::string_view sql, std::initializer_list<Param> params = {}) {
    return run(sql, params.begin(), params.size());
  }
  Result<Rows> query(std::string_view sql, const std::vector<Param>& params) {
    return run(sql, params.data(), params.size());
  }
  // Appended to a SELECT that reads rows the transaction will update: PostgreSQL
  // locks them; SQLite's write transactions already exclude each other.
  std::string_view for_update() const { return dialect() == Dialect::postgresql ? " FOR UPDATE" : ""; }

  // For Database: the transaction boundaries, and whether the last failure
  // was the database aborting the transaction for a conflict it may not repeat.
  enum class Mode { write, snapshot };
  virtual Status begin(Mode mode) = 0;
  virtual Status commit() = 0;
  virtual void rollback() = 0;
  virtual bool retryable() const = 0;

 protected:
  virtual Result<Rows> run(std::string_view sql, const Param* params, std::size_t n) = 0;
};

// A database: one SQLite file, or a pool of connections to a PostgreSQL server.
class Database {
 public:
  using Mode = Conn::Mode;
  static constexpr int kMaxAttempts = 16;

  // `url` is postgresql://… (or postgres://…, libpq's URI syntax) or a SQLite
  // file: sqlite:PATH, or a bare PATH.
  static Result<std::unique_ptr<Database>> open(const std::string& url);
  // open(), then migrate(schema).
  static Result<std::unique_ptr<Database>> open(const std::string& url, std::string_view schema);
  // A URL that names a PostgreSQL server.
  static bool is_postgresql(std::string_view url);

  virtual ~Database() = default;
  virtual Dialect dialect() const = 0;

  // Creates what does not exist of `schema` (CREATE … IF NOT EXISTS statements),
  // where `{id}` is an auto-numbered 64-bit primary key and `{blob}` the
  // byte-string type of the dialect.
  Status migrate(std::string_view schema);

  // Runs `body` in ONE transaction (see the top of this file). `snapshot`
  // reads one consistent view and writes nothing.
  Status transaction(Mode mode, const std::function<Status(Conn&)>& body);
  // transaction() for a body that computes a value: the value of its last run.
  template <class T, class F>
  Result<T> fetch(Mode mode, F&& body) {
    std::optional<T> out;
    Status s = transaction(mode, [&](Conn& c) -> Status {
      Result<T> r = body(c);
      if (!r) return std::unexpected(r.error());
      out = std::move(*r);
      return {};
    });
    if (!s) return std::unexpected(s.error());
    return std::move(*out);
  }

 protected:
  // An exclusive connection while the lease lives.
  class Lease {
   public:
    Lease(Conn* conn, std::function<void()> give_back) : conn_(conn), give_back_(std::move(give_back)) {}
    Lease(Lease&& o) noexcept : conn_(o.conn_), give_back_(std::move(o.give_back_)) { o.conn_ = nullptr; }
    Lease(const Lease&) = delete;
    ~Lease() {
      if (conn_ && give_back_) give_back_();
    }
    Conn& conn() const { return *conn_; }

   private:
    Conn* conn_;
    std::function<void()> give_back_;
  };
  virtual Lease acquire() = 0;
  // Runs a schema script outside any transaction.
  virtual Status exec_script(const std::string& sql) = 0;
};

// The SQLite and PostgreSQL backends (sqlite_db.cc, postgres.cc).
Result<std::unique_ptr<Database>> open_sqlite_database(const std::string& path);
Result<std::unique_ptr<Database>> open_postgres_database(const std::string& url);

// PostgreSQL schemas, so that services (a bank, a registry, a test) share one
// database without sharing tables. `name` is 1..48 of [a-z0-9_], starting
// with a letter.
// The URL whose connections use schema `name` (libpq's options=-csearch_path).
std::string postgres_schema_url(const std::string& url, const std::string& name);
// Creates schema `name` in the database at `url` (it must not exist).
Status create_postgres_schema(const std::string& url, const std::string& name);
// Drops schema `name` and everything in it, if it exists.
Status drop_postgres_schema(const std::string& url, const std::string& name);

// Admin tokens of a service (bank, registry): only the SHA-256 of each token is
// stored, in a table `admin_tokens(token_hash {blob} PRIMARY KEY, name TEXT NOT
// NULL UNIQUE)` the service's schema creates.
Status add_admin_token(Database& db, ByteView token_hash, const std::string& name);
Result<bool> is_admin_token(Database& db, ByteView token_hash);

}  // namespace zf::store
