// Forward-proxy mode against the real binary: clients set up with a proxy
// (httplib's set_proxy, curl -x, http_proxy=) send absolute URLs; fanoutd
// fetches those of allowed hosts once through the cache, keyed by the
// URL, refuses every other host with 403 before contacting it, and
// tunnels CONNECT only when told to, only to allowed hosts and ports.

#include <signal.h>
#include <sys/socket.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "bench/origin/origin_server.h"
#include "tests/fanoutd_fixture.h"
#include "tests/fanoutd_process.h"
#include "tests/test_util.h"

namespace fanout::testing {
namespace {

class ForwardProxyTest : public ::testing::Test {
 protected:
  void SetUp() override {
    for (OriginServer* origin : {&allowed_, &other_allowed_, &not_allowed_}) {
      ports_[origin] = origin->Start("127.0.0.1", 0);
      ASSERT_GT(ports_[origin], 0);
    }
  }

  int PortOf(const OriginServer& origin) const { return ports_.at(&origin); }
  std::string Authority(const OriginServer& origin) const {
    return "127.0.0.1:" + std::to_string(PortOf(origin));
  }
  std::string UrlOf(const OriginServer& origin, const std::string& target) const {
    return "http://" + Authority(origin) + target;
  }

  // The config: `allowed_`, `other_allowed_` and `more_allowed` on the
  // allowlist (by address and port), then `extra` keys of forward_proxy;
  // `top`: keys before forward_proxy (ending with a comma).
  std::string WriteConfig(const std::string& extra = "", const std::string& top = "",
                          const std::vector<std::string>& more_allowed = {}) {
    const std::string path = dir_.path() + "/fanout.json";
    std::string allow = "\"" + Authority(allowed_) + "\", \"" + Authority(other_allowed_) + "\"";
    for (const std::string& a : more_allowed) allow += ", \"" + a + "\"";
    std::ofstream(path) << "{" << top << R"("forward_proxy": {"allow": [)" << allow << "]"
                        << extra << "}}";
    return path;
  }
  void StartProxy(const std::string& extra = "", const std::string& top = "",
                  const std::vector<std::string>& more_allowed = {}) {
    ASSERT_TRUE(fanoutd_.Start(dir_.path(), {"--config", WriteConfig(extra, top, more_allowed)}))
        << fanoutd_.log();
  }

  struct Got {
    int status = 0;
    std::string x_cache;
    std::string body;
  };
  // A GET through fanoutd as an HTTP proxy: httplib then sends the
  // absolute URL as the request target.
  Got ProxyGet(const OriginServer& origin, const std::string& target,
               std::atomic<int>* streaming = nullptr, const std::string& method = "GET") {
    httplib::Client client("127.0.0.1", PortOf(origin));
    client.set_proxy("127.0.0.1", fanoutd_.port());
    client.set_read_timeout(30, 0);
    Got got;
    httplib::Request req;
    req.method = method;
    req.path = target;
    req.response_handler = [&](const httplib::Response& res) {
      got.status = res.status;
      got.x_cache = res.get_header_value("X-Cache");
      return true;
    };
    req.content_receiver = [&](const char* d, size_t n, uint64_t, uint64_t) {
      if (got.body.empty() && streaming != nullptr) ++*streaming;
      got.body.append(d, n);
      return true;
    };
    client.send(req);
    return got;
  }

