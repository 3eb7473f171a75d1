# Set-up and entry points. `make run` and `make test` are the two commands a fresh machine needs.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
TORCH_SPEC ?= torch==2.13.0

.PHONY: run test lint setup setup-test clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	$(PIP) install --quiet "$(TORCH_SPEC)"
	$(PIP) install --quiet -e .
	touch $@

$(VENV)/.installed-test: $(VENV)/.installed
	$(PIP) install --quiet -e ".[test]"
	touch $@

setup: $(VENV)/.installed

setup-test: $(VENV)/.installed-test

run: setup
	$(VENV)/bin/fivefold train

test: setup-test
	$(VENV)/bin/ruff check src tests benchmarks experiments
	$(PY) -m pytest -q tests

lint: setup-test
	$(VENV)/bin/ruff check src tests benchmarks experiments

clean:
	rm -rf $(VENV) runs .pytest_cache
