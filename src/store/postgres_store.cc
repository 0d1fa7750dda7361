// PostgreSQL implementation of Store, for several Mandate nodes on one database (DESIGN §6,
// docs/operations.md).
//
// Total order of revisions: meta('revision') is a single-row counter that every fact/policy write
// transaction locks (SELECT ... FOR UPDATE) and advances before it commits. The row lock serializes
// writers across all nodes, so revisions are dense and commit in revision order: when a follower
// sees revision r, every revision below r is already committed and visible. (A sequence would hand
// out numbers that can commit out of order, and a follower reading `revision > applied` would then
// skip a lower revision that committed late.) The lock is held for one group commit, which is
// short; write throughput is bounded by one database, which is the point: Mandate is not a
// distributed database.
//
// Group commit as in the SQLite store: the writer at the front of the queue commits the writers
// queued behind it in one transaction, each in its own SAVEPOINT. Consecutive inserts of a write go
// to the database as one multi-row statement (unnest of arrays).
//
// Following: a thread LISTENs on channel mandate_changes (every write NOTIFYs at commit) and also
// polls every poll_interval, so a missed notification only delays. It reads the changelog past the
// revision this node applied and hands each revision to Follower::apply. Before a writer validates
// its group it applies, under the same lock, every revision committed before its own, so validate
// hooks see every earlier write of every node. `apply_mu_` makes applying (by the follower or by a
// writer's catch-up and on_durable) one sequence per node.
//
// Writes of agents, grants, tasks and approval decisions take a revision too (so that a client can
// carry it as a token to another node): their transaction does its work, then advances the counter
// (last, so that the row lock is held only for the commit) and records one changelog row naming
// what changed (op "agent", "grants", "task", "approval", "purge"). The follower hands a run of
// such revisions to Follower::side_changed, in order with the fact writes. A writer must not call
// side_changed while it holds the counter lock (the callback reloads agents, whose writers may be
// waiting for that lock): CommitGroup catches up to such a revision before it takes the lock.
// (meta('side') is left over from before these writes took revisions; nothing reads it.)
//
// Connection loss: every method reconnects on its next call, so a database restart needs no node
// restart; a write whose COMMIT outcome is unknown returns Unavailable (if it did commit, the
// follower applies it like another node's write).
#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <functional>
#include <map>
#include <mutex>
#include <thread>

#include <boost/json/serialize.hpp>
#include <libpq-fe.h>
#include <poll.h>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"

#include "store/store.h"
#include "store/store_internal.h"
#include "store/wire_json.h"

namespace mandate::store {
namespace {

using internal::GroupCommitQueue;
using internal::kApprovalColumns;
using internal::NowRfc3339;

// Numbered schema migrations, applied in order; schema_migrations lists those applied. Never edit
// a released migration; append a new one.
constexpr const char* kMigrations[] = {
    // 1: counters, facts, changelog, policy versions, agents, tasks, grants, approvals.
    R"sql(
    CREATE TABLE meta(key TEXT PRIMARY KEY, value BIGINT NOT NULL);
    INSERT INTO meta(key, value) VALUES('revision', 0), ('side', 0);
    -- k: hex SHA-256 of the whole fact (a primary key over the text columns would cap their size).
    -- Byte-wise collation: the keys are compared for equality only, and locale-aware comparison
    -- halves insert throughput. Pattern deletes find facts by their first id (hash: any length).
    CREATE TABLE facts(
      k TEXT COLLATE "C" PRIMARY KEY, predicate TEXT COLLATE "C" NOT NULL, arity INTEGER NOT NULL,
      t0 TEXT NOT NULL, i0 TEXT NOT NULL, t1 TEXT NOT NULL, i1 TEXT NOT NULL,
      t2 TEXT NOT NULL, i2 TEXT NOT NULL, t3 TEXT NOT NULL, i3 TEXT NOT NULL,
      t4 TEXT NOT NULL, i4 TEXT NOT NULL);
    CREATE INDEX facts_by_predicate ON facts(predicate, arity);
    CREATE INDEX facts_by_first_id ON facts USING hash (i0);
    CREATE TABLE changelog(
      revision BIGINT NOT NULL, seq INTEGER NOT NULL, time TEXT NOT NULL, op TEXT NOT NULL, data TEXT NOT NULL,
      PRIMARY KEY(revision, seq));
    CREATE TABLE policy_versions(
      version BIGINT PRIMARY KEY, revision BIGINT NOT NULL, sha256 TEXT NOT NULL,
      filename TEXT NOT NULL, source TEXT NOT NULL, created_at TEXT NOT NULL);
    CREATE TABLE agents(
      id TEXT PRIMARY KEY, owner_type TEXT NOT NULL, owner_id TEXT NOT NULL, description TEXT NOT NULL,
      status TEXT NOT NULL, created_at TEXT NOT NULL, updated_at TEXT NOT NULL);
    CREATE TABLE tasks(id TEXT PRIMARY KEY, status TEXT NOT NULL, created_at TEXT NOT NULL, completed_at TEXT NOT NULL);
    CREATE TABLE grants(
      id BIGSERIAL PRIMARY KEY, fact TEXT NOT NULL, task TEXT NOT NULL, expires_at BIGINT, created_at TEXT NOT NULL);
    CREATE INDEX grants_by_task ON grants(task);
    CREATE INDEX grants_by_expiry ON grants(expires_at) WHERE expires_at IS NOT NULL;
    CREATE TABLE approvals(
      id TEXT PRIMARY KEY, request_key TEXT NOT NULL, status TEXT NOT NULL,
      actor_type TEXT NOT NULL, actor_id TEXT NOT NULL, on_behalf_of TEXT NOT NULL, action TEXT NOT NULL,
      resource_type TEXT NOT NULL, resource_id TEXT NOT NULL, context TEXT NOT NULL,
      arguments_digest TEXT NOT NULL, reasons TEXT NOT NULL, created_at BIGINT NOT NULL,
      expires_at BIGINT NOT NULL, decided_at BIGINT, approver_type TEXT NOT NULL,
      approver_id TEXT NOT NULL, note TEXT NOT NULL, uses_left BIGINT NOT NULL);
    CREATE INDEX approvals_by_key ON approvals(request_key, status);
    CREATE INDEX approvals_by_actor ON approvals(actor_type, actor_id, status);
    CREATE INDEX approvals_by_status ON approvals(status, expires_at);
    CREATE INDEX approvals_by_created ON approvals(created_at, id);
    )sql",
};
constexpr int kSchemaVersion = sizeof(kMigrations) / sizeof(kMigrations[0]);

// Advisory lock keys (pg_advisory_lock takes any bigint; these spell "mandate" + purpose).
constexpr int64_t kMigrationLock = 0x6d616e6461746501;
constexpr int64_t kApprovalLock = 0x6d616e6461746502;
constexpr char kChannel[] = "mandate_changes";
// The changelog row of a fact write (one per revision): op kChangesOp, data one line per change
// in order, kInsertLine + the fact or kDeleteLine + the pattern as Oso wire JSON (which never holds
// a raw newline). Databases written before this format hold one row per change (op "insert" or
// "delete", data the JSON); both are read.
constexpr char kChangesOp[] = "changes";
constexpr char kInsertLine[] = "+";
constexpr char kDeleteLine[] = "-";

int64_t NowUnixMs() { return absl::ToUnixMillis(absl::Now()); }

using Param = std::optional<std::string>;  // nullopt = SQL NULL

// One result; rows are read as text.
class Result {
 public:
  explicit Result(PGresult* r) : r_(r, PQclear) {}
  int rows() const { return PQntuples(r_.get()); }
  std::string Text(int row, int col) const {
    return std::string(PQgetvalue(r_.get(), row, col), static_cast<size_t>(PQgetlength(r_.get(), row, col)));
  }
  int64_t Int(int row, int col) const {
    int64_t v = 0;
    (void)absl::SimpleAtoi(absl::string_view(PQgetvalue(r_.get(), row, col)), &v);
    return v;
  }
  bool IsNull(int row, int col) const { return PQgetisnull(r_.get(), row, col) != 0; }
  PGresult* get() const { return r_.get(); }

  // One row, read by column (the shape the shared row decoders take).
  struct Row {
    const Result& r;
    int row;
    std::string Text(int col) const { return r.Text(row, col); }
    int64_t Int(int col) const { return r.Int(row, col); }
    bool IsNull(int col) const { return r.IsNull(row, col); }
  };

