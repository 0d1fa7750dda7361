#include "mcp/jwt.h"

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>

#include <chrono>
#include <fstream>
#include <sstream>

#include <boost/json/parse.hpp>
#include <boost/json/parse_options.hpp>
#include <spdlog/spdlog.h>

#include "absl/strings/str_cat.h"
#include "absl/strings/match.h"

#include "mcp/base64.h"
#include "mcp/http_client.h"

namespace mandate::mcp {

namespace json = boost::json;

namespace {

constexpr size_t kMaxTokenBytes = 16 << 10;

struct PkeyFree {
  void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
};
using Pkey = std::unique_ptr<EVP_PKEY, PkeyFree>;

enum class Alg { kRS256, kES256, kEdDSA };

std::optional<Alg> ParseAlg(std::string_view alg) {
  if (alg == "RS256") return Alg::kRS256;
  if (alg == "ES256") return Alg::kES256;
  if (alg == "EdDSA") return Alg::kEdDSA;
  return std::nullopt;
}

std::optional<std::string> B64Field(const json::object& o, const char* name) {
  const json::value* v = o.if_contains(name);
  if (v == nullptr || !v->is_string()) return std::nullopt;
  return Base64UrlDecode(v->as_string());
}

Pkey FromParams(const char* type, OSSL_PARAM_BLD* bld) {
  OSSL_PARAM* params = OSSL_PARAM_BLD_to_param(bld);
  EVP_PKEY_CTX* ctx = EVP_PKEY_CTX_new_from_name(nullptr, type, nullptr);
  EVP_PKEY* pkey = nullptr;
  if (params != nullptr && ctx != nullptr && EVP_PKEY_fromdata_init(ctx) == 1) {
    if (EVP_PKEY_fromdata(ctx, &pkey, EVP_PKEY_PUBLIC_KEY, params) != 1) pkey = nullptr;
  }
  EVP_PKEY_CTX_free(ctx);
  OSSL_PARAM_free(params);
  return Pkey(pkey);
}

Pkey RsaKey(const std::string& n, const std::string& e) {
  BIGNUM* bn_n = BN_bin2bn(reinterpret_cast<const unsigned char*>(n.data()), static_cast<int>(n.size()), nullptr);
  BIGNUM* bn_e = BN_bin2bn(reinterpret_cast<const unsigned char*>(e.data()), static_cast<int>(e.size()), nullptr);
  OSSL_PARAM_BLD* bld = OSSL_PARAM_BLD_new();
  Pkey key;
  if (bn_n && bn_e && bld && OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, bn_n) == 1 &&
      OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, bn_e) == 1) {
    key = FromParams("RSA", bld);
  }
  OSSL_PARAM_BLD_free(bld);
  BN_free(bn_n);
  BN_free(bn_e);
  return key;
}

Pkey P256Key(const std::string& x, const std::string& y) {
  if (x.size() != 32 || y.size() != 32) return nullptr;
  std::string point = "\x04" + x + y;
  OSSL_PARAM_BLD* bld = OSSL_PARAM_BLD_new();
  Pkey key;
  if (bld && OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME, "prime256v1", 0) == 1 &&
      OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, point.data(), point.size()) == 1) {
    key = FromParams("EC", bld);
  }
  OSSL_PARAM_BLD_free(bld);
  return key;
}

// ES256 signatures are r || s (32 bytes each); OpenSSL verifies DER.
std::optional<std::string> EcdsaRawToDer(std::string_view raw) {
  if (raw.size() != 64) return std::nullopt;
  ECDSA_SIG* sig = ECDSA_SIG_new();
  BIGNUM* r = BN_bin2bn(reinterpret_cast<const unsigned char*>(raw.data()), 32, nullptr);
  BIGNUM* s = BN_bin2bn(reinterpret_cast<const unsigned char*>(raw.data()) + 32, 32, nullptr);
  if (sig == nullptr || r == nullptr || s == nullptr || ECDSA_SIG_set0(sig, r, s) != 1) {
    BN_free(r);
    BN_free(s);
    ECDSA_SIG_free(sig);
    return std::nullopt;
  }
  unsigned char* der = nullptr;
  const int len = i2d_ECDSA_SIG(sig, &der);
  ECDSA_SIG_free(sig);
  if (len <= 0) return std::nullopt;
  std::string out(reinterpret_cast<char*>(der), static_cast<size_t>(len));
  OPENSSL_free(der);
  return out;
}

