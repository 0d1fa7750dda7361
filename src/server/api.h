// The HTTP API of `mandate serve`: routing, authentication, request ids, read-your-writes offsets,
// timing and metrics around the handlers of the Oso Cloud–compatible endpoints (/api/*), the
// native /v1 endpoints and the health and metrics endpoints. docs/api.md describes the contract.
//
// Threading: Handle() runs on an I/O thread. Reads are answered there from the in-memory snapshot.
// Writes and anything that touches the store run on a separate pool of blocking threads, so a
// commit waiting for the disk never holds up a check.
#ifndef MANDATE_SERVER_API_H_
#define MANDATE_SERVER_API_H_

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/beast/http/verb.hpp>
#include <boost/json/value.hpp>
#include <boost/url/segments_view.hpp>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"

#include "audit/entry.h"
#include "mcp/gateway.h"
#include "server/auth.h"
#include "server/authzen.h"
#include "server/console.h"
#include "server/http_server.h"
#include "server/json_decode.h"
#include "server/metrics.h"
#include "server/service.h"

namespace mandate::audit {
class AuditLog;
class Monitor;
}

namespace mandate::server {

struct ApiOptions {
  // How long a read carrying an OsoOffset ahead of the serving revision waits before 409.
  std::chrono::milliseconds offset_wait{2'000};
  // Writes queued or running beyond this are refused with 429.
  size_t max_pending_writes = 1024;
  // Threads that run writes and store reads (they mostly wait for the disk).
  int blocking_threads = 8;
  // The AuthZEN endpoints' type mapping and metadata (authzen_handlers.cc).
  AuthzenConfig authzen;
  // The MCP gateway (src/mcp/), when upstreams are configured: it serves /mcp/<name> and
  // /.well-known/oauth-protected-resource/mcp/<name> itself. Not owned.
  mcp::Gateway* mcp_gateway = nullptr;
  // The audit log every decision and admin change is written to (null: auditing off), and the cap
  // on a record's context (audit/entry.h).
  audit::AuditLog* audit_log = nullptr;
  size_t audit_context_bytes = 4096;
  audit::Monitor* audit_monitor = nullptr;  // sinks and alerts: their counters go to /metrics
  // The web console (/ui/ and session cookies); null: /ui/ answers 404 and only API keys authenticate. Not owned.
  Console* console = nullptr;
  // [server] public_url: the base of links to this server (an approval's console URL); "" = the
  // request's Host header over http.
  std::string public_url;
};

// Keyset pagination over sorted, unique ids, shared by /api/list and the AuthZEN searches. A token
// carries the page size and the last id of its page, so a page never repeats or skips ids when facts
// change between requests.
struct IdPage {
  std::vector<std::string> ids;
  std::optional<std::string> next_token;  // nullopt on the last page
};
// `size` 0 = everything in one page; a `token` (a next_token) overrides `size`. A token this server
// did not issue is InvalidArgument at `token_at`.
absl::StatusOr<IdPage> PageOf(std::vector<std::string> sorted_ids, int64_t size,
                              const std::optional<std::string>& token, const JsonPointer& token_at);
// Sorted and without duplicates, so that results and pages are stable.
std::vector<std::string> SortedUnique(std::vector<std::string> v);

// The HTTP status for an error status (InvalidArgument 400, Unauthenticated 401, PermissionDenied 403,
// NotFound 404, Aborted 409, FailedPrecondition 422, ResourceExhausted 429, Unavailable 503, ...).
int HttpStatusFor(absl::StatusCode code);

// Who may call a route.
enum class Access { kPublic, kRead, kAdmin };

struct Call;

// The body of POST /v1/approvals/{id}/approve (approve) or /deny: {"approver"?, "note"?, "uses"?,
// "ttl_seconds"?} (uses and ttl_seconds only when approving), with JSON-pointer errors.
absl::StatusOr<agents::ApprovalDecisionRequest> DecodeApprovalDecision(const boost::json::value& body, bool approve);

// One POST /v1/check request (or one item of /v1/check/batch) at `at`: actor, on_behalf_of, action,
// resource, context, context_facts (type-checked against `policy`), time (honoured only when
// `trusted_time`; the request's time is `now_unix` otherwise), explain and arguments. Errors are
// InvalidArgument naming the JSON pointer of the bad field.
absl::StatusOr<agents::CheckRequest> DecodeCheck(const boost::json::value& v, const JsonPointer& at,
                                                 const Policy& policy, bool trusted_time, int64_t now_unix);
// Removes "wait_seconds" (0 to 300, the longest a /v1/check may wait for a decision) from a
// /v1/check body and returns it; 0 when absent.
absl::StatusOr<int64_t> TakeWaitSeconds(boost::json::value* body);

// A handler's answer.
struct Reply {
  Reply() = default;
  Reply(int status, boost::json::value body) : status(status), body(std::move(body)) {}

