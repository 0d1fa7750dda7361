#include "audit/entry.h"

#include <cstdint>
#include <cstring>

#include <boost/json.hpp>

#include "absl/strings/str_cat.h"

#include "audit/format.h"

namespace mandate::audit {
namespace {

namespace json = boost::json;

// Whether any byte of the 8 in `w` must be escaped in a JSON string: below 0x20, '"' or '\\'.
// (x - 0x01..01 * n) & ~x & 0x80..80 is non-zero exactly when some byte of x is below n <= 0x80.
bool NeedsEscape(uint64_t w) {
  constexpr uint64_t kOnes = 0x0101010101010101ULL;
  constexpr uint64_t kHigh = 0x8080808080808080ULL;
  const uint64_t quote = w ^ (kOnes * '"');
  const uint64_t backslash = w ^ (kOnes * '\\');
  return (((w - kOnes * 0x20) & ~w) | ((quote - kOnes) & ~quote) | ((backslash - kOnes) & ~backslash)) & kHigh;
}

// The fields' `key` is the whole `,"name":` text (every field but "kind" follows another).
void StringField(std::string* out, std::string_view key, std::string_view value) {
  out->append(key);
  AppendJsonString(out, value);
}

void IntField(std::string* out, std::string_view key, int64_t value) {
  out->append(key);
  absl::StrAppend(out, value);
}

void ListField(std::string* out, std::string_view key, const std::vector<std::string>& list) {
  out->append(key);
  out->push_back('[');
  for (size_t i = 0; i < list.size(); ++i) {
    if (i > 0) out->push_back(',');
    AppendJsonString(out, list[i]);
  }
  out->push_back(']');
}

// A serialized value, or what stands for it when it is larger than `max_bytes`.
void CappedField(std::string* out, std::string_view key, std::string_view text, size_t max_bytes) {
  out->append(key);
  if (text.size() <= max_bytes) {
    out->append(text);
    return;
  }
  absl::StrAppend(out, "{\"truncated\":true,\"bytes\":", text.size(), ",\"sha256\":\"", HexHash(Sha256(text)), "\"}");
}

}  // namespace

void AppendJsonString(std::string* out, std::string_view s) {
  static constexpr char kHex[] = "0123456789abcdef";
  out->push_back('"');
  size_t run = 0;  // start of the bytes not yet copied
  for (size_t i = 0; i < s.size(); ++i) {
    // Eight bytes at a time while none needs escaping.
    for (uint64_t w = 0; i + 8 <= s.size() && (std::memcpy(&w, s.data() + i, 8), !NeedsEscape(w));) i += 8;
    if (i == s.size()) break;
    const unsigned char c = static_cast<unsigned char>(s[i]);
    if (c >= 0x20 && c != '"' && c != '\\') continue;
    out->append(s.data() + run, i - run);
    run = i + 1;
    switch (c) {
      case '"':
        out->append("\\\"");
        break;
      case '\\':
        out->append("\\\\");
        break;
      case '\b':
        out->append("\\b");
        break;
      case '\f':
        out->append("\\f");
        break;
      case '\n':
        out->append("\\n");
        break;
      case '\r':
        out->append("\\r");
        break;
      case '\t':
        out->append("\\t");
        break;
      default: {
        const char u[] = {'\\', 'u', '0', '0', kHex[c >> 4], kHex[c & 0xF]};
        out->append(u, sizeof u);
      }
    }
  }
  out->append(s.data() + run, s.size() - run);
  out->push_back('"');
}

std::shared_ptr<const std::string> SerializeContext(const json::object& context) {
  return std::make_shared<const std::string>(json::serialize(context));
}

Entry DecisionEntry(const TypedValue& actor, std::string action, std::string resource, bool allowed) {
  Entry e;
  e.actor = ToString(actor);
  e.agent = actor.type == "Agent";
  e.action = std::move(action);
  e.resource = std::move(resource);
  e.decision = allowed ? "allow" : "deny";
  return e;
}

RecordWriter::RecordWriter(const RequestInfo& info, size_t max_context_bytes) : max_context_bytes_(max_context_bytes) {
  head_.reserve(info.request_id.size() + info.api.size() + 32);
  tail_.reserve(info.client.size() + info.error.size() + 160);
  if (!info.request_id.empty()) StringField(&head_, ",\"request_id\":", info.request_id);
  if (!info.api.empty()) StringField(&head_, ",\"api\":", info.api);
  if (info.status != 0) {
    IntField(&tail_, ",\"status\":", info.status);
    default_decision_ = info.status < 400 ? "ok" : "error";
  }
  if (!info.error.empty()) StringField(&tail_, ",\"error\":", std::string_view(info.error).substr(0, 1024));
  if (info.policy_version != 0) IntField(&tail_, ",\"policy_version\":", info.policy_version);
  if (info.revision != 0) {
    tail_.append(",\"revision\":");
    absl::StrAppend(&tail_, info.revision);
  }
  if (info.latency_us != 0) IntField(&tail_, ",\"latency_us\":", info.latency_us);
  if (!info.client.empty()) StringField(&tail_, ",\"client\":", info.client);
  if (!info.role.empty()) StringField(&tail_, ",\"key_role\":", info.role);
  tail_.push_back('}');
}

std::string RecordWriter::Serialize(const Entry& e) const {
  std::string out;
  out.reserve(head_.size() + tail_.size() + e.actor.size() + e.action.size() + e.resource.size() + 96);
  out.append("{\"kind\":");
  AppendJsonString(&out, e.kind);
  out.append(head_);
  if (!e.actor.empty()) StringField(&out, ",\"actor\":", e.actor);
  if (e.agent) out.append(",\"agent\":true");
  if (!e.chain.empty()) ListField(&out, ",\"chain\":", e.chain);
  if (!e.action.empty()) StringField(&out, ",\"action\":", e.action);
  if (!e.resource.empty()) StringField(&out, ",\"resource\":", e.resource);
  const std::string_view decision = e.decision.empty() ? default_decision_ : std::string_view(e.decision);
  if (!decision.empty()) StringField(&out, ",\"decision\":", decision);
  if (!e.reasons.empty()) ListField(&out, ",\"reasons\":", e.reasons);
  if (e.context_json != nullptr) {
    CappedField(&out, ",\"context\":", *e.context_json, max_context_bytes_);
  } else if (!e.context.is_null()) {
    CappedField(&out, ",\"context\":", json::serialize(e.context), max_context_bytes_);
  }
  if (!e.detail.empty()) CappedField(&out, ",\"detail\":", json::serialize(e.detail), max_context_bytes_);
  out.append(tail_);
  return out;
}

std::string Serialize(const Entry& e, const RequestInfo& info, size_t max_context_bytes) {
  return RecordWriter(info, max_context_bytes).Serialize(e);
}

}  // namespace mandate::audit