absl::StatusOr<json::object> DecodeJsonPart(std::string_view b64, const char* what) {
  std::optional<std::string> text = Base64UrlDecode(b64);
  if (!text) return absl::UnauthenticatedError(absl::StrCat("token ", what, " is not base64url"));
  json::parse_options opt;
  opt.max_depth = 16;
  boost::system::error_code ec;
  json::value v = json::parse(*text, ec, json::storage_ptr(), opt);
  if (ec || !v.is_object()) return absl::UnauthenticatedError(absl::StrCat("token ", what, " is not a JSON object"));
  return std::move(v.as_object());
}

std::optional<int64_t> NumericClaim(const json::object& claims, const char* name, bool* present) {
  const json::value* v = claims.if_contains(name);
  *present = v != nullptr;
  if (v == nullptr) return std::nullopt;
  if (v->is_int64()) return v->as_int64();
  if (v->is_uint64()) return static_cast<int64_t>(std::min<uint64_t>(v->as_uint64(), INT64_MAX));
  if (v->is_double()) return static_cast<int64_t>(v->as_double());
  return std::nullopt;
}

}  // namespace

struct KeySet::Key {
  std::string kid;
  std::optional<Alg> alg;  // the JWK's own "alg", when it names one
  Alg family;              // what the key type allows
  Pkey pkey;
};

KeySet::~KeySet() = default;

absl::StatusOr<std::shared_ptr<const KeySet>> KeySet::Parse(std::string_view jwks_json) {
  boost::system::error_code ec;
  json::value v = json::parse(jwks_json, ec);
  if (ec || !v.is_object() || !v.as_object().contains("keys") || !v.at("keys").is_array()) {
    return absl::InvalidArgumentError("not a JWKS document (an object with a \"keys\" array)");
  }
  auto set = std::make_shared<KeySet>();
  for (const json::value& jv : v.at("keys").as_array()) {
    if (!jv.is_object()) continue;
    const json::object& k = jv.as_object();
    auto key = std::make_unique<Key>();
    if (const json::value* kid = k.if_contains("kid"); kid && kid->is_string()) key->kid = std::string(kid->as_string());
    if (const json::value* use = k.if_contains("use"); use && use->is_string() && use->as_string() != "sig") continue;
    if (const json::value* alg = k.if_contains("alg"); alg && alg->is_string()) {
      key->alg = ParseAlg(alg->as_string());
      if (!key->alg) continue;  // e.g. HS256 or RSA-OAEP: never usable for access tokens here
    }
    const json::value* kty = k.if_contains("kty");
    if (kty == nullptr || !kty->is_string()) continue;
    if (kty->as_string() == "RSA") {
      auto n = B64Field(k, "n"), e = B64Field(k, "e");
      if (!n || !e || n->size() < 256) continue;  // RSA keys under 2048 bits are refused
      key->family = Alg::kRS256;
      key->pkey = RsaKey(*n, *e);
    } else if (kty->as_string() == "EC") {
      auto x = B64Field(k, "x"), y = B64Field(k, "y");
      const json::value* crv = k.if_contains("crv");
      if (!x || !y || crv == nullptr || *crv != "P-256") continue;
      key->family = Alg::kES256;
      key->pkey = P256Key(*x, *y);
    } else if (kty->as_string() == "OKP") {
      auto x = B64Field(k, "x");
      const json::value* crv = k.if_contains("crv");
      if (!x || x->size() != 32 || crv == nullptr || *crv != "Ed25519") continue;
      key->family = Alg::kEdDSA;
      key->pkey = Pkey(EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, nullptr,
                                                   reinterpret_cast<const unsigned char*>(x->data()), x->size()));
    } else {
      continue;
    }
    if (!key->pkey || (key->alg && *key->alg != key->family)) continue;
    set->keys_.push_back(std::move(key));
  }
  if (set->keys_.empty()) return absl::InvalidArgumentError("the JWKS document has no usable signing key");
  return std::shared_ptr<const KeySet>(std::move(set));
}

const KeySet::Key* KeySet::Find(std::string_view kid) const {
  for (const auto& k : keys_) {
    if (k->kid == kid) return k.get();
  }
  // A token without kid may use the only key of a one-key set.
  if (kid.empty() && keys_.size() == 1) return keys_.front().get();
  return nullptr;
}

