#include "server_harness.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/json.hpp>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include "gtest/gtest.h"

namespace mandate::testing {

namespace beast = boost::beast;
namespace http = beast::http;
namespace net = boost::asio;
namespace json = boost::json;
using tcp = net::ip::tcp;

std::string TestData(const std::string& name) { return std::string(MANDATE_TESTDATA) + "/" + name; }

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

TempDir::TempDir() {
  std::string tmpl = (std::filesystem::temp_directory_path() / "mandate-it-XXXXXX").string();
  if (mkdtemp(tmpl.data()) == nullptr) ADD_FAILURE() << "mkdtemp failed";
  path_ = tmpl;
}

TempDir::~TempDir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

std::string HttpResult::Message() const {
  if (!json.is_object()) return "";
  const json::value* m = json.as_object().if_contains("message");
  return m != nullptr && m->is_string() ? std::string(m->get_string()) : "";
}

HttpResult Http(uint16_t port, const std::string& method, const std::string& target, const std::string& body,
                const std::vector<std::pair<std::string, std::string>>& headers) {
  HttpResult result;
  try {
    net::io_context ioc;
    beast::tcp_stream stream(ioc);
    stream.expires_after(std::chrono::seconds(60));
    stream.connect(tcp::endpoint(net::ip::make_address("127.0.0.1"), port));
    http::request<http::string_body> req{http::string_to_verb(method), target, 11};
    req.set(http::field::host, "127.0.0.1");
    req.set(http::field::content_type, "application/json");
    for (const auto& [k, v] : headers) req.set(k, v);
    if (!body.empty() || method == "POST" || method == "DELETE") {
      req.body() = body;
      req.prepare_payload();
    }
    http::write(stream, req);
    beast::flat_buffer buffer;
    http::response_parser<http::string_body> parser;
    parser.body_limit(256 * 1024 * 1024);
    http::read(stream, buffer, parser);
    const auto& res = parser.get();
    result.status = res.result_int();
    for (const auto& field : res) {
      std::string name(field.name_string());
      for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      result.headers[name] = std::string(field.value());
    }
    result.body = res.body();
    boost::system::error_code ec;
    result.json = json::parse(result.body, ec);
    if (ec) result.json = nullptr;
    beast::error_code ignored;
    stream.socket().shutdown(tcp::socket::shutdown_both, ignored);
  } catch (const std::exception& e) {
    result.status = 0;
    result.body = e.what();
  }
  return result;
}

std::string RawExchange(uint16_t port, const std::string& bytes, std::chrono::milliseconds wait) {
  std::string out;
  try {
    net::io_context ioc;
    tcp::socket socket(ioc);
    socket.connect(tcp::endpoint(net::ip::make_address("127.0.0.1"), port));
    net::write(socket, net::buffer(bytes));
    const int fd = socket.native_handle();
    const auto deadline = std::chrono::steady_clock::now() + wait;
    char buf[65536];
    for (;;) {
      const auto left =
          std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) break;
      pollfd p{fd, POLLIN, 0};
      if (poll(&p, 1, static_cast<int>(left.count())) <= 0) break;
      const ssize_t n = ::read(fd, buf, sizeof buf);
      if (n <= 0) break;  // closed by the server
      out.append(buf, static_cast<size_t>(n));
    }
  } catch (const std::exception& e) {
    out += std::string("<error: ") + e.what() + ">";
  }
  return out;
}

ServerProcess::~ServerProcess() {
  if (running()) Stop();
}

std::vector<std::string> ServerProcess::Argv(const std::vector<std::string>& extra_args) const {
  const std::string config = data_dir_ + ".toml";
  std::ofstream(config) << "[server]\n"
                           "offset_wait_seconds = 0.3\n"
                           "header_timeout_seconds = 1\n"
                           "body_timeout_seconds = 2\n"
                           "idle_timeout_seconds = 5\n"
                           "shutdown_grace_seconds = 10\n"
                           "log_level = \"debug\"\n"
                           "[[api_keys]]\nkey = \""
                        << kAdminKey << "\"\nrole = \"admin\"\n[[api_keys]]\nkey = \"" << kReadKey
                        << "\"\nrole = \"read\"\n";
  std::vector<std::string> argv = {MANDATE_BIN,  "serve",   "--config", config,
                                   "--data-dir", data_dir_, "--listen", "127.0.0.1:0"};
  argv.insert(argv.end(), extra_args.begin(), extra_args.end());
  return argv;
}

