#!/usr/bin/env bash
# Make sure the images the tests use exist locally:
#   registry.k8s.io/pause:3.10            the pod sandbox (kubelet's default)
#   busybox:1.35 (+ busybox:latest)       the workhorse of test pods
# Present: nothing to do. Missing: try `docker pull` (bounded, as offline machines fail or hang),
# then build offline from what Debian gives us: our own static pause (scripts/pause/pause.c) and
# Debian's static busybox (busybox-static, 1.35 on Debian 12).
#
# IMAGES_OFFLINE=1 skips the pull; IMAGES_PULL_TIMEOUT (seconds, default 30) bounds it.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
pause_image=registry.k8s.io/pause:3.10
busybox_image=busybox:1.35
pull_timeout=${IMAGES_PULL_TIMEOUT:-30}
# Docker's default PATH, spelled out because `docker import` gives the image no environment.
default_path=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin

die() {
    echo "images: $*" >&2
    exit 1
}

is_static() { # the rootfs gets this one file, no shared libraries
    local out
    [[ -x $1 ]] || return 1
    out=$(LC_ALL=C ldd "$1" 2>&1) || true # ldd fails on a static binary: that is the answer
    [[ $out == *"not a dynamic executable"* || $out == *"statically linked"* ]]
}

have_image() { docker image inspect "$1" >/dev/null 2>&1; }

try_pull() {
    [[ ${IMAGES_OFFLINE:-0} != 1 ]] || return 1
    local out
    if out=$(timeout "$pull_timeout" docker pull -q "$1" 2>&1); then
        echo "images: pulled $1"
        return 0
    fi
    echo "images: cannot pull $1 (${out##*$'\n'}); building it offline"
    return 1
}

tmp=
workdir() { # a scratch dir, created on first use, removed on exit
    if [[ -z $tmp ]]; then
        tmp=$(mktemp -d)
        trap 'rm -rf "$tmp"' EXIT
    fi
}

import_rootfs() { # import_rootfs DIR IMAGE --change ...: a rootfs owned by root, as one layer
    local dir=$1 image=$2
    shift 2
    tar --numeric-owner --owner=0 --group=0 -C "$dir" -c . |
        docker import --message "built offline by minikube-py scripts/images.sh" "$@" - "$image" \
            >/dev/null
}

build_pause() {
    command -v gcc >/dev/null || die "gcc is missing: run scripts/setup-system.sh"
    workdir
    mkdir "$tmp/pause"
    # Static: the image holds this one file and no libc. -s strips it (~700 KB with glibc).
    gcc -static -O2 -s -Wall -Wextra -Werror -o "$tmp/pause/pause" "$here/pause/pause.c"
    # USER 65535 as upstream's pause: it needs no privilege at all.
    import_rootfs "$tmp/pause" "$pause_image" \
        --change 'ENTRYPOINT ["/pause"]' --change 'USER 65535:65535'
    echo "images: built $pause_image from scripts/pause/pause.c"
}

build_busybox() {
    local bb=/bin/busybox root applet path
    is_static "$bb" ||
        die "$bb is missing or not static (Debian: busybox-static): run scripts/setup-system.sh"
    workdir
    root=$tmp/busybox
    mkdir -p "$root"/{bin,sbin,usr/bin,usr/sbin,etc,root,tmp,var/www,home}
    chmod 1777 "$root/tmp"
    chmod 700 "$root/root"
    cp "$bb" "$root/bin/busybox"
    # Every applet in /bin, as upstream's busybox image (PATH finds them all there) ...
    while read -r applet; do # (read, not a word list: `[` and `[[` are applets)
        [[ $applet == busybox ]] || ln -s busybox "$root/bin/$applet"
    done < <("$bb" --list)
    # ... and also at its usual place (usr/bin/env, sbin/ifconfig, ...) for absolute paths.
    while read -r path; do
        [[ $path == */* && $path != bin/* ]] || continue
        ln -s /bin/busybox "$root/$path"
    done < <("$bb" --list-full)
    # Known gap of Debian's 1.35 build (no FEATURE_WGET_TIMEOUT): `wget -T N` segfaults;
    # use `timeout N wget ...` in test pods instead.
    printf '%s\n' 'root:x:0:0:root:/root:/bin/sh' \
        'nobody:x:65534:65534:nobody:/nonexistent:/bin/false' >"$root/etc/passwd"
    printf '%s\n' 'root:x:0:' 'nobody:x:65534:' >"$root/etc/group"
    import_rootfs "$root" "$busybox_image" --change 'CMD ["sh"]' --change "ENV PATH=$default_path"
    echo "images: built $busybox_image from $bb" \
        "($("$bb" 2>&1 | sed -n '1s/^BusyBox \(v[^ ]*\).*/\1/p'))"
}

command -v docker >/dev/null || die "no docker CLI: run scripts/setup-system.sh"
timeout 10 docker version >/dev/null 2>&1 || die "no Docker daemon answers: run scripts/docker-daemon.sh start"

if ! have_image "$pause_image"; then
    try_pull "$pause_image" || build_pause
fi

if ! have_image "$busybox_image"; then
    try_pull "$busybox_image" || build_busybox
    # A freshly built image gets a smoke test: a broken one should fail here, not in a pod.
    [[ $(docker run --rm "$busybox_image" sh -c 'echo hi') == hi ]] ||
        die "$busybox_image does not run \`sh -c 'echo hi'\`"
fi
# An existing busybox:latest (say, a pulled newer one) is kept.
have_image busybox:latest || docker tag "$busybox_image" busybox:latest
echo "images: $pause_image, $busybox_image, busybox:latest present"
