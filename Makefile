# sfsync — every target creates the virtualenv and installs what it needs by itself.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
export PYTHONDONTWRITEBYTECODE := 1

.PHONY: help venv test lint typecheck unit demo bench emulator clean

help:
	@echo "make demo      run the demo on the local stack (emulated Salesforce org)"
	@echo "make test      ruff, mypy and the whole pytest suite"
	@echo "make bench     benchmarks, one JSON object per line"
	@echo "make emulator  serve a seeded emulated org on https://127.0.0.1:8443 until Ctrl-C"

$(STAMP): requirements.lock pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "need $(PYTHON) on PATH"; exit 1; }
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.lock
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps -e .
	touch $(STAMP)

venv: $(STAMP)

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

typecheck: $(STAMP)
	$(VENV)/bin/mypy
	for handler in functions/*/app.py; do $(VENV)/bin/mypy --follow-imports=silent $$handler || exit 1; done

unit: $(STAMP)
	$(PY) -m pytest -q

test: lint typecheck unit

demo: $(STAMP)
	$(PY) tools/demo.py

bench: $(STAMP)
	$(PY) tools/bench.py

emulator: $(STAMP)
	$(VENV)/bin/sf-emulator --port 8443 --seed 10000

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
