// Integration tests of the persistent cache (issue 5): the real fanoutd in
// front of the test origin — restarts, crashes, RFC 9111 freshness and
// revalidation, client conditionals, invalidation, eviction, purge.

#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <set>
#include <fstream>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "tests/fanoutd_fixture.h"

namespace fanout {
namespace {

namespace fs = std::filesystem;
using ::fanout::testing::Fetched;
using ::fanout::testing::QueryEscaped;
using ::fanout::testing::RawConnection;
using ::fanout::testing::WaitFor;
using namespace std::chrono_literals;

class CacheIntegrationTest : public ::fanout::testing::FanoutdTest {
 protected:
  // fanoutd with one route "/" to the origin and these extra route keys
  // and top-level keys (JSON fragments, may be empty).
  void StartWith(const std::string& route_extra, const std::string& top_extra = "") {
    const std::string config = WriteConfig(
        "{\"routes\": [{\"prefix\": \"/\", \"upstream\": \"http://127.0.0.1:" +
        std::to_string(origin_port_) + "\"" + (route_extra.empty() ? "" : ", " + route_extra) +
        "}]" + (top_extra.empty() ? "" : ", " + top_extra) + "}");
    StartFanoutd({"--config", config});
  }

  nlohmann::json Entries() {
    auto res = Admin().Get("/entries");
    EXPECT_TRUE(res && res->status == 200);
    return res ? nlohmann::json::parse(res->body) : nlohmann::json::array();
  }

  // Waits until the admin interface lists target as stored.
  void WaitStored(const std::string& target) {
    ASSERT_TRUE(WaitFor([&] {
      for (const auto& e : Entries()) {
        if (e["key"] == Key(target)) return true;
      }
      return false;
    }));
  }

