# video-analytics-engine: every entry point a developer or CI needs.
# `make up` runs the engine; `make test` passes the tests. Both set themselves up.

SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV ?= .venv
PY := $(VENV)/bin/python
VAE := $(VENV)/bin/vae
# The newest Python >= 3.11 on PATH builds the venv.
PYTHON ?= $(shell for p in python3.13 python3.12 python3.11 python3; do \
	command -v $$p >/dev/null 2>&1 && $$p -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null && { echo $$p; break; }; done)
STAMP := $(VENV)/.installed
PYTEST_ARGS ?=
# Extras installed into .venv for every target.
EXTRAS ?= dev
# Extras `make test` adds: torch lets the tests run the torch backend on the CPU. On the
# machines this project is developed on pip takes a local CPU wheel; elsewhere PyPI's
# default torch build is large (CUDA). TEST_EXTRAS= skips it: those tests then skip, saying why.
TEST_EXTRAS ?= torch
comma := ,
TEST_STAMP := $(VENV)/.installed-test-$(subst $(comma),-,$(TEST_EXTRAS))

# Models and sample media are never committed: they sit in ../shared beside the checkout.
# A clone of a local checkout (say, a fresh clone made to test it) has no ../shared of its
# own, so it uses the shared/ beside the checkout it was cloned from.
ifeq ($(wildcard ../shared),)
ORIGIN_SHARED := $(shell o=$$(git remote get-url origin 2>/dev/null); \
	if [ -n "$$o" ] && [ -d "$$o/../shared" ]; then cd "$$o/../shared" && pwd; fi)
ifneq ($(ORIGIN_SHARED),)
export VAE_MODEL_DIR ?= $(ORIGIN_SHARED)/models
export VAE_MEDIA_DIR ?= $(ORIGIN_SHARED)/media
endif
endif

.PHONY: help venv up up-local down test test-faults soak soak-record test-unit test-browser lint typecheck check assets models media broker chromium docs clean bench bench-gateway bench-inference bench-gating bench-decode fuzz

help: ## List the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  \033[36m%-18s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

$(STAMP): pyproject.toml
	@test -n "$(PYTHON)" || { echo "Python 3.11 or newer is needed on PATH"; exit 1; }
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[$(EXTRAS)]'
	@touch $(STAMP)

$(TEST_STAMP): $(STAMP)
	$(if $(TEST_EXTRAS),$(PY) -m pip install --quiet -e '.[$(EXTRAS)$(comma)$(TEST_EXTRAS)]')
	@touch $(TEST_STAMP)

venv: $(STAMP) ## Create .venv and install the engine with its dev tools

up: ## Run the engine: Docker Compose with Redpanda if a Docker engine answers, else up-local (says which)
	@MAKE="$(MAKE)" deploy/up.sh

up-local: $(STAMP) assets ## Run the engine here: embedded broker, gateway, worker, replay of the sample clip (Ctrl-C stops)
	$(VAE) up $(UP_ARGS)

down: ## Stop and remove the Compose stack of `make up`
	docker compose -f deploy/compose/docker-compose.yml down

test: $(TEST_STAMP) assets chromium rtsp-server ## Run every test (one embedded broker for the session; each test its own topics, gateway and workers)
	$(PY) -m pytest $(PYTEST_ARGS)

test-faults: $(TEST_STAMP) assets ## The fault suite: each fault against a running pipeline; prints the table, keeps it in docs/reliability.md
	$(PY) -m pytest -m faults $(PYTEST_ARGS)
	$(PY) scripts/update_reliability_table.py artifacts/faults.json docs/reliability.md

SOAK_ARGS ?=
SOAK_OUT ?= artifacts/soak
soak: $(STAMP) assets ## Soak (not in CI): broker, gateway, worker, analytics under loadgen, 30 min at 500 streams x 1 fps (SOAK_ARGS="--duration 180 --streams 100"); RSS and lag -> SOAK_OUT
	$(VAE) bench soak --out $(SOAK_OUT) $(SOAK_ARGS)

soak-record: $(STAMP) ## Put the last soak (SOAK_OUT/soak.json) into docs/reliability.md, its JSON into docs/bench/, its plot into docs/img/
	$(VAE) bench soak --from-json $(SOAK_OUT)/soak.json --markdown docs/reliability.md --plot docs/img/soak.png --json docs/bench/soak.json

test-unit: $(TEST_STAMP) assets ## Run the unit tests only (no broker)
	$(PY) -m pytest tests/unit $(PYTEST_ARGS)

lint: $(STAMP) ## ruff check, format check, and the import contracts (the layers; pyproject.toml)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports

typecheck: $(TEST_STAMP) ## mypy --strict (with the test extras, so torch code is checked against its types)
	$(VENV)/bin/mypy

check: lint typecheck test ## Everything CI checks

assets: $(STAMP) ## Find the model and sample media, downloading what is missing
	@$(VAE) models ensure
	@$(VAE) media ensure

models: $(STAMP) ## Download the model weights into ./models (sha256-checked)
	$(VAE) models fetch

media: $(STAMP) ## Download the sample media into ./media (sha256-checked)
	$(VAE) media fetch

broker: $(STAMP) ## Run the embedded Kafka-compatible broker on 127.0.0.1:9092
	$(VAE) broker

FUZZ_EXAMPLES ?= 5000
fuzz: $(STAMP) ## Fuzz every parser of untrusted input (hypothesis, FUZZ_EXAMPLES per target; tests/fuzz)
	HYPOTHESIS_PROFILE=fuzz VAE_FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) $(PY) -m pytest tests/fuzz -p no:cacheprovider $(PYTEST_ARGS)

docs: $(STAMP) ## Regenerate the settings table in README.md from pipeline/config.py
	$(PY) scripts/update_readme_settings.py

chromium: ## Install Debian's chromium for the browser tests, if missing (apt-get, once)
	@scripts/install_chromium.sh

.PHONY: rtsp-server
rtsp-server: ## Install Debian's GStreamer RTSP server for the camera tests, if missing (apt-get, once)
	@scripts/install_rtsp_server.sh

test-browser: $(STAMP) chromium ## Run the web viewer's tests in headless chromium (screenshots in artifacts/browser)
	$(PY) -m pytest tests/browser $(PYTEST_ARGS)

BENCH_ARGS ?=
bench: bench-gateway bench-inference bench-gating bench-decode ## Every benchmark -> docs/benchmarks.md

bench-gateway: $(STAMP) ## Gateway under loadgen at 1k-10k streams -> docs/benchmarks.md + plot
	$(VAE) bench gateway --markdown docs/benchmarks.md --plot docs/img/bench-gateway.png $(GATEWAY_BENCH_ARGS)

bench-gating: $(STAMP) assets ## Motion gating on 0/50/90% still clips -> docs/benchmarks.md
	$(VAE) bench gating --markdown docs/benchmarks.md --json docs/bench-gating.json $(GATING_BENCH_ARGS)

bench-decode: $(STAMP) assets ## JPEG decode + letterbox CPU, full against reduced -> docs/benchmarks.md
	$(VAE) bench decode --markdown docs/benchmarks.md --json docs/bench-decode.json $(DECODE_BENCH_ARGS)

bench-inference: $(STAMP) assets ## Inference benchmark (every backend here) -> docs/benchmarks.md + plot
	$(VAE) bench inference --markdown docs/benchmarks.md --plot docs/img/inference-throughput.png $(BENCH_ARGS)

clean: ## Remove the venv and caches
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache build dist *.egg-info