absl::StatusOr<JwtParts> DecodeJwt(std::string_view token) {
  if (token.size() > kMaxTokenBytes) return absl::UnauthenticatedError("token is too long");
  std::vector<std::string_view> parts;
  for (size_t start = 0;;) {
    const size_t dot = token.find('.', start);
    parts.push_back(token.substr(start, dot == std::string_view::npos ? std::string_view::npos : dot - start));
    if (dot == std::string_view::npos) break;
    start = dot + 1;
  }
  if (parts.size() != 3) return absl::UnauthenticatedError("token is not a compact JWS (three dot-separated parts)");
  JwtParts out;
  absl::StatusOr<json::object> header = DecodeJsonPart(parts[0], "header");
  if (!header.ok()) return header.status();
  absl::StatusOr<json::object> claims = DecodeJsonPart(parts[1], "payload");
  if (!claims.ok()) return claims.status();
  std::optional<std::string> sig = Base64UrlDecode(parts[2]);
  if (!sig) return absl::UnauthenticatedError("token signature is not base64url");
  out.header = std::move(*header);
  out.claims = std::move(*claims);
  out.signing_input = absl::StrCat(std::string(parts[0]), ".", std::string(parts[1]));
  out.signature = std::move(*sig);
  return out;
}

absl::Status VerifyJwtSignature(const JwtParts& parts, const KeySet& keys) {
  const json::value* algv = parts.header.if_contains("alg");
  if (algv == nullptr || !algv->is_string()) return absl::UnauthenticatedError("token header has no alg");
  std::optional<Alg> alg = ParseAlg(algv->as_string());
  if (!alg) {
    return absl::UnauthenticatedError(
        absl::StrCat("token algorithm ", std::string(algv->as_string()), " is not accepted (RS256, ES256, EdDSA)"));
  }
  if (parts.header.contains("crit")) return absl::UnauthenticatedError("token header has unsupported crit extensions");
  std::string kid;
  if (const json::value* k = parts.header.if_contains("kid")) {
    if (!k->is_string()) return absl::UnauthenticatedError("token kid must be a string");
    kid = std::string(k->as_string());
  }
  const KeySet::Key* key = keys.Find(kid);
  if (key == nullptr) return absl::UnauthenticatedError(absl::StrCat("token key id \"", kid, "\" is unknown"));
  if (key->family != *alg) return absl::UnauthenticatedError("token algorithm does not match its key's type");

  std::string sig = parts.signature;
  const EVP_MD* md = EVP_sha256();
  if (*alg == Alg::kES256) {
    std::optional<std::string> der = EcdsaRawToDer(sig);
    if (!der) return absl::UnauthenticatedError("token signature has the wrong length for ES256");
    sig = std::move(*der);
  } else if (*alg == Alg::kEdDSA) {
    md = nullptr;  // Ed25519 hashes internally
  }
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  const bool ok = ctx != nullptr && EVP_DigestVerifyInit(ctx, nullptr, md, nullptr, key->pkey.get()) == 1 &&
                  EVP_DigestVerify(ctx, reinterpret_cast<const unsigned char*>(sig.data()), sig.size(),
                                   reinterpret_cast<const unsigned char*>(parts.signing_input.data()),
                                   parts.signing_input.size()) == 1;
  EVP_MD_CTX_free(ctx);
  if (!ok) return absl::UnauthenticatedError("token signature is invalid");
  return absl::OkStatus();
}

absl::Status ValidateJwtClaims(const json::object& claims, std::string_view issuer, std::string_view audience,
                               int64_t now, int64_t leeway) {
  const json::value* iss = claims.if_contains("iss");
  if (iss == nullptr || !iss->is_string() || iss->as_string() != issuer) {
    return absl::UnauthenticatedError("token issuer does not match");
  }
  const json::value* aud = claims.if_contains("aud");
  bool aud_ok = false;
  if (aud != nullptr && aud->is_string()) aud_ok = aud->as_string() == audience;
  if (aud != nullptr && aud->is_array()) {
    for (const json::value& a : aud->as_array()) aud_ok = aud_ok || (a.is_string() && a.as_string() == audience);
  }
  if (!aud_ok) return absl::UnauthenticatedError(absl::StrCat("token audience is not ", std::string(audience)));
  bool present = false;
  std::optional<int64_t> exp = NumericClaim(claims, "exp", &present);
  if (!exp) return absl::UnauthenticatedError("token has no numeric exp claim");
  if (*exp <= now - leeway) return absl::UnauthenticatedError("token has expired");
  std::optional<int64_t> nbf = NumericClaim(claims, "nbf", &present);
  if (present && !nbf) return absl::UnauthenticatedError("token nbf claim is not numeric");
  if (nbf && *nbf > now + leeway) return absl::UnauthenticatedError("token is not valid yet (nbf)");
  return absl::OkStatus();
}

// ---- JwtVerifier ------------------------------------------------------------------------------------

struct JwtVerifier::Issuer {
  JwtIssuerConfig config;
  mutable std::mutex mu;
  std::shared_ptr<const KeySet> keys;
  std::chrono::steady_clock::time_point fetched{};
  mutable std::atomic<bool> refresh_wanted{false};
};

