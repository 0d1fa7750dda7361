// SQLite implementation of Store: one file `<data_dir>/mandate.db` in WAL mode with synchronous=FULL,
// so a commit that returned is on disk. One connection, used by one committing thread at a time.
//
// Group commit (the LevelDB writer-queue idea): every Write joins a queue; the writer at the front
// commits itself and the writers queued behind it in one transaction, each inside its own SAVEPOINT
// so that a failing write rolls back alone; then it wakes them. While it syncs, new writers queue up
// and form the next group. A policy upload always commits in a group of its own so that `validate`
// hooks of later writes see it applied.
#include <cstring>
#include <filesystem>
#include <functional>
#include <map>
#include <mutex>

#include <boost/json/serialize.hpp>
#include <fcntl.h>
#include <sqlite3.h>
#include <sys/file.h>
#include <unistd.h>

#include "absl/strings/str_cat.h"

#include "store/store.h"
#include "store/store_internal.h"
#include "store/wire_json.h"

namespace mandate::store {
namespace {

using internal::GroupCommitQueue;
using internal::kApprovalColumns;
using internal::NowRfc3339;

// Schema migrations, applied in order; schema_version holds the number of the last one applied.
// Never edit a released migration; append a new one.
constexpr const char* kMigrations[] = {
    // 1: facts, revision counter, changelog, policy versions.
    R"sql(
    CREATE TABLE meta(key TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;
    INSERT INTO meta(key, value) VALUES('revision', 0);
    CREATE TABLE facts(
      predicate TEXT NOT NULL, arity INTEGER NOT NULL,
      t0 TEXT NOT NULL, i0 TEXT NOT NULL, t1 TEXT NOT NULL, i1 TEXT NOT NULL,
      t2 TEXT NOT NULL, i2 TEXT NOT NULL, t3 TEXT NOT NULL, i3 TEXT NOT NULL,
      t4 TEXT NOT NULL, i4 TEXT NOT NULL,
      PRIMARY KEY(predicate, arity, t0, i0, t1, i1, t2, i2, t3, i3, t4, i4)) WITHOUT ROWID;
    CREATE TABLE changelog(
      revision INTEGER NOT NULL, seq INTEGER NOT NULL, time TEXT NOT NULL,
      op TEXT NOT NULL, data TEXT NOT NULL,
      PRIMARY KEY(revision, seq)) WITHOUT ROWID;
    CREATE TABLE policy_versions(
      version INTEGER PRIMARY KEY, revision INTEGER NOT NULL, sha256 TEXT NOT NULL,
      filename TEXT NOT NULL, source TEXT NOT NULL, created_at TEXT NOT NULL);
    )sql",
    // 2: agents, tasks and grants (facts with an expiry or a task; the fact as Oso wire JSON).
    R"sql(
    CREATE TABLE agents(
      id TEXT PRIMARY KEY, owner_type TEXT NOT NULL, owner_id TEXT NOT NULL, description TEXT NOT NULL,
      status TEXT NOT NULL, created_at TEXT NOT NULL, updated_at TEXT NOT NULL) WITHOUT ROWID;
    CREATE TABLE tasks(
      id TEXT PRIMARY KEY, status TEXT NOT NULL, created_at TEXT NOT NULL, completed_at TEXT NOT NULL) WITHOUT ROWID;
    CREATE TABLE grants(
      id INTEGER PRIMARY KEY AUTOINCREMENT, fact TEXT NOT NULL, task TEXT NOT NULL, expires_at INTEGER,
      created_at TEXT NOT NULL);
    CREATE INDEX grants_by_task ON grants(task);
    CREATE INDEX grants_by_expiry ON grants(expires_at) WHERE expires_at IS NOT NULL;
    )sql",
    // 3: human approvals (on_behalf_of as a JSON array of {"type","id"}; times in unix seconds).
    R"sql(
    CREATE TABLE approvals(
      id TEXT PRIMARY KEY, request_key TEXT NOT NULL, status TEXT NOT NULL,
      actor_type TEXT NOT NULL, actor_id TEXT NOT NULL, on_behalf_of TEXT NOT NULL, action TEXT NOT NULL,
      resource_type TEXT NOT NULL, resource_id TEXT NOT NULL, context TEXT NOT NULL,
      arguments_digest TEXT NOT NULL, reasons TEXT NOT NULL, created_at INTEGER NOT NULL,
      expires_at INTEGER NOT NULL, decided_at INTEGER, approver_type TEXT NOT NULL,
      approver_id TEXT NOT NULL, note TEXT NOT NULL, uses_left INTEGER NOT NULL) WITHOUT ROWID;
    CREATE INDEX approvals_by_key ON approvals(request_key, status);
    CREATE INDEX approvals_by_actor ON approvals(actor_type, actor_id, status);
    CREATE INDEX approvals_by_status ON approvals(status, expires_at);
    CREATE INDEX approvals_by_created ON approvals(created_at, id);
    )sql",
};
constexpr int kSchemaVersion = sizeof(kMigrations) / sizeof(kMigrations[0]);

// A prepared statement; reset (not finalized) between uses.
class Stmt {
 public:
  Stmt() = default;
  Stmt(const Stmt&) = delete;
  Stmt& operator=(const Stmt&) = delete;
  ~Stmt() { sqlite3_finalize(stmt_); }

