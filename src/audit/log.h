// The audit log writer: appends JSON entries to the hash-chained segment files of an audit
// directory (format.h), with group commit, size-based segment rotation and signed checkpoints every
// N records or T seconds.
//
// Callers chain and frame their own records (SHA-256, CRC and a copy, about a microsecond, under
// one mutex), so that the only other thread is the I/O thread, which writes what was framed, syncs
// and answers. It is woken only when it sleeps and something is due: a cross-thread wake-up costs
// more than framing a record (a futex call and a context switch on each side), so under load most
// records are framed while the previous write or fdatasync runs and are taken with the next one.
//
// Durability modes (docs/audit.md):
//   kSync   Append's callback runs once the records are on disk (written and fdatasync'ed). Records
//           that arrive while a sync runs are committed together with the next one, so throughput
//           holds under load. The callbacks of one sync run together, through the completion
//           runner when one is set (the server's I/O threads), else on the I/O thread.
//   kAsync  The callback runs at once. The I/O thread writes records within `async_write_delay`
//           (or at once when `kAsyncWriteRecords` are waiting) and syncs at least every
//           `async_sync_interval`; a process crash loses only records not yet written, a machine
//           crash those not yet synced. At most `async_max_pending` records may wait: beyond that,
//           callbacks wait for the write like in kSync (the window stays bounded).
// Either way the chain on disk stays verifiable: a torn final frame is cut off at the next Open.
#ifndef MANDATE_AUDIT_LOG_H_
#define MANDATE_AUDIT_LOG_H_

