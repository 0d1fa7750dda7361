// JWT validation: keys made here with OpenSSL sign good and forged tokens; only the good ones pass.
#include "mcp/jwt.h"

#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <memory>
#include <string>

#include <boost/json.hpp>
#include <gtest/gtest.h>

#include "mcp/base64.h"
#include "mcp/identity.h"

namespace mandate::mcp {
namespace {

namespace json = boost::json;

constexpr int64_t kNow = 1'800'000'000;
constexpr char kIss[] = "https://issuer.test";
constexpr char kAud[] = "https://gw.test/mcp/fs";

struct Key {
  std::string alg, kid;
  std::shared_ptr<EVP_PKEY> pkey;
};

std::string BnB64(const EVP_PKEY* k, const char* name) {
  BIGNUM* bn = nullptr;
  EVP_PKEY_get_bn_param(k, name, &bn);
  std::string out(BN_num_bytes(bn), '\0');
  BN_bn2bin(bn, reinterpret_cast<unsigned char*>(out.data()));
  BN_free(bn);
  return Base64UrlEncode(out);
}

Key MakeKey(const std::string& alg, const std::string& kid) {
  EVP_PKEY* k = alg == "RS256"   ? EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", size_t{2048})
                : alg == "ES256" ? EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256")
                                 : EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519");
  return Key{alg, kid, std::shared_ptr<EVP_PKEY>(k, EVP_PKEY_free)};
}

json::object Jwk(const Key& key) {
  json::object j{{"kid", key.kid}, {"alg", key.alg}, {"use", "sig"}};
  EVP_PKEY* k = key.pkey.get();
  if (key.alg == "RS256") {
    j["kty"] = "RSA";
    j["n"] = BnB64(k, OSSL_PKEY_PARAM_RSA_N);
    j["e"] = BnB64(k, OSSL_PKEY_PARAM_RSA_E);
  } else if (key.alg == "ES256") {
    unsigned char pub[65];
    size_t len = 0;
    EVP_PKEY_get_octet_string_param(k, OSSL_PKEY_PARAM_PUB_KEY, pub, sizeof pub, &len);
    j["kty"] = "EC";
    j["crv"] = "P-256";
    j["x"] = Base64UrlEncode(std::string(reinterpret_cast<char*>(pub + 1), 32));
    j["y"] = Base64UrlEncode(std::string(reinterpret_cast<char*>(pub + 33), 32));
  } else {
    unsigned char pub[32];
    size_t len = sizeof pub;
    EVP_PKEY_get_raw_public_key(k, pub, &len);
    j["kty"] = "OKP";
    j["crv"] = "Ed25519";
    j["x"] = Base64UrlEncode(std::string(reinterpret_cast<char*>(pub), len));
  }
  return j;
}

std::string Sign(const Key& key, std::string_view input) {
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  EVP_DigestSignInit(ctx, nullptr, key.alg == "EdDSA" ? nullptr : EVP_sha256(), nullptr, key.pkey.get());
  size_t len = 0;
  EVP_DigestSign(ctx, nullptr, &len, reinterpret_cast<const unsigned char*>(input.data()), input.size());
  std::string sig(len, '\0');
  EVP_DigestSign(ctx, reinterpret_cast<unsigned char*>(sig.data()), &len,
                 reinterpret_cast<const unsigned char*>(input.data()), input.size());
  sig.resize(len);
  EVP_MD_CTX_free(ctx);
  if (key.alg == "ES256") {  // DER -> r || s
    const unsigned char* p = reinterpret_cast<const unsigned char*>(sig.data());
    ECDSA_SIG* es = d2i_ECDSA_SIG(nullptr, &p, static_cast<long>(sig.size()));
    std::string raw(64, '\0');
    BN_bn2binpad(ECDSA_SIG_get0_r(es), reinterpret_cast<unsigned char*>(raw.data()), 32);
    BN_bn2binpad(ECDSA_SIG_get0_s(es), reinterpret_cast<unsigned char*>(raw.data()) + 32, 32);
    ECDSA_SIG_free(es);
    return raw;
  }
  return sig;
}

json::object Claims(json::object extra = {}) {
  json::object c{{"iss", kIss}, {"aud", kAud}, {"sub", "alice"}, {"client_id", "claude"}, {"exp", kNow + 300}};
  for (auto& [k, v] : extra) c[k] = v;
  return c;
}

std::string Token(const Key& key, const json::object& claims, json::object header = {}) {
  if (!header.contains("alg")) header["alg"] = key.alg;
  if (!header.contains("kid")) header["kid"] = key.kid;
  const std::string input =
      Base64UrlEncode(json::serialize(header)) + "." + Base64UrlEncode(json::serialize(claims));
  return input + "." + Base64UrlEncode(Sign(key, input));
}

class JwtTest : public ::testing::Test {
 protected:
  void SetUp() override {
    rsa_ = MakeKey("RS256", "r1");
    ec_ = MakeKey("ES256", "e1");
    ed_ = MakeKey("EdDSA", "d1");
    json::object jwks{{"keys", json::array{Jwk(rsa_), Jwk(ec_), Jwk(ed_)}}};
    auto keys = KeySet::Parse(json::serialize(jwks));
    ASSERT_TRUE(keys.ok()) << keys.status();
    keys_ = *keys;
  }
  absl::Status Check(const std::string& token, std::string_view aud = kAud) {
    absl::StatusOr<JwtParts> parts = DecodeJwt(token);
    if (!parts.ok()) return parts.status();
    if (absl::Status s = VerifyJwtSignature(*parts, *keys_); !s.ok()) return s;
    return ValidateJwtClaims(parts->claims, kIss, aud, kNow, 60);
  }
  Key rsa_, ec_, ed_;
  std::shared_ptr<const KeySet> keys_;
};

TEST_F(JwtTest, AcceptsEachAllowedAlgorithm) {
  EXPECT_EQ(keys_->size(), 3u);
  for (const Key* k : {&rsa_, &ec_, &ed_}) EXPECT_TRUE(Check(Token(*k, Claims())).ok()) << k->alg;
}

TEST_F(JwtTest, RefusesForgedAndInvalidTokens) {
  const std::string good = Token(rsa_, Claims());
  const std::string head = good.substr(0, good.find('.'));
  const std::string payload = good.substr(good.find('.') + 1, good.rfind('.') - good.find('.') - 1);
  // alg none, with and without a signature.
  const std::string none_header = Base64UrlEncode(R"({"alg":"none","kid":"r1"})");
  EXPECT_FALSE(Check(none_header + "." + payload + ".").ok());
  EXPECT_FALSE(Check(none_header + "." + payload + "." + good.substr(good.rfind('.') + 1)).ok());
  // HS256 keyed with the RSA public key's JWK text (the classic key-confusion attack).
  const std::string hs_header = Base64UrlEncode(R"({"alg":"HS256","kid":"r1"})");
  const std::string hs_input = hs_header + "." + payload;
  const std::string secret = json::serialize(Jwk(rsa_));
  unsigned char mac[32];
  unsigned int mac_len = 0;
  HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()),
       reinterpret_cast<const unsigned char*>(hs_input.data()), hs_input.size(), mac, &mac_len);
  absl::Status hs = Check(hs_input + "." + Base64UrlEncode(std::string(reinterpret_cast<char*>(mac), mac_len)));
  EXPECT_FALSE(hs.ok());
  EXPECT_NE(hs.message().find("not accepted"), std::string::npos) << hs;
  // Tampered payload and signature.
  const std::string evil = Base64UrlEncode(json::serialize(Claims({{"sub", "root"}})));
  EXPECT_FALSE(Check(head + "." + evil + good.substr(good.rfind('.'))).ok());
  std::string flipped = good;
  flipped[flipped.size() - 5] = flipped[flipped.size() - 5] == 'A' ? 'B' : 'A';
  EXPECT_FALSE(Check(flipped).ok());
  // Unknown kid; a key whose type does not match the algorithm.
  EXPECT_FALSE(Check(Token(MakeKey("RS256", "r9"), Claims())).ok());
  EXPECT_FALSE(Check(Token(ec_, Claims(), json::object{{"alg", "RS256"}})).ok());
  // Claims.
  EXPECT_FALSE(Check(Token(rsa_, Claims({{"exp", kNow - 61}}))).ok());
  EXPECT_TRUE(Check(Token(rsa_, Claims({{"exp", kNow - 30}}))).ok());  // within the leeway
  EXPECT_FALSE(Check(Token(rsa_, Claims({{"nbf", kNow + 61}}))).ok());
  EXPECT_FALSE(Check(Token(rsa_, Claims({{"iss", "https://evil.test"}}))).ok());
  EXPECT_FALSE(Check(Token(rsa_, Claims({{"aud", "https://gw.test/mcp/other"}}))).ok());
  EXPECT_TRUE(Check(Token(rsa_, Claims({{"aud", json::array{"x", kAud}}}))).ok());
  json::object no_exp = Claims();
  no_exp.erase("exp");
  EXPECT_FALSE(Check(Token(rsa_, no_exp)).ok());
  // Garbage.
  for (const char* t : {"", "a.b", "a.b.c.d", "!!.??.**", "e30.e30.", "bnVsbA.bnVsbA.AA"}) EXPECT_FALSE(Check(t).ok()) << t;
}

