// Response: what a handler answers — a status, the end-to-end headers in
// the order they go out, and where the body comes from: text of fanoutd's
// own, or a byte range of a cache entry's stream file (read by a reader of
// its own, from the stream as the fetch writes it). The connection loop
// gives it to SendResponse (response_sender.h), which writes the head
// (http1/response_writer.h) and sends the body.
//
// Thread-safety: a value owned by the connection's thread.

#ifndef FANOUT_SERVER_RESPONSE_H_
#define FANOUT_SERVER_RESPONSE_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "core/entry.h"
#include "core/header_text.h"
#include "core/response_head.h"
#include "server/access_log.h"

namespace fanout {

struct Response {
  int status = 200;
  HeaderList headers;

  // The body: `text`, unless `entry` is set.
  std::string text;
  // Bytes [offset, offset + length) of the entry's stream; without a
  // length, from offset to wherever the stream ends (sent chunked).
  std::shared_ptr<Entry> entry;
  std::uint64_t offset = 0;
  std::optional<std::uint64_t> length;

  bool head_only = false;  // HEAD: the framing a GET would get, no body
  // A body of unknown length sent without chunks, ended by closing the
  // connection (to an HTTP/1.0 client).
  bool until_close = false;
  bool close = false;      // the connection's last response
  // The request's access log line (may be null): gets the bytes sent.
  std::shared_ptr<AccessLogRecord> record;

  // Replaces every field named `name` with one.
  void Set(std::string_view name, std::string value) {
    Erase(name);
    headers.emplace_back(std::string(name), std::move(value));
  }
  void Add(std::string_view name, std::string value) {
    headers.emplace_back(std::string(name), std::move(value));
  }
  void Erase(std::string_view name) {
    std::erase_if(headers, [&](const auto& field) { return EqualsIgnoreCase(field.first, name); });
  }
  bool Has(std::string_view name) const {
    for (const auto& [n, v] : headers) {
      if (EqualsIgnoreCase(n, name)) return true;
    }
    return false;
  }
  std::string Get(std::string_view name) const { return HeaderValue(headers, name); }
  // An answer of fanoutd's own: `body` as text/plain.
  void SetText(int code, std::string body) {
    status = code;
    text = std::move(body);
    entry.reset();
    Set("Content-Type", "text/plain; charset=utf-8");
  }
};

}  // namespace fanout

#endif  // FANOUT_SERVER_RESPONSE_H_
