// Fuzzes the two fact decoders that read untrusted files and request bodies: JSONL of Oso wire facts
// and `.polar` fact lines. Any input must give facts or an error status, never a crash, hang, leak or
// undefined behavior. The .polar decoder must also agree with the public printer: a fact it decoded,
// printed with ToString and decoded again, must come back unchanged. (JSONL facts are not held to
// this: the wire format allows type names that Polar syntax cannot spell.)
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "mandate/mandate.h"

namespace {

void CheckRoundTrip(const std::vector<mandate::Fact>& facts) {
  for (const mandate::Fact& fact : facts) {
    const std::string line = mandate::ToString(fact) + ";";
    absl::StatusOr<std::vector<mandate::Fact>> again = mandate::ParseFactsPolar(line, "<roundtrip>");
    if (!again.ok() || again->size() != 1 || again->front() != fact) std::abort();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  (void)mandate::ParseFactsJsonl(text, "<fuzz>");
  if (absl::StatusOr<std::vector<mandate::Fact>> facts = mandate::ParseFactsPolar(text, "<fuzz>"); facts.ok()) {
    CheckRoundTrip(*facts);
  }
  return 0;
}