  int status = 200;
  boost::json::value body;
  std::optional<uint64_t> offset;  // sent as the OsoOffset header (writes)
  std::string content_type = "application/json";
  std::string text;                                          // used instead of `body` when content_type is not JSON
  // The JSON body already serialized, sent instead of `body` when non-empty: the batch endpoints
  // write their answers straight into text rather than building a JSON value per item.
  std::string json_text;
  std::vector<std::pair<std::string, std::string>> headers;  // extra response headers
  // When set, the handler has not answered yet (it must wait or do blocking work first, e.g. a
  // long-polled /v1/check): Run hands the call to `later` instead of answering, and `later` must
  // eventually end it with Api::Finish or Api::Fail, from any thread.
  std::function<void(std::shared_ptr<Call>)> later;

  // A write's revision token: the OsoOffset header, and the "revision" field (a string, as in
  // /v1/check answers) when the body is an object.
  Reply& WithRevision(uint64_t revision);
};

// A rejected policy in Oso's SavePolicyError shape (oso_handlers.cc; POST /api/policy, /v1/policy/validate).
boost::json::object SavePolicyError(const PolicyRejection& r);

// Audit entries the handlers add to their Call (audit_handlers.cc): one decision (with the request's
// context facts, when `request` has them), and an admin change of facts (counts and the first
// changes, rendered as Polar). A batch serializes its request's context facts once
// (DecisionContext) and passes that to the record of each item.
audit::Entry DecisionRecord(const TypedValue& actor, std::string action, std::string resource, bool allowed,
                            const boost::json::object* request = nullptr);
std::shared_ptr<const std::string> DecisionContext(const boost::json::object* request);
audit::Entry DecisionRecord(const TypedValue& actor, std::string action, std::string resource, bool allowed,
                            std::shared_ptr<const std::string> context);
audit::Entry ChangesRecord(std::string action, const std::vector<LabeledChange>& changes);

class Api;
struct CheckInFlight;  // a /v1/check waiting for its approval (approval_handlers.cc)
// One request in progress. Handlers read it; Api owns it.
struct Call {
  Request request;
  std::string path;
  std::vector<std::pair<std::string, std::string>> params;  // decoded query parameters, in order
  std::vector<std::pair<std::string, std::string>> path_params;  // {name} segments of the route, decoded
  Role role = Role::kRead;                                        // of the caller's key (public routes: kRead)
  std::optional<SessionUser> user;  // set when a console session cookie authenticated the call (auth.h)
  std::string request_id;
  std::chrono::steady_clock::time_point start;
  std::string route_label;  // "POST /api/authorize", or "unmatched"
  Metrics::RouteCounters* route_metrics = nullptr;  // the matched route's (null: looked up by route_label)
  Respond respond;
  bool admin = false;  // the route needs an admin key: recorded in the audit log even without an entry
  // Audit records of this request: handlers add one per decision (each batch item too) and per
  // admin change; Finish() completes them (request id, API, status, latency, versions, client) and
  // writes them to the audit log before (sync) or while (async) the response is sent.
  std::vector<audit::Entry> audit;
  // Whether the audit log is on: without it, handlers skip building records nobody reads.
  bool auditing = false;
  audit::Entry& Audit(audit::Entry e) {
    audit.push_back(std::move(e));
    return audit.back();
  }

  std::optional<std::string> Param(std::string_view name) const;
  std::optional<std::string> PathParam(std::string_view name) const;
};

class Api {
 public:
  Api(Service& service, KeyRing keys, Metrics& metrics, boost::asio::io_context& io, ApiOptions options = {});
  ~Api();  // waits for queued and running writes to finish

  // The HttpServer handler.
  void Handle(Request request, Respond respond);

  // Marks the server as shutting down: /readyz answers 503 from now on.
  void Stop();

  // Writes the audit records of approval steps taken outside an HTTP call of this API (the MCP
  // gateway deciding through elicitation, expiry), in the shape of POST /v1/approvals/{id}/approve's.
  void AuditApprovalSteps(std::string_view api, const std::vector<agents::ApprovalEvent>& events) const;

  using Fn = absl::StatusOr<Reply> (Api::*)(Call&);
  struct Route {
    boost::beast::http::verb method;
    std::string path;  // a "{name}" segment matches any one non-empty segment (Call::PathParam)
    Access access;
    Fn fn;
    bool blocking = false;  // runs on the blocking pool (writes, store reads)
    bool is_write = false;  // counted against max_pending_writes
  };

