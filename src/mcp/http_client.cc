#include "mcp/http_client.h"

#include <poll.h>
#include <sys/socket.h>

#include <algorithm>
#include <iterator>
#include <mutex>
#include <optional>

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <boost/url/parse.hpp>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace mandate::mcp {

namespace beast = boost::beast;
namespace http = beast::http;
namespace net = boost::asio;
using tcp = net::ip::tcp;

std::string HttpResult::Header(std::string_view name) const {
  for (const auto& [k, v] : headers) {
    if (k == name) return v;
  }
  return "";
}

std::string FormEncode(std::string_view text) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : text) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
}

namespace {

using Clock = std::chrono::steady_clock;

// Where a URL points.
struct Target {
  bool tls = false;
  std::string host;         // as in the URL (IPv6 in brackets)
  std::string dial_host;    // for the resolver, SNI and certificate checks
  std::string port;
  std::string host_header;
  std::string target;       // path and query
  std::string origin;       // the pool key
};

absl::StatusOr<Target> ParseTarget(const std::string& text) {
  auto url = boost::urls::parse_uri(text);
  if (!url || (url->scheme() != "http" && url->scheme() != "https") || url->host().empty()) {
    return absl::InvalidArgumentError(absl::StrCat("not an http(s) URL: ", text));
  }
  Target t;
  t.tls = url->scheme() == "https";
  t.host = std::string(url->encoded_host());
  t.port = url->has_port() ? std::string(url->port()) : (t.tls ? "443" : "80");
  t.target = std::string(url->encoded_path());
  if (t.target.empty()) t.target = "/";
  if (url->has_query()) absl::StrAppend(&t.target, "?", std::string(url->encoded_query()));
  t.host_header = url->has_port() ? absl::StrCat(t.host, ":", t.port) : t.host;
  t.dial_host = t.host;
  if (t.dial_host.size() > 2 && t.dial_host.front() == '[') t.dial_host = t.dial_host.substr(1, t.dial_host.size() - 2);
  t.origin = absl::StrCat(t.tls ? "https://" : "http://", t.host, ":", t.port);
  return t;
}

}  // namespace

namespace {

// True when the server closed an idle connection or sent something nobody asked for.
bool Stale(tcp::socket& socket, const beast::flat_buffer& buffer, SSL* tls) {
  if (buffer.size() > 0) return true;
  if (tls != nullptr && SSL_pending(tls) > 0) return true;
  pollfd p{socket.native_handle(), POLLIN, 0};
  return ::poll(&p, 1, 0) != 0;
}

void CloseSocket(tcp::socket& socket) {
  beast::error_code ec;
  socket.shutdown(tcp::socket::shutdown_both, ec);
  socket.close(ec);
}

}  // namespace

namespace {

// Idle keep-alive connections by origin, for reuse (`Ptr` points to a connection with `idle_since`,
// Stale() and Close()). Thread-safe.
template <class Ptr>
class IdleList {
 public:
  IdleList(size_t max_idle_per_origin, std::chrono::milliseconds idle_timeout)
      : max_idle_(std::max<size_t>(1, max_idle_per_origin)), idle_timeout_(idle_timeout) {}
  ~IdleList() { CloseAll(); }

  // A usable idle connection to `origin`, or null. Newest first: the most recently used connection
  // is the least likely to be closed; expired or stale ones met on the way are closed.
  Ptr Take(const std::string& origin) {
    std::vector<Ptr> dropped;
    Ptr found;
    {
      std::lock_guard lock(mu_);
      for (auto& [o, list] : idle_) {
        if (o != origin) continue;
        while (!list.empty() && !found) {
          Ptr c = std::move(list.back());
          list.pop_back();
          if (Clock::now() - c->idle_since > idle_timeout_ || c->Stale()) {
            dropped.push_back(std::move(c));
          } else {
            found = std::move(c);
          }
        }
      }
    }
    for (auto& c : dropped) c->Close();
    return found;
  }
  // Keeps `c` for reuse, or closes it (too many idle ones, or CloseAll() was called).
  void Put(const std::string& origin, Ptr c) {
    c->idle_since = Clock::now();
    {
      std::lock_guard lock(mu_);
      if (!closed_) {
        auto it = std::find_if(idle_.begin(), idle_.end(), [&](const auto& e) { return e.first == origin; });
        if (it == idle_.end()) it = idle_.emplace(idle_.end(), origin, std::vector<Ptr>());
        // Expired connections are dropped here too, so an origin that went quiet holds no sockets long.
        auto& list = it->second;
        while (!list.empty() && Clock::now() - list.front()->idle_since > idle_timeout_) {
          list.front()->Close();
          list.erase(list.begin());
        }
        if (list.size() < max_idle_) return list.push_back(std::move(c));
      }
    }
    c->Close();
  }
  // Closes the idle connections to `origin` (the server closed one: likely all of them).
  void Drop(const std::string& origin) {
    std::vector<Ptr> dropped;
    {
      std::lock_guard lock(mu_);
      for (auto& [o, list] : idle_) {
        if (o == origin) dropped.swap(list);
      }
    }
    for (auto& c : dropped) c->Close();
  }
  // Closes every idle connection; later Put()s close theirs.
  void CloseAll() {
    std::vector<std::pair<std::string, std::vector<Ptr>>> all;
    {
      std::lock_guard lock(mu_);
      closed_ = true;
      all.swap(idle_);
    }
    for (auto& [origin, list] : all) {
      for (auto& c : list) c->Close();
    }
  }
  void CountOpened() {
    std::lock_guard lock(mu_);
    ++opened_;
  }
  uint64_t opened() const {
    std::lock_guard lock(mu_);
    return opened_;
  }

