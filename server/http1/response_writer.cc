#include "server/http1/response_writer.h"

#include "core/header_text.h"
#include "server/http_headers.h"

namespace fanout {

std::string_view ReasonPhrase(int status) {
  switch (status) {
    case 100: return "Continue";
    case 101: return "Switching Protocols";
    case 102: return "Processing";
    case 103: return "Early Hints";
    case 200: return "OK";
    case 201: return "Created";
    case 202: return "Accepted";
    case 203: return "Non-Authoritative Information";
    case 204: return "No Content";
    case 205: return "Reset Content";
    case 206: return "Partial Content";
    case 207: return "Multi-Status";
    case 300: return "Multiple Choices";
    case 301: return "Moved Permanently";
    case 302: return "Found";
    case 303: return "See Other";
    case 304: return "Not Modified";
    case 307: return "Temporary Redirect";
    case 308: return "Permanent Redirect";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 406: return "Not Acceptable";
    case 408: return "Request Timeout";
    case 409: return "Conflict";
    case 410: return "Gone";
    case 411: return "Length Required";
    case 412: return "Precondition Failed";
    case 413: return "Content Too Large";
    case 414: return "URI Too Long";
    case 415: return "Unsupported Media Type";
    case 416: return "Range Not Satisfiable";
    case 417: return "Expectation Failed";
    case 421: return "Misdirected Request";
    case 422: return "Unprocessable Content";
    case 425: return "Too Early";
    case 426: return "Upgrade Required";
    case 428: return "Precondition Required";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 451: return "Unavailable For Legal Reasons";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    case 505: return "HTTP Version Not Supported";
    default: return "";
  }
}

void AppendResponseHead(int status, const HeaderList& headers, OwnFields own,
                        const ResponseFraming& framing, ConnectionAfter after, std::string* out) {
  out->append("HTTP/1.1 ").append(std::to_string(status)).push_back(' ');
  out->append(ReasonPhrase(status)).append("\r\n");
  const std::string connection = HeaderValue(headers, "Connection");
  for (const auto& [name, value] : headers) {
    if (IsHopByHop(name, connection) || EqualsIgnoreCase(name, "Content-Length")) continue;
    bool replaced = false;
    for (const auto& field : own) replaced = replaced || EqualsIgnoreCase(name, field.first);
    if (!replaced) AppendHeaderLine(name, value, out);
  }
  for (const auto& [name, value] : own) AppendHeaderLine(name, value, out);
  if (StatusHasBody(status)) {
    if (framing.length) AppendHeaderLine("Content-Length", std::to_string(*framing.length), out);
    else if (!framing.until_close) AppendHeaderLine("Transfer-Encoding", "chunked", out);
  }
  if (after == ConnectionAfter::kClose) AppendHeaderLine("Connection", "close", out);
  if (after == ConnectionAfter::kKeepOpenHttp10) AppendHeaderLine("Connection", "keep-alive", out);
  out->append("\r\n");
}

}  // namespace fanout
