// Decoding of untrusted JSON request bodies into the Oso wire types (facts, patterns, values) and
// the query shapes of the Oso API. Every error is InvalidArgument and names the place with a JSON
// pointer: "invalid request body at /args/1/id: expected a string, got null".
#ifndef MANDATE_SERVER_JSON_DECODE_H_
#define MANDATE_SERVER_JSON_DECODE_H_

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <boost/json/value.hpp>

#include "absl/container/inlined_vector.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"

#include "mandate/mandate.h"

namespace mandate::server {

// Oso's documented fact limits.
inline constexpr size_t kMaxFactArgs = 5;
inline constexpr size_t kMaxArgBytes = 384;

// A JSON pointer (RFC 6901) to the part of the body being decoded.
class JsonPointer {
 public:
  JsonPointer() = default;
  JsonPointer Key(std::string_view key) const;  // escapes '~' and '/'
  JsonPointer Index(size_t i) const;
  std::string_view str() const { return std::string_view(text_.data(), text_.size()); }
  // "invalid request body at <pointer>" ("invalid request body" at the root).
  std::string Where() const;
  // InvalidArgument "<Where()>: <problem>".
  absl::Status Error(std::string_view problem) const;

 private:
  // Inline for the usual short pointers ("/evaluations/12/resource"): decoding the items of a batch
  // builds a pointer per item and field, and only an error message reads one.
  absl::InlinedVector<char, 48> text_;
};

// Returns the offset of the first byte that is not part of well-formed UTF-8 (RFC 3629: no overlong
// forms, no surrogates, nothing above U+10FFFF), or nullopt if `text` is valid.
std::optional<size_t> FindInvalidUtf8(std::string_view text);

// Parses a request body: rejects invalid UTF-8 and malformed JSON with the byte offset of the problem.
// The value is allocated from `storage` (default: the heap); a handler may pass a monotonic_resource
// over a stack buffer so that a small body costs no heap allocation, if the value dies with the buffer.
absl::StatusOr<boost::json::value> ParseJsonBody(std::string_view body, boost::json::storage_ptr storage = {});

// Field access on an object; `at` points at the object.
absl::StatusOr<const boost::json::object*> AsObject(const boost::json::value& v, const JsonPointer& at);
absl::StatusOr<const boost::json::array*> AsArray(const boost::json::value& v, const JsonPointer& at);
absl::StatusOr<std::string> RequiredString(const boost::json::object& o, std::string_view key, const JsonPointer& at);
// Absent or null gives nullopt.
absl::StatusOr<std::optional<std::string>> OptionalString(const boost::json::object& o, std::string_view key,
                                                          const JsonPointer& at);
absl::StatusOr<std::optional<int64_t>> OptionalInt(const boost::json::object& o, std::string_view key,
                                                   const JsonPointer& at);
// Absent or null gives nullptr.
absl::StatusOr<const boost::json::array*> OptionalArray(const boost::json::object& o, std::string_view key,
                                                        const JsonPointer& at);
absl::StatusOr<const boost::json::array*> RequiredArray(const boost::json::object& o, std::string_view key,
                                                        const JsonPointer& at);

// Checks a concrete value: non-empty type, id at most kMaxArgBytes, Integer ids are 64-bit decimal
// integers (returned in canonical form), Boolean ids are "true" or "false".
absl::StatusOr<TypedValue> CheckValue(TypedValue v, const JsonPointer& at);

// The same checks for a fact from elsewhere (a facts file): 1..kMaxFactArgs arguments, each value as
// CheckValue (Integer ids are rewritten in canonical form). Errors start with `where`.
absl::Status CheckFactLimits(Fact& fact, const std::string& where);

// {"type": string, "id": string}.
absl::StatusOr<TypedValue> DecodeValue(const boost::json::value& v, const JsonPointer& at);
// {"predicate": string, "args": [value x 1..5]}; every argument concrete.
absl::StatusOr<Fact> DecodeFact(const boost::json::value& v, const JsonPointer& at);
// As DecodeFact, but a null "type" or "id" is a wildcard.
absl::StatusOr<FactPattern> DecodeFactPattern(const boost::json::value& v, const JsonPointer& at);
// An array of facts (absent or null = none), e.g. "context_facts".
absl::StatusOr<std::vector<Fact>> DecodeFactList(const boost::json::object& o, std::string_view key,
                                                 const JsonPointer& at);

// The actor/resource fields of the Oso read requests: "<prefix>_type" and "<prefix>_id".
absl::StatusOr<TypedValue> DecodeTypedField(const boost::json::object& o, std::string_view prefix,
                                            const JsonPointer& at);

// Query v2 (POST /api/evaluate_query): {"predicate": [name, [var...]], "calls": [[name, [var...]]...],
// "constraints": {var: {"type": T, "ids": [id...] | null}}}. Every argument is a variable name.
absl::StatusOr<ConjunctiveQuery> DecodeQueryV2(const boost::json::object& o, const JsonPointer& at);

}  // namespace mandate::server

#endif  // MANDATE_SERVER_JSON_DECODE_H_
