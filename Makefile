# Every target sets up its own virtualenv, so a fresh clone needs only `make run` or `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
CCML := $(VENV)/bin/ccml
STAMP := $(VENV)/.installed
CCML_HOME ?= .ccml
SAMPLE := $(CCML_HOME)/data/sample.csv
HOST ?= 127.0.0.1
PORT ?= 8000
export CCML_HOME

.PHONY: install run test lint format clean

install: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

# The main job on the embedded default: local storage, synthetic data, train if there is
# no champion, show a few predictions, then serve the API (Swagger UI at /docs).
run: install
	@test -f $(SAMPLE) || $(CCML) data sample --rows 5000 --seed 7 --out $(SAMPLE)
	@$(CCML) models show champion >/dev/null 2>&1 || $(CCML) train --data $(SAMPLE)
	$(CCML) predict $(SAMPLE) --limit 3
	@echo "serving on http://$(HOST):$(PORT) (Swagger UI: http://$(HOST):$(PORT)/docs); Ctrl+C stops"
	$(CCML) serve --host $(HOST) --port $(PORT)

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

format: install
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

test: install lint
	$(PY) -m pytest

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis
