#include "core/entry_meta.h"

#include <cerrno>
#include <chrono>
#include <cstring>
#include <exception>
#include <fstream>
#include <limits>
#include <set>
#include <sstream>
#include <string_view>

#include <nlohmann/json.hpp>

#include "core/durable_file.h"

namespace fanout {
namespace {

using json = nlohmann::json;
using std::chrono::milliseconds;
using std::chrono::system_clock;

constexpr int kFormatVersion = 2;
constexpr int kOldestReadableVersion = 1;

// A metadata file is a few KiB (a URL and a response head); anything this
// large is not one, and is rejected before it is read into memory.
constexpr std::uintmax_t kMaxFileSize = 16u << 20;

// The latest time system_clock can hold, in whole milliseconds: times are
// stored in 0..kMaxMs so that converting them back never overflows.
constexpr std::int64_t kMaxMs =
    std::chrono::duration_cast<milliseconds>(system_clock::duration::max()).count();

// ---- byte strings (format version 2) ----

// Each byte as the code point of the same value, written as UTF-8: bytes
// below 0x80 as themselves, the others as two bytes 0xC2/0xC3 + 0x80-0xBF.
std::string BytesToText(std::string_view bytes) {
  std::string out;
  out.reserve(bytes.size());
  for (const char c : bytes) {
    const auto b = static_cast<unsigned char>(c);
    if (b < 0x80) {
      out.push_back(c);
    } else {
      out.push_back(static_cast<char>(0xC0 | (b >> 6)));
      out.push_back(static_cast<char>(0x80 | (b & 0x3F)));
    }
  }
  return out;
}

// The inverse of BytesToText; false if `text` holds a code point above
// U+00FF (or is not UTF-8, which the JSON parser already rules out).
bool TextToBytes(std::string_view text, std::string* bytes) {
  std::string out;
  out.reserve(text.size());
  for (std::size_t i = 0; i < text.size(); ++i) {
    const auto b = static_cast<unsigned char>(text[i]);
    if (b < 0x80) {
      out.push_back(text[i]);
      continue;
    }
    if ((b != 0xC2 && b != 0xC3) || i + 1 == text.size()) return false;
    const auto next = static_cast<unsigned char>(text[++i]);
    if ((next & 0xC0) != 0x80) return false;
    out.push_back(static_cast<char>(((b & 0x03) << 6) | (next & 0x3F)));
  }
  *bytes = std::move(out);
  return true;
}

// ---- encoding ----

std::int64_t ToMs(system_clock::time_point t) {
  const std::int64_t ms =
      std::chrono::duration_cast<milliseconds>(t.time_since_epoch()).count();
  return ms < 0 ? 0 : ms;
}

json EncodeHeaders(const HeaderList& headers) {
  json out = json::array();
  for (const auto& [name, value] : headers) {
    out.push_back(json::array({BytesToText(name), BytesToText(value)}));
  }
  return out;
}

// ---- decoding ----

// Reads the fields of one decoded JSON object, strictly: each getter
// returns false and records why if the field is missing, of another type
// or out of range. Never throws.
class FieldReader {
 public:
  FieldReader(const json& object, int version) : object_(object), version_(version) {}

  bool String(const char* name, std::string* out) {
    const json* v = Field(name);
    return v && StringValue(*v, name, out);
  }

  bool Number(const char* name, std::uint64_t max, std::uint64_t* out) {
    const json* v = Field(name);
    if (!v) return false;
    // A float (1.5, 1e3) is not a whole number here, nor is a negative one.
    if (!v->is_number_unsigned()) return Fail(name, "not a whole number >= 0");
    const auto n = v->get<std::uint64_t>();
    if (n > max) return Fail(name, "out of range (at most " + std::to_string(max) + ")");
    *out = n;
    return true;
  }

  bool Time(const char* name, system_clock::time_point* out) {
    std::uint64_t ms = 0;
    if (!Number(name, static_cast<std::uint64_t>(kMaxMs), &ms)) return false;
    *out = system_clock::time_point(std::chrono::duration_cast<system_clock::duration>(
        milliseconds(static_cast<std::int64_t>(ms))));
    return true;
  }

  bool Headers(const char* name, HeaderList* out) {
    const json* v = Field(name);
    if (!v) return false;
    if (!v->is_array()) return Fail(name, "not an array");
    HeaderList headers;
    headers.reserve(v->size());
    for (const json& pair : *v) {
      if (!pair.is_array() || pair.size() != 2) return Fail(name, "not a [name, value] pair");
      std::string field_name, field_value;
      if (!StringValue(pair[0], name, &field_name) ||
          !StringValue(pair[1], name, &field_value)) {
        return false;
      }
      headers.emplace_back(std::move(field_name), std::move(field_value));
    }
    *out = std::move(headers);
    return true;
  }

  bool Fail(const std::string& name, const std::string& problem) {
    if (error_.empty()) error_ = name + ": " + problem;
    return false;
  }
  const std::string& error() const { return error_; }

 private:
  const json* Field(const char* name) {
    const auto it = object_.find(name);
    if (it == object_.end()) {
      Fail(name, "missing");
      return nullptr;
    }
    return &*it;
  }

  bool StringValue(const json& v, const char* name, std::string* out) {
    const std::string* text = v.get_ptr<const std::string*>();
    if (text == nullptr) return Fail(name, "not a string");
    if (version_ == 1) {
      *out = *text;
      return true;
    }
    if (!TextToBytes(*text, out)) return Fail(name, "a character above U+00FF");
    return true;
  }

