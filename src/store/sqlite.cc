#include "store/sqlite.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace zf::store {
namespace {

std::unexpected<Error> db_fail(sqlite3* db, int rc, std::string_view what) {
  int ext = sqlite3_extended_errcode(db);
  Errc code = (rc == SQLITE_CONSTRAINT) ? Errc::conflict
              : (rc == SQLITE_BUSY || rc == SQLITE_LOCKED) ? Errc::unavailable
                                                           : Errc::io_error;
  return fail(code, std::string(what) + ": " + sqlite3_errmsg(db) + " (" + std::to_string(ext) + ")");
}

}  // namespace

Stmt::~Stmt() {
  if (stmt_) sqlite3_finalize(stmt_);
}

Stmt& Stmt::bind(int idx, std::int64_t v) {
  sqlite3_bind_int64(stmt_, idx, v);
  return *this;
}
Stmt& Stmt::bind(int idx, std::string_view v) {
  sqlite3_bind_text(stmt_, idx, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT);
  return *this;
}
Stmt& Stmt::bind(int idx, ByteView v) {
  sqlite3_bind_blob(stmt_, idx, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT);
  return *this;
}
Stmt& Stmt::bind_null(int idx) {
  sqlite3_bind_null(stmt_, idx);
  return *this;
}

Result<bool> Stmt::step() {
  int rc = sqlite3_step(stmt_);
  if (rc == SQLITE_ROW) return true;
  if (rc == SQLITE_DONE) return false;
  return db_fail(db_, rc, "sqlite step");
}

Status Stmt::run() {
  for (;;) {
    auto r = step();
    if (!r) return std::unexpected(r.error());
    if (!*r) return {};
  }
}

std::int64_t Stmt::col_int(int i) const { return sqlite3_column_int64(stmt_, i); }
std::string Stmt::col_text(int i) const {
  auto* p = sqlite3_column_text(stmt_, i);
  return p ? std::string(reinterpret_cast<const char*>(p), static_cast<std::size_t>(sqlite3_column_bytes(stmt_, i)))
           : std::string{};
}
Bytes Stmt::col_blob(int i) const {
  auto* p = static_cast<const std::uint8_t*>(sqlite3_column_blob(stmt_, i));
  return p ? Bytes(p, p + sqlite3_column_bytes(stmt_, i)) : Bytes{};
}
bool Stmt::col_null(int i) const { return sqlite3_column_type(stmt_, i) == SQLITE_NULL; }

std::vector<Rows::Cell> Stmt::cells() const {
  int n = sqlite3_column_count(stmt_);
  std::vector<Rows::Cell> out(static_cast<std::size_t>(n));
  for (int i = 0; i < n; ++i) {
    Rows::Cell& c = out[static_cast<std::size_t>(i)];
    switch (sqlite3_column_type(stmt_, i)) {
      case SQLITE_NULL: break;
      case SQLITE_INTEGER:
        c.null = false;
        c.integer = sqlite3_column_int64(stmt_, i);
        break;
      case SQLITE_BLOB: {
        c.null = false;
        auto* p = static_cast<const char*>(sqlite3_column_blob(stmt_, i));
        if (p) c.bytes.assign(p, static_cast<std::size_t>(sqlite3_column_bytes(stmt_, i)));
        break;
      }
      default:
        c.null = false;
        c.bytes = col_text(i);
        c.integer = sqlite3_column_int64(stmt_, i);
    }
  }
  return out;
}

bool Stmt::readonly() const { return sqlite3_stmt_readonly(stmt_) != 0; }

Result<std::unique_ptr<Db>> Db::open(const std::string& path) {
  // The file is created 0600 before SQLite sees it: SQLite gives the -wal and
  // -shm files the database file's mode, so all three are the owner's alone
  // whatever the process umask. Files left more open by an older version are
  // tightened.
  int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) return fail(Errc::io_error, "cannot open database " + path + ": " + std::strerror(errno));
  struct stat st {};
  bool ok = ::fstat(fd, &st) == 0 && ((st.st_mode & 077) == 0 || ::fchmod(fd, st.st_mode & 0700) == 0);
  ::close(fd);
  if (!ok) return fail(Errc::io_error, "cannot make database " + path + " private");
  for (const char* suffix : {"-wal", "-shm"}) {
    std::string side = path + suffix;
    if (::stat(side.c_str(), &st) == 0 && (st.st_mode & 077) != 0 && ::chmod(side.c_str(), st.st_mode & 0700) != 0)
      return fail(Errc::io_error, "cannot make " + side + " private");
  }
  sqlite3* raw = nullptr;
  int rc = sqlite3_open_v2(path.c_str(), &raw,
                           SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX, nullptr);
  std::unique_ptr<Db> db(new Db(raw));
  if (rc != SQLITE_OK) return fail(Errc::io_error, "cannot open database " + path);
  sqlite3_busy_timeout(raw, 5000);
  // synchronous=FULL: an acknowledged write survives power loss (DESIGN.md §8).
  if (auto s = db->exec("PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON;"); !s)
    return std::unexpected(s.error());
  return db;
}

Db::~Db() { sqlite3_close_v2(db_); }

Status Db::exec(std::string_view sql) {
  std::string text(sql);
  char* err = nullptr;
  int rc = sqlite3_exec(db_, text.c_str(), nullptr, nullptr, &err);
  if (rc != SQLITE_OK) {
    std::string msg = err ? err : "unknown";
    sqlite3_free(err);
    return fail(rc == SQLITE_CONSTRAINT ? Errc::conflict : Errc::io_error, "sqlite exec: " + msg);
  }
  return {};
}

Result<Stmt> Db::prepare(std::string_view sql) {
  sqlite3_stmt* stmt = nullptr;
  int rc = sqlite3_prepare_v2(db_, sql.data(), static_cast<int>(sql.size()), &stmt, nullptr);
  if (rc != SQLITE_OK) return db_fail(db_, rc, "sqlite prepare");
  return Stmt(db_, stmt);
}

int Db::changes() const { return sqlite3_changes(db_); }

Status Db::transaction(const std::function<Status()>& body) {
  if (auto s = exec("BEGIN IMMEDIATE"); !s) return s;
  Status result = body();
  if (!result) {
    (void)exec("ROLLBACK");
    return result;
  }
  if (auto s = exec("COMMIT"); !s) {
    (void)exec("ROLLBACK");
    return s;
  }
  return {};
}

Status add_admin_token(Db& db, ByteView token_hash, const std::string& name) {
  auto st = db.prepare("INSERT INTO admin_tokens(token_hash, name) VALUES (?1, ?2)");
  if (!st) return std::unexpected(st.error());
  return st->bind(1, token_hash).bind(2, name).run();
}

Result<bool> is_admin_token(Db& db, ByteView token_hash) {
  auto st = db.prepare("SELECT 1 FROM admin_tokens WHERE token_hash = ?1");
  if (!st) return std::unexpected(st.error());
  return st->bind(1, token_hash).step();
}

}  // namespace zf::store