 private:
  void Dispatch(std::shared_ptr<Call> call, const Route* route);
  void Run(std::shared_ptr<Call> call, const Route* route);
  // Waits (bounded, without blocking a thread) until the serving revision reaches `offset`.
  void AwaitOffset(std::shared_ptr<Call> call, const Route* route, uint64_t offset,
                   std::chrono::steady_clock::time_point deadline);
  void Finish(Call& call, Reply reply);
  void Fail(Call& call, const absl::Status& status);

  // Handlers, in oso_handlers.cc and system_handlers.cc.
  absl::StatusOr<Reply> Authorize(Call& c);
  absl::StatusOr<Reply> List(Call& c);
  absl::StatusOr<Reply> Actions(Call& c);
  absl::StatusOr<Reply> EvaluateQuery(Call& c);
  absl::StatusOr<Reply> AuthorizeResources(Call& c);
  absl::StatusOr<Reply> BulkActions(Call& c);
  absl::StatusOr<Reply> QueryV1(Call& c);
  absl::StatusOr<Reply> GetFacts(Call& c);
  absl::StatusOr<Reply> Batch(Call& c);
  absl::StatusOr<Reply> InsertFact(Call& c);
  absl::StatusOr<Reply> DeleteFact(Call& c);
  absl::StatusOr<Reply> BulkLoad(Call& c);
  absl::StatusOr<Reply> BulkDelete(Call& c);
  absl::StatusOr<Reply> Bulk(Call& c);
  absl::StatusOr<Reply> ClearData(Call& c);
  absl::StatusOr<Reply> GetPolicy(Call& c);
  absl::StatusOr<Reply> PostPolicy(Call& c);
  absl::StatusOr<Reply> PolicyMetadata(Call& c);
  absl::StatusOr<Reply> Stats(Call& c);
  absl::StatusOr<Reply> NotSupported(Call& c);
  absl::StatusOr<Reply> PolicyVersions(Call& c);
  absl::StatusOr<Reply> Healthcheck(Call& c);
  absl::StatusOr<Reply> Healthz(Call& c);
  absl::StatusOr<Reply> Readyz(Call& c);
  absl::StatusOr<Reply> MetricsText(Call& c);
  // The audit log, in audit_handlers.cc (docs/audit.md).
  absl::StatusOr<Reply> AuditRecords(Call& c);
  absl::StatusOr<Reply> AuditCheckpoints(Call& c);
  absl::StatusOr<Reply> AuditStream(Call& c);
  absl::StatusOr<Reply> Alerts(Call& c);
  // Writes the audit records of `call` and then sends `res` (audit_handlers.cc).
  void RecordAndRespond(Call& call, int status, const boost::json::value& body, double seconds, Response res);
  // Native agent endpoints, in v1_handlers.cc (docs/agents.md).
  absl::StatusOr<Reply> V1Check(Call& c);
  absl::StatusOr<Reply> V1CheckBatch(Call& c);
  absl::StatusOr<Reply> V1CreateAgent(Call& c);
  absl::StatusOr<Reply> V1ListAgents(Call& c);
  absl::StatusOr<Reply> V1GetAgent(Call& c);
  absl::StatusOr<Reply> V1PatchAgent(Call& c);
  absl::StatusOr<Reply> V1DeleteAgent(Call& c);
  absl::StatusOr<Reply> V1Grant(Call& c);
  absl::StatusOr<Reply> V1ListGrants(Call& c);  // the grants in effect
  absl::StatusOr<Reply> V1GetTask(Call& c);
  absl::StatusOr<Reply> V1CompleteTask(Call& c);
  // The answer of one /v1/check once decided (v1_handlers.cc): counts and audits it, and renders it
  // with its approval.
  Reply CheckAnswer(Call& c, const agents::CheckRequest& req, const agents::CheckResult& r,
                    const boost::json::value& request, uint64_t revision, const std::string& request_id);
  // Human approvals, in approval_handlers.cc (docs/approvals.md).
  absl::StatusOr<Reply> V1ListApprovals(Call& c);
  absl::StatusOr<Reply> V1GetApproval(Call& c);
  absl::StatusOr<Reply> V1ApproveApproval(Call& c);
  absl::StatusOr<Reply> V1DenyApproval(Call& c);
  absl::StatusOr<Reply> DecideApproval(Call& c, bool approve);
  // Finishes a /v1/check whose evaluation matched requires_approval: the approval step (a store
  // call) on the blocking pool, then, with wait_seconds, a wait for a decision that holds no thread.
  // `revision`: the store revision the check was evaluated at (reported in the answer).
  Reply ApprovalCheck(agents::CheckRequest req, agents::CheckResult r, boost::json::value body, int64_t wait_seconds,
                      uint64_t revision);
  void AwaitApproval(std::shared_ptr<Call> call, std::shared_ptr<CheckInFlight> check);
  // The base of links to this server, e.g. "https://mandate.example.com".
  std::string PublicBase(const Call& c) const;
  // Audits approval steps (records of kind "approval"; webhooks receive them like any record).
  void AuditApprovalEvents(Call& c, const std::vector<agents::ApprovalEvent>& events) const;
  // The expiry sweep's records, written without a request.
  void WireApprovalExpiry();
  // Grants from POST /v1/grants and from the "mandate" extension of a /api/batch changeset:
  // DecodeGrant checks the metadata object at `at` (task, ttl_seconds, expires_at) and the facts
  // against the policy without changing anything; StoreGrant then stores them.
  struct PendingGrant {
    std::vector<Fact> facts;
    std::string task;
    std::optional<int64_t> expires_at;
  };
  absl::StatusOr<PendingGrant> DecodeGrant(const boost::json::object& meta, const JsonPointer& at,
                                           std::vector<LabeledChange> inserts) const;
  absl::StatusOr<boost::json::value> StoreGrant(PendingGrant grant, uint64_t* revision);
  // The web console, in console_handlers.cc (docs/console.md): assets, sign-in and sessions, and the
  // endpoints its pages need beyond the others: audit chain verification and policy validation.
  absl::StatusOr<Reply> ConsoleRedirect(Call& c);
  absl::StatusOr<Reply> ConsoleAsset(Call& c);
  absl::StatusOr<Reply> ConsoleLogin(Call& c);
  absl::StatusOr<Reply> ConsoleLogout(Call& c);
  absl::StatusOr<Reply> ConsoleSession(Call& c);
  absl::StatusOr<Reply> AuditVerify(Call& c);
  absl::StatusOr<Reply> PolicyValidate(Call& c);
  // Authenticates a call to a non-public route by its API key or, without an Authorization header,
  // by a console session cookie (then CSRF-checked); sets call.role and call.user and checks the
  // route's access.
  absl::Status Authenticate(Call& call, const Route& route);
  // OpenID AuthZEN 1.0, in authzen_handlers.cc.
  absl::StatusOr<Reply> AuthzenEvaluation(Call& c);
  absl::StatusOr<Reply> AuthzenEvaluations(Call& c);
  absl::StatusOr<Reply> AuthzenSearchSubject(Call& c);
  absl::StatusOr<Reply> AuthzenSearchResource(Call& c);
  absl::StatusOr<Reply> AuthzenSearchAction(Call& c);
  absl::StatusOr<Reply> AuthzenConfiguration(Call& c);

