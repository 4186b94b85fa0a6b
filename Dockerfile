# syntax=docker/dockerfile:1
# The Roundtable app: Chainlit on 0.0.0.0:7860, for a Hugging Face Space (Docker SDK) or `docker run`.
#   docker build -t roundtable .                       (base: python:3.11-slim)
#   docker build --build-arg BASE=<debian image> ...   (any Debian bookworm, with or without Python: CI
#                                                       builds from a debootstrapped base, .ci/app-image.sh)
# No secret is baked in: model keys, HF_TOKEN and CHAINLIT_AUTH_SECRET come from the environment at run time.
ARG BASE=python:3.11-slim
FROM ${BASE}

ARG DEBIAN_FRONTEND=noninteractive
# bubblewrap: the coder's sandbox where no Docker engine exists (a Space); Debian's python3 only when the
# base has none.
RUN set -eux; \
    need="bubblewrap ca-certificates"; \
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
COPY --chown=user pyproject.toml ./
# Dependencies in their own layer: it is rebuilt only when pyproject.toml changes, not on every code edit.
# pip trusts the system's CA store (so a base that trusts a TLS-intercepting proxy works, as CI's does).
RUN set -eux; \
    [ -n "$PIP_INDEX_URL" ] || unset PIP_INDEX_URL; \
    export PIP_CERT=/etc/ssl/certs/ca-certificates.crt; \
    python3 -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" > /tmp/requirements.txt; \
    pip install -r /tmp/requirements.txt; \
    pip check; \
    rm -f /tmp/requirements.txt

COPY --chown=user . .
ARG ROUNDTABLE_COMMIT=unknown
# In a Space, Docker's seccomp profile usually forbids bubblewrap's namespaces; the sandbox then falls back to
# the subprocess backend (environment scrubbed, rlimits, timeout) with a warning in the logs and the UI.
ENV ROUNDTABLE_COMMIT=${ROUNDTABLE_COMMIT} \
    SANDBOX_BACKEND=auto \
    SANDBOX_ALLOW_SUBPROCESS=true \
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
