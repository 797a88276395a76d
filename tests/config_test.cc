#include <gtest/gtest.h>

#include "config/config_loader.h"
#include "config/units.h"
#include "config/url.h"

namespace fanout {
namespace {

TEST(UnitsTest, SizesInHumanUnits) {
  EXPECT_EQ(ParseSize("512"), 512u);
  EXPECT_EQ(ParseSize("64KiB"), 65536u);
  EXPECT_EQ(ParseSize("10GiB"), 10ull << 30);
  EXPECT_EQ(ParseSize("1.5MB"), 1500000u);
  EXPECT_EQ(ParseSize("2 MiB"), 2u << 20);
  EXPECT_FALSE(ParseSize("lots"));
  EXPECT_FALSE(ParseSize("10XB"));
  EXPECT_FALSE(ParseSize("1.2.3"));
  EXPECT_FALSE(ParseSize("0.5B"));
}

TEST(UnitsTest, DurationsInHumanUnits) {
  EXPECT_EQ(ParseDuration("250ms"), std::chrono::milliseconds(250));
  EXPECT_EQ(ParseDuration("30s"), std::chrono::milliseconds(30000));
  EXPECT_EQ(ParseDuration("30"), std::chrono::milliseconds(30000));
  EXPECT_EQ(ParseDuration("5m"), std::chrono::milliseconds(300000));
  EXPECT_EQ(ParseDuration("1.5h"), std::chrono::milliseconds(5400000));
  EXPECT_FALSE(ParseDuration("soon"));
  EXPECT_FALSE(ParseDuration("5 fortnights"));
}

TEST(UrlTest, ParsesOriginsAndDefaultsPorts) {
  std::string err;
  auto u = ParseUrl("https://example.org/base/", &err);
  ASSERT_TRUE(u);
  EXPECT_EQ(u->port, 443);
  EXPECT_EQ(u->path, "/base");
  EXPECT_EQ(u->HostHeader(), "example.org");
  EXPECT_EQ(u->Origin(), "https://example.org:443");
  auto v6 = ParseUrl("http://[::1]:9000", &err);
  ASSERT_TRUE(v6);
  EXPECT_EQ(v6->host, "::1");
  EXPECT_EQ(v6->HostHeader(), "[::1]:9000");
}

TEST(UrlTest, RejectsWhatIsNotAnHttpOrigin) {
  std::string err;
  EXPECT_FALSE(ParseUrl("localhost:80", &err));
  EXPECT_NE(err.find("scheme"), std::string::npos);
  EXPECT_FALSE(ParseUrl("ftp://h", &err));
  EXPECT_FALSE(ParseUrl("http://", &err));
  EXPECT_FALSE(ParseUrl("http://h:0", &err));
  EXPECT_FALSE(ParseUrl("http://h:x", &err));
  EXPECT_FALSE(ParseUrl("http://u:p@h", &err));
  EXPECT_FALSE(ParseUrl("http://h/?q", &err));
  EXPECT_FALSE(ParseUrl("http://h h", &err));
}

TEST(ConfigTest, DefaultsHoldWhereTheFileIsSilent) {
  Config c;
  ASSERT_TRUE(ParseConfig(R"({"routes": [{"prefix": "/", "upstream": "http://h"}]})", &c).ok());
  EXPECT_EQ(c.listen_port, 8080);
  EXPECT_EQ(c.max_connections, 512);
  EXPECT_EQ(c.upstream_read_timeout, std::chrono::seconds(30));
  EXPECT_TRUE(c.access_log);
}

TEST(ConfigTest, AllKeysParse) {
  Config c;
  Status st = ParseConfig(R"({
    // comments are allowed
    "listen": "[::1]:9090", "cache_dir": "/c",
    "routes": [{"prefix": "/deb/", "upstream": "http://h/debian", "host": "mirror"}],
    "upstream": {"connect_timeout": "2s", "read_timeout": "1m"},
    "max_connections": 100, "client_timeout": "10s", "max_request_body": "1MiB",
    "log": {"level": "debug", "access_log": false}})", &c);
  ASSERT_TRUE(st.ok()) << st.ToString();
  EXPECT_EQ(c.listen_host, "::1");
  EXPECT_EQ(c.listen_port, 9090);
  EXPECT_EQ(c.routes[0].prefix, "/deb");
  EXPECT_EQ(c.routes[0].host_override, "mirror");
  EXPECT_EQ(c.upstream_connect_timeout, std::chrono::seconds(2));
  EXPECT_EQ(c.max_request_body, 1u << 20);
  EXPECT_FALSE(c.access_log);
}

TEST(ConfigTest, WrongTypesNameTheKey) {
  Config c;
  Status st = ParseConfig(R"({"log": {"access_log": "yes"}})", &c);
  EXPECT_EQ(st.message().rfind("log.access_log: expected true or false", 0), 0u)
      << st.message();
  st = ParseConfig(R"({"routes": [42]})", &c);
  EXPECT_EQ(st.message().rfind("routes[0]: expected an object", 0), 0u) << st.message();
  st = ParseConfig(R"({"routes": [{"prefix": "/"}]})", &c);
  EXPECT_EQ(st.message(), "routes[0].upstream: required");
  st = ParseConfig(R"([1])", &c);
  EXPECT_FALSE(st.ok());
}

}  // namespace
}  // namespace fanout