 private:
  std::unique_ptr<PGresult, void (*)(PGresult*)> r_;
};

// A connection that reconnects on the next use after it broke. Not thread-safe: each owner guards it.
class Conn {
 public:
  explicit Conn(std::string url) : url_(std::move(url)) {}
  Conn(const Conn&) = delete;
  Conn& operator=(const Conn&) = delete;
  ~Conn() { Close(); }

  void Close() {
    if (conn_ != nullptr) PQfinish(conn_);
    conn_ = nullptr;
  }

  // Connected, or Unavailable.
  absl::Status Ensure() {
    if (conn_ != nullptr && PQstatus(conn_) == CONNECTION_OK) return absl::OkStatus();
    Close();
    // The URL first (expanded), then defaults it did not set: fail fast when the database is down.
    // TCP keepalives and a send timeout make a silently vanished server an error within seconds
    // instead of a hang (writes must fail fast; the follower must notice and reconnect).
    const char* keys[] = {"dbname",      "connect_timeout", "application_name",    "keepalives_idle",
                          "keepalives_interval", "keepalives_count", "tcp_user_timeout", nullptr};
    const char* values[] = {url_.c_str(), "3", "mandate", "5", "2", "3", "10000", nullptr};
    conn_ = PQconnectdbParams(keys, values, 1);
    if (conn_ == nullptr || PQstatus(conn_) != CONNECTION_OK) {
      absl::Status s = absl::UnavailableError(
          absl::StrCat("postgres: cannot connect: ", conn_ ? TrimmedError(PQerrorMessage(conn_)) : "out of memory"));
      Close();
      return s;
    }
    PQsetNoticeProcessor(conn_, [](void*, const char*) {}, nullptr);  // NOTICEs (e.g. IF NOT EXISTS) are noise
    return absl::OkStatus();
  }

  // Runs one statement (text parameters $1...); `what` names it in errors.
  absl::StatusOr<Result> Exec(std::string_view sql, const std::vector<Param>& params = {}, const char* what = nullptr) {
    if (absl::Status s = Ensure(); !s.ok()) return s;
    // Outside a transaction, a statement that finds the connection dead (the server restarted
    // since the last use) runs again on a new one: it cannot have taken effect.
    const bool idle = PQtransactionStatus(conn_) == PQTRANS_IDLE;
    absl::StatusOr<Result> r = ExecOnce(sql, params, what);
    if (!r.ok() && idle && PQstatus(conn_) != CONNECTION_OK) {
      if (absl::Status s = Ensure(); !s.ok()) return s;
      r = ExecOnce(sql, params, what);
    }
    return r;
  }

  absl::Status Run(std::string_view sql, const std::vector<Param>& params = {}, const char* what = nullptr) {
    return Exec(sql, params, what).status();
  }

  PGconn* raw() { return conn_; }

 private:
  absl::StatusOr<Result> ExecOnce(std::string_view sql, const std::vector<Param>& params, const char* what) {
    std::vector<const char*> values;
    values.reserve(params.size());
    for (const Param& p : params) values.push_back(p ? p->c_str() : nullptr);
    const std::string text(sql);
    Result r(params.empty() ? PQexec(conn_, text.c_str())
                            : PQexecParams(conn_, text.c_str(), static_cast<int>(values.size()), nullptr,
                                           values.data(), nullptr, nullptr, 0));
    const ExecStatusType st = PQresultStatus(r.get());
    if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) return r;
    return Error(r, what ? what : "query");
  }

  static std::string TrimmedError(const char* msg) {
    std::string s = msg ? msg : "";
    while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
    return s;
  }
  absl::Status Error(const Result& r, const char* what) {
    PGresult* res = r.get();
    const char* state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
    std::string msg = TrimmedError(PQresultErrorMessage(res));
    if (msg.empty()) msg = TrimmedError(PQerrorMessage(conn_));
    const std::string text = absl::StrCat("postgres: ", what, ": ", msg);
    if (PQstatus(conn_) != CONNECTION_OK) return absl::UnavailableError(text);
    if (state != nullptr && std::strcmp(state, "23505") == 0) return absl::AlreadyExistsError(text);
    // Class 08 (connection), 57P (shutdown), 53 (resources): the database is not serving.
    if (state != nullptr && (absl::StartsWith(state, "08") || absl::StartsWith(state, "57P") ||
                             absl::StartsWith(state, "53"))) {
      return absl::UnavailableError(text);
    }
    if (state != nullptr && std::strcmp(state, "22021") == 0) return absl::InvalidArgumentError(text);  // bad UTF-8/NUL
    return absl::InternalError(text);
  }

  const std::string url_;
  PGconn* conn_ = nullptr;
};

// A PostgreSQL array literal of text elements: {"a","b\"c"}.
std::string TextArray(const std::vector<std::string_view>& items) {
  std::string out = "{";
  for (size_t i = 0; i < items.size(); ++i) {
    if (i > 0) out += ',';
    out += '"';
    for (char c : items[i]) {
      if (c == '"' || c == '\\') out += '\\';
      out += c;
    }
    out += '"';
  }
  out += '}';
  return out;
}

// Hex SHA-256 over the fact's fields, each length-prefixed (so no two facts share a key).
std::string FactKey(const Fact& f) {
  std::string buf = absl::StrCat(f.predicate.size(), ":", f.predicate, "/", f.args.size());
  for (const TypedValue& v : f.args) absl::StrAppend(&buf, "|", v.type.size(), ":", v.type, v.id.size(), ":", v.id);
  return Sha256Hex(buf);
}

// The changes one changelog row records, each as (op, wire JSON): a kChangesOp row expanded, else
// the row itself.
std::vector<std::pair<std::string_view, std::string_view>> LoggedChanges(std::string_view op, std::string_view data) {
  if (op != kChangesOp) return {{op, data}};
  std::vector<std::pair<std::string_view, std::string_view>> out;
  while (!data.empty()) {
    const size_t eol = std::min(data.find('\n'), data.size());
    std::string_view line = data.substr(0, eol);
    data.remove_prefix(std::min(eol + 1, data.size()));
    if (line.empty()) continue;
    const std::string_view mark = line.substr(0, 1);
    out.emplace_back(mark == kInsertLine ? "insert" : (mark == kDeleteLine ? "delete" : "?"), line.substr(1));
  }
  return out;
}

absl::StatusOr<std::vector<ApprovalRecord>> ApprovalRows(const Result& r) {
  std::vector<ApprovalRecord> out;
  for (int i = 0; i < r.rows(); ++i) {
    absl::StatusOr<ApprovalRecord> a = internal::DecodeApprovalRow(Result::Row{r, i});
    if (!a.ok()) return a.status();
    out.push_back(*std::move(a));
  }
  return out;
}

// Runs `body` in a transaction on `conn` (committed if it returns OK, else rolled back).
absl::Status InTransaction(Conn& conn, const std::function<absl::Status()>& body) {
  if (absl::Status s = conn.Run("BEGIN", {}, "begin"); !s.ok()) return s;
  absl::Status s = body();
  if (s.ok()) s = conn.Run("COMMIT", {}, "commit");
  if (!s.ok()) conn.Run("ROLLBACK").IgnoreError();
  return s;
}

// The last migration applied; 0 for a database Mandate never used.
absl::StatusOr<int> SchemaVersion(Conn& conn) {
  absl::StatusOr<Result> exists =
      conn.Exec("SELECT to_regclass('schema_migrations') IS NOT NULL", {}, "reading schema_migrations");
  if (!exists.ok()) return exists.status();
  if (exists->Text(0, 0) != "t") return 0;
  absl::StatusOr<Result> r =
      conn.Exec("SELECT COALESCE(MAX(version), 0) FROM schema_migrations", {}, "reading schema_migrations");
  if (!r.ok()) return r.status();
  return static_cast<int>(r->Int(0, 0));
}

