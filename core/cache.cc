#include "core/cache.h"

#include <fcntl.h>
#include <openssl/sha.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <iterator>
#include <thread>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <unordered_set>

#include "core/cache_dir_lock.h"
#include "core/durable_file.h"

namespace fanout {

namespace fs = std::filesystem;

namespace {

bool EndsWith(const std::string& s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// "<h>.<unique>.body" for a stream file "<dir>/stream-<unique>.part".
std::string BodyFileName(const std::string& hash, const std::string& stream_path) {
  std::string unique = stream_path.substr(stream_path.rfind('/') + 1);
  if (unique.rfind("stream-", 0) == 0) unique.erase(0, 7);
  if (EndsWith(unique, ".part")) unique.resize(unique.size() - 5);
  return hash + "." + unique + ".body";
}

}  // namespace

std::string Sha256Hex(const std::string& text) {
  unsigned char digest[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(text.data()), text.size(), digest);
  static const char* kHex = "0123456789abcdef";
  std::string out(2 * SHA256_DIGEST_LENGTH, '0');
  for (int i = 0; i < SHA256_DIGEST_LENGTH; ++i) {
    out[2 * i] = kHex[digest[i] >> 4];
    out[2 * i + 1] = kHex[digest[i] & 15];
  }
  return out;
}

Cache::Cache(const Options& options)
    : options_(options),
      tmp_dir_(options.dir + "/tmp"),
      entries_dir_(options.dir + "/entries") {}

namespace {

// The cache directory's tag (the Cache Directory Tagging Specification,
// so backup tools skip it); fanoutd deletes files only in a directory that
// carries its tag.
constexpr const char* kTagFile = "CACHEDIR.TAG";
constexpr std::string_view kTagSignature = "Signature: 8a477f597d28d172789f06886806bc55";
constexpr std::string_view kTagOwner = "fanoutd";
constexpr const char* kTagText =
    "Signature: 8a477f597d28d172789f06886806bc55\n"
    "# This file is a cache directory tag created by fanoutd.\n"
    "# This directory is fanout's cache: fanoutd manages (and deletes) the\n"
    "# files it made under tmp/ and entries/. For information about cache\n"
    "# directory tags see https://bford.info/cachedir/\n";

bool IsHexName(std::string_view s, std::size_t length) {
  return s.size() == length && s.find_first_not_of("0123456789abcdef") == std::string_view::npos;
}

// "<64 hex>.meta", its "<64 hex>.meta.tmp" while written, and
// "<64 hex>.<16 hex>-<counter>.body" (BodyFileName): what fanoutd puts in
// a shard of entries/.
enum class EntryFile { kMeta, kMetaTemp, kBody, kForeign };
EntryFile ClassifyEntryFile(std::string_view name) {
  if (name.size() < 65 || !IsHexName(name.substr(0, 64), 64) || name[64] != '.') {
    return EntryFile::kForeign;
  }
  const std::string_view rest = name.substr(65);
  if (rest == "meta") return EntryFile::kMeta;
  if (rest == "meta.tmp") return EntryFile::kMetaTemp;
  if (EndsWith(std::string(rest), ".body") &&
      StreamFile::IsStreamFileName("stream-" + std::string(rest.substr(0, rest.size() - 5)) +
                                   ".part")) {
    return EntryFile::kBody;
  }
  return EntryFile::kForeign;
}

// Makes sure `dir` is fanout's to manage: it carries fanout's tag, or is
// new or empty (then tagged), or holds only tmp/ and entries/ (a cache of
// an earlier version, then tagged). Anything else is refused: a mistyped
// cache_dir must never cost someone their files.
Status ClaimCacheDirectory(const std::string& dir) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return Status::IOError("cannot create cache_dir " + dir + ": " + ec.message());
  const std::string tag_path = dir + "/" + kTagFile;
  if (fs::exists(tag_path, ec)) {
    std::ifstream in(tag_path);
    std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    if (text.rfind(kTagSignature, 0) == 0 && text.find(kTagOwner) != std::string::npos) {
      return Status::Ok();
    }
    return Status::InvalidArgument("cache_dir " + dir +
                                   " is another program's cache (its CACHEDIR.TAG is not "
                                   "fanoutd's): refusing to use it");
  }
  for (fs::directory_iterator f(dir, ec), end; !ec && f != end; f.increment(ec)) {
    const std::string name = f->path().filename();
    if ((name == "tmp" || name == "entries") && f->is_directory()) continue;
    if (name == CacheDirLock::kFileName && f->is_regular_file()) continue;
    return Status::InvalidArgument(
        "cache_dir " + dir + " is not empty and is not a fanout cache (it holds '" + name +
        "' and no CACHEDIR.TAG from fanoutd): refusing to use it, so that nothing in it is "
        "deleted; give fanoutd an empty or new directory");
  }
  if (ec) return Status::IOError("cannot read cache_dir " + dir + ": " + ec.message());
  return WriteFileAtomically(tag_path, kTagText);
}

}  // namespace

Status Cache::Open(const Options& options, std::unique_ptr<Cache>* out) {
  std::unique_ptr<Cache> cache(new Cache(options));
  Status st = ClaimCacheDirectory(options.dir);
  if (!st.ok()) return st;
  // Before anything in the directory is touched: a second fanoutd on it
  // would delete the first one's stream files below.
  st = CacheDirLock::Acquire(options.dir, &cache->lock_);
  if (!st.ok()) return st;
  std::error_code ec;
  for (const std::string& dir : {cache->tmp_dir_, cache->entries_dir_}) {
    fs::create_directories(dir, ec);
    if (ec) return Status::IOError("cannot create " + dir + ": " + ec.message());
  }
  // Stream files left in tmp/ by an earlier run were never committed:
  // partial by definition. Those checkpointed with a record are kept for
  // the next miss on their key; the rest go.
  PartialScan partials = ScanPartials(cache->tmp_dir_);
  if (!partials.status.ok()) return partials.status;
  for (const auto& w : partials.warnings) cache->Warn(w);
  cache->RemoveFiles(partials.doomed);
  for (auto& partial : partials.kept) {
    const std::string key = partial->key();
    cache->partials_.emplace(key, std::move(partial));
  }
  st = cache->Load();
  if (!st.ok()) return st;
  *out = std::move(cache);
  return Status::Ok();
}

namespace {

// What one shard directory of entries/ holds.
struct ShardScan {
  std::vector<EntryMeta> loaded;
  std::vector<std::string> doomed;    // files to delete (all fanoutd's own)
  std::vector<std::string> warnings;  // damaged entries and foreign files
  Status status;
};

// Reads every metadata file of one shard, checks its body, and sorts the
// rest into files to delete. Bodies live beside their metadata, so a body
// no metadata of this shard names is unreferenced.
ShardScan ScanShard(const fs::path& shard) {
  ShardScan scan;
  std::unordered_set<std::string> referenced;
  std::vector<std::string> bodies;
  std::error_code ec;
  for (fs::directory_iterator f(shard, ec), end; !ec && f != end; f.increment(ec)) {
    const std::string path = f->path();
    const std::string name = f->path().filename();
    switch (ClassifyEntryFile(name)) {
      case EntryFile::kBody:
        bodies.push_back(path);
        continue;
      case EntryFile::kMetaTemp:
        scan.doomed.push_back(path);  // an interrupted metadata write
        continue;
      case EntryFile::kForeign:
        scan.warnings.push_back("leaving " + path + " alone: not a file fanoutd made");
        continue;
      case EntryFile::kMeta:
        break;
    }
    EntryMeta meta;
    Status st = ReadEntryMeta(path, &meta);
    if (st.ok() && Sha256Hex(meta.key) + ".meta" != name) {
      st = Status::Corruption(path + ": belongs to another key");
    }
    if (st.ok()) {
      struct stat body;
      const std::string body_path = shard.string() + "/" + meta.body_file;
      if (::stat(body_path.c_str(), &body) != 0) {
        st = Status::Corruption(path + ": its body " + meta.body_file + " is missing");
      } else if (static_cast<std::uint64_t>(body.st_size) != meta.body_length) {
        st = Status::Corruption(path + ": its body holds " + std::to_string(body.st_size) +
                                " bytes, not " + std::to_string(meta.body_length));
      } else {
        referenced.insert(body_path);
      }
    }
    if (!st.ok()) {
      scan.warnings.push_back("discarding damaged cache entry: " + st.message());
      scan.doomed.push_back(path);
      continue;
    }
    scan.loaded.push_back(std::move(meta));
  }
  if (ec) scan.status = Status::IOError("cannot read " + shard.string() + ": " + ec.message());
  // Bodies no metadata names: a crash came between body and metadata, or
  // they were replaced. Never visible, so never kept.
  for (auto& body : bodies) {
    if (!referenced.count(body)) scan.doomed.push_back(std::move(body));
  }
  return scan;
}

// Stored entries kept open after their last reader (descriptors, mappings).
constexpr std::size_t kPinnedEntries = 256;

// Shards scanned at once: reading 100,000 small files is mostly waiting
// for the disk and the kernel, so more threads than cores help.
constexpr unsigned kLoadThreads = 8;

}  // namespace

Status Cache::Load() {
  std::vector<fs::path> shards;
  std::vector<std::string> doomed;
  std::error_code ec;
  for (fs::directory_iterator sub(entries_dir_, ec), end; !ec && sub != end; sub.increment(ec)) {
    if (sub->is_directory() && IsHexName(sub->path().filename().string(), 2)) {
      shards.push_back(sub->path());
    } else {
      Warn("leaving " + sub->path().string() + " alone: not a file fanoutd made");
    }
  }
  if (ec) return Status::IOError("cannot read " + entries_dir_ + ": " + ec.message());
  std::vector<ShardScan> scans(shards.size());
  std::atomic<std::size_t> next{0};
  std::vector<std::thread> threads;
  for (unsigned t = 0; t < std::min<std::size_t>(kLoadThreads, shards.size()); ++t) {
    threads.emplace_back([&] {
      for (std::size_t i; (i = next.fetch_add(1)) < shards.size();) scans[i] = ScanShard(shards[i]);
    });
  }
  for (auto& t : threads) t.join();
  std::vector<EntryMeta> loaded;
  for (auto& scan : scans) {
    if (!scan.status.ok()) return scan.status;
    for (const auto& w : scan.warnings) Warn(w);
    doomed.insert(doomed.end(), scan.doomed.begin(), scan.doomed.end());
    std::move(scan.loaded.begin(), scan.loaded.end(), std::back_inserter(loaded));
  }
  // Oldest first into the LRU list (most recent at its front).
  std::sort(loaded.begin(), loaded.end(), [](const EntryMeta& a, const EntryMeta& b) {
    return a.head.received_at < b.head.received_at;
  });
  std::vector<std::string> evicted;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (auto& meta : loaded) InsertStoredLocked(std::move(meta), nullptr);
    evicted = EvictLocked();
  }
  RemoveFiles(doomed);
  RemoveFiles(evicted);
  return Status::Ok();
}

