// fanout_load: N HTTP/1.1 clients for one URL, started spread over a time
// window, each reading the whole body and checking every byte against the
// demo origin's pattern. Prints one JSON object with TTFB and completion
// figures. Plain blocking sockets and large reads keep the client cheap, so
// it is not the bottleneck.
//
//   fanout_load --port 19080 --clients 50 --spread-ms 1500
//               --target '/x.bin?size=200MB&rate=100MB'

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <CLI/CLI.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "bench/origin/origin_server.h"

namespace {

using Clock = std::chrono::steady_clock;

struct Outcome {
  bool ok = false;
  bool verified = false;
  std::uint64_t bytes = 0;
  double ttfb_ms = 0, done_s = 0;
  std::string x_cache;
};

Outcome RunClient(int port, const std::string& target, Clock::time_point t0) {
  Outcome out;
  const auto start = Clock::now();
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    ::close(fd);
    return out;
  }
  const std::string req = "GET " + target + " HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                          "Connection: close\r\n\r\n";
  if (::send(fd, req.data(), req.size(), 0) != static_cast<ssize_t>(req.size())) {
    ::close(fd);
    return out;
  }
  const std::string path = target.substr(0, target.find('?'));
  std::vector<char> buf(256 * 1024);
  std::string head;
  bool in_body = false;
  std::uint64_t length = UINT64_MAX, offset = 0;
  bool match = true;
  auto check = [&](const char* p, std::size_t n) {
    for (std::size_t i = 0; i < n && match; i += 4093) {  // sample every 4 KiB
      match = p[i] == fanout::OriginServer::OriginByte(path, offset + i);
    }
    if (n > 0) match = match && p[n - 1] == fanout::OriginServer::OriginByte(path, offset + n - 1);
    offset += n;
  };
  for (;;) {
    const ssize_t r = ::recv(fd, buf.data(), buf.size(), 0);
    if (r <= 0) break;
    if (!in_body) {
      head.append(buf.data(), static_cast<std::size_t>(r));
      const auto end = head.find("\r\n\r\n");
      if (end == std::string::npos) continue;
      in_body = true;
      const std::string headers = head.substr(0, end);
      auto value = [&](const char* name) -> std::string {
        std::string lower = headers;
        std::transform(lower.begin(), lower.end(), lower.begin(), ::tolower);
        const auto at = lower.find(std::string("\r\n") + name + ":");
        if (at == std::string::npos) return "";
        const auto v = at + 2 + std::strlen(name) + 1;
        return headers.substr(v, headers.find("\r\n", v) - v);
      };
      const std::string cl = value("content-length");
      if (!cl.empty()) length = std::stoull(cl);
      out.x_cache = value("x-cache");
      if (out.x_cache.empty()) out.x_cache = value("x-cache-status");
      while (!out.x_cache.empty() && out.x_cache[0] == ' ') out.x_cache.erase(0, 1);
      const std::string body = head.substr(end + 4);
      if (!body.empty()) {
        out.ttfb_ms = std::chrono::duration<double, std::milli>(Clock::now() - start).count();
        check(body.data(), body.size());
      }
      continue;
    }
    if (offset == 0) {
      out.ttfb_ms = std::chrono::duration<double, std::milli>(Clock::now() - start).count();
    }
    check(buf.data(), static_cast<std::size_t>(r));
  }
  ::close(fd);
  out.bytes = offset;
  out.ok = length != UINT64_MAX && offset == length;
  out.verified = out.ok && match;
  out.done_s = std::chrono::duration<double>(Clock::now() - t0).count();
  return out;
}

double Percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const std::size_t i = std::min(v.size() - 1, static_cast<std::size_t>(p * (v.size() - 1) + 0.5));
  return v[i];
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"fanout_load: N clients for one URL"};
  int port = 0, clients = 50, spread_ms = 1500;
  std::string target;
  app.add_option("--port", port)->required();
  app.add_option("--target", target)->required();
  app.add_option("--clients", clients);
  app.add_option("--spread-ms", spread_ms);
  CLI11_PARSE(app, argc, argv);

  std::vector<Outcome> outcomes(clients);
  std::vector<std::thread> threads;
  const auto t0 = Clock::now();
  for (int i = 0; i < clients; ++i) {
    threads.emplace_back([&, i] {
      std::this_thread::sleep_until(t0 + std::chrono::milliseconds(
                                             clients > 1 ? spread_ms * i / (clients - 1) : 0));
      outcomes[i] = RunClient(port, target, t0);
    });
  }
  for (auto& t : threads) t.join();
  std::vector<double> ttfb, joiner_ttfb;
  double last_done = 0;
  int ok = 0, verified = 0;
  for (int i = 0; i < clients; ++i) {
    const auto& o = outcomes[i];
    ok += o.ok;
    verified += o.verified;
    ttfb.push_back(o.ttfb_ms);
    if (i > 0) joiner_ttfb.push_back(o.ttfb_ms);
    last_done = std::max(last_done, o.done_s);
  }
  std::printf("{\"clients\": %d, \"complete\": %d, \"verified\": %d, "
              "\"ttfb_p50_ms\": %.2f, \"ttfb_p99_ms\": %.2f, \"joiner_ttfb_p50_ms\": %.2f, "
              "\"joiner_ttfb_p99_ms\": %.2f, \"last_done_s\": %.3f}\n",
              clients, ok, verified, Percentile(ttfb, 0.5), Percentile(ttfb, 0.99),
              Percentile(joiner_ttfb, 0.5), Percentile(joiner_ttfb, 0.99), last_done);
  return verified == clients ? 0 : 1;
}
