// RFC 9111 details that only the daemon as a whole shows, against the real
// binary and a scripted origin whose header bytes the test chooses: the
// formats of Expires, the values of Age, and how Vary compares selecting
// header values. (core/cache_policy's unit tests cover each rule's exact
// inputs; these check that the daemon applies them to real responses.)

#include <ctime>
#include <string>

#include <gtest/gtest.h>

#include "tests/fanoutd_fixture.h"
#include "tests/scripted_origin.h"

namespace fanout {
namespace {

using ::fanout::testing::FanoutdTest;
using ::fanout::testing::RawConnection;
using ::fanout::testing::ScriptedOrigin;
using ::fanout::testing::ScriptedReply;
using ::fanout::testing::ScriptedRequest;
using ::fanout::testing::WaitFor;

class FreshnessTest : public FanoutdTest {
 protected:
  // One GET of target with extra request header lines; the X-Cache value of
  // the answer ("" if none came).
  std::string XCache(const std::string& target, const std::string& extra = "") {
    RawConnection c(fanoutd_.port());
    EXPECT_TRUE(c.connected());
    EXPECT_TRUE(c.Send("GET " + target + " HTTP/1.1\r\nHost: h\r\n" + extra +
                       "Connection: close\r\n\r\n"));
    const std::string r = c.ReadUntil([](const std::string&) { return false; });
    const auto at = r.find("X-Cache: ");
    return at == std::string::npos ? "" : r.substr(at + 9, r.find("\r\n", at) - at - 9);
  }

