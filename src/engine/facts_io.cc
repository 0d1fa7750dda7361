// Decoding facts from JSONL (Oso wire facts) and Polar fact lines, and queries from Polar text.
#include <algorithm>
#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "boost/json.hpp"
#include "engine/api_impl.h"
#include "polar/polar.h"

namespace mandate {
namespace {

namespace json = boost::json;

// "file:line: /pointer: message"
absl::Status LineError(std::string_view filename, size_t line, std::string_view pointer, absl::string_view message) {
  return absl::InvalidArgumentError(absl::StrCat(std::string(filename), ":", line, ": ",
                                                 pointer.empty() ? "" : absl::StrCat(std::string(pointer), ": "),
                                                 message));
}

absl::StatusOr<TypedValue> DecodeValue(const json::value& v, std::string_view filename, size_t line,
                                       const std::string& pointer) {
  const json::object* obj = v.if_object();
  if (obj == nullptr) return LineError(filename, line, pointer, "expected an object {\"type\":..., \"id\":...}");
  TypedValue out;
  for (const char* field : {"type", "id"}) {
    const json::value* f = obj->if_contains(field);
    const std::string p = absl::StrCat(pointer, "/", field);
    if (f == nullptr) return LineError(filename, line, p, "missing");
    if (!f->is_string()) return LineError(filename, line, p, "expected a string");
    (field[0] == 't' ? out.type : out.id) = std::string(f->as_string());
  }
  if (out.type.empty()) return LineError(filename, line, absl::StrCat(pointer, "/type"), "empty type");
  if (out.type == "Integer" || out.type == "Boolean") {
    engine::RequestSymbols scratch;
    absl::StatusOr<facts::Value> check = engine::ToValue(out, scratch);
    if (!check.ok()) return LineError(filename, line, absl::StrCat(pointer, "/id"), check.status().message());
  }
  return out;
}

absl::StatusOr<Fact> DecodeFact(const json::value& v, std::string_view filename, size_t line,
                                const std::string& pointer) {
  const json::object* obj = v.if_object();
  if (obj == nullptr) return LineError(filename, line, pointer.empty() ? "/" : pointer, "expected a fact object");
  Fact f;
  const json::value* pred = obj->if_contains("predicate");
  if (pred == nullptr || !pred->is_string() || pred->as_string().empty()) {
    return LineError(filename, line, absl::StrCat(pointer, "/predicate"), "expected a non-empty string");
  }
  f.predicate = std::string(pred->as_string());
  const json::value* args = obj->if_contains("args");
  if (args == nullptr || !args->is_array()) {
    return LineError(filename, line, absl::StrCat(pointer, "/args"), "expected an array");
  }
  const json::array& arr = args->as_array();
  for (size_t i = 0; i < arr.size(); ++i) {
    absl::StatusOr<TypedValue> a = DecodeValue(arr[i], filename, line, absl::StrCat(pointer, "/args/", i));
    if (!a.ok()) return a.status();
    f.args.push_back(*std::move(a));
  }
  return f;
}

// A decoded fact and where it was: a line, or for a .json array (line 0) the element's pointer.
struct LocatedFact {
  Fact fact;
  size_t line = 0;
  std::string pointer;
};

// Facts files can be long: a broken one reports this many problems, then how many more there were.
constexpr size_t kMaxReportedErrors = 20;

class ErrorList {
 public:
  void Add(const absl::Status& s) {
    if (messages_.size() < kMaxReportedErrors) messages_.emplace_back(s.message());
    ++count_;
  }
  bool empty() const { return count_ == 0; }
  absl::Status ToStatus() const {
    std::string out = absl::StrJoin(messages_, "\n");
    if (count_ > messages_.size()) absl::StrAppend(&out, "\n... and ", count_ - messages_.size(), " more");
    return absl::InvalidArgumentError(out);
  }

