#include "audit/log.h"

#include <cerrno>
#include <cstring>
#include <filesystem>

#include <boost/json.hpp>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "absl/strings/str_cat.h"

namespace mandate::audit {
namespace {

absl::Status Errno(const char* what, const std::string& path) {
  return absl::UnavailableError(absl::StrCat("audit log: cannot ", what, " ", path, ": ", std::strerror(errno)));
}

// Writes all of `data` at `offset`, or at the file position when it is negative.
absl::Status WriteAll(int fd, std::string_view data, const std::string& path, off_t offset = -1) {
  while (!data.empty()) {
    const ssize_t n =
        offset < 0 ? ::write(fd, data.data(), data.size()) : ::pwrite(fd, data.data(), data.size(), offset);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Errno("write", path);
    data.remove_prefix(static_cast<size_t>(n));
    if (offset >= 0) offset += n;
  }
  return absl::OkStatus();
}

absl::Status SyncDir(const std::string& dir) {
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return Errno("open directory", dir);
  const int rc = ::fsync(fd);
  ::close(fd);
  return rc == 0 ? absl::OkStatus() : Errno("sync directory", dir);
}

}  // namespace

AuditLog::AuditLog(LogOptions options, Signer signer) : options_(std::move(options)), signer_(std::move(signer)) {}

absl::StatusOr<std::unique_ptr<AuditLog>> AuditLog::Open(LogOptions options) {
  std::error_code ec;
  std::filesystem::create_directories(options.dir, ec);
  if (ec)
    return absl::UnavailableError(absl::StrCat("cannot create audit directory ", options.dir, ": ", ec.message()));
  ::chmod(options.dir.c_str(), 0700);
  const bool default_key = options.signing_key.empty();
  if (default_key) options.signing_key = absl::StrCat(options.dir, "/", "signing-key.pem");
  absl::StatusOr<Signer> signer = Signer::Open(options.signing_key, default_key);
  if (!signer.ok()) return signer.status();
  // Auditors verify with a copy of this file kept elsewhere.
  const std::string pub_path = absl::StrCat(options.dir, "/signing-key.pub.pem");
  const std::string pem = signer->public_key().Pem();
  absl::StatusOr<std::string> existing = ReadWholeFile(pub_path);
  if (!existing.ok() || *existing != pem) {
    if (absl::Status s = WriteFileAtomically(pub_path, pem, 0644); !s.ok()) return s;
  }
  std::unique_ptr<AuditLog> log(new AuditLog(std::move(options), *std::move(signer)));
  if (absl::Status s = log->Recover(); !s.ok()) return s;
  log->last_checkpoint_ = log->last_sync_ = std::chrono::steady_clock::now();
  if (log->recovered_bytes_ > 0) {
    // Part of a record was being written when the process died; the rest of the chain is intact.
    log->AddEntry(boost::json::serialize(boost::json::object{
        {"kind", "system"},
        {"action", "audit.recovered"},
        {"detail", boost::json::object{{"dropped_bytes", log->recovered_bytes_}, {"at", log->recovered_at_}}}}));
    ++log->queued_records_;
  }
  log->io_ = std::thread([p = log.get()] { p->IoLoop(); });
  return log;
}

AuditLog::~AuditLog() { Close(); }

absl::Status AuditLog::OpenSegment(uint64_t first_seq, bool create) {
  const std::string path = absl::StrCat(options_.dir, "/", SegmentName(first_seq));
  if (fd_ >= 0) ::close(fd_);
  if (index_fd_ >= 0) ::close(index_fd_);
  fd_ = ::open(path.c_str(), O_WRONLY | O_CLOEXEC | (create ? O_CREAT | O_EXCL : 0), 0600);
  if (fd_ < 0) return Errno("open", path);
  // Not synced: a lost or stale index only makes readers scan the segment.
  index_fd_ = ::open(absl::StrCat(options_.dir, "/", IndexName(first_seq)).c_str(),
                     O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | (create ? O_TRUNC : 0), 0600);
  if (create) {
    write_off_ = file_end_ = kSegmentMagic.size();
    if (absl::Status s = WriteAll(fd_, kSegmentMagic, path); !s.ok()) return s;
    if (::fdatasync(fd_) != 0) return Errno("sync", path);
    if (absl::Status s = SyncDir(options_.dir); !s.ok()) return s;
  }
  return absl::OkStatus();
}

absl::Status AuditLog::Recover() {
  absl::StatusOr<std::vector<SegmentFile>> segments = ListSegments(options_.dir);
  if (!segments.ok()) return segments.status();
  segment_size_ = kSegmentMagic.size();
  if (segments->empty()) return OpenSegment(1, /*create=*/true);
  // The end of the chain: the last record of the last segment that has one.
  bool found_end = false;
  for (auto seg = segments->rbegin(); seg != segments->rend() && !found_end; ++seg) {
    absl::StatusOr<std::string> data = ReadWholeFile(seg->path);
    if (!data.ok()) return data.status();
    const bool last = seg == segments->rbegin();
    size_t off = kSegmentMagic.size();
    if (data->size() < off || std::string_view(*data).substr(0, off) != kSegmentMagic) {
      if (!last || data->size() >= off) {
        return absl::DataLossError(
            absl::StrCat("audit segment ", seg->path, " has no valid header; run `mandate audit verify`"));
      }
      // Created but its header never reached the disk: start it again.
      ::unlink(seg->path.c_str());
      if (absl::Status s = OpenSegment(seg->first_seq, true); !s.ok()) return s;
      continue;
    }
    uint64_t expected = seg->first_seq;
    std::string index;  // of the last segment, rebuilt from what it holds
    index_due_ = 0;
    while (off < data->size()) {
      if (IsUnusedTail(*data, off)) break;  // zero-filled ahead of the records (format.h)
      RecordView r;
      size_t next = 0;
      absl::Status s = DecodeFrame(*data, off, &r, &next);
      const bool decoded = s.ok();
      if (s.ok() && (r.seq != expected || (expected != seg->first_seq && r.prev != prev_))) {
        s = absl::DataLossError("sequence or chain mismatch");
      }
      if (!s.ok()) {
        // Only a final frame cut short by a crash is repaired (one that does not decode and after
        // which the last segment holds nothing but zeros); damage before it is for `verify`.
        bool torn = false;
        if (last && !decoded) {
          const size_t left = data->size() - off;
          torn = left < kFrameHeaderBytes;
          if (!torn) {
            uint32_t len = 0;
            for (int i = 0; i < 4; ++i)
              len |= static_cast<uint32_t>(static_cast<unsigned char>((*data)[off + i])) << (8 * i);
            torn = len > kMaxPayloadBytes || left - kFrameHeaderBytes <= len ||
                   IsUnusedTail(*data, off + kFrameHeaderBytes + len);
          }
        }
        if (!torn) {
          return absl::DataLossError(
              absl::StrCat("audit segment ", seg->name, " is damaged at offset ", off, ": ", s.message(),
                           "; run `mandate audit verify` (the server will not append to a damaged log)"));
        }
        if (::truncate(seg->path.c_str(), static_cast<off_t>(off)) != 0) return Errno("truncate", seg->path);
        size_t end = data->size();  // without the zero-filled space after the torn frame
        while (end > off + 1 && (*data)[end - 1] == 0) --end;
        recovered_bytes_ = end - off;
        recovered_at_ = absl::StrCat(seg->name, " offset ", off);
        break;
      }
      if (last && off >= index_due_) {
        AppendIndexEntry(IndexEntry{r.seq, off, r.time_us}, &index);
        index_due_ = off + kIndexEvery;
      }
      prev_ = Sha256(r.payload);
      next_seq_ = r.seq + 1;
      found_end = true;
      ++expected;
      off = next;
    }
    if (last) {
      write_off_ = off;
      if (!found_end) next_seq_ = seg->first_seq;
      const std::string index_path = absl::StrCat(options_.dir, "/", IndexName(seg->first_seq));
      absl::StatusOr<std::string> old_index = ReadWholeFile(index_path);
      if (!old_index.ok() || *old_index != index) {
        if (absl::Status s = WriteFileAtomically(index_path, index, 0600); !s.ok()) return s;
      }
    }
  }
  const SegmentFile& last = segments->back();
  if (!found_end && next_seq_ != 1) {
    return absl::DataLossError("audit log: no record found before the last segment; run `mandate audit verify`");
  }
  if (fd_ >= 0) return absl::OkStatus();  // the last segment was started again
  if (absl::Status s = OpenSegment(last.first_seq, false); !s.ok()) return s;
  struct stat st;
  if (::fstat(fd_, &st) != 0) return Errno("stat", last.path);
  file_end_ = static_cast<uint64_t>(st.st_size);
  segment_size_ = write_off_;
  return absl::OkStatus();
}

void AuditLog::Append(std::vector<std::string> entries, Done done) {
  Enqueue(std::move(entries), std::move(done), /*direct=*/false);
}

void AuditLog::Enqueue(std::vector<std::string> entries, Done done, bool direct, bool reserved) {
  if (entries.empty()) {
    if (done) done(absl::OkStatus());
    return;
  }
  absl::Status refused;
  bool answer_now = false;
  bool wake = false;
  {
    std::lock_guard<std::mutex> l(mu_);
    if (reserved) reserved_ -= entries.size();
    if (closing_ || !broken_.ok()) {
      answer_now = true;
      refused = closing_ ? absl::UnavailableError("the audit log is closed") : broken_;
      if (reserved) stats_.failed += entries.size();  // promised, so counted as not written
    } else {
      const size_t n = entries.size();
      answer_now = !direct && options_.durability == Durability::kAsync &&
                   queued_records_ + reserved_ + n <= options_.async_max_pending;
      queued_records_ += n;
      for (std::string& e : entries) AddEntry(std::move(e));
      if (!answer_now && done) group_.batches.push_back(Batch{std::move(done), direct});
      wake = WakeIo(/*urgent=*/!answer_now);
    }
  }
  // The caller's answer first: waking the I/O thread is a system call that the answer (or, from the
  // MCP gateway, the call going upstream) need not wait for.
  if (answer_now && done) done(refused);
  if (wake) cv_.notify_one();
}

bool AuditLog::Reserve() {
  std::lock_guard<std::mutex> l(mu_);
  if (options_.durability != Durability::kAsync || closing_ || !broken_.ok() ||
      queued_records_ + reserved_ + 1 > options_.async_max_pending) {
    return false;
  }
  ++reserved_;
  return true;
}

void AuditLog::AppendReserved(std::string entry) {
  std::vector<std::string> entries;
  entries.push_back(std::move(entry));
  Enqueue(std::move(entries), nullptr, /*direct=*/false, /*reserved=*/true);
}

absl::Status AuditLog::AppendAndWait(std::vector<std::string> entries) {
  std::mutex m;
  std::condition_variable cv;
  bool finished = false;
  absl::Status result;
  Enqueue(
      std::move(entries),
      [&](absl::Status s) {
        std::lock_guard<std::mutex> g(m);
        result = s;
        finished = true;
        cv.notify_one();
      },
      /*direct=*/true);
  std::unique_lock<std::mutex> g(m);
  cv.wait(g, [&] { return finished; });
  return result;
}

void AuditLog::SetCompletionRunner(Runner run) {
  std::lock_guard<std::mutex> l(mu_);
  runner_ = std::move(run);
}

int AuditLog::Subscribe(Subscriber s) {
  std::lock_guard<std::mutex> l(subscribers_mu_);
  subscribers_.emplace_back(next_subscriber_, std::move(s));
  return next_subscriber_++;
}

void AuditLog::Unsubscribe(int id) {
  std::lock_guard<std::mutex> l(subscribers_mu_);
  std::erase_if(subscribers_, [id](const auto& p) { return p.first == id; });
}

void AuditLog::AddRecord(RecordType type, std::string body, int64_t time_us) {
  const uint64_t frame = kFrameHeaderBytes + kPayloadHeaderBytes + body.size();
  if (segment_size_ + frame > options_.segment_bytes && segment_size_ > kSegmentMagic.size()) {
    group_.chunks.push_back(Chunk{true, next_seq_, {}, {}});
    segment_size_ = kSegmentMagic.size();
  }
  if (segment_size_ == kSegmentMagic.size()) index_due_ = 0;
  if (group_.chunks.empty()) group_.chunks.emplace_back();
  Chunk& chunk = group_.chunks.back();
  if (segment_size_ >= index_due_) {
    AppendIndexEntry(IndexEntry{next_seq_, segment_size_, time_us}, &chunk.index);
    index_due_ = segment_size_ + kIndexEvery;
  }
  prev_ = AppendFrame(type, next_seq_, time_us, prev_, body, &chunk.frames);
  segment_size_ += frame;
  if (group_.written == nullptr) group_.written = std::make_shared<std::vector<Written>>();
  group_.written->push_back(Written{next_seq_, time_us, type, std::move(body)});
  ++next_seq_;
}

void AuditLog::AddEntry(std::string body) {
  if (group_.entries == 0) group_since_ = std::chrono::steady_clock::now();
  last_time_us_ = std::max(last_time_us_, NowMicros());
  AddRecord(RecordType::kEntry, std::move(body), last_time_us_);
  ++group_.entries;
  if (++since_checkpoint_ >= options_.checkpoint_records) AddCheckpoint();
}

void AuditLog::Recycle(Group& g) {
  if (!g.chunks.empty()) {
    g.chunks.resize(1);
    g.chunks[0].create = false;
    g.chunks[0].first_seq = 0;
    g.chunks[0].frames.clear();
    g.chunks[0].index.clear();
  }
  g.batches.clear();
  if (g.written.use_count() == 1) {
    g.written->clear();
  } else {
    g.written.reset();  // a subscriber keeps it
  }
  g.entries = 0;
  g.checkpoints.clear();
}

bool AuditLog::WakeIo(bool urgent) {
  // Not when it is busy: it looks at the group again before it sleeps.
  if (!io_idle_) return false;
  if (!urgent && group_.entries < kAsyncWriteRecords && io_deadline_ <= group_since_ + options_.async_write_delay) {
    return false;  // it wakes by itself in time
  }
  io_idle_ = false;  // one wake-up is enough
  return true;
}

void AuditLog::AddCheckpoint() {
  Checkpoint cp;
  cp.seq = next_seq_ - 1;
  cp.hash = prev_;
  cp.time_us = last_time_us_ = std::max(last_time_us_, NowMicros());
  cp.record_seq = next_seq_;
  signer_.SignCheckpoint(&cp);
  AddRecord(RecordType::kCheckpoint, CheckpointJson(cp), cp.time_us);
  group_.checkpoints.push_back(cp);
  since_checkpoint_ = 0;
  last_checkpoint_ = std::chrono::steady_clock::now();
}

absl::Status AuditLog::WriteChunks(std::vector<Chunk>& chunks) {
  for (Chunk& c : chunks) {
    if (c.create) {
      // The full segment reaches the disk before the next one exists, so a crash never leaves a
      // hole in the middle of the chain.
      if (absl::Status s = TrimSegment(); !s.ok()) return s;
      if (absl::Status s = Sync(); !s.ok()) return s;
      if (absl::Status s = OpenSegment(c.first_seq, /*create=*/true); !s.ok()) return s;
    }
    if (c.frames.empty()) continue;
    if (absl::Status s = WriteFrames(c.frames); !s.ok()) return s;
    stats_bytes_ += c.frames.size();
    // After the frames it points at. A failed index write only costs readers a scan: stop writing
    // this segment's index rather than leave a gap in it.
    if (index_fd_ >= 0 && !c.index.empty() && !WriteAll(index_fd_, c.index, options_.dir).ok()) {
      ::close(index_fd_);
      index_fd_ = -1;
    }
  }
  return absl::OkStatus();
}

absl::Status AuditLog::WriteFrames(std::string_view frames) {
  if (absl::Status s = WriteAll(fd_, frames, options_.dir, static_cast<off_t>(write_off_)); !s.ok()) return s;
  write_off_ += frames.size();
  if (write_off_ + kPreallocBytes / 2 > file_end_) {
    // Fill the next stretch with zeros now; its metadata reaches the disk with this group's sync.
    static const std::string zeros(64 << 10, '\0');
    const uint64_t end = std::max(write_off_, std::min(write_off_ + kPreallocBytes, options_.segment_bytes));
    for (uint64_t at = std::max(file_end_, write_off_); at < end;) {
      const std::string_view chunk(zeros.data(), std::min<uint64_t>(zeros.size(), end - at));
      if (absl::Status s = WriteAll(fd_, chunk, options_.dir, static_cast<off_t>(at)); !s.ok()) return s;
      at += chunk.size();
    }
    file_end_ = std::max(file_end_, end);
  }
  unsynced_ = true;
  return absl::OkStatus();
}

absl::Status AuditLog::TrimSegment() {
  if (file_end_ == write_off_) return absl::OkStatus();
  if (::ftruncate(fd_, static_cast<off_t>(write_off_)) != 0) return Errno("truncate a segment in", options_.dir);
  file_end_ = write_off_;
  unsynced_ = true;
  return absl::OkStatus();
}

absl::Status AuditLog::Sync() {
  if (!unsynced_) return absl::OkStatus();
  if (::fdatasync(fd_) != 0) return Errno("sync a segment in", options_.dir);
  unsynced_ = false;
  last_sync_ = std::chrono::steady_clock::now();
  ++syncs_;
  return absl::OkStatus();
}

absl::Status AuditLog::AppendCheckpointFile(const Checkpoint& cp) {
  // Written only once the checkpoint's record is on disk: the file never claims more than the log has.
  std::string line = CheckpointJson(cp);
  line.insert(line.size() - 1, absl::StrCat(",\"record_seq\":", cp.record_seq));
  line += "\n";
  const std::string path = absl::StrCat(options_.dir, "/", "checkpoints.jsonl");
  const int fd = ::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) return Errno("open", path);
  absl::Status s = WriteAll(fd, line, path);
  if (s.ok() && ::fdatasync(fd) != 0) s = Errno("sync", path);
  ::close(fd);
  return s;
}

