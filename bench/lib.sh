# bench/lib.sh - what the benchmark scripts share: the processes they
# started (PIDS) stopped and their scratch directory ($TMP) removed at exit,
# free ports and waiting for one to accept. Source it after setting TMP and
# BENCH_NAME (for messages).
PIDS=()

bench_cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
    for p in "${PIDS[@]}"; do
        for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
        kill -9 "$p" 2>/dev/null
    done
    if declare -F uncap_all >/dev/null; then uncap_all; fi
    rm -rf "$TMP"
}
trap bench_cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

wait_port() {
    for _ in $(seq 100); do
        (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
        sleep 0.1
    done
    echo "$BENCH_NAME: nothing listens on port $1" >&2
    return 1
}
