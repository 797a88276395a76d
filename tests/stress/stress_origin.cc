#include "tests/stress/stress_origin.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <optional>
#include <vector>

#include "bench/origin/origin_server.h"
#include "tests/stress/stress_random.h"

namespace fanout::stress {
namespace {

// A request head larger than this is refused (fanoutd sends a few hundred bytes).
constexpr std::size_t kMaxRequestHead = 64 * 1024;
// How long a connection may wait for its next request, and for a send.
constexpr int kReceiveTimeoutSec = 10;
// Long: a fetch paced by its slowest reader may pause for a while, and a
// send that gives up would cut a response without a counted fault.
constexpr int kSendTimeoutSec = 60;
// Largest write of body bytes: one window of the origin's pattern.
constexpr std::size_t kMaxWrite = OriginServer::kBodyWindowBytes;
// Largest chunk of a chunked body.
constexpr std::uint64_t kMaxChunk = 64 * 1024;

std::string HttpDateNow() {
  const std::time_t now = std::time(nullptr);
  std::tm tm{};
  ::gmtime_r(&now, &tm);
  char buf[64];
  std::strftime(buf, sizeof buf, "%a, %d %b %Y %H:%M:%S GMT", &tm);
  return buf;
}

std::string Lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

std::string Hex(std::uint64_t n) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%llx", static_cast<unsigned long long>(n));
  return buf;
}

void SetTimeouts(int fd) {
  timeval rcv{kReceiveTimeoutSec, 0}, snd{kSendTimeoutSec, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &rcv, sizeof rcv);
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &snd, sizeof snd);
  const int on = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof on);
}

// The next close of fd sends RST instead of FIN.
void ResetOnClose(int fd) {
  const linger l{1, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof l);
}

bool IsMidBodyFault(Fault f) {
  return f == Fault::kDropMidBody || f == Fault::kResetMidBody || f == Fault::kStallMidBody ||
         f == Fault::kChunkedCut;
}

}  // namespace

const char* FaultName(Fault fault) {
  switch (fault) {
    case Fault::kNone: return "none";
    case Fault::kDropMidBody: return "drop-mid-body";
    case Fault::kResetMidBody: return "reset-mid-body";
    case Fault::kStallBeforeHead: return "stall-before-head";
    case Fault::kStallMidBody: return "stall-mid-body";
    case Fault::kLengthTooLong: return "content-length-too-long";
    case Fault::kExtraBytes: return "bytes-past-the-end";
    case Fault::kChunkedCut: return "chunked-cut-before-last-chunk";
    case Fault::kEndlessHead: return "endless-head";
    case Fault::kEndlessBody: return "endless-body";
  }
  return "?";
}

namespace {

// "bytes=A-": true with A.
bool RangeStart(const std::string& range, std::uint64_t* from) {
  if (range.rfind("bytes=", 0) != 0 || range.size() < 8 || range.back() != '-') return false;
  const std::string digits = range.substr(6, range.size() - 7);
  if (digits.empty() || digits.find_first_not_of("0123456789") != std::string::npos ||
      digits.size() > 18) {
    return false;
  }
  *from = std::stoull(digits);
  return true;
}

}  // namespace

struct StressOrigin::Request {
  std::string method;
  std::string path;  // the target without its query
  std::string if_none_match;
  std::string if_modified_since;
  std::string range;
  std::string if_range;
  bool close = false;  // Connection: close, or HTTP/1.0
};

StressOrigin::StressOrigin(Options options) : options_(options) {}

StressOrigin::~StressOrigin() { Stop(); }

int StressOrigin::Start() {
  listen_fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (listen_fd_ < 0) return -1;
  const int on = 1;
  ::setsockopt(listen_fd_, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  if (::bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      ::listen(listen_fd_, 1024) != 0 ||
      ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    ::close(listen_fd_);
    listen_fd_ = -1;
    return -1;
  }
  accept_thread_ = std::thread([this] { AcceptLoop(); });
  return ntohs(addr.sin_port);
}

void StressOrigin::Stop() {
  stopping_ = true;
  if (accept_thread_.joinable()) accept_thread_.join();
  std::list<Worker> workers;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (int fd : open_fds_) ::shutdown(fd, SHUT_RDWR);
    workers.splice(workers.end(), workers_);
  }
  for (auto& w : workers) w.thread.join();
  if (listen_fd_ >= 0) ::close(listen_fd_);
  listen_fd_ = -1;
}

