#!/usr/bin/env bash
# Style checks: clang-format for C, luacheck for Lua.
set -u
cd "$(dirname "$0")/.."
failed=0 passed=0
c_files=$(find core t/unit t/fuzz t/support bench -name '*.[ch]' 2>/dev/null | sort)
if clang-format --dry-run --Werror $c_files 2> build/lint-format.log; then
  echo "lint: clang-format clean ($(echo "$c_files" | wc -w) files)"; passed=$((passed + 1))
else
  head -40 build/lint-format.log; echo "lint: clang-format found differences (run 'make format')"; failed=$((failed + 1))
fi
lua_dirs=$(ls -d t lua plugins bench examples 2>/dev/null)
if luacheck -q $lua_dirs > build/lint-luacheck.log 2>&1; then
  echo "lint: luacheck clean"; passed=$((passed + 1))
else
  tail -40 build/lint-luacheck.log; echo "lint: luacheck found problems"; failed=$((failed + 1))
fi
echo "lint: $passed passed, $failed failed"
[ "$failed" = 0 ]
