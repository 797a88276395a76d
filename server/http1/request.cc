#include "server/http1/request.h"

#include "core/header_text.h"

namespace fanout {

Request Request::From(const RequestHead& head, std::string remote_addr) {
  Request req;
  req.method = head.method;
  req.target = head.target;
  req.minor_version = head.minor_version;
  req.headers.reserve(head.header_count);
  for (std::size_t i = 0; i < head.header_count; ++i) {
    req.headers.emplace_back(head.headers[i].first, head.headers[i].second);
  }
  // An absolute-form target's authority is the request's host (RFC 9112
  // §3.2.2): the Host field says the same from here on.
  if (head.form == RequestHead::TargetForm::kAbsolute) {
    req.scheme = head.scheme;
    req.authority = head.host;
    for (auto& [name, value] : req.headers) {
      if (EqualsIgnoreCase(name, "Host")) value = head.host;
    }
  }
  req.remote_addr = std::move(remote_addr);
  req.framing = head.framing;
  req.content_length = head.content_length;
  return req;
}

bool Request::has_header(std::string_view name) const {
  for (const auto& [n, v] : headers) {
    if (EqualsIgnoreCase(n, name)) return true;
  }
  return false;
}

}  // namespace fanout
