// A tier of three fanoutd nodes behind HAProxy, on loopback: the real
// deploy/haproxy/haproxy.cfg (balance uri, hash-type consistent, health
// checks on /readyz), three real fanoutd processes with their own cache
// directories, and a test origin. Each URL must be fetched once by the
// whole tier; a node that dies gives its URLs to the others while theirs
// still HIT; back, it gets its URLs again and HITs from its own disk. The
// share of URLs that moved is printed.

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <map>
#include <set>
#include <sstream>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "bench/origin/origin_server.h"
#include "tests/fanoutd_process.h"
#include "tests/test_util.h"

namespace fanout::testing {
namespace {

constexpr const char* kHaproxy = "/usr/sbin/haproxy";
constexpr int kNodes = 3;
constexpr int kUrls = 30;
constexpr int kClientsPerUrl = 5;
constexpr std::uint64_t kSize = 200000;

std::string Path(int url) { return "/tier/object-" + std::to_string(url) + ".bin"; }
std::string Target(int url) { return Path(url) + "?size=" + std::to_string(kSize); }

class TierTest : public ::testing::Test {
 protected:
  struct Node {
    int port = 0;
    int admin = 0;
    std::string dir;
    FanoutdProcess process;
  };

  void SetUp() override {
    if (::access(kHaproxy, X_OK) != 0) {
      GTEST_SKIP() << kHaproxy << " is not installed (scripts/test.sh installs it)";
    }
    origin_port_ = origin_.Start("127.0.0.1", 0);
    ASSERT_GT(origin_port_, 0);
    for (int i = 0; i < kNodes; ++i) {
      nodes_[i].port = FreeLoopbackPort();
      nodes_[i].admin = FreeLoopbackPort();
      nodes_[i].dir = dir_.path() + "/node" + std::to_string(i + 1);
      std::filesystem::create_directories(nodes_[i].dir);
      StartNode(i);
    }
    StartHaproxy();
  }

  void TearDown() override {
    if (haproxy_ > 0) {
      ::kill(haproxy_, SIGTERM);
      WaitForExit(haproxy_, std::chrono::seconds(10));
    }
  }

  void StartNode(int i) {
    ASSERT_TRUE(nodes_[i].process.Start(
        nodes_[i].dir,
        {"--listen", "127.0.0.1:" + std::to_string(nodes_[i].port), "--admin-listen",
         "127.0.0.1:" + std::to_string(nodes_[i].admin), "--upstream",
         "http://127.0.0.1:" + std::to_string(origin_port_)}))
        << nodes_[i].process.log();
  }

  void StartHaproxy() {
    port_ = FreeLoopbackPort();
    stats_port_ = FreeLoopbackPort();
    std::vector<std::string> args = {"/usr/bin/env",
                                     "FANOUT_TIER_LISTEN=127.0.0.1:" + std::to_string(port_),
                                     "FANOUT_TIER_STATS=127.0.0.1:" + std::to_string(stats_port_)};
    for (int i = 0; i < kNodes; ++i) {
      const std::string n = "FANOUT_NODE" + std::to_string(i + 1);
      args.push_back(n + "=127.0.0.1:" + std::to_string(nodes_[i].port));
      args.push_back(n + "_ADMIN=" + std::to_string(nodes_[i].admin));
    }
    args.insert(args.end(), {kHaproxy, "-db", "-f", FANOUT_SOURCE_DIR "/deploy/haproxy/haproxy.cfg"});
    haproxy_log_ = dir_.path() + "/haproxy.log";
    haproxy_ = Spawn(args, haproxy_log_);
    for (int i = 0; i < kNodes; ++i) {
      ASSERT_TRUE(WaitForStatus(i, "UP")) << "node" << i + 1 << ": '" << Status(i) << "'\n"
                                          << ReadFile(haproxy_log_);
    }
  }

  // HAProxy's view of node i ("UP", "DOWN", ...), from its CSV status page.
  std::string Status(int i) {
    httplib::Client stats("127.0.0.1", stats_port_);
    stats.set_url_encode(false);  // ";csv" as it is
    auto res = stats.Get("/stats;csv");
    if (!res || res->status != 200) return "";
    std::istringstream lines(res->body);
    const std::string name = "fanout_nodes,node" + std::to_string(i + 1) + ",";
    for (std::string line; std::getline(lines, line);) {
      if (line.rfind(name, 0) != 0) continue;
      std::istringstream fields(line);
      std::string field;
      for (int f = 0; f <= 17 && std::getline(fields, field, ','); ++f) {
      }
      return field;  // column 17: status
    }
    return "";
  }

  bool WaitForStatus(int i, const std::string& status) {
    return WaitFor([&] { return Status(i) == status; }, std::chrono::seconds(20));
  }

  // GET through HAProxy: the X-Cache it got, and whether the body is the
  // origin's, whole.
  struct Got {
    int status = 0;
    std::string x_cache;
    bool whole = false;
  };
  Got Get(int url) {
    httplib::Client client("127.0.0.1", port_);
    client.set_read_timeout(30, 0);
    Got got;
    auto res = client.Get(Target(url).c_str());
    if (!res) return got;
    got.status = res->status;
    got.x_cache = res->get_header_value("X-Cache");
    got.whole = res->body == OriginServer::OriginBody(Path(url), kSize);
    return got;
  }

