// Test support for the PostgreSQL store: where the test server is (started by the ctest fixture
// in tests/postgres.cmake through scripts/pg-test-server) and a fresh database per test.
//
// MANDATE_TEST_PG_URL (a server URL) or MANDATE_TEST_PG_URL_FILE (a file holding it) names the
// server. MANDATE_TEST_NO_POSTGRES=1 opts out explicitly (machines without PostgreSQL): the
// PostgreSQL tests then skip. Without either, they fail: CI must not pass without running them.
#ifndef MANDATE_TESTS_SUPPORT_PG_TEST_ENV_H_
#define MANDATE_TESTS_SUPPORT_PG_TEST_ENV_H_

#include <cstdlib>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>

#include <libpq-fe.h>

namespace mandate::testing {

inline bool PgTestsOptedOut() {
  const char* v = std::getenv("MANDATE_TEST_NO_POSTGRES");
  return v != nullptr && std::string(v) == "1";
}

// The server URL, or "" with the reason in *why.
inline std::string PgTestServerUrl(std::string* why) {
  if (const char* url = std::getenv("MANDATE_TEST_PG_URL"); url != nullptr && *url != '\0') return url;
  const char* file = std::getenv("MANDATE_TEST_PG_URL_FILE");
  if (file == nullptr || *file == '\0') {
    *why = "neither MANDATE_TEST_PG_URL nor MANDATE_TEST_PG_URL_FILE is set (run through ctest, which starts "
           "PostgreSQL with scripts/pg-test-server, or set MANDATE_TEST_NO_POSTGRES=1 to skip)";
    return "";
  }
  std::ifstream in(file);
  std::string url;
  std::getline(in, url);
  if (url.empty()) {
    *why = std::string("no PostgreSQL test server: ") + file +
           " is missing or empty (did the postgres.start fixture fail? see its output; "
           "MANDATE_TEST_NO_POSTGRES=1 skips these tests)";
  }
  return url;
}

// `url` with its database name replaced by `db` (a URL of the form scheme://authority/db[?query]).
inline std::string PgUrlWithDatabase(const std::string& url, const std::string& db) {
  const size_t scheme = url.find("://");
  const size_t query = url.find('?');
  const size_t slash = url.find('/', scheme == std::string::npos ? 0 : scheme + 3);
  const std::string base = url.substr(0, slash == std::string::npos || slash > query ? query : slash);
  return base + "/" + db + (query == std::string::npos ? "" : url.substr(query));
}

// Creates database `db` on the server at `url` (dropping an older one of that name); returns its
// URL, or "" with the error in *why.
inline std::string PgCreateTestDatabase(const std::string& url, const std::string& db, std::string* why) {
  std::unique_ptr<PGconn, void (*)(PGconn*)> conn(PQconnectdb(url.c_str()), PQfinish);
  if (PQstatus(conn.get()) != CONNECTION_OK) {
    *why = std::string("cannot connect to ") + url + ": " + PQerrorMessage(conn.get());
    return "";
  }
  PQsetNoticeProcessor(conn.get(), [](void*, const char*) {}, nullptr);  // "does not exist, skipping"
  for (const std::string& sql : {"DROP DATABASE IF EXISTS \"" + db + "\" WITH (FORCE)", "CREATE DATABASE \"" + db + "\""}) {
    std::unique_ptr<PGresult, void (*)(PGresult*)> r(PQexec(conn.get(), sql.c_str()), PQclear);
    if (PQresultStatus(r.get()) != PGRES_COMMAND_OK) {
      *why = sql + ": " + PQresultErrorMessage(r.get());
      return "";
    }
  }
  return PgUrlWithDatabase(url, db);
}

}  // namespace mandate::testing

#endif  // MANDATE_TESTS_SUPPORT_PG_TEST_ENV_H_
