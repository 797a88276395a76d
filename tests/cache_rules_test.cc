// A route's cache rules, each as one pure function: the cache key
// (server/cache_key), per-path rules (config/path_pattern, server/router),
// targeted cache-control fields and the policy options rules set
// (core/cache_control, core/cache_policy), redirects rewritten and fields
// kept from clients (server/relayed_headers), and their config errors.

#include <gtest/gtest.h>

#include "config/config_loader.h"
#include "core/cache_policy.h"
#include "server/cache_key.h"
#include "server/relayed_headers.h"
#include "server/request_target.h"
#include "server/forward_proxy.h"
#include "server/router.h"

namespace fanout {
namespace {

using std::chrono::hours;
using std::chrono::seconds;

Route R(const char* prefix, const char* upstream) {
  Route r;
  EXPECT_TRUE(MakeRoute(prefix, upstream, "r", &r).ok());
  return r;
}

// The key of a client target through a route, as the server computes it.
std::string KeyOf(const Route& route, const std::string& client_target) {
  std::string normal;
  EXPECT_TRUE(NormalizeRequestTarget(client_target, &normal).ok()) << client_target;
  return CacheKey(route, Router::UpstreamTarget(route, normal));
}

TEST(CacheKeyTest, OneKeyPerResourceAsATable) {
  Route route = R("/", "http://o:8080");
  route.ignore_query_params = {"utm_source", "fbclid"};
  struct Case {
    const char* a;
    const char* b;
    bool same;
  };
  const Case cases[] = {
      {"/a%2bb", "/a%2Bb", true},             // hex digits' case
      {"/%7Euser/x", "/~user/x", true},       // unreserved decoded
      {"/a%2Db", "/a-b", true},
      {"/a/./b/../c", "/a/c", true},          // dot-segments
      {"/a+b", "/a%2Bb", false},              // '+' is not %2B
      {"/q?x=%2b", "/q?x=%2B", true},         // the query too
      {"/q?x=%7e", "/q?x=~", true},
      {"/q?x=a+b", "/q?x=a%2Bb", false},
      {"/q?x=a%26b", "/q?x=a&b", false},      // an escaped '&' is data
      {"/q?x=1&y=2", "/q?y=2&x=1", false},    // order is the origin's business
      {"/q?x=1&utm_source=news", "/q?x=1", true},
      {"/q?utm_source=news&x=1&fbclid=abc", "/q?x=1", true},
      {"/q?utm_source=news", "/q", true},     // nothing left: no '?'
      {"/q?utm%5Fsource=news", "/q", true},   // names compared normalized
      {"/q?utm_sourcex=1", "/q", false},
      {"/q?", "/q", false},                   // an empty query is kept
      {"/Q", "/q", false},                    // paths are case-sensitive
  };
  for (const Case& c : cases) {
    EXPECT_EQ(KeyOf(route, c.a) == KeyOf(route, c.b), c.same) << c.a << " vs " << c.b << ": "
                                                              << KeyOf(route, c.a) << " / "
                                                              << KeyOf(route, c.b);
  }
  EXPECT_EQ(KeyOf(route, "/q?utm_source=a&x=%2b"), "http://o:8080/q?x=%2B");
  EXPECT_EQ(KeyQuery("a=%zz&b=%", {}), "a=%zz&b=%") << "a '%' that starts no escape stays";
  const Route deb = R("/deb", "http://mirror/debian");
  EXPECT_EQ(KeyOf(deb, "/deb/pool/a%2b.deb"), "http://mirror:80/debian/pool/a%2B.deb");
}

TEST(PathPatternTest, GlobsAndRegularExpressions) {
  struct Case {
    const char* pattern;
    const char* path;
    bool matches;
  };
  const Case cases[] = {
      {"/pool/**.deb", "/pool/main/h/hello/hello_1.0_all.deb", true},
      {"/pool/**.deb", "/pool/main/h/hello/hello_1.0_all.deb.asc", false},
      {"/pool/*.deb", "/pool/main/hello.deb", false},  // '*' stays in a segment
      {"/pool/*.deb", "/pool/hello.deb", true},
      {"/dists/*/InRelease", "/dists/stable/InRelease", true},
      {"/dists/*/InRelease", "/dists/stable/main/InRelease", false},
      {"**/by-hash/**", "/dists/stable/main/binary-amd64/by-hash/SHA256/ab12", true},
      {"/*.tgz", "/left-pad.tgz", true},
      {"/**/-/*.tgz", "/left-pad/-/left-pad-1.3.0.tgz", true},
      {"/**/-/*.tgz", "/left-pad", false},
      {"/a?c", "/abc", true},
      {"/a?c", "/a/c", false},
      {"/exact", "/exact", true},
      {"/exact", "/exact/more", false},
      {"~\\.deb$", "/pool/x.deb", true},
      {"~^/pool/", "/dists/pool/", false},
      {"~/by-hash/", "/dists/x/by-hash/SHA256/1", true},
  };
  for (const Case& c : cases) {
    PathPattern p;
    ASSERT_TRUE(PathPattern::Compile(c.pattern, &p).ok()) << c.pattern;
    EXPECT_EQ(p.Matches(c.path), c.matches) << c.pattern << " on " << c.path;
  }
  PathPattern p;
  EXPECT_FALSE(PathPattern::Compile("", &p).ok());
  EXPECT_FALSE(PathPattern::Compile("~(", &p).ok());
  EXPECT_FALSE(PathPattern::Compile("pool/*.deb", &p).ok()) << "a glob starts with '/' or '*'";
}

TEST(PathRuleTest, TheFirstMatchingRuleOfTheRouteAppliesToThePathAfterItsPrefix) {
  Config c;
  ASSERT_TRUE(ParseConfig(R"({"routes": [{"prefix": "/deb", "upstream": "http://m/debian",
      "default_ttl": "1m",
      "rules": [{"match": "/pool/**", "immutable": true},
                {"match": "/dists/*/InRelease", "ttl": "5m"},
                {"match": "/dists/**", "ttl": "1h", "ignore_client_no_cache": true},
                {"match": "/private/**", "store": false},
                {"match": "/**", "store": true}]}]})",
                          &c)
                  .ok());
  const Route& route = c.routes[0];
  auto policy = [&](const char* client_target) {
    return CachePolicyOf(route, Router::UpstreamTarget(route, client_target));
  };
  EXPECT_TRUE(policy("/deb/pool/main/h/hello.deb").immutable);
  EXPECT_EQ(policy("/deb/dists/stable/InRelease").default_ttl, seconds(300));
  EXPECT_FALSE(policy("/deb/dists/stable/InRelease").ignore_client_no_cache) << "first match only";
  EXPECT_EQ(policy("/deb/dists/stable/main/Packages?x=1").default_ttl, hours(1));
  EXPECT_TRUE(policy("/deb/dists/stable/main/Packages").ignore_client_no_cache);
  EXPECT_EQ(policy("/deb/private/x").store, false);
  EXPECT_EQ(policy("/deb/README").store, true);
  EXPECT_EQ(policy("/deb/README").default_ttl, seconds(60)) << "the route's, no ttl in the rule";
  const Route bare = R("/", "http://o");
  const auto plain = CachePolicyOf(bare, "/pool/x.deb");
  EXPECT_FALSE(plain.immutable);
  EXPECT_EQ(std::vector<std::string>(plain.targeted_fields.begin(), plain.targeted_fields.end()),
            (std::vector<std::string>{"Fanout-Cache-Control", "CDN-Cache-Control"}));
}