  // Whether requests for target come to be answered with this X-Cache
  // value: an entry is written to disk behind its response, and until it
  // is, a request it is not fresh for goes upstream alone (MISS).
  bool Becomes(const std::string& x_cache, const std::string& target,
               const std::string& extra = "") {
    return WaitFor([&] { return XCache(target, extra) == x_cache; });
  }
  bool BecomesHit(const std::string& target, const std::string& extra = "") {
    return Becomes("HIT", target, extra);
  }
};

// The response the origin sends for a path: its extra header lines are the
// part of the path after "/h/" up to '?', where "~" stands for ": " and "|"
// ends a line ("/h/Expires~X|" sends "Expires: X").
ScriptedReply Answer(const ScriptedRequest& r) {
  std::string fields;
  const std::size_t start = r.head.find("/h/") + 3;
  const std::string spec = r.head.substr(start, r.head.find_first_of("? ", start) - start);
  for (std::size_t i = 0; i < spec.size(); ++i) {
    if (spec[i] == '~') fields += ": ";
    else if (spec[i] == '|') fields += "\r\n";
    else if (spec.compare(i, 3, "%20") == 0) fields += ' ', i += 2;
    else if (spec.compare(i, 3, "%2C") == 0) fields += ',', i += 2;
    else fields += spec[i];
  }
  return ScriptedReply{"HTTP/1.1 200 OK\r\nETag: \"v\"\r\nContent-Length: 2\r\n" + fields +
                       "\r\nok"};
}

std::string Encoded(const std::string& field_lines) {
  std::string out;
  for (char c : field_lines) {
    if (c == ' ') out += "%20";
    else if (c == ',') out += "%2C";
    else out += c;
  }
  return out;
}

TEST_F(FreshnessTest, AnExpiresInAnyButTheThreeFormatsIsAlreadyExpired) {
  ScriptedOrigin origin(Answer);
  StartFanoutd({"--upstream", "http://127.0.0.1:" + std::to_string(origin.port())});
  // One hour after the origin's Date-less answer arrives is far enough in
  // the future for every valid format to be fresh.
  const std::time_t later = std::time(nullptr) + 3600;
  std::tm tm{};
  ::gmtime_r(&later, &tm);
  char imf[64], dashes[64], lower[64];
  std::strftime(imf, sizeof imf, "%a, %d %b %Y %H:%M:%S GMT", &tm);
  std::strftime(dashes, sizeof dashes, "%a, %d-%b-%Y %H:%M:%S GMT", &tm);
  std::strftime(lower, sizeof lower, "%a, %d %b %Y %H:%M:%S gmt", &tm);
  const std::string valid = "/h/Expires~" + Encoded(imf) + "|";
  const std::string case_folded = "/h/Expires~" + Encoded(lower) + "|";
  const std::string invalid = "/h/Expires~" + Encoded(dashes) + "|";
  EXPECT_EQ(XCache(valid), "MISS");
  EXPECT_TRUE(BecomesHit(valid));
  EXPECT_EQ(XCache(case_folded), "MISS");
  EXPECT_TRUE(BecomesHit(case_folded)) << "\"gmt\": names are matched without case";
  EXPECT_EQ(XCache(invalid), "MISS");
  // Stored (it has an ETag) but already expired: every use revalidates.
  EXPECT_TRUE(Becomes("REVALIDATE", invalid));
}

TEST_F(FreshnessTest, OnlyAPlainFirstAgeValueCounts) {
  ScriptedOrigin origin(Answer);
  StartFanoutd({"--upstream", "http://127.0.0.1:" + std::to_string(origin.port())});
  // max-age=3600 with an Age of 7200: stale on arrival.
  const std::string old = "/h/Cache-Control~max-age=3600|Age~7200|";
  EXPECT_EQ(XCache(old), "MISS");
  EXPECT_TRUE(Becomes("REVALIDATE", old));
  // An Age that is not a plain integer is ignored: fresh for the hour.
  for (const std::string age : {"7200.0", "7200s", "-7200"}) {
    const std::string target = "/h/Cache-Control~max-age=3600|Age~" + age + "|";
    EXPECT_EQ(XCache(target), "MISS") << age;
    EXPECT_TRUE(BecomesHit(target)) << age;
  }
  // Of several Age lines, the first counts.
  const std::string first_young = "/h/Cache-Control~max-age=3600|Age~10|Age~7200|";
  EXPECT_EQ(XCache(first_young), "MISS");
  EXPECT_TRUE(BecomesHit(first_young));
  const std::string first_old = "/h/Cache-Control~max-age=3600|Age~7200|Age~10|";
  EXPECT_EQ(XCache(first_old), "MISS");
  EXPECT_TRUE(Becomes("REVALIDATE", first_old));
}

TEST_F(FreshnessTest, VaryComparesAcceptLanguageWithoutCaseOrOrderAndOtherFieldsExactly) {
  ScriptedOrigin origin(Answer);
  StartFanoutd({"--upstream", "http://127.0.0.1:" + std::to_string(origin.port())});
  const std::string lang = "/h/Cache-Control~max-age=3600|Vary~Accept-Language|";
  EXPECT_EQ(XCache(lang, "Accept-Language: en-GB, de\r\n"), "MISS");
  EXPECT_TRUE(BecomesHit(lang, "Accept-Language: en-GB, de\r\n"));
  EXPECT_EQ(XCache(lang, "Accept-Language: DE,  en-gb\r\n"), "HIT");
  EXPECT_EQ(XCache(lang, "Accept-Language: de\r\nAccept-Language: en-GB\r\n"), "HIT")
      << "two lines are one list";
  EXPECT_EQ(XCache(lang, "Accept-Language: fr\r\n"), "MISS") << "another variant";
  const std::string flavour = "/h/Cache-Control~max-age=3600|Vary~X-Flavour|";
  EXPECT_EQ(XCache(flavour, "X-Flavour: Mint Tea\r\n"), "MISS");
  EXPECT_TRUE(BecomesHit(flavour, "X-Flavour: Mint Tea\r\n"));
  EXPECT_EQ(XCache(flavour, "X-Flavour: Mint   Tea\r\n"), "HIT") << "whitespace runs are one";
  EXPECT_EQ(XCache(flavour, "X-Flavour: mint tea\r\n"), "MISS") << "other fields keep their case";
}

}  // namespace
}  // namespace fanout
