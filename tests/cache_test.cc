// core/Cache: entries on disk across restarts, damaged entries discarded,
// revalidation coalesced, eviction by size, purge. core/EntryMeta: the
// metadata file's format, any bytes round-tripping, damage detected.

#include "core/cache.h"

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <thread>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "core/entry_meta.h"
#include "tests/test_util.h"

namespace fanout {
namespace {

namespace fs = std::filesystem;
using ::fanout::testing::Pattern;
using ::fanout::testing::TempDir;

ResponseHead Head(std::uint64_t length, const std::string& etag = "\"v1\"") {
  ResponseHead h;
  h.status = 200;
  h.received_at = h.requested_at = std::chrono::system_clock::now();
  h.headers = {{"ETag", etag}, {"Cache-Control", "max-age=60"}};
  h.content_length = length;
  return h;
}

Reuse Fresh(const ResponseHead&, const HeaderList&) { return Reuse::kFresh; }
Reuse Stale(const ResponseHead&, const HeaderList&) { return Reuse::kRevalidate; }
Reuse StaleWhileRevalidate(const ResponseHead&, const HeaderList&) {
  return Reuse::kStaleWhileRevalidate;
}

// All of an entry's body, read through a new reader.
std::string ReadAll(const std::shared_ptr<Entry>& entry) {
  auto reader = entry->stream()->OpenReader();
  std::string out;
  char buf[65536];
  for (;;) {
    auto r = reader->Read(buf, sizeof buf, std::chrono::steady_clock::now() + std::chrono::seconds(10));
    if (!r.status.ok()) break;
    out.append(buf, r.bytes);
  }
  return out;
}

std::vector<std::string> FilesUnder(const std::string& dir) {
  std::vector<std::string> out;
  for (const auto& e : fs::recursive_directory_iterator(dir)) {
    if (e.is_regular_file()) out.push_back(e.path().string());
  }
  return out;
}

class CacheTest : public ::testing::Test {
 protected:
  std::unique_ptr<Cache> OpenCache(std::uint64_t max_size = 0) {
    Cache::Options options;
    options.dir = dir_.path();
    options.max_size = max_size;
    options.warn = [this](const std::string& m) { warnings_.push_back(m); };
    std::unique_ptr<Cache> cache;
    EXPECT_TRUE(Cache::Open(options, &cache).ok());
    return cache;
  }

  // A fetch of `bytes` for key, run to completion and kept.
  std::shared_ptr<Entry> Store(Cache& cache, const std::string& key, const std::string& bytes,
                               const std::string& etag = "\"v1\"") {
    auto acquired = cache.Acquire(key, Fresh);
    EXPECT_EQ(acquired.lookup, Cache::Lookup::kMiss);
    Fill(acquired.fetch, bytes, etag);
    EXPECT_TRUE(cache.Complete(acquired.fetch).ok());
    return acquired.fetch;
  }

  static void Fill(const std::shared_ptr<Entry>& entry, const std::string& bytes,
                   const std::string& etag = "\"v1\"") {
    entry->PublishHead(Head(bytes.size(), etag), /*shareable=*/true);
    ASSERT_TRUE(entry->stream()->Append(bytes.data(), bytes.size()).ok());
    ASSERT_TRUE(entry->stream()->Finish().ok());
  }

  std::string BodyFileOf(const std::string& key) {
    EntryMeta meta;
    EXPECT_TRUE(ReadEntryMeta(cache_path(key), &meta).ok());
    return fs::path(cache_path(key)).parent_path().string() + "/" + meta.body_file;
  }
  // Where the key's metadata file lives.
  std::string cache_path(const std::string& key) {
    const std::string h = Sha256Hex(key);
    return dir_.path() + "/entries/" + h.substr(0, 2) + "/" + h + ".meta";
  }

