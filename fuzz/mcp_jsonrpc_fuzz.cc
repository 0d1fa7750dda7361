// Fuzzes the MCP JSON-RPC decoder (src/mcp/jsonrpc.h) with tight limits: any input must decode to
// exactly one of a message and an error object with a JSON-RPC code, never crash, hang or leak.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include <boost/json.hpp>

#include "mcp/jsonrpc.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  namespace m = mandate::mcp;
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  m::Decoded d = m::Decode(text, m::Limits{size_t{1} << 16, 32});
  if (d.message.has_value() == d.error.has_value()) std::abort();
  if (d.error) {
    const int c = d.error->code;
    if (c != m::kParseError && c != m::kInvalidRequest && c != m::kInvalidParams) std::abort();
    if (!d.error->id.is_null() && !m::IsValidId(d.error->id)) std::abort();
    (void)boost::json::serialize(m::MakeError(*d.error));
  } else if (d.message->kind != m::Message::Kind::kNotification && !m::IsValidId(d.message->id)) {
    std::abort();
  }
  return 0;
}
