// Fuzzes ParseDigestField, ChooseDigest and the base64 codec
// (core/digest_field).
//
// Input: a field value (Repr-Digest), then optionally "\n" and a second
// value (Content-Digest).
// Invariants: every digest found has the length of its algorithm; a value
// that parses, repeated as "v, v", parses to twice its members; bytes a
// base64 text decodes to encode and decode back to themselves; the chosen
// digest is one of those parsed, and sha-512 whenever one was.

#include <cstddef>
#include <cstdint>
#include <string>

#include "core/digest_field.h"
#include "tests/fuzz/fuzz_check.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace fanout;
  const std::string input(reinterpret_cast<const char*>(data), size);
  const std::size_t newline = input.find('\n');
  const std::string repr = input.substr(0, newline);
  const std::string content = newline == std::string::npos ? "" : input.substr(newline + 1);

  const auto found = ParseDigestField("Repr-Digest", repr);
  bool any_512 = false;
  for (const AnnouncedDigest& d : found) {
    FUZZ_CHECK(d.bytes.size() == (d.algorithm == DigestAlgorithm::kSha256 ? 32u : 64u));
    FUZZ_CHECK(d.field == "Repr-Digest");
    any_512 = any_512 || d.algorithm == DigestAlgorithm::kSha512;
  }
  if (!found.empty()) {
    const auto twice = ParseDigestField("Repr-Digest", repr + ", " + repr);
    FUZZ_CHECK(twice.size() == 2 * found.size());
  }

  if (const auto bytes = DecodeBase64(repr)) {
    const std::string encoded = EncodeBase64(*bytes);
    const auto again = DecodeBase64(encoded);
    FUZZ_CHECK(again && *again == *bytes);
  }
  const auto round = DecodeBase64(EncodeBase64(input));
  FUZZ_CHECK(round && *round == input);

  HeaderList headers = {{"Repr-Digest", repr}};
  if (newline != std::string::npos) headers.emplace_back("content-digest", content);
  const auto chosen = ChooseDigest(headers);
  const auto from_content = ParseDigestField("Content-Digest", content);
  for (const AnnouncedDigest& d : from_content) {
    any_512 = any_512 || d.algorithm == DigestAlgorithm::kSha512;
  }
  FUZZ_CHECK(chosen.has_value() == (!found.empty() || (newline != std::string::npos && !from_content.empty())));
  if (chosen) FUZZ_CHECK((chosen->algorithm == DigestAlgorithm::kSha512) == any_512);
  return 0;
}
