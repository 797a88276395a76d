#!/usr/bin/env bash
# Prints the README's shell blocks marked with a tag: a fenced ```sh block
# right after the line "<!-- readme-test: TAG -->". Fails (naming the line)
# if any ```sh block has no such mark, so that no command the README shows
# escapes the tests.
#   tests/readme/readme_blocks.sh README.md TAG      the blocks, in order
#   tests/readme/readme_blocks.sh README.md --check  only the check
set -euo pipefail
readme=$1 want=$2
blocks=$(awk -v want="$want" '
  /^<!-- readme-test: [a-z]+ -->$/ { tag = $3; marked = NR; next }
  /^```sh$/ {
    if (marked != NR - 1) {
      printf "README line %d: a ```sh block without a readme-test mark\n", NR > "/dev/stderr"
      bad = 1
    }
    inblock = 1; current = (marked == NR - 1) ? tag : ""; next
  }
  /^```$/ && inblock { inblock = 0; if (current == want) print ""; next }
  inblock && current == want { print }
  END { exit bad }
' "$readme")
[ "$want" = --check ] || printf '%s\n' "$blocks"
