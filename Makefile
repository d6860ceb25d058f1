# tfs_async: every target bootstraps the virtual environment it needs.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
IVENV := .venv-interop
IBIN := $(IVENV)/bin
ISTAMP := $(IVENV)/.installed
EVENV := .venv-engines
EBIN := $(EVENV)/bin
ESTAMP := $(EVENV)/.installed
# The unit tier again on the oldest protobuf the package allows (the main venv has the newest).
PVENV := .venv-protobuf-oldest
PBIN := $(PVENV)/bin
PSTAMP := $(PVENV)/.installed

.PHONY: help bench bench-full test unit test-protobuf-oldest interop beam test-engines test-soak lint fmt protos clean

help:
	@echo "make bench   - protocol benchmark (gRPC vs HTTP) against the embedded emulator (--quick sweep)"
	@echo "make test    - lint + unit/integration tests + interop tier (installs tensorflow-cpu) + Beam tier"
	@echo "make unit    - lint-free fast loop: the tests without the interop and engine tiers (newest protobuf)"
	@echo "make test-protobuf-oldest - the unit tier on the oldest protobuf allowed (6.33.5)"
	@echo "make interop - the interop tier alone (tensorflow-cpu + tensorflow-serving-api)"
	@echo "make beam    - the Apache Beam tier (DirectRunner) in .venv-engines"
	@echo "make test-engines - the Beam and Ray Data tiers (Ray is slow to start; not in make test)"
	@echo "make test-soak - the 20,000-request soak per transport (resources return to their level)"
	@echo "make lint    - ruff check, ruff format --check, mypy --strict on the package, tests, benchmarks and examples, import contracts"
	@echo "make protos  - regenerate tfs_async/_proto from protos/"

$(STAMP): pyproject.toml requirements/dev.txt requirements/bench.txt requirements/protobuf-newest.txt
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 10) else "Python >= 3.10 is required")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -r requirements/dev.txt -r requirements/bench.txt \
		-r requirements/protobuf-newest.txt -e .
	@touch $@

$(PSTAMP): pyproject.toml requirements/dev.txt requirements/bench.txt requirements/protobuf-oldest.txt
	$(PYTHON) -m venv $(PVENV)
	$(PBIN)/python -m pip install -q --upgrade pip
	$(PBIN)/python -m pip install -q -r requirements/dev.txt -r requirements/bench.txt \
		-r requirements/protobuf-oldest.txt -e .
	@touch $@

$(ISTAMP): pyproject.toml requirements/dev.txt requirements/bench.txt requirements/interop.txt
	$(PYTHON) -m venv $(IVENV)
	$(IBIN)/python -m pip install -q --upgrade pip
	$(IBIN)/python -m pip install -q -r requirements/interop.txt -r requirements/dev.txt -r requirements/bench.txt -e .
	$(IBIN)/python -m pip install -q --no-deps tensorflow-serving-api==2.21.0
	@touch $@

$(ESTAMP): pyproject.toml requirements/dev.txt requirements/engines.txt
	$(PYTHON) -m venv $(EVENV)
	$(EBIN)/python -m pip install -q --upgrade pip
	$(EBIN)/python -m pip install -q -r requirements/engines.txt -r requirements/dev.txt -e '.[beam,ray]'
	@touch $@

bench: $(STAMP)
	$(BIN)/tfs-async bench --quick

bench-full: $(STAMP)
	$(BIN)/tfs-async bench

lint: $(STAMP)
	$(BIN)/ruff check tfs_async tests benchmarks examples
	$(BIN)/ruff format --check tfs_async tests benchmarks examples
	$(BIN)/mypy
	$(BIN)/mypy --python-version 3.11 --exclude tests/plugin/user_suite tests benchmarks examples
	$(BIN)/lint-imports

fmt: $(STAMP)
	$(BIN)/ruff check --fix tfs_async tests benchmarks examples
	$(BIN)/ruff format tfs_async tests benchmarks examples

unit: $(STAMP)
	$(BIN)/python -m pytest -m "not interop and not beam and not ray" --ignore=tests/interop $(PYTEST_ARGS)
	$(BIN)/python -m pytest --doctest-modules tfs_async -q --ignore=tfs_async/beam.py $(PYTEST_ARGS)

test-protobuf-oldest: $(PSTAMP)
	$(PBIN)/python -c 'import google.protobuf as p; print("protobuf", p.__version__)'
	$(PBIN)/python -m pytest -m "not interop and not beam and not ray" --ignore=tests/interop $(PYTEST_ARGS)
	$(PBIN)/python -m pytest --doctest-modules tfs_async -q --ignore=tfs_async/beam.py $(PYTEST_ARGS)

interop: $(ISTAMP)
	$(IBIN)/python -m pytest -m interop tests/interop $(PYTEST_ARGS)

beam: $(ESTAMP)
	$(EBIN)/python -m pytest -m beam tests/engines $(PYTEST_ARGS)
	$(EBIN)/python -m pytest --doctest-modules tfs_async/beam.py -q $(PYTEST_ARGS)

test-engines: $(ESTAMP)
	$(EBIN)/python -m pytest -m "beam or ray" tests/engines $(PYTEST_ARGS)
	$(EBIN)/python -m pytest --doctest-modules tfs_async/beam.py -q $(PYTEST_ARGS)

test: lint unit interop beam

# The full soak (the default suite runs it with 2,000 requests per transport).
test-soak: $(STAMP)
	TFS_ASYNC_SOAK_REQUESTS=20000 $(BIN)/python -m pytest -s -o timeout=900 tests/reliability_faults/test_soak.py $(PYTEST_ARGS)

protos: $(PSTAMP)
	$(PBIN)/python -m grpc_tools.protoc -Iprotos --python_out=. --pyi_out=. protos/tfs_async/_proto/*.proto

clean:
	rm -rf $(VENV) $(IVENV) $(EVENV) $(PVENV) .mypy_cache .pytest_cache .ruff_cache build *.egg-info

# TF Serving's own model-server tests, run against `tfs-async serve` (opt-in; see
# tests/tfserving_suite/run.py). SUITE_ARGS picks tests, e.g. TensorflowModelServerTest.testPredictREST
.PHONY: test-tfserving-suite
test-tfserving-suite: $(ISTAMP)
	$(IBIN)/python -m pip install -q -r requirements/tfserving-suite.txt
	@test -n "$(TFSERVING_SRC)" || { echo 'TFSERVING_SRC=/path/to/a/checkout/of/tensorflow/serving is required'; exit 2; }
	TFSERVING_SRC=$(TFSERVING_SRC) $(IBIN)/python tests/tfserving_suite/run.py $(SUITE_ARGS)
