#!/usr/bin/env bash
# Starts a Docker engine if none answers, and waits until it does (CI and `make sandbox-image` on a host
# without a running engine). Needs root and the docker.io package (.ci/apt-packages.txt).
set -euo pipefail
if docker info >/dev/null 2>&1; then exit 0; fi
if ! command -v dockerd >/dev/null; then
  echo "start-docker: dockerd is not installed (apt-get install docker.io)" >&2
  exit 1
fi
mkdir -p /var/log
(dockerd >/var/log/dockerd.log 2>&1 &)
for _ in $(seq 1 60); do
  if docker info >/dev/null 2>&1; then echo "docker engine is up"; exit 0; fi
  sleep 1
done
echo "docker engine did not start; last log lines:" >&2
tail -n 30 /var/log/dockerd.log >&2
exit 1