// Brings the schema up to date under a session advisory lock: concurrent nodes starting together
// apply each migration once.
absl::StatusOr<std::pair<int, int>> Migrate(Conn& conn) {
  if (absl::Status s = conn.Run(absl::StrCat("SELECT pg_advisory_lock(", kMigrationLock, ")"), {}, "locking");
      !s.ok()) {
    return s;
  }
  auto unlock = [&] { conn.Run(absl::StrCat("SELECT pg_advisory_unlock(", kMigrationLock, ")")).IgnoreError(); };
  absl::Status s = conn.Run(
      "CREATE TABLE IF NOT EXISTS schema_migrations(version INTEGER PRIMARY KEY, applied_at TIMESTAMPTZ NOT NULL "
      "DEFAULT now())",
      {}, "creating schema_migrations");
  absl::StatusOr<int> from = s.ok() ? SchemaVersion(conn) : absl::StatusOr<int>(s);
  if (!from.ok()) {
    unlock();
    return from.status();
  }
  if (*from > kSchemaVersion) {
    unlock();
    return absl::FailedPreconditionError(absl::StrCat("the database schema is version ", *from,
                                                      ", newer than this mandate binary supports (", kSchemaVersion,
                                                      "); upgrade mandate"));
  }
  for (int v = *from + 1; v <= kSchemaVersion; ++v) {
    absl::Status m = InTransaction(conn, [&] {
      absl::Status st = conn.Run(kMigrations[v - 1], {}, "migrating");
      if (st.ok()) st = conn.Run("INSERT INTO schema_migrations(version) VALUES($1)", {std::to_string(v)}, "migrating");
      return st;
    });
    if (!m.ok()) {
      unlock();
      return absl::Status(m.code(), absl::StrCat("schema migration ", v, " failed: ", m.message()));
    }
  }
  unlock();
  return std::make_pair(*from, kSchemaVersion);
}

class PostgresStore final : public Store {
 public:
  PostgresStore(const std::string& url, PostgresOptions options)
      : options_(options), url_(url), queue_(options.max_group_changes), write_conn_(url), read_conn_(url),
        follow_conn_(url) {}
  ~PostgresStore() override { StopFollowing(); }
  void StopFollowing() override {
    {
      std::lock_guard<std::mutex> l(follow_mu_);
      stopping_ = true;
    }
    follow_cv_.notify_all();
    if (follower_thread_.joinable()) follower_thread_.join();
    // Writers of this node keep working but no longer call the callbacks.
    std::lock_guard<std::mutex> l(apply_mu_);
    follower_ = Follower{};
  }

  absl::Status Open();

  void Follow(Follower follower) override;
  SyncStatus sync_status() const override;
  void Poke() override {
    {
      std::lock_guard<std::mutex> l(follow_mu_);
      poked_ = true;
    }
    follow_cv_.notify_all();
  }

  absl::StatusOr<LoadedState> Load() override;
  using Store::Write;
  absl::StatusOr<Committed> Write(const Mutation& mutation, const WriteHooks& hooks) override;
  absl::StatusOr<uint64_t> Revision() override;
  absl::StatusOr<std::map<std::string, uint64_t>> CountFacts() override;
  absl::StatusOr<std::vector<PolicyVersion>> ListPolicyVersions() override;
  absl::StatusOr<PolicyVersion> GetPolicyVersion(int64_t version) override;
  absl::StatusOr<std::vector<ChangelogEntry>> ChangesSince(uint64_t after, size_t limit) override;
  absl::StatusOr<std::vector<AgentRecord>> ListAgents() override;
  absl::StatusOr<AgentRecord> PutAgent(const AgentRecord& agent, uint64_t* revision) override;
  absl::Status DeleteAgent(const std::string& id, uint64_t* revision) override;
  absl::Status AddGrants(std::vector<GrantRecord>* grants, uint64_t* revision) override;
  absl::StatusOr<std::vector<GrantRecord>> ListGrants() override;
  absl::StatusOr<TaskRecord> CompleteTask(const std::string& id, uint64_t* revision) override;
  absl::StatusOr<TaskRecord> GetTask(const std::string& id) override;
  absl::StatusOr<int64_t> PurgeExpiredGrants(int64_t now_unix) override;
  absl::StatusOr<ApprovalResolution> ResolveApproval(const ApprovalRecord& fresh, int64_t now_unix,
                                                     int64_t max_pending) override;
  absl::StatusOr<ApprovalRecord> GetApproval(const std::string& id, int64_t now_unix) override;
  absl::StatusOr<std::vector<ApprovalRecord>> ListApprovals(const ApprovalFilter& filter) override;
  absl::StatusOr<ApprovalRecord> DecideApproval(const std::string& id, const ApprovalDecision& decision,
                                                uint64_t* revision) override;
  absl::StatusOr<std::vector<ApprovalRecord>> ExpireApprovals(int64_t now_unix) override;

 private:
  using Writer = GroupCommitQueue::Writer;
  // A write (of another node, or of agents, grants, tasks or approvals), decoded from the changelog.
  struct Remote {
    Mutation mutation;
    Committed committed;
    bool side = false;  // agents, grants, tasks or approvals: for Follower::side_changed
  };

  void CommitGroup(const std::vector<Writer*>& group);
  absl::Status Stage(const Mutation& m, uint64_t revision, const std::string& now, Committed* out);
  // Reads the revisions in (after, upto] from the changelog on `conn`.
  absl::StatusOr<std::vector<Remote>> ReadRemote(Conn& conn, uint64_t after, uint64_t upto);
  // Applies the revisions in (applied_, upto] that this node has not applied; call with apply_mu_.
  // With `side_pending` (for a writer holding the counter lock), stops before the first revision of
  // agents, grants, tasks or approvals and sets *side_pending instead of calling side_changed.
  absl::Status CatchUp(Conn& conn, uint64_t upto, bool* side_pending = nullptr);
  // A write of agents, grants, tasks or approvals: runs `body` in a transaction on read_conn_ (with
  // read_mu_ held). If body returns a value (the changelog data of `op`), the transaction takes the
  // next revision, records it and notifies; nullopt means nothing changed (nothing is recorded).
  // `*revision` (may be null) receives the revision taken, or else the current one.
  absl::Status SideWrite(const char* op, const std::function<absl::StatusOr<std::optional<std::string>>()>& body,
                         uint64_t* revision);
  absl::StatusOr<TaskRecord> ReadTask(const std::string& id);  // read_mu_ held
  absl::StatusOr<std::vector<ApprovalRecord>> QueryApprovals(const std::string& where, std::vector<Param> params);
  void FollowLoop();
  // One round of following: reads the counters, applies what is new. Returns the error, if any.
  absl::Status FollowOnce();
  void NoteContact(const absl::Status& s);

  const PostgresOptions options_;
  const std::string url_;

  GroupCommitQueue queue_;

  std::mutex write_mu_;  // guards write_conn_
  Conn write_conn_;
  std::mutex read_mu_;  // guards read_conn_ (reads, side tables)
  Conn read_conn_;
  Conn follow_conn_;  // the follower thread's own

  // Applying to this node's memory: one sequence.
  std::mutex apply_mu_;
  std::atomic<uint64_t> applied_{0};  // written under apply_mu_; read anywhere
  Follower follower_;  // set once by Follow()

  mutable std::mutex follow_mu_;
  std::condition_variable follow_cv_;
  bool stopping_ = false;
  bool poked_ = false;
  std::thread follower_thread_;
  std::atomic<bool> following_{false};
  // SyncStatus fields, under follow_mu_.
  bool connected_ = true;
  uint64_t latest_ = 0;
  int64_t last_sync_ms_ = 0;
  std::string last_error_;
};

absl::Status PostgresStore::Open() {
  std::lock_guard<std::mutex> l(write_mu_);
  if (options_.migrate) {
    absl::StatusOr<std::pair<int, int>> m = Migrate(write_conn_);
    if (!m.ok()) return m.status();
  } else {
    absl::StatusOr<int> v = SchemaVersion(write_conn_);
    if (!v.ok()) return v.status();
    if (*v != kSchemaVersion) {
      return absl::FailedPreconditionError(
          absl::StrCat("the database schema is version ", *v, "; this mandate binary needs version ", kSchemaVersion,
                       (*v < kSchemaVersion ? "; run `mandate migrate --store URL`" : "; upgrade mandate")));
    }
  }
  return absl::OkStatus();
}

// ---- Following ---------------------------------------------------------------------------------

void PostgresStore::Follow(Follower follower) {
  {
    std::lock_guard<std::mutex> l(apply_mu_);
    follower_ = std::move(follower);
  }
  if (!following_.exchange(true)) follower_thread_ = std::thread([this] { FollowLoop(); });
}