void StressOrigin::Define(const std::string& path, OriginObject object) {
  std::lock_guard<std::mutex> lock(mu_);
  objects_[path] = object;
}

StressOrigin::Counts StressOrigin::CountsFor(const std::string& path) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = counts_.find(path);
  return it == counts_.end() ? Counts{} : it->second;
}

int StressOrigin::Faults(const std::string& path) const { return CountsFor(path).faults; }

int StressOrigin::Faults(const std::string& path, Fault kind) const {
  return CountsFor(path).faults_by_kind[static_cast<std::size_t>(kind)];
}

StressOrigin::Counts StressOrigin::Totals() const {
  std::lock_guard<std::mutex> lock(mu_);
  Counts total;
  for (const auto& [path, c] : counts_) {
    total.requests += c.requests;
    total.conditional_requests += c.conditional_requests;
    total.ranged_requests += c.ranged_requests;
    total.faults += c.faults;
    for (std::size_t i = 0; i < kFaultKinds; ++i) total.faults_by_kind[i] += c.faults_by_kind[i];
  }
  return total;
}

std::string StressOrigin::ETagOf(const std::string& path, std::uint64_t size) {
  return "\"" + Hex(StressRng::HashText(path) ^ size) + "\"";
}

void StressOrigin::AcceptLoop() {
  while (!stopping_) {
    ReapFinishedWorkers();
    pollfd p{listen_fd_, POLLIN, 0};
    if (::poll(&p, 1, 100) <= 0) continue;
    const int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) continue;
    std::lock_guard<std::mutex> lock(mu_);
    open_fds_.insert(fd);
    Worker& w = workers_.emplace_back();
    w.thread = std::thread([this, fd, &w] {
      ServeConnection(fd);
      w.done = true;
    });
  }
}

void StressOrigin::ReapFinishedWorkers() {
  std::list<Worker> finished;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (auto it = workers_.begin(); it != workers_.end();) {
      auto next = std::next(it);
      if (it->done) finished.splice(finished.end(), workers_, it);
      it = next;
    }
  }
  for (auto& w : finished) w.thread.join();
}

void StressOrigin::ServeConnection(int fd) {
  SetTimeouts(fd);
  std::string pending;
  Request request;
  while (!stopping_ && ReadRequest(fd, &pending, &request) && Respond(fd, request)) {
  }
  std::lock_guard<std::mutex> lock(mu_);
  open_fds_.erase(fd);
  ::close(fd);
}

bool StressOrigin::ReadRequest(int fd, std::string* pending, Request* request) {
  std::size_t end;
  while ((end = pending->find("\r\n\r\n")) == std::string::npos) {
    if (pending->size() > kMaxRequestHead) return false;
    char buf[4096];
    const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    pending->append(buf, static_cast<std::size_t>(n));
  }
  const std::string head = pending->substr(0, end);
  pending->erase(0, end + 4);
  *request = Request{};
  const auto line_end = head.find("\r\n");
  const std::string line = head.substr(0, line_end);
  const auto sp1 = line.find(' ');
  const auto sp2 = line.rfind(' ');
  if (sp1 == std::string::npos || sp2 == sp1) return false;
  request->method = line.substr(0, sp1);
  const std::string target = line.substr(sp1 + 1, sp2 - sp1 - 1);
  request->path = target.substr(0, target.find('?'));
  request->close = line.substr(sp2 + 1) != "HTTP/1.1";
  std::size_t at = line_end;
  while (at != std::string::npos && at < head.size()) {
    const std::size_t start = at + 2;
    const std::size_t next = head.find("\r\n", start);
    const std::string field = head.substr(start, next == std::string::npos ? std::string::npos
                                                                           : next - start);
    at = next;
    const auto colon = field.find(':');
    if (colon == std::string::npos) return false;
    const std::string name = Lower(field.substr(0, colon));
    std::string value = field.substr(colon + 1);
    value.erase(0, value.find_first_not_of(" \t"));
    if (name == "connection" && Lower(value).find("close") != std::string::npos) {
      request->close = true;
    } else if (name == "if-none-match") {
      request->if_none_match = value;
    } else if (name == "if-modified-since") {
      request->if_modified_since = value;
    } else if (name == "range") {
      request->range = value;
    } else if (name == "if-range") {
      request->if_range = value;
    } else if (name == "content-length" && value != "0") {
      return false;  // no request bodies here
    } else if (name == "transfer-encoding") {
      return false;
    }
  }
  return true;
}

