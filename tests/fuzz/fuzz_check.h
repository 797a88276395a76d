// FUZZ_CHECK: an invariant of a parser, checked on every fuzz input. A
// failure prints the condition and aborts, which libFuzzer reports as a
// crash and saves the input for (scripts/fuzz.sh prints how to rerun it).

#ifndef FANOUT_TESTS_FUZZ_FUZZ_CHECK_H_
#define FANOUT_TESTS_FUZZ_FUZZ_CHECK_H_

#include <cstdio>
#include <cstdlib>

#define FUZZ_CHECK(condition)                                                        \
  do {                                                                               \
    if (!(condition)) {                                                              \
      std::fprintf(stderr, "%s:%d: invariant failed: %s\n", __FILE__, __LINE__,      \
                   #condition);                                                      \
      std::abort();                                                                  \
    }                                                                                \
  } while (0)

#endif  // FANOUT_TESTS_FUZZ_FUZZ_CHECK_H_