  TempDir dir_;
  std::vector<std::string> warnings_;
};

TEST_F(CacheTest, StoredEntriesSurviveARestartWithTheirHeadAndBytes) {
  const std::string body = Pattern(0, 300000);
  {
    auto cache = OpenCache();
    Store(*cache, "http://o/a", body);
  }
  auto cache = OpenCache();
  EXPECT_EQ(cache->stored_count(), 1u);
  EXPECT_EQ(cache->stored_bytes(), body.size());
  auto hit = cache->Acquire("http://o/a", Fresh);
  ASSERT_EQ(hit.lookup, Cache::Lookup::kHit);
  EXPECT_EQ(hit.entry->head()->Header("ETag"), "\"v1\"");
  EXPECT_EQ(ReadAll(hit.entry), body);
  EXPECT_TRUE(warnings_.empty());
}

// One fanoutd per cache directory: a second cache on it is refused, naming
// the holder's pid, until the first is gone.
TEST_F(CacheTest, ASecondCacheOnTheSameDirectoryIsRefusedUntilTheFirstIsGone) {
  auto first = OpenCache();
  ASSERT_NE(first, nullptr);
  Cache::Options options;
  options.dir = dir_.path();
  std::unique_ptr<Cache> second;
  const Status st = Cache::Open(options, &second);
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.message().find("is in use by another fanoutd (pid " + std::to_string(::getpid()) +
                              ")"),
            std::string::npos)
      << st.message();
  first.reset();
  EXPECT_TRUE(Cache::Open(options, &second).ok()) << "released with the first";
}

TEST_F(CacheTest, AnEntryFoundDamagedWhileServedIsDroppedWithAWarning) {
  auto cache = OpenCache();
  auto stored = Store(*cache, "http://o/cut", Pattern(0, 1000));
  auto in_flight = cache->Acquire("http://o/flight", Fresh).fetch;
  ASSERT_NE(in_flight, nullptr);
  cache->DropDamaged(in_flight, "short");
  EXPECT_EQ(cache->Acquire("http://o/flight", Fresh).lookup, Cache::Lookup::kJoin)
      << "a fetch in flight is its fetch's to end";
  EXPECT_TRUE(warnings_.empty());
  cache->DropDamaged(stored, "1000 bytes recorded, 10 on disk");
  ASSERT_EQ(warnings_.size(), 1u);
  EXPECT_NE(warnings_[0].find("http://o/cut"), std::string::npos) << warnings_[0];
  EXPECT_NE(warnings_[0].find("10 on disk"), std::string::npos) << warnings_[0];
  EXPECT_EQ(cache->Acquire("http://o/cut", Fresh).lookup, Cache::Lookup::kMiss);
  EXPECT_FALSE(fs::exists(cache_path("http://o/cut")));
}

TEST_F(CacheTest, DamagedEntriesAndLeftoversAreDiscardedAtOpen) {
  {
    auto cache = OpenCache();
    Store(*cache, "http://o/good", Pattern(0, 1000));
    Store(*cache, "http://o/truncated", Pattern(0, 1000));
    Store(*cache, "http://o/garbled", Pattern(0, 1000));
    Store(*cache, "http://o/no-body", Pattern(0, 1000));
  }
  ::truncate(BodyFileOf("http://o/truncated").c_str(), 500);
  std::ofstream(cache_path("http://o/garbled")) << "{\"version\": 1, \"key\": ";
  fs::remove(BodyFileOf("http://o/no-body"));
  const std::string shard = fs::path(cache_path("http://o/good")).parent_path();
  const std::string hash = Sha256Hex("http://o/orphan");
  std::ofstream(shard + "/" + hash + ".0123456789abcdef-000007.body") << "orphan";  // unnamed
  std::ofstream(shard + "/" + hash + ".meta.tmp") << "half";  // interrupted write
  std::ofstream(dir_.path() + "/tmp/stream-0123456789abcdef-000001.part") << "partial";

  auto cache = OpenCache();
  EXPECT_EQ(cache->stored_count(), 1u);
  EXPECT_EQ(cache->Acquire("http://o/good", Fresh).lookup, Cache::Lookup::kHit);
  EXPECT_EQ(warnings_.size(), 3u);  // truncated, garbled, no body: each named
  // Only the good entry's two files remain (and the directory's tag).
  EXPECT_EQ(FilesUnder(dir_.path() + "/entries").size(), 2u);
  EXPECT_EQ(FilesUnder(dir_.path() + "/tmp").size(), 0u);
  for (const auto& w : warnings_) EXPECT_NE(w.find(".meta"), std::string::npos) << w;
}

// A mistyped cache_dir, or someone's file dropped into the cache, must
// never cost anyone a file: start-up deletes only what fanoutd made.
TEST_F(CacheTest, FilesFanoutdDidNotMakeAreNeverDeleted) {
  {
    auto cache = OpenCache();
    Store(*cache, "http://o/good", Pattern(0, 1000));
  }
  const std::string shard = fs::path(cache_path("http://o/good")).parent_path();
  const std::vector<std::string> foreign = {
      dir_.path() + "/tmp/notes.txt",       dir_.path() + "/tmp/stream-1.part",
      dir_.path() + "/entries/README",      shard + "/photo.jpg",
      shard + "/deadbeef.meta",             shard + "/deadbeef.123.body",
      dir_.path() + "/entries/zz/keep.txt", dir_.path() + "/entries/mine/a.meta",
  };
  for (const auto& path : foreign) {
    fs::create_directories(fs::path(path).parent_path());
    std::ofstream(path) << "someone's";
  }
  auto cache = OpenCache();
  EXPECT_EQ(cache->Acquire("http://o/good", Fresh).lookup, Cache::Lookup::kHit);
  for (const auto& path : foreign) EXPECT_TRUE(fs::exists(path)) << path << " was deleted";
  bool warned = false;
  for (const auto& w : warnings_) warned = warned || w.find("photo.jpg") != std::string::npos;
  EXPECT_TRUE(warned) << "a foreign file is named in a warning";
}

TEST_F(CacheTest, ANonEmptyDirectoryThatIsNotACacheIsRefused) {
  std::ofstream(dir_.path() + "/thesis.tex") << "years of work";
  Cache::Options options;
  options.dir = dir_.path();
  std::unique_ptr<Cache> cache;
  const Status st = Cache::Open(options, &cache);
  EXPECT_FALSE(st.ok());
  EXPECT_NE(st.message().find("not a fanout cache"), std::string::npos) << st.message();
  EXPECT_NE(st.message().find("thesis.tex"), std::string::npos) << st.message();
  EXPECT_TRUE(fs::exists(dir_.path() + "/thesis.tex"));
  EXPECT_EQ(FilesUnder(dir_.path()).size(), 1u) << "nothing created either";
}

TEST_F(CacheTest, AnotherProgramsTaggedCacheIsRefused) {
  std::ofstream(dir_.path() + "/CACHEDIR.TAG")
      << "Signature: 8a477f597d28d172789f06886806bc55\n# made by ccache\n";
  Cache::Options options;
  options.dir = dir_.path();
  std::unique_ptr<Cache> cache;
  EXPECT_FALSE(Cache::Open(options, &cache).ok());
}

TEST_F(CacheTest, ANewOrEmptyDirectoryIsTaggedAndAnEarlierVersionsCacheAdopted) {
  auto cache = OpenCache();
  ASSERT_NE(cache, nullptr);
  const std::string tag = dir_.path() + "/CACHEDIR.TAG";
  ASSERT_TRUE(fs::exists(tag));
  std::ifstream in(tag);
  std::string first_line;
  std::getline(in, first_line);
  EXPECT_EQ(first_line, "Signature: 8a477f597d28d172789f06886806bc55");
  Store(*cache, "http://o/kept", Pattern(0, 100));
  cache.reset();
  // A cache written before directories were tagged: tmp/ and entries/ only.
  fs::remove(tag);
  cache = OpenCache();
  ASSERT_NE(cache, nullptr);
  EXPECT_EQ(cache->Acquire("http://o/kept", Fresh).lookup, Cache::Lookup::kHit);
  EXPECT_TRUE(fs::exists(tag));
}

TEST_F(CacheTest, AFetchInFlightIsNeverAnEntryAfterARestart) {
  auto cache = OpenCache();
  auto miss = cache->Acquire("http://o/partial", Fresh);
  miss.fetch->PublishHead(Head(1000), true);
  ASSERT_TRUE(miss.fetch->stream()->Append(Pattern(0, 500).data(), 500).ok());
  ASSERT_FALSE(FilesUnder(dir_.path() + "/tmp").empty());
  // The process dies here; the next start sees what is on disk: a copy of
  // the directory as it is now (the running cache keeps its lock on this one).
  TempDir after_crash;
  fs::copy(dir_.path(), after_crash.path(), fs::copy_options::recursive);
  Cache::Options options;
  options.dir = after_crash.path();
  std::unique_ptr<Cache> again;
  ASSERT_TRUE(Cache::Open(options, &again).ok());
  EXPECT_EQ(again->stored_count(), 0u);
  EXPECT_TRUE(FilesUnder(after_crash.path() + "/tmp").empty()) << "its stream file was deleted";
  EXPECT_EQ(again->Acquire("http://o/partial", Fresh).lookup, Cache::Lookup::kMiss);
}

// A fetch that failed before its head, not yet dropped by its fetcher:
// a request arriving now fetches anew instead of getting the old error.
TEST_F(CacheTest, AFetchThatFailedBeforeItsHeadIsNotJoined) {
  auto cache = OpenCache();
  auto miss = cache->Acquire("http://o/down", Fresh);
  ASSERT_EQ(miss.lookup, Cache::Lookup::kMiss);
  EXPECT_EQ(cache->Acquire("http://o/down", Fresh).lookup, Cache::Lookup::kJoin);
  miss.fetch->FailBeforeHead(Entry::UpstreamError::kUnreachable, "connection refused");
  auto again = cache->Acquire("http://o/down", Fresh);
  EXPECT_EQ(again.lookup, Cache::Lookup::kMiss);
  ASSERT_NE(again.fetch, nullptr);
  EXPECT_NE(again.fetch, miss.fetch);
  cache->Drop(miss.fetch);  // the old fetcher, late: the new fetch stays
  EXPECT_EQ(cache->Acquire("http://o/down", Fresh).lookup, Cache::Lookup::kJoin);
}

// Collapsed requests: before the head is known every request joins; once
// it is known, only requests it is fresh for reuse the fetch (joined while
// it runs, a hit once complete); the others go upstream on their own.
TEST_F(CacheTest, AFetchWithAKnownHeadIsReusedOnlyByRequestsItIsFreshFor) {
  auto cache = OpenCache();
  auto miss = cache->Acquire("http://o/f", Fresh);
  ASSERT_EQ(miss.lookup, Cache::Lookup::kMiss);
  EXPECT_EQ(cache->Acquire("http://o/f", Stale).lookup, Cache::Lookup::kJoin)
      << "no head yet: collapsed into the one fetch, whatever the request asks";
  miss.fetch->PublishHead(Head(10), /*shareable=*/true);
  const auto joined = cache->Acquire("http://o/f", Fresh);
  EXPECT_EQ(joined.lookup, Cache::Lookup::kJoin);
  EXPECT_EQ(joined.entry, miss.fetch);
  const auto alone = cache->Acquire("http://o/f", Stale);
  EXPECT_EQ(alone.lookup, Cache::Lookup::kNotFresh);
  EXPECT_EQ(alone.entry, nullptr);
  EXPECT_EQ(alone.fetch, nullptr) << "the fetch in flight is not replaced";
  EXPECT_EQ(cache->Acquire("http://o/f", Stale, /*may_fetch=*/false).lookup, Cache::Lookup::kMiss)
      << "only-if-cached: nothing usable";
  const std::string body = Pattern(0, 10);
  ASSERT_TRUE(miss.fetch->stream()->Append(body.data(), body.size()).ok());
  ASSERT_TRUE(miss.fetch->stream()->Finish().ok());
  miss.fetch->MarkComplete();
  EXPECT_EQ(cache->Acquire("http://o/f", Fresh).lookup, Cache::Lookup::kHit);
  EXPECT_EQ(cache->Acquire("http://o/f", Stale).lookup, Cache::Lookup::kNotFresh)
      << "complete, not yet durable, and still not fresh for this request";
}

TEST_F(CacheTest, AStaleEntryIsRevalidatedByOneFetchAndA304KeepsItsBody) {
  auto cache = OpenCache();
  const std::string body = Pattern(7, 5000);
  Store(*cache, "http://o/s", body);
  const std::string body_file = BodyFileOf("http://o/s");

  auto first = cache->Acquire("http://o/s", Stale);
  ASSERT_EQ(first.lookup, Cache::Lookup::kMiss);
  ASSERT_TRUE(first.stale && first.fetch);
  auto second = cache->Acquire("http://o/s", Stale);
  EXPECT_EQ(second.lookup, Cache::Lookup::kJoin);
  EXPECT_EQ(second.entry, first.fetch);
  EXPECT_FALSE(second.fetch) << "one revalidation only";

  // The upstream says 304.
  ResponseHead refreshed = *first.stale->head();
  refreshed.headers = {{"ETag", "\"v1\""}, {"Cache-Control", "max-age=120"}};
  first.fetch->AdoptBody(first.stale->stream());
  first.fetch->PublishHead(refreshed, true);
  ASSERT_TRUE(cache->Refresh(first.fetch, first.stale).ok());

  EXPECT_EQ(ReadAll(second.entry), body);
  auto hit = cache->Acquire("http://o/s", Fresh);
  ASSERT_EQ(hit.lookup, Cache::Lookup::kHit);
  EXPECT_EQ(hit.entry->head()->Header("Cache-Control"), "max-age=120");
  EXPECT_EQ(BodyFileOf("http://o/s"), body_file) << "no new body";
  EXPECT_EQ(FilesUnder(dir_.path() + "/entries").size(), 2u);
  // And so it is after a restart.
  cache.reset();
  auto reopened = OpenCache();
  auto after = reopened->Acquire("http://o/s", Fresh);
  EXPECT_EQ(after.entry->head()->Header("Cache-Control"), "max-age=120");
  EXPECT_EQ(ReadAll(after.entry), body);
}

TEST_F(CacheTest, A200OnRevalidationReplacesTheBodyWhileOldReadersFinish) {
  auto cache = OpenCache();
  const std::string old_body = Pattern(1, 200000), new_body = Pattern(2, 100000);
  auto old_entry = Store(*cache, "http://o/r", old_body);
  const std::string old_file = BodyFileOf("http://o/r");
  auto old_reader = old_entry->stream()->OpenReader();

  auto reval = cache->Acquire("http://o/r", Stale);
  Fill(reval.fetch, new_body, "\"v2\"");
  ASSERT_TRUE(cache->Complete(reval.fetch).ok());

  EXPECT_FALSE(fs::exists(old_file)) << "the replaced body leaves the disk";
  std::string got(old_body.size(), '\0');
  auto r = old_reader->ReadAt(0, got.data(), got.size());
  EXPECT_TRUE(r.status.ok());
  EXPECT_EQ(got, old_body) << "a reader of the old body reads it to its end";
  auto hit = cache->Acquire("http://o/r", Fresh);
  EXPECT_EQ(ReadAll(hit.entry), new_body);
  EXPECT_EQ(cache->stored_bytes(), new_body.size());
}

TEST_F(CacheTest, StaleWhileRevalidateServesTheEntryAndStartsOneFetch) {
  auto cache = OpenCache();
  Store(*cache, "http://o/w", Pattern(0, 100));
  auto a = cache->Acquire("http://o/w", StaleWhileRevalidate);
  EXPECT_EQ(a.lookup, Cache::Lookup::kHit);
  ASSERT_TRUE(a.fetch);
  EXPECT_EQ(a.stale, a.entry);
  auto b = cache->Acquire("http://o/w", StaleWhileRevalidate);
  EXPECT_EQ(b.lookup, Cache::Lookup::kHit);
  EXPECT_FALSE(b.fetch) << "the background revalidation is already running";
}

TEST_F(CacheTest, OnlyIfCachedStartsNothing) {
  auto cache = OpenCache();
  auto r = cache->Acquire("http://o/none", Fresh, /*may_fetch=*/false);
  EXPECT_EQ(r.status.code(), Status::Code::kNotFound);
  EXPECT_EQ(r.entry, nullptr);
  EXPECT_EQ(cache->in_flight_count(), 0u);
  Store(*cache, "http://o/some", Pattern(0, 10));
  EXPECT_EQ(cache->Acquire("http://o/some", Fresh, false).lookup, Cache::Lookup::kHit);
  EXPECT_EQ(cache->Acquire("http://o/some", Stale, false).status.code(),
            Status::Code::kNotFound);
}

TEST_F(CacheTest, EvictionRemovesLeastRecentlyUsedAndOpenReadersFinish) {
  auto cache = OpenCache(/*max_size=*/350000);
  const std::string body = Pattern(3, 100000);
  auto e1 = Store(*cache, "http://o/1", body);
  Store(*cache, "http://o/2", body);
  Store(*cache, "http://o/3", body);
  auto reader = e1->stream()->OpenReader();
  // 2 is now the least recently used: 1 was just hit.
  ASSERT_EQ(cache->Acquire("http://o/1", Fresh).lookup, Cache::Lookup::kHit);
  Store(*cache, "http://o/4", body);  // 400,000 > 350,000: down to <= 315,000
  EXPECT_EQ(cache->stored_bytes(), 300000u);
  EXPECT_EQ(cache->Acquire("http://o/2", Fresh).lookup, Cache::Lookup::kMiss);
  EXPECT_EQ(cache->Acquire("http://o/1", Fresh).lookup, Cache::Lookup::kHit);
  EXPECT_EQ(cache->Acquire("http://o/4", Fresh).lookup, Cache::Lookup::kHit);
  Store(*cache, "http://o/5", body);  // order now 5, 4, 1, 3: 3 goes
  EXPECT_EQ(cache->Acquire("http://o/3", Fresh).lookup, Cache::Lookup::kMiss);
  std::string got(body.size(), '\0');
  EXPECT_TRUE(reader->ReadAt(0, got.data(), got.size()).status.ok());
  EXPECT_EQ(got, body);
}

TEST_F(CacheTest, PurgeDuringAFetchLetsItsReadersFinishAndKeepsNothing) {
  auto cache = OpenCache();
  auto miss = cache->Acquire("http://o/p", Fresh);
  auto reader = miss.fetch->stream()->OpenReader();
  EXPECT_TRUE(cache->Purge("http://o/p"));
  EXPECT_EQ(cache->Acquire("http://o/p", Fresh).lookup, Cache::Lookup::kMiss)
      << "a request after the purge starts afresh";
  Fill(miss.fetch, Pattern(0, 5000));
  EXPECT_EQ(cache->Complete(miss.fetch).code(), Status::Code::kNotFound);
  std::string got(5000, '\0');
  EXPECT_TRUE(reader->ReadAt(0, got.data(), got.size()).status.ok());
  EXPECT_EQ(got, Pattern(0, 5000));
  EXPECT_TRUE(FilesUnder(dir_.path() + "/entries").empty());
}

TEST_F(CacheTest, FetchesInFlightAreListedWithTheirFrontierAndJoins) {
  auto cache = OpenCache();
  auto miss = cache->Acquire("http://o/f", Fresh);
  ASSERT_EQ(miss.lookup, Cache::Lookup::kMiss);
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(cache->Acquire("http://o/f", Fresh).lookup, Cache::Lookup::kJoin);
  }
  auto fetches = cache->ListFetches();
  ASSERT_EQ(fetches.size(), 1u);
  EXPECT_EQ(fetches[0].key, "http://o/f");
  EXPECT_EQ(fetches[0].joins, 3u);
  EXPECT_FALSE(fetches[0].has_head);
  EXPECT_EQ(fetches[0].written, 0u);
  ASSERT_TRUE(miss.fetch->stream()->SetExpectedLength(5000).ok());
  miss.fetch->PublishHead(Head(5000), /*shareable=*/true);
  ASSERT_TRUE(miss.fetch->stream()->Append(Pattern(0, 1234).data(), 1234).ok());
  fetches = cache->ListFetches();
  ASSERT_EQ(fetches.size(), 1u);
  EXPECT_TRUE(fetches[0].has_head);
  EXPECT_EQ(fetches[0].written, 1234u);
  EXPECT_EQ(fetches[0].length, std::optional<std::uint64_t>(5000));
  ASSERT_TRUE(miss.fetch->stream()->Append(Pattern(1234, 5000 - 1234).data(), 5000 - 1234).ok());
  ASSERT_TRUE(miss.fetch->stream()->Finish().ok());
  ASSERT_TRUE(cache->Complete(miss.fetch).ok());
  EXPECT_TRUE(cache->ListFetches().empty()) << "a kept fetch is a stored entry, not in flight";
  EXPECT_EQ(cache->Acquire("http://o/f", Fresh).lookup, Cache::Lookup::kHit);
  EXPECT_EQ(miss.fetch->joins(), 3u) << "hits are not joins";
}

