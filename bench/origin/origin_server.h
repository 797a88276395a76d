// OriginServer: the project's own upstream for tests, benchmarks and the
// demo. It serves generated objects whose bytes are known in advance, and
// behaves as each request's query string asks:
//
//   size=N          body length in bytes (default 1 MiB; units like 200MB ok)
//   rate=N          send at most N bytes per second (default: unthrottled)
//   chunked=1       send no Content-Length (chunked transfer)
//   status=N        answer with status N (the body is still generated)
//   drop_at=N       close the connection after N body bytes (an offset in
//                   the whole body, ranged responses included)
//   drops=K         drop_at applies to the first K requests for the target
//                   only (default: every one)
//   ranges=0        ignore Range and If-Range (always 200, whole body) and
//                   send no Accept-Ranges; by default "Accept-Ranges: bytes"
//                   and a single range "bytes=A-" or "bytes=A-B" is answered
//                   206 unless If-Range names another ETag or date
//   repr_digest=T   add "Repr-Digest: T"; content_digest=T: "Content-Digest: T"
//   delay_ms=N      wait N ms before sending the response headers
//   hold_at=N       after N body bytes (0: before the status line), wait
//                   until Release(path) (or Stop(), or 60 s): a test holds
//                   a fetch open for as long as it needs instead of hoping
//                   a rate outlasts its clients
//   stall_at=N      go silent after N body bytes for stall_ms (default
//                   60 s, or until Stop()), on the first `stalls` requests
//                   for the target only (default: every one)
//   set_cookie=1    add a Set-Cookie header
//   cc=TEXT         add "Cache-Control: TEXT"
//   type=TEXT       Content-Type (default application/octet-stream)
//   expires=TEXT    add "Expires: TEXT"
//   vary=NAME       add "Vary: NAME"; the body is then that of
//                   path + "|" + the request's NAME header (one header)
//   location=TEXT   add "Location: TEXT"
//   cdn_cc=TEXT     add "CDN-Cache-Control: TEXT"
//   fanout_cc=TEXT  add "Fanout-Cache-Control: TEXT"
//   hop=1           add "Connection: X-Hop", "X-Hop" and "Proxy-Authenticate"
//                   (hop-by-hop: a proxy must neither relay nor store them)
//   no_etag=1       no ETag (by default one derived from the body)
//   no_lm=1         no Last-Modified (by default Mon, 02 Nov 2026 10:00:00 GMT)
//
// A GET whose If-None-Match holds the current ETag, or whose
// If-Modified-Since is the Last-Modified date, is answered 304 without a
// body; ConditionalCount() counts requests that carried either header.
// SetVersion(path, v) changes a path's body (and so its ETag) to
// OriginBody(VersionedPath(path, v), size).
//
// A request body (POST, PUT, PATCH, DELETE) is read as it arrives, never
// parsed (multipart included) and answered with X-Origin-Body-Bytes, its
// FNV-1a hash in X-Origin-Body-Fnv and its Content-Type in
// X-Origin-Content-Type; BodyBytesReceived() counts body bytes as they come.
//
// ServeFiles(prefix, dir) makes paths under prefix the files of dir instead
// (static content for package-manager tests): with an ETag and a
// Last-Modified from the file, 304 for a current validator, 404 for a
// missing file, and no Cache-Control or Expires at all. A directory is
// served as its index.json.
//
// GET /__release?path=P does Release(P), for tests in another process.
// GET /__count?prefix=P answers how many requests had targets starting
// with P. The body of path P is OriginBody(P, size): the query string does not
// change the bytes. Every request is counted per target (path + query).
// Thread-safety: all methods are safe from any thread.

#ifndef FANOUT_BENCH_ORIGIN_ORIGIN_SERVER_H_
#define FANOUT_BENCH_ORIGIN_ORIGIN_SERVER_H_

#include <httplib.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>

namespace fanout {

class OriginServer {
 public:
  OriginServer();
  ~OriginServer();