  OriginServer allowed_, other_allowed_, not_allowed_;
  std::map<const OriginServer*, int> ports_;
  TempDir dir_;
  FanoutdProcess fanoutd_;
};

TEST_F(ForwardProxyTest, TwentyProxyClientsOfOneUrlCostItsHostOneFetchKeyedByTheUrl) {
  StartProxy();
  const std::string path = "/fp/big.bin";
  const std::string target = path + "?size=3000000&hold_at=1000000&cc=max-age%3D600";
  const std::string body = OriginServer::OriginBody(path, 3000000);
  std::atomic<int> streaming{0};
  std::vector<Got> got(20);
  std::vector<std::thread> clients;
  for (int i = 0; i < 20; ++i) {
    clients.emplace_back([&, i] { got[i] = ProxyGet(allowed_, target, &streaming); });
  }
  ASSERT_TRUE(WaitFor([&] { return streaming.load() == 20; })) << streaming.load();
  allowed_.Release(path);
  for (auto& t : clients) t.join();
  int misses = 0, joins = 0;
  for (const Got& g : got) {
    EXPECT_EQ(g.status, 200);
    EXPECT_TRUE(g.body == body) << "a client's bytes differ from the origin's";
    misses += g.x_cache == "MISS";
    joins += g.x_cache == "JOIN";
  }
  EXPECT_EQ(misses, 1);
  EXPECT_EQ(joins, 19);
  EXPECT_EQ(allowed_.Count(target), 1) << "the origin got the path and query, once";
  EXPECT_EQ(allowed_.LastHeaders(target).find("Host")->second, Authority(allowed_));

  Got hit;
  ASSERT_TRUE(WaitFor([&] { return (hit = ProxyGet(allowed_, target)).x_cache != "JOIN"; }));
  EXPECT_EQ(hit.x_cache, "HIT");
  EXPECT_TRUE(hit.body == body);
  EXPECT_EQ(allowed_.Count(target), 1);
  // A plain hit for a proxy client is as cheap as one for a path: it is
  // answered straight from its request head.
  httplib::Client admin("127.0.0.1", fanoutd_.admin_port());
  auto direct_hits = [&] {
    auto stats = admin.Get("/stats");
    return stats ? nlohmann::json::parse(stats->body)["direct_hits"].get<int>() : -1;
  };
  const int before = direct_hits();
  const Got direct = ProxyGet(allowed_, target);
  EXPECT_EQ(direct.x_cache, "HIT");
  EXPECT_TRUE(direct.body == body);
  EXPECT_EQ(direct_hits(), before + 1);
  // The same path and query on another host is another URL: its own entry,
  // its own fetch.
  const std::string unheld = path + "?size=3000000&cc=max-age%3D600";
  EXPECT_EQ(ProxyGet(allowed_, unheld).x_cache, "MISS");
  const Got other = ProxyGet(other_allowed_, unheld);
  EXPECT_EQ(other.x_cache, "MISS");
  EXPECT_TRUE(other.body == body);
  EXPECT_EQ(other_allowed_.Count(unheld), 1);
  // The access log names the whole URL.
  EXPECT_NE(fanoutd_.log().find("\"GET " + UrlOf(allowed_, target) + "\" 200 HIT"),
            std::string::npos)
      << fanoutd_.log();
}

TEST_F(ForwardProxyTest, HostsNotOnTheAllowlistGet403AndAreNeverContacted) {
  StartProxy();
  for (const std::string& method : std::vector<std::string>{"GET", "POST", "DELETE"}) {
    const Got refused = ProxyGet(not_allowed_, "/secret?size=10", nullptr, method);
    EXPECT_EQ(refused.status, 403) << method;
    EXPECT_NE(refused.body.find("not an allowed host"), std::string::npos) << refused.body;
    EXPECT_NE(refused.body.find("forward_proxy.allow"), std::string::npos) << refused.body;
  }
  // An allowed address on another port, and names the allowlist does not hold.
  for (const std::string& url : std::vector<std::string>{"http://127.0.0.1:1/x", "http://localhost:" +
                                    std::to_string(PortOf(allowed_)) + "/x",
                                "http://example.com/x", "https://127.0.0.1:" +
                                    std::to_string(PortOf(not_allowed_)) + "/x"}) {
    RawConnection conn(fanoutd_.port());
    ASSERT_TRUE(conn.Send("GET " + url + " HTTP/1.1\r\nHost: whatever\r\nConnection: close\r\n\r\n"));
    const std::string got = conn.ReadUntil([](const std::string&) { return false; });
    EXPECT_EQ(got.rfind("HTTP/1.1 403 Forbidden\r\n", 0), 0u) << url << ": " << got;
  }
  EXPECT_EQ(not_allowed_.TotalCount(), 0) << "never an open proxy";
  EXPECT_EQ(allowed_.TotalCount(), 0);
  // Origin-form requests have no route in a proxy-only config.
  RawConnection conn(fanoutd_.port());
  ASSERT_TRUE(conn.Send("GET /x HTTP/1.1\r\nHost: " + Authority(allowed_) +
                        "\r\nConnection: close\r\n\r\n"));
  const std::string got = conn.ReadUntil([](const std::string&) { return false; });
  EXPECT_EQ(got.rfind("HTTP/1.1 404 Not Found\r\n", 0), 0u) << got;
  EXPECT_NE(got.find("forward proxy here"), std::string::npos) << got;
  EXPECT_EQ(allowed_.TotalCount(), 0);
}

TEST_F(ForwardProxyTest, CurlWithAProxyGetsAMissThenAHitAndHttpProxyWorksAlike) {
  StartProxy();
  const std::string target = "/curl/file.bin?size=200000&cc=max-age%3D600";
  const std::string url = UrlOf(allowed_, target);
  const std::string proxy = "http://127.0.0.1:" + std::to_string(fanoutd_.port());
  const std::string out = dir_.path() + "/got";
  auto curl = [&](const std::string& command) {
    std::filesystem::remove(out);
    const std::string headers = RunCommand(command);
    EXPECT_TRUE(ReadFile(out) == OriginServer::OriginBody("/curl/file.bin", 200000)) << command;
    const std::size_t at = headers.find("X-Cache: ");
    return at == std::string::npos ? headers : headers.substr(at + 9, headers.find('\r', at) - at - 9);
  };
  EXPECT_EQ(curl("curl -sS -D - -o " + out + " -x " + proxy + " '" + url + "'"), "MISS");
  EXPECT_EQ(curl("curl -sS -D - -o " + out + " -x " + proxy + " '" + url + "'"), "HIT");
  EXPECT_EQ(curl("env -u no_proxy -u NO_PROXY http_proxy=" + proxy + " curl -sS -D - -o " + out +
                 " '" + url + "'"),
            "HIT");
  EXPECT_EQ(allowed_.Count(target), 1);
}

TEST_F(ForwardProxyTest, PerHostRulesApplyToTheirHostsOnly) {
  // Freshness for responses that state none, on one host only.
  StartProxy(R"(, "hosts": [{"match": [")" + Authority(allowed_) +
             R"("], "default_ttl": "1h", "targeted_cache_control": [],
                 "rules": [{"match": "/never/**", "store": false}]}])");
  const std::string target = "/rules/plain.bin?size=1000&no_lm=1";
  // Once each first fetch is over (until then a request joins it).
  auto after_fetch = [&](const OriginServer& origin, const std::string& t) {
    std::string x_cache;
    EXPECT_TRUE(WaitFor([&] { return (x_cache = ProxyGet(origin, t).x_cache) != "JOIN"; }));
    return x_cache;
  };
  EXPECT_EQ(ProxyGet(allowed_, target).x_cache, "MISS");
  EXPECT_EQ(after_fetch(allowed_, target), "HIT") << "default_ttl made it fresh";
  EXPECT_EQ(allowed_.Count(target), 1);
  // The admin interface's entry list (once the entry is on disk) judges it
  // by the same rules.
  httplib::Client admin("127.0.0.1", fanoutd_.admin_port());
  nlohmann::json entry;
  ASSERT_TRUE(WaitFor([&] {
    auto entries = admin.Get("/entries");
    if (!entries) return false;
    for (const auto& e : nlohmann::json::parse(entries->body)) {
      if (e["key"] == "http://" + Authority(allowed_) + target) entry = e;
    }
    return !entry.is_null();
  }));
  EXPECT_GT(entry["fresh_for"].get<long long>(), 3500) << entry.dump();
  EXPECT_EQ(ProxyGet(other_allowed_, target).x_cache, "MISS");
  EXPECT_NE(after_fetch(other_allowed_, target), "HIT") << "no rule: nothing made it fresh";
  EXPECT_EQ(other_allowed_.Count(target), 2);
  // Targeted cache control: by default Fanout-Cache-Control outranks
  // Cache-Control; the host whose rules list no targeted field ignores it.
  const std::string targeted = "/rules/targeted.bin?size=1000&cc=no-store&fanout_cc=max-age%3D600";
  EXPECT_EQ(ProxyGet(other_allowed_, targeted).x_cache, "MISS");
  EXPECT_EQ(after_fetch(other_allowed_, targeted), "HIT");
  EXPECT_EQ(ProxyGet(allowed_, targeted).x_cache, "MISS");
  EXPECT_EQ(after_fetch(allowed_, targeted), "MISS") << "no-store counts there";
  EXPECT_EQ(allowed_.Count(targeted), 2);
  // A per-path rule of the host: never stored.
  const std::string never = "/never/x.bin?size=1000&cc=max-age%3D600";
  EXPECT_EQ(ProxyGet(allowed_, never).x_cache, "MISS");
  EXPECT_EQ(after_fetch(allowed_, never), "MISS");
  EXPECT_EQ(allowed_.Count(never), 2);
}

