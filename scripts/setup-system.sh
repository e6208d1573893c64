#!/usr/bin/env bash
# Install the system packages the tests and the demo need, and only the missing ones.
#
# Debian (or a derivative) as root: apt-get installs what is missing; nothing present means no
# apt-get at all, so a second run takes a fraction of a second. Anywhere else: print what is
# missing and how to get it, exit 1 (exit 0 when nothing is missing).
set -euo pipefail

# dockerd lives in /usr/sbin, which a non-root PATH often lacks.
PATH=$PATH:/usr/local/sbin:/usr/sbin:/sbin

packages=() # Debian packages to install
missing=()  # what is missing, for humans

need() { # need PACKAGE WHAT
    packages+=("$1")
    missing+=("$2 (Debian package $1)")
}

has() { command -v "$1" >/dev/null 2>&1; }

static_binary() { # the pause and busybox images copy it into a rootfs without libraries
    local out
    [[ -x $1 ]] || return 1
    out=$(LC_ALL=C ldd "$1" 2>&1) || true # ldd fails on a static binary: that is the answer
    [[ $out == *"not a dynamic executable"* || $out == *"statically linked"* ]]
}

static_libc() { # gcc -static needs libc.a; gcc answers a bare "libc.a" when it has none
    has gcc && [[ $(gcc -print-file-name=libc.a) == /* ]]
}

has dockerd || need docker.io "dockerd, the Docker daemon"
has docker || need docker.io "docker, the Docker CLI"
has etcd || need etcd-server "etcd"
has etcdctl || need etcd-client "etcdctl"
static_binary /bin/busybox || need busybox-static "a statically linked /bin/busybox"
has docker-registry || need docker-registry "docker-registry, a local image registry"
has gcc || need gcc "gcc, to build the pause image"
static_libc || need libc6-dev "static libc (libc.a), for gcc -static"

if ((${#packages[@]} == 0)); then
    echo "setup-system: everything is present"
    exit 0
fi

# Deduplicate (docker.io covers both dockerd and docker).
mapfile -t packages < <(printf '%s\n' "${packages[@]}" | sort -u)

if [[ ! -r /etc/debian_version ]] || ! has apt-get || [[ $(id -u) -ne 0 ]]; then
    echo "setup-system: missing:" >&2
    printf '  - %s\n' "${missing[@]}" >&2
    if [[ -r /etc/debian_version ]] && has apt-get; then
        echo "Install them as root: sudo $0   (or: sudo apt-get install ${packages[*]})" >&2
    else
        echo "Install them with your system's package manager (Docker Engine, etcd v3.4+," \
            "a static busybox at /bin/busybox, the distribution registry, gcc with static libc)." >&2
    fi
    exit 1
fi

echo "setup-system: installing ${packages[*]}"
export DEBIAN_FRONTEND=noninteractive
export NEEDRESTART_MODE=l # needrestart (a docker.io recommend) lists, never restarts services

# Forbid service starts during the install: etcd-server would take port 2379 (which `make demo`
# uses; tests pick free ports) and docker-registry port 5000. Debian's maintainer scripts ask
# /usr/sbin/policy-rc.d first; 101 means "forbidden". Keep an existing policy as it is.
policy=/usr/sbin/policy-rc.d
if [[ ! -e $policy ]]; then
    printf '#!/bin/sh\n# temporary, from minikube-py scripts/setup-system.sh\nexit 101\n' >"$policy"
    chmod 755 "$policy"
    trap 'rm -f "$policy"' EXIT
fi

apt-get update -q
apt-get install -y -q "${packages[@]}"

# The packages still enable their services for the next boot (and an existing permissive policy
# may have let them start): disable and stop the ones we just installed that hold fixed ports.
for pkg in "${packages[@]}"; do
    case $pkg in
        etcd-server) service=etcd ;;
        docker-registry) service=docker-registry ;;
        *) continue ;;
    esac
    if [[ -d /run/systemd/system ]]; then
        systemctl disable --now "$service.service" >/dev/null 2>&1 || true
    else
        update-rc.d "$service" disable >/dev/null 2>&1 || true
        service "$service" stop >/dev/null 2>&1 || true
    fi
    echo "setup-system: $service service disabled (enable it yourself if you want a system $service)"
done

if has ss && [[ -n $(ss -Hltn 'sport = :2379') ]]; then
    echo "setup-system: warning: something still listens on port 2379 (make demo uses it):" >&2
    ss -ltnp 'sport = :2379' >&2 || true
fi
echo "setup-system: done"