// Open descriptors of this process.
std::size_t OpenFds() {
  std::size_t n = 0;
  for ([[maybe_unused]] const auto& e : fs::directory_iterator("/proc/self/fd")) ++n;
  return n;
}

TEST_F(CacheTest, StoredEntriesHoldNoDescriptorsWhileNobodyReadsThem) {
  auto cache = OpenCache();
  const std::size_t before = OpenFds();
  for (int i = 0; i < 1000; ++i) Store(*cache, "http://o/fd" + std::to_string(i), Pattern(i, 100));
  for (int i = 0; i < 1000; ++i) {
    auto hit = cache->Acquire("http://o/fd" + std::to_string(i), Fresh);
    ASSERT_EQ(hit.lookup, Cache::Lookup::kHit);
    EXPECT_EQ(ReadAll(hit.entry), Pattern(i, 100));
  }
  // A few hundred recently used ones stay open; not all 1,000.
  EXPECT_LT(OpenFds(), before + 300) << "1,000 stored entries must not keep 1,000 files open";
  // One being read stays open, and is the same entry for the next request.
  {
    auto held = cache->Acquire("http://o/fd7", Fresh).entry;
    EXPECT_EQ(cache->Acquire("http://o/fd7", Fresh).entry, held);
  }
  // Purged entries are let go at once (their space must be freed).
  EXPECT_EQ(cache->PurgeAll(), 1000u);
  EXPECT_LT(OpenFds(), before + 10);
}