SyncStatus PostgresStore::sync_status() const {
  SyncStatus s;
  s.shared = true;
  std::lock_guard<std::mutex> l(follow_mu_);
  s.connected = connected_;
  s.latest = latest_;
  s.last_sync_unix_ms = last_sync_ms_;
  s.last_error = last_error_;
  s.stale = NowUnixMs() - last_sync_ms_ > static_cast<int64_t>(options_.max_staleness_seconds * 1000);
  s.applied = applied_.load();  // without apply_mu_, which a writer may hold through a commit
  return s;
}

void PostgresStore::NoteContact(const absl::Status& s) {
  std::lock_guard<std::mutex> l(follow_mu_);
  connected_ = s.ok();
  if (s.ok()) {
    last_sync_ms_ = NowUnixMs();
    last_error_.clear();
  } else {
    last_error_ = std::string(s.message());
  }
}

void PostgresStore::FollowLoop() {
  const auto poll = std::chrono::milliseconds(static_cast<int64_t>(options_.poll_interval_seconds * 1000));
  bool listening = false;
  while (true) {
    {
      std::lock_guard<std::mutex> l(follow_mu_);
      if (stopping_) return;
      poked_ = false;
    }
    if (!listening) {
      // (Re)connect and LISTEN; a failure leaves us polling, which retries the connection.
      listening = follow_conn_.Run(absl::StrCat("LISTEN ", kChannel), {}, "listening").ok();
    }
    absl::Status s = FollowOnce();
    NoteContact(s);
    if (!s.ok()) listening = false;
    // Wait for a notification, a poke, the poll interval or stop. The socket is polled in short
    // slices so that a poke or stop is noticed quickly without a self-pipe.
    const auto deadline = std::chrono::steady_clock::now() + poll;
    bool notified = false;
    // Notifications that arrived while FollowOnce's queries ran are already in libpq's queue.
    if (PGconn* c = follow_conn_.raw(); listening && c != nullptr) {
      while (PGnotify* n = PQnotifies(c)) {
        notified = true;
        PQfreemem(n);
      }
    }
    while (!notified && std::chrono::steady_clock::now() < deadline) {
      {
        std::lock_guard<std::mutex> l(follow_mu_);
        if (stopping_ || poked_) break;
      }
      PGconn* c = follow_conn_.raw();
      if (listening && c != nullptr && PQsocket(c) >= 0) {
        pollfd p{PQsocket(c), POLLIN, 0};
        if (::poll(&p, 1, 20) > 0) {
          if (PQconsumeInput(c) == 0) {
            listening = false;  // the connection broke; the next round reconnects
            break;
          }
          while (PGnotify* n = PQnotifies(c)) {
            notified = true;
            PQfreemem(n);
          }
        }
      } else {
        std::unique_lock<std::mutex> l(follow_mu_);
        follow_cv_.wait_for(l, std::chrono::milliseconds(20), [this] { return stopping_ || poked_; });
      }
    }
  }
}

absl::Status PostgresStore::FollowOnce() {
  absl::StatusOr<Result> counter =
      follow_conn_.Exec("SELECT value FROM meta WHERE key = 'revision'", {}, "reading the revision");
  if (!counter.ok()) return counter.status();
  if (counter->rows() != 1) return absl::DataLossError("postgres: meta has no revision row");
  const uint64_t revision = static_cast<uint64_t>(counter->Int(0, 0));
  {
    std::lock_guard<std::mutex> l(follow_mu_);
    latest_ = std::max(latest_, revision);
  }
  std::lock_guard<std::mutex> l(apply_mu_);
  return CatchUp(follow_conn_, revision);
}

absl::StatusOr<std::vector<PostgresStore::Remote>> PostgresStore::ReadRemote(Conn& conn, uint64_t after,
                                                                               uint64_t upto) {
  absl::StatusOr<Result> r = conn.Exec(
      "SELECT c.revision, c.op, c.data, p.version, p.revision, p.sha256, p.filename, p.source, p.created_at "
      "FROM changelog c LEFT JOIN policy_versions p ON c.op = 'policy' AND p.revision = c.revision "
      "WHERE c.revision > $1 AND c.revision <= $2 ORDER BY c.revision, c.seq",
      {std::to_string(after), std::to_string(upto)}, "reading the changelog");
  if (!r.ok()) return r.status();
  std::vector<Remote> out;
  for (int i = 0; i < r->rows(); ++i) {
    const uint64_t rev = static_cast<uint64_t>(r->Int(i, 0));
    const std::string op = r->Text(i, 1);
    if (out.empty() || out.back().committed.revision != rev) {
      Remote next;
      next.committed.revision = rev;
      next.mutation.kind = Mutation::Kind::kChanges;
      out.push_back(std::move(next));
    }
    Remote& w = out.back();
    if (op == kChangesOp || op == "insert" || op == "delete") {
      const std::string data = r->Text(i, 2);
      for (const auto& [change_op, json] : LoggedChanges(op, data)) {
        Change c;
        if (change_op == "insert") {
          absl::StatusOr<Fact> f = DecodeStoredFact(json);
          if (!f.ok()) return f.status();
          c.fact = *std::move(f);
        } else if (change_op == "delete") {
          absl::StatusOr<FactPattern> p = DecodeStoredPattern(json);
          if (!p.ok()) return p.status();
          c.kind = Change::Kind::kDelete;
          c.pattern = *std::move(p);
        } else {
          return absl::DataLossError(absl::StrCat("revision ", rev, ": malformed changelog line"));
        }
        w.mutation.changes.push_back(std::move(c));
      }
    } else if (op == "clear") {
      w.mutation.kind = Mutation::Kind::kClear;
    } else if (op == "agent" || op == "grants" || op == "task" || op == "approval" || op == "purge") {
      w.side = true;
    } else if (op == "policy") {
      if (r->IsNull(i, 3)) return absl::DataLossError(absl::StrCat("revision ", rev, ": policy version missing"));
      PolicyVersion v = internal::DecodePolicyRow(Result::Row{*r, i}, 3, true);
      w.mutation = Mutation::Policy(v.filename, v.source);
      w.committed.policy = std::move(v);
    } else {
      return absl::DataLossError(absl::StrCat("revision ", rev, ": unknown changelog op \"", op, "\""));
    }
  }
  return out;
}

absl::Status PostgresStore::CatchUp(Conn& conn, uint64_t upto, bool* side_pending) {
  // Without a follower there is no copy to keep current: just move past other nodes' writes.
  if (!follower_.apply) {
    applied_ = std::max(applied_.load(), upto);
    return absl::OkStatus();
  }
  constexpr uint64_t kRevisionsPerRead = 1000;
  while (applied_ < upto) {
    const uint64_t end = std::min(upto, applied_.load() + kRevisionsPerRead);
    absl::StatusOr<std::vector<Remote>> remote = ReadRemote(conn, applied_, end);
    if (!remote.ok()) return remote.status();
    for (size_t i = 0; i < remote->size(); ++i) {
      const Remote& w = (*remote)[i];
      if (!w.side) {
        follower_.apply(w.mutation, w.committed);
        applied_ = w.committed.revision;
        continue;
      }
      if (side_pending != nullptr) {
        *side_pending = true;
        return absl::OkStatus();
      }
      while (i + 1 < remote->size() && (*remote)[i + 1].side) ++i;  // a run: one call with the last
      const uint64_t last = (*remote)[i].committed.revision;
      if (follower_.side_changed) {
        if (absl::Status s = follower_.side_changed(last); !s.ok()) return s;
      }
      applied_ = last;
    }
    applied_ = end;  // revisions without changelog rows (writes that changed nothing) included
  }
  return absl::OkStatus();
}

// ---- Reads -------------------------------------------------------------------------------------