Status Cache::NewEntry(const std::string& key, std::shared_ptr<Entry>* out) {
  StreamFileOptions so;
  so.dir = tmp_dir_;
  so.batcher = options_.batcher;
  so.spill_budget = options_.spill_budget;
  std::shared_ptr<StreamFile> stream;
  Status st = StreamFile::Create(so, &stream);
  if (!st.ok()) return st;
  *out = std::make_shared<Entry>(key, std::move(stream));
  return Status::Ok();
}

std::shared_ptr<Entry> Cache::OpenStoredLocked(const std::string& key, Stored& stored) {
  if (auto open = stored.entry.lock()) return open;
  StreamFileOptions so;
  so.batcher = options_.batcher;
  std::shared_ptr<StreamFile> body;
  const Status st =
      StreamFile::OpenCommitted(so, BodyPath(stored.meta), stored.meta.body_length, &body);
  if (!st.ok()) {
    Warn("discarding cache entry " + key + ": " + st.message());
    RemoveFiles(EraseStoredLocked(key));
    return nullptr;
  }
  auto entry = std::make_shared<Entry>(key, std::move(body));
  entry->PublishHead(stored.meta.head, /*shareable=*/true, stored.meta.vary);
  entry->MarkComplete();
  stored.entry = entry;
  Pin(entry);
  return entry;
}

