# Two commands set everything up on a fresh machine: `make demo`, then `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
DEMO_RAW := data/demo/raw
DEMO_RELEASE := data/demo/release
RELEASE ?= $(DEMO_RELEASE)
ROWS ?= 2000000

.PHONY: install demo test ui clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	touch $@

install: $(VENV)/.installed

demo: install
	$(PY) -m pipelines demo-data --out $(DEMO_RAW) --rows $(ROWS)
	rm -rf $(DEMO_RELEASE)
	$(PY) -m pipelines run --raw $(DEMO_RAW) --out $(DEMO_RELEASE)
	@echo "raw data:  $(abspath $(DEMO_RAW))"
	@echo "release:   $(abspath $(DEMO_RELEASE))"

test: install
	$(PY) -m pytest

# The Dagster UI on this workspace, on the release's own instance (runs and check history persist).
ui: install
	@test -d $(RELEASE)/.dagster || { echo "no release at $(RELEASE): run 'make demo' first"; exit 1; }
	DAGSTER_HOME=$(abspath $(RELEASE))/.dagster YUNZHI_RELEASE=$(abspath $(RELEASE)) \
	YUNZHI_RAW=$$($(PY) -c "import json;print(json.load(open('$(RELEASE)/manifest.json'))['settings']['raw_path'])" 2>/dev/null || echo $(abspath $(DEMO_RAW))) \
	$(VENV)/bin/dagster dev -w workspace.yaml -h 127.0.0.1 -p 3000

clean:
	rm -rf data build *.egg-info .pytest_cache
