#include "core/entry_meta.h"

#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "core/durable_file.h"

namespace fanout {
namespace {

using json = nlohmann::json;
using std::chrono::milliseconds;
using std::chrono::system_clock;

constexpr int kFormatVersion = 1;

std::int64_t ToMs(system_clock::time_point t) {
  return std::chrono::duration_cast<milliseconds>(t.time_since_epoch()).count();
}

system_clock::time_point FromMs(std::int64_t ms) {
  return system_clock::time_point(std::chrono::duration_cast<system_clock::duration>(milliseconds(ms)));
}

json Headers(const HeaderList& headers) {
  json out = json::array();
  for (const auto& [name, value] : headers) out.push_back({name, value});
  return out;
}

HeaderList Headers(const json& j) {
  HeaderList out;
  for (const auto& pair : j) {
    out.emplace_back(pair.at(0).get<std::string>(), pair.at(1).get<std::string>());
  }
  return out;
}

}  // namespace

Status WriteEntryMeta(const std::string& path, const EntryMeta& meta) {
  return WriteFileAtomically(path, EncodeEntryMeta(meta));
}

std::string EncodeEntryMeta(const EntryMeta& meta) {
  json j = {
      {"version", kFormatVersion},
      {"key", meta.key},
      {"status", meta.head.status},
      {"headers", Headers(meta.head.headers)},
      {"requested_at_ms", ToMs(meta.head.requested_at)},
      {"received_at_ms", ToMs(meta.head.received_at)},
      {"upstream_age", meta.head.upstream_age},
      {"body_file", meta.body_file},
      {"body_length", meta.body_length},
      {"vary", Headers(meta.vary)},
  };
  if (meta.head.content_length) j["content_length"] = *meta.head.content_length;
  return j.dump() + "\n";
}

Status ReadEntryMeta(const std::string& path, EntryMeta* meta) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::NotFound("cannot open " + path);
  std::stringstream text;
  text << in.rdbuf();
  try {
    const json j = json::parse(text.str());
    if (j.at("version").get<int>() != kFormatVersion) {
      return Status::Corruption(path + ": unknown format version");
    }
    EntryMeta m;
    m.key = j.at("key").get<std::string>();
    m.head.status = j.at("status").get<int>();
    m.head.headers = Headers(j.at("headers"));
    m.head.requested_at = FromMs(j.at("requested_at_ms").get<std::int64_t>());
    m.head.received_at = FromMs(j.at("received_at_ms").get<std::int64_t>());
    m.head.upstream_age = j.at("upstream_age").get<std::uint64_t>();
    if (j.contains("content_length")) {
      m.head.content_length = j.at("content_length").get<std::uint64_t>();
    }
    m.body_file = j.at("body_file").get<std::string>();
    m.body_length = j.at("body_length").get<std::uint64_t>();
    m.vary = Headers(j.at("vary"));
    if (m.key.empty() || m.body_file.empty() || m.body_file.find('/') != std::string::npos ||
        m.head.status < 200 || m.head.status > 999 ||
        (m.head.content_length && *m.head.content_length != m.body_length)) {
      return Status::Corruption(path + ": inconsistent fields");
    }
    *meta = std::move(m);
    return Status::Ok();
  } catch (const json::exception& e) {
    return Status::Corruption(path + ": " + e.what());
  }
}

}  // namespace fanout
