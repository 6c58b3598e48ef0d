#!/usr/bin/env bash
# bench/plugins.sh - the cost of a plugin chain: torii with no plugins,
# torii with key-auth + limit-count, and nginx + lua doing the same work in
# access_by_lua (a key lookup, a shared-dict counter per client and
# window, the consumer header and the rate-limit headers). All proxy to one
# mock upstream; one worker each, pinned to CPU 1 (wrk and the upstream on
# CPU 0) when the machine has two cores. nginx passes the client's Host on
# and sets the forwarding headers torii sets. Called by `make bench`.
#
#   BENCH_DURATION (default 5s), BENCH_ROUNDS (default 3), BENCH_CONNS (default 50),
#   BENCH_CPU_CAP (a percentage of one core, e.g. 50: each proxy is held to it
#   by a cgroup quota, so that the proxy and not wrk limits requests/s)
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1

DURATION=${BENCH_DURATION:-5s}
[[ $DURATION =~ ^[0-9]+$ ]] && DURATION="${DURATION}s"
ROUNDS=${BENCH_ROUNDS:-3}
CONNS=${BENCH_CONNS:-50}
CLK_TCK=$(getconf CLK_TCK)
TMP=$(mktemp -d /tmp/torii-bench-plugins.XXXXXX)
PIN_PROXY=() PIN_LOAD=()
if (($(nproc) >= 2)) && command -v taskset >/dev/null; then
    PIN_PROXY=(taskset -c 1)
    PIN_LOAD=(taskset -c 0)
fi

CPU_CAP=${BENCH_CPU_CAP:-}
if [[ -n $CPU_CAP && ! $CPU_CAP =~ ^[1-9][0-9]?$ ]]; then
    echo "bench/plugins: BENCH_CPU_CAP must be 1..99 (percent of one core), got $CPU_CAP" >&2
    exit 1
fi

BENCH_NAME=bench/plugins
# shellcheck source=bench/lib.sh
source "$(dirname "$0")/lib.sh"
# shellcheck source=bench/cpu_cap.sh
source "$(dirname "$0")/cpu_cap.sh"
cap() { # name: hold its master and worker to CPU_CAP % of a core, if asked
    [[ -z $CPU_CAP ]] || cap_cpu "$1" "$CPU_CAP" "${MASTER[$1]}" "${WORKER[$1]}" || exit 1
}
ticks() { awk '{print $14 + $15}' "/proc/$1/stat" 2>/dev/null || echo 0; }
uticks() { awk '{print $14}' "/proc/$1/stat" 2>/dev/null || echo 0; } # user mode only
child_of() { pgrep -P "$1" | head -1; }

UP=$(free_port)
"${PIN_LOAD[@]}" build/mock-upstream --listen "127.0.0.1:$UP" --quiet >"$TMP/up.log" 2>&1 &
PIDS+=($!)
wait_port "$UP" || exit 1

