#include "server/request_target.h"

#include <gtest/gtest.h>

#include "server/router.h"

namespace fanout {
namespace {

std::string Normal(std::string_view target) {
  std::string out;
  const Status st = NormalizeRequestTarget(target, &out);
  return st.ok() ? out : "ERROR: " + st.message();
}

bool Refused(std::string_view target) { return Normal(target).rfind("ERROR", 0) == 0; }

TEST(RequestTargetTest, PlainTargetsAreUnchanged) {
  EXPECT_EQ(Normal("/"), "/");
  EXPECT_EQ(Normal("/a/b.deb"), "/a/b.deb");
  EXPECT_EQ(Normal("/a/b/?x=1&y=/../z"), "/a/b/?x=1&y=/../z") << "the query is kept as sent";
  EXPECT_EQ(Normal("/a//b"), "/a//b");
  EXPECT_EQ(Normal("/pkg/g%2Fp"), "/pkg/g%2Fp") << "an encoded slash stays encoded";
}

TEST(RequestTargetTest, DotSegmentsAreRemoved) {
  EXPECT_EQ(Normal("/pub/../private/x"), "/private/x");
  EXPECT_EQ(Normal("/a/./b"), "/a/b");
  EXPECT_EQ(Normal("/a/b/.."), "/a/");
  EXPECT_EQ(Normal("/a/b/."), "/a/b/");
  EXPECT_EQ(Normal("/.."), "/");
  EXPECT_EQ(Normal("/../../etc/passwd"), "/etc/passwd") << "never above the root";
  EXPECT_EQ(Normal("/a/..?q=1"), "/?q=1");
}

TEST(RequestTargetTest, EncodedDotsAreDecodedAndRemoved) {
  EXPECT_EQ(Normal("/pub/%2e%2e/private/x"), "/private/x");
  EXPECT_EQ(Normal("/pub/.%2E/private/x"), "/private/x");
  EXPECT_EQ(Normal("/pub/%2E./private/x"), "/private/x");
  EXPECT_EQ(Normal("/pub/%2e/x"), "/pub/x");
}

TEST(RequestTargetTest, UnreservedEscapesAreDecodedAndOthersUpperCased) {
  EXPECT_EQ(Normal("/%7Euser/%41"), "/~user/A");
  EXPECT_EQ(Normal("/a%2bb"), "/a%2Bb");
  EXPECT_EQ(Normal("/a%2Bb"), "/a%2Bb") << "one spelling per resource";
}

TEST(RequestTargetTest, DotSegmentsHiddenBehindEncodedSeparatorsAreRefused) {
  EXPECT_TRUE(Refused("/pub/..%2fprivate/x"));
  EXPECT_TRUE(Refused("/pub/..%2Fprivate/x"));
  EXPECT_TRUE(Refused("/pub/%2e%2e%2fprivate/x"));
  EXPECT_TRUE(Refused("/pub/..%5cprivate/x"));
  EXPECT_TRUE(Refused("/pub/..\\private/x"));
  EXPECT_TRUE(Refused("/pub/a%2F..%2Fb"));
  EXPECT_TRUE(Refused("/pub/..;/secret")) << "Tomcat drops ';params', then resolves";
  EXPECT_TRUE(Refused("/pub/..;jsessionid=1/secret"));
  EXPECT_TRUE(Refused("/pub/.;/x"));
  EXPECT_TRUE(Refused("/pub/a%2F..;x/b"));
  EXPECT_FALSE(Refused("/pub/a;b=c/d")) << "parameters on a plain segment are fine";
  EXPECT_FALSE(Refused("/pub/a%2Fb")) << "an encoded slash alone is fine";
  EXPECT_FALSE(Refused("/pub/...%2Fb")) << "'...' is no dot-segment";
}

TEST(RequestTargetTest, BadBytesAndEscapesAreRefused) {
  EXPECT_TRUE(Refused(""));
  EXPECT_TRUE(Refused("a/b"));
  EXPECT_TRUE(Refused("http://o/a")) << "absolute-form is not served";
  EXPECT_TRUE(Refused("/a\xff"));
  EXPECT_TRUE(Refused("/a\x80z"));
  EXPECT_TRUE(Refused(std::string("/a\0b", 4)));
  EXPECT_TRUE(Refused("/a\tb"));
  EXPECT_TRUE(Refused("/a b"));
  EXPECT_TRUE(Refused("/a\x7f"));
  EXPECT_TRUE(Refused("/a#frag"));
  EXPECT_TRUE(Refused("/a%"));
  EXPECT_TRUE(Refused("/a%4"));
  EXPECT_TRUE(Refused("/a%zz"));
  EXPECT_EQ(Normal("/search?q=50%off&d=10%"), "/search?q=50%off&d=10%")
      << "a bare '%' in the query is forwarded as browsers send it";
}

TEST(RequestTargetTest, NoNormalTargetLeavesItsRoutesBasePath) {
  Route pub;
  pub.prefix = "/pub";
  pub.upstream.path = "/public";
  Route root;
  root.prefix = "/";
  root.upstream.path = "/other";
  Router router({pub, root});
  for (const char* attack : {"/pub/../private/x", "/pub/%2e%2e/private/x", "/pub/.%2e/private/x",
                             "/pub/%2E%2E/%2E%2E/x", "/pub/./../x"}) {
    const std::string target = Normal(attack);
    ASSERT_FALSE(Refused(attack)) << attack;
    const Route* route = router.Match(target);
    ASSERT_NE(route, nullptr);
    const std::string upstream = Router::UpstreamTarget(*route, target);
    EXPECT_EQ(upstream.find(".."), std::string::npos) << attack << " -> " << upstream;
    EXPECT_EQ(route->prefix, "/") << attack << " left /pub: it is the root route's";
  }
}

}  // namespace
}  // namespace fanout
