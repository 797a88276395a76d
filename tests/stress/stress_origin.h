// StressOrigin: the stress test's upstream, on raw sockets so that it can
// misbehave in ways a well-behaved HTTP library never would.
//
// It serves the objects it was told about (Define): each path's body is
// OriginServer::OriginBody(path, size), sent with Content-Length or chunked,
// with "Cache-Control: max-age=3600" (or no-store), an ETag (ETagOf) and a Last-Modified
// date; a GET or HEAD carrying the current ETag in If-None-Match, or the
// Last-Modified date in If-Modified-Since, gets 304. A GET with
// "Range: bytes=A-" and a current If-Range (or none) gets the rest from A,
// 206 with Content-Length (what fanoutd asks to resume a broken fetch).
// Unknown paths get 404.
// One thread per connection; keep-alive unless the request says close.
//
// Faults: with probability fault_rate, a GET's response misbehaves in one
// of the ways of Fault (chosen with the seeded RNG from the path and the
// request's ordinal for that path, so a seed replays the same faults). Each
// request and each fault injected is counted per path before the response
// starts, so by the time a client can see the effect of a fault, the fault
// is already counted.
//
// Thread-safety: every public method may be called from any thread.

#ifndef FANOUT_TESTS_STRESS_STRESS_ORIGIN_H_
#define FANOUT_TESTS_STRESS_STRESS_ORIGIN_H_

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <list>
#include <map>
#include <optional>
#include <mutex>
#include <set>
#include <string>
#include <thread>

namespace fanout::stress {

enum class Fault {
  kNone,
  kDropMidBody,      // part of the body, then FIN
  kResetMidBody,     // part of the body, then RST (SO_LINGER 0)
  kStallBeforeHead,  // nothing at all until the peer gives up
  kStallMidBody,     // part of the body, then nothing until the peer gives up
  kLengthTooLong,    // Content-Length larger than the body sent, then FIN
  kExtraBytes,       // the whole body, then junk past its end, then FIN
  kChunkedCut,       // chunked: FIN before the last (zero) chunk
  // Only when forced (OriginObject::forced_fault), never at random:
  kEndlessHead,      // header fields, one after another, until the peer gives up
  kEndlessBody,      // chunked: body bytes without an end until the peer gives up
};
inline constexpr std::size_t kFaultKinds = 10;
const char* FaultName(Fault fault);

// What the origin serves at a path.
struct OriginObject {
  std::uint64_t size = 0;
  bool chunked = false;  // no Content-Length: Transfer-Encoding: chunked
  bool faults_allowed = true;  // false: always served well (liveness probes)
  // "Cache-Control: no-store" instead of "max-age=3600": fanoutd must
  // neither keep it nor let later requests join its fetch.
  bool no_store = false;
  // Every plain GET of the object carries this fault (cut half-way
  // through the body), whatever fault_rate says: for tests that name one.
  std::optional<Fault> forced_fault;
};

class StressOrigin {
 public:
  struct Options {
    std::uint64_t seed = 0;
    // Chance that a GET's response carries a fault. Default: none.
    double fault_rate = 0;
    // Random pauses of 1-5 ms between body writes (one write in 16).
    bool small_stalls = false;
    // How long a stall lasts at most if the peer never gives up; longer
    // than fanoutd's upstream.read_timeout, so that fanoutd gives up first.
    std::chrono::milliseconds stall_limit{10000};
  };

  // Per path, all counted when the request arrives.
  struct Counts {
    int requests = 0;              // every request, GET or HEAD
    int conditional_requests = 0;  // requests with If-None-Match / If-Modified-Since
    int ranged_requests = 0;       // requests with Range (resumes, hedges, pass-through)
    int faults = 0;                // responses that misbehaved
    std::array<int, kFaultKinds> faults_by_kind{};
    // Content-Length values announced that were not the size (kLengthTooLong).
    std::set<std::uint64_t> false_lengths;
  };

  explicit StressOrigin(Options options);
  ~StressOrigin();  // Stop()s
  StressOrigin(const StressOrigin&) = delete;
  StressOrigin& operator=(const StressOrigin&) = delete;

  // Listens on 127.0.0.1 (port 0 picks one). Returns the port, or -1.
  int Start();
  // Closes every connection and joins every thread. Idempotent.
  void Stop();

  // Serves object at path from now on (replacing an earlier definition).
  void Define(const std::string& path, OriginObject object);

  Counts CountsFor(const std::string& path) const;
  // Faults injected so far on path (all kinds / one kind).
  int Faults(const std::string& path) const;
  int Faults(const std::string& path, Fault kind) const;
  // Sums over every path.
  Counts Totals() const;

  // The validators served with path's body.
  static std::string ETagOf(const std::string& path, std::uint64_t size);
  static constexpr const char* kLastModified = "Sun, 01 Nov 2020 10:00:00 GMT";

 private:
  struct Request;
  // How one response goes.
  struct Plan {
    Fault fault = Fault::kNone;
    std::uint64_t cut_at = 0;           // body bytes sent before a mid-body fault
    std::uint64_t declared_length = 0;  // Content-Length announced (known length)
    std::uint64_t rng_seed = 0;         // for chunk sizes, pauses and junk
  };
  struct Worker {
    std::thread thread;
    std::atomic<bool> done{false};
  };

  void AcceptLoop();
  void ServeConnection(int fd);
  // Reads one request head from fd (keeping extra bytes in *pending).
  // False if the peer closed, timed out or sent something unparsable.
  bool ReadRequest(int fd, std::string* pending, Request* request);
  // Answers one request; false if the connection must close after it.
  bool Respond(int fd, const Request& request);
  // Counts the request and plans its response: a fault only for a plain
  // GET of a known object that allows them, with fault_rate's chance.
  Plan Admit(const Request& request, const OriginObject* object);
  // Sends the body from byte `from`, chunked or not, committing plan's
  // fault on the way.
  bool SendBody(int fd, const std::string& path, const OriginObject& object, const Plan& plan,
                std::uint64_t from, bool chunked);
  // Waits until the peer closes, Stop() or stall_limit.
  void StallUntilPeerGivesUp(int fd);
  // The faults that never end (until the peer gives up, Stop() or
  // stall_limit): header fields after `start`, or chunks of path's body.
  void SendEndlessHead(int fd, const std::string& start);
  void SendEndlessBody(int fd, const std::string& path);
  bool SendAll(int fd, const char* data, std::size_t n);
  void ReapFinishedWorkers();

  const Options options_;
  int listen_fd_ = -1;
  std::atomic<bool> stopping_{false};

  mutable std::mutex mu_;
  std::map<std::string, OriginObject> objects_;  // guarded by mu_
  std::map<std::string, Counts> counts_;         // guarded by mu_
  std::set<int> open_fds_;                       // guarded by mu_; shut down by Stop()
  std::list<Worker> workers_;                    // guarded by mu_

  std::thread accept_thread_;  // last: starts once the rest is built
};

}  // namespace fanout::stress

#endif  // FANOUT_TESTS_STRESS_STRESS_ORIGIN_H_
