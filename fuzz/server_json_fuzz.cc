// Fuzzes the decoders of untrusted HTTP request bodies (src/server/json_decode.h): UTF-8 and JSON
// parsing, then every Oso wire shape (facts, fact patterns, typed fields, context facts, query v2) on
// whatever the body parsed to, at the top level and inside arrays. Any input must decode or give an
// InvalidArgument naming a place, never crash, hang, leak or hit undefined behavior.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include <boost/json.hpp>

#include "server/json_decode.h"

namespace {

using mandate::server::JsonPointer;

void DecodeAll(const boost::json::value& v, const JsonPointer& at) {
  namespace s = mandate::server;
  // Each decoder either succeeds or explains itself with an InvalidArgument.
  auto expect = [](const absl::Status& status) {
    if (!status.ok() && status.code() != absl::StatusCode::kInvalidArgument) std::abort();
  };
  expect(s::DecodeValue(v, at).status());
  expect(s::DecodeFact(v, at).status());
  expect(s::DecodeFactPattern(v, at).status());
  if (const boost::json::object* o = v.if_object()) {
    expect(s::DecodeFactList(*o, "context_facts", at).status());
    expect(s::DecodeTypedField(*o, "actor", at).status());
    expect(s::DecodeTypedField(*o, "resource", at).status());
    expect(s::DecodeQueryV2(*o, at).status());
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view body(reinterpret_cast<const char*>(data), size);
  absl::StatusOr<boost::json::value> parsed = mandate::server::ParseJsonBody(body);
  if (!parsed.ok()) {
    if (parsed.status().code() != absl::StatusCode::kInvalidArgument) std::abort();
    return 0;
  }
  JsonPointer root;
  DecodeAll(*parsed, root);
  if (const boost::json::array* items = parsed->if_array()) {
    for (size_t i = 0; i < items->size() && i < 64; ++i) DecodeAll((*items)[i], root.Index(i));
  }
  return 0;
}
