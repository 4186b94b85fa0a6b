#!/usr/bin/env bash
# Prints the name of a minimal Debian bookworm image for CI's builds, making it first if it is missing.
# There is no image registry here: the base is `debootstrap --variant=minbase` + `docker import`.
# It carries what both CI images need from Debian (python3 + venv for pip, bubblewrap for the app,
# stockfish for the sandbox) and trusts the CA certificates this host trusts (a TLS-intercepting egress
# proxy's among them), so pip inside `docker build` reaches PyPI the way pip here does.
#   DEBIAN_MIRROR   debootstrap's mirror (default http://deb.debian.org/debian)
#   BASE_REBUILD=1  build it again
set -euo pipefail
cd "$(dirname "$0")/.."
SUITE=bookworm
PACKAGES=python3,python3-venv,ca-certificates,bubblewrap,stockfish
DEBIAN_MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
extra_cas=$(ls /usr/local/share/ca-certificates/*.crt 2>/dev/null || true)
tag=$( { echo "$SUITE $PACKAGES"; [ -z "$extra_cas" ] || cat $extra_cas; } | sha256sum | cut -c1-12)
NAME="roundtable-base:$SUITE-$tag"
log() { echo "debian-base: $*" >&2; }

if [ -z "${BASE_REBUILD:-}" ] && docker image inspect "$NAME" >/dev/null 2>&1; then
  echo "$NAME"
  exit 0
fi
[ "$(id -u)" = 0 ] || { log "debootstrap needs root"; exit 1; }
command -v debootstrap >/dev/null || { log "install debootstrap (apt-get install debootstrap)"; exit 1; }
rootfs=$(mktemp -d /var/tmp/roundtable-rootfs.XXXXXX)
trap 'rm -rf "$rootfs" "$rootfs.log"' EXIT
log "debootstrap $SUITE ($PACKAGES) from $DEBIAN_MIRROR"
debootstrap --variant=minbase --include="$PACKAGES" "$SUITE" "$rootfs" "$DEBIAN_MIRROR" >"$rootfs.log" 2>&1 \
  || { tail -n 30 "$rootfs.log" >&2; exit 1; }
if [ -n "$extra_cas" ]; then
  cp $extra_cas "$rootfs/usr/local/share/ca-certificates/"
  chroot "$rootfs" update-ca-certificates >/dev/null 2>&1
fi
# Downloaded .debs, apt lists, docs and translations are not needed at run time.
rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/* \
       "$rootfs"/usr/share/doc/* "$rootfs"/usr/share/man/* "$rootfs"/usr/share/locale/*
tar -C "$rootfs" -c . | docker import -c 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' - "$NAME" >/dev/null
log "imported $NAME"
echo "$NAME"
