#!/usr/bin/env bash
# scripts/docker-daemon.sh start|stop|status — a Docker daemon for the tests, when none runs.
#
# start:  if a daemon answers (DOCKER_HOST, or the default /var/run/docker.sock) do nothing and
#         record nothing. Otherwise run dockerd in the background (own session, so Ctrl-C in the
#         caller's terminal does not reach it), log and pid file in <repo>/.run/, and wait until
#         it answers. Storage driver: overlay2, falling back to vfs where overlay2 fails (e.g.
#         /var/lib/docker on overlayfs); the one that worked is tried first next time (no
#         failed attempt per start); DOCKERD_STORAGE_DRIVER overrides the choice.
# stop:   stop only a daemon this script started (its pid file), and wait for it to exit.
# status: whether a daemon answers, and who started it. Exit 0 if one answers, else 1.
#
# The docker CLI (even a newer one, e.g. 28.x) negotiates the API version with the daemon
# (20.10 = API 1.41), so DOCKER_API_VERSION is not needed.
set -euo pipefail

PATH=$PATH:/usr/local/sbin:/usr/sbin:/sbin
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
run_dir=$repo/.run
pid_file=$run_dir/dockerd.pid # written (and removed on clean exit) by dockerd itself
log_file=$run_dir/dockerd.log
driver_file=$run_dir/dockerd.storage-driver # the driver that worked last time
start_timeout=${DOCKERD_START_TIMEOUT:-60}
stop_timeout=${DOCKERD_STOP_TIMEOUT:-60}

die() {
    echo "docker-daemon: $*" >&2
    exit 1
}

answers() { # a bounded wait: a DOCKER_HOST over TCP could otherwise hang
    timeout 10 docker version --format '{{.Server.Version}}' >/dev/null 2>&1
}

alive() { # a zombie counts as dead: it is only waiting for its new parent to reap it
    local state
    state=$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f1) || return 1
    [[ -n $state && $state != Z ]]
}

our_pid() { # prints the pid of the dockerd this script started, if it still runs
    local pid
    [[ -r $pid_file ]] || return 1
    pid=$(<"$pid_file")
    [[ $pid =~ ^[0-9]+$ ]] && alive "$pid" && [[ $(<"/proc/$pid/comm") == dockerd ]] || return 1
    echo "$pid"
}

wait_answer() { # wait_answer PID: until the daemon answers; fail early if PID exits
    local deadline=$((SECONDS + start_timeout))
    until answers; do
        alive "$1" || return 1
        ((SECONDS < deadline)) || return 1
        sleep 0.2
    done
}

stop_pid() { # stop_pid PID: SIGTERM (dockerd stops its containers) and wait; SIGKILL as last resort
    local pid=$1 deadline=$((SECONDS + stop_timeout))
    kill -TERM "$pid" 2>/dev/null || true
    while alive "$pid" && ((SECONDS < deadline)); do sleep 0.1; done
    if alive "$pid"; then
        echo "docker-daemon: dockerd $pid still runs after ${stop_timeout}s: SIGKILL" >&2
        kill -KILL "$pid" 2>/dev/null || true
        deadline=$((SECONDS + 10))
        while alive "$pid"; do
            ((SECONDS < deadline)) || die "dockerd $pid survives SIGKILL"
            sleep 0.1
        done
    fi
}

cmd_start() {
    command -v docker >/dev/null || die "no docker CLI: run scripts/setup-system.sh"
    if answers; then
        echo "docker-daemon: a daemon already answers (${DOCKER_HOST:-unix:///var/run/docker.sock}), nothing to do"
        return 0
    fi
    local pid
    if pid=$(our_pid); then # ours, still starting (or hung): wait rather than start a second one
        wait_answer "$pid" || die "dockerd $pid (ours) does not answer; log: $log_file"
        echo "docker-daemon: dockerd $pid (started earlier by this script) answers"
        return 0
    fi
    # We only ever start a daemon on the default socket; a DOCKER_HOST elsewhere would never answer.
    [[ -z ${DOCKER_HOST:-} || ${DOCKER_HOST} == unix:///var/run/docker.sock ||
        ${DOCKER_HOST} == unix:///run/docker.sock ]] ||
        die "DOCKER_HOST=$DOCKER_HOST does not answer: start that daemon, or unset DOCKER_HOST"
    [[ $(id -u) -eq 0 ]] || die "no Docker daemon answers and starting dockerd needs root"
    command -v dockerd >/dev/null || die "dockerd not found: run scripts/setup-system.sh"

    mkdir -p "$run_dir"
    rm -f "$pid_file" # stale: its process is gone (our_pid said so)
    : >"$log_file"
    local driver drivers=(overlay2 vfs) tried=" " remember=1
    if [[ -n ${DOCKERD_STORAGE_DRIVER:-} ]]; then # a one-off choice: not remembered
        read -ra drivers <<<"$DOCKERD_STORAGE_DRIVER"
        remember=0
    elif [[ -r $driver_file ]]; then
        drivers=("$(<"$driver_file")" "${drivers[@]}")
    fi
    for driver in "${drivers[@]}"; do
        [[ $tried == *" $driver "* ]] && continue
        tried+="$driver "
        echo "=== $(date -Is) dockerd --storage-driver $driver" >>"$log_file"
        setsid dockerd --storage-driver "$driver" --pidfile "$pid_file" \
            </dev/null >>"$log_file" 2>&1 &
        pid=$!
        if wait_answer "$pid"; then
            ((remember == 0)) || echo "$driver" >"$driver_file"
            echo "docker-daemon: started dockerd $pid (storage driver $driver); log $log_file"
            return 0
        fi
        stop_pid "$pid"
        rm -f "$pid_file"
        echo "docker-daemon: dockerd did not come up with storage driver $driver" >&2
    done
    echo "docker-daemon: last lines of $log_file (without gRPC chatter):" >&2
    grep -v 'module=grpc' "$log_file" | tail -n 20 >&2
    exit 1
}

cmd_stop() {
    local pid
    if ! pid=$(our_pid); then
        if [[ -e $pid_file ]]; then
            rm -f "$pid_file"
            echo "docker-daemon: removed a stale pid file (its dockerd is gone)"
        fi
        if answers; then
            echo "docker-daemon: the daemon that answers was not started by this script: left alone"
        else
            echo "docker-daemon: no daemon started by this script runs"
        fi
        return 0
    fi
    stop_pid "$pid"
    rm -f "$pid_file"
    echo "docker-daemon: stopped dockerd $pid"
}

cmd_status() {
    local pid up=1 version driver
    if answers; then
        up=0
        version=$(docker version --format '{{.Server.Version}}' 2>/dev/null || true)
        driver=$(docker info --format '{{.Driver}}' 2>/dev/null || true)
        echo "docker: a daemon answers at ${DOCKER_HOST:-unix:///var/run/docker.sock}" \
            "(server $version, storage driver $driver)"
    else
        echo "docker: no daemon answers"
    fi
    if pid=$(our_pid); then
        echo "docker: dockerd $pid was started by scripts/docker-daemon.sh (log $log_file)"
    elif ((up == 0)); then
        echo "docker: it was not started by this script (a system service or someone else)"
    fi
    return "$up"
}

case ${1:-} in
    start) cmd_start ;;
    stop) cmd_stop ;;
    status) cmd_status ;;
    *)
        echo "usage: $0 start|stop|status" >&2
        exit 2
        ;;
esac
