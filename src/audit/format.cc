#include "audit/format.h"

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <memory>

#include <fcntl.h>
#include <openssl/evp.h>
#include <sys/stat.h>
#include <unistd.h>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace mandate::audit {
namespace {

constexpr uint32_t kCrc32cPoly = 0x82F63B78;  // Castagnoli, reflected

struct CrcTable {
  uint32_t t[8][256];
  CrcTable() {
    for (uint32_t i = 0; i < 256; ++i) {
      uint32_t c = i;
      for (int k = 0; k < 8; ++k) c = (c & 1) ? (c >> 1) ^ kCrc32cPoly : c >> 1;
      t[0][i] = c;
    }
    for (uint32_t i = 0; i < 256; ++i) {
      for (int s = 1; s < 8; ++s) t[s][i] = (t[s - 1][i] >> 8) ^ t[0][t[s - 1][i] & 0xFF];
    }
  }
};

uint32_t Crc32cPortable(uint32_t crc, const unsigned char* p, size_t n) {
  static const CrcTable table;
  while (n >= 8) {
    uint64_t v;
    std::memcpy(&v, p, 8);
    v ^= crc;
    crc = table.t[7][v & 0xFF] ^ table.t[6][(v >> 8) & 0xFF] ^ table.t[5][(v >> 16) & 0xFF] ^
          table.t[4][(v >> 24) & 0xFF] ^ table.t[3][(v >> 32) & 0xFF] ^ table.t[2][(v >> 40) & 0xFF] ^
          table.t[1][(v >> 48) & 0xFF] ^ table.t[0][v >> 56];
    p += 8;
    n -= 8;
  }
  while (n-- > 0) crc = (crc >> 8) ^ table.t[0][(crc ^ *p++) & 0xFF];
  return crc;
}

#if defined(__x86_64__)
__attribute__((target("sse4.2"))) uint32_t Crc32cSse42(uint32_t crc, const unsigned char* p, size_t n) {
  uint64_t c = crc;
  while (n >= 8) {
    uint64_t v;
    std::memcpy(&v, p, 8);
    c = __builtin_ia32_crc32di(c, v);
    p += 8;
    n -= 8;
  }
  uint32_t c32 = static_cast<uint32_t>(c);
  while (n-- > 0) c32 = __builtin_ia32_crc32qi(c32, *p++);
  return c32;
}
#endif

void PutU64(std::string* out, uint64_t v) {
  char b[8];
  for (int i = 0; i < 8; ++i) b[i] = static_cast<char>(v >> (8 * i));
  out->append(b, 8);
}
uint32_t GetU32(const char* p) {
  uint32_t v = 0;
  for (int i = 0; i < 4; ++i) v |= static_cast<uint32_t>(static_cast<unsigned char>(p[i])) << (8 * i);
  return v;
}
uint64_t GetU64(const char* p) {
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v |= static_cast<uint64_t>(static_cast<unsigned char>(p[i])) << (8 * i);
  return v;
}

const EVP_MD* Sha256Md() {
  // Fetched once: looking the algorithm up per call costs more than hashing a small record.
  static EVP_MD* md = EVP_MD_fetch(nullptr, "SHA256", nullptr);
  return md;
}

}  // namespace

uint32_t Crc32c(std::string_view data) {
  const auto* p = reinterpret_cast<const unsigned char*>(data.data());
#if defined(__x86_64__)
  static const bool hw = __builtin_cpu_supports("sse4.2");
  if (hw) return ~Crc32cSse42(~0u, p, data.size());
#endif
  return ~Crc32cPortable(~0u, p, data.size());
}

Hash Sha256(std::string_view data) {
  // A context per thread: EVP_Digest allocates and frees one per call, which cost as much as
  // hashing a whole record.
  thread_local const std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(), &EVP_MD_CTX_free);
  Hash h{};
  unsigned int len = 0;
  if (ctx == nullptr || EVP_DigestInit_ex2(ctx.get(), Sha256Md(), nullptr) != 1 ||
      EVP_DigestUpdate(ctx.get(), data.data(), data.size()) != 1 ||
      EVP_DigestFinal_ex(ctx.get(), h.data(), &len) != 1) {
    EVP_Digest(data.data(), data.size(), h.data(), &len, Sha256Md(), nullptr);
  }
  return h;
}

