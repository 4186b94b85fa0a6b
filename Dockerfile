# syntax=docker/dockerfile:1
# The Roundtable app: Chainlit on 0.0.0.0:7860, for a Hugging Face Space (Docker SDK) or `docker run`.
#   docker build -t roundtable .                       (base: python:3.11-slim)
#   docker build --build-arg BASE=<debian image> ...   (any Debian bookworm, with or without Python: CI
#                                                       builds from a debootstrapped base, .ci/app-image.sh)
# No secret is baked in: model keys, HF_TOKEN and CHAINLIT_AUTH_SECRET come from the environment at run time.
ARG BASE=python:3.11-slim
FROM ${BASE}

ARG DEBIAN_FRONTEND=noninteractive
# bubblewrap: the coder's sandbox where no Docker engine exists but namespaces are allowed (a container
# started with them allowed, a VM); ffmpeg: watch_video's frames and audio; stockfish: chess_position's engine;
# Debian's python3 only when the base has none.
RUN set -eux; \
    need="bubblewrap ca-certificates ffmpeg stockfish"; \
    command -v python3 >/dev/null 2>&1 || need="$need python3"; \
    python3 -c "import ensurepip, venv" >/dev/null 2>&1 || need="$need python3-venv"; \
    apt-get update; \
    apt-get install -y --no-install-recommends $need; \
    rm -rf /var/lib/apt/lists/* /var/cache/apt/archives/*.deb

# Spaces run the container as uid 1000; the app root must be writable (Chainlit writes .files/ there).
RUN useradd -m -u 1000 user \
    && install -d -o user -g user /home/user/app /home/user/.cache \
    && python3 -m venv /opt/venv && chown -R user:user /opt/venv
USER user
ENV HOME=/home/user \
    PATH=/opt/venv/bin:/usr/local/bin:/usr/bin:/bin \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /home/user/app

# An index of your own: --build-arg PIP_INDEX_URL=... (empty means PyPI).
ARG PIP_INDEX_URL=
# Optional extras of pyproject.toml, space-separated: `--build-arg EXTRAS=ray` for an image that serves as a
# Ray head or worker (deploy/k8s's RayJob); a Space needs none.
ARG EXTRAS=
COPY --chown=user pyproject.toml ./
# Dependencies in their own layer: it is rebuilt only when pyproject.toml changes, not on every code edit.
# pip trusts the system's CA store (so a base that trusts a TLS-intercepting proxy works, as CI's does).
RUN set -eux; \
    [ -n "$PIP_INDEX_URL" ] || unset PIP_INDEX_URL; \
    export PIP_CERT=/etc/ssl/certs/ca-certificates.crt; \
    python3 -c "import sys, tomllib; p = tomllib.load(open('pyproject.toml', 'rb'))['project']; print('\n'.join(p['dependencies'] + [d for e in sys.argv[1:] for d in p['optional-dependencies'][e]]))" $EXTRAS > /tmp/requirements.txt; \
    pip install -r /tmp/requirements.txt; \
    pip check; \
    rm -f /tmp/requirements.txt

# The coder's sandbox where a Space runs (no Docker engine; Docker's default seccomp forbids bubblewrap's
# namespaces): CPython on WebAssembly (Pyodide) under Deno (the `deno` wheel, installed above). Its runtime
# is fetched here, once, into a root-owned directory the app (uid 1000) can read but not change; a run never
# downloads anything. numpy and pandas for Pyodide are not on PyPI: they come from Pyodide's package index
# when this build reaches it (a Space's build does); otherwise the build says so and goes on, and wasm
# programs get the standard library and openpyxl. Its own layer: rebuilt only when the installer
# (sandbox/wasm_runtime.py) or the dependencies change.
#   --build-arg PYODIDE_INDEX_URL=<a mirror of Pyodide's index>, or empty to skip numpy and pandas.
ARG PYODIDE_INDEX_URL=https://cdn.jsdelivr.net/pyodide/v{version}/full/
ARG PYODIDE_PACKAGES="numpy pandas"
# The npm registry the pinned, integrity-checked pyodide package comes from (empty: registry.npmjs.org).
ARG NPM_CONFIG_REGISTRY=
ENV SANDBOX_WASM_DIR=/opt/roundtable-wasm
COPY sandbox/wasm_runtime.py /tmp/wasm-install/
USER root
RUN set -eu; \
    [ -n "$PIP_INDEX_URL" ] || unset PIP_INDEX_URL; \
    export PIP_CERT=/etc/ssl/certs/ca-certificates.crt SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt; \
    printf '%s\n' \
      'import sys, wasm_runtime as w' \
      'from pathlib import Path' \
      'index = sys.argv[1].replace("{version}", w.PYODIDE_VERSION)' \
      'try:' \
      '    m = w.install(Path(sys.argv[2]), sys.argv[3:], pyodide_index=index or None)' \
      'except w.WasmInstallError as exc:' \
      '    sys.exit(f"install-wasm: {exc}")' \
      'print("install-wasm: Pyodide", m["pyodide"], "with", ", ".join(m["lock_packages"] + m["wheels"]))' \
      > /tmp/wasm-install/install.py; \
    python3 /tmp/wasm-install/install.py "" "$SANDBOX_WASM_DIR" openpyxl; \
    if [ -z "$PYODIDE_INDEX_URL" ] || [ -z "$PYODIDE_PACKAGES" ]; then \
      echo "install-wasm: no Pyodide index given: wasm programs get no numpy or pandas"; \
    elif ! python3 /tmp/wasm-install/install.py "$PYODIDE_INDEX_URL" "$SANDBOX_WASM_DIR" $PYODIDE_PACKAGES; then \
      echo "install-wasm: WARNING: Pyodide's package index did not serve $PYODIDE_PACKAGES (see above): wasm" \
           "programs in this image get none of them; the build goes on"; \
    fi; \
    chmod -R a+rX,go-w "$SANDBOX_WASM_DIR"; \
    rm -rf /tmp/wasm-install
USER user

COPY --chown=user . .
ARG ROUNDTABLE_COMMIT=unknown
# `auto` takes docker > bwrap > wasm. The unisolated subprocess backend is never enabled here: a developer
# opts in on their own machine (SANDBOX_ALLOW_SUBPROCESS=1). With no isolated backend the team runs
# without `run_python` and says so.
ENV ROUNDTABLE_COMMIT=${ROUNDTABLE_COMMIT} \
    SANDBOX_BACKEND=auto \
    ROUNDTABLE_CACHE_DIR=/home/user/.cache/roundtable \
    CHAINLIT_HOST=0.0.0.0 \
    CHAINLIT_PORT=7860

EXPOSE 7860
HEALTHCHECK --interval=15s --timeout=5s --start-period=40s --retries=3 \
    CMD python3 -c "import json, urllib.request as u; r = u.urlopen('http://127.0.0.1:7860/healthz', timeout=4); assert json.load(r)['status'] == 'ok'"
# PID 1 hides the container's environment (the secrets) from same-user code and reaps orphans.
ENTRYPOINT ["python3", "-m", "sandbox.pid1"]
# `env -u CI`: Chainlit's CI mode would replace OPENAI_API_KEY with a fake one.
CMD ["env", "-u", "CI", "chainlit", "run", "chainlit_app.py", "--headless", "--host", "0.0.0.0", "--port", "7860"]
