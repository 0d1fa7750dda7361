// Fuzzes the JWT and JWKS decoders (src/mcp/jwt.h): compact JWS decoding, signature verification
// against a fixed key set and claim validation, and JWKS parsing. Any input must be refused with a
// status (it cannot carry a valid signature), never crash, hang or leak.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "mcp/jwt.h"

namespace {

// An Ed25519 public key (RFC 8037 test vector).
constexpr char kJwks[] =
    R"({"keys":[{"kty":"OKP","crv":"Ed25519","kid":"k","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}]})";

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  namespace m = mandate::mcp;
  static const auto keys = *m::KeySet::Parse(kJwks);
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  absl::StatusOr<m::JwtParts> parts = m::DecodeJwt(text);
  if (parts.ok()) {
    if (m::VerifyJwtSignature(*parts, *keys).ok()) std::abort();  // nobody has the private key
    (void)m::ValidateJwtClaims(parts->claims, "iss", "aud", 1'800'000'000, 60);
  }
  (void)m::KeySet::Parse(text);
  return 0;
}