TEST_F(ForwardProxyTest, ConnectIs405UnlessTurnedOn) {
  StartProxy();
  RawConnection conn(fanoutd_.port());
  ASSERT_TRUE(conn.Send("CONNECT " + Authority(allowed_) + " HTTP/1.1\r\nHost: " +
                        Authority(allowed_) + "\r\n\r\n"));
  const std::string got = conn.ReadUntil([](const std::string&) { return false; });
  EXPECT_EQ(got.rfind("HTTP/1.1 405 Method Not Allowed\r\n", 0), 0u) << got;
  EXPECT_NE(got.find("forward_proxy.connect"), std::string::npos) << got;
  EXPECT_EQ(allowed_.TotalCount(), 0);
}

TEST_F(ForwardProxyTest, ConnectTunnelsToAllowedHostsAndPortsOnlyUncached) {
  StartProxy(R"(, "connect": true)");
  const std::string proxy = "http://127.0.0.1:" + std::to_string(fanoutd_.port());
  const std::string target = "/tunnel/t.bin?size=500000&cc=max-age%3D600";
  const std::string out = dir_.path() + "/tunnelled";
  for (int round = 0; round < 2; ++round) {
    // curl -p: a CONNECT tunnel even for http, what it does for https.
    const std::string headers = RunCommand("curl -sS -p -D - -o " + out + " -x " + proxy + " '" +
                                           UrlOf(allowed_, target) + "'");
    EXPECT_NE(headers.find("HTTP/1.1 200"), std::string::npos) << headers;
    EXPECT_EQ(headers.find("X-Cache"), std::string::npos) << "the bytes went by, never cached";
    EXPECT_TRUE(ReadFile(out) == OriginServer::OriginBody("/tunnel/t.bin", 500000));
  }
  EXPECT_EQ(allowed_.Count(target), 2) << "a tunnel is not cached";
  httplib::Client admin("127.0.0.1", fanoutd_.admin_port());
  const std::string tunnels = "fanout_requests_total{cache=\"TUNNEL\",code=\"2xx\"} 2\n";
  ASSERT_TRUE(WaitFor([&] {  // counted when the connection's record ends
    auto metrics = admin.Get("/metrics");
    return metrics && metrics->body.find(tunnels) != std::string::npos;
  })) << admin.Get("/metrics")->body;
  EXPECT_NE(fanoutd_.log().find("\"CONNECT " + Authority(allowed_) + "\" 200 TUNNEL"),
            std::string::npos) << fanoutd_.log();

  // The client's first bytes may come with the CONNECT head: they go first.
  RawConnection conn(fanoutd_.port());
  ASSERT_TRUE(conn.Send("CONNECT " + Authority(other_allowed_) + " HTTP/1.1\r\nHost: " +
                        Authority(other_allowed_) + "\r\n\r\nGET /early.bin?size=5 HTTP/1.1\r\n"
                        "Host: o\r\nConnection: close\r\n\r\n"));
  const std::string got = conn.ReadUntil([](const std::string&) { return false; });
  EXPECT_EQ(got.rfind("HTTP/1.1 200 OK\r\n\r\nHTTP/1.1 200 OK\r\n", 0), 0u)
      << got;
  EXPECT_EQ(got.substr(got.size() - 5), OriginServer::OriginBody("/early.bin", 5));
  EXPECT_EQ(other_allowed_.Count("/early.bin?size=5"), 1);

  // Not on the allowlist (host, or port): 403, never connected.
  for (const std::string& authority : {Authority(not_allowed_), std::string("127.0.0.1:22"),
                                      std::string("example.com:443")}) {
    RawConnection refused(fanoutd_.port());
    ASSERT_TRUE(refused.Send("CONNECT " + authority + " HTTP/1.1\r\nHost: " + authority +
                             "\r\n\r\n"));
    const std::string answer = refused.ReadUntil([](const std::string&) { return false; });
    EXPECT_EQ(answer.rfind("HTTP/1.1 403 Forbidden\r\n", 0), 0u) << authority << ": " << answer;
  }
  EXPECT_EQ(not_allowed_.TotalCount(), 0);
}

