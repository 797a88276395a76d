#include <fstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "config/config_loader.h"
#include "config/units.h"
#include "config/url.h"
#include "tests/test_util.h"

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

TEST(UnitsTest, NumbersThatAreNoNumbersOrTooLargeAreRejectedNotThrown) {
  const std::string huge(400, '9');
  for (const std::string& text : std::vector<std::string>{
           ".", "..", ".s", ".KiB", huge, huge + "s", huge + ".5ms", "-1", "+1", "1e3", "NaN",
           "nan", "inf", "Infinity", ""}) {
    EXPECT_FALSE(ParseSize(text)) << text;
    EXPECT_FALSE(ParseDuration(text)) << text;
  }
  // The largest results: just under 2^63 bytes, 10^15 ms.
  EXPECT_EQ(ParseSize("8388607TiB"), 8388607ull << 40);
  EXPECT_FALSE(ParseSize("8388608TiB"));  // 2^63
  EXPECT_FALSE(ParseSize("99999999999999999999"));
  EXPECT_EQ(ParseDuration("1000000000000000ms"), kMaxParsedDuration);
  EXPECT_FALSE(ParseDuration("1000000000000001ms"));
  EXPECT_FALSE(ParseDuration("99999999999999d"));
  EXPECT_EQ(ParseDuration(".5s"), std::chrono::milliseconds(500));
  EXPECT_EQ(ParseDuration("5.s"), std::chrono::milliseconds(5000));
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
  EXPECT_EQ(c.upstream_resume_attempts, 3);
  EXPECT_FALSE(c.routes[0].verify);
  EXPECT_TRUE(c.access_log);
}

TEST(ConfigTest, AllKeysParse) {
  Config c;
  Status st = ParseConfig(R"({
    // comments are allowed
    "listen": "[::1]:9090", "cache_dir": "/c",
    "routes": [{"prefix": "/deb/", "upstream": "http://h/debian", "host": "mirror",
                "verify": true}],
    "upstream": {"connect_timeout": "2s", "read_timeout": "1m", "resume_attempts": 0},
    "max_connections": 100, "client_timeout": "10s", "max_request_body": "1MiB",
    "request_head_timeout": "3s", "max_connections_per_client": 8,
    "max_uncached_buffer": "32MiB", "shutdown_grace": "45s",
    "log": {"level": "debug", "access_log": false}})", &c);
  ASSERT_TRUE(st.ok()) << st.ToString();
  EXPECT_EQ(c.request_head_timeout, std::chrono::seconds(3));
  EXPECT_EQ(c.max_connections_per_client, 8);
  EXPECT_EQ(c.max_uncached_buffer, 32u << 20);
  EXPECT_EQ(c.shutdown_grace, std::chrono::seconds(45));
  EXPECT_EQ(Config().shutdown_grace, std::chrono::seconds(30));
  EXPECT_EQ(c.listen_host, "::1");
  EXPECT_EQ(c.listen_port, 9090);
  EXPECT_EQ(c.routes[0].prefix, "/deb");
  EXPECT_EQ(c.routes[0].host_override, "mirror");
  EXPECT_EQ(c.upstream_connect_timeout, std::chrono::seconds(2));
  EXPECT_EQ(c.upstream_resume_attempts, 0);
  EXPECT_TRUE(c.routes[0].verify);
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
  st = ParseConfig(R"({"routes": [{"prefix": "/", "upstream": "http://h", "verify": 1}]})", &c);
  EXPECT_EQ(st.message().rfind("routes[0].verify: expected true or false", 0), 0u)
      << st.message();
  st = ParseConfig(R"([1])", &c);
  EXPECT_FALSE(st.ok());
}