  absl::Status Prepare(sqlite3* db, const std::string& sql) {
    if (sqlite3_prepare_v3(db, sql.c_str(), static_cast<int>(sql.size()), SQLITE_PREPARE_PERSISTENT, &stmt_, nullptr) !=
        SQLITE_OK) {
      return absl::InternalError(absl::StrCat("sqlite: preparing `", sql, "`: ", sqlite3_errmsg(db)));
    }
    return absl::OkStatus();
  }
  void Reset() {
    sqlite3_reset(stmt_);
    sqlite3_clear_bindings(stmt_);
  }
  // Binds by 1-based index. The text must outlive the next Step().
  void Bind(int i, std::string_view text) {
    sqlite3_bind_text(stmt_, i, text.data(), static_cast<int>(text.size()), SQLITE_STATIC);
  }
  void Bind(int i, int64_t v) { sqlite3_bind_int64(stmt_, i, v); }
  // SQLITE_ROW, SQLITE_DONE or an error code.
  int Step() { return sqlite3_step(stmt_); }
  std::string Text(int col) const {
    const auto* p = reinterpret_cast<const char*>(sqlite3_column_text(stmt_, col));
    return p ? std::string(p, static_cast<size_t>(sqlite3_column_bytes(stmt_, col))) : std::string();
  }
  int64_t Int(int col) const { return sqlite3_column_int64(stmt_, col); }
  bool IsNull(int col) const { return sqlite3_column_type(stmt_, col) == SQLITE_NULL; }

 private:
  sqlite3_stmt* stmt_ = nullptr;
};

class SqliteStore final : public Store {
 public:
  SqliteStore(SqliteOptions options, int lock_fd) : lock_fd_(lock_fd), queue_(options.max_group_changes) {}
  ~SqliteStore() override {
    stmts_.clear();
    pattern_deletes_.clear();
    sqlite3_close_v2(db_);
    if (lock_fd_ >= 0) close(lock_fd_);  // releases the flock
  }

  absl::Status Open(const std::string& path);

  absl::StatusOr<LoadedState> Load() override;
  using Store::Write;
  absl::StatusOr<Committed> Write(const Mutation& mutation, const WriteHooks& hooks) override;
  absl::StatusOr<uint64_t> Revision() override {
    std::lock_guard<std::mutex> l(conn_mu_);
    return revision_;
  }
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
  // Runs a cached approvals SELECT (columns kApprovalColumns) bound by `bind`; call with conn_mu_ held.
  absl::StatusOr<std::vector<ApprovalRecord>> QueryApprovals(const std::string& sql,
                                                             const std::function<void(Stmt&)>& bind);
  absl::Status InsertApproval(const ApprovalRecord& a);
  // Runs `body` in its own IMMEDIATE transaction (committed if it returns OK, else rolled back).
  // Callers hold conn_mu_; a group commit holds it for its whole transaction, so these never nest.
  absl::Status InTransaction(const std::function<absl::Status()>& body);
  // A side write's revision token (store.h): one process, so the write is visible at once at the
  // current revision. Call with conn_mu_ held.
  void NoteRevision(uint64_t* revision) const {
    if (revision != nullptr) *revision = revision_;
  }
  // The task row (NotFound if none); call with conn_mu_ held.
  absl::StatusOr<TaskRecord> ReadTask(const std::string& id);
  using Writer = GroupCommitQueue::Writer;

  absl::Status Exec(const std::string& sql);
  absl::Status Error(const char* what) const {
    return absl::InternalError(absl::StrCat("sqlite: ", what, ": ", sqlite3_errmsg(db_)));
  }
  absl::Status StepDone(Stmt& stmt, const char* what);
  absl::Status Migrate();
  // Prepared statement for a fixed SQL text, created on first use.
  absl::StatusOr<Stmt*> Cached(const std::string& sql);

  void CommitGroup(const std::vector<Writer*>& group);
  // Stages one mutation inside the open transaction at revision `revision`.
  absl::Status Stage(const Mutation& m, uint64_t revision, const std::string& now, Committed* out);
  absl::Status InsertFact(const Fact& fact);
  absl::Status DeletePattern(const FactPattern& pattern);
  absl::Status Log(uint64_t revision, int64_t seq, const std::string& now, std::string_view op, std::string_view data);

  const int lock_fd_;
  sqlite3* db_ = nullptr;

  GroupCommitQueue queue_;

  std::mutex conn_mu_;  // guards db_, the statements and revision_
  uint64_t revision_ = 0;
  std::map<std::string, std::unique_ptr<Stmt>> stmts_;
  std::map<std::string, std::unique_ptr<Stmt>> pattern_deletes_;  // by SQL text
};

absl::Status SqliteStore::Exec(const std::string& sql) {
  char* err = nullptr;
  if (sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &err) != SQLITE_OK) {
    absl::Status s = absl::InternalError(absl::StrCat("sqlite: ", err ? err : "error", " (in: ", sql, ")"));
    sqlite3_free(err);
    return s;
  }
  return absl::OkStatus();
}

absl::Status SqliteStore::StepDone(Stmt& stmt, const char* what) {
  const int rc = stmt.Step();
  absl::Status s = rc == SQLITE_DONE ? absl::OkStatus() : Error(what);
  stmt.Reset();
  return s;
}

absl::StatusOr<Stmt*> SqliteStore::Cached(const std::string& sql) {
  auto& slot = stmts_[sql];
  if (!slot) {
    auto stmt = std::make_unique<Stmt>();
    if (absl::Status s = stmt->Prepare(db_, sql); !s.ok()) {
      stmts_.erase(sql);
      return s;
    }
    slot = std::move(stmt);
  }
  return slot.get();
}