ResponseHead Response(HeaderList headers, int status = 200) {
  ResponseHead h;
  h.status = status;
  h.received_at = h.requested_at = std::chrono::system_clock::now();
  h.headers = std::move(headers);
  h.headers.emplace_back("Date", FormatHttpDate(h.received_at));
  return h;
}

RequestFacts Request(HeaderList headers = {}) { return RequestFacts::From(headers); }

CachePolicyOptions Targeted() {
  CachePolicyOptions o;
  static const std::vector<std::string> kFields = {"Fanout-Cache-Control", "CDN-Cache-Control"};
  o.targeted_fields = kFields;
  return o;
}

TEST(TargetedCacheControlTest, ParsesAStructuredDictionaryStrictly) {
  auto parse = [](std::vector<std::string> lines) { return CacheControl::ParseTargeted(lines); };
  auto cc = parse({"max-age=60, no-store=?0, must-revalidate"});
  ASSERT_TRUE(cc);
  EXPECT_EQ(cc->max_age, 60);
  EXPECT_FALSE(cc->no_store) << "?0 is false";
  EXPECT_TRUE(cc->must_revalidate);
  cc = parse({"private", "s-maxage=10;x=y"});
  ASSERT_TRUE(cc);
  EXPECT_TRUE(cc->private_);
  EXPECT_EQ(cc->s_maxage, 10) << "parameters are ignored";
  cc = parse({R"(no-cache="set-cookie", max-age=1.5, stale-if-error=-1, x=(a b), y=:AQ==:)"});
  ASSERT_TRUE(cc) << "valid syntax";
  EXPECT_TRUE(cc->no_cache);
  EXPECT_FALSE(cc->max_age) << "a decimal is no delta-seconds";
  EXPECT_FALSE(cc->stale_if_error) << "nor a negative number";
  EXPECT_EQ(parse({"max-age=99999999999"})->max_age, std::int64_t{1} << 31);
  for (const char* bad : {"", "  ", "Max-Age=60", "max-age=60,", "max-age==60", "max-age=\"60",
                          "max-age=60 no-store", "max-age=1234567890123456", ",max-age=1",
                          "max-age=6O", "a=?2", "x=(a", "9=1"}) {
    EXPECT_FALSE(parse({bad})) << "'" << bad << "' is not a dictionary";
  }
}

