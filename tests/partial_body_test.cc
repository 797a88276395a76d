// core/PartialBody and PartialRecord, and the cache's keeping of partial
// bodies across a restart: a checkpointed stream file outlives its run and
// goes to the next miss on its key; a damaged one is discarded with a
// warning; nothing of a body that was not checkpointed is kept.

#include "core/partial_body.h"

#include <unistd.h>

#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>

#include "core/cache.h"
#include "core/stream_file.h"
#include "tests/test_util.h"

namespace fanout {
namespace {

namespace fs = std::filesystem;
using ::fanout::testing::Pattern;
using ::fanout::testing::TempDir;

constexpr std::uint64_t kTotal = 1 << 20;

Reuse Fresh(const ResponseHead&, const HeaderList&) { return Reuse::kFresh; }

class PartialBodyTest : public ::testing::Test {
 protected:
  std::string tmp() const { return dir_.path() + "/tmp"; }

  // What a fetch of `key` leaves when its run dies after writing `written`
  // bytes of a kTotal-byte body, the last record saying `recorded` of them
  // were durable (none if 0). Returns the stream file's path.
  std::string LeaveStream(const std::string& key, std::uint64_t written, std::uint64_t recorded) {
    fs::create_directories(tmp());
    StreamFileOptions options;
    options.dir = tmp();
    std::shared_ptr<StreamFile> stream;
    EXPECT_TRUE(StreamFile::Create(options, &stream).ok());
    const std::string bytes = Pattern(0, written);
    EXPECT_TRUE(stream->Append(bytes.data(), bytes.size()).ok());
    const std::string path = stream->path();
    if (recorded > 0) {
      ResponseHead head;
      head.status = 200;
      head.headers = {{"ETag", "\"v1\""}};
      head.content_length = kTotal;
      PartialRecord record(path, EntryMeta{key, head, "", 0, {}});
      EXPECT_TRUE(stream->Sync().ok());
      EXPECT_TRUE(record.Write(recorded).ok());
      record.Keep();
    }
    stream->KeepFile();  // as a crash would
    return path;
  }

  std::unique_ptr<Cache> OpenCache() {
    Cache::Options options;
    options.dir = dir_.path();
    options.warn = [this](const std::string& m) { warnings_.push_back(m); };
    std::unique_ptr<Cache> cache;
    EXPECT_TRUE(Cache::Open(options, &cache).ok());
    return cache;
  }

  bool AnyWarningHas(const std::string& text) const {
    for (const auto& w : warnings_) {
      if (w.find(text) != std::string::npos) return true;
    }
    return false;
  }

