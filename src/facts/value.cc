#include "facts/value.h"

#include <mutex>

namespace mandate::facts {

SymbolTable::SymbolTable() {
  // Order matches the kXxxType constants.
  for (std::string_view s : {"", "String", "Integer", "Boolean", "Actor", "Resource"}) {
    names_.emplace_back(s);
    ids_.emplace(names_.back(), static_cast<SymbolId>(names_.size() - 1));
  }
}

SymbolTable& SymbolTable::Global() {
  static SymbolTable* table = new SymbolTable();
  return *table;
}

SymbolId SymbolTable::Intern(std::string_view s) {
  {
    std::shared_lock lock(mu_);
    auto it = ids_.find(s);
    if (it != ids_.end()) return it->second;
  }
  std::unique_lock lock(mu_);
  auto it = ids_.find(s);
  if (it != ids_.end()) return it->second;
  names_.emplace_back(s);
  SymbolId id = static_cast<SymbolId>(names_.size() - 1);
  ids_.emplace(names_.back(), id);
  return id;
}

std::optional<SymbolId> SymbolTable::Find(std::string_view s) const {
  std::shared_lock lock(mu_);
  auto it = ids_.find(s);
  if (it == ids_.end()) return std::nullopt;
  return it->second;
}

std::string_view SymbolTable::Name(SymbolId id) const {
  std::shared_lock lock(mu_);
  if (id >= names_.size()) return {};
  return names_[id];
}

size_t SymbolTable::size() const {
  std::shared_lock lock(mu_);
  return names_.size();
}

namespace {
void AppendQuoted(std::string& out, std::string_view s) {
  out.push_back('"');
  for (char c : s) {
    if (c == '"' || c == '\\') out.push_back('\\');
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out.push_back(c);
  }
  out.push_back('"');
}
}  // namespace

std::string ToPolar(const Value& v, const SymbolTable& symbols) {
  std::string out;
  switch (v.type) {
    case kNoSymbol:
      return "_";
    case kStringType:
      AppendQuoted(out, symbols.Name(v.symbol()));
      return out;
    case kIntegerType:
      return std::to_string(v.integer());
    case kBooleanType:
      return v.boolean() ? "true" : "false";
    default:
      out.append(symbols.Name(v.type));
      out.push_back('{');
      AppendQuoted(out, symbols.Name(v.symbol()));
      out.push_back('}');
      return out;
  }
}

std::string ToTypedId(const Value& v, const SymbolTable& symbols) {
  std::string out(symbols.Name(v.type));
  out.push_back(':');
  switch (v.type) {
    case kIntegerType:
      out += std::to_string(v.integer());
      break;
    case kBooleanType:
      out += v.boolean() ? "true" : "false";
      break;
    default:
      out.append(symbols.Name(v.symbol()));
  }
  return out;
}

}  // namespace mandate::facts
