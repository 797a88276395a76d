#!/usr/bin/env bash
# Builds the libFuzzer targets (tests/fuzz/*_fuzzer.cc) with clang, ASan and
# UBSan in build-fuzz/, and runs each for a while on a copy of its seed
# corpus (tests/fuzz/corpus/<name>/; the committed corpus is never grown).
#   scripts/fuzz.sh [seconds-per-target]       default 30
#   FUZZ_TARGETS="http_date config" scripts/fuzz.sh 600   some targets only
# Fails if any target crashes, leaks, hangs or breaks an invariant, and
# prints the saved input and the command that reproduces it.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-30}
[[ "$seconds" =~ ^[0-9]+$ ]] || { echo "usage: $0 [seconds-per-target]" >&2; exit 2; }

scripts/install-deps.sh clang libclang-rt-14-dev

dir=build-fuzz
echo "=== $dir: configure and build (clang, libFuzzer, ASan + UBSan) ==="
mkdir -p "$dir"
cmake -S . -B "$dir" -G Ninja -DCMAKE_CXX_COMPILER=clang++ -DFANOUT_FUZZ=ON \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo >"$dir.configure.log" 2>&1 || {
  cat "$dir.configure.log"; exit 1; }
cmake --build "$dir" -j "$(nproc)"

targets=${FUZZ_TARGETS:-$(cd tests/fuzz && ls ./*_fuzzer.cc | sed 's|^\./||; s|_fuzzer\.cc$||')}
failed=()
for name in $targets; do
  binary=$PWD/$dir/${name}_fuzzer
  run=$PWD/$dir/runs/$name
  rm -rf "$run"
  mkdir -p "$run/corpus" "$run/artifacts"
  cp tests/fuzz/corpus/"$name"/* "$run/corpus/"
  dict=()
  [ -f "tests/fuzz/$name.dict" ] && dict=(-dict="$PWD/tests/fuzz/$name.dict")
  echo "=== fuzz $name: ${seconds}s ==="
  # -timeout: an input taking 10 s is a hang; -rss_limit_mb: 2 GB is a leak.
  if "$binary" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
      -print_final_stats=1 -artifact_prefix="$run/artifacts/" "${dict[@]}" \
      "$run/corpus" >"$run/log" 2>&1; then
    # The last status line: runs, coverage, corpus size.
    grep -E '^#[0-9]+.*(DONE|pulse|NEW|REDUCE)' "$run/log" | tail -1 || true
    grep -E '^stat::number_of_executed_units' "$run/log" || true
  else
    failed+=("$name")
    tail -40 "$run/log"
    for input in "$run"/artifacts/*; do
      [ -e "$input" ] || continue
      echo "fuzz $name FAILED on input: $input"
      echo "  reproduce: $binary $input"
    done
  fi
done

if [ ${#failed[@]} -gt 0 ]; then
  echo "=== fuzzing FAILED: ${failed[*]} (logs in $dir/runs/<name>/log) ===" >&2
  exit 1
fi
echo "=== fuzzing passed:" $targets "==="