 private:
  std::vector<std::string> messages_;
  size_t count_ = 0;
};

std::vector<Fact> WithoutPlaces(std::vector<LocatedFact> located) {
  std::vector<Fact> out;
  out.reserve(located.size());
  for (LocatedFact& f : located) out.push_back(std::move(f.fact));
  return out;
}

// The canonical line shape `{"predicate":"p","args":[{"type":"T","id":"i"},...]}` (whitespace between
// tokens allowed), read without building a JSON document: bulk loads are millions of such lines.
// Returns false, leaving `f` unspecified, for anything else (other keys or key order, escapes,
// Integer or Boolean arguments, an empty type): the caller then decodes the line with the full JSON
// parser, which accepts the same facts and reports errors.
class FactLineScanner {
 public:
  explicit FactLineScanner(std::string_view line) : p_(line.data()), end_(line.data() + line.size()) {}

  bool Scan(Fact& f) {
    std::string_view pred, type, id;
    if (!Punct('{') || !Key("predicate") || !String(pred) || pred.empty() || !Punct(',') || !Key("args") ||
        !Punct('[')) {
      return false;
    }
    f.predicate.assign(pred);
    f.args.clear();
    f.args.reserve(3);  // the usual arity: one allocation instead of three
    if (Peek(']')) {
      ++p_;
    } else {
      for (;;) {
        if (!Punct('{') || !Key("type") || !String(type) || type.empty() || !Punct(',') || !Key("id") ||
            !String(id) || !Punct('}')) {
          return false;
        }
        if (type == "Integer" || type == "Boolean") return false;  // ids that need a value check
        f.args.push_back(TypedValue{std::string(type), std::string(id)});
        if (Peek(',')) {
          ++p_;
          continue;
        }
        if (!Punct(']')) return false;
        break;
      }
    }
    if (!Punct('}')) return false;
    SkipSpace();
    return p_ == end_;
  }

 private:
  void SkipSpace() {
    while (p_ < end_ && (*p_ == ' ' || *p_ == '\t' || *p_ == '\r')) ++p_;
  }
  bool Peek(char c) {
    SkipSpace();
    return p_ < end_ && *p_ == c;
  }
  bool Punct(char c) {
    if (!Peek(c)) return false;
    ++p_;
    return true;
  }
  // An ASCII string without escapes or control characters (escapes, and UTF-8 that the full parser
  // validates, go to the full parser).
  bool String(std::string_view& out) {
    if (!Punct('"')) return false;
    const char* start = p_;
    while (p_ < end_ && *p_ != '"') {
      const auto c = static_cast<unsigned char>(*p_);
      if (c == '\\' || c < 0x20 || c >= 0x80) return false;
      ++p_;
    }
    if (p_ == end_) return false;
    out = std::string_view(start, p_ - start);
    ++p_;
    return true;
  }
  bool Key(std::string_view name) {
    std::string_view k;
    return String(k) && k == name && Punct(':');
  }

