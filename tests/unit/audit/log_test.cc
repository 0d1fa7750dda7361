// The audit log: records round-trip through the writer, the verifier accepts an intact log and
// names the first bad record of each kind of tampering, and a torn tail is repaired at Open.
#include "audit/log.h"

#include <atomic>
#include <condition_variable>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <thread>

#include <boost/json.hpp>
#include <sys/stat.h>
#include <unistd.h>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

#include "audit/format.h"
#include "audit/reader.h"

namespace mandate::audit {
namespace {

using ::testing::HasSubstr;
namespace fs = std::filesystem;

class AuditLogTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/mandate-audit-XXXXXX";
    dir_ = std::string(mkdtemp(tmpl)) + "/audit";
  }
  void TearDown() override { fs::remove_all(fs::path(dir_).parent_path()); }

  LogOptions Options() const {
    LogOptions o;
    o.dir = dir_;
    o.segment_bytes = 4096;
    o.checkpoint_records = 10;
    return o;
  }
  // Writes `n` entries and closes the log.
  void Write(int n, LogOptions o) {
    auto log = AuditLog::Open(o);
    ASSERT_TRUE(log.ok()) << log.status();
    for (int i = 0; i < n; ++i) {
      ASSERT_TRUE(
          (*log)
              ->AppendAndWait({boost::json::serialize(boost::json::object{{"kind", "decision"},
                                                                          {"actor", "User:u" + std::to_string(i % 3)},
                                                                          {"action", "read"},
                                                                          {"resource", "Repo:r" + std::to_string(i)},
                                                                          {"decision", i % 2 ? "deny" : "allow"}})})
              .ok());
    }
    (*log)->Close();
  }
  VerifyReport MustVerify(const PublicKey* key = nullptr) {
    absl::StatusOr<VerifyReport> r = Verify(dir_, key);
    EXPECT_TRUE(r.ok()) << r.status();
    return r.ok() ? *r : VerifyReport{};
  }
  std::vector<SegmentFile> Segments() { return *ListSegments(dir_); }
  // Byte offsets of the frames of a segment.
  std::vector<size_t> Frames(const std::string& path) {
    std::string data = *ReadWholeFile(path);
    std::vector<size_t> out;
    size_t off = kSegmentMagic.size();
    while (off < data.size()) {
      RecordView r;
      size_t next = 0;
      if (!DecodeFrame(data, off, &r, &next).ok()) break;
      out.push_back(off);
      off = next;
    }
    return out;
  }
  static void Rewrite(const std::string& path, const std::string& data) {
    std::ofstream(path, std::ios::binary | std::ios::trunc) << data;
  }

  std::string dir_;
};

