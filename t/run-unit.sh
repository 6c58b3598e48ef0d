#!/usr/bin/env bash
# Run the C unit-test binaries given as arguments; print their totals.
set -u
passed=0 failed=0
for bin in "$@"; do
  case "$bin" in *.d) continue ;; esac
  out=$("$bin" 2>&1); rc=$?
  echo "$out" | grep -v '^  ' | grep -v 'passed, .* failed' | sed 's/^/  /' | grep . || true
  line=$(echo "$out" | grep -E '^[a-z_]+: [0-9]+ passed, [0-9]+ failed$' | tail -1)
  if [ -z "$line" ]; then
    echo "$out"; echo "$(basename "$bin"): crashed (exit $rc)"; failed=$((failed + 1)); continue
  fi
  echo "$out" | grep '^  ' || true
  echo "$line"
  p=$(echo "$line" | sed -E 's/.*: ([0-9]+) passed, ([0-9]+) failed/\1/')
  f=$(echo "$line" | sed -E 's/.*: ([0-9]+) passed, ([0-9]+) failed/\2/')
  passed=$((passed + p)); failed=$((failed + f))
  [ "$rc" = 0 ] || [ "$f" != 0 ] || { echo "$(basename "$bin"): exit $rc"; failed=$((failed + 1)); }
done
echo "unit: $passed passed, $failed failed"
[ "$failed" = 0 ]
