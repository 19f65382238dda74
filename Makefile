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
comma := ,
space := $(subst ,, )
export POETRY_VIRTUALENVS_IN_PROJECT := true
export POETRY_NO_INTERACTION := 1
# Some machines (CI's among them) set this; without bytecode every test subprocess would
# recompile numpy, scipy and scikit-learn from source (seconds each).
unexport PYTHONDONTWRITEBYTECODE

ANSIBLE_ENV := PATH=$(CURDIR)/$(BIN):$$PATH ANSIBLE_CONFIG=$(CURDIR)/ansible.cfg
TESTBED := tests/testbed/testbed
# The host-based tests, in three lanes side by side (.ci/lanes.sh): the end-to-end suite;
# every Molecule scenario as scenario/ROLE/SCENARIO, the local cloud, and ansible-lint. Each
# has its own testbed addresses and service ports (docs/local-cloud.md). The slow compile
# path is in test-slow.
HOST_LANES ?= e2e \
	scenario/pyenv/default,scenario/model_api/default,local-cloud \
	lint-ansible,scenario/poetry/default,scenario/nginx/default,scenario/model_api/cluster
# `make test`'s lanes: HOST_LANES with the testbed harness and the unit stage at the ends
# of the two shorter lanes, where they run beside the e2e suite's second half instead of
# before everything (e2e, the longest lane, sets the time; docs/benchmarks.md, session 20).
TEST_LANES ?= $(word 1,$(HOST_LANES)) $(word 2,$(HOST_LANES)),testbed $(word 3,$(HOST_LANES)),unit

.PHONY: help python venv system-deps lint lint-python lint-yaml lint-ansible unit testbed-base testbed hosts lanes molecule \
	e2e test test-summary demo down clean

help: ## List the targets
	@grep -hE '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-14s %s\n", $$1, $$2}'

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

lint: lint-python lint-ansible ## ruff, yamllint, ansible-lint

lint-python: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

lint-yaml: venv
	$(ANSIBLE_ENV) $(BIN)/yamllint -s .

lint-ansible: lint-yaml
	$(ANSIBLE_ENV) $(BIN)/ansible-lint -q

unit: venv ## pytest: everything that needs no testbed host (two processes: pytest-xdist)
	$(BIN)/pytest -q -m "not testbed" -n 2 --dist loadfile $(PYTEST_DURATIONS)

testbed-base: system-deps ## Build (once, cached) the testbed hosts' Debian rootfs
	$(TESTBED) base

testbed: venv testbed-base ## pytest: the harness itself (boot, reboot, teardown)
	$(BIN)/pytest -q -m "testbed" tests/testbed $(PYTEST_DURATIONS)

hosts: venv testbed-base ## The e2e suite, Molecule scenarios, local cloud and ansible-lint, in HOST_LANES (logs in .cache/lanes/)
	.ci/lanes.sh $(HOST_LANES)

lanes: venv testbed-base ## make test's lanes: HOST_LANES plus the unit tests and the testbed harness (TEST_LANES)
	.ci/lanes.sh $(TEST_LANES)

molecule: ## Every Molecule scenario of HOST_LANES, one after another
	.ci/lanes.sh $(subst $(space),$(comma),$(filter scenario/%,$(subst $(comma), ,$(HOST_LANES))))

scenario/%: venv testbed-base
	cd roles/$(word 1,$(subst /, ,$*)) && $(ANSIBLE_ENV) ANSIBLE_ROLES_PATH=$(CURDIR)/roles \
	  $(CURDIR)/$(BIN)/molecule test -s $(word 2,$(subst /, ,$*))

e2e: venv testbed-base ## site.yml from nothing, through the front door, release under load, teardown
	$(BIN)/pytest -q -m "testbed" tests/e2e $(PYTEST_DURATIONS)

