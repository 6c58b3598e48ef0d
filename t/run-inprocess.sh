#!/usr/bin/env bash
# In-process specs, run by `torii test` (the sanitizer build): the shipped
# plugins' (plugins/spec, plugins/NAME/spec), torii.test's own
# (t/inprocess) and the example plugin's (examples/*/spec); or the files and
# directories given. Prints busted's summary line last; the exit status is
# torii's (non-zero also for a sanitizer report after a clean run).
set -u
cd "$(dirname "$0")/.."
export TORII_BIN="${TORII_BIN:-build/asan/torii}"
export TORII_MOCK_BIN="${TORII_MOCK_BIN:-build/mock-upstream}"
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0:print_summary=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1}"
[ $# -gt 0 ] || set -- plugins t/inprocess examples
exec "$TORII_BIN" test -o utfTerminal "$@"
