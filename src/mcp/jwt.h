// Validation of JWT access tokens (RFC 7519, RFC 9068 profile) against JSON Web Key Sets, with
// OpenSSL. Only asymmetric algorithms are accepted, each bound to its key type: RS256 (RSA keys of
// 2048 bits or more), ES256 (P-256) and EdDSA (Ed25519). `none` and every HMAC algorithm are
// refused outright, so a public key can never be used as an HMAC secret. Claims checked: iss, aud
// (must contain the expected resource URL), exp (required) and nbf, with a bounded leeway.
#ifndef MANDATE_MCP_JWT_H_
#define MANDATE_MCP_JWT_H_

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include <boost/json/object.hpp>

#include "absl/status/statusor.h"

#include "mcp/config.h"

namespace mandate::mcp {

// A parsed JWKS document. Immutable once built; keys without `kid` match any token without one.
class KeySet {
 public:
  // Parses a JWKS ({"keys": [...]}) document. Keys of unsupported types are skipped; an empty
  // result or malformed JSON is InvalidArgument.
  static absl::StatusOr<std::shared_ptr<const KeySet>> Parse(std::string_view jwks_json);
  ~KeySet();

  struct Key;
  // The key for `kid` (empty = a key without kid); null when unknown.
  const Key* Find(std::string_view kid) const;
  size_t size() const { return keys_.size(); }

 private:
  std::vector<std::unique_ptr<Key>> keys_;
};

// Decodes the parts of a compact JWS without verifying anything (for tests and fuzzing); errors
// name the part that is malformed.
struct JwtParts {
  boost::json::object header;
  boost::json::object claims;
  std::string signing_input;  // base64url(header) "." base64url(payload)
  std::string signature;      // raw bytes
};
absl::StatusOr<JwtParts> DecodeJwt(std::string_view token);

// Verifies the signature of `parts` with `keys` (selected by the header's kid and alg).
absl::Status VerifyJwtSignature(const JwtParts& parts, const KeySet& keys);

// Validates the registered claims: iss == issuer, aud contains `audience`, exp > now - leeway,
// nbf <= now + leeway.
absl::Status ValidateJwtClaims(const boost::json::object& claims, std::string_view issuer, std::string_view audience,
                               int64_t now_unix, int64_t leeway_seconds);

// The trusted issuers of the gateway, each with its key set (from a file, or from a URL fetched in
// the background, cached and refreshed periodically and when an unknown kid shows up).
// Thread-safe.
class JwtVerifier {
 public:
  explicit JwtVerifier(std::vector<JwtIssuerConfig> issuers);
  ~JwtVerifier();

  // Loads key files and fetches key URLs once (errors of URLs are logged and retried later).
  // Fails when a key file cannot be read or parsed.
  absl::Status Start();

  // Validates `token` for the resource `audience`: an issuer entry must name the token's iss with
  // this audience. Returns the claims and the entry. Unauthenticated with a reason otherwise.
  struct Verified {
    boost::json::object claims;
    const JwtIssuerConfig* issuer = nullptr;
  };
  absl::StatusOr<Verified> Verify(std::string_view token, std::string_view audience, int64_t now_unix) const;

  bool empty() const { return issuers_.empty(); }

 private:
  struct Issuer;
  void RefreshLoop();
  void Fetch(Issuer& issuer) const;

  std::vector<std::unique_ptr<Issuer>> issuers_;
  mutable std::mutex mu_;
  mutable std::condition_variable cv_;
  bool stopping_ = false;
  std::thread refresher_;
};

}  // namespace mandate::mcp

#endif  // MANDATE_MCP_JWT_H_