absl::StatusOr<LoadedState> PostgresStore::Load() {
  std::unique_lock<std::mutex> l(read_mu_);
  LoadedState state;
  absl::Status s = read_conn_.Run("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", {}, "begin");
  absl::StatusOr<Result> rev =
      s.ok() ? read_conn_.Exec("SELECT value FROM meta WHERE key = 'revision'", {}, "load") : absl::StatusOr<Result>(s);
  absl::StatusOr<Result> facts =
      rev.ok() ? read_conn_.Exec("SELECT predicate, arity, t0, i0, t1, i1, t2, i2, t3, i3, t4, i4 FROM facts", {},
                                 "loading facts")
               : absl::StatusOr<Result>(rev.status());
  absl::StatusOr<Result> policy =
      facts.ok() ? read_conn_.Exec(
                       "SELECT version, revision, sha256, filename, source, created_at FROM policy_versions "
                       "ORDER BY version DESC LIMIT 1",
                       {}, "loading the policy")
                 : absl::StatusOr<Result>(facts.status());
  if (!policy.ok()) {
    read_conn_.Run("ROLLBACK").IgnoreError();
    return policy.status();
  }
  read_conn_.Run("COMMIT").IgnoreError();
  l.unlock();  // before apply_mu_: a follower holding apply_mu_ may read through read_conn_
  state.revision = rev->rows() > 0 ? static_cast<uint64_t>(rev->Int(0, 0)) : 0;
  state.facts.reserve(static_cast<size_t>(facts->rows()));
  for (int i = 0; i < facts->rows(); ++i) state.facts.push_back(internal::DecodeFactRow(Result::Row{*facts, i}));
  if (policy->rows() > 0) state.policy = internal::DecodePolicyRow(Result::Row{*policy, 0}, 0, true);
  // The copy built from this state is at its revision; following starts there. Agents and grants
  // the caller reads after this are at least as new as this revision, so a later change is seen.
  std::lock_guard<std::mutex> a(apply_mu_);
  if (!following_) applied_ = state.revision;
  return state;
}

absl::StatusOr<uint64_t> PostgresStore::Revision() {
  std::lock_guard<std::mutex> l(read_mu_);
  absl::StatusOr<Result> r = read_conn_.Exec("SELECT value FROM meta WHERE key = 'revision'", {}, "reading revision");
  if (!r.ok()) return r.status();
  return static_cast<uint64_t>(r->Int(0, 0));
}

absl::StatusOr<std::map<std::string, uint64_t>> PostgresStore::CountFacts() {
  std::lock_guard<std::mutex> l(read_mu_);
  absl::StatusOr<Result> r =
      read_conn_.Exec("SELECT predicate, COUNT(*) FROM facts GROUP BY predicate", {}, "counting facts");
  if (!r.ok()) return r.status();
  std::map<std::string, uint64_t> out;
  for (int i = 0; i < r->rows(); ++i) out[r->Text(i, 0)] = static_cast<uint64_t>(r->Int(i, 1));
  return out;
}

absl::StatusOr<std::vector<PolicyVersion>> PostgresStore::ListPolicyVersions() {
  std::lock_guard<std::mutex> l(read_mu_);
  absl::StatusOr<Result> r = read_conn_.Exec(
      "SELECT version, revision, sha256, filename, '', created_at FROM policy_versions ORDER BY version", {},
      "listing policy versions");
  if (!r.ok()) return r.status();
  std::vector<PolicyVersion> out;
  for (int i = 0; i < r->rows(); ++i) out.push_back(internal::DecodePolicyRow(Result::Row{*r, i}, 0, false));
  return out;
}

absl::StatusOr<PolicyVersion> PostgresStore::GetPolicyVersion(int64_t version) {
  std::lock_guard<std::mutex> l(read_mu_);
  absl::StatusOr<Result> r = read_conn_.Exec(
      "SELECT version, revision, sha256, filename, source, created_at FROM policy_versions WHERE version = $1",
      {std::to_string(version)}, "reading a policy version");
  if (!r.ok()) return r.status();
  if (r->rows() == 0) return absl::NotFoundError(absl::StrCat("no policy version ", version));
  return internal::DecodePolicyRow(Result::Row{*r, 0}, 0, true);
}

absl::StatusOr<std::vector<ChangelogEntry>> PostgresStore::ChangesSince(uint64_t after, size_t limit) {
  std::lock_guard<std::mutex> l(read_mu_);
  absl::StatusOr<Result> r = read_conn_.Exec(
      "SELECT revision, time, op, data FROM changelog WHERE revision > $1 ORDER BY revision, seq LIMIT $2",
      {std::to_string(after), std::to_string(std::min<size_t>(limit, INT64_MAX))}, "reading the changelog");
  if (!r.ok()) return r.status();
  std::vector<ChangelogEntry> out;
  for (int i = 0; i < r->rows() && out.size() < limit; ++i) {
    const std::string op = r->Text(i, 2), data = r->Text(i, 3);
    for (const auto& [change_op, json] : LoggedChanges(op, data)) {
      if (out.size() == limit) break;
      out.push_back(ChangelogEntry{static_cast<uint64_t>(r->Int(i, 0)), r->Text(i, 1), std::string(change_op),
                                   std::string(json)});
    }
  }
  return out;
}

// ---- Writes ------------------------------------------------------------------------------------

absl::StatusOr<Committed> PostgresStore::Write(const Mutation& mutation, const WriteHooks& hooks) {
  return queue_.Write(mutation, hooks, [this](const std::vector<Writer*>& group) { CommitGroup(group); });
}

void PostgresStore::CommitGroup(const std::vector<Writer*>& group) {
  std::lock_guard<std::mutex> wl(write_mu_);
  Conn& conn = write_conn_;
  auto fail_all = [&](const absl::Status& s) {
    for (Writer* g : group) g->result = s;
  };
  // apply_mu_ before the counter lock: the follower calls side_changed with apply_mu_ held, and
  // what it calls may wait for the counter lock (see the top of this file).
  std::lock_guard<std::mutex> al(apply_mu_);
  uint64_t base = 0;
  while (true) {
    // The counter's row lock orders this transaction after every other node's committed writes.
    // (One round trip: a statement list without parameters; the result is the last statement's.)
    absl::StatusOr<Result> locked =
        conn.Exec("BEGIN; SELECT value FROM meta WHERE key = 'revision' FOR UPDATE", {}, "locking the revision");
    if (!locked.ok() || locked->rows() != 1) {
      conn.Run("ROLLBACK").IgnoreError();
      return fail_all(locked.ok() ? absl::DataLossError("postgres: meta has no revision row") : locked.status());
    }
    base = static_cast<uint64_t>(locked->Int(0, 0));
    // Every earlier revision is applied before the validate hooks run. A revision of agents, grants,
    // tasks or approvals is applied without the lock, and then the lock taken again.
    bool side_pending = false;
    absl::Status s = CatchUp(conn, base, &side_pending);
    if (s.ok() && !side_pending) break;
    conn.Run("ROLLBACK").IgnoreError();
    if (s.ok()) s = CatchUp(conn, base);
    if (!s.ok()) return fail_all(s);
  }
  const std::string now = NowRfc3339();
  std::vector<Writer*> committed;
  // A savepoint per write keeps a failing one from taking the others with it; a write alone needs
  // none (its failure rolls back the transaction).
  const bool alone = group.size() == 1;
  const uint64_t revision = GroupCommitQueue::StageEach(
      group, base,
      [&](const Mutation& m, uint64_t next, Committed* c) {
        if (alone) return Stage(m, next, now, c);
        absl::Status s = conn.Run("SAVEPOINT w", {}, "savepoint");
        if (s.ok()) s = Stage(m, next, now, c);
        if (s.ok()) return conn.Run("RELEASE w", {}, "savepoint");
        conn.Run("ROLLBACK TO w").IgnoreError();
        conn.Run("RELEASE w").IgnoreError();
        return s;
      },
      &committed);
  if (committed.empty()) {
    conn.Run("ROLLBACK").IgnoreError();
    return;  // every writer has its error
  }
  absl::Status s = conn.Run(
      "WITH u AS (UPDATE meta SET value = $1 WHERE key = 'revision' RETURNING value) "
      "SELECT pg_notify($2, value::text) FROM u",
      {std::to_string(revision), std::string(kChannel)}, "updating the revision");
  if (s.ok()) s = conn.Run("COMMIT", {}, "commit");
  if (!s.ok()) {
    conn.Run("ROLLBACK").IgnoreError();
    // A COMMIT that failed for a broken connection may have committed: say so; the follower
    // applies it from the changelog if it did.
    if (s.code() == absl::StatusCode::kUnavailable) {
      s = absl::UnavailableError(absl::StrCat(s.message(), " (the outcome of the write is unknown)"));
    }
    for (Writer* g : committed) g->result = s;
    return;
  }
  GroupCommitQueue::NotifyDurable(committed);
  applied_ = std::max(applied_.load(), revision);
}