TEST(TargetedCacheControlTest, TheFirstValidTargetedFieldReplacesCacheControlAndExpires) {
  const CachePolicyOptions o = Targeted();
  const CachePolicyOptions plain;
  // CDN-Cache-Control lengthens what Cache-Control says to browsers.
  const auto cdn = Response({{"Cache-Control", "max-age=10"}, {"CDN-Cache-Control", "max-age=600"}});
  EXPECT_EQ(FreshnessLifetime(cdn, o), seconds(600));
  EXPECT_EQ(FreshnessLifetime(cdn, plain), seconds(10)) << "with no targeted fields configured";
  // Fanout-Cache-Control comes first.
  const auto both = Response({{"CDN-Cache-Control", "max-age=600"},
                              {"Fanout-Cache-Control", "max-age=5"}});
  EXPECT_EQ(FreshnessLifetime(both, o), seconds(5));
  // An invalid one is ignored: the next one counts, then Cache-Control.
  const auto invalid = Response({{"Fanout-Cache-Control", "max-age=5,"},
                                 {"CDN-Cache-Control", "max-age=600"}});
  EXPECT_EQ(FreshnessLifetime(invalid, o), seconds(600));
  const auto all_invalid = Response({{"Cache-Control", "max-age=10"}, {"CDN-Cache-Control", "Max-Age=1"}});
  EXPECT_EQ(FreshnessLifetime(all_invalid, o), seconds(10));
  // Expires does not count beside a targeted field.
  const auto expires = Response({{"CDN-Cache-Control", "public"},
                                 {"Expires", FormatHttpDate(std::chrono::system_clock::now() + hours(1))}});
  EXPECT_EQ(FreshnessLifetime(expires, o), seconds(0));
  // Storing: targeted no-store and private forbid it whatever Cache-Control says...
  std::string why;
  EXPECT_FALSE(MayStore(Request(), Response({{"Cache-Control", "max-age=60"},
                                            {"CDN-Cache-Control", "no-store"}}), o, &why));
  EXPECT_FALSE(MayShare(Response({{"Cache-Control", "public, max-age=60"},
                                  {"CDN-Cache-Control", "private"}}), false, o));
  // ...and a targeted max-age allows it where Cache-Control says no-store.
  EXPECT_TRUE(MayStore(Request(), Response({{"Cache-Control", "no-store"},
                                           {"CDN-Cache-Control", "max-age=60"}}), o, &why));
  EXPECT_EQ(DecideReuse(Request(), Response({{"Cache-Control", "no-cache"},
                                             {"CDN-Cache-Control", "max-age=60"}}), o,
                        std::chrono::system_clock::now()),
            Reuse::kFresh);
}