TEST_F(CacheTest, PurgeAllRemovesEveryEntryFromIndexAndDisk) {
  auto cache = OpenCache();
  for (int i = 0; i < 5; ++i) Store(*cache, "http://o/" + std::to_string(i), Pattern(i, 100));
  EXPECT_EQ(cache->PurgeAll(), 5u);
  EXPECT_EQ(cache->stored_count(), 0u);
  EXPECT_TRUE(FilesUnder(dir_.path() + "/entries").empty());
}

TEST_F(CacheTest, AnEntryWhoseKeyAndHeadersAreNotUtf8SurvivesARestart) {
  // A request path with byte 0xFF and a Latin-1 file name: both reach the
  // metadata as they came from the network.
  const std::string key = "http://o/a\xff.bin";
  const std::string disposition = "attachment; filename=\"caf\xe9.txt\"";
  {
    auto cache = OpenCache();
    auto miss = cache->Acquire(key, Fresh);
    ResponseHead head = Head(3);
    head.headers.emplace_back("Content-Disposition", disposition);
    miss.fetch->PublishHead(head, /*shareable=*/true);
    ASSERT_TRUE(miss.fetch->stream()->Append("abc", 3).ok());
    ASSERT_TRUE(miss.fetch->stream()->Finish().ok());
    ASSERT_TRUE(cache->Complete(miss.fetch).ok());
  }
  auto cache = OpenCache();
  auto hit = cache->Acquire(key, Fresh);
  ASSERT_EQ(hit.lookup, Cache::Lookup::kHit);
  EXPECT_EQ(hit.entry->head()->Header("Content-Disposition"), disposition);
  EXPECT_EQ(ReadAll(hit.entry), "abc");
  EXPECT_TRUE(warnings_.empty());
}