TEST_F(JwtTest, KeySetRefusesUnusableKeys) {
  EXPECT_FALSE(KeySet::Parse("{}").ok());
  EXPECT_FALSE(KeySet::Parse(R"({"keys":[{"kty":"oct","k":"c2VjcmV0","alg":"HS256"}]})").ok());
  json::object small = Jwk(rsa_);
  small["n"] = Base64UrlEncode(std::string(128, '\x7f'));  // 1024-bit modulus
  EXPECT_FALSE(KeySet::Parse(json::serialize(json::object{{"keys", json::array{small}}})).ok());
}

TEST(IdentityTest, MapsClaimsToPrincipals) {
  JwtIssuerConfig issuer;
  auto p = PrincipalFromClaims(json::object{{"sub", "alice"}, {"client_id", "claude"}}, issuer);
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->Describe(), R"(Agent{"claude"} for User{"alice"})");
  p = PrincipalFromClaims(json::object{{"sub", "alice"}, {"azp", "cursor"}}, issuer);
  EXPECT_EQ(p->Describe(), R"(Agent{"cursor"} for User{"alice"})");
  p = PrincipalFromClaims(json::object{{"sub", "svc"}, {"client_id", "svc"}}, issuer);
  EXPECT_EQ(p->Describe(), R"(Agent{"svc"})");
  p = PrincipalFromClaims(json::object{{"sub", "alice"}}, issuer);
  EXPECT_EQ(p->Describe(), R"(User{"alice"})");
  // RFC 8693: agent-b acts now, for agent-a, who acted for alice.
  p = PrincipalFromClaims(
      json::parse(R"({"sub":"alice","client_id":"x","act":{"sub":"agent-b","act":{"sub":"agent-a"}}})").as_object(),
      issuer);
  EXPECT_EQ(p->Describe(), R"(Agent{"agent-b"} for Agent{"agent-a"} for User{"alice"})");
  EXPECT_FALSE(PrincipalFromClaims(json::object{{"client_id", "x"}}, issuer).ok());
  EXPECT_FALSE(PrincipalFromClaims(json::parse(R"({"sub":"a","act":{"iss":"x"}})").as_object(), issuer).ok());
}

TEST(IdentityTest, ApiKeys) {
  AgentKeyRing ring({AgentKey{"k1", "", "claude", {"alice"}}, AgentKey{"k2", "bot", "bot", {}}});
  ASSERT_TRUE(ring.Find("k1"));
  EXPECT_EQ(ring.Find("k1")->Describe(), R"(Agent{"claude"} for User{"alice"})");
  EXPECT_EQ(ring.Find("k2")->via, "api_key:bot");
  EXPECT_FALSE(ring.Find("k3"));
  EXPECT_FALSE(ring.Find(""));
}

TEST(Base64Test, RoundTrips) {
  for (std::string s : {"", "f", "fo", "foo", "foob", "\xff\xfe\x00\x01"}) {
    EXPECT_EQ(Base64UrlDecode(Base64UrlEncode(s)), s);
  }
  EXPECT_EQ(Base64Encode("foob"), "Zm9vYg==");
  EXPECT_FALSE(Base64UrlDecode("a+b/"));
  EXPECT_FALSE(Base64UrlDecode("abcde"));
}

}  // namespace
}  // namespace mandate::mcp
