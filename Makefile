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

.PHONY: help venv up test test-unit lint typecheck check models broker docs clean chromium test-browser

help: ## List the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  \033[36m%-18s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

$(STAMP): pyproject.toml
	@test -n "$(PYTHON)" || { echo "Python 3.11 or newer is needed on PATH"; exit 1; }
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

venv: $(STAMP) ## Create .venv and install the engine with its dev tools

up: $(STAMP) ## Run the engine: broker, gateway, worker, replay of the sample clip (Ctrl-C stops)
	$(VAE) up $(UP_ARGS)

test: $(STAMP) chromium ## Run every test (starts its own broker, gateway and workers)
	$(PY) -m pytest $(PYTEST_ARGS)

test-unit: $(STAMP) ## Run the unit tests only (no broker)
	$(PY) -m pytest tests/unit $(PYTEST_ARGS)

lint: $(STAMP) ## ruff check and format check
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

typecheck: $(STAMP) ## mypy --strict
	$(VENV)/bin/mypy

check: lint typecheck test ## Everything CI checks

models: $(STAMP) ## Download the model weights into ./models (sha256-checked)
	$(VAE) models fetch

broker: $(STAMP) ## Run the embedded Kafka-compatible broker on 127.0.0.1:9092
	$(VAE) broker

docs: $(STAMP) ## Regenerate the settings table in README.md from pipeline/config.py
	$(PY) scripts/update_readme_settings.py

chromium: ## Install Debian's chromium for the browser tests, if missing (apt-get, once)
	@scripts/install_chromium.sh

test-browser: $(STAMP) chromium ## Run the web viewer's tests in headless chromium (screenshots in artifacts/browser)
	$(PY) -m pytest tests/browser $(PYTEST_ARGS)

clean: ## Remove the venv and caches
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache build dist *.egg-info
