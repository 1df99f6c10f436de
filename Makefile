# Two commands do all the set-up on a fresh machine: `make demo` and `make test`.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export HF_HUB_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false

.PHONY: demo test faults lint broker-jars clean

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info[:2] in {(3, 11), (3, 12)} else "moodstream needs Python 3.11 or 3.12")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev,export]'
	touch $(STAMP)

$(VENV): $(STAMP)

broker-jars: $(STAMP)
	$(BIN)/python -m stream.devtools.broker --fetch-only

demo: $(STAMP) broker-jars
	$(BIN)/moodstream demo $(DEMO_ARGS)

test: $(STAMP) broker-jars
	$(BIN)/python -m pytest -q $(PYTEST_ARGS)

# The fault suite alone (it is part of `make test` too), its figures in benchmarks/results/faults.md.
faults: $(STAMP) broker-jars
	rm -f benchmarks/results/faults.md
	MOODSTREAM_FAULTS_REPORT=benchmarks/results/faults.md $(BIN)/python -m pytest -q -s tests/integration/faults

lint: $(STAMP)
	$(BIN)/ruff check stream export tests benchmarks
	$(BIN)/ruff format --check stream export tests benchmarks
	$(BIN)/mypy

clean:
	rm -rf $(VENV) .kafka .moodstream build