void Cache::Pin(std::shared_ptr<Entry> entry) {
  pinned_.push_back(std::move(entry));
  if (pinned_.size() > kPinnedEntries) pinned_.pop_front();
}

Cache::Acquired Cache::Acquire(const std::string& key, const Judge& judge, bool may_fetch) {
  Acquired r;
  std::lock_guard<std::mutex> lock(mu_);
  auto nothing = [&] {
    r.lookup = Lookup::kMiss;
    r.entry = nullptr;
    r.status = Status::NotFound("not stored: " + key);
    return r;
  };
  auto flight = in_flight_.find(key);
  // A fetch that failed before its head is over, even if its fetcher has
  // not yet dropped it: its clients were answered with its error, and a
  // request arriving now must not get that old error. It fetches anew.
  if (flight != in_flight_.end() && flight->second->failed_before_head()) {
    in_flight_.erase(flight);
    flight = in_flight_.end();
  }
  auto it = stored_.find(key);
  if (it != stored_.end()) {
    const Reuse reuse = judge(it->second.meta.head, it->second.meta.vary);
    if (reuse == Reuse::kOtherVariant) {
      r.lookup = Lookup::kOtherVariant;
      r.vary = it->second.meta.vary;
      return r;
    }
    // A stale entry with a revalidation in flight: join that.
    if (reuse != Reuse::kRevalidate || flight == in_flight_.end()) {
      Stored& stored = it->second;
      if (std::shared_ptr<Entry> entry = OpenStoredLocked(key, stored)) {
        if (reuse == Reuse::kRevalidate) {
          if (!may_fetch) return nothing();
          r.status = NewEntry(key, &r.entry);
          if (!r.status.ok()) return r;
          in_flight_[key] = r.entry;
          r.lookup = Lookup::kMiss;
          r.fetch = r.entry;
          r.stale = entry;
          r.interest = Entry::Attach(r.entry);
          return r;
        }
        lru_.splice(lru_.begin(), lru_, stored.lru);
        ++stored.hits;
        r.lookup = Lookup::kHit;
        r.entry = entry;
        if (reuse == Reuse::kStaleWhileRevalidate && flight == in_flight_.end() && may_fetch) {
          // Served stale; one fetch refreshes it meanwhile. If no stream
          // file can be made, the stale entry is still served.
          std::shared_ptr<Entry> fetch;
          if (NewEntry(key, &fetch).ok()) {
            in_flight_[key] = fetch;
            r.fetch = fetch;
            r.stale = entry;
          }
        }
        return r;
      }
    }
  }
  if (flight != in_flight_.end()) {
    // Before its response head is known, a fetch is joined by every request
    // for its key (collapsed requests). Once the head is known, it is
    // reused only by requests it is fresh for: joined while it runs, a hit
    // once complete (it is then being made durable). A request it is not
    // fresh for (its no-cache, max-age=0 or min-fresh, or a response stale
    // on arrival) goes upstream on its own.
    const auto head = flight->second->head();
    const Reuse reuse = head ? judge(*head, flight->second->vary()) : Reuse::kRevalidate;
    if (reuse == Reuse::kOtherVariant) {
      r.lookup = Lookup::kOtherVariant;
      r.vary = flight->second->vary();
      return r;
    }
    if (head && reuse == Reuse::kRevalidate) {
      if (!may_fetch) return nothing();
      r.lookup = Lookup::kNotFresh;
      r.entry = nullptr;
      return r;
    }
    const bool hit = flight->second->complete() && head;
    if (!may_fetch && !hit) return nothing();
    r.entry = flight->second;
    r.lookup = hit ? Lookup::kHit : Lookup::kJoin;
    if (!hit) {
      r.entry->CountJoin();
      r.interest = Entry::Attach(r.entry);
    }
    return r;
  }
  if (!may_fetch) return nothing();
  // Creating the file under the lock keeps "one fetch per key" trivially
  // true; it is one open(2) of a new file.
  r.status = NewEntry(key, &r.entry);
  if (!r.status.ok()) return r;
  in_flight_.emplace(key, r.entry);
  r.lookup = Lookup::kMiss;
  r.fetch = r.entry;
  r.interest = Entry::Attach(r.entry);
  if (auto partial = partials_.find(key); partial != partials_.end()) {
    r.partial = std::move(partial->second);
    partials_.erase(partial);
  }
  return r;
}

