#include "server/http_server.h"

#include <atomic>
#include <deque>
#include <mutex>
#include <optional>
#include <thread>
#include <unordered_map>
#include <vector>

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>
#include <spdlog/spdlog.h>

#include "absl/strings/str_cat.h"

namespace mandate::server {

namespace beast = boost::beast;
namespace http = beast::http;
namespace net = boost::asio;
using tcp = net::ip::tcp;

class Session;
using Clock = std::chrono::steady_clock;

struct HttpServer::State {
  State(HttpOptions o, Handler h)
      : options(std::move(o)),
        handler(std::move(h)),
        ioc(std::max(1, options.threads)),
        acceptor(net::make_strand(ioc)) {}

  HttpOptions options;
  Handler handler;
  net::io_context ioc;
  tcp::acceptor acceptor;
  std::atomic<bool> stopping{false};
  std::atomic<int> active_sessions{0};
  std::mutex mu;  // guards sessions
  std::unordered_map<Session*, std::weak_ptr<Session>> sessions;

  void Accept(const std::shared_ptr<State>& self);
  void Drain(const std::shared_ptr<net::steady_timer>& timer, std::chrono::steady_clock::time_point deadline);
};

namespace {

Response JsonMessage(http::status status, const std::string& message) {
  Response res{status, 11};
  res.set(http::field::content_type, "application/json");
  boost::json::object body;
  body["message"] = message;
  res.body() = boost::json::serialize(body);
  return res;
}

// The status line and header fields of `res`, as HTTP/1.x puts them on the wire.
void AppendHead(const Response& res, std::string* out) {
  auto put = [out](beast::string_view v) { out->append(v.data(), v.size()); };
  out->append(res.version() == 10 ? "HTTP/1.0 " : "HTTP/1.1 ");
  out->append(std::to_string(res.result_int()));
  out->push_back(' ');
  put(res.reason());
  out->append("\r\n");
  for (const auto& field : res) {
    put(field.name_string());
    out->append(": ");
    put(field.value());
    out->append("\r\n");
  }
  out->append("\r\n");
}

}  // namespace

// One connection. All of its work runs on its strand (the stream's executor).
class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(tcp::socket socket, std::shared_ptr<HttpServer::State> state)
      : stream_(std::move(socket)), timer_(stream_.get_executor()), state_(std::move(state)) {
    ++state_->active_sessions;
    beast::error_code ec;
    const tcp::endpoint peer = stream_.socket().remote_endpoint(ec);
    if (!ec) peer_ = absl::StrCat(peer.address().to_string(), ":", peer.port());
    stream_.socket().non_blocking(true, ec);  // Write() tries a send at once; it must not block
  }
  ~Session() {
    {
      std::lock_guard<std::mutex> l(state_->mu);
      state_->sessions.erase(this);
    }
    if (counted_.exchange(false)) --state_->active_sessions;
  }

  void Start() {
    {
      std::lock_guard<std::mutex> l(state_->mu);
      state_->sessions.emplace(this, weak_from_this());
    }
    net::dispatch(stream_.get_executor(), [self = shared_from_this()] { self->ReadNext(); });
  }

  // Shutdown: a connection waiting for its next request is closed now; one with a request in
  // progress closes after answering it.
  void StopIfIdle() {
    net::post(stream_.get_executor(), [self = shared_from_this()] {
      if (self->idle_ || self->streaming_) self->Close();
    });
  }

 private:
  const HttpOptions& options() const { return state_->options; }

