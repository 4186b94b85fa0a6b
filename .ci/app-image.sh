#!/usr/bin/env bash
# Builds the app image (Dockerfile) for the container tests (tests/deploy/), from CI's debootstrapped Debian
# base (.ci/debian-base.sh: no image registry here); pip inside the build reaches PyPI, the wasm sandbox's
# installer the npm registry (and Pyodide's package index where it answers: not here).
#   APP_IMAGE  the tag to build (default roundtable:ci)
#   APP_BASE   build on this base instead (e.g. python:3.11-slim where a registry answers)
#   PYODIDE_INDEX_URL, PYODIDE_PACKAGES, NPM_CONFIG_REGISTRY   passed to the build when set (see Dockerfile)
set -euo pipefail
cd "$(dirname "$0")/.."
IMAGE=${APP_IMAGE:-roundtable:ci}
BASE=${APP_BASE:-$(.ci/debian-base.sh)}
started=$(date +%s)
commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
args=(--build-arg "BASE=$BASE" --build-arg "ROUNDTABLE_COMMIT=$commit")
# Pyodide's package index (numpy, pandas for the wasm sandbox) and the npm registry, when set here.
for name in PYODIDE_INDEX_URL PYODIDE_PACKAGES NPM_CONFIG_REGISTRY; do
  if [ -n "${!name+x}" ]; then args+=(--build-arg "$name=${!name}"); fi
done
for proxy in http_proxy https_proxy no_proxy HTTP_PROXY HTTPS_PROXY NO_PROXY; do
  if [ -n "${!proxy:-}" ]; then args+=(--build-arg "$proxy=${!proxy}"); fi
done
log=$(mktemp)
trap 'rm -f "$log"' EXIT
echo "app-image: docker build $IMAGE from $BASE" >&2
# The classic builder needs no buildx plugin (Debian's docker.io has none).
DOCKER_BUILDKIT=0 docker build --force-rm "${args[@]}" -t "$IMAGE" . >"$log" 2>&1 || { tail -n 40 "$log" >&2; exit 1; }
# What the wasm sandbox got (numpy and pandas only where Pyodide's package index answered the build).
sed 's/\x1b\[[0-9;]*m//g' "$log" | grep -v '^Step ' | grep -o 'install-wasm: .*' | sed 's/^/app-image: /' >&2 || true
size=$(docker image inspect -f '{{.Size}}' "$IMAGE" | awk '{printf "%d MB", $1/1e6}')
echo "app-image: built $IMAGE ($size) in $(( $(date +%s) - started ))s" >&2