// ---- EntryMeta: the metadata file format ----

EntryMeta SampleMeta() {
  EntryMeta m;
  m.key = "http://o/a";
  m.head.status = 200;
  m.head.headers = {{"ETag", "\"v1\""}, {"Cache-Control", "max-age=60"}};
  m.head.content_length = 5;
  m.head.requested_at = std::chrono::system_clock::time_point(std::chrono::milliseconds(1000));
  m.head.received_at = std::chrono::system_clock::time_point(std::chrono::milliseconds(2500));
  m.head.upstream_age = 7;
  m.body_file = "abc.1.body";
  m.body_length = 5;
  m.vary = {{"accept-encoding", "gzip"}};
  return m;
}

void ExpectSameMeta(const EntryMeta& a, const EntryMeta& b) {
  EXPECT_EQ(a.key, b.key);
  EXPECT_EQ(a.head.status, b.head.status);
  EXPECT_EQ(a.head.headers, b.head.headers);
  EXPECT_EQ(a.head.content_length, b.head.content_length);
  EXPECT_EQ(a.head.requested_at, b.head.requested_at);
  EXPECT_EQ(a.head.received_at, b.head.received_at);
  EXPECT_EQ(a.head.upstream_age, b.head.upstream_age);
  EXPECT_EQ(a.body_file, b.body_file);
  EXPECT_EQ(a.body_length, b.body_length);
  EXPECT_EQ(a.vary, b.vary);
}

