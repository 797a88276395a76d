// EntryMeta: what fanout stores beside an entry's body file so the entry
// survives restarts — the key, the response head (status, headers, times),
// the body file's name and length, and the request headers a Vary response
// was selected by. Stored as <hash>.meta (JSON) next to its body file.
//
// WriteEntryMeta is crash-safe: the file is written under a temporary
// name, fsynced, renamed into place and the directory fsynced, so a reader
// sees the old metadata or the new, never a mix. ReadEntryMeta rejects
// anything it cannot fully understand (kCorrupt), so a damaged entry is
// discarded instead of served. Pure functions; any thread.

#ifndef FANOUT_CORE_ENTRY_META_H_
#define FANOUT_CORE_ENTRY_META_H_

#include <cstdint>
#include <string>

#include "core/response_head.h"
#include "core/status.h"

namespace fanout {

struct EntryMeta {
  std::string key;
  ResponseHead head;
  // The body file's name, in the metadata file's directory. Each stored
  // body has a name of its own, so a new body for the key never replaces
  // the file an older one's readers (or metadata) refer to.
  std::string body_file;
  std::uint64_t body_length = 0;
  // Vary: the selecting request headers (lower-case names) and the values
  // the stored response was selected by.
  HeaderList vary;
};

Status WriteEntryMeta(const std::string& path, const EntryMeta& meta);
// The file's contents, as WriteEntryMeta writes them (for tools that
// prepare cache directories).
std::string EncodeEntryMeta(const EntryMeta& meta);
Status ReadEntryMeta(const std::string& path, EntryMeta* meta);

}  // namespace fanout

#endif  // FANOUT_CORE_ENTRY_META_H_