StressOrigin::Plan StressOrigin::Admit(const Request& request, const OriginObject* object) {
  std::lock_guard<std::mutex> lock(mu_);
  Counts& counts = counts_[request.path];
  ++counts.requests;
  const bool conditional = !request.if_none_match.empty() || !request.if_modified_since.empty();
  if (conditional) ++counts.conditional_requests;
  if (!request.range.empty()) ++counts.ranged_requests;
  const auto url = StressRng::HashText(request.path);
  const auto ordinal = static_cast<std::uint64_t>(counts.requests);
  Plan plan;
  plan.rng_seed = StressRng::Derive(options_.seed, {url, ordinal, 1}).Next();
  plan.declared_length = object != nullptr ? object->size : 0;
  if (object == nullptr || !object->faults_allowed || request.method != "GET" || conditional) {
    return plan;
  }
  if (object->forced_fault) {
    plan.fault = *object->forced_fault;
    plan.cut_at = object->size / 2;
    if (plan.fault == Fault::kLengthTooLong) {
      plan.declared_length = object->size + 1000;
      counts.false_lengths.insert(plan.declared_length);
    }
    ++counts.faults;
    ++counts.faults_by_kind[static_cast<std::size_t>(plan.fault)];
    return plan;
  }
  StressRng rng = StressRng::Derive(options_.seed, {url, ordinal});
  if (!rng.Chance(options_.fault_rate)) return plan;
  // Stalls cost a read timeout each: half as likely as the others.
  std::vector<Fault> choices = {Fault::kStallBeforeHead, Fault::kExtraBytes, Fault::kExtraBytes};
  const bool mid_body_possible = object->chunked || object->size > 0;
  if (mid_body_possible) {
    choices.insert(choices.end(), {Fault::kDropMidBody, Fault::kDropMidBody,
                                   Fault::kResetMidBody, Fault::kResetMidBody,
                                   Fault::kStallMidBody});
  }
  if (object->chunked) {
    choices.insert(choices.end(), {Fault::kChunkedCut, Fault::kChunkedCut});
  } else {
    choices.insert(choices.end(), {Fault::kLengthTooLong, Fault::kLengthTooLong});
  }
  plan.fault = choices[rng.Between(0, choices.size() - 1)];
  // Known length: cut inside the body; chunked: anywhere up to its end
  // (all data sent but no last chunk is a cut too).
  plan.cut_at = object->chunked ? rng.Between(0, object->size)
                                : rng.Between(0, object->size == 0 ? 0 : object->size - 1);
  if (plan.fault == Fault::kLengthTooLong) {
    plan.declared_length = object->size + rng.Between(1, 4096);
    counts.false_lengths.insert(plan.declared_length);
  }
  ++counts.faults;
  ++counts.faults_by_kind[static_cast<std::size_t>(plan.fault)];
  return plan;
}

