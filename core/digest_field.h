// Integrity fields (RFC 9530): the Repr-Digest and Content-Digest a
// response may carry, parsed into the digests fanoutd can check.
//
// Both fields are Structured Field Dictionaries (RFC 8941) of
// algorithm = :base64 bytes:. Only sha-256 and sha-512 are used (the
// algorithms RFC 9530 calls active); members of other algorithms, members
// with parameters, and values of the wrong length are skipped. A field
// that does not parse as a dictionary of byte sequences is ignored whole,
// as RFC 8941 requires.
//
// Thread-safety: pure functions.

#ifndef FANOUT_CORE_DIGEST_FIELD_H_
#define FANOUT_CORE_DIGEST_FIELD_H_

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/response_head.h"

namespace fanout {

enum class DigestAlgorithm { kSha256, kSha512 };

struct AnnouncedDigest {
  std::string field;  // "Repr-Digest" or "Content-Digest"
  DigestAlgorithm algorithm = DigestAlgorithm::kSha256;
  std::string bytes;  // the raw digest: 32 or 64 bytes

  // "sha-256" or "sha-512".
  std::string algorithm_name() const;
};

// The usable members of one field value, in order. Empty if none, or if
// the value is not a dictionary of byte sequences.
std::vector<AnnouncedDigest> ParseDigestField(std::string_view field, std::string_view value);

// The digest to check a complete 200 response's body against: sha-512 before
// sha-256, Repr-Digest before Content-Digest (for a whole 200 response
// without a range both cover exactly the bytes sent). Several lines of one
// field are joined as one list.
std::optional<AnnouncedDigest> ChooseDigest(const HeaderList& headers);

// Base64 (RFC 4648 §4, padded) to bytes; nullopt if malformed.
std::optional<std::string> DecodeBase64(std::string_view text);
std::string EncodeBase64(std::string_view bytes);

}  // namespace fanout

#endif  // FANOUT_CORE_DIGEST_FIELD_H_
