# Two commands do all the set-up on a fresh machine:
#   make run   - create .venv, install, index seeds/ into index/, start the interactive front end
#   make test  - install what the tests need and run the whole suite
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
INDEX ?= index
export HF_HUB_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false

.PHONY: run test install install-test index bench clean

$(BIN)/python:
	@command -v $(PYTHON) >/dev/null || { echo "error: $(PYTHON) not found (Python 3.11 is required)"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

# Re-install only when pyproject.toml changes.
$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e .
	touch $@

$(VENV)/.installed-test: $(VENV)/.installed
	$(BIN)/pip install -q -e ".[test]"
	touch $@

install: $(VENV)/.installed
install-test: $(VENV)/.installed-test

index: install
	$(BIN)/rag ingest seeds --index $(INDEX)

run: index
	$(BIN)/rag search --index $(INDEX)

test: install-test
	$(BIN)/python -m pytest

bench: install
	$(BIN)/python bench/ingest_throughput.py
	$(BIN)/python bench/retrieval_latency.py
	$(BIN)/python bench/retrieval_quality.py

clean:
	rm -rf $(VENV) test-output
