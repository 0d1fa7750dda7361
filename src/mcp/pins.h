// Tool pinning against definitions that change after they were approved ("rug pulls"): the digest
// of each tool's definition (name, title, description, input and output schemas, annotations) is
// recorded the first time the gateway sees it (trust on first use); a later definition with another
// digest is blocked (hidden from tools/list, refused by tools/call) and logged as an alert until an
// admin approves it. Pins persist in a JSON file.
//
// Thread safety: all methods may be called from any thread.
#ifndef MANDATE_MCP_PINS_H_
#define MANDATE_MCP_PINS_H_

#include <map>
#include <mutex>
#include <string>
#include <string_view>

#include <boost/json/array.hpp>
#include <boost/json/object.hpp>

#include "absl/status/status.h"

namespace mandate::mcp {

// Hex SHA-256 over the canonical JSON (object keys sorted, no spaces) of `value`.
std::string CanonicalDigest(const boost::json::value& value);
// CanonicalDigest of the definition's pinned fields.
std::string ToolDigest(const boost::json::object& tool);

class ToolPins {
 public:
  // `file` empty keeps pins in memory only.
  explicit ToolPins(std::string file) : file_(std::move(file)) {}

  // Reads the file if it exists. Errors: unreadable or malformed file.
  absl::Status Load();

  // Whether the tool `key` ("<upstream>/<tool>") with this digest may be used. Pins it on first
  // sight; records a differing digest as pending approval.
  bool Allow(const std::string& key, const std::string& digest);

  // Approves the pending digest of `key`. NotFound when nothing is pending for it.
  absl::Status Approve(const std::string& key);

  // The pins whose key starts with `prefix`: [{"tool", "digest", "pending_digest"?}].
  boost::json::array List(std::string_view prefix) const;

 private:
  struct Pin {
    std::string digest;
    std::string pending;
  };
  void SaveLocked() const;

  const std::string file_;
  mutable std::mutex mu_;
  std::map<std::string, Pin> pins_;
};

}  // namespace mandate::mcp

#endif  // MANDATE_MCP_PINS_H_
