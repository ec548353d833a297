# Two commands on a fresh machine: `make lab` (whole lab + report) and `make test` (all tests).
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PULL_LAB := $(VENV)/bin/pull-lab
export TESTCONTAINERS_RYUK_DISABLED := true
export TESTCONTAINERS_CONNECTION_MODE := docker_host

.PHONY: venv host-prep test-tools build build-oldest up down test unit e2e lint bench lab matrix wheel clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	touch $@

venv: $(VENV)/.installed

host-prep: venv
	$(PULL_LAB) host-prep

build: host-prep
	$(PULL_LAB) build

# The oldest supported Kubernetes too: `make test` runs the version-sensitive scenarios on it.
# The container runtime, kind and the rootfs are shared; only Kubernetes, etcd and the node
# image are built again.
OLDEST_KUBERNETES ?= 1.34
build-oldest: host-prep
	$(PULL_LAB) build --kubernetes $(OLDEST_KUBERNETES)

# What only the tests need on top of the lab: a real browser for the HTML report.
test-tools: venv
	$(PULL_LAB) host-prep --with-browser

up: build
	$(PULL_LAB) up

down: venv
	$(PULL_LAB) down

unit: venv
	$(PY) -m pytest -m "not e2e" tests

e2e: build build-oldest
	$(PY) -m pytest -m e2e

# The full suite, e2e included: what .ci/run calls. Tests that stop dockerd or reset host
# sysctls touch only what host-prep started, unless PULL_LAB_DESTRUCTIVE_TESTS=1 (.ci/run).
test: build build-oldest test-tools
	$(PY) -m pytest

# The whole lab: every scenario replayed, the report written to ./lab-report.
lab: build
	$(PULL_LAB) run --report-dir lab-report

# The whole catalogue on every supported Kubernetes, one cluster at a time, into one matrix
# report (lab-matrix/matrix.html): what changes when you upgrade.
matrix: host-prep
	$(PULL_LAB) run --kubernetes all --report-dir lab-matrix

lint: venv
	$(VENV)/bin/ruff check lab fixtures scenarios tests bench tools conftest.py
	$(VENV)/bin/ruff format --check lab fixtures scenarios tests bench tools conftest.py
	$(VENV)/bin/mypy lab

# The wheel users install (scenarios included); tests/integration/test_wheel.py installs one
# into a fresh venv and runs pull-lab from outside the checkout.
wheel: venv
	rm -rf build  # setuptools reuses build/lib: a file removed since must not ship
	$(PY) -m pip wheel -q --no-deps -w dist .

# The last figure is `make test`'s own: the whole suite once (about 31 minutes on 2 cores).
bench: build build-oldest test-tools
	$(PY) -m bench warm-cluster -n 3 --kubernetes 1.37,$(OLDEST_KUBERNETES)
	$(PY) -m bench vs-kind -n 3
	$(PY) -m bench one-scenario -n 3
	$(PY) -m bench catalogue
	$(PY) -m bench lab-memory
	$(PY) -m bench build-lanes
	$(PY) -m bench suite

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .mypy_cache lab-report build dist
