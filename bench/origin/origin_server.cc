#include "bench/origin/origin_server.h"

#include <sys/stat.h>

#include <chrono>
#include <cstdio>
#include <ctime>
#include <fstream>
#include <iterator>
#include <memory>
#include <optional>
#include <cstdlib>
#include <cstring>
#include <vector>

namespace fanout {
namespace {

// Bodies repeat with a prime period, so a byte served from the wrong offset
// is caught, and serving needs no per-byte work.
constexpr std::uint64_t kPeriod = OriginServer::kBodyWindowBytes;
constexpr std::size_t kSendChunk = 64 * 1024;

constexpr std::uint64_t kFnvOffset = 1469598103934665603ull;

std::uint64_t Fnv1aUpdate(std::uint64_t h, const char* data, std::size_t n) {
  for (std::size_t i = 0; i < n; ++i) {
    h = (h ^ static_cast<unsigned char>(data[i])) * 1099511628211ull;
  }
  return h;
}

std::uint64_t PathSeed(const std::string& path) {
  return Fnv1aUpdate(kFnvOffset, path.data(), path.size());
}

constexpr const char* kLastModified = "Mon, 02 Nov 2026 10:00:00 GMT";

// httplib parses multipart bodies itself; the origin reports them raw.
constexpr const char* kRawContentType = "X-Origin-Raw-Content-Type";

// 2 * kPeriod bytes of the pattern for seed 0, so any window of up to
// kPeriod bytes starting anywhere in one period is contiguous.
const std::vector<char>& PatternTable() {
  static const std::vector<char> table = [] {
    std::vector<char> t(2 * kPeriod);
    for (std::uint64_t i = 0; i < t.size(); ++i) {
      const std::uint64_t j = i % kPeriod;
      t[i] = static_cast<char>((j * 2654435761u) >> 13);
    }
    return t;
  }();
  return table;
}

std::uint64_t ParseNumber(const std::string& text, std::uint64_t fallback) {
  if (text.empty()) return fallback;
  char* end = nullptr;
  double v = std::strtod(text.c_str(), &end);
  std::string unit(end);
  if (unit == "KB" || unit == "k") v *= 1e3;
  else if (unit == "MB" || unit == "M") v *= 1e6;
  else if (unit == "GB" || unit == "G") v *= 1e9;
  else if (unit == "KiB") v *= 1024;
  else if (unit == "MiB") v *= 1024 * 1024;
  else if (unit == "GiB") v *= 1024.0 * 1024 * 1024;
  return static_cast<std::uint64_t>(v);
}

}  // namespace

std::string OriginServer::VersionedPath(const std::string& path, int version) {
  return version == 0 ? path : path + "#v" + std::to_string(version);
}

void OriginServer::SetVersion(const std::string& path, int version) {
  std::lock_guard<std::mutex> lock(mu_);
  versions_[path] = version;
}

int OriginServer::Version(const std::string& path) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = versions_.find(path);
  return it == versions_.end() ? 0 : it->second;
}

void OriginServer::Release(const std::string& path) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    released_.insert(path);
  }
  hold_cv_.notify_all();
}

void OriginServer::Hold(const std::string& path) {
  std::lock_guard<std::mutex> lock(mu_);
  released_.erase(path);
}

int OriginServer::Holding(const std::string& path) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = holding_.find(path);
  return it == holding_.end() ? 0 : it->second;
}

void OriginServer::WaitAtHold(const std::string& path) {
  std::unique_lock<std::mutex> lock(mu_);
  ++holding_[path];
  // Bounded, so a test that forgets to release still ends.
  hold_cv_.wait_for(lock, std::chrono::seconds(60),
                    [&] { return stopping_ || released_.count(path) > 0; });
  --holding_[path];
}

void OriginServer::Stall(std::chrono::milliseconds how_long) {
  std::unique_lock<std::mutex> lock(mu_);
  hold_cv_.wait_for(lock, how_long, [&] { return stopping_; });
}

int OriginServer::ConditionalCount(const std::string& target) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = conditional_counts_.find(target);
  return it == conditional_counts_.end() ? 0 : it->second;
}