start_torii() { # name, plugins yaml (may be empty), environment (may be empty)
    local d=$TMP/$1 port
    port=$(free_port)
    mkdir -p "$d/logs"
    cat >"$d/torii.yaml" <<EOF
listen: 127.0.0.1:$port
workers: 1
plugin_dirs: ["$PWD/bench/plugins"]
log: {level: warn, error: logs/error.log, access: "off"}
proxy: {keepalive_pool: {size: 256}}
consumers:
  - username: partner
    plugins: {key-auth: {key: s3cret}}
routes:
  - id: bench
    uri: /*
    upstream: {nodes: ["127.0.0.1:$UP"]}
$2
EOF
    env ${3:-} "${PIN_PROXY[@]}" build/torii -p "$d" -c "$d/torii.yaml" >"$d/out.log" 2>&1 &
    PIDS+=($!)
    wait_port "$port" || exit 1
    sleep 0.3
    PORT[$1]=$port
    MASTER[$1]=$!
    WORKER[$1]=$(child_of $!)
}

start_nginx_lua() {
    local d=$TMP/nginx port
    port=$(free_port)
    mkdir -p "$d/logs"
    cat >"$d/nginx.conf" <<EOF
load_module /usr/lib/nginx/modules/ndk_http_module.so;
load_module /usr/lib/nginx/modules/ngx_http_lua_module.so;
worker_processes 1;
daemon off;
pid $d/nginx.pid;
error_log $d/logs/error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    lua_shared_dict limits 10m;
    init_by_lua_block { consumers = { ["s3cret"] = "partner" } }
    upstream up { server 127.0.0.1:$UP; keepalive 256; }
    server {
        listen 127.0.0.1:$port;
        location / {
            access_by_lua_block {
                local key = ngx.var.http_apikey or ngx.var.arg_apikey
                local user = key and consumers[key]
                if not user then return ngx.exit(401) end
                ngx.req.set_header("X-Consumer-Username", user)
                local now = ngx.time()
                local start = now - now % 60
                local used = ngx.shared.limits:incr("bench|" .. ngx.var.remote_addr .. "|" .. start, 1, 0, 60)
                ngx.header["X-RateLimit-Limit"] = 1000000000
                ngx.header["X-RateLimit-Reset"] = start + 60 - now
                ngx.header["X-RateLimit-Remaining"] = 1000000000 - used
                if used > 1000000000 then return ngx.exit(429) end
            }
            proxy_pass http://up;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            include $PWD/bench/nginx_forwarding.conf; # the headers torii sets
        }
    }
}
EOF
    "${PIN_PROXY[@]}" nginx -p "$d/" -c "$d/nginx.conf" -e "$d/logs/error.log" >"$d/out.log" 2>&1 &
    PIDS+=($!)
    wait_port "$port" || exit 1
    sleep 0.3
    PORT[nginx]=$port
    MASTER[nginx]=$!
    WORKER[nginx]=$(child_of $!)
}

declare -A PORT WORKER MASTER NAME
NAME=([plain]="torii, no plugins" [chain]="torii, key-auth + limit-count" [nginx]="nginx + lua, same work")
start_torii plain ""
start_torii chain "    plugins: {key-auth: {}, limit-count: {count: 1000000000, time_window: 60}}"
start_nginx_lua
for t in plain chain nginx; do cap "$t"; done

for t in plain chain nginx; do # check, and warm the pools
    code=$(curl -s -o /dev/null -w '%{http_code}' -H 'apikey: s3cret' "http://127.0.0.1:${PORT[$t]}/bench")
    [[ $code == 200 ]] || { echo "bench/plugins: ${NAME[$t]} answered $code" >&2; exit 1; }
    "${PIN_LOAD[@]}" wrk -t1 -c "$CONNS" -d 1s -H 'apikey: s3cret' "http://127.0.0.1:${PORT[$t]}/bench" >/dev/null 2>&1
done

declare -A RPS CPU UCPU R C U
for r in $(seq "$ROUNDS"); do
    for t in plain chain nginx; do
        t0=$(ticks "${WORKER[$t]}") u0=$(uticks "${WORKER[$t]}")
        out=$("${PIN_LOAD[@]}" wrk -t1 -c "$CONNS" -d "$DURATION" -H 'apikey: s3cret' "http://127.0.0.1:${PORT[$t]}/bench")
        t1=$(ticks "${WORKER[$t]}") u1=$(uticks "${WORKER[$t]}")
        req=$(echo "$out" | awk '/requests in/ {print $1}')
        rps=$(echo "$out" | awk '/Requests\/sec/ {print $2}')
        non2xx=$(echo "$out" | awk '/Non-2xx/ {print $NF}')
        [[ -n $non2xx ]] && echo "bench/plugins: ${NAME[$t]}: $non2xx non-2xx answers" >&2
        cpu=$(awk -v a="$t0" -v b="$t1" -v n="$req" -v hz="$CLK_TCK" 'BEGIN { printf "%.2f", (b - a) / hz * 1e6 / n }')
        ucpu=$(awk -v a="$u0" -v b="$u1" -v n="$req" -v hz="$CLK_TCK" 'BEGIN { printf "%.2f", (b - a) / hz * 1e6 / n }')
        printf '  round %d/%d  %-32s %9.0f req/s  CPU %6.2f us/req (user %5.2f)\n' "$r" "$ROUNDS" "${NAME[$t]}" "$rps" \
            "$cpu" "$ucpu"
        RPS[$t]+="$rps "
        CPU[$t]+="$cpu "
        UCPU[$t]+="$ucpu "
    done
done

median() { tr ' ' '\n' | grep -v '^$' | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
echo
echo "### Plugin chain cost ($(date -u +%Y-%m-%d), wrk -t1 -c $CONNS -d $DURATION, median of $ROUNDS rounds${CPU_CAP:+, each proxy held to $CPU_CAP% of a core})"
echo
echo "| target | req/s | CPU µs/req | of which user mode |"
echo "|---|---:|---:|---:|"
for t in plain chain nginx; do
    R[$t]=$(echo "${RPS[$t]}" | median)
    C[$t]=$(echo "${CPU[$t]}" | median)
    U[$t]=$(echo "${UCPU[$t]}" | median)
    printf '| %s | %.0f | %.2f | %.2f |\n' "${NAME[$t]}" "${R[$t]}" "${C[$t]}" "${U[$t]}"
done
# The chain makes no system call of its own (the same reads and sends per
# request with or without it), so the user-mode difference is the chain's
# code; the kernel's share moves with how the worker and wrk interleave.
awk -v pc="${C[chain]}" -v p0="${C[plain]}" -v uc="${U[chain]}" -v u0="${U[plain]}" -v rc="${R[chain]}" \
    -v rn="${R[nginx]}" 'BEGIN {
    printf "\nkey-auth + limit-count cost: %.2f us of CPU per request over no plugins (goal <= 1.5), %.2f us of it in user mode\n", pc - p0, uc - u0
    printf "torii with the chain: %.2fx the requests/s of nginx + lua (goal >= 1.2)\n", rc / rn
}'

# A no-op plugin's cost per phase: torii times each phase's run
# (TORII_PHASE_TIMES) in a worker under the same load, and reports when it
# exits. A run is torii's way into the plugin runtime, the chain for that
# phase (the one empty function) and back.
start_torii noop "    plugins: {noop: {}}" TORII_PHASE_TIMES=1
cap noop
"${PIN_LOAD[@]}" wrk -t1 -c "$CONNS" -d "$DURATION" "http://127.0.0.1:${PORT[noop]}/bench" >/dev/null 2>&1
kill "${MASTER[noop]}"
for _ in $(seq 50); do kill -0 "${MASTER[noop]}" 2>/dev/null || break; sleep 0.1; done
times=$(grep -h 'phase times:' "$TMP/noop/out.log" | head -1)
echo
echo "### A no-op plugin's cost per phase (in a worker under wrk -c $CONNS, mean per run)"
echo
if [[ -z $times ]]; then
    echo "(no report from the worker)"
else
    echo "| phase | runs | ns per run |"
    echo "|---|---:|---:|"
    sed 's/.*phase times://' <<<"$times" | tr ';' '\n' | awk 'NF >= 5 { printf "| %s | %s | %s |\n", $1, $2, $5 }'
fi