// Sends all of `bytes` on a blocking socket.
bool SendAll(int fd, std::string_view bytes) {
  while (!bytes.empty()) {
    const ssize_t n = ::send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL);
    if (n <= 0) return false;
    bytes.remove_prefix(static_cast<std::size_t>(n));
  }
  return true;
}

// Reads until the peer closes; `pause` after every read (a slow reader).
std::string ReadToEnd(int fd, std::chrono::microseconds pause = {}) {
  std::string out;
  char buf[16384];
  for (;;) {
    const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) return out;
    out.append(buf, static_cast<std::size_t>(n));
    if (pause.count() > 0) std::this_thread::sleep_for(pause);
  }
}

TEST_F(ForwardProxyTest, ATunnelCarriesEveryByteBothWaysThroughAHalfCloseAndASlowReader) {
  // A peer that reads until the client is done sending, then answers 8 MB
  // and closes at once: the tunnel must still hand every byte to a client
  // that reads slowly.
  int peer_port = 0;
  const int listener = ListenOnLoopback(&peer_port);
  constexpr std::size_t kUp = 2 << 20, kDown = 8 << 20;
  std::string peer_got;
  std::thread peer([&] {
    const int fd = ::accept(listener, nullptr, nullptr);
    ASSERT_GE(fd, 0);
    peer_got = ReadToEnd(fd);
    EXPECT_TRUE(SendAll(fd, Pattern(0, kDown)));
    ::close(fd);
  });
  const std::string peer_authority = "127.0.0.1:" + std::to_string(peer_port);
  StartProxy(R"(, "connect": true)", "", {peer_authority});

  RawConnection conn(fanoutd_.port());
  ASSERT_TRUE(conn.connected());
  const int fd = conn.fd();
  std::thread sender([&] {
    EXPECT_TRUE(SendAll(fd, "CONNECT " + peer_authority + " HTTP/1.1\r\nHost: " + peer_authority +
                                "\r\n\r\n" + Pattern(1000, kUp)));
    ::shutdown(fd, SHUT_WR);  // done sending; the answer is still to come
  });
  const std::string got = ReadToEnd(fd, std::chrono::microseconds(200));
  sender.join();
  peer.join();
  ::close(listener);
  EXPECT_TRUE(peer_got == Pattern(1000, kUp)) << "the peer got " << peer_got.size() << " bytes";
  const std::string head = "HTTP/1.1 200 OK\r\n\r\n";
  ASSERT_EQ(got.compare(0, head.size(), head), 0) << got.substr(0, 200);
  EXPECT_EQ(got.size() - head.size(), kDown);
  EXPECT_TRUE(got.compare(head.size(), std::string::npos, Pattern(0, kDown)) == 0)
      << "the answer's bytes differ";
}

