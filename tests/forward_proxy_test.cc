// Forward-proxy mode's pieces without a server: host patterns (the
// allowlist), the forward_proxy config object and its errors, and the
// per-origin routes ProxyRoutes gives allowed hosts.

#include <gtest/gtest.h>

#include "config/config_loader.h"
#include "config/host_pattern.h"
#include "server/cache_key.h"
#include "server/forward_proxy.h"

namespace fanout {
namespace {

HostPattern Compiled(const std::string& text) {
  HostPattern p;
  const Status st = HostPattern::Compile(text, &p);
  EXPECT_TRUE(st.ok()) << text << ": " << st.ToString();
  return p;
}

TEST(HostPatternTest, ANameAloneMatchesItOnTheSchemesDefaultPortOnly) {
  const HostPattern p = Compiled("deb.debian.org");
  EXPECT_TRUE(p.Matches("deb.debian.org", 80, 80));
  EXPECT_TRUE(p.Matches("DEB.Debian.ORG.", 80, 80)) << "case and one trailing dot do not count";
  EXPECT_TRUE(p.Matches("deb.debian.org", 443, 443));
  EXPECT_FALSE(p.Matches("deb.debian.org", 8080, 80)) << "another port needs naming";
  EXPECT_FALSE(p.Matches("deb.debian.org", 22, 443));
  EXPECT_FALSE(p.Matches("debian.org", 80, 80));
  EXPECT_FALSE(p.Matches("xdeb.debian.org", 80, 80));
  EXPECT_FALSE(p.Matches("deb.debian.org.evil.example", 80, 80));
}

TEST(HostPatternTest, PortsAreMatchedExactlyOrAnyWithAStar) {
  const HostPattern exact = Compiled("127.0.0.1:8000");
  EXPECT_TRUE(exact.Matches("127.0.0.1", 8000, 80));
  EXPECT_FALSE(exact.Matches("127.0.0.1", 80, 80));
  EXPECT_FALSE(exact.Matches("127.0.0.2", 8000, 80));
  const HostPattern any = Compiled("localhost:*");
  EXPECT_TRUE(any.Matches("localhost", 1, 80));
  EXPECT_TRUE(any.Matches("localhost", 65535, 443));
  const HostPattern v6 = Compiled("[::1]:9000");
  EXPECT_TRUE(v6.Matches("::1", 9000, 80));
  EXPECT_FALSE(v6.Matches("::1", 80, 80));
}

TEST(HostPatternTest, AWildcardMatchesNamesUnderTheSuffixButNotTheSuffixItself) {
  const HostPattern p = Compiled("*.npmjs.org");
  EXPECT_TRUE(p.Matches("registry.npmjs.org", 443, 443));
  EXPECT_TRUE(p.Matches("a.b.NPMJS.org", 80, 80));
  EXPECT_FALSE(p.Matches("npmjs.org", 80, 80)) << "list the bare name too";
  EXPECT_FALSE(p.Matches("evilnpmjs.org", 80, 80)) << "a label boundary, not a string suffix";
  EXPECT_FALSE(p.Matches("registry.npmjs.org", 8443, 443));
}

TEST(HostPatternTest, BadPatternsSayWhatIsWrong) {
  for (const auto& [text, problem] : std::vector<std::pair<std::string, std::string>>{
           {"", "empty"},
           {"*", "open proxy"},
           {"*:443", "open proxy"},
           {"host:", "invalid port"},
           {"host:http", "invalid port"},
           {"host:70000", "out of range"},
           {"ho*st", "invalid character"},
           {"a.*.org", "invalid character"},
           {"*.", "missing host"},
           {"[::1", "unterminated"},
           {"[::1]x", "expected ':port'"},
           {"http://host", "invalid"},
       }) {
    HostPattern p;
    const Status st = HostPattern::Compile(text, &p);
    EXPECT_FALSE(st.ok()) << text;
    EXPECT_NE(st.message().find(problem), std::string::npos) << text << ": " << st.message();
  }
}

TEST(ForwardProxyConfigTest, AbsentMeansOffAndAProxyNeedsNoRoutes) {
  Config off;
  ASSERT_TRUE(ParseConfig(R"({"routes": [{"prefix": "/", "upstream": "http://h"}]})", &off).ok());
  EXPECT_FALSE(off.forward_proxy.enabled);

  Config c;
  const Status st = ParseConfig(R"({"forward_proxy": {
      "allow": ["deb.debian.org", "*.npmjs.org", "127.0.0.1:8000"],
      "connect": true,
      "hosts": [{"match": ["deb.debian.org"], "default_ttl": "1h",
                 "rules": [{"match": "/debian/pool/**", "immutable": true}]}]}})",
                                &c);
  ASSERT_TRUE(st.ok()) << st.ToString();
  EXPECT_TRUE(c.forward_proxy.enabled);
  EXPECT_TRUE(c.forward_proxy.connect);
  ASSERT_EQ(c.forward_proxy.allow.size(), 3u);
  EXPECT_EQ(c.forward_proxy.allow[1].text(), "*.npmjs.org");
  ASSERT_EQ(c.forward_proxy.hosts.size(), 1u);
  EXPECT_EQ(c.forward_proxy.hosts[0].settings.default_ttl, std::chrono::hours(1));
  EXPECT_EQ(c.forward_proxy.hosts[0].settings.targeted_cache_control,
            (std::vector<std::string>{"Fanout-Cache-Control", "CDN-Cache-Control"}))
      << "the route default";
  ASSERT_EQ(c.forward_proxy.hosts[0].settings.rules.size(), 1u);
  EXPECT_TRUE(c.forward_proxy.hosts[0].settings.rules[0].immutable);
  EXPECT_TRUE(ValidateConfig(c).ok()) << "a forward proxy alone needs no route";