 private:
  const size_t max_idle_;
  const std::chrono::milliseconds idle_timeout_;
  mutable std::mutex mu_;
  bool closed_ = false;
  std::vector<std::pair<std::string, std::vector<Ptr>>> idle_;  // by origin
  uint64_t opened_ = 0;
};

}  // namespace

// One open connection: its own io_context (run by one thread at a time, for the duration of each
// operation), the stream, and the read buffer that outlives a response.
struct HttpConnectionPool::Connection {
  net::io_context io;
  std::unique_ptr<net::ssl::context> ssl_ctx;
  std::unique_ptr<beast::tcp_stream> tcp;                     // plain http
  std::unique_ptr<beast::ssl_stream<beast::tcp_stream>> tls;  // or https
  beast::flat_buffer buffer;
  Clock::time_point idle_since;

  beast::tcp_stream& lowest() { return tls ? beast::get_lowest_layer(*tls) : *tcp; }
  void Close() { CloseSocket(lowest().socket()); }
  bool Stale() { return mcp::Stale(lowest().socket(), buffer, tls ? tls->native_handle() : nullptr); }
};

// A connection of AsyncHttpPool: a plain socket on the pool's executor, driven without Beast's
// composed operations and per-operation timers (see AsyncExchangeOp). The deadline of what the
// connection does is enforced by one timer per connection, re-armed only when it would fire too
// late: a steady stream of exchanges costs no timer system call each. A late exchange is stopped
// by shutting the socket down (its pending operation then ends) and sees timed_out(). The
// socket's operations are started under `mu_`, so that the timer's handler, which may run on
// another I/O thread, never races them.
struct AsyncHttpPool::Connection : std::enable_shared_from_this<AsyncHttpPool::Connection> {
  explicit Connection(const net::any_io_executor& executor) : socket(executor), timer_(executor) {}
  tcp::socket socket;
  beast::flat_buffer buffer;  // what was read and not parsed yet; outlives an exchange
  Clock::time_point idle_since;

  // Bounds what the connection does from now on by `d` (time_point::max(): unbounded).
  void SetDeadline(Clock::time_point d) {
    std::lock_guard lock(mu_);
    deadline_ = d;
    if (d == Clock::time_point::max() || closed_ || (armed_ && armed_for_ <= d)) return;
    Arm(d);
  }
  // Runs `start` (which starts an operation of the socket) unless the deadline passed or the
  // connection was closed; false when it did not run.
  template <class Start>
  bool Run(Start&& start) {
    std::lock_guard lock(mu_);
    if (timed_out_ || closed_) return false;
    start();
    return true;
  }
  bool timed_out() {
    std::lock_guard lock(mu_);
    return timed_out_;
  }
  void Close() {
    std::lock_guard lock(mu_);
    closed_ = true;
    timer_.cancel();
    CloseSocket(socket);
  }
  bool Stale() { return mcp::Stale(socket, buffer, nullptr); }

 private:
  void Arm(Clock::time_point d) {
    armed_ = true;
    armed_for_ = d;
    timer_.expires_at(d);  // a wait for a later expiry ends with operation_aborted
    timer_.async_wait([w = weak_from_this()](beast::error_code ec) {
      if (std::shared_ptr<Connection> c = w.lock(); c != nullptr && ec != net::error::operation_aborted) c->OnTimer();
    });
  }
  void OnTimer() {
    std::lock_guard lock(mu_);
    const Clock::time_point now = Clock::now();
    if (closed_ || timer_.expiry() > now) return;  // re-armed meanwhile: that wait takes over
    armed_ = false;
    if (deadline_ == Clock::time_point::max()) return;
    if (now < deadline_) return Arm(deadline_);
    timed_out_ = true;
    beast::error_code ignored;
    socket.cancel(ignored);                         // a connect in progress
    ::shutdown(socket.native_handle(), SHUT_RDWR);  // reads end at once, writes fail
  }

