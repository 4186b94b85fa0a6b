#!/usr/bin/env bash
# Builds the coder's sandbox image (sandbox/Dockerfile) without any image registry:
#   1. the base is the minimal Debian of .ci/debian-base.sh (debootstrap + docker import, with Debian's
#      python3, venv and stockfish);
#   2. `docker build --build-arg BASE=<that base>` adds the pinned Python libraries from PyPI.
# Skips the build when an image with the same content hash exists (SANDBOX_REBUILD=1 forces it).
#
# Settings (environment):
#   SANDBOX_IMAGE   the image to build (default roundtable-sandbox:latest, the app's default too)
#   SANDBOX_BASE    use this base image instead of debootstrapping one (e.g. python:3.11-slim with a registry)
# pip settings of this host (index, extra index, trusted host, CA bundle of a TLS-intercepting proxy) are
# passed into the build so pip inside it reaches PyPI the way pip here does; file:// indexes are skipped.
set -euo pipefail
cd "$(dirname "$0")/.."

IMAGE=${SANDBOX_IMAGE:-roundtable-sandbox:latest}
BASE=${SANDBOX_BASE:-}
started=$(date +%s)
log() { echo "sandbox-image: $* ($(( $(date +%s) - started ))s)"; }

if ! docker info >/dev/null 2>&1; then
  echo "sandbox-image: no Docker engine answers (start one with .ci/start-docker.sh)" >&2
  exit 1
fi

[ -n "$BASE" ] || BASE=$(.ci/debian-base.sh)   # debootstrapped once, shared with the app image
hash=$( { cat sandbox/Dockerfile sandbox/image-requirements.txt; echo "$BASE"; } | sha256sum | cut -c1-16)
if [ -z "${SANDBOX_REBUILD:-}" ] \
   && [ "$(docker image inspect -f '{{ index .Config.Labels "org.roundtable.sandbox.hash" }}' "$IMAGE" 2>/dev/null)" = "$hash" ]; then
  log "$IMAGE is up to date ($hash)"
  exit 0
fi

context=$(mktemp -d)
trap 'rm -rf "$context"' EXIT
cp sandbox/Dockerfile sandbox/image-requirements.txt "$context/"

# pip's settings here -> build args (pip inside the build has no access to this host's files).
pip_setting() {  # the last value pip reports for a key (env overrides files), or nothing
  local key=$1 value=""
  if command -v python3 >/dev/null && python3 -m pip --version >/dev/null 2>&1; then
    value=$(python3 -m pip config list 2>/dev/null | sed -n "s/^[^=]*\.$key='\(.*\)'$/\1/p" | tail -n 1)
  fi
  printf '%s' "$value"
}
remote_only() { tr ' ' '\n' | grep -E '^https?://' | paste -sd ' ' - || true; }
cert=${PIP_CERT:-$(pip_setting cert)}
index=$(printf '%s' "${PIP_INDEX_URL:-$(pip_setting index-url)}" | remote_only)
extra=$(printf '%s' "${PIP_EXTRA_INDEX_URL:-$(pip_setting extra-index-url)}" | remote_only)
trusted=${PIP_TRUSTED_HOST:-$(pip_setting trusted-host)}
if [ -n "$cert" ] && [ -f "$cert" ]; then cp "$cert" "$context/pip-ca.pem"; fi
build_args=(--build-arg "BASE=$BASE" --build-arg "CONTENT_HASH=$hash"
            --build-arg "PIP_INDEX_URL=$index" --build-arg "PIP_EXTRA_INDEX_URL=$extra"
            --build-arg "PIP_TRUSTED_HOST=$trusted")
for proxy in http_proxy https_proxy no_proxy HTTP_PROXY HTTPS_PROXY NO_PROXY; do
  if [ -n "${!proxy:-}" ]; then build_args+=(--build-arg "$proxy=${!proxy}"); fi
done

log "docker build $IMAGE from $BASE${cert:+ (pip CA bundle: $cert)}"
# The classic builder: it needs no buildx plugin, and the build has one linear stage anyway.
DOCKER_BUILDKIT=0 docker build --force-rm "${build_args[@]}" -t "$IMAGE" "$context" >"$context/build.log" 2>&1 \
  || { tail -n 40 "$context/build.log" >&2; exit 1; }
docker run --rm --network none "$IMAGE" python3 -c \
  "import numpy, pandas, openpyxl, sympy, scipy, chess, pypdf, shutil; assert shutil.which('stockfish')" \
  || { echo "sandbox-image: the built image fails its import check" >&2; exit 1; }
log "built $IMAGE ($(docker image inspect -f '{{.Size}}' "$IMAGE" | awk '{printf "%d MB", $1/1e6}'))"