  Config none;
  ASSERT_TRUE(ParseConfig("{}", &none).ok());
  const Status missing = ValidateConfig(none);
  EXPECT_NE(missing.message().find("forward_proxy"), std::string::npos) << missing.message();
}

TEST(ForwardProxyConfigTest, MistakesNameTheKey) {
  for (const auto& [json, key, problem] : std::vector<std::tuple<std::string, std::string, std::string>>{
           {R"({"forward_proxy": true})", "forward_proxy", "expected an object"},
           {R"({"forward_proxy": {}})", "forward_proxy.allow", "required"},
           {R"({"forward_proxy": {"allow": []}})", "forward_proxy.allow", "at least one"},
           {R"({"forward_proxy": {"allow": "h"}})", "forward_proxy.allow", "expected an array"},
           {R"({"forward_proxy": {"allow": ["h", "*"]}})", "forward_proxy.allow[1]", "open proxy"},
           {R"({"forward_proxy": {"allow": ["h"], "connect": "yes"}})", "forward_proxy.connect",
            "expected true or false"},
           {R"({"forward_proxy": {"allow": ["h"], "tunnel": true}})", "forward_proxy.tunnel",
            "unknown key"},
           {R"({"forward_proxy": {"allow": ["h"], "hosts": [{"default_ttl": "1h"}]}})",
            "forward_proxy.hosts[0].match", "required"},
           {R"({"forward_proxy": {"allow": ["h"], "hosts": [{"match": ["h"], "upstream": "x"}]}})",
            "forward_proxy.hosts[0].upstream", "unknown key"},
           {R"({"forward_proxy": {"allow": ["h"], "hosts": [{"match": ["h"], "default_ttl": "soon"}]}})",
            "forward_proxy.hosts[0].default_ttl", ""},
           {R"({"forward_proxy": {"allow": ["h"], "hosts": [{"match": ["h"], "rules": [{"ttl": "1h"}]}]}})",
            "forward_proxy.hosts[0].rules[0].match", "required"},
       }) {
    Config c;
    const Status st = ParseConfig(json, &c);
    EXPECT_FALSE(st.ok()) << json;
    EXPECT_NE(st.message().find(key), std::string::npos) << json << " -> " << st.message();
    EXPECT_NE(st.message().find(problem), std::string::npos) << json << " -> " << st.message();
  }
}

ForwardProxy ProxyConfig(const std::string& json) {
  Config c;
  const Status st = ParseConfig(json, &c);
  EXPECT_TRUE(st.ok()) << st.ToString();
  return c.forward_proxy;
}

TEST(ProxyRoutesTest, AnAllowedOriginGetsOneRouteWhoseKeyIsTheAbsoluteUrl) {
  const ProxyRoutes proxy(ProxyConfig(R"({"forward_proxy": {"allow": ["Deb.Debian.org",
      "127.0.0.1:8000"], "hosts": [{"match": ["deb.debian.org"], "default_ttl": "2h"}]}})"));
  const ProxyRoutes::Decision a = proxy.RouteFor("http", "DEB.debian.org");
  ASSERT_NE(a.route, nullptr) << a.reason;
  EXPECT_EQ(a.route->upstream.Origin(), "http://deb.debian.org:80");
  EXPECT_EQ(a.route->prefix, "/");
  EXPECT_EQ(a.route->default_ttl, std::chrono::hours(2)) << "the per-host rules apply";
  EXPECT_FALSE(a.route->rewrite_redirects);
  EXPECT_EQ(CacheKey(*a.route, "/debian/dists/stable/InRelease"),
            "http://deb.debian.org:80/debian/dists/stable/InRelease");
  EXPECT_EQ(proxy.RouteFor("http", "deb.debian.org:80").route, a.route)
      << "one origin, however it is spelt, has one route (and so one key space)";
  const ProxyRoutes::Decision local = proxy.RouteFor("http", "127.0.0.1:8000");
  ASSERT_NE(local.route, nullptr);
  EXPECT_NE(local.route, a.route);
  EXPECT_EQ(local.route->default_ttl, std::nullopt) << "no per-host rules: route defaults";
  const ProxyRoutes::Decision tls = proxy.RouteFor("https", "deb.debian.org");
  ASSERT_NE(tls.route, nullptr);
  EXPECT_EQ(tls.route->upstream.Origin(), "https://deb.debian.org:443");
}

