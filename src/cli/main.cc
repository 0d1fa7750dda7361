// Entry point of the `mandate` command: registers the subcommands and maps CLI11's outcome to the
// exit statuses documented in commands.h.
#include <algorithm>
#include <iostream>
#include <string>
#include <vector>

#include "absl/strings/str_join.h"
#include "cli/commands.h"

#ifndef MANDATE_VERSION
#define MANDATE_VERSION "unknown"
#endif

int main(int argc, char** argv) {
  namespace cli = mandate::cli;
  CLI::App app{"Mandate: authorization for AI agents, with policies in Oso's Polar language.", "mandate"};
  app.set_version_flag("--version", "mandate " MANDATE_VERSION);
  app.require_subcommand(1);
  app.footer(
      "Run `mandate COMMAND --help` for a command's options.\n"
      "Start with: mandate test examples/quickstart/policy.polar");
  cli::AddTestCommand(app);
  cli::AddValidateCommand(app);
  cli::AddCheckCommand(app);
  cli::AddListCommand(app);
  cli::AddActionsCommand(app);
  cli::AddQueryCommand(app);
  cli::AddBenchCommand(app);
#ifdef MANDATE_HAVE_AUDIT
  cli::AddAuditCommand(app);
#endif
#ifdef MANDATE_HAVE_SERVER
  cli::AddServeCommand(app);
  cli::AddMigrateCommand(app);
  cli::AddConsoleCommand(app);
#endif
  // CLI11 reports an unknown command only as "A subcommand is required"; name it and the known ones.
  if (argc > 1 && argv[1][0] != '-') {
    std::vector<std::string> names;
    for (const CLI::App* sub : app.get_subcommands([](CLI::App*) { return true; })) names.push_back(sub->get_name());
    if (std::find(names.begin(), names.end(), argv[1]) == names.end()) {
      std::cerr << "error: unknown command '" << argv[1] << "'; commands: " << absl::StrJoin(names, ", ") << "\n";
      return cli::kExitError;
    }
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    // --help and --version exit 0; a subcommand's own status (RuntimeError) passes through untouched;
    // every other parse error is a usage error.
    const int status = app.exit(e);
    if (e.get_name() == "RuntimeError" || status == cli::kExitOk) return status;
    return cli::kExitError;
  }
  return cli::kExitOk;
}