TEST(PathRuleTest, ImmutableObjectsAreStoredAndNeverRevalidated) {
  CachePolicyOptions o;
  o.immutable = true;
  const auto now = std::chrono::system_clock::now();
  const auto bare = Response({});  // no freshness, no validator
  std::string why;
  EXPECT_TRUE(MayStore(Request(), bare, o, &why));
  EXPECT_FALSE(MayStore(Request(), bare, CachePolicyOptions{}, &why));
  for (const HeaderList& request : std::vector<HeaderList>{
           {}, {{"Cache-Control", "max-age=0"}}, {{"Cache-Control", "no-cache"}},
           {{"Pragma", "no-cache"}}}) {
    EXPECT_EQ(DecideReuse(Request(request), bare, o, now + hours(24 * 365)), Reuse::kFresh);
  }
  EXPECT_FALSE(MayStore(Request(), Response({{"Cache-Control", "no-store"}}), o, &why))
      << "the origin's no-store still counts";
  // Only the object itself: a 404 from a mirror still syncing is not kept
  // for ten years.
  EXPECT_FALSE(MayStore(Request(), Response({}, 404), o, &why));
  const auto missing = Response({{"Cache-Control", "max-age=60"}}, 404);
  EXPECT_EQ(FreshnessLifetime(missing, o), seconds(60));
  EXPECT_EQ(DecideReuse(Request(), missing, o, now + hours(1)), Reuse::kRevalidate);
  EXPECT_FALSE(MayStore(Request(), Response({{"Cache-Control", "private"}}), o, &why));
}

TEST(PathRuleTest, IgnoringClientNoCacheKeepsFreshEntriesButNotStaleOnes) {
  CachePolicyOptions o;
  o.ignore_client_no_cache = true;
  const auto now = std::chrono::system_clock::now();
  const auto fresh = Response({{"Cache-Control", "max-age=600"}, {"ETag", "\"v\""}});
  for (const HeaderList& request : std::vector<HeaderList>{
           {{"Cache-Control", "max-age=0"}}, {{"Cache-Control", "no-cache"}},
           {{"Pragma", "no-cache"}}}) {
    EXPECT_EQ(DecideReuse(Request(request), fresh, o, now), Reuse::kFresh);
    EXPECT_EQ(DecideReuse(Request(request), fresh, CachePolicyOptions{}, now + seconds(5)),
              Reuse::kRevalidate);
  }
  EXPECT_EQ(DecideReuse(Request(), fresh, o, now + seconds(700)), Reuse::kRevalidate)
      << "a stale entry is still revalidated";
  EXPECT_EQ(DecideReuse(Request(), Response({{"Cache-Control", "no-cache"}, {"ETag", "\"v\""}}), o,
                        now),
            Reuse::kRevalidate)
      << "the response's own no-cache still counts";
}

TEST(PathRuleTest, StoreFalseNeverStoresAndStoreTrueStoresWithoutFreshness) {
  CachePolicyOptions never, always;
  never.store = false;
  always.store = true;
  always.default_ttl = seconds(60);
  std::string why;
  EXPECT_FALSE(MayStore(Request(), Response({{"Cache-Control", "max-age=600"}}), never, &why));
  EXPECT_EQ(why, "a rule of its route says store: false");
  EXPECT_TRUE(MayStore(Request(), Response({}), always, &why));
  EXPECT_FALSE(MayStore(Request(), Response({}, 500), always, &why)) << "only the object itself";
  EXPECT_EQ(FreshnessLifetime(Response({}), always), seconds(60));
}