  const char* p_;
  const char* end_;
};

absl::StatusOr<std::vector<LocatedFact>> DecodeJsonl(std::string_view text, std::string_view filename) {
  std::vector<LocatedFact> out;
  out.reserve(std::count(text.begin(), text.end(), '\n') + 1);
  ErrorList errors;
  size_t line = 0;
  json::stream_parser parser;
  while (!text.empty()) {
    ++line;
    const size_t nl = text.find('\n');
    std::string_view l = text.substr(0, nl);
    text = nl == std::string_view::npos ? std::string_view() : text.substr(nl + 1);
    if (l.find_first_not_of(" \t\r") == std::string_view::npos) continue;
    out.emplace_back();
    if (FactLineScanner(l).Scan(out.back().fact)) {
      out.back().line = line;
      continue;
    }
    out.pop_back();
    parser.reset();
    boost::system::error_code ec;
    parser.write(l.data(), l.size(), ec);
    if (!ec) parser.finish(ec);
    if (ec) {
      errors.Add(LineError(filename, line, "", absl::StrCat("invalid JSON: ", ec.message())));
      continue;
    }
    absl::StatusOr<Fact> f = DecodeFact(parser.release(), filename, line, "");
    if (!f.ok()) {
      errors.Add(f.status());
      continue;
    }
    out.push_back({*std::move(f), line, ""});
  }
  if (!errors.empty()) return errors.ToStatus();
  return out;
}

absl::StatusOr<std::vector<LocatedFact>> DecodePolar(std::string_view text, std::string_view filename) {
  absl::StatusOr<std::vector<polar::FactLiteral>> lits = polar::ParseFacts(text, filename);
  if (!lits.ok()) return lits.status();
  std::vector<LocatedFact> out;
  for (const polar::FactLiteral& l : *lits) {
    LocatedFact f{{l.predicate, {}}, l.span.line, ""};
    for (const polar::Term& t : l.args) {
      std::optional<TypedValue> v = engine::TermToTypedValue(t);
      if (!v) {
        return absl::InvalidArgumentError(
            absl::StrCat(std::string(filename), ":", l.span.line, ": fact ", l.predicate, " has an argument that is not a value"));
      }
      f.fact.args.push_back(*std::move(v));
    }
    out.push_back(std::move(f));
  }
  return out;
}

// A .json file holding one array of facts.
absl::StatusOr<std::vector<LocatedFact>> DecodeJsonArray(const std::string& text, const std::string& path) {
  boost::system::error_code ec;
  json::value v = json::parse(text, ec);
  if (ec) return LineError(path, 1, "", absl::StrCat("invalid JSON: ", ec.message()));
  if (!v.is_array()) return LineError(path, 1, "", "expected an array of facts");
  std::vector<LocatedFact> out;
  ErrorList errors;
  const json::array& arr = v.as_array();
  for (size_t i = 0; i < arr.size(); ++i) {
    const std::string pointer = absl::StrCat("/", i);
    absl::StatusOr<Fact> f = DecodeFact(arr[i], path, 1, pointer);
    if (!f.ok()) {
      errors.Add(f.status());
      continue;
    }
    out.push_back({*std::move(f), 0, pointer});
  }
  if (!errors.empty()) return errors.ToStatus();
  return out;
}

absl::StatusOr<std::vector<LocatedFact>> DecodeFactsFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary | std::ios::ate);
  if (!in) return absl::NotFoundError(absl::StrCat(path, ": cannot open"));
  std::string text;
  if (const std::streamoff size = in.tellg(); size > 0 && in.seekg(0)) {
    text.resize(static_cast<size_t>(size));  // one read into one buffer: fact files can be hundreds of MB
    if (!in.read(text.data(), size)) return absl::DataLossError(absl::StrCat(path, ": read failed"));
  } else {
    std::ifstream stream(path, std::ios::binary);  // not seekable (a pipe): read to the end
    std::ostringstream buf;
    buf << stream.rdbuf();
    text = std::move(buf).str();
  }
  auto ends_with = [&](std::string_view suffix) {
    return path.size() >= suffix.size() && path.compare(path.size() - suffix.size(), suffix.size(), suffix) == 0;
  };
  if (ends_with(".polar")) return DecodePolar(text, path);
  if (ends_with(".json")) {
    // A .json file may hold one array of facts instead of one fact per line.
    const size_t first = text.find_first_not_of(" \t\r\n");
    if (first != std::string::npos && text[first] == '[') return DecodeJsonArray(text, path);
    return DecodeJsonl(text, path);
  }
  if (ends_with(".jsonl") || ends_with(".ndjson")) return DecodeJsonl(text, path);
  return absl::InvalidArgumentError(
      absl::StrCat(path, ": unknown fact file type (expected .jsonl, .json or .polar)"));
}

}  // namespace

absl::StatusOr<std::vector<Fact>> ParseFactsJsonl(std::string_view text, std::string_view filename) {
  absl::StatusOr<std::vector<LocatedFact>> located = DecodeJsonl(text, filename);
  if (!located.ok()) return located.status();
  return WithoutPlaces(*std::move(located));
}

