// The top-level fields of a record body that the query filters and the alert rules look at, read
// straight from the JSON text without building a DOM (a record is read once per query match test and
// once per alert check, so a full parse per record dominated both).
#ifndef MANDATE_AUDIT_FIELDS_H_
#define MANDATE_AUDIT_FIELDS_H_

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace mandate::audit {

struct RecordFields {
  enum Name { kKind, kActor, kAction, kResource, kDecision, kRule, kOwner, kCount };
  // The decoded string value of each field; empty when absent or not a string.
  std::array<std::string_view, kCount> str{};
  bool agent = false;             // "agent": true
  std::optional<int64_t> status;  // "status" when it is an integer

  std::string_view kind() const { return str[kKind]; }
  std::string_view actor() const { return str[kActor]; }
  std::string_view action() const { return str[kAction]; }
  std::string_view resource() const { return str[kResource]; }
  std::string_view decision() const { return str[kDecision]; }
  std::string_view rule() const { return str[kRule]; }
  std::string_view owner() const { return str[kOwner]; }

  // Values that contained escapes, decoded (the views above point here or into the body).
  std::array<std::string, kCount> decoded;
};

// Reads the fields of `body`, which must be one JSON object. Returns false when it is not valid
// JSON of that shape (the fields are then unspecified): such a record matches no filter. Nested
// values are skipped (but checked); with duplicate keys the last one counts, as in boost::json.
// The views in `out` point into `body` or into `out` itself: keep both alive and do not copy `out`.
bool ReadRecordFields(std::string_view body, RecordFields* out);

}  // namespace mandate::audit

#endif  // MANDATE_AUDIT_FIELDS_H_
