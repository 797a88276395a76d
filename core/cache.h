// Cache: the entries fanout keeps, on disk and in its index, and the map
// that makes concurrent requests for one key share one fetch.
//
// Acquire() answers, atomically per key: a hit (a stored entry the
// caller's judge finds usable), a join (a fetch in flight) or a miss (a new
// entry whose fetch the caller must start). A stored entry the judge finds
// stale is revalidated by one fetch, which every request for the key joins,
// exactly like a miss; with stale-while-revalidate the stored entry is
// served and the fetch runs in the background.
//
// On disk, under <dir>/entries/<h[0..1]>/, h the hex SHA-256 of the key:
//   <h>.meta         the metadata (EntryMeta), replaced atomically;
//   <h>.<unique>.body the body it names, written in <dir>/tmp/ and renamed
//                    into place once complete and fsynced.
// A body is visible only through a metadata file written after it, so a
// crash at any point leaves either the old entry, the new one, or files
// Open() deletes. Open() rebuilds the index from the directory: it deletes
// temporary and unreferenced files and discards (with a warning) entries
// whose metadata is unreadable or whose body is missing or of another
// length — a damaged entry is never served.
//
// Size: the bodies of stored entries are counted; past max_size the least
// recently used ones are removed until the total is under the low-water
// mark. A removed entry's open readers finish normally (POSIX keeps the
// inode). Thread-safe.

#ifndef FANOUT_CORE_CACHE_H_
#define FANOUT_CORE_CACHE_H_

#include <deque>
#include <functional>
#include <list>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

#include "core/cache_dir_lock.h"
#include "core/cache_policy.h"
#include "core/entry.h"
#include "core/entry_meta.h"
#include "core/partial_body.h"
#include "core/status.h"

namespace fanout {

class MemoryBudget;
class WakeupBatcher;

class Cache {
 public:
  struct Options {
    // Root directory; created if missing.
    std::string dir;
    // Passed to every stream file. May be null. Must outlive the cache.
    WakeupBatcher* batcher = nullptr;
    // Memory for stream bytes a full disk refuses (StreamFileOptions::
    // spill_budget). May be null. Must outlive the cache.
    MemoryBudget* spill_budget = nullptr;
    // Most bytes of stored bodies; 0: no limit.
    std::uint64_t max_size = 0;
    // Eviction stops once stored bytes are at most this share of max_size.
    double low_water = 0.9;
    // Told about damaged entries found by Open() and files that could not
    // be removed. May be empty.
    std::function<void(const std::string&)> warn;
    // Told about each entry evicted to keep under max_size (key, body
    // bytes), with the cache's lock held: keep it short. May be empty.
    std::function<void(const std::string&, std::uint64_t)> evicted;
  };

  enum class Lookup {
    kHit,           // served from a stored entry
    kJoin,          // attached to a fetch in flight
    kMiss,          // a new entry; the caller must start its fetch
    kOtherVariant,  // the key holds a variant selected by other header
                    // values (`vary`): ask again under the request's VariantKey
    kNotFresh,      // a fetch in flight whose response head is known and is
                    // not fresh for this request: the caller goes upstream
                    // on its own (entry is null)
  };

  struct Acquired {
    Lookup lookup = Lookup::kMiss;
    // What to serve the request from. Null only for kNotFresh and when
    // status is not OK.
    std::shared_ptr<Entry> entry;
    // A fetch the caller must start: the miss itself, or the background
    // revalidation of a hit served stale. Null if none.
    std::shared_ptr<Entry> fetch;
    // The stored entry that fetch revalidates (its validators go upstream;
    // a 304 makes `fetch` adopt its body). Null for a plain miss.
    std::shared_ptr<Entry> stale;
    // For kMiss and kJoin: the request's interest in `entry`'s fetch,
    // taken under the cache's lock so that no fetch can find itself
    // without readers between a join and its first read (Entry::Interest).
    std::shared_ptr<Entry::Interest> interest;
    // For kOtherVariant: the selecting values the stored response has.
    HeaderList vary;
    Status status;  // kIOError if no stream file could be made
    // For a plain miss: the first bytes of the key's body, kept by an
    // earlier run whose fetch did not finish. The fetch may ask only for
    // the rest; the files go when the last holder lets go.
    std::shared_ptr<PartialBody> partial;
  };