TEST(EntryMetaTest, EveryByteValueRoundTripsInKeyHeadersVaryAndBodyFile) {
  std::string all;
  for (int b = 0; b < 256; ++b) all.push_back(static_cast<char>(b));
  EntryMeta m = SampleMeta();
  m.key = "http://o/" + all;
  m.head.headers.emplace_back(all, all);
  m.head.headers.emplace_back("Content-Disposition", "attachment; filename=\"caf\xe9.txt\"");
  m.vary.emplace_back("x-" + all, all + all);
  m.body_file = all.substr(0, '/') + all.substr('/' + 1);  // any bytes but '/'
  // Byte by byte too, so each value stands alone at the end of a string.
  for (int b = 0; b < 256; ++b) m.head.headers.emplace_back("X-Byte", std::string(1, b));

  const std::string text = EncodeEntryMeta(m);
  EXPECT_TRUE(nlohmann::json::accept(text));  // valid JSON, so valid UTF-8
  EntryMeta back;
  const Status st = DecodeEntryMeta(text, "mem", &back);
  ASSERT_TRUE(st.ok()) << st.ToString();
  ExpectSameMeta(back, m);
}

TEST(EntryMetaTest, AsciiStaysReadableInTheFile) {
  const std::string text = EncodeEntryMeta(SampleMeta());
  EXPECT_NE(text.find("\"version\":2"), std::string::npos) << text;
  EXPECT_NE(text.find("\"key\":\"http://o/a\""), std::string::npos) << text;
  EXPECT_NE(text.find("[\"ETag\",\"\\\"v1\\\"\"]"), std::string::npos) << text;
}

