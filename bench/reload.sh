#!/usr/bin/env bash
# bench/reload.sh - how long a reload takes to become current, and whether
# reloads leak. Called by `make bench`.
#
#  1. torii (2 workers) with 10,000 routes (exact, parameter, prefix and
#     host-bound paths; one in ten with plugins), reloaded
#     BENCH_RELOADS_10K times (default 10) with `torii -s reload`: time from
#     the request to "current in every worker", as the master measures it,
#     and the wall-clock time of the command; then the same under wrk load.
#  2. torii with a small configuration reloaded 1,000 times
#     (BENCH_RELOADS_MEM): the workers' resident memory after 10 and after
#     all of them.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1

RELOADS_10K=${BENCH_RELOADS_10K:-10}
RELOADS_MEM=${BENCH_RELOADS_MEM:-1000}
TMP=$(mktemp -d /tmp/torii-bench-reload.XXXXXX)

BENCH_NAME=bench/reload
# shellcheck source=bench/lib.sh
source "$(dirname "$0")/lib.sh"
workers_rss_kib() { # sum of VmRSS of the master's children
    local sum=0 kb
    for p in $(pgrep -P "$1"); do
        kb=$(awk '/^VmRSS/ {print $2}' "/proc/$p/status" 2>/dev/null || echo 0)
        sum=$((sum + kb))
    done
    echo "$sum"
}
median() { sort -n | awk '{a[NR]=$1} END {if (NR) print (NR % 2 ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2)}'; }

UP=$(free_port)
build/mock-upstream --listen "127.0.0.1:$UP" --quiet >"$TMP/up.log" 2>&1 &
PIDS+=($!)
wait_port "$UP" || exit 1

start_torii() { # dir, routes file
    local d=$1 port
    port=$(free_port)
    mkdir -p "$d/logs"
    {
        echo "listen: 127.0.0.1:$port"
        echo "workers: 2"
        echo 'log: {level: notice, error: logs/error.log, access: "off"}'
        cat "$2"
    } >"$d/torii.yaml"
    build/torii -p "$d" -c "$d/torii.yaml" >"$d/out.log" 2>&1 &
    PIDS+=($!)
    MASTER=$!
    wait_port "$port" || exit 1
    sleep 0.5
    PORT=$port
}

# One reload; prints the master's figure in ms, or fails.
reload_ms() {
    local out
    out=$(build/torii -p "$1" -c "$1/torii.yaml" -s reload 2>&1) || { echo "bench/reload: $out" >&2; return 1; }
    sed -n 's/.*(\([0-9.]*\) ms).*/\1/p' <<<"$out"
}

python3 - "$UP" >"$TMP/routes10k.yaml" <<'EOF'
import sys
up = sys.argv[1]
print("routes:")
for i in range(10000):
    kind = i % 4
    if kind == 0:
        uri = "/api/v1/svc%d/items" % i
    elif kind == 1:
        uri = "/api/v2/svc%d/items/:id" % i
    elif kind == 2:
        uri = "/static/app%d/*" % i
    else:
        uri = "/host/%d/*" % i
    print("  - id: r%d" % i)
    print("    uri: %s" % uri)
    if kind == 3:
        print("    hosts: [\"h%d.example.com\"]" % i)
    print("    upstream: {nodes: [\"127.0.0.1:%s\"]}" % up)
    if i % 10 == 0:
        print("    plugins: {proxy-rewrite: {headers: {set: {X-Route: r%d}}}, limit-count: {count: 1000, time_window: 60}}" % i)
EOF

echo "== reload: 10,000 routes, 2 workers (torii -s reload, $RELOADS_10K times) =="
D10=$TMP/t10k
start_torii "$D10" "$TMP/routes10k.yaml"
code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$PORT/api/v1/svc0/items")
[[ $code == 200 ]] || { echo "bench/reload: the 10k-route gateway answered $code" >&2; exit 1; }
: >"$TMP/idle.txt"
: >"$TMP/wall.txt"
for _ in $(seq "$RELOADS_10K"); do
    t0=$(date +%s%N)
    reload_ms "$D10" >>"$TMP/idle.txt" || exit 1
    echo $((($(date +%s%N) - t0) / 1000000)) >>"$TMP/wall.txt"
done
printf "  idle:       median %s ms to current in every worker (max %s ms), command wall-clock median %s ms\n" \
    "$(median <"$TMP/idle.txt")" "$(sort -n "$TMP/idle.txt" | tail -1)" "$(median <"$TMP/wall.txt")"
if command -v wrk >/dev/null; then
    : >"$TMP/load.txt"
    wrk -t1 -c 20 -d "$((RELOADS_10K + 3))s" "http://127.0.0.1:$PORT/api/v1/svc4/items" >"$TMP/wrk.txt" 2>&1 &
    WRK=$!
    sleep 1
    for _ in $(seq "$RELOADS_10K"); do
        reload_ms "$D10" >>"$TMP/load.txt" || exit 1
        sleep 0.2
    done
    wait "$WRK"
    errs=$(awk '/Non-2xx|Socket errors/' "$TMP/wrk.txt" | tr -s ' ' | tr '\n' ';')
    printf "  under load: median %s ms (max %s ms); wrk: %s requests, %s\n" \
        "$(median <"$TMP/load.txt")" "$(sort -n "$TMP/load.txt" | tail -1)" \
        "$(awk '/requests in/ {print $1}' "$TMP/wrk.txt")" "${errs:-no errors}"
fi
echo "  target: <= 100 ms"
kill "$MASTER"
wait "$MASTER" 2>/dev/null

echo "== reload memory: $RELOADS_MEM reloads, 2 workers =="
cat >"$TMP/small.yaml" <<EOF
shared_dicts: {limits: 1m}
routes:
  - id: a
    uri: /a/*
    upstream: {nodes: ["127.0.0.1:$UP"]}
    plugins: {proxy-rewrite: {regex_uri: ["^/a/(.*)", "/\$1"]}, limit-count: {count: 1000000, time_window: 60}}
  - id: b
    uri: /b
    upstream: {nodes: ["127.0.0.1:$UP"]}
    plugins: {serverless: {phase: access, functions: ["return function(conf, ctx) ctx.x = 1 end"]}}
EOF
DM=$TMP/mem
start_torii "$DM" "$TMP/small.yaml"
for i in $(seq "$RELOADS_MEM"); do
    reload_ms "$DM" >/dev/null || exit 1
    curl -s -o /dev/null "http://127.0.0.1:$PORT/a/x"
    if ((i == 10)); then R10=$(workers_rss_kib "$MASTER"); fi
done
RN=$(workers_rss_kib "$MASTER")
awk -v a="$R10" -v b="$RN" -v n="$RELOADS_MEM" 'BEGIN {
    printf "  workers RSS: %d KiB after 10 reloads, %d KiB after %d (%+.1f%%; target within 10%%)\n", a, b, n, (b - a) * 100 / a }'
