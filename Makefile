# Set-up and entry points. `make run` and `make test` are the two commands a fresh machine needs.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
TORCH_SPEC ?= torch==2.13.0

.PHONY: run test test-float32 lint setup setup-test clean

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

# the float32 comparisons again with other CPU kernels and summation orders (.ci/run calls this after `make test`)
test-float32: setup-test
	OMP_NUM_THREADS=1 $(PY) -m pytest -q -m float32 tests
	ATEN_CPU_CAPABILITY=default ONEDNN_MAX_CPU_ISA=SSE41 $(PY) -m pytest -q -m float32 tests

lint: setup-test
	$(VENV)/bin/ruff check src tests benchmarks experiments

clean:
	rm -rf $(VENV) runs .pytest_cache