#include <chrono>
#include <condition_variable>
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
  std::chrono::milliseconds async_write_delay{5};
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
  // Chains and frames entries (each a serialized JSON object without "seq"/"ts"; the log adds those)
  // and calls `done` as the durability mode says: from the calling thread (async, or when the log
  // is closed or broken), else once written. Never waits for the disk.
  void Append(std::vector<std::string> entries, Done done);
  // Appends and waits for the records to be on disk, whatever the mode; `done` of these runs on the
  // I/O thread, never through the completion runner, so it may be called from the runner's threads.
  absl::Status AppendAndWait(std::vector<std::string> entries);

  // Async mode: promises room for one entry that the caller appends soon with AppendReserved, so
  // that it may act on its decision before it builds the entry (the MCP gateway sends an allowed
  // call upstream first and writes its record while the upstream works). The promise is the one
  // Append's `done` gives in async mode: the entry counts against `async_max_pending` from now on.
  // False in sync mode, or when the log is closing, broken or full: the caller then appends with
  // Append and acts in `done`.
  bool Reserve();
  // Appends the entry a true Reserve() made room for; every such Reserve needs exactly one call. An
  // entry that meets a log that broke or closed meanwhile is counted as failed, like an entry
  // Append took in async mode that could not be written.
  void AppendReserved(std::string entry);

  // Where the callbacks of written records run: `run` gets one function per write that calls all of
  // them (the server posts it to its I/O threads, so that one wake-up answers a whole group).
  // Null: on the I/O thread. Set it before it is needed and clear it before its threads stop.
  using Runner = std::function<void(std::function<void()>)>;
  void SetCompletionRunner(Runner run);

  // Called on the I/O thread with each group of records once written (and, in kSync, synced); keep
  // it short. The group is shared, not copied: keep the pointer to use it later.
  using Subscriber = std::function<void(const std::shared_ptr<const std::vector<Written>>&)>;
  int Subscribe(Subscriber s);
  void Unsubscribe(int id);

  // Writes what is queued, seals it with a checkpoint, syncs and stops the writer. Idempotent.
  void Close();

  LogStats stats() const;
  Durability durability() const { return options_.durability; }
  const std::string& dir() const { return options_.dir; }
  const PublicKey& public_key() const { return signer_.public_key(); }

 private:
  // A caller waiting for its records to be written.
  struct Batch {
    Done done;
    bool direct = false;  // AppendAndWait: answered on the I/O thread
  };
  // Framed records for one segment file.
  struct Chunk {
    bool create = false;  // a new segment, starting at `first_seq`, after the current one
    uint64_t first_seq = 0;
    std::string frames;
    std::string index;  // entries for the segment's .idx (format.h)
  };
  // Records framed and not yet taken by the I/O thread, in order, and who waits for them.
  struct Group {
    std::vector<Chunk> chunks;
    std::vector<Batch> batches;
    std::shared_ptr<std::vector<Written>> written;
    uint64_t entries = 0;
    std::vector<Checkpoint> checkpoints;  // framed in `chunks`; listed in checkpoints.jsonl once synced
  };
  // In async mode the I/O thread is woken as soon as this many entries wait, whatever the delay.
  static constexpr uint64_t kAsyncWriteRecords = 512;

  AuditLog(LogOptions options, Signer signer);
  absl::Status Recover();
  absl::Status OpenSegment(uint64_t first_seq, bool create);
  // `direct`: AppendAndWait. `reserved`: AppendReserved (one entry, its room already counted).
  void Enqueue(std::vector<std::string> entries, Done done, bool direct, bool reserved = false);
  void IoLoop();
  // With mu_ held: frames an entry, then a checkpoint when one is due by count.
  void AddEntry(std::string body);
  // Frames one record into the current group; starts a new segment first when this one is full.
  void AddRecord(RecordType type, std::string body, int64_t time_us);
  void AddCheckpoint();
  // With mu_ held, after framing: whether the I/O thread sleeps and must be woken for the group.
  bool WakeIo(bool urgent);
  // Empties a written group but keeps its buffers' capacity: a group commit of tens of records
  // grows buffers of tens of kilobytes, and allocating them anew each time costs more than framing.
  static void Recycle(Group& g);
  // Writes the chunks of `g` (I/O thread).
  absl::Status WriteChunks(std::vector<Chunk>& chunks);
  // Writes at write_off_ and keeps at least the next kPreallocBytes of the segment zero-filled.
  absl::Status WriteFrames(std::string_view frames);
  // Cuts the zero-filled space off the current segment (when it is full, and at Close).
  absl::Status TrimSegment();
  absl::Status Sync();
  absl::Status AppendCheckpointFile(const Checkpoint& cp);

  const LogOptions options_;
  Signer signer_;
  // Chain and framing state, under mu_ (and Recover's, before the thread starts).
  uint64_t segment_size_ = 0;  // the current segment's size once everything framed is written
  uint64_t index_due_ = 0;     // the offset from which the next record gets an index entry
  uint64_t next_seq_ = 1;
  Hash prev_{};
  uint64_t since_checkpoint_ = 0;
  std::chrono::steady_clock::time_point last_checkpoint_;
  int64_t last_time_us_ = 0;
  Group group_;                   // framed, not yet taken by the I/O thread
  Group spare_;                   // the last group written, emptied: its buffers are reused
  std::chrono::steady_clock::time_point group_since_;  // when its first entry was framed
  uint64_t recovered_bytes_ = 0;  // cut off a torn final frame at Open
  std::string recovered_at_;
  // I/O thread state.
  int fd_ = -1;
  int index_fd_ = -1;  // the current segment's .idx; -1 after a failed write (readers then scan)
  uint64_t write_off_ = 0;  // where the next frames go in the current segment
  uint64_t file_end_ = 0;   // its size: zeros from write_off_ on (format.h)
  bool unsynced_ = false;
  std::chrono::steady_clock::time_point last_sync_;
  uint64_t syncs_ = 0;
  uint64_t stats_bytes_ = 0;

  mutable std::mutex mu_;  // guards the chain and framing state, what follows and stats_
  std::condition_variable cv_;  // wakes the I/O thread
  size_t queued_records_ = 0;   // appended and not yet written
  size_t reserved_ = 0;         // promised by Reserve() and not yet appended
  bool closing_ = false;
  bool io_idle_ = false;  // the I/O thread waits on cv_ ...
  std::chrono::steady_clock::time_point io_deadline_;  // ... until then (max: until woken)
  absl::Status broken_;  // sticky I/O error
  Runner runner_;
  LogStats stats_;

  std::mutex subscribers_mu_;  // held while subscribers run (never together with mu_)
  std::vector<std::pair<int, Subscriber>> subscribers_;
  int next_subscriber_ = 1;
  std::mutex close_mu_;
  std::thread io_;
};

}  // namespace mandate::audit

#endif  // MANDATE_AUDIT_LOG_H_
