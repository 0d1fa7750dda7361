#include "store/wire_json.h"

#include <boost/json.hpp>

namespace mandate::store {

namespace json = boost::json;

json::object EncodeTypedValue(const TypedValue& v) {
  json::object o;
  o["type"] = v.type;
  o["id"] = v.id;
  return o;
}

json::object EncodeFact(const Fact& fact) {
  json::array args;
  args.reserve(fact.args.size());
  for (const TypedValue& v : fact.args) args.push_back(EncodeTypedValue(v));
  json::object o;
  o["predicate"] = fact.predicate;
  o["args"] = std::move(args);
  return o;
}

json::object EncodeFactPattern(const FactPattern& pattern) {
  json::array args;
  const size_t n = std::max(pattern.arg_types.size(), pattern.arg_ids.size());
  for (size_t i = 0; i < n; ++i) {
    json::object a;
    const auto& t = i < pattern.arg_types.size() ? pattern.arg_types[i] : std::nullopt;
    const auto& id = i < pattern.arg_ids.size() ? pattern.arg_ids[i] : std::nullopt;
    a["type"] = t ? json::value(*t) : json::value(nullptr);
    a["id"] = id ? json::value(*id) : json::value(nullptr);
    args.push_back(std::move(a));
  }
  json::object o;
  o["predicate"] = pattern.predicate;
  o["args"] = std::move(args);
  return o;
}

}  // namespace mandate::store