int OriginServer::RangedCount(const std::string& target) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = ranged_counts_.find(target);
  return it == ranged_counts_.end() ? 0 : it->second;
}

std::uint64_t OriginServer::Fnv1a(const std::string& bytes) {
  return Fnv1aUpdate(kFnvOffset, bytes.data(), bytes.size());
}

char OriginServer::OriginByte(const std::string& path, std::uint64_t offset) {
  return PatternTable()[(offset + PathSeed(path)) % kPeriod];
}

bool OriginServer::MatchesOrigin(const std::string& path, std::uint64_t offset,
                                 const char* data, std::size_t n) {
  const std::uint64_t seed = PathSeed(path);
  while (n > 0) {
    const std::size_t window = std::min<std::size_t>(n, kPeriod);
    const char* expected = PatternTable().data() + (offset + seed) % kPeriod;
    if (std::memcmp(expected, data, window) != 0) return false;
    data += window;
    offset += window;
    n -= window;
  }
  return true;
}

const char* OriginServer::BodyWindow(const std::string& path, std::uint64_t offset) {
  return PatternTable().data() + (offset + PathSeed(path)) % kPeriod;
}

std::string OriginServer::OriginBody(const std::string& path, std::uint64_t size) {
  std::string out(size, '\0');
  for (std::uint64_t i = 0; i < size; ++i) out[i] = OriginByte(path, i);
  return out;
}

OriginServer::OriginServer() { Install(); }

OriginServer::~OriginServer() { Stop(); }

void OriginServer::Install() {
  http_.new_task_queue = [] { return new httplib::ThreadPool(128); };
  http_.set_tcp_nodelay(true);
  http_.set_keep_alive_max_count(1000);
  http_.set_write_timeout(60);
  auto handler = [this](const httplib::Request& req, httplib::Response& res) {
    Handle(req, res);
  };
  auto with_body = [this](const httplib::Request& req, httplib::Response& res,
                          const httplib::ContentReader& read_body) {
    HandleWithBody(req, res, read_body);
  };
  http_.set_pre_routing_handler([](const httplib::Request& req, httplib::Response&) {
    auto& r = const_cast<httplib::Request&>(req);
    auto it = r.headers.find("Content-Type");
    if (it != r.headers.end() && it->second.rfind("multipart/", 0) == 0) {
      std::string type = std::move(it->second);
      r.headers.erase(it);
      r.headers.emplace(kRawContentType, std::move(type));
    }
    return httplib::Server::HandlerResponse::Unhandled;
  });
  http_.Get(".*", handler);
  http_.Post(".*", with_body);
  http_.Put(".*", with_body);
  http_.Delete(".*", with_body);
  http_.Patch(".*", with_body);
  http_.Options(".*", handler);
}

int OriginServer::Start(const std::string& host, int port) {
  int bound = port == 0 ? http_.bind_to_any_port(host)
                        : (http_.bind_to_port(host, port) ? port : -1);
  if (bound <= 0) return -1;
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = false;
  }
  thread_ = std::thread([this] { http_.listen_after_bind(); });
  return bound;
}

bool OriginServer::Run(const std::string& host, int port) { return http_.listen(host, port); }

void OriginServer::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  hold_cv_.notify_all();
  http_.stop();
  if (thread_.joinable()) thread_.join();
}

int OriginServer::Count(const std::string& target) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = counts_.find(target);
  return it == counts_.end() ? 0 : it->second;
}

int OriginServer::TotalCount() const {
  std::lock_guard<std::mutex> lock(mu_);
  int total = 0;
  for (const auto& [k, v] : counts_) total += v;
  return total;
}

httplib::Headers OriginServer::LastHeaders(const std::string& target) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = last_headers_.find(target);
  return it == last_headers_.end() ? httplib::Headers{} : it->second;
}

void OriginServer::ServeFiles(const std::string& url_prefix, const std::string& dir) {
  files_prefix_ = url_prefix;
  files_dir_ = dir;
}