absl::Status PostgresStore::Stage(const Mutation& m, uint64_t revision, const std::string& now, Committed* out) {
  Conn& conn = write_conn_;
  out->revision = revision;
  const std::string rev = std::to_string(revision);
  switch (m.kind) {
    case Mutation::Kind::kChanges: {
      // Runs of inserts become one statement; deletes run one by one, in order. The changelog gets
      // one row for the whole write (op "changes", see kChangesOp), written by the statement of the
      // last run of inserts when the write ends with one.
      std::string log;
      std::vector<std::string> cols[2 + 2 * kMaxFactArgs + 1];  // k, predicate, arity, t0, i0, ...
      auto flush_inserts = [&](bool with_log) -> absl::Status {
        if (cols[0].empty()) return absl::OkStatus();
        std::vector<Param> params;
        std::string sql = with_log ? "WITH f AS (" : "";
        sql += "INSERT INTO facts(k, predicate, arity, t0, i0, t1, i1, t2, i2, t3, i3, t4, i4) SELECT * FROM unnest(";
        for (size_t c = 0; c < std::size(cols); ++c) {
          absl::StrAppend(&sql, c ? ", " : "", "$", c + 1, c == 2 ? "::int[]" : "::text[]");
          params.push_back(TextArray(std::vector<std::string_view>(cols[c].begin(), cols[c].end())));
          cols[c].clear();
        }
        sql += ") ON CONFLICT (k) DO NOTHING";
        if (with_log) {
          absl::StrAppend(&sql, ") INSERT INTO changelog(revision, seq, time, op, data) VALUES($", params.size() + 1,
                          ", 0, $", params.size() + 2, ", '", kChangesOp, "', $", params.size() + 3, ")");
          params.insert(params.end(), {rev, now, log});
        }
        return conn.Run(sql, params, with_log ? "inserting facts and writing the changelog" : "inserting facts");
      };
      for (const Change& c : m.changes) {
        const bool insert = c.kind == Change::Kind::kInsert;
        log += insert ? kInsertLine : kDeleteLine;
        log += boost::json::serialize(insert ? EncodeFact(c.fact) : EncodeFactPattern(c.pattern));
        log += '\n';
        if (insert) {
          cols[0].push_back(FactKey(c.fact));
          cols[1].push_back(c.fact.predicate);
          cols[2].push_back(std::to_string(c.fact.args.size()));
          for (size_t i = 0; i < kMaxFactArgs; ++i) {
            const bool present = i < c.fact.args.size();
            cols[3 + 2 * i].push_back(present ? c.fact.args[i].type : "");
            cols[4 + 2 * i].push_back(present ? c.fact.args[i].id : "");
          }
          continue;
        }
        if (absl::Status s = flush_inserts(false); !s.ok()) return s;
        const FactPattern& p = c.pattern;
        // A pattern without wildcards names one fact: delete it by key.
        Fact exact{p.predicate, {}};
        for (size_t i = 0; i < p.arg_types.size(); ++i) {
          if (!p.arg_types[i] || !p.arg_ids[i]) break;
          exact.args.push_back(TypedValue{*p.arg_types[i], *p.arg_ids[i]});
        }
        std::vector<Param> params;
        std::string sql;
        if (exact.args.size() == p.arg_types.size()) {
          params = {FactKey(exact)};
          sql = "DELETE FROM facts WHERE k = $1";
        } else {
          params = {p.predicate, std::to_string(p.arg_types.size())};
          sql = "DELETE FROM facts WHERE predicate = $1 AND arity = $2";
          for (size_t i = 0; i < p.arg_types.size(); ++i) {
            if (p.arg_types[i]) {
              params.push_back(*p.arg_types[i]);
              absl::StrAppend(&sql, " AND t", i, " = $", params.size());
            }
            if (p.arg_ids[i]) {
              params.push_back(*p.arg_ids[i]);
              absl::StrAppend(&sql, " AND i", i, " = $", params.size());
            }
          }
        }
        if (absl::Status s = conn.Run(sql, params, "deleting facts"); !s.ok()) return s;
      }
      if (log.empty()) return absl::OkStatus();
      if (!cols[0].empty()) return flush_inserts(true);
      return conn.Run(absl::StrCat("INSERT INTO changelog(revision, seq, time, op, data) VALUES($1, 0, $2, '",
                                   kChangesOp, "', $3)"),
                      {rev, now, log}, "writing the changelog");
    }
    case Mutation::Kind::kClear: {
      if (absl::Status s = conn.Run("DELETE FROM facts", {}, "clearing facts"); !s.ok()) return s;
      return conn.Run("INSERT INTO changelog(revision, seq, time, op, data) VALUES($1, 0, $2, 'clear', '')",
                      {rev, now}, "writing the changelog");
    }
    case Mutation::Kind::kPolicy: {
      PolicyVersion v = internal::NewPolicyVersion(m, 0, revision, now);  // numbered by the INSERT
      absl::StatusOr<Result> r = conn.Exec(
          "INSERT INTO policy_versions(version, revision, sha256, filename, source, created_at) "
          "SELECT COALESCE(MAX(version), 0) + 1, $1, $2, $3, $4, $5 FROM policy_versions RETURNING version",
          {rev, v.sha256, v.filename, v.source, now}, "saving the policy version");
      if (!r.ok()) return r.status();
      v.version = r->Int(0, 0);
      if (absl::Status s = conn.Run(
              "INSERT INTO changelog(revision, seq, time, op, data) VALUES($1, 0, $2, 'policy', $3)",
              {rev, now, std::to_string(v.version)}, "writing the changelog");
          !s.ok()) {
        return s;
      }
      out->policy = std::move(v);
      return absl::OkStatus();
    }
  }
  return absl::InternalError("unknown mutation kind");
}

// ---- Agents, grants, tasks ---------------------------------------------------------------------

absl::Status PostgresStore::SideWrite(const char* op,
                                      const std::function<absl::StatusOr<std::optional<std::string>>()>& body,
                                      uint64_t* revision) {
  return InTransaction(read_conn_, [&]() -> absl::Status {
    absl::StatusOr<std::optional<std::string>> data = body();
    if (!data.ok()) return data.status();
    // Taking the revision last holds the counter's row lock only for the commit.
    absl::StatusOr<Result> r =
        *data ? read_conn_.Exec(
                    "WITH r AS (UPDATE meta SET value = value + 1 WHERE key = 'revision' RETURNING value), "
                    "c AS (INSERT INTO changelog(revision, seq, time, op, data) SELECT value, 0, $1, $2, $3 FROM r "
                    "RETURNING revision) "
                    "SELECT revision, pg_notify($4, revision::text) FROM c",
                    {NowRfc3339(), std::string(op), **data, std::string(kChannel)}, "taking a revision")
              : read_conn_.Exec("SELECT value FROM meta WHERE key = 'revision'", {}, "reading the revision");
    if (!r.ok()) return r.status();
    if (r->rows() != 1) return absl::DataLossError("postgres: meta has no revision row");
    if (revision != nullptr) *revision = static_cast<uint64_t>(r->Int(0, 0));
    return absl::OkStatus();
  });
}

absl::StatusOr<std::vector<AgentRecord>> PostgresStore::ListAgents() {
  std::lock_guard<std::mutex> l(read_mu_);
  absl::StatusOr<Result> r = read_conn_.Exec(
      "SELECT id, owner_type, owner_id, description, status, created_at, updated_at FROM agents ORDER BY id", {},
      "listing agents");
  if (!r.ok()) return r.status();
  std::vector<AgentRecord> out;
  for (int i = 0; i < r->rows(); ++i) out.push_back(internal::DecodeAgentRow(Result::Row{*r, i}));
  return out;
}

