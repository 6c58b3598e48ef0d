#!/usr/bin/env bash
# shellcheck disable=SC2317  # cleanup and start_* are called indirectly (trap, "start_$t")
# bench/run.sh - torii against nginx and HAProxy, all proxying to one mock upstream.
#
# Called by `make bench` from the repository root after `make build`.
# Measures, per connection count: requests/s, p50/p99 latency (wrk --latency),
# and the CPU time the proxy's worker spends per request; then the memory
# each proxy spends per idle keep-alive connection (bench/idle_conns.c).
#
# Environment:
#   BENCH_DURATION    wrk duration per run (default 5s; a bare number means seconds)
#   BENCH_ROUNDS      interleaved rounds per connection count (default 3)
#   BENCH_CONNS       connection counts (default "10 100")
#   BENCH_IDLE_CONNS  idle keep-alive connections for the memory test (default 10000, 0 skips it)
#   BENCH_KEEP=1      keep the temporary directory (configs, logs, raw wrk output)
#   BENCH_TORII       torii binary to measure (default build/torii)
#   BENCH_PIN         1 (default): the proxy under test runs on CPU 1, wrk and the
#                     upstream on the other CPUs, so that each proxy gets one core of
#                     its own and requests/s reflect its own cost; 0 lets the
#                     scheduler decide
#   BENCH_CPU_CAP     a percentage of one core (e.g. 50): each proxy (master and
#                     worker) is held to it by a cgroup CPU quota, so that the proxy,
#                     not wrk and the upstream, limits requests/s; requests/s then
#                     compare the proxies' own costs. Default: 50 on a machine with
#                     fewer than 4 cores (wrk and the upstream share one core there
#                     and would set the pace for every proxy), none on a larger one;
#                     0 runs uncapped anyway
#
# Every proxy does the same work on a request: it passes the client's Host
# on and sets X-Forwarded-For, X-Real-IP, X-Forwarded-Proto and
# X-Forwarded-Host, as torii always does (nginx and HAProxy are told to).
#
# Everything listens on 127.0.0.1, on free ports picked at start. Every
# process started here is stopped on exit, by PID, with bounded waits.

set -uo pipefail
cd "$(dirname "$0")/.." || exit 1

DURATION=${BENCH_DURATION:-5s}
[[ $DURATION =~ ^[0-9]+$ ]] && DURATION="${DURATION}s"
ROUNDS=${BENCH_ROUNDS:-3}
CONNS=${BENCH_CONNS:-"10 100"}
IDLE_N=${BENCH_IDLE_CONNS:-10000}
WARMUP=1s # unmeasured wrk run per target before each connection count: fills keep-alive pools
RETRIES=${BENCH_RETRIES:-2} # extra attempts for a run disturbed by other processes
NOISE_PCT=15                 # ... i.e. one during which they used more than this % of a core
PROXIES=(torii nginx haproxy)
TARGETS=(upstream "${PROXIES[@]}") # wrk targets; "upstream" is the bare reference
CLK_TCK=$(getconf CLK_TCK)
PIN_PROXY=() PIN_LOAD=()
if [[ ${BENCH_PIN:-1} == 1 ]] && (($(nproc) >= 2)) && command -v taskset >/dev/null; then
    PIN_PROXY=(taskset -c 1) # taskset execs the command: $! stays the proxy's PID
    PIN_LOAD=(taskset -c "0$( (($(nproc) > 2)) && echo ",2-$(($(nproc) - 1))")")
fi

TORII=${BENCH_TORII:-build/torii} # e.g. build/asan/torii
MOCK=build/mock-upstream
IDLE_BIN=build/bench/idle_conns
OUT_DIR=build/bench
TMP=$(mktemp -d /tmp/torii-bench.XXXXXX)
RESULTS=$TMP/results.tsv # conns target round rps p50_ms p99_ms cpu_us_per_req requests non2xx sockerr other%
PROBLEMS=()              # human-readable list of everything that went wrong
NOISY=()                 # runs during which other processes used a noticeable share of the CPU

declare -A PORT MASTER WORKER LOGF OUTF NAME UP # per target: see start_*
NAME=([upstream]="upstream (bare)" [torii]=torii [nginx]=nginx [haproxy]=HAProxy)
STARTED=() # PIDs of the processes this script started (direct children)

log() { printf '%s\n' "$*"; }
problem() {
    PROBLEMS+=("$*")
    printf '!! %s\n' "$*"
}
die() {
    printf 'bench: %s\n' "$*" >&2
    exit 1
}

# ---------------------------------------------------------------- processes