  // Timeouts: one timer per connection instead of Beast's per-operation ones, each of which is
  // armed, cancelled and completed once per read and per write (a timer system call and two extra
  // scheduler passes per request). The timer is set no later than the current deadline and at most
  // kTimerStep ahead, and is re-armed only when a deadline comes before it: a connection serving a
  // stream of requests costs one timer event per kTimerStep. Past the deadline the connection is
  // closed, as Beast's timeout does (its pending operation ends).
  static constexpr std::chrono::seconds kTimerStep{5};
  void SetDeadline(Clock::time_point d) {
    deadline_ = d;
    if (d == Clock::time_point::max() || closed_ || (timer_armed_ && timer_.expiry() <= d)) return;
    ArmTimer(std::min(d, Clock::now() + kTimerStep));
  }
  void ArmTimer(Clock::time_point at) {
    timer_armed_ = true;
    timer_.expires_at(at);  // a pending wait ends with operation_aborted
    timer_.async_wait([w = weak_from_this()](beast::error_code ec) {
      std::shared_ptr<Session> self = w.lock();
      if (self != nullptr && ec != net::error::operation_aborted) self->OnTimer();
    });
  }
  void OnTimer() {
    if (closed_) return;
    const Clock::time_point now = Clock::now();
    if (timer_.expiry() > now) return;  // re-armed meanwhile: that wait takes over
    timer_armed_ = false;
    if (deadline_ == Clock::time_point::max()) return;
    if (now >= deadline_) return Close();
    ArmTimer(std::min(deadline_, now + kTimerStep));
  }

  void ReadNext() {
    if (state_->stopping) return Close();
    idle_ = true;
    if (buffer_.size() > 0) return ReadHeader();  // a pipelined request is already buffered
    SetDeadline(Clock::now() + options().idle_timeout);
    stream_.async_read_some(buffer_.prepare(8192),
                            beast::bind_front_handler(&Session::OnFirstBytes, shared_from_this()));
  }

  void OnFirstBytes(beast::error_code ec, size_t n) {
    if (ec) return Close();  // idle timeout, peer closed, or shutdown
    buffer_.commit(n);
    ReadHeader();
  }

  void ReadHeader() {
    idle_ = false;
    parser_.emplace();
    parser_->header_limit(static_cast<uint32_t>(options().header_limit));
    parser_->body_limit(options().body_limit);
    // A request whose header is already buffered (a small request arrives in one segment) is
    // parsed here: Beast's composed read, its timer and its completion hops cost ~5k instructions.
    beast::error_code ec;
    buffer_.consume(parser_->put(buffer_.data(), ec));
    if (ec != http::error::need_more) return OnHeader(ec, 0);
    SetDeadline(Clock::now() + options().header_timeout);
    http::async_read_header(stream_, buffer_, *parser_,
                            beast::bind_front_handler(&Session::OnHeader, shared_from_this()));
  }

  void OnHeader(beast::error_code ec, size_t) {
    if (ec == http::error::body_limit) return TooLarge();
    if (ec == http::error::header_limit) {
      return Reject(http::status::request_header_fields_too_large,
                    absl::StrCat("request headers exceed ", options().header_limit, " bytes"));
    }
    if (ec) return ReadFailed(ec);
    if (auto len = parser_->content_length(); len && *len > options().body_limit) return TooLarge();
    if (beast::iequals(parser_->get()[http::field::expect], "100-continue")) {
      auto cont = std::make_shared<http::response<http::empty_body>>(http::status::continue_, 11);
      SetDeadline(Clock::now() + options().write_timeout);
      http::async_write(stream_, *cont, [self = shared_from_this(), cont](beast::error_code ec, size_t) {
        if (ec) return self->Close();
        self->ReadBody();
      });
      return;
    }
    ReadBody();
  }

  void ReadBody() {
    // The body, or as much of it as is buffered, is parsed here too; only a body still on its way
    // is read asynchronously.
    parser_->eager(true);
    while (!parser_->is_done() && buffer_.size() > 0) {
      beast::error_code ec;
      const size_t used = parser_->put(buffer_.data(), ec);
      buffer_.consume(used);
      if (ec == http::error::need_more) break;
      if (ec) return OnBody(ec, 0);
      if (used == 0) break;
    }
    if (parser_->is_done()) return OnBody({}, 0);
    SetDeadline(Clock::now() + options().body_timeout);
    http::async_read(stream_, buffer_, *parser_, beast::bind_front_handler(&Session::OnBody, shared_from_this()));
  }

