# c2d's one task runner. The README names `make demo` and `make test`; the rest are their parts.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: help dev services browser image test attacks test-fast lint format demo bench clean

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	@echo "dev: creating $(VENV) and installing c2d with its dev tools" >&2
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@$(PY) -m pip install --quiet --disable-pip-version-check --upgrade pip
	@$(PY) -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	@touch $@

dev: $(STAMP) ## Virtualenv with c2d installed in editable mode

services: ## Install (Debian + root) and start the Docker engine and Redis; idempotent
	@bash runner/scripts/services.sh

browser: ## Install (Debian + root) Chromium for the browser tests; idempotent
	@bash runner/scripts/services.sh browser

image: dev services ## Build the job environment image c2d/python-ml (skipped when up to date)
	@$(VENV)/bin/c2d image build >/dev/null

lint: dev ## ruff and mypy
	@$(VENV)/bin/ruff format --check runner jobs ledger tests bench examples
	@$(VENV)/bin/ruff check runner jobs ledger tests bench examples
	@$(VENV)/bin/mypy

test: lint image browser ## The whole suite, with real Docker, Redis, Celery workers and Chromium
	@$(VENV)/bin/pytest

attacks: lint image ## Only the attack tests: every attack found so far must fail
	@$(VENV)/bin/pytest -m attack

test-fast: dev ## Unit tests only (no services)
	@$(VENV)/bin/pytest tests/unit

format: dev ## Format the code
	@$(VENV)/bin/ruff format runner jobs ledger tests bench examples
	@$(VENV)/bin/ruff check --fix runner jobs ledger tests bench examples

demo: image ## Run an example job end to end, as a researcher and a data owner would
	@bash examples/demo.sh

bench: image ## Run every benchmark and print the table
	@for b in bench/*_bench.py; do echo "== $$b" >&2; $(PY) -m bench.$$(basename $$b .py) || exit 1; done

clean: ## Remove the virtualenv and build leftovers (services and images stay)
	rm -rf $(VENV) build .pytest_cache .mypy_cache .ruff_cache

.PHONY: compose-image
compose-image: dev services ## App image of docker-compose.yml (C2D_APP_BASE=a registry base; skipped when up to date)
	@C2D_APP_BASE="$(C2D_APP_BASE)" C2D_PYTHON="$(PY)" bash runner/scripts/compose_image.sh >/dev/null
