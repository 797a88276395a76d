// cache_startup_bench: how long fanoutd's cache takes to open with many
// entries on disk, and how long a hit takes to look up and open.
//
//   cache_startup_bench --dir /tmp/c --entries 100000 [--origin http://127.0.0.1:1]
//
// Writes N entries (metadata as fanoutd writes it, 4 KiB bodies) under
// --dir unless they are there already, then times Cache::Open() (a cold
// page cache is not forced: run `echo 3 > /proc/sys/vm/drop_caches` first
// for that), then times Acquire() of random keys. Prints one JSON object.
// The keys are <origin>/obj/<i>, so a fanoutd started with --cache-dir on
// the same directory and --upstream <origin> serves them as hits.

#include <CLI/CLI.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "core/cache.h"
#include "core/entry_meta.h"

namespace {

using Clock = std::chrono::steady_clock;
namespace fs = std::filesystem;

void Generate(const std::string& dir, int n, const std::string& origin) {
  const std::string body(4096, 'x');
  const auto now = std::chrono::system_clock::now();
  for (int i = 0; i < n; ++i) {
    fanout::EntryMeta meta;
    meta.key = origin + "/obj/" + std::to_string(i);
    const std::string h = fanout::Sha256Hex(meta.key);
    const std::string shard = dir + "/entries/" + h.substr(0, 2);
    if (i < 256 || !fs::exists(shard)) fs::create_directories(shard);
    meta.head.status = 200;
    meta.head.requested_at = meta.head.received_at = now;
    meta.head.headers = {{"Cache-Control", "max-age=86400"},
                         {"ETag", "\"" + std::to_string(i) + "\""},
                         {"Content-Type", "application/octet-stream"}};
    meta.head.content_length = body.size();
    meta.body_file = h + ".bench.body";
    meta.body_length = body.size();
    std::ofstream(shard + "/" + meta.body_file, std::ios::binary) << body;
    std::ofstream(shard + "/" + h + ".meta", std::ios::binary) << fanout::EncodeEntryMeta(meta);
  }
}

double Percentile(std::vector<double> v, double p) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[std::min(v.size() - 1, static_cast<std::size_t>(p * (v.size() - 1)))];
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"cache_startup_bench"};
  std::string dir, origin = "http://127.0.0.1:1";
  int entries = 100000, lookups = 20000;
  app.add_option("--dir", dir)->required();
  app.add_option("--entries", entries);
  app.add_option("--lookups", lookups);
  app.add_option("--origin", origin);
  CLI11_PARSE(app, argc, argv);

  const auto g0 = Clock::now();
  bool generated = false;
  if (!fs::exists(dir + "/entries")) {
    Generate(dir, entries, origin);
    generated = true;
  }
  const double generate_s = std::chrono::duration<double>(Clock::now() - g0).count();

  fanout::Cache::Options options;
  options.dir = dir;
  options.max_size = 0;
  std::unique_ptr<fanout::Cache> cache;
  const auto t0 = Clock::now();
  fanout::Status st = fanout::Cache::Open(options, &cache);
  const double open_s = std::chrono::duration<double>(Clock::now() - t0).count();
  if (!st.ok()) {
    std::fprintf(stderr, "open failed: %s\n", st.ToString().c_str());
    return 1;
  }
  std::mt19937 rng(42);
  std::uniform_int_distribution<int> pick(0, entries - 1);
  std::vector<double> first_us, again_us;
  auto fresh = [](const fanout::ResponseHead&, const fanout::HeaderList&) {
    return fanout::Reuse::kFresh;
  };
  for (int pass = 0; pass < 2; ++pass) {
    std::mt19937 r(7);
    for (int i = 0; i < lookups; ++i) {
      const std::string key = origin + "/obj/" + std::to_string(pick(r));
      const auto a = Clock::now();
      auto acquired = cache->Acquire(key, fresh);
      const double us = std::chrono::duration<double, std::micro>(Clock::now() - a).count();
      if (acquired.lookup != fanout::Cache::Lookup::kHit) {
        std::fprintf(stderr, "not a hit: %s\n", key.c_str());
        return 1;
      }
      (pass == 0 ? first_us : again_us).push_back(us);
    }
  }
  (void)rng;
  std::printf("{\"entries\": %zu, \"generated\": %s, \"generate_s\": %.2f, \"open_s\": %.3f, "
              "\"first_hit_us_p50\": %.1f, \"first_hit_us_p99\": %.1f, "
              "\"hit_us_p50\": %.1f, \"hit_us_p99\": %.1f}\n",
              cache->stored_count(), generated ? "true" : "false", generate_s, open_s,
              Percentile(first_us, 0.5), Percentile(first_us, 0.99), Percentile(again_us, 0.5),
              Percentile(again_us, 0.99));
  return 0;
}
