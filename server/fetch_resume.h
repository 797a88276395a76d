// Resuming a fetch whose upstream broke off mid-body: which responses may
// be resumed, the request for the rest, and whether its answer continues
// the same bytes (RFC 9110 §13.1.5 If-Range, §14 ranges).
//
// A response may be resumed if it is a 200 with a strong validator — an
// ETag that is not weak, or a Last-Modified at least 60 s before its Date
// (§8.8.2.2) — and does not say "Accept-Ranges: none". The rest is asked
// for with "Range: bytes=<frontier>-" and "If-Range: <validator>": an
// origin whose representation changed answers 200, and that, or a 206 that
// does not start at the frontier, ends at another length or names another
// validator, is refused.
//
// Thread-safety: pure functions.

#ifndef FANOUT_SERVER_FETCH_RESUME_H_
#define FANOUT_SERVER_FETCH_RESUME_H_

#include <cstdint>
#include <optional>
#include <string>

#include "core/response_head.h"
#include "server/upstream_response_parser.h"

namespace fanout {

struct ResumeValidator {
  std::string etag;           // the strong ETag, or empty
  std::string last_modified;  // when there is no ETag: the strong date
  // What If-Range carries: the ETag if any, else the date.
  const std::string& if_range() const { return etag.empty() ? last_modified : etag; }
};

// The validator a resume of `head` relies on; nullopt (with the reason in
// *why_not) if the response may not be resumed.
std::optional<ResumeValidator> ResumeValidatorOf(const UpstreamResponseHead& head,
                                                 std::string* why_not);

// The request headers for the rest from byte `from`: the original ones
// without any range or condition of their own, plus Range and If-Range.
HeaderList ResumeRequestHeaders(const HeaderList& original, std::uint64_t from,
                                const ResumeValidator& validator);

// Whether `head`, the answer to a resume from `from`, goes on with the same
// body to its end. `total`: the body's length if known. Empty if it does
// (then *length holds the body's whole length); otherwise why not.
std::string CheckResumeResponse(const UpstreamResponseHead& head, std::uint64_t from,
                                std::optional<std::uint64_t> total,
                                const ResumeValidator& validator, std::uint64_t* length);

}  // namespace fanout

#endif  // FANOUT_SERVER_FETCH_RESUME_H_
