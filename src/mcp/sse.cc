#include "mcp/sse.h"

#include <algorithm>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace mandate::mcp {

std::vector<SseEvent> TakeSseEvents(std::string_view buffer, size_t* pos) {
  std::vector<SseEvent> out;
  while (true) {
    size_t end = buffer.find("\n\n", *pos);
    size_t sep = 2;
    const size_t crlf = buffer.find("\r\n\r\n", *pos);
    if (crlf != std::string_view::npos && (end == std::string_view::npos || crlf < end)) {
      end = crlf;
      sep = 4;
    }
    if (end == std::string_view::npos) return out;
    std::string_view event = buffer.substr(*pos, end - *pos);
    *pos = end + sep;
    SseEvent e;
    bool any_data = false;
    while (!event.empty()) {
      size_t nl = event.find('\n');
      std::string_view line = event.substr(0, nl);
      event = nl == std::string_view::npos ? std::string_view() : event.substr(nl + 1);
      if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
      if (line.empty() || line.front() == ':') continue;  // a comment
      // "field: value", "field:value" or "field" alone (an empty value).
      const size_t colon = line.find(':');
      const std::string_view field = line.substr(0, colon);
      std::string_view value = colon == std::string_view::npos ? std::string_view() : line.substr(colon + 1);
      if (!value.empty() && value.front() == ' ') value.remove_prefix(1);
      if (field == "data") {
        if (any_data) e.data += '\n';
        e.data.append(value);
        any_data = true;
      } else if (field == "id") {
        if (value.find('\0') == std::string_view::npos) e.id = std::string(value);  // the spec ignores ids with NUL
      } else if (field == "retry") {
        uint64_t ms = 0;
        if (!value.empty() && value.size() <= 12 &&
            std::all_of(value.begin(), value.end(), [](char c) { return c >= '0' && c <= '9'; }) &&
            absl::SimpleAtoi(absl::string_view(value.data(), value.size()), &ms)) {
          e.retry_ms = ms;
        }
      }
    }
    if (!e.data.empty() || e.id || e.retry_ms) out.push_back(std::move(e));
  }
}

std::optional<EventId> ParseEventId(std::string_view text) {
  const size_t dash = text.find('-');
  if (dash == std::string_view::npos) return std::nullopt;
  auto number = [](std::string_view s, uint64_t* out) {
    if (s.empty() || s.size() > 20) return false;
    for (char c : s) {
      if (c < '0' || c > '9') return false;
    }
    return absl::SimpleAtoi(absl::string_view(s.data(), s.size()), out);
  };
  EventId id;
  if (!number(text.substr(0, dash), &id.stream) || !number(text.substr(dash + 1), &id.seq)) return std::nullopt;
  return id;
}

std::string FormatEvent(EventId id, std::string_view data) {
  std::string out = absl::StrCat("id: ", id.stream, "-", id.seq, "\nevent: message\ndata: ");
  out.append(data);
  out += "\n\n";
  return out;
}

}  // namespace mandate::mcp
