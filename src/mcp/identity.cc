#include "mcp/identity.h"

#include "absl/strings/str_cat.h"

namespace mandate::mcp {

namespace json = boost::json;

namespace {

std::string Show(const TypedValue& v) { return absl::StrCat(v.type, "{\"", v.id, "\"}"); }

std::optional<std::string> StringClaim(const json::object& o, std::string_view name) {
  const json::value* v = o.if_contains(name);
  if (v == nullptr || !v->is_string() || v->as_string().empty()) return std::nullopt;
  return std::string(v->as_string());
}

}  // namespace

std::string Principal::Key() const {
  std::string k = Show(actor);
  for (const TypedValue& p : on_behalf_of) absl::StrAppend(&k, "<", Show(p));
  return k;
}

std::string Principal::Describe() const {
  std::string d = Show(actor);
  for (const TypedValue& p : on_behalf_of) absl::StrAppend(&d, " for ", Show(p));
  return d;
}

absl::StatusOr<Principal> PrincipalFromClaims(const json::object& claims, const JwtIssuerConfig& issuer) {
  Principal p;
  p.via = "jwt";
  std::optional<std::string> user = StringClaim(claims, issuer.user_claim);
  if (!user) return absl::UnauthenticatedError(absl::StrCat("token has no ", issuer.user_claim, " claim"));
  const TypedValue user_value{issuer.user_type, *user};
  std::optional<std::string> client = StringClaim(claims, "client_id");
  if (!client) client = StringClaim(claims, "azp");

  if (const json::value* act = claims.if_contains("act")) {
    std::vector<TypedValue> actors;
    for (const json::value* a = act; a != nullptr;) {
      const json::object* o = a->if_object();
      std::optional<std::string> sub = o == nullptr ? std::nullopt : StringClaim(*o, "sub");
      if (!sub) return absl::UnauthenticatedError("token act claim has no sub");
      if (actors.size() >= 8) return absl::UnauthenticatedError("token act chain is deeper than 8");
      actors.push_back(TypedValue{issuer.agent_type, *sub});
      a = o->if_contains("act");
    }
    p.actor = actors.front();
    p.on_behalf_of.assign(actors.begin() + 1, actors.end());
    p.on_behalf_of.push_back(user_value);
  } else if (client && *client != *user) {
    p.actor = TypedValue{issuer.agent_type, *client};
    p.on_behalf_of.push_back(user_value);
  } else if (client) {
    p.actor = TypedValue{issuer.agent_type, *client};  // client-credentials token: the agent acts for itself
  } else {
    p.actor = user_value;
  }
  return p;
}

AgentKeyRing::AgentKeyRing(const std::vector<AgentKey>& keys) {
  for (const AgentKey& k : keys) {
    Principal p;
    p.actor = TypedValue{"Agent", k.agent};
    for (const std::string& u : k.on_behalf_of) p.on_behalf_of.push_back(TypedValue{"User", u});
    p.via = absl::StrCat("api_key:", k.name.empty() ? k.agent : k.name);
    keys_.Add(k.key, std::move(p));
  }
}

std::optional<Principal> AgentKeyRing::Find(std::string_view key) const {
  const Principal* found = keys_.Find(key);
  if (found == nullptr) return std::nullopt;
  return *found;
}

}  // namespace mandate::mcp
