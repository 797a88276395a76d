#include "tests/stress/stress_scenarios.h"

#include <sys/statvfs.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <latch>
#include <mutex>
#include <thread>
#include <vector>

#include "tests/stress/stress_client.h"
#include "tests/stress/stress_random.h"

namespace fanout::stress {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

constexpr std::uint64_t kKiB = 1024;
constexpr std::uint64_t kMiB = 1024 * 1024;

// Labels that keep the random streams of a run's parts apart.
constexpr std::uint64_t kCrowdStream = 1;
constexpr std::uint64_t kRoundStream = 2;

// The object of the five-clients repro (the size that crashed fanoutd).
constexpr std::uint64_t kFiveClientsSize = 2'759'320;
constexpr int kFiveClients = 5;
// The cancelling-joiners repro.
constexpr std::uint64_t kBystanderSize = 16 * kMiB;
constexpr std::uint64_t kJoinedSize = 4 * kMiB;
constexpr int kJoiners = 12;
// A probe's object: large enough to go through the body sender (256 KiB).
constexpr std::uint64_t kProbeSize = 300'000;
// Clients of one crowd, at most; crowds at once, at most.
constexpr int kMaxCrowd = 50;
constexpr int kMaxCrowds = 6;
// Clients per disk-full round, and how long the disk may take to be freed
// once nobody holds the failed stream (its file goes with its last reader).
constexpr int kDiskFullClients = 8;  // per object
constexpr int kDiskFullHits = 2;     // of a stored entry, during the round
constexpr auto kDiskFreedLimit = std::chrono::seconds(15);
// A disk-full run refuses a cache directory with more free space than this:
// filling it would take too long and prove nothing.
constexpr std::uint64_t kMaxDiskFullFree = 512 * kMiB;

ClientEnv ClientEnvFor(ScenarioEnv& env, std::string label) {
  ClientEnv c;
  c.port = env.daemon->port();
  c.run = env.run;
  c.origin = env.origin;
  c.read_timeout = env.settings.client_read_timeout;
  c.daemon_client_timeout = env.settings.daemon_client_timeout;
  c.label = std::move(label);
  c.proxy_authority = "127.0.0.1:" + std::to_string(env.daemon->origin_port());
  return c;
}

UrlFacts DefineUrl(ScenarioEnv& env, const std::string& path, std::uint64_t size, bool chunked,
                   bool faults_allowed = true, bool no_store = false) {
  env.origin->Define(path, OriginObject{size, chunked, faults_allowed, no_store, std::nullopt});
  // A no-store response is fetched for every request that does not join
  // it while it runs: the fan-out rule does not apply.
  if (!no_store) env.ledger->AddUrl(path);
  ++env.run->urls;
  return UrlFacts{path, size, chunked, StressOrigin::ETagOf(path, size), no_store};
}

// Sizes that reach every path of fanoutd: empty, coalesced with the head
// (< 15 KiB), sent by the connection's thread (< 256 KiB), by the body
// sender, and large.
std::uint64_t RandomSize(StressRng& rng, std::uint64_t max_size) {
  const std::uint64_t pick = rng.Between(0, 99);
  std::uint64_t size;
  if (pick < 5) size = 0;
  else if (pick < 20) size = rng.Between(1, 16 * kKiB);
  else if (pick < 40) size = rng.Between(16 * kKiB, 256 * kKiB);
  else if (pick < 75) size = rng.Between(256 * kKiB, 4 * kMiB);
  else if (pick < 95) size = rng.Between(4 * kMiB, 16 * kMiB);
  else size = rng.Between(16 * kMiB, std::max(max_size, 16 * kMiB));
  return std::min(size, max_size);
}

Behaviour RandomBehaviour(StressRng& rng) {
  // Weights: plain GETs, ranges and early closes most, since they cross
  // the fetch's frontier in the most ways.
  static constexpr std::pair<Behaviour, int> kWeights[] = {
      {Behaviour::kFullGet, 3},       {Behaviour::kRange, 3},        {Behaviour::kHead, 1},
      {Behaviour::kKeepAlive, 2},     {Behaviour::kPipeline, 2},     {Behaviour::kSlowReader, 1},
      {Behaviour::kStopAndResume, 1}, {Behaviour::kCloseMidBody, 3}, {Behaviour::kConditional, 1},
      {Behaviour::kStallPastTimeout, 1},
  };
  int total = 0;
  for (const auto& [b, w] : kWeights) total += w;
  int pick = static_cast<int>(rng.Between(0, static_cast<std::uint64_t>(total - 1)));
  for (const auto& [b, w] : kWeights) {
    if (pick < w) return b;
    pick -= w;
  }
  return Behaviour::kFullGet;
}

// Joins every thread it holds when destroyed.
class ThreadGroup {
 public:
  ~ThreadGroup() { JoinAll(); }
  template <typename F>
  void Start(F f) {
    threads_.emplace_back(std::move(f));
  }
  void JoinAll() {
    for (auto& t : threads_) t.join();
    threads_.clear();
  }