// The message of ParseConfig for a config of one route and `extra`
// (",\"key\": value" text), or "OK".
std::string ErrorFor(const std::string& extra) {
  Config c;
  const Status st = ParseConfig(
      R"({"routes": [{"prefix": "/", "upstream": "http://h"}])" + extra + "}", &c);
  return st.ok() ? "OK" : st.message();
}

// upstream.stall_timeout: 10s below a longer read_timeout by default, off
// when read_timeout is as short, "off" on request, never as long as
// read_timeout.
TEST(ConfigTest, StallTimeoutStaysBelowTheReadTimeout) {
  auto stall_of = [](const std::string& upstream) {
    Config c;
    const Status st = ParseConfig(
        R"({"routes": [{"prefix": "/", "upstream": "http://h"}], "upstream": )" + upstream + "}",
        &c);
    EXPECT_TRUE(st.ok()) << upstream << " -> " << st.message();
    return c.upstream_stall_timeout;
  };
  Config defaults;
  ASSERT_TRUE(ParseConfig(R"({"routes": [{"prefix": "/", "upstream": "http://h"}]})", &defaults).ok());
  EXPECT_EQ(defaults.upstream_stall_timeout, std::chrono::seconds(10));
  EXPECT_EQ(stall_of(R"({"read_timeout": "1m"})"), std::chrono::seconds(10));
  EXPECT_EQ(stall_of(R"({"read_timeout": "5s"})"), std::chrono::seconds(0));
  EXPECT_EQ(stall_of(R"({"read_timeout": "5s", "stall_timeout": "2s"})"), std::chrono::seconds(2));
  EXPECT_EQ(stall_of(R"({"stall_timeout": "off"})"), std::chrono::seconds(0));
  EXPECT_EQ(ErrorFor(R"(, "upstream": {"read_timeout": "5s", "stall_timeout": "5s"})"),
            "upstream.stall_timeout: must be shorter than upstream.read_timeout (5000ms), got "
            "5000ms (\"off\" turns it off)");
  EXPECT_EQ(ErrorFor(R"(, "upstream": {"stall_timeout": "soon"})").rfind(
                "upstream.stall_timeout: not a duration", 0),
            0u);
}

TEST(ConfigTest, PseudonymIsAToken) {
  Config c;
  ASSERT_TRUE(ParseConfig(R"({"routes": [{"prefix": "/", "upstream": "http://h"}],
                              "pseudonym": "edge-1.example"})", &c).ok());
  EXPECT_EQ(c.pseudonym, "edge-1.example");
  Config defaults;
  ASSERT_TRUE(ParseConfig(R"({"routes": [{"prefix": "/", "upstream": "http://h"}]})", &defaults).ok());
  EXPECT_EQ(defaults.pseudonym, "") << "empty: this host's name, at start";
  for (const char* bad : {"\"\"", "\"two words\"", "\"a,b\"", "\"x(y)\""}) {
    EXPECT_EQ(ErrorFor(std::string(R"(, "pseudonym": )") + bad).rfind("pseudonym: must be 1 to 64", 0),
              0u) << bad;
  }
  EXPECT_EQ(ErrorFor(R"(, "pseudonym": 7)").rfind("pseudonym: ", 0), 0u);
}

TEST(ConfigTest, PartialCheckpointIsASizeOrOff) {
  auto every = [](const std::string& upstream) {
    Config c;
    const Status st = ParseConfig(
        R"({"routes": [{"prefix": "/", "upstream": "http://h"}], "upstream": )" + upstream + "}",
        &c);
    EXPECT_TRUE(st.ok()) << upstream << " -> " << st.message();
    return c.upstream_partial_checkpoint;
  };
  Config defaults;
  ASSERT_TRUE(ParseConfig(R"({"routes": [{"prefix": "/", "upstream": "http://h"}]})", &defaults).ok());
  EXPECT_EQ(defaults.upstream_partial_checkpoint, 64u << 20);
  EXPECT_EQ(every(R"({"partial_checkpoint": "16MiB"})"), 16u << 20);
  EXPECT_EQ(every(R"({"partial_checkpoint": "off"})"), 0u);
  EXPECT_EQ(ErrorFor(R"(, "upstream": {"partial_checkpoint": "often"})").rfind(
                "upstream.partial_checkpoint: not a size: 'often'", 0),
            0u);
  EXPECT_EQ(ErrorFor(R"(, "upstream": {"partial_checkpoint": 0})"),
            "upstream.partial_checkpoint: must be greater than zero");
}

// Checks that each config extra fails with a message starting with its key
// and containing `problem`.
struct BadValue {
  std::string extra;
  std::string key;
  std::string problem;
};
void ExpectEachFailsNamingTheKey(const std::vector<BadValue>& cases) {
  for (const auto& c : cases) {
    const std::string message = ErrorFor(c.extra);
    EXPECT_EQ(message.rfind(c.key + ": ", 0), 0u) << c.extra << " -> " << message;
    EXPECT_NE(message.find(c.problem), std::string::npos) << c.extra << " -> " << message;
  }
}

TEST(ConfigTest, NumbersTooLargeForJsonNameTheKey) {
  ExpectEachFailsNamingTheKey({
      {R"(, "client_timeout": 1e400)", "client_timeout", "number out of range"},
      {R"(, "max_connections": -1e400)", "max_connections", "number out of range"},
      {R"(, "upstream": {"connect_timeout": 1, "read_timeout": 1e999})",
       "upstream.read_timeout", "number out of range"},
      {R"(, "max_cache_size": 123456789e300000)", "max_cache_size", "number out of range"},
  });
  // Inside a route: the element is named too.
  Config c;
  const Status st = ParseConfig(R"({"routes": [{"prefix": "/", "upstream": "http://h"},
      {"prefix": "/b", "upstream": "http://h", "default_ttl": 1e400}]})", &c);
  EXPECT_EQ(st.message().rfind("routes[1].default_ttl: number out of range", 0), 0u)
      << st.message();
}

TEST(ConfigTest, NegativeNumbersNameTheKey) {
  ExpectEachFailsNamingTheKey({
      {R"(, "client_timeout": -5)", "client_timeout", "greater than zero, got -5"},
      {R"(, "max_connections": -1)", "max_connections", "must be 1 to 100000, got -1"},
      {R"(, "max_connections_per_client": -1)", "max_connections_per_client",
       "must be 0 to 100000, got -1"},
      {R"(, "request_head_timeout": -1)", "request_head_timeout", "greater than zero"},
      {R"(, "max_uncached_buffer": "-1MiB")", "max_uncached_buffer", "not a size"},
      {R"(, "max_request_body": -1)", "max_request_body", "greater than zero, got -1"},
      {R"(, "max_cache_size": -9223372036854775808)", "max_cache_size", "greater than zero"},
      {R"(, "upstream": {"connect_timeout": -1})", "upstream.connect_timeout",
       "greater than zero"},
      {R"(, "client_timeout": "-5s")", "client_timeout", "not a duration"},
      {R"(, "max_object_size": "-1MiB")", "max_object_size", "not a size"},
      {R"(, "upstream": {"resume_attempts": -1})", "upstream.resume_attempts",
       "must be 0 to 100, got -1"},
      {R"(, "upstream": {"resume_attempts": 101})", "upstream.resume_attempts",
       "must be 0 to 100, got 101"},
  });
  Config c;
  const Status st = ParseConfig(
      R"({"routes": [{"prefix": "/", "upstream": "http://h", "stale_if_error": -1}]})", &c);
  EXPECT_EQ(st.message(), "routes[0].stale_if_error: must be greater than zero, got -1");
}

TEST(ConfigTest, HugeIntegersNameTheKey) {
  ExpectEachFailsNamingTheKey({
      // 2^64 - 1 is the largest JSON whole number; 2^64 is read as a float.
      {R"(, "max_connections": 18446744073709551615)", "max_connections", "must be 1 to"},
      {R"(, "max_connections": 18446744073709551616)", "max_connections",
       "expected a whole number"},
      {R"(, "max_connections": 4294967297)", "max_connections", "must be 1 to"},  // 2^32+1
      {R"(, "client_timeout": 18446744073709551615)", "client_timeout", "too long"},
      {R"(, "client_timeout": 9223372036854775807)", "client_timeout", "too long"},
      {R"(, "client_timeout": 18446744073709551616)", "client_timeout",
       "expected a whole number of seconds"},
      {R"(, "max_cache_size": 18446744073709551615)", "max_cache_size", "too large"},
      {R"(, "max_request_body": 9223372036854775808)", "max_request_body", "too large"},
  });
  EXPECT_EQ(ErrorFor(R"(, "max_cache_size": 9223372036854775807)"), "OK");
}

TEST(ConfigTest, FractionsAndFloatsWhereWholeNumbersAreRequiredNameTheKey) {
  ExpectEachFailsNamingTheKey({
      {R"(, "max_connections": 1.5)", "max_connections", "expected a whole number, got 1.5"},
      {R"(, "max_connections": 100.0)", "max_connections", "expected a whole number"},
      {R"(, "max_connections": 1e9)", "max_connections", "expected a whole number"},
      {R"(, "max_connections": 1e2)", "max_connections", "expected a whole number"},
      {R"(, "client_timeout": 1.5)", "client_timeout", "got 1.5"},
      {R"(, "max_object_size": 1e6)", "max_object_size", "expected a whole number of bytes"},
      {R"(, "max_request_body": "0.5B")", "max_request_body", "not a size"},
  });
}

TEST(ConfigTest, DurationsAndSizesTooLargeAfterTheirUnitNameTheKey) {
  ExpectEachFailsNamingTheKey({
      {R"(, "client_timeout": "99999999999999999d")", "client_timeout", "not a duration"},
      {R"(, "client_timeout": "25h")", "client_timeout", "too long: '25h' (at most 1d)"},
      {R"(, "client_timeout": 86401)", "client_timeout", "too long"},
      {R"(, "upstream": {"read_timeout": "1441m"})", "upstream.read_timeout", "too long"},
      {R"(, "max_cache_size": "99999999TiB")", "max_cache_size", "not a size"},
      {R"(, "max_cache_size": "9223372036854775808B")", "max_cache_size", "not a size"},
      {R"(, "max_request_body": ".")", "max_request_body", "not a size"},
      {R"(, "client_timeout": ".")", "client_timeout", "not a duration"},
      {", \"client_timeout\": \"" + std::string(400, '9') + "s\"", "client_timeout",
       "not a duration"},
  });
  Config c;
  Status st = ParseConfig(R"({"routes": [{"prefix": "/", "upstream": "http://h",
      "default_ttl": "3651d"}]})", &c);
  EXPECT_EQ(st.message().rfind("routes[0].default_ttl: too long: '3651d' (at most 3650d)", 0),
            0u) << st.message();
  st = ParseConfig(R"({"routes": [{"prefix": "/", "upstream": "http://h",
      "stale_while_revalidate": "500ms"}]})", &c);
  EXPECT_EQ(st.message(), "routes[0].stale_while_revalidate: must be at least 1s");
  // The bounds themselves are fine.
  EXPECT_EQ(ErrorFor(R"(, "client_timeout": "1d", "upstream": {"read_timeout": 86400})"), "OK");
  EXPECT_EQ(ErrorFor(R"(, "max_connections": 100000, "max_cache_size": "8388607TiB")"), "OK");
  EXPECT_TRUE(ParseConfig(R"({"routes": [{"prefix": "/", "upstream": "http://h",
      "default_ttl": "3650d", "stale_if_error": 315360000}]})", &c).ok());
}

