// Fuzzes ParseRequestHead (server/http1/request_head), the one request
// parser of the data plane.
//
// Input: the first byte picks how the rest arrives: in one piece, or in
// slices of 1 to 16 bytes (as a client may send it). The parser is run on
// every prefix a connection would hold after each read.
// Invariants: a prefix never completes a head the whole input does not
// (the verdict on a prefix is "incomplete" or the whole's verdict, and an
// error never turns into success with more bytes); a complete head lies
// inside the input, its views point into it, its fields are tokens with
// values free of CR, LF and NUL; Content-Length and chunked never both
// frame it; an error has a status among those the parser documents.

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "server/http1/request_head.h"
#include "tests/fuzz/fuzz_check.h"

namespace fanout {
namespace {

bool Inside(std::string_view view, std::string_view whole) {
  return view.empty() ||
         (view.data() >= whole.data() && view.data() + view.size() <= whole.data() + whole.size());
}

void CheckComplete(const RequestHead& head, std::string_view bytes) {
  FUZZ_CHECK(head.size > 0 && head.size <= bytes.size());
  FUZZ_CHECK(bytes.substr(head.size - 4, 4) == "\r\n\r\n");
  FUZZ_CHECK(!head.method.empty() && Inside(head.method, bytes));
  // An absolute-form target without a path is routed as "/".
  FUZZ_CHECK(!head.target.empty() && (Inside(head.target, bytes) || head.target == "/"));
  FUZZ_CHECK(head.minor_version == 0 || head.minor_version == 1);
  FUZZ_CHECK(head.header_count <= kMaxFields);
  for (std::size_t i = 0; i < head.header_count; ++i) {
    const auto& [name, value] = head.headers[i];
    FUZZ_CHECK(!name.empty() && Inside(name, bytes) && Inside(value, bytes));
    FUZZ_CHECK(name.find_first_of(":\r\n ") == std::string_view::npos);
    FUZZ_CHECK(value.find_first_of(std::string_view("\r\n\0", 3)) == std::string_view::npos);
  }
  if (head.form == RequestHead::TargetForm::kOrigin) FUZZ_CHECK(head.target.front() == '/');
  if (head.framing != RequestHead::Framing::kLength) FUZZ_CHECK(head.content_length == 0);
  if (head.minor_version == 1) FUZZ_CHECK(head.Find("Host").has_value());
}

bool ValidStatus(int status) {
  return status == 400 || status == 414 || status == 417 || status == 431 || status == 501 ||
         status == 505;
}

}  // namespace
}  // namespace fanout

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace fanout;
  if (size == 0) return 0;
  const std::size_t slice = data[0] % 17;  // 0: one piece
  const std::string bytes(reinterpret_cast<const char*>(data + 1), size - 1);
  RequestHead whole_head;
  const HeadParse whole = ParseRequestHead(bytes, &whole_head);
  if (whole.state == HeadParse::State::kComplete) CheckComplete(whole_head, bytes);
  if (whole.state == HeadParse::State::kError) {
    FUZZ_CHECK(ValidStatus(whole.status) && !whole.reason.empty());
  }
  if (slice == 0) return 0;
  for (std::size_t n = slice; n < bytes.size(); n += slice) {
    const std::string_view prefix(bytes.data(), n);
    RequestHead head;
    const HeadParse part = ParseRequestHead(prefix, &head);
    if (part.state == HeadParse::State::kIncomplete) continue;
    // Decided on a prefix: the whole input gets the same verdict.
    FUZZ_CHECK(part.state == whole.state);
    if (part.state == HeadParse::State::kComplete) {
      FUZZ_CHECK(head.size == whole_head.size && head.header_count == whole_head.header_count);
    } else {
      FUZZ_CHECK(part.status == whole.status);
    }
    break;
  }
  return 0;
}