 private:
  std::vector<std::thread> threads_;
};

bool CheckFanout(ScenarioEnv& env, const std::string& path, const std::string& when) {
  const std::string problem = env.ledger->Check(path);
  if (problem.empty()) return true;
  env.run->Fail(path, when, problem);
  return false;
}

// Fails the run if fanoutd is gone.
bool CheckAlive(ScenarioEnv& env, const std::string& when) {
  if (env.daemon->Alive()) return true;
  env.run->Fail("(fanoutd)", when, "fanoutd " + env.daemon->DeathReason());
  return false;
}

// ---- random ----

// Limits the clients connected at once, across crowds.
class ClientSlots {
 public:
  explicit ClientSlots(int n) : free_(n) {}
  // Waits for a slot; false if the run stops first.
  bool Acquire(const RunContext& run) {
    std::unique_lock<std::mutex> lock(mu_);
    while (free_ == 0) {
      if (run.stopping()) return false;
      cv_.wait_for(lock, milliseconds(100));  // re-checks the run's stop flag
    }
    --free_;
    return true;
  }
  void Release() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      ++free_;
    }
    cv_.notify_one();
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  int free_;  // guarded by mu_
};

void RunCrowd(ScenarioEnv& env, ClientSlots& slots, int index, int clients) {
  StressRng rng = StressRng::Derive(env.run->seed(), {kCrowdStream, static_cast<std::uint64_t>(index)});
  const std::uint64_t size = RandomSize(rng, env.settings.max_size);
  const bool chunked = rng.Chance(0.3);
  // Now and then a response fanoutd must not keep: its fetch is paced by
  // its slowest reader, gives back disk behind them, and is not joined.
  const bool no_store = rng.Chance(0.1);
  const std::string path = "/c" + std::to_string(index) + "-" + std::to_string(size) +
                           (chunked ? "-chunked" : "") + (no_store ? "-no-store" : "") + ".bin";
  const UrlFacts url = DefineUrl(env, path, size, chunked, true, no_store);
  // Arrivals: all at once, or spread over up to 3 s (most while the fetch runs).
  static constexpr int kSpreadsMs[] = {0, 20, 200, 1000, 3000};
  const int spread_ms = kSpreadsMs[rng.Between(0, std::size(kSpreadsMs) - 1)];
  const auto t0 = Clock::now();
  ThreadGroup threads;
  for (int i = 0; i < clients; ++i) {
    const auto start = t0 + milliseconds(rng.Between(0, static_cast<std::uint64_t>(spread_ms)));
    const Behaviour behaviour = RandomBehaviour(rng);
    const StressRng client_rng = StressRng::Derive(
        env.run->seed(), {kCrowdStream, static_cast<std::uint64_t>(index), static_cast<std::uint64_t>(i) + 1});
    threads.Start([&env, &slots, &url, start, behaviour, client_rng, index, i] {
      std::this_thread::sleep_until(start);  // the arrival time is the behaviour
      if (env.run->stopping() || !slots.Acquire(*env.run)) return;
      const ClientEnv client =
          ClientEnvFor(env, "crowd " + std::to_string(index) + " client " + std::to_string(i));
      RunClient(client, url, behaviour, client_rng);
      slots.Release();
    });
  }
  // Purges while the crowd runs: one or two in a quarter of the crowds
  // (now and then of everything, which hits the other crowds too).
  if (rng.Chance(0.25)) {
    const int purges = static_cast<int>(rng.Between(1, 2));
    for (int p = 0; p < purges; ++p) {
      const auto at = t0 + milliseconds(rng.Between(0, static_cast<std::uint64_t>(spread_ms) + 500));
      const bool everything = rng.Chance(0.1);
      threads.Start([&env, &url, at, index, everything] {
        std::this_thread::sleep_until(at);
        if (env.run->stopping()) return;
        const ClientEnv admin = ClientEnvFor(env, "crowd " + std::to_string(index));
        if (everything) {
          env.ledger->AddPurgeAll();
          PurgeAllThroughAdmin(admin, env.daemon->admin_port());
        } else {
          env.ledger->AddPurge(url.path);
          PurgeThroughAdmin(admin, env.daemon->admin_port(), url.path);
        }
      });
    }
  }
  threads.JoinAll();
  if (env.run->stopping()) return;
  if (!no_store && !CheckFanout(env, path, "crowd " + std::to_string(index) + " (fan-out check)")) {
    return;
  }
  // Done with it: purged so that the cache holds only the crowds running.
  env.ledger->AddPurge(path);
  PurgeThroughAdmin(ClientEnvFor(env, "crowd " + std::to_string(index) + " cleanup"),
                    env.daemon->admin_port(), path);
}

}  // namespace