void AuditLog::IoLoop() {
  using Clock = std::chrono::steady_clock;
  const bool sync_mode = options_.durability == Durability::kSync;
  std::unique_lock<std::mutex> l(mu_);
  for (;;) {
    // Sleep until something is due: a write (at once in sync mode or when someone waits), a
    // checkpoint by time, or the periodic sync of async mode.
    Clock::time_point now = Clock::now();
    for (;;) {
      if (closing_ || !group_.batches.empty()) break;
      const bool framed = group_.entries > 0;
      if (framed &&
          (sync_mode || group_.entries >= kAsyncWriteRecords || now >= group_since_ + options_.async_write_delay))
        break;
      if (since_checkpoint_ > 0 && now >= last_checkpoint_ + options_.checkpoint_interval) break;
      if (unsynced_ && now >= last_sync_ + options_.async_sync_interval) break;
      io_deadline_ = Clock::time_point::max();
      if (framed) io_deadline_ = std::min(io_deadline_, group_since_ + options_.async_write_delay);
      if (since_checkpoint_ > 0) io_deadline_ = std::min(io_deadline_, last_checkpoint_ + options_.checkpoint_interval);
      if (unsynced_) io_deadline_ = std::min(io_deadline_, last_sync_ + options_.async_sync_interval);
      io_idle_ = true;
      if (io_deadline_ == Clock::time_point::max()) {
        cv_.wait(l);
      } else {
        cv_.wait_until(l, io_deadline_);
      }
      io_idle_ = false;
      now = Clock::now();
    }
    const bool closing = closing_;
    if (since_checkpoint_ > 0 && (closing || now - last_checkpoint_ >= options_.checkpoint_interval)) AddCheckpoint();
    Group g = std::exchange(group_, std::move(spare_));
    absl::Status status = broken_;  // not OK: nothing more is written, the callers get this
    const Runner runner = g.batches.empty() ? Runner() : runner_;
    l.unlock();

    // Everything framed so far is written, then synced with one fdatasync (group commit).
    if (status.ok()) status = WriteChunks(g.chunks);
    if (status.ok() && closing) status = TrimSegment();  // a closed log has no zero-filled tail
    if (status.ok() &&
        (sync_mode || closing || !g.checkpoints.empty() || Clock::now() - last_sync_ >= options_.async_sync_interval)) {
      status = Sync();
    }
    for (const Checkpoint& cp : g.checkpoints) {
      if (status.ok()) status = AppendCheckpointFile(cp);
    }
    std::vector<Batch> posted;
    for (Batch& b : g.batches) {
      if (b.direct || runner == nullptr) {
        b.done(status);
      } else {
        posted.push_back(std::move(b));
      }
    }
    if (!posted.empty()) {
      runner([posted = std::move(posted), status]() {
        for (const Batch& b : posted) b.done(status);
      });
    }
    const uint64_t last_seq = g.written != nullptr && !g.written->empty() ? g.written->back().seq : 0;
    if (status.ok() && last_seq != 0) {
      const std::shared_ptr<const std::vector<Written>> written = g.written;
      std::lock_guard<std::mutex> s(subscribers_mu_);
      for (const auto& [id, sub] : subscribers_) sub(written);
    }
    l.lock();
    if (!status.ok() && broken_.ok()) broken_ = status;
    (status.ok() ? stats_.appended : stats_.failed) += g.entries;
    queued_records_ -= g.entries;  // written (or failed): out of the async window
    if (status.ok()) {
      stats_.checkpoints += g.checkpoints.size();
      stats_.last_seq = std::max(stats_.last_seq, last_seq);
    }
    stats_.syncs = syncs_;
    stats_.bytes = stats_bytes_;
    if (closing) return;
    Recycle(g);
    spare_ = std::move(g);
  }
}

void AuditLog::Close() {
  {
    std::lock_guard<std::mutex> l(mu_);
    closing_ = true;
  }
  cv_.notify_one();
  std::lock_guard<std::mutex> l(close_mu_);
  if (io_.joinable()) io_.join();  // it writes what is framed, seals it with a checkpoint and syncs
  if (fd_ >= 0) {
    ::close(fd_);
    fd_ = -1;
  }
  if (index_fd_ >= 0) {
    ::close(index_fd_);
    index_fd_ = -1;
  }
}

LogStats AuditLog::stats() const {
  std::lock_guard<std::mutex> l(mu_);
  return stats_;
}

}  // namespace mandate::audit
