#!/usr/bin/env bash
# Run the busted specs (all, or the files given) against the sanitizer
# build of torii. Prints busted's own summary line last.
set -u
cd "$(dirname "$0")/.."
export TORII_BIN="${TORII_BIN:-build/asan/torii}"
export TORII_MOCK_BIN="${TORII_MOCK_BIN:-build/mock-upstream}"
# Workers exit through normal teardown, so leaks show up as LeakSanitizer
# reports in the gateway's stderr, which the specs check.
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0:print_summary=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1}"
exec luajit /usr/bin/busted -o utfTerminal "$@"