bool CheckDaemonServes(ScenarioEnv& env, const std::string& label) {
  if (!CheckAlive(env, label)) return false;
  static std::atomic<int> probes{0};
  const std::string path = "/probe-" + std::to_string(probes++) + ".bin";
  const UrlFacts url = DefineUrl(env, path, kProbeSize, false, /*faults_allowed=*/false);
  bool whole = false;
  const bool ok = GetAndCloseAt(ClientEnvFor(env, label + " probe"), url, kProbeSize, false, &whole);
  if (!CheckAlive(env, label + " probe")) return false;
  if (ok && !whole) env.run->Fail(path, label + " probe", "a fresh GET did not come whole");
  return ok && whole && CheckFanout(env, path, label + " probe");
}

void RunRandom(ScenarioEnv& env) {
  const auto deadline = Clock::now() + env.settings.duration;
  ClientSlots slots(env.settings.max_clients);
  std::mutex mu;
  std::condition_variable crowd_done;
  int crowds_running = 0;   // guarded by mu
  int clients_running = 0;  // guarded by mu; clients of the crowds running
  ThreadGroup crowds;
  StressRng rng = StressRng::Derive(env.run->seed(), {kCrowdStream});
  for (int index = 0; Clock::now() < deadline && !env.run->stopping(); ++index) {
    const int clients = static_cast<int>(rng.Between(1, kMaxCrowd));
    {
      // A new crowd once its clients fit beside the others'.
      std::unique_lock<std::mutex> lock(mu);
      const bool room = crowd_done.wait_until(lock, deadline, [&] {
        return env.run->stopping() ||
               (crowds_running < kMaxCrowds &&
                clients_running + clients <= env.settings.max_clients);
      });
      if (!room || env.run->stopping()) break;
      ++crowds_running;
      clients_running += clients;
    }
    crowds.Start([&, index, clients] {
      RunCrowd(env, slots, index, clients);
      {
        std::lock_guard<std::mutex> lock(mu);
        --crowds_running;
        clients_running -= clients;
      }
      crowd_done.notify_all();
    });
  }
  crowds.JoinAll();
  if (!env.run->stopping()) CheckAlive(env, "random: after the last crowd");
}

// ---- five-clients ----

