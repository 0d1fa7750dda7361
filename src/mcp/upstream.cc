#include "mcp/upstream.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <cstring>

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <spdlog/spdlog.h>

#include "absl/strings/str_cat.h"

#include "mcp/base64.h"
#include "mcp/http_client.h"
#include "mcp/jsonrpc.h"
#include "mcp/sse.h"

extern char** environ;

namespace mandate::mcp {

namespace json = boost::json;
using Clock = std::chrono::steady_clock;

namespace {

// The protocol revision the gateway asks its upstreams for (they answer with one they support).
constexpr char kUpstreamProtocolVersion[] = "2025-11-25";

std::optional<int64_t> IntId(const json::value& id) {
  if (id.is_int64()) return id.as_int64();
  if (id.is_uint64() && id.as_uint64() <= static_cast<uint64_t>(INT64_MAX)) return static_cast<int64_t>(id.as_uint64());
  return std::nullopt;
}

json::object InitializeParams() {
  json::object p;
  p["protocolVersion"] = kUpstreamProtocolVersion;
  // What the gateway relays to the clients that declared it (docs/mcp-gateway.md); roots are per
  // client and cannot be offered on one shared upstream connection.
  p["capabilities"] = json::object{{"sampling", json::object{}},
                                   {"elicitation", json::object{{"form", json::object{}}, {"url", json::object{}}}}};
  p["clientInfo"] = json::object{{"name", "mandate-mcp-gateway"}, {"version", "0.1.0"}};
  return p;
}

// Sleeps up to `d`, waking early when `stop` turns true.
template <class StopFn>
void SleepUnless(std::chrono::milliseconds d, StopFn stop) {
  const auto until = Clock::now() + d;
  while (!stop() && Clock::now() < until) std::this_thread::sleep_for(std::chrono::milliseconds(20));
}

}  // namespace

// ---- Upstream (transport-independent part) --------------------------------------------------------

Upstream::Upstream(UpstreamConfig config) : config_(std::move(config)) {}
Upstream::~Upstream() = default;

std::chrono::milliseconds Upstream::timeout() const {
  return std::chrono::milliseconds(static_cast<int64_t>(config_.timeout_seconds * 1000));
}

std::chrono::milliseconds Upstream::startup_timeout() const {
  constexpr std::chrono::milliseconds kMinStartup{15'000};
  return std::max(timeout(), kMinStartup);
}

bool Upstream::stopping() const {
  std::lock_guard lock(mu_);
  return stopping_;
}

void Upstream::Start() {
  timer_ = std::thread([this] { TimerLoop(); });
  Connect();
}

void Upstream::Stop() {
  std::vector<ResponseCallback> calls;
  std::vector<ReadyCallback> waiters;
  {
    std::lock_guard lock(mu_);
    if (stopping_) return;
    stopping_ = true;
    for (auto& [id, p] : pending_) calls.push_back(std::move(p.done));
    pending_.clear();
    for (auto& w : waiters_) waiters.push_back(std::move(w.first));
    waiters_.clear();
  }
  cv_.notify_all();
  if (timer_.joinable()) timer_.join();
  Disconnect();
  const std::string why = absl::StrCat("upstream \"", name(), "\" is shutting down");
  for (auto& c : calls) c(MakeError(nullptr, kUpstreamUnavailable, why));
  for (auto& w : waiters) w(absl::UnavailableError(why));
}

int64_t Upstream::ReserveId() {
  std::lock_guard lock(mu_);
  return next_id_++;
}

int64_t Upstream::Request(std::string_view method, json::object params, ResponseCallback done) {
  const int64_t id = ReserveId();
  Request(id, method, std::move(params), std::move(done));
  return id;
}

void Upstream::Request(int64_t id, std::string_view method, json::object params, ResponseCallback done) {
  json::object message;
  {
    std::unique_lock lock(mu_);
    if (stopping_) {
      lock.unlock();
      done(MakeError(nullptr, kUpstreamUnavailable, absl::StrCat("upstream \"", name(), "\" is shutting down")));
      return;
    }
    Pending& p = pending_[id];
    p.done = std::move(done);
    p.deadline = Clock::now() + (method == "initialize" ? startup_timeout() : timeout());
    p.message = MakeRequest(id, method, std::move(params));
    // The handshake's own request goes out before the upstream is ready; everything else waits.
    if (!ready_ && method != "initialize") return;
    p.sent = true;
    message = std::move(p.message);
    p.message = {};
  }
  Send(std::move(message));
}

void Upstream::SendResponse(json::object response) {
  {
    std::lock_guard lock(mu_);
    if (!ready_ || stopping_) return;
  }
  Send(std::move(response));
}

std::optional<int64_t> Upstream::SoleRequestInFlight() const {
  std::lock_guard lock(mu_);
  std::optional<int64_t> sole;
  for (const auto& [id, p] : pending_) {
    if (!p.sent || id == handshake_id_) continue;
    if (sole) return std::nullopt;
    sole = id;
  }
  return sole;
}

void Upstream::Cancel(int64_t id, std::string_view reason) {
  bool sent = false;
  {
    std::lock_guard lock(mu_);
    auto it = pending_.find(id);
    if (it == pending_.end()) return;
    sent = it->second.sent;
    pending_.erase(it);
  }
  if (sent) Notify("notifications/cancelled", json::object{{"requestId", id}, {"reason", reason}});
}

void Upstream::Notify(std::string_view method, json::object params) {
  {
    std::lock_guard lock(mu_);
    if (!ready_ || stopping_) return;
  }
  Send(MakeNotification(method, std::move(params)));
}

void Upstream::WhenReady(ReadyCallback done) {
  std::unique_lock lock(mu_);
  if (ready_) {
    json::object result = *init_result_;
    lock.unlock();
    return done(std::move(result));
  }
  if (stopping_) {
    lock.unlock();
    return done(absl::UnavailableError(absl::StrCat("upstream \"", name(), "\" is shutting down")));
  }
  waiters_.emplace_back(std::move(done), Clock::now() + startup_timeout());
}

void Upstream::SetNotificationHandler(NotificationHandler handler) {
  std::lock_guard lock(mu_);
  on_notification_ = std::move(handler);
}

void Upstream::SetServerRequestHandler(ServerRequestHandler handler) {
  std::lock_guard lock(mu_);
  on_request_ = std::move(handler);
}

void Upstream::SetReadyHandler(ReadyHandler handler) {
  std::lock_guard lock(mu_);
  on_ready_ = std::move(handler);
}

void Upstream::OnConnected() {
  const int64_t handshake = ReserveId();
  {
    std::lock_guard lock(mu_);
    handshake_id_ = handshake;
  }
  Request(handshake, "initialize", InitializeParams(), [this](json::object response) {
    if (!response.contains("result") || !response.at("result").is_object()) {
      const std::string why = absl::StrCat("upstream \"", name(), "\" refused initialize: ",
                                           json::serialize(response.contains("error") ? response.at("error") : response));
      spdlog::warn("{}", why);
      OnDisconnected(why);
      Disconnect();
      return;
    }
    std::vector<json::object> queued;
    std::vector<ReadyCallback> waiters;
    ReadyHandler on_ready;
    json::object result = response.at("result").as_object();
    {
      std::lock_guard lock(mu_);
      if (stopping_) return;
      on_ready = on_ready_;
      init_result_ = result;
      ready_ = true;
      for (auto& [id, p] : pending_) {
        if (!p.sent) {
          p.sent = true;
          queued.push_back(std::move(p.message));
          p.message = {};
        }
      }
      for (auto& w : waiters_) waiters.push_back(std::move(w.first));
      waiters_.clear();
    }
    spdlog::info("MCP upstream \"{}\" ready ({} {}, protocol {})", name(),
                 result.contains("serverInfo") ? json::serialize(result.at("serverInfo").at("name")) : "?",
                 result.contains("serverInfo") && result.at("serverInfo").as_object().contains("version")
                     ? json::serialize(result.at("serverInfo").at("version"))
                     : "",
                 result.contains("protocolVersion") ? json::serialize(result.at("protocolVersion")) : "?");
    Send(MakeNotification("notifications/initialized", {}));
    OnReady();
    for (auto& m : queued) Send(std::move(m));
    for (auto& w : waiters) w(result);
    if (on_ready) on_ready();
  });
}

void Upstream::OnMessage(json::object message, std::optional<int64_t> related) {
  if (const json::value* method = message.if_contains("method"); method != nullptr && method->is_string()) {
    const std::string m(method->as_string());
    json::object params;
    if (const json::value* p = message.if_contains("params"); p != nullptr && p->is_object()) params = p->as_object();
    NotificationHandler on_notification;
    ServerRequestHandler on_request;
    {
      std::lock_guard lock(mu_);
      if (stopping_) return;  // nothing reaches the gateway once it stops its upstreams
      on_notification = on_notification_;
      on_request = on_request_;
    }
    if (const json::value* id = message.if_contains("id")) {
      if (m == "ping") {
        Send(MakeResult(*id, json::object{}));
      } else if (on_request && IsValidId(*id)) {
        on_request(*id, m, params, related);
      } else {
        Send(MakeError(*id, kMethodNotFound, absl::StrCat("the Mandate gateway does not relay ", m, " to clients")));
      }
      return;
    }
    if (on_notification) on_notification(m, params, related);
    return;
  }
  const json::value* idv = message.if_contains("id");
  std::optional<int64_t> id = idv == nullptr ? std::nullopt : IntId(*idv);
  if (!id) return;
  ResponseCallback done;
  {
    std::lock_guard lock(mu_);
    auto it = pending_.find(*id);
    if (it == pending_.end()) return;  // cancelled or timed out
    done = std::move(it->second.done);
    pending_.erase(it);
  }
  done(std::move(message));
}

void Upstream::OnDisconnected(const std::string& why) {
  std::vector<std::pair<int64_t, ResponseCallback>> failed;
  {
    std::lock_guard lock(mu_);
    ready_ = false;
    last_error_ = why;
    for (auto it = pending_.begin(); it != pending_.end();) {
      if (it->second.sent) {
        failed.emplace_back(it->first, std::move(it->second.done));
        pending_.erase(it++);
      } else {
        ++it;
      }
    }
  }
  for (auto& [id, done] : failed) done(MakeError(id, kUpstreamUnavailable, why));
}

void Upstream::TimerLoop() {
  std::unique_lock lock(mu_);
  while (!stopping_) {
    cv_.wait_for(lock, std::chrono::milliseconds(100));
    if (stopping_) break;
    const auto now = Clock::now();
    std::vector<std::pair<int64_t, ResponseCallback>> expired;
    for (auto it = pending_.begin(); it != pending_.end();) {
      if (it->second.deadline <= now) {
        expired.emplace_back(it->first, std::move(it->second.done));
        pending_.erase(it++);
      } else {
        ++it;
      }
    }
    std::vector<ReadyCallback> late;
    while (!waiters_.empty() && waiters_.front().second <= now) {
      late.push_back(std::move(waiters_.front().first));
      waiters_.pop_front();
    }
    const std::string last = last_error_;
    lock.unlock();
    const std::string secs = absl::StrCat(config_.timeout_seconds);
    for (auto& [id, done] : expired) {
      done(MakeError(id, kUpstreamUnavailable,
                     absl::StrCat("upstream \"", name(), "\" did not answer within ", secs, " s")));
    }
    for (auto& w : late) {
      w(absl::UnavailableError(absl::StrCat("upstream \"", name(), "\" is not ready after ", secs, " s",
                                            last.empty() ? "" : absl::StrCat(" (", last, ")"))));
    }
    lock.lock();
  }
}

// ---- stdio ----------------------------------------------------------------------------------------

namespace {

class StdioUpstream final : public Upstream {
 public:
  using Upstream::Upstream;
  ~StdioUpstream() override {
    Stop();
    if (supervisor_.joinable()) supervisor_.join();
  }

 protected:
  void Connect() override {
    // Writing to a child that died must not kill the server with SIGPIPE; write() reports EPIPE.
    signal(SIGPIPE, SIG_IGN);
    supervisor_ = std::thread([this] { Supervise(); });
  }

  void Send(json::object message) override {
    std::string line = json::serialize(message);
    line += '\n';
    std::lock_guard lock(write_mu_);
    if (stdin_fd_ < 0) return;
    size_t off = 0;
    while (off < line.size()) {
      const ssize_t n = write(stdin_fd_, line.data() + off, line.size() - off);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return;  // the reader sees the exit and fails what is pending
      off += static_cast<size_t>(n);
    }
  }

  void Disconnect() override {
    // Closing stdin asks the server to exit; the supervisor escalates to SIGTERM after 1 s and
    // SIGKILL after 3 s (see Supervise).
    std::lock_guard lock(write_mu_);
    if (stdin_fd_ >= 0) close(stdin_fd_);
    stdin_fd_ = -1;
    if (pid_ > 0 && !terminate_since_) terminate_since_ = Clock::now();
  }

 private:
  // Called by the supervisor while it waits for output: enforces the shutdown escalation.
  void Escalate() {
    std::lock_guard lock(write_mu_);
    if (!terminate_since_ || pid_ <= 0) return;
    const auto waited = Clock::now() - *terminate_since_;
    if (waited > std::chrono::seconds(3)) {
      kill(pid_, SIGKILL);
    } else if (waited > std::chrono::seconds(1)) {
      kill(pid_, SIGTERM);
    }
  }

  absl::Status Spawn(int* out_fd) {
    int in[2], out[2];
    if (pipe2(in, O_CLOEXEC) != 0) return absl::InternalError(absl::StrCat("pipe: ", std::strerror(errno)));
    if (pipe2(out, O_CLOEXEC) != 0) {
      close(in[0]);
      close(in[1]);
      return absl::InternalError(absl::StrCat("pipe: ", std::strerror(errno)));
    }
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, in[0], 0);
    posix_spawn_file_actions_adddup2(&fa, out[1], 1);
    if (!config().cwd.empty()) posix_spawn_file_actions_addchdir_np(&fa, config().cwd.c_str());
    posix_spawnattr_t attr;
    posix_spawnattr_init(&attr);
    // Its own process group: a terminal's Ctrl-C reaches the server, which then stops the child.
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP);
    posix_spawnattr_setpgroup(&attr, 0);

    // The child's environment is PATH, HOME and LANG of the server plus the configured variables:
    // no ambient secrets of the server leak into it.
    std::vector<std::string> env_strings;
    for (const char* k : {"PATH", "HOME", "LANG"}) {
      if (config().env.count(k)) continue;
      if (const char* v = std::getenv(k)) env_strings.push_back(absl::StrCat(k, "=", v));
    }
    for (const auto& [k, v] : config().env) env_strings.push_back(absl::StrCat(k, "=", v));
    std::vector<char*> envp, argv;
    for (auto& s : env_strings) envp.push_back(s.data());
    envp.push_back(nullptr);
    std::vector<std::string> args = config().command;
    for (auto& s : args) argv.push_back(s.data());
    argv.push_back(nullptr);

    pid_t pid = 0;
    const int rc = posix_spawnp(&pid, argv[0], &fa, &attr, argv.data(), envp.data());
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&attr);
    close(in[0]);
    close(out[1]);
    if (rc != 0) {
      close(in[1]);
      close(out[0]);
      return absl::UnavailableError(absl::StrCat("cannot start ", config().command[0], ": ", std::strerror(rc)));
    }
    std::lock_guard lock(write_mu_);
    pid_ = pid;
    stdin_fd_ = in[1];
    *out_fd = out[0];
    return absl::OkStatus();
  }

