#include "mcp/http_client.h"

#include <poll.h>

#include <algorithm>
#include <iterator>
#include <mutex>
#include <optional>

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
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
bool Stale(beast::tcp_stream& stream, const beast::flat_buffer& buffer, SSL* tls) {
  if (buffer.size() > 0) return true;
  if (tls != nullptr && SSL_pending(tls) > 0) return true;
  pollfd p{stream.socket().native_handle(), POLLIN, 0};
  return ::poll(&p, 1, 0) != 0;
}

void CloseSocket(beast::tcp_stream& stream) {
  beast::error_code ec;
  stream.socket().shutdown(tcp::socket::shutdown_both, ec);
  stream.socket().close(ec);
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
  void Close() { CloseSocket(lowest()); }
  bool Stale() { return mcp::Stale(lowest(), buffer, tls ? tls->native_handle() : nullptr); }
};

// A connection of AsyncHttpPool: plain http on the pool's executor.
struct AsyncHttpPool::Connection {
  explicit Connection(const net::any_io_executor& executor) : stream(executor) {}
  beast::tcp_stream stream;
  beast::flat_buffer buffer;
  Clock::time_point idle_since;

  void Close() { CloseSocket(stream); }
  bool Stale() { return mcp::Stale(stream, buffer, nullptr); }
};

namespace {

using Connection = HttpConnectionPool::Connection;

absl::Status Failed(const char* doing, const HttpRequest& req, const beast::error_code& ec) {
  if (ec == beast::error::timeout) {
    return absl::DeadlineExceededError(absl::StrCat(doing, req.url, ": no progress within the ",
                                                    req.timeout.count(), " ms the exchange may take"));
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
    HttpResult result;
    result.status = static_cast<int>(parser_.get().result_int());
    for (const auto& f : parser_.get()) {
      result.headers.emplace_back(absl::AsciiStrToLower(std::string(f.name_string())), std::string(f.value()));
    }
    const bool keep_alive = parser_.get().keep_alive();
    result.body = std::move(parser_.get().body());
    if (!stopped_early && req_.on_progress) req_.on_progress(result.body);
    Outcome out;
    out.result = std::move(result);
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
};

namespace {

// One AsyncHttpPool::Fetch: what a retry on a new connection needs.
struct AsyncFetch {
  std::shared_ptr<AsyncHttpPool::State> pool;
  HttpRequest req;
  Target target;
  Clock::time_point deadline;
  AsyncHttpPool::Done done;
};

void AsyncAttempt(const std::shared_ptr<AsyncFetch>& f, bool may_reuse);

void AsyncExchange(const std::shared_ptr<AsyncFetch>& f, std::shared_ptr<AsyncHttpPool::Connection> c, bool reused) {
  AsyncHttpPool::Connection& conn = *c;
  auto on_result = [f, reused](Outcome out) {
    if (!out.result.ok() && out.not_received) {
      // As HttpConnectionPool::Fetch: the server closed the pooled connection; one more try.
      f->pool->idle.Drop(f->target.origin);
      return AsyncAttempt(f, false);
    }
    f->done(std::move(out.result));
  };
  auto on_end = [pool = f->pool, origin = f->target.origin, c = std::move(c)](bool reusable) mutable {
    if (reusable) {
      pool->idle.Put(origin, std::move(c));
    } else {
      c->Close();
    }
  };
  absl::Status s = StartExchange(conn.stream, conn.stream, conn.buffer, f->req, f->target, reused, f->deadline,
                                 std::move(on_result), std::move(on_end));
  if (!s.ok()) {
    conn.Close();
    f->done(s);
  }
}

void AsyncAttempt(const std::shared_ptr<AsyncFetch>& f, bool may_reuse) {
  if (std::shared_ptr<AsyncHttpPool::Connection> c = may_reuse ? f->pool->idle.Take(f->target.origin) : nullptr) {
    return AsyncExchange(f, std::move(c), true);
  }
  auto c = std::make_shared<AsyncHttpPool::Connection>(f->pool->executor);
  auto resolver = std::make_shared<tcp::resolver>(f->pool->executor);
  resolver->async_resolve(
      f->target.dial_host, f->target.port,
      [f, c, resolver](beast::error_code ec, const tcp::resolver::results_type& endpoints) {
        if (ec) return f->done(absl::UnavailableError(absl::StrCat("resolving ", f->target.host, ": ", ec.message())));
        c->stream.expires_at(f->deadline);
        c->stream.async_connect(endpoints, [f, c](beast::error_code ec, const tcp::endpoint&) {
          if (ec) return f->done(Failed("connecting to ", f->req, ec));
          // Requests are small and answered at once: no Nagle delay on their last segment.
          c->stream.socket().set_option(tcp::no_delay(true), ec);
          f->pool->idle.CountOpened();
          AsyncExchange(f, c, false);
        });
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
  absl::StatusOr<Target> t = ParseTarget(request.url);
  if (!t.ok()) return done(t.status());
  if (t->tls) return done(absl::InvalidArgumentError(absl::StrCat("not a plain http URL: ", request.url)));
  auto f = std::make_shared<AsyncFetch>();
  f->pool = state_;
  f->deadline = Clock::now() + request.timeout;
  f->req = std::move(request);
  f->target = std::move(*t);
  f->done = std::move(done);
  AsyncAttempt(f, true);
}

}  // namespace mandate::mcp
