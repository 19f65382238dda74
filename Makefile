# palpite — developer and CI entry points. `make help` lists them.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON312 := $(shell .ci/find-python312.sh 2>/dev/null)
POETRY_VERSION := 2.5.1
POETRY_HOME := .cache/poetry
POETRY := $(POETRY_HOME)/bin/poetry
VENV := .venv
BIN := $(VENV)/bin
TIMED := .ci/timed.sh
export POETRY_VIRTUALENVS_IN_PROJECT := true
export POETRY_NO_INTERACTION := 1

.PHONY: help python venv system-deps lint unit test test-summary clean

help: ## List the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-14s %s\n", $$1, $$2}'

python:
	@test -n "$(PYTHON312)" || .ci/find-python312.sh

$(POETRY): | python
	$(PYTHON312) -m venv $(POETRY_HOME)
	$(POETRY_HOME)/bin/pip install -q "poetry==$(POETRY_VERSION)"

$(VENV)/.installed: pyproject.toml poetry.lock $(POETRY)
	test -x $(BIN)/python || $(PYTHON312) -m venv $(VENV)
	$(POETRY) install --sync --no-interaction
	touch $@

venv: $(VENV)/.installed ## Python 3.12 venv with Poetry and every dependency group

system-deps: ## Debian packages the tests and the local environment need (root)
	.ci/install-system-deps.sh

lint: venv ## ruff
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

unit: venv ## pytest: everything that needs no testbed host
	$(BIN)/pytest -q -m "not testbed"

test: ## Every test, with the time of each stage (CI runs this)
	@rm -f .cache/stage-times.log
	@$(TIMED) venv $(MAKE) --no-print-directory venv
	@$(TIMED) system-deps $(MAKE) --no-print-directory system-deps
	@$(TIMED) lint $(MAKE) --no-print-directory lint
	@$(TIMED) unit $(MAKE) --no-print-directory unit
	@$(MAKE) --no-print-directory test-summary

test-summary:
	@echo "==> stage times"; cat .cache/stage-times.log

clean: ## Remove the venv and caches
	rm -rf $(VENV) .cache .pytest_cache .ruff_cache
