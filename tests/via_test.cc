// server/via: Via entries across hops, loops found by pseudonym, and
// X-Cache naming each hop once there is more than one.

#include "server/via.h"

#include <gtest/gtest.h>

namespace fanout {
namespace {

TEST(ViaTest, AnEntryIsFoundByItsReceivedByWhateverItsProtocolOrComment) {
  const HeaderList headers = {{"Host", "h"},
                              {"Via", "1.0 fred, HTTP/1.1 p.example.net (Apache/1.1)"},
                              {"via", " 1.1 child "}};
  EXPECT_TRUE(ViaHolds(headers, "fred"));
  EXPECT_TRUE(ViaHolds(headers, "p.example.net"));
  EXPECT_TRUE(ViaHolds(headers, "child"));
  EXPECT_FALSE(ViaHolds(headers, "parent"));
  EXPECT_FALSE(ViaHolds(headers, "1.1"));
  EXPECT_FALSE(ViaHolds(headers, "chil"));
  EXPECT_FALSE(ViaHolds({{"Via", "child"}}, "child")) << "no protocol: not an entry";
  EXPECT_FALSE(ViaHolds({}, "child"));
}

TEST(ViaTest, ThisHopsEntryGoesAfterTheOnesBefore) {
  EXPECT_EQ(ViaEntry("child"), "1.1 child");
  EXPECT_EQ(ViaWith({}, "1.1 child"), "1.1 child");
  EXPECT_EQ(ViaWith({{"Via", "1.1 origin-cdn"}, {"X", "y"}, {"Via", "1.1 parent"}}, "1.1 child"),
            "1.1 origin-cdn, 1.1 parent, 1.1 child");
}

TEST(ViaTest, XCacheNamesEachHopOnlyWhenThereAreSeveral) {
  // A client talking to fanoutd directly: the plain value.
  EXPECT_EQ(XCacheValue("HIT", "child", {}, /*request_has_via=*/false), "HIT");
  // A parent answering a child (the request came with Via).
  EXPECT_EQ(XCacheValue("MISS", "parent", {}, true), "MISS from parent");
  // The child relaying the parent's answer, nearest hop first.
  EXPECT_EQ(XCacheValue("HIT", "child", {{"X-Cache", "MISS from parent"}}, false),
            "HIT from child, MISS from parent");
  EXPECT_EQ(XCacheValue("JOIN", "c", {{"X-Cache", "HIT"}, {"x-cache", "MISS"}}, false),
            "JOIN from c, HIT, MISS");
}

TEST(ViaTest, TheDefaultPseudonymIsAToken) {
  const std::string name = DefaultPseudonym();
  EXPECT_FALSE(name.empty());
  EXPECT_LE(name.size(), 64u);
  EXPECT_EQ(name.find_first_of(" \t,()/:;<=>?@[]{}\"\\"), std::string::npos) << name;
}

}  // namespace
}  // namespace fanout
