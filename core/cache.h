// Cache: the map from cache key to Entry that makes concurrent requests for
// one URL share one fetch.
//
// Acquire() answers, atomically per key: a hit (a complete entry), a join
// (an entry whose fetch is in flight) or a miss (a new entry whose fetch the
// caller must start). Complete entries live in <dir>/entries/, named by a
// hash of the key, so no request path ever names a file; stream files being
// written live in <dir>/tmp/ and are deleted unless committed.
//
// This version keeps its index in memory: on Open() it clears what earlier
// runs left in the directory. Thread-safe.

#ifndef FANOUT_CORE_CACHE_H_
#define FANOUT_CORE_CACHE_H_

#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>

#include "core/entry.h"
#include "core/status.h"

namespace fanout {

class WakeupBatcher;

class Cache {
 public:
  struct Options {
    // Root directory; created if missing.
    std::string dir;
    // Passed to every stream file. May be null. Must outlive the cache.
    WakeupBatcher* batcher = nullptr;
  };

  enum class Lookup {
    kHit,   // served from a complete entry
    kJoin,  // attached to a fetch in flight
    kMiss,  // a new entry; the caller must start its fetch
  };

  struct Acquired {
    Lookup lookup = Lookup::kMiss;
    std::shared_ptr<Entry> entry;  // null only if status is not OK
    Status status;                 // kIOError if no stream file could be made
  };

  static Status Open(const Options& options, std::unique_ptr<Cache>* out);

  Acquired Acquire(const std::string& key);

  // A new entry that is never shared or kept (for requests that must not
  // be served from or stored in the cache).
  Status CreatePrivate(const std::string& key, std::shared_ptr<Entry>* out);

  // Marks a finished entry complete (from now on the key is a hit) and
  // commits its stream file into place. If that fails, or the entry was
  // dropped meanwhile, nothing is kept.
  Status Complete(const std::shared_ptr<Entry>& entry);

  // Forgets the entry if the key still maps to it. Its readers go on.
  void Drop(const std::shared_ptr<Entry>& entry);

  std::size_t size() const;

  // "<dir>/entries/<h[0..1]>/<h>.body" with h the hex SHA-256 of key.
  std::string EntryPath(const std::string& key) const;

 private:
  explicit Cache(const Options& options);
  Status NewEntry(const std::string& key, std::shared_ptr<Entry>* out);

  const Options options_;
  const std::string tmp_dir_;
  const std::string entries_dir_;

  mutable std::mutex mu_;
  std::unordered_map<std::string, std::shared_ptr<Entry>> entries_;  // guarded by mu_
};

// Lower-case hex SHA-256 of `text`.
std::string Sha256Hex(const std::string& text);

}  // namespace fanout

#endif  // FANOUT_CORE_CACHE_H_
