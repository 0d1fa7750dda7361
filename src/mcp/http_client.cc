#include "mcp/http_client.h"

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

template <class Stream>
absl::StatusOr<HttpResult> Exchange(Stream& stream, beast::tcp_stream& lowest, const HttpRequest& req,
                                    const std::string& host, const std::string& target) {
  http::request<http::string_body> r{http::string_to_verb(req.method), target, 11};
  r.set(http::field::host, host);
  r.set(http::field::user_agent, "mandate-mcp-gateway");
  for (const auto& [k, v] : req.headers) r.set(k, v);
  if (!req.body.empty() || req.method == "POST") {
    r.body() = req.body;
    r.prepare_payload();
  }
  beast::error_code ec;
  http::write(stream, r, ec);
  if (ec) return absl::UnavailableError(absl::StrCat("sending to ", req.url, ": ", ec.message()));
  beast::flat_buffer buffer;
  http::response_parser<http::string_body> parser;
  parser.body_limit(req.body_limit);
  http::read_header(stream, buffer, parser, ec);
  if (ec) return absl::UnavailableError(absl::StrCat("reading from ", req.url, ": ", ec.message()));
  bool stopped_early = false;
  while (!parser.is_done()) {
    http::read_some(stream, buffer, parser, ec);
    if (ec) return absl::UnavailableError(absl::StrCat("reading from ", req.url, ": ", ec.message()));
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
  result.body = std::move(parser.get().body());
  if (!stopped_early && req.on_progress) req.on_progress(result.body);
  lowest.socket().shutdown(tcp::socket::shutdown_both, ec);
  return result;
}

}  // namespace

absl::StatusOr<HttpResult> HttpFetch(const HttpRequest& req) {
  auto url = boost::urls::parse_uri(req.url);
  if (!url || (url->scheme() != "http" && url->scheme() != "https") || url->host().empty()) {
    return absl::InvalidArgumentError(absl::StrCat("not an http(s) URL: ", req.url));
  }
  const bool tls = url->scheme() == "https";
  const std::string host = std::string(url->encoded_host());
  const std::string port = url->has_port() ? std::string(url->port()) : (tls ? "443" : "80");
  std::string target = std::string(url->encoded_path());
  if (target.empty()) target = "/";
  if (url->has_query()) absl::StrAppend(&target, "?", std::string(url->encoded_query()));
  const std::string host_header = url->has_port() ? absl::StrCat(host, ":", port) : host;
  std::string dial_host = host;
  if (dial_host.size() > 2 && dial_host.front() == '[') dial_host = dial_host.substr(1, dial_host.size() - 2);

  try {
    net::io_context io;
    tcp::resolver resolver(io);
    beast::error_code ec;
    auto endpoints = resolver.resolve(dial_host, port, ec);
    if (ec) return absl::UnavailableError(absl::StrCat("resolving ", host, ": ", ec.message()));
    if (!tls) {
      beast::tcp_stream stream(io);
      stream.expires_after(req.timeout);
      stream.connect(endpoints, ec);
      if (ec) return absl::UnavailableError(absl::StrCat("connecting to ", req.url, ": ", ec.message()));
      return Exchange(stream, stream, req, host_header, target);
    }
    net::ssl::context ctx(net::ssl::context::tls_client);
    ctx.set_default_verify_paths();
    ctx.set_verify_mode(net::ssl::verify_peer);
    beast::ssl_stream<beast::tcp_stream> stream(io, ctx);
    if (!SSL_set_tlsext_host_name(stream.native_handle(), dial_host.c_str())) {
      return absl::UnavailableError(absl::StrCat("TLS SNI for ", host, " failed"));
    }
    stream.set_verify_callback(net::ssl::host_name_verification(dial_host));
    beast::get_lowest_layer(stream).expires_after(req.timeout);
    beast::get_lowest_layer(stream).connect(endpoints, ec);
    if (ec) return absl::UnavailableError(absl::StrCat("connecting to ", req.url, ": ", ec.message()));
    stream.handshake(net::ssl::stream_base::client, ec);
    if (ec) return absl::UnavailableError(absl::StrCat("TLS handshake with ", req.url, ": ", ec.message()));
    return Exchange(stream, beast::get_lowest_layer(stream), req, host_header, target);
  } catch (const std::exception& e) {
    // Asio reports some failures (e.g. TLS context set-up) only as exceptions.
    return absl::UnavailableError(absl::StrCat(req.url, ": ", e.what()));
  }
}

}  // namespace mandate::mcp
