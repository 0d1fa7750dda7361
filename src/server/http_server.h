// The HTTP/1.1 transport of `mandate serve`: Boost.Beast on a small fixed pool of Asio threads.
// Connections are kept alive; each one handles one request at a time. Slow clients cannot hold the
// server: idle connections, header reads, body reads and response writes each have a deadline, and
// bodies over the size limit are refused with 413 before they are read.
//
// The transport knows nothing about the API: it hands each complete request to a Handler, which
// answers through a Respond callback that may be called from any thread, now or later.
#ifndef MANDATE_SERVER_HTTP_SERVER_H_
#define MANDATE_SERVER_HTTP_SERVER_H_

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include <boost/asio/io_context.hpp>
#include <boost/beast/core/string.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>

#include "absl/status/status.h"

namespace mandate::server {

using Request = boost::beast::http::request<boost::beast::http::string_body>;
using Response = boost::beast::http::response<boost::beast::http::string_body>;
// Sends the response for one request. Thread-safe; call exactly once.
using Respond = std::function<void(Response)>;
using Handler = std::function<void(Request, Respond)>;

// The transport sets this header on every request to the client's address ("IP:port"), replacing
// any the client sent, so that handlers (the audit log) can record it.
inline constexpr char kPeerAddressHeader[] = "Mandate-Peer-Address";
// That address. The transport sets it last, so it is looked for from the end (a lookup by name walks
// the field tree with case-insensitive compares: several times dearer).
inline std::string_view PeerAddress(const Request& req) {
  for (auto it = req.end(); it != req.begin();) {
    --it;
    if (boost::beast::iequals(it->name_string(), kPeerAddressHeader)) return it->value();
  }
  return {};
}

// A response whose body is sent in pieces as they come (server-sent events). Thread-safe.
class ResponseStream {
 public:
  virtual ~ResponseStream() = default;
  // Queues `data`; false once the client has gone or the server is stopping.
  virtual bool Send(std::string data) = 0;
  // Ends the response: the connection closes once what is queued is sent.
  virtual void Close() = 0;
};
// Answers the request behind `respond` with `header` and a body that the returned stream sends
// (delimited by closing the connection) instead of a whole response. Null when `respond` was
// already called or is not the transport's own. `respond` must not be called afterwards.
std::shared_ptr<ResponseStream> StartStream(const Respond& respond, Response header);

struct HttpOptions {
  std::string host = "127.0.0.1";
  uint16_t port = 8080;  // 0 picks a free port (see HttpServer::port())
  int threads = 2;
  size_t body_limit = size_t{10} << 20;
  size_t header_limit = size_t{64} << 10;
  std::chrono::milliseconds idle_timeout{60'000};    // keep-alive connection with no request
  std::chrono::milliseconds header_timeout{10'000};  // from a request's first byte to its last header
  std::chrono::milliseconds body_timeout{30'000};
  std::chrono::milliseconds write_timeout{30'000};
  std::chrono::milliseconds shutdown_grace{10'000};  // in-flight requests get this long to finish
  // Called for requests the transport answers itself (400, 413, 431), with the status code.
  std::function<void(int)> on_rejected;
};

class HttpServer {
 public:
  HttpServer(HttpOptions options, Handler handler);
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Binds and listens. Unavailable if the address cannot be bound.
  absl::Status Listen();
  uint16_t port() const;  // the bound port, after Listen()

  // The io_context the connections run on; for timers and signal handling of the caller.
  boost::asio::io_context& io_context();

  // Runs the I/O threads (options.threads of them, the calling thread included) until a shutdown
  // started with Shutdown() has completed.
  void Run();

  // Starts a graceful shutdown: stop accepting, close idle connections, let requests in flight be
  // answered (for up to shutdown_grace), then stop the I/O threads. Thread-safe and idempotent.
  void Shutdown();
  bool stopping() const;

  struct State;  // shared with the connections; defined in http_server.cc

 private:
  std::shared_ptr<State> state_;
};

}  // namespace mandate::server

#endif  // MANDATE_SERVER_HTTP_SERVER_H_