Status Cache::StartOwnFetch(const std::string& key, std::shared_ptr<Entry>* out) {
  std::lock_guard<std::mutex> lock(mu_);
  Status st = NewEntry(key, out);
  if (st.ok()) in_flight_[key] = *out;
  return st;
}

Status Cache::CreatePrivate(const std::string& key, std::shared_ptr<Entry>* out) {
  return NewEntry(key, out);
}

Status Cache::Complete(const std::shared_ptr<Entry>& entry) {
  const auto head = entry->head();
  const auto stream = entry->stream();
  if (!head || stream->state() != StreamFile::State::kFinished) {
    Drop(entry);
    return Status::InvalidArgument("complete of an entry without a head or a whole body");
  }
  EntryMeta meta;
  meta.key = entry->key();
  meta.head = *head;
  meta.body_file = BodyFileName(Sha256Hex(meta.key), stream->path());
  meta.body_length = stream->frontier();
  meta.vary = entry->vary();
  // The body is whole: serve hits from it now, while it is made durable.
  entry->MarkComplete();
  const std::string body_path = BodyPath(meta);
  std::error_code ec;
  fs::create_directories(ParentDir(body_path), ec);
  if (ec) {
    Drop(entry);
    return Status::IOError("cannot create directory for " + body_path + ": " + ec.message());
  }
  Status st = stream->Commit(body_path);
  if (!st.ok()) {
    Drop(entry);
    return st;
  }
  return Install(entry, std::move(meta), /*owns_body=*/true);
}