  net::steady_timer timer_;
  std::mutex mu_;
  Clock::time_point deadline_ = Clock::time_point::max();
  bool armed_ = false;
  Clock::time_point armed_for_;
  bool timed_out_ = false;
  bool closed_ = false;
};

namespace {

using Connection = HttpConnectionPool::Connection;

// The response a parser holds, as callers get it (header names lower-cased). Unless the caller
// already stopped the exchange, on_progress sees the whole body once more.
HttpResult TakeResult(http::response_parser<http::string_body>& parser, const HttpRequest& req, bool stopped_early) {
  HttpResult result;
  result.status = static_cast<int>(parser.get().result_int());
  for (const auto& field : parser.get()) {
    result.headers.emplace_back(absl::AsciiStrToLower(std::string(field.name_string())), std::string(field.value()));
  }
  result.body = std::move(parser.get().body());
  if (!stopped_early && req.on_progress) req.on_progress(result.body);
  return result;
}

absl::Status Failed(const char* doing, const HttpRequest& req, const beast::error_code& ec) {
  if (ec == beast::error::timeout) {
    return absl::DeadlineExceededError(
        absl::StrCat(doing, req.url, ": no progress within the ", req.timeout.count(), " ms the exchange may take"));
  }
  return absl::UnavailableError(absl::StrCat(doing, req.url, ": ", ec.message()));
}

// Runs `c.io` until `finished()` (its operations were started on it). With `req.cancel` set, the
// connection's operations are cancelled (operation_aborted) soon after it turns true.
template <class Finished>
void Drive(Connection& c, const HttpRequest& req, Finished finished) {
  if (req.cancel == nullptr) {
    c.io.run();
    return;
  }
  bool cancelled = false;
  while (!finished() && !c.io.stopped()) {
    if (!cancelled && req.cancel->load()) {
      cancelled = true;
      c.lowest().cancel();
    }
    c.io.run_for(std::chrono::milliseconds(100));
  }
}

// Runs one asynchronous operation of `c`, started by `start(handler)`, to its end. Blocking Beast
// calls ignore the stream's expiry, so every step is asynchronous: the tcp_stream's timer
// (expires_at `deadline`) then closes a connection that stalls, and the operation ends with
// beast::error::timeout.
template <class Start>
beast::error_code Await(Connection& c, const HttpRequest& req, Clock::time_point deadline, Start start) {
  std::optional<beast::error_code> result;
  c.lowest().expires_at(deadline);
  c.io.restart();
  start([&result](beast::error_code ec, auto&&...) { result = ec; });
  Drive(c, req, [&result] { return result.has_value(); });
  return result.value_or(net::error::operation_aborted);
}

absl::StatusOr<std::unique_ptr<Connection>> Dial(const Target& t, const HttpRequest& req, Clock::time_point deadline) {
  auto c = std::make_unique<Connection>();
  tcp::resolver resolver(c->io);
  beast::error_code ec;
  auto endpoints = resolver.resolve(t.dial_host, t.port, ec);
  if (ec) return absl::UnavailableError(absl::StrCat("resolving ", t.host, ": ", ec.message()));
  if (!t.tls) {
    c->tcp = std::make_unique<beast::tcp_stream>(c->io);
  } else {
    c->ssl_ctx = std::make_unique<net::ssl::context>(net::ssl::context::tls_client);
    c->ssl_ctx->set_default_verify_paths();
    c->ssl_ctx->set_verify_mode(net::ssl::verify_peer);
    c->tls = std::make_unique<beast::ssl_stream<beast::tcp_stream>>(c->io, *c->ssl_ctx);
    if (!SSL_set_tlsext_host_name(c->tls->native_handle(), t.dial_host.c_str())) {
      return absl::UnavailableError(absl::StrCat("TLS SNI for ", t.host, " failed"));
    }
    c->tls->set_verify_callback(net::ssl::host_name_verification(t.dial_host));
  }
  ec = Await(*c, req, deadline, [&](auto handler) { c->lowest().async_connect(endpoints, std::move(handler)); });
  if (ec) return Failed("connecting to ", req, ec);
  if (c->tls) {
    ec = Await(*c, req, deadline,
               [&](auto handler) { c->tls->async_handshake(net::ssl::stream_base::client, std::move(handler)); });
    if (ec) return Failed("TLS handshake with ", req, ec);
  }
  // Requests are small and answered at once: no Nagle delay on their last segment.
  c->lowest().socket().set_option(tcp::no_delay(true), ec);
  return c;
}

struct Outcome {
  absl::StatusOr<HttpResult> result = absl::UnknownError("not run");
  bool not_received = false;  // the request provably did not reach the server
};

// One exchange on an open connection, as a chain of asynchronous operations on the stream's
// executor, bounded by `deadline` (the stream's expiry). `on_result` gets the response (or the
// error) as soon as it is known: at its end, or when `req.on_progress` stops it early; what is left
// of a response stopped early is then drained for a short while (the server usually ends it right
// after the awaited message). `on_end` says whether the connection may serve another exchange: the
// response was read to its end and allowed keep-alive (no `Connection: close`, HTTP/1.1). It runs
// before `on_result` when nothing is left to drain, else after the drain. `stream`, `lowest`,
// `buffer` and `req` must outlive the operation; `on_end` may hold what owns them.
template <class Stream>
class ExchangeOp : public std::enable_shared_from_this<ExchangeOp<Stream>> {
 public:
  ExchangeOp(Stream& stream, beast::tcp_stream& lowest, beast::flat_buffer& buffer, const HttpRequest& req,
             const Target& t, bool reused, Clock::time_point deadline, std::function<void(Outcome)> on_result,
             std::function<void(bool reusable)> on_end)
      : stream_(stream),
        lowest_(lowest),
        buffer_(buffer),
        req_(req),
        reused_(reused),
        deadline_(deadline),
        on_result_(std::move(on_result)),
        on_end_(std::move(on_end)) {
    request_ = http::request<http::string_body>{http::string_to_verb(req.method), t.target, 11};
    request_.set(http::field::host, t.host_header);
    request_.set(http::field::user_agent, "mandate-mcp-gateway");
    for (const auto& [k, v] : req.headers) request_.set(k, v);
    if (!req.body.empty() || req.method == "POST") {
      request_.body() = req.body;
      request_.prepare_payload();
    }
    parser_.body_limit(req.body_limit);
  }
  ExchangeOp(const ExchangeOp&) = delete;
  ExchangeOp& operator=(const ExchangeOp&) = delete;