TEST_F(ForwardProxyTest, ATunnelToAnAllowedPortWhereNothingListensIs502) {
  const std::string dead = "127.0.0.1:" + std::to_string(FreeLoopbackPort());
  StartProxy(R"(, "connect": true)", "", {dead});
  RawConnection conn(fanoutd_.port());
  ASSERT_TRUE(conn.Send("CONNECT " + dead + " HTTP/1.1\r\nHost: " + dead + "\r\n\r\n"));
  const std::string got = conn.ReadUntil([](const std::string&) { return false; });
  EXPECT_EQ(got.rfind("HTTP/1.1 502 Bad Gateway\r\n", 0), 0u) << got;
  EXPECT_NE(got.find("tunnel to " + dead + " failed"), std::string::npos) << got;
}

TEST_F(ForwardProxyTest, RoutesAndTheProxyServeSideBySide) {
  // A reverse route to `not_allowed_`: origin-form requests go there,
  // absolute URLs by their host, and the route never opens the proxy.
  StartProxy("", R"("routes": [{"prefix": "/", "upstream": "http://)" + Authority(not_allowed_) +
                     R"("}], )");
  const std::string target = "/side/x.bin?size=1000&cc=max-age%3D600";
  httplib::Client direct("127.0.0.1", fanoutd_.port());
  auto routed = direct.Get(target);
  ASSERT_TRUE(routed);
  EXPECT_EQ(routed->status, 200);
  EXPECT_EQ(not_allowed_.Count(target), 1);
  const Got proxied = ProxyGet(allowed_, target);
  EXPECT_EQ(proxied.x_cache, "MISS") << "another URL than the routed one";
  EXPECT_EQ(allowed_.Count(target), 1);
  EXPECT_EQ(ProxyGet(not_allowed_, target).status, 403)
      << "a route's upstream is not on the allowlist by being a route's";
  EXPECT_EQ(not_allowed_.Count(target), 1);
}

