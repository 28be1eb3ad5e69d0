# broadcaster — developer loop. Every target creates the virtualenv it needs.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: run test lint bench golden clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

run: $(STAMP)  ## the daemon on the shipped offline demo (Ctrl-C stops it)
	$(BIN)/python main.py daemon

test: $(STAMP)
	$(BIN)/python -m pytest -n 2 -q

lint: $(STAMP)
	$(BIN)/ruff check broadcaster tests benchmarks main.py

bench: $(STAMP)
	$(BIN)/python -m benchmarks

golden: $(STAMP)  ## regenerate tests/golden/ from the shipped templates (review the diff!)
	$(BIN)/python -m tests.golden_regen

clean:
	rm -rf $(VENV) var .pytest_cache
