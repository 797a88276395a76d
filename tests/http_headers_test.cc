#include "server/http_headers.h"

#include <gtest/gtest.h>

namespace fanout {
namespace {

ResponseHead HeadWith(std::initializer_list<std::pair<const char*, const char*>> fields) {
  UpstreamResponseHead res;
  res.status = 200;
  for (const auto& [name, value] : fields) res.headers.emplace_back(name, value);
  return MakeResponseHead(res);
}

TEST(HttpHeadersTest, AgeIsDeltaSecondsCappedAt2To31AndAnythingElseIsIgnored) {
  EXPECT_EQ(HeadWith({{"Age", "120"}}).upstream_age, 120u);
  EXPECT_EQ(HeadWith({{"Age", "99999999999999999999999"}}).upstream_age, 1u << 31)
      << "too large for anything: 2^31 (RFC 9111 §1.2.2)";
  EXPECT_EQ(HeadWith({{"Age", "9223372036854775808"}}).upstream_age, 1u << 31);
  for (const char* bad : {"-1", "7200.0", "12s", "5 5", "", "0x10", "+5"}) {
    EXPECT_EQ(HeadWith({{"Age", bad}}).upstream_age, 0u) << "'" << bad << "' is ignored";
  }
  EXPECT_EQ(HeadWith({{"Age", "30"}, {"Age", "60"}}).upstream_age, 30u) << "the first counts";
  EXPECT_EQ(HeadWith({{"Age", "x"}, {"Age", "60"}}).upstream_age, 0u)
      << "the first line counts even when it is not a number: the field is ignored";
  EXPECT_EQ(HeadWith({{"Age", "30, 60"}}).upstream_age, 30u) << "a list is the lines combined";
  EXPECT_EQ(HeadWith({{"Age", "7200.0, 5"}}).upstream_age, 0u);
}

TEST(HttpHeadersTest, AContentLengthThatIsNotDigitsIsNotALength) {
  EXPECT_EQ(HeadWith({{"Content-Length", "500"}}).content_length, 500u);
  EXPECT_FALSE(HeadWith({{"Content-Length", "-5"}}).content_length);
  EXPECT_FALSE(HeadWith({{"Content-Length", "+5"}}).content_length);
  EXPECT_FALSE(HeadWith({{"Content-Length", "5, 5"}}).content_length);
}

}  // namespace
}  // namespace fanout
