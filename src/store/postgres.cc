// The PostgreSQL backend of store::Database (libpq): a pool of connections,
// each used by one transaction at a time.
//
// Transactions run at READ COMMITTED; a body locks the rows it will update
// with SELECT … FOR UPDATE (Conn::for_update) and takes exactly-once keys
// with INSERT … ON CONFLICT DO NOTHING, which waits for a concurrent insert of
// the same key to commit or roll back. A deadlock or serialization failure
// (SQLSTATE 40P01, 40001) aborts the transaction and Database::transaction
// runs it again. A snapshot (the audit) is REPEATABLE READ, READ ONLY.
// commit is synchronous_commit=on (the server's default, set again per
// connection): an acknowledged commit is on the server's disk (DESIGN.md §8).
#include <libpq-fe.h>

#include <charconv>
#include <condition_variable>
#include <mutex>
#include <unordered_map>

#include "store/sql.h"

namespace zf::store {
namespace {

constexpr int kPoolSize = 8;
// The type OIDs of the parameters we send (pg_type.dat).
constexpr Oid kInt8 = 20, kText = 25, kBytea = 17;

struct ResultFree {
  void operator()(PGresult* r) const { PQclear(r); }
};
using PgResult = std::unique_ptr<PGresult, ResultFree>;
struct ConnFree {
  void operator()(PGconn* c) const { PQfinish(c); }
};
using PgHandle = std::unique_ptr<PGconn, ConnFree>;

// `?N` becomes `$N`: the SQL the stores write uses SQLite's numbered form.
// The stores' SQL has no `?` inside string literals.
std::string to_dollar(std::string_view sql) {
  std::string out;
  out.reserve(sql.size());
  for (std::size_t i = 0; i < sql.size(); ++i) {
    if (sql[i] == '?' && i + 1 < sql.size() && sql[i + 1] >= '0' && sql[i + 1] <= '9')
      out += '$';
    else
      out += sql[i];
  }
  return out;
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

class PgConn final : public Conn {
 public:
  explicit PgConn(std::string url) : url_(std::move(url)) {}
  Dialect dialect() const override { return Dialect::postgresql; }

  Status connect() {
    prepared_.clear();
    conn_.reset(PQconnectdb(url_.c_str()));
    if (!conn_ || PQstatus(conn_.get()) != CONNECTION_OK) {
      std::string why = conn_ ? PQerrorMessage(conn_.get()) : "out of memory";
      conn_.reset();
      retryable_ = false;
      return fail(Errc::unavailable, "cannot connect to PostgreSQL: " + trim(why));
    }
    // Our errors are read by code (SQLSTATE), never by message text.
    if (auto s = simple("SET synchronous_commit = on; SET client_min_messages = warning"); !s) return s;
    return {};
  }

  Status begin(Mode mode) override {
    retryable_ = false;
    if (!conn_ || PQstatus(conn_.get()) != CONNECTION_OK)
      if (auto s = connect(); !s) return s;
    return simple(mode == Mode::write ? "BEGIN ISOLATION LEVEL READ COMMITTED"
                                      : "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY");
  }
  Status commit() override { return simple("COMMIT"); }
  void rollback() override {
    if (conn_ && PQstatus(conn_.get()) == CONNECTION_OK) {
      bool keep = retryable_;
      (void)simple("ROLLBACK");
      retryable_ = keep;
    }
  }
  bool retryable() const override { return retryable_; }

  Status simple(const char* sql) {
    PgResult r(PQexec(conn_.get(), sql));
    return check(r.get(), sql);
  }

 protected:
  Result<Rows> run(std::string_view sql, const Param* params, std::size_t n) override {
    if (!conn_) return fail(Errc::unavailable, "no PostgreSQL connection");
    // Each statement is prepared once per connection and run by name after.
    std::string key(sql);
    auto it = prepared_.find(key);
    if (it == prepared_.end()) {
      std::string name = "s" + std::to_string(prepared_.size());
      std::vector<Oid> types(n, 0);
      for (std::size_t i = 0; i < n; ++i) types[i] = type_of(params[i]);
      PgResult r(PQprepare(conn_.get(), name.c_str(), to_dollar(sql).c_str(), static_cast<int>(n), types.data()));
      if (auto s = check(r.get(), sql); !s) return std::unexpected(s.error());
      it = prepared_.emplace(std::move(key), std::move(name)).first;
    }
    std::vector<std::string> ints(n);
    std::vector<const char*> values(n, nullptr);
    std::vector<int> lengths(n, 0), formats(n, 0);
    for (std::size_t i = 0; i < n; ++i) {
      const Param& p = params[i];
      switch (p.kind()) {
        case Param::Kind::null: break;
        case Param::Kind::integer:
          ints[i] = std::to_string(p.integer());
          values[i] = ints[i].c_str();
          break;
        case Param::Kind::text:
        case Param::Kind::blob:
          values[i] = p.bytes().data();
          lengths[i] = static_cast<int>(p.bytes().size());
          formats[i] = 1;  // binary: the bytes as they are, no quoting or NUL termination
          break;
      }
    }
    PgResult r(PQexecPrepared(conn_.get(), it->second.c_str(), static_cast<int>(n), values.data(), lengths.data(),
                              formats.data(), 0));
    if (auto s = check(r.get(), sql); !s) return std::unexpected(s.error());
    Rows rows;
    int cols = PQnfields(r.get());
    for (int row = 0; row < PQntuples(r.get()); ++row) {
      std::vector<Rows::Cell> cells(static_cast<std::size_t>(cols));
      for (int col = 0; col < cols; ++col) {
        if (PQgetisnull(r.get(), row, col)) continue;
        Rows::Cell& c = cells[static_cast<std::size_t>(col)];
        c.null = false;
        const char* v = PQgetvalue(r.get(), row, col);
        std::size_t len = static_cast<std::size_t>(PQgetlength(r.get(), row, col));
        Oid t = PQftype(r.get(), col);
        if (t == kBytea) {
          // Text form of bytea: \x and two hex digits per byte.
          if (len < 2 || v[0] != '\\' || v[1] != 'x' || len % 2 != 0)
            return fail(Errc::io_error, "PostgreSQL sent a bytea value in an unexpected form");
          c.bytes.reserve((len - 2) / 2);
          for (std::size_t i = 2; i < len; i += 2) {
            int hi = hex_value(v[i]), lo = hex_value(v[i + 1]);
            if (hi < 0 || lo < 0) return fail(Errc::io_error, "PostgreSQL sent a bad bytea digit");
            c.bytes.push_back(static_cast<char>(hi * 16 + lo));
          }
        } else {
          c.bytes.assign(v, len);
          if (t == kInt8 || t == 23 || t == 21) std::from_chars(v, v + len, c.integer);
        }
      }
      rows.add_row(std::move(cells));
    }
    const char* tuples = PQcmdTuples(r.get());
    if (tuples && *tuples) rows.set_changed(std::stoll(tuples));
    return rows;
  }

 private:
  static Oid type_of(const Param& p) {
    switch (p.kind()) {
      case Param::Kind::integer: return kInt8;
      case Param::Kind::text: return kText;
      case Param::Kind::blob: return kBytea;
      case Param::Kind::null: return 0;
    }
    return 0;
  }

  static std::string trim(std::string s) {
    while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
    return s;
  }

  Status check(PGresult* r, std::string_view what) {
    ExecStatusType st = r ? PQresultStatus(r) : PGRES_FATAL_ERROR;
    if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) return {};
    std::string state;
    if (r)
      if (const char* s = PQresultErrorField(r, PG_DIAG_SQLSTATE)) state = s;
    std::string msg = trim(r ? PQresultErrorMessage(r) : PQerrorMessage(conn_.get()));
    if (msg.empty()) msg = trim(PQerrorMessage(conn_.get()));
    std::string head(what.substr(0, 60));
    if (state == "40001" || state == "40P01") {
      retryable_ = true;
      return fail(Errc::unavailable, "PostgreSQL aborted the transaction (" + state + "), try again");
    }
    if (PQstatus(conn_.get()) != CONNECTION_OK) {
      // The server went away: no statement of this transaction took effect
      // unless its COMMIT did, and the bodies are safe to run again.
      retryable_ = true;
      prepared_.clear();
      return fail(Errc::unavailable, "lost the PostgreSQL connection: " + msg);
    }
    if (state.starts_with("23")) return fail(Errc::conflict, "postgresql: " + msg + " (" + state + ")");
    return fail(Errc::io_error, "postgresql: " + msg + " (" + state + ") in: " + head);
  }

  std::string url_;
  PgHandle conn_;
  std::unordered_map<std::string, std::string> prepared_;  // SQL -> statement name
  bool retryable_ = false;
};

class PgDatabase final : public Database {
 public:
  Dialect dialect() const override { return Dialect::postgresql; }

