// Reading an audit directory: verification of the whole log (`mandate audit verify`), filtered
// queries (`mandate audit query`, GET /v1/audit), the checkpoint list, and following new records
// as they are written (`mandate audit tail -f`).
#ifndef MANDATE_AUDIT_READER_H_
#define MANDATE_AUDIT_READER_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

#include "audit/format.h"
#include "audit/signing.h"

namespace mandate::audit {

inline constexpr char kCheckpointsFile[] = "checkpoints.jsonl";
inline constexpr char kPublicKeyFile[] = "signing-key.pub.pem";
inline constexpr char kPrivateKeyFile[] = "signing-key.pem";

// Where verification found the first problem.
struct Problem {
  std::string segment;  // file name
  uint64_t offset = 0;  // byte offset of the record in the segment
  uint64_t seq = 0;     // the sequence number expected there
  std::string what;
  std::string ToString() const;
};

struct VerifyReport {
  std::optional<Problem> problem;  // none: intact
  uint64_t records = 0;            // entries and checkpoints read
  uint64_t checkpoints = 0;
  uint64_t last_seq = 0;
  uint64_t sealed_seq = 0;  // the last record a valid checkpoint covers
  size_t segments = 0;
  std::string key_id;  // of the key the checkpoints were checked with
  std::string key_source;
};

// Checks framing, checksums, sequence numbers, the hash chain, every checkpoint's signature (with
// `key`, or the public key exported in `audit_dir` when null) and that the log reaches every
// checkpoint listed in checkpoints.jsonl (so no segment was removed or cut short before the last
// checkpoint). Errors are only for an unreadable directory or key.
absl::StatusOr<VerifyReport> Verify(const std::string& audit_dir, const PublicKey* key);

// Which records a query returns. Empty fields match everything.
struct Filter {
  std::string actor;  // "Type:id"
  bool agent_only = false;
  std::string decision;  // allow | deny | approval_required | ok | error
  std::string action;
  std::string resource;  // "Type:id", or a type for list decisions
  std::string kind;      // decision | admin | alert | system | checkpoint
  int64_t since_us = INT64_MIN;
  int64_t until_us = INT64_MAX;
  uint64_t before_seq = 0;  // only records with seq < before_seq (paging); 0 = no bound
  uint64_t after_seq = 0;   // only records with seq > after_seq
};

struct Found {
  uint64_t seq = 0;
  int64_t time_us = 0;
  std::string json;  // {"seq":..,"ts":..,<the body's fields>}
};

// The record as the readers show it: its body with "seq" and "ts" first.
std::string RenderRecord(const RecordView& r);
bool Matches(const Filter& f, const RecordView& r);

// Up to `limit` matching records, newest first. Damaged frames end the scan of their segment.
absl::StatusOr<std::vector<Found>> QueryNewestFirst(const std::string& audit_dir, const Filter& filter, size_t limit);

// The checkpoints listed in checkpoints.jsonl, oldest first.
absl::StatusOr<std::vector<Checkpoint>> ReadCheckpoints(const std::string& audit_dir);

// Reads the records appended after a position, across segment rotations (tail -f).
class Follower {
 public:
  explicit Follower(std::string audit_dir, uint64_t after_seq) : dir_(std::move(audit_dir)), after_(after_seq) {}
  // Complete records written since the last call that match `filter` (a frame still being written
  // is left for the next call).
  absl::StatusOr<std::vector<Found>> Poll(const Filter& filter = {});

 private:
  std::string dir_;
  uint64_t after_;
  std::string segment_;
  uint64_t offset_ = 0;
};

}  // namespace mandate::audit

#endif  // MANDATE_AUDIT_READER_H_
