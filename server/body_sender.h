// BodySender: sends the bodies of many responses at once from a few
// event-loop threads.
//
// A thread per connection spends a large body's whole life blocked in
// send() or at the frontier. With 1,000 slow clients that is 1,000
// threads, and each time their socket buffers drain together, 1,000
// threads become runnable at once and a new request waits behind them
// (docs/benchmarks.md, S4); with 50 readers catching up on a fetch, the
// fetch thread gets one 51st of the CPU. So once a response's head has been
// sent and its body is a byte range of a stream file, the connection
// thread hands the connection here and goes back to answering requests.
// Each loop thread sends the bodies of its connections with non-blocking
// sendfile(2) or sends from the stream file's shared mapping (Options says
// which, by how fast the client reads) as their sockets drain
// (epoll, edge-triggered), a bounded slice per connection per turn so no
// client holds back the others, and parks a connection whose reader is at
// the frontier until the stream moves on (StreamReader::Watch). A body
// sent whole gives the connection back to its owner (keep-alive) or closes
// it.
//
// The loops also hold idle keep-alive connections (Park): a browser or apt
// keeps its connection open between requests, and a thread blocked in
// recv() for each would let idle clients use up max_connections. A parked
// connection costs an epoll registration; when its next request arrives,
// its owner is called back on the loop thread (it answers a plain hit
// there, and the connection stays registered for the next one; or it
// takes the connection back to hand it to a thread); idle past its timeout,
// it is closed.
//
// A job ends early, closing its connection, when the client goes away or
// reads nothing for write_timeout, when the stream fails or ends short of
// the body, when the stream file turns out shorter than its frontier
// (kCorruption), or when the sender stops (kCancelled). The job's on_end is
// told how it ended either way.
//
// Thread-safety: Submit, Stop and active() from any thread. on_end and
// resume run on a loop thread: they must not block for long.

#ifndef FANOUT_SERVER_BODY_SENDER_H_
#define FANOUT_SERVER_BODY_SENDER_H_

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include "core/status.h"
#include "core/stream_file.h"

namespace fanout {

class BodySender {
 public:
  struct Options {
    std::size_t threads = 2;
    // A connection whose client takes no bytes for this long is closed.
    std::chrono::milliseconds write_timeout{30000};
    // Bytes sent to one connection before the loop turns to the others.
    std::size_t turn_bytes = 256 * 1024;
    // Every body starts out sent with sendfile(2), which spares the loop a
    // copy of each byte (a thousand clients at 1 MB/s: 0.09 s of CPU per
    // GB against 0.11-0.13 for sends from the mapping, which also copied
    // the first megabyte of every connection). A client that has taken its
    // body at this rate or faster, judged once at its first turn after
    // judge_client_after, is sent to from the mapping instead: on loopback
    // sendfile costs a fast reader more than the copy (a page per socket
    // fragment), and hot objects sent at full speed to many clients lost a
    // third of their rate with it.
    double fast_client_bytes_per_second = 32e6;
    std::chrono::milliseconds judge_client_after{200};
  };

  struct Job {
    int fd = -1;  // the connection; its response head already sent
    // A park instead of a body: called on the loop thread (blocking mode
    // kept) once bytes or the client's close arrive. True: the callee dealt
    // with what came (a hit answered in full) and the connection stays
    // parked as it is, its idle time starting again; no system call is
    // spent on the registration. False: the loop lets the connection go,
    // then calls `resume`, and the connection is the callee's again (so a
    // callee that hands it to another thread does so in `resume`, never
    // here). `reader` and `length` are unused; `idle_timeout` bounds each
    // wait (then on_end gets kDeadlineExceeded, fd closed).
    std::function<bool(int fd)> on_readable;
    std::chrono::milliseconds idle_timeout{5000};
    // Positioned at the body's first byte; `length` bytes are sent from
    // there, waiting at the frontier as needed.
    std::shared_ptr<StreamReader> reader;
    std::uint64_t length = 0;
    // How the job ended: OK once every byte was sent; kCancelled if the
    // sender stopped; kDeadlineExceeded if the client stopped reading;
    // kIOError if the client went away; kCorruption if the stream file
    // holds fewer bytes than its frontier (cut under it); the
    // stream's own error (kStreamFailed, kEndOfStream) if it ended first.
    // `sent` counts body bytes the client was given.
    std::function<void(const Status& how, std::uint64_t sent)> on_end;
    // After a body sent whole, or a park's on_readable said false: takes
    // the connection back (blocking mode restored). If null, a body's fd is
    // closed and a park's left open; when a job ends early, its fd is
    // closed.
    std::function<void(int fd)> resume;
    // Kept as long as the job: the connection's own object, so that the
    // connection counts as open while only its body is being sent.
    std::shared_ptr<const void> owner;
  };

  explicit BodySender(Options options);
  ~BodySender();  // Stop()s
  BodySender(const BodySender&) = delete;
  BodySender& operator=(const BodySender&) = delete;

  // Takes the job (job becomes null) and returns true; or, once the sender
  // is stopping, returns false and leaves the job with the caller.
  bool Submit(std::unique_ptr<Job>& job);

  // Ends every job (kCancelled, connection closed) and joins the threads.
  // Later Submits are refused. Idempotent.
  void Stop();

  // Bodies being sent now, and taken since the start; parked connections
  // now; connections held in all (for the connection limit: the counter
  // active_counter() points at).
  std::size_t active() const { return counters_.bodies.load(std::memory_order_relaxed); }
  std::uint64_t submitted() const {
    return counters_.bodies_taken.load(std::memory_order_relaxed);
  }
  std::size_t parked() const { return counters_.parked.load(std::memory_order_relaxed); }
  // Body bytes sent with sendfile(2): every body's until its client is
  // found fast (the rest are sent from the stream file's mapping).
  std::uint64_t sent_with_sendfile() const {
    return counters_.sendfile_bytes.load(std::memory_order_relaxed);
  }
  const std::atomic<std::size_t>* active_counter() const { return &counters_.held; }

 private:
  class Loop;
  struct Counters {
    std::atomic<std::size_t> held{0};
    std::atomic<std::size_t> bodies{0};
    std::atomic<std::uint64_t> bodies_taken{0};
    std::atomic<std::size_t> parked{0};
    std::atomic<std::uint64_t> sendfile_bytes{0};
    void Add(bool park) {
      held.fetch_add(1, std::memory_order_relaxed);
      (park ? parked : bodies).fetch_add(1, std::memory_order_relaxed);
    }
    void Remove(bool park) {
      (park ? parked : bodies).fetch_sub(1, std::memory_order_relaxed);
      held.fetch_sub(1, std::memory_order_relaxed);
    }
  };

  Counters counters_;
  std::vector<std::unique_ptr<Loop>> loops_;  // fixed after construction
};

}  // namespace fanout

#endif  // FANOUT_SERVER_BODY_SENDER_H_
