# The two commands of the quick start are `make demo` and `make test`;
# every other target is a step they run when it is missing.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: setup controlplane helm demo test test-fast lint chaos bench bench-smoke clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	@echo ">> setting up $(VENV) (Python deps from PyPI)"
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@$(PY) -m pip install -q --upgrade pip
	@$(PY) -m pip install -q -e '.[dev]'
	@touch $(STAMP)

# kube-apiserver, etcd and kube-controller-manager, built from the Go module
# proxy into a cache keyed by version; a no-op when the cache is warm.
controlplane: $(STAMP)
	@$(PY) -m albus.controlplane build

# helm for the chart tests (tests/deploy), built from the Go module proxy into
# the same cache; a no-op when it is there.
helm: $(STAMP)
	@$(PY) -m albus.tools.helm build

lint: $(STAMP)
	@echo ">> ruff"; $(VENV)/bin/ruff check .
	@echo ">> mypy --strict"; $(VENV)/bin/mypy services albus
	@echo ">> import-linter"; $(VENV)/bin/lint-imports

test: $(STAMP) controlplane helm lint
	@echo ">> pytest (includes the 5-minute chaos run, tests/chaos)"
	@$(VENV)/bin/pytest $(PYTEST_ARGS)
	@echo ">> bench-smoke (figures reported, not asserted; see bench/README.md)"
	@$(PY) -m bench --smoke

# Five minutes of injected faults with a fixed seed (tests/chaos), on its own.
chaos: $(STAMP) controlplane
	@$(VENV)/bin/pytest -m chaos $(PYTEST_ARGS)

test-fast: $(STAMP)
	@$(VENV)/bin/pytest -m "not e2e" $(PYTEST_ARGS)

demo: $(STAMP) controlplane
	@$(VENV)/bin/albus up --demo-backends --manifests examples/demo.yaml

bench-smoke: $(STAMP) controlplane
	@$(PY) -m bench --smoke

bench: $(STAMP) controlplane
	@$(PY) -m bench

clean:
	rm -rf $(VENV) .albus
