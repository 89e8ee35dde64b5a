# The two set-up commands of the README:
#   make run    install, then run the whole pipeline (dvc repro: build the datasets with Beam,
#               train and evaluate the example models) on the embedded default (local DVC
#               remote, Beam DirectRunner, CPU, MLflow in mlflow/mlflow.db) and show what it built
#   make test   install with the test tools and the Google Cloud clients (the `gcp` extra:
#               Beam's Dataflow client), then run the test suite
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

# One log for a run: each stage writes the chatter of Beam, TFDS, TensorFlow and MLflow there
# (registry/console.py) and prints one line; DVC's own lines go there too. REGISTRY_VERBOSE=1
# shows the stages' chatter live instead.
RUN_LOG := .registry/logs/run-$(shell date +%Y%m%d-%H%M%S).log
run: export REGISTRY_LOG_FILE := $(CURDIR)/$(RUN_LOG)

.PHONY: run test install install-test postgresql lint clean

run: $(VENV)/.installed
	@mkdir -p $(dir $(RUN_LOG))
	@# The embedded default DVC remote (.dvc/config): a release never creates a remote's folder.
	@mkdir -p .dvc-storage
	@echo "dvc repro: build the datasets, train and evaluate the models (log: $(RUN_LOG))"
	@dvc repro >> $(RUN_LOG) || { echo "make run failed: see the error above and $(RUN_LOG)" >&2; exit 1; }
	@echo
	@registry datasets list
	@echo
	@registry models list
	@echo
	@dvc metrics show
	@echo
	@echo "Log of this run: $(RUN_LOG) (REGISTRY_VERBOSE=1 make run shows it live)"

test: $(VENV)/.installed-test postgresql
	pytest -n 2 $(PYTEST_ARGS)

install: $(VENV)/.installed

install-test: $(VENV)/.installed-test postgresql

# pip's and setuptools' output goes to $(VENV)/install.log: one line here, or the log's path.
INSTALL_LOG := $(VENV)/install.log
PIP := $(BIN)/python -m pip install --quiet --disable-pip-version-check

$(VENV)/.installed: pyproject.toml constraints.txt
	@echo "installing into $(VENV)/ (a few minutes the first time; log: $(INSTALL_LOG))"
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@{ $(PIP) --upgrade pip && $(PIP) -c constraints.txt -e '.[local-warehouse]' ; } > $(INSTALL_LOG) 2>&1 \
		|| { echo "install failed: see $(INSTALL_LOG)" >&2; exit 1; }
	@touch $@

$(VENV)/.installed-test: $(VENV)/.installed
	@echo "installing the test tools into $(VENV)/ (log: $(INSTALL_LOG))"
	@$(PIP) -c constraints.txt -e '.[test,gcp]' >> $(INSTALL_LOG) 2>&1 \
		|| { echo "install failed: see $(INSTALL_LOG)" >&2; exit 1; }
	@# The catalog's browser tests drive Debian's chromium: installed where the machine allows
	@# it (Debian, as root); elsewhere those tests say why they skip (and fail under CI=true).
	@if ! command -v chromium >/dev/null && [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		echo "installing chromium for the browser tests (log: $(INSTALL_LOG))"; \
		{ apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium ; } \
			>> $(INSTALL_LOG) 2>&1 || echo "chromium could not be installed: see $(INSTALL_LOG)" >&2; \
	fi
	@touch $@

# The tests run the lab's MLflow server on PostgreSQL (tests/test_mlflow_postgres.py): Debian's
# server programs, installed with apt-get when no initdb is found and this is root (CI). Anyone
# else is told how; the tests then skip, which under CI=true is a failure.
PG_FOUND := command -v initdb >/dev/null 2>&1 || ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1

postgresql:
	@if $(PG_FOUND); then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		echo "installing PostgreSQL for the tests (apt-get; log: $(INSTALL_LOG))"; \
		mkdir -p $(VENV); \
		{ apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y \
			--no-install-recommends postgresql ; } >> $(INSTALL_LOG) 2>&1 \
		|| { echo "installing PostgreSQL failed: see $(INSTALL_LOG)" >&2; exit 1; }; \
	else \
		echo "note: PostgreSQL is not installed, so the MLflow-on-PostgreSQL tests will skip" \
			"(fail under CI=true): sudo apt-get install postgresql" >&2; \
	fi

lint: $(VENV)/.installed-test
	ruff check registry src datasets tests benchmarks
	mypy

clean:
	rm -rf $(VENV)
