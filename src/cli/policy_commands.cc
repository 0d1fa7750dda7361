// `mandate test` (run a policy's test blocks) and `mandate validate` (report every diagnostic).
#include <iostream>
#include <memory>

#include "cli/commands.h"

namespace mandate::cli {
namespace {

void AddPolicyFilesArg(CLI::App& cmd, std::vector<std::string>& files) {
  cmd.add_option("files", files, "Policy files (.polar), compiled together as one policy")
      ->required()
      ->type_name("FILE")
      ->check(CLI::ExistingFile);
}

void RunTests(const std::vector<std::string>& files) {
  std::vector<Diagnostic> diagnostics;
  std::shared_ptr<const Policy> policy = CompilePolicyFiles(files, diagnostics);
  for (const Diagnostic& d : diagnostics) std::cerr << d.ToString() << "\n";
  if (policy == nullptr) Fail("the policy has errors; no tests were run");

  const TestReport report = RunPolicyTests(*policy);
  for (const TestResult& test : report.tests) {
    const bool ok = test.failures.empty() && test.passed == test.total;
    std::cout << (ok ? "PASS " : "FAIL ") << test.name << " (" << test.passed << "/" << test.total << ")\n";
    for (const AssertionFailure& failure : test.failures) {
      std::cout << "  " << failure.location << ": " << failure.assertion << " \u2014 " << failure.message << "\n";
    }
  }
  if (report.tests.empty()) std::cerr << "note: the policy has no test blocks\n";
  std::cout << report.passed() << " passed, " << report.failed() << " failed\n";
  ExitWith(report.failed() == 0 ? kExitOk : kExitNo);
}

void RunValidate(const std::vector<std::string>& files) {
  // CompilePolicyFiles leaves at least one error diagnostic when the policy does not compile.
  std::vector<Diagnostic> diagnostics;
  CompilePolicyFiles(files, diagnostics);
  int errors = 0;
  int warnings = 0;
  for (const Diagnostic& d : diagnostics) {
    std::cout << d.ToString() << "\n";
    ++(d.is_error ? errors : warnings);
  }
  std::cout << (errors == 0 ? "ok: " : "") << files.size() << (files.size() == 1 ? " file, " : " files, ") << errors
            << (errors == 1 ? " error, " : " errors, ") << warnings << (warnings == 1 ? " warning" : " warnings")
            << "\n";
  ExitWith(errors == 0 ? kExitOk : kExitNo);
}

}  // namespace

void AddTestCommand(CLI::App& app) {
  auto files = std::make_shared<std::vector<std::string>>();
  CLI::App* cmd = app.add_subcommand("test", "Run the test blocks of a policy");
  cmd->footer(
      "Prints one line per test block, `PASS name (passed/total)` or `FAIL name (passed/total)` followed by\n"
      "each failing assertion as `file:line: assertion \u2014 message`, then `N passed, M failed` counting\n"
      "assertions. Exit status: 0 when every assertion passed, 1 when one failed, 2 when the policy has\n"
      "errors (printed as file:line:col diagnostics).\n\n"
      "Example: mandate test examples/quickstart/policy.polar");
  AddPolicyFilesArg(*cmd, *files);
  cmd->callback([files] { RunTests(*files); });
}

void AddValidateCommand(CLI::App& app) {
  auto files = std::make_shared<std::vector<std::string>>();
  CLI::App* cmd = app.add_subcommand("validate", "Check a policy and print every error and warning");
  cmd->footer(
      "Prints every diagnostic as `file:line:col: error: message` (or `warning:`), then a count.\n"
      "Exit status: 0 when there are no errors (warnings allowed), 1 when there are, 2 when a file\n"
      "cannot be read.\n\n"
      "Example: mandate validate examples/quickstart/policy.polar");
  AddPolicyFilesArg(*cmd, *files);
  cmd->callback([files] { RunValidate(*files); });
}

}  // namespace mandate::cli