  void OnBody(beast::error_code ec, size_t) {
    if (ec == http::error::body_limit) return TooLarge();
    if (ec) return ReadFailed(ec);
    Request req = parser_->release();
    keep_alive_ = req.keep_alive();
    req.set(kPeerAddressHeader, peer_);
    SetDeadline(Clock::time_point::max());
    state_->handler(std::move(req), Responder{shared_from_this(), std::make_shared<std::atomic<bool>>(false)});
  }

 public:
  // The Respond of one request (a named type so that StartStream can find its session).
  struct Responder {
    std::shared_ptr<Session> self;
    std::shared_ptr<std::atomic<bool>> answered;
    void operator()(Response res) const {
      if (answered->exchange(true)) return;
      // dispatch, not post: a handler that answers on the connection's own strand (every read)
      // starts the write at once instead of queueing it behind other connections' work.
      net::dispatch(self->stream_.get_executor(),
                    [self = self, res = std::move(res)]() mutable { self->Write(std::move(res)); });
    }
  };

  // Streamed responses: the header, then each queued piece in order, until Close or an error.
  void StreamHeader(std::string header) {
    streaming_ = true;
    StreamSend(std::move(header));
  }
  void StreamSend(std::string data) {
    if (closed_) return;
    stream_queue_.push_back(std::move(data));
    if (stream_queue_.size() == 1) StreamWriteNext();
  }
  void StreamClose() {
    stream_close_ = true;
    if (stream_queue_.empty()) Close();
  }
  bool closed() const { return closed_; }
  net::any_io_executor executor() { return stream_.get_executor(); }

 private:
  void StreamWriteNext() {
    SetDeadline(Clock::now() + options().write_timeout);
    net::async_write(stream_, net::buffer(stream_queue_.front()),
                     [self = shared_from_this()](beast::error_code ec, size_t) {
                       if (ec) return self->Close();
                       self->SetDeadline(Clock::time_point::max());
                       self->stream_queue_.pop_front();
                       if (!self->stream_queue_.empty()) return self->StreamWriteNext();
                       if (self->stream_close_) self->Close();
                     });
  }

 public:

  void ReadFailed(beast::error_code ec) {
    // A malformed request gets a 400; a timeout, reset or a peer that went away just ends.
    if (ec.category() == http::make_error_code(http::error::bad_method).category() &&
        ec != http::error::end_of_stream && ec != http::error::partial_message) {
      return Reject(http::status::bad_request, absl::StrCat("malformed HTTP request: ", ec.message()));
    }
    Close();
  }

  void TooLarge() {
    Reject(http::status::payload_too_large,
           absl::StrCat("request body exceeds the limit of ", options().body_limit, " bytes"));
  }

  // Answers a request the transport refuses, then closes the connection.
  void Reject(http::status status, const std::string& message) {
    if (options().on_rejected) options().on_rejected(static_cast<int>(status));
    keep_alive_ = false;
    reject_ = true;
    Write(JsonMessage(status, message));
  }

  void Write(Response res) {
    res.prepare_payload();  // before need_eof(): without a Content-Length a response would need EOF
    const bool close = !keep_alive_ || state_->stopping || res.need_eof();
    res.keep_alive(!close);
    // The whole response goes out as one buffer that the session keeps between requests: Beast's
    // generic serializer costs ~20k instructions per small response (callgrind), this a few hundred.
    out_.clear();
    AppendHead(res, &out_);
    out_.append(res.body());
    // Sent at once when the socket takes it whole (a small response nearly always): no completion
    // to wait for. What it does not take goes out asynchronously.
    beast::error_code ec;
    const size_t sent = stream_.socket().write_some(net::buffer(out_), ec);
    if (ec == net::error::would_block || ec == net::error::try_again) ec = {};
    if (ec) return Close();
    if (sent == out_.size()) {
      // A pipelined request already buffered is handled after this call returns, not inside it.
      if (!close && buffer_.size() > 0) {
        return net::post(stream_.get_executor(), [self = shared_from_this()] { self->ReadNext(); });
      }
      return Written(close);
    }
    SetDeadline(Clock::now() + options().write_timeout);
    net::async_write(stream_, net::buffer(out_.data() + sent, out_.size() - sent),
                     [self = shared_from_this(), close](beast::error_code ec, size_t) {
                       if (ec) return self->Close();
                       self->Written(close);
                     });
  }

