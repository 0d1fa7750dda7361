#include "audit/signing.h"

#include <cerrno>
#include <cstring>

#include <boost/json.hpp>
#include <fcntl.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <sys/stat.h>
#include <unistd.h>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"

namespace mandate::audit {
namespace {

namespace json = boost::json;

std::shared_ptr<void> Own(EVP_PKEY* k) {
  return std::shared_ptr<void>(k, [](void* p) { EVP_PKEY_free(static_cast<EVP_PKEY*>(p)); });
}
EVP_PKEY* Get(const std::shared_ptr<void>& k) { return static_cast<EVP_PKEY*>(k.get()); }

std::string KeyIdOf(EVP_PKEY* key) {
  unsigned char raw[32];
  size_t len = sizeof raw;
  if (EVP_PKEY_get_raw_public_key(key, raw, &len) != 1) return "";
  return HexHash(Sha256(std::string_view(reinterpret_cast<char*>(raw), len))).substr(0, 16);
}

}  // namespace

std::string CheckpointMessage(uint64_t seq, const Hash& hash, int64_t time_us) {
  return absl::StrCat("mandate-audit-checkpoint/v1\n", seq, "\n", HexHash(hash), "\n", time_us);
}

std::string CheckpointJson(const Checkpoint& c) {
  return json::serialize(json::object{{"kind", "checkpoint"},
                                      {"seq", c.seq},
                                      {"hash", HexHash(c.hash)},
                                      {"time_us", c.time_us},
                                      {"key", c.key_id},
                                      {"sig", c.signature}});
}

absl::StatusOr<Checkpoint> ParseCheckpoint(std::string_view text) {
  boost::system::error_code ec;
  json::value v = json::parse(text, ec);
  const json::object* o = ec ? nullptr : v.if_object();
  auto bad = [](std::string what) { return absl::DataLossError(absl::StrCat("malformed checkpoint: ", what)); };
  if (o == nullptr) return bad("not a JSON object");
  Checkpoint c;
  const json::value* seq = o->if_contains("seq");
  const json::value* hash = o->if_contains("hash");
  const json::value* time = o->if_contains("time_us");
  const json::value* key = o->if_contains("key");
  const json::value* sig = o->if_contains("sig");
  if (seq == nullptr || !(seq->is_uint64() || seq->is_int64())) return bad("seq");
  if (time == nullptr || !(time->is_int64() || time->is_uint64())) return bad("time_us");
  if (hash == nullptr || !hash->is_string()) return bad("hash");
  if (key == nullptr || !key->is_string() || sig == nullptr || !sig->is_string()) return bad("key/sig");
  c.seq = seq->to_number<uint64_t>();
  c.time_us = time->to_number<int64_t>();
  std::optional<Hash> h = ParseHexHash(hash->as_string());
  if (!h) return bad("hash is not 64 hex digits");
  c.hash = *h;
  c.key_id = std::string(key->as_string());
  c.signature = std::string(sig->as_string());
  if (const json::value* at = o->if_contains("record_seq"); at != nullptr && at->is_number()) {
    c.record_seq = at->to_number<uint64_t>();
  }
  return c;
}

absl::StatusOr<PublicKey> PublicKey::FromPem(std::string_view pem) {
  BIO* bio = BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size()));
  EVP_PKEY* key = PEM_read_bio_PUBKEY(bio, nullptr, nullptr, nullptr);
  BIO_free(bio);
  if (key == nullptr) return absl::InvalidArgumentError("not a PEM public key");
  if (EVP_PKEY_get_id(key) != EVP_PKEY_ED25519) {
    EVP_PKEY_free(key);
    return absl::InvalidArgumentError("the public key is not an Ed25519 key");
  }
  PublicKey p;
  p.key_ = Own(key);
  p.key_id_ = KeyIdOf(key);
  return p;
}

absl::StatusOr<PublicKey> PublicKey::FromFile(const std::string& path) {
  absl::StatusOr<std::string> text = ReadWholeFile(path);
  if (!text.ok()) return text.status();
  absl::StatusOr<PublicKey> key = FromPem(*text);
  if (!key.ok()) return absl::InvalidArgumentError(absl::StrCat(path, ": ", key.status().message()));
  return key;
}

std::string PublicKey::Pem() const {
  BIO* bio = BIO_new(BIO_s_mem());
  PEM_write_bio_PUBKEY(bio, Get(key_));
  char* data = nullptr;
  const long n = BIO_get_mem_data(bio, &data);
  std::string out(data, static_cast<size_t>(n));
  BIO_free(bio);
  return out;
}