Status Cache::Install(const std::shared_ptr<Entry>& entry, EntryMeta meta, bool owns_body) {
  const std::string key = meta.key;
  std::lock_guard<std::mutex> meta_lock(meta_mu_);
  auto still_ours = [&] {
    auto it = in_flight_.find(key);
    return it != in_flight_.end() && it->second == entry;
  };
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!still_ours()) {
      if (owns_body) (void)entry->stream()->Remove();
      return Status::NotFound("entry was dropped before it completed");
    }
  }
  Status st = WriteEntryMeta(MetaPath(key), meta);
  std::vector<std::string> doomed;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!st.ok()) {
      if (still_ours()) in_flight_.erase(key);
    } else {
      // Another body is replaced: its file goes (its readers keep it open),
      // the metadata file is ours now.
      auto old = stored_.find(key);
      if (old != stored_.end()) {
        const std::string old_body = BodyPath(old->second.meta);
        EraseStoredLocked(key);
        if (old_body != BodyPath(meta)) doomed.push_back(old_body);
      }
      InsertStoredLocked(std::move(meta), entry);
      Pin(entry);
      in_flight_.erase(key);
      auto evicted = EvictLocked();
      doomed.insert(doomed.end(), evicted.begin(), evicted.end());
    }
  }
  if (!st.ok() && owns_body) (void)entry->stream()->Remove();
  RemoveFiles(doomed);
  return st;
}

Status Cache::Refresh(const std::shared_ptr<Entry>& entry, const std::shared_ptr<Entry>& stale) {
  const auto head = entry->head();
  if (!head) return Status::InvalidArgument("refresh of an entry without a head");
  EntryMeta meta;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = stored_.find(entry->key());
    if (it == stored_.end() || it->second.entry.lock() != stale) {
      return Status::NotFound("the revalidated entry is gone");
    }
    meta = it->second.meta;
  }
  meta.head = *head;
  entry->MarkComplete();
  // The same body file, which stays whatever happens.
  return Install(entry, std::move(meta), /*owns_body=*/false);
}

void Cache::DropDamaged(const std::shared_ptr<Entry>& entry, const std::string& why) {
  if (!entry->complete()) return;
  Warn("dropping damaged cache entry " + entry->key() + ": " + why);
  Drop(entry);
}

void Cache::Drop(const std::shared_ptr<Entry>& entry) {
  std::vector<std::string> doomed;
  {
    std::lock_guard<std::mutex> meta_lock(meta_mu_);
    std::lock_guard<std::mutex> lock(mu_);
    auto flight = in_flight_.find(entry->key());
    if (flight != in_flight_.end() && flight->second == entry) {
      in_flight_.erase(flight);
      return;
    }
    auto it = stored_.find(entry->key());
    if (it == stored_.end() || it->second.entry.lock() != entry) return;
    doomed = EraseStoredLocked(entry->key());
  }
  RemoveFiles(doomed);
}