  // Which node holds each URL, from the nodes' own /entries (-1: none).
  std::map<int, int> Owners() {
    std::map<int, int> owner;
    for (int i = 0; i < kNodes; ++i) {
      if (nodes_[i].process.pid() <= 0) continue;
      httplib::Client admin("127.0.0.1", nodes_[i].admin);
      auto res = admin.Get("/entries?limit=1000");
      if (!res || res->status != 200) continue;
      for (const auto& e : nlohmann::json::parse(res->body)) {
        const std::string key = e["key"];
        for (int u = 0; u < kUrls; ++u) {
          if (key.size() >= Target(u).size() &&
              key.compare(key.size() - Target(u).size(), Target(u).size(), Target(u)) == 0) {
            EXPECT_EQ(owner.count(u), 0u) << Target(u) << " is stored on two nodes";
            owner[u] = i;
          }
        }
      }
    }
    return owner;
  }

  int OriginFetches() {
    int total = 0;
    for (int u = 0; u < kUrls; ++u) total += origin_.Count(Target(u));
    return total;
  }

  OriginServer origin_;
  int origin_port_ = 0;
  TempDir dir_;
  std::array<Node, kNodes> nodes_;
  pid_t haproxy_ = -1;
  std::string haproxy_log_;
  int port_ = 0;
  int stats_port_ = 0;
};

TEST_F(TierTest, EachUrlIsFetchedOnceByTheTierAndANodeLeavingMovesOnlyItsOwn) {
  // 30 URLs, 5 clients each, all at once.
  std::vector<std::thread> clients;
  std::vector<Got> got(kUrls * kClientsPerUrl);
  for (int c = 0; c < kUrls * kClientsPerUrl; ++c) {
    clients.emplace_back([&, c] { got[c] = Get(c % kUrls); });
  }
  for (auto& t : clients) t.join();
  for (int c = 0; c < kUrls * kClientsPerUrl; ++c) {
    EXPECT_EQ(got[c].status, 200) << Target(c % kUrls);
    EXPECT_TRUE(got[c].whole) << Target(c % kUrls);
  }
  for (int u = 0; u < kUrls; ++u) {
    EXPECT_EQ(origin_.Count(Target(u)), 1) << Target(u) << " fetched by more than one node";
  }
  std::printf("tier: %d URLs x %d clients through HAProxy, %d origin fetches\n", kUrls,
              kClientsPerUrl, OriginFetches());
  std::map<int, int> before;
  ASSERT_TRUE(WaitFor([&] { return (before = Owners()).size() == kUrls; }));
  std::array<int, kNodes> held{};
  for (const auto& [u, node] : before) ++held[node];
  std::printf("tier: URLs per node %d / %d / %d\n", held[0], held[1], held[2]);

  // Node 2 dies: HAProxy takes it out; its URLs go to the others, whose
  // own URLs still HIT where they were.
  const int gone = 1;
  nodes_[gone].process.Kill();
  ASSERT_TRUE(WaitForStatus(gone, "DOWN")) << ReadFile(haproxy_log_);
  const int fetched_before = OriginFetches();
  int moved = 0;
  for (int u = 0; u < kUrls; ++u) {
    const Got g = Get(u);
    EXPECT_EQ(g.status, 200) << Target(u);
    EXPECT_TRUE(g.whole) << Target(u);
    if (before[u] == gone) {
      ++moved;
      EXPECT_EQ(g.x_cache, "MISS") << Target(u) << " was the dead node's";
    } else {
      EXPECT_EQ(g.x_cache, "HIT") << Target(u) << " must not move: its node is up";
    }
  }
  EXPECT_EQ(OriginFetches() - fetched_before, held[gone]);
  std::map<int, int> during;
  ASSERT_TRUE(WaitFor([&] { return (during = Owners()).size() == kUrls; }));
  int moved_keys = 0;
  for (int u = 0; u < kUrls; ++u) moved_keys += during[u] != before[u];
  EXPECT_EQ(moved_keys, held[gone]) << "only the dead node's URLs move";
  std::printf("tier: node %d left: %d of %d keys moved (%.0f%%), %d origin fetches for them\n",
              gone + 1, moved_keys, kUrls, 100.0 * moved_keys / kUrls,
              OriginFetches() - fetched_before);

  // Back, on the same cache directory: its URLs come back to it and HIT
  // from its disk; nothing is fetched again.
  StartNode(gone);
  ASSERT_TRUE(WaitForStatus(gone, "UP")) << ReadFile(haproxy_log_);
  const int fetched_during = OriginFetches();
  int returned = 0;
  for (int u = 0; u < kUrls; ++u) {
    const Got g = Get(u);
    EXPECT_EQ(g.status, 200);
    EXPECT_TRUE(g.whole);
    EXPECT_EQ(g.x_cache, "HIT") << Target(u);
  }
  EXPECT_EQ(OriginFetches(), fetched_during) << "every URL was on disk somewhere";
  httplib::Client admin("127.0.0.1", nodes_[gone].admin);
  for (int u = 0; u < kUrls; ++u) {
    if (before[u] != gone) continue;
    // The returning node served it: its hit count went up.
    auto res = admin.Get("/entries?limit=1000");
    ASSERT_TRUE(res);
    for (const auto& e : nlohmann::json::parse(res->body)) {
      const std::string key = e["key"];
      if (key.find(Target(u)) != std::string::npos && e["hits"].get<int>() >= 1) ++returned;
    }
  }
  EXPECT_EQ(returned, held[gone]) << "the returning node serves its URLs again";
  std::printf("tier: node %d returned: %d of %d keys moved back (%.0f%%), all HIT from its "
              "disk, 0 origin fetches\n",
              gone + 1, returned, kUrls, 100.0 * returned / kUrls);
}

}  // namespace
}  // namespace fanout::testing
