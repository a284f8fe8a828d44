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
# Debian packages the browser tests need: headless Chromium, its driver, a CJK font.
BROWSER_PACKAGES := chromium chromium-driver fonts-wqy-microhei

.PHONY: setup browser-deps run test bench lint clean

## setup: the virtualenv from the lock file; does nothing when the lock is unchanged
setup: $(STAMP)

$(STAMP): requirements.lock pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements.lock
	$(BIN)/pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
	$(BIN)/yibao prepare
	@touch $@

## browser-deps: Debian's Chromium, ChromeDriver and a Chinese font, installed when missing
browser-deps:
	@if [ -x /usr/bin/chromium ] && [ -x /usr/bin/chromedriver ] && fc-list 2>/dev/null | grep -qi wqy; then \
		echo "browser packages present"; \
	elif [ "$$(id -u)" = 0 ]; then \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(BROWSER_PACKAGES) >/dev/null; \
	else \
		echo "install as root: apt-get install $(BROWSER_PACKAGES)" >&2; exit 1; \
	fi

## run: sample data, the pipeline, then the Dagster UI and Superset until Ctrl-C
run: setup
	$(BIN)/yibao generate --scale small
	$(BIN)/yibao run
	$(BIN)/yibao serve

## test: setup, then the whole suite (browser tests in real headless Chromium), one
## test file per worker: most of a test waits on a subprocess starting up (Dagster, dbt,
## Superset), so two workers on two cores take ~13 min where one took ~18. Files go to
## the workers longest first (tests/conftest.py), not in xdist's order.
TEST_WORKERS ?= 2
test: setup browser-deps
	$(BIN)/ruff check orchestration expectations tests
	$(BIN)/ruff format --check orchestration expectations tests
	$(BIN)/pytest -q -n $(TEST_WORKERS) --dist loadfile --no-loadscope-reorder tests; status=$$?; [ $$status -ne 5 ] || echo "pytest collected no tests" >&2; exit $$status

## bench: time every phase at `small` (BENCH_SCALE=tiny|small|medium|large); report in var/bench/
BENCH_SCALE ?= small
bench: setup
	$(BIN)/yibao bench --scale $(BENCH_SCALE)

lint: setup
	$(BIN)/ruff check orchestration expectations tests
	$(BIN)/ruff format --check orchestration expectations tests

clean:
	rm -rf $(VENV) var dbt_project/target dbt_project/logs
