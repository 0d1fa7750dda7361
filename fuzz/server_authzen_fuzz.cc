// Fuzzes the AuthZEN request decoders (src/server/authzen.h): every request kind, the boxcar
// defaults, pages and options, and the conversion of properties and context into facts, on whatever
// the body parsed to. Any input must decode or give an InvalidArgument naming a place, never crash,
// hang or hit undefined behavior.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include <boost/json.hpp>

#include "server/authzen.h"

namespace {

namespace s = mandate::server;

void Expect(const absl::Status& status) {
  if (!status.ok() && status.code() != absl::StatusCode::kInvalidArgument) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view body(reinterpret_cast<const char*>(data), size);
  absl::StatusOr<boost::json::value> parsed = s::ParseJsonBody(body);
  if (!parsed.ok()) return 0;
  const boost::json::object* o = parsed->if_object();
  if (o == nullptr) return 0;
  const s::JsonPointer root;
  for (s::AuthzenRequestKind kind : {s::AuthzenRequestKind::kEvaluation, s::AuthzenRequestKind::kSubjectSearch,
                                     s::AuthzenRequestKind::kResourceSearch, s::AuthzenRequestKind::kActionSearch}) {
    absl::StatusOr<s::AuthzenTuple> t = s::DecodeAuthzenTuple(*o, root, kind);
    Expect(t.status());
    if (t.ok()) {
      std::optional<mandate::TypedValue> subject;
      std::optional<mandate::TypedValue> resource;
      if (t->subject->id) subject = mandate::TypedValue{"User", *t->subject->id};
      if (t->resource->id) resource = mandate::TypedValue{"Doc", *t->resource->id};
      (void)s::AuthzenFacts(*t, subject, resource);
    }
  }
  absl::StatusOr<s::AuthzenBatch> batch = s::DecodeAuthzenBatch(*o);
  Expect(batch.status());
  if (batch.ok() && batch->items.empty()) std::abort();  // a decoded batch always has an evaluation
  Expect(s::DecodeAuthzenPage(*o, root).status());
  Expect(s::DecodeAuthzenExplain(*o).status());
  return 0;
}