TEST(RedirectTest, LocationsIntoTheUpstreamBecomePathsThroughFanoutd) {
  const Route deb = R("/deb", "http://mirror.example:8080/debian");
  struct Case {
    const char* location;
    const char* client;  // "" for unchanged
  };
  const Case cases[] = {
      {"http://mirror.example:8080/debian/pool/a.deb", "/deb/pool/a.deb"},
      {"http://MIRROR.example:8080/debian/dists/?x=1", "/deb/dists/?x=1"},
      {"http://mirror.example:8080/debian", "/deb/"},
      {"http://mirror.example:8080/debian?x", "/deb/?x"},
      {"/debian/pool/b.deb", "/deb/pool/b.deb"},
      {"http://mirror.example/debian/pool/a.deb", ""},        // another port
      {"https://mirror.example:8080/debian/pool/a.deb", ""},  // another scheme
      {"http://elsewhere:8080/debian/pool/a.deb", ""},
      {"http://mirror.example:8080/debian-security/x", ""},   // outside the base path
      {"/other/x", ""},
      {"pool/relative.deb", ""},
      {"//mirror.example:8080/debian/x", ""},
  };
  for (const Case& c : cases) {
    const auto client = Router::ClientTarget(deb, c.location);
    EXPECT_EQ(client.value_or(""), c.client) << c.location;
  }
  const Route root = R("/", "http://o:9000");
  EXPECT_EQ(Router::ClientTarget(root, "http://o:9000/x/y?z").value_or(""), "/x/y?z");

  HeaderList headers = {{"Location", "http://mirror.example:8080/debian/pool/a.deb"},
                        {"Content-Location", "/debian/x"},
                        {"CDN-Cache-Control", "max-age=60"},
                        {"fanout-cache-control", "max-age=5"},
                        {"Cache-Control", "max-age=1"}};
  ASSERT_TRUE(NeedsRelayChanges(deb, headers));
  RelayedForClients(deb, &headers);
  EXPECT_EQ(headers, (HeaderList{{"Location", "/deb/pool/a.deb"},
                                 {"Content-Location", "/deb/x"},
                                 {"CDN-Cache-Control", "max-age=60"},
                                 {"Cache-Control", "max-age=1"}}))
      << "Fanout-Cache-Control is fanoutd's; CDN-Cache-Control goes on to CDNs downstream";
  EXPECT_FALSE(NeedsRelayChanges(deb, {{"CDN-Cache-Control", "max-age=60"}}));
  Route mine = deb;
  mine.targeted_cache_control = {"Mycache-Control"};
  EXPECT_TRUE(NeedsRelayChanges(mine, {{"mycache-control", "max-age=60"}}));
  Route off = deb;
  off.rewrite_redirects = false;
  off.targeted_cache_control.clear();
  HeaderList kept = {{"Location", "http://mirror.example:8080/debian/pool/a.deb"},
                     {"Fanout-Cache-Control", "max-age=60"}};
  EXPECT_FALSE(NeedsRelayChanges(off, kept));
  EXPECT_FALSE(NeedsRelayChanges(deb, {{"Cache-Control", "max-age=1"}, {"Location", "/other"}}));
}

