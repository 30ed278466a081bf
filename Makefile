# cnnlab: the commands the README names.
PY      ?= python3
VENV    := .venv
BIN     := $(VENV)/bin
# Tests and the demo read the real datasets from here (a folder holding mnist/ and fashion-mnist/).
export CNNLAB_DATA ?= $(abspath ../shared/data)

.PHONY: venv test lint demo bench clean

$(BIN)/activate:
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --upgrade pip

$(VENV)/.installed: $(BIN)/activate pyproject.toml constraints.txt
	$(BIN)/pip install -c constraints.txt torch==2.13.0
	$(BIN)/pip install -c constraints.txt -e '.[dev]'
	touch $@

venv: $(VENV)/.installed

lint: venv
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench

# The browser tests need a Chromium: tools/ensure-chromium finds or installs one, or says how.
test: venv
	$(BIN)/ruff check src tests bench
	CNNLAB_CHROMIUM=$$(tools/ensure-chromium $(BIN)/python) && export CNNLAB_CHROMIUM && \
	$(BIN)/pytest -q

demo: venv
	$(BIN)/cnnlab demo

bench: venv
	$(BIN)/python bench/conv.py

clean:
	rm -rf $(VENV) build dist *.egg-info
