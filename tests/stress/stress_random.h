// StressRng: the stress test's deterministic randomness.
//
// Every random choice of a run derives from the run's seed and from where
// it is made (a crowd's number, a client's number, a URL and the ordinal of
// its request at the origin), never from timing. Replaying a seed makes the
// same URLs, crowds, behaviours and faults; only thread scheduling differs.
//
// Thread-safety: none; each thread owns its generators (Derive one).

#ifndef FANOUT_TESTS_STRESS_STRESS_RANDOM_H_
#define FANOUT_TESTS_STRESS_STRESS_RANDOM_H_

#include <cstdint>
#include <initializer_list>
#include <string_view>

namespace fanout::stress {

class StressRng {
 public:
  explicit StressRng(std::uint64_t seed) : state_(seed) {}

  // A generator for a named place under this seed: the same (seed, labels)
  // always gives the same sequence, whatever else the run did before.
  static StressRng Derive(std::uint64_t seed, std::initializer_list<std::uint64_t> labels) {
    std::uint64_t s = seed;
    for (std::uint64_t label : labels) s = Mix(s ^ Mix(label + 0x632be59bd9b4e019ull));
    return StressRng(s);
  }

  static std::uint64_t HashText(std::string_view text) {
    std::uint64_t h = 1469598103934665603ull;  // FNV-1a
    for (char c : text) h = (h ^ static_cast<unsigned char>(c)) * 1099511628211ull;
    return h;
  }

  std::uint64_t Next() {
    state_ += 0x9e3779b97f4a7c15ull;  // SplitMix64
    return Mix(state_);
  }

  // Uniform in [lo, hi] (inclusive); lo when hi < lo.
  std::uint64_t Between(std::uint64_t lo, std::uint64_t hi) {
    if (hi <= lo) return lo;
    const std::uint64_t span = hi - lo + 1;
    return span == 0 ? Next() : lo + Next() % span;
  }

  // True with probability p.
  bool Chance(double p) { return static_cast<double>(Next() >> 11) * 0x1.0p-53 < p; }

 private:
  static std::uint64_t Mix(std::uint64_t z) {
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
  }

  std::uint64_t state_;
};

}  // namespace fanout::stress

#endif  // FANOUT_TESTS_STRESS_STRESS_RANDOM_H_
