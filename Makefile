# Yibao: two commands on a fresh machine, `make run` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.yibao-installed
export YIBAO_HOME ?= $(CURDIR)/var
# Telemetry off for every tool the Makefile starts (stack-notes).
export DBT_SEND_ANONYMOUS_USAGE_STATS := False
export GX_ANALYTICS_ENABLED := False
export DO_NOT_TRACK := 1

.PHONY: setup run test lint bench clean

## setup: the virtualenv from the lock file; does nothing when the lock is unchanged
setup: $(STAMP)

$(STAMP): requirements.lock pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements.lock
	$(BIN)/pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
	$(BIN)/yibao prepare
	@touch $@

## run: sample data, the pipeline, then the UIs
run: setup
	$(BIN)/yibao generate --scale small
	$(BIN)/yibao run

## test: setup, then the whole suite
test: setup
	$(BIN)/ruff check orchestration expectations tests
	$(BIN)/pytest -q tests; status=$$?; [ $$status -ne 5 ] || echo "pytest collected no tests" >&2; exit $$status

lint: setup
	$(BIN)/ruff check orchestration expectations tests
	$(BIN)/ruff format --check orchestration expectations tests

clean:
	rm -rf $(VENV) var dbt_project/target dbt_project/logs
