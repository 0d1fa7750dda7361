// Server-sent events (text/event-stream) as the gateway speaks them: splitting what an upstream
// sends into events, writing events towards clients, and the event ids that make a client's
// stream resumable ("<stream>-<seq>", unique within a session; Last-Event-ID names one).
// Decoding never throws; everything here takes untrusted input.
#ifndef MANDATE_MCP_SSE_H_
#define MANDATE_MCP_SSE_H_

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace mandate::mcp {

// One event of an upstream's stream.
struct SseEvent {
  std::string data;                  // multi-line data joined with '\n'; "" when the event had none
  std::optional<std::string> id;     // its `id` field (what Last-Event-ID names on reconnection)
  std::optional<uint64_t> retry_ms;  // its `retry` field (the reconnection delay), when all digits
};

// Splits the complete events off `buffer` from `*pos` on (advancing it past them), returning each
// event that carries data, an id or a retry field (a priming event has only an id); comments and
// empty events are skipped. Incomplete trailing text stays for the next call.
std::vector<SseEvent> TakeSseEvents(std::string_view buffer, size_t* pos);

struct EventId {
  uint64_t stream = 0;
  uint64_t seq = 0;
};
// Parses "<stream>-<seq>" (decimal, no sign, no spaces); nullopt otherwise.
std::optional<EventId> ParseEventId(std::string_view text);

// One event with id "<stream>-<seq>" carrying `data` (which must not contain a newline; serialized
// JSON never does).
std::string FormatEvent(EventId id, std::string_view data);

}  // namespace mandate::mcp

#endif  // MANDATE_MCP_SSE_H_
