// Fuzzes the decoder of POST /v1/check bodies (docs/agents.md), one request or a /v1/check/batch
// body's items, against a fixed policy: actor, on_behalf_of, action, resource, context,
// context_facts (type-checked), time, explain and arguments. Any input must decode or give an
// InvalidArgument naming a place, never crash, hang or hit undefined behavior.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string_view>

#include <boost/json.hpp>

#include "server/api.h"

namespace {

namespace s = mandate::server;

constexpr char kPolicy[] = R"(
actor User {}
actor Agent {}
resource Account {
  permissions = ["read"];
  roles = ["viewer"];
  "read" if "viewer";
}
)";

const mandate::Policy& FuzzPolicy() {
  static const std::shared_ptr<const mandate::Policy> policy = [] {
    auto p = mandate::Policy::Compile({mandate::SourceFile{"fuzz.polar", kPolicy}});
    if (!p.ok()) std::abort();
    return *std::move(p);
  }();
  return *policy;
}

void Decode(const boost::json::value& v, const s::JsonPointer& at) {
  for (bool trusted : {false, true}) {
    absl::StatusOr<mandate::agents::CheckRequest> r = s::DecodeCheck(v, at, FuzzPolicy(), trusted, 1'700'000'000);
    if (!r.ok() && r.status().code() != absl::StatusCode::kInvalidArgument) std::abort();
    if (r.ok() && !trusted && r->now_unix != 1'700'000'000) std::abort();  // only trusted callers move the clock
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view body(reinterpret_cast<const char*>(data), size);
  absl::StatusOr<boost::json::value> parsed = s::ParseJsonBody(body);
  if (!parsed.ok()) {
    if (parsed.status().code() != absl::StatusCode::kInvalidArgument) std::abort();
    return 0;
  }
  const s::JsonPointer root;
  Decode(*parsed, root);
  if (const boost::json::object* o = parsed->if_object()) {
    if (const boost::json::value* checks = o->if_contains("checks"); checks != nullptr && checks->is_array()) {
      const boost::json::array& items = checks->get_array();
      for (size_t i = 0; i < items.size() && i < 64; ++i) Decode(items[i], root.Key("checks").Index(i));
    }
  }
  return 0;
}
