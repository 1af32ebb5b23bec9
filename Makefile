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

.PHONY: install run test lint format clean lock image-test bench bench-quick reliability

install: $(STAMP)

# The message first: pip runs with --quiet, and a silent minute looks like a hang.
$(STAMP): pyproject.toml requirements.lock
	@echo "installing ccml and its dependencies into $(VENV) (about a minute, once)..."
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c requirements.lock -e '.[dev]'
	touch $(STAMP)

# The main job on the embedded default: local storage, synthetic data, train if there is
# no champion, show a few predictions, then serve the API (Swagger UI at /docs).
run: install
	@test -f $(SAMPLE) || $(CCML) data sample --rows 5000 --seed 7 --out $(SAMPLE)
	@$(CCML) models show champion >/dev/null 2>&1 || $(CCML) train --data $(SAMPLE)
	$(CCML) predict $(SAMPLE) --limit 3
	@echo "serving on http://$(HOST):$(PORT) (Swagger UI: /docs, the model's report: /model/report); Ctrl+C stops"
	$(CCML) serve --host $(HOST) --port $(PORT)

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports
	$(VENV)/bin/hadolint Dockerfile
	$(VENV)/bin/cfn-lint infra/template.yaml
	$(VENV)/bin/check-jsonschema --builtin-schema vendor.github-workflows .github/workflows/*.yml

format: install
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

# The benchmark smoke test needs wrk and the browser tests Debian's chromium and its driver:
# install them when we can (root, as in CI), else those tests skip.
TOOLS := wrk chromium chromium-driver
test: install lint
	@command -v wrk >/dev/null && command -v chromedriver >/dev/null || [ "$$(id -u)" != 0 ] || \
		(apt-get update -qq && apt-get install -y -qq --no-install-recommends $(TOOLS) >/dev/null)
	$(PY) -m pytest

# The reliability suite at full size (tests/reliability; `make test` runs it small): hostile
# artifacts, API and data fuzzing, faults, load with faults. Prints the figures table the
# README quotes and keeps it, with every row, in $(RELIABILITY_OUT).
RELIABILITY_OUT ?= reliability-results
reliability: install
	@command -v chromedriver >/dev/null || [ "$$(id -u)" != 0 ] || \
		(apt-get update -qq && apt-get install -y -qq --no-install-recommends $(TOOLS) >/dev/null)
	rm -rf $(RELIABILITY_OUT) && mkdir -p $(RELIABILITY_OUT)
	RELIABILITY_PROFILE=full RELIABILITY_FIGURES=$(abspath $(RELIABILITY_OUT))/figures.jsonl \
		$(PY) -m pytest tests/reliability -q
	$(PY) scripts/reliability_table.py $(RELIABILITY_OUT)/figures.jsonl \
		--json $(RELIABILITY_OUT)/summary.json --markdown $(RELIABILITY_OUT)/table.md

# Three locks from one resolve (run after changing dependencies in pyproject.toml):
#   requirements.lock         everything both runtimes use, ccml[all,lambda]; `make install` takes
#                             it as constraints
#   requirements-serve.lock   the api image: ccml[serve] alone (no scikit-learn, scipy, pandas)
#   requirements-lambda.lock  the lambda image: ccml[lambda] (training, activity logs, awslambdaric)
# Each image's set is installed alone under the first lock's pins, so the three always agree.
FREEZE = .lockenv/bin/pip freeze --exclude ccml --exclude pip --exclude setuptools --exclude wheel
lock:
	rm -rf .lockenv
	$(PYTHON) -m venv .lockenv
	.lockenv/bin/pip install --quiet '.[all,lambda]'
	$(FREEZE) > requirements.lock
	for set in serve lambda; do \
		rm -rf .lockenv && $(PYTHON) -m venv .lockenv \
		&& .lockenv/bin/pip install --quiet -c requirements.lock ".[$$set]" \
		&& $(FREEZE) > requirements-$$set.lock || exit 1; \
	done
	rm -rf .lockenv

# Benchmarks (see bench/run.py): full mode for the README's numbers, quick mode as a smoke
# run. wrk comes from Debian's package.
bench: install
	@command -v wrk >/dev/null || (apt-get update -qq && apt-get install -y -qq wrk)
	$(PY) -m bench.run --full

bench-quick: install
	@command -v wrk >/dev/null || (apt-get update -qq && apt-get install -y -qq wrk)
	$(PY) -m bench.run --quick

# Build both container images with podman and smoke-test them (see scripts/image-test.sh).
image-test: install
	scripts/image-test.sh

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis $(RELIABILITY_OUT)
