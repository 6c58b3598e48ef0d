#!/usr/bin/env bash
# `make test`: C unit tests, a short fuzz run, lint, every busted spec (Lua
# units and integration specs against the ASan/UBSan build), then the
# in-process specs `torii test` runs. Each stage prints its own
# "N passed, N failed"; the last line is the total.
set -u
cd "$(dirname "$0")/.."
total_pass=0 total_fail=0
log_dir=build/test-logs
mkdir -p "$log_dir"

add_counts() { # stage name, its output file
  local line p f
  line=$(grep -E '[0-9]+ passed, [0-9]+ failed' "$2" | tail -1)
  if [ -z "$line" ]; then
    echo "$1: no summary (stage crashed)"; total_fail=$((total_fail + 1)); return
  fi
  p=$(echo "$line" | sed -E 's/(^|.*[^0-9])([0-9]+) passed, ([0-9]+) failed.*/\2/')
  f=$(echo "$line" | sed -E 's/(^|.*[^0-9])([0-9]+) passed, ([0-9]+) failed.*/\3/')
  total_pass=$((total_pass + p)); total_fail=$((total_fail + f))
}

echo "== unit"
# Only binaries whose source still exists (a removed test leaves its binary).
units=() fuzzers=()
for src in t/unit/test_*.c; do units+=("build/unit/$(basename "$src" .c)"); done
for src in t/fuzz/fuzz_*.c; do fuzzers+=("build/fuzz/$(basename "$src" .c)"); done
bash t/run-unit.sh "${units[@]}" 2>&1 | tee "$log_dir/unit.log"
add_counts unit "$log_dir/unit.log"

echo "== fuzz (${FUZZ_SECONDS:-20}s per target)"
bash t/run-fuzz.sh "${fuzzers[@]}" 2>&1 | tee "$log_dir/fuzz.log"
add_counts fuzz "$log_dir/fuzz.log"

echo "== lint"
bash t/run-lint.sh 2>&1 | tee "$log_dir/lint.log"
add_counts lint "$log_dir/lint.log"

add_busted() { # stage name, its output file, its exit status
  local line s f e
  line=$(grep -E '[0-9]+ successes? / [0-9]+ failures? / [0-9]+ errors?' "$2" | tail -1)
  if [ -z "$line" ]; then
    echo "$1: no summary (busted crashed)"; total_fail=$((total_fail + 1)); return
  fi
  s=$(echo "$line" | sed -E 's/^[^0-9]*([0-9]+) success.*/\1/')
  f=$(echo "$line" | sed -E 's/.* ([0-9]+) failures? .*/\1/')
  e=$(echo "$line" | sed -E 's/.* ([0-9]+) errors? .*/\1/')
  # Failing specs make busted exit non-zero; a clean run that still does
  # (a sanitizer report at exit) counts as one failure more.
  if [ "$3" != 0 ] && [ $((f + e)) = 0 ]; then
    echo "$1: exit status $3 after a clean run (see $2)"; e=1
  fi
  echo "$1: $s passed, $((f + e)) failed"
  total_pass=$((total_pass + s)); total_fail=$((total_fail + f + e))
}

echo "== specs"
bash t/run-specs.sh 2>&1 | tee "$log_dir/specs.log"
add_busted specs "$log_dir/specs.log" 0

# The proxy's own specs once more with io_uring off: the plain-call path
# of the socket rounds (event/ioq.h) must behave the same.
echo "== proxy specs with plain socket calls"
TORII_TEST_IO_URING=0 bash t/run-specs.sh t/integration/{http,streaming,framing,upstream,retry}_spec.lua 2>&1 |
  tee "$log_dir/specs-plain.log"
add_busted "proxy specs, plain calls" "$log_dir/specs-plain.log" 0

echo "== in-process specs (torii test)"
bash t/run-inprocess.sh 2>&1 | tee "$log_dir/inprocess.log"
add_busted "in-process specs" "$log_dir/inprocess.log" "${PIPESTATUS[0]}"

echo "$total_pass passed, $total_fail failed"
[ "$total_fail" = 0 ]
