// SQLite-specific behaviour of the store: file layout, durability settings, migrations, locking.
#include <filesystem>

#include <sqlite3.h>
#include <stdlib.h>

#include "gtest/gtest.h"

#include "store/store.h"

namespace mandate::store {
namespace {

class SqliteStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = (std::filesystem::path(::testing::TempDir()) / "mandate-sqlite-XXXXXX").string();
    ASSERT_NE(mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::string DbPath() const { return (std::filesystem::path(dir_) / "mandate.db").string(); }

  // Runs one SQL statement on the database file with a separate connection; returns the first
  // column of the first row as text.
  std::string Query(const std::string& sql) {
    sqlite3* db = nullptr;
    EXPECT_EQ(sqlite3_open(DbPath().c_str(), &db), SQLITE_OK);
    sqlite3_stmt* st = nullptr;
    EXPECT_EQ(sqlite3_prepare_v2(db, sql.c_str(), -1, &st, nullptr), SQLITE_OK) << sqlite3_errmsg(db);
    std::string out;
    if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_text(st, 0)) {
      out = reinterpret_cast<const char*>(sqlite3_column_text(st, 0));
    }
    sqlite3_finalize(st);
    sqlite3_close(db);
    return out;
  }

  std::string dir_;
};

TEST_F(SqliteStoreTest, CreatesTheDataDirectoryAndAWalDatabase) {
  const std::string nested = dir_ + "/a/b";
  auto store = OpenSqliteStore(nested);
  ASSERT_TRUE(store.ok()) << store.status();
  EXPECT_TRUE(std::filesystem::exists(nested + "/mandate.db"));
  store->reset();
  dir_ = nested;
  EXPECT_EQ(Query("PRAGMA journal_mode"), "wal");
  EXPECT_EQ(Query("SELECT version FROM schema_version"), "3");  // 1: facts; 2: agents, tasks, grants; 3: approvals
}

TEST_F(SqliteStoreTest, ASecondProcessCannotOpenTheSameDataDirectory) {
  auto first = OpenSqliteStore(dir_);
  ASSERT_TRUE(first.ok()) << first.status();
  auto second = OpenSqliteStore(dir_);
  EXPECT_EQ(second.status().code(), absl::StatusCode::kFailedPrecondition) << second.status();
  EXPECT_NE(second.status().message().find("in use"), std::string::npos);
  first->reset();
  EXPECT_TRUE(OpenSqliteStore(dir_).ok());
}

TEST_F(SqliteStoreTest, RefusesASchemaNewerThanTheBinary) {
  ASSERT_TRUE(OpenSqliteStore(dir_).ok());
  Query("UPDATE schema_version SET version = 99");
  auto store = OpenSqliteStore(dir_);
  EXPECT_EQ(store.status().code(), absl::StatusCode::kFailedPrecondition) << store.status();
  EXPECT_NE(store.status().message().find("newer"), std::string::npos);
}

TEST_F(SqliteStoreTest, ReportsAnUnusableDataDirectory) {
  const std::string file = dir_ + "/not-a-dir";
  FILE* f = fopen(file.c_str(), "w");
  ASSERT_NE(f, nullptr);
  fclose(f);
  auto store = OpenSqliteStore(file);
  EXPECT_FALSE(store.ok());
}

}  // namespace
}  // namespace mandate::store