pid_t ServerProcess::Spawn(const std::vector<std::string>& argv, int* stdout_fd) {
  int out[2];
  if (pipe2(out, O_CLOEXEC) != 0) return -1;
  const std::string err_path = data_dir_ + ".stderr";
  // Everything the child needs is prepared before fork: only async-signal-safe calls after it.
  std::vector<char*> args;
  for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  std::vector<char*> env;
  for (char** e = environ; *e != nullptr; ++e) {
    if (std::string_view(*e).rfind("MANDATE_API_KEY=", 0) != 0) env.push_back(*e);
  }
  env.push_back(nullptr);
  const pid_t pid = fork();
  if (pid == 0) {
    dup2(out[1], STDOUT_FILENO);
    const int err = open(err_path.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (err >= 0) dup2(err, STDERR_FILENO);
    execve(args[0], args.data(), env.data());
    _exit(127);
  }
  close(out[1]);
  *stdout_fd = out[0];
  return pid;
}

bool ServerProcess::Start(const std::vector<std::string>& extra_args, std::string* output) {
  int fd = -1;
  pid_ = Spawn(Argv(extra_args), &fd);
  if (pid_ <= 0) return false;
  const std::string marker = "Mandate listening on http://127.0.0.1:";
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  stdout_text_.clear();
  char buf[4096];
  while (std::chrono::steady_clock::now() < deadline) {
    pollfd p{fd, POLLIN, 0};
    if (poll(&p, 1, 100) > 0) {
      const ssize_t n = ::read(fd, buf, sizeof buf);
      if (n <= 0) break;  // the server exited
      stdout_text_.append(buf, static_cast<size_t>(n));
      const size_t at = stdout_text_.find(marker);
      if (at != std::string::npos && stdout_text_.find('\n', at) != std::string::npos) {
        port_ = static_cast<uint16_t>(std::stoi(stdout_text_.substr(at + marker.size())));
        // Keep reading the rest of stdout in the background so that the server never blocks on it.
        std::thread([fd] {
          char sink[4096];
          while (::read(fd, sink, sizeof sink) > 0) {
          }
          close(fd);
        }).detach();
        return true;
      }
    }
  }
  close(fd);
  Kill();
  if (output != nullptr) *output = stderr_text();
  return false;
}

std::pair<int, std::string> ServerProcess::StartExpectingFailure(const std::vector<std::string>& extra_args) {
  int fd = -1;
  const pid_t pid = Spawn(Argv(extra_args), &fd);
  char buf[4096];
  while (::read(fd, buf, sizeof buf) > 0) {
  }
  close(fd);
  int status = 0;
  waitpid(pid, &status, 0);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status), stderr_text()};
}

int ServerProcess::Stop(std::chrono::seconds grace) {
  if (pid_ <= 0) return -1;
  kill(pid_, SIGTERM);
  const auto deadline = std::chrono::steady_clock::now() + grace;
  int status = 0;
  while (std::chrono::steady_clock::now() < deadline) {
    if (waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  Kill();
  return -1;
}

void ServerProcess::Kill() {
  if (pid_ <= 0) return;
  kill(pid_, SIGKILL);
  waitpid(pid_, nullptr, 0);
  pid_ = -1;
}

std::string ServerProcess::stderr_text() const { return ReadFile(data_dir_ + ".stderr"); }

namespace {
std::vector<std::pair<std::string, std::string>> WithKey(const std::string& key,
                                                         std::vector<std::pair<std::string, std::string>> headers) {
  if (!key.empty()) headers.emplace_back("Authorization", "Bearer " + key);
  return headers;
}
}  // namespace

HttpResult ServerProcess::Get(const std::string& target, const std::string& key,
                              const std::vector<std::pair<std::string, std::string>>& headers) const {
  return Http(port_, "GET", target, "", WithKey(key, headers));
}

HttpResult ServerProcess::Post(const std::string& target, const std::string& body, const std::string& key,
                               const std::vector<std::pair<std::string, std::string>>& headers) const {
  return Http(port_, "POST", target, body, WithKey(key, headers));
}

HttpResult ServerProcess::Delete(const std::string& target, const std::string& body, const std::string& key) const {
  return Http(port_, "DELETE", target, body, WithKey(key, {}));
}

uint64_t ServerProcess::Revision() const {
  HttpResult r = Get("/readyz", "");
  if (!r.json.is_object() || !r.json.as_object().contains("revision")) return UINT64_MAX;
  return r.json.as_object().at("revision").to_number<uint64_t>();
}

void ServerTest::SetUp() {
  server_ = std::make_unique<ServerProcess>(dir_.Join("data"));
  std::string err;
  ASSERT_TRUE(server_->Start(ExtraArgs(), &err)) << err;
}

void ServerTest::LoadPolicy() {
  const std::string body = json::serialize(json::object{{"src", ReadFile(TestData("policy.polar"))}, {"filename", ""}});
  HttpResult r = server_->Post("/api/policy", body);
  ASSERT_EQ(r.status, 200) << r.body;
}

uint64_t ServerTest::Batch(const std::string& body) {
  HttpResult r = server_->Post("/api/batch", body);
  EXPECT_EQ(r.status, 200) << r.body;
  return r.Header("osooffset").empty() ? 0 : std::stoull(r.Header("osooffset"));
}

std::vector<std::string> ServerTest::AllFacts() const {
  std::vector<std::string> out;
  for (const char* predicate : {"has_role", "has_relation", "is_public", "audit_tag"}) {
    HttpResult r = server_->Get(std::string("/api/facts?predicate=") + predicate);
    EXPECT_EQ(r.status, 200) << r.body;
    if (!r.json.is_array()) continue;
    for (const json::value& f : r.json.as_array()) out.push_back(json::serialize(f));
  }
  std::sort(out.begin(), out.end());
  return out;
}

ServerTest::State ServerTest::Observe() const {
  State s;
  s.facts = AllFacts();
  s.revision = server_->Revision();
  s.policy = server_->Get("/api/policy").body;
  s.versions = server_->Get("/v1/policy/versions").body;
  return s;
}

std::string FactJson(const std::string& predicate, const std::vector<std::pair<std::string, std::string>>& args) {
  json::array a;
  for (const auto& [t, id] : args) a.emplace_back(json::object{{"type", t}, {"id", id}});
  return json::serialize(json::object{{"predicate", predicate}, {"args", std::move(a)}});
}

}  // namespace mandate::testing
