// `mandate console hash-password`: the password hash for a [[console.users]] entry of mandate.toml
// (docs/console.md). The password is read from stdin so that it never appears in the process list
// or the shell history.
#include <iostream>
#include <string>

#include "cli/commands.h"
#include "server/console.h"

namespace mandate::cli {

void AddConsoleCommand(CLI::App& app) {
  CLI::App* console = app.add_subcommand("console", "Web console helpers (see docs/console.md).");
  console->require_subcommand(1);
  auto iterations = std::make_shared<int>(server::kDefaultPasswordIterations);
  CLI::App* hash = console->add_subcommand(
      "hash-password",
      "Reads a password from stdin (its first line) and prints its PBKDF2-SHA256 hash for "
      "[[console.users]] password_hash.");
  hash->add_option("--iterations", *iterations, "PBKDF2 iterations")
      ->capture_default_str()
      ->check(CLI::Range(server::kMinPasswordIterations, 100'000'000));
  hash->callback([iterations] {
    std::string password;
    if (!std::getline(std::cin, password)) Fail("no password on stdin: pipe it in, e.g. `mandate console hash-password < file`");
    if (!password.empty() && password.back() == '\r') password.pop_back();
    absl::StatusOr<std::string> hashed = server::HashPassword(password, *iterations);
    if (!hashed.ok()) Fail(hashed.status());
    std::cout << *hashed << "\n";
  });
}

}  // namespace mandate::cli