void RunFiveClients(ScenarioEnv& env) {
  for (int round = 0; round < env.settings.rounds && !env.run->stopping(); ++round) {
    const std::string label = "round " + std::to_string(round);
    const UrlFacts url =
        DefineUrl(env, "/r" + std::to_string(round) + ".bin", kFiveClientsSize, false);
    std::latch start(kFiveClients);
    ThreadGroup clients;
    for (int i = 0; i < kFiveClients; ++i) {
      clients.Start([&env, &url, &start, &label, i] {
        start.arrive_and_wait();  // all five at once
        GetAndCloseAt(ClientEnvFor(env, label + " client " + std::to_string(i)), url,
                      kFiveClientsSize, false);
      });
    }
    clients.JoinAll();
    if (!CheckAlive(env, label) || !CheckFanout(env, url.path, label)) return;
    if (!CheckDaemonServes(env, label)) return;
  }
}

// ---- cancelling-joiners ----

void RunCancellingJoiners(ScenarioEnv& env) {
  for (int round = 0; round < env.settings.rounds && !env.run->stopping(); ++round) {
    const std::string label = "round " + std::to_string(round);
    StressRng rng = StressRng::Derive(env.run->seed(), {kRoundStream, static_cast<std::uint64_t>(round)});
    const UrlFacts bystander =
        DefineUrl(env, "/b" + std::to_string(round) + ".bin", kBystanderSize, false);
    const UrlFacts joined =
        DefineUrl(env, "/j" + std::to_string(round) + ".bin", kJoinedSize, false);
    std::latch start(kJoiners + 1);
    ThreadGroup clients;
    clients.Start([&env, &bystander, &start, &label] {
      start.arrive_and_wait();
      GetAndCloseAt(ClientEnvFor(env, label + " bystander"), bystander, kBystanderSize, false);
    });
    for (int i = 0; i < kJoiners; ++i) {
      const std::uint64_t close_at = rng.Between(0, kJoinedSize - 1);
      const bool reset = rng.Chance(0.5);
      clients.Start([&env, &joined, &start, &label, i, close_at, reset] {
        start.arrive_and_wait();
        GetAndCloseAt(ClientEnvFor(env, label + " joiner " + std::to_string(i)), joined,
                      close_at, reset);
      });
    }
    clients.JoinAll();
    if (!CheckAlive(env, label) || !CheckFanout(env, bystander.path, label) ||
        !CheckFanout(env, joined.path, label)) {
      return;
    }
    if (!CheckDaemonServes(env, label)) return;
  }
}

// ---- disk-full ----

namespace {

std::uint64_t FreeBytes(const std::string& dir) {
  struct statvfs s {};
  if (::statvfs(dir.c_str(), &s) != 0) return 0;
  return static_cast<std::uint64_t>(s.f_bavail) * s.f_frsize;
}

}  // namespace

// How a disk-full round fills the cache's file system.
enum class DiskRound {
  kLarger,     // one object larger than the free space: the fetch fails mid-body
  kExactFit,   // one object that takes the last free bytes: the body fits,
               // its metadata file does not
  kTwoAtOnce,  // two objects, each fitting alone, fetched together
  kFullAlready,  // a stored filler leaves a few KiB: the fetch fails at its
                 // first write, or when its file is created
};
constexpr int kDiskRoundKinds = 4;