  void Written(bool close) {
    if (!close) return ReadNext();
    if (reject_) return Linger();
    Close();
  }

  // After refusing a request whose body may still be arriving: stop sending, then read and drop
  // what the client still sends for a moment, so that closing does not reset the connection before
  // the client has read the response.
  void Linger() {
    beast::error_code ignored;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ignored);
    linger_deadline_ = std::chrono::steady_clock::now() + std::chrono::seconds(2);
    DrainSome();
  }

  void DrainSome() {
    if (std::chrono::steady_clock::now() >= linger_deadline_) return Close();
    SetDeadline(linger_deadline_);
    buffer_.clear();
    stream_.async_read_some(buffer_.prepare(size_t{64} << 10),
                            [self = shared_from_this()](beast::error_code ec, size_t) {
                              if (ec) return self->Close();
                              self->DrainSome();
                            });
  }

  void Close() {
    if (closed_) return;
    closed_ = true;
    timer_.cancel();
    // A closed stream's session may live on until its producer lets go; shutdown need not wait.
    if (streaming_ && counted_.exchange(false)) --state_->active_sessions;
    beast::error_code ignored;
    stream_.socket().shutdown(tcp::socket::shutdown_both, ignored);
    stream_.close();
  }

  beast::tcp_stream stream_;
  net::steady_timer timer_;  // see SetDeadline
  Clock::time_point deadline_ = Clock::time_point::max();
  bool timer_armed_ = false;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  std::string out_;  // the serialized response being written; its capacity is reused
  std::shared_ptr<HttpServer::State> state_;
  std::string peer_;  // the client's address
  bool streaming_ = false;
  bool stream_close_ = false;
  std::deque<std::string> stream_queue_;
  bool idle_ = true;  // waiting for the first byte of a request
  bool keep_alive_ = true;
  bool reject_ = false;
  std::atomic<bool> closed_{false};
  std::atomic<bool> counted_{true};  // in state_->active_sessions  // read by SessionStream::Send from other threads
  std::chrono::steady_clock::time_point linger_deadline_;
};

namespace {

class SessionStream : public ResponseStream {
 public:
  explicit SessionStream(std::shared_ptr<Session> session) : session_(std::move(session)) {}
  ~SessionStream() override { Close(); }
  bool Send(std::string data) override {
    if (session_->closed()) return false;
    net::post(session_->executor(), [s = session_, data = std::move(data)]() mutable { s->StreamSend(std::move(data)); });
    return true;
  }
  void Close() override {
    net::post(session_->executor(), [s = session_] { s->StreamClose(); });
  }

 private:
  std::shared_ptr<Session> session_;
};

}  // namespace

std::shared_ptr<ResponseStream> StartStream(const Respond& respond, Response header) {
  const Session::Responder* r = respond.target<Session::Responder>();
  if (r == nullptr || r->answered->exchange(true)) return nullptr;
  std::string head = absl::StrCat("HTTP/1.1 ", header.result_int(), " ", std::string(header.reason()), "\r\n");
  header.set(http::field::connection, "close");
  header.erase(http::field::content_length);
  for (const auto& field : header) {
    absl::StrAppend(&head, std::string(field.name_string()), ": ", std::string(field.value()), "\r\n");
  }
  head += "\r\n";
  auto session = r->self;
  net::post(session->executor(), [session, head = std::move(head)]() mutable { session->StreamHeader(std::move(head)); });
  return std::make_shared<SessionStream>(std::move(session));
}

