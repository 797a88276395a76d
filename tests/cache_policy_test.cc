// RFC 9111 rules of core/cache_policy, core/cache_control and HTTP dates,
// each checked against the RFC's own wording.

#include "core/cache_policy.h"

#include <cstdio>
#include <ctime>

#include <gtest/gtest.h>

namespace fanout {
namespace {

using std::chrono::hours;
using std::chrono::seconds;

SystemTime At(const char* date) { return *ParseHttpDate(date); }

const SystemTime kNow = At("Sat, 28 Nov 2026 12:00:00 GMT");

// A response received at kNow - resident, with `headers` (Date = its arrival).
ResponseHead Response(HeaderList headers, int status = 200, seconds resident = seconds(0)) {
  ResponseHead h;
  h.status = status;
  h.received_at = kNow - resident;
  h.requested_at = h.received_at;
  h.headers = std::move(headers);
  if (h.Header("Date").empty()) h.headers.emplace_back("Date", FormatHttpDate(h.received_at));
  return h;
}

RequestFacts Request(HeaderList headers = {}) { return RequestFacts::From(headers); }

TEST(HttpDateTest, ParsesTheThreeFormatsAndWritesImfFixdate) {
  const SystemTime t = At("Sun, 06 Nov 1994 08:49:37 GMT");
  EXPECT_EQ(ParseHttpDate("Sunday, 06-Nov-94 08:49:37 GMT"), t);
  EXPECT_EQ(ParseHttpDate("Sun Nov  6 08:49:37 1994"), t);
  EXPECT_EQ(FormatHttpDate(t), "Sun, 06 Nov 1994 08:49:37 GMT");
  EXPECT_FALSE(ParseHttpDate("0"));
  EXPECT_FALSE(ParseHttpDate("Sun, 06 Nov 1994 08:49:37 PST"));
  EXPECT_FALSE(ParseHttpDate("Sun, 32 Nov 1994 08:49:37 GMT"));
  EXPECT_FALSE(ParseHttpDate(""));
}

// RFC 9110 §5.6.7's three formats exactly; a cache treats anything else as
// invalid (an invalid Expires: already expired).
TEST(HttpDateTest, OnlyTheThreeFormatsExactly) {
  const SystemTime t = At("Sun, 06 Nov 1994 08:49:37 GMT");
  const char* invalid[] = {
      "Sun, 06 Nov 94 08:49:37 GMT",     // two-digit year in IMF form
      "Sun 06 Nov 1994 08:49:37 GMT",    // no comma
      "Sun,  06 Nov 1994 08:49:37 GMT",  // doubled space
      "Sun, 06 Nov 1994  08:49:37 GMT",
      "Sun, 06-Nov-1994 08:49:37 GMT",   // dashes in IMF form
      "Sun, 6 Nov 1994 08:49:37 GMT",    // one-digit day in IMF form
      "Sun, 06 Nov 1994 8:49:37 GMT",    // one-digit hour
      "Sun, 06 Nov 1994 08.49.37 GMT",   // periods
      "Sun, 06 Nov 1994 08:49:37 UTC",   // another zone
      "Sun, 06 Nov 1994 08:49:37 AEST",
      "Sun, 06 Nov 1994 08:49:37",       // no zone
      "Sun, 06 Nov 1994 08:49:37 GMT ",  // trailing space
      " Sun, 06 Nov 1994 08:49:37 GMT",
      "Sun, 06 Nov 1994 24:00:00 GMT",   // hour 24
      "Sun, 31 Nov 1994 08:49:37 GMT",   // November has 30 days
      "Thu, 29 Feb 1990 08:49:37 GMT",   // not a leap year
      "Xyz, 06 Nov 1994 08:49:37 GMT",   // no such day
      "Sun, 06 Now 1994 08:49:37 GMT",   // no such month
      "Sunday, 06-Nov-1994 08:49:37 GMT",  // four-digit year in RFC 850 form
      "Sun, 06-Nov-94 08:49:37 GMT",       // short day name in RFC 850 form
      "Sunday, 06 Nov 94 08:49:37 GMT",
      "Sun Nov 6 08:49:37 1994",           // asctime needs two columns for the day
      "Sun Nov  6 08:49:37 94",
      "Sun, 06 Nov 1969 08:49:37 GMT",     // before 1970
      "1994-11-06T08:49:37Z",
      "784111777",
  };
  for (const char* text : invalid) EXPECT_FALSE(ParseHttpDate(text)) << text;
  // RFC 9111 §4.2: a cache matches the names case-insensitively.
  EXPECT_EQ(ParseHttpDate("sun, 06 nov 1994 08:49:37 gmt"), t);
  EXPECT_EQ(ParseHttpDate("SUN, 06 NOV 1994 08:49:37 GMT"), t);
  EXPECT_EQ(ParseHttpDate("SUNDAY, 06-nov-94 08:49:37 Gmt"), t);
  EXPECT_EQ(ParseHttpDate("sun NOV  6 08:49:37 1994"), t);
  // The day name is not checked against the date (06 Nov 1994 was a Sunday).
  EXPECT_EQ(ParseHttpDate("Mon, 06 Nov 1994 08:49:37 GMT"), t);
  EXPECT_EQ(ParseHttpDate("Sun Nov 16 08:49:37 1994"), t + std::chrono::hours(24 * 10));
  EXPECT_EQ(ParseHttpDate("Thu, 29 Feb 1996 00:00:00 GMT"), At("Fri, 01 Mar 1996 00:00:00 GMT") - std::chrono::hours(24));
  EXPECT_EQ(ParseHttpDate("Sat, 31 Dec 2016 23:59:60 GMT"), At("Sun, 01 Jan 2017 00:00:00 GMT"));
}

// Two-digit years: more than 50 years ahead means the last century.
TEST(HttpDateTest, Rfc850YearsMoreThanFiftyYearsAheadAreTheLastCentury) {
  const std::time_t now = std::time(nullptr);
  std::tm tm{};
  ::gmtime_r(&now, &tm);
  const int year = tm.tm_year + 1900;
  auto year_of = [](std::optional<SystemTime> t) {
    const std::time_t s = std::chrono::system_clock::to_time_t(*t);
    std::tm out{};
    ::gmtime_r(&s, &out);
    return out.tm_year + 1900;
  };
  char text[64];
  const int ahead = (year + 50) % 100, past = (year + 51) % 100;
  std::snprintf(text, sizeof text, "Monday, 01-Jan-%02d 00:00:00 GMT", ahead);
  EXPECT_EQ(year_of(ParseHttpDate(text)), year + 50);
  std::snprintf(text, sizeof text, "Monday, 01-Jan-%02d 00:00:00 GMT", past);
  EXPECT_EQ(year_of(ParseHttpDate(text)), year + 51 - 100);
}

// Found by tests/fuzz/http_date_fuzzer: from_time_t() of a date after 2262
// overflowed the nanosecond clock (signed overflow, then any time at all).
TEST(HttpDateTest, DatesPastTheClocksEndAreItsLastSecondNotAnOverflow) {
  const SystemTime last = At("Fri, 11 Apr 2262 23:47:16 GMT");
  EXPECT_EQ(std::chrono::time_point_cast<seconds>(SystemTime::max()), last);
  EXPECT_EQ(ParseHttpDate("Fri, 31 Dec 9999 23:59:59 GMT"), last);
  EXPECT_EQ(ParseHttpDate("Fri, 11 Apr 2262 23:47:17 GMT"), last);
  EXPECT_EQ(ParseHttpDate("Fri Dec 31 23:59:59 9999"), last);
  // The fuzzer's input, once read as an asctime date; not one in any format.
  EXPECT_FALSE(ParseHttpDate("'-Jan-4,-23:59:59-2929"));
  EXPECT_EQ(FormatHttpDate(last), "Fri, 11 Apr 2262 23:47:16 GMT");
  // "Expires: ... 9999" stays as fresh as can be, not expired.
  EXPECT_GT(FreshnessLifetime(Response({{"Expires", "Fri, 31 Dec 9999 23:59:59 GMT"}}), {}),
            hours(24 * 365 * 200));
}

TEST(CacheControlTest, DirectivesAreCaseInsensitiveFirstWinsAndBadNumbersAreZero) {
  auto cc = CacheControl::Parse({"Max-Age=60, PUBLIC", "max-age=999, s-maxage=\"30\""});
  EXPECT_EQ(cc.max_age, 60);
  EXPECT_EQ(cc.s_maxage, 30);
  EXPECT_TRUE(cc.public_);
  EXPECT_EQ(CacheControl::Parse({"max-age=abc"}).max_age, 0);
  auto quoted = CacheControl::Parse({"private=\"a, b\", no-cache"});
  EXPECT_TRUE(quoted.private_);
  EXPECT_TRUE(quoted.no_cache);
  EXPECT_EQ(CacheControl::Parse({"max-stale"}).max_stale,
            std::numeric_limits<std::int64_t>::max());
}

TEST(CacheControlTest, ABackslashQuotesTheNextCharacterInAQuotedString) {
  // The escaped quote does not end the string, so max-age is still seen.
  auto cc = CacheControl::Parse({R"(no-cache="a\"b, c", max-age=5)"});
  EXPECT_TRUE(cc.no_cache);
  EXPECT_EQ(cc.max_age, 5);
  cc = CacheControl::Parse({R"(private="x\\", max-age=6)"});  // an escaped backslash
  EXPECT_TRUE(cc.private_);
  EXPECT_EQ(cc.max_age, 6);
  // A backslash at the very end, inside an unterminated string, is a character.
  cc = CacheControl::Parse({"max-age=7, private=\"\\"});
  EXPECT_EQ(cc.max_age, 7);
  EXPECT_TRUE(cc.private_);
}

TEST(MayStoreTest, FollowsTheSharedCacheRules) {
  const CachePolicyOptions none;
  std::string why;
  EXPECT_TRUE(MayStore(Request(), Response({{"Cache-Control", "max-age=60"}}), none, &why));
  EXPECT_FALSE(MayStore(Request(), Response({{"Cache-Control", "no-store, max-age=60"}}), none, &why));
  EXPECT_FALSE(MayStore(Request(), Response({{"Cache-Control", "private, max-age=60"}}), none, &why));
  EXPECT_FALSE(MayStore(Request({{"Cache-Control", "no-store"}}),
                        Response({{"Cache-Control", "max-age=60"}}), none, &why));
  EXPECT_FALSE(MayStore(Request(), Response({{"Cache-Control", "max-age=60"}, {"Vary", "*"}}),
                        none, &why));
  // Authorization: only when the response allows it explicitly.
  const auto auth = Request({{"Authorization", "Basic eDp5"}});
  EXPECT_FALSE(MayStore(auth, Response({{"Cache-Control", "max-age=60"}}), none, &why));
  EXPECT_TRUE(MayStore(auth, Response({{"Cache-Control", "public, max-age=60"}}), none, &why));
  EXPECT_TRUE(MayStore(auth, Response({{"Cache-Control", "s-maxage=60"}}), none, &why));
  EXPECT_TRUE(MayStore(auth, Response({{"Cache-Control", "must-revalidate, max-age=60"}}), none,
                       &why));
  // Status codes: 206 and 304 never; 500 only with explicit freshness.
  EXPECT_FALSE(MayStore(Request(), Response({{"Cache-Control", "max-age=60"}}, 206), none, &why));
  EXPECT_FALSE(MayStore(Request(), Response({{"Last-Modified", "Mon, 02 Nov 2026 10:00:00 GMT"}}, 500),
                        none, &why));
  EXPECT_TRUE(MayStore(Request(), Response({{"Cache-Control", "max-age=60"}}, 500), none, &why));
  // Nothing to reuse it by: no freshness and no validator.
  EXPECT_FALSE(MayStore(Request(), Response({}), none, &why));
  EXPECT_EQ(why, "no freshness and no validator");
  EXPECT_TRUE(MayStore(Request(), Response({{"ETag", "\"x\""}}), none, &why));
}

TEST(FreshnessTest, SMaxageThenMaxAgeThenExpiresThenHeuristic) {
  const CachePolicyOptions none;
  EXPECT_EQ(FreshnessLifetime(Response({{"Cache-Control", "max-age=60, s-maxage=10"}}), none),
            seconds(10));
  EXPECT_EQ(FreshnessLifetime(Response({{"Cache-Control", "max-age=60"},
                                        {"Expires", "Sat, 28 Nov 2026 13:00:00 GMT"}}), none),
            seconds(60));
  EXPECT_EQ(FreshnessLifetime(Response({{"Expires", "Sat, 28 Nov 2026 13:00:00 GMT"}}), none),
            hours(1));
  EXPECT_EQ(FreshnessLifetime(Response({{"Expires", "0"}}), none), seconds(0));
  // Heuristic: 10% of the time since Last-Modified (10 hours -> 1 hour).
  EXPECT_EQ(FreshnessLifetime(Response({{"Last-Modified", "Sat, 28 Nov 2026 02:00:00 GMT"}}), none),
            hours(1));
  // ... only for heuristically cacheable statuses.
  EXPECT_EQ(FreshnessLifetime(Response({{"Last-Modified", "Sat, 28 Nov 2026 02:00:00 GMT"}}, 500),
                              none),
            seconds(0));
  // A route's default TTL replaces the heuristic, not explicit freshness.
  CachePolicyOptions ttl;
  ttl.default_ttl = seconds(300);
  EXPECT_EQ(FreshnessLifetime(Response({{"Last-Modified", "Sat, 28 Nov 2026 02:00:00 GMT"}}), ttl),
            seconds(300));
  EXPECT_EQ(FreshnessLifetime(Response({{"Cache-Control", "max-age=5"}}), ttl), seconds(5));
  EXPECT_EQ(FreshnessLifetime(Response({}), none), seconds(0));
}

// RFC 9111 §4.2.2: "public" makes a response of any status heuristically
// cacheable.
TEST(FreshnessTest, PublicResponsesOfAnyStatusGetTheHeuristic) {
  const CachePolicyOptions none;
  const char* lm = "Sat, 28 Nov 2026 02:00:00 GMT";  // 10 hours before Date
  for (int status : {302, 307, 400, 403, 500, 503}) {
    EXPECT_EQ(FreshnessLifetime(Response({{"Last-Modified", lm}}, status), none), seconds(0))
        << status;
    EXPECT_EQ(FreshnessLifetime(Response({{"Last-Modified", lm}, {"Cache-Control", "public"}},
                                         status),
                                none),
              hours(1))
        << status;
  }
  std::string why;
  EXPECT_TRUE(MayStore(Request(), Response({{"Last-Modified", lm}, {"Cache-Control", "public"}}, 302),
                       none, &why));
}

// An Expires that is not an HTTP-date means already expired (RFC 9111
// §5.3), whatever Cache-Control lacks.
TEST(FreshnessTest, AnInvalidExpiresIsAlreadyExpired) {
  const CachePolicyOptions none;
  for (const char* bad : {"Sat, 28 Nov 26 13:00:00 GMT", "Sat 28 Nov 2026 13:00:00 GMT",
                          "Sat, 28  Nov 2026 13:00:00 GMT", "Sat, 28-Nov-2026 13:00:00 GMT",
                          "Sat, 28 Nov 2026 13:00:00 UTC", "-1", "0"}) {
    EXPECT_EQ(FreshnessLifetime(Response({{"Expires", bad}}), none), seconds(0)) << bad;
  }
  EXPECT_EQ(FreshnessLifetime(Response({{"Expires", "sat, 28 nov 2026 13:00:00 gmt"}}), none),
            hours(1));
}

// RFC 9111 §4.1: selecting header values compared after normalising
// whitespace, and case for Accept-Encoding and Accept-Language.
TEST(VaryTest, SelectingValuesAreComparedNormalised) {
  const std::vector<std::string> names = {"accept-encoding", "accept-language", "x-flavour"};
  const HeaderList stored = SelectingValues(
      names, {{"Accept-Encoding", "gzip, br"}, {"Accept-Language", "en-GB"}, {"X-Flavour", "A b"}});
  EXPECT_TRUE(VaryMatches(stored, {{"accept-encoding", "GZIP ,BR"},
                                   {"Accept-Language", "EN-gb"},
                                   {"X-Flavour", "A \t b"}}));
  EXPECT_TRUE(VaryMatches(stored, {{"Accept-Encoding", "gzip"},
                                   {"Accept-Encoding", " br,"},
                                   {"Accept-Language", "en-GB"},
                                   {"X-Flavour", "A b"}}))
      << "two lines are one list";
  EXPECT_FALSE(VaryMatches(stored, {{"Accept-Encoding", "gzip, br"},
                                    {"Accept-Language", "en-GB"},
                                    {"X-Flavour", "a b"}}))
      << "other fields keep their case";
  EXPECT_FALSE(VaryMatches(stored, {{"Accept-Encoding", "gzip, br"},
                                    {"Accept-Language", "en-GB"},
                                    {"X-Flavour", "Ab"}}))
      << "a space inside a value is not nothing";
  EXPECT_FALSE(VaryMatches(stored, {{"Accept-Encoding", "gzip, br"}, {"X-Flavour", "A b"}}))
      << "an absent field is not a present one";
  EXPECT_TRUE(VaryMatches(stored, {{"Accept-Encoding", "br, gzip"},
                                   {"Accept-Language", "en-GB"},
                                   {"X-Flavour", "A b"}}))
      << "the order of Accept-Encoding's elements means nothing";
  const HeaderList languages = SelectingValues({"accept-language"}, {{"Accept-Language", "en, de"}});
  EXPECT_TRUE(VaryMatches(languages, {{"Accept-Language", "de,en"}}));
  EXPECT_FALSE(VaryMatches(languages, {{"Accept-Language", "de;q=0.5, en"}}));
  EXPECT_EQ(VariantKey("k", stored), "k\nvary\naccept-encoding=br,gzip\naccept-language=en-gb\nx-flavour=A b");
}

TEST(AgeTest, CountsUpstreamAgeApparentAgeAndResidentTime) {
  ResponseHead r = Response({}, 200, seconds(100));
  EXPECT_EQ(CurrentAge(r, kNow), seconds(100));
  r.upstream_age = 30;
  EXPECT_EQ(CurrentAge(r, kNow), seconds(130));
  // A Date 50 s before arrival (apparent age) outweighs a smaller Age.
  ResponseHead old = Response({{"Date", FormatHttpDate(kNow - seconds(150))}}, 200, seconds(100));
  old.upstream_age = 10;
  EXPECT_EQ(CurrentAge(old, kNow), seconds(150));
  // Response delay (request sent 5 s before the answer) is added to Age.
  ResponseHead slow = Response({}, 200, seconds(0));
  slow.requested_at = slow.received_at - seconds(5);
  slow.upstream_age = 1;
  EXPECT_EQ(CurrentAge(slow, kNow), seconds(6));
}

TEST(ReuseTest, FreshStaleAndRequestDirectives) {
  const CachePolicyOptions none;
  const ResponseHead fresh = Response({{"Cache-Control", "max-age=60"}}, 200, seconds(10));
  const ResponseHead stale = Response({{"Cache-Control", "max-age=60"}}, 200, seconds(100));
  EXPECT_EQ(DecideReuse(Request(), fresh, none, kNow), Reuse::kFresh);
  EXPECT_EQ(DecideReuse(Request(), stale, none, kNow), Reuse::kRevalidate);
  EXPECT_EQ(DecideReuse(Request({{"Cache-Control", "no-cache"}}), fresh, none, kNow),
            Reuse::kRevalidate);
  EXPECT_EQ(DecideReuse(Request({{"Pragma", "no-cache"}}), fresh, none, kNow),
            Reuse::kRevalidate);
  EXPECT_EQ(DecideReuse(Request({{"Cache-Control", "max-age=5"}}), fresh, none, kNow),
            Reuse::kRevalidate);
  EXPECT_EQ(DecideReuse(Request({{"Cache-Control", "max-age=11"}}), fresh, none, kNow),
            Reuse::kFresh);
  // Ages are whole seconds rounded down: at 10 the response is older than
  // 10, and max-age=0 never accepts a stored response, however new.
  EXPECT_EQ(DecideReuse(Request({{"Cache-Control", "max-age=10"}}), fresh, none, kNow),
            Reuse::kRevalidate);
  const ResponseHead brand_new = Response({{"Cache-Control", "max-age=60"}});
  EXPECT_EQ(DecideReuse(Request({{"Cache-Control", "max-age=0"}}), brand_new, none,
                        brand_new.received_at),
            Reuse::kRevalidate);
  EXPECT_EQ(DecideReuse(Request({{"Cache-Control", "min-fresh=55"}}), fresh, none, kNow),
            Reuse::kRevalidate);
  EXPECT_EQ(DecideReuse(Request({{"Cache-Control", "max-stale=60"}}), stale, none, kNow),
            Reuse::kFresh);
  EXPECT_EQ(DecideReuse(Request(), Response({{"Cache-Control", "no-cache, max-age=60"}}), none,
                        kNow),
            Reuse::kRevalidate);
  // must-revalidate: never stale, whatever the client tolerates.
  const ResponseHead strict =
      Response({{"Cache-Control", "max-age=60, must-revalidate"}}, 200, seconds(100));
  EXPECT_EQ(DecideReuse(Request({{"Cache-Control", "max-stale"}}), strict, none, kNow),
            Reuse::kRevalidate);
}

TEST(ReuseTest, StaleWhileRevalidateAndStaleIfErrorFromResponseOrRoute) {
  const CachePolicyOptions none;
  const ResponseHead swr =
      Response({{"Cache-Control", "max-age=60, stale-while-revalidate=100"}}, 200, seconds(100));
  EXPECT_EQ(DecideReuse(Request(), swr, none, kNow), Reuse::kStaleWhileRevalidate);
  const ResponseHead too_stale =
      Response({{"Cache-Control", "max-age=60, stale-while-revalidate=10"}}, 200, seconds(100));
  EXPECT_EQ(DecideReuse(Request(), too_stale, none, kNow), Reuse::kRevalidate);
  CachePolicyOptions route;
  route.stale_while_revalidate = seconds(60);
  route.stale_if_error = seconds(60);
  const ResponseHead plain = Response({{"Cache-Control", "max-age=60"}}, 200, seconds(100));
  EXPECT_EQ(DecideReuse(Request(), plain, route, kNow), Reuse::kStaleWhileRevalidate);
  EXPECT_TRUE(MayServeStaleOnError(plain, route, kNow));
  EXPECT_FALSE(MayServeStaleOnError(plain, none, kNow));
  EXPECT_TRUE(MayServeStaleOnError(
      Response({{"Cache-Control", "max-age=60, stale-if-error=50"}}, 200, seconds(100)), none,
      kNow));
  EXPECT_FALSE(MayServeStaleOnError(
      Response({{"Cache-Control", "max-age=60, must-revalidate"}}, 200, seconds(100)), route,
      kNow));
}

TEST(RevalidationTest, ConditionalHeadersAndRefreshFromA304) {
  ResponseHead stored = Response({{"ETag", "\"v1\""},
                                  {"Last-Modified", "Mon, 02 Nov 2026 10:00:00 GMT"},
                                  {"Cache-Control", "max-age=60"},
                                  {"X-Kept", "yes"}},
                                 200, seconds(100));
  stored.content_length = 5;
  const HeaderList cond = ConditionalHeaders(stored);
  EXPECT_EQ(HeaderValue(cond, "If-None-Match"), "\"v1\"");
  EXPECT_EQ(HeaderValue(cond, "If-Modified-Since"), "Mon, 02 Nov 2026 10:00:00 GMT");
  ResponseHead not_modified = Response({{"Cache-Control", "max-age=120"},
                                        {"ETag", "\"v1\""},
                                        {"Content-Length", "0"}},
                                       304);
  const ResponseHead refreshed = Refreshed(stored, not_modified);
  EXPECT_EQ(refreshed.status, 200);
  EXPECT_EQ(refreshed.content_length, 5u);
  EXPECT_EQ(HeaderValues(refreshed.headers, "Cache-Control"),
            std::vector<std::string>{"max-age=120"});
  EXPECT_EQ(refreshed.Header("X-Kept"), "yes");
  EXPECT_EQ(refreshed.Header("Content-Length"), "");
  EXPECT_EQ(refreshed.received_at, kNow);
  EXPECT_EQ(DecideReuse(Request(), refreshed, {}, kNow), Reuse::kFresh);
}

TEST(ClientConditionalTest, IfNoneMatchWinsOverIfModifiedSince) {
  const ResponseHead stored =
      Response({{"ETag", "W/\"v1\""}, {"Last-Modified", "Mon, 02 Nov 2026 10:00:00 GMT"}});
  EXPECT_TRUE(ClientConditionSatisfied({{"If-None-Match", "\"v0\", \"v1\""}}, stored));
  EXPECT_TRUE(ClientConditionSatisfied({{"If-None-Match", "*"}}, stored));
  EXPECT_FALSE(ClientConditionSatisfied(
      {{"If-None-Match", "\"v2\""}, {"If-Modified-Since", "Tue, 03 Nov 2026 10:00:00 GMT"}},
      stored));
  EXPECT_TRUE(ClientConditionSatisfied({{"If-Modified-Since", "Mon, 02 Nov 2026 10:00:00 GMT"}},
                                       stored));
  EXPECT_FALSE(ClientConditionSatisfied({{"If-Modified-Since", "Sun, 01 Nov 2026 10:00:00 GMT"}},
                                        stored));
  EXPECT_FALSE(ClientConditionSatisfied({{"If-Modified-Since", "garbage"}}, stored));
  EXPECT_FALSE(ClientConditionSatisfied({{"If-None-Match", "\"v1\""}},
                                        Response({{"ETag", "\"v1\""}}, 404)));
}

}  // namespace
}  // namespace fanout
