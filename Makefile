# broadcaster — developer loop. Every target creates the virtualenv it needs.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: run test lint bench golden clean browser dashboard-shot

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

run: $(STAMP)  ## the daemon on the shipped offline demo, with the inbound server on 127.0.0.1:8080 (Ctrl-C stops it)
	$(BIN)/python main.py daemon --serve

test: $(STAMP) browser
	$(BIN)/python -m pytest -n 2 -q

# Debian's chromium and a Chinese font for the browser test, installed only when missing
# (needs root, as in CI); where they cannot be installed, the browser test is skipped and says why.
browser:
	@if ! command -v chromium >/dev/null 2>&1 || ! fc-list :lang=zh 2>/dev/null | grep -q .; then \
	  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium fonts-wqy-zenhei >/dev/null; } \
	  || echo "note: could not install chromium (apt-get, as root on Debian): the browser test will be skipped"; \
	fi

dashboard-shot: $(STAMP) browser  ## regenerate docs/dashboard.png, the README's picture of the dashboard
	$(BIN)/python -m tests.dashboard_shot

lint: $(STAMP)
	$(BIN)/ruff check broadcaster tests benchmarks main.py

bench: $(STAMP)
	$(BIN)/python -m benchmarks

golden: $(STAMP)  ## regenerate tests/golden/ from the shipped templates (review the diff!)
	$(BIN)/python -m tests.golden_regen

clean:
	rm -rf $(VENV) var .pytest_cache
