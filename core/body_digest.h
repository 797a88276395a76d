// BodyDigest: checks a body against the digest its response announced
// (digest_field.h), hashing the bytes as they are written so that the
// check at the end costs nothing more than the last update.
//
// Thread-safety: one writer (the fetch's thread) at a time.

#ifndef FANOUT_CORE_BODY_DIGEST_H_
#define FANOUT_CORE_BODY_DIGEST_H_

#include <cstddef>
#include <memory>

#include "core/digest_field.h"
#include "core/status.h"

namespace fanout {

class BodyDigest {
 public:
  explicit BodyDigest(AnnouncedDigest expected);
  ~BodyDigest();
  BodyDigest(BodyDigest&&) noexcept;
  BodyDigest& operator=(BodyDigest&&) noexcept;

  void Update(const char* data, std::size_t n);
  // Whether the bytes given so far are the announced ones. kCorruption
  // names the field, the algorithm and both digests (base64) otherwise.
  // Call once, after the last Update.
  Status Verify();

  const AnnouncedDigest& expected() const { return expected_; }

 private:
  struct Context;
  AnnouncedDigest expected_;
  std::unique_ptr<Context> context_;
};

}  // namespace fanout

#endif  // FANOUT_CORE_BODY_DIGEST_H_
