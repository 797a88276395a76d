// The real fanoutd binary rejects bad configs with the key named, before
// listening, and answers --check-config / --version / --help.

#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>

#include "tests/fanoutd_process.h"
#include "tests/test_util.h"

namespace fanout {
namespace {

using ::fanout::testing::RunFanoutdToExit;
using ::fanout::testing::TempDir;

class FanoutdConfigTest : public ::testing::Test {
 protected:
  std::string Write(const std::string& json) {
    const std::string path = dir_.path() + "/c.json";
    std::ofstream(path) << json;
    return path;
  }
  TempDir dir_;
};

struct BadConfig {
  const char* json;
  const char* expected;  // must appear in the error
};

TEST_F(FanoutdConfigTest, EachKindOfInvalidConfigIsRejectedNamingTheKey) {
  const BadConfig cases[] = {
      {R"({"routes": [{"prefix": "/", "upstream": "http://h"}], "lisen": "x"})",
       "lisen: unknown key"},
      {R"({"routes": [{"prefix": "/", "upstream": "http://h"}], "client_timeout": 1e400})",
       "client_timeout: number out of range"},
      {R"({"routes": [{"prefix": "/", "upstream": "http://h"}], "max_connections": "9"})",
       "max_connections: expected a whole number"},
      {R"({"routes": [{"prefix": "/", "upstream": "ftp://h"}]})",
       "routes[0].upstream: not a valid URL"},
      {R"({"routes": [{"prefix": "/", "upstream": "http://h:99999"}]})",
       "routes[0].upstream: not a valid URL 'http://h:99999': port out of range"},
      {R"({"routes": [{"prefix": "x", "upstream": "http://h"}]})",
       "routes[0].prefix: must start with '/'"},
      {R"({"routes": [{"prefix": "/", "upstream": "http://h", "timeout": 1}]})",
       "routes[0].timeout: unknown key"},
      {R"({"routes": [{"prefix": "/", "upstream": "http://h"}], "max_connections": 0})",
       "max_connections: must be 1 to 100000"},
      {R"({"routes": [{"prefix": "/", "upstream": "http://h"}],
           "upstream": {"read_timeout": "soon"}})",
       "upstream.read_timeout: not a duration"},
      {R"({"routes": [{"prefix": "/", "upstream": "http://h"}], "max_request_body": "lots"})",
       "max_request_body: not a size"},
      {R"({"routes": [{"prefix": "/", "upstream": "http://h"}], "log": {"level": "loud"}})",
       "log.level: unknown level"},
      {R"({"routes": [{"prefix": "/", "upstream": "http://h"}], "listen": "nohost"})",
       "listen: expected \"host:port\""},
      {R"({"routes": []})", "routes: at least one route is required"},
      {R"({"routes": [{"prefix": "/a", "upstream": "http://h"},
                      {"prefix": "/a/", "upstream": "http://g"}]})",
       "routes[1].prefix: duplicate prefix"},
      {R"({"routes": [ )", "not valid JSON"},
      {R"({"routes": [{"prefix": "/", "upstream": "https://h",
                       "tls_ca_file": "/nonexistent/ca.pem"}]})",
       "routes[0].tls_ca_file: cannot read '/nonexistent/ca.pem'"},
      {R"({"routes": [{"prefix": "/", "upstream": "https://h", "tls_ca_file": "/"}]})",
       "routes[0].tls_ca_file: cannot read '/'"},
      {R"({"routes": [{"prefix": "/", "upstream": "https://h", "tls_ca_file": ""}]})",
       "routes[0].tls_ca_file: must not be empty"},
      {R"({"routes": [{"prefix": "/", "upstream": "https://h", "tls_verify": "no"}]})",
       "routes[0].tls_verify: expected true or false"},
      {R"({"routes": [{"prefix": "/", "upstream": "http://h", "tls_verify": false}]})",
       "routes[0]: tls_ca_file and tls_verify apply to https upstreams only"},
  };
  for (const auto& c : cases) {
    const std::string path = Write(c.json);
    auto result = RunFanoutdToExit({"--config", path, "--listen", "127.0.0.1:0"}, dir_.path());
    EXPECT_EQ(result.exit_code, 2) << c.json;
    EXPECT_NE(result.output.find(c.expected), std::string::npos)
        << "expected '" << c.expected << "' in: " << result.output;
    EXPECT_EQ(result.output.find("listening"), std::string::npos) << "must not listen";
  }
}