  // How a caller judges a stored response (and the selecting header values
  // it was stored with) for its own request.
  using Judge = std::function<Reuse(const ResponseHead&, const HeaderList& vary)>;

  struct EntryInfo {
    std::string key;
    int status = 0;
    std::uint64_t body_length = 0;
    ResponseHead head;
    std::uint64_t hits = 0;
  };

  struct FetchInfo {
    std::string key;
    std::uint64_t written = 0;                   // the frontier
    std::optional<std::uint64_t> length;         // once announced
    std::uint64_t joins = 0;                     // requests attached so far
    int readers = 0;                             // readers open on its stream now
    bool has_head = false;                       // the response head came
  };

  static Status Open(const Options& options, std::unique_ptr<Cache>* out);

  // With may_fetch false, nothing is started: anything but a hit comes
  // back as kMiss with no entry and kNotFound.
  Acquired Acquire(const std::string& key, const Judge& judge, bool may_fetch = true);

  // A new entry for key whose fetch the caller starts, even if another is
  // in flight: that one's readers go on, but it will not be kept — this
  // one may be. (For requests that must not join others' fetches but whose
  // response may be stored, e.g. with credentials and marked public.)
  Status StartOwnFetch(const std::string& key, std::shared_ptr<Entry>* out);

  // A new entry that is never shared or kept (for requests that must not
  // be served from or stored in the cache).
  Status CreatePrivate(const std::string& key, std::shared_ptr<Entry>* out);

  // The fetch of `entry` ended with a body to keep (its head published,
  // its stream finished): the body is made durable and becomes the stored
  // entry for the key, replacing any older one. If the entry was dropped
  // meanwhile, or writing fails, nothing is kept. The entry's selecting
  // header values (Vary) are stored with it.
  Status Complete(const std::shared_ptr<Entry>& entry);

  // The fetch of `entry` revalidated `stale` (304): `entry` has adopted
  // stale's body and published the refreshed head; it becomes the stored
  // entry, with the same body file and new metadata.
  Status Refresh(const std::shared_ptr<Entry>& entry, const std::shared_ptr<Entry>& stale);

  // Forgets the entry, in flight or stored, if the key still maps to it;
  // a stored one leaves the disk. Its readers go on.
  void Drop(const std::shared_ptr<Entry>& entry);

  // A stored entry whose body file turned out damaged while it was served
  // (fewer bytes than recorded: cut on disk): warns (Options::warn) with
  // `why`, and drops it so that no later request is served from it. An
  // entry still being fetched is left alone (its fetch decides).
  void DropDamaged(const std::shared_ptr<Entry>& entry, const std::string& why);

  // Removes the key's stored entry, and those of its variants, and forgets
  // their fetches in flight (whose readers finish; nothing of them is
  // kept). True if there was any.
  bool Purge(const std::string& key);
  // Purges every key; returns how many.
  std::size_t PurgeAll();
  // Purges every key that starts with `prefix` (variants with their URL);
  // returns how many.
  std::size_t PurgePrefix(const std::string& prefix);

  // Stored entries, most recently used first.
  std::vector<EntryInfo> List() const;
  // At most `limit` stored entries whose keys sort after `after` ("" for
  // the first page), in key order: one page of a listing that a million
  // entries must not turn into one reply.
  std::vector<EntryInfo> ListPage(const std::string& after, std::size_t limit) const;