absl::StatusOr<AgentRecord> PostgresStore::PutAgent(const AgentRecord& agent, uint64_t* revision) {
  std::lock_guard<std::mutex> l(read_mu_);
  AgentRecord out = agent;
  out.updated_at = NowRfc3339();
  absl::Status s = SideWrite(
      "agent",
      [&]() -> absl::StatusOr<std::optional<std::string>> {
        absl::StatusOr<Result> r = read_conn_.Exec(
            "INSERT INTO agents(id, owner_type, owner_id, description, status, created_at, updated_at) "
            "VALUES($1, $2, $3, $4, $5, $6, $6) ON CONFLICT (id) DO UPDATE SET owner_type = EXCLUDED.owner_type, "
            "owner_id = EXCLUDED.owner_id, description = EXCLUDED.description, status = EXCLUDED.status, "
            "updated_at = EXCLUDED.updated_at RETURNING created_at",
            {agent.id, agent.owner.type, agent.owner.id, agent.description, agent.status, out.updated_at},
            "storing an agent");
        if (!r.ok()) return r.status();
        out.created_at = r->Text(0, 0);
        return agent.id;
      },
      revision);
  if (!s.ok()) return s;
  return out;
}

absl::Status PostgresStore::DeleteAgent(const std::string& id, uint64_t* revision) {
  std::lock_guard<std::mutex> l(read_mu_);
  return SideWrite(
      "agent",
      [&]() -> absl::StatusOr<std::optional<std::string>> {
        absl::StatusOr<Result> r =
            read_conn_.Exec("DELETE FROM agents WHERE id = $1 RETURNING id", {id}, "deleting an agent");
        if (!r.ok()) return r.status();
        if (r->rows() == 0) return absl::NotFoundError(absl::StrCat("no agent \"", id, "\""));
        return id;
      },
      revision);
}

absl::StatusOr<TaskRecord> PostgresStore::ReadTask(const std::string& id) {
  absl::StatusOr<Result> r = read_conn_.Exec(
      "SELECT status, created_at, completed_at, (SELECT COUNT(*) FROM grants WHERE task = tasks.id) FROM tasks "
      "WHERE id = $1",
      {id}, "reading a task");
  if (!r.ok()) return r.status();
  if (r->rows() == 0) return absl::NotFoundError(absl::StrCat("no task \"", id, "\""));
  TaskRecord t;
  t.id = id;
  t.status = r->Text(0, 0);
  t.created_at = r->Text(0, 1);
  t.completed_at = r->Text(0, 2);
  t.grants = r->Int(0, 3);
  return t;
}

absl::Status PostgresStore::AddGrants(std::vector<GrantRecord>* grants, uint64_t* revision) {
  if (absl::Status s = internal::CheckGrantFacts(*grants); !s.ok()) return s;
  std::lock_guard<std::mutex> l(read_mu_);
  const std::string now = NowRfc3339();
  std::vector<int64_t> ids;
  absl::Status s = SideWrite(
      "grants",
      [&]() -> absl::StatusOr<std::optional<std::string>> {
        for (const GrantRecord& g : *grants) {
          if (!g.task.empty()) {
            // Creates the task if new; locks its row so that a concurrent completion waits for us.
            absl::Status st = read_conn_.Run(
                "INSERT INTO tasks(id, status, created_at, completed_at) VALUES($1, 'active', $2, '') "
                "ON CONFLICT (id) DO NOTHING",
                {g.task, now}, "creating a task");
            if (!st.ok()) return st;
            absl::StatusOr<Result> t =
                read_conn_.Exec("SELECT status FROM tasks WHERE id = $1 FOR UPDATE", {g.task}, "reading a task");
            if (!t.ok()) return t.status();
            if (t->rows() > 0 && t->Text(0, 0) == "completed") return internal::TaskCompletedError(g.task);
          }
          absl::StatusOr<Result> r = read_conn_.Exec(
              "INSERT INTO grants(fact, task, expires_at, created_at) VALUES($1, $2, $3, $4) RETURNING id",
              {boost::json::serialize(EncodeFact(g.fact)), g.task,
               g.expires_at ? Param(std::to_string(*g.expires_at)) : std::nullopt, now},
              "storing a grant");
          if (!r.ok()) return r.status();
          ids.push_back(r->Int(0, 0));
        }
        return absl::StrJoin(ids, ",");
      },
      revision);
  if (!s.ok()) return s;
  internal::AssignGrants(ids, now, grants);
  return absl::OkStatus();
}

absl::StatusOr<std::vector<GrantRecord>> PostgresStore::ListGrants() {
  std::lock_guard<std::mutex> l(read_mu_);
  absl::StatusOr<Result> r =
      read_conn_.Exec("SELECT id, fact, task, expires_at, created_at FROM grants ORDER BY id", {}, "listing grants");
  if (!r.ok()) return r.status();
  std::vector<GrantRecord> out;
  for (int i = 0; i < r->rows(); ++i) {
    absl::StatusOr<GrantRecord> g = internal::DecodeGrantRow(Result::Row{*r, i});
    if (!g.ok()) return g.status();
    out.push_back(*std::move(g));
  }
  return out;
}

absl::StatusOr<TaskRecord> PostgresStore::CompleteTask(const std::string& id, uint64_t* revision) {
  std::lock_guard<std::mutex> l(read_mu_);
  absl::StatusOr<TaskRecord> out = absl::InternalError("task not completed");
  absl::Status s = SideWrite(
      "task",
      [&]() -> absl::StatusOr<std::optional<std::string>> {
        absl::StatusOr<Result> lock = read_conn_.Exec("SELECT 1 FROM tasks WHERE id = $1 FOR UPDATE", {id}, "locking");
        if (!lock.ok()) return lock.status();
        out = ReadTask(id);
        if (!out.ok()) return out.status();
        if (out->status == "completed") return std::nullopt;
        if (absl::Status st = read_conn_.Run("DELETE FROM grants WHERE task = $1", {id}, "revoking a task's grants");
            !st.ok()) {
          return st;
        }
        internal::MarkCompleted(&*out);
        absl::Status st = read_conn_.Run("UPDATE tasks SET status = 'completed', completed_at = $1 WHERE id = $2",
                                         {out->completed_at, id}, "completing a task");
        if (!st.ok()) return st;
        return id;
      },
      revision);
  if (!s.ok()) return s;
  return out;
}

absl::StatusOr<TaskRecord> PostgresStore::GetTask(const std::string& id) {
  std::lock_guard<std::mutex> l(read_mu_);
  return ReadTask(id);
}

absl::StatusOr<int64_t> PostgresStore::PurgeExpiredGrants(int64_t now_unix) {
  std::lock_guard<std::mutex> l(read_mu_);
  int64_t n = 0;
  absl::Status s = SideWrite(
      "purge",
      [&]() -> absl::StatusOr<std::optional<std::string>> {
        absl::StatusOr<Result> r = read_conn_.Exec(
            "WITH d AS (DELETE FROM grants WHERE expires_at IS NOT NULL AND expires_at <= $1 RETURNING 1) "
            "SELECT COUNT(*) FROM d",
            {std::to_string(now_unix)}, "purging expired grants");
        if (!r.ok()) return r.status();
        n = r->Int(0, 0);
        // Expired grants are invisible everywhere already; only a purge that deleted some is news.
        if (n == 0) return std::nullopt;
        return std::to_string(n);
      },
      nullptr);
  if (!s.ok()) return s;
  return n;
}

// ---- Approvals ---------------------------------------------------------------------------------
// Approval writes take one transaction-scoped advisory lock, so each is atomic with respect to all
// others on every node (single use, the pending cap). Nodes keep no copy of approvals (every use
// reads the database); only a decision takes a revision, as a token for the client that made it.

absl::StatusOr<std::vector<ApprovalRecord>> PostgresStore::QueryApprovals(const std::string& where,
                                                                          std::vector<Param> params) {
  absl::StatusOr<Result> r =
      read_conn_.Exec(absl::StrCat("SELECT ", kApprovalColumns, " FROM approvals WHERE ", where), params,
                      "reading approvals");
  if (!r.ok()) return r.status();
  return ApprovalRows(*r);
}

