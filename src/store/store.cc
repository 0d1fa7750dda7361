#include "store/store.h"

#include <openssl/evp.h>

#include "absl/strings/escaping.h"

namespace mandate::store {

Mutation Mutation::Changes(std::vector<Change> changes) {
  Mutation m;
  m.kind = Kind::kChanges;
  m.changes = std::move(changes);
  return m;
}

Mutation Mutation::Clear() {
  Mutation m;
  m.kind = Kind::kClear;
  return m;
}

Mutation Mutation::Policy(std::string filename, std::string source) {
  Mutation m;
  m.kind = Kind::kPolicy;
  m.policy_filename = std::move(filename);
  m.policy_source = std::move(source);
  return m;
}

std::string Sha256Hex(std::string_view text) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_Digest(text.data(), text.size(), digest, &len, EVP_sha256(), nullptr);
  return absl::BytesToHexString(absl::string_view(reinterpret_cast<const char*>(digest), len));
}

}  // namespace mandate::store
