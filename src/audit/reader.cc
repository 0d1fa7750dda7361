#include "audit/reader.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <map>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

#include "audit/fields.h"

namespace mandate::audit {

std::string Problem::ToString() const {
  return absl::StrCat(segment, " offset ", offset, " (sequence ", seq, "): ", what);
}

absl::StatusOr<VerifyReport> Verify(const std::string& dir, const PublicKey* given_key) {
  VerifyReport report;
  std::optional<PublicKey> own_key;
  if (given_key == nullptr) {
    absl::StatusOr<PublicKey> k = PublicKey::FromFile(absl::StrCat(dir, "/", kPublicKeyFile));
    if (k.ok()) {
      own_key = *k;
      report.key_source =
          absl::StrCat(dir, "/", kPublicKeyFile, " (the log's own copy; pass --public-key to use yours)");
    } else if (k.status().code() != absl::StatusCode::kNotFound) {
      return k.status();
    }
  } else {
    report.key_source = "--public-key";
  }
  const PublicKey* key = given_key != nullptr ? given_key : own_key ? &*own_key : nullptr;
  if (key != nullptr) report.key_id = key->key_id();

  absl::StatusOr<std::vector<SegmentFile>> segments = ListSegments(dir);
  if (!segments.ok()) return segments.status();
  report.segments = segments->size();
  absl::StatusOr<std::vector<Checkpoint>> listed = ReadCheckpoints(dir);
  if (!listed.ok() && listed.status().code() != absl::StatusCode::kNotFound) return listed.status();

  auto fail = [&](std::string segment, uint64_t offset, uint64_t seq, std::string what) {
    report.problem = Problem{std::move(segment), offset, seq, std::move(what)};
    return report;
  };
  uint64_t expected = 1;
  Hash prev{};
  std::map<uint64_t, std::string> chain_checkpoints;  // record seq -> signature
  std::string last_segment;
  uint64_t last_end = 0;
  std::string buffer;  // one segment at a time, reused
  for (const SegmentFile& seg : *segments) {
    if (seg.first_seq != expected) {
      return fail(seg.name, 0, expected,
                  seg.first_seq > expected
                      ? absl::StrCat("records ", expected, " to ", seg.first_seq - 1,
                                     " are missing: a segment was deleted or the one before was cut short")
                      : absl::StrCat("the segment starts at sequence ", seg.first_seq, " but sequence ", expected,
                                     " was expected (segments overlap or were renamed)"));
    }
    if (absl::Status s = ReadFileInto(seg.path, 0, &buffer); !s.ok()) return s;
    const std::string* data = &buffer;
    if (data->size() < kSegmentMagic.size() ||
        std::string_view(*data).substr(0, kSegmentMagic.size()) != kSegmentMagic) {
      return fail(seg.name, 0, expected, "not an audit segment (bad file header)");
    }
    size_t off = kSegmentMagic.size();
    while (off < data->size()) {
      if (IsUnusedTail(*data, off)) break;  // zero-filled ahead of the records (format.h)
      RecordView r;
      size_t next = 0;
      if (absl::Status s = DecodeFrame(*data, off, &r, &next); !s.ok()) {
        return fail(seg.name, off, expected, std::string(s.message()));
      }
      if (r.seq != expected) {
        return fail(seg.name, off, expected,
                    absl::StrCat("found sequence ", r.seq, " where ", expected,
                                 " was expected (a record was removed, inserted or reordered)"));
      }
      if (r.prev != prev) {
        return fail(seg.name, off, expected,
                    "the record does not commit to the hash of the record before it (that record was altered, or "
                    "records were removed or reordered)");
      }
      if (r.type == RecordType::kCheckpoint) {
        absl::StatusOr<Checkpoint> cp = ParseCheckpoint(r.body);
        if (!cp.ok()) return fail(seg.name, off, expected, std::string(cp.status().message()));
        if (cp->seq + 1 != r.seq || cp->hash != prev) {
          return fail(seg.name, off, expected, "the checkpoint does not seal the records before it");
        }
        if (key == nullptr) return fail(seg.name, off, expected, "no public key to check the checkpoint with");
        if (cp->key_id != key->key_id()) {
          return fail(seg.name, off, expected,
                      absl::StrCat("the checkpoint was signed by key ", cp->key_id, ", not by the expected key ",
                                   key->key_id(), " (the signing key was swapped)"));
        }
        if (!key->Verify(CheckpointMessage(cp->seq, cp->hash, cp->time_us), cp->signature)) {
          return fail(seg.name, off, expected, "the checkpoint's signature is invalid (forged or altered)");
        }
        chain_checkpoints[r.seq] = cp->signature;
        ++report.checkpoints;
        report.sealed_seq = cp->seq;
      }
      prev = Sha256(r.payload);
      ++report.records;
      report.last_seq = r.seq;
      ++expected;
      off = next;
    }
    last_segment = seg.name;
    last_end = off;
  }
  if (listed.ok()) {
    for (const Checkpoint& cp : *listed) {
      if (cp.record_seq > report.last_seq) {
        return fail(last_segment.empty() ? "(no segment)" : last_segment, last_end, report.last_seq + 1,
                    absl::StrCat("the log ends at sequence ", report.last_seq, " but ", kCheckpointsFile,
                                 " lists a checkpoint at sequence ", cp.record_seq,
                                 ": records were cut off or a segment was deleted"));
      }
      auto it = chain_checkpoints.find(cp.record_seq);
      if (it == chain_checkpoints.end() || it->second != cp.signature) {
        return fail(kCheckpointsFile, 0, cp.record_seq,
                    absl::StrCat("the checkpoint listed at sequence ", cp.record_seq, " is not in the log"));
      }
    }
  } else if (!chain_checkpoints.empty()) {
    return fail(kCheckpointsFile, 0, 0, absl::StrCat(kCheckpointsFile, " is missing"));
  }
  return report;
}

std::string RenderRecord(const RecordView& r) {
  std::string out = absl::StrCat("{\"seq\":", r.seq, ",\"ts\":\"", FormatTime(r.time_us), "\"");
  std::string_view body = r.body;
  if (body.size() > 2 && body.front() == '{') {
    out += ",";
    out.append(body.substr(1));
  } else {
    out += "}";
  }
  return out;
}

bool Matches(const Filter& f, const RecordView& r) {
  if (f.before_seq != 0 && r.seq >= f.before_seq) return false;
  if (r.seq <= f.after_seq) return false;
  if (r.time_us < f.since_us || r.time_us > f.until_us) return false;
  const bool body_filters = !f.actor.empty() || f.agent_only || !f.decision.empty() || !f.action.empty() ||
                            !f.resource.empty() || !f.kind.empty();
  if (!body_filters) return true;
  // Cheap rejection before reading the fields: each wanted value must appear in the text somewhere
  // (as it is, unless JSON escapes it).
  for (const std::string* s : {&f.actor, &f.decision, &f.action, &f.resource, &f.kind}) {
    if (s->empty() || !std::all_of(s->begin(), s->end(), [](char c) {
          return static_cast<unsigned char>(c) >= 0x20 && c != '"' && c != '\\';
        })) {
      continue;
    }
    if (r.body.find(*s) == std::string_view::npos) return false;
  }
  RecordFields fields;
  if (!ReadRecordFields(r.body, &fields)) return false;
  if (!f.kind.empty() && fields.kind() != f.kind) return false;
  if (!f.actor.empty() && fields.actor() != f.actor) return false;
  if (!f.decision.empty() && fields.decision() != f.decision) return false;
  if (!f.action.empty() && fields.action() != f.action) return false;
  if (!f.resource.empty() && fields.resource() != f.resource) return false;
  return !f.agent_only || fields.agent;
}

namespace {

// Reads `len` bytes of `path` at `offset` (fewer at the end of the file).
absl::StatusOr<std::string> ReadAt(int fd, const std::string& path, uint64_t offset, uint64_t len) {
  std::string out(len, '\0');
  size_t got = 0;
  while (got < len) {
    const ssize_t n = ::pread(fd, out.data() + got, len - got, static_cast<off_t>(offset + got));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return absl::UnavailableError(absl::StrCat("cannot read ", path, ": ", std::strerror(errno)));
    if (n == 0) break;
    got += static_cast<size_t>(n);
  }
  out.resize(got);
  return out;
}

// How the newest-first scan of one segment ended.
enum class Scan {
  kMore,     // keep going with older segments
  kDone,     // the page is full, or nothing older can match
  kNoIndex,  // the index is missing or disagrees with the segment: scan it whole instead
};

// Reads one segment newest block first with its index, adding matches (newest first) to `out` until
// it holds `limit`. Blocks whose sequence numbers or times cannot match are not read.
absl::StatusOr<Scan> ScanIndexed(const SegmentFile& seg, const std::vector<IndexEntry>& index, const Filter& f,
                                 size_t limit, std::vector<Found>* out) {
  const int fd = ::open(seg.path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return absl::UnavailableError(absl::StrCat("cannot open ", seg.path, ": ", std::strerror(errno)));
  struct stat st;
  if (::fstat(fd, &st) != 0 || static_cast<uint64_t>(st.st_size) < index.back().offset) {
    ::close(fd);
    return Scan::kNoIndex;
  }
  const size_t start = out->size();
  Scan result = Scan::kMore;
  for (size_t i = index.size(); i-- > 0 && result == Scan::kMore;) {
    const IndexEntry& e = index[i];
    const bool newest = i + 1 == index.size();
    const uint64_t end = newest ? static_cast<uint64_t>(st.st_size) : index[i + 1].offset;
    // Every record of block i has seq in [e.seq, next seq) and time in [e.time_us, next time].
    if (f.before_seq != 0 && e.seq >= f.before_seq) continue;
    if (e.time_us > f.until_us) continue;
    if (!newest && (index[i + 1].time_us < f.since_us || index[i + 1].seq - 1 <= f.after_seq)) {
      result = Scan::kDone;  // this block and everything older is too old
      break;
    }
    absl::StatusOr<std::string> block = ReadAt(fd, seg.path, e.offset, end - e.offset);
    if (!block.ok()) {
      ::close(fd);
      return block.status();
    }
    std::vector<Found> here;
    size_t off = 0;
    uint64_t expected = e.seq;
    bool agrees = true;
    while (off < block->size()) {
      RecordView r;
      size_t next = 0;
      if (!DecodeFrame(*block, off, &r, &next).ok()) {
        agrees = newest;  // the newest block may end in a frame still being written
        break;
      }
      if (r.seq != expected++ || (off == 0 && r.time_us != e.time_us)) {
        agrees = false;
        break;
      }
      if (Matches(f, r)) here.push_back(Found{r.seq, r.time_us, RenderRecord(r)});
      off = next;
    }
    if (!agrees || (!newest && expected != index[i + 1].seq)) {
      out->resize(start);
      result = Scan::kNoIndex;
      break;
    }
    for (auto it = here.rbegin(); it != here.rend() && out->size() < limit; ++it) out->push_back(std::move(*it));
    if (out->size() >= limit || (f.after_seq != 0 && e.seq <= f.after_seq + 1)) result = Scan::kDone;
  }
  ::close(fd);
  return result;
}

}  // namespace

absl::StatusOr<std::vector<Found>> QueryNewestFirst(const std::string& dir, const Filter& filter, size_t limit) {
  absl::StatusOr<std::vector<SegmentFile>> segments = ListSegments(dir);
  if (!segments.ok()) return segments.status();
  std::vector<Found> out;
  for (auto seg = segments->rbegin(); seg != segments->rend() && out.size() < limit; ++seg) {
    if (filter.before_seq != 0 && seg->first_seq >= filter.before_seq) continue;
    absl::StatusOr<std::string> index_text = ReadWholeFile(absl::StrCat(dir, "/", IndexName(seg->first_seq)));
    std::optional<std::vector<IndexEntry>> index;
    if (index_text.ok()) index = ParseIndex(*index_text, seg->first_seq);
    if (index && !index->empty()) {
      absl::StatusOr<Scan> scan = ScanIndexed(*seg, *index, filter, limit, &out);
      if (!scan.ok()) return scan.status();
      if (*scan == Scan::kDone) break;
      if (*scan == Scan::kMore) continue;
    }
    // No usable index (a log written before indexes existed, or a damaged one): read it all.
    absl::StatusOr<std::string> data = ReadWholeFile(seg->path);
    if (!data.ok()) return data.status();
    std::vector<Found> here;
    size_t off = kSegmentMagic.size();
    while (off < data->size()) {
      RecordView r;
      size_t next = 0;
      if (!DecodeFrame(*data, off, &r, &next).ok()) break;
      if (Matches(filter, r)) here.push_back(Found{r.seq, r.time_us, RenderRecord(r)});
      off = next;
    }
    for (auto it = here.rbegin(); it != here.rend() && out.size() < limit; ++it) out.push_back(std::move(*it));
    if (seg->first_seq <= filter.after_seq) break;
  }
  return out;
}

absl::StatusOr<std::vector<Checkpoint>> ReadCheckpoints(const std::string& dir) {
  absl::StatusOr<std::string> text = ReadWholeFile(absl::StrCat(dir, "/", kCheckpointsFile));
  if (!text.ok()) return text.status();
  std::vector<Checkpoint> out;
  int line_no = 0;
  for (absl::string_view line : absl::StrSplit(*text, '\n')) {
    ++line_no;
    if (line.empty()) continue;
    absl::StatusOr<Checkpoint> cp = ParseCheckpoint(std::string_view(line.data(), line.size()));
    if (!cp.ok()) {
      return absl::DataLossError(absl::StrCat(kCheckpointsFile, ":", line_no, ": ", cp.status().message()));
    }
    out.push_back(*cp);
  }
  return out;
}

absl::StatusOr<std::vector<Found>> Follower::Poll(const Filter& filter) {
  absl::StatusOr<std::vector<SegmentFile>> segments = ListSegments(dir_);
  if (!segments.ok()) return segments.status();
  std::vector<Found> out;
  for (const SegmentFile& seg : *segments) {
    if (!segment_.empty() && seg.name < segment_) continue;
    // Skip whole segments that end before the position: the next one starts after it.
    if (segment_.empty()) {
      auto next = std::find_if(segments->begin(), segments->end(),
                               [&](const SegmentFile& s) { return s.first_seq > seg.first_seq; });
      if (next != segments->end() && next->first_seq <= after_ + 1) continue;
    }
    if (seg.name != segment_) {
      segment_ = seg.name;
      offset_ = kSegmentMagic.size();
    }
    absl::StatusOr<std::string> rest = ReadWholeFile(seg.path, offset_);
    if (!rest.ok()) return rest.status();
    size_t off = 0;
    while (off < rest->size()) {
      RecordView r;
      size_t next = 0;
      if (!DecodeFrame(*rest, off, &r, &next).ok()) break;  // incomplete: read again later
      if (r.seq > after_) {
        if (Matches(filter, r)) out.push_back(Found{r.seq, r.time_us, RenderRecord(r)});
        after_ = r.seq;
      }
      offset_ += next - off;
      off = next;
    }
  }
  return out;
}

}  // namespace mandate::audit
