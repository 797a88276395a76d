// fanoutd killed (SIGKILL) at random moments under load, then restarted:
// no damaged entry is ever served afterwards, and every entry stored before
// the kill is intact; bodies checkpointed before it (every 256 KiB here)
// are taken up by the next run as partial bodies, and must come out whole
// and exact all the same. The moments come from a seeded RNG; the seed is
// printed (FANOUT_CRASH_SEED=N replays a run).

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "bench/origin/origin_server.h"
#include "tests/fanoutd_fixture.h"

namespace fanout {
namespace {

using ::fanout::testing::FanoutdTest;
using ::fanout::testing::Fetched;
using namespace std::chrono_literals;

std::uint64_t CrashSeed() {
  if (const char* env = std::getenv("FANOUT_CRASH_SEED")) return std::strtoull(env, nullptr, 10);
  return static_cast<std::uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count());
}

class CrashTest : public FanoutdTest {
 protected:
  struct Object {
    std::string path;
    std::uint64_t size;
    std::string target() const { return path + "?size=" + std::to_string(size) + "&cc=max-age%3D3600"; }
  };

  // Each round's own objects, so that each kill meets fetches in flight;
  // the earlier rounds' stay, and must stay intact.
  std::vector<Object> Objects(std::mt19937_64& rng, int round) {
    std::vector<Object> objects;
    std::uniform_int_distribution<std::uint64_t> size(0, 6000000);
    for (int i = 0; i < 16; ++i) {
      objects.push_back({"/crash" + std::to_string(round) + "-" + std::to_string(i) + ".bin",
                         i % 6 == 0 ? 0 : size(rng)});
    }
    return objects;
  }

  // Checkpoints small enough that most kills leave partial bodies.
  void StartCheckpointing() {
    StartFanoutd({"--config", WriteConfig(R"({
      "upstream": { "partial_checkpoint": "256KiB" },
      "routes": [ { "prefix": "/", "upstream": "http://127.0.0.1:)" +
                                          std::to_string(origin_port_) + R"(" } ] })")});
  }

  // Clients fetch random objects (some stop early) until `stop`.
  void Load(const std::vector<Object>& objects, std::uint64_t seed, std::atomic<bool>& stop) {
    std::vector<std::thread> clients;
    for (int c = 0; c < 8; ++c) {
      clients.emplace_back([&, c] {
        std::mt19937_64 rng(seed + static_cast<std::uint64_t>(c));
        while (!stop) {
          const Object& o = objects[rng() % objects.size()];
          const std::size_t stop_after = rng() % 4 == 0 ? rng() % (o.size + 1) + 1 : SIZE_MAX;
          const Fetched f = Get(o.target(), {}, stop_after);
          // Whatever arrives while the daemon lives must be the origin's bytes.
          if (f.status == 200) {
            EXPECT_TRUE(OriginServer::MatchesOrigin(o.path, 0, f.body.data(), f.body.size()))
                << o.path;
            if (f.transfer_ok) {
              EXPECT_EQ(f.body.size(), o.size) << o.path << " looked complete";
            }
          }
        }
      });
    }
    for (auto& t : clients) t.join();
  }
};

TEST_F(CrashTest, KilledAtRandomMomentsUnderLoadItNeverServesADamagedEntry) {
  const std::uint64_t seed = CrashSeed();
  std::printf("crash test seed %llu (FANOUT_CRASH_SEED=%llu replays it)\n",
              static_cast<unsigned long long>(seed), static_cast<unsigned long long>(seed));
  SCOPED_TRACE("FANOUT_CRASH_SEED=" + std::to_string(seed));
  std::mt19937_64 rng(seed);
  std::vector<Object> objects;
  for (int round = 0; round < 5; ++round) {
    const std::vector<Object> fresh = Objects(rng, round);
    objects.insert(objects.end(), fresh.begin(), fresh.end());
    StartCheckpointing();
    std::atomic<bool> stop{false};
    std::thread load([&] { Load(fresh, seed + 1000 * round, stop); });
    std::this_thread::sleep_for(std::chrono::milliseconds(50 + rng() % 700));  // the moment
    fanoutd_.Kill();
    stop = true;
    load.join();
    // After the restart: every object whole, whether stored before or not.
    StartCheckpointing();
    EXPECT_EQ(fanoutd_.log().find("discarding damaged"), std::string::npos)
        << "a kill must never damage a stored entry:\n" << fanoutd_.log();
    EXPECT_EQ(fanoutd_.log().find("discarding partial body"), std::string::npos)
        << "a kill must never damage a checkpointed body:\n" << fanoutd_.log();
    int hits = 0;
    for (const Object& o : objects) {
      const Fetched f = Get(o.target());
      ASSERT_EQ(f.status, 200) << o.path;
      EXPECT_TRUE(f.transfer_ok) << o.path;
      EXPECT_EQ(f.body.size(), o.size) << o.path << " (" << f.x_cache << ")";
      EXPECT_TRUE(OriginServer::MatchesOrigin(o.path, 0, f.body.data(), f.body.size()))
          << o.path << " (" << f.x_cache << ")";
      hits += f.x_cache == "HIT";
    }
    int resumed = 0;
    for (std::size_t at = 0; (at = fanoutd_.log().find("an earlier run kept", at)) != std::string::npos;
         ++at) {
      ++resumed;
    }
    std::printf("round %d: %d of %zu objects were stored before the kill, %d went on from a "
                "partial body\n", round, hits, objects.size(), resumed);
    fanoutd_.Kill();
  }
}

}  // namespace
}  // namespace fanout
