#include "mcp/http_client.h"

#include <poll.h>

#include <algorithm>
#include <iterator>
#include <optional>

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <boost/url/parse.hpp>

#include "absl/strings/ascii.h"
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
  void Close() {
    beast::error_code ec;
    lowest().socket().shutdown(tcp::socket::shutdown_both, ec);
    lowest().socket().close(ec);
  }
  // True when the server closed the idle connection or sent something nobody asked for.
  bool Stale() {
    if (buffer.size() > 0) return true;
    if (tls && SSL_pending(tls->native_handle()) > 0) return true;
    pollfd p{lowest().socket().native_handle(), POLLIN, 0};
    return ::poll(&p, 1, 0) != 0;
  }
};

namespace {

using Connection = HttpConnectionPool::Connection;

// Runs one asynchronous operation of `c`, started by `start(handler)`, to its end. Blocking Beast
// calls ignore the stream's expiry, so every step of an exchange is asynchronous: the tcp_stream's
// timer (expires_at `deadline`) then closes a connection that stalls, and the operation ends with
// beast::error::timeout. With `req.cancel` set, the operation is also cancelled (operation_aborted)
// soon after it turns true.
template <class Start>
beast::error_code Await(Connection& c, const HttpRequest& req, Clock::time_point deadline, Start start) {
  std::optional<beast::error_code> result;
  c.lowest().expires_at(deadline);
  c.io.restart();
  start([&result](beast::error_code ec, auto&&...) { result = ec; });
  if (req.cancel == nullptr) {
    c.io.run();
  } else {
    bool cancelled = false;
    while (!result && !c.io.stopped()) {
      if (!cancelled && req.cancel->load()) {
        cancelled = true;
        c.lowest().cancel();
      }
      c.io.run_for(std::chrono::milliseconds(100));
    }
  }
  return result.value_or(net::error::operation_aborted);
}

absl::Status Failed(const char* doing, const HttpRequest& req, const beast::error_code& ec) {
  if (ec == beast::error::timeout) {
    return absl::DeadlineExceededError(absl::StrCat(doing, req.url, ": no progress within the ",
                                                    req.timeout.count(), " ms the exchange may take"));
  }
  return absl::UnavailableError(absl::StrCat(doing, req.url, ": ", ec.message()));
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
  bool reusable = false;     // the connection may serve another exchange
  bool not_received = false;  // the request provably did not reach the server
};

template <class Stream>
Outcome Exchange(Stream& stream, Connection& c, const HttpRequest& req, const Target& t, bool reused,
                 Clock::time_point deadline) {
  Outcome out;
  http::request<http::string_body> r{http::string_to_verb(req.method), t.target, 11};
  r.set(http::field::host, t.host_header);
  r.set(http::field::user_agent, "mandate-mcp-gateway");
  for (const auto& [k, v] : req.headers) r.set(k, v);
  if (!req.body.empty() || req.method == "POST") {
    r.body() = req.body;
    r.prepare_payload();
  }
  beast::error_code ec = Await(c, req, deadline, [&](auto handler) { http::async_write(stream, r, std::move(handler)); });
  if (ec) {
    // A reused connection the server had closed: it never read this request.
    out.not_received = reused && ec != beast::error::timeout && ec != net::error::operation_aborted;
    out.result = Failed("sending to ", req, ec);
    return out;
  }
  http::response_parser<http::string_body> parser;
  parser.body_limit(req.body_limit);
  ec = Await(c, req, deadline,
             [&](auto handler) { http::async_read_header(stream, c.buffer, parser, std::move(handler)); });
  if (ec) {
    // The connection ended before any byte of a response. The server may still have acted on the
    // request, so only requests without effects count as not received.
    out.not_received = reused && ec == http::error::end_of_stream && (req.method == "GET" || req.method == "HEAD");
    out.result = Failed("reading from ", req, ec);
    return out;
  }
  bool stopped_early = false;
  while (!parser.is_done()) {
    ec = Await(c, req, deadline,
               [&](auto handler) { http::async_read_some(stream, c.buffer, parser, std::move(handler)); });
    if (ec) {
      out.result = Failed("reading from ", req, ec);
      return out;
    }
    if (req.on_progress && req.on_progress(parser.get().body())) {
      stopped_early = true;
      break;
    }
  }
  HttpResult result;
  result.status = static_cast<int>(parser.get().result_int());
  for (const auto& f : parser.get()) {
    result.headers.emplace_back(absl::AsciiStrToLower(std::string(f.name_string())), std::string(f.value()));
  }
  const bool keep_alive = parser.get().keep_alive();
  result.body = std::move(parser.get().body());
  if (!stopped_early && req.on_progress) req.on_progress(result.body);
  if (keep_alive && stopped_early) {
    // What is left of a response the caller stopped early is read for a short while (the server
    // usually ends it right after the awaited message); the connection stays usable if it ends.
    const auto until = std::min(deadline, Clock::now() + std::chrono::milliseconds(20));
    while (!ec && !parser.is_done()) {
      ec = Await(c, req, until, [&](auto handler) { http::async_read_some(stream, c.buffer, parser, std::move(handler)); });
    }
  }
  out.reusable = keep_alive && !ec && parser.is_done();
  out.result = std::move(result);
  return out;
}

Outcome Run(Connection& c, const HttpRequest& req, const Target& t, bool reused, Clock::time_point deadline) {
  try {
    return c.tls ? Exchange(*c.tls, c, req, t, reused, deadline) : Exchange(*c.tcp, c, req, t, reused, deadline);
  } catch (const std::exception& e) {
    Outcome out;
    out.result = absl::UnavailableError(absl::StrCat(req.url, ": ", e.what()));
    return out;
  }
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
  Outcome out = Run(**c, req, *t, /*reused=*/false, deadline);
  (*c)->Close();
  return std::move(out.result);
}

HttpConnectionPool::HttpConnectionPool(size_t max_idle_per_origin, std::chrono::milliseconds idle_timeout)
    : max_idle_(std::max<size_t>(1, max_idle_per_origin)), idle_timeout_(idle_timeout) {}

HttpConnectionPool::~HttpConnectionPool() {
  for (auto& [origin, list] : idle_) {
    for (auto& c : list) c->Close();
  }
}

uint64_t HttpConnectionPool::connections_opened() const {
  std::lock_guard lock(mu_);
  return opened_;
}

std::unique_ptr<Connection> HttpConnectionPool::TakeIdle(const std::string& origin) {
  std::vector<std::unique_ptr<Connection>> dropped;
  std::unique_ptr<Connection> found;
  {
    std::lock_guard lock(mu_);
    for (auto& [o, list] : idle_) {
      if (o != origin) continue;
      // Newest first: the most recently used connection is the least likely to be closed.
      while (!list.empty() && !found) {
        std::unique_ptr<Connection> c = std::move(list.back());
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

void HttpConnectionPool::PutIdle(const std::string& origin, std::unique_ptr<Connection> connection) {
  connection->idle_since = Clock::now();
  {
    std::lock_guard lock(mu_);
    auto it = std::find_if(idle_.begin(), idle_.end(), [&](const auto& e) { return e.first == origin; });
    if (it == idle_.end()) {
      idle_.emplace_back(origin, std::vector<std::unique_ptr<Connection>>());
      it = std::prev(idle_.end());
    }
    // Expired connections are dropped here too, so an origin that went quiet holds no sockets long.
    auto& list = it->second;
    while (!list.empty() && Clock::now() - list.front()->idle_since > idle_timeout_) {
      list.front()->Close();
      list.erase(list.begin());
    }
    if (list.size() < max_idle_) {
      list.push_back(std::move(connection));
      return;
    }
  }
  connection->Close();
}

void HttpConnectionPool::DropIdle(const std::string& origin) {
  std::vector<std::unique_ptr<Connection>> dropped;
  {
    std::lock_guard lock(mu_);
    for (auto& [o, list] : idle_) {
      if (o == origin) dropped.swap(list);
    }
  }
  for (auto& c : dropped) c->Close();
}

absl::StatusOr<HttpResult> HttpConnectionPool::Fetch(const HttpRequest& req) {
  absl::StatusOr<Target> t = ParseTarget(req.url);
  if (!t.ok()) return t.status();
  const Clock::time_point deadline = Clock::now() + req.timeout;
  for (int attempt = 0;; ++attempt) {
    std::unique_ptr<Connection> c = attempt == 0 ? TakeIdle(t->origin) : nullptr;
    const bool reused = c != nullptr;
    if (!reused) {
      absl::StatusOr<std::unique_ptr<Connection>> dialed = DialSafely(*t, req, deadline);
      if (!dialed.ok()) return dialed.status();
      c = std::move(*dialed);
      std::lock_guard lock(mu_);
      ++opened_;
    }
    Outcome out = Run(*c, req, *t, reused, deadline);
    if (out.reusable) {
      PutIdle(t->origin, std::move(c));
    } else {
      c->Close();
    }
    if (!out.result.ok() && out.not_received) {
      // The server closed the connection while it sat in the pool; its other idle connections are
      // likely gone too (e.g. it restarted). One more try, on a new connection.
      DropIdle(t->origin);
      continue;
    }
    return std::move(out.result);
  }
}

}  // namespace mandate::mcp
