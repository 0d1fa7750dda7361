#include "store/store.h"

#include <openssl/evp.h>

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"

#include "store/store_internal.h"

namespace mandate::store {

Mutation Mutation::Changes(std::vector<Change> changes) {
  Mutation m;
  m.kind = Kind::kChanges;
  m.changes = std::move(changes);
  return m;
}

Mutation Mutation::Clear() {
  Mutation m;
  m.kind = Kind::kClear;
  return m;
}

Mutation Mutation::Policy(std::string filename, std::string source) {
  Mutation m;
  m.kind = Kind::kPolicy;
  m.policy_filename = std::move(filename);
  m.policy_source = std::move(source);
  return m;
}

std::string Sha256Hex(std::string_view text) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_Digest(text.data(), text.size(), digest, &len, EVP_sha256(), nullptr);
  return absl::BytesToHexString(absl::string_view(reinterpret_cast<const char*>(digest), len));
}

std::string ApprovalStatusAt(const ApprovalRecord& a, int64_t now_unix) {
  if ((a.status == "pending" || a.status == "approved") && a.expires_at <= now_unix) return "expired";
  return a.status;
}

namespace internal {

std::string NowRfc3339() { return absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ", absl::Now(), absl::UTCTimeZone()); }

absl::Status CheckShape(const Mutation& m) {
  if (m.kind != Mutation::Kind::kChanges) return absl::OkStatus();
  for (size_t i = 0; i < m.changes.size(); ++i) {
    const Change& c = m.changes[i];
    const bool insert = c.kind == Change::Kind::kInsert;
    const std::string& predicate = insert ? c.fact.predicate : c.pattern.predicate;
    const size_t arity = insert ? c.fact.args.size() : c.pattern.arg_types.size();
    if (predicate.empty()) return absl::InvalidArgumentError(absl::StrCat("change ", i, ": empty predicate"));
    if (arity > kMaxFactArgs) {
      return absl::InvalidArgumentError(absl::StrCat("change ", i, ": ", predicate, " has ", arity,
                                                     " arguments; at most ", kMaxFactArgs, " are allowed"));
    }
    if (!insert && c.pattern.arg_ids.size() != arity) {
      return absl::InvalidArgumentError(absl::StrCat("change ", i, ": pattern ", predicate, " has ", arity,
                                                     " types but ", c.pattern.arg_ids.size(), " ids"));
    }
  }
  return absl::OkStatus();
}

absl::Status CheckGrantFacts(const std::vector<GrantRecord>& grants) {
  for (size_t i = 0; i < grants.size(); ++i) {
    const GrantRecord& g = grants[i];
    if (g.fact.predicate.empty() || g.fact.args.size() > kMaxFactArgs) {
      return absl::InvalidArgumentError(absl::StrCat("grant ", i, ": a fact needs a predicate and at most ",
                                                     kMaxFactArgs, " arguments"));
    }
  }
  return absl::OkStatus();
}

PolicyVersion NewPolicyVersion(const Mutation& m, int64_t version, uint64_t revision, const std::string& now) {
  PolicyVersion v;
  v.version = version;
  v.revision = revision;
  v.sha256 = Sha256Hex(m.policy_source);
  v.filename = m.policy_filename;
  v.source = m.policy_source;
  v.created_at = now;
  return v;
}

std::string EncodeChain(const std::vector<TypedValue>& chain) {
  boost::json::array a;
  for (const TypedValue& p : chain) a.push_back(boost::json::object{{"type", p.type}, {"id", p.id}});
  return boost::json::serialize(a);
}

absl::StatusOr<std::vector<TypedValue>> DecodeChain(const std::string& text) {
  boost::system::error_code ec;
  boost::json::value v = boost::json::parse(text, ec);
  if (ec || !v.is_array()) return absl::DataLossError("approvals: on_behalf_of is not a JSON array");
  std::vector<TypedValue> out;
  for (const boost::json::value& e : v.get_array()) {
    const boost::json::object* o = e.if_object();
    const boost::json::value* t = o ? o->if_contains("type") : nullptr;
    const boost::json::value* i = o ? o->if_contains("id") : nullptr;
    if (!t || !i || !t->is_string() || !i->is_string()) {
      return absl::DataLossError("approvals: on_behalf_of holds a malformed principal");
    }
    out.push_back(TypedValue{std::string(t->get_string()), std::string(i->get_string())});
  }
  return out;
}

absl::Status TaskCompletedError(const std::string& task) {
  return absl::FailedPreconditionError(absl::StrCat("task \"", task, "\" is completed; its grants were revoked for good"));
}

void AssignGrants(const std::vector<int64_t>& ids, const std::string& now, std::vector<GrantRecord>* grants) {
  for (size_t i = 0; i < grants->size(); ++i) {
    (*grants)[i].id = ids[i];
    (*grants)[i].created_at = now;
  }
}

void MarkCompleted(TaskRecord* t) {
  t->status = "completed";
  t->completed_at = NowRfc3339();
  t->grants = 0;
}

absl::StatusOr<ApprovalRecord> FoundApproval(std::vector<ApprovalRecord> found, const std::string& id,
                                             int64_t now_unix) {
  if (found.empty()) return absl::NotFoundError(absl::StrCat("no approval \"", id, "\""));
  ApprovalRecord a = std::move(found[0]);
  a.status = ApprovalStatusAt(a, now_unix);
  return a;
}

absl::Status ResolveApprovalSteps(const ApprovalRecord& fresh, int64_t max_pending, const ResolveApprovalOps& ops,
                                  ApprovalResolution* out) {
  absl::StatusOr<std::vector<ApprovalRecord>> approved = ops.find_approved();
  if (!approved.ok()) return approved.status();
  if (!approved->empty()) {
    out->kind = ApprovalResolution::Kind::kUsed;
    out->record = (*approved)[0];
    out->record.uses_left -= 1;
    if (out->record.uses_left == 0) out->record.status = "used";
    return ops.store_use(out->record);
  }
  absl::StatusOr<std::vector<ApprovalRecord>> open = ops.find_open();
  if (!open.ok()) return open.status();
  if (!open->empty()) {
    out->record = (*open)[0];
    out->kind = out->record.status == "denied" ? ApprovalResolution::Kind::kDenied : ApprovalResolution::Kind::kPending;
    return absl::OkStatus();
  }
  absl::StatusOr<int64_t> pending = ops.count_pending();
  if (!pending.ok()) return pending.status();
  if (*pending >= max_pending) {
    return absl::ResourceExhaustedError(absl::StrCat(fresh.actor.type, ":", fresh.actor.id, " already has ", *pending,
                                                     " pending approvals (the most allowed is ", max_pending, ")"));
  }
  out->kind = ApprovalResolution::Kind::kCreated;
  out->record = fresh;
  return ops.insert_fresh();
}

absl::Status ApplyDecision(const std::string& id, const ApprovalDecision& decision, ApprovalRecord* a) {
  const std::string status = ApprovalStatusAt(*a, decision.decided_at);
  if (status != "pending") {
    return absl::FailedPreconditionError(absl::StrCat("approval \"", id, "\" is ", status, ", not pending"));
  }
  a->status = decision.approve ? "approved" : "denied";
  a->decided_at = decision.decided_at;
  a->approver = decision.approver;
  a->note = decision.note;
  if (decision.approve) {
    a->uses_left = decision.uses;
    a->expires_at = decision.expires_at;
  }
  return absl::OkStatus();
}

absl::StatusOr<Committed> GroupCommitQueue::Write(const Mutation& mutation, const WriteHooks& hooks,
                                                  const CommitGroupFn& commit) {
  if (absl::Status s = CheckShape(mutation); !s.ok()) return s;
  Writer w;
  w.mutation = &mutation;
  w.hooks = &hooks;
  std::unique_lock<std::mutex> l(mu_);
  queue_.push_back(&w);
  while (!w.done && &w != queue_.front()) w.cv.wait(l);
  if (w.done) return std::move(w.result);

  // This writer leads: take it and the writers behind it, up to a policy upload or the size cap.
  std::vector<Writer*> group{&w};
  if (mutation.kind != Mutation::Kind::kPolicy) {
    size_t changes = mutation.changes.size();
    for (size_t i = 1; i < queue_.size(); ++i) {
      const Mutation& next = *queue_[i]->mutation;
      if (next.kind == Mutation::Kind::kPolicy) break;
      changes += next.changes.size();
      if (changes > max_group_changes_) break;
      group.push_back(queue_[i]);
    }
  }
  l.unlock();
  commit(group);
  l.lock();
  for (Writer* g : group) {
    queue_.pop_front();
    if (g != &w) {
      g->done = true;
      g->cv.notify_one();
    }
  }
  if (!queue_.empty()) queue_.front()->cv.notify_one();
  return std::move(w.result);
}

uint64_t GroupCommitQueue::StageEach(const std::vector<Writer*>& group, uint64_t revision, const StageFn& stage,
                                     std::vector<Writer*>* committed) {
  for (Writer* g : group) {
    if (g->hooks->validate) {
      if (absl::Status s = g->hooks->validate(); !s.ok()) {
        g->result = s;
        continue;
      }
    }
    Committed c;
    if (absl::Status s = stage(*g->mutation, revision + 1, &c); !s.ok()) {
      g->result = s;
      continue;
    }
    revision = c.revision;
    g->result = std::move(c);
    committed->push_back(g);
  }
  return revision;
}

void GroupCommitQueue::NotifyDurable(const std::vector<Writer*>& committed) {
  for (Writer* g : committed) {
    if (g->hooks->on_durable) g->hooks->on_durable(*g->result);
  }
}

}  // namespace internal

}  // namespace mandate::store
