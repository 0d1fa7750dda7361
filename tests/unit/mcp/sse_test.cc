// Server-sent event splitting (upstream streams) and the event ids of resumable client streams.
#include <gtest/gtest.h>

#include "mcp/sse.h"

namespace mandate::mcp {
namespace {

TEST(SseTest, SplitsCompleteEventsAndKeepsTheRest) {
  const std::string text =
      "id: 1-0\ndata: \n\n: keepalive\n\nevent: message\ndata: {\"a\":1}\n\ndata: line1\r\ndata: line2\r\n\r\ndata: {\"partial";
  size_t pos = 0;
  std::vector<SseEvent> events = TakeSseEvents(text, &pos);
  ASSERT_EQ(events.size(), 3u);
  EXPECT_EQ(events[0].id, "1-0");  // a priming event: an id, no data
  EXPECT_EQ(events[0].data, "");
  EXPECT_EQ(events[1].data, "{\"a\":1}");
  EXPECT_FALSE(events[1].id.has_value());
  EXPECT_EQ(events[2].data, "line1\nline2");
  EXPECT_EQ(text.substr(pos), "data: {\"partial");
  EXPECT_TRUE(TakeSseEvents(text, &pos).empty());  // nothing new until more arrives
}

TEST(SseTest, ReadsIdsAndRetryAndIgnoresWhatTheSpecIgnores) {
  static constexpr char kText[] = "id:abc_7\nretry: 500\ndata:x\n\nretry: 5x\ndata\n\nid: a\0b\ndata: y\n\n";
  const std::string text(kText, sizeof kText - 1);
  size_t pos = 0;
  std::vector<SseEvent> events = TakeSseEvents(text, &pos);
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[0].id, "abc_7");
  EXPECT_EQ(events[0].retry_ms, 500u);
  EXPECT_EQ(events[0].data, "x");
  EXPECT_FALSE(events[1].id.has_value());  // an id with NUL is ignored
  EXPECT_EQ(events[1].data, "y");          // the middle event (bad retry, empty data) carries nothing
}

TEST(SseTest, EventIdsRoundTripAndJunkIsRefused) {
  std::optional<EventId> id = ParseEventId("12-345");
  ASSERT_TRUE(id.has_value());
  EXPECT_EQ(id->stream, 12u);
  EXPECT_EQ(id->seq, 345u);
  EXPECT_EQ(FormatEvent(*id, "{}"), "id: 12-345\nevent: message\ndata: {}\n\n");
  for (const char* bad : {"", "12", "-1", "1-", "1--2", "+1-2", "1-2 ", "a-b", "99999999999999999999999-1", "1-2-3"}) {
    EXPECT_FALSE(ParseEventId(bad).has_value()) << bad;
  }
}

}  // namespace
}  // namespace mandate::mcp
