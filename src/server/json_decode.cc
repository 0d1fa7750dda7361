#include "server/json_decode.h"

#include <charconv>
#include <cstring>

#include <boost/json.hpp>

#include "absl/strings/str_cat.h"

namespace mandate::server {

namespace json = boost::json;

JsonPointer JsonPointer::Key(std::string_view key) const {
  JsonPointer p = *this;
  p.text_.push_back('/');
  for (char c : key) {
    if (c == '~') {
      p.text_.insert(p.text_.end(), {'~', '0'});
    } else if (c == '/') {
      p.text_.insert(p.text_.end(), {'~', '1'});
    } else {
      p.text_.push_back(c);
    }
  }
  return p;
}

JsonPointer JsonPointer::Index(size_t i) const {
  JsonPointer p = *this;
  char digits[24];
  char* end = std::to_chars(digits, digits + sizeof digits, i).ptr;
  p.text_.push_back('/');
  for (const char* d = digits; d != end; ++d) p.text_.push_back(*d);
  return p;
}

std::string JsonPointer::Where() const {
  return text_.empty() ? "invalid request body" : absl::StrCat("invalid request body at ", absl::string_view(text_.data(), text_.size()));
}

absl::Status JsonPointer::Error(std::string_view problem) const {
  return absl::InvalidArgumentError(absl::StrCat(Where(), ": ", std::string(problem)));
}

std::optional<size_t> FindInvalidUtf8(std::string_view text) {
  const auto* s = reinterpret_cast<const unsigned char*>(text.data());
  const size_t n = text.size();
  size_t i = 0;
  while (i < n) {
    // Plain ASCII (nearly every body) eight bytes at a time.
    if (i + 8 <= n) {
      uint64_t word;
      std::memcpy(&word, s + i, 8);
      if ((word & 0x8080808080808080ULL) == 0) {
        i += 8;
        continue;
      }
    }
    const unsigned char c = s[i];
    if (c < 0x80) {
      ++i;
      continue;
    }
    size_t len;
    uint32_t cp;
    if (c >= 0xC2 && c <= 0xDF) {
      len = 2;
      cp = c & 0x1F;
    } else if (c >= 0xE0 && c <= 0xEF) {
      len = 3;
      cp = c & 0x0F;
    } else if (c >= 0xF0 && c <= 0xF4) {
      len = 4;
      cp = c & 0x07;
    } else {
      return i;  // continuation byte, overlong lead (C0, C1) or beyond U+10FFFF (F5..FF)
    }
    if (i + len > n) return i;
    for (size_t k = 1; k < len; ++k) {
      if ((s[i + k] & 0xC0) != 0x80) return i;
      cp = (cp << 6) | (s[i + k] & 0x3F);
    }
    if ((len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) {
      return i;
    }
    i += len;
  }
  return std::nullopt;
}

absl::StatusOr<json::value> ParseJsonBody(std::string_view body, json::storage_ptr storage) {
  if (std::optional<size_t> bad = FindInvalidUtf8(body)) {
    return absl::InvalidArgumentError(absl::StrCat("request body is not valid UTF-8 (byte offset ", *bad, ")"));
  }
  if (body.find_first_not_of(" \t\r\n") == std::string_view::npos) {
    return absl::InvalidArgumentError("request body is empty; expected JSON");
  }
  // The parser's own working memory (its stack of unfinished values) starts on this stack, not the heap.
  unsigned char scratch[2048];
  json::stream_parser parser({}, {}, scratch, sizeof scratch);
  parser.reset(std::move(storage));
  boost::system::error_code ec;
  const size_t consumed = parser.write(body.data(), body.size(), ec);
  if (!ec) parser.finish(ec);
  if (ec) {
    // Line and column of the byte where parsing stopped, for people reading the message.
    const size_t at = std::min(consumed, body.size());
    size_t line = 1;
    size_t col = 1;
    for (size_t i = 0; i < at; ++i) {
      if (body[i] == '\n') {
        ++line;
        col = 1;
      } else {
        ++col;
      }
    }
    return absl::InvalidArgumentError(
        absl::StrCat("malformed JSON at byte offset ", at, " (line ", line, ", column ", col, "): ", ec.message()));
  }
  return parser.release();
}

namespace {

const char* KindName(const json::value& v) {
  switch (v.kind()) {
    case json::kind::null:
      return "null";
    case json::kind::bool_:
      return "a boolean";
    case json::kind::int64:
    case json::kind::uint64:
    case json::kind::double_:
      return "a number";
    case json::kind::string:
      return "a string";
    case json::kind::array:
      return "an array";
    case json::kind::object:
      return "an object";
  }
  return "a value";
}

absl::Status Expected(const char* what, const json::value& got, const JsonPointer& at) {
  return at.Error(absl::StrCat("expected ", what, ", got ", KindName(got)));
}

}  // namespace

absl::StatusOr<const json::object*> AsObject(const json::value& v, const JsonPointer& at) {
  if (!v.is_object()) return Expected("an object", v, at);
  return &v.get_object();
}

absl::StatusOr<const json::array*> AsArray(const json::value& v, const JsonPointer& at) {
  if (!v.is_array()) return Expected("an array", v, at);
  return &v.get_array();
}

absl::StatusOr<std::string> RequiredString(const json::object& o, std::string_view key, const JsonPointer& at) {
  const json::value* v = o.if_contains(key);
  if (v == nullptr) return at.Key(key).Error("required field is missing");
  if (!v->is_string()) return Expected("a string", *v, at.Key(key));
  return std::string(v->get_string());
}

absl::StatusOr<std::optional<std::string>> OptionalString(const json::object& o, std::string_view key,
                                                          const JsonPointer& at) {
  const json::value* v = o.if_contains(key);
  if (v == nullptr || v->is_null()) return std::optional<std::string>();
  if (!v->is_string()) return Expected("a string or null", *v, at.Key(key));
  return std::optional<std::string>(std::string(v->get_string()));
}

absl::StatusOr<std::optional<int64_t>> OptionalInt(const json::object& o, std::string_view key, const JsonPointer& at) {
  const json::value* v = o.if_contains(key);
  if (v == nullptr || v->is_null()) return std::optional<int64_t>();
  if (v->is_int64()) return std::optional<int64_t>(v->get_int64());
  if (v->is_uint64() && v->get_uint64() <= static_cast<uint64_t>(INT64_MAX)) {
    return std::optional<int64_t>(static_cast<int64_t>(v->get_uint64()));
  }
  return Expected("an integer", *v, at.Key(key));
}

absl::StatusOr<const json::array*> OptionalArray(const json::object& o, std::string_view key, const JsonPointer& at) {
  const json::value* v = o.if_contains(key);
  if (v == nullptr || v->is_null()) return static_cast<const json::array*>(nullptr);
  return AsArray(*v, at.Key(key));
}

absl::StatusOr<const json::array*> RequiredArray(const json::object& o, std::string_view key, const JsonPointer& at) {
  const json::value* v = o.if_contains(key);
  if (v == nullptr) return at.Key(key).Error("required field is missing");
  return AsArray(*v, at.Key(key));
}

namespace {

// Returns "" when `v` is acceptable (an Integer id is rewritten in canonical form); otherwise the
// problem, with *field set to the offending field ("type" or "id").
std::string ValueProblem(TypedValue& v, const char** field) {
  *field = "id";
  if (v.type.empty()) {
    *field = "type";
    return "the type must not be empty";
  }
  if (v.id.size() > kMaxArgBytes) {
    return absl::StrCat("the id is ", v.id.size(), " bytes; at most ", kMaxArgBytes, " are allowed");
  }
  if (v.type == "Integer") {
    int64_t n = 0;
    const char* end = v.id.data() + v.id.size();
    auto [ptr, ec] = std::from_chars(v.id.data(), end, n);
    if (v.id.empty() || ec != std::errc() || ptr != end) {
      return absl::StrCat("\"", v.id, "\" is not a 64-bit decimal integer");
    }
    v.id = std::to_string(n);  // one spelling per number: "007" and "7" are the same fact
  } else if (v.type == "Boolean" && v.id != "true" && v.id != "false") {
    return absl::StrCat("a Boolean id must be \"true\" or \"false\", got \"", v.id, "\"");
  }
  return "";
}

}  // namespace

absl::StatusOr<TypedValue> CheckValue(TypedValue v, const JsonPointer& at) {
  const char* field;
  if (std::string problem = ValueProblem(v, &field); !problem.empty()) return at.Key(field).Error(problem);
  return v;
}

absl::Status CheckFactLimits(Fact& fact, const std::string& where) {
  if (fact.predicate.empty()) return absl::InvalidArgumentError(absl::StrCat(where, ": empty predicate"));
  if (fact.args.empty() || fact.args.size() > kMaxFactArgs) {
    return absl::InvalidArgumentError(absl::StrCat(where, ": ", fact.predicate, " has ", fact.args.size(),
                                                   " arguments; a fact has 1 to ", kMaxFactArgs));
  }
  for (size_t i = 0; i < fact.args.size(); ++i) {
    const char* field;
    if (std::string problem = ValueProblem(fact.args[i], &field); !problem.empty()) {
      return absl::InvalidArgumentError(absl::StrCat(where, ": ", fact.predicate, " argument ", i + 1, ": ", problem));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<TypedValue> DecodeValue(const json::value& v, const JsonPointer& at) {
  absl::StatusOr<const json::object*> o = AsObject(v, at);
  if (!o.ok()) return o.status();
  absl::StatusOr<std::string> type = RequiredString(**o, "type", at);
  if (!type.ok()) return type.status();
  absl::StatusOr<std::string> id = RequiredString(**o, "id", at);
  if (!id.ok()) return id.status();
  return CheckValue(TypedValue{std::move(*type), std::move(*id)}, at);
}

namespace {

// The shared part of facts and patterns: the predicate and the argument array with 1..5 entries.
absl::StatusOr<const json::array*> DecodeFactHead(const json::value& v, const JsonPointer& at, std::string* predicate) {
  absl::StatusOr<const json::object*> o = AsObject(v, at);
  if (!o.ok()) return o.status();
  absl::StatusOr<std::string> p = RequiredString(**o, "predicate", at);
  if (!p.ok()) return p.status();
  if (p->empty()) return at.Key("predicate").Error("the predicate must not be empty");
  *predicate = std::move(*p);
  absl::StatusOr<const json::array*> args = RequiredArray(**o, "args", at);
  if (!args.ok()) return args.status();
  if ((*args)->empty() || (*args)->size() > kMaxFactArgs) {
    return at.Key("args").Error(absl::StrCat("a fact has 1 to ", kMaxFactArgs, " arguments, got ", (*args)->size()));
  }
  return args;
}

}  // namespace

absl::StatusOr<Fact> DecodeFact(const json::value& v, const JsonPointer& at) {
  Fact fact;
  absl::StatusOr<const json::array*> args = DecodeFactHead(v, at, &fact.predicate);
  if (!args.ok()) return args.status();
  for (size_t i = 0; i < (*args)->size(); ++i) {
    const JsonPointer arg_at = at.Key("args").Index(i);
    const json::value& a = (**args)[i];
    if (a.is_object()) {
      // Say why a wildcard is refused rather than just "expected a string".
      for (const char* key : {"type", "id"}) {
        const json::value* f = a.get_object().if_contains(key);
        if (f != nullptr && f->is_null()) {
          return arg_at.Key(key).Error("expected a string, got null (wildcards are allowed only in deletes and reads)");
        }
      }
    }
    absl::StatusOr<TypedValue> value = DecodeValue(a, arg_at);
    if (!value.ok()) return value.status();
    fact.args.push_back(std::move(*value));
  }
  return fact;
}

absl::StatusOr<FactPattern> DecodeFactPattern(const json::value& v, const JsonPointer& at) {
  FactPattern pattern;
  absl::StatusOr<const json::array*> args = DecodeFactHead(v, at, &pattern.predicate);
  if (!args.ok()) return args.status();
  for (size_t i = 0; i < (*args)->size(); ++i) {
    const JsonPointer arg_at = at.Key("args").Index(i);
    absl::StatusOr<const json::object*> a = AsObject((**args)[i], arg_at);
    if (!a.ok()) return a.status();
    absl::StatusOr<std::optional<std::string>> type = OptionalString(**a, "type", arg_at);
    if (!type.ok()) return type.status();
    absl::StatusOr<std::optional<std::string>> id = OptionalString(**a, "id", arg_at);
    if (!id.ok()) return id.status();
    if (*type && *id) {
      absl::StatusOr<TypedValue> checked = CheckValue(TypedValue{**type, **id}, arg_at);
      if (!checked.ok()) return checked.status();
      *id = checked->id;
    } else if (*type && type->value().empty()) {
      return arg_at.Key("type").Error("the type must not be empty");
    } else if (*id) {
      // An id means different values under different types ("1" the String, the Integer, a User),
      // so it cannot be matched without one. The clients never send this.
      return arg_at.Key("type").Error("an argument with an id needs a type (use null for both to match anything)");
    }
    pattern.arg_types.push_back(std::move(*type));
    pattern.arg_ids.push_back(std::move(*id));
  }
  return pattern;
}

absl::StatusOr<std::vector<Fact>> DecodeFactList(const json::object& o, std::string_view key, const JsonPointer& at) {
  absl::StatusOr<const json::array*> arr = OptionalArray(o, key, at);
  if (!arr.ok()) return arr.status();
  std::vector<Fact> facts;
  if (*arr == nullptr) return facts;
  facts.reserve((*arr)->size());
  for (size_t i = 0; i < (*arr)->size(); ++i) {
    absl::StatusOr<Fact> f = DecodeFact((**arr)[i], at.Key(key).Index(i));
    if (!f.ok()) return f.status();
    facts.push_back(std::move(*f));
  }
  return facts;
}

absl::StatusOr<TypedValue> DecodeTypedField(const json::object& o, std::string_view prefix, const JsonPointer& at) {
  const std::string type_key = absl::StrCat(std::string(prefix), "_type");
  const std::string id_key = absl::StrCat(std::string(prefix), "_id");
  absl::StatusOr<std::string> type = RequiredString(o, type_key, at);
  if (!type.ok()) return type.status();
  absl::StatusOr<std::string> id = RequiredString(o, id_key, at);
  if (!id.ok()) return id.status();
  TypedValue v{std::move(*type), std::move(*id)};
  const char* field;
  if (std::string problem = ValueProblem(v, &field); !problem.empty()) {
    return at.Key(std::string(field) == "type" ? type_key : id_key).Error(problem);
  }
  return v;
}

namespace {

// [name, [var, ...]]
absl::StatusOr<QueryCall> DecodeQueryCall(const json::value& v, const JsonPointer& at) {
  absl::StatusOr<const json::array*> pair = AsArray(v, at);
  if (!pair.ok()) return pair.status();
  if ((*pair)->size() != 2) return at.Error("expected [predicate, [variables...]]");
  const json::value& name = (**pair)[0];
  if (!name.is_string()) return Expected("a predicate name (string)", name, at.Index(0));
  if (name.get_string().empty()) return at.Index(0).Error("the predicate must not be empty");
  absl::StatusOr<const json::array*> vars = AsArray((**pair)[1], at.Index(1));
  if (!vars.ok()) return vars.status();
  QueryCall call;
  call.predicate = std::string(name.get_string());
  for (size_t i = 0; i < (*vars)->size(); ++i) {
    const json::value& var = (**vars)[i];
    if (!var.is_string()) return Expected("a variable name (string)", var, at.Index(1).Index(i));
    if (var.get_string().empty()) return at.Index(1).Index(i).Error("the variable name must not be empty");
    call.args.push_back(QueryArg{std::nullopt, std::string(var.get_string())});
  }
  return call;
}

}  // namespace

absl::StatusOr<ConjunctiveQuery> DecodeQueryV2(const json::object& o, const JsonPointer& at) {
  ConjunctiveQuery q;
  const json::value* predicate = o.if_contains("predicate");
  if (predicate == nullptr) return at.Key("predicate").Error("required field is missing");
  absl::StatusOr<QueryCall> head = DecodeQueryCall(*predicate, at.Key("predicate"));
  if (!head.ok()) return head.status();
  q.calls.push_back(std::move(*head));
  absl::StatusOr<const json::array*> calls = OptionalArray(o, "calls", at);
  if (!calls.ok()) return calls.status();
  if (*calls != nullptr) {
    for (size_t i = 0; i < (*calls)->size(); ++i) {
      absl::StatusOr<QueryCall> call = DecodeQueryCall((**calls)[i], at.Key("calls").Index(i));
      if (!call.ok()) return call.status();
      q.calls.push_back(std::move(*call));
    }
  }
  const json::value* constraints = o.if_contains("constraints");
  if (constraints != nullptr && !constraints->is_null()) {
    absl::StatusOr<const json::object*> co = AsObject(*constraints, at.Key("constraints"));
    if (!co.ok()) return co.status();
    for (const auto& [var, c] : **co) {
      const JsonPointer c_at = at.Key("constraints").Key(var);
      absl::StatusOr<const json::object*> cobj = AsObject(c, c_at);
      if (!cobj.ok()) return cobj.status();
      VarConstraint vc;
      absl::StatusOr<std::optional<std::string>> type = OptionalString(**cobj, "type", c_at);
      if (!type.ok()) return type.status();
      vc.type = type->value_or("");
      absl::StatusOr<const json::array*> ids = OptionalArray(**cobj, "ids", c_at);
      if (!ids.ok()) return ids.status();
      if (*ids != nullptr) {
        vc.ids.emplace();
        for (size_t i = 0; i < (*ids)->size(); ++i) {
          const json::value& id = (**ids)[i];
          if (!id.is_string()) return Expected("a string", id, c_at.Key("ids").Index(i));
          TypedValue checked{vc.type.empty() ? "String" : vc.type, std::string(id.get_string())};
          const char* field;
          if (std::string problem = ValueProblem(checked, &field); !problem.empty()) {
            return c_at.Key("ids").Index(i).Error(problem);
          }
          vc.ids->push_back(std::move(checked.id));
        }
      }
      q.constraints[std::string(var)] = std::move(vc);
    }
  }
  return q;
}

}  // namespace mandate::server
