# shellcheck shell=bash
# bench/cpu_cap.sh - hold a proxy to a share of one core: a cgroup of its
# own with a CPU quota (cgroup v1 cpu controller, or v2 cpu.max), so that
# the proxy, not the load generator on the other core, limits requests/s.
# Source it; `cap_cpu NAME PERCENT PID...` moves the processes into the
# cgroup, or says on stderr why it cannot and returns 1; `uncap_all` (at
# exit, once the processes are gone) removes the cgroups; `cap_possible`
# says whether this user can make such a cgroup here.
CGROUPS=()

# The directory CPU cgroups are made in, or a reason on stderr.
cap_base() {
    if [[ -w /sys/fs/cgroup/cpu ]]; then
        echo /sys/fs/cgroup/cpu
    elif [[ -w /sys/fs/cgroup && -f /sys/fs/cgroup/cgroup.controllers ]] &&
        grep -qw cpu /sys/fs/cgroup/cgroup.controllers; then
        echo /sys/fs/cgroup
    else
        echo "BENCH_CPU_CAP: no writable cgroup CPU controller" >&2
        return 1
    fi
}

cap_possible() {
    local base g
    base=$(cap_base 2>/dev/null) || return 1
    g=$base/torii-bench-$$-probe
    mkdir "$g" 2>/dev/null || return 1
    # cgroup v2 gives a child cpu.max only if the parent delegates "cpu"
    local ok=1
    [[ -f $g/cpu.cfs_quota_us || -f $g/cpu.max ]] && ok=0
    rmdir "$g"
    return $ok
}

cap_cpu() {
    local name=$1 pct=$2 base g pid
    shift 2
    base=$(cap_base) || return 1
    g=$base/torii-bench-$$-$name
    mkdir "$g" || { echo "BENCH_CPU_CAP: cannot make $g" >&2; return 1; }
    CGROUPS+=("$g")
    # A 10 ms period: a proxy out of quota waits at most what is left of
    # it, so the latency a cap adds stays small next to the proxy's own
    # (the default 100 ms period puts 50 ms stalls into every p99).
    if [[ -f $g/cpu.cfs_quota_us ]]; then
        echo 10000 >"$g/cpu.cfs_period_us" && echo "$((pct * 100))" >"$g/cpu.cfs_quota_us"
    else
        echo "$((pct * 100)) 10000" >"$g/cpu.max"
    fi || { echo "BENCH_CPU_CAP: cannot set the quota of $g" >&2; return 1; }
    for pid in "$@"; do
        echo "$pid" >"$g/cgroup.procs" || { echo "BENCH_CPU_CAP: cannot move $pid into $g" >&2; return 1; }
    done
}

uncap_all() {
    local g
    for g in "${CGROUPS[@]}"; do rmdir "$g" 2>/dev/null; done
    CGROUPS=()
}