void OriginServer::ServeFile(const httplib::Request& req, httplib::Response& res) {
  const std::string relative = req.path.substr(files_prefix_.size());
  struct stat st {};
  std::string file = files_dir_ + relative;
  // A directory is its index.json (an npm registry's package document
  // lives at the same path as the directory of its tarballs).
  if (::stat(file.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) file += "/index.json";
  if (relative.find("..") != std::string::npos || ::stat(file.c_str(), &st) != 0 ||
      !S_ISREG(st.st_mode)) {
    res.status = 404;
    res.set_content("no such file\n", "text/plain");
    return;
  }
  char etag[64];
  std::snprintf(etag, sizeof etag, "\"%llx-%llx\"", static_cast<unsigned long long>(st.st_size),
                static_cast<unsigned long long>(st.st_mtim.tv_sec) * 1000000000ull +
                    static_cast<unsigned long long>(st.st_mtim.tv_nsec));
  char last_modified[64];
  std::tm tm{};
  ::gmtime_r(&st.st_mtim.tv_sec, &tm);
  std::strftime(last_modified, sizeof last_modified, "%a, %d %b %Y %H:%M:%S GMT", &tm);
  res.set_header("ETag", etag);
  res.set_header("Last-Modified", last_modified);
  const std::string inm = req.get_header_value("If-None-Match");
  const std::string ims = req.get_header_value("If-Modified-Since");
  if (!inm.empty() || !ims.empty()) {
    std::lock_guard<std::mutex> lock(mu_);
    ++conditional_counts_[req.target];
  }
  if (!inm.empty() ? inm.find(etag) != std::string::npos : ims == last_modified) {
    res.status = 304;
    return;
  }
  std::ifstream in(file, std::ios::binary);
  std::string body((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  // npm registry documents have no extension: JSON by their first byte.
  const bool json = !body.empty() && body[0] == '{';
  res.set_content(std::move(body), json ? "application/json" : "application/octet-stream");
}

void OriginServer::HandleWithBody(const httplib::Request& req, httplib::Response& res,
                                  const httplib::ContentReader& read_body) {
  std::uint64_t bytes = 0;
  std::uint64_t hash = kFnvOffset;
  const bool whole = read_body([&](const char* data, size_t n) {
    bytes += n;
    hash = Fnv1aUpdate(hash, data, n);
    body_bytes_received_ += n;
    return true;
  });
  if (!whole) return;  // the client went away; nothing to answer
  const std::string raw_type = req.get_header_value(kRawContentType);
  res.set_header("X-Origin-Body-Bytes", std::to_string(bytes));
  res.set_header("X-Origin-Body-Fnv", std::to_string(hash));
  res.set_header("X-Origin-Content-Type",
                 raw_type.empty() ? req.get_header_value("Content-Type") : raw_type);
  Handle(req, res);
}

void OriginServer::Handle(const httplib::Request& req, httplib::Response& res) {
  if (req.path == "/__release") {
    // Release(?path=) for a test driving the origin from another process.
    Release(req.get_param_value("path"));
    res.set_content("released\n", "text/plain");
    return;
  }
  if (req.path == "/__count") {
    // Requests so far whose path starts with ?prefix= (for benchmarks).
    const std::string prefix = req.get_param_value("prefix");
    int n = 0;
    {
      std::lock_guard<std::mutex> lock(mu_);
      for (const auto& [target, count] : counts_) {
        if (target.rfind(prefix, 0) == 0) n += count;
      }
    }
    res.set_content(std::to_string(n) + "\n", "text/plain");
    return;
  }
  int seen = 0;  // this request's place among its target's
  {
    std::lock_guard<std::mutex> lock(mu_);
    seen = ++counts_[req.target];
    last_headers_[req.target] = req.headers;
    if (req.has_header("Range")) ++ranged_counts_[req.target];
  }
  if (!files_prefix_.empty() && req.path.rfind(files_prefix_, 0) == 0) {
    ServeFile(req, res);
    return;
  }
  const std::uint64_t size = ParseNumber(req.get_param_value("size"), 1 << 20);
  const std::uint64_t rate = ParseNumber(req.get_param_value("rate"), 0);
  const std::uint64_t drops = ParseNumber(req.get_param_value("drops"), UINT64_MAX);
  const std::uint64_t drop_at = static_cast<std::uint64_t>(seen) <= drops
                                    ? ParseNumber(req.get_param_value("drop_at"), UINT64_MAX)
                                    : UINT64_MAX;
  const std::uint64_t delay_ms = ParseNumber(req.get_param_value("delay_ms"), 0);
  const std::uint64_t hold_at = ParseNumber(req.get_param_value("hold_at"), UINT64_MAX);
  // The first `stalls` requests go silent at body offset stall_at for
  // stall_ms (default 60 s, or until the origin stops).
  const std::uint64_t stalls = ParseNumber(req.get_param_value("stalls"), UINT64_MAX);
  const std::uint64_t stall_at = static_cast<std::uint64_t>(seen) <= stalls
                                     ? ParseNumber(req.get_param_value("stall_at"), UINT64_MAX)
                                     : UINT64_MAX;
  const std::chrono::milliseconds stall_for(ParseNumber(req.get_param_value("stall_ms"), 60000));
  const bool chunked = req.get_param_value("chunked") == "1";
  if (delay_ms > 0) std::this_thread::sleep_for(std::chrono::milliseconds(delay_ms));

  std::string content_path = VersionedPath(req.path, Version(req.path));
  // A response that varies on a request header really differs by it.
  if (req.has_param("vary") && req.get_param_value("vary") != "*") {
    content_path += "|" + req.get_header_value(req.get_param_value("vary").c_str());
  }
  const std::string etag = "\"" + std::to_string(PathSeed(content_path) % 1000000) + "\"";
  if (req.get_param_value("no_etag") != "1") res.set_header("ETag", etag);
  if (req.get_param_value("no_lm") != "1") res.set_header("Last-Modified", kLastModified);
  res.set_header("X-Origin-Method", req.method);
  if (req.get_param_value("set_cookie") == "1") res.set_header("Set-Cookie", "session=abc");
  if (req.has_param("cc")) res.set_header("Cache-Control", req.get_param_value("cc"));
  if (req.has_param("expires")) res.set_header("Expires", req.get_param_value("expires"));
  if (req.has_param("vary")) res.set_header("Vary", req.get_param_value("vary"));
  if (req.has_param("location")) res.set_header("Location", req.get_param_value("location"));
  if (req.has_param("cdn_cc")) res.set_header("CDN-Cache-Control", req.get_param_value("cdn_cc"));
  if (req.has_param("fanout_cc")) {
    res.set_header("Fanout-Cache-Control", req.get_param_value("fanout_cc"));
  }
  if (req.has_param("repr_digest")) res.set_header("Repr-Digest", req.get_param_value("repr_digest"));
  if (req.has_param("content_digest")) {
    res.set_header("Content-Digest", req.get_param_value("content_digest"));
  }
  const bool ranges = req.get_param_value("ranges") != "0";
  if (ranges) res.set_header("Accept-Ranges", "bytes");
  if (req.get_param_value("hop") == "1") {
    // A header made hop-by-hop by naming it in Connection, and a standard one.
    res.set_header("Connection", "X-Hop");
    res.set_header("X-Hop", "for the next hop only");
    res.set_header("Proxy-Authenticate", "Basic");
  }
  // Conditional GETs: 304 when the client's validator is current.
  const std::string inm = req.get_header_value("If-None-Match");
  const std::string ims = req.get_header_value("If-Modified-Since");
  if (!inm.empty() || !ims.empty()) {
    std::lock_guard<std::mutex> lock(mu_);
    ++conditional_counts_[req.target];
  }
  if (hold_at == 0) WaitAtHold(req.path);
  const bool not_modified =
      (req.method == "GET" || req.method == "HEAD") &&
      (!inm.empty() ? (req.get_param_value("no_etag") != "1" &&
                       (inm.find(etag) != std::string::npos || inm == "*"))
                    : (ims == kLastModified && req.get_param_value("no_lm") != "1"));
  if (not_modified) {
    res.status = 304;
    return;
  }
  res.status = static_cast<int>(ParseNumber(req.get_param_value("status"), 200));

  // A single range this origin answers itself (httplib's own range support
  // knows no If-Range): [range_first, range_first + range_length).
  std::uint64_t range_first = 0;
  std::optional<std::uint64_t> range_length;
  if (req.has_header("Range") && req.method == "GET" && res.status == 200) {
    const std::string range = req.get_header_value("Range");
    const std::string if_range = req.get_header_value("If-Range");
    const bool current = if_range.empty() || if_range == kLastModified ||
                         (req.get_param_value("no_etag") != "1" && if_range == etag);
    unsigned long long first = 0, last = 0;
    int used = 0;
    const bool open_ended =
        std::sscanf(range.c_str(), "bytes=%llu-%n", &first, &used) == 1 &&
        static_cast<std::size_t>(used) == range.size();
    const bool closed = !open_ended &&
                        std::sscanf(range.c_str(), "bytes=%llu-%llu%n", &first, &last, &used) == 2 &&
                        static_cast<std::size_t>(used) == range.size() && last >= first;
    if (!ranges || !current || (!open_ended && !closed)) {
      // A whole 200; a range it cannot parse is left to httplib.
      if (!ranges || !current) const_cast<httplib::Request&>(req).ranges.clear();
    } else {
      const_cast<httplib::Request&>(req).ranges.clear();
      if (first >= size) {
        res.status = 416;
        res.set_header("Content-Range", "bytes */" + std::to_string(size));
        return;
      }
      const std::uint64_t end = open_ended ? size : std::min<std::uint64_t>(last + 1, size);
      range_first = first;
      range_length = end - first;
      res.status = 206;
      res.set_header("Content-Range", "bytes " + std::to_string(first) + "-" +
                                          std::to_string(end - 1) + "/" + std::to_string(size));
    }
  }

  const std::uint64_t seed = PathSeed(content_path);
  // Pacing runs from the first byte sent, and again from where a hold was
  // released: the rest comes at `rate`, not in one burst that makes up for
  // the time held.
  struct Pace {
    std::chrono::steady_clock::time_point start = std::chrono::steady_clock::now();
    std::uint64_t from = 0;
  };
  const auto pace = std::make_shared<Pace>();
  pace->from = range_first;
  const std::string path = req.path;
  // Sends the next slice at body `offset`, pacing to `rate`; false to drop.
  auto send = [=, this](std::uint64_t offset, std::uint64_t limit, httplib::DataSink& sink) {
    if (offset == hold_at && hold_at > 0) {
      WaitAtHold(path);
      pace->start = std::chrono::steady_clock::now();
      pace->from = offset;
    }
    if (offset == stall_at) {
      Stall(stall_for);
      pace->start = std::chrono::steady_clock::now();
      pace->from = offset;
    }
    if (offset >= drop_at) return false;
    if (rate > 0) {
      const auto due = pace->start + std::chrono::duration<double>(
                                         static_cast<double>(offset - pace->from) / rate);
      std::this_thread::sleep_until(due);
    }
    std::uint64_t n = std::min<std::uint64_t>({limit, kSendChunk, drop_at - offset});
    if (rate > 0) n = std::min<std::uint64_t>(n, std::max<std::uint64_t>(rate / 100, 1024));
    if (offset < hold_at) n = std::min<std::uint64_t>(n, hold_at - offset);
    if (offset < stall_at) n = std::min<std::uint64_t>(n, stall_at - offset);
    const char* p = PatternTable().data() + (offset + seed) % kPeriod;
    n = std::min<std::uint64_t>(n, kPeriod);
    return sink.write(p, static_cast<size_t>(n));
  };
  const std::string type =
      req.has_param("type") ? req.get_param_value("type") : "application/octet-stream";
  if (range_length) {
    res.set_content_provider(*range_length, type,
                             [=](size_t offset, size_t length, httplib::DataSink& sink) {
                               return send(range_first + offset, length, sink);
                             });
  } else if (size == 0 && !chunked) {
    // httplib never finishes a response whose content provider has length 0.
    res.set_content("", type);
  } else if (chunked) {
    res.set_chunked_content_provider(
        type, [=](size_t offset, httplib::DataSink& sink) {
          if (offset >= size) {
            sink.done();
            return true;
          }
          return send(offset, size - offset, sink);
        });
  } else {
    res.set_content_provider(size, type,
                             [=](size_t offset, size_t length, httplib::DataSink& sink) {
                               return send(offset, length, sink);
                             });
  }
}

}  // namespace fanout
