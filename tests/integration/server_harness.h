// Harness of the integration tests: runs the built `mandate serve` as a child process on a free
// loopback port with a private data directory, and talks HTTP/1.1 to it with a small Beast client.
// Servers are stopped by PID (SIGTERM, or SIGKILL in the crash tests), never by name.
#ifndef MANDATE_TESTS_INTEGRATION_SERVER_HARNESS_H_
#define MANDATE_TESTS_INTEGRATION_SERVER_HARNESS_H_

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <boost/json/value.hpp>
#include <sys/types.h>

#include "gtest/gtest.h"

namespace mandate::testing {

inline constexpr char kAdminKey[] = "admin-key-for-tests";
inline constexpr char kReadKey[] = "read-key-for-tests";

std::string TestData(const std::string& name);  // path of tests/integration/testdata/<name>
std::string ReadFile(const std::string& path);

// A fresh temporary directory, removed with everything in it when the object dies.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }
  std::string Join(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

struct HttpResult {
  int status = 0;                              // 0: no response (connection failed or closed)
  std::map<std::string, std::string> headers;  // names lower-cased
  std::string body;
  boost::json::value json;  // the parsed body, or null when it is not JSON
  std::string Header(const std::string& lower_name) const {
    auto it = headers.find(lower_name);
    return it == headers.end() ? "" : it->second;
  }
  std::string Message() const;  // json["message"] or ""
};

// One HTTP exchange on a new connection.
HttpResult Http(uint16_t port, const std::string& method, const std::string& target, const std::string& body = "",
                const std::vector<std::pair<std::string, std::string>>& headers = {});

// Sends raw bytes on a new connection and returns everything the server sends back until it closes
// the connection or `wait` passes.
std::string RawExchange(uint16_t port, const std::string& bytes, std::chrono::milliseconds wait);

class ServerProcess {
 public:
  // The server keeps its data in `data_dir`; its config file (keys kAdminKey/kReadKey, short
  // timeouts) is written next to it.
  explicit ServerProcess(std::string data_dir) : data_dir_(std::move(data_dir)) {}
  ~ServerProcess();

  // Starts `mandate serve` with `extra_args` and waits until it listens. Returns false (with the
  // server's stderr in *output) if it exits instead.
  bool Start(const std::vector<std::string>& extra_args = {}, std::string* output = nullptr);
  // Runs `mandate serve` expecting it to fail at startup; returns its exit status and stderr.
  std::pair<int, std::string> StartExpectingFailure(const std::vector<std::string>& extra_args);
  // SIGTERM, then wait; returns the exit status (or -1 if it had to be killed).
  int Stop(std::chrono::seconds grace = std::chrono::seconds(15));
  void Kill();  // SIGKILL and reap
  bool running() const { return pid_ > 0; }
  pid_t pid() const { return pid_; }
  uint16_t port() const { return port_; }
  const std::string& stdout_text() const { return stdout_text_; }
  std::string stderr_text() const;

  // Requests with the admin key (or `key`; "" sends no Authorization header).
  HttpResult Get(const std::string& target, const std::string& key = kAdminKey,
                 const std::vector<std::pair<std::string, std::string>>& headers = {}) const;
  HttpResult Post(const std::string& target, const std::string& body, const std::string& key = kAdminKey,
                  const std::vector<std::pair<std::string, std::string>>& headers = {}) const;
  HttpResult Delete(const std::string& target, const std::string& body, const std::string& key = kAdminKey) const;

  // The serving revision (from /readyz).
  uint64_t Revision() const;

 private:
  std::vector<std::string> Argv(const std::vector<std::string>& extra_args) const;
  pid_t Spawn(const std::vector<std::string>& argv, int* stdout_fd);

  std::string data_dir_;
  pid_t pid_ = -1;
  uint16_t port_ = 0;
  std::string stdout_text_;
};

// A test with its own server, started with the admin and read keys (plus ExtraArgs()).
class ServerTest : public ::testing::Test {
 protected:
  void SetUp() override;
  virtual std::vector<std::string> ExtraArgs() const { return {}; }

  // Uploads testdata/policy.polar (asserting success).
  void LoadPolicy();
  // POST /api/batch with the admin key, asserting 200; returns the OsoOffset.
  uint64_t Batch(const std::string& body);
  // Every stored fact of the test policy's predicates, serialized and sorted.
  std::vector<std::string> AllFacts() const;

  // What a rejected request must leave untouched.
  struct State {
    std::vector<std::string> facts;
    uint64_t revision = 0;
    std::string policy;    // GET /api/policy body
    std::string versions;  // GET /v1/policy/versions body
    friend bool operator==(const State&, const State&) = default;
  };
  State Observe() const;

  TempDir dir_;
  std::unique_ptr<ServerProcess> server_;
};

// A fact in Oso wire JSON.
std::string FactJson(const std::string& predicate, const std::vector<std::pair<std::string, std::string>>& args);

}  // namespace mandate::testing

#endif  // MANDATE_TESTS_INTEGRATION_SERVER_HARNESS_H_
