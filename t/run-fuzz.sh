#!/usr/bin/env bash
# Run each fuzz target briefly from its seed corpus (t/fuzz/corpus). A
# finding stops the run with the crashing input saved under build/fuzz/.
set -u
cd "$(dirname "$0")/.."
seconds="${FUZZ_SECONDS:-20}"
passed=0 failed=0
for bin in "$@"; do
  # A glob over build/fuzz also catches each target's corpus and log.
  [ -f "$bin" ] && [ -x "$bin" ] || continue
  name=$(basename "$bin")
  work="build/fuzz/$name-corpus"
  seeds=t/fuzz/corpus_${name#fuzz_} # a target's own seeds, else the request seeds
  [ -d "$seeds" ] || seeds=t/fuzz/corpus
  mkdir -p "$work"
  if "$bin" -max_total_time="$seconds" -timeout=5 -rss_limit_mb=2048 -artifact_prefix="build/fuzz/$name-" \
       -print_final_stats=1 "$work" "$seeds" > "build/fuzz/$name.log" 2>&1; then
    runs=$(grep -E 'stat::number_of_executed_units' "build/fuzz/$name.log" | awk '{print $2}')
    echo "fuzz $name: ${runs:-?} inputs in ${seconds}s, no finding"
    passed=$((passed + 1))
  else
    tail -40 "build/fuzz/$name.log"
    echo "fuzz $name: FINDING (see build/fuzz/$name.log)"
    failed=$((failed + 1))
  fi
done
echo "fuzz: $passed passed, $failed failed"
[ "$failed" = 0 ]
