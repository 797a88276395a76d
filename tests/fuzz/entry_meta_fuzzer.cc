// Fuzzes DecodeEntryMeta and EncodeEntryMeta (core/entry_meta).
//
// Input: a metadata file's contents. Invariants: decoding never throws and
// fails only with kCorruption naming the file; decoded metadata keeps the
// format's rules (a key, status 200-999, a body file name without '/',
// content_length equal to body_length) and encodes to a version 2 file that
// decodes to the same fields and encodes the same again.
// The input's bytes are also stored as the strings of a metadata record,
// which must encode to valid JSON and decode to exactly those bytes.

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <string>

#include "core/entry_meta.h"
#include "tests/fuzz/fuzz_check.h"

namespace fanout {
namespace {

bool Same(const EntryMeta& a, const EntryMeta& b) {
  return a.key == b.key && a.head.status == b.head.status && a.head.headers == b.head.headers &&
         a.head.content_length == b.head.content_length &&
         a.head.requested_at == b.head.requested_at && a.head.received_at == b.head.received_at &&
         a.head.upstream_age == b.head.upstream_age && a.body_file == b.body_file &&
         a.body_length == b.body_length && a.vary == b.vary;
}

// Encodes m, decodes that (so the text is valid JSON, thus UTF-8), and
// checks both agree.
void CheckRoundTrip(const EntryMeta& m) {
  const std::string text = EncodeEntryMeta(m);
  EntryMeta back;
  const Status st = DecodeEntryMeta(text, "encoded", &back);
  if (!st.ok()) std::fprintf(stderr, "%s\n", st.ToString().c_str());
  FUZZ_CHECK(st.ok());
  FUZZ_CHECK(Same(back, m));
  FUZZ_CHECK(EncodeEntryMeta(back) == text);
}

}  // namespace
}  // namespace fanout

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace fanout;
  const std::string input(reinterpret_cast<const char*>(data), size);

  EntryMeta m;
  const Status st = DecodeEntryMeta(input, "fuzz.meta", &m);
  if (!st.ok()) {
    FUZZ_CHECK(st.code() == Status::Code::kCorruption);
    FUZZ_CHECK(st.message().rfind("fuzz.meta: ", 0) == 0);
    // Only the catch-all at the edge would quote nlohmann's exception.
    FUZZ_CHECK(st.message().find("[json.exception.") == std::string::npos);
  } else {
    FUZZ_CHECK(!m.key.empty());
    FUZZ_CHECK(m.head.status >= 200 && m.head.status <= 999);
    FUZZ_CHECK(!m.body_file.empty() && m.body_file.find('/') == std::string::npos);
    FUZZ_CHECK(!m.head.content_length || *m.head.content_length == m.body_length);
    FUZZ_CHECK(m.head.requested_at.time_since_epoch().count() >= 0);
    FUZZ_CHECK(m.head.received_at.time_since_epoch().count() >= 0);
    CheckRoundTrip(m);
  }
  // The same text as a partial body's record: the same rules, but for the
  // lengths, and anything an entry's metadata accepts without a length.
  EntryMeta partial;
  const Status pst = DecodeEntryMeta(input, "fuzz.meta", &partial, EntryMetaKind::kPartial);
  if (!pst.ok()) {
    FUZZ_CHECK(pst.code() == Status::Code::kCorruption);
    FUZZ_CHECK(!st.ok() || m.head.content_length);
  } else {
    FUZZ_CHECK(!partial.head.content_length || *partial.head.content_length > partial.body_length);
    FUZZ_CHECK(partial.head.content_length || st.ok());
  }

  // Any bytes as the strings of a record: the key, a header's name and
  // value, a Vary value (one mapping serves every string).
  if (!input.empty()) {
    EntryMeta raw;
    raw.key = input;
    raw.head.status = 200;
    raw.head.headers = {{input.substr(0, size / 2), input.substr(size / 2)}};
    raw.vary = {{"accept", input}};
    raw.body_file = "x.body";
    raw.body_length = size;
    CheckRoundTrip(raw);
  }
  return 0;
}