TEST(ConfigTest, PortsOutOfRangeNameTheKey) {
  ExpectEachFailsNamingTheKey({
      {R"(, "listen": "h:65536")", "listen", "port out of range (0-65535)"},
      {R"(, "listen": "h:99999999999999999999")", "listen", "port out of range"},
      {R"(, "admin_listen": "h:-1")", "admin_listen", "port is not a number"},
      {R"(, "admin_listen": "h:1e3")", "admin_listen", "port is not a number"},
      {R"(, "listen": 8080)", "listen", "expected a string, got number"},
  });
  EXPECT_EQ(ErrorFor(R"(, "listen": "h:0", "admin_listen": "h:65535")"), "OK");
  Config c;
  for (const char* upstream : {"http://h:65536", "http://h:0", "http://h:-1"}) {
    const Status st = ParseConfig(
        std::string(R"({"routes": [{"prefix": "/", "upstream": ")") + upstream + "\"}]}", &c);
    EXPECT_EQ(st.message().rfind("routes[0].upstream: not a valid URL", 0), 0u)
        << st.message();
  }
}

TEST(ConfigTest, NotANumberAndInfinityAreRejectedNamingTheKeyWhenTheyAreStrings) {
  ExpectEachFailsNamingTheKey({
      {R"(, "client_timeout": "NaN")", "client_timeout", "not a duration"},
      {R"(, "client_timeout": "inf")", "client_timeout", "not a duration"},
      {R"(, "max_cache_size": "Infinity")", "max_cache_size", "not a size"},
      {R"(, "max_connections": "NaN")", "max_connections", "expected a whole number, got string"},
      {R"(, "max_connections": null)", "max_connections", "expected a whole number, got null"},
  });
  // Bare NaN is not JSON; the message says where the text went wrong.
  for (const char* text : {R"({"client_timeout": NaN})", R"({"client_timeout": Infinity})",
                           R"({"client_timeout": -Infinity})"}) {
    Config c;
    const Status st = ParseConfig(text, &c);
    EXPECT_EQ(st.message().rfind("not valid JSON (in client_timeout): ", 0), 0u)
        << st.message();
  }
}

