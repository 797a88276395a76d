// Partial bodies: the first bytes of a body whose fetch did not finish —
// fanoutd was stopped, or crashed — kept in the cache's tmp/ directory
// across a restart, so that the next fetch of its key asks the origin only
// for the rest.
//
// A fetch of a body that could be resumed checkpoints it as it goes
// (PartialRecord): it makes the bytes written so far durable (fdatasync),
// then writes a record beside the stream file, "<stream file>.meta": an
// EntryMeta (entry_meta.h) whose head is the response's and whose
// body_length counts those durable bytes. Bytes past body_length were not
// made durable and are cut off when the file is found again.
//
// At start-up (ScanPartials) a stream file is kept if its record reads
// back, names it, is for a body of known length, and the file holds at
// least the recorded bytes; it is cut to them. A file shorter than its
// record, a record that cannot be read, and a record without its file are
// deleted with a warning; a stream file without a record was never
// checkpointed and is deleted silently (as before there were partials).
//
// Thread-safety: a PartialRecord belongs to its fetch's thread. A
// PartialBody may be read from any thread; its files go when the last
// holder lets go of it.

#ifndef FANOUT_CORE_PARTIAL_BODY_H_
#define FANOUT_CORE_PARTIAL_BODY_H_

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/entry_meta.h"
#include "core/status.h"

namespace fanout {

// The record that goes with a stream file being written.
class PartialRecord {
 public:
  // For the stream file at stream_path, of the response `meta` describes
  // (key, head, vary; body_file and body_length are filled in here).
  PartialRecord(std::string stream_path, EntryMeta meta);
  // Deletes the record unless Keep() was called.
  ~PartialRecord();
  PartialRecord(const PartialRecord&) = delete;
  PartialRecord& operator=(const PartialRecord&) = delete;

  // Records that the file's first `durable` bytes are on disk (the caller
  // made them so). Crash-safe: the old record or the new one stays.
  Status Write(std::uint64_t durable);
  // The bytes the last Write recorded (0 before any).
  std::uint64_t recorded() const { return meta_.body_length; }
  bool written() const { return written_; }
  // Leaves the record for the next run.
  void Keep() { kept_ = true; }

 private:
  const std::string path_;  // the record's
  EntryMeta meta_;
  bool written_ = false;
  bool kept_ = false;
};

// A partial body found at start-up, until a fetch takes it up.
class PartialBody {
 public:
  // Opens the stream file at `path` (meta: its record, already checked).
  static Status Open(const std::string& path, EntryMeta meta, std::shared_ptr<PartialBody>* out);
  // Deletes the stream file and its record.
  ~PartialBody();
  PartialBody(const PartialBody&) = delete;
  PartialBody& operator=(const PartialBody&) = delete;

  const std::string& key() const { return meta_.key; }
  // The recorded response; body_length is the count of bytes kept.
  const EntryMeta& meta() const { return meta_; }
  std::uint64_t length() const { return meta_.body_length; }
  const std::string& path() const { return path_; }
  // Reads up to n bytes at offset (< length()); the count read, or an error.
  Status Read(std::uint64_t offset, char* buf, std::size_t n, std::size_t* got) const;

 private:
  PartialBody(std::string path, EntryMeta meta, int fd);
  const std::string path_;
  const EntryMeta meta_;
  const int fd_;
};

// "<stream file>.meta": where a stream file's record is.
std::string PartialRecordPath(const std::string& stream_path);

// What tmp/ holds after a run.
struct PartialScan {
  std::vector<std::shared_ptr<PartialBody>> kept;  // at most one per key, the longest
  std::vector<std::string> doomed;                 // fanoutd's files to delete
  std::vector<std::string> warnings;               // discarded partials, foreign files
  Status status;                                   // kIOError if tmp/ could not be read
};

// Sorts the files of the cache's tmp/ directory (see above); deletes
// nothing itself.
PartialScan ScanPartials(const std::string& tmp_dir);

}  // namespace fanout

#endif  // FANOUT_CORE_PARTIAL_BODY_H_
