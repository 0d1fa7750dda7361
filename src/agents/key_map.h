// Secret keys (API keys) mapped to what they grant, looked up in constant time: each key is kept
// only as its SHA-256 digest and a lookup compares the digest with every entry (CRYPTO_memcmp), so
// response timing reveals nothing about a key's content or length. Used by the server's API keys
// (key -> role) and the MCP gateway's agent keys (key -> principal).
#ifndef MANDATE_AGENTS_KEY_MAP_H_
#define MANDATE_AGENTS_KEY_MAP_H_

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/sha.h>

#include <array>
#include <memory>
#include <string_view>
#include <utility>
#include <vector>

namespace mandate::agents {

template <typename T>
class KeyMap {
 public:
  using Digest = std::array<unsigned char, SHA256_DIGEST_LENGTH>;

  // One digest per request: SHA256() would fetch the algorithm (a locked lookup) and allocate a
  // context on every call (~360 ns); a fetched algorithm and a context per thread make it ~90 ns.
  static Digest DigestOf(std::string_view key) {
    static EVP_MD* const md = EVP_MD_fetch(nullptr, "SHA256", nullptr);
    thread_local const std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(), &EVP_MD_CTX_free);
    Digest d;
    unsigned int len = 0;
    if (md == nullptr || ctx == nullptr || EVP_DigestInit_ex2(ctx.get(), md, nullptr) != 1 ||
        EVP_DigestUpdate(ctx.get(), key.data(), key.size()) != 1 || EVP_DigestFinal_ex(ctx.get(), d.data(), &len) != 1) {
      SHA256(reinterpret_cast<const unsigned char*>(key.data()), key.size(), d.data());
    }
    return d;
  }

  // The value already stored for `key`, or nullptr (for merging duplicates at construction).
  T* Existing(std::string_view key) {
    const Digest d = DigestOf(key);
    for (Entry& e : entries_) {
      if (e.digest == d) return &e.value;
    }
    return nullptr;
  }
  void Add(std::string_view key, T value) { entries_.push_back(Entry{DigestOf(key), std::move(value)}); }

  // The value of `key`, or nullptr. Every entry is compared, whichever matches.
  const T* Find(std::string_view key) const {
    const Digest d = DigestOf(key);
    const T* found = nullptr;
    for (const Entry& e : entries_) {
      if (CRYPTO_memcmp(e.digest.data(), d.data(), d.size()) == 0) found = &e.value;
    }
    return found;
  }

  bool empty() const { return entries_.empty(); }
  size_t size() const { return entries_.size(); }

 private:
  struct Entry {
    Digest digest;
    T value;
  };
  std::vector<Entry> entries_;
};

}  // namespace mandate::agents

#endif  // MANDATE_AGENTS_KEY_MAP_H_
