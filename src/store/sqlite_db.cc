// The SQLite backend of store::Database: one connection to one file, one
// transaction at a time (a write transaction is BEGIN IMMEDIATE, so writers
// in other processes wait for it instead of failing at commit).
#include <sqlite3.h>

#include <mutex>

#include "store/sql.h"
#include "store/sqlite.h"

namespace zf::store {
namespace {

class SqliteConn final : public Conn {
 public:
  explicit SqliteConn(std::unique_ptr<Db> db) : db_(std::move(db)) {}
  Dialect dialect() const override { return Dialect::sqlite; }
  Db& db() { return *db_; }

  Status begin(Mode mode) override { return db_->exec(mode == Mode::write ? "BEGIN IMMEDIATE" : "BEGIN"); }
  Status commit() override { return db_->exec("COMMIT"); }
  void rollback() override { (void)db_->exec("ROLLBACK"); }
  bool retryable() const override { return false; }

 protected:
  Result<Rows> run(std::string_view sql, const Param* params, std::size_t n) override {
    auto st = db_->prepare(sql);
    if (!st) return std::unexpected(st.error());
    for (std::size_t i = 0; i < n; ++i) {
      int idx = static_cast<int>(i) + 1;
      const Param& p = params[i];
      switch (p.kind()) {
        case Param::Kind::null: st->bind_null(idx); break;
        case Param::Kind::integer: st->bind(idx, p.integer()); break;
        case Param::Kind::text: st->bind(idx, p.bytes()); break;
        case Param::Kind::blob:
          st->bind(idx, ByteView(reinterpret_cast<const std::uint8_t*>(p.bytes().data()), p.bytes().size()));
          break;
      }
    }
    Rows rows;
    for (;;) {
      auto more = st->step();
      if (!more) return std::unexpected(more.error());
      if (!*more) break;
      rows.add_row(st->cells());
    }
    rows.set_changed(st->readonly() ? 0 : db_->changes());
    return rows;
  }

 private:
  std::unique_ptr<Db> db_;
};

class SqliteDatabase final : public Database {
 public:
  explicit SqliteDatabase(std::unique_ptr<Db> db) : conn_(std::move(db)) {}
  Dialect dialect() const override { return Dialect::sqlite; }

 protected:
  Lease acquire() override {
    mu_.lock();
    return Lease(&conn_, [this] { mu_.unlock(); });
  }
  Status exec_script(const std::string& sql) override {
    std::lock_guard lock(mu_);
    return conn_.db().exec(sql);
  }

 private:
  std::mutex mu_;  // one connection: one transaction at a time
  SqliteConn conn_;
};

}  // namespace

Result<std::unique_ptr<Database>> open_sqlite_database(const std::string& path) {
  auto db = Db::open(path);
  if (!db) return std::unexpected(db.error());
  return std::unique_ptr<Database>(new SqliteDatabase(std::move(*db)));
}

}  // namespace zf::store