  // Whether a stream file could be made now (the directory is there and
  // writable): OK, or the system's reason.
  Status CheckWritable() const;
  // Fetches in flight that others may join.
  std::vector<FetchInfo> ListFetches() const;
  // Stored entries, and fetches in flight that may become ones.
  std::size_t stored_count() const;
  std::size_t in_flight_count() const;
  // Partial bodies kept from an earlier run and not yet taken up.
  std::size_t partial_count() const;
  std::uint64_t stored_bytes() const;
  // Entries evicted to keep under max_size so far, and their body bytes.
  struct Evictions {
    std::uint64_t count = 0;
    std::uint64_t bytes = 0;
  };
  Evictions evictions() const;

  // "<dir>/entries/<h[0..1]>/<h>.meta" with h the hex SHA-256 of key.
  std::string MetaPath(const std::string& key) const;

 private:
  struct Stored {
    EntryMeta meta;
    // The entry while anyone holds it (a reader, a revalidation); opened
    // again from its files when needed. Not owned here: 100,000 stored
    // entries must not hold 100,000 descriptors and mappings.
    std::weak_ptr<Entry> entry;
    std::list<std::string>::iterator lru;  // position in lru_
    std::uint64_t hits = 0;
  };

  explicit Cache(const Options& options);
  Status Load();
  Status NewEntry(const std::string& key, std::shared_ptr<Entry>* out);
  std::string BodyPath(const EntryMeta& meta) const;
  // The stored entry as an Entry, opening its body if needed. Null (and
  // the entry forgotten) if its body is gone or damaged.
  std::shared_ptr<Entry> OpenStoredLocked(const std::string& key, Stored& stored);
  // Keeps entry open for a while (see pinned_).
  void Pin(std::shared_ptr<Entry> entry);
  // Makes meta the stored entry for its key (entry may be null).
  void InsertStoredLocked(EntryMeta meta, std::shared_ptr<Entry> entry);
  // Forgets the key's stored entry; returns its files, to be deleted
  // outside the lock.
  std::vector<std::string> EraseStoredLocked(const std::string& key);
  // Removes least recently used entries while over the size limit.
  std::vector<std::string> EvictLocked();
  // Writes meta and installs it if `entry` is still the key's fetch. If
  // not, or writing fails, the body is removed if `owns_body` (a refreshed
  // entry's body belongs to the entry it refreshed).
  Status Install(const std::shared_ptr<Entry>& entry, EntryMeta meta, bool owns_body);
  void RemoveFiles(const std::vector<std::string>& paths) const;
  void Warn(const std::string& message) const;

  const Options options_;
  const std::string tmp_dir_;
  const std::string entries_dir_;
  // This process's claim on the directory, held as long as the cache is.
  std::unique_ptr<CacheDirLock> lock_;

  // Held while a metadata file is written and installed, and while one is
  // removed, so the file on disk always matches the index (a purge never
  // races a commit into resurrecting an entry). Taken before mu_.
  std::mutex meta_mu_;

  mutable std::mutex mu_;
  std::unordered_map<std::string, std::shared_ptr<Entry>> in_flight_;  // guarded by mu_
  std::unordered_map<std::string, Stored> stored_;                     // guarded by mu_
  std::list<std::string> lru_;     // guarded by mu_; keys, most recently used first
  // guarded by mu_; the last kPinnedEntries stored entries opened, kept open
  // so that hot entries are not reopened on every hit (Stored holds them
  // only weakly).
  std::deque<std::shared_ptr<Entry>> pinned_;
  // guarded by mu_; base key -> stored variant keys (VariantKey)
  std::unordered_map<std::string, std::set<std::string>> variants_;
  std::uint64_t stored_bytes_ = 0;  // guarded by mu_
  Evictions evictions_;             // guarded by mu_
  // guarded by mu_; key -> the partial body an earlier run left for it
  std::unordered_map<std::string, std::shared_ptr<PartialBody>> partials_;
};

// Lower-case hex SHA-256 of `text`.
std::string Sha256Hex(const std::string& text);

}  // namespace fanout

#endif  // FANOUT_CORE_CACHE_H_
