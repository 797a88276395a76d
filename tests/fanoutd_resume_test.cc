// Fetches that survive their upstream (server/fetch_resume.h), and bodies
// checked against the digest their response announced (core/body_digest.h),
// on the real fanoutd against the test origin: every client's every byte
// is compared with the origin's body as it streams.

#include <openssl/evp.h>

#include <atomic>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "core/digest_field.h"
#include "core/entry_meta.h"
#include "tests/fanoutd_fixture.h"

namespace fanout::testing {
namespace {

// Big enough that the drop points are far apart; smaller under the
// sanitizers, where every byte costs more.
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
constexpr std::uint64_t kBigBody = 40'000'000;
#else
constexpr std::uint64_t kBigBody = 200'000'000;
#endif
constexpr int kClients = 20;

// What one client saw of a body streamed to it, checked as it came.
struct Streamed {
  int status = 0;
  std::string x_cache;
  std::uint64_t bytes = 0;
  bool matches = true;       // every byte was the origin's at its offset
  bool transfer_ok = false;  // the body arrived with a proper end
};

// "sha-256=:...:" (or sha-512) of path's body of `size` bytes.
std::string DigestField(const std::string& path, std::uint64_t size, const EVP_MD* md) {
  const std::string body = OriginServer::OriginBody(path, size);
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  EVP_Digest(body.data(), body.size(), out, &n, md, nullptr);
  return std::string(md == EVP_sha256() ? "sha-256" : "sha-512") + "=:" +
         EncodeBase64(std::string(reinterpret_cast<const char*>(out), n)) + ":";
}

class ResumeTest : public FanoutdTest {
 protected:
  // GET target, comparing each byte with `path`'s body as it arrives.
  Streamed StreamGet(const std::string& target, const std::string& path) {
    httplib::Client client("127.0.0.1", fanoutd_.port());
    client.set_read_timeout(60, 0);
    Streamed s;
    httplib::Request req;
    req.method = "GET";
    req.path = target;
    req.response_handler = [&](const httplib::Response& res) {
      s.status = res.status;
      s.x_cache = res.get_header_value("X-Cache");
      return true;
    };
    req.content_receiver = [&](const char* d, size_t n, uint64_t, uint64_t) {
      if (s.bytes == 0) ++streaming_;
      s.matches = s.matches && OriginServer::MatchesOrigin(path, s.bytes, d, n);
      s.bytes += n;
      return true;
    };
    s.transfer_ok = static_cast<bool>(client.send(req));
    return s;
  }

  // kClients clients on target, all streaming before the origin, held at
  // `hold` bytes of path's body, is let go (and then drops, if asked).
  // `while_held` runs once they all stream.
  std::vector<Streamed> JoinedClients(const std::string& target, const std::string& path,
                                      const std::function<void()>& while_held = nullptr) {
    streaming_ = 0;
    std::vector<Streamed> results(kClients);
    std::vector<std::thread> threads;
    for (int i = 0; i < kClients; ++i) {
      threads.emplace_back([&, i] { results[i] = StreamGet(target, path); });
    }
    EXPECT_TRUE(WaitFor([&] { return streaming_.load() == kClients; }, std::chrono::seconds(60)))
        << streaming_.load() << " of " << kClients << " clients streaming at the hold";
    if (while_held) while_held();
    origin_.Release(path);
    for (auto& t : threads) t.join();
    return results;
  }

  std::string Metrics() {
    auto res = Admin().Get("/metrics");
    return res && res->status == 200 ? res->body : "";
  }