void HttpServer::State::Accept(const std::shared_ptr<State>& self) {
  acceptor.async_accept(net::make_strand(ioc), [self](beast::error_code ec, tcp::socket socket) {
    if (self->stopping) return;
    if (ec) {
      // E.g. out of file descriptors: back off briefly instead of spinning.
      spdlog::warn("accept failed: {}", ec.message());
      auto timer = std::make_shared<net::steady_timer>(self->ioc, std::chrono::milliseconds(50));
      timer->async_wait([self, timer](beast::error_code) { self->Accept(self); });
      return;
    }
    beast::error_code ignored;
    socket.set_option(tcp::no_delay(true), ignored);
    std::make_shared<Session>(std::move(socket), self)->Start();
    self->Accept(self);
  });
}

void HttpServer::State::Drain(const std::shared_ptr<net::steady_timer>& timer,
                              std::chrono::steady_clock::time_point deadline) {
  if (active_sessions.load() == 0 || std::chrono::steady_clock::now() >= deadline) {
    if (active_sessions.load() > 0) {
      spdlog::warn("shutdown grace period over; closing {} connection(s) with requests in flight",
                   active_sessions.load());
    }
    ioc.stop();
    return;
  }
  timer->expires_after(std::chrono::milliseconds(20));
  timer->async_wait([this, timer, deadline](beast::error_code) { Drain(timer, deadline); });
}

HttpServer::HttpServer(HttpOptions options, Handler handler)
    : state_(std::make_shared<State>(std::move(options), std::move(handler))) {}

HttpServer::~HttpServer() {
  state_->stopping = true;
  state_->ioc.stop();
}

absl::Status HttpServer::Listen() {
  beast::error_code ec;
  const auto address = net::ip::make_address(state_->options.host, ec);
  if (ec) return absl::InvalidArgumentError(absl::StrCat("invalid listen address \"", state_->options.host, "\""));
  const tcp::endpoint endpoint(address, state_->options.port);
  auto fail = [&](const char* what) {
    return absl::UnavailableError(
        absl::StrCat("cannot ", what, " ", state_->options.host, ":", state_->options.port, ": ", ec.message()));
  };
  state_->acceptor.open(endpoint.protocol(), ec);
  if (ec) return fail("open a socket for");
  state_->acceptor.set_option(net::socket_base::reuse_address(true), ec);
  state_->acceptor.bind(endpoint, ec);
  if (ec) return fail("listen on");
  state_->acceptor.listen(net::socket_base::max_listen_connections, ec);
  if (ec) return fail("listen on");
  state_->Accept(state_);
  return absl::OkStatus();
}

uint16_t HttpServer::port() const {
  beast::error_code ec;
  const auto ep = state_->acceptor.local_endpoint(ec);
  return ec ? 0 : ep.port();
}

net::io_context& HttpServer::io_context() { return state_->ioc; }

void HttpServer::Run() {
  auto guard = net::make_work_guard(state_->ioc);
  auto run = [this] {
    for (;;) {
      try {
        state_->ioc.run();
        return;
      } catch (const std::exception& e) {
        // A handler must not throw; if one does, log it and keep serving.
        spdlog::error("unhandled exception in an I/O thread: {}", e.what());
      }
    }
  };
  std::vector<std::thread> threads;
  for (int i = 1; i < state_->options.threads; ++i) threads.emplace_back(run);
  run();
  for (auto& t : threads) t.join();
}

void HttpServer::Shutdown() {
  if (state_->stopping.exchange(true)) return;
  std::shared_ptr<State> st = state_;
  net::post(st->acceptor.get_executor(), [st] {
    beast::error_code ignored;
    st->acceptor.close(ignored);
  });
  std::vector<std::shared_ptr<Session>> sessions;
  {
    std::lock_guard<std::mutex> l(st->mu);
    for (auto& [ptr, weak] : st->sessions) {
      if (auto s = weak.lock()) sessions.push_back(std::move(s));
    }
  }
  for (auto& s : sessions) s->StopIfIdle();
  sessions.clear();
  auto timer = std::make_shared<net::steady_timer>(st->ioc);
  const auto deadline = std::chrono::steady_clock::now() + st->options.shutdown_grace;
  net::post(st->ioc, [st, timer, deadline] { st->Drain(timer, deadline); });
}

bool HttpServer::stopping() const { return state_->stopping; }

}  // namespace mandate::server
