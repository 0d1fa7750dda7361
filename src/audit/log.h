// The audit log writer: appends JSON entries to the hash-chained segment files of an audit
// directory (format.h) from one writer thread, with group commit, size-based segment rotation and
// signed checkpoints every N records or T seconds.
//
// Durability modes (docs/audit.md):
//   kSync   Append's callback runs once the records are on disk (written and fdatasync'ed). Records
//           that arrive while a sync runs are committed together with the next one, so throughput
//           holds under load.
//   kAsync  The callback runs at once. The writer writes records within milliseconds and syncs at
//           least every `async_sync_interval`; a process crash loses only records not yet written,
//           a machine crash those not yet synced. At most `async_max_pending` records may wait:
//           beyond that, callbacks wait for the write like in kSync (the window stays bounded).
// Either way the chain on disk stays verifiable: a torn final frame is cut off at the next Open.
#ifndef MANDATE_AUDIT_LOG_H_
#define MANDATE_AUDIT_LOG_H_

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"

#include "audit/format.h"
#include "audit/signing.h"

namespace mandate::audit {

enum class Durability { kSync, kAsync };

struct LogOptions {
  std::string dir;  // the audit directory (<data-dir>/audit); created if missing
  Durability durability = Durability::kSync;
  uint64_t segment_bytes = uint64_t{64} << 20;
  uint64_t checkpoint_records = 10'000;
  std::chrono::milliseconds checkpoint_interval{10'000};
  std::chrono::milliseconds async_sync_interval{200};
  size_t async_max_pending = 65'536;
  std::string signing_key;  // private key path; default <dir>/signing-key.pem, generated when missing
};

// A record as written: for subscribers.
struct Written {
  uint64_t seq = 0;
  int64_t time_us = 0;
  RecordType type = RecordType::kEntry;
  std::string body;
};

struct LogStats {
  uint64_t appended = 0;  // entries written
  uint64_t failed = 0;    // entries that could not be written (I/O errors)
  uint64_t checkpoints = 0;
  uint64_t syncs = 0;
  uint64_t last_seq = 0;
  uint64_t bytes = 0;
};

class AuditLog {
 public:
  // Opens (or creates) the log: finds the end of the chain, cuts off a torn final frame (a crash
  // during a write) and starts the writer. Refuses a log whose last segment is damaged elsewhere
  // than at its very end (that needs `mandate audit verify`, not silent repair).
  static absl::StatusOr<std::unique_ptr<AuditLog>> Open(LogOptions options);
  ~AuditLog();  // Close()

  using Done = std::function<void(absl::Status)>;
  // Queues entries (each a serialized JSON object without "seq"/"ts"; the log adds those) and calls
  // `done` as the durability mode says, from the writer thread or the calling thread. Never blocks.
  void Append(std::vector<std::string> entries, Done done);
  // Appends and waits for the records to be on disk, whatever the mode.
  absl::Status AppendAndWait(std::vector<std::string> entries);

  // Called on the writer thread with each group of records once written; keep it short.
  using Subscriber = std::function<void(const std::vector<Written>&)>;
  int Subscribe(Subscriber s);
  void Unsubscribe(int id);

  // Writes what is queued, seals it with a checkpoint, syncs and stops the writer. Idempotent.
  void Close();

  LogStats stats() const;
  Durability durability() const { return options_.durability; }
  const std::string& dir() const { return options_.dir; }
  const PublicKey& public_key() const { return signer_.public_key(); }

 private:
  AuditLog(LogOptions options, Signer signer);
  absl::Status Recover();
  absl::Status OpenSegment(uint64_t first_seq, bool create);
  void WriterLoop();
  // Frames one record into buf_; rotates first when the segment is full. Returns the record.
  absl::Status AddRecord(RecordType type, std::string_view body, int64_t time_us, std::vector<Written>* out);
  absl::Status AddCheckpoint(std::vector<Written>* out);
  absl::Status FlushBuffer(bool sync);
  absl::Status AppendCheckpointFile(const Checkpoint& cp);

  struct Batch {
    std::vector<std::string> entries;
    Done done;  // null when already answered (async)
  };

  const LogOptions options_;
  Signer signer_;
  // Writer-thread state.
  int fd_ = -1;
  uint64_t segment_size_ = 0;
  uint64_t next_seq_ = 1;
  Hash prev_{};
  std::string buf_;
  uint64_t since_checkpoint_ = 0;
  std::chrono::steady_clock::time_point last_checkpoint_;
  std::chrono::steady_clock::time_point last_sync_;
  bool unsynced_ = false;
  int64_t last_time_us_ = 0;
  std::vector<Checkpoint> pending_checkpoints_;  // written, not yet in checkpoints.jsonl
  uint64_t stats_bytes_ = 0;
  uint64_t syncs_ = 0;
  uint64_t recovered_bytes_ = 0;  // cut off a torn final frame at Open
  std::string recovered_at_;
  absl::Status broken_;  // sticky I/O error (guarded by mu_)

  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Batch> queue_;
  size_t queued_records_ = 0;
  bool closing_ = false;
  std::mutex subscribers_mu_;  // held while subscribers run (never together with mu_)
  std::vector<std::pair<int, Subscriber>> subscribers_;
  int next_subscriber_ = 1;
  std::mutex close_mu_;
  LogStats stats_;
  std::thread writer_;
};

}  // namespace mandate::audit

#endif  // MANDATE_AUDIT_LOG_H_
