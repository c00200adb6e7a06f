# Two commands set everything up on a fresh machine: `make demo`, then `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
DEMO_RAW := data/demo/raw
DEMO_RELEASE := data/demo/release
RELEASE ?= $(DEMO_RELEASE)
ROWS ?= 2000000

.PHONY: install demo test ui e2e clean bench fonts test-packages report report-check

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test,spark]'
	touch $@

install: $(VENV)/.installed

demo:
	@$(MAKE) --no-print-directory -j2 install fonts  # pip and apt at once
	$(PY) -m pipelines demo-data --out $(DEMO_RAW) --rows $(ROWS)
	rm -rf $(DEMO_RELEASE)
	$(PY) -m pipelines run --raw $(DEMO_RAW) --out $(DEMO_RELEASE)
	@echo "raw data:  $(abspath $(DEMO_RAW))"
	@echo "release:   $(abspath $(DEMO_RELEASE))"
	@echo "report:    $(abspath $(DEMO_RELEASE))/report/index.html"

# The report's Chinese labels need a CJK font (the demo and the tests render the report): Debian's fonts-noto-cjk
# is installed with apt when none is found; `test-packages` adds Chromium for the browser tests.
fonts:
	@sh scripts/system_packages.sh

test-packages:
	@sh scripts/system_packages.sh --browser

# (Re)write RELEASE/report/ from the published Parquet; report-check screenshots it in headless Chromium.
report: install fonts
	$(PY) -m pipelines report --out $(RELEASE)

report-check: install
	@test -f $(RELEASE)/report/index.html || $(MAKE) report RELEASE=$(RELEASE)
	$(PY) scripts/report_check.py $(RELEASE)

# pip and apt at once (each mostly waits for downloads and unpacking): the Python packages, and the Debian ones
test:
	@$(MAKE) --no-print-directory -j2 install test-packages
	$(PY) -m pytest

# Project vs DuckDB vs Dagster on BENCH_ROWS generated rows (reused from bench/data/); writes bench/results.json.
BENCH_ROWS ?= 20000000
bench: install
	$(PY) -m pipelines bench --rows $(BENCH_ROWS) $(BENCH_ARGS)

# The Dagster UI (webserver + daemon: sensors, schedules, backfills) for workspace.yaml on the release's own
# instance RELEASE/.dagster, so runs and check history persist; builds the demo release first if it is missing.
PORT ?= 3000
ui: install
	@test -d $(RELEASE)/state || [ "$(RELEASE)" != "$(DEMO_RELEASE)" ] || $(MAKE) demo
	$(PY) scripts/ui.py --release $(RELEASE) --port $(PORT)

# The UI end to end (Playwright on the system Chromium, installed with apt if missing): the CLI builds a four-quarter
# release, `make ui` serves it, one quarter is rematerialised from the browser by clicks, the CLI delivers a late
# file, and the published tables are compared; screenshots into build/e2e/. `make test` runs it too
# (tests/e2e/test_e2e.py).
e2e: install
	$(PY) scripts/e2e.py

clean:
	rm -rf data build *.egg-info .pytest_cache