  void Start() {
    lowest_.expires_at(deadline_);
    http::async_write(stream_, request_,
                      [self = this->shared_from_this()](beast::error_code ec, size_t) { self->Written(ec); });
  }

 private:
  void Written(const beast::error_code& ec) {
    if (ec) {
      // A reused connection the server had closed: it never read this request.
      return Fail("sending to ", ec, reused_ && ec != beast::error::timeout && ec != net::error::operation_aborted);
    }
    http::async_read_header(stream_, buffer_, parser_, [self = this->shared_from_this()](beast::error_code ec, size_t) {
      // The connection ended before any byte of a response. The server may still have acted on
      // the request, so only requests without effects count as not received.
      if (ec) {
        const std::string& m = self->req_.method;
        return self->Fail("reading from ", ec,
                          self->reused_ && ec == http::error::end_of_stream && (m == "GET" || m == "HEAD"));
      }
      self->ReadBody();
    });
  }

  void ReadBody() {
    if (parser_.is_done()) return Complete(false);
    http::async_read_some(stream_, buffer_, parser_, [self = this->shared_from_this()](beast::error_code ec, size_t) {
      if (ec) return self->Fail("reading from ", ec, false);
      if (self->req_.on_progress && self->req_.on_progress(self->parser_.get().body())) return self->Complete(true);
      self->ReadBody();
    });
  }

  void Complete(bool stopped_early) {
    const bool keep_alive = parser_.get().keep_alive();
    Outcome out;
    out.result = TakeResult(parser_, req_, stopped_early);
    if (!keep_alive || parser_.is_done()) {
      // The connection is free before the caller hears of the response (and may start another).
      on_end_(keep_alive);
      return on_result_(std::move(out));
    }
    on_result_(std::move(out));
    lowest_.expires_at(std::min(deadline_, Clock::now() + std::chrono::milliseconds(20)));
    Drain();
  }

  void Drain() {
    if (parser_.is_done()) return on_end_(true);
    http::async_read_some(stream_, buffer_, parser_, [self = this->shared_from_this()](beast::error_code ec, size_t) {
      if (ec) return self->on_end_(false);
      self->Drain();
    });
  }

  void Fail(const char* doing, const beast::error_code& ec, bool not_received) {
    Outcome out;
    out.result = Failed(doing, req_, ec);
    out.not_received = not_received;
    on_result_(std::move(out));
    on_end_(false);
  }