  TempDir dir_;
  std::vector<std::string> warnings_;
};

TEST_F(PartialBodyTest, ACheckpointedBodyGoesToTheNextMissOnItsKeyCutToItsRecord) {
  const std::string path = LeaveStream("http://o/a", 300000, 200000);
  auto cache = OpenCache();
  EXPECT_TRUE(warnings_.empty()) << warnings_.front();
  EXPECT_EQ(cache->partial_count(), 1u);
  // Bytes past the record were never made durable: cut off.
  EXPECT_EQ(fs::file_size(path), 200000u);

  auto other = cache->Acquire("http://o/b", Fresh);
  EXPECT_EQ(other.partial, nullptr);
  auto miss = cache->Acquire("http://o/a", Fresh);
  ASSERT_EQ(miss.lookup, Cache::Lookup::kMiss);
  ASSERT_NE(miss.partial, nullptr);
  EXPECT_EQ(miss.partial->key(), "http://o/a");
  EXPECT_EQ(miss.partial->length(), 200000u);
  EXPECT_EQ(miss.partial->meta().head.content_length, kTotal);
  EXPECT_EQ(miss.partial->meta().head.Header("ETag"), "\"v1\"");
  std::string bytes(200000, '\0');
  for (std::uint64_t at = 0; at < bytes.size();) {
    std::size_t got = 0;
    ASSERT_TRUE(miss.partial->Read(at, bytes.data() + at, bytes.size() - at, &got).ok());
    at += got;
  }
  EXPECT_EQ(bytes, Pattern(0, 200000));
  EXPECT_EQ(cache->partial_count(), 0u) << "taken up once";

  // The files go with the last holder.
  miss.partial.reset();
  EXPECT_FALSE(fs::exists(path));
  EXPECT_FALSE(fs::exists(PartialRecordPath(path)));
}

TEST_F(PartialBodyTest, AFileShorterThanItsRecordIsDiscardedWithAWarning) {
  const std::string path = LeaveStream("http://o/a", 300000, 200000);
  ASSERT_EQ(::truncate(path.c_str(), 199999), 0);
  auto cache = OpenCache();
  EXPECT_EQ(cache->partial_count(), 0u);
  EXPECT_TRUE(AnyWarningHas("discarding partial body")) << ::testing::PrintToString(warnings_);
  EXPECT_TRUE(AnyWarningHas("fewer than the 200000")) << ::testing::PrintToString(warnings_);
  EXPECT_FALSE(fs::exists(path));
  EXPECT_FALSE(fs::exists(PartialRecordPath(path)));
  EXPECT_EQ(cache->Acquire("http://o/a", Fresh).partial, nullptr);
}

TEST_F(PartialBodyTest, DamagedRecordsAndRecordsWithoutTheirFileAreDiscarded) {
  const std::string damaged = LeaveStream("http://o/a", 300000, 200000);
  std::ofstream(PartialRecordPath(damaged), std::ios::trunc) << "{\"version\":2,";
  const std::string orphan = LeaveStream("http://o/b", 300000, 200000);
  ASSERT_TRUE(fs::remove(orphan));
  auto cache = OpenCache();
  EXPECT_EQ(cache->partial_count(), 0u);
  EXPECT_EQ(warnings_.size(), 2u) << ::testing::PrintToString(warnings_);
  EXPECT_TRUE(AnyWarningHas("its body file is missing"));
  EXPECT_TRUE(fs::is_empty(tmp()));
}

TEST_F(PartialBodyTest, AStreamFileNeverCheckpointedIsDeletedWithoutAWarning) {
  const std::string path = LeaveStream("http://o/a", 300000, 0);
  auto cache = OpenCache();
  EXPECT_TRUE(warnings_.empty());
  EXPECT_EQ(cache->partial_count(), 0u);
  EXPECT_FALSE(fs::exists(path));
}

TEST_F(PartialBodyTest, OfTwoPartialsOfOneKeyTheLongerIsKept) {
  const std::string shorter = LeaveStream("http://o/a", 300000, 100000);
  const std::string longer = LeaveStream("http://o/a", 300000, 250000);
  auto cache = OpenCache();
  EXPECT_EQ(cache->partial_count(), 1u);
  EXPECT_FALSE(fs::exists(shorter));
  auto miss = cache->Acquire("http://o/a", Fresh);
  ASSERT_NE(miss.partial, nullptr);
  EXPECT_EQ(miss.partial->path(), longer);
}

TEST_F(PartialBodyTest, PurgeDeletesAPartialBody) {
  const std::string a = LeaveStream("http://o/a", 300000, 200000);
  const std::string b = LeaveStream("http://o/dir/b", 300000, 200000);
  auto cache = OpenCache();
  EXPECT_EQ(cache->partial_count(), 2u);
  EXPECT_TRUE(cache->Purge("http://o/a"));
  EXPECT_FALSE(fs::exists(a));
  EXPECT_EQ(cache->PurgePrefix("http://o/dir/"), 1u);
  EXPECT_FALSE(fs::exists(b));
  EXPECT_EQ(cache->partial_count(), 0u);
}

TEST_F(PartialBodyTest, ARecordIsRemovedWithItsFetchUnlessKept) {
  fs::create_directories(tmp());
  const std::string stream = tmp() + "/stream-0123456789abcdef-000001.part";
  std::ofstream(stream) << Pattern(0, 1000);
  ResponseHead head;
  head.status = 200;
  head.content_length = kTotal;
  {
    PartialRecord record(stream, EntryMeta{"k", head, "", 0, {}});
    EXPECT_FALSE(record.written());
    ASSERT_TRUE(record.Write(1000).ok());
    EXPECT_EQ(record.recorded(), 1000u);
    EntryMeta meta;
    ASSERT_TRUE(ReadEntryMeta(PartialRecordPath(stream), &meta, EntryMetaKind::kPartial).ok());
    EXPECT_EQ(meta.body_length, 1000u);
    EXPECT_EQ(meta.body_file, "stream-0123456789abcdef-000001.part");
    // Never mistaken for a stored entry's metadata.
    EXPECT_FALSE(ReadEntryMeta(PartialRecordPath(stream), &meta).ok());
  }
  EXPECT_FALSE(fs::exists(PartialRecordPath(stream)));
  {
    PartialRecord record(stream, EntryMeta{"k", head, "", 0, {}});
    ASSERT_TRUE(record.Write(1000).ok());
    record.Keep();
  }
  EXPECT_TRUE(fs::exists(PartialRecordPath(stream)));
}

}  // namespace
}  // namespace fanout