namespace engine {

std::optional<TypedValue> TermToTypedValue(const polar::Term& t) {
  switch (t.kind) {
    case polar::Term::Kind::kString:
      return TypedValue{"String", t.str};
    case polar::Term::Kind::kInteger:
      return TypedValue{"Integer", std::to_string(t.integer)};
    case polar::Term::Kind::kBoolean:
      return TypedValue{"Boolean", t.boolean ? "true" : "false"};
    case polar::Term::Kind::kInstance:
      return TypedValue{t.type_name, t.str};
    default:
      return std::nullopt;
  }
}

absl::StatusOr<ConjunctiveQuery> CallsToQuery(
    const std::vector<std::pair<std::string, std::vector<polar::Term>>>& calls) {
  ConjunctiveQuery q;
  int hidden = 0;
  for (const auto& [name, args] : calls) {
    QueryCall call{name, {}};
    for (const polar::Term& t : args) {
      QueryArg a;
      if (std::optional<TypedValue> v = TermToTypedValue(t)) {
        a.value = *std::move(v);
      } else if (t.kind == polar::Term::Kind::kVar) {
        a.var = t.name;
      } else if (t.kind == polar::Term::Kind::kWildcard) {
        a.var = t.type_name.empty() ? "_" : absl::StrCat("_", ++hidden);
      } else {
        return absl::InvalidArgumentError(absl::StrCat("@current_unix_time cannot be a query argument (in ", name, ")"));
      }
      if (!a.var.empty() && a.var != "_" && !t.type_name.empty()) {
        VarConstraint& c = q.constraints[a.var];
        if (!c.type.empty() && c.type != t.type_name) {
          return absl::InvalidArgumentError(
              absl::StrCat("variable ", a.var, " is typed both ", c.type, " and ", t.type_name));
        }
        c.type = t.type_name;
      }
      call.args.push_back(std::move(a));
    }
    q.calls.push_back(std::move(call));
  }
  return q;
}

}  // namespace engine

absl::StatusOr<ConjunctiveQuery> ParseQuery(std::string_view text) {
  absl::StatusOr<std::vector<polar::Expr>> exprs = polar::ParseQuery(text);
  if (!exprs.ok()) return exprs.status();
  std::vector<std::pair<std::string, std::vector<polar::Term>>> calls;
  for (const polar::Expr& e : *exprs) calls.emplace_back(e.name, e.args);
  return engine::CallsToQuery(calls);
}

absl::StatusOr<std::vector<Fact>> ParseFactsPolar(std::string_view text, std::string_view filename) {
  absl::StatusOr<std::vector<LocatedFact>> located = DecodePolar(text, filename);
  if (!located.ok()) return located.status();
  return WithoutPlaces(*std::move(located));
}

absl::StatusOr<std::vector<Fact>> LoadFactsFile(const std::string& path) {
  absl::StatusOr<std::vector<LocatedFact>> located = DecodeFactsFile(path);
  if (!located.ok()) return located.status();
  return WithoutPlaces(*std::move(located));
}

absl::StatusOr<std::vector<Fact>> LoadFactsFile(const std::string& path, const Policy& policy) {
  absl::StatusOr<std::vector<LocatedFact>> located = DecodeFactsFile(path);
  if (!located.ok()) return located.status();
  ErrorList errors;
  for (const LocatedFact& f : *located) {
    if (absl::Status s = policy.CheckFact(f.fact); !s.ok()) {
      errors.Add(absl::InvalidArgumentError(f.line > 0 ? absl::StrCat(path, ":", f.line, ": ", s.message())
                                                       : absl::StrCat(path, ": ", f.pointer, ": ", s.message())));
    }
  }
  if (!errors.empty()) return errors.ToStatus();
  return WithoutPlaces(*std::move(located));
}

}  // namespace mandate
