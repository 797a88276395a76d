// EntryMeta: what fanout stores beside an entry's body file so the entry
// survives restarts — the key, the response head (status, headers, times),
// the body file's name and length, and the request headers a Vary response
// was selected by. Stored as <hash>.meta (JSON) next to its body file.
//
// WriteEntryMeta is crash-safe: the file is written under a temporary
// name, fsynced, renamed into place and the directory fsynced, so a reader
// sees the old metadata or the new, never a mix. ReadEntryMeta rejects
// anything it cannot fully understand (kCorruption), so a damaged entry is
// discarded instead of served. Pure functions; any thread; none throws.
//
// File format, version 2 (written): one JSON object and a newline,
//
//   {"body_file":S,"body_length":U,"content_length":U,"headers":[[S,S],...],
//    "key":S,"received_at_ms":T,"requested_at_ms":T,"status":N,
//    "upstream_age":U,"vary":[[S,S],...],"version":2}
//
//   S  a byte string: each byte 0x00-0xFF is stored as the code point
//      U+0000-U+00FF (ISO-8859-1's mapping), which JSON writes as UTF-8 (or
//      a \u escape for controls). ASCII stays readable and any bytes — the
//      network's invalid UTF-8 included — round-trip exactly. A code point
//      above U+00FF is corruption.
//   U  a whole number, 0 to 2^64-1.
//   T  milliseconds since the Unix epoch, 0 to 9223372036854 (the range of
//      std::chrono::system_clock).
//   N  the HTTP status, 200 to 999.
//   headers  the response's end-to-end headers, in order, names as sent.
//   vary     the selecting request headers (lower-case names) and values.
//   content_length  present only if the upstream announced one; then it
//            equals body_length.
//   body_file  a file name in the metadata file's directory (no '/').
//   key      never empty.
// A partial body's record (partial_body.h) has the same format, except
// that content_length, required there, is above body_length (the bytes
// fetched so far).
// Every field but content_length is required; an unknown field, a field of
// another type, a number out of its range, or trailing bytes after the
// object but whitespace is corruption.
//
// Version 1 (still read, never written): the same fields, except that S is
// the JSON string's UTF-8 as is (so version 1 could not store a byte string
// that is not valid UTF-8: the writer threw).

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

// What a metadata file describes: a stored entry, or a partial body.
enum class EntryMetaKind { kEntry, kPartial };

// Writes EncodeEntryMeta(meta) to path atomically (see above). kIOError if
// the file system refuses.
Status WriteEntryMeta(const std::string& path, const EntryMeta& meta);

// The file's contents (format version 2), as WriteEntryMeta writes them
// (for tools that prepare cache directories). Any bytes in any string.
// Times are stored in whole milliseconds (truncated toward zero); a time
// before the Unix epoch is stored as the epoch.
std::string EncodeEntryMeta(const EntryMeta& meta);

// Reads and decodes the file at path. kNotFound if it cannot be opened,
// kCorruption (message starting with path) if it is not a valid version 1
// or 2 file. *meta is written only on success.
Status ReadEntryMeta(const std::string& path, EntryMeta* meta,
                     EntryMetaKind kind = EntryMetaKind::kEntry);

// Decodes a file's contents; `where` (a path) starts every error message.
// kCorruption if `text` is not a valid version 1 or 2 file. *meta is
// written only on success. Decoding what EncodeEntryMeta wrote gives back
// the same fields (times in whole milliseconds).
Status DecodeEntryMeta(const std::string& text, const std::string& where, EntryMeta* meta,
                       EntryMetaKind kind = EntryMetaKind::kEntry);

}  // namespace fanout

#endif  // FANOUT_CORE_ENTRY_META_H_
