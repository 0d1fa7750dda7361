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

}  // namespace
}  // namespace mandate::server
