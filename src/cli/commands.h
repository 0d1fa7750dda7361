// The `mandate` command's subcommands and the helpers they share. Each Add*Command registers one
// subcommand (options, help text, callback) on the top-level CLI11 app; main.cc wires them together.
// The CLI uses only the public API in include/mandate/mandate.h.
#ifndef MANDATE_CLI_COMMANDS_H_
#define MANDATE_CLI_COMMANDS_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "mandate/mandate.h"

namespace mandate::cli {

// Process exit statuses shared by every subcommand.
inline constexpr int kExitOk = 0;     // success; allow; at least one result
inline constexpr int kExitNo = 1;     // deny; failed tests; validation errors; no query results
inline constexpr int kExitError = 2;  // bad arguments, unreadable files, invalid policy or facts

// Ends the running subcommand with `code`. CLI11 carries it out of the callback as a RuntimeError and
// main() returns it as the process status without printing anything more.
[[noreturn]] void ExitWith(int code);
// Prints "error: <message>" to stderr and ends with kExitError. (std::string, not string_view: Debian's
// Abseil has its own absl::string_view, which does not convert to std::string_view.)
[[noreturn]] void Fail(const std::string& message);
[[noreturn]] void Fail(const absl::Status& status);  // prints the status's message

// Compiles the policy files at `paths`. Every diagnostic (errors and warnings) is appended to
// `diagnostics`. Returns nullptr when the policy has errors; an unreadable file ends with kExitError.
std::shared_ptr<const Policy> CompilePolicyFiles(const std::vector<std::string>& paths,
                                                 std::vector<Diagnostic>& diagnostics);

// Options shared by check, list, actions and query: where the policy and facts come from and how
// one evaluation runs.
struct DataOptions {
  std::vector<std::string> policy_files;
  std::vector<std::string> fact_files;
  std::vector<std::string> context_facts;  // Polar fact syntax, one fact each
  std::optional<int64_t> now_unix;
  uint64_t max_steps = EvalLimits{}.max_steps;
};
void AddDataOptions(CLI::App& cmd, DataOptions& options);

// A snapshot of the loaded policy and facts, with the request options the flags asked for.
struct LoadedData {
  std::unique_ptr<Database> database;
  std::shared_ptr<const Snapshot> snapshot;
  QueryOptions query_options;
};
// Compiles the policy and loads the facts and context facts. Any problem (unreadable file, invalid
// policy, a fact the policy rejects) is printed to stderr and ends with kExitError.
LoadedData LoadData(const DataOptions& options);

// Parses a `Type:id` actor or resource argument; a malformed one (or one without a type) ends with
// kExitError naming `what` (e.g. "ACTOR").
TypedValue ParseValueArg(const std::string& what, const std::string& text);

// Subcommands. Each is documented by its --help text.
void AddTestCommand(CLI::App& app);      // mandate test FILE...
void AddValidateCommand(CLI::App& app);  // mandate validate FILE...
void AddCheckCommand(CLI::App& app);     // mandate check ... ACTOR ACTION RESOURCE
void AddListCommand(CLI::App& app);      // mandate list ... ACTOR ACTION TYPE
void AddActionsCommand(CLI::App& app);   // mandate actions ... ACTOR RESOURCE
void AddQueryCommand(CLI::App& app);     // mandate query ... 'QUERY'
void AddBenchCommand(CLI::App& app);     // mandate bench SCENARIO_DIR (bench.cc, for the peer harness)
#ifdef MANDATE_HAVE_AUDIT
void AddAuditCommand(CLI::App& app);  // mandate audit verify|query|tail (src/cli/audit.cc)
#endif
#ifdef MANDATE_HAVE_SERVER
void AddServeCommand(CLI::App& app);  // mandate serve ... (src/cli/serve.cc, with the server module)
void AddMigrateCommand(CLI::App& app);  // mandate migrate [--store URL] (src/cli/serve.cc)
void AddConsoleCommand(CLI::App& app);  // mandate console hash-password (src/cli/console.cc)
#endif

}  // namespace mandate::cli

#endif  // MANDATE_CLI_COMMANDS_H_
