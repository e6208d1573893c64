#!/usr/bin/env bash
# scripts/run-bench.sh [bench args, e.g. --quick] — what `make bench` runs after `make install`
# and `make system`: the storage benchmark (`python -m bench.storage_bench`), which starts its own
# single etcd member on free loopback ports and stops it. Nothing else is started here.
#
# The data goes to a scratch dir on a real disk (never tmpfs, where fsync costs nothing): the
# first of $BENCH_DIR, $TMPDIR or /tmp, /var/tmp, .run that is not a RAM filesystem. On the way
# out, whatever happens, the scratch dir is removed, and an etcd the bench left behind (only if
# the bench itself was killed outright) is stopped by the pid the bench recorded. The exit
# status is the bench's: non-zero only when it failed, never because a figure is low.
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
stop_bench() { # forward a stop to the bench (it stops its etcd on SIGTERM) and wait for it
    if [[ -n $bench ]] && kill -0 "$bench" 2>/dev/null; then
        kill -TERM "$bench" 2>/dev/null || true
        wait "$bench" 2>/dev/null || true
    fi
    bench=
}

# shellcheck disable=SC2317 # (shellcheck 0.9 does not see that the EXIT trap calls it)
cleanup() {
    stop_bench
    local pidfile pid
    for pidfile in "$scratch"/*/etcd.pid; do
        [[ -f $pidfile ]] || continue
        while read -r pid; do
            # Only a process we started: its command line names our scratch dir.
            if [[ -n $pid && -r /proc/$pid/cmdline ]] &&
                tr '\0' ' ' <"/proc/$pid/cmdline" | grep -qF -- "$scratch"; then
                echo "run-bench: stopping leftover etcd (pid $pid)" >&2
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

# In the background so that the traps above run at once rather than after the bench ends.
.venv/bin/python -m bench.storage_bench --dir "$scratch" "$@" &
bench=$!
status=0
wait "$bench" || status=$?
bench=
exit "$status"
