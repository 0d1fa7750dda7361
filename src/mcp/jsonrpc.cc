#include "mcp/jsonrpc.h"

#include <boost/json/parse.hpp>
#include <boost/json/parse_options.hpp>

#include "absl/strings/str_cat.h"

namespace mandate::mcp {

namespace json = boost::json;

namespace {

Decoded Fail(int code, std::string message, json::value id = nullptr) {
  Decoded d;
  d.error = RpcError{code, std::move(message), nullptr, std::move(id)};
  return d;
}

}  // namespace

bool IsValidId(const json::value& id) { return id.is_string() || id.is_int64() || id.is_uint64(); }

Decoded Decode(std::string_view text, const Limits& limits) {
  if (text.size() > limits.max_bytes) {
    return Fail(kInvalidRequest, absl::StrCat("message of ", text.size(), " bytes exceeds the limit of ",
                                              limits.max_bytes, " bytes"));
  }
  json::parse_options options;
  options.max_depth = limits.max_depth;
  boost::system::error_code ec;
  json::value v = json::parse(text, ec, json::storage_ptr(), options);
  if (ec) {
    if (ec == json::error::too_deep) {
      return Fail(kParseError, absl::StrCat("message nests deeper than ", limits.max_depth, " levels"));
    }
    return Fail(kParseError, absl::StrCat("parse error: ", ec.message()));
  }
  if (v.is_array()) return Fail(kInvalidRequest, "JSON-RPC batches are not supported; send one message per request");
  if (!v.is_object()) return Fail(kInvalidRequest, "a JSON-RPC message must be an object");
  json::object& o = v.as_object();

  // The id is read first so that every later error can carry it.
  json::value id = nullptr;
  const bool has_id = o.contains("id");
  if (has_id) {
    if (!IsValidId(o.at("id"))) return Fail(kInvalidRequest, "/id must be a string or an integer");
    id = o.at("id");
  }
  const json::value* version = o.if_contains("jsonrpc");
  if (version == nullptr || !version->is_string() || version->as_string() != "2.0") {
    return Fail(kInvalidRequest, "/jsonrpc must be \"2.0\"", id);
  }

  Message m;
  m.id = id;
  if (const json::value* method = o.if_contains("method")) {
    if (!method->is_string() || method->as_string().empty()) {
      return Fail(kInvalidRequest, "/method must be a non-empty string", id);
    }
    if (o.contains("result") || o.contains("error")) {
      return Fail(kInvalidRequest, "a request must not carry /result or /error", id);
    }
    m.method = std::string(method->as_string());
    if (const json::value* params = o.if_contains("params")) {
      if (!params->is_object()) return Fail(kInvalidParams, "/params must be an object", id);
      m.params = params->as_object();
      m.has_params = true;
    }
    m.kind = has_id ? Message::Kind::kRequest : Message::Kind::kNotification;
  } else {
    if (!has_id) return Fail(kInvalidRequest, "a message needs /method (request, notification) or /id (response)");
    const bool has_result = o.contains("result");
    const json::value* error = o.if_contains("error");
    if (has_result == (error != nullptr)) {
      return Fail(kInvalidRequest, "a response carries exactly one of /result and /error", id);
    }
    if (error != nullptr) {
      const json::object* e = error->if_object();
      if (e == nullptr || !e->contains("code") || !e->at("code").is_int64() || !e->contains("message") ||
          !e->at("message").is_string()) {
        return Fail(kInvalidRequest, "/error must be an object with an integer code and a string message", id);
      }
    }
    m.kind = Message::Kind::kResponse;
  }
  m.raw = std::move(o);
  Decoded d;
  d.message = std::move(m);
  return d;
}

json::object MakeRequest(const json::value& id, std::string_view method, json::object params) {
  json::object o;
  o["jsonrpc"] = "2.0";
  o["id"] = id;
  o["method"] = method;
  o["params"] = std::move(params);
  return o;
}

json::object MakeNotification(std::string_view method, json::object params) {
  json::object o;
  o["jsonrpc"] = "2.0";
  o["method"] = method;
  if (!params.empty()) o["params"] = std::move(params);
  return o;
}

json::object MakeResult(const json::value& id, json::value result) {
  json::object o;
  o["jsonrpc"] = "2.0";
  o["id"] = id;
  o["result"] = std::move(result);
  return o;
}

json::object MakeError(const RpcError& error) {
  json::object e;
  e["code"] = error.code;
  e["message"] = error.message;
  if (!error.data.is_null()) e["data"] = error.data;
  json::object o;
  o["jsonrpc"] = "2.0";
  o["id"] = error.id;
  o["error"] = std::move(e);
  return o;
}

json::object MakeError(const json::value& id, int code, std::string_view message, json::value data) {
  return MakeError(RpcError{code, std::string(message), std::move(data), id});
}

}  // namespace mandate::mcp
