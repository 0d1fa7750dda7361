// `mandate audit verify|query|tail`: offline checks and reads of a server's audit log
// (<data-dir>/audit, written by src/audit). See docs/audit.md.
#ifdef MANDATE_HAVE_AUDIT
#include <chrono>
#include <cstdio>
#include <iostream>
#include <memory>
#include <thread>

#include <boost/json.hpp>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

#include "audit/reader.h"
#include "cli/commands.h"

namespace mandate::cli {
namespace {

namespace json = boost::json;

std::string AuditDir(const std::string& data_dir) { return data_dir + "/audit"; }

std::string Field(const json::object& o, std::string_view key) {
  const json::value* v = o.if_contains(key);
  if (v == nullptr || v->is_null()) return "";
  if (v->is_string()) return std::string(v->as_string());
  return json::serialize(*v);
}

// One line per record: JSON as stored, or an aligned table.
class Printer {
 public:
  explicit Printer(std::string format) : table_(format == "table") {}
  void Print(const audit::Found& f) {
    if (!table_) {
      std::printf("%s\n", f.json.c_str());
      return;
    }
    if (!header_) {
      std::printf("%-8s %-27s %-10s %-22s %-16s %-22s %-18s %s\n", "SEQ", "TIME", "KIND", "ACTOR", "ACTION",
                  "RESOURCE", "DECISION", "API");
      header_ = true;
    }
    boost::system::error_code ec;
    json::value v = json::parse(f.json, ec);
    const json::object empty;
    const json::object& o = !ec && v.is_object() ? v.as_object() : empty;
    std::printf("%-8llu %-27s %-10s %-22s %-16s %-22s %-18s %s\n", static_cast<unsigned long long>(f.seq),
                Field(o, "ts").c_str(), Field(o, "kind").c_str(), Field(o, "actor").c_str(),
                Field(o, "action").c_str(), Field(o, "resource").c_str(), Field(o, "decision").c_str(),
                Field(o, "api").c_str());
  }

