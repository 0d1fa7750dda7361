// The on-disk format of the audit log: segment files of framed, hash-chained records.
//
//   segment file  := "MNDAUDT1" frame* zero*      named seg-<first seq, 20 digits>.log
//   frame         := len:u32le crc32c(payload):u32le payload
//   payload       := type:u8 seq:u64le time_us:i64le prev_hash:32 bytes body
//
// The zero bytes after the last frame are space the writer filled ahead of its records (a frame
// never starts with a zero length): an fdatasync that only overwrites allocated, initialized blocks
// has no file-system metadata to commit, which makes it about a third cheaper than one after an
// append (PostgreSQL zero-fills its WAL segments for the same reason). A segment closed cleanly or
// full has no such tail; the one being written has one of up to kPreallocBytes.
//
// `prev_hash` is the SHA-256 of the previous record's payload (32 zero bytes before the first
// record), so each record commits to the whole history before it. The body is a JSON object: an
// audit entry (type kEntry) or a signed checkpoint (type kCheckpoint). docs/audit.md describes it.
#ifndef MANDATE_AUDIT_FORMAT_H_
#define MANDATE_AUDIT_FORMAT_H_

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace mandate::audit {

using Hash = std::array<unsigned char, 32>;

inline constexpr std::string_view kSegmentMagic = "MNDAUDT1";
inline constexpr size_t kFrameHeaderBytes = 8;
inline constexpr size_t kPayloadHeaderBytes = 1 + 8 + 8 + 32;
// A frame longer than this is damage, not a record (entries are capped far below it).
inline constexpr uint32_t kMaxPayloadBytes = 16u << 20;

inline constexpr uint64_t kPreallocBytes = 1 << 20;

enum class RecordType : uint8_t { kEntry = 1, kCheckpoint = 2 };

// One decoded record. `body` points into the buffer it was decoded from.
struct RecordView {
  RecordType type = RecordType::kEntry;
  uint64_t seq = 0;
  int64_t time_us = 0;
  Hash prev{};
  std::string_view body;
  std::string_view payload;  // what the chain hashes
};

uint32_t Crc32c(std::string_view data);
// SHA-256 of `data` (OpenSSL EVP).
Hash Sha256(std::string_view data);
std::string HexHash(const Hash& h);
std::optional<Hash> ParseHexHash(std::string_view hex);

// Appends the frame of one record to `out` and returns the record's hash (SHA-256 of its payload).
Hash AppendFrame(RecordType type, uint64_t seq, int64_t time_us, const Hash& prev, std::string_view body,
                 std::string* out);

// Decodes the frame at `data[offset..]`. On success sets *record and *next (the offset after the
// frame). Errors (DataLoss) say what is wrong: a truncated frame, an impossible length, a checksum
// mismatch or an unknown record type. Never reads outside `data`.
absl::Status DecodeFrame(std::string_view data, size_t offset, RecordView* record, size_t* next);

// Whether data[offset..] is the zero-filled space after a segment's last frame: not empty, and
// nothing but zero bytes.
bool IsUnusedTail(std::string_view data, size_t offset);

// A sparse index beside each segment, seg-<first seq>.idx: one entry (24 bytes: seq u64le, offset
// u64le, time_us i64le) for the segment's first record and then for the first record at or after
// every kIndexEvery bytes. Record times never decrease along the chain, so an entry bounds the
// sequence numbers, offsets and times of the records between it and the next one: queries seek by
// sequence number or time and read a segment newest block first. The index is a hint for readers,
// not part of what the chain protects: a reader checks every block it reads against it and falls
// back to scanning the segment when they disagree, and `verify` ignores it.
inline constexpr uint64_t kIndexEvery = 64 << 10;
inline constexpr size_t kIndexEntryBytes = 24;
struct IndexEntry {
  uint64_t seq = 0;
  uint64_t offset = 0;
  int64_t time_us = 0;
};
std::string IndexName(uint64_t first_seq);
void AppendIndexEntry(const IndexEntry& e, std::string* out);
// The entries of an index file for the segment starting at `first_seq`; nullopt when the file is
// malformed (size, order, or a first entry that is not the segment's first record).
std::optional<std::vector<IndexEntry>> ParseIndex(std::string_view data, uint64_t first_seq);

// Segment files of an audit directory, sorted by their first sequence number.
struct SegmentFile {
  std::string path;
  std::string name;
  uint64_t first_seq = 0;
};
std::string SegmentName(uint64_t first_seq);
absl::StatusOr<std::vector<SegmentFile>> ListSegments(const std::string& dir);

// Microseconds since the Unix epoch as RFC 3339 UTC with microseconds ("2026-11-30T03:10:00.123456Z").
std::string FormatTime(int64_t time_us);
// RFC 3339 (e.g. 2026-11-30T03:10:00Z), a date (2026-11-30), Unix seconds, or a duration before now
// ("15m", "2h", "3d").
absl::StatusOr<int64_t> ParseTimeArg(std::string_view text);
int64_t NowMicros();

// Reads a file from `offset` to its end. NotFound if it does not exist.
absl::StatusOr<std::string> ReadWholeFile(const std::string& path, uint64_t offset = 0);
// The same into `out` (replacing its contents), reusing its memory.
absl::Status ReadFileInto(const std::string& path, uint64_t offset, std::string* out);

}  // namespace mandate::audit

#endif  // MANDATE_AUDIT_FORMAT_H_
