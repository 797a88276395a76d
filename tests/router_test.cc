#include "server/router.h"

#include <gtest/gtest.h>

#include "config/config_loader.h"

namespace fanout {
namespace {

Route R(const char* prefix, const char* upstream) {
  Route r;
  EXPECT_TRUE(MakeRoute(prefix, upstream, "r", &r).ok());
  return r;
}

TEST(RouterTest, LongestWholeSegmentPrefixWins) {
  Router router({R("/", "http://root"), R("/deb", "http://deb/debian"),
                 R("/deb/security", "http://sec")});
  EXPECT_EQ(router.Match("/deb/pool/a.deb")->upstream.host, "deb");
  EXPECT_EQ(router.Match("/deb/security/x")->upstream.host, "sec");
  EXPECT_EQ(router.Match("/debian/x")->upstream.host, "root");
  EXPECT_EQ(router.Match("/deb?x=1")->upstream.host, "deb");
}

TEST(RouterTest, NoRouteWithoutARootPrefix) {
  Router router({R("/a", "http://a")});
  EXPECT_EQ(router.Match("/b"), nullptr);
  EXPECT_EQ(router.Match("/ab"), nullptr);
}

TEST(RouterTest, UpstreamTargetReplacesPrefixAndKeepsQuery) {
  const Route deb = R("/deb/", "http://h/debian/");
  EXPECT_EQ(Router::UpstreamTarget(deb, "/deb/pool/a?x=1"), "/debian/pool/a?x=1");
  EXPECT_EQ(Router::UpstreamTarget(deb, "/deb"), "/debian/");
  const Route root = R("/", "http://h");
  EXPECT_EQ(Router::UpstreamTarget(root, "/a/b?c"), "/a/b?c");
}

}  // namespace
}  // namespace fanout