  void Supervise() {
    auto backoff = std::chrono::milliseconds(250);
    constexpr auto kMaxBackoff = std::chrono::milliseconds(30'000);
    constexpr size_t kMaxLine = size_t{16} << 20;
    while (!stopping()) {
      int out_fd = -1;
      const auto started = Clock::now();
      if (absl::Status s = Spawn(&out_fd); !s.ok()) {
        spdlog::error("MCP upstream \"{}\": {}", name(), std::string(s.message()));
        OnDisconnected(std::string(s.message()));
      } else {
        spdlog::info("MCP upstream \"{}\": started pid {}", name(), pid_);
        OnConnected();
        std::string buffer;
        char chunk[65536];
        bool oversized = false;
        while (true) {
          pollfd pfd{out_fd, POLLIN, 0};
          const int ready = poll(&pfd, 1, 100);
          if (ready == 0 || (ready < 0 && errno == EINTR)) {
            Escalate();
            continue;
          }
          const ssize_t n = read(out_fd, chunk, sizeof chunk);
          if (n < 0 && errno == EINTR) continue;
          if (n <= 0) break;
          buffer.append(chunk, static_cast<size_t>(n));
          size_t start = 0;
          for (size_t nl; (nl = buffer.find('\n', start)) != std::string::npos; start = nl + 1) {
            std::string_view line(buffer.data() + start, nl - start);
            if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
            if (line.empty()) continue;
            Decoded d = Decode(line, Limits{kMaxLine, 64});
            if (d.error) {
              spdlog::warn("MCP upstream \"{}\" wrote a malformed message: {}", name(), d.error->message);
              continue;
            }
            // stdio carries no relation between messages: a notification or request of the
            // server is attributed to the gateway's request only when that is the one in flight.
            std::optional<int64_t> related;
            if (d.message->kind != Message::Kind::kResponse) related = SoleRequestInFlight();
            OnMessage(std::move(d.message->raw), related);
          }
          buffer.erase(0, start);
          if (buffer.size() > kMaxLine) {
            oversized = true;
            break;
          }
        }
        close(out_fd);
        int status = 0;
        pid_t pid;
        {
          std::lock_guard lock(write_mu_);
          pid = pid_;
          if (stdin_fd_ >= 0) close(stdin_fd_);
          stdin_fd_ = -1;
        }
        if (oversized) kill(pid, SIGKILL);
        waitpid(pid, &status, 0);
        {
          std::lock_guard lock(write_mu_);
          pid_ = 0;
          terminate_since_.reset();
        }
        std::string how = WIFEXITED(status)     ? absl::StrCat("exited with status ", WEXITSTATUS(status))
                          : WIFSIGNALED(status) ? absl::StrCat("was killed by signal ", WTERMSIG(status))
                                                : "stopped";
        if (oversized) how = "wrote a line over 16 MiB and was killed";
        const std::string why = absl::StrCat("upstream \"", name(), "\" ", how, " while the request was pending");
        if (!stopping()) spdlog::warn("MCP upstream \"{}\" {}; restarting in {} ms", name(), how, backoff.count());
        OnDisconnected(why);
        if (Clock::now() - started > std::chrono::seconds(30)) backoff = std::chrono::milliseconds(250);
      }
      SleepUnless(backoff, [this] { return stopping(); });
      backoff = std::min(backoff * 2, kMaxBackoff);
    }
  }

  std::thread supervisor_;
  std::mutex write_mu_;  // guards stdin_fd_, pid_ and terminate_since_
  int stdin_fd_ = -1;
  pid_t pid_ = 0;
  std::optional<Clock::time_point> terminate_since_;
};

// ---- Streamable HTTP ------------------------------------------------------------------------------

// A request whose SSE answer ended before the answer is resumed (GET with Last-Event-ID) at most
// this often, each time after the upstream's `retry` delay (capped).
constexpr int kMaxResumes = 3;
constexpr std::chrono::milliseconds kMaxRetryWait{5'000};
// The standalone stream is one bounded exchange: re-opened (resumed) at least this often, so that a
// connection that died silently is noticed.
constexpr std::chrono::milliseconds kStandaloneSpan{10 * 60'000};
constexpr std::chrono::milliseconds kMinBackoff{500};
constexpr std::chrono::milliseconds kMaxBackoff{30'000};
const Limits kUpstreamLimits{size_t{16} << 20, 64};

// What has been read of one upstream SSE stream: the position in the body of the current exchange,
// and what a resumption needs (the last event id, the upstream's retry delay).
struct StreamState {
  size_t pos = 0;
  std::string last_id;
  std::optional<uint64_t> retry_ms;
};

// An HttpRequest::on_progress that decodes each event of an SSE body as it arrives and hands its
// message to `on_message`, which returns true to end the exchange.
std::function<bool(std::string_view)> ReadEvents(StreamState* st, std::function<bool(Message)> on_message) {
  return [st, on_message = std::move(on_message)](std::string_view body) {
    bool stop = false;
    for (SseEvent& e : TakeSseEvents(body, &st->pos)) {
      if (e.id) st->last_id = std::move(*e.id);
      if (e.retry_ms) st->retry_ms = e.retry_ms;
      if (e.data.empty()) continue;
      Decoded d = Decode(e.data, kUpstreamLimits);
      if (d.error) continue;
      stop = on_message(std::move(*d.message)) || stop;
    }
    return stop;
  };
}

bool IsEventStream(const HttpResult& r) { return r.Header("content-type").rfind("text/event-stream", 0) == 0; }

class HttpUpstream final : public Upstream {
 public:
  // Requests hold a thread of `calls_` for their whole exchange (an SSE response may last as long as
  // the tool runs), at most max_concurrency of them; everything else (the handshake, notifications,
  // answers to the upstream's own requests) goes through `control_`, so that an answer the upstream
  // waits for is never queued behind the requests that wait for it. The standalone stream has a
  // thread of its own. With `io` (the server's I/O threads), requests to a plain http upstream
  // run there instead, without holding a thread (see SendRequest).
  HttpUpstream(UpstreamConfig config, boost::asio::io_context* io)
      : Upstream(std::move(config)),
        io_(io),
        calls_(static_cast<size_t>(std::max(1, this->config().max_concurrency))),
        control_(2),
        pool_(static_cast<size_t>(std::max(1, this->config().max_concurrency)) + 2) {
    if (io_ != nullptr && AsyncHttpPool::Supports(this->config().url)) {
      async_ = std::make_unique<AsyncHttpPool>(io_->get_executor(),
                                               static_cast<size_t>(std::max(1, this->config().max_concurrency)));
    }
  }
  ~HttpUpstream() override {
    Stop();
    StopListener();
    calls_.join();
    control_.join();
    // Exchanges on the I/O threads end within their timeout (their callbacks use this object);
    // once those threads stopped, none of their callbacks runs any more.
    while (async_inflight_ > 0 && !io_->stopped()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }

 protected:
  void Connect() override {
    {
      std::lock_guard lock(listen_mu_);
      if (!listener_.joinable() && !listen_stop_) listener_ = std::thread([this] { Listen(); });
    }
    boost::asio::post(control_, [this] { OnConnected(); });
  }
  void Send(json::object message) override {
    const bool request = message.contains("method") && message.contains("id") && message.at("method") != "initialize";
    if (request) return SendRequest(std::move(message));
    boost::asio::post(control_, [this, message = std::move(message)]() mutable { Post(std::move(message)); });
  }
  void Disconnect() override {
    {
      std::lock_guard lock(session_mu_);
      session_id_.clear();
    }
    if (stopping()) StopListener();
  }
  void OnReady() override {
    std::lock_guard lock(listen_mu_);
    ++ready_gen_;
    listen_cv_.notify_all();
  }

 private:
  // The Authorization header value ("" for none). `cached_only`: never fetch a token (that blocks);
  // FailedPrecondition when one would have to be fetched.
  absl::StatusOr<std::string> Credential(bool cached_only) {
    const UpstreamAuth& a = config().auth;
    if (a.kind == UpstreamAuth::Kind::kNone) return std::string();
    if (a.kind == UpstreamAuth::Kind::kBearer) return absl::StrCat("Bearer ", a.bearer_token);
    std::unique_lock lock(token_mu_, std::defer_lock);
    if (cached_only) {
      if (!lock.try_lock()) return absl::FailedPreconditionError("a token is being fetched");
    } else {
      lock.lock();
    }
    if (!token_.empty() && Clock::now() < token_expiry_) return absl::StrCat("Bearer ", token_);
    if (cached_only) return absl::FailedPreconditionError("no cached token");
    HttpRequest r;
    r.method = "POST";
    r.url = a.token_url;
    r.timeout = timeout();
    r.headers.emplace_back("Content-Type", "application/x-www-form-urlencoded");
    r.headers.emplace_back("Accept", "application/json");
    r.body = "grant_type=client_credentials";
    if (!a.scope.empty()) absl::StrAppend(&r.body, "&scope=", FormEncode(a.scope));
    absl::StrAppend(&r.body, "&resource=", FormEncode(a.resource.empty() ? config().url : a.resource));
    if (a.client_secret.empty()) {
      absl::StrAppend(&r.body, "&client_id=", FormEncode(a.client_id));
    } else {
      r.headers.emplace_back("Authorization", absl::StrCat("Basic ", Base64Encode(absl::StrCat(
                                                                         FormEncode(a.client_id), ":",
                                                                         FormEncode(a.client_secret)))));
    }
    absl::StatusOr<HttpResult> res = pool_.Fetch(r);
    if (!res.ok()) return res.status();
    boost::system::error_code ec;
    json::value v = json::parse(res->body, ec);
    if (res->status != 200 || ec || !v.is_object() || !v.as_object().contains("access_token") ||
        !v.at("access_token").is_string()) {
      return absl::UnavailableError(absl::StrCat("token endpoint ", a.token_url, " answered HTTP ", res->status,
                                                 " without an access_token"));
    }
    token_ = std::string(v.at("access_token").as_string());
    int64_t expires_in = 300;
    if (const json::value* e = v.as_object().if_contains("expires_in"); e != nullptr && e->is_int64()) {
      expires_in = e->as_int64();
    }
    token_expiry_ = Clock::now() + std::chrono::seconds(std::max<int64_t>(expires_in - 30, 1));
    return absl::StrCat("Bearer ", token_);
  }

  // A request to the upstream's endpoint with the gateway's credential and, unless it starts a
  // session, the session's id (also stored in `*session`, "" when there is none yet) and protocol
  // version.
  absl::StatusOr<HttpRequest> ToUpstream(std::string method, bool initialize, std::string* session,
                                         bool cached_credential_only = false) {
    absl::StatusOr<std::string> credential = Credential(cached_credential_only);
    if (!credential.ok()) return credential.status();
    HttpRequest r;
    r.method = std::move(method);
    r.url = config().url;
    r.timeout = timeout();
    if (!credential->empty()) r.headers.emplace_back("Authorization", *credential);
    if (!initialize) {
      std::lock_guard lock(session_mu_);
      *session = session_id_;
      if (!session_id_.empty()) r.headers.emplace_back("Mcp-Session-Id", session_id_);
      if (!protocol_version_.empty()) r.headers.emplace_back("MCP-Protocol-Version", protocol_version_);
    }
    return r;
  }

  // A 401/403 may mean the token expired early: the next request fetches a new one.
  void ForgetTokenOn(int status) {
    if (status != 401 && status != 403) return;
    std::lock_guard lock(token_mu_);
    token_.clear();
  }

  // One POST of a message to the upstream: the request, and what reading its answer keeps.
  struct Exchange {
    bool is_initialize = false;
    json::value id;  // null for notifications and responses
    Clock::time_point deadline;
    std::string session;  // the session id the request carried
    StreamState st;
    bool answered = false;
    std::vector<json::object> early;  // messages handled once the exchange ended
    HttpRequest request;
  };

  // The POST of `message`; `*status` says why it cannot be sent. `on_io_thread`: it is about to run
  // on the server's I/O threads, which must not block (an OAuth token is then only taken from the
  // cache).
  std::shared_ptr<Exchange> Prepare(const json::object& message, bool on_io_thread, absl::Status* status) {
    auto x = std::make_shared<Exchange>();
    x->deadline = Clock::now() + timeout();
    x->is_initialize = message.contains("method") && message.at("method") == "initialize";
    if (message.contains("method") && message.contains("id")) x->id = message.at("id");
    absl::StatusOr<HttpRequest> r = ToUpstream("POST", x->is_initialize, &x->session, on_io_thread);
    *status = r.status();
    if (!r.ok()) return x;
    x->request = std::move(*r);
    x->request.headers.emplace_back("Content-Type", "application/json");
    x->request.headers.emplace_back("Accept", "application/json, text/event-stream");
    x->request.body = json::serialize(message);
    // SSE: messages are handed on as they arrive; the exchange ends at the awaited response.
    const std::optional<int64_t> related = x->id.is_null() ? std::nullopt : IntId(x->id);
    Exchange* e = x.get();  // the request (holding this callback) lives in the Exchange
    x->request.on_progress = ReadEvents(&x->st, [this, e, related](Message m) {
      const bool is_answer = m.kind == Message::Kind::kResponse && m.id == e->id;
      if (e->is_initialize) {
        e->early.push_back(std::move(m.raw));  // handled after the session id is known
      } else {
        OnMessage(std::move(m.raw), related);  // everything on this stream belongs to the request it answers
      }
      e->answered = e->answered || is_answer;
      return e->answered;
    });
    return x;
  }

  void Fail(const Exchange& x, const std::string& why) {
    if (x.is_initialize) {
      OnDisconnected(why);
      SleepUnless(std::chrono::milliseconds(1000), [this] { return stopping(); });
      if (!stopping()) Connect();
    } else if (!x.id.is_null()) {
      OnMessage(MakeError(x.id, kUpstreamUnavailable, why));
    }
  }

  // Sends a request, at most max_concurrency at once (the rest wait in `queued_`). Plain http
  // upstreams are called without blocking a thread, on the server's I/O threads (the answer
  // reaches the client from there, with no hand-over to another thread); everything else goes
  // through `calls_`.
  void SendRequest(json::object message) {
    {
      std::lock_guard lock(queue_mu_);
      if (inflight_ >= config().max_concurrency) return queued_.push_back(std::move(message));
      ++inflight_;
    }
    Dispatch(std::move(message));
  }

  // A request ended: the next queued one takes its place.
  void Release() {
    json::object next;
    {
      std::lock_guard lock(queue_mu_);
      if (queued_.empty() || stopping()) {
        --inflight_;
        return;
      }
      next = std::move(queued_.front());
      queued_.pop_front();
    }
    Dispatch(std::move(next));
  }

  void Dispatch(json::object message) {
    if (async_ != nullptr) {
      absl::Status status;
      std::shared_ptr<Exchange> e = Prepare(message, /*on_io_thread=*/true, &status);
      // Only a token that must be fetched first fails here: that blocks, so it goes to calls_.
      if (status.ok()) {
        ++async_inflight_;
        return async_->Fetch(e->request, [this, e](absl::StatusOr<HttpResult> res) {
          auto complete = [this, e](absl::StatusOr<HttpResult> res) {
            Complete(*e, std::move(res));
            Release();
            --async_inflight_;  // last: the destructor waits for it
          };
          if (stopping() || !NeedsResume(*e, res)) return complete(std::move(res));
          boost::asio::post(calls_, [complete, res = std::move(res)]() mutable { complete(std::move(res)); });
        });
      }
    }
    boost::asio::post(calls_, [this, message = std::move(message)]() mutable {
      Post(std::move(message));
      Release();
    });
  }

  // Sends a message and handles the answer, blocking the calling thread (a thread of calls_ or
  // control_) for the exchange.
  void Post(json::object message) {
    if (stopping()) return;
    absl::Status status;
    std::shared_ptr<Exchange> x = Prepare(message, /*on_io_thread=*/false, &status);
    if (!status.ok()) return Fail(*x, absl::StrCat("upstream \"", name(), "\": ", status.message()));
    Complete(*x, pool_.Fetch(x->request));
  }

  // Whether completing the exchange blocks: its SSE stream ended before the answer and must be
  // resumed (see Resume).
  static bool NeedsResume(const Exchange& x, const absl::StatusOr<HttpResult>& res) {
    return res.ok() && res->status >= 200 && res->status < 300 && res->status != 202 &&
           res->Header("content-type").rfind("application/json", 0) != 0 && !x.answered && !x.is_initialize &&
           !x.id.is_null();
  }

  // Handles the end of an exchange; blocks only when NeedsResume().
  void Complete(Exchange& x, absl::StatusOr<HttpResult> res) {
    if (stopping()) return;
    if (!res.ok()) return Fail(x, absl::StrCat("upstream \"", name(), "\": ", res.status().message()));
    if (res->status == 404 && !x.session.empty()) {
      // The upstream forgot our session: start a new one; this request fails (the client retries).
      spdlog::warn("MCP upstream \"{}\" expired its session; re-initializing", name());
      OnDisconnected(absl::StrCat("upstream \"", name(), "\" ended its session"));
      {
        std::lock_guard lock(session_mu_);
        session_id_.clear();
      }
      Connect();
      return;
    }
    ForgetTokenOn(res->status);
    if (res->status == 202) return;
    if (res->status < 200 || res->status >= 300) {
      return Fail(x, absl::StrCat("upstream \"", name(), "\" answered HTTP ", res->status));
    }
    if (x.is_initialize) {
      std::lock_guard lock(session_mu_);
      session_id_ = res->Header("mcp-session-id");
    }
    if (res->Header("content-type").rfind("application/json", 0) == 0) {
      Decoded d = Decode(res->body, kUpstreamLimits);
      if (d.error) return Fail(x, absl::StrCat("upstream \"", name(), "\" sent malformed JSON: ", d.error->message));
      x.early.push_back(std::move(d.message->raw));
    } else if (!x.answered && !x.is_initialize && !x.id.is_null()) {
      std::string why;
      if (!Resume(x.st, x.request.on_progress, x.answered, x.deadline, &why)) {
        return Fail(x, absl::StrCat("upstream \"", name(), "\" closed the stream without answering", why));
      }
    }
    for (json::object& m : x.early) {
      if (x.is_initialize && m.contains("result") && m.at("result").is_object()) {
        if (const json::value* v = m.at("result").as_object().if_contains("protocolVersion"); v && v->is_string()) {
          std::lock_guard lock(session_mu_);
          protocol_version_ = std::string(v->as_string());
        }
      }
      OnMessage(std::move(m));
    }
  }

  // A request's SSE stream ended before its answer (the upstream may close it to have the client
  // poll, SEP-1699): resumes it as Streamable HTTP says, GET with Last-Event-ID after the
  // upstream's retry delay, up to kMaxResumes times while the request's time lasts. `read` goes on
  // reading the stream's events (and sets `answered`). On failure `*why` says why.
  bool Resume(StreamState& st, const std::function<bool(std::string_view)>& read, const bool& answered,
              Clock::time_point deadline, std::string* why) {
    for (int attempt = 0; attempt < kMaxResumes && !answered; ++attempt) {
      if (st.last_id.empty()) {
        *why = " (its events carry no id to resume from)";
        return false;
      }
      const auto wait = std::min(std::chrono::milliseconds(st.retry_ms.value_or(0)), kMaxRetryWait);
      SleepUnless(wait, [this] { return stopping(); });
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
      if (stopping() || left <= std::chrono::milliseconds(0)) return false;
      std::string session;
      absl::StatusOr<HttpRequest> g = ToUpstream("GET", false, &session);
      if (!g.ok()) {
        *why = absl::StrCat(" (resuming it: ", g.status().message(), ")");
        return false;
      }
      g->headers.emplace_back("Accept", "text/event-stream");
      g->headers.emplace_back("Last-Event-ID", st.last_id);
      g->timeout = left;
      g->on_progress = read;
      st.pos = 0;  // a new body
      absl::StatusOr<HttpResult> res = pool_.Fetch(*g);
      if (!res.ok()) {
        *why = absl::StrCat(" (resuming it: ", res.status().message(), ")");
        continue;
      }
      ForgetTokenOn(res->status);
      if (res->status != 200 || !IsEventStream(*res)) {
        *why = absl::StrCat(" (resuming it with Last-Event-ID answered HTTP ", res->status, ")");
        return false;
      }
    }
    if (!answered && why->empty()) *why = absl::StrCat(" (resumed ", kMaxResumes, " times)");
    return answered;
  }

  // The standalone stream (GET): what the upstream sends outside of any request (list_changed,
  // resources/updated). Opened after each handshake; an upstream that answers 405 offers none.
  // When it ends it is resumed with Last-Event-ID (after the upstream's retry delay); failures back
  // off from 0.5 s to 30 s. Its messages belong to no request.
  void Listen() {
    uint64_t gen = 0;
    bool idle = true;  // nothing to open until the next handshake
    StreamState st;
    auto backoff = kMinBackoff;
    std::string last_problem;
    while (true) {
      {
        std::unique_lock lock(listen_mu_);
        if (idle) listen_cv_.wait(lock, [&] { return listen_stop_ || ready_gen_ != gen; });
        if (listen_stop_) return;
        if (ready_gen_ != gen) {  // a new upstream session: a new stream
          gen = ready_gen_;
          st = StreamState{};
          backoff = kMinBackoff;
        }
      }
      idle = false;
      const auto opened = Clock::now();
      std::string session;
      absl::StatusOr<HttpRequest> r = ToUpstream("GET", false, &session);
      absl::StatusOr<HttpResult> res = absl::UnknownError("not sent");
      if (!r.ok()) {
        res = r.status();
      } else {
        r->headers.emplace_back("Accept", "text/event-stream");
        if (!st.last_id.empty()) r->headers.emplace_back("Last-Event-ID", st.last_id);
        r->timeout = kStandaloneSpan;
        r->cancel = &listen_cancel_;
        r->on_progress = ReadEvents(&st, [this](Message m) {
          OnMessage(std::move(m.raw));
          return false;
        });
        st.pos = 0;
        res = HttpFetch(*r);
      }
      if (listen_cancel_) return;
      std::chrono::milliseconds wait = backoff;
      std::string problem;
      if (res.ok() && (res->status == 405 || res->status == 404)) {
        // 405: the upstream offers no standalone stream; 404: the session ended (the next
        // handshake opens a stream for the new one).
        if (res->status == 405) spdlog::info("MCP upstream \"{}\" offers no standalone stream (GET: 405)", name());
        idle = true;
        continue;
      }
      if ((res.ok() && res->status == 200 && IsEventStream(*res)) || absl::IsDeadlineExceeded(res.status())) {
        // The stream ended (the upstream closed it, or its span passed): resume it, at once after
        // a long stream, else after the upstream's retry delay or the backoff.
        const bool lasted = Clock::now() - opened > std::chrono::seconds(10);
        if (lasted) backoff = kMinBackoff;
        wait = lasted ? std::chrono::milliseconds(0) : backoff;
        if (st.retry_ms) wait = std::min(std::chrono::milliseconds(*st.retry_ms), kMaxBackoff);
      } else {
        problem = res.ok() ? absl::StrCat("GET answered HTTP ", res->status) : std::string(res.status().message());
        if (res.ok()) ForgetTokenOn(res->status);
        // An upstream that cannot resume from our last event (it forgot it) gets a new stream.
        if (res.ok()) st.last_id.clear();
      }
      if (!problem.empty() && problem != last_problem) {
        spdlog::warn("MCP upstream \"{}\": standalone stream: {}; retrying with backoff", name(), problem);
      }
      last_problem = problem;
      backoff = std::min(backoff * 2, kMaxBackoff);
      std::unique_lock lock(listen_mu_);
      listen_cv_.wait_for(lock, wait, [&] { return listen_stop_ || ready_gen_ != gen; });
    }
  }

  void StopListener() {
    {
      std::lock_guard lock(listen_mu_);
      listen_stop_ = true;
    }
    listen_cancel_ = true;
    listen_cv_.notify_all();
    if (listener_.joinable() && listener_.get_id() != std::this_thread::get_id()) listener_.join();
  }

  boost::asio::io_context* const io_;  // null: no async requests
  boost::asio::thread_pool calls_;
  boost::asio::thread_pool control_;
  std::unique_ptr<AsyncHttpPool> async_;  // plain http upstreams with io_
  std::atomic<int> async_inflight_{0};     // requests sent through async_ and not completed
  std::mutex queue_mu_;                    // guards inflight_ and queued_
  int inflight_ = 0;                       // requests sent and not completed
  std::deque<json::object> queued_;        // requests waiting for one of those to end
  // Keep-alive connections to the upstream (and its token endpoint), one per thread that may use
  // them at once: the calls and the control pair.
  HttpConnectionPool pool_;
  std::mutex session_mu_;  // guards session_id_ and protocol_version_
  std::string session_id_;
  std::string protocol_version_;
  std::mutex token_mu_;
  std::string token_;
  Clock::time_point token_expiry_;
  std::mutex listen_mu_;  // guards listener_ (start), listen_stop_ and ready_gen_
  std::condition_variable listen_cv_;
  std::thread listener_;
  bool listen_stop_ = false;
  uint64_t ready_gen_ = 0;  // handshakes completed
  std::atomic<bool> listen_cancel_{false};
};

}  // namespace

std::unique_ptr<Upstream> Upstream::Create(UpstreamConfig config, boost::asio::io_context* io) {
  if (config.is_stdio()) return std::make_unique<StdioUpstream>(std::move(config));
  return std::make_unique<HttpUpstream>(std::move(config), io);
}

}  // namespace mandate::mcp