  const json& object_;
  const int version_;
  std::string error_;
};

const std::set<std::string>& KnownFields() {
  static const std::set<std::string> kFields = {
      "version", "key", "status", "headers", "requested_at_ms", "received_at_ms",
      "upstream_age", "content_length", "body_file", "body_length", "vary"};
  return kFields;
}

Status Decode(const std::string& text, const std::string& where, EntryMeta* meta,
              EntryMetaKind kind) {
  auto corrupt = [&](const std::string& why) { return Status::Corruption(where + ": " + why); };
  const json j = json::parse(text, /*cb=*/nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return corrupt("not valid JSON");
  if (!j.is_object()) return corrupt("not a JSON object");
  for (const auto& [name, value] : j.items()) {
    (void)value;
    if (!KnownFields().count(name)) return corrupt("unknown field '" + name + "'");
  }
  std::uint64_t version = 0;
  {
    FieldReader version_reader(j, kFormatVersion);
    if (!version_reader.Number("version", std::numeric_limits<int>::max(), &version)) {
      return corrupt(version_reader.error());
    }
  }
  if (version < kOldestReadableVersion || version > kFormatVersion) {
    return corrupt("unknown format version " + std::to_string(version));
  }
  FieldReader r(j, static_cast<int>(version));
  EntryMeta m;
  std::uint64_t status = 0;
  bool ok = r.String("key", &m.key) && r.Number("status", 999, &status) &&
            r.Headers("headers", &m.head.headers) &&
            r.Time("requested_at_ms", &m.head.requested_at) &&
            r.Time("received_at_ms", &m.head.received_at) &&
            r.Number("upstream_age", std::numeric_limits<std::uint64_t>::max(),
                     &m.head.upstream_age) &&
            r.String("body_file", &m.body_file) &&
            r.Number("body_length", std::numeric_limits<std::uint64_t>::max(),
                     &m.body_length) &&
            r.Headers("vary", &m.vary);
  if (ok && j.contains("content_length")) {
    std::uint64_t length = 0;
    ok = r.Number("content_length", std::numeric_limits<std::uint64_t>::max(), &length);
    m.head.content_length = length;
  }
  if (!ok) return corrupt(r.error());
  m.head.status = static_cast<int>(status);
  if (m.key.empty()) return corrupt("key: empty");
  if (m.head.status < 200) return corrupt("status: out of range (200 to 999)");
  if (m.body_file.empty() || m.body_file.find('/') != std::string::npos ||
      m.body_file == "." || m.body_file == "..") {
    return corrupt("body_file: not a file name");
  }
  if (m.head.content_length &&
      (kind == EntryMetaKind::kPartial ? *m.head.content_length <= m.body_length
                                       : *m.head.content_length != m.body_length)) {
    return corrupt(kind == EntryMetaKind::kPartial ? "content_length: not above body_length"
                                                   : "content_length: differs from body_length");
  }
  *meta = std::move(m);
  return Status::Ok();
}

}  // namespace

Status WriteEntryMeta(const std::string& path, const EntryMeta& meta) {
  return WriteFileAtomically(path, EncodeEntryMeta(meta));
}

std::string EncodeEntryMeta(const EntryMeta& meta) {
  json j = {
      {"version", kFormatVersion},
      {"key", BytesToText(meta.key)},
      {"status", meta.head.status},
      {"headers", EncodeHeaders(meta.head.headers)},
      {"requested_at_ms", ToMs(meta.head.requested_at)},
      {"received_at_ms", ToMs(meta.head.received_at)},
      {"upstream_age", meta.head.upstream_age},
      {"body_file", BytesToText(meta.body_file)},
      {"body_length", meta.body_length},
      {"vary", EncodeHeaders(meta.vary)},
  };
  if (meta.head.content_length) j["content_length"] = *meta.head.content_length;
  // Every string is valid UTF-8 by construction, so dump() cannot throw.
  return j.dump() + "\n";
}

Status DecodeEntryMeta(const std::string& text, const std::string& where, EntryMeta* meta,
                       EntryMetaKind kind) {
  // Decode() uses no throwing calls; the catch is the edge's guarantee that
  // nothing from nlohmann::json (or an allocation) ever escapes.
  try {
    return Decode(text, where, meta, kind);
  } catch (const std::exception& e) {
    return Status::Corruption(where + ": " + e.what());
  }
}

Status ReadEntryMeta(const std::string& path, EntryMeta* meta, EntryMetaKind kind) {
  errno = 0;
  std::ifstream in(path, std::ios::binary | std::ios::ate);
  if (!in) return Status::NotFound("cannot open " + path + ": " + std::strerror(errno));
  const std::streamoff size = in.tellg();
  if (size < 0) return Status::IOError("cannot read " + path + ": " + std::strerror(errno));
  if (static_cast<std::uintmax_t>(size) > kMaxFileSize) {
    return Status::Corruption(path + ": " + std::to_string(size) + " bytes, too large");
  }
  in.seekg(0);
  std::string text(static_cast<std::size_t>(size), '\0');
  errno = 0;
  if (!in.read(text.data(), size)) {
    return Status::IOError("cannot read " + path + ": " +
                           (errno != 0 ? std::strerror(errno) : "shorter than its size"));
  }
  return DecodeEntryMeta(text, path, meta, kind);
}

}  // namespace fanout