TEST(CacheRulesConfigTest, MistakesNameTheKey) {
  struct Bad {
    const char* route_extra;
    const char* message_start;
  };
  const Bad cases[] = {
      {R"("rules": {})", "routes[0].rules: expected an array of rules"},
      {R"("rules": [{"ttl": "1m"}])", "routes[0].rules[0].match: required"},
      {R"("rules": [{"match": "~("}])", "routes[0].rules[0].match: not a regular expression"},
      {R"("rules": [{"match": "pool/*"}])", "routes[0].rules[0].match: a glob must start"},
      {R"("rules": [{"match": "/x", "immutable": "yes"}])",
       "routes[0].rules[0].immutable: expected true or false"},
      {R"("rules": [{"match": "/x", "ttl": "forever"}])", "routes[0].rules[0].ttl: "},
      {R"("rules": [{"match": "/x", "store": false, "ttl": "1m"}])", "routes[0].rules[0]: store: false"},
      {R"("rules": [{"match": "/x", "sotre": true}])", "routes[0].rules[0].sotre: unknown key"},
      {R"("targeted_cache_control": "CDN-Cache-Control")",
       "routes[0].targeted_cache_control: expected an array of field names"},
      {R"("targeted_cache_control": ["CDN Cache"])",
       "routes[0].targeted_cache_control: 'CDN Cache' is not a header field name"},
      {R"("targeted_cache_control": ["cache-control"])",
       "routes[0].targeted_cache_control: Cache-Control is not a targeted field"},
      {R"("ignore_query_params": [""])", "routes[0].ignore_query_params[0]: must not be empty"},
      {R"("rewrite_redirects": 1)", "routes[0].rewrite_redirects: expected true or false"},
  };
  for (const Bad& b : cases) {
    Config c;
    const Status st = ParseConfig(std::string(R"({"routes": [{"prefix": "/", "upstream": "http://h", )") +
                                      b.route_extra + "}]}",
                                  &c);
    EXPECT_EQ(st.message().rfind(b.message_start, 0), 0u) << b.route_extra << " -> " << st.message();
  }
  Config c;
  ASSERT_TRUE(ParseConfig(R"({"routes": [{"prefix": "/", "upstream": "http://h",
      "targeted_cache_control": [], "ignore_query_params": ["utm_source"],
      "rewrite_redirects": false}]})", &c).ok());
  EXPECT_TRUE(c.routes[0].targeted_cache_control.empty());
  EXPECT_EQ(c.routes[0].ignore_query_params, std::vector<std::string>{"utm_source"});
  EXPECT_FALSE(c.routes[0].rewrite_redirects);
}

// The shipped example configs load, and their rules say what the docs say.
TEST(CacheRulesConfigTest, TheExampleConfigsLoad) {
  Config debian;
  const std::string dir = std::string(FANOUT_SOURCE_DIR) + "/config/examples/";
  ASSERT_TRUE(LoadConfigFile(dir + "debian-mirror.json", &debian).ok());
  const Route& mirror = debian.routes.at(0);
  auto policy = [](const Route& route, const char* client_target) {
    return CachePolicyOf(route, Router::UpstreamTarget(route, client_target));
  };
  EXPECT_TRUE(policy(mirror, "/debian/pool/main/h/hello/hello_2.10-3_amd64.deb").immutable);
  EXPECT_TRUE(policy(mirror, "/debian/dists/bookworm/main/binary-amd64/by-hash/SHA256/0a1b").immutable);
  EXPECT_FALSE(policy(mirror, "/debian/dists/bookworm/InRelease").immutable);
  EXPECT_EQ(policy(mirror, "/debian/dists/bookworm/InRelease").default_ttl, seconds(300));
  Config npm;
  ASSERT_TRUE(LoadConfigFile(dir + "npm-registry.json", &npm).ok());
  const Route& registry = npm.routes.at(0);
  EXPECT_TRUE(policy(registry, "/npm/left-pad/-/left-pad-1.3.0.tgz").immutable);
  EXPECT_TRUE(policy(registry, "/npm/@types/node/-/node-20.1.0.tgz").immutable);
  EXPECT_FALSE(policy(registry, "/npm/left-pad").immutable);
  EXPECT_EQ(policy(registry, "/npm/@types%2fnode").default_ttl, seconds(300));

  // The forward proxy's per-host rules see whole paths.
  Config proxy;
  ASSERT_TRUE(LoadConfigFile(dir + "forward-proxy.json", &proxy).ok());
  EXPECT_TRUE(ValidateConfig(proxy).ok());
  const ProxyRoutes routes(proxy.forward_proxy);
  const Route* deb = routes.RouteFor("http", "deb.debian.org").route;
  const Route* security = routes.RouteFor("http", "security.debian.org").route;
  const Route* npmjs = routes.RouteFor("https", "registry.npmjs.org").route;
  ASSERT_TRUE(deb && security && npmjs);
  EXPECT_TRUE(CachePolicyOf(*deb, "/debian/pool/main/h/hello/hello_2.10-3_amd64.deb").immutable);
  EXPECT_TRUE(CachePolicyOf(*security, "/debian-security/dists/bookworm-security/main/by-hash/SHA256/0a").immutable);
  EXPECT_EQ(CachePolicyOf(*deb, "/debian/dists/bookworm/InRelease").default_ttl, seconds(300));
  EXPECT_TRUE(CachePolicyOf(*npmjs, "/left-pad/-/left-pad-1.3.0.tgz").immutable);
  EXPECT_EQ(CachePolicyOf(*npmjs, "/left-pad").default_ttl, seconds(300));
  EXPECT_EQ(routes.RouteFor("http", "example.com").status, 403);
}

}  // namespace
}  // namespace fanout
