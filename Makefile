# tfs_async: every target bootstraps the virtual environment it needs.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
IVENV := .venv-interop
IBIN := $(IVENV)/bin
ISTAMP := $(IVENV)/.installed
# The unit tier again on the oldest protobuf the package allows (the main venv has the newest).
PVENV := .venv-protobuf-oldest
PBIN := $(PVENV)/bin
PSTAMP := $(PVENV)/.installed

.PHONY: help bench bench-full test unit test-protobuf-oldest interop lint fmt protos clean

help:
	@echo "make bench   - protocol benchmark (gRPC vs HTTP) against the embedded emulator (--quick sweep)"
	@echo "make test    - lint + unit/integration tests + interop tier (installs tensorflow-cpu)"
	@echo "make unit    - lint-free fast loop: the tests without the interop tier (newest protobuf)"
	@echo "make test-protobuf-oldest - the same tests on the oldest protobuf allowed (6.33.5)"
	@echo "make interop - the interop tier alone (tensorflow-cpu + tensorflow-serving-api)"
	@echo "make lint    - ruff check, ruff format --check, mypy --strict on tfs_async/"
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

bench: $(STAMP)
	$(BIN)/tfs-async bench --quick

bench-full: $(STAMP)
	$(BIN)/tfs-async bench

lint: $(STAMP)
	$(BIN)/ruff check tfs_async tests benchmarks
	$(BIN)/ruff format --check tfs_async tests benchmarks
	$(BIN)/mypy

fmt: $(STAMP)
	$(BIN)/ruff check --fix tfs_async tests benchmarks
	$(BIN)/ruff format tfs_async tests benchmarks

unit: $(STAMP)
	$(BIN)/python -m pytest -m "not interop" --ignore=tests/interop $(PYTEST_ARGS)
	$(BIN)/python -m pytest --doctest-modules tfs_async -q $(PYTEST_ARGS)

test-protobuf-oldest: $(PSTAMP)
	$(PBIN)/python -c 'import google.protobuf as p; print("protobuf", p.__version__)'
	$(PBIN)/python -m pytest -m "not interop" --ignore=tests/interop $(PYTEST_ARGS)
	$(PBIN)/python -m pytest --doctest-modules tfs_async -q $(PYTEST_ARGS)

interop: $(ISTAMP)
	$(IBIN)/python -m pytest -m interop tests/interop $(PYTEST_ARGS)

test: lint unit test-protobuf-oldest interop

protos: $(PSTAMP)
	$(PBIN)/python -m grpc_tools.protoc -Iprotos --python_out=. --pyi_out=. protos/tfs_async/_proto/*.proto

clean:
	rm -rf $(VENV) $(IVENV) $(PVENV) .mypy_cache .pytest_cache .ruff_cache build *.egg-info
