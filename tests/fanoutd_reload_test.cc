// SIGHUP reloads the config file, against the real binary: new routes and
// rules apply to requests from then on, a download and a keep-alive
// connection under way go on untouched, and a config that is invalid or
// changes what needs a restart is refused with a log line, the running
// one staying in force.

#include <signal.h>

#include <string>
#include <thread>

#include <gtest/gtest.h>

#include "tests/fanoutd_fixture.h"

namespace fanout {
namespace {

using ::fanout::testing::FanoutdTest;
using ::fanout::testing::Fetched;
using ::fanout::testing::RawConnection;
using ::fanout::testing::WaitFor;

class ReloadTest : public FanoutdTest {
 protected:
  std::string Config(const std::string& routes, const std::string& extra = "") {
    return "{\"routes\": [" + routes + "]" + extra + "}";
  }
  std::string Route(const std::string& prefix) const {
    return "{\"prefix\": \"" + prefix + "\", \"upstream\": \"http://127.0.0.1:" +
           std::to_string(origin_port_) + "\"}";
  }
  // Rewrites the config file, sends SIGHUP and waits for the n-th reload
  // line ("config reloaded" or "config not reloaded").
  void Reload(const std::string& json, int n = 1) {
    WriteConfig(json);
    ASSERT_EQ(::kill(fanoutd_.pid(), SIGHUP), 0);
    ASSERT_TRUE(WaitFor([&] { return Count(fanoutd_.log(), "signal SIGHUP: config") == n; }))
        << fanoutd_.log();
  }
  static int Count(const std::string& text, const std::string& what) {
    int n = 0;
    for (std::size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) {
      ++n;
    }
    return n;
  }
  static std::string KeepAliveGet(const std::string& path) {
    return "GET " + path + " HTTP/1.1\r\nHost: x\r\n\r\n";
  }
};

TEST_F(ReloadTest, NewRoutesApplyWhileADownloadAndAConnectionGoOn) {
  StartFanoutd({"--config", WriteConfig(Config(Route("/a")))});
  EXPECT_EQ(Get("/b/x.bin?size=10").status, 404);

  // A download held half-way, and an idle keep-alive connection.
  const std::string path = "/a/held.bin";
  const std::string target = path + "?size=2000000&hold_at=1000000&cc=max-age%3D600";
  Fetched download;
  std::thread client([&] { download = Get(target); });
  ASSERT_TRUE(WaitFor([&] { return origin_.Holding("/held.bin") == 1; }));
  RawConnection idle(fanoutd_.port());
  ASSERT_TRUE(idle.Send(KeepAliveGet("/a/one.bin?size=5")));
  const std::string first = idle.ReadUntil([](const std::string& got) {
    return got.find("\r\n\r\n") != std::string::npos && got.size() >= got.find("\r\n\r\n") + 9;
  });
  ASSERT_EQ(first.rfind("HTTP/1.1 200", 0), 0u) << first;

  Reload(Config(Route("/a") + ", " + Route("/b")));
  EXPECT_NE(fanoutd_.log().find("signal SIGHUP: config reloaded (2 routes"), std::string::npos);
  EXPECT_EQ(Get("/b/x.bin?size=10").status, 200) << "the new route";

  ASSERT_TRUE(idle.Send(KeepAliveGet("/b/two.bin?size=5")));
  const std::string second = idle.ReadUntil([](const std::string& got) {
    return got.find("\r\n\r\n") != std::string::npos && got.size() >= got.find("\r\n\r\n") + 9;
  });
  EXPECT_EQ(second.rfind("HTTP/1.1 200", 0), 0u) << "the connection from before: " << second;

  origin_.Release("/held.bin");
  client.join();
  EXPECT_TRUE(download.transfer_ok);
  EXPECT_TRUE(download.body == OriginServer::OriginBody("/held.bin", 2000000));
  EXPECT_EQ(fanoutd_.Stop(), 0);
}

TEST_F(ReloadTest, RulesAndAccessLogSettingsApplyAfterAReload) {
  StartFanoutd({"--config", WriteConfig(Config(Route("/")))});
  // No freshness, no rule: not stored.
  const std::string target = "/r.bin?size=10&no_etag=1&no_lm=1";
  ASSERT_EQ(Get(target).x_cache, "MISS");
  ASSERT_EQ(Get(target).x_cache, "MISS");
  Reload(Config("{\"prefix\": \"/\", \"upstream\": \"http://127.0.0.1:" +
                    std::to_string(origin_port_) +
                    "\", \"rules\": [{\"match\": \"/*.bin\", \"ttl\": \"1h\"}]}",
                ", \"log\": {\"access_format\": \"json\"}"));
  ASSERT_EQ(Get(target).x_cache, "MISS");
  WaitUntilHit(target);
  EXPECT_EQ(Get(target).x_cache, "HIT") << "the new rule's ttl";
  EXPECT_NE(fanoutd_.log().find("{\"bytes\":10,\"cache\":\"HIT\""), std::string::npos)
      << "JSON access lines from the reload on";
}

TEST_F(ReloadTest, AnInvalidConfigIsLoggedAndTheRunningOneStays) {
  StartFanoutd({"--config", WriteConfig(Config(Route("/a")))});
  Reload("{\"routes\": [{\"prefix\": \"/a\", \"upstream\": \"ftp://nope\"}]}");
  EXPECT_NE(fanoutd_.log().find("config not reloaded, the running one stays: "),
            std::string::npos);
  EXPECT_NE(fanoutd_.log().find("routes[0].upstream: not a valid URL 'ftp://nope'"),
            std::string::npos)
      << fanoutd_.log();
  Reload("{not json", 2);
  EXPECT_EQ(Get("/a/x.bin?size=10").status, 200);
  EXPECT_EQ(fanoutd_.Stop(), 0);
}

TEST_F(ReloadTest, ListenAndCacheDirChangesNeedARestart) {
  // The fixture gives listen and cache_dir on the command line; the file's
  // own must not change either when the flags are gone, so here the test
  // changes what only the file sets.
  StartFanoutd({"--config", WriteConfig(Config(Route("/a"), ", \"max_cache_size\": \"1GiB\""))});
  Reload(Config(Route("/a") + ", " + Route("/b"),
                ", \"max_cache_size\": \"2GiB\", "
                "\"upstream\": {\"read_timeout\": \"5s\", \"resume_attempts\": 1}"));
  EXPECT_NE(fanoutd_.log().find("changed settings need a restart: max_cache_size, "
                                "upstream.read_timeout, upstream.resume_attempts"),
            std::string::npos)
      << fanoutd_.log();
  EXPECT_EQ(Get("/b/x.bin?size=10").status, 404) << "nothing of it applied";
  EXPECT_EQ(Get("/a/x.bin?size=10").status, 200);
}

}  // namespace
}  // namespace fanout