absl::Status SqliteStore::Open(const std::string& path) {
  if (sqlite3_open_v2(path.c_str(), &db_, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, nullptr) !=
      SQLITE_OK) {
    return absl::UnavailableError(
        absl::StrCat("cannot open ", path, ": ", db_ ? sqlite3_errmsg(db_) : "out of memory"));
  }
  sqlite3_extended_result_codes(db_, 1);
  // WAL + FULL: a commit returns only after the WAL is synced, so an acknowledged write survives a
  // crash or power loss.
  {
    Stmt wal;
    if (absl::Status s = wal.Prepare(db_, "PRAGMA journal_mode=WAL"); !s.ok()) return s;
    if (wal.Step() != SQLITE_ROW || wal.Text(0) != "wal") {
      return absl::UnavailableError(absl::StrCat(path, ": cannot switch the database to WAL mode"));
    }
  }
  if (absl::Status s = Exec("PRAGMA synchronous=FULL; PRAGMA busy_timeout=5000;"); !s.ok()) return s;
  if (absl::Status s = Migrate(); !s.ok()) return s;
  Stmt rev;
  if (absl::Status s = rev.Prepare(db_, "SELECT value FROM meta WHERE key = 'revision'"); !s.ok()) return s;
  if (rev.Step() != SQLITE_ROW) return Error("reading the revision");
  revision_ = static_cast<uint64_t>(rev.Int(0));
  return absl::OkStatus();
}

