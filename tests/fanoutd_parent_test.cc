// Parent tiers: a child fanoutd whose upstream is a parent fanoutd in
// front of the origin. Each adds its Via entry to requests and responses,
// X-Cache names each hop, concurrent clients of the child cost the origin
// one fetch, and a route that leads back to a fanoutd already on the path
// is refused with 508 instead of looping.

#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "bench/origin/origin_server.h"
#include "tests/fanoutd_process.h"
#include "tests/test_util.h"

namespace fanout::testing {
namespace {

class ParentTest : public ::testing::Test {
 protected:
  void SetUp() override {
    origin_port_ = origin_.Start("127.0.0.1", 0);
    ASSERT_GT(origin_port_, 0);
  }

  // Starts a fanoutd named `pseudonym` in front of `upstream`, on `port`
  // (0: its own pick).
  void StartNode(FanoutdProcess& node, const std::string& pseudonym, const std::string& upstream,
                 int port = 0) {
    const std::string dir = dir_.path() + "/" + pseudonym;
    std::filesystem::create_directories(dir);
    const std::string config = dir + "/fanout.json";
    std::ofstream(config) << R"({"pseudonym": ")" << pseudonym
                          << R"(", "routes": [{"prefix": "/", "upstream": ")" << upstream
                          << R"("}]})";
    std::vector<std::string> args = {"--config", config};
    if (port != 0) args.insert(args.end(), {"--listen", "127.0.0.1:" + std::to_string(port)});
    ASSERT_TRUE(node.Start(dir, args)) << node.log();
  }

  static std::string Url(int port) { return "http://127.0.0.1:" + std::to_string(port); }

  struct Got {
    int status = 0;
    std::string x_cache;
    std::string via;
    std::string body;
  };
  static Got Get(int port, const std::string& target, std::atomic<int>* streaming = nullptr) {
    httplib::Client client("127.0.0.1", port);
    client.set_read_timeout(30, 0);
    Got got;
    httplib::Request req;
    req.method = "GET";
    req.path = target;
    req.response_handler = [&](const httplib::Response& res) {
      got.status = res.status;
      got.x_cache = res.get_header_value("X-Cache");
      got.via = res.get_header_value("Via");
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

  OriginServer origin_;
  int origin_port_ = 0;
  TempDir dir_;
};

TEST_F(ParentTest, TwentyClientsOfAChildCostTheOriginOneFetchAndEveryHopIsNamed) {
  FanoutdProcess parent, child;
  StartNode(parent, "parent", Url(origin_port_));
  StartNode(child, "child", Url(parent.port()));
  const std::string path = "/tiers/big.bin";
  const std::string target = path + "?size=4000000&hold_at=2000000";
  const std::string body = OriginServer::OriginBody(path, 4000000);

  // 20 clients on the child, all streaming before the origin goes on.
  std::atomic<int> streaming{0};
  std::vector<Got> got(20);
  std::vector<std::thread> clients;
  for (int i = 0; i < 20; ++i) {
    clients.emplace_back([&, i] { got[i] = Get(child.port(), target, &streaming); });
  }
  ASSERT_TRUE(WaitFor([&] { return streaming.load() == 20; })) << streaming.load();
  origin_.Release(path);
  for (auto& t : clients) t.join();
  int misses = 0, joins = 0;
  for (const Got& g : got) {
    EXPECT_EQ(g.status, 200);
    EXPECT_TRUE(g.body == body) << "a client's bytes differ from the origin's";
    misses += g.x_cache == "MISS from child, MISS from parent";
    joins += g.x_cache == "JOIN from child, MISS from parent";
    EXPECT_EQ(g.via, "1.1 parent, 1.1 child");
  }
  EXPECT_EQ(misses, 1);
  EXPECT_EQ(joins, 19) << got[0].x_cache << " / " << got[1].x_cache;
  EXPECT_EQ(origin_.Count(target), 1) << "one fetch for the whole chain";
  const httplib::Headers sent = origin_.LastHeaders(target);
  auto via = sent.find("Via");
  ASSERT_NE(via, sent.end());
  EXPECT_EQ(via->second, "1.1 child, 1.1 parent") << "each hop adds itself on the way up";

  // Later: a hit on the child, whose stored answer came from the parent.
  ASSERT_TRUE(WaitFor([&] { return Get(child.port(), target).x_cache.rfind("HIT", 0) == 0; }));
  const Got hit = Get(child.port(), target);
  EXPECT_EQ(hit.x_cache, "HIT from child, MISS from parent");
  EXPECT_TRUE(hit.body == body);
  // A client of the parent itself sees the plain value.
  ASSERT_TRUE(WaitFor([&] { return Get(parent.port(), target).x_cache == "HIT"; }));
  EXPECT_EQ(Get(parent.port(), target).via, "1.1 parent");
  EXPECT_EQ(origin_.Count(target), 1);
}

TEST_F(ParentTest, AFanoutdThatIsItsOwnUpstreamAnswers508) {
  FanoutdProcess self;
  const int port = FreeLoopbackPort();
  StartNode(self, "self", Url(port), port);
  const Got got = Get(self.port(), "/loop.bin");
  EXPECT_EQ(got.status, 508);
  EXPECT_NE(got.body.find("loop detected"), std::string::npos) << got.body;
  EXPECT_NE(got.body.find("already passed through self"), std::string::npos) << got.body;
  EXPECT_EQ(origin_.TotalCount(), 0);
  EXPECT_NE(self.log().find("refusing GET /loop.bin: its Via (1.1 self)"), std::string::npos)
      << self.log();
}

TEST_F(ParentTest, ALoopThroughTwoFanoutdsIsRefused) {
  FanoutdProcess a, b;
  const int a_port = FreeLoopbackPort();
  const int b_port = FreeLoopbackPort();
  StartNode(a, "a", Url(b_port), a_port);
  StartNode(b, "b", Url(a_port), b_port);
  const Got got = Get(a.port(), "/ring.bin");
  EXPECT_EQ(got.status, 508);
  EXPECT_NE(got.body.find("fanoutd a: loop detected"), std::string::npos) << got.body;
  EXPECT_NE(a.log().find("its Via (1.1 a, 1.1 b)"), std::string::npos) << a.log();
  EXPECT_EQ(origin_.TotalCount(), 0);
}

}  // namespace
}  // namespace fanout::testing
