// Range header parsing and resolution (RFC 9110 §14.1.2, §14.2).

#include "core/byte_range.h"

#include <gtest/gtest.h>

namespace fanout {
namespace {

ByteRange Resolved(std::string_view header, std::uint64_t length) {
  auto specs = ParseRangeHeader(header);
  EXPECT_TRUE(specs && specs->size() == 1) << header;
  auto r = ResolveRange(specs->front(), length);
  EXPECT_TRUE(r) << header;
  return r.value_or(ByteRange{});
}

TEST(ByteRangeTest, TheThreeFormsAgainstALength) {
  EXPECT_EQ(Resolved("bytes=0-99", 1000).first, 0u);
  EXPECT_EQ(Resolved("bytes=0-99", 1000).last, 99u);
  EXPECT_EQ(Resolved("bytes=500-", 1000).first, 500u);
  EXPECT_EQ(Resolved("bytes=500-", 1000).last, 999u);
  EXPECT_EQ(Resolved("bytes=-100", 1000).first, 900u);
  EXPECT_EQ(Resolved("bytes=-5000", 1000).first, 0u) << "a longer suffix is the whole";
  EXPECT_EQ(Resolved("bytes=990-5000", 1000).last, 999u) << "cut at the end";
  EXPECT_EQ(Resolved("bytes=999-999", 1000).length(), 1u);
  EXPECT_EQ(Resolved("Bytes=1-2", 10).length(), 2u);
  EXPECT_EQ(Resolved("bytes= 1 - 2 ", 10).length(), 2u);
}

TEST(ByteRangeTest, UnsatisfiableRanges) {
  auto specs = ParseRangeHeader("bytes=1000-");
  ASSERT_TRUE(specs);
  EXPECT_FALSE(ResolveRange(specs->front(), 1000));
  EXPECT_FALSE(ResolveRange(ParseRangeHeader("bytes=-0")->front(), 1000));
  EXPECT_FALSE(ResolveRange(ParseRangeHeader("bytes=0-")->front(), 0));
}

TEST(ByteRangeTest, InvalidSyntaxIsIgnoredNotAnError) {
  for (const char* bad : {"bytes=5-1", "bytes=a-b", "items=0-1", "bytes=", "bytes=1", "bytes 0-1",
                          "bytes=--1", "bytes=99999999999999999999-"}) {
    EXPECT_FALSE(ParseRangeHeader(bad)) << bad;
  }
}

TEST(ByteRangeTest, SeveralRanges) {
  auto specs = ParseRangeHeader("bytes=0-1, 5-, -3");
  ASSERT_TRUE(specs);
  ASSERT_EQ(specs->size(), 3u);
  EXPECT_TRUE((*specs)[0].closed());
  EXPECT_FALSE((*specs)[1].closed());
  EXPECT_EQ((*specs)[2].suffix, 3u);
}

}  // namespace
}  // namespace fanout
