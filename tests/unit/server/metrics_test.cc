#include "server/metrics.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace mandate::server {
namespace {

using ::testing::HasSubstr;

TEST(MetricsTest, RendersCountersHistogramsAndGauges) {
  Metrics m;
  m.RecordRequest("POST /api/authorize", 200, 0.0003);
  m.RecordRequest("POST /api/authorize", 200, 0.002);
  m.RecordRequest("POST /api/authorize", 400, 7);
  m.RecordDecision(true);
  m.RecordDecision(false);
  m.RecordDecision(false);
  const std::string text = m.Render({.facts = 12, .revision = 5, .policy_version = 2, .ready = true});
  EXPECT_THAT(text, HasSubstr("mandate_http_requests_total{route=\"POST /api/authorize\",status=\"200\"} 2\n"));
  EXPECT_THAT(text, HasSubstr("mandate_http_requests_total{route=\"POST /api/authorize\",status=\"400\"} 1\n"));
  // Buckets are cumulative; 7 s falls only in +Inf.
  EXPECT_THAT(
      text,
      HasSubstr("mandate_http_request_duration_seconds_bucket{route=\"POST /api/authorize\",le=\"0.00025\"} 0\n"));
  EXPECT_THAT(
      text, HasSubstr("mandate_http_request_duration_seconds_bucket{route=\"POST /api/authorize\",le=\"0.0005\"} 1\n"));
  EXPECT_THAT(text,
              HasSubstr("mandate_http_request_duration_seconds_bucket{route=\"POST /api/authorize\",le=\"5\"} 2\n"));
  EXPECT_THAT(text,
              HasSubstr("mandate_http_request_duration_seconds_bucket{route=\"POST /api/authorize\",le=\"+Inf\"} 3\n"));
  EXPECT_THAT(text, HasSubstr("mandate_http_request_duration_seconds_count{route=\"POST /api/authorize\"} 3\n"));
  EXPECT_THAT(text, HasSubstr("mandate_decisions_total{outcome=\"allow\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("mandate_decisions_total{outcome=\"deny\"} 2\n"));
  EXPECT_THAT(text, HasSubstr("\nmandate_facts 12\n"));
  EXPECT_THAT(text, HasSubstr("\nmandate_revision 5\n"));
  EXPECT_THAT(text, HasSubstr("\nmandate_policy_version 2\n"));
  EXPECT_THAT(text, HasSubstr("\nmandate_ready 1\n"));
  EXPECT_THAT(text, HasSubstr("# TYPE mandate_http_request_duration_seconds histogram\n"));
}

// The MCP gateway's series appear once it reports; a method outside MCP's own is counted as
// "other" (a client cannot grow the label set), and the gateway's own time has finer buckets.
TEST(MetricsTest, RendersTheMcpGatewaySeries) {
  Metrics m;
  EXPECT_THAT(m.Render({}), ::testing::Not(HasSubstr("mandate_mcp_")));
  m.RecordMcpMessage("fs", "tools/call", "allow");
  m.RecordMcpMessage("fs", "tools/call", "allow");
  m.RecordMcpMessage("fs", "tools/call", "deny");
  m.RecordMcpMessage("fs", "x/made-up", "deny");
  m.RecordMcpForwarded("fs", 0.002, 0.00004);
  m.RecordMcpForwarded("fs", 0.02, 0.0003);
  const std::string text = m.Render({});
  EXPECT_THAT(text,
              HasSubstr("mandate_mcp_messages_total{upstream=\"fs\",method=\"tools/call\",decision=\"allow\"} 2\n"));
  EXPECT_THAT(text,
              HasSubstr("mandate_mcp_messages_total{upstream=\"fs\",method=\"tools/call\",decision=\"deny\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("mandate_mcp_messages_total{upstream=\"fs\",method=\"other\",decision=\"deny\"} 1\n"));
  EXPECT_THAT(text, ::testing::Not(HasSubstr("made-up")));
  EXPECT_THAT(text, HasSubstr("mandate_mcp_upstream_seconds_bucket{upstream=\"fs\",le=\"0.0025\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("mandate_mcp_upstream_seconds_bucket{upstream=\"fs\",le=\"+Inf\"} 2\n"));
  EXPECT_THAT(text, HasSubstr("mandate_mcp_upstream_seconds_count{upstream=\"fs\"} 2\n"));
  EXPECT_THAT(text, HasSubstr("mandate_mcp_gateway_seconds_bucket{upstream=\"fs\",le=\"5e-05\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("mandate_mcp_gateway_seconds_bucket{upstream=\"fs\",le=\"0.00025\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("mandate_mcp_gateway_seconds_bucket{upstream=\"fs\",le=\"0.0005\"} 2\n"));
  EXPECT_THAT(text, HasSubstr("mandate_mcp_gateway_seconds_sum{upstream=\"fs\"} 0.00034\n"));
  EXPECT_THAT(text, HasSubstr("# TYPE mandate_mcp_gateway_seconds histogram\n"));
}

}  // namespace
}  // namespace mandate::server
