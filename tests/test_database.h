// The databases tests run on. A test that takes a database gets a fresh one:
// a temporary SQLite file, or a new schema in the PostgreSQL server named by
// ZF_TEST_POSTGRES (scripts/postgres.sh starts one and scripts/test.sh sets
// it), dropped when the test ends.
//
// ZF_TEST_BACKEND=postgresql makes the services' tests that honour it (the bank
// and registry worlds) keep their data on that server; ctest runs those suites
// a second time so (tests/bank/CMakeLists.txt).
#pragma once

#include <gtest/gtest.h>

#include <cstdlib>
#include <optional>
#include <string>

#include "core/crypto.h"
#include "core/encoding.h"
#include "store/sql.h"

namespace zf::test {

// The PostgreSQL server tests may use, or nullopt.
inline std::optional<std::string> test_postgres() {
  const char* url = std::getenv("ZF_TEST_POSTGRES");
  if (!url || !*url) return std::nullopt;
  return std::string(url);
}

// True when the service worlds should keep their data in PostgreSQL.
inline bool services_on_postgres() {
  const char* b = std::getenv("ZF_TEST_BACKEND");
  return b && std::string(b) == "postgresql";
}

// A fresh PostgreSQL schema for one test; dropped with the object.
class PostgresSchema {
 public:
  // Fails the test (fatally, in the caller's ASSERT_NO_FATAL_FAILURE) when no
  // server is configured: a backend that cannot be reached is a failure, not
  // a skip, wherever it was asked for.
  void create(const std::string& purpose) {
    auto server = test_postgres();
    ASSERT_TRUE(server) << "ZF_TEST_POSTGRES is not set: run scripts/postgres.sh and export the URL it prints";
    server_ = *server;
    name_ = "t_" + purpose + "_" + hex_encode(random_bytes(6));
    auto s = store::create_postgres_schema(server_, name_);
    ASSERT_TRUE(s) << s.error().message();
  }
  ~PostgresSchema() {
    if (!name_.empty()) (void)store::drop_postgres_schema(server_, name_);
  }
  std::string url() const { return store::postgres_schema_url(server_, name_); }
  const std::string& name() const { return name_; }

 private:
  std::string server_, name_;
};

}  // namespace zf::test