bool Cache::Purge(const std::string& key) {
  std::vector<std::string> doomed;
  bool found = false;
  std::shared_ptr<PartialBody> partial;  // its files go outside the lock
  {
    std::lock_guard<std::mutex> meta_lock(meta_mu_);
    std::lock_guard<std::mutex> lock(mu_);
    std::vector<std::string> keys = {key};
    if (auto v = variants_.find(key); v != variants_.end()) {
      keys.insert(keys.end(), v->second.begin(), v->second.end());
    }
    if (auto p = partials_.find(key); p != partials_.end()) {
      partial = std::move(p->second);
      partials_.erase(p);
      found = true;
    }
    for (const auto& k : keys) {
      found = in_flight_.erase(k) > 0 || found;
      if (stored_.count(k)) {
        auto files = EraseStoredLocked(k);
        doomed.insert(doomed.end(), files.begin(), files.end());
        found = true;
      }
    }
  }
  RemoveFiles(doomed);
  return found;
}

std::size_t Cache::PurgeAll() {
  std::vector<std::string> keys;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (const auto& [key, _] : stored_) keys.push_back(key);
    for (const auto& [key, _] : in_flight_) {
      if (!stored_.count(key)) keys.push_back(key);
    }
    for (const auto& [key, _] : partials_) {
      if (!stored_.count(key) && !in_flight_.count(key)) keys.push_back(key);
    }
  }
  std::size_t n = 0;
  for (const auto& key : keys) n += Purge(key);
  return n;
}

std::size_t Cache::PurgePrefix(const std::string& prefix) {
  std::vector<std::string> keys;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (const auto& [key, _] : stored_) {
      if (key.rfind(prefix, 0) == 0) keys.push_back(key);
    }
    for (const auto& [key, _] : in_flight_) {
      if (key.rfind(prefix, 0) == 0 && !stored_.count(key)) keys.push_back(key);
    }
    for (const auto& [key, _] : partials_) {
      if (key.rfind(prefix, 0) == 0 && !stored_.count(key) && !in_flight_.count(key)) {
        keys.push_back(key);
      }
    }
  }
  std::size_t n = 0;
  for (const auto& key : keys) n += Purge(key);
  return n;
}

std::vector<Cache::EntryInfo> Cache::ListPage(const std::string& after, std::size_t limit) const {
  std::lock_guard<std::mutex> lock(mu_);
  // The first `limit` keys after `after`: one pass, a heap of `limit`.
  std::vector<const std::string*> page;
  auto later = [](const std::string* a, const std::string* b) { return *a < *b; };
  for (const auto& [key, _] : stored_) {
    if (key <= after && !after.empty()) continue;
    if (page.size() < limit) {
      page.push_back(&key);
      std::push_heap(page.begin(), page.end(), later);
    } else if (limit > 0 && key < *page.front()) {
      std::pop_heap(page.begin(), page.end(), later);
      page.back() = &key;
      std::push_heap(page.begin(), page.end(), later);
    }
  }
  std::sort_heap(page.begin(), page.end(), later);
  std::vector<EntryInfo> out;
  out.reserve(page.size());
  for (const std::string* key : page) {
    const Stored& s = stored_.at(*key);
    out.push_back(EntryInfo{*key, s.meta.head.status, s.meta.body_length, s.meta.head, s.hits});
  }
  return out;
}

Status Cache::CheckWritable() const {
  // An unnamed file: nothing is left behind, whatever happens next.
  const int fd = ::open(tmp_dir_.c_str(), O_TMPFILE | O_WRONLY | O_CLOEXEC, 0600);
  if (fd < 0) return Status::FromErrno("cannot create a file in " + tmp_dir_, errno);
  const char byte = 0;
  const ssize_t n = ::write(fd, &byte, 1);
  const int err = errno;
  ::close(fd);
  if (n != 1) return Status::FromErrno("cannot write in " + tmp_dir_, err);
  return Status::Ok();
}