  std::vector<std::string> CacheFiles(const std::string& sub) {
    std::vector<std::string> out;
    if (!fs::exists(dir_.path() + "/cache/" + sub)) return out;
    for (const auto& e : fs::recursive_directory_iterator(dir_.path() + "/cache/" + sub)) {
      if (e.is_regular_file()) out.push_back(e.path());
    }
    return out;
  }
};

TEST_F(CacheIntegrationTest, RestartKeepsEntriesAndDropsDamagedOnes) {
  StartFanoutd();
  const std::vector<std::string> targets = {"/keep.bin?size=300000", "/cut.bin?size=300000",
                                            "/bad.bin?size=300000"};
  for (const auto& t : targets) ASSERT_EQ(Get(t).x_cache, "MISS");
  for (const auto& t : targets) WaitStored(t);
  ASSERT_TRUE(WaitFor([&] { return CacheFiles("entries").size() == 6; }));
  fanoutd_.Stop();
  // Damage two entries by hand: truncate one body, garble one metadata file.
  for (const auto& path : CacheFiles("entries")) {
    std::ifstream in(path);
    std::string text((std::istreambuf_iterator<char>(in)), {});
    if (path.ends_with(".meta") && text.find("/cut.bin") != std::string::npos) {
      const std::string body = path.substr(0, path.rfind('/') + 1) +
                               nlohmann::json::parse(text)["body_file"].get<std::string>();
      ASSERT_EQ(::truncate(body.c_str(), 1000), 0);
    }
    if (path.ends_with(".meta") && text.find("/bad.bin") != std::string::npos) {
      std::ofstream(path) << "{\"version\": 1, \"key\": \"garbage";
    }
  }
  StartFanoutd();
  Fetched kept = Get("/keep.bin?size=300000");
  EXPECT_EQ(kept.x_cache, "HIT");
  EXPECT_EQ(kept.body, OriginServer::OriginBody("/keep.bin", 300000));
  EXPECT_EQ(origin_.Count("/keep.bin?size=300000"), 1) << "the origin is not asked again";
  for (const std::string damaged : {"/cut.bin", "/bad.bin"}) {
    Fetched f = Get(damaged + "?size=300000");
    EXPECT_EQ(f.x_cache, "MISS") << damaged << " must not be served from a damaged entry";
    EXPECT_EQ(f.body, OriginServer::OriginBody(damaged, 300000));
    EXPECT_EQ(origin_.Count(damaged + "?size=300000"), 2);
  }
  EXPECT_NE(fanoutd_.log().find("discarding damaged cache entry"), std::string::npos);
}

TEST_F(CacheIntegrationTest, KillDuringAFetchLeavesNoPartialEntry) {
  StartFanoutd();
  const std::string target = "/crash.bin?size=20000000&hold_at=2000000";
  // A client reads the first megabyte of a fetch the origin holds at 2 MB;
  // then fanoutd dies.
  Fetched partial = Get(target, {}, /*stop_after=*/1 << 20);
  EXPECT_GE(partial.body.size(), 1u << 20);
  fanoutd_.Kill();
  origin_.Release("/crash.bin");
  EXPECT_FALSE(CacheFiles("tmp").empty()) << "the stream file was being written";
  StartFanoutd();
  EXPECT_TRUE(CacheFiles("tmp").empty()) << "start-up deletes partial stream files";
  Fetched again = Get("/crash.bin?size=300000");
  EXPECT_EQ(again.x_cache, "MISS");
  Fetched full = Get(target);
  EXPECT_EQ(full.x_cache, "MISS") << "a partial body is never an entry";
  EXPECT_TRUE(full.body == OriginServer::OriginBody("/crash.bin", 20000000));
  EXPECT_EQ(origin_.Count(target), 2);
}

TEST_F(CacheIntegrationTest, CacheControlDecidesWhatIsStored) {
  StartFanoutd();
  struct Case {
    std::string query;
    bool stored;
  };
  const std::vector<Case> cases = {
      {"cc=max-age%3D600", true},
      {"cc=s-maxage%3D600", true},
      {"cc=public%2Cmax-age%3D600", true},
      {"cc=no-store", false},
      {"cc=private%2Cmax-age%3D600", false},
      {"no_lm=1&no_etag=1", false},                       // no freshness, no validator
      {"expires=Sat%2C%2001%20Jan%202000%2000:00:00%20GMT&no_lm=1&no_etag=1", false},
      {"set_cookie=1&cc=max-age%3D600", false},
      {"vary=*&cc=max-age%3D600", false},
  };
  for (std::size_t i = 0; i < cases.size(); ++i) {
    const std::string target = "/cc" + std::to_string(i) + "?size=1000&" + cases[i].query;
    ASSERT_EQ(Get(target).status, 200) << target;
    if (cases[i].stored) WaitStored(target);
    Fetched second = Get(target);
    EXPECT_EQ(second.x_cache, cases[i].stored ? "HIT" : "MISS") << target;
    EXPECT_EQ(origin_.Count(target), cases[i].stored ? 1 : 2) << target;
    EXPECT_EQ(second.body, OriginServer::OriginBody("/cc" + std::to_string(i), 1000));
  }
  // The request's no-store: neither this response nor its reuse.
  const std::string target = "/req-no-store?size=1000&cc=max-age%3D600";
  Get(target, {{"Cache-Control", "no-store"}});
  EXPECT_EQ(Get(target).x_cache, "MISS");
  EXPECT_EQ(origin_.Count(target), 2);
}

TEST_F(CacheIntegrationTest, AStaleEntryIsRevalidatedAndA304RefreshesIt) {
  StartFanoutd();
  // max-age=1: fresh now, stale a second later.
  const std::string target = "/fresh.bin?size=200000&cc=max-age%3D1";
  ASSERT_EQ(Get(target).x_cache, "MISS");
  WaitStored(target);
  EXPECT_EQ(Get(target).x_cache, "HIT");
  // Until the admin interface reports it stale (not a guessed sleep).
  ASSERT_TRUE(WaitFor([&] {
    auto entries = Entries();
    return !entries.empty() && entries[0]["fresh_for"].get<long>() < 0;
  }, 5s));
  Fetched revalidated = Get(target);
  EXPECT_EQ(revalidated.x_cache, "REVALIDATE");
  EXPECT_EQ(revalidated.status, 200);
  EXPECT_TRUE(revalidated.body == OriginServer::OriginBody("/fresh.bin", 200000));
  EXPECT_EQ(origin_.Count(target), 2);
  EXPECT_EQ(origin_.ConditionalCount(target), 1) << "one conditional request, answered 304";
  const auto sent = origin_.LastHeaders(target);
  EXPECT_EQ(sent.count("If-None-Match"), 1u);
  // Refreshed (once its new head is on disk, a request finds the stored
  // entry; before, it joins the revalidation): a hit again, with the body
  // it had.
  ASSERT_TRUE(WaitFor([&] {
    auto entries = Entries();
    return !entries.empty() && entries[0]["fresh_for"].get<long>() >= 0;
  }, 5s));
  Fetched hit = Get(target);
  EXPECT_EQ(hit.x_cache, "HIT");
  EXPECT_TRUE(hit.body == revalidated.body);
  EXPECT_EQ(origin_.Count(target), 2);
}

TEST_F(CacheIntegrationTest, A200OnRevalidationReplacesTheBody) {
  StartFanoutd();
  const std::string target = "/changing.bin?size=100000&cc=max-age%3D0";
  ASSERT_EQ(Get(target).body, OriginServer::OriginBody("/changing.bin", 100000));
  WaitStored(target);
  const std::string old_etag = Entries()[0]["etag"];
  origin_.SetVersion("/changing.bin", 1);
  const std::string v1 = OriginServer::OriginBody(OriginServer::VersionedPath("/changing.bin", 1),
                                                  100000);
  Fetched changed = Get(target);
  EXPECT_EQ(changed.x_cache, "REVALIDATE");
  EXPECT_TRUE(changed.body == v1);
  // Stored now: the new body under the new validator.
  ASSERT_TRUE(WaitFor([&] {
    auto entries = Entries();
    return entries.size() == 1 && entries[0]["etag"] != old_etag;
  }));
  // max-age=0 revalidates every time: a 304 now, and the new body.
  Fetched again = Get(target);
  EXPECT_EQ(again.x_cache, "REVALIDATE");
  EXPECT_TRUE(again.body == v1);
  EXPECT_EQ(origin_.ConditionalCount(target), 2);
}

TEST_F(CacheIntegrationTest, TwentyConcurrentRequestsOnAStaleEntryCauseOneRevalidation) {
  StartFanoutd();
  // The origin holds the revalidation until the other 19 requests have
  // joined it.
  const std::string target = "/stale20.bin?size=500000&cc=max-age%3D0&hold_at=0";
  origin_.Release("/stale20.bin");
  ASSERT_EQ(Get(target).x_cache, "MISS");
  WaitStored(target);
  origin_.Hold("/stale20.bin");
  const int before = origin_.Count(target);
  std::vector<Fetched> results;
  std::thread clients([&] { results = ManyClients(target, 20, 0ms); });
  EXPECT_TRUE(WaitFor([&] { return Joins(target) == 19; }));
  origin_.Release("/stale20.bin");
  clients.join();
  EXPECT_EQ(origin_.Count(target) - before, 1);
  EXPECT_EQ(origin_.ConditionalCount(target), 1);
  const std::string expected = OriginServer::OriginBody("/stale20.bin", 500000);
  int revalidate = 0, join = 0;
  for (const auto& r : results) {
    EXPECT_EQ(r.status, 200);
    EXPECT_TRUE(r.body == expected);
    revalidate += r.x_cache == "REVALIDATE";
    join += r.x_cache == "JOIN";
  }
  EXPECT_EQ(revalidate, 1);
  EXPECT_EQ(join, 19);
}

// Requests that come before the response head is known join the one fetch;
// one that comes after it, and that the response is not fresh for, goes
// upstream on its own; one it is fresh for joins.
TEST_F(CacheIntegrationTest, AfterTheHeadOnlyRequestsItIsFreshForJoinTheFetch) {
  StartFanoutd();
  const std::string path = "/after-head.bin";
  const std::string target = path + "?size=200000&cc=max-age%3D600&hold_at=100000";
  Fetched first, no_cache, min_fresh, plain;
  std::thread a([&] { first = Get(target); });
  ASSERT_TRUE(WaitFor([&] { return origin_.Holding(path) == 1; }));  // head sent
  // ... and taken in by fanoutd: a request before that joins, whatever it asks.
  ASSERT_TRUE(WaitFor([&] { return FetchHasHead(target); }));
  std::thread b([&] { no_cache = Get(target, {{"Cache-Control", "no-cache"}}); });
  std::thread c([&] { min_fresh = Get(target, {{"Cache-Control", "min-fresh=3600"}}); });
  ASSERT_TRUE(WaitFor([&] { return origin_.Holding(path) == 3; }))
      << "no-cache and min-fresh=3600 each went upstream";
  std::thread d([&] { plain = Get(target); });
  ASSERT_TRUE(WaitFor([&] { return Joins(target) == 1; }));
  origin_.Release(path);
  a.join();
  b.join();
  c.join();
  d.join();
  const std::string expected = OriginServer::OriginBody(path, 200000);
  for (const Fetched* f : {&first, &no_cache, &min_fresh, &plain}) {
    EXPECT_EQ(f->status, 200);
    EXPECT_TRUE(f->body == expected);
  }
  EXPECT_EQ(first.x_cache, "MISS");
  EXPECT_EQ(no_cache.x_cache, "MISS");
  EXPECT_EQ(min_fresh.x_cache, "MISS");
  EXPECT_EQ(plain.x_cache, "JOIN");
  EXPECT_EQ(origin_.Count(target), 3);
  WaitStored(target);
  EXPECT_EQ(Get(target).x_cache, "HIT");
  EXPECT_EQ(origin_.Count(target), 3);
}

TEST_F(CacheIntegrationTest, ClientConditionalRequestsGet304WithoutABody) {
  StartFanoutd();
  const std::string target = "/cond.bin?size=5000&cc=max-age%3D600";
  Fetched first = Get(target);
  WaitStored(target);
  const std::string etag = first.headers.find("ETag")->second;
  Fetched not_modified = Get(target, {{"If-None-Match", etag}});
  EXPECT_EQ(not_modified.status, 304);
  EXPECT_TRUE(not_modified.body.empty());
  EXPECT_EQ(not_modified.headers.find("ETag")->second, etag);
  EXPECT_EQ(Get(target, {{"If-None-Match", "\"other\""}}).status, 200);
  EXPECT_EQ(Get(target, {{"If-Modified-Since", "Mon, 02 Nov 2026 10:00:00 GMT"}}).status, 304);
  EXPECT_EQ(Get(target, {{"If-Modified-Since", "Sun, 01 Nov 2026 10:00:00 GMT"}}).status, 200);
  EXPECT_EQ(origin_.Count(target), 1) << "all answered from the entry";
}

TEST_F(CacheIntegrationTest, UnsafeRequestsInvalidateTheirTargetAndLocation) {
  StartFanoutd();
  const std::string page = "/page?size=1000&cc=max-age%3D600";
  // No percent-escapes in this one: cpp-httplib 0.11.4 decodes every
  // header value it parses, Location included (see docs/caching.md).
  const std::string other = "/other?size=1000";
  Get(page);
  Get(other);
  WaitStored(page);
  WaitStored(other);
  // A POST to the page whose answer points (Location) at the other URL.
  httplib::Client client("127.0.0.1", fanoutd_.port());
  auto post = client.Post("/page?size=1000&cc=max-age%3D600&location=" +
                              httplib::detail::encode_query_param(other),
                          "x=1", "application/x-www-form-urlencoded");
  ASSERT_TRUE(post);
  EXPECT_EQ(post->status, 200);
  // The POST's own target differs (its query), so purge the page by a
  // POST to exactly its URL too.
  auto post_page = client.Post(page.c_str(), "x=1", "application/x-www-form-urlencoded");
  ASSERT_TRUE(post_page && post_page->status == 200);
  EXPECT_EQ(Get(page).x_cache, "MISS");
  EXPECT_EQ(Get(other).x_cache, "MISS") << "the Location URL is invalidated too";
  // A failed unsafe request invalidates nothing.
  WaitStored(page);
  auto failed = client.Post((page + "&status=500").c_str(), "x", "text/plain");
  ASSERT_TRUE(failed);
  EXPECT_EQ(Get(page).x_cache, "HIT");
}

TEST_F(CacheIntegrationTest, EvictionKeepsRecentlyUsedEntriesAndNeverBreaksAReader) {
  StartWith("", "\"max_cache_size\": 3500000");
  auto target = [](int i) { return "/e" + std::to_string(i) + "?size=1000000&cc=max-age%3D600"; };
  for (int i = 1; i <= 3; ++i) {
    Get(target(i));
    WaitStored(target(i));
  }
  // A slow client starts reading entry 1; then 3 and 2 are used, so 1 is
  // the least recently used while its reader is in the middle of it.
  RawConnection slow(fanoutd_.port(), 16 * 1024);
  ASSERT_TRUE(slow.Send("GET " + target(1) + " HTTP/1.1\r\nHost: x\r\n\r\n"));
  std::string got = slow.ReadUntil([](const std::string& s) { return s.size() >= 100000; });
  EXPECT_EQ(Get(target(3)).x_cache, "HIT");
  EXPECT_EQ(Get(target(2)).x_cache, "HIT");
  Get(target(4));  // 4 MB > 3.5 MB: evicted down to 3.15 MB
  auto keys = [&] {
    std::set<std::string> out;
    for (const auto& e : Entries()) out.insert(e["key"].get<std::string>());
    return out;
  };
  ASSERT_TRUE(WaitFor([&] { return keys().count(Key(target(4))) == 1; }));
  EXPECT_EQ(keys(), (std::set<std::string>{Key(target(2)), Key(target(3)), Key(target(4))}));
  // The reader of the evicted entry still gets every byte.
  const auto head_end = got.find("\r\n\r\n");
  ASSERT_NE(head_end, std::string::npos);
  const std::size_t total = head_end + 4 + 1000000;
  got += slow.ReadUntil([&](const std::string& s) { return got.size() + s.size() >= total; });
  EXPECT_TRUE(got.substr(head_end + 4) == OriginServer::OriginBody("/e1", 1000000));
  EXPECT_EQ(Get(target(2)).x_cache, "HIT");
  EXPECT_EQ(Get(target(1)).x_cache, "MISS");
}

TEST_F(CacheIntegrationTest, ObjectsOverMaxObjectSizeAreStreamedButNotKept) {
  StartWith("", "\"max_object_size\": \"100KiB\"");
  const std::string big = "/big.bin?size=1000000&cc=max-age%3D600";
  const std::string chunked = "/bigc.bin?size=1000000&chunked=1&cc=max-age%3D600";
  for (const auto& t : {big, chunked}) {
    Fetched f = Get(t);
    EXPECT_TRUE(f.body == OriginServer::OriginBody(t.substr(0, t.find('?')), 1000000));
    EXPECT_EQ(Get(t).x_cache, "MISS") << t;
  }
  const std::string small = "/small.bin?size=1000&cc=max-age%3D600";
  Get(small);
  WaitStored(small);
}

TEST_F(CacheIntegrationTest, AdminListsAndPurgesEntriesEvenDuringAFetch) {
  StartFanoutd();
  const std::string a = "/a.bin?size=1000&cc=max-age%3D600";
  Get(a);
  WaitStored(a);
  Get(a);
  auto entries = Entries();
  ASSERT_EQ(entries.size(), 1u);
  EXPECT_EQ(entries[0]["size"], 1000);
  EXPECT_EQ(entries[0]["status"], 200);
  EXPECT_GE(entries[0]["hits"].get<int>(), 1);
  EXPECT_GT(entries[0]["fresh_for"].get<long>(), 500);
  auto purged = Admin().Post("/purge?url=" + httplib::detail::encode_query_param(a), "", "text/plain");
  ASSERT_TRUE(purged);
  EXPECT_EQ(purged->status, 200);
  EXPECT_TRUE(Entries().empty());
  EXPECT_EQ(Get(a).x_cache, "MISS");
  // Purge while the fetch runs: the reader finishes, nothing is kept.
  const std::string slow = "/slowp.bin?size=4000000&hold_at=1000000&cc=max-age%3D600";
  std::thread client([&] {
    Fetched f = Get(slow);
    EXPECT_TRUE(f.transfer_ok);
    EXPECT_TRUE(f.body == OriginServer::OriginBody("/slowp.bin", 4000000));
  });
  ASSERT_TRUE(WaitFor([&] { return origin_.Holding("/slowp.bin") == 1; }));
  auto during = Admin().Post("/purge?url=" + httplib::detail::encode_query_param(slow), "", "text/plain");
  ASSERT_TRUE(during);
  EXPECT_EQ(during->status, 200);
  origin_.Release("/slowp.bin");
  client.join();
  EXPECT_EQ(Get(slow).x_cache, "MISS") << "the purged fetch was not kept";
  auto all = Admin().Post("/purge-all", "", "text/plain");
  ASSERT_TRUE(all && all->status == 200);
  EXPECT_EQ(Admin().Post("/purge", "", "text/plain")->status, 400);
}

// What `curl -X POST` sends: no body and no Content-Length.
std::string BareAdminRequest(int port, const std::string& request_line) {
  RawConnection c(port);
  EXPECT_TRUE(c.connected());
  EXPECT_TRUE(c.Send(request_line + "\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"));
  return c.ReadUntil([](const std::string&) { return false; });
}

TEST_F(CacheIntegrationTest, AdminPurgesNeedNoBodyAndPurgeByPrefix) {
  StartFanoutd();
  for (const char* t : {"/pool/a.deb?size=10&cc=max-age%3D600", "/pool/b.deb?size=10&cc=max-age%3D600",
                        "/dists/InRelease?size=10&cc=max-age%3D600"}) {
    Get(t);
    WaitStored(t);
  }
  const std::string one = BareAdminRequest(
      fanoutd_.admin_port(), "POST /purge?url=%2Fdists%2FInRelease%3Fsize%3D10%26cc%3Dmax-age%253D600 HTTP/1.1");
  EXPECT_EQ(one.rfind("HTTP/1.1 200 ", 0), 0u) << one;
  EXPECT_NE(one.find("\"purged\": true"), std::string::npos) << one;
  const std::string by_prefix =
      BareAdminRequest(fanoutd_.admin_port(), "POST /purge?prefix=/pool/ HTTP/1.1");
  EXPECT_EQ(by_prefix.rfind("HTTP/1.1 200 ", 0), 0u) << by_prefix;
  EXPECT_NE(by_prefix.find("\"purged\": 2"), std::string::npos) << by_prefix;
  EXPECT_TRUE(Entries().empty());
  Get("/x.bin?size=10&cc=max-age%3D600");
  WaitStored("/x.bin?size=10&cc=max-age%3D600");
  const std::string all = BareAdminRequest(fanoutd_.admin_port(), "POST /purge-all HTTP/1.1");
  EXPECT_EQ(all.rfind("HTTP/1.1 200 ", 0), 0u) << all;
  EXPECT_NE(all.find("\"purged\": 1"), std::string::npos) << all;
  const std::string neither = BareAdminRequest(fanoutd_.admin_port(), "POST /purge HTTP/1.1");
  EXPECT_EQ(neither.rfind("HTTP/1.1 400 ", 0), 0u) << neither;
  EXPECT_NE(neither.find("url= or prefix="), std::string::npos) << neither;
}

TEST_F(CacheIntegrationTest, PurgeMethodFromLoopbackRemovesTheEntryItsPathMapsTo) {
  StartFanoutd();
  const std::string target = "/p.bin?size=10&cc=max-age%3D600";
  Get(target);
  WaitStored(target);
  const Fetched purged = Get(target, {}, SIZE_MAX, "PURGE");
  EXPECT_EQ(purged.status, 200);
  EXPECT_EQ(purged.body, "purged " + Key(target) + "\n");
  EXPECT_EQ(Get(target).x_cache, "MISS") << "fetched again";
  const Fetched again = Get("/never.bin", {}, SIZE_MAX, "PURGE");
  EXPECT_EQ(again.status, 404);
  EXPECT_EQ(again.body, "not stored: " + Key("/never.bin") + "\n");
  EXPECT_EQ(origin_.Count("/never.bin"), 0) << "PURGE is never sent upstream";
}

TEST_F(CacheIntegrationTest, AdminEntriesComeInPagesInKeyOrder) {
  StartFanoutd();
  std::vector<std::string> keys;
  for (int i = 0; i < 5; ++i) {
    const std::string t = "/page" + std::to_string(i) + ".bin?size=10&cc=max-age%3D600";
    Get(t);
    WaitStored(t);
    keys.push_back(Key(t));
  }
  std::vector<std::string> seen;
  std::string after;
  for (int pages = 0; pages < 10; ++pages) {
    auto res = Admin().Get(("/entries?limit=2" + (after.empty() ? "" : "&after=" +
                            httplib::detail::encode_query_param(after))).c_str());
    ASSERT_TRUE(res && res->status == 200);
    const auto page = nlohmann::json::parse(res->body);
    EXPECT_LE(page.size(), 2u);
    for (const auto& e : page) seen.push_back(e["key"]);
    if (!res->has_header("X-Next-After")) break;
    // (The header holds the page's last key; cpp-httplib's client decodes
    // escapes in header values, so the key is taken from the page.)
    after = seen.back();
  }
  EXPECT_EQ(seen, keys) << "every entry once, in key order";
  EXPECT_EQ(Admin().Get("/entries?limit=0")->status, 400);
  EXPECT_EQ(Admin().Get("/entries?limit=x")->status, 400);
}

TEST_F(CacheIntegrationTest, HealthAndReadinessOnTheAdminListener) {
  StartFanoutd();
  auto health = Admin().Get("/healthz");
  ASSERT_TRUE(health);
  EXPECT_EQ(health->status, 200);
  EXPECT_EQ(health->body, "ok\n");
  auto ready = Admin().Get("/readyz");
  ASSERT_TRUE(ready);
  EXPECT_EQ(ready->status, 200) << ready->body;
  // A cache directory that no longer takes files: not ready, and why.
  const std::string tmp = dir_.path() + "/cache/tmp";
  std::filesystem::rename(tmp, tmp + ".away");
  auto not_ready = Admin().Get("/readyz");
  ASSERT_TRUE(not_ready);
  EXPECT_EQ(not_ready->status, 503);
  EXPECT_NE(not_ready->body.find("cannot create a file in " + tmp), std::string::npos)
      << not_ready->body;
  std::filesystem::rename(tmp + ".away", tmp);
  EXPECT_EQ(Admin().Get("/readyz")->status, 200);
}

TEST_F(CacheIntegrationTest, StaleIfErrorServesTheEntryWhenTheOriginIsDown) {
  StartWith("\"stale_if_error\": \"1h\"");
  const std::string target = "/sie.bin?size=10000&cc=max-age%3D0";
  Get(target);
  WaitStored(target);
  origin_.Stop();
  Fetched f = Get(target);
  EXPECT_EQ(f.status, 200);
  EXPECT_EQ(f.body, OriginServer::OriginBody("/sie.bin", 10000));
}

TEST_F(CacheIntegrationTest, WithoutStaleIfErrorAFailedRevalidationIsAGatewayError) {
  StartFanoutd();
  const std::string target = "/nosie.bin?size=10000&cc=max-age%3D0";
  Get(target);
  WaitStored(target);
  origin_.Stop();
  EXPECT_EQ(Get(target).status, 502);
}

TEST_F(CacheIntegrationTest, StaleWhileRevalidateAnswersAtOnceAndRefreshesBehind) {
  StartWith("\"stale_while_revalidate\": \"1h\"");
  // The origin answers only when released (hold_at=0).
  const std::string target = "/swr.bin?size=10000&cc=max-age%3D0&hold_at=0";
  origin_.Release("/swr.bin");
  Get(target);
  WaitStored(target);
  origin_.Hold("/swr.bin");
  // Answered from the stale entry while the revalidation waits at the origin.
  Fetched f = Get(target);
  EXPECT_EQ(f.x_cache, "STALE");
  EXPECT_EQ(f.body, OriginServer::OriginBody("/swr.bin", 10000));
  ASSERT_TRUE(WaitFor([&] { return origin_.Holding("/swr.bin") == 1; }));
  EXPECT_EQ(origin_.ConditionalCount(target), 1) << "the revalidation behind is conditional";
  origin_.Release("/swr.bin");
}

TEST_F(CacheIntegrationTest, AResponseWithoutDateGetsTheTimeItWasReceived) {
  StartFanoutd();
  // The test origin sends no Date (RFC 9110 §6.6.1: the cache adds one).
  const std::string target = "/nodate.bin?size=100&cc=max-age%3D600";
  Fetched miss = Get(target);
  ASSERT_EQ(miss.headers.count("Date"), 1u);
  const std::string date = miss.headers.find("Date")->second;
  EXPECT_EQ(date.size(), 29u) << date;  // "Sun, 06 Nov 1994 08:49:37 GMT"
  EXPECT_EQ(date.substr(25), " GMT") << date;
  WaitStored(target);
  Fetched hit = Get(target);
  EXPECT_EQ(hit.x_cache, "HIT");
  ASSERT_EQ(hit.headers.count("Date"), 1u);
  EXPECT_EQ(hit.headers.find("Date")->second, date) << "stored with the response";
}

TEST_F(CacheIntegrationTest, OnlyIfCachedIs504WhenNotStored) {
  StartFanoutd();
  const std::string target = "/oic.bin?size=100&cc=max-age%3D600";
  EXPECT_EQ(Get(target, {{"Cache-Control", "only-if-cached"}}).status, 504);
  EXPECT_EQ(origin_.Count(target), 0);
  Get(target);
  WaitStored(target);
  EXPECT_EQ(Get(target, {{"Cache-Control", "only-if-cached"}}).status, 200);
}

TEST_F(CacheIntegrationTest, VaryKeepsOneEntryPerVariantFetchedOnceEach) {
  StartFanoutd();
  const std::string target = "/lang.bin?size=200000&vary=Accept-Language&rate=2MB";
  auto body = [](const std::string& lang) {
    return OriginServer::OriginBody("/lang.bin|" + lang, 200000);
  };
  // 10 clients per language at once, while the first fetch runs: one
  // fetch per variant, each client the bytes of its own language.
  std::vector<Fetched> results(20);
  std::vector<std::thread> clients;
  for (int i = 0; i < 20; ++i) {
    clients.emplace_back([&, i] {
      results[i] = Get(target, {{"Accept-Language", i % 2 ? "fr" : "en"}});
    });
  }
  for (auto& c : clients) c.join();
  for (int i = 0; i < 20; ++i) {
    EXPECT_TRUE(results[i].body == body(i % 2 ? "fr" : "en")) << i;
  }
  EXPECT_EQ(origin_.Count(target), 2);
  // Stored: each language is a hit of its own bytes, a third is a new fetch.
  ASSERT_TRUE(WaitFor([&] { return Entries().size() == 2; }));
  Fetched en = Get(target, {{"Accept-Language", "en"}});
  Fetched fr = Get(target, {{"Accept-Language", " fr"}});  // whitespace is normalised
  EXPECT_EQ(en.x_cache, "HIT");
  EXPECT_EQ(fr.x_cache, "HIT");
  EXPECT_TRUE(en.body == body("en"));
  EXPECT_TRUE(fr.body == body("fr"));
  Fetched de = Get(target, {{"Accept-Language", "de"}});
  EXPECT_EQ(de.x_cache, "MISS");
  EXPECT_TRUE(de.body == body("de"));
  EXPECT_EQ(origin_.Count(target), 3);
  // A purge of the URL removes every variant.
  ASSERT_TRUE(WaitFor([&] { return Entries().size() == 3; }));
  auto purged = Admin().Post("/purge?url=" + httplib::detail::encode_query_param(target), "",
                             "text/plain");
  ASSERT_TRUE(purged && purged->status == 200);
  EXPECT_TRUE(Entries().empty());
}

TEST_F(CacheIntegrationTest, A304RefreshesTheVariantItValidated) {
  StartFanoutd();
  const std::string target = "/lang304.bin?size=1000&vary=Accept-Language&cc=max-age%3D0";
  Get(target, {{"Accept-Language", "en"}});
  Get(target, {{"Accept-Language", "fr"}});
  ASSERT_TRUE(WaitFor([&] { return Entries().size() == 2; }));
  Fetched fr = Get(target, {{"Accept-Language", "fr"}});
  EXPECT_EQ(fr.x_cache, "REVALIDATE");
  EXPECT_EQ(fr.body, OriginServer::OriginBody("/lang304.bin|fr", 1000));
  const auto sent = origin_.LastHeaders(target);
  EXPECT_EQ(sent.find("Accept-Language")->second, "fr");
  EXPECT_EQ(sent.count("If-None-Match"), 1u);
  EXPECT_EQ(origin_.ConditionalCount(target), 1);
}

TEST_F(CacheIntegrationTest, AnswersToCredentialsAreStoredAndReusedOnlyWhenMarkedPublic) {
  StartFanoutd();
  const httplib::Headers auth = {{"Authorization", "Bearer secret"}};
  // public: stored, and then reused for anyone, credentials or not.
  const std::string open = "/auth-public?size=1000&cc=public%2Cmax-age%3D600";
  EXPECT_EQ(Get(open, auth).x_cache, "MISS");
  WaitStored(open);
  EXPECT_EQ(Get(open).x_cache, "HIT");
  EXPECT_EQ(Get(open, auth).x_cache, "HIT");
  EXPECT_EQ(origin_.Count(open), 1);
  // Not public: not stored.
  const std::string closed = "/auth-closed?size=1000&cc=max-age%3D600";
  EXPECT_EQ(Get(closed, auth).x_cache, "MISS");
  EXPECT_EQ(Get(closed).x_cache, "MISS");
  EXPECT_EQ(origin_.Count(closed), 2);
  // Stored from an anonymous request, not public: a request with
  // credentials is not answered from it but goes upstream with them.
  WaitStored(closed);
  Fetched own = Get(closed, auth);
  EXPECT_EQ(own.x_cache, "MISS");
  EXPECT_EQ(own.body, OriginServer::OriginBody("/auth-closed", 1000));
  EXPECT_EQ(origin_.Count(closed), 3);
  EXPECT_EQ(origin_.LastHeaders(closed).count("Authorization"), 1u);
  EXPECT_EQ(Get(closed).x_cache, "HIT") << "the anonymous entry is still there";
}

TEST_F(CacheIntegrationTest, HopByHopHeadersAreNeitherRelayedNorStored) {
  StartFanoutd();
  const std::string target = "/hop.bin?size=100&cc=max-age%3D600&hop=1";
  Fetched miss = Get(target);
  WaitStored(target);
  Fetched hit = Get(target);
  EXPECT_EQ(hit.x_cache, "HIT");
  for (const auto* f : {&miss, &hit}) {
    EXPECT_EQ(f->headers.count("X-Hop"), 0u);
    EXPECT_EQ(f->headers.count("Proxy-Authenticate"), 0u);
    EXPECT_EQ(f->headers.count("ETag"), 1u) << "end-to-end headers still go through";
  }
  // Nor in the entry's metadata on disk.
  for (const auto& path : CacheFiles("entries")) {
    if (!path.ends_with(".meta")) continue;
    std::ifstream in(path);
    const std::string text((std::istreambuf_iterator<char>(in)), {});
    EXPECT_EQ(text.find("X-Hop"), std::string::npos) << text;
    EXPECT_EQ(text.find("Proxy-Authenticate"), std::string::npos) << text;
  }
}

TEST_F(CacheIntegrationTest, AgeIsSentOnEveryCachedResponse) {
  StartFanoutd();
  const std::string target = "/age.bin?size=100&cc=max-age%3D600";
  Get(target);
  WaitStored(target);
  Fetched hit = Get(target);
  ASSERT_EQ(hit.headers.count("Age"), 1u);
  EXPECT_GE(std::stol(hit.headers.find("Age")->second), 0);
}

// RFC 9213: CDN-Cache-Control and Fanout-Cache-Control decide what fanoutd
// stores, Fanout- first. Fanout-Cache-Control is fanoutd's alone and stays
// here; CDN-Cache-Control goes on, for CDNs downstream.
TEST_F(CacheIntegrationTest, TargetedCacheControlDecidesStorage) {
  StartFanoutd();
  const std::string cdn = "/cdn.bin?size=1000&cc=no-store&cdn_cc=max-age%3D600";
  Fetched miss = Get(cdn);
  EXPECT_EQ(miss.x_cache, "MISS");
  WaitStored(cdn);
  Fetched hit = Get(cdn);
  EXPECT_EQ(hit.x_cache, "HIT");
  EXPECT_EQ(origin_.Count(cdn), 1);
  for (const Fetched* f : {&miss, &hit}) {
    EXPECT_EQ(f->headers.find("CDN-Cache-Control")->second, "max-age=600");
    EXPECT_EQ(f->headers.find("Cache-Control")->second, "no-store") << "browsers get theirs";
    EXPECT_TRUE(f->body == OriginServer::OriginBody("/cdn.bin", 1000));
  }
  const std::string mine = "/mine.bin?size=1000&cc=no-store&fanout_cc=max-age%3D600";
  Get(mine);
  WaitStored(mine);
  Fetched mine_hit = Get(mine);
  EXPECT_EQ(mine_hit.x_cache, "HIT");
  EXPECT_EQ(mine_hit.headers.count("Fanout-Cache-Control"), 0u) << "fanoutd's field stays here";
  // Fanout-Cache-Control comes before CDN-Cache-Control.
  const std::string both = "/both.bin?size=1000&cc=max-age%3D600&cdn_cc=max-age%3D600&fanout_cc=no-store";
  Get(both);
  Fetched again = Get(both);
  EXPECT_EQ(again.x_cache, "MISS");
  EXPECT_EQ(origin_.Count(both), 2);
  EXPECT_EQ(again.headers.count("Fanout-Cache-Control"), 0u);
}

TEST_F(CacheIntegrationTest, WithoutTargetedFieldsConfiguredCdnCacheControlIsRelayedAndIgnored) {
  StartWith(R"("targeted_cache_control": [])");
  const std::string cdn = "/cdn-off.bin?size=1000&cc=no-store&cdn_cc=max-age%3D600";
  Get(cdn);
  Fetched second = Get(cdn);
  EXPECT_EQ(second.x_cache, "MISS");
  EXPECT_EQ(origin_.Count(cdn), 2);
  EXPECT_EQ(second.headers.find("CDN-Cache-Control")->second, "max-age=600");
}

// Per-path rules: content-addressed files are immutable (stored without
// freshness, and a client's max-age=0 or no-cache does not send them
// upstream); an index gets a TTL and is revalidated when a client asks.
TEST_F(CacheIntegrationTest, PerPathRulesStoreImmutableFilesAndKeepThemFromTheUpstream) {
  StartWith(R"("rules": [{"match": "/pool/**.deb", "immutable": true},
                         {"match": "/dists/*/InRelease", "ttl": "1h"}])");
  const std::string deb = "/pool/main/h/hello.deb?size=5000&no_lm=1&no_etag=1";
  EXPECT_EQ(Get(deb).x_cache, "MISS");
  WaitStored(deb);
  for (const char* cc : {"max-age=0", "no-cache"}) {
    Fetched f = Get(deb, {{"Cache-Control", cc}});
    EXPECT_EQ(f.x_cache, "HIT") << cc;
    EXPECT_TRUE(f.body == OriginServer::OriginBody("/pool/main/h/hello.deb", 5000));
  }
  EXPECT_EQ(origin_.Count(deb), 1);
  EXPECT_EQ(origin_.ConditionalCount(deb), 0);
  // Without the rule the same response is not stored at all.
  const std::string other = "/pool/main/h/hello.dsc?size=5000&no_lm=1&no_etag=1";
  Get(other);
  EXPECT_EQ(Get(other).x_cache, "MISS");

  const std::string release = "/dists/stable/InRelease?size=300&no_lm=1";  // an ETag only
  EXPECT_EQ(Get(release).x_cache, "MISS");
  WaitStored(release);
  EXPECT_EQ(Get(release).x_cache, "HIT") << "fresh for the rule's hour";
  Fetched asked = Get(release, {{"Cache-Control", "no-cache"}});
  EXPECT_EQ(asked.x_cache, "REVALIDATE") << "the client's no-cache still counts here";
  EXPECT_EQ(asked.status, 200);
  EXPECT_EQ(origin_.ConditionalCount(release), 1);
  EXPECT_EQ(origin_.Count(release), 2);
}

// One entry per resource: escapes normalised in path and query, and the
// route's ignored query parameters left out of the key (still sent upstream).
TEST_F(CacheIntegrationTest, SpellingsOfOneUrlShareAnEntry) {
  StartWith(R"("ignore_query_params": ["utm_source"])");
  const std::string first = "/k%2bey.bin?size=100&cc=max-age%3D600&x=%2f&utm_source=mail";
  const Fetched miss = Get(first);
  EXPECT_EQ(miss.x_cache, "MISS");
  ASSERT_TRUE(WaitFor([&] { return Entries().size() == 1; }));
  EXPECT_EQ(Entries()[0]["key"], Key("/k%2Bey.bin?size=100&cc=max-age%3D600&x=%2F"));
  for (const char* same : {"/k%2Bey.bin?size=100&cc=max-age%3D600&x=%2F",
                           "/k%2Bey.bin?utm_source=web&size=100&cc=max-age%3D600&x=%2f",
                           "/./k%2bey.bin?size=100&cc=max-age%3D600&x=%2F"}) {
    Fetched f = Get(same);
    EXPECT_EQ(f.x_cache, "HIT") << same;
    EXPECT_TRUE(f.body == miss.body) << same;
  }
  EXPECT_EQ(Entries().size(), 1u);
  // ('+' and "%2B" stay two keys: cache_rules_test; httplib's client
  // escapes a '+' in a path, so it cannot send one here.)
}

// A redirect into the route's upstream is rewritten to the same resource
// through fanoutd, so the client stays on the cache; off per route.
TEST_F(CacheIntegrationTest, RedirectsIntoTheUpstreamAreRewrittenToFanoutd) {
  const std::string upstream = "http://127.0.0.1:" + std::to_string(origin_port_);
  const std::string config = WriteConfig(
      R"({"routes": [{"prefix": "/mirror", "upstream": ")" + upstream + R"(/base"},
                     {"prefix": "/raw", "upstream": ")" + upstream +
      R"(/base", "rewrite_redirects": false}]})");
  StartFanoutd({"--config", config});
  const std::string location = upstream + "/base/new.bin?x=1";
  const std::string query = "?size=10&status=302&location=" + QueryEscaped(location);
  Fetched rewritten = Get("/mirror/old.bin" + query);
  EXPECT_EQ(rewritten.status, 302);
  EXPECT_EQ(rewritten.headers.find("Location")->second, "/mirror/new.bin?x=1");
  Fetched kept = Get("/raw/old.bin" + query);
  EXPECT_EQ(kept.headers.find("Location")->second, location);
  const std::string elsewhere = "http://example.com/base/new.bin";
  Fetched other = Get("/mirror/o.bin?size=10&status=302&location=" +
                      QueryEscaped(elsewhere));
  EXPECT_EQ(other.headers.find("Location")->second, elsewhere);
}

}  // namespace
}  // namespace fanout
