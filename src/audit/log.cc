#include "audit/log.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include <boost/json.hpp>

#include "absl/strings/str_cat.h"

namespace mandate::audit {
namespace {

absl::Status Errno(const char* what, const std::string& path) {
  return absl::UnavailableError(absl::StrCat("audit log: cannot ", what, " ", path, ": ", std::strerror(errno)));
}

absl::Status WriteAll(int fd, std::string_view data, const std::string& path) {
  while (!data.empty()) {
    const ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Errno("write", path);
    data.remove_prefix(static_cast<size_t>(n));
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
  if (ec) return absl::UnavailableError(absl::StrCat("cannot create audit directory ", options.dir, ": ", ec.message()));
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
  log->writer_ = std::thread([p = log.get()] { p->WriterLoop(); });
  return log;
}

AuditLog::~AuditLog() { Close(); }

absl::Status AuditLog::OpenSegment(uint64_t first_seq, bool create) {
  const std::string path = absl::StrCat(options_.dir, "/", SegmentName(first_seq));
  if (fd_ >= 0) ::close(fd_);
  fd_ = ::open(path.c_str(), O_WRONLY | O_APPEND | O_CLOEXEC | (create ? O_CREAT | O_EXCL : 0), 0600);
  if (fd_ < 0) return Errno("open", path);
  if (create) {
    if (absl::Status s = WriteAll(fd_, kSegmentMagic, path); !s.ok()) return s;
    if (::fdatasync(fd_) != 0) return Errno("sync", path);
    if (absl::Status s = SyncDir(options_.dir); !s.ok()) return s;
    segment_size_ = kSegmentMagic.size();
  } else {
    struct stat st;
    if (::fstat(fd_, &st) != 0) return Errno("stat", path);
    segment_size_ = static_cast<uint64_t>(st.st_size);
  }
  return absl::OkStatus();
}

absl::Status AuditLog::Recover() {
  absl::StatusOr<std::vector<SegmentFile>> segments = ListSegments(options_.dir);
  if (!segments.ok()) return segments.status();
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
        return absl::DataLossError(absl::StrCat("audit segment ", seg->path,
                                                " has no valid header; run `mandate audit verify`"));
      }
      // Created but its header never reached the disk: start it again.
      ::unlink(seg->path.c_str());
      if (absl::Status s = OpenSegment(seg->first_seq, true); !s.ok()) return s;
      continue;
    }
    uint64_t expected = seg->first_seq;
    while (off < data->size()) {
      RecordView r;
      size_t next = 0;
      absl::Status s = DecodeFrame(*data, off, &r, &next);
      const bool decoded = s.ok();
      if (s.ok() && (r.seq != expected || (expected != seg->first_seq && r.prev != prev_))) {
        s = absl::DataLossError("sequence or chain mismatch");
      }
      if (!s.ok()) {
        // Only a final frame cut short by a crash is repaired (one that reaches the end of the last
        // segment and does not decode); damage before it is for `verify`.
        bool torn = false;
        if (last && !decoded) {
          const size_t left = data->size() - off;
          torn = left < kFrameHeaderBytes;
          if (!torn) {
            uint32_t len = 0;
            for (int i = 0; i < 4; ++i) len |= static_cast<uint32_t>(static_cast<unsigned char>((*data)[off + i])) << (8 * i);
            torn = len > kMaxPayloadBytes || left - kFrameHeaderBytes <= len;
          }
        }
        if (!torn) {
          return absl::DataLossError(absl::StrCat("audit segment ", seg->name, " is damaged at offset ", off, ": ",
                                                  s.message(), "; run `mandate audit verify` (the server will not append to a damaged log)"));
        }
        if (::truncate(seg->path.c_str(), static_cast<off_t>(off)) != 0) return Errno("truncate", seg->path);
        recovered_bytes_ = data->size() - off;
        recovered_at_ = absl::StrCat(seg->name, " offset ", off);
        break;
      }
      prev_ = Sha256(r.payload);
      next_seq_ = r.seq + 1;
      found_end = true;
      ++expected;
      off = next;
    }
    if (last && !found_end) next_seq_ = seg->first_seq;
  }
  const SegmentFile& last = segments->back();
  if (!found_end && next_seq_ != 1) {
    return absl::DataLossError("audit log: no record found before the last segment; run `mandate audit verify`");
  }
  if (fd_ < 0) return OpenSegment(last.first_seq, false);
  return absl::OkStatus();
}

