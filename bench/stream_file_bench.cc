// Stream-file micro-benchmark: one writer appends FANOUT_BENCH_BYTES
// (default 1 GiB) in 64 KiB chunks while 1, 64 or 1,000 readers follow it
// to the end at the frontier. Reports the writer's throughput and the readers'
// aggregate throughput, so the cost of many readers is visible.
//
//   build/stream_file_bench [--benchmark_filter=...]
//   FANOUT_BENCH_BYTES=268435456 FANOUT_BENCH_DIR=/var/tmp build/stream_file_bench

#include <benchmark/benchmark.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include "core/stream_file.h"
#include "core/wakeup_batcher.h"

namespace fanout {
namespace {

std::uint64_t BenchBytes() {
  const char* env = std::getenv("FANOUT_BENCH_BYTES");
  return env ? std::strtoull(env, nullptr, 10) : (1ull << 30);
}

std::string BenchDir() {
  const char* env = std::getenv("FANOUT_BENCH_DIR");
  return env ? env : "/tmp";
}

// Readers either copy every byte out (Read, as a client of the library
// would) or take extents (NextExtent, as fanoutd's serving path does before
// sending them from the stream file's mapping), which measures the stream file's own cost:
// locking, frontier waits and wake-ups.
enum class ReaderKind { kCopy, kExtent };

// The most an extent reader takes at once: what fanoutd hands to one
// write (ConnectionStream::kMaxBodyWrite).
constexpr std::size_t kExtentMax = 1 << 20;

void OneWriterManyReaders(benchmark::State& state, ReaderKind kind) {
  const int readers = static_cast<int>(state.range(0));
  const std::uint64_t total = BenchBytes();
  constexpr std::size_t kChunk = 64 * 1024;
  const std::string chunk(kChunk, 'x');
  WakeupBatcher batcher;
  double write_seconds = 0, read_seconds = 0;

  for (auto _ : state) {
    StreamFileOptions options;
    options.dir = BenchDir();
    options.batcher = &batcher;
    std::shared_ptr<StreamFile> stream;
    Status st = StreamFile::Create(options, &stream);
    if (!st.ok()) {
      state.SkipWithError(st.ToString().c_str());
      return;
    }
    std::atomic<std::uint64_t> bytes_read{0};
    std::vector<std::thread> threads;
    std::vector<std::unique_ptr<StreamReader>> rs;
    for (int i = 0; i < readers; ++i) rs.push_back(stream->OpenReader());
    for (int i = 0; i < readers; ++i) {
      threads.emplace_back([&, r = rs[i].get()] {
        std::vector<char> buf(kind == ReaderKind::kCopy ? kChunk : 0);
        std::uint64_t n = 0;
        for (;;) {
          if (kind == ReaderKind::kCopy) {
            auto res = r->Read(buf.data(), buf.size());
            if (!res.status.ok()) break;
            n += res.bytes;
          } else {
            auto extent = r->NextExtent(kExtentMax);
            if (!extent.status.ok()) break;
            n += extent.length;
          }
        }
        bytes_read += n;
      });
    }
    // Every reader is waiting at the frontier (offset 0) before the clock
    // starts: thread start-up is not what this measures.
    while (stream->WaitingReadersForTesting() < readers) std::this_thread::yield();
    const auto start = std::chrono::steady_clock::now();
    for (std::uint64_t written = 0; written < total; written += kChunk) {
      if (!stream->Append(chunk.data(), kChunk).ok()) std::abort();
    }
    if (!stream->Finish().ok()) std::abort();
    const auto written_at = std::chrono::steady_clock::now();
    for (auto& t : threads) t.join();
    const auto done = std::chrono::steady_clock::now();
    write_seconds = std::chrono::duration<double>(written_at - start).count();
    read_seconds = std::chrono::duration<double>(done - start).count();
    if (bytes_read != total * readers) std::abort();
    state.SetIterationTime(read_seconds);
  }
  const double mib = static_cast<double>(total) / (1 << 20);
  state.counters["write_MiB/s"] = mib / write_seconds;
  state.counters["read_agg_MiB/s"] = mib * readers / read_seconds;
  state.counters["readers"] = readers;
}

void BM_CopyReaders(benchmark::State& state) { OneWriterManyReaders(state, ReaderKind::kCopy); }
void BM_ExtentReaders(benchmark::State& state) {
  OneWriterManyReaders(state, ReaderKind::kExtent);
}

BENCHMARK(BM_CopyReaders)
    ->Arg(1)->Arg(64)->Arg(1000)
    ->Iterations(1)
    ->UseManualTime()
    ->Unit(benchmark::kMillisecond);
BENCHMARK(BM_ExtentReaders)
    ->Arg(1)->Arg(64)->Arg(1000)
    ->Iterations(1)
    ->UseManualTime()
    ->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace fanout

BENCHMARK_MAIN();