  std::atomic<int> streaming_{0};
};

// The origin drops the connection at 10%, 50% and 99% of a throttled body
// with 20 clients joined: each gets the whole body from one GET and one
// ranged GET, the entry is stored, and later hits are the same bytes.
TEST_F(ResumeTest, ADropAtTenFiftyOrNinetyNinePercentIsResumedForEveryClient) {
  StartFanoutd();
  int resumed = 0;
  for (const int percent : {10, 50, 99}) {
    SCOPED_TRACE(::testing::Message() << "drop at " << percent << "%");
    const std::string path = "/resume/p" + std::to_string(percent) + ".bin";
    const std::uint64_t at = kBigBody / 100 * percent;
    const std::string target = path + "?size=" + std::to_string(kBigBody) +
                               "&rate=100MB&hold_at=" + std::to_string(at) +
                               "&drop_at=" + std::to_string(at) + "&drops=1";
    const auto results = JoinedClients(target, path);
    for (const Streamed& r : results) {
      EXPECT_EQ(r.status, 200);
      EXPECT_TRUE(r.transfer_ok);
      EXPECT_EQ(r.bytes, kBigBody);
      EXPECT_TRUE(r.matches) << "a byte differs from the origin's";
    }
    EXPECT_EQ(origin_.Count(target), 2) << "one GET and one ranged GET";
    EXPECT_EQ(origin_.RangedCount(target), 1);
    const httplib::Headers sent = origin_.LastHeaders(target);
    auto header = [&](const char* name) {
      auto it = sent.find(name);
      return it == sent.end() ? std::string() : it->second;
    };
    EXPECT_EQ(header("Range"), "bytes=" + std::to_string(at) + "-");
    EXPECT_FALSE(header("If-Range").empty());
    WaitUntilHit(target);
    const Streamed later = StreamGet(target, path);
    EXPECT_EQ(later.x_cache, "HIT");
    EXPECT_TRUE(later.transfer_ok && later.matches && later.bytes == kBigBody);
    EXPECT_EQ(origin_.Count(target), 2);
    ++resumed;
    EXPECT_NE(Metrics().find("fanout_fetch_resumes_total{result=\"resumed\"} " +
                             std::to_string(resumed) + "\n"),
              std::string::npos);
  }
  EXPECT_NE(fanoutd_.log().find("resumed from byte"), std::string::npos) << fanoutd_.log();
}

// A chunked body (no length) with a validator is resumed as well; the
// 206's Content-Range gives its length.
TEST_F(ResumeTest, AChunkedBodyIsResumed) {
  StartFanoutd();
  const std::string path = "/resume/chunked.bin";
  const std::uint64_t size = 8'000'000;
  const std::string target = path + "?size=8000000&chunked=1&hold_at=3000000&drop_at=3000000&drops=1";
  for (const Streamed& r : JoinedClients(target, path)) {
    EXPECT_TRUE(r.transfer_ok);
    EXPECT_EQ(r.bytes, size);
    EXPECT_TRUE(r.matches);
  }
  EXPECT_EQ(origin_.Count(target), 2);
  EXPECT_EQ(origin_.RangedCount(target), 1);
  WaitUntilHit(target);
}

// The representation changed between the drop and the resume: the origin
// answers If-Range with a whole 200 of the new body. Every client sees an
// incomplete body (never the new bytes), and nothing is stored.
TEST_F(ResumeTest, AChangedETagFailsTheStreamAndStoresNothing) {
  StartFanoutd();
  const std::string path = "/resume/changed.bin";
  const std::string target = path + "?size=20000000&hold_at=10000000&drop_at=10000000&drops=1";
  const auto results = JoinedClients(target, path, [&] { origin_.SetVersion(path, 2); });
  for (const Streamed& r : results) {
    EXPECT_FALSE(r.transfer_ok) << "an incomplete body must look incomplete";
    EXPECT_LT(r.bytes, 20'000'000u);
    EXPECT_TRUE(r.matches) << "only the old representation's bytes";
  }
  EXPECT_EQ(origin_.Count(target), 2);
  EXPECT_EQ(origin_.RangedCount(target), 1);
  const Streamed next = StreamGet(target, OriginServer::VersionedPath(path, 2));
  EXPECT_EQ(next.x_cache, "MISS") << "nothing was stored";
  EXPECT_TRUE(next.transfer_ok && next.matches && next.bytes == 20'000'000u);
  EXPECT_NE(fanoutd_.log().find("the representation changed"), std::string::npos)
      << fanoutd_.log();
  EXPECT_NE(Metrics().find("fanout_fetch_resumes_total{result=\"refused\"} 1\n"),
            std::string::npos);
}

// An origin that ignores ranges answers the resume with a whole 200: the
// same as a changed representation.
TEST_F(ResumeTest, AnOriginIgnoringRangesFailsTheStreamAndStoresNothing) {
  StartFanoutd();
  const std::string path = "/resume/noranges.bin";
  const std::string target =
      path + "?size=20000000&ranges=0&hold_at=5000000&drop_at=5000000&drops=1";
  for (const Streamed& r : JoinedClients(target, path)) {
    EXPECT_FALSE(r.transfer_ok);
    EXPECT_LT(r.bytes, 20'000'000u);
    EXPECT_TRUE(r.matches);
  }
  EXPECT_EQ(origin_.Count(target), 2);
  EXPECT_EQ(StreamGet(target, path).x_cache, "MISS");
}

// Without a validator nothing can prove the rest belongs to the same
// body: no resume is tried, and the log says why.
TEST_F(ResumeTest, AResponseWithoutValidatorIsNotResumed) {
  StartFanoutd();
  const std::string path = "/resume/novalidator.bin";
  const std::string target =
      path + "?size=20000000&no_etag=1&no_lm=1&cc=max-age%3D600&hold_at=5000000&drop_at=5000000&drops=1";
  for (const Streamed& r : JoinedClients(target, path)) {
    EXPECT_FALSE(r.transfer_ok);
    EXPECT_TRUE(r.matches);
  }
  EXPECT_EQ(origin_.Count(target), 1);
  EXPECT_NE(fanoutd_.log().find("not resumable: no validator"), std::string::npos)
      << fanoutd_.log();
}

// An origin that drops every time is asked upstream.resume_attempts times,
// then the clients see an incomplete body.
TEST_F(ResumeTest, ResumeAttemptsAreBounded) {
  StartFanoutd({"--config", WriteConfig(R"({
    "upstream": { "resume_attempts": 2 },
    "routes": [ { "prefix": "/", "upstream": "http://127.0.0.1:)" +
                                              std::to_string(origin_port_) + R"(" } ] })")});
  const std::string path = "/resume/always.bin";
  const std::string target = path + "?size=4000000&hold_at=1000000&drop_at=1000000";
  for (const Streamed& r : JoinedClients(target, path)) {
    EXPECT_FALSE(r.transfer_ok);
    EXPECT_EQ(r.bytes, 1'000'000u);
    EXPECT_TRUE(r.matches);
  }
  EXPECT_EQ(origin_.Count(target), 3) << "the GET and 2 resumes";
  EXPECT_EQ(StreamGet(target, path).x_cache, "MISS");
  EXPECT_NE(fanoutd_.log().find("attempt 2 of 2"), std::string::npos) << fanoutd_.log();
}

// ---- stall hedging ----

// A config whose fetches hedge after `stall` without a byte (read_timeout
// far longer, so only a hedge can finish a stalled body in time).
std::string HedgingConfig(int origin_port, const std::string& stall) {
  return R"({
    "upstream": { "read_timeout": "60s", "stall_timeout": ")" + stall + R"(" },
    "routes": [ { "prefix": "/", "upstream": "http://127.0.0.1:)" +
         std::to_string(origin_port) + R"(" } ] })";
}

// The origin goes silent at 8 MB of 20 MB (sent at 4 MB/s) with 20
// clients streaming: after stall_timeout a request for the rest is sent
// beside the stalled one; it delivers first, the stalled connection is
// closed, every client gets the whole body, and the entry is stored. (No
// hold here: a hold is a stall too, and would be hedged.)
TEST_F(ResumeTest, AStalledBodyIsFinishedByARequestForTheRestBesideIt) {
  StartFanoutd({"--config", WriteConfig(HedgingConfig(origin_port_, "1s"))});
  const std::string path = "/hedge/stalled.bin";
  const std::string target = path + "?size=20000000&rate=4MB&stall_at=8000000&stalls=1";
  streaming_ = 0;
  std::vector<Streamed> results(kClients);
  std::vector<std::thread> threads;
  for (int i = 0; i < kClients; ++i) {
    threads.emplace_back([&, i] { results[i] = StreamGet(target, path); });
  }
  for (auto& t : threads) t.join();
  for (const Streamed& r : results) {
    EXPECT_TRUE(r.transfer_ok);
    EXPECT_EQ(r.bytes, 20'000'000u);
    EXPECT_TRUE(r.matches);
  }
  EXPECT_EQ(origin_.Count(target), 2) << "the stalled GET and the hedge";
  EXPECT_EQ(origin_.RangedCount(target), 1);
  const httplib::Headers sent = origin_.LastHeaders(target);
  auto range = sent.find("Range");
  ASSERT_NE(range, sent.end());
  EXPECT_EQ(range->second, "bytes=8000000-");
  WaitUntilHit(target);
  const std::string metrics = Metrics();
  EXPECT_NE(metrics.find("fanout_fetch_hedges_total{result=\"won\"} 1\n"), std::string::npos)
      << metrics;
  EXPECT_NE(metrics.find("fanout_fetch_resumes_total{result=\"resumed\"} 0\n"),
            std::string::npos)
      << "finished by the hedge, not by a resume after read_timeout";
  EXPECT_NE(fanoutd_.log().find("stalled after 8000000 bytes"), std::string::npos)
      << fanoutd_.log();
}

// A body that cannot be resumed (no validator) is not hedged: the stall
// is waited out (it is shorter than read_timeout) on the one connection.
TEST_F(ResumeTest, ABodyThatCannotBeResumedIsNotHedged) {
  StartFanoutd({"--config", WriteConfig(HedgingConfig(origin_port_, "200ms"))});
  const std::string path = "/hedge/novalidator.bin";
  const std::string target = path +
                             "?size=6000000&no_etag=1&no_lm=1&cc=max-age%3D600&hold_at=1000000"
                             "&stall_at=3000000&stall_ms=1500";
  for (const Streamed& r : JoinedClients(target, path)) {
    EXPECT_TRUE(r.transfer_ok && r.matches && r.bytes == 6'000'000u);
  }
  EXPECT_EQ(origin_.Count(target), 1);
  EXPECT_EQ(origin_.RangedCount(target), 0);
  EXPECT_NE(Metrics().find("fanout_fetch_hedges_total{result=\"won\"} 0\n"),
            std::string::npos);
}

// ---- integrity ----

// A body that matches its Repr-Digest (or Content-Digest) is stored; the
// log says it was verified.
TEST_F(ResumeTest, ABodyMatchingItsDigestIsStored) {
  StartFanoutd();
  const std::string path = "/digest/good.bin";
  const std::string repr = path + "?size=3000000&repr_digest=" +
                           QueryEscaped(DigestField(path, 3'000'000, EVP_sha256()));
  const Streamed first = StreamGet(repr, path);
  EXPECT_TRUE(first.transfer_ok && first.matches && first.bytes == 3'000'000u);
  WaitUntilHit(repr);
  const std::string content = path + "?size=3000000&content_digest=" +
                              QueryEscaped(DigestField(path, 3'000'000, EVP_sha512()));
  EXPECT_TRUE(StreamGet(content, path).transfer_ok);
  WaitUntilHit(content);
  EXPECT_NE(fanoutd_.log().find("Repr-Digest sha-256 verified"), std::string::npos);
  EXPECT_NE(fanoutd_.log().find("Content-Digest sha-512 verified"), std::string::npos);
}

// A wrong digest fails the stream: every joined client sees an incomplete
// body (the last byte is held back until the check, so even a client that
// kept up cannot take the body as whole), nothing is stored.
TEST_F(ResumeTest, AWrongDigestFailsTheStreamAndStoresNothing) {
  StartFanoutd();
  const std::string path = "/digest/bad.bin";
  const std::string target = path + "?size=3000000&hold_at=1000000&repr_digest=" +
                             QueryEscaped(DigestField("/other", 3'000'000, EVP_sha256()));
  for (const Streamed& r : JoinedClients(target, path)) {
    EXPECT_FALSE(r.transfer_ok) << "a body that failed its digest must look incomplete";
    EXPECT_LT(r.bytes, 3'000'000u);
    EXPECT_TRUE(r.matches);
  }
  // The next request fetches again, and fails the same way.
  const Streamed next = StreamGet(target, path);
  EXPECT_EQ(next.x_cache, "MISS");
  EXPECT_FALSE(next.transfer_ok);
  EXPECT_NE(fanoutd_.log().find("Repr-Digest sha-256 mismatch"), std::string::npos)
      << fanoutd_.log();
  EXPECT_NE(Metrics().find("fanout_fetches_failed_total{cause=\"integrity\"} 2\n"),
            std::string::npos);
}

// The digest covers the whole body across a resume.
TEST_F(ResumeTest, ADigestIsCheckedAcrossAResume) {
  StartFanoutd();
  const std::string path = "/digest/resumed.bin";
  const std::string target = path + "?size=6000000&hold_at=2500000&drop_at=2500000&drops=1" +
                             "&repr_digest=" +
                             QueryEscaped(DigestField(path, 6'000'000, EVP_sha256()));
  for (const Streamed& r : JoinedClients(target, path)) {
    EXPECT_TRUE(r.transfer_ok && r.matches && r.bytes == 6'000'000u);
  }
  EXPECT_EQ(origin_.RangedCount(target), 1);
  WaitUntilHit(target);
}

// A route with "verify": true keeps only what it could check: a response
// without a digest is served but not stored; one with a digest is stored.
TEST_F(ResumeTest, AVerifyingRouteStoresOnlyCheckedBodies) {
  StartFanoutd({"--config", WriteConfig(R"({
    "routes": [ { "prefix": "/", "verify": true, "upstream": "http://127.0.0.1:)" +
                                              std::to_string(origin_port_) + R"(" } ] })")});
  const std::string path = "/digest/verified.bin";
  const std::string plain = path + "?size=1000000";
  const Streamed first = StreamGet(plain, path);
  EXPECT_TRUE(first.transfer_ok && first.matches && first.bytes == 1'000'000u);
  EXPECT_EQ(StreamGet(plain, path).x_cache, "MISS") << "not stored without a digest";
  EXPECT_NE(fanoutd_.log().find("the route verifies bodies"), std::string::npos);
  const std::string with_digest = path + "?size=1000000&repr_digest=" +
                                  QueryEscaped(DigestField(path, 1'000'000, EVP_sha256()));
  EXPECT_TRUE(StreamGet(with_digest, path).transfer_ok);
  WaitUntilHit(with_digest);
}

// Partial bodies outliving a restart: a body of 40 MB that the origin
// holds at 50% (20 MB), with a client that has all 20 MB, when fanoutd
// dies or stops; checkpointed every 4 MiB.
class PartialTest : public ResumeTest {
 protected:
  static constexpr std::uint64_t kSize = 40'000'000;
  static constexpr std::uint64_t kHold = 20'000'000;

  void StartWithCheckpoints() {
    StartFanoutd({"--config", WriteConfig(R"({
      "upstream": { "partial_checkpoint": "4MiB" },
      "routes": [ { "prefix": "/", "upstream": "http://127.0.0.1:)" +
                                         std::to_string(origin_port_) + R"(" } ] })")});
  }

  // Starts fanoutd and a fetch of target with one client, until that
  // client has every byte up to the origin's hold; then `end` ends fanoutd
  // with the fetch in flight, and the origin lets go of the hold.
  void InterruptFetch(const std::string& target, const std::string& path,
                      const std::function<void()>& end) {
    StartWithCheckpoints();
    std::atomic<std::uint64_t> got{0};
    std::thread client([&] {
      httplib::Client c("127.0.0.1", fanoutd_.port());
      c.set_read_timeout(60, 0);
      c.Get(target.c_str(), [&](const char*, size_t n) {
        got += n;
        return true;
      });
    });
    EXPECT_TRUE(WaitFor([&] { return got.load() == kHold; }, std::chrono::seconds(60)))
        << got.load() << " bytes";
    end();
    client.join();
    origin_.Release(path);
  }

  // The cache's tmp/ files whose names end with `suffix`.
  std::vector<std::string> TmpFiles(const std::string& suffix) {
    std::vector<std::string> out;
    for (const auto& e : std::filesystem::directory_iterator(dir_.path() + "/cache/tmp")) {
      const std::string p = e.path();
      if (p.size() >= suffix.size() && p.compare(p.size() - suffix.size(), suffix.size(), suffix) == 0) {
        out.push_back(p);
      }
    }
    return out;
  }

  // The bytes the one partial record in tmp/ promises.
  std::uint64_t RecordedBytes() {
    const auto records = TmpFiles(".meta");
    EXPECT_EQ(records.size(), 1u);
    if (records.size() != 1) return 0;
    EntryMeta meta;
    EXPECT_TRUE(ReadEntryMeta(records[0], &meta, EntryMetaKind::kPartial).ok());
    return meta.body_length;
  }

  std::string SentHeader(const std::string& target, const char* name) {
    const httplib::Headers sent = origin_.LastHeaders(target);
    auto it = sent.find(name);
    return it == sent.end() ? std::string() : it->second;
  }
};

// kill -9 at 50%: the next run serves the next client the bytes on disk
// and asks the origin only for the rest, with one ranged request; the
// entry is then stored like any other.
TEST_F(PartialTest, AfterAKillTheNextClientGetsTheWholeBodyWithOneRangedRequest) {
  const std::string path = "/partial/killed.bin";
  const std::string target = path + "?size=" + std::to_string(kSize) +
                             "&hold_at=" + std::to_string(kHold);
  InterruptFetch(target, path, [&] { fanoutd_.Kill(); });
  const std::uint64_t kept = RecordedBytes();
  EXPECT_GT(kept, 0u);
  EXPECT_LE(kept, kHold);
  StartWithCheckpoints();
  const Streamed next = StreamGet(target, path);
  EXPECT_EQ(next.status, 200);
  EXPECT_TRUE(next.transfer_ok);
  EXPECT_EQ(next.bytes, kSize);
  EXPECT_TRUE(next.matches) << "a byte differs from the origin's";
  EXPECT_EQ(origin_.Count(target), 2) << "the interrupted GET and one ranged GET";
  EXPECT_EQ(origin_.RangedCount(target), 1);
  EXPECT_EQ(SentHeader(target, "Range"), "bytes=" + std::to_string(kept) + "-");
  EXPECT_FALSE(SentHeader(target, "If-Range").empty());
  EXPECT_NE(fanoutd_.log().find("goes on from the " + std::to_string(kept) +
                                " bytes an earlier run kept"),
            std::string::npos)
      << fanoutd_.log();
  WaitUntilHit(target);
  const Streamed hit = StreamGet(target, path);
  EXPECT_EQ(hit.x_cache, "HIT");
  EXPECT_TRUE(hit.transfer_ok && hit.matches && hit.bytes == kSize);
  EXPECT_EQ(origin_.Count(target), 2);
  EXPECT_TRUE(TmpFiles("").empty()) << "the partial body is gone once taken up";
}

// SIGTERM: the drain stops the fetch, which records everything it has
// (20 MB) before fanoutd exits; the next run asks for the rest from there.
TEST_F(PartialTest, AStoppedFetchKeepsAllItHadForTheNextRun) {
  const std::string path = "/partial/stopped.bin";
  const std::string target = path + "?size=" + std::to_string(kSize) +
                             "&hold_at=" + std::to_string(kHold);
  InterruptFetch(target, path, [&] { EXPECT_EQ(fanoutd_.Stop(), 0); });
  EXPECT_EQ(RecordedBytes(), kHold);
  StartWithCheckpoints();
  const Streamed next = StreamGet(target, path);
  EXPECT_TRUE(next.transfer_ok && next.matches && next.bytes == kSize);
  EXPECT_EQ(origin_.RangedCount(target), 1);
  EXPECT_EQ(SentHeader(target, "Range"), "bytes=" + std::to_string(kHold) + "-");
}

// A partial body shorter than its record (cut on disk) is discarded with
// a warning, and the next client's fetch is a whole one.
TEST_F(PartialTest, APartialBodyShorterThanItsRecordIsDiscarded) {
  const std::string path = "/partial/cut.bin";
  const std::string target = path + "?size=" + std::to_string(kSize) +
                             "&hold_at=" + std::to_string(kHold);
  InterruptFetch(target, path, [&] { fanoutd_.Kill(); });
  const std::uint64_t kept = RecordedBytes();
  const auto bodies = TmpFiles(".part");
  ASSERT_EQ(bodies.size(), 1u);
  std::filesystem::resize_file(bodies[0], kept - 1);
  StartWithCheckpoints();
  EXPECT_NE(fanoutd_.log().find("discarding partial body"), std::string::npos) << fanoutd_.log();
  const Streamed next = StreamGet(target, path);
  EXPECT_TRUE(next.transfer_ok && next.matches && next.bytes == kSize);
  EXPECT_EQ(next.x_cache, "MISS");
  EXPECT_EQ(origin_.Count(target), 2);
  EXPECT_EQ(origin_.RangedCount(target), 0) << "nothing was left to resume";
}

// The representation changed while fanoutd was down: the origin answers
// the ranged request's If-Range with the whole new body, which the client
// gets (never a byte of the old one); the partial body is discarded.
TEST_F(PartialTest, APartialBodyOfAChangedRepresentationIsDiscarded) {
  const std::string path = "/partial/changed.bin";
  const std::string target = path + "?size=" + std::to_string(kSize) +
                             "&hold_at=" + std::to_string(kHold);
  InterruptFetch(target, path, [&] { fanoutd_.Kill(); });
  origin_.SetVersion(path, 2);
  StartWithCheckpoints();
  const Streamed next = StreamGet(target, OriginServer::VersionedPath(path, 2));
  EXPECT_TRUE(next.transfer_ok);
  EXPECT_EQ(next.bytes, kSize);
  EXPECT_TRUE(next.matches) << "only the new representation's bytes";
  EXPECT_EQ(origin_.Count(target), 2);
  EXPECT_EQ(origin_.RangedCount(target), 1) << "asked for the rest; given the whole";
  EXPECT_NE(fanoutd_.log().find("discarding the partial body of"), std::string::npos)
      << fanoutd_.log();
  WaitUntilHit(target);
  const Streamed hit = StreamGet(target, OriginServer::VersionedPath(path, 2));
  EXPECT_TRUE(hit.x_cache == "HIT" && hit.matches && hit.bytes == kSize);
}

}  // namespace
}  // namespace fanout::testing
