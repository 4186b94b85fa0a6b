#!/usr/bin/env bash
# Installs every package in .ci/apt-packages.txt in one apt transaction (skips what is already there).
set -euo pipefail
cd "$(dirname "$0")/.."
mapfile -t wanted < <(sed -e 's/#.*//' -e 's/[[:space:]]*$//' -e 's/^[[:space:]]*//' -e '/^$/d' .ci/apt-packages.txt)
missing=()
for p in "${wanted[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
# tests/deploy/test_k8s_manifests.py renders the manifests with `kubectl kustomize`. Debian's kubectl
# (kubernetes-client) only where none is installed: another kubectl package may own /usr/bin/kubectl.
command -v kubectl >/dev/null || { apt-get update -qq; apt-get install -y -qq --no-install-recommends kubernetes-client; }
