// Fuzzes ChunkedDecoder (server/upstream_response_parser), which decodes
// chunked request bodies from clients and chunked responses from upstreams.
//
// Input: the first byte picks the slice size the body arrives in (0: one
// piece, else 1 to 31 bytes); the rest is the encoded body and what
// follows it.
// Invariants: the decoded bytes, the verdict (done / malformed / more) and
// where the body ends do not depend on how the input was sliced; the
// decoded body is never longer than its encoding; after kDone, the bytes
// consumed end with CRLF.

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "server/upstream_response_parser.h"
#include "tests/fuzz/fuzz_check.h"

namespace fanout {
namespace {

struct Decoded {
  ChunkedDecoder::Result result = ChunkedDecoder::Result::kMore;
  std::string body;
  std::size_t end = 0;  // input bytes that belonged to the body (kDone)
};

Decoded Decode(std::string_view input, std::size_t slice) {
  ChunkedDecoder decoder;
  Decoded out;
  std::size_t at = 0;
  while (at < input.size()) {
    const std::string_view piece = input.substr(at, slice == 0 ? input.size() : slice);
    std::vector<std::string_view> views;
    std::size_t consumed = 0;
    out.result = decoder.Feed(piece, &views, &consumed);
    for (auto v : views) {
      FUZZ_CHECK(v.data() >= piece.data() && v.data() + v.size() <= piece.data() + piece.size());
      out.body.append(v);
    }
    if (out.result == ChunkedDecoder::Result::kDone) {
      out.end = at + consumed;
      return out;
    }
    if (out.result == ChunkedDecoder::Result::kMalformed) return out;
    at += piece.size();
  }
  return out;
}

}  // namespace
}  // namespace fanout

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace fanout;
  if (size == 0) return 0;
  const std::size_t slice = data[0] % 32;
  const std::string_view input(reinterpret_cast<const char*>(data + 1), size - 1);
  const Decoded whole = Decode(input, 0);
  FUZZ_CHECK(whole.body.size() <= input.size());
  if (whole.result == ChunkedDecoder::Result::kDone) {
    FUZZ_CHECK(whole.end >= 5 && whole.end <= input.size());
    FUZZ_CHECK(input.substr(whole.end - 2, 2) == "\r\n");
  }
  if (slice == 0) return 0;
  const Decoded sliced = Decode(input, slice);
  FUZZ_CHECK(sliced.result == whole.result);
  if (whole.result != ChunkedDecoder::Result::kMalformed) FUZZ_CHECK(sliced.body == whole.body);
  FUZZ_CHECK(sliced.end == whole.end);
  return 0;
}