bool StressOrigin::Respond(int fd, const Request& request) {
  std::optional<OriginObject> object;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (auto it = objects_.find(request.path); it != objects_.end()) object = it->second;
  }
  const Plan plan = Admit(request, object ? &*object : nullptr);
  const bool keep_alive = !request.close;
  std::string head;
  if (request.method != "GET" && request.method != "HEAD") {
    head = "HTTP/1.1 405 Method Not Allowed\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
    SendAll(fd, head.data(), head.size());
    return false;
  }
  if (!object) {
    const std::string body = "no such object\n";
    head = "HTTP/1.1 404 Not Found\r\nContent-Type: text/plain\r\nContent-Length: " +
           std::to_string(body.size()) + "\r\n\r\n";
    if (request.method == "GET") head += body;
    return SendAll(fd, head.data(), head.size()) && keep_alive;
  }
  const std::string etag = ETagOf(request.path, object->size);
  const std::string validators =
      "Date: " + HttpDateNow() + "\r\nCache-Control: " +
      (object->no_store ? "no-store" : "max-age=3600") + "\r\nETag: " + etag +
      "\r\nLast-Modified: " + kLastModified + "\r\n";
  const bool not_modified =
      !request.if_none_match.empty()
          ? (request.if_none_match == "*" ||
             request.if_none_match.find(etag) != std::string::npos)
          : request.if_modified_since == kLastModified;
  if (not_modified) {
    head = "HTTP/1.1 304 Not Modified\r\n" + validators + "\r\n";
    return SendAll(fd, head.data(), head.size()) && keep_alive;
  }
  if (plan.fault == Fault::kStallBeforeHead) {
    StallUntilPeerGivesUp(fd);
    return false;
  }
  // "Range: bytes=A-" with a current If-Range (or none): the rest from A,
  // with Content-Length (also for a chunked object).
  std::uint64_t from = 0;
  const bool ranged = request.method == "GET" && RangeStart(request.range, &from) &&
                      from < object->size &&
                      (request.if_range.empty() || request.if_range == etag ||
                       request.if_range == kLastModified);
  if (ranged) {
    Plan rest = plan;
    // The length always matches the range here; a cut stands in for a
    // length that lies.
    if (rest.fault == Fault::kLengthTooLong) rest.fault = Fault::kDropMidBody;
    if (rest.fault == Fault::kEndlessHead || rest.fault == Fault::kEndlessBody) {
      rest.fault = Fault::kResetMidBody;
    }
    head = "HTTP/1.1 206 Partial Content\r\n" + validators +
           "Content-Type: application/octet-stream\r\nContent-Range: bytes " +
           std::to_string(from) + "-" + std::to_string(object->size - 1) + "/" +
           std::to_string(object->size) + "\r\nContent-Length: " +
           std::to_string(object->size - from) + "\r\n\r\n";
    if (!SendAll(fd, head.data(), head.size())) return false;
    return SendBody(fd, request.path, *object, rest, from, /*chunked=*/false) && keep_alive;
  }
  head = "HTTP/1.1 200 OK\r\n" + validators +
         "Accept-Ranges: bytes\r\nContent-Type: application/octet-stream\r\n";
  if (plan.fault == Fault::kEndlessHead) {
    SendEndlessHead(fd, head);
    return false;
  }
  if (object->chunked) {
    head += "Transfer-Encoding: chunked\r\n";
  } else {
    head += "Content-Length: " + std::to_string(plan.declared_length) + "\r\n";
  }
  head += "\r\n";
  if (!SendAll(fd, head.data(), head.size())) return false;
  if (request.method == "HEAD") return keep_alive;
  return SendBody(fd, request.path, *object, plan, 0, object->chunked) && keep_alive;
}