std::vector<Cache::EntryInfo> Cache::List() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<EntryInfo> out;
  out.reserve(stored_.size());
  for (const std::string& key : lru_) {
    const Stored& s = stored_.at(key);
    out.push_back(EntryInfo{key, s.meta.head.status, s.meta.body_length, s.meta.head, s.hits});
  }
  return out;
}

std::vector<Cache::FetchInfo> Cache::ListFetches() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<FetchInfo> out;
  out.reserve(in_flight_.size());
  for (const auto& [key, entry] : in_flight_) {
    const auto stream = entry->stream();
    out.push_back(FetchInfo{key, stream->frontier(), stream->expected_length(), entry->joins(),
                            static_cast<int>(stream->open_readers()),
                            entry->head() != nullptr});
  }
  return out;
}

std::size_t Cache::stored_count() const {
  std::lock_guard<std::mutex> lock(mu_);
  return stored_.size();
}

std::size_t Cache::in_flight_count() const {
  std::lock_guard<std::mutex> lock(mu_);
  return in_flight_.size();
}

std::size_t Cache::partial_count() const {
  std::lock_guard<std::mutex> lock(mu_);
  return partials_.size();
}

Cache::Evictions Cache::evictions() const {
  std::lock_guard<std::mutex> lock(mu_);
  return evictions_;
}

std::uint64_t Cache::stored_bytes() const {
  std::lock_guard<std::mutex> lock(mu_);
  return stored_bytes_;
}

void Cache::InsertStoredLocked(EntryMeta meta, std::shared_ptr<Entry> entry) {
  const std::string key = meta.key;
  if (const auto nl = key.find('\n'); nl != std::string::npos) {
    variants_[key.substr(0, nl)].insert(key);
  }
  lru_.push_front(key);
  stored_bytes_ += meta.body_length;
  stored_[key] = Stored{std::move(meta), std::move(entry), lru_.begin(), 0};
}

std::vector<std::string> Cache::EraseStoredLocked(const std::string& key) {
  auto it = stored_.find(key);
  if (it == stored_.end()) return {};
  std::vector<std::string> files = {MetaPath(key), BodyPath(it->second.meta)};
  // Unpinned, so the body's space is freed once its last reader is done.
  if (auto open = it->second.entry.lock()) {
    std::erase(pinned_, open);
  }
  if (const auto nl = key.find('\n'); nl != std::string::npos) {
    auto v = variants_.find(key.substr(0, nl));
    if (v != variants_.end() && v->second.erase(key) > 0 && v->second.empty()) {
      variants_.erase(v);
    }
  }
  stored_bytes_ -= it->second.meta.body_length;
  lru_.erase(it->second.lru);
  stored_.erase(it);
  return files;
}

std::vector<std::string> Cache::EvictLocked() {
  std::vector<std::string> files;
  if (options_.max_size == 0 || stored_bytes_ <= options_.max_size) return files;
  const auto low_water =
      static_cast<std::uint64_t>(static_cast<double>(options_.max_size) * options_.low_water);
  while (stored_bytes_ > low_water && !lru_.empty()) {
    const std::string key = lru_.back();
    const std::uint64_t before = stored_bytes_;
    auto doomed = EraseStoredLocked(key);
    ++evictions_.count;
    evictions_.bytes += before - stored_bytes_;
    if (options_.evicted) options_.evicted(key, before - stored_bytes_);
    files.insert(files.end(), doomed.begin(), doomed.end());
  }
  return files;
}

void Cache::RemoveFiles(const std::vector<std::string>& paths) const {
  for (const auto& path : paths) {
    if (::unlink(path.c_str()) != 0 && errno != ENOENT) {
      Warn("cannot remove " + path + ": " + std::strerror(errno));
    }
  }
}

void Cache::Warn(const std::string& message) const {
  if (options_.warn) options_.warn(message);
}

std::string Cache::MetaPath(const std::string& key) const {
  const std::string h = Sha256Hex(key);
  return entries_dir_ + "/" + h.substr(0, 2) + "/" + h + ".meta";
}

std::string Cache::BodyPath(const EntryMeta& meta) const {
  return ParentDir(MetaPath(meta.key)) + "/" + meta.body_file;
}

}  // namespace fanout