TEST(EntryMetaTest, WrittenFilesReadBackThroughTheFileSystem) {
  TempDir dir;
  EntryMeta m = SampleMeta();
  m.key = "http://o/\xff\xfe";
  ASSERT_TRUE(WriteEntryMeta(dir.path() + "/x.meta", m).ok());
  EntryMeta back;
  ASSERT_TRUE(ReadEntryMeta(dir.path() + "/x.meta", &back).ok());
  ExpectSameMeta(back, m);
  EXPECT_EQ(ReadEntryMeta(dir.path() + "/missing.meta", &back).code(),
            Status::Code::kNotFound);
}

TEST(EntryMetaTest, AVersion1FileStillLoadsWithItsStringsAsUtf8) {
  // As the version 1 writer left it: strings are UTF-8 text as is, so "é"
  // is the two bytes C3 A9 (in version 2 it would be the byte E9).
  const std::string v1 =
      R"({"body_file":"abc.1.body","body_length":5,"content_length":5,)"
      R"("headers":[["ETag","\"v1\""],["Content-Disposition","caf\u00e9.txt"]],)"
      R"("key":"http://o/caf\u00e9","received_at_ms":2500,"requested_at_ms":1000,)"
      R"("status":200,"upstream_age":7,"vary":[["accept-encoding","gzip"]],"version":1})"
      "\n";
  EntryMeta m;
  const Status st = DecodeEntryMeta(v1, "v1.meta", &m);
  ASSERT_TRUE(st.ok()) << st.ToString();
  EXPECT_EQ(m.key, "http://o/caf\xc3\xa9");
  EXPECT_EQ(m.head.Header("Content-Disposition"), "caf\xc3\xa9.txt");
  EXPECT_EQ(m.head.content_length, 5u);
  EXPECT_EQ(m.head.received_at,
            std::chrono::system_clock::time_point(std::chrono::milliseconds(2500)));
  EXPECT_EQ(m.vary, (HeaderList{{"accept-encoding", "gzip"}}));
  // Written again, it is version 2 and reads back the same.
  EntryMeta again;
  ASSERT_TRUE(DecodeEntryMeta(EncodeEntryMeta(m), "v2", &again).ok());
  ExpectSameMeta(again, m);
}

