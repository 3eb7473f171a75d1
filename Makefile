# Set-up and entry points. `make run` and `make test` are the two commands a fresh machine needs.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
TORCH_SPEC ?= torch==2.13.0

.PHONY: run test test-float32 docs lint setup setup-test clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	$(PIP) install --quiet "$(TORCH_SPEC)"
	$(PIP) install --quiet -e .
	touch $@

$(VENV)/.installed-test: $(VENV)/.installed
	$(PIP) install --quiet -e ".[test]"
	touch $@

$(VENV)/.installed-docs: $(VENV)/.installed-test
	$(PIP) install --quiet -e ".[docs]"
	touch $@

setup: $(VENV)/.installed

setup-test: $(VENV)/.installed-test

run: setup
	$(VENV)/bin/fivefold train

test: setup-test
	$(VENV)/bin/ruff check src tests tests_docs docs benchmarks experiments
	$(PY) -m pytest -q tests

# the float32 comparisons again with other CPU kernels and summation orders (.ci/run calls this after `make test`)
test-float32: setup-test
	OMP_NUM_THREADS=1 $(PY) -m pytest -q -m float32 tests
	ATEN_CPU_CAPABILITY=default ONEDNN_MAX_CPU_ISA=SSE41 $(PY) -m pytest -q -m float32 tests

# the documentation site (mkdocs-material + mkdocstrings) in docs/_build/site, then its checks: a strict build, no
# broken internal links, and the start page and an API page rendered by headless Chromium (Debian's chromium package,
# installed here with apt-get when missing and allowed; screenshots in docs/_build/). About 1 minute.
docs: $(VENV)/.installed-docs
	@command -v chromium >/dev/null 2>&1 || { test "$$(id -u)" = 0 && command -v apt-get >/dev/null 2>&1 && \
	  { apt-get install -y -q chromium >/dev/null 2>&1 || { apt-get update -q >/dev/null 2>&1 && \
	    apt-get install -y -q chromium >/dev/null 2>&1; }; }; } || \
	  echo "chromium is not installed and could not be: the browser check will be skipped (apt-get install chromium)"
	$(PY) -m pytest -q tests_docs

lint: setup-test
	$(VENV)/bin/ruff check src tests tests_docs docs benchmarks experiments

clean:
	rm -rf $(VENV) runs .pytest_cache docs/_build