std::string HexHash(const Hash& h) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string s(64, '0');
  for (size_t i = 0; i < h.size(); ++i) {
    s[2 * i] = kDigits[h[i] >> 4];
    s[2 * i + 1] = kDigits[h[i] & 0xF];
  }
  return s;
}

std::optional<Hash> ParseHexHash(std::string_view hex) {
  if (hex.size() != 64) return std::nullopt;
  Hash h{};
  for (size_t i = 0; i < 32; ++i) {
    int v = 0;
    for (int k = 0; k < 2; ++k) {
      const char c = hex[2 * i + k];
      int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
      if (d < 0) return std::nullopt;
      v = v * 16 + d;
    }
    h[i] = static_cast<unsigned char>(v);
  }
  return h;
}

Hash AppendFrame(RecordType type, uint64_t seq, int64_t time_us, const Hash& prev, std::string_view body,
                 std::string* out) {
  const size_t start = out->size();
  const uint32_t len = static_cast<uint32_t>(kPayloadHeaderBytes + body.size());
  out->resize(start + kFrameHeaderBytes);
  out->push_back(static_cast<char>(type));
  PutU64(out, seq);
  PutU64(out, static_cast<uint64_t>(time_us));
  out->append(reinterpret_cast<const char*>(prev.data()), prev.size());
  out->append(body.data(), body.size());
  const std::string_view payload(out->data() + start + kFrameHeaderBytes, len);
  const uint32_t crc = Crc32c(payload);
  char* h = out->data() + start;
  for (int i = 0; i < 4; ++i) h[i] = static_cast<char>(len >> (8 * i));
  for (int i = 0; i < 4; ++i) h[4 + i] = static_cast<char>(crc >> (8 * i));
  return Sha256(payload);
}

absl::Status DecodeFrame(std::string_view data, size_t offset, RecordView* record, size_t* next) {
  if (offset > data.size() || data.size() - offset < kFrameHeaderBytes) {
    return absl::DataLossError(absl::StrCat("truncated frame: ", data.size() - std::min(offset, data.size()),
                                            " byte(s) left, a frame header needs 8"));
  }
  const uint32_t len = GetU32(data.data() + offset);
  const uint32_t crc = GetU32(data.data() + offset + 4);
  if (len < kPayloadHeaderBytes || len > kMaxPayloadBytes) {
    return absl::DataLossError(absl::StrCat("impossible frame length ", len));
  }
  if (data.size() - offset - kFrameHeaderBytes < len) {
    return absl::DataLossError(absl::StrCat("truncated frame: length ", len, " but only ",
                                            data.size() - offset - kFrameHeaderBytes, " byte(s) left"));
  }
  const std::string_view payload = data.substr(offset + kFrameHeaderBytes, len);
  if (Crc32c(payload) != crc) return absl::DataLossError("checksum mismatch (the record was altered or damaged)");
  const uint8_t type = static_cast<uint8_t>(payload[0]);
  if (type != static_cast<uint8_t>(RecordType::kEntry) && type != static_cast<uint8_t>(RecordType::kCheckpoint)) {
    return absl::DataLossError(absl::StrCat("unknown record type ", type));
  }
  record->type = static_cast<RecordType>(type);
  record->seq = GetU64(payload.data() + 1);
  record->time_us = static_cast<int64_t>(GetU64(payload.data() + 9));
  std::memcpy(record->prev.data(), payload.data() + 17, 32);
  record->body = payload.substr(kPayloadHeaderBytes);
  record->payload = payload;
  *next = offset + kFrameHeaderBytes + len;
  return absl::OkStatus();
}

bool IsUnusedTail(std::string_view data, size_t offset) {
  if (offset >= data.size()) return false;
  return std::all_of(data.begin() + static_cast<std::ptrdiff_t>(offset), data.end(), [](char c) { return c == 0; });
}

std::string SegmentName(uint64_t first_seq) { return absl::StrFormat("seg-%020d.log", first_seq); }
std::string IndexName(uint64_t first_seq) { return absl::StrFormat("seg-%020d.idx", first_seq); }

void AppendIndexEntry(const IndexEntry& e, std::string* out) {
  PutU64(out, e.seq);
  PutU64(out, e.offset);
  PutU64(out, static_cast<uint64_t>(e.time_us));
}