TEST(ConfigTest, DeeplyNestedOrBrokenJsonIsAnErrorNotACrash) {
  Config c;
  const std::string deep = std::string(100000, '[') + std::string(100000, ']');
  EXPECT_EQ(ParseConfig(deep, &c).code(), Status::Code::kInvalidArgument);
  EXPECT_EQ(ParseConfig("{\"log\": " + deep + "}", &c).message(),
            "log: expected an object, got array");
  EXPECT_EQ(ParseConfig(std::string(100000, '['), &c).code(), Status::Code::kInvalidArgument);
  EXPECT_EQ(ParseConfig("{\"listen\": \"\xff\"}", &c).code(), Status::Code::kInvalidArgument);
  EXPECT_EQ(ParseConfig("", &c).message().rfind("not valid JSON", 0), 0u);
}

TEST(ConfigTest, AFileErrorNamesTheFileThenTheKey) {
  testing::TempDir dir;
  const std::string path = dir.path() + "/fanout.json";
  std::ofstream(path) << R"({"routes": [{"prefix": "/", "upstream": "http://h"}],
                             "client_timeout": 1e400})";
  Config c;
  const Status st = LoadConfigFile(path, &c);
  EXPECT_EQ(st.code(), Status::Code::kInvalidArgument);
  EXPECT_EQ(st.message().rfind(path + ": client_timeout: number out of range", 0), 0u)
      << st.message();
}

}  // namespace
}  // namespace fanout