  // Shared by the handlers.
  // Decodes and type-checks the "context_facts" of a read request whose object is at `at`.
  absl::StatusOr<QueryOptions> ReadOptions(const boost::json::object& body, const JsonPointer& at,
                                           const Policy& policy) const;
  absl::StatusOr<Reply> Write(std::vector<LabeledChange> changes);
  // The actions of one ActionsQuery object (POST /api/actions, each of /api/bulk_actions).
  absl::StatusOr<std::vector<std::string>> ActionsFor(const Snapshot& snap, const boost::json::value& query,
                                                      const JsonPointer& at) const;

  // The router (api.cc). IndexRoutes runs once the route table is built: routes with a literal path
  // are found by one hash lookup, and only those with "{name}" segments are matched segment by
  // segment. FindRoute returns the index of the route for the request's path and method (filling
  // call.path_params), or npos with the methods the path allows (for 405) in `allowed`.
  void IndexRoutes();
  size_t FindRoute(Call& call, const boost::urls::segments_view& segments, std::string* allowed) const;

  Service& service_;
  const KeyRing keys_;
  Metrics& metrics_;
  boost::asio::io_context& io_;
  const ApiOptions options_;
  std::vector<Route> routes_;
  std::vector<std::string> route_labels_;                   // "POST /api/authorize", parallel to routes_
  std::vector<Metrics::RouteCounters*> route_metrics_;      // parallel to routes_
  absl::flat_hash_map<std::string, std::vector<size_t>> literal_routes_;  // path -> routes, in table order
  std::vector<size_t> pattern_routes_;                      // routes with "{name}" segments, in table order
  boost::asio::thread_pool blocking_;
  std::atomic<size_t> pending_writes_{0};
  std::atomic<bool> stopping_{false};
};

}  // namespace mandate::server

#endif  // MANDATE_SERVER_API_H_
