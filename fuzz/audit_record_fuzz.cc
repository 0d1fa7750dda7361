// libFuzzer target for the audit log's record decoder: DecodeFrame must never read outside its
// input or crash on any bytes (a damaged or hostile segment file), and what it accepts must render
// and filter safely (the field reader included), checkpoints included.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "audit/fields.h"
#include "audit/format.h"
#include "audit/reader.h"
#include "audit/signing.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  mandate::audit::Filter filter;
  filter.actor = "User:alice";
  filter.decision = "deny";
  size_t offset = 0;
  while (offset < input.size()) {
    if (mandate::audit::IsUnusedTail(input, offset)) break;  // as the readers do
    mandate::audit::RecordView r;
    size_t next = 0;
    if (!mandate::audit::DecodeFrame(input, offset, &r, &next).ok()) break;
    if (next <= offset || next > input.size()) __builtin_trap();  // must always advance, within bounds
    (void)mandate::audit::Matches(filter, r);
    mandate::audit::RecordFields fields;
    (void)mandate::audit::ReadRecordFields(r.body, &fields);
    (void)mandate::audit::RenderRecord(r);
    if (r.type == mandate::audit::RecordType::kCheckpoint) (void)mandate::audit::ParseCheckpoint(r.body);
    offset = next;
  }
  return 0;
}