 private:
  bool table_;
  bool header_ = false;
};

void AddVerify(CLI::App& audit) {
  struct Flags {
    std::string data_dir;
    std::string public_key;
  };
  auto flags = std::make_shared<Flags>();
  CLI::App* cmd = audit.add_subcommand(
      "verify",
      "Check the audit log: framing and checksums, sequence numbers, the SHA-256 chain, every checkpoint's "
      "Ed25519 signature, and that no segment is missing or cut short before the last checkpoint. Exit 0 when "
      "intact, 1 with the first bad record's place otherwise.");
  cmd->add_option("--data-dir", flags->data_dir, "The server's data directory")->required();
  cmd->add_option("--public-key", flags->public_key,
                  "The auditor's copy of the signing public key (PEM); default: the copy in the log directory")
      ->check(CLI::ExistingFile);
  cmd->callback([flags] {
    std::optional<audit::PublicKey> key;
    if (!flags->public_key.empty()) {
      absl::StatusOr<audit::PublicKey> k = audit::PublicKey::FromFile(flags->public_key);
      if (!k.ok()) Fail(k.status());
      key = *k;
    }
    absl::StatusOr<audit::VerifyReport> r = audit::Verify(AuditDir(flags->data_dir), key ? &*key : nullptr);
    if (!r.ok()) Fail(r.status());
    if (r->problem) {
      std::printf("audit log NOT intact: %s\n", r->problem->ToString().c_str());
      std::printf("(checked %llu record(s) before it)\n", static_cast<unsigned long long>(r->records));
      ExitWith(kExitNo);
    }
    std::printf("audit log intact: %llu record(s) in %zu segment(s), %llu checkpoint(s)\n",
                static_cast<unsigned long long>(r->records), r->segments,
                static_cast<unsigned long long>(r->checkpoints));
    std::printf("sealed through sequence %llu of %llu", static_cast<unsigned long long>(r->sealed_seq),
                static_cast<unsigned long long>(r->last_seq));
    if (r->last_seq > r->sealed_seq + 1) {
      std::printf(" (%llu record(s) after the last checkpoint are chained but not yet signed)",
                  static_cast<unsigned long long>(r->last_seq - r->sealed_seq - 1));
    }
    std::printf("\n");
    if (!r->key_id.empty()) std::printf("signing key %s from %s\n", r->key_id.c_str(), r->key_source.c_str());
  });
}

struct FilterFlags {
  std::string data_dir;
  std::string actor, decision, action, resource, kind, since, until, format = "jsonl";
  bool agent = false;
  size_t limit = 1000;
};

void AddFilterOptions(CLI::App* cmd, FilterFlags& f) {
  cmd->add_option("--data-dir", f.data_dir, "The server's data directory")->required();
  cmd->add_option("--actor", f.actor, "Only records of this actor (Type:id)");
  cmd->add_flag("--agent", f.agent, "Only records whose actor is an agent");
  cmd->add_option("--decision", f.decision, "allow, deny, approval_required (decisions), ok or error (admin)");
  cmd->add_option("--action", f.action, "Only this action (admin changes: policy.upload, facts.write, ...)");
  cmd->add_option("--resource", f.resource, "Only this resource (Type:id)");
  cmd->add_option("--kind", f.kind, "decision, admin, alert, system or checkpoint");
  cmd->add_option("--since", f.since, "From this time: RFC 3339, a date, Unix seconds, or ago (15m, 2h, 3d)");
  cmd->add_option("--until", f.until, "Up to this time (same forms)");
  cmd->add_option("--format", f.format, "jsonl (default) or table")->check(CLI::IsMember({"jsonl", "table"}));
}

audit::Filter ToFilter(const FilterFlags& f) {
  audit::Filter filter;
  filter.actor = f.actor;
  filter.agent_only = f.agent;
  filter.decision = f.decision;
  filter.action = f.action;
  filter.resource = f.resource;
  filter.kind = f.kind;
  if (!f.since.empty()) {
    absl::StatusOr<int64_t> t = audit::ParseTimeArg(f.since);
    if (!t.ok()) Fail(absl::StrCat("--since: ", t.status().message()));
    filter.since_us = *t;
  }
  if (!f.until.empty()) {
    absl::StatusOr<int64_t> t = audit::ParseTimeArg(f.until);
    if (!t.ok()) Fail(absl::StrCat("--until: ", t.status().message()));
    filter.until_us = *t;
  }
  return filter;
}

// Prints the newest `limit` matches, oldest first; returns the last sequence number seen.
uint64_t PrintNewest(const FilterFlags& f, const audit::Filter& filter, size_t limit, Printer& printer) {
  absl::StatusOr<std::vector<audit::Found>> found = audit::QueryNewestFirst(AuditDir(f.data_dir), filter, limit);
  if (!found.ok()) Fail(found.status());
  for (auto it = found->rbegin(); it != found->rend(); ++it) printer.Print(*it);
  return found->empty() ? 0 : found->front().seq;
}

void AddQuery(CLI::App& audit) {
  auto flags = std::make_shared<FilterFlags>();
  CLI::App* cmd = audit.add_subcommand("query", "Print the audit records that match the filters, oldest first.");
  AddFilterOptions(cmd, *flags);
  cmd->add_option("--limit", flags->limit, "At most this many (the newest), default 1000");
  cmd->callback([flags] {
    Printer printer(flags->format);
    const audit::Filter filter = ToFilter(*flags);
    if (PrintNewest(*flags, filter, flags->limit, printer) == 0) ExitWith(kExitNo);
  });
}

void AddTail(CLI::App& audit) {
  auto flags = std::make_shared<FilterFlags>();
  auto lines = std::make_shared<size_t>(10);
  auto follow = std::make_shared<bool>(false);
  CLI::App* cmd = audit.add_subcommand("tail", "Print the last audit records; with -f, keep printing new ones.");
  AddFilterOptions(cmd, *flags);
  cmd->add_option("-n,--lines", *lines, "How many of the last records to print first (default 10)");
  cmd->add_flag("-f,--follow", *follow, "Wait for new records and print them as they are written");
  cmd->callback([flags, lines, follow] {
    Printer printer(flags->format);
    const audit::Filter filter = ToFilter(*flags);
    audit::Filter all;  // the position: the newest record, whatever the filters
    absl::StatusOr<std::vector<audit::Found>> newest = audit::QueryNewestFirst(AuditDir(flags->data_dir), all, 1);
    if (!newest.ok()) Fail(newest.status());
    const uint64_t last = newest->empty() ? 0 : newest->front().seq;
    audit::Filter upto = filter;
    upto.before_seq = last + 1;
    PrintNewest(*flags, upto, *lines, printer);
    std::fflush(stdout);
    if (!*follow) return;
    audit::Follower follower(AuditDir(flags->data_dir), last);
    for (;;) {
      absl::StatusOr<std::vector<audit::Found>> got = follower.Poll(filter);
      if (!got.ok()) Fail(got.status());
      for (const audit::Found& f : *got) printer.Print(f);
      std::fflush(stdout);
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
    }
  });
}

}  // namespace

void AddAuditCommand(CLI::App& app) {
  CLI::App* audit = app.add_subcommand(
      "audit", "Verify and read the tamper-evident audit log of a server's data directory (docs/audit.md).");
  audit->require_subcommand(1);
  AddVerify(*audit);
  AddQuery(*audit);
  AddTail(*audit);
}

}  // namespace mandate::cli
#endif  // MANDATE_HAVE_AUDIT
