// Oso Cloud wire JSON for facts and fact patterns ({"predicate":..., "args":[{"type":..,"id":..}]}),
// the encoding direction only. Shared by the store's changelog and the server's responses; the
// server's decoders (with JSON-pointer errors) live in src/server/.
#ifndef MANDATE_STORE_WIRE_JSON_H_
#define MANDATE_STORE_WIRE_JSON_H_

#include <boost/json/value.hpp>

#include "absl/status/statusor.h"

#include "mandate/mandate.h"

namespace mandate::store {

boost::json::object EncodeTypedValue(const TypedValue& v);
boost::json::object EncodeFact(const Fact& fact);
// Wildcard arguments encode as null "type"/"id", as the clients send them.
boost::json::object EncodeFactPattern(const FactPattern& pattern);
// Decodes what EncodeFact wrote (the store reads back its own records; not for untrusted input,
// which the server decodes with JSON-pointer errors).
absl::StatusOr<Fact> DecodeStoredFact(std::string_view text);
// Decodes what EncodeFactPattern wrote (the changelog's delete entries), under the same terms.
absl::StatusOr<FactPattern> DecodeStoredPattern(std::string_view text);

}  // namespace mandate::store

#endif  // MANDATE_STORE_WIRE_JSON_H_