  // Binds host:port (port 0 picks one) and serves on a background thread.
  // Returns the port, or -1.
  int Start(const std::string& host, int port);
  // Serves on the calling thread until Stop(). Returns false on failure.
  bool Run(const std::string& host, int port);
  void Stop();
  // Before Start/Run: paths under url_prefix ("/debian") are dir's files.
  void ServeFiles(const std::string& url_prefix, const std::string& dir);

  // Requests seen for a target ("/path?query"), and for all targets.
  int Count(const std::string& target) const;
  int TotalCount() const;
  // Request headers of the last request for a target.
  httplib::Headers LastHeaders(const std::string& target) const;
  // Requests for a target that carried If-None-Match / If-Modified-Since.
  int ConditionalCount(const std::string& target) const;
  // Requests for a target that carried Range, and the last one's Range and
  // If-Range values.
  int RangedCount(const std::string& target) const;
  // From now on path's body is OriginBody(VersionedPath(path, version)).
  void SetVersion(const std::string& path, int version);
  int Version(const std::string& path) const;
  static std::string VersionedPath(const std::string& path, int version);

  // Lets responses for path held at their hold_at go on, now and later;
  // Hold(path) makes later ones wait again.
  void Release(const std::string& path);
  void Hold(const std::string& path);
  // Responses for path waiting at their hold_at right now.
  int Holding(const std::string& path) const;

  // Request-body bytes received so far, over all requests.
  std::uint64_t BodyBytesReceived() const { return body_bytes_received_.load(); }

  // FNV-1a of bytes, as X-Origin-Body-Fnv reports it (decimal).
  static std::uint64_t Fnv1a(const std::string& bytes);

  // The byte at `offset` of path's body, and a whole body.
  static char OriginByte(const std::string& path, std::uint64_t offset);
  static std::string OriginBody(const std::string& path, std::uint64_t size);
  // Whether data[0, n) is path's body at offset (fast: compares whole
  // windows of a precomputed table, for load clients that check every byte).
  static bool MatchesOrigin(const std::string& path, std::uint64_t offset, const char* data,
                            std::size_t n);
  // Bodies repeat every kBodyWindowBytes bytes: path's body at `offset`,
  // valid for kBodyWindowBytes bytes, from the shared table (for servers
  // that send bodies without generating them).
  static constexpr std::size_t kBodyWindowBytes = 65521;
  static const char* BodyWindow(const std::string& path, std::uint64_t offset);

 private:
  void Install();
  void Handle(const httplib::Request& req, httplib::Response& res);
  // Blocks a response for path at its hold_at until released.
  void WaitAtHold(const std::string& path);
  // Sends nothing for how_long, or until Stop().
  void Stall(std::chrono::milliseconds how_long);
  void HandleWithBody(const httplib::Request& req, httplib::Response& res,
                      const httplib::ContentReader& read_body);
  void ServeFile(const httplib::Request& req, httplib::Response& res);

  httplib::Server http_;
  std::thread thread_;
  std::string files_prefix_, files_dir_;  // set before serving, then read-only

  mutable std::mutex mu_;
  std::map<std::string, int> counts_;                  // guarded by mu_
  std::map<std::string, httplib::Headers> last_headers_;  // guarded by mu_
  std::map<std::string, int> conditional_counts_;         // guarded by mu_
  std::map<std::string, int> ranged_counts_;              // guarded by mu_
  std::map<std::string, int> versions_;                   // guarded by mu_
  std::map<std::string, int> holding_;                    // guarded by mu_
  std::set<std::string> released_;                        // guarded by mu_
  bool stopping_ = false;                                 // guarded by mu_
  std::condition_variable hold_cv_;  // signalled on Release and Stop
  std::atomic<std::uint64_t> body_bytes_received_{0};
};

}  // namespace fanout

#endif  // FANOUT_BENCH_ORIGIN_ORIGIN_SERVER_H_
