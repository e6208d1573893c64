#!/usr/bin/env bash
# scripts/run-tests.sh [pytest args] — what `make test` runs after `make install` and
# `make system`: a Docker daemon (started here only if none answers), the test images, then
# pytest (default: the whole suite). A daemon started here is stopped on the way out, whatever
# happens; the exit status is pytest's.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"
[[ -x .venv/bin/pytest ]] || {
    echo "run-tests: no .venv/bin/pytest: run \`make install\` first" >&2
    exit 1
}

started=0
# shellcheck disable=SC2317 # (shellcheck 0.9 does not see that the EXIT trap calls it)
cleanup() {
    if ((started)); then
        scripts/docker-daemon.sh stop || echo "run-tests: warning: dockerd did not stop" >&2
    fi
}
trap cleanup EXIT
trap 'exit 130' INT # exit (running the EXIT trap) on Ctrl-C / kill as well
trap 'exit 143' TERM

if ! scripts/docker-daemon.sh status >/dev/null 2>&1; then
    started=1
    scripts/docker-daemon.sh start
    # The daemon we started listens on the default socket: say so to every client (the docker
    # CLI, aiodocker, docker-py) rather than rely on each one's default.
    export DOCKER_HOST=${DOCKER_HOST:-unix:///var/run/docker.sock}
fi
scripts/images.sh

status=0
.venv/bin/pytest -ra "$@" || status=$?
exit "$status"