  static Result<std::unique_ptr<Database>> open(const std::string& url) {
    std::unique_ptr<PgDatabase> db(new PgDatabase);
    for (int i = 0; i < kPoolSize; ++i) {
      auto c = std::make_unique<PgConn>(url);
      // One connection is opened now, to fail early on a bad URL; the rest
      // connect on first use.
      if (i == 0)
        if (auto s = c->connect(); !s) return std::unexpected(s.error());
      db->free_.push_back(c.get());
      db->all_.push_back(std::move(c));
    }
    return std::unique_ptr<Database>(std::move(db));
  }

 protected:
  Lease acquire() override {
    std::unique_lock lock(mu_);
    cv_.wait(lock, [this] { return !free_.empty(); });
    PgConn* c = free_.back();
    free_.pop_back();
    return Lease(c, [this, c] {
      {
        std::lock_guard l(mu_);
        free_.push_back(c);
      }
      cv_.notify_one();
    });
  }

  Status exec_script(const std::string& sql) override {
    Lease lease = acquire();
    auto& c = static_cast<PgConn&>(lease.conn());
    if (auto s = c.begin(Mode::write); !s) return s;
    // Two processes creating one schema at once would collide in the catalog:
    // the first to take this lock creates it, the other finds it there.
    if (auto s = c.simple("SELECT pg_advisory_xact_lock(2059178)"); !s) {
      c.rollback();
      return s;
    }
    if (auto s = c.simple(sql.c_str()); !s) {
      c.rollback();
      return s;
    }
    return c.commit();
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::unique_ptr<PgConn>> all_;
  std::vector<PgConn*> free_;
};

}  // namespace

Result<std::unique_ptr<Database>> open_postgres_database(const std::string& url) { return PgDatabase::open(url); }

namespace {

bool valid_schema_name(const std::string& name) {
  if (name.empty() || name.size() > 48 || name[0] < 'a' || name[0] > 'z') return false;
  for (char c : name)
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_')) return false;
  return true;
}

Status run_on(const std::string& url, const std::string& name, const std::string& sql) {
  if (!valid_schema_name(name)) return fail(Errc::bad_field, "a schema name is 1..48 of [a-z0-9_]", "schema");
  PgConn c(url);
  if (auto s = c.connect(); !s) return s;
  return c.simple(sql.c_str());
}

}  // namespace

std::string postgres_schema_url(const std::string& url, const std::string& name) {
  return url + (url.find('?') == std::string::npos ? "?" : "&") + "options=-csearch_path%3D" + name;
}

Status create_postgres_schema(const std::string& url, const std::string& name) {
  return run_on(url, name, "CREATE SCHEMA " + name);
}

Status drop_postgres_schema(const std::string& url, const std::string& name) {
  return run_on(url, name, "DROP SCHEMA IF EXISTS " + name + " CASCADE");
}

}  // namespace zf::store