void AuditLog::Append(std::vector<std::string> entries, Done done) {
  if (entries.empty()) {
    if (done) done(absl::OkStatus());
    return;
  }
  bool answer_now = false;
  absl::Status now_status;
  {
    std::lock_guard<std::mutex> l(mu_);
    if (closing_ || !broken_.ok()) {
      answer_now = true;
      now_status = closing_ ? absl::UnavailableError("the audit log is closed") : broken_;
    } else {
      const size_t n = entries.size();
      const bool early = options_.durability == Durability::kAsync && queued_records_ + n <= options_.async_max_pending;
      queued_records_ += n;
      queue_.push_back(Batch{std::move(entries), early ? Done() : std::move(done)});
      answer_now = early;
    }
  }
  cv_.notify_one();
  if (answer_now && done) done(now_status);
}

absl::Status AuditLog::AppendAndWait(std::vector<std::string> entries) {
  std::mutex m;
  std::condition_variable cv;
  bool finished = false;
  absl::Status result;
  {
    std::lock_guard<std::mutex> l(mu_);
    if (closing_) return absl::UnavailableError("the audit log is closed");
    if (!broken_.ok()) return broken_;
    queued_records_ += entries.size();
    queue_.push_back(Batch{std::move(entries), [&](absl::Status s) {
                             std::lock_guard<std::mutex> g(m);
                             result = s;
                             finished = true;
                             cv.notify_one();
                           }});
  }
  cv_.notify_one();
  std::unique_lock<std::mutex> g(m);
  cv.wait(g, [&] { return finished; });
  return result;
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

absl::Status AuditLog::AddRecord(RecordType type, std::string_view body, int64_t time_us, std::vector<Written>* out) {
  const uint64_t frame = kFrameHeaderBytes + kPayloadHeaderBytes + body.size();
  if (segment_size_ + buf_.size() + frame > options_.segment_bytes && segment_size_ + buf_.size() > kSegmentMagic.size()) {
    if (absl::Status s = FlushBuffer(/*sync=*/true); !s.ok()) return s;
    if (absl::Status s = OpenSegment(next_seq_, /*create=*/true); !s.ok()) return s;
  }
  prev_ = AppendFrame(type, next_seq_, time_us, prev_, body, &buf_);
  out->push_back(Written{next_seq_, time_us, type, std::string(body)});
  ++next_seq_;
  return absl::OkStatus();
}

absl::Status AuditLog::AddCheckpoint(std::vector<Written>* out) {
  Checkpoint cp;
  cp.seq = next_seq_ - 1;
  cp.hash = prev_;
  cp.time_us = last_time_us_ = std::max(last_time_us_, NowMicros());
  cp.record_seq = next_seq_;
  signer_.SignCheckpoint(&cp);
  if (absl::Status s = AddRecord(RecordType::kCheckpoint, CheckpointJson(cp), cp.time_us, out); !s.ok()) return s;
  pending_checkpoints_.push_back(cp);
  since_checkpoint_ = 0;
  last_checkpoint_ = std::chrono::steady_clock::now();
  return absl::OkStatus();
}

absl::Status AuditLog::FlushBuffer(bool sync) {
  if (!buf_.empty()) {
    if (absl::Status s = WriteAll(fd_, buf_, options_.dir); !s.ok()) return s;
    segment_size_ += buf_.size();
    stats_bytes_ += buf_.size();
    buf_.clear();
    unsynced_ = true;
  }
  if (sync && unsynced_) {
    if (::fdatasync(fd_) != 0) return Errno("sync a segment in", options_.dir);
    unsynced_ = false;
    last_sync_ = std::chrono::steady_clock::now();
    ++syncs_;
  }
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

void AuditLog::WriterLoop() {
  std::unique_lock<std::mutex> l(mu_);
  if (recovered_bytes_ > 0) {
    // Part of a record was being written when the process died; the rest of the chain is intact.
    queue_.push_front(Batch{{boost::json::serialize(boost::json::object{
                                {"kind", "system"},
                                {"action", "audit.recovered"},
                                {"detail", boost::json::object{{"dropped_bytes", recovered_bytes_},
                                                               {"at", recovered_at_}}}})},
                            Done()});
    ++queued_records_;
  }
  for (;;) {
    const auto now = std::chrono::steady_clock::now();
    auto deadline = std::chrono::steady_clock::time_point::max();
    if (since_checkpoint_ > 0) deadline = last_checkpoint_ + options_.checkpoint_interval;
    if (unsynced_) deadline = std::min(deadline, last_sync_ + options_.async_sync_interval);
    if (queue_.empty() && !closing_) {
      if (deadline == std::chrono::steady_clock::time_point::max()) {
        cv_.wait(l, [&] { return !queue_.empty() || closing_; });
      } else if (deadline > now) {
        cv_.wait_until(l, deadline, [&] { return !queue_.empty() || closing_; });
      }
    }
    std::deque<Batch> batches;
    batches.swap(queue_);
    queued_records_ = 0;
    const bool closing = closing_;
    absl::Status status = broken_;
    l.unlock();

    std::vector<Written> written;
    uint64_t entries = 0;
    for (const Batch& b : batches) {
      for (const std::string& e : b.entries) {
        if (!status.ok()) break;
        last_time_us_ = std::max(last_time_us_, NowMicros());
        status = AddRecord(RecordType::kEntry, e, last_time_us_, &written);
        ++entries;
        if (status.ok() && ++since_checkpoint_ >= options_.checkpoint_records) status = AddCheckpoint(&written);
      }
    }
    const auto t = std::chrono::steady_clock::now();
    if (status.ok() && since_checkpoint_ > 0 && (closing || t - last_checkpoint_ >= options_.checkpoint_interval)) {
      status = AddCheckpoint(&written);
    }
    if (status.ok()) {
      const bool sync = options_.durability == Durability::kSync || closing || !pending_checkpoints_.empty() ||
                        t - last_sync_ >= options_.async_sync_interval;
      status = FlushBuffer(sync);
    }
    for (const Checkpoint& cp : pending_checkpoints_) {
      if (status.ok()) status = AppendCheckpointFile(cp);
    }
    pending_checkpoints_.clear();
    for (Batch& b : batches) {
      if (b.done) b.done(status);
    }
    if (status.ok() && !written.empty()) {
      std::lock_guard<std::mutex> g(subscribers_mu_);
      for (const auto& [id, sub] : subscribers_) sub(written);
    }

    l.lock();
    if (!status.ok() && broken_.ok()) broken_ = status;
    if (status.ok()) {
      stats_.appended += entries;
      for (const Written& w : written) stats_.checkpoints += w.type == RecordType::kCheckpoint;
    } else {
      stats_.failed += entries;
    }
    stats_.last_seq = next_seq_ - 1;
    stats_.syncs = syncs_;
    stats_.bytes = stats_bytes_;
    if (closing && queue_.empty()) return;
  }
}

void AuditLog::Close() {
  {
    std::lock_guard<std::mutex> l(mu_);
    closing_ = true;
  }
  cv_.notify_one();
  std::lock_guard<std::mutex> l(close_mu_);
  if (writer_.joinable()) writer_.join();
  if (fd_ >= 0) {
    ::close(fd_);
    fd_ = -1;
  }
}

LogStats AuditLog::stats() const {
  std::lock_guard<std::mutex> l(mu_);
  return stats_;
}

}  // namespace mandate::audit
