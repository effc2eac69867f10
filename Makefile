# Two commands for a new machine: `make run` (index the seeds, serve the chat page, print its address last) and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PIP_VERSION := 26.3
export HF_HUB_OFFLINE := 1
export GRADIO_ANALYTICS_ENABLED := False
export ANONYMIZED_TELEMETRY := False

.PHONY: install install-llamacpp run test test-fast lint clean

# A no-op in seconds when neither the pins nor the project changed (stamp file).
install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml requirements.lock requirements-nodeps.lock
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check pip==$(PIP_VERSION)
	$(BIN)/pip install --quiet -r requirements.lock
	$(BIN)/pip install --quiet --no-deps -r requirements-nodeps.lock
	$(BIN)/pip install --quiet --no-deps -e .
	touch $@

# llama.cpp for the `llamacpp:` backend and its OpenAI-compatible server (the slow tests use both);
# compiles from source (several minutes, once).
install-llamacpp: $(VENV)/.installed-llamacpp

$(VENV)/.installed-llamacpp: $(VENV)/.installed requirements-llamacpp.lock
	$(BIN)/pip install --quiet -r requirements-llamacpp.lock
	touch $@

run: install
	$(BIN)/newsqa ingest seeds
	$(BIN)/newsqa chat

test: install
	$(BIN)/python -m pytest

# The quick loop while developing: no model loading, no servers, no browser.
test-fast: install
	$(BIN)/python -m pytest -m "not slow"

# ruff: the lint rules and the format, as configured in pyproject.toml (`ruff format` fixes the format).
lint: install
	$(BIN)/ruff check app ingest eval tests
	$(BIN)/ruff format --check app ingest eval tests

clean:
	rm -rf $(VENV) build *.egg-info
