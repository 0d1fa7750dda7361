#include "store/wire_json.h"

#include <boost/json.hpp>

#include "absl/strings/str_cat.h"

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

namespace {

// A stored {"predicate": string, "args": array}, checked. (args() looks the member up on each call:
// a pointer into `value` would not survive moving the struct.)
struct StoredShape {
  json::value value;
  std::string predicate;
  const json::array& args() const { return value.get_object().at("args").get_array(); }
};

// `what` names the shape in the error ("fact", "pattern").
absl::StatusOr<StoredShape> ParseStoredShape(std::string_view text, const char* what) {
  StoredShape out;
  boost::system::error_code ec;
  out.value = json::parse(text, ec);
  const json::object* o = ec ? nullptr : out.value.if_object();
  const json::value* predicate = o ? o->if_contains("predicate") : nullptr;
  const json::value* args = o ? o->if_contains("args") : nullptr;
  if (predicate == nullptr || !predicate->is_string() || args == nullptr || !args->is_array()) {
    return absl::DataLossError(absl::StrCat("stored ", what, " is not a ", what, ": ", std::string(text)));
  }
  out.predicate = std::string(predicate->get_string());
  return out;
}

}  // namespace

absl::StatusOr<Fact> DecodeStoredFact(std::string_view text) {
  absl::StatusOr<StoredShape> shape = ParseStoredShape(text, "fact");
  if (!shape.ok()) return shape.status();
  Fact f;
  f.predicate = std::move(shape->predicate);
  for (const json::value& a : shape->args()) {
    const json::object* ao = a.if_object();
    const json::value* t = ao ? ao->if_contains("type") : nullptr;
    const json::value* id = ao ? ao->if_contains("id") : nullptr;
    if (t == nullptr || !t->is_string() || id == nullptr || !id->is_string()) {
      return absl::DataLossError(absl::StrCat("stored fact has a malformed argument: ", std::string(text)));
    }
    f.args.push_back(TypedValue{std::string(t->get_string()), std::string(id->get_string())});
  }
  return f;
}

absl::StatusOr<FactPattern> DecodeStoredPattern(std::string_view text) {
  absl::StatusOr<StoredShape> shape = ParseStoredShape(text, "pattern");
  if (!shape.ok()) return shape.status();
  FactPattern p;
  p.predicate = std::move(shape->predicate);
  // A string or null, else nothing.
  auto field = [](const json::object* a, const char* key) -> std::optional<std::optional<std::string>> {
    const json::value* f = a ? a->if_contains(key) : nullptr;
    if (f == nullptr || !(f->is_string() || f->is_null())) return std::nullopt;
    return f->is_null() ? std::optional<std::string>() : std::optional<std::string>(std::string(f->get_string()));
  };
  for (const json::value& a : shape->args()) {
    auto t = field(a.if_object(), "type");
    auto id = field(a.if_object(), "id");
    if (!t || !id) return absl::DataLossError(absl::StrCat("stored pattern has a malformed argument: ", std::string(text)));
    p.arg_types.push_back(*std::move(t));
    p.arg_ids.push_back(*std::move(id));
  }
  return p;
}

}  // namespace mandate::store