TEST_F(AuditLogTest, AnIntactLogVerifiesAndQueriesNewestFirst) {
  Write(100, Options());
  VerifyReport r = MustVerify();
  EXPECT_FALSE(r.problem) << r.problem->ToString();
  EXPECT_EQ(r.records, 100u + r.checkpoints);
  EXPECT_GE(r.checkpoints, 10u);
  EXPECT_EQ(r.sealed_seq, r.last_seq - 1);  // Close() seals everything
  EXPECT_GT(r.segments, 3u);
  // Key file permissions.
  struct stat st;
  ASSERT_EQ(stat((dir_ + "/signing-key.pem").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);

  Filter f;
  f.actor = "User:u1";
  f.decision = "deny";
  auto found = QueryNewestFirst(dir_, f, 5);
  ASSERT_TRUE(found.ok());
  ASSERT_EQ(found->size(), 5u);
  EXPECT_GT((*found)[0].seq, (*found)[1].seq);
  EXPECT_THAT((*found)[0].json, HasSubstr("\"actor\":\"User:u1\""));
  EXPECT_THAT((*found)[0].json, HasSubstr("\"decision\":\"deny\""));
}

TEST_F(AuditLogTest, ReopeningContinuesTheChain) {
  Write(15, Options());
  Write(15, Options());
  VerifyReport r = MustVerify();
  EXPECT_FALSE(r.problem) << r.problem->ToString();
  EXPECT_EQ(r.records, 30u + r.checkpoints);
}

TEST_F(AuditLogTest, FlippedByteIsNamed) {
  Write(30, Options());
  const SegmentFile seg = Segments()[1];
  std::string data = *ReadWholeFile(seg.path);
  const size_t at = Frames(seg.path)[2];
  data[at + 60] ^= 0x01;
  Rewrite(seg.path, data);
  VerifyReport r = MustVerify();
  ASSERT_TRUE(r.problem);
  EXPECT_EQ(r.problem->segment, seg.name);
  EXPECT_EQ(r.problem->offset, at);
  EXPECT_THAT(r.problem->what, HasSubstr("checksum mismatch"));
}

TEST_F(AuditLogTest, DeletedRecordIsNamed) {
  Write(30, Options());
  const SegmentFile seg = Segments()[1];
  std::string data = *ReadWholeFile(seg.path);
  const auto frames = Frames(seg.path);
  data.erase(frames[1], frames[2] - frames[1]);
  Rewrite(seg.path, data);
  VerifyReport r = MustVerify();
  ASSERT_TRUE(r.problem);
  EXPECT_EQ(r.problem->segment, seg.name);
  EXPECT_EQ(r.problem->offset, frames[1]);
  EXPECT_EQ(r.problem->seq, seg.first_seq + 1);
  EXPECT_THAT(r.problem->what, HasSubstr("was removed, inserted or reordered"));
}

TEST_F(AuditLogTest, ReorderedRecordsAreNamed) {
  Write(30, Options());
  const SegmentFile seg = Segments()[1];
  std::string data = *ReadWholeFile(seg.path);
  const auto frames = Frames(seg.path);
  const std::string a = data.substr(frames[1], frames[2] - frames[1]);
  const std::string b = data.substr(frames[2], frames[3] - frames[2]);
  data.replace(frames[1], a.size() + b.size(), b + a);
  Rewrite(seg.path, data);
  VerifyReport r = MustVerify();
  ASSERT_TRUE(r.problem);
  EXPECT_EQ(r.problem->offset, frames[1]);
  EXPECT_EQ(r.problem->seq, seg.first_seq + 1);
}

TEST_F(AuditLogTest, AlteredRecordWithFixedChecksumBreaksTheChain) {
  Write(30, Options());
  const SegmentFile seg = Segments()[1];
  std::string data = *ReadWholeFile(seg.path);
  const auto frames = Frames(seg.path);
  // Change "allow" to "alloW" and recompute the CRC: the next record's link no longer matches.
  const size_t p = data.find("allow", frames[1]);
  ASSERT_LT(p, frames[2]);
  data[p + 4] = 'W';
  const uint32_t len = frames[2] - frames[1] - kFrameHeaderBytes;
  const uint32_t crc = Crc32c(std::string_view(data).substr(frames[1] + kFrameHeaderBytes, len));
  for (int i = 0; i < 4; ++i) data[frames[1] + 4 + i] = static_cast<char>(crc >> (8 * i));
  Rewrite(seg.path, data);
  VerifyReport r = MustVerify();
  ASSERT_TRUE(r.problem);
  EXPECT_EQ(r.problem->offset, frames[2]);
  EXPECT_THAT(r.problem->what, HasSubstr("does not commit to the hash"));
}

TEST_F(AuditLogTest, TruncatedOrDeletedSegmentsAreNamed) {
  Write(100, Options());
  auto segs = Segments();
  ASSERT_GE(segs.size(), 4u);
  {  // A middle segment cut at a frame boundary: the next segment does not follow on.
    std::string data = *ReadWholeFile(segs[1].path);
    const auto frames = Frames(segs[1].path);
    std::string saved = data;
    Rewrite(segs[1].path, data.substr(0, frames[frames.size() - 2]));
    VerifyReport r = MustVerify();
    ASSERT_TRUE(r.problem);
    EXPECT_EQ(r.problem->segment, segs[2].name);
    EXPECT_THAT(r.problem->what, HasSubstr("missing"));
    // Cut inside a frame.
    Rewrite(segs[1].path, saved.substr(0, saved.size() - 3));
    r = MustVerify();
    ASSERT_TRUE(r.problem);
    EXPECT_EQ(r.problem->segment, segs[1].name);
    EXPECT_THAT(r.problem->what, HasSubstr("truncated frame"));
    Rewrite(segs[1].path, saved);
  }
  {  // A middle segment deleted.
    const std::string saved = *ReadWholeFile(segs[2].path);
    fs::remove(segs[2].path);
    VerifyReport r = MustVerify();
    ASSERT_TRUE(r.problem);
    EXPECT_EQ(r.problem->segment, segs[3].name);
    EXPECT_THAT(r.problem->what, HasSubstr("are missing"));
    Rewrite(segs[2].path, saved);
  }
  {  // The last segment deleted: checkpoints.jsonl says the log went further.
    fs::remove(segs.back().path);
    VerifyReport r = MustVerify();
    ASSERT_TRUE(r.problem);
    EXPECT_THAT(r.problem->what, HasSubstr("records were cut off or a segment was deleted"));
  }
}

TEST_F(AuditLogTest, ForgedCheckpointAndSwappedKeyAreNamed) {
  Write(20, Options());
  const PublicKey original = *PublicKey::FromFile(dir_ + "/signing-key.pub.pem");
  // Forge: append a checkpoint with a valid frame and chain link but a signature of another message.
  {
    auto log = AuditLog::Open(Options());
    ASSERT_TRUE(log.ok());
    (*log)->Close();
  }
  // A whole new log written with a different key (the attacker rewrote everything and the key).
  const std::string moved = dir_ + ".orig";
  fs::rename(dir_, moved);
  Write(20, Options());
  VerifyReport own = MustVerify();
  EXPECT_FALSE(own.problem);               // consistent with its own (swapped) key...
  VerifyReport r = MustVerify(&original);  // ...but not with the auditor's copy
  ASSERT_TRUE(r.problem);
  EXPECT_THAT(r.problem->what, HasSubstr("the signing key was swapped"));
  fs::remove_all(dir_);
  fs::rename(moved, dir_);

  // Forged signature: re-sign a checkpoint's body with garbage, fix CRC; chain links still hold
  // because the checkpoint is the last record.
  const SegmentFile last = Segments().back();
  std::string data = *ReadWholeFile(last.path);
  const auto frames = Frames(last.path);
  const size_t at = frames.back();
  RecordView rv;
  size_t next = 0;
  ASSERT_TRUE(DecodeFrame(data, at, &rv, &next).ok());
  ASSERT_EQ(rv.type, RecordType::kCheckpoint);
  const size_t sig = data.find("\"sig\":\"", at) + 7;
  data[sig] = data[sig] == 'A' ? 'B' : 'A';
  const uint32_t len = data.size() - at - kFrameHeaderBytes;
  const uint32_t crc = Crc32c(std::string_view(data).substr(at + kFrameHeaderBytes, len));
  for (int i = 0; i < 4; ++i) data[at + 4 + i] = static_cast<char>(crc >> (8 * i));
  Rewrite(last.path, data);
  r = MustVerify(&original);
  ASSERT_TRUE(r.problem);
  EXPECT_EQ(r.problem->offset, at);
  EXPECT_THAT(r.problem->what, HasSubstr("signature is invalid"));
}

TEST_F(AuditLogTest, TornTailIsCutOffAtOpenAndRecorded) {
  Write(12, Options());
  const SegmentFile last = Segments().back();
  std::ofstream(last.path, std::ios::binary | std::ios::app) << std::string("\x40\x00\x00\x00garbage", 11);
  EXPECT_TRUE(MustVerify().problem);
  Write(1, Options());
  VerifyReport r = MustVerify();
  EXPECT_FALSE(r.problem) << r.problem->ToString();
  Filter f;
  f.action = "audit.recovered";
  EXPECT_EQ(QueryNewestFirst(dir_, f, 10)->size(), 1u);
}
// The segment being written is zero-filled ahead of its records (format.h). A copy taken while the
// log is open is what a crash leaves: it verifies, reopens where the records end, cuts a torn
// frame before the zeros, and non-zero bytes after the records' end are named.
TEST_F(AuditLogTest, ZeroFilledTailOfALiveSegment) {
  LogOptions o = Options();
  o.segment_bytes = 1 << 20;
  const std::string copy = dir_ + ".crash";
  {
    auto log = AuditLog::Open(o);
    ASSERT_TRUE(log.ok());
    for (int i = 0; i < 5; ++i) ASSERT_TRUE((*log)->AppendAndWait({"{\"kind\":\"decision\"}"}).ok());
    fs::copy(dir_, copy);
    (*log)->Close();
  }
  // Where the records of a segment end.
  auto records_end = [&](const std::string& path) {
    const std::string bytes = *ReadWholeFile(path);
    RecordView r;
    size_t next = 0;
    EXPECT_TRUE(DecodeFrame(bytes, Frames(path).back(), &r, &next).ok());
    return next;
  };
  const SegmentFile closed = Segments().back();
  EXPECT_EQ(fs::file_size(closed.path), records_end(closed.path));  // closed: no tail
  fs::remove_all(dir_);
  fs::rename(copy, dir_);
  const SegmentFile live = Segments().back();
  const std::string data = *ReadWholeFile(live.path);
  const size_t end = records_end(live.path);
  ASSERT_GT(data.size(), end + kFrameHeaderBytes);  // zero-filled ahead
  EXPECT_TRUE(IsUnusedTail(data, end));
  VerifyReport r = MustVerify();
  EXPECT_FALSE(r.problem) << r.problem->ToString();
  EXPECT_EQ(r.records, 5u);

  {  // Non-zero bytes after the end of the records: named.
    std::string bad = data;
    bad[end + 100] = 'x';
    Rewrite(live.path, bad);
    r = MustVerify();
    ASSERT_TRUE(r.problem);
    EXPECT_EQ(r.problem->offset, end);
    Rewrite(live.path, data);
  }
  {  // A frame torn by the crash before the zeros: cut at Open and recorded; the chain goes on.
    std::string torn = data;
    const std::string partial("\x40\x00\x00\x00garbage", 11);
    torn.replace(end, partial.size(), partial);
    Rewrite(live.path, torn);
    EXPECT_TRUE(MustVerify().problem);
    Write(1, o);
    r = MustVerify();
    EXPECT_FALSE(r.problem) << r.problem->ToString();
    Filter f;
    f.action = "audit.recovered";
    auto found = QueryNewestFirst(dir_, f, 10);
    ASSERT_TRUE(found.ok());
    ASSERT_EQ(found->size(), 1u);
    EXPECT_THAT((*found)[0].json, HasSubstr("\"dropped_bytes\":11"));
  }
}

TEST_F(AuditLogTest, AsyncModeAnswersAtOnceAndFollowerSeesRecords) {
  LogOptions o = Options();
  o.durability = Durability::kAsync;
  auto log = AuditLog::Open(o);
  ASSERT_TRUE(log.ok());
  Follower follower(dir_, 0);
  std::atomic<int> answered{0};
  for (int i = 0; i < 50; ++i) {
    (*log)->Append({"{\"kind\":\"decision\",\"n\":" + std::to_string(i) + "}"}, [&](absl::Status s) {
      EXPECT_TRUE(s.ok());
      ++answered;
    });
  }
  EXPECT_EQ(answered.load(), 50);
  (*log)->Close();
  auto got = follower.Poll();
  ASSERT_TRUE(got.ok());
  EXPECT_EQ((*got)[0].seq, 1u);
  EXPECT_GE(got->size(), 50u);
  EXPECT_FALSE(MustVerify().problem);
}

// Reserve (the MCP gateway's "act first, record right after" in async mode): room is promised only
// in async mode and within async_max_pending, counting reserved entries; a reserved entry lands in
// the chain like any other; a closed log promises nothing.
TEST_F(AuditLogTest, ReserveHoldsRoomInAsyncModeOnly) {
  {
    auto sync = AuditLog::Open(Options());
    ASSERT_TRUE(sync.ok());
    EXPECT_FALSE((*sync)->Reserve());
    (*sync)->Close();
  }
  fs::remove_all(dir_);
  LogOptions o = Options();
  o.durability = Durability::kAsync;
  o.async_max_pending = 3;
  o.async_write_delay = std::chrono::milliseconds(60'000);  // nothing is written before Close
  auto log = AuditLog::Open(o);
  ASSERT_TRUE(log.ok());
  ASSERT_TRUE((*log)->Reserve());
  ASSERT_TRUE((*log)->Reserve());
  bool third = false;
  (*log)->Append({R"({"kind":"decision","n":3})"}, [&](absl::Status s) {
    EXPECT_TRUE(s.ok()) << s;
    third = true;
  });
  EXPECT_TRUE(third);               // room for it: answered at once
  EXPECT_FALSE((*log)->Reserve());  // 2 reserved + 1 queued = async_max_pending
  std::atomic<bool> fourth{false};
  (*log)->Append({R"({"kind":"decision","n":4})"}, [&](absl::Status s) {
    EXPECT_TRUE(s.ok()) << s;
    fourth = true;
  });
  EXPECT_FALSE(fourth.load());  // beyond the bound: answered once written
  (*log)->AppendReserved(R"({"kind":"decision","n":1})");
  (*log)->AppendReserved(R"({"kind":"decision","n":2})");
  (*log)->Close();
  EXPECT_TRUE(fourth.load());
  EXPECT_FALSE((*log)->Reserve());
  EXPECT_EQ((*log)->stats().appended, 4u);
  EXPECT_EQ((*log)->stats().failed, 0u);
  VerifyReport report = MustVerify();
  EXPECT_FALSE(report.problem);
  std::string all;
  for (const SegmentFile& f : Segments()) all += *ReadWholeFile(f.path);
  for (int n = 1; n <= 4; ++n) EXPECT_NE(all.find(absl::StrCat("\"n\":", n)), std::string::npos) << n;
}

// Sync mode with concurrent callers (grouped commits, with the commit window): every caller is
// answered only once its record is in the segment files, and the log verifies afterwards.
TEST_F(AuditLogTest, SyncModeAnswersOnlyRecordsThatAreWritten) {
  LogOptions o = Options();
  o.segment_bytes = 1 << 20;
  o.checkpoint_records = 1000;
  auto log = AuditLog::Open(o);
  ASSERT_TRUE(log.ok());
  auto on_disk = [&] {
    std::string all;
    for (const SegmentFile& f : Segments()) all += *ReadWholeFile(f.path);
    return all;
  };
  constexpr int kThreads = 6;
  constexpr int kEach = 40;
  std::atomic<int> missing{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kEach; ++i) {
        const std::string marker = absl::StrCat("\"t", t, "-", i, "\"");
        std::mutex m;
        std::condition_variable cv;
        bool done = false;
        (*log)->Append({absl::StrCat("{\"kind\":\"decision\",\"marker\":", marker, "}")}, [&](absl::Status s) {
          EXPECT_TRUE(s.ok()) << s;
          if (on_disk().find(marker) == std::string::npos) ++missing;
          std::lock_guard<std::mutex> g(m);
          done = true;
          cv.notify_one();
        });
        std::unique_lock<std::mutex> g(m);
        cv.wait(g, [&] { return done; });
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(missing.load(), 0);
  (*log)->Close();
  EXPECT_EQ((*log)->stats().appended, uint64_t{kThreads * kEach});
  EXPECT_FALSE(MustVerify().problem);
}

}  // namespace
}  // namespace mandate::audit

namespace mandate::audit {
namespace {

// Every page a query can ask for, read through the segment indexes, is what a scan of the whole log
// finds; with the indexes deleted or damaged, the scan is what answers.
class AuditIndexTest : public AuditLogTest {
 protected:
  // Writes `n` records of about 200 bytes (segments of 1 MiB hold several index blocks).
  void WriteMany(int n) {
    LogOptions o = Options();
    o.segment_bytes = 1 << 20;
    o.checkpoint_records = 1000;
    o.durability = Durability::kAsync;
    auto log = AuditLog::Open(o);
    ASSERT_TRUE(log.ok()) << log.status();
    std::vector<std::string> batch;
    for (int i = 0; i < n; ++i) {
      batch.push_back(
          absl::StrCat(R"({"kind":"decision","actor":"User:u)", i % 7, R"(","action":"read","resource":"Repo:r)",
                       i % 50, R"(","decision":")", i % 3 ? "allow" : "deny",
                       R"(","padding":"0123456789012345678901234567890123456789012345678901234567890123456789"})"));
      if (batch.size() == 100) (*log)->Append(std::exchange(batch, {}), nullptr);
      // Spread the record times a little, so that time filters cut through the log.
      if (i % 2000 == 0) std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
    (*log)->Append(std::move(batch), nullptr);
    (*log)->Close();
  }
  // The query, and the seq of each record found.
  std::vector<uint64_t> Seqs(const Filter& f, size_t limit) {
    absl::StatusOr<std::vector<Found>> found = QueryNewestFirst(dir_, f, limit);
    EXPECT_TRUE(found.ok()) << found.status();
    std::vector<uint64_t> out;
    for (const Found& r : *found) out.push_back(r.seq);
    return out;
  }
  std::vector<Filter> Filters() {
    std::vector<Filter> out(1);
    out.emplace_back().resource = "Repo:r7";
    out.emplace_back().actor = "User:u3";
    out.back().decision = "deny";
    out.emplace_back().before_seq = 5000;
    out.emplace_back().after_seq = 11000;
    Filter window;
    absl::StatusOr<std::vector<Found>> all = QueryNewestFirst(dir_, Filter{}, SIZE_MAX);
    window.until_us = (*all)[all->size() / 3].time_us;
    window.since_us = (*all)[2 * all->size() / 3].time_us;
    out.push_back(window);
    window.resource = "Repo:r9";
    out.push_back(window);
    return out;
  }
};

TEST_F(AuditIndexTest, IndexedPagesEqualFullScans) {
  WriteMany(12'000);
  ASSERT_GE(Segments().size(), 2u);
  std::vector<std::vector<uint64_t>> indexed;
  for (const Filter& f : Filters()) {
    for (size_t limit : {1, 50, 100'000}) indexed.push_back(Seqs(f, limit));
  }
  EXPECT_EQ(indexed[0].size(), 1u);
  EXPECT_EQ(indexed[2].size(), MustVerify().records);  // no filter, no limit: everything
  for (const SegmentFile& s : Segments()) {
    auto index = ParseIndex(*ReadWholeFile(dir_ + "/" + IndexName(s.first_seq)), s.first_seq);
    ASSERT_TRUE(index.has_value()) << s.name;
    EXPECT_GE(index->size(), 10u) << s.name;  // 1 MiB in blocks of 64 KiB
  }
  // Damaged indexes: shifted offsets, then garbage, then none at all.
  for (int damage = 0; damage < 3; ++damage) {
    for (const SegmentFile& s : Segments()) {
      const std::string path = dir_ + "/" + IndexName(s.first_seq);
      std::string text = *ReadWholeFile(path);
      if (damage == 0 && text.size() >= 2 * kIndexEntryBytes) text[kIndexEntryBytes + 8] ^= 0x10;
      if (damage == 1) text = "not an index";
      if (damage == 2) {
        fs::remove(path);
        continue;
      }
      Rewrite(path, text);
    }
    size_t i = 0;
    for (const Filter& f : Filters()) {
      for (size_t limit : {1, 50, 100'000}) EXPECT_EQ(Seqs(f, limit), indexed[i++]) << "damage " << damage;
    }
  }
  EXPECT_FALSE(MustVerify().problem);  // the indexes are not part of the chain
}

TEST_F(AuditIndexTest, IndexIsRebuiltWhenATornTailIsCutOff) {
  WriteMany(3'000);
  const SegmentFile last = Segments().back();
  std::ofstream(last.path, std::ios::binary | std::ios::app) << std::string("\x40\x00\x00\x00garbage", 11);
  // An index entry pointing past the data, as a crash between the two writes could leave.
  std::string entry;
  AppendIndexEntry(IndexEntry{100'000, 1 << 30, INT64_MAX}, &entry);
  std::ofstream(dir_ + "/" + IndexName(last.first_seq), std::ios::binary | std::ios::app) << entry;
  Write(1, Options());
  auto index = ParseIndex(*ReadWholeFile(dir_ + "/" + IndexName(last.first_seq)), last.first_seq);
  ASSERT_TRUE(index.has_value());
  EXPECT_LT(index->back().offset, fs::file_size(last.path));
  Filter f;
  f.action = "audit.recovered";
  EXPECT_EQ(Seqs(f, 10).size(), 1u);
  EXPECT_EQ(Seqs(Filter{}, SIZE_MAX).size(), MustVerify().records);
}

}  // namespace
}  // namespace mandate::audit
