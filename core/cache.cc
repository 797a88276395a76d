#include "core/cache.h"

#include <openssl/sha.h>

#include <filesystem>

namespace fanout {

namespace fs = std::filesystem;

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

Status Cache::Open(const Options& options, std::unique_ptr<Cache>* out) {
  std::unique_ptr<Cache> cache(new Cache(options));
  std::error_code ec;
  // The index is in memory: whatever an earlier run left is unknown to it
  // (and a partial stream file must never be served), so start clean.
  for (const std::string& dir : {cache->tmp_dir_, cache->entries_dir_}) {
    fs::remove_all(dir, ec);
    if (ec) return Status::IOError("cannot clear " + dir + ": " + ec.message());
    fs::create_directories(dir, ec);
    if (ec) return Status::IOError("cannot create " + dir + ": " + ec.message());
  }
  *out = std::move(cache);
  return Status::Ok();
}

Status Cache::NewEntry(const std::string& key, std::shared_ptr<Entry>* out) {
  StreamFileOptions so;
  so.dir = tmp_dir_;
  so.batcher = options_.batcher;
  std::shared_ptr<StreamFile> stream;
  Status st = StreamFile::Create(so, &stream);
  if (!st.ok()) return st;
  *out = std::make_shared<Entry>(key, std::move(stream));
  return Status::Ok();
}

Cache::Acquired Cache::Acquire(const std::string& key) {
  Acquired result;
  std::lock_guard<std::mutex> lock(mu_);
  auto it = entries_.find(key);
  if (it != entries_.end()) {
    result.entry = it->second;
    result.lookup = result.entry->complete() ? Lookup::kHit : Lookup::kJoin;
    return result;
  }
  // Creating the file under the lock keeps "one fetch per key" trivially
  // true; it is one open(2) of a new file.
  result.status = NewEntry(key, &result.entry);
  if (result.status.ok()) entries_.emplace(key, result.entry);
  result.lookup = Lookup::kMiss;
  return result;
}

Status Cache::CreatePrivate(const std::string& key, std::shared_ptr<Entry>* out) {
  return NewEntry(key, out);
}

Status Cache::Complete(const std::shared_ptr<Entry>& entry) {
  // The body is whole: serve hits from it now, while it is made durable.
  entry->MarkComplete();
  const std::string path = EntryPath(entry->key());
  std::error_code ec;
  fs::create_directories(fs::path(path).parent_path(), ec);
  if (ec) {
    Drop(entry);
    return Status::IOError("cannot create directory for " + path);
  }
  Status st = entry->stream()->Commit(path);
  if (!st.ok()) {
    Drop(entry);
    return st;
  }
  std::lock_guard<std::mutex> lock(mu_);
  auto it = entries_.find(entry->key());
  if (it == entries_.end() || it->second != entry) {
    // Dropped while committing: keep nothing.
    (void)entry->stream()->Remove();
    return Status::NotFound("entry was dropped before it completed");
  }
  return Status::Ok();
}

void Cache::Drop(const std::shared_ptr<Entry>& entry) {
  std::shared_ptr<Entry> dropped;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = entries_.find(entry->key());
    if (it == entries_.end() || it->second != entry) return;
    dropped = std::move(it->second);
    entries_.erase(it);
  }
  // A committed body leaves the disk with its entry; readers keep the inode.
  if (dropped->complete()) (void)dropped->stream()->Remove();
}

std::size_t Cache::size() const {
  std::lock_guard<std::mutex> lock(mu_);
  return entries_.size();
}

std::string Cache::EntryPath(const std::string& key) const {
  const std::string h = Sha256Hex(key);
  return entries_dir_ + "/" + h.substr(0, 2) + "/" + h + ".body";
}

}  // namespace fanout