JwtVerifier::JwtVerifier(std::vector<JwtIssuerConfig> issuers) {
  for (auto& c : issuers) {
    auto i = std::make_unique<Issuer>();
    i->config = std::move(c);
    issuers_.push_back(std::move(i));
  }
}

JwtVerifier::~JwtVerifier() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (refresher_.joinable()) refresher_.join();
}

void JwtVerifier::Fetch(Issuer& issuer) const {
  HttpRequest r;
  r.url = issuer.config.jwks_url;
  r.timeout = std::chrono::milliseconds(10'000);
  r.body_limit = 1 << 20;
  r.headers.emplace_back("Accept", "application/json");
  absl::StatusOr<HttpResult> res = HttpFetch(r);
  absl::StatusOr<std::shared_ptr<const KeySet>> keys =
      !res.ok()              ? absl::StatusOr<std::shared_ptr<const KeySet>>(res.status())
      : res->status != 200   ? absl::UnavailableError(absl::StrCat("HTTP ", res->status))
                             : KeySet::Parse(res->body);
  std::lock_guard lock(issuer.mu);
  issuer.fetched = std::chrono::steady_clock::now();
  if (!keys.ok()) {
    spdlog::warn("JWKS of {} from {}: {}", issuer.config.issuer, issuer.config.jwks_url, std::string(keys.status().message()));
    return;
  }
  issuer.keys = *keys;
}

absl::Status JwtVerifier::Start() {
  bool any_url = false;
  for (auto& i : issuers_) {
    if (!i->config.jwks_file.empty()) {
      std::ifstream in(i->config.jwks_file, std::ios::binary);
      if (!in) return absl::NotFoundError(absl::StrCat("cannot read JWKS file ", i->config.jwks_file));
      std::stringstream text;
      text << in.rdbuf();
      absl::StatusOr<std::shared_ptr<const KeySet>> keys = KeySet::Parse(text.str());
      if (!keys.ok()) {
        return absl::InvalidArgumentError(absl::StrCat("JWKS file ", i->config.jwks_file, ": ", keys.status().message()));
      }
      i->keys = *keys;
    } else {
      any_url = true;
      Fetch(*i);
    }
  }
  if (any_url) refresher_ = std::thread([this] { RefreshLoop(); });
  return absl::OkStatus();
}

void JwtVerifier::RefreshLoop() {
  std::unique_lock lock(mu_);
  while (!stopping_) {
    cv_.wait_for(lock, std::chrono::seconds(1));
    if (stopping_) break;
    lock.unlock();
    const auto now = std::chrono::steady_clock::now();
    for (auto& i : issuers_) {
      if (i->config.jwks_url.empty()) continue;
      std::chrono::steady_clock::time_point fetched;
      {
        std::lock_guard il(i->mu);
        fetched = i->fetched;
      }
      const auto age = now - fetched;
      // Periodic refresh, or an unknown kid (key rotation) at most every 30 s.
      if (age > std::chrono::duration<double>(i->config.jwks_refresh_seconds) ||
          (i->refresh_wanted.exchange(false) && age > std::chrono::seconds(30))) {
        Fetch(*i);
      }
    }
    lock.lock();
  }
}

absl::StatusOr<JwtVerifier::Verified> JwtVerifier::Verify(std::string_view token, std::string_view audience,
                                                          int64_t now) const {
  absl::StatusOr<JwtParts> parts = DecodeJwt(token);
  if (!parts.ok()) return parts.status();
  const json::value* iss = parts->claims.if_contains("iss");
  if (iss == nullptr || !iss->is_string()) return absl::UnauthenticatedError("token has no iss claim");
  const Issuer* match = nullptr;
  for (const auto& i : issuers_) {
    if (i->config.issuer == iss->as_string() && i->config.audience == audience) match = i.get();
  }
  if (match == nullptr) {
    return absl::UnauthenticatedError(absl::StrCat("tokens of this issuer are not accepted for ", std::string(audience)));
  }
  std::shared_ptr<const KeySet> keys;
  {
    std::lock_guard lock(match->mu);
    keys = match->keys;
  }
  if (keys == nullptr) return absl::UnauthenticatedError("the issuer's keys are not available yet");
  absl::Status sig = VerifyJwtSignature(*parts, *keys);
  if (!sig.ok()) {
    if (absl::StrContains(sig.message(), "key id")) match->refresh_wanted = true;
    return sig;
  }
  absl::Status claims = ValidateJwtClaims(parts->claims, match->config.issuer, audience, now,
                                          static_cast<int64_t>(match->config.leeway_seconds));
  if (!claims.ok()) return claims;
  return Verified{std::move(parts->claims), &match->config};
}

}  // namespace mandate::mcp
