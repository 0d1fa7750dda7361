// Polar text of syntax nodes (the inverse of the parser, up to spacing and parentheses).
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "polar/polar.h"

namespace mandate::polar {
namespace {

std::string Quote(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\t': out += "\\t"; break;
      case '\r': out += "\\r"; break;
      case '\0': out += "\\0"; break;
      default:
        if (static_cast<unsigned char>(c) < 0x20 || c == 0x7F) {
          absl::StrAppendFormat(&out, "\\u{%x}", static_cast<unsigned char>(c));
        } else {
          out.push_back(c);
        }
    }
  }
  out += "\"";
  return out;
}

const char* OpText(CmpOp op) {
  switch (op) {
    case CmpOp::kEq: return "=";
    case CmpOp::kNe: return "!=";
    case CmpOp::kLt: return "<";
    case CmpOp::kLe: return "<=";
    case CmpOp::kGt: return ">";
    case CmpOp::kGe: return ">=";
  }
  return "=";
}

std::string Args(const std::vector<Term>& args) {
  return absl::StrJoin(args, ", ", [](std::string* out, const Term& t) { out->append(FormatTerm(t)); });
}

// Parenthesizes a child whose operator binds looser than its parent's.
std::string Child(const Expr& child, Expr::Kind parent) {
  bool wrap = (child.kind == Expr::Kind::kOr && parent != Expr::Kind::kOr) ||
              (child.kind == Expr::Kind::kAnd && parent == Expr::Kind::kNot);
  return wrap ? absl::StrCat("(", FormatExpr(child), ")") : FormatExpr(child);
}

}  // namespace

std::string FormatTerm(const Term& t) {
  std::string annotation = t.type_name.empty() ? "" : absl::StrCat(": ", t.type_name);
  switch (t.kind) {
    case Term::Kind::kVar: return absl::StrCat(t.name, annotation);
    case Term::Kind::kWildcard: return absl::StrCat("_", annotation);
    case Term::Kind::kString: return Quote(t.str);
    case Term::Kind::kInteger: return absl::StrCat(t.integer);
    case Term::Kind::kBoolean: return t.boolean ? "true" : "false";
    case Term::Kind::kInstance: return absl::StrCat(t.type_name, "{", Quote(t.str), "}");
    case Term::Kind::kCurrentUnixTime: return "@current_unix_time";
  }
  return "";
}

std::string FormatExpr(const Expr& e) {
  switch (e.kind) {
    case Expr::Kind::kCall: return absl::StrCat(e.name, "(", Args(e.args), ")");
    case Expr::Kind::kCompare:
      if (e.args.size() != 2) return "<invalid comparison>";
      return absl::StrCat(FormatTerm(e.args[0]), " ", OpText(e.op), " ", FormatTerm(e.args[1]));
    case Expr::Kind::kMatches:
      if (e.args.empty()) return "<invalid matches>";
      return absl::StrCat(FormatTerm(e.args[0]), " matches ", e.type_name);
    case Expr::Kind::kAnd:
    case Expr::Kind::kOr:
      return absl::StrJoin(e.children, e.kind == Expr::Kind::kAnd ? " and " : " or ",
                           [&e](std::string* out, const Expr& c) { out->append(Child(c, e.kind)); });
    case Expr::Kind::kNot:
      if (e.children.empty()) return "not <invalid>";
      return absl::StrCat("not ", Child(e.children[0], Expr::Kind::kNot));
  }
  return "";
}

std::string FormatRule(const Rule& r) {
  std::string out = absl::StrCat(r.name, "(", Args(r.params), ")");
  if (r.body) absl::StrAppend(&out, " if ", FormatExpr(*r.body));
  return out;
}

std::string FormatFact(const FactLiteral& f) { return absl::StrCat(f.predicate, "(", Args(f.args), ")"); }

}  // namespace mandate::polar