bool StressOrigin::SendBody(int fd, const std::string& path, const OriginObject& object,
                            const Plan& plan, std::uint64_t from, bool chunked) {
  StressRng rng(plan.rng_seed);
  const Fault fault = plan.fault;
  if (fault == Fault::kEndlessBody) {
    SendEndlessBody(fd, path);
    return false;
  }
  const std::uint64_t stop_at =
      IsMidBodyFault(fault) ? std::max(plan.cut_at, from) : object.size;
  std::uint64_t offset = from;
  while (offset < stop_at) {
    const std::uint64_t announced =
        std::min<std::uint64_t>(rng.Between(1, kMaxChunk), object.size - offset);
    if (chunked) {
      // The chunk's header promises all of it, even when the cut falls inside.
      const std::string size_line = Hex(announced) + "\r\n";
      if (!SendAll(fd, size_line.data(), size_line.size())) return false;
    }
    const std::uint64_t piece = std::min(announced, stop_at - offset);
    for (std::uint64_t done = 0; done < piece;) {
      const auto n = static_cast<std::size_t>(std::min<std::uint64_t>(piece - done, kMaxWrite));
      if (!SendAll(fd, OriginServer::BodyWindow(path, offset + done), n)) return false;
      done += n;
    }
    offset += piece;
    if (chunked && piece == announced && !SendAll(fd, "\r\n", 2)) return false;
    if (options_.small_stalls && rng.Chance(1.0 / 16)) {
      std::this_thread::sleep_for(std::chrono::milliseconds(rng.Between(1, 5)));
    }
  }
  switch (fault) {
    case Fault::kNone:
      break;
    case Fault::kDropMidBody:
    case Fault::kChunkedCut:
    case Fault::kLengthTooLong:
      return false;  // the caller closes: FIN
    case Fault::kResetMidBody:
      ResetOnClose(fd);
      return false;
    case Fault::kStallMidBody:
    case Fault::kStallBeforeHead:
      StallUntilPeerGivesUp(fd);
      return false;
    case Fault::kEndlessHead:
    case Fault::kEndlessBody:
      return false;  // sent above
    case Fault::kExtraBytes: {
      if (chunked && !SendAll(fd, "0\r\n\r\n", 5)) return false;
      // Past the end: what a confused origin might send, then more.
      std::string junk = "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nJUNK!";
      junk.append(static_cast<std::size_t>(rng.Between(0, 4096)), 'Z');
      SendAll(fd, junk.data(), junk.size());
      return false;
    }
  }
  if (chunked && !SendAll(fd, "0\r\n\r\n", 5)) return false;
  return true;
}

void StressOrigin::SendEndlessHead(int fd, const std::string& start) {
  if (!SendAll(fd, start.data(), start.size())) return;
  const auto deadline = std::chrono::steady_clock::now() + options_.stall_limit;
  for (int i = 0; !stopping_ && std::chrono::steady_clock::now() < deadline; ++i) {
    const std::string field = "X-Filler-" + std::to_string(i) + ": " + std::string(100, 'f') + "\r\n";
    if (!SendAll(fd, field.data(), field.size())) return;
  }
}

void StressOrigin::SendEndlessBody(int fd, const std::string& path) {
  const auto deadline = std::chrono::steady_clock::now() + options_.stall_limit;
  const std::string size_line = Hex(kMaxWrite) + "\r\n";
  for (std::uint64_t offset = 0; !stopping_ && std::chrono::steady_clock::now() < deadline;
       offset += kMaxWrite) {
    if (!SendAll(fd, size_line.data(), size_line.size()) ||
        !SendAll(fd, OriginServer::BodyWindow(path, offset), kMaxWrite) ||
        !SendAll(fd, "\r\n", 2)) {
      return;
    }
  }
}

void StressOrigin::StallUntilPeerGivesUp(int fd) {
  const auto deadline = std::chrono::steady_clock::now() + options_.stall_limit;
  while (!stopping_ && std::chrono::steady_clock::now() < deadline) {
    pollfd p{fd, POLLIN | POLLRDHUP, 0};
    if (::poll(&p, 1, 100) <= 0) continue;
    char buf[4096];
    const ssize_t n = ::recv(fd, buf, sizeof buf, MSG_DONTWAIT);
    if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) return;
  }
}

bool StressOrigin::SendAll(int fd, const char* data, std::size_t n) {
  while (n > 0) {
    const ssize_t w = ::send(fd, data, n, MSG_NOSIGNAL);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return false;
    data += w;
    n -= static_cast<std::size_t>(w);
  }
  return true;
}

}  // namespace fanout::stress
