#!/usr/bin/env bash
# Builds the coder's sandbox image (owned by the sandbox issue; see sandbox/README section).
set -euo pipefail
echo "sandbox image: not built yet"
