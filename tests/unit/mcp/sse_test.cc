// Server-sent event splitting (upstream streams) and the event ids of resumable client streams.
#include <gtest/gtest.h>

#include "mcp/sse.h"

namespace mandate::mcp {
namespace {

TEST(SseTest, SplitsCompleteEventsAndKeepsTheRest) {
  const std::string text =
      "id: 1-0\ndata: \n\n: keepalive\n\nevent: message\ndata: {\"a\":1}\n\ndata: line1\r\ndata: line2\r\n\r\ndata: {\"partial";
  size_t pos = 0;
  std::vector<std::string> events = TakeSseEvents(text, &pos);
  EXPECT_EQ(events, (std::vector<std::string>{"{\"a\":1}", "line1\nline2"}));
  EXPECT_EQ(text.substr(pos), "data: {\"partial");
  EXPECT_TRUE(TakeSseEvents(text, &pos).empty());  // nothing new until more arrives
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