# The stages `make test` runs, in order, each timed. `lanes` runs everything else in three
# lanes side by side (TEST_LANES; each target's time is in the stage table too): the e2e
# suite; the Molecule scenarios, the local cloud and the testbed harness; ansible-lint and
# the unit tests. The host-based targets wait on hosts much of the time (boots, installs,
# restarts, bakes, paced loads), so the lanes take well under the sum of their parts,
# though the first minutes keep both cores busy. The lanes hold the testbed's bridge while
# they run, so no lane's teardown removes it from under another (`testbed hold`; e2e
# alone, last, until session 20: docs/benchmarks.md).
# The slowest tests of each pytest stage are listed in its output, so the next one to cut is
# in plain sight. `make test` ends with the total against TEST_BUDGET_SECONDS (a warning
# above it, not a failure: the machines are noisy; CI's hard limit is 90 minutes).
PYTEST_DURATIONS ?= --durations=25
TEST_BUDGET_SECONDS ?= 2700
TEST_STAGES ?= venv system-deps lint-python lint-yaml testbed-base lanes

test: ## Every test, with the time of each stage (CI runs this)
	@rm -f .cache/stage-times.log; failed=""; start=$$(date +%s); \
	for stage in $(TEST_STAGES); do \
	  $(TIMED) $$stage $(MAKE) --no-print-directory $$stage || failed="$$failed $$stage"; \
	done; \
	$(MAKE) --no-print-directory test-summary; \
	total=$$(( $$(date +%s) - start )); \
	echo "total: $${total}s against a budget of $(TEST_BUDGET_SECONDS)s"; \
	if [ $$total -gt $(TEST_BUDGET_SECONDS) ]; then \
	  echo "WARNING: make test took $$(( total - $(TEST_BUDGET_SECONDS) ))s more than its budget"; fi; \
	if [ -n "$$failed" ]; then echo "FAILED stages:$$failed"; exit 1; fi; echo "all stages passed"

demo: venv testbed-base ## The whole stack locally: moto + testbed hosts + site.yml; prints the URL
	$(ANSIBLE_ENV) $(BIN)/ansible-playbook site.yml

down: venv ## Remove everything `make demo` created (hosts, moto, bridge, NAT)
	$(ANSIBLE_ENV) $(BIN)/ansible-playbook playbooks/teardown.yml -e teardown_confirm=palpite-local
	$(TESTBED) destroy-all

test-summary:
	@echo "==> stage times"; cat .cache/stage-times.log

clean: ## Remove the venv and caches
	rm -rf $(VENV) .cache .pytest_cache .ruff_cache

# ---- Model API (app/): a local server and its benchmark ----------------------------------
SERVE_DIR := .cache/serve
SERVE_MODEL := $(SERVE_DIR)/models/current

# A synthetic league and a model trained on it, laid out as the deploy does
# (models/releases/<version>/ and a `current` symlink). Made once; `make clean` removes it.
$(SERVE_MODEL): | $(VENV)/.installed
	mkdir -p $(SERVE_DIR)/models/releases
	$(BIN)/python -m ml generate --out $(SERVE_DIR)/league.csv
	bundle=$$($(BIN)/python -m ml train --data $(SERVE_DIR)/league.csv --out $(SERVE_DIR)/models/releases) \
		&& ln -sfn releases/$$(basename $$bundle) $(SERVE_MODEL)

.PHONY: serve-model serve bench-api bench-host-nginx
serve-model: venv $(SERVE_MODEL) ## Train the synthetic-league model `make serve` uses (once)

serve: serve-model ## The model API on http://127.0.0.1:8000 (gunicorn, app/gunicorn.conf.py)
	PALPITE_MODEL_DIR=$(SERVE_MODEL) PALPITE_BIND=127.0.0.1:8000 $(BIN)/gunicorn -c app/gunicorn.conf.py

bench-api: serve-model ## Model API benchmark with wrk (~5 min; results in docs/benchmarks.md)
	$(BIN)/python bench/bench_api.py