absl::Status SqliteStore::Migrate() {
  if (absl::Status s = Exec("CREATE TABLE IF NOT EXISTS schema_version(version INTEGER NOT NULL)"); !s.ok()) {
    return s;
  }
  Stmt q;
  if (absl::Status s = q.Prepare(db_, "SELECT COALESCE(MAX(version), 0) FROM schema_version"); !s.ok()) return s;
  if (q.Step() != SQLITE_ROW) return Error("reading schema_version");
  const int64_t current = q.Int(0);
  if (current > kSchemaVersion) {
    return absl::FailedPreconditionError(absl::StrCat("the database schema is version ", current,
                                                      ", newer than this mandate binary supports (", kSchemaVersion,
                                                      "); upgrade mandate"));
  }
  for (int64_t v = current + 1; v <= kSchemaVersion; ++v) {
    if (absl::Status s = Exec("BEGIN IMMEDIATE"); !s.ok()) return s;
    absl::Status s = Exec(kMigrations[v - 1]);
    if (s.ok()) s = Exec(absl::StrCat("DELETE FROM schema_version; INSERT INTO schema_version VALUES(", v, ")"));
    if (s.ok()) s = Exec("COMMIT");
    if (!s.ok()) {
      Exec("ROLLBACK").IgnoreError();
      return absl::Status(s.code(), absl::StrCat("schema migration ", v, " failed: ", s.message()));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<LoadedState> SqliteStore::Load() {
  std::lock_guard<std::mutex> l(conn_mu_);
  LoadedState state;
  state.revision = revision_;
  Stmt q;
  if (absl::Status s = q.Prepare(db_, "SELECT predicate, arity, t0, i0, t1, i1, t2, i2, t3, i3, t4, i4 FROM facts");
      !s.ok()) {
    return s;
  }
  int rc;
  while ((rc = q.Step()) == SQLITE_ROW) state.facts.push_back(internal::DecodeFactRow(q));
  if (rc != SQLITE_DONE) return Error("reading facts");
  Stmt p;
  if (absl::Status s = p.Prepare(db_,
                                 "SELECT version, revision, sha256, filename, source, created_at FROM policy_versions "
                                 "ORDER BY version DESC LIMIT 1");
      !s.ok()) {
    return s;
  }
  rc = p.Step();
  if (rc == SQLITE_ROW) {
    state.policy = internal::DecodePolicyRow(p, 0, true);
  } else if (rc != SQLITE_DONE) {
    return Error("reading policy versions");
  }
  return state;
}

absl::StatusOr<std::map<std::string, uint64_t>> SqliteStore::CountFacts() {
  std::lock_guard<std::mutex> l(conn_mu_);
  Stmt q;
  if (absl::Status s = q.Prepare(db_, "SELECT predicate, COUNT(*) FROM facts GROUP BY predicate"); !s.ok()) return s;
  std::map<std::string, uint64_t> out;
  int rc;
  while ((rc = q.Step()) == SQLITE_ROW) out[q.Text(0)] = static_cast<uint64_t>(q.Int(1));
  if (rc != SQLITE_DONE) return Error("counting facts");
  return out;
}

absl::StatusOr<std::vector<PolicyVersion>> SqliteStore::ListPolicyVersions() {
  std::lock_guard<std::mutex> l(conn_mu_);
  Stmt q;
  if (absl::Status s = q.Prepare(
          db_, "SELECT version, revision, sha256, filename, '', created_at FROM policy_versions ORDER BY version");
      !s.ok()) {
    return s;
  }
  std::vector<PolicyVersion> out;
  int rc;
  while ((rc = q.Step()) == SQLITE_ROW) out.push_back(internal::DecodePolicyRow(q, 0, false));
  if (rc != SQLITE_DONE) return Error("listing policy versions");
  return out;
}

absl::StatusOr<PolicyVersion> SqliteStore::GetPolicyVersion(int64_t version) {
  std::lock_guard<std::mutex> l(conn_mu_);
  Stmt q;
  if (absl::Status s = q.Prepare(db_,
                                 "SELECT version, revision, sha256, filename, source, created_at FROM policy_versions "
                                 "WHERE version = ?");
      !s.ok()) {
    return s;
  }
  q.Bind(1, version);
  const int rc = q.Step();
  if (rc == SQLITE_DONE) return absl::NotFoundError(absl::StrCat("no policy version ", version));
  if (rc != SQLITE_ROW) return Error("reading a policy version");
  return internal::DecodePolicyRow(q, 0, true);
}

absl::StatusOr<std::vector<ChangelogEntry>> SqliteStore::ChangesSince(uint64_t after, size_t limit) {
  std::lock_guard<std::mutex> l(conn_mu_);
  Stmt q;
  if (absl::Status s = q.Prepare(db_,
                                 "SELECT revision, time, op, data FROM changelog WHERE revision > ? "
                                 "ORDER BY revision, seq LIMIT ?");
      !s.ok()) {
    return s;
  }
  q.Bind(1, static_cast<int64_t>(after));
  q.Bind(2, static_cast<int64_t>(std::min<size_t>(limit, INT64_MAX)));
  std::vector<ChangelogEntry> out;
  int rc;
  while ((rc = q.Step()) == SQLITE_ROW) {
    out.push_back(ChangelogEntry{static_cast<uint64_t>(q.Int(0)), q.Text(1), q.Text(2), q.Text(3)});
  }
  if (rc != SQLITE_DONE) return Error("reading the changelog");
  return out;
}

absl::Status SqliteStore::InTransaction(const std::function<absl::Status()>& body) {
  if (absl::Status s = Exec("BEGIN IMMEDIATE"); !s.ok()) return s;
  absl::Status s = body();
  if (s.ok()) s = Exec("COMMIT");
  if (!s.ok()) Exec("ROLLBACK").IgnoreError();
  return s;
}

absl::StatusOr<std::vector<AgentRecord>> SqliteStore::ListAgents() {
  std::lock_guard<std::mutex> l(conn_mu_);
  absl::StatusOr<Stmt*> q = Cached(
      "SELECT id, owner_type, owner_id, description, status, created_at, updated_at FROM agents ORDER BY id");
  if (!q.ok()) return q.status();
  std::vector<AgentRecord> out;
  int rc;
  while ((rc = (*q)->Step()) == SQLITE_ROW) out.push_back(internal::DecodeAgentRow(**q));
  (*q)->Reset();
  if (rc != SQLITE_DONE) return Error("listing agents");
  return out;
}

absl::StatusOr<AgentRecord> SqliteStore::PutAgent(const AgentRecord& agent, uint64_t* revision) {
  std::lock_guard<std::mutex> l(conn_mu_);
  NoteRevision(revision);
  AgentRecord stored = agent;
  stored.updated_at = NowRfc3339();
  absl::Status s = InTransaction([&]() -> absl::Status {
    absl::StatusOr<Stmt*> get = Cached("SELECT created_at FROM agents WHERE id = ?");
    if (!get.ok()) return get.status();
    (*get)->Bind(1, agent.id);
    const int rc = (*get)->Step();
    stored.created_at = rc == SQLITE_ROW ? (*get)->Text(0) : stored.updated_at;
    (*get)->Reset();
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) return Error("reading an agent");
    absl::StatusOr<Stmt*> put = Cached("INSERT OR REPLACE INTO agents VALUES(?, ?, ?, ?, ?, ?, ?)");
    if (!put.ok()) return put.status();
    Stmt& q = **put;
    q.Bind(1, stored.id);
    q.Bind(2, stored.owner.type);
    q.Bind(3, stored.owner.id);
    q.Bind(4, stored.description);
    q.Bind(5, stored.status);
    q.Bind(6, stored.created_at);
    q.Bind(7, stored.updated_at);
    return StepDone(q, "storing an agent");
  });
  if (!s.ok()) return s;
  return stored;
}

absl::Status SqliteStore::DeleteAgent(const std::string& id, uint64_t* revision) {
  std::lock_guard<std::mutex> l(conn_mu_);
  NoteRevision(revision);
  absl::StatusOr<Stmt*> del = Cached("DELETE FROM agents WHERE id = ?");
  if (!del.ok()) return del.status();
  (*del)->Bind(1, id);
  if (absl::Status s = StepDone(**del, "deleting an agent"); !s.ok()) return s;
  if (sqlite3_changes(db_) == 0) return absl::NotFoundError(absl::StrCat("no agent \"", id, "\""));
  return absl::OkStatus();
}

absl::StatusOr<TaskRecord> SqliteStore::ReadTask(const std::string& id) {
  absl::StatusOr<Stmt*> q = Cached(
      "SELECT status, created_at, completed_at, (SELECT COUNT(*) FROM grants WHERE task = tasks.id) FROM tasks "
      "WHERE id = ?");
  if (!q.ok()) return q.status();
  (*q)->Bind(1, id);
  const int rc = (*q)->Step();
  TaskRecord t;
  t.id = id;
  if (rc == SQLITE_ROW) {
    t.status = (*q)->Text(0);
    t.created_at = (*q)->Text(1);
    t.completed_at = (*q)->Text(2);
    t.grants = (*q)->Int(3);
  }
  (*q)->Reset();
  if (rc == SQLITE_DONE) return absl::NotFoundError(absl::StrCat("no task \"", id, "\""));
  if (rc != SQLITE_ROW) return Error("reading a task");
  return t;
}

absl::Status SqliteStore::AddGrants(std::vector<GrantRecord>* grants, uint64_t* revision) {
  if (absl::Status s = internal::CheckGrantFacts(*grants); !s.ok()) return s;
  std::lock_guard<std::mutex> l(conn_mu_);
  NoteRevision(revision);
  const std::string now = NowRfc3339();
  std::vector<int64_t> ids;
  absl::Status s = InTransaction([&]() -> absl::Status {
    for (const GrantRecord& g : *grants) {
      if (!g.task.empty()) {
        absl::StatusOr<TaskRecord> task = ReadTask(g.task);
        if (task.ok() && task->status == "completed") return internal::TaskCompletedError(g.task);
        if (!task.ok() && task.status().code() != absl::StatusCode::kNotFound) return task.status();
        if (!task.ok()) {
          absl::StatusOr<Stmt*> ins = Cached("INSERT INTO tasks VALUES(?, 'active', ?, '')");
          if (!ins.ok()) return ins.status();
          (*ins)->Bind(1, g.task);
          (*ins)->Bind(2, now);
          if (absl::Status st = StepDone(**ins, "creating a task"); !st.ok()) return st;
        }
      }
      absl::StatusOr<Stmt*> ins = Cached("INSERT INTO grants(fact, task, expires_at, created_at) VALUES(?, ?, ?, ?)");
      if (!ins.ok()) return ins.status();
      Stmt& q = **ins;
      const std::string fact = boost::json::serialize(EncodeFact(g.fact));
      q.Bind(1, fact);
      q.Bind(2, g.task);
      if (g.expires_at) q.Bind(3, *g.expires_at);  // unbound = NULL
      q.Bind(4, now);
      if (absl::Status st = StepDone(q, "storing a grant"); !st.ok()) return st;
      ids.push_back(sqlite3_last_insert_rowid(db_));
    }
    return absl::OkStatus();
  });
  if (!s.ok()) return s;
  internal::AssignGrants(ids, now, grants);
  return absl::OkStatus();
}

absl::StatusOr<std::vector<GrantRecord>> SqliteStore::ListGrants() {
  std::lock_guard<std::mutex> l(conn_mu_);
  absl::StatusOr<Stmt*> q = Cached("SELECT id, fact, task, expires_at, created_at FROM grants ORDER BY id");
  if (!q.ok()) return q.status();
  std::vector<GrantRecord> out;
  absl::Status problem = absl::OkStatus();
  int rc;
  while ((rc = (*q)->Step()) == SQLITE_ROW) {
    absl::StatusOr<GrantRecord> g = internal::DecodeGrantRow(**q);
    if (!g.ok()) {
      problem = g.status();
      break;
    }
    out.push_back(*std::move(g));
  }
  (*q)->Reset();
  if (!problem.ok()) return problem;
  if (rc != SQLITE_DONE) return Error("listing grants");
  return out;
}

absl::StatusOr<TaskRecord> SqliteStore::CompleteTask(const std::string& id, uint64_t* revision) {
  std::lock_guard<std::mutex> l(conn_mu_);
  NoteRevision(revision);
  absl::StatusOr<TaskRecord> out = absl::InternalError("task not completed");
  absl::Status s = InTransaction([&]() -> absl::Status {
    out = ReadTask(id);
    if (!out.ok() || out->status == "completed") return out.status();
    absl::StatusOr<Stmt*> del = Cached("DELETE FROM grants WHERE task = ?");
    if (!del.ok()) return del.status();
    (*del)->Bind(1, id);
    if (absl::Status st = StepDone(**del, "revoking a task's grants"); !st.ok()) return st;
    absl::StatusOr<Stmt*> up = Cached("UPDATE tasks SET status = 'completed', completed_at = ? WHERE id = ?");
    if (!up.ok()) return up.status();
    internal::MarkCompleted(&*out);
    (*up)->Bind(1, out->completed_at);
    (*up)->Bind(2, id);
    return StepDone(**up, "completing a task");
  });
  if (!s.ok()) return s;
  return out;
}

absl::StatusOr<TaskRecord> SqliteStore::GetTask(const std::string& id) {
  std::lock_guard<std::mutex> l(conn_mu_);
  return ReadTask(id);
}

absl::StatusOr<int64_t> SqliteStore::PurgeExpiredGrants(int64_t now_unix) {
  std::lock_guard<std::mutex> l(conn_mu_);
  absl::StatusOr<Stmt*> del = Cached("DELETE FROM grants WHERE expires_at IS NOT NULL AND expires_at <= ?");
  if (!del.ok()) return del.status();
  (*del)->Bind(1, now_unix);
  if (absl::Status s = StepDone(**del, "purging expired grants"); !s.ok()) return s;
  return static_cast<int64_t>(sqlite3_changes(db_));
}

absl::StatusOr<std::vector<ApprovalRecord>> SqliteStore::QueryApprovals(const std::string& sql,
                                                                        const std::function<void(Stmt&)>& bind) {
  absl::StatusOr<Stmt*> q = Cached(sql);
  if (!q.ok()) return q.status();
  Stmt& r = **q;
  bind(r);
  std::vector<ApprovalRecord> out;
  absl::Status problem = absl::OkStatus();
  int rc;
  while ((rc = r.Step()) == SQLITE_ROW) {
    absl::StatusOr<ApprovalRecord> a = internal::DecodeApprovalRow(r);
    if (!a.ok()) {
      problem = a.status();
      break;
    }
    out.push_back(*std::move(a));
  }
  r.Reset();
  if (!problem.ok()) return problem;
  if (rc != SQLITE_DONE) return Error("reading approvals");
  return out;
}

absl::Status SqliteStore::InsertApproval(const ApprovalRecord& a) {
  absl::StatusOr<Stmt*> ins = Cached(absl::StrCat("INSERT INTO approvals(", kApprovalColumns,
                                                  ") VALUES(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"));
  if (!ins.ok()) return ins.status();
  Stmt& q = **ins;
  const std::string chain = internal::EncodeChain(a.on_behalf_of);
  q.Bind(1, a.id);
  q.Bind(2, a.request_key);
  q.Bind(3, a.status);
  q.Bind(4, a.actor.type);
  q.Bind(5, a.actor.id);
  q.Bind(6, chain);
  q.Bind(7, a.action);
  q.Bind(8, a.resource.type);
  q.Bind(9, a.resource.id);
  q.Bind(10, a.context_json);
  q.Bind(11, a.arguments_digest);
  q.Bind(12, a.reasons_json);
  q.Bind(13, a.created_at);
  q.Bind(14, a.expires_at);
  if (a.decided_at) q.Bind(15, *a.decided_at);
  q.Bind(16, a.approver.type);
  q.Bind(17, a.approver.id);
  q.Bind(18, a.note);
  q.Bind(19, a.uses_left);
  const int rc = q.Step();
  q.Reset();
  if (rc == SQLITE_CONSTRAINT_PRIMARYKEY) return absl::AlreadyExistsError(absl::StrCat("approval id ", a.id, " is taken"));
  if (rc != SQLITE_DONE) return Error("storing an approval");
  return absl::OkStatus();
}

absl::StatusOr<ApprovalResolution> SqliteStore::ResolveApproval(const ApprovalRecord& fresh, int64_t now_unix,
                                                                int64_t max_pending) {
  auto by_key = [&](Stmt& q) {
    q.Bind(1, fresh.request_key);
    q.Bind(2, now_unix);
  };
  internal::ResolveApprovalOps ops;
  ops.find_approved = [&] {
    return QueryApprovals(absl::StrCat("SELECT ", kApprovalColumns,
                                       " FROM approvals WHERE request_key = ? AND status = 'approved' AND expires_at > ? "
                                       "AND uses_left > 0 ORDER BY created_at, id LIMIT 1"),
                          by_key);
  };
  ops.store_use = [&](const ApprovalRecord& a) -> absl::Status {
    absl::StatusOr<Stmt*> up = Cached("UPDATE approvals SET uses_left = ?, status = ? WHERE id = ?");
    if (!up.ok()) return up.status();
    (*up)->Bind(1, a.uses_left);
    (*up)->Bind(2, a.status);
    (*up)->Bind(3, a.id);
    return StepDone(**up, "using an approval");
  };
  ops.find_open = [&] {
    return QueryApprovals(
        absl::StrCat("SELECT ", kApprovalColumns,
                     " FROM approvals WHERE request_key = ? AND status IN ('pending', 'denied') AND expires_at > ? "
                     "ORDER BY created_at DESC, id DESC LIMIT 1"),
        by_key);
  };
  ops.count_pending = [&]() -> absl::StatusOr<int64_t> {
    absl::StatusOr<Stmt*> count = Cached(
        "SELECT COUNT(*) FROM approvals WHERE actor_type = ? AND actor_id = ? AND status = 'pending' AND expires_at > ?");
    if (!count.ok()) return count.status();
    (*count)->Bind(1, fresh.actor.type);
    (*count)->Bind(2, fresh.actor.id);
    (*count)->Bind(3, now_unix);
    const int rc = (*count)->Step();
    const int64_t pending = rc == SQLITE_ROW ? (*count)->Int(0) : 0;
    (*count)->Reset();
    if (rc != SQLITE_ROW) return Error("counting pending approvals");
    return pending;
  };
  ops.insert_fresh = [&] { return InsertApproval(fresh); };
  std::lock_guard<std::mutex> l(conn_mu_);
  ApprovalResolution out;
  absl::Status s = InTransaction([&] { return internal::ResolveApprovalSteps(fresh, max_pending, ops, &out); });
  if (!s.ok()) return s;
  out.record.status = ApprovalStatusAt(out.record, now_unix);
  return out;
}

absl::StatusOr<ApprovalRecord> SqliteStore::GetApproval(const std::string& id, int64_t now_unix) {
  std::lock_guard<std::mutex> l(conn_mu_);
  absl::StatusOr<std::vector<ApprovalRecord>> found = QueryApprovals(
      absl::StrCat("SELECT ", kApprovalColumns, " FROM approvals WHERE id = ?"), [&](Stmt& q) { q.Bind(1, id); });
  if (!found.ok()) return found.status();
  return internal::FoundApproval(*std::move(found), id, now_unix);
}

absl::StatusOr<std::vector<ApprovalRecord>> SqliteStore::ListApprovals(const ApprovalFilter& filter) {
  // The status condition on the status as seen at now (stored pending/approved may have expired).
  std::string where = "1";
  if (filter.status == "pending" || filter.status == "approved") {
    where = "status = ?1 AND expires_at > ?2";
  } else if (filter.status == "expired") {
    where = "(status = 'expired' OR (status IN ('pending', 'approved') AND expires_at <= ?2))";
  } else if (!filter.status.empty()) {
    where = "status = ?1";
  }
  if (filter.actor) absl::StrAppend(&where, " AND actor_type = ?3 AND actor_id = ?4");
  std::lock_guard<std::mutex> l(conn_mu_);
  absl::StatusOr<std::vector<ApprovalRecord>> found =
      QueryApprovals(absl::StrCat("SELECT ", kApprovalColumns, " FROM approvals WHERE ", where,
                                  " ORDER BY created_at DESC, id DESC LIMIT ?5"),
                     [&](Stmt& q) {
                       q.Bind(1, filter.status);
                       q.Bind(2, filter.now_unix);
                       if (filter.actor) {
                         q.Bind(3, filter.actor->type);
                         q.Bind(4, filter.actor->id);
                       }
                       q.Bind(5, static_cast<int64_t>(std::min<size_t>(filter.limit, INT64_MAX)));
                     });
  if (!found.ok()) return found.status();
  for (ApprovalRecord& a : *found) a.status = ApprovalStatusAt(a, filter.now_unix);
  return found;
}

absl::StatusOr<ApprovalRecord> SqliteStore::DecideApproval(const std::string& id, const ApprovalDecision& decision,
                                                           uint64_t* revision) {
  std::lock_guard<std::mutex> l(conn_mu_);
  NoteRevision(revision);
  ApprovalRecord out;
  absl::Status s = InTransaction([&]() -> absl::Status {
    absl::StatusOr<std::vector<ApprovalRecord>> found = QueryApprovals(
        absl::StrCat("SELECT ", kApprovalColumns, " FROM approvals WHERE id = ?"), [&](Stmt& q) { q.Bind(1, id); });
    if (!found.ok()) return found.status();
    absl::StatusOr<ApprovalRecord> a = internal::FoundApproval(*std::move(found), id, decision.decided_at);
    if (!a.ok()) return a.status();
    out = *std::move(a);
    if (absl::Status st = internal::ApplyDecision(id, decision, &out); !st.ok()) return st;
    absl::StatusOr<Stmt*> up = Cached(
        "UPDATE approvals SET status = ?, decided_at = ?, approver_type = ?, approver_id = ?, note = ?, "
        "uses_left = ?, expires_at = ? WHERE id = ? AND status = 'pending'");
    if (!up.ok()) return up.status();
    Stmt& q = **up;
    q.Bind(1, out.status);
    q.Bind(2, *out.decided_at);
    q.Bind(3, out.approver.type);
    q.Bind(4, out.approver.id);
    q.Bind(5, out.note);
    q.Bind(6, out.uses_left);
    q.Bind(7, out.expires_at);
    q.Bind(8, id);
    return StepDone(q, "deciding an approval");
  });
  if (!s.ok()) return s;
  out.status = ApprovalStatusAt(out, decision.decided_at);
  return out;
}

absl::StatusOr<std::vector<ApprovalRecord>> SqliteStore::ExpireApprovals(int64_t now_unix) {
  std::lock_guard<std::mutex> l(conn_mu_);
  std::vector<ApprovalRecord> out;
  absl::Status s = InTransaction([&]() -> absl::Status {
    absl::StatusOr<std::vector<ApprovalRecord>> found =
        QueryApprovals(absl::StrCat("SELECT ", kApprovalColumns,
                                    " FROM approvals WHERE status IN ('pending', 'approved') AND expires_at <= ? "
                                    "ORDER BY created_at, id"),
                       [&](Stmt& q) { q.Bind(1, now_unix); });
    if (!found.ok()) return found.status();
    absl::StatusOr<Stmt*> up = Cached(
        "UPDATE approvals SET status = 'expired' WHERE status IN ('pending', 'approved') AND expires_at <= ?");
    if (!up.ok()) return up.status();
    (*up)->Bind(1, now_unix);
    if (absl::Status st = StepDone(**up, "expiring approvals"); !st.ok()) return st;
    out = *std::move(found);
    return absl::OkStatus();
  });
  if (!s.ok()) return s;
  for (ApprovalRecord& a : out) a.status = "expired";
  return out;
}

absl::StatusOr<Committed> SqliteStore::Write(const Mutation& mutation, const WriteHooks& hooks) {
  return queue_.Write(mutation, hooks, [this](const std::vector<Writer*>& group) { CommitGroup(group); });
}

void SqliteStore::CommitGroup(const std::vector<Writer*>& group) {
  std::vector<Writer*> committed;
  {
    std::lock_guard<std::mutex> l(conn_mu_);
    if (absl::Status s = Exec("BEGIN IMMEDIATE"); !s.ok()) {
      for (Writer* g : group) g->result = s;
      return;
    }
    const std::string now = NowRfc3339();
    const uint64_t revision = GroupCommitQueue::StageEach(
        group, revision_,
        [&](const Mutation& m, uint64_t next, Committed* c) {
          absl::Status s = Exec("SAVEPOINT w");
          if (s.ok()) s = Stage(m, next, now, c);
          if (s.ok()) return Exec("RELEASE w");
          Exec("ROLLBACK TO w; RELEASE w").IgnoreError();
          return s;
        },
        &committed);
    absl::Status s = absl::OkStatus();
    if (!committed.empty()) {
      absl::StatusOr<Stmt*> up = Cached("UPDATE meta SET value = ? WHERE key = 'revision'");
      s = up.status();
      if (s.ok()) {
        (*up)->Bind(1, static_cast<int64_t>(revision));
        s = StepDone(**up, "updating the revision");
      }
    }
    if (s.ok()) s = Exec("COMMIT");
    if (!s.ok()) {
      Exec("ROLLBACK").IgnoreError();
      for (Writer* g : committed) g->result = s;
      return;
    }
    revision_ = revision;
  }
  GroupCommitQueue::NotifyDurable(committed);
}

absl::Status SqliteStore::Stage(const Mutation& m, uint64_t revision, const std::string& now, Committed* out) {
  out->revision = revision;
  switch (m.kind) {
    case Mutation::Kind::kChanges: {
      int64_t seq = 0;
      for (const Change& c : m.changes) {
        const bool insert = c.kind == Change::Kind::kInsert;
        absl::Status s = insert ? InsertFact(c.fact) : DeletePattern(c.pattern);
        if (s.ok()) {
          s = Log(revision, seq++, now, insert ? "insert" : "delete",
                  boost::json::serialize(insert ? EncodeFact(c.fact) : EncodeFactPattern(c.pattern)));
        }
        if (!s.ok()) return s;
      }
      return absl::OkStatus();
    }
    case Mutation::Kind::kClear: {
      if (absl::Status s = Exec("DELETE FROM facts"); !s.ok()) return s;
      return Log(revision, 0, now, "clear", "");
    }
    case Mutation::Kind::kPolicy: {
      absl::StatusOr<Stmt*> next = Cached("SELECT COALESCE(MAX(version), 0) + 1 FROM policy_versions");
      if (!next.ok()) return next.status();
      if ((*next)->Step() != SQLITE_ROW) {
        (*next)->Reset();
        return Error("numbering the policy version");
      }
      PolicyVersion v = internal::NewPolicyVersion(m, (*next)->Int(0), revision, now);
      (*next)->Reset();
      absl::StatusOr<Stmt*> ins = Cached(
          "INSERT INTO policy_versions(version, revision, sha256, filename, source, created_at) "
          "VALUES(?, ?, ?, ?, ?, ?)");
      if (!ins.ok()) return ins.status();
      Stmt& q = **ins;
      q.Bind(1, v.version);
      q.Bind(2, static_cast<int64_t>(v.revision));
      q.Bind(3, v.sha256);
      q.Bind(4, v.filename);
      q.Bind(5, v.source);
      q.Bind(6, v.created_at);
      if (absl::Status s = StepDone(q, "saving the policy version"); !s.ok()) return s;
      if (absl::Status s = Log(revision, 0, now, "policy", std::to_string(v.version)); !s.ok()) return s;
      out->policy = std::move(v);
      return absl::OkStatus();
    }
  }
  return absl::InternalError("unknown mutation kind");
}

absl::Status SqliteStore::InsertFact(const Fact& fact) {
  absl::StatusOr<Stmt*> stmt = Cached("INSERT OR IGNORE INTO facts VALUES(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)");
  if (!stmt.ok()) return stmt.status();
  Stmt& q = **stmt;
  q.Bind(1, fact.predicate);
  q.Bind(2, static_cast<int64_t>(fact.args.size()));
  for (size_t i = 0; i < kMaxFactArgs; ++i) {
    const bool present = i < fact.args.size();
    // Absent arguments are stored as "" (not NULL: the columns are part of the primary key).
    q.Bind(3 + 2 * static_cast<int>(i), present ? std::string_view(fact.args[i].type) : std::string_view(""));
    q.Bind(4 + 2 * static_cast<int>(i), present ? std::string_view(fact.args[i].id) : std::string_view(""));
  }
  return StepDone(q, "inserting a fact");
}

absl::Status SqliteStore::DeletePattern(const FactPattern& pattern) {
  // One statement per pattern shape (which columns are constrained); the shapes are few.
  std::string sql = "DELETE FROM facts WHERE predicate = ? AND arity = ?";
  const size_t arity = pattern.arg_types.size();
  for (size_t i = 0; i < arity; ++i) {
    if (pattern.arg_types[i]) absl::StrAppend(&sql, " AND t", i, " = ?");
    if (pattern.arg_ids[i]) absl::StrAppend(&sql, " AND i", i, " = ?");
  }
  absl::StatusOr<Stmt*> stmt = Cached(sql);
  if (!stmt.ok()) return stmt.status();
  Stmt& q = **stmt;
  int k = 1;
  q.Bind(k++, pattern.predicate);
  q.Bind(k++, static_cast<int64_t>(arity));
  for (size_t i = 0; i < arity; ++i) {
    if (pattern.arg_types[i]) q.Bind(k++, *pattern.arg_types[i]);
    if (pattern.arg_ids[i]) q.Bind(k++, *pattern.arg_ids[i]);
  }
  return StepDone(q, "deleting facts");
}

absl::Status SqliteStore::Log(uint64_t revision, int64_t seq, const std::string& now, std::string_view op,
                              std::string_view data) {
  absl::StatusOr<Stmt*> stmt = Cached("INSERT INTO changelog(revision, seq, time, op, data) VALUES(?, ?, ?, ?, ?)");
  if (!stmt.ok()) return stmt.status();
  Stmt& q = **stmt;
  q.Bind(1, static_cast<int64_t>(revision));
  q.Bind(2, seq);
  q.Bind(3, now);
  q.Bind(4, op);
  q.Bind(5, data);
  return StepDone(q, "writing the changelog");
}

}  // namespace

absl::StatusOr<std::unique_ptr<Store>> OpenSqliteStore(const std::string& data_dir) {
  return OpenSqliteStore(data_dir, SqliteOptions{});
}

absl::StatusOr<std::unique_ptr<Store>> OpenSqliteStore(const std::string& data_dir, const SqliteOptions& options) {
  std::error_code ec;
  std::filesystem::create_directories(data_dir, ec);
  if (ec) return absl::UnavailableError(absl::StrCat("cannot create data directory ", data_dir, ": ", ec.message()));
  // One process per data directory: a second server would serve from a copy that never sees the
  // first one's writes.
  const std::string lock_path = (std::filesystem::path(data_dir) / "mandate.lock").string();
  const int fd = open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) return absl::UnavailableError(absl::StrCat("cannot open ", lock_path, ": ", strerror(errno)));
  if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
    close(fd);
    return absl::FailedPreconditionError(
        absl::StrCat("data directory ", data_dir, " is in use by another mandate process (", lock_path, " is locked)"));
  }
  auto store = std::make_unique<SqliteStore>(options, fd);
  if (absl::Status s = store->Open((std::filesystem::path(data_dir) / "mandate.db").string()); !s.ok()) return s;
  return store;
}

}  // namespace mandate::store