std::optional<std::vector<IndexEntry>> ParseIndex(std::string_view data, uint64_t first_seq) {
  if (data.size() % kIndexEntryBytes != 0) return std::nullopt;
  std::vector<IndexEntry> out;
  out.reserve(data.size() / kIndexEntryBytes);
  for (size_t off = 0; off < data.size(); off += kIndexEntryBytes) {
    IndexEntry e{GetU64(data.data() + off), GetU64(data.data() + off + 8),
                 static_cast<int64_t>(GetU64(data.data() + off + 16))};
    if (out.empty() ? e.seq != first_seq || e.offset != kSegmentMagic.size()
                    : e.seq <= out.back().seq || e.offset <= out.back().offset || e.time_us < out.back().time_us) {
      return std::nullopt;
    }
    out.push_back(e);
  }
  return out;
}

absl::StatusOr<std::vector<SegmentFile>> ListSegments(const std::string& dir) {
  std::vector<SegmentFile> out;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(dir, ec)) {
    const std::string name = e.path().filename().string();
    if (name.size() != 28 || name.rfind("seg-", 0) != 0 || name.substr(24) != ".log") continue;
    uint64_t seq = 0;
    if (!absl::SimpleAtoi(name.substr(4, 20), &seq)) continue;
    out.push_back(SegmentFile{e.path().string(), name, seq});
  }
  if (ec) return absl::NotFoundError(absl::StrCat("cannot read audit directory ", dir, ": ", ec.message()));
  std::sort(out.begin(), out.end(),
            [](const SegmentFile& a, const SegmentFile& b) { return a.first_seq < b.first_seq; });
  return out;
}

std::string FormatTime(int64_t time_us) {
  return absl::FormatTime("%Y-%m-%dT%H:%M:%E6SZ", absl::FromUnixMicros(time_us), absl::UTCTimeZone());
}

int64_t NowMicros() { return absl::ToUnixMicros(absl::Now()); }

absl::StatusOr<int64_t> ParseTimeArg(std::string_view text) {
  const std::string t(text);
  int64_t n = 0;
  if (absl::SimpleAtoi(t, &n)) return n * 1'000'000;
  absl::Duration d;
  if (!t.empty() && std::isalpha(static_cast<unsigned char>(t.back())) && absl::ParseDuration(t, &d)) {
    return absl::ToUnixMicros(absl::Now() - d);
  }
  if (!t.empty() && t.back() == 'd' && absl::SimpleAtoi(t.substr(0, t.size() - 1), &n)) {
    return absl::ToUnixMicros(absl::Now() - absl::Hours(24 * n));
  }
  absl::Time time;
  std::string err;
  if (absl::ParseTime(absl::RFC3339_full, t, &time, &err) || absl::ParseTime("%Y-%m-%d", t, &time, &err)) {
    return absl::ToUnixMicros(time);
  }
  return absl::InvalidArgumentError(absl::StrCat(
      "\"", t,
      "\" is not a time: use RFC 3339 (2026-11-30T03:00:00Z), a date, Unix seconds or a duration ago (15m, 2h, 3d)"));
}

absl::StatusOr<std::string> ReadWholeFile(const std::string& path, uint64_t offset) {
  std::string out;
  if (absl::Status s = ReadFileInto(path, offset, &out); !s.ok()) return s;
  return out;
}

absl::Status ReadFileInto(const std::string& path, uint64_t offset, std::string* out) {
  out->clear();
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return absl::NotFoundError(absl::StrCat(path, " does not exist"));
    return absl::UnavailableError(absl::StrCat("cannot open ", path, ": ", std::strerror(errno)));
  }
  // Read straight into `out`, sized from the file's size (and grown if the file grows meanwhile):
  // no copy through an intermediate buffer, and a buffer reused across files is not faulted in again.
  struct stat st;
  size_t want = 1 << 16;
  if (::fstat(fd, &st) == 0 && static_cast<uint64_t>(st.st_size) > offset) want = st.st_size - offset + 1;
  size_t got = 0;
  for (;;) {
    if (out->size() < got + 1) out->resize(std::max(want, 2 * out->size()));
    const ssize_t n = ::pread(fd, out->data() + got, out->size() - got, static_cast<off_t>(offset + got));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      const int e = errno;
      ::close(fd);
      out->clear();
      return absl::UnavailableError(absl::StrCat("cannot read ", path, ": ", std::strerror(e)));
    }
    if (n == 0) break;
    got += static_cast<size_t>(n);
  }
  ::close(fd);
  out->resize(got);
  return absl::OkStatus();
}

}  // namespace mandate::audit