// SampleMeta's file with one field replaced (or removed, for a discarded
// value), as JSON text.
std::string SampleWith(const std::string& field, const nlohmann::json& value) {
  auto j = nlohmann::json::parse(EncodeEntryMeta(SampleMeta()));
  if (value.is_discarded()) {
    j.erase(field);
  } else {
    j[field] = value;
  }
  return j.dump();
}

TEST(EntryMetaTest, GarbageIsCorruptionNeverAnException) {
  using nlohmann::json;
  const std::string deep_array = std::string(100000, '[') + std::string(100000, ']');
  const std::string deep_object = [] {
    std::string s;
    for (int i = 0; i < 50000; ++i) s += "{\"a\":";
    return s + "1" + std::string(50000, '}');
  }();
  const std::vector<std::string> bad = {
      "", "{", "[]", "null", "42", "\"text\"", "{}", "\xff\xfe", deep_array, deep_object,
      EncodeEntryMeta(SampleMeta()) + "x",            // trailing garbage
      EncodeEntryMeta(SampleMeta()).substr(0, 60),    // cut short
      SampleWith("version", 3), SampleWith("version", 0), SampleWith("version", "2"),
      SampleWith("version", 2.0), SampleWith("version", -1),
      SampleWith("version", json::parse("1e400", nullptr, false)),
      SampleWith("key", json::value_t::discarded), SampleWith("key", ""),
      SampleWith("key", 42), SampleWith("key", "\xc4\x80"),  // U+0100: no byte
      SampleWith("key", json::array({"a"})),
      SampleWith("status", 199), SampleWith("status", 1000), SampleWith("status", -200),
      SampleWith("status", 200.5), SampleWith("status", 4294967496u),  // 2^32 + 200
      SampleWith("status", json::parse("18446744073709551816")),       // > 2^64, a float
      SampleWith("status", "200"), SampleWith("status", nullptr),
      SampleWith("body_length", -1), SampleWith("body_length", 1e30),
      SampleWith("content_length", 6),               // differs from body_length
      SampleWith("requested_at_ms", -1), SampleWith("requested_at_ms", 1.5),
      SampleWith("received_at_ms", 9223372036855),   // past system_clock's range
      SampleWith("received_at_ms", std::numeric_limits<std::uint64_t>::max()),
      SampleWith("upstream_age", -5), SampleWith("upstream_age", true),
      SampleWith("headers", json::object({{"a", "b"}})),
      SampleWith("headers", json::array({json::array({"a"})})),
      SampleWith("headers", json::array({json::array({"a", "b", "c"})})),
      SampleWith("headers", json::array({json::array({1, 2})})),
      SampleWith("headers", json::array({"a: b"})),
      SampleWith("vary", nullptr),
      SampleWith("body_file", "../x.body"), SampleWith("body_file", ".."),
      SampleWith("body_file", ""), SampleWith("unknown", 1),
  };
  for (std::size_t i = 0; i < bad.size(); ++i) {
    EntryMeta m = SampleMeta();
    m.key = "untouched";
    Status st;
    ASSERT_NO_THROW(st = DecodeEntryMeta(bad[i], "bad.meta", &m)) << i;
    EXPECT_EQ(st.code(), Status::Code::kCorruption) << i << ": " << bad[i].substr(0, 200);
    EXPECT_EQ(st.message().rfind("bad.meta: ", 0), 0u) << st.message();
    EXPECT_EQ(m.key, "untouched") << i;
  }
  // And the sample itself is fine, so each case above fails for its change.
  EntryMeta m;
  EXPECT_TRUE(DecodeEntryMeta(SampleWith("unused", json::value_t::discarded), "ok", &m).ok());
}

}  // namespace
}  // namespace fanout