TEST_F(ForwardProxyTest, AnEntryIsPurgedByItsUrlAsAClientWritesIt) {
  StartProxy();
  const std::string target = "/purge/x.bin?size=100&cc=max-age%3D600";
  EXPECT_EQ(ProxyGet(allowed_, target).x_cache, "MISS");
  std::string x_cache;
  ASSERT_TRUE(WaitFor([&] { return (x_cache = ProxyGet(allowed_, target).x_cache) != "JOIN"; }));
  EXPECT_EQ(x_cache, "HIT");
  httplib::Client admin("127.0.0.1", fanoutd_.admin_port());
  // By the URL as the client asked for it, not the key's own spelling.
  auto purged = admin.Post("/purge?url=" + QueryEscaped(UrlOf(allowed_, target)));
  ASSERT_TRUE(purged);
  EXPECT_EQ(purged->status, 200) << purged->body;
  EXPECT_EQ(ProxyGet(allowed_, target).x_cache, "MISS");
  EXPECT_EQ(allowed_.Count(target), 2);
}

TEST_F(ForwardProxyTest, AReloadChangesTheAllowlist) {
  StartProxy();
  const std::string target = "/reload/x.bin?size=100";
  EXPECT_EQ(ProxyGet(not_allowed_, target).status, 403);
  WriteConfig("", "", {Authority(not_allowed_)});
  ASSERT_EQ(::kill(fanoutd_.pid(), SIGHUP), 0);
  ASSERT_TRUE(WaitFor([&] { return fanoutd_.log().find("signal SIGHUP: config") != std::string::npos; }))
      << fanoutd_.log();
  EXPECT_EQ(ProxyGet(not_allowed_, target).status, 200);
  EXPECT_EQ(not_allowed_.Count(target), 1);
}

}  // namespace
}  // namespace fanout::testing