bench-host-nginx: venv ## A host's nginx vs its gunicorn, on a testbed app host (make demo first; ~2 min)
	$(BIN)/python bench/bench_host_nginx.py $(ARGS)

# -- releases (playbooks/release.yml, rollback.yml, release_app.yml) ------------------------
# One of DATA (a results CSV: train, gate, publish), BUNDLE (a bundle directory: publish) or
# VERSION (a published model); ARGS passes more, e.g. ARGS="-i inventory/aws -e release_batch=2".
RELEASE_SOURCE = $(if $(DATA),-e release_data=$(abspath $(DATA)))$(if $(BUNDLE),-e release_bundle=$(abspath $(BUNDLE)))$(if $(VERSION),-e release_version=$(VERSION))

# The fleet-changing targets run under ml/fleet_run.py: a Ctrl-C gives the fleet lock back.
FLEET_RUN = $(BIN)/python -m ml.fleet_run

.PHONY: release rollback release-app patch release-status release-unlock sign-published

release: venv ## Roll a model out, canary first: DATA=results.csv | BUNDLE=dir | VERSION=v
	@test -n "$(strip $(RELEASE_SOURCE))" || { echo "make release DATA=results.csv | BUNDLE=bundle-dir | VERSION=version"; exit 2; }
	$(ANSIBLE_ENV) $(FLEET_RUN) playbooks/release.yml $(RELEASE_SOURCE) $(ARGS)

rollback: venv ## Roll every host back to the previous production model
	$(ANSIBLE_ENV) $(FLEET_RUN) playbooks/rollback.yml $(ARGS)

release-app: venv ## Roll new app code out (this tree, or APP_VERSION=v), canary first
	$(ANSIBLE_ENV) $(FLEET_RUN) playbooks/release_app.yml $(if $(APP_VERSION),-e release_app_version=$(APP_VERSION)) $(ARGS)

patch: venv ## OS security updates, a reboot where needed, one host at a time behind a drained target
	$(ANSIBLE_ENV) $(FLEET_RUN) playbooks/patch.yml $(ARGS)

release-status: venv ## Who holds the fleet lock (since when, doing what) and the release journal
	$(ANSIBLE_ENV) $(BIN)/ansible-playbook playbooks/fleet.yml $(ARGS)

release-unlock: venv ## Break a dead run's fleet lock; says what its journal left unfinished
	$(ANSIBLE_ENV) $(BIN)/ansible-playbook playbooks/fleet.yml -e fleet_command=unlock $(ARGS)

sign-published: venv ## Sign every published artifact whose checksum matches (upgrade, key rotation)
	$(ANSIBLE_ENV) $(BIN)/ansible-playbook playbooks/sign_published.yml $(ARGS)

# -- slow tests (not in `make test`) ---------------------------------------------------------
.PHONY: test-slow test-slow-builder

test-slow: venv testbed-base ## CPython compiled on a host and reused; then on the throwaway builder, signed, published (~35-50 min)
	@$(TIMED) scenario/pyenv/compile $(MAKE) --no-print-directory scenario/pyenv/compile
	@$(TIMED) test-slow-builder $(MAKE) --no-print-directory test-slow-builder

test-slow-builder: venv testbed-base ## The throwaway Python builder end to end: build, sign, app host installs (~20-30 min)
	$(BIN)/pytest -q -m testbed tests/slow/test_python_builder.py $(PYTEST_DURATIONS)

# -- provisioning (playbooks/provision.yml, teardown.yml) -------------------------------------
.PHONY: test-aws local-cloud test-local-cloud

test-aws: venv ## provision + teardown against an IAM-enforcing moto (also run by `unit`)
	$(BIN)/pytest -q tests/aws

local-cloud: venv testbed-base ## local cloud: 2 instances on testbed hosts, front door, draining, teardown
	$(BIN)/pytest -q -m testbed tests/local $(PYTEST_DURATIONS)

test-local-cloud: local-cloud