  Stream& stream_;
  beast::tcp_stream& lowest_;
  beast::flat_buffer& buffer_;
  const HttpRequest& req_;
  const bool reused_;
  const Clock::time_point deadline_;
  std::function<void(Outcome)> on_result_;
  std::function<void(bool)> on_end_;
  http::request<http::string_body> request_;
  http::response_parser<http::string_body> parser_;
};

// Starts an ExchangeOp; an error (with `on_result` and `on_end` not called) when the request cannot
// even be formed (Beast reports some failures only as exceptions).
template <class Stream>
absl::Status StartExchange(Stream& stream, beast::tcp_stream& lowest, beast::flat_buffer& buffer,
                           const HttpRequest& req, const Target& t, bool reused, Clock::time_point deadline,
                           std::function<void(Outcome)> on_result, std::function<void(bool)> on_end) {
  try {
    std::make_shared<ExchangeOp<Stream>>(stream, lowest, buffer, req, t, reused, deadline, std::move(on_result),
                                         std::move(on_end))
        ->Start();
    return absl::OkStatus();
  } catch (const std::exception& e) {
    return absl::UnavailableError(absl::StrCat(req.url, ": ", e.what()));
  }
}

// Runs one exchange on `c` to its end (drain included), blocking the calling thread.
Outcome Run(Connection& c, const HttpRequest& req, const Target& t, bool reused, Clock::time_point deadline,
            bool* reusable) {
  Outcome out;
  bool ended = false;
  *reusable = false;
  auto on_result = [&out](Outcome o) { out = std::move(o); };
  auto on_end = [&ended, reusable](bool r) {
    *reusable = r;
    ended = true;
  };
  c.io.restart();
  absl::Status started = c.tls ? StartExchange(*c.tls, c.lowest(), c.buffer, req, t, reused, deadline, on_result, on_end)
                               : StartExchange(*c.tcp, c.lowest(), c.buffer, req, t, reused, deadline, on_result, on_end);
  if (!started.ok()) {
    out.result = started;
    return out;
  }
  Drive(c, req, [&ended] { return ended; });
  if (!ended) out.result = Failed("reading from ", req, net::error::operation_aborted);
  return out;
}

absl::StatusOr<std::unique_ptr<Connection>> DialSafely(const Target& t, const HttpRequest& req,
                                                       Clock::time_point deadline) {
  try {
    return Dial(t, req, deadline);
  } catch (const std::exception& e) {
    // Asio reports some failures (e.g. TLS context set-up) only as exceptions.
    return absl::UnavailableError(absl::StrCat(req.url, ": ", e.what()));
  }
}

}  // namespace

absl::StatusOr<HttpResult> HttpFetch(const HttpRequest& req) {
  absl::StatusOr<Target> t = ParseTarget(req.url);
  if (!t.ok()) return t.status();
  const Clock::time_point deadline = Clock::now() + req.timeout;
  absl::StatusOr<std::unique_ptr<Connection>> c = DialSafely(*t, req, deadline);
  if (!c.ok()) return c.status();
  bool reusable = false;
  Outcome out = Run(**c, req, *t, /*reused=*/false, deadline, &reusable);
  (*c)->Close();
  return std::move(out.result);
}

struct HttpConnectionPool::Idle : IdleList<std::unique_ptr<Connection>> {
  using IdleList::IdleList;
};

HttpConnectionPool::HttpConnectionPool(size_t max_idle_per_origin, std::chrono::milliseconds idle_timeout)
    : idle_(std::make_unique<Idle>(max_idle_per_origin, idle_timeout)) {}

HttpConnectionPool::~HttpConnectionPool() = default;

uint64_t HttpConnectionPool::connections_opened() const { return idle_->opened(); }

absl::StatusOr<HttpResult> HttpConnectionPool::Fetch(const HttpRequest& req) {
  absl::StatusOr<Target> t = ParseTarget(req.url);
  if (!t.ok()) return t.status();
  const Clock::time_point deadline = Clock::now() + req.timeout;
  for (int attempt = 0;; ++attempt) {
    std::unique_ptr<Connection> c = attempt == 0 ? idle_->Take(t->origin) : nullptr;
    const bool reused = c != nullptr;
    if (!reused) {
      absl::StatusOr<std::unique_ptr<Connection>> dialed = DialSafely(*t, req, deadline);
      if (!dialed.ok()) return dialed.status();
      c = std::move(*dialed);
      idle_->CountOpened();
    }
    bool reusable = false;
    Outcome out = Run(*c, req, *t, reused, deadline, &reusable);
    if (reusable) {
      idle_->Put(t->origin, std::move(c));
    } else {
      c->Close();
    }
    if (!out.result.ok() && out.not_received) {
      // The server closed the connection while it sat in the pool; its other idle connections are
      // likely gone too (e.g. it restarted). One more try, on a new connection.
      idle_->Drop(t->origin);
      continue;
    }
    return std::move(out.result);
  }
}

