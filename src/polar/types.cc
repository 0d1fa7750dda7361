// The type environment: built-in types, the actor/resource blocks that declare the others, subtyping
// through `extends`, and name lookup inside blocks.
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "polar/internal.h"

namespace mandate::polar::internal {

TypeEnv::TypeEnv(const Policy& policy) {
  for (const Block& b : policy.blocks) {
    if (b.kind == Block::Kind::kGlobal) {
      if (global_ == nullptr) global_ = &b;
    } else if (!IsPrimitive(b.type_name) && b.type_name != "Actor" && b.type_name != "Resource") {
      blocks_.emplace(b.type_name, &b);  // the first block of a name wins; duplicates are reported
    }
  }
}

bool TypeEnv::IsPrimitive(std::string_view type) {
  return type == "String" || type == "Integer" || type == "Boolean";
}

bool TypeEnv::IsKnown(std::string_view type) const {
  return IsPrimitive(type) || type == "Actor" || type == "Resource" || blocks_.count(type) > 0;
}

const Block* TypeEnv::FindBlock(std::string_view type) const {
  auto it = blocks_.find(type);
  return it == blocks_.end() ? nullptr : it->second;
}

bool TypeEnv::IsSubtype(std::string_view a, std::string_view b) const {
  if (a.empty() || b.empty() || a == b) return true;
  if (a == "Actor") return b == "Resource";
  // Walk the extends chain; the step bound guards against cycles (reported by validation).
  std::string_view current = a;
  for (size_t steps = 0; steps <= blocks_.size(); ++steps) {
    const Block* block = FindBlock(current);
    if (block == nullptr) return false;
    if (b == "Resource") return true;
    if (b == "Actor" && block->kind == Block::Kind::kActor) return true;
    if (block->extends.empty()) return false;
    current = block->extends;
    if (current == b) return true;
    if (current == "Actor") return b == "Resource";
  }
  return false;
}

std::vector<std::string> TypeEnv::TypeNames() const {
  std::vector<std::string> names = {"String", "Integer", "Boolean", "Actor", "Resource"};
  for (const auto& [name, block] : blocks_) names.push_back(name);
  return names;
}

NameKind TypeEnv::Lookup(const Block* block, std::string_view name, std::string* related) const {
  for (size_t steps = 0; block != nullptr && steps <= blocks_.size(); ++steps) {
    for (const NameDecl& r : block->roles) {
      if (r.name == name) return NameKind::kRole;
    }
    for (const NameDecl& p : block->permissions) {
      if (p.name == name) return NameKind::kPermission;
    }
    for (const RelationDecl& rel : block->relations) {
      if (rel.name == name) {
        if (related != nullptr) *related = rel.type_name;
        return NameKind::kRelation;
      }
    }
    block = block->extends.empty() ? nullptr : FindBlock(block->extends);
  }
  return NameKind::kNone;
}

std::vector<std::string> TypeEnv::NamesIn(const Block* block, bool roles_and_permissions_only) const {
  std::vector<std::string> names;
  for (size_t steps = 0; block != nullptr && steps <= blocks_.size(); ++steps) {
    for (const NameDecl& r : block->roles) names.push_back(r.name);
    for (const NameDecl& p : block->permissions) names.push_back(p.name);
    if (!roles_and_permissions_only) {
      for (const RelationDecl& rel : block->relations) names.push_back(rel.name);
    }
    block = block->extends.empty() ? nullptr : FindBlock(block->extends);
  }
  return names;
}

std::string TermType(const Term& t) {
  switch (t.kind) {
    case Term::Kind::kString: return "String";
    case Term::Kind::kInteger:
    case Term::Kind::kCurrentUnixTime: return "Integer";
    case Term::Kind::kBoolean: return "Boolean";
    default: return t.type_name;  // instances: their type; variables: the annotation, if any
  }
}

}  // namespace mandate::polar::internal