absl::StatusOr<ApprovalResolution> PostgresStore::ResolveApproval(const ApprovalRecord& fresh, int64_t now_unix,
                                                                  int64_t max_pending) {
  const std::string now = std::to_string(now_unix);
  internal::ResolveApprovalOps ops;
  ops.find_approved = [&] {
    return QueryApprovals(
        "request_key = $1 AND status = 'approved' AND expires_at > $2 AND uses_left > 0 "
        "ORDER BY created_at, id LIMIT 1",
        {fresh.request_key, now});
  };
  ops.store_use = [&](const ApprovalRecord& a) {
    return read_conn_.Run("UPDATE approvals SET uses_left = $1, status = $2 WHERE id = $3",
                          {std::to_string(a.uses_left), a.status, a.id}, "using an approval");
  };
  ops.find_open = [&] {
    return QueryApprovals(
        "request_key = $1 AND status IN ('pending', 'denied') AND expires_at > $2 "
        "ORDER BY created_at DESC, id DESC LIMIT 1",
        {fresh.request_key, now});
  };
  ops.count_pending = [&]() -> absl::StatusOr<int64_t> {
    absl::StatusOr<Result> count = read_conn_.Exec(
        "SELECT COUNT(*) FROM approvals WHERE actor_type = $1 AND actor_id = $2 AND status = 'pending' "
        "AND expires_at > $3",
        {fresh.actor.type, fresh.actor.id, now}, "counting pending approvals");
    if (!count.ok()) return count.status();
    return count->Int(0, 0);
  };
  ops.insert_fresh = [&]() -> absl::Status {
    absl::Status st = read_conn_.Run(
        absl::StrCat("INSERT INTO approvals(", kApprovalColumns,
                     ") VALUES($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19)"),
        {fresh.id, fresh.request_key, fresh.status, fresh.actor.type, fresh.actor.id,
         internal::EncodeChain(fresh.on_behalf_of), fresh.action, fresh.resource.type, fresh.resource.id,
         fresh.context_json, fresh.arguments_digest, fresh.reasons_json, std::to_string(fresh.created_at),
         std::to_string(fresh.expires_at), fresh.decided_at ? Param(std::to_string(*fresh.decided_at)) : std::nullopt,
         fresh.approver.type, fresh.approver.id, fresh.note, std::to_string(fresh.uses_left)},
        "storing an approval");
    if (st.code() == absl::StatusCode::kAlreadyExists) {
      return absl::AlreadyExistsError(absl::StrCat("approval id ", fresh.id, " is taken"));
    }
    return st;
  };
  std::lock_guard<std::mutex> l(read_mu_);
  ApprovalResolution out;
  absl::Status s = InTransaction(read_conn_, [&]() -> absl::Status {
    if (absl::Status st = read_conn_.Run(absl::StrCat("SELECT pg_advisory_xact_lock(", kApprovalLock, ")"), {}, "lock");
        !st.ok()) {
      return st;
    }
    return internal::ResolveApprovalSteps(fresh, max_pending, ops, &out);
  });
  if (!s.ok()) return s;
  out.record.status = ApprovalStatusAt(out.record, now_unix);
  return out;
}

absl::StatusOr<ApprovalRecord> PostgresStore::GetApproval(const std::string& id, int64_t now_unix) {
  std::lock_guard<std::mutex> l(read_mu_);
  absl::StatusOr<std::vector<ApprovalRecord>> found = QueryApprovals("id = $1", {id});
  if (!found.ok()) return found.status();
  return internal::FoundApproval(*std::move(found), id, now_unix);
}

absl::StatusOr<std::vector<ApprovalRecord>> PostgresStore::ListApprovals(const ApprovalFilter& filter) {
  std::vector<Param> params;
  auto param = [&](std::string v) {
    params.push_back(std::move(v));
    return absl::StrCat("$", params.size());
  };
  // The status condition on the status as seen at now (stored pending/approved may have expired).
  std::string where = "TRUE";
  if (filter.status == "pending" || filter.status == "approved") {
    where = absl::StrCat("status = ", param(filter.status), " AND expires_at > ", param(std::to_string(filter.now_unix)));
  } else if (filter.status == "expired") {
    where = absl::StrCat("(status = 'expired' OR (status IN ('pending', 'approved') AND expires_at <= ",
                         param(std::to_string(filter.now_unix)), "))");
  } else if (!filter.status.empty()) {
    where = absl::StrCat("status = ", param(filter.status));
  }
  if (filter.actor) {
    absl::StrAppend(&where, " AND actor_type = ", param(filter.actor->type), " AND actor_id = ", param(filter.actor->id));
  }
  absl::StrAppend(&where, " ORDER BY created_at DESC, id DESC LIMIT ",
                  param(std::to_string(std::min<size_t>(filter.limit, INT64_MAX))));
  std::lock_guard<std::mutex> l(read_mu_);
  absl::StatusOr<std::vector<ApprovalRecord>> found = QueryApprovals(where, std::move(params));
  if (!found.ok()) return found.status();
  for (ApprovalRecord& a : *found) a.status = ApprovalStatusAt(a, filter.now_unix);
  return found;
}

absl::StatusOr<ApprovalRecord> PostgresStore::DecideApproval(const std::string& id, const ApprovalDecision& decision,
                                                             uint64_t* revision) {
  std::lock_guard<std::mutex> l(read_mu_);
  ApprovalRecord out;
  absl::Status s = SideWrite(
      "approval",
      [&]() -> absl::StatusOr<std::optional<std::string>> {
        if (absl::Status st =
                read_conn_.Run(absl::StrCat("SELECT pg_advisory_xact_lock(", kApprovalLock, ")"), {}, "lock");
            !st.ok()) {
          return st;
        }
        absl::StatusOr<std::vector<ApprovalRecord>> found = QueryApprovals("id = $1", {id});
        if (!found.ok()) return found.status();
        absl::StatusOr<ApprovalRecord> a = internal::FoundApproval(*std::move(found), id, decision.decided_at);
        if (!a.ok()) return a.status();
        out = *std::move(a);
        if (absl::Status st = internal::ApplyDecision(id, decision, &out); !st.ok()) return st;
        absl::Status st = read_conn_.Run(
            "UPDATE approvals SET status = $1, decided_at = $2, approver_type = $3, approver_id = $4, note = $5, "
            "uses_left = $6, expires_at = $7 WHERE id = $8 AND status = 'pending'",
            {out.status, std::to_string(*out.decided_at), out.approver.type, out.approver.id, out.note,
             std::to_string(out.uses_left), std::to_string(out.expires_at), id},
            "deciding an approval");
        if (!st.ok()) return st;
        return id;
      },
      revision);
  if (!s.ok()) return s;
  out.status = ApprovalStatusAt(out, decision.decided_at);
  return out;
}

absl::StatusOr<std::vector<ApprovalRecord>> PostgresStore::ExpireApprovals(int64_t now_unix) {
  std::lock_guard<std::mutex> l(read_mu_);
  std::vector<ApprovalRecord> out;
  absl::Status s = InTransaction(read_conn_, [&]() -> absl::Status {
    if (absl::Status st = read_conn_.Run(absl::StrCat("SELECT pg_advisory_xact_lock(", kApprovalLock, ")"), {}, "lock");
        !st.ok()) {
      return st;
    }
    absl::StatusOr<std::vector<ApprovalRecord>> found = QueryApprovals(
        "status IN ('pending', 'approved') AND expires_at <= $1 ORDER BY created_at, id", {std::to_string(now_unix)});
    if (!found.ok()) return found.status();
    if (found->empty()) return absl::OkStatus();
    absl::Status st = read_conn_.Run(
        "UPDATE approvals SET status = 'expired' WHERE status IN ('pending', 'approved') AND expires_at <= $1",
        {std::to_string(now_unix)}, "expiring approvals");
    out = *std::move(found);
    return st;
  });
  if (!s.ok()) return s;
  for (ApprovalRecord& a : out) a.status = "expired";
  return out;
}

}  // namespace

bool IsPostgresUrl(std::string_view url) {
  const absl::string_view u(url.data(), url.size());
  return absl::StartsWith(u, "postgres://") || absl::StartsWith(u, "postgresql://");
}

absl::StatusOr<std::unique_ptr<Store>> OpenPostgresStore(const std::string& url, const PostgresOptions& options) {
  if (!IsPostgresUrl(url)) {
    return absl::InvalidArgumentError(absl::StrCat("not a PostgreSQL URL (postgres://...): ", url));
  }
  auto store = std::make_unique<PostgresStore>(url, options);
  if (absl::Status s = store->Open(); !s.ok()) return s;
  return store;
}

absl::StatusOr<std::pair<int, int>> MigratePostgres(const std::string& url) {
  if (!IsPostgresUrl(url)) {
    return absl::InvalidArgumentError(absl::StrCat("not a PostgreSQL URL (postgres://...): ", url));
  }
  Conn conn(url);
  return Migrate(conn);
}

}  // namespace mandate::store