// ---- AsyncHttpPool ----

struct AsyncHttpPool::State {
  State(net::any_io_executor e, size_t max_idle_per_origin, std::chrono::milliseconds idle_timeout)
      : executor(std::move(e)), idle(max_idle_per_origin, idle_timeout) {}
  const net::any_io_executor executor;
  IdleList<std::shared_ptr<Connection>> idle;
  // The last URL parsed and its Target: an upstream's calls all go to one URL.
  std::mutex target_mu;
  std::string last_url;
  std::shared_ptr<const Target> last_target;
};

namespace {

// One AsyncHttpPool::Fetch: what a retry on a new connection needs.
struct AsyncFetch {
  std::shared_ptr<AsyncHttpPool::State> pool;
  HttpRequest req;
  std::shared_ptr<const Target> target;
  Clock::time_point deadline;
  AsyncHttpPool::Done done;
};

// Whether `s` may be sent as a header name (an HTTP token) or value (no line breaks or NUL).
bool HeaderToken(std::string_view s) {
  if (s.empty()) return false;
  for (unsigned char ch : s) {
    if (ch <= 0x20 || ch >= 0x7f ||
        std::string_view("\"(),/:;<=>?@[\\]{}").find(static_cast<char>(ch)) != std::string_view::npos) {
      return false;
    }
  }
  return true;
}
bool HeaderValue(std::string_view s) {
  return s.find_first_of(std::string_view("\r\n\0", 3)) == std::string_view::npos;
}

// The request as it goes on the wire, in one piece (one send). Header fields as Beast's set()
// would keep them: a later field replaces an earlier one of the same name. Content-Length as
// prepare_payload() sets it: for a body, and for every POST.
absl::StatusOr<std::string> SerializeRequest(const HttpRequest& req, const Target& t) {
  if (!HeaderToken(req.method)) return absl::InvalidArgumentError(absl::StrCat("invalid HTTP method for ", req.url));
  std::vector<std::pair<std::string_view, std::string_view>> fields;
  fields.reserve(req.headers.size() + 3);
  auto set = [&fields](std::string_view k, std::string_view v) {
    for (auto it = fields.begin(); it != fields.end(); ++it) {
      if (absl::EqualsIgnoreCase(absl::string_view(it->first.data(), it->first.size()),
                                 absl::string_view(k.data(), k.size()))) {
        fields.erase(it);
        break;
      }
    }
    fields.emplace_back(k, v);
  };
  set("Host", t.host_header);
  set("User-Agent", "mandate-mcp-gateway");
  for (const auto& [k, v] : req.headers) {
    if (!HeaderToken(k) || !HeaderValue(v)) {
      return absl::InvalidArgumentError(absl::StrCat("header ", k, " of a request to ", req.url, " cannot be sent"));
    }
    set(k, v);
  }
  const std::string length = std::to_string(req.body.size());
  if (!req.body.empty() || req.method == "POST") set("Content-Length", length);
  std::string out;
  size_t size = req.method.size() + t.target.size() + req.body.size() + 16;
  for (const auto& [k, v] : fields) size += k.size() + v.size() + 4;
  out.reserve(size);
  absl::StrAppend(&out, req.method, " ", t.target, " HTTP/1.1\r\n");
  for (const auto& [k, v] : fields) {
    out.append(k);
    out.append(": ");
    out.append(v);
    out.append("\r\n");
  }
  out += "\r\n";
  out += req.body;
  return out;
}

void AsyncAttempt(const std::shared_ptr<AsyncFetch>& f, bool may_reuse);

// One exchange of AsyncHttpPool on an open connection, with the semantics of ExchangeOp (the
// result as soon as it is known, the drain of a response stopped early, reuse only after a
// complete keep-alive response) at a fraction of the cost: the request goes out in one
// non-blocking send (the rest, if the socket does not take it all, asynchronously), the response
// is read in large pieces straight into the parser, and the only completions are the reads'.
class AsyncExchangeOp : public std::enable_shared_from_this<AsyncExchangeOp> {
 public:
  using Conn = AsyncHttpPool::Connection;
  AsyncExchangeOp(std::shared_ptr<AsyncFetch> f, std::shared_ptr<Conn> c, bool reused, std::string wire)
      : f_(std::move(f)), c_(std::move(c)), reused_(reused), out_(std::move(wire)) {
    parser_.body_limit(f_->req.body_limit);
    parser_.eager(true);
  }

