#!/usr/bin/env bash
# scripts/run-bench.sh [--quick] [--backend sqlite|etcd|all] [--etcd BIN] — what `make bench` runs
# after `make install` and `make system`: the storage benchmark (`python -m bench.storage_bench`),
# then the API server benchmark (`python -m bench.apiserver_bench`). Both take these args;
# each starts what it measures itself (a single etcd member on free loopback ports, the API
# server as a subprocess on a free port) and stops it. Nothing else is started here.
#
# The data goes to a scratch dir on a real disk (never tmpfs, where fsync costs nothing): the
# first of $BENCH_DIR, $TMPDIR or /tmp, /var/tmp, .run that is not a RAM filesystem. On the way
# out, whatever happens, the scratch dir is removed, and an etcd or API server a bench left
# behind (only if the bench itself was killed outright) is stopped by the pid the bench recorded
# in <its dir>/*.pid. The API server bench runs even if the storage one failed; the exit status
# is the first non-zero one: a bench failed, never because a figure is low.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"
[[ -x .venv/bin/python ]] || {
    echo "run-bench: no .venv/bin/python: run \`make install\` first" >&2
    exit 1
}
command -v etcd >/dev/null || {
    echo "run-bench: no etcd on PATH: run \`make system\` first" >&2
    exit 1
}

on_ram() { # on_ram DIR: true when DIR lives on tmpfs/ramfs
    local kind
    kind=$(stat -f -c %T "$1" 2>/dev/null) || return 1
    [[ $kind == tmpfs || $kind == ramfs ]]
}

base=
for candidate in "${BENCH_DIR:-}" "${TMPDIR:-/tmp}" /var/tmp "$repo/.run"; do
    [[ -n $candidate ]] || continue
    [[ $candidate == "$repo/.run" ]] && mkdir -p "$candidate"
    if [[ -d $candidate ]] && ! on_ram "$candidate"; then
        base=$candidate
        break
    fi
done
[[ -n $base ]] || {
    echo "run-bench: no directory on a real disk (set BENCH_DIR)" >&2
    exit 1
}
scratch=$(mktemp -d "$base/run-bench.XXXXXX")
bench=

# shellcheck disable=SC2317 # (called from the traps)
stop_bench() { # forward a stop to the bench (it stops its etcd and API server on SIGTERM), wait
    if [[ -n $bench ]] && kill -0 "$bench" 2>/dev/null; then
        kill -TERM "$bench" 2>/dev/null || true
        wait "$bench" 2>/dev/null || true
    fi
    bench=
}

# shellcheck disable=SC2317 # (shellcheck 0.9 does not see that the EXIT trap calls it)
cleanup() {
    stop_bench
    local pidfile pid what
    for pidfile in "$scratch"/*/*.pid; do
        [[ -f $pidfile ]] || continue
        while read -r pid; do
            # Only a process we started: its command line names our scratch dir.
            if [[ -n $pid && -r /proc/$pid/cmdline ]] &&
                tr '\0' ' ' <"/proc/$pid/cmdline" | grep -qF -- "$scratch"; then
                what=${pidfile##*/}
                echo "run-bench: stopping leftover ${what%.pid} (pid $pid)" >&2
                kill -TERM "$pid" 2>/dev/null || true
                for _ in {1..50}; do
                    kill -0 "$pid" 2>/dev/null || break
                    sleep 0.1
                done
                kill -KILL "$pid" 2>/dev/null || true
            fi
        done <"$pidfile"
    done
    rm -rf "$scratch"
}
trap cleanup EXIT
# A background job ignores SIGINT in a script: forward Ctrl-C (and kill) to the bench ourselves.
trap 'stop_bench; exit 130' INT
trap 'stop_bench; exit 143' TERM

run_bench() { # run_bench MODULE ARGS...: in the background, so that the traps above run at once
    local module=$1 rc=0
    shift
    .venv/bin/python -m "$module" --dir "$scratch" "$@" &
    bench=$!
    wait "$bench" || rc=$?
    bench=
    return "$rc"
}

status=0
run_bench bench.storage_bench "$@" || status=$?
echo
rc=0
run_bench bench.apiserver_bench "$@" || rc=$?
((status != 0)) || status=$rc
echo
rc=0
run_bench bench.scheduler_bench "$@" || rc=$?
((status != 0)) || status=$rc

# The kubelet and `up` benchmarks run on real Docker: the daemon that answers, or one they
# start with scripts/docker-daemon.sh and stop again. They remove the containers of the nodes
# they name; should one be killed outright, the trap below does it for them, after the
# cleanup above has stopped its `up`: the nodes listed in <its dir>/docker-nodes, and a
# dockerd it started (<its dir>/dockerd.started). A daemon they did not start is left alone.
# shellcheck disable=SC2317 # (called from the EXIT trap)
docker_leftovers() {
    local file node ids nodes=() started=0
    stop_bench # first: a bench that can still clean up after itself does so
    for file in "$scratch"/*/docker-nodes; do
        if [[ -f $file ]]; then mapfile -t -O "${#nodes[@]}" nodes <"$file"; fi
    done
    if compgen -G "$scratch/*/dockerd.started" >/dev/null; then started=1; fi
    cleanup
    if ((${#nodes[@]})) && command -v docker >/dev/null; then
        for node in "${nodes[@]}"; do
            ids=$(docker ps -aq --filter "label=io.minikube-py.node=$node" 2>/dev/null) || continue
            [[ -n $ids ]] || continue
            echo "run-bench: removing leftover containers of node $node" >&2
            # shellcheck disable=SC2086 # (one id per word)
            docker rm -f $ids >/dev/null 2>&1 || true
        done
    fi
    if ((started)); then scripts/docker-daemon.sh stop >&2 || true; fi
}
trap docker_leftovers EXIT
for module in bench.kubelet_bench bench.up_bench bench.portforward_bench bench.exec_bench; do
    echo
    rc=0
    run_bench "$module" "$@" || rc=$?
    ((status != 0)) || status=$rc
done
exit "$status"
