// The table of built-in predicates: names the engine, the server or the language itself gives meaning to.
#include <algorithm>
#include <span>
#include <string_view>

#include "polar/polar.h"

namespace mandate::polar {
namespace {

using K = BuiltinPredicate::Kind;
constexpr BuiltinPredicate kBuiltins[] = {
    {"allow", 3, K::kRoot},
    {"allow_field", 4, K::kRoot},
    {"has_permission", 2, K::kRoot},  // global permissions
    {"has_permission", 3, K::kRoot},
    {"has_role", 2, K::kFact},        // global roles
    {"has_role", 3, K::kFact},
    {"has_relation", 3, K::kFact},
    {"requires_approval", 3, K::kRoot},
    {"can_approve", 4, K::kRoot},
    {"can_approve_in_chain", 4, K::kRoot},
    {"approval_ttl", 4, K::kRoot},
    {"rate_limit", 6, K::kRoot},
    {"time_within", 4, K::kRequest},
    {"context", 2, K::kRequest},
    {"acts_for", 2, K::kRequest},
};

}  // namespace

std::span<const BuiltinPredicate> BuiltinPredicates() { return kBuiltins; }

bool IsRootPredicate(std::string_view name) {
  return std::any_of(std::begin(kBuiltins), std::end(kBuiltins),
                     [name](const BuiltinPredicate& b) { return b.name == name && b.kind != K::kRequest; });
}

}  // namespace mandate::polar