# A PID is alive if /proc has it and it is not a zombie.
alive() {
    local st
    [[ -r /proc/$1/stat ]] || return 1
    { st=$(<"/proc/$1/stat"); } 2>/dev/null || return 1
    st=${st##*) }
    [[ ${st:0:1} != Z ]]
}

# Send SIGTERM to the given PIDs, wait up to 5 s, then SIGKILL the survivors.
stop_pids() {
    local pid deadline=$((SECONDS + 5)) left
    for pid in "$@"; do kill -TERM "$pid" 2>/dev/null; done
    while :; do
        left=0
        for pid in "$@"; do alive "$pid" && left=1; done
        ((left == 0 || SECONDS >= deadline)) && break
        sleep 0.1
    done
    for pid in "$@"; do alive "$pid" && kill -KILL "$pid" 2>/dev/null; done
    return 0
}

# shellcheck source=bench/cpu_cap.sh
source "$(dirname "$0")/cpu_cap.sh" # cap_cpu, uncap_all (BENCH_CPU_CAP)

cleanup() {
    local rc=$? pids=() t i g
    trap - EXIT INT TERM
    # Masters first (in reverse start order), then the workers we recorded, in
    # case a master died and left its worker behind.
    for ((i = ${#STARTED[@]} - 1; i >= 0; i--)); do pids+=("${STARTED[i]}"); done
    for t in "${PROXIES[@]}"; do [[ -n ${WORKER[$t]:-} ]] && pids+=("${WORKER[$t]}"); done
    ((${#pids[@]})) && stop_pids "${pids[@]}"
    uncap_all
    if [[ ${BENCH_KEEP:-0} == 1 || $rc != 0 ]]; then
        log "bench: temporary files kept in $TMP"
    else
        rm -rf "$TMP"
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Pick a port nobody uses (no socket in any state), below the ephemeral range
# so that wrk's and the proxies' outgoing connections never take it.
declare -A TAKEN
free_port() {
    local p
    for _ in $(seq 500); do
        p=$((20000 + RANDOM % 12000))
        [[ -n ${TAKEN[$p]:-} ]] && continue
        if [[ -z $(ss -Htan "( sport = :$p or dport = :$p )" 2>/dev/null) ]]; then
            TAKEN[$p]=1
            printf -v "$1" '%s' "$p"
            return 0
        fi
    done
    die "no free port found"
}

# The last lines of a server's log and of its stdout/stderr, indented.
show_tail() {
    local f
    for f in "${LOGF[$1]:-}" "${OUTF[$1]:-}"; do
        [[ -s $f ]] || continue
        echo "     $f:"
        tail -n 8 "$f" | sed 's/^/       /'
    done
}

# Wait until GET /bench answers 200 on the port (10 s at most) while PID lives.
wait_ready() {
    local name=$1 port=$2 pid=$3 code deadline=$((SECONDS + 10))
    while ((SECONDS < deadline)); do
        alive "$pid" || {
            problem "$name exited during startup (see ${LOGF[$name]:-its log})"
            show_tail "$name"
            return 1
        }
        code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 1 "http://127.0.0.1:$port/bench" 2>/dev/null)
        [[ $code == 200 ]] && return 0
        sleep 0.1
    done
    problem "$name did not answer 200 on 127.0.0.1:$port/bench within 10 s (last status: ${code:-none})"
    show_tail "$name"
    return 1
}

# The only child of a master process (torii's and nginx's worker).
only_child() {
    local kids
    kids=$(pgrep -P "$1" | tr '\n' ' ')
    kids=${kids% }
    [[ -n $kids && $kids != *" "* ]] || return 1
    printf '%s' "$kids"
}

# utime + stime of a process, in clock ticks (fields 14 and 15 of /proc/PID/stat;
# the command name may hold spaces, so split after its closing parenthesis).
cpu_ticks() {
    local st f
    { st=$(<"/proc/$1/stat"); } 2>/dev/null || return 1
    read -ra f <<<"${st##*) }"
    printf '%s' $((f[11] + f[12]))
}

rss_kib() { awk '/^VmRSS:/ {print $2}' /proc/"$1"/status; }

# Machine-wide user+nice+system ticks (/proc/stat). softirq is left out: on
# loopback it is our own traffic and is not charged to any process either.
machine_ticks() { awk '/^cpu / { print $2 + $3 + $4; exit }' /proc/stat; }

# CPU ticks of the children this shell has reaped (wrk): `times`, second line.
# It must run in this shell (a subshell starts with zeroed child usage), so the
# result goes to the variable named $1 rather than to stdout.
children_ticks() {
    times >"$TMP/times"
    printf -v "$1" '%s' "$(awk -v hz="$CLK_TCK" 'NR == 2 { for (i = 1; i <= 2; i++) { split($i, a, /[ms]/); t += a[1] * 60 + a[2] } }
        END { printf "%d", t * hz + 0.5 }' "$TMP/times")"
}

# ---------------------------------------------------------------- servers

start_upstream() {
    free_port 'PORT[upstream]'
    LOGF[upstream]=$TMP/upstream.log
    CMD_UPSTREAM="$MOCK --listen 127.0.0.1:${PORT[upstream]} --quiet"
    "${PIN_LOAD[@]}" $CMD_UPSTREAM >"${LOGF[upstream]}" 2>&1 &
    MASTER[upstream]=$!
    WORKER[upstream]=$!
    STARTED+=($!)
    wait_ready upstream "${PORT[upstream]}" "${MASTER[upstream]}" || die "mock upstream failed to start"
    UP[upstream]=1
}

start_torii() {
    local d=$TMP/torii
    mkdir -p "$d/logs"
    free_port 'PORT[torii]'
    # max_connections: the default (10000 per worker) would stop accepting
    # before the idle test holds its 10,000 connections plus wrk's.
    cat >"$d/torii.yaml" <<EOF
listen: 127.0.0.1:${PORT[torii]}
workers: 1
log: {level: warn, error: logs/error.log, access: "off"}
client: {max_connections: 20000}
proxy: {keepalive_pool: {size: 128}}
routes:
  - id: bench
    uri: /*
    upstream: {nodes: ["127.0.0.1:${PORT[upstream]}"]}
EOF
    LOGF[torii]=$d/logs/error.log
    CMD_TORII="$TORII -p $d -c $d/torii.yaml"
    OUTF[torii]=$d/stdout.log
    "${PIN_PROXY[@]}" $CMD_TORII >"$d/stdout.log" 2>&1 &
    MASTER[torii]=$!
    STARTED+=($!)
    wait_ready torii "${PORT[torii]}" "${MASTER[torii]}" || return 1
    WORKER[torii]=$(only_child "${MASTER[torii]}") || {
        problem "torii: expected exactly one worker under master ${MASTER[torii]}, found: $(pgrep -P "${MASTER[torii]}" | tr '\n' ' ')"
        return 1
    }
}

start_nginx() {
    local d=$TMP/nginx user_line=""
    mkdir -p "$d"/{logs,temp}
    free_port 'PORT[nginx]'
    # As root, nginx would switch its worker to "nobody"; keep it the current user.
    ((EUID == 0)) && user_line="user $(id -un) $(id -gn);"
    cat >"$d/nginx.conf" <<EOF
$user_line
worker_processes 1;
worker_rlimit_nofile $NOFILE;
daemon off;
pid $d/logs/nginx.pid;
error_log $d/logs/error.log warn;
events { worker_connections $((NOFILE < 20000 ? NOFILE : 20000)); }
http {
    access_log off;
    client_body_temp_path $d/temp/client;
    proxy_temp_path $d/temp/proxy;
    fastcgi_temp_path $d/temp/fastcgi;
    uwsgi_temp_path $d/temp/uwsgi;
    scgi_temp_path $d/temp/scgi;
    upstream backend {
        server 127.0.0.1:${PORT[upstream]};
        keepalive 128;
    }
    server {
        listen 127.0.0.1:${PORT[nginx]};
        location / {
            proxy_pass http://backend;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            include $PWD/bench/nginx_forwarding.conf; # the headers torii sets
        }
    }
}
EOF
    LOGF[nginx]=$d/logs/error.log
    # -e: the error log used before the configuration is read (the default,
    # /var/log/nginx/error.log, may not be writable).
    CMD_NGINX="nginx -p $d/ -c $d/nginx.conf -e $d/logs/error.log"
    OUTF[nginx]=$d/stdout.log
    "${PIN_PROXY[@]}" $CMD_NGINX >"$d/stdout.log" 2>&1 &
    MASTER[nginx]=$!
    STARTED+=($!)
    wait_ready nginx "${PORT[nginx]}" "${MASTER[nginx]}" || return 1
    WORKER[nginx]=$(only_child "${MASTER[nginx]}") || {
        problem "nginx: expected exactly one worker under master ${MASTER[nginx]}"
        return 1
    }
}

start_haproxy() {
    local d=$TMP/haproxy maxconn=$((IDLE_N + 1000)) limits=""
    mkdir -p "$d"
    free_port 'PORT[haproxy]'
    # HAProxy wants 2 fds per connection (client + server) and refuses to start
    # if it cannot raise RLIMIT_NOFILE that far. With http-reuse the server
    # side is a handful of sockets, so when the hard limit is too low, say so
    # and let it run with what it has.
    if ((2 * maxconn + 100 > NOFILE)); then
        limits="  no strict-limits  # RLIMIT_NOFILE hard limit $NOFILE < 2 x maxconn; server side is pooled"
    fi
    cat >"$d/haproxy.cfg" <<EOF
global
  nbthread 1
  maxconn $maxconn
$limits
defaults
  mode http
  option http-keep-alive
  http-reuse always
  maxconn $maxconn
  timeout connect 5s
  timeout client 60s
  timeout server 60s
  timeout http-request 10s
  timeout http-keep-alive 75s
frontend fe
  bind 127.0.0.1:${PORT[haproxy]}
  default_backend be
backend be
  # the forwarding headers torii sets on every request
  option forwardfor
  http-request set-header X-Real-IP %[src]
  http-request set-header X-Forwarded-Proto http
  http-request set-header X-Forwarded-Host %[req.hdr(host)]
  server up 127.0.0.1:${PORT[upstream]}
EOF
    LOGF[haproxy]=$d/stderr.log
    haproxy -c -q -f "$d/haproxy.cfg" >"$d/check.log" 2>&1 || {
        problem "haproxy -c rejected the configuration: $(head -5 "$d/check.log")"
        return 1
    }
    # -db: foreground, no master-worker: the single process is the worker.
    CMD_HAPROXY="haproxy -db -f $d/haproxy.cfg"
    "${PIN_PROXY[@]}" $CMD_HAPROXY >"$d/stderr.log" 2>&1 &
    MASTER[haproxy]=$!
    WORKER[haproxy]=$!
    STARTED+=($!)
    wait_ready haproxy "${PORT[haproxy]}" "${MASTER[haproxy]}" || return 1
}

# Is the target still healthy (same worker as at start)? Says what broke if not.
check_alive() {
    local t=$1 now
    if ! alive "${MASTER[$t]}"; then
        problem "${NAME[$t]}: master ${MASTER[$t]} is gone (see ${LOGF[$t]})"
        return 1
    fi
    if [[ $t == torii || $t == nginx ]]; then
        now=$(only_child "${MASTER[$t]}")
        if [[ $now != "${WORKER[$t]}" ]]; then
            problem "${NAME[$t]}: worker ${WORKER[$t]} died; the master now has: ${now:-no worker} (see ${LOGF[$t]})"
            WORKER[$t]=$now
            return 1
        fi
    fi
    return 0
}

# New lines (at most 10) in the log of target $1 since log_mark, reported as a
# problem that happened during $2. The logs are at warn level: nothing is expected.
declare -A LOGPOS
log_mark() { LOGPOS[$1]=$(stat -c %s "${LOGF[$1]}" 2>/dev/null || echo 0); }
log_news() {
    local t=$1 news
    [[ -f ${LOGF[$t]} ]] || return 0
    news=$(tail -c +$((${LOGPOS[$t]:-0} + 1)) "${LOGF[$t]}" | grep -v '^\[NOTICE\]' | head -10)
    log_mark "$t"
    [[ -z $news ]] && return 0
    # Indented continuation lines: readable here and a nested block in the markdown list.
    problem "${NAME[$t]} logged during $2:"$'\n    '"${news//$'\n'/$'\n    '}"
}

# ---------------------------------------------------------------- wrk runs

# Parse wrk output: requests rps p50_ms p99_ms non2xx socket_errors
parse_wrk() {
    awk '
        function ms(v,   n, u) {
            n = v + 0; u = v; sub(/^[0-9.]+/, "", u)
            if (u == "us") return n / 1000; if (u == "ms") return n
            if (u == "s") return n * 1000; if (u == "m") return n * 60000
            return -1
        }
        / requests in /            { req = $1 }
        /^Requests\/sec:/          { rps = $2 }
        /^ +50% /                  { p50 = ms($2) }
        /^ +99% /                  { p99 = ms($2) }
        /Non-2xx or 3xx responses/ { non2xx = $NF }
        /Socket errors:/           { gsub(/,/, ""); sock = $4 + $6 + $8 + $10 }
        END { printf "%d %.2f %.3f %.3f %d %d\n", req, rps, p50, p99, non2xx, sock }
    ' "$1"
}

wrk_cmd() { printf 'wrk -t1 -c %s -d %s --latency http://127.0.0.1:%s/bench' "$1" "$2" "$3"; }

# One measured run: wrk against target $1 with $2 connections, round $3.
# Besides wrk's numbers it records the worker's CPU time across the run and,
# as a noise indicator, the CPU that processes other than wrk, the proxy and
# the upstream used meanwhile ("other", in % of one core): the machine is small
# and may be shared, and a busy neighbour skews every figure.
run_one() {
    local t=$1 c=$2 r=$3 out=$TMP/wrk-$1-c$2-r$3.txt
    : >"$TMP/last_row"
    local t0 t1 u0 u1 m0 m1 k0 k1 w0 w1 wrc req rps p50 p99 non2xx sock cpu other secs healthy=1
    secs=${DURATION%s}
    [[ $secs =~ ^[0-9]+$ ]] || secs=60
    t0=$(cpu_ticks "${WORKER[$t]}") || {
        check_alive "$t"
        return 1
    }
    u0=$(cpu_ticks "${WORKER[upstream]}")
    m0=$(machine_ticks)
    children_ticks k0
    w0=$EPOCHREALTIME
    # shellcheck disable=SC2046
    timeout $((secs + 30)) "${PIN_LOAD[@]}" $(wrk_cmd "$c" "$DURATION" "${PORT[$t]}") >"$out" 2>&1
    wrc=$?
    w1=$EPOCHREALTIME
    children_ticks k1
    m1=$(machine_ticks)
    u1=$(cpu_ticks "${WORKER[upstream]}")
    t1=$(cpu_ticks "${WORKER[$t]}") || t1=""
    read -r req rps p50 p99 non2xx sock < <(parse_wrk "$out")
    if ((wrc != 0 || req == 0)); then
        problem "${NAME[$t]} c=$c round $r: wrk exited $wrc with $req requests: $(tail -3 "$out" | tr '\n' ' ')"
    fi
    ((non2xx > 0)) && problem "${NAME[$t]} c=$c round $r: $non2xx non-2xx/3xx responses out of $req"
    ((sock > 0)) && problem "${NAME[$t]} c=$c round $r: $(grep 'Socket errors' "$out" | sed 's/^ *//')"
    check_alive "$t" || {
        t1=""
        healthy=0
    }
    if [[ -z $t1 || $req == 0 ]]; then
        cpu=NA other=NA
    else
        cpu=$(awk -v d=$((t1 - t0)) -v hz="$CLK_TCK" -v n="$req" 'BEGIN { printf "%.2f", d * 1e6 / hz / n }')
        local ours=$((t1 - t0 + k1 - k0))
        [[ $t != upstream ]] && ours=$((ours + u1 - u0))
        other=$(awk -v d=$((m1 - m0 - ours)) -v hz="$CLK_TCK" -v w0="$w0" -v w1="$w1" \
            'BEGIN { v = d * 100 / hz / (w1 - w0); printf "%.0f", v < 0 ? 0 : v }')
    fi
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$c" "$t" "$r" "$rps" "$p50" "$p99" "$cpu" "$req" \
        "$non2xx" "$sock" "$other" >"$TMP/last_row"
    LAST_OTHER=$other
    printf '  round %d/%d  c=%-3d %-16s %8.0f req/s  p50 %6.3f ms  p99 %6.3f ms  CPU %6s us/req  %8d requests  other %s%%\n' \
        "$r" "$ROUNDS" "$c" "${NAME[$t]}" "$rps" "$p50" "$p99" "$cpu" "$req" "$other"
    # A restarted worker is reported above; keep measuring it unless the master is gone.
    ((healthy)) || { [[ -n ${WORKER[$t]} ]] && alive "${MASTER[$t]}"; }
}

# run_one, again (at most RETRIES times) while other processes took more than
# NOISE_PCT% of a core meanwhile; only the last attempt counts.
measure() {
    local attempt rc
    for ((attempt = 0; ; attempt++)); do
        run_one "$@"
        rc=$?
        [[ -s $TMP/last_row ]] && cat "$TMP/last_row" >>"$RESULTS"
        ((rc == 0)) || return "$rc"
        [[ $LAST_OTHER == NA ]] || ((LAST_OTHER <= NOISE_PCT)) && return 0
        if ((attempt >= RETRIES)); then
            NOISY+=("${NAME[$1]} c=$2 round $3: ${LAST_OTHER}%")
            return 0
        fi
        log "    (other processes used ${LAST_OTHER}% of a core: measuring that run again)"
        sed -i '$d' "$RESULTS" # forget the disturbed attempt
        sleep 2
    done
}

# Median of column $3 (1-based in RESULTS) for conns $1, target $2; NA if none.
median() {
    awk -F'\t' -v c="$1" -v t="$2" -v col="$3" '
        $1 == c && $2 == t && $col != "NA" && $7 != "NA" && $8 > 0 { v[n++] = $col + 0 }
        END {
            if (n == 0) { print "NA"; exit }
            for (i = 0; i < n; i++) for (j = i + 1; j < n; j++) if (v[j] < v[i]) { x = v[i]; v[i] = v[j]; v[j] = x }
            print (n % 2) ? v[int(n / 2)] : (v[n / 2 - 1] + v[n / 2]) / 2
        }' "$RESULTS"
}
errors_total() {
    awk -F'\t' -v c="$1" -v t="$2" '$1 == c && $2 == t { s += $9 + $10 } END { print s + 0 }' "$RESULTS"
}
max_other() {
    awk -F'\t' -v c="$1" -v t="$2" '$1 == c && $2 == t && $11 != "NA" && $11 + 0 >= m { m = $11 + 0; seen = 1 } END { print seen ? m "%" : "-" }' "$RESULTS"
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "NA" || b == "NA" || b == 0) print "-"; else printf "%.2f", a / b }'; }
fmt() { awk -v v="$1" -v f="$2" 'BEGIN { if (v == "NA") print "-"; else printf f, v }'; }

# Table for one connection count: text on stdout, markdown rows appended to $MD_ROWS.
MD_ROWS=""
print_table() {
    local c=$1 t rps p50 p99 cpu nrps ncpu np99 err
    nrps=$(median "$c" nginx 4)
    np99=$(median "$c" nginx 6)
    ncpu=$(median "$c" nginx 7)
    log ""
    log "== $c connections: median of $ROUNDS round(s) of $DURATION =="
    log "(errors: non-2xx + socket errors over all rounds. other%: the most CPU, in % of one core, that processes"
    log " other than wrk, the proxy and the upstream used during one round of that row.)"
    printf '%-16s %10s %9s %9s %12s %10s %10s %10s %7s %7s\n' \
        target req/s "p50 ms" "p99 ms" "CPU us/req" "rps/nginx" "CPU/nginx" "p99/nginx" errors "other%"
    for t in "${TARGETS[@]}"; do
        if [[ -z $(awk -F'\t' -v c="$c" -v t="$t" '$1==c && $2==t' "$RESULTS") ]]; then
            printf '%-16s %s\n' "${NAME[$t]}" "not measured (failed to start, see above)"
            MD_ROWS+="| $c | ${NAME[$t]} | failed | | | | | | |"$'\n'
            continue
        fi
        rps=$(median "$c" "$t" 4)
        p50=$(median "$c" "$t" 5)
        p99=$(median "$c" "$t" 6)
        cpu=$(median "$c" "$t" 7)
        err=$(errors_total "$c" "$t")
        local rr cr pr
        if [[ $t == upstream ]]; then rr="-" cr="-" pr="-"; else
            rr=$(ratio "$rps" "$nrps") cr=$(ratio "$cpu" "$ncpu") pr=$(ratio "$p99" "$np99")
        fi
        printf '%-16s %10s %9s %9s %12s %10s %10s %10s %7s %7s\n' "${NAME[$t]}" "$(fmt "$rps" %.0f)" \
            "$(fmt "$p50" %.3f)" "$(fmt "$p99" %.3f)" "$(fmt "$cpu" %.2f)" "$rr" "$cr" "$pr" "$err" "$(max_other "$c" "$t")"
        MD_ROWS+="| $c | ${NAME[$t]} | $(fmt "$rps" %.0f) | $(fmt "$p50" %.3f) | $(fmt "$p99" %.3f) | $(fmt "$cpu" %.2f) | $rr | $cr | $pr |"$'\n'
    done
}

# ---------------------------------------------------------------- idle memory

# Hold IDLE_N idle keep-alive connections to target $1; report the worker's RSS growth.
declare -A IDLE_KIB IDLE_RSS0 IDLE_RSS1
idle_test() {
    local t=$1 out=$TMP/idle-$1.out err=$TMP/idle-$1.err pid rss0 rss1 rss2 ready="" ok deadline
    check_alive "$t" || return 1
    rss0=$(rss_kib "${WORKER[$t]}")
    log_mark "$t"
    "$IDLE_BIN" 127.0.0.1 "${PORT[$t]}" "$IDLE_N" /bench 100 </dev/null >"$out" 2>"$err" &
    pid=$!
    STARTED+=("$pid")
    deadline=$((SECONDS + 150)) # the helper itself gives up after 120 s
    while ((SECONDS < deadline)); do
        ready=$(grep -m1 '^READY' "$out" 2>/dev/null)
        [[ -n $ready ]] && break
        alive "$pid" || break
        sleep 0.2
    done
    if [[ -z $ready ]]; then
        problem "${NAME[$t]} idle test: the helper never got all connections ready: $(head -5 "$err" | tr '\n' ' ')"
        stop_pids "$pid"
        return 1
    fi
    sleep 1 # let the proxy finish any deferred work (pool trims, timers)
    check_alive "$t" || {
        stop_pids "$pid"
        return 1
    }
    rss1=$(rss_kib "${WORKER[$t]}")
    ok=$(sed -n 's/.* ok=\([0-9]*\).*/\1/p' <<<"$ready")
    stop_pids "$pid"
    local done_line
    done_line=$(grep -m1 '^DONE' "$out")
    [[ $ready == *"failed=0 non2xx=0 closed_during_fill=0 "* ]] ||
        problem "${NAME[$t]} idle test: $ready; $(head -5 "$err" | tr '\n' ' ')"
    [[ $done_line == *"closed_by_peer=0"* ]] || problem "${NAME[$t]} idle test: connections closed while idle: $done_line"
    sleep 2 # connections closed: does the memory come back?
    rss2=$(rss_kib "${WORKER[$t]}" 2>/dev/null || echo NA)
    log_news "$t" "the idle test"
    if ((ok > 0)); then
        IDLE_KIB[$t]=$(awk -v a="$rss0" -v b="$rss1" -v n="$ok" 'BEGIN { printf "%.2f", (b - a) / n }')
    else
        IDLE_KIB[$t]=NA
    fi
    IDLE_RSS0[$t]=$rss0 IDLE_RSS1[$t]=$rss1
    log "  $(printf '%-8s held %5d: RSS %7d KiB before, %7d KiB with them (%+d KiB), %7s KiB after closing -> %s KiB per idle connection' \
        "${NAME[$t]}" "$ok" "$rss0" "$rss1" $((rss1 - rss0)) "$rss2" "${IDLE_KIB[$t]}")"
}

# ---------------------------------------------------------------- main

[[ -x $TORII && -x $MOCK ]] || die "build first: make build"
for tool in nginx haproxy wrk curl ss cc; do command -v $tool >/dev/null || die "$tool not found (make bench-deps)"; done
[[ $ROUNDS =~ ^[1-9][0-9]*$ ]] || die "BENCH_ROUNDS must be a positive integer"

# Sockets: 10,000 idle connections need that many fds in the helper and in the
# proxy. Raise the limit as far as allowed; children inherit it.
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null
NOFILE=$(ulimit -n)
((NOFILE < IDLE_N + 200)) && problem "RLIMIT_NOFILE is $NOFILE, below the $IDLE_N idle connections the memory test opens"

mkdir -p "$OUT_DIR"
cc -O2 -Wall -o "$IDLE_BIN" bench/idle_conns.c || die "cannot build bench/idle_conns.c"

# Hold a proxy's processes to BENCH_CPU_CAP % of one core (bench/cpu_cap.sh).
cap_proxy() {
    local t=$1
    # shellcheck disable=SC2086 # the PIDs are words
    cap_cpu "$t" "$CPU_CAP" ${MASTER[$t]:-} ${WORKER[$t]:-} 2>"$TMP/cap.err" || {
        problem "$(cat "$TMP/cap.err")"
        return 1
    }
}

# On fewer than 4 cores, wrk and the upstream share one core, which then sets
# the pace whichever proxy is measured: cap the proxies unless told not to.
CPU_CAP=${BENCH_CPU_CAP-auto}
CPU_CAP_WHY="BENCH_CPU_CAP" CAP_NOTE=""
if [[ $CPU_CAP == auto ]]; then
    CPU_CAP="" CPU_CAP_WHY="by default on fewer than 4 cores; BENCH_CPU_CAP=0 runs uncapped"
    if (($(nproc) < 4)); then
        if cap_possible; then
            CPU_CAP=50
        else
            CAP_NOTE="no CPU cap: fewer than 4 cores, but no cgroup CPU quota can be set here (as root it can), so wrk and the upstream may set the pace"
        fi
    fi
fi
[[ $CPU_CAP == 0 ]] && CPU_CAP=""
[[ -z $CPU_CAP || $CPU_CAP =~ ^[1-9][0-9]?$ ]] || die "BENCH_CPU_CAP must be 0..99 (percent of one core) or auto, got $CPU_CAP"

start_upstream
for t in "${PROXIES[@]}"; do
    if "start_$t"; then UP[$t]=1; else problem "${NAME[$t]} is left out of the benchmark"; fi
    if [[ -n $CPU_CAP && ${UP[$t]:-0} == 1 ]]; then cap_proxy "$t" || UP[$t]=0; fi
done
[[ ${UP[nginx]:-0} == 1 ]] || problem "nginx is not running: no ratios"

NGINX_V=$(nginx -v 2>&1 | sed 's/.*nginx\///')
HAPROXY_V=$(haproxy -v | sed -n '1s/HAProxy version \([^ ]*\).*/\1/p')
TORII_V=$($TORII -v 2>/dev/null | awk '$1 == "torii" { print $2 }')
: "${TORII_V:=unknown}"
WRK_V=$(wrk -v 2>&1 | sed -n '1s/^wrk \([^ ]*\).*/\1/p')
CPU_MODEL=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)

log "== Settings =="
log "machine: $(nproc) cores ($CPU_MODEL), Linux $(uname -r), RLIMIT_NOFILE $NOFILE, load average $(cut -d" " -f1-3 /proc/loadavg)"
log "versions: torii $TORII_V, nginx $NGINX_V, HAProxy $HAPROXY_V, wrk $WRK_V"
log "wrk: $(wrk_cmd N "$DURATION" PORT), N in: $CONNS; $ROUNDS round(s), order per round: ${TARGETS[*]}; ${WARMUP} unmeasured warm-up per target and N"
log "CPU/request: worker utime+stime (/proc/PID/stat, $CLK_TCK ticks/s) across the run / requests wrk completed"
log "a run during which other processes used more than ${NOISE_PCT}% of a core is measured again, up to $RETRIES times (BENCH_RETRIES)"
[[ -n $CPU_CAP ]] && log "CPU cap: each proxy held to ${CPU_CAP}% of one core by a cgroup quota ($CPU_CAP_WHY)"
[[ -n $CAP_NOTE ]] && log "$CAP_NOTE"
log "upstream:  $CMD_UPSTREAM  (pid ${MASTER[upstream]})"
[[ ${UP[torii]:-0} == 1 ]] && log "torii:     $CMD_TORII  (master ${MASTER[torii]}, worker ${WORKER[torii]})"
[[ ${UP[nginx]:-0} == 1 ]] && log "nginx:     $CMD_NGINX  (master ${MASTER[nginx]}, worker ${WORKER[nginx]})"
[[ ${UP[haproxy]:-0} == 1 ]] && log "haproxy:   $CMD_HAPROXY  (pid ${WORKER[haproxy]})"
for f in torii/torii.yaml nginx/nginx.conf haproxy/haproxy.cfg; do
    [[ -f $TMP/$f ]] || continue
    log "--- $f"
    grep -v '^[[:space:]]*$' "$TMP/$f"
done
log ""

: >"$RESULTS"
for t in "${TARGETS[@]}"; do log_mark "$t"; done
for c in $CONNS; do
    log "== $c connections =="
    for t in "${TARGETS[@]}"; do
        [[ ${UP[$t]:-0} == 1 ]] || continue
        # shellcheck disable=SC2046
        timeout 60 $(wrk_cmd "$c" "$WARMUP" "${PORT[$t]}") >/dev/null 2>&1
    done
    for ((r = 1; r <= ROUNDS; r++)); do
        for t in "${TARGETS[@]}"; do
            [[ ${UP[$t]:-0} == 1 ]] || continue
            measure "$t" "$c" "$r" || UP[$t]=0
            sleep 0.5 # let the closed connections drain before the next target
        done
    done
    for t in "${TARGETS[@]}"; do log_news "$t" "the $c-connection runs"; done
done
for c in $CONNS; do print_table "$c"; done

if ((IDLE_N > 0)); then
    log ""
    log "== Memory of $IDLE_N idle keep-alive connections (worker VmRSS; each connection did one GET /bench first) =="
    log "helper: $IDLE_BIN 127.0.0.1 PORT $IDLE_N /bench 100   (at most 100 requests in flight while filling)"
    for t in "${PROXIES[@]}"; do
        [[ ${UP[$t]:-0} == 1 ]] || {
            log "  ${NAME[$t]}: not measured (not running)"
            continue
        }
        idle_test "$t" || IDLE_KIB[$t]=NA
        sleep 1
    done
    log "  note: nginx fills its connection and event arrays (worker_connections slots) at start: they are in its"
    log "  'before' figure, not in the per-connection one"
fi

# ---------------------------------------------------------------- summary
{
    echo "### torii vs nginx vs HAProxy ($(date -u +%Y-%m-%d))"
    echo
    echo "$(nproc) cores ($CPU_MODEL), Linux $(uname -r). One worker/thread each, all proxying to the same"
    echo "mock upstream with keep-alive pools. \`wrk -t1 -c N -d $DURATION --latency\`, median of $ROUNDS interleaved"
    echo "round(s). CPU = proxy worker utime+stime per request (loopback softirq work is charged to no process)."
    if ((${#PIN_PROXY[@]})); then
        echo "Pinned: the proxy on CPU 1, wrk and the upstream on the others (${PIN_LOAD[2]}; BENCH_PIN=0 to let the scheduler place them)."
    fi
    if [[ -n $CPU_CAP ]]; then
        echo "CPU cap: each proxy held to ${CPU_CAP}% of one core (a cgroup quota), so that requests/s measure the proxies,"
        echo "not wrk and the upstream on the other core(s) ($CPU_CAP_WHY)."
    fi
    [[ -n $CAP_NOTE ]] && echo "${CAP_NOTE^}."
    echo "Each proxy passes the client's Host on and sets X-Forwarded-For, X-Real-IP, X-Forwarded-Proto and X-Forwarded-Host."
    echo "Ratios are against nginx: higher is better for req/s, lower for CPU and p99."
    echo "torii $TORII_V, nginx $NGINX_V, HAProxy $HAPROXY_V, wrk $WRK_V."
    echo
    echo "| conns | target | req/s | p50 ms | p99 ms | CPU µs/req | req/s vs nginx | CPU vs nginx | p99 vs nginx |"
    echo "|---:|---|---:|---:|---:|---:|---:|---:|---:|"
    printf '%s' "$MD_ROWS"
    if ((IDLE_N > 0)); then
        echo
        echo "| idle keep-alive connections | torii | nginx | HAProxy |"
        echo "|---|---:|---:|---:|"
        echo "| KiB of worker RSS per connection ($IDLE_N held) | $(fmt "${IDLE_KIB[torii]:-NA}" %.2f) | $(fmt "${IDLE_KIB[nginx]:-NA}" %.2f) | $(fmt "${IDLE_KIB[haproxy]:-NA}" %.2f) |"
        echo "| worker RSS before, KiB | ${IDLE_RSS0[torii]:--} | ${IDLE_RSS0[nginx]:--} | ${IDLE_RSS0[haproxy]:--} |"
        echo "| worker RSS holding them, KiB | ${IDLE_RSS1[torii]:--} | ${IDLE_RSS1[nginx]:--} | ${IDLE_RSS1[haproxy]:--} |"
        echo
        echo "Each connection made one \`GET /bench\` first, then stayed idle. nginx touches its connection and event"
        echo "arrays (one slot per worker_connections) at start, so they are in its 'before' RSS, not in the per-connection figure."
    fi
    if ((${#NOISY[@]})); then
        echo
        echo "Runs during which other processes used more than 15% of a core (numbers less reliable):"
        for p in "${NOISY[@]}"; do echo "- $p"; done
    fi
    if ((${#PROBLEMS[@]})); then
        echo
        echo "Problems seen during this run:"
        for p in "${PROBLEMS[@]}"; do echo "- $p"; done
    fi
} >"$OUT_DIR/latest.md"

log ""
log "== Summary (also in $OUT_DIR/latest.md) =="
cat "$OUT_DIR/latest.md"
if ((${#PROBLEMS[@]})); then
    log ""
    log "bench: ${#PROBLEMS[@]} problem(s), listed above"
    exit 1
fi
exit 0