  void Start() {
    c_->SetDeadline(f_->deadline);
    beast::error_code ec;
    size_t sent = 0;
    bool pending = false;
    const bool ran = c_->Run([&] {
      sent = c_->socket.write_some(net::buffer(out_), ec);
      if (ec == net::error::would_block || ec == net::error::try_again) ec = {};
      if (ec || sent == out_.size()) return;
      pending = true;
      net::async_write(c_->socket, net::buffer(out_.data() + sent, out_.size() - sent),
                       [self = shared_from_this()](beast::error_code ec, size_t) { self->Written(ec); });
    });
    if (pending) return;
    if (!ran || ec) {
      // Reported as a completion, never from within Fetch.
      return net::post(f_->pool->executor, [self = shared_from_this(), ec] {
        self->Written(ec ? ec : beast::error_code(net::error::operation_aborted));
      });
    }
    Read();
  }

 private:
  static constexpr size_t kReadSize = 16 << 10;

  void Written(beast::error_code ec) {
    if (c_->timed_out()) ec = beast::error::timeout;
    if (ec) {
      // A reused connection the server had closed: it never read this request.
      return Fail("sending to ", ec, reused_ && ec != beast::error::timeout && ec != net::error::operation_aborted);
    }
    Read();
  }

  void Read() {
    const bool ran = c_->Run([&] {
      c_->socket.async_read_some(c_->buffer.prepare(kReadSize),
                                 [self = shared_from_this()](beast::error_code ec, size_t n) { self->OnRead(ec, n); });
    });
    if (!ran) {
      net::post(f_->pool->executor, [self = shared_from_this()] { self->OnRead(net::error::operation_aborted, 0); });
    }
  }

  void OnRead(beast::error_code ec, size_t n) {
    if (c_->timed_out()) ec = beast::error::timeout;
    if (!ec) {
      c_->buffer.commit(n);
      while (c_->buffer.size() > 0 && !parser_.is_done()) {
        const size_t used = parser_.put(c_->buffer.data(), ec);
        c_->buffer.consume(used);
        if (ec == http::error::need_more) {
          ec = {};
          break;
        }
        if (ec || used == 0) break;
      }
    } else if (ec == net::error::eof) {
      // The server closed the connection: the end of a body delimited by it, else an error (as
      // Beast's reads say it).
      if (!parser_.got_some()) {
        ec = http::error::end_of_stream;
      } else {
        ec = {};
        parser_.put_eof(ec);
      }
    }
    if (draining_) {
      if (ec) return End(false);
      return parser_.is_done() ? End(true) : Read();
    }
    if (ec) {
      // The connection ended before any byte of a response. The server may still have acted on
      // the request, so only requests without effects count as not received.
      const std::string& m = f_->req.method;
      const bool header = !parser_.is_header_done();
      return Fail("reading from ", ec,
                  header && reused_ && ec == http::error::end_of_stream && (m == "GET" || m == "HEAD"));
    }
    if (!parser_.is_header_done()) return Read();
    if (parser_.is_done()) return Complete(false);
    if (f_->req.on_progress && f_->req.on_progress(parser_.get().body())) return Complete(true);
    Read();
  }

  void Complete(bool stopped_early) {
    const bool keep_alive = parser_.get().keep_alive();
    Outcome out;
    out.result = TakeResult(parser_, f_->req, stopped_early);
    if (!keep_alive || parser_.is_done()) {
      // The connection is free before the caller hears of the response (and may start another).
      End(keep_alive);
      return Result(std::move(out));
    }
    Result(std::move(out));
    // The rest of a response stopped early is drained for a short while.
    draining_ = true;
    c_->SetDeadline(std::min(f_->deadline, Clock::now() + std::chrono::milliseconds(20)));
    Read();
  }

  void Fail(const char* doing, const beast::error_code& ec, bool not_received) {
    Outcome out;
    out.result = Failed(doing, f_->req, ec);
    out.not_received = not_received;
    Result(std::move(out));
    End(false);
  }

  void Result(Outcome out) {
    if (!out.result.ok() && out.not_received) {
      // As HttpConnectionPool::Fetch: the server closed the pooled connection; one more try.
      f_->pool->idle.Drop(f_->target->origin);
      return AsyncAttempt(f_, false);
    }
    f_->done(std::move(out.result));
  }

  // The connection may serve another exchange (`reusable`) or is closed.
  void End(bool reusable) {
    c_->SetDeadline(Clock::time_point::max());
    if (reusable) {
      f_->pool->idle.Put(f_->target->origin, std::move(c_));
    } else {
      c_->Close();
    }
  }

