// Stress clients: raw-socket HTTP/1.1 clients of fanoutd that behave in one
// of many ways (Behaviour) and check every response they get.
//
// What a client checks (the point of the stress test):
//   - every body byte equals the origin's byte at its offset (a 206 at the
//     offset its Content-Range names);
//   - a body is either whole (exactly the object's size, or the range's)
//     or visibly incomplete: the connection ended before Content-Length
//     bytes or before the last chunk. A visibly incomplete body is accepted
//     only if the client stopped reading on purpose (or for longer than
//     fanoutd's client_timeout), or the origin had injected a fault on the
//     URL by then; never a short body that looks complete;
//   - the status fits the request (200, 206 with the right Content-Range,
//     416 with "bytes */size", 304 only for a matching If-None-Match; 502
//     and 504 only after an upstream fault), X-Cache is MISS, JOIN or HIT
//     (MISS, JOIN or BYPASS for a no-store object), the ETag is the origin's,
//     Content-Length is the object's size unless
//     the origin lied about it;
//   - HEAD and 304 carry no body, and nothing follows the last response on
//     a connection the request asked to close.
// Failures go to RunContext::Fail with the URL and what the client did.
//
// Thread-safety: each client runs on its own thread; the functions share
// only the RunContext and the origin's counters, both thread-safe.

#ifndef FANOUT_TESTS_STRESS_STRESS_CLIENT_H_
#define FANOUT_TESTS_STRESS_STRESS_CLIENT_H_

#include <chrono>
#include <cstdint>
#include <string>

#include "tests/stress/stress_origin.h"
#include "tests/stress/stress_random.h"
#include "tests/stress/stress_run.h"

namespace fanout::stress {

// What the test knows about a URL (fanoutd learns it from the origin).
struct UrlFacts {
  std::string path;
  std::uint64_t size = 0;
  bool chunked = false;
  std::string etag;  // StressOrigin::ETagOf(path, size)
  bool no_store = false;  // never kept: X-Cache MISS, JOIN or BYPASS, never HIT
};

enum class Behaviour {
  kFullGet,        // one GET, read at full speed
  kRange,          // one GET with a single range (inside, ahead, suffix, open,
                   // unsatisfiable) or several ranges
  kHead,           // one HEAD
  kKeepAlive,      // 2-5 requests one after another on one connection
  kPipeline,       // 2-3 requests in one write, answers read in order
  kSlowReader,     // small receive buffer, small reads with pauses
  kStopAndResume,  // reads, stops for up to a second, reads on
  kCloseMidBody,   // closes (FIN or RST) at a random point, maybe before the head
  kConditional,    // HEAD, then GET with If-None-Match: the ETag it saw (or a wrong one)
  kStallPastTimeout,  // stops reading for longer than fanoutd's client_timeout,
                      // then reads on: the body comes whole or visibly cut
};
const char* BehaviourName(Behaviour behaviour);

struct ClientEnv {
  int port = 0;
  RunContext* run = nullptr;
  const StressOrigin* origin = nullptr;
  // A client that gets no byte for this long reports a hang.
  std::chrono::milliseconds read_timeout{20000};
  // fanoutd's client_timeout (kStallPastTimeout stalls longer).
  std::chrono::milliseconds daemon_client_timeout{6000};
  std::string label;  // who the client is, for reports ("crowd 3 client 17")
  // The origin as a proxy client names it ("127.0.0.1:port"); when set,
  // every other request of a client is sent in absolute form
  // ("GET http://127.0.0.1:port/path"), through fanoutd's forward proxy.
  std::string proxy_authority;
};

// Runs one client of `behaviour` for url to its end. Returns true if every
// response passed its checks (failures are also recorded in env.run).
bool RunClient(const ClientEnv& env, const UrlFacts& url, Behaviour behaviour, StressRng rng);

// One plain GET read at full speed; the client closes (FIN, or RST if
// `reset`) once it has `close_at` body bytes (never, if past the end).
// Returns true if the response passed its checks; *whole (if given) says
// whether the body came whole.
bool GetAndCloseAt(const ClientEnv& env, const UrlFacts& url, std::uint64_t close_at,
                   bool reset, bool* whole = nullptr);

// POST /purge?url=PATH on the admin port. True if answered 200 or 404
// (nothing stored); otherwise records a failure.
bool PurgeThroughAdmin(const ClientEnv& env, int admin_port, const std::string& path);
// POST /purge-all. True if answered 200; otherwise records a failure.
bool PurgeAllThroughAdmin(const ClientEnv& env, int admin_port);

}  // namespace fanout::stress

#endif  // FANOUT_TESTS_STRESS_STRESS_CLIENT_H_
