// Fuzzes the decoders of the approvals API (docs/approvals.md): the body of POST
// /v1/approvals/{id}/approve and /deny, the wait_seconds of POST /v1/check, and the canonical JSON
// and digest an approval binds a call's `arguments` to. Any input must decode or give an
// InvalidArgument naming a place, never crash, hang or hit undefined behavior; the canonical form
// must not depend on the order of object members.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include <boost/json.hpp>

#include "agents/approvals.h"
#include "server/api.h"

namespace {

namespace s = mandate::server;

void Expect(const absl::Status& status) {
  if (!status.ok() && status.code() != absl::StatusCode::kInvalidArgument) std::abort();
}

// `v` with the members of every object in reverse order.
boost::json::value Reversed(const boost::json::value& v) {
  if (const boost::json::object* o = v.if_object()) {
    boost::json::object out;
    for (auto it = o->end(); it != o->begin();) {
      --it;
      out.emplace(it->key(), Reversed(it->value()));
    }
    return out;
  }
  if (const boost::json::array* a = v.if_array()) {
    boost::json::array out;
    for (const boost::json::value& e : *a) out.push_back(Reversed(e));
    return out;
  }
  return v;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view body(reinterpret_cast<const char*>(data), size);
  absl::StatusOr<boost::json::value> parsed = s::ParseJsonBody(body);
  if (!parsed.ok()) return 0;
  for (bool approve : {true, false}) {
    absl::StatusOr<mandate::agents::ApprovalDecisionRequest> d = s::DecodeApprovalDecision(*parsed, approve);
    Expect(d.status());
    if (d.ok() && !approve && (d->uses || d->ttl_seconds)) std::abort();  // a denial grants nothing
  }
  boost::json::value copy = *parsed;
  absl::StatusOr<int64_t> wait = s::TakeWaitSeconds(&copy);
  Expect(wait.status());
  if (wait.ok() && (*wait < 0 || *wait > 300)) std::abort();
  if (mandate::agents::CanonicalJson(*parsed) != mandate::agents::CanonicalJson(Reversed(*parsed))) std::abort();
  if (mandate::agents::ArgumentsDigest(*parsed).size() != 64) std::abort();
  return 0;
}