  std::shared_ptr<AsyncFetch> f_;
  std::shared_ptr<Conn> c_;
  const bool reused_;
  bool draining_ = false;
  std::string out_;  // the serialized request
  http::response_parser<http::string_body> parser_;
};

void AsyncExchange(const std::shared_ptr<AsyncFetch>& f, std::shared_ptr<AsyncHttpPool::Connection> c, bool reused) {
  absl::StatusOr<std::string> wire = SerializeRequest(f->req, *f->target);
  if (!wire.ok()) {
    c->Close();
    return f->done(absl::UnavailableError(wire.status().message()));
  }
  std::make_shared<AsyncExchangeOp>(f, std::move(c), reused, std::move(*wire))->Start();
}

// Connects `c` to the first of `endpoints` (from `i` on) that accepts, within the deadline.
void AsyncConnect(const std::shared_ptr<AsyncFetch>& f, const std::shared_ptr<AsyncHttpPool::Connection>& c,
                  const std::shared_ptr<tcp::resolver::results_type>& endpoints, size_t i, beast::error_code last) {
  if (i >= endpoints->size() || c->timed_out()) {
    c->Close();
    return f->done(Failed("connecting to ", f->req, c->timed_out() ? beast::error::timeout : last));
  }
  const tcp::endpoint ep = std::next(endpoints->begin(), static_cast<std::ptrdiff_t>(i))->endpoint();
  const bool ran = c->Run([&] {
    beast::error_code ignored;
    c->socket.close(ignored);
    c->socket.async_connect(ep, [f, c, endpoints, i](beast::error_code ec) {
      if (ec) return AsyncConnect(f, c, endpoints, i + 1, ec);
      bool ok = c->Run([&] {
        // Requests are small and answered at once: no Nagle delay on their last segment.
        c->socket.set_option(tcp::no_delay(true), ec);
        ec = {};
        c->socket.non_blocking(true, ec);  // the first send of each request is tried at once
      });
      if (!ok || ec) return AsyncConnect(f, c, endpoints, endpoints->size(), ec);
      f->pool->idle.CountOpened();
      AsyncExchange(f, c, false);
    });
  });
  if (!ran) net::post(f->pool->executor, [f, c, endpoints] { AsyncConnect(f, c, endpoints, endpoints->size(), {}); });
}

void AsyncAttempt(const std::shared_ptr<AsyncFetch>& f, bool may_reuse) {
  if (std::shared_ptr<AsyncHttpPool::Connection> c = may_reuse ? f->pool->idle.Take(f->target->origin) : nullptr) {
    return AsyncExchange(f, std::move(c), true);
  }
  auto c = std::make_shared<AsyncHttpPool::Connection>(f->pool->executor);
  auto resolver = std::make_shared<tcp::resolver>(f->pool->executor);
  resolver->async_resolve(
      f->target->dial_host, f->target->port,
      [f, c, resolver](beast::error_code ec, const tcp::resolver::results_type& endpoints) {
        if (ec) return f->done(absl::UnavailableError(absl::StrCat("resolving ", f->target->host, ": ", ec.message())));
        c->SetDeadline(f->deadline);
        AsyncConnect(f, c, std::make_shared<tcp::resolver::results_type>(endpoints), 0, net::error::host_not_found);
      });
}

}  // namespace

AsyncHttpPool::AsyncHttpPool(net::any_io_executor executor, size_t max_idle_per_origin,
                             std::chrono::milliseconds idle_timeout)
    : state_(std::make_shared<State>(std::move(executor), max_idle_per_origin, idle_timeout)) {}

// Exchanges in flight hold the state; their connections are closed when they end.
AsyncHttpPool::~AsyncHttpPool() { state_->idle.CloseAll(); }

uint64_t AsyncHttpPool::connections_opened() const { return state_->idle.opened(); }

bool AsyncHttpPool::Supports(std::string_view url) {
  return absl::StartsWithIgnoreCase(absl::string_view(url.data(), url.size()), "http://");
}

void AsyncHttpPool::Fetch(HttpRequest request, Done done) {
  auto f = std::make_shared<AsyncFetch>();
  {
    std::lock_guard lock(state_->target_mu);
    if (state_->last_target != nullptr && request.url == state_->last_url) f->target = state_->last_target;
  }
  if (f->target == nullptr) {
    absl::StatusOr<Target> t = ParseTarget(request.url);
    if (!t.ok()) return done(t.status());
    f->target = std::make_shared<const Target>(std::move(*t));
    std::lock_guard lock(state_->target_mu);
    state_->last_url = request.url;
    state_->last_target = f->target;
  }
  if (f->target->tls) return done(absl::InvalidArgumentError(absl::StrCat("not a plain http URL: ", request.url)));
  f->pool = state_;
  f->deadline = Clock::now() + request.timeout;
  f->req = std::move(request);
  f->done = std::move(done);
  AsyncAttempt(f, true);
}

}  // namespace mandate::mcp
