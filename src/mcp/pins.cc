#include "mcp/pins.h"

#include <openssl/sha.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <vector>

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <spdlog/spdlog.h>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"

namespace mandate::mcp {

namespace json = boost::json;

namespace {

void Canonical(const json::value& v, std::string* out) {
  if (const json::object* o = v.if_object()) {
    std::vector<std::string_view> keys;
    for (const auto& kv : *o) keys.push_back(kv.key());
    std::sort(keys.begin(), keys.end());
    out->push_back('{');
    for (size_t i = 0; i < keys.size(); ++i) {
      if (i) out->push_back(',');
      absl::StrAppend(out, json::serialize(json::string(keys[i])), ":");
      Canonical(o->at(keys[i]), out);
    }
    out->push_back('}');
  } else if (const json::array* a = v.if_array()) {
    out->push_back('[');
    for (size_t i = 0; i < a->size(); ++i) {
      if (i) out->push_back(',');
      Canonical((*a)[i], out);
    }
    out->push_back(']');
  } else {
    out->append(json::serialize(v));
  }
}

}  // namespace

std::string ToolDigest(const json::object& tool) {
  json::object pinned;
  for (const char* field : {"name", "title", "description", "inputSchema", "outputSchema", "annotations"}) {
    if (const json::value* v = tool.if_contains(field)) pinned[field] = *v;
  }
  return CanonicalDigest(pinned);
}

std::string CanonicalDigest(const json::value& value) {
  std::string text;
  Canonical(value, &text);
  unsigned char d[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(text.data()), text.size(), d);
  return absl::BytesToHexString(absl::string_view(reinterpret_cast<char*>(d), sizeof d));
}

absl::Status ToolPins::Load() {
  if (file_.empty()) return absl::OkStatus();
  std::ifstream in(file_, std::ios::binary);
  if (!in) return absl::OkStatus();  // nothing pinned yet
  std::stringstream text;
  text << in.rdbuf();
  boost::system::error_code ec;
  json::value v = json::parse(text.str(), ec);
  if (ec || !v.is_object()) return absl::InvalidArgumentError(absl::StrCat(file_, ": not a JSON object of tool pins"));
  std::lock_guard lock(mu_);
  for (const auto& [key, pin] : v.as_object()) {
    const json::object* o = pin.if_object();
    if (o == nullptr || !o->contains("digest") || !o->at("digest").is_string()) {
      return absl::InvalidArgumentError(absl::StrCat(file_, ": pin \"", std::string(key), "\" has no digest"));
    }
    Pin p;
    p.digest = std::string(o->at("digest").as_string());
    if (const json::value* pending = o->if_contains("pending_digest"); pending && pending->is_string()) {
      p.pending = std::string(pending->as_string());
    }
    pins_[std::string(key)] = std::move(p);
  }
  return absl::OkStatus();
}

void ToolPins::SaveLocked() const {
  if (file_.empty()) return;
  json::object o;
  for (const auto& [key, pin] : pins_) {
    json::object p{{"digest", pin.digest}};
    if (!pin.pending.empty()) p["pending_digest"] = pin.pending;
    o[key] = std::move(p);
  }
  const std::string tmp = file_ + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    out << json::serialize(o) << "\n";
    if (!out) {
      spdlog::error("cannot write tool pins to {}", tmp);
      return;
    }
  }
  if (std::rename(tmp.c_str(), file_.c_str()) != 0) spdlog::error("cannot replace tool pins file {}", file_);
}

bool ToolPins::Allow(const std::string& key, const std::string& digest) {
  std::lock_guard lock(mu_);
  auto [it, inserted] = pins_.try_emplace(key);
  if (inserted) {
    it->second.digest = digest;
    SaveLocked();
    return true;
  }
  if (it->second.digest == digest) return true;
  if (it->second.pending != digest) {
    it->second.pending = digest;
    SaveLocked();
    spdlog::warn("ALERT: MCP tool {} changed its definition (digest {} -> {}); blocked until approved", key,
                 it->second.digest.substr(0, 12), digest.substr(0, 12));
  }
  return false;
}

absl::Status ToolPins::Approve(const std::string& key) {
  std::lock_guard lock(mu_);
  auto it = pins_.find(key);
  if (it == pins_.end() || it->second.pending.empty()) {
    return absl::NotFoundError(absl::StrCat("no changed definition of ", key, " is waiting for approval"));
  }
  it->second.digest = it->second.pending;
  it->second.pending.clear();
  SaveLocked();
  spdlog::info("MCP tool {} definition approved (digest {})", key, it->second.digest.substr(0, 12));
  return absl::OkStatus();
}

json::array ToolPins::List(std::string_view prefix) const {
  std::lock_guard lock(mu_);
  json::array out;
  for (const auto& [key, pin] : pins_) {
    if (key.rfind(prefix, 0) != 0) continue;
    json::object o{{"tool", key.substr(prefix.size())}, {"digest", pin.digest}};
    if (!pin.pending.empty()) o["pending_digest"] = pin.pending;
    out.push_back(std::move(o));
  }
  return out;
}

}  // namespace mandate::mcp
