# The two set-up commands of the README:
#   make run    install, then run the whole pipeline (dvc repro: build the datasets with Beam,
#               train and evaluate the example models) on the embedded default (local DVC
#               remote, Beam DirectRunner, CPU, MLflow in mlflow/mlflow.db) and show what it built
#   make test   install with the test tools, then run the test suite
# Both create .venv/ on first use and reuse it after (reinstalling when pyproject.toml or
# constraints.txt change).

PYTHON ?= python3
VENV := .venv
BIN := $(CURDIR)/$(VENV)/bin
PYTEST_ARGS ?=

# The stage commands in dvc.yaml call `registry`: put the venv first on PATH.
export PATH := $(BIN):$(PATH)
export DVC_NO_ANALYTICS := 1
export MLFLOW_DISABLE_TELEMETRY := true
export DO_NOT_TRACK := 1
export TF_CPP_MIN_LOG_LEVEL := 2

.PHONY: run test install install-test lint clean

run: $(VENV)/.installed
	dvc repro
	registry datasets list
	registry models list
	dvc metrics show

test: $(VENV)/.installed-test
	pytest -n 2 $(PYTEST_ARGS)

install: $(VENV)/.installed

install-test: $(VENV)/.installed-test

$(VENV)/.installed: pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e .
	touch $@

$(VENV)/.installed-test: $(VENV)/.installed
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[test]'
	touch $@

lint: $(VENV)/.installed-test
	ruff check registry src datasets tests benchmarks
	mypy

clean:
	rm -rf $(VENV)