bool PublicKey::Verify(std::string_view message, std::string_view signature_b64) const {
  std::string sig;
  if (!absl::Base64Unescape(absl::string_view(signature_b64.data(), signature_b64.size()), &sig) || sig.size() != 64)
    return false;
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  bool ok = EVP_DigestVerifyInit(ctx, nullptr, nullptr, nullptr, Get(key_)) == 1 &&
            EVP_DigestVerify(ctx, reinterpret_cast<const unsigned char*>(sig.data()), sig.size(),
                             reinterpret_cast<const unsigned char*>(message.data()), message.size()) == 1;
  EVP_MD_CTX_free(ctx);
  return ok;
}

absl::StatusOr<Signer> Signer::Open(const std::string& path, bool create) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) {
    if (errno != ENOENT || !create) {
      return absl::NotFoundError(absl::StrCat("audit signing key ", path, ": ", std::strerror(errno)));
    }
    EVP_PKEY* key = EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519");
    if (key == nullptr) return absl::InternalError("cannot generate an Ed25519 key");
    BIO* bio = BIO_new(BIO_s_mem());
    PEM_write_bio_PrivateKey(bio, key, nullptr, nullptr, 0, nullptr, nullptr);
    EVP_PKEY_free(key);
    char* data = nullptr;
    const long n = BIO_get_mem_data(bio, &data);
    const std::string pem(data, static_cast<size_t>(n));
    BIO_free(bio);
    if (absl::Status s = WriteFileAtomically(path, pem, 0600); !s.ok()) return s;
  } else if ((st.st_mode & 077) != 0) {
    return absl::FailedPreconditionError(
        absl::StrCat("audit signing key ", path, " is readable by other users; chmod 600 it"));
  }
  absl::StatusOr<std::string> pem = ReadWholeFile(path);
  if (!pem.ok()) return pem.status();
  BIO* bio = BIO_new_mem_buf(pem->data(), static_cast<int>(pem->size()));
  EVP_PKEY* key = PEM_read_bio_PrivateKey(bio, nullptr, nullptr, nullptr);
  BIO_free(bio);
  if (key == nullptr || EVP_PKEY_get_id(key) != EVP_PKEY_ED25519) {
    if (key != nullptr) EVP_PKEY_free(key);
    return absl::InvalidArgumentError(absl::StrCat("audit signing key ", path, " is not an Ed25519 private key (PEM)"));
  }
  Signer s;
  s.key_ = Own(key);
  // The public half, through its PEM form (the same path an auditor's copy takes).
  BIO* out = BIO_new(BIO_s_mem());
  PEM_write_bio_PUBKEY(out, key);
  char* data = nullptr;
  const long n = BIO_get_mem_data(out, &data);
  absl::StatusOr<PublicKey> pub = PublicKey::FromPem(std::string_view(data, static_cast<size_t>(n)));
  BIO_free(out);
  if (!pub.ok()) return pub.status();
  s.public_ = *pub;
  return s;
}

std::string Signer::Sign(std::string_view message) const {
  unsigned char sig[64];
  size_t len = sizeof sig;
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  EVP_DigestSignInit(ctx, nullptr, nullptr, nullptr, Get(key_));
  EVP_DigestSign(ctx, sig, &len, reinterpret_cast<const unsigned char*>(message.data()), message.size());
  EVP_MD_CTX_free(ctx);
  return absl::Base64Escape(absl::string_view(reinterpret_cast<char*>(sig), len));
}

void Signer::SignCheckpoint(Checkpoint* c) const {
  c->key_id = public_.key_id();
  c->signature = Sign(CheckpointMessage(c->seq, c->hash, c->time_us));
}

absl::Status WriteFileAtomically(const std::string& path, std::string_view text, int mode) {
  const std::string tmp = path + ".tmp";
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
  if (fd < 0) return absl::UnavailableError(absl::StrCat("cannot create ", tmp, ": ", std::strerror(errno)));
  ::fchmod(fd, static_cast<mode_t>(mode));
  size_t done = 0;
  while (done < text.size()) {
    const ssize_t n = ::write(fd, text.data() + done, text.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      const int e = errno;
      ::close(fd);
      return absl::UnavailableError(absl::StrCat("cannot write ", tmp, ": ", std::strerror(e)));
    }
    done += static_cast<size_t>(n);
  }
  const bool synced = ::fsync(fd) == 0;
  ::close(fd);
  if (!synced || ::rename(tmp.c_str(), path.c_str()) != 0) {
    return absl::UnavailableError(absl::StrCat("cannot write ", path, ": ", std::strerror(errno)));
  }
  return absl::OkStatus();
}

}  // namespace mandate::audit
