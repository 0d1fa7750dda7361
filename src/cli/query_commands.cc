// `mandate check`, `list`, `actions` and `query`: questions answered from a policy and facts files.
#include <algorithm>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include <boost/json.hpp>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "cli/commands.h"

namespace mandate::cli {
namespace {

constexpr char kDataFooter[] =
    "Values are written Type:id (User:alice, Repo:anvil). Facts files are JSONL of Oso wire facts\n"
    "({\"predicate\":\"has_role\",\"args\":[{\"type\":\"User\",\"id\":\"alice\"},...]}) or .polar fact lines\n"
    "(has_role(User{\"alice\"}, \"admin\", Org{\"acme\"});).";

// Prints a list result one entry per line, `*` first when every value is allowed; exits 0.
[[noreturn]] void PrintList(const absl::StatusOr<std::vector<std::string>>& items, bool wildcard) {
  if (!items.ok()) Fail(items.status());
  std::vector<std::string> sorted = *items;
  std::sort(sorted.begin(), sorted.end());
  if (wildcard) std::cout << "*\n";
  for (const std::string& item : sorted) std::cout << item << "\n";
  ExitWith(kExitOk);
}

// Query values for people: strings, integers and booleans bare, instances as Type:id.
std::string FormatValue(const std::optional<TypedValue>& v) {
  if (!v.has_value()) return "*";
  if (v->type == "String" || v->type == "Integer" || v->type == "Boolean") return v->id;
  return absl::StrCat(v->type, ":", v->id);
}

// Query values for programs: the Oso wire form {"type","id"}, or "*" for a wildcard.
boost::json::value JsonValue(const std::optional<TypedValue>& v) {
  if (!v.has_value()) return "*";
  return boost::json::object{{"type", v->type}, {"id", v->id}};
}

void RunCheck(const DataOptions& options, const std::string& actor_text, const std::string& action,
              const std::string& resource_text, bool explain) {
  const TypedValue actor = ParseValueArg("ACTOR", actor_text);
  const TypedValue resource = ParseValueArg("RESOURCE", resource_text);
  LoadedData data = LoadData(options);
  data.query_options.explain = explain;
  const Decision decision = data.snapshot->Check(actor, action, resource, data.query_options);
  std::cout << (decision.allowed ? "allow" : "deny") << "\n";
  for (const std::string& reason : decision.reasons) std::cout << "  reason: " << reason << "\n";
  if (explain && decision.explanation.has_value()) std::cout << decision.explanation->ToText();
  ExitWith(decision.allowed ? kExitOk : kExitNo);
}

void RunQuery(const DataOptions& options, const std::string& text, const std::string& format) {
  absl::StatusOr<ConjunctiveQuery> query = ParseQuery(text);
  if (!query.ok()) Fail(query.status());
  LoadedData data = LoadData(options);
  absl::StatusOr<QueryResult> result = data.snapshot->Query(*query, data.query_options);
  if (!result.ok()) Fail(result.status());
  for (const std::string& reason : result->reasons) std::cerr << "warning: results are incomplete: " << reason << "\n";

  std::vector<std::string> lines;
  lines.reserve(result->rows.size());
  for (const auto& row : result->rows) {
    if (format == "json") {
      boost::json::object object;
      for (size_t i = 0; i < row.size() && i < result->vars.size(); ++i) object[result->vars[i]] = JsonValue(row[i]);
      lines.push_back(boost::json::serialize(object));
    } else {
      std::vector<std::string> cells;
      for (size_t i = 0; i < row.size() && i < result->vars.size(); ++i) {
        cells.push_back(absl::StrCat(result->vars[i], " = ", FormatValue(row[i])));
      }
      lines.push_back(absl::StrJoin(cells, "  "));
    }
  }
  std::sort(lines.begin(), lines.end());
  lines.erase(std::unique(lines.begin(), lines.end()), lines.end());
  if (format != "json" && result->vars.empty()) {
    // A query without variables is a yes/no question.
    std::cout << (result->rows.empty() ? "false" : "true") << "\n";
  } else {
    for (const std::string& line : lines) std::cout << line << "\n";
  }
  ExitWith(result->rows.empty() ? kExitNo : kExitOk);
}

}  // namespace

void AddCheckCommand(CLI::App& app) {
  struct Args {
    DataOptions data;
    std::string actor, action, resource;
    bool explain = false;
  };
  auto args = std::make_shared<Args>();
  CLI::App* cmd = app.add_subcommand("check", "Is ACTOR allowed to do ACTION on RESOURCE?");
  AddDataOptions(*cmd, args->data);
  cmd->add_option("actor", args->actor, "The actor, Type:id (User:alice)")->required()->type_name("ACTOR");
  cmd->add_option("action", args->action, "The action (read)")->required()->type_name("ACTION");
  cmd->add_option("resource", args->resource, "The resource, Type:id (Repo:anvil)")->required()->type_name("RESOURCE");
  cmd->add_flag("-e,--explain", args->explain, "Print why: the proof of an allow, or the rules that came closest");
  cmd->footer(
      absl::StrCat("Prints `allow` or `deny` (with reasons when a limit stopped evaluation). Exit status: 0 allow,\n"
                   "1 deny, 2 error.\n\n",
                   kDataFooter,
                   "\n\nExample: mandate check --policy examples/quickstart/policy.polar \\\n"
                   "           --facts examples/quickstart/facts.jsonl User:alice read Repo:anvil --explain"));
  cmd->callback([args] { RunCheck(args->data, args->actor, args->action, args->resource, args->explain); });
}

void AddListCommand(CLI::App& app) {
  struct Args {
    DataOptions data;
    std::string actor, action, type;
  };
  auto args = std::make_shared<Args>();
  CLI::App* cmd = app.add_subcommand("list", "Which resources of TYPE may ACTOR do ACTION on?");
  AddDataOptions(*cmd, args->data);
  cmd->add_option("actor", args->actor, "The actor, Type:id (User:alice)")->required()->type_name("ACTOR");
  cmd->add_option("action", args->action, "The action (read)")->required()->type_name("ACTION");
  cmd->add_option("type", args->type, "The resource type (Repo)")->required()->type_name("TYPE");
  cmd->footer(
      absl::StrCat("Prints one resource id per line; a `*` line means every resource of the type is allowed.\n"
                   "Exit status: 0, or 2 on error.\n\n",
                   kDataFooter));
  cmd->callback([args] {
    const TypedValue actor = ParseValueArg("ACTOR", args->actor);
    LoadedData data = LoadData(args->data);
    bool wildcard = false;
    // Two statements: List sets `wildcard`, and argument evaluation order is unspecified.
    auto items = data.snapshot->List(actor, args->action, args->type, data.query_options, &wildcard);
    PrintList(items, wildcard);
  });
}

void AddActionsCommand(CLI::App& app) {
  struct Args {
    DataOptions data;
    std::string actor, resource;
  };
  auto args = std::make_shared<Args>();
  CLI::App* cmd = app.add_subcommand("actions", "Which actions may ACTOR do on RESOURCE?");
  AddDataOptions(*cmd, args->data);
  cmd->add_option("actor", args->actor, "The actor, Type:id (User:alice)")->required()->type_name("ACTOR");
  cmd->add_option("resource", args->resource, "The resource, Type:id (Repo:anvil)")->required()->type_name("RESOURCE");
  cmd->footer(
      absl::StrCat("Prints one action per line, sorted; a `*` line means every action is allowed.\n"
                   "Exit status: 0, or 2 on error.\n\n",
                   kDataFooter));
  cmd->callback([args] {
    const TypedValue actor = ParseValueArg("ACTOR", args->actor);
    const TypedValue resource = ParseValueArg("RESOURCE", args->resource);
    LoadedData data = LoadData(args->data);
    bool wildcard = false;
    auto items = data.snapshot->Actions(actor, resource, data.query_options, &wildcard);
    PrintList(items, wildcard);
  });
}

void AddQueryCommand(CLI::App& app) {
  struct Args {
    DataOptions data;
    std::string query;
    std::string format = "table";
  };
  auto args = std::make_shared<Args>();
  CLI::App* cmd = app.add_subcommand("query", "Find every binding of the variables in a query");
  AddDataOptions(*cmd, args->data);
  cmd->add_option("query", args->query,
                  "Polar query with unbound variables, calls joined by `and`: "
                  "'allow(User:alice, action, repo: Repo)'")
      ->required()
      ->type_name("QUERY");
  cmd->add_option("--format", args->format, "Output format")
      ->check(CLI::IsMember({"table", "json"}))
      ->capture_default_str();
  cmd->footer(
      absl::StrCat("Prints one row per distinct binding, `var = value` pairs (table) or one JSON object per line\n"
                   "(json, values as {\"type\",\"id\"}). A variable that any value satisfies prints as `*`. A query\n"
                   "without variables prints true or false. Exit status: 0 with results, 1 without, 2 on error.\n\n",
                   kDataFooter,
                   "\n\nExample: mandate query --policy examples/quickstart/policy.polar \\\n"
                   "           --facts examples/quickstart/facts.jsonl 'allow(User:alice, action, repo: Repo)'"));
  cmd->callback([args] { RunQuery(args->data, args->query, args->format); });
}

}  // namespace mandate::cli
