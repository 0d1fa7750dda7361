// Ed25519 keys that sign the audit log's checkpoints, and the checkpoint record itself.
//
// A checkpoint seals the chain up to record `seq`: it signs "mandate-audit-checkpoint/v1\n<seq>\n
// <hash hex>\n<time_us>" where hash is that record's chain hash. The signer's key lives in the data
// directory (created 0600) or where the configuration says; its public half is exported as PEM so
// that auditors can verify with a copy kept elsewhere.
#ifndef MANDATE_AUDIT_SIGNING_H_
#define MANDATE_AUDIT_SIGNING_H_

#include <memory>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"

#include "audit/format.h"

namespace mandate::audit {

struct Checkpoint {
  uint64_t seq = 0;  // the last record it seals
  Hash hash{};       // that record's chain hash
  int64_t time_us = 0;
  uint64_t record_seq = 0;  // the checkpoint's own position in the chain (seq + 1)
  std::string key_id;       // first 16 hex digits of SHA-256 of the raw public key
  std::string signature;    // base64
};

std::string CheckpointMessage(uint64_t seq, const Hash& hash, int64_t time_us);
// The checkpoint's JSON body (without record_seq) and its parser.
std::string CheckpointJson(const Checkpoint& c);
absl::StatusOr<Checkpoint> ParseCheckpoint(std::string_view json);

class PublicKey {
 public:
  // A PEM SubjectPublicKeyInfo holding an Ed25519 key.
  static absl::StatusOr<PublicKey> FromPem(std::string_view pem);
  static absl::StatusOr<PublicKey> FromFile(const std::string& path);
  const std::string& key_id() const { return key_id_; }
  std::string Pem() const;
  // True when `signature_b64` is this key's signature of `message`.
  bool Verify(std::string_view message, std::string_view signature_b64) const;

 private:
  std::shared_ptr<void> key_;  // EVP_PKEY
  std::string key_id_;
};

class Signer {
 public:
  // Loads the private key (PEM, PKCS#8) at `path`; with `create`, generates one there (mode 0600)
  // when the file does not exist. A key file readable by others is refused.
  static absl::StatusOr<Signer> Open(const std::string& path, bool create);
  const PublicKey& public_key() const { return public_; }
  std::string Sign(std::string_view message) const;  // base64
  // Fills key_id and signature of `c`.
  void SignCheckpoint(Checkpoint* c) const;

 private:
  std::shared_ptr<void> key_;  // EVP_PKEY
  PublicKey public_;
};

// Writes `text` to `path` atomically (temp file, fsync, rename) with `mode`.
absl::Status WriteFileAtomically(const std::string& path, std::string_view text, int mode);

}  // namespace mandate::audit

#endif  // MANDATE_AUDIT_SIGNING_H_