TEST(ProxyRoutesTest, OtherHostsAndPortsAre403WithAClearReason) {
  const ProxyRoutes proxy(ProxyConfig(R"({"forward_proxy": {"allow": ["deb.debian.org",
      "127.0.0.1:8000"]}})"));
  for (const auto& [scheme, authority] : std::vector<std::pair<std::string, std::string>>{
           {"http", "example.com"}, {"http", "deb.debian.org:8080"}, {"http", "127.0.0.1"},
           {"http", "127.0.0.1:8001"}, {"https", "127.0.0.1:8001"}}) {
    const ProxyRoutes::Decision d = proxy.RouteFor(scheme, authority);
    EXPECT_EQ(d.route, nullptr) << authority;
    EXPECT_EQ(d.status, 403) << authority;
    EXPECT_NE(d.reason.find("forward_proxy.allow"), std::string::npos) << d.reason;
  }
  EXPECT_FALSE(proxy.tunnels()) << "CONNECT is off unless asked for";
}

TEST(ProxyRoutesTest, TunnelsGoToAllowedHostsOn443OrTheNamedPortOnly) {
  const ProxyRoutes proxy(ProxyConfig(R"({"forward_proxy": {"allow": ["github.com",
      "127.0.0.1:9000"], "connect": true}})"));
  EXPECT_TRUE(proxy.tunnels());
  const ProxyRoutes::Tunnel ok = proxy.TunnelTo("GitHub.com:443");
  EXPECT_EQ(ok.status, 0) << ok.reason;
  EXPECT_EQ(ok.host, "github.com");
  EXPECT_EQ(ok.port, 443);
  EXPECT_EQ(proxy.TunnelTo("127.0.0.1:9000").status, 0);
  EXPECT_EQ(proxy.TunnelTo("github.com:22").status, 403) << "never SSH or SMTP through a tunnel";
  EXPECT_EQ(proxy.TunnelTo("127.0.0.1:25").status, 403);
  EXPECT_EQ(proxy.TunnelTo("example.com:443").status, 403);
  EXPECT_EQ(proxy.TunnelTo("github.com").status, 400) << "CONNECT needs a port";
}

}  // namespace
}  // namespace fanout