void RunDiskFullRound(ScenarioEnv& env, int round, const UrlFacts& stored) {
  const std::string label = "round " + std::to_string(round);
  StressRng rng = StressRng::Derive(env.run->seed(), {kRoundStream, static_cast<std::uint64_t>(round)});
  const auto kind = static_cast<DiskRound>(round % kDiskRoundKinds);
  if (kind == DiskRound::kFullAlready) {
    // Stored whole (its metadata still fits), leaving next to nothing.
    const std::uint64_t filler_size = FreeBytes(env.daemon->cache_dir()) - 3 * 4096;
    const UrlFacts filler = DefineUrl(env, "/filler-" + std::to_string(round) + ".bin",
                                      filler_size, false, false);
    if (!GetAndCloseAt(ClientEnvFor(env, label + " filler"), filler, filler_size, false)) return;
  }
  const std::uint64_t free = FreeBytes(env.daemon->cache_dir());
  std::vector<std::uint64_t> sizes;
  switch (kind) {
    case DiskRound::kLarger: sizes = {free + 4 * kMiB}; break;
    case DiskRound::kExactFit: sizes = {std::max(free - rng.Between(0, 4095), kMiB)}; break;
    case DiskRound::kTwoAtOnce: sizes = {free * 6 / 10, free * 6 / 10}; break;
    case DiskRound::kFullAlready: sizes = {rng.Between(kMiB, 4 * kMiB)}; break;
  }
  std::vector<UrlFacts> urls;
  for (std::size_t u = 0; u < sizes.size(); ++u) {
    const std::string path = "/d" + std::to_string(round) + "-" + std::to_string(u) + ".bin";
    const bool chunked = rng.Chance(0.5);
    // Not in the fan-out ledger: a full disk fails fetches the origin cannot count.
    env.origin->Define(path, OriginObject{sizes[u], chunked, false, false, std::nullopt});
    ++env.run->urls;
    urls.push_back(UrlFacts{path, sizes[u], chunked, StressOrigin::ETagOf(path, sizes[u]), false});
  }
  const int clients = kDiskFullClients * static_cast<int>(urls.size());
  std::latch start(clients + kDiskFullHits);
  ThreadGroup threads;
  for (int i = 0; i < clients; ++i) {
    const UrlFacts* url = &urls[static_cast<std::size_t>(i) % urls.size()];
    const Behaviour behaviour = RandomBehaviour(rng);
    const StressRng client_rng = StressRng::Derive(
        env.run->seed(), {kRoundStream, static_cast<std::uint64_t>(round), static_cast<std::uint64_t>(i) + 1});
    threads.Start([&env, &start, &label, url, behaviour, client_rng, i] {
      // Judged like any client: a full disk must not cut anyone off (the
      // bytes the disk refuses reach the readers from memory).
      const ClientEnv client = ClientEnvFor(env, label + " client " + std::to_string(i));
      start.arrive_and_wait();
      RunClient(client, *url, behaviour, client_rng);
    });
  }
  // A stored entry is served whole while the disk is full.
  for (int i = 0; i < kDiskFullHits; ++i) {
    threads.Start([&env, &start, &label, &stored, i] {
      start.arrive_and_wait();
      GetAndCloseAt(ClientEnvFor(env, label + " hit " + std::to_string(i)), stored, stored.size,
                    false);
    });
  }
  threads.JoinAll();
}

void RunDiskFull(ScenarioEnv& env) {
  const std::string dir = env.daemon->cache_dir();
  const std::uint64_t initially_free = FreeBytes(dir);
  if (initially_free > kMaxDiskFullFree) {
    env.run->Fail(dir, "disk-full setup",
                  "the cache directory has " + std::to_string(initially_free >> 20) +
                      " MiB free; disk-full needs a small file system (--cache-dir on a "
                      "tmpfs of a few dozen MiB, see tests/stress/disk_full.sh)");
    return;
  }
  const UrlFacts stored = DefineUrl(env, "/disk-full-hit.bin", kProbeSize, false, false);
  for (int round = 0; round < env.settings.rounds && !env.run->stopping(); ++round) {
    const std::string label = "round " + std::to_string(round);
    // Stored before the disk fills (the purge of the last round took it).
    if (!GetAndCloseAt(ClientEnvFor(env, label + " store"), stored, stored.size, false)) return;
    RunDiskFullRound(env, round, stored);
    if (!CheckAlive(env, label)) return;
    // Everything goes; a failed stream's file goes with its last reader.
    // Wait for the space to come back before the next round measures it.
    env.ledger->AddPurgeAll();
    if (!PurgeAllThroughAdmin(ClientEnvFor(env, label), env.daemon->admin_port())) return;
    const auto limit = Clock::now() + kDiskFreedLimit;
    while (FreeBytes(dir) + 2 * kMiB < initially_free && Clock::now() < limit) {
      std::this_thread::sleep_for(milliseconds(20));
    }
    if (FreeBytes(dir) + 2 * kMiB < initially_free) {
      env.run->Fail(dir, label, "the cache's file system stayed full " +
                                    std::to_string(kDiskFreedLimit.count()) +
                                    " s after every client left and everything was purged");
      return;
    }
    if (!CheckDaemonServes(env, label)) return;
  }
}

}  // namespace fanout::stress
