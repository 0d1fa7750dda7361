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

#include "absl/status/statusor.h"

#include "server/auth.h"
#include "server/http_server.h"
#include "server/json_decode.h"
#include "server/metrics.h"
#include "server/service.h"

namespace mandate::server {

struct ApiOptions {
  // How long a read carrying an OsoOffset ahead of the serving revision waits before 409.
  std::chrono::milliseconds offset_wait{2'000};
  // Writes queued or running beyond this are refused with 429.
  size_t max_pending_writes = 1024;
  // Threads that run writes and store reads (they mostly wait for the disk).
  int blocking_threads = 8;
};

// The HTTP status for an error status (InvalidArgument 400, Unauthenticated 401, PermissionDenied 403,
// NotFound 404, Aborted 409, FailedPrecondition 422, ResourceExhausted 429, Unavailable 503, ...).
int HttpStatusFor(absl::StatusCode code);

// Who may call a route.
enum class Access { kPublic, kRead, kAdmin };

// A handler's answer.
struct Reply {
  Reply() = default;
  Reply(int status, boost::json::value body) : status(status), body(std::move(body)) {}

  int status = 200;
  boost::json::value body;
  std::optional<uint64_t> offset;  // sent as the OsoOffset header (writes)
  std::string content_type = "application/json";
  std::string text;                                          // used instead of `body` when content_type is not JSON
  std::vector<std::pair<std::string, std::string>> headers;  // extra response headers
};

class Api;
// One request in progress. Handlers read it; Api owns it.
struct Call {
  Request request;
  std::string path;
  std::vector<std::pair<std::string, std::string>> params;  // decoded query parameters, in order
  std::string request_id;
  std::chrono::steady_clock::time_point start;
  std::string route_label;  // "POST /api/authorize", or "unmatched"
  Respond respond;

  std::optional<std::string> Param(std::string_view name) const;
};

class Api {
 public:
  Api(Service& service, KeyRing keys, Metrics& metrics, boost::asio::io_context& io, ApiOptions options = {});
  ~Api();  // waits for queued and running writes to finish

  // The HttpServer handler.
  void Handle(Request request, Respond respond);

  // Marks the server as shutting down: /readyz answers 503 from now on.
  void Stop();

  using Fn = absl::StatusOr<Reply> (Api::*)(Call&);
  struct Route {
    boost::beast::http::verb method;
    std::string path;
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

  // Shared by the handlers.
  // Decodes and type-checks the "context_facts" of a read request whose object is at `at`.
  absl::StatusOr<QueryOptions> ReadOptions(const boost::json::object& body, const JsonPointer& at,
                                           const Policy& policy) const;
  absl::StatusOr<Reply> Write(std::vector<LabeledChange> changes);
  // The actions of one ActionsQuery object (POST /api/actions, each of /api/bulk_actions).
  absl::StatusOr<std::vector<std::string>> ActionsFor(const Snapshot& snap, const boost::json::value& query,
                                                      const JsonPointer& at) const;

  Service& service_;
  const KeyRing keys_;
  Metrics& metrics_;
  boost::asio::io_context& io_;
  const ApiOptions options_;
  std::vector<Route> routes_;
  boost::asio::thread_pool blocking_;
  std::atomic<size_t> pending_writes_{0};
  std::atomic<bool> stopping_{false};
};

}  // namespace mandate::server

#endif  // MANDATE_SERVER_API_H_
