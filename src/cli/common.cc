// Helpers shared by the subcommands: reading policy files, loading facts into a snapshot, parsing
// `Type:id` arguments, and the exit-code convention.
#include <cerrno>
#include <cstring>
#include <fstream>
#include <iostream>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "cli/commands.h"

namespace mandate::cli {

void ExitWith(int code) { throw CLI::RuntimeError(code); }

void Fail(const std::string& message) {
  std::cerr << "error: " << message << "\n";
  ExitWith(kExitError);
}

void Fail(const absl::Status& status) { Fail(std::string(status.message())); }

namespace {

std::string ReadFileOrFail(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) Fail(absl::StrCat("cannot read ", path, ": ", std::strerror(errno)));
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) Fail(absl::StrCat("cannot read ", path, ": ", std::strerror(errno)));
  return std::move(text).str();
}

}  // namespace

std::shared_ptr<const Policy> CompilePolicyFiles(const std::vector<std::string>& paths,
                                                 std::vector<Diagnostic>& diagnostics) {
  std::vector<SourceFile> sources;
  sources.reserve(paths.size());
  for (const std::string& path : paths) sources.push_back({path, ReadFileOrFail(path)});
  const size_t first_new = diagnostics.size();
  absl::StatusOr<std::shared_ptr<const Policy>> policy = Policy::Compile(std::move(sources), &diagnostics);
  if (policy.ok()) return *std::move(policy);
  // Every error should arrive as a diagnostic; if the compiler only gave a status, keep its message.
  bool has_error_diagnostic = false;
  for (size_t i = first_new; i < diagnostics.size(); ++i) has_error_diagnostic |= diagnostics[i].is_error;
  if (!has_error_diagnostic) {
    diagnostics.push_back({.is_error = true,
                           .file = paths.empty() ? "" : paths.front(),
                           .message = std::string(policy.status().message()),
                           .hint = ""});
  }
  return nullptr;
}

void AddDataOptions(CLI::App& cmd, DataOptions& options) {
  // allow_extra_args(false): each occurrence takes exactly one value, so a repeated flag accumulates
  // and never swallows the positional arguments that follow it.
  cmd.add_option("-p,--policy", options.policy_files, "Policy file (.polar); repeat to combine several")
      ->required()
      ->allow_extra_args(false)
      ->type_name("FILE");
  cmd.add_option("-f,--facts", options.fact_files, "Facts file (.jsonl of Oso wire facts, or .polar fact lines)")
      ->allow_extra_args(false)
      ->type_name("FILE");
  cmd.add_option("-c,--context-fact", options.context_facts,
                 "A fact visible only to this request, in Polar syntax: 'has_role(User{\"a\"}, \"admin\", Org{\"o\"})'")
      ->allow_extra_args(false)
      ->type_name("FACT");
  cmd.add_option("--now", options.now_unix, "Value of @current_unix_time (seconds since 1970); default: the clock")
      ->type_name("UNIX");
  cmd.add_option("--max-steps", options.max_steps, "Evaluation step limit; past it the answer is deny")
      ->capture_default_str()
      ->type_name("N");
}

LoadedData LoadData(const DataOptions& options) {
  std::vector<Diagnostic> diagnostics;
  std::shared_ptr<const Policy> policy = CompilePolicyFiles(options.policy_files, diagnostics);
  if (policy == nullptr) {
    for (const Diagnostic& d : diagnostics) {
      if (d.is_error) std::cerr << d.ToString() << "\n";
    }
    Fail("the policy has errors (run `mandate validate` for the full list)");
  }

  LoadedData data;
  data.database = std::make_unique<Database>(policy);
  for (const std::string& path : options.fact_files) {
    // Checked while loading (Apply does it as well) so that errors name file:line, not a batch index.
    absl::StatusOr<std::vector<Fact>> facts = LoadFactsFile(path, *policy);
    if (!facts.ok()) Fail(facts.status());
    std::vector<Change> changes;
    changes.reserve(facts->size());
    for (Fact& fact : *facts) changes.push_back({.kind = Change::Kind::kInsert, .fact = std::move(fact), .pattern = {}});
    absl::StatusOr<uint64_t> revision = data.database->Apply(changes);
    if (!revision.ok()) Fail(absl::StrCat(path, ": ", revision.status().message()));
  }
  data.snapshot = data.database->snapshot();

  for (const std::string& text : options.context_facts) {
    // The flag takes one fact; the decoder wants statements, so a missing trailing ';' is added.
    std::string statement(absl::StripAsciiWhitespace(text));
    if (!absl::EndsWith(statement, ";")) statement += ';';
    absl::StatusOr<std::vector<Fact>> facts = ParseFactsPolar(statement, "--context-fact");
    if (!facts.ok()) Fail(facts.status());
    if (facts->size() != 1)
      Fail(absl::StrCat("--context-fact takes exactly one fact, got ", facts->size(), ": ", text));
    if (absl::Status valid = policy->CheckFact(facts->front()); !valid.ok()) {
      Fail(absl::StrCat("--context-fact ", text, ": ", valid.message()));
    }
    data.query_options.context_facts.push_back(std::move(facts->front()));
  }
  data.query_options.now_unix = options.now_unix;
  data.query_options.limits.max_steps = options.max_steps;
  return data;
}

TypedValue ParseValueArg(const std::string& what, const std::string& text) {
  // Actors and resources are instances; a bare word would silently become a String and never match.
  if (!absl::StrContains(text, ':')) Fail(absl::StrCat(what, " '", text, "': expected Type:id, e.g. User:alice"));
  absl::StatusOr<TypedValue> value = ParseTypedValue(text);
  if (!value.ok()) Fail(absl::StrCat(what, " '", text, "': ", value.status().message()));
  return *std::move(value);
}

}  // namespace mandate::cli