TEST_F(FanoutdConfigTest, CheckConfigExitsZeroForAValidConfig) {
  const std::string path = Write(R"({"listen": "127.0.0.1:0", "cache_dir": "/tmp/x",
      "routes": [{"prefix": "/", "upstream": "https://example.org/base/", "host": "h"}],
      "upstream": {"connect_timeout": "2s", "read_timeout": "1m"},
      "max_request_body": "1MiB", "client_timeout": 10,
      "log": {"level": "warn", "access_log": false}})");
  auto ok = RunFanoutdToExit({"--config", path, "--check-config"}, dir_.path());
  EXPECT_EQ(ok.exit_code, 0) << ok.output;
  EXPECT_NE(ok.output.find("configuration OK"), std::string::npos);
}

TEST_F(FanoutdConfigTest, CheckConfigExitsNonZeroForAnInvalidConfig) {
  const std::string path = Write(R"({"routes": [{"prefix": "/", "upstream": "nope"}]})");
  auto bad = RunFanoutdToExit({"--config", path, "--check-config"}, dir_.path());
  EXPECT_EQ(bad.exit_code, 2);
  EXPECT_NE(bad.output.find("routes[0].upstream"), std::string::npos) << bad.output;
}

TEST_F(FanoutdConfigTest, MissingConfigFileIsNamed) {
  auto r = RunFanoutdToExit({"--config", dir_.path() + "/nope.json"}, dir_.path());
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.output.find("nope.json"), std::string::npos);
}

TEST_F(FanoutdConfigTest, UpstreamFlagAloneIsAWorkingConfig) {
  auto r = RunFanoutdToExit({"--upstream", "http://127.0.0.1:9", "--check-config"},
                            dir_.path());
  EXPECT_EQ(r.exit_code, 0) << r.output;
  auto none = RunFanoutdToExit({"--check-config"}, dir_.path());
  EXPECT_EQ(none.exit_code, 2);
  EXPECT_NE(none.output.find("routes"), std::string::npos);
  auto bad = RunFanoutdToExit({"--upstream", "localhost:80", "--check-config"}, dir_.path());
  EXPECT_EQ(bad.exit_code, 2);
  EXPECT_NE(bad.output.find("--upstream.upstream"), std::string::npos) << bad.output;
}

TEST_F(FanoutdConfigTest, BadFlagsAreRejected) {
  auto r = RunFanoutdToExit({"--listen", "127.0.0.1:http", "--upstream", "http://h"},
                            dir_.path());
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.output.find("listen"), std::string::npos);
  auto level = RunFanoutdToExit({"--log-level", "loud", "--upstream", "http://h"}, dir_.path());
  EXPECT_EQ(level.exit_code, 2);
  auto unknown = RunFanoutdToExit({"--frobnicate"}, dir_.path());
  EXPECT_EQ(unknown.exit_code, 2);
}

TEST_F(FanoutdConfigTest, VersionAndHelp) {
  auto v = RunFanoutdToExit({"--version"}, dir_.path());
  EXPECT_EQ(v.exit_code, 0);
  EXPECT_NE(v.output.find("fanoutd 0."), std::string::npos);
  auto h = RunFanoutdToExit({"--help"}, dir_.path());
  EXPECT_EQ(h.exit_code, 0);
  EXPECT_NE(h.output.find("--check-config"), std::string::npos);
}

TEST_F(FanoutdConfigTest, ShippedDefaultConfigIsValid) {
  auto r = RunFanoutdToExit(
      {"--config", std::string(FANOUT_SOURCE_DIR) + "/config/fanout.json", "--check-config"},
      dir_.path());
  EXPECT_EQ(r.exit_code, 0) << r.output;
}

}  // namespace
}  // namespace fanout

namespace fanout {
namespace {

TEST_F(FanoutdConfigTest, ANonEmptyCacheDirThatIsNotACacheStopsStartUpAndLosesNothing) {
  const std::string dir = dir_.path() + "/home";
  std::filesystem::create_directories(dir + "/tmp");
  std::ofstream(dir + "/report.pdf") << "precious";
  std::ofstream(dir + "/tmp/draft.txt") << "precious too";
  const auto result = RunFanoutdToExit(
      {"--cache-dir", dir, "--upstream", "http://127.0.0.1:9", "--listen", "127.0.0.1:0",
       "--admin-listen", ""},
      dir_.path());
  EXPECT_EQ(result.exit_code, 1) << result.output;
  EXPECT_NE(result.output.find("not a fanout cache"), std::string::npos) << result.output;
  EXPECT_TRUE(std::filesystem::exists(dir + "/report.pdf"));
  EXPECT_TRUE(std::filesystem::exists(dir + "/tmp/draft.txt"));
}

}  // namespace
}  // namespace fanout
