# Every target creates the virtualenv it needs; nothing else must be installed beforehand.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: run test bench openapi lint migrate install clean-data

$(STAMP): pyproject.toml clients/python/pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	$(BIN)/python -m pip install --quiet -e ./clients/python
	@touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(BIN)/xueshi run

test: $(STAMP)
	$(BIN)/ruff check services clients tests bench tools
	$(BIN)/mypy
	$(BIN)/python -m pytest $(PYTEST_ARGS)

bench: $(STAMP)
	$(BIN)/python bench/ledger.py
	$(BIN)/python bench/proofs.py
	$(BIN)/python bench/transcript.py
	$(BIN)/python bench/rosters.py
	$(BIN)/python bench/xapi.py
	$(BIN)/python bench/hr_statistics.py

migrate: $(STAMP)
	$(BIN)/xueshi db upgrade

openapi: $(STAMP)
	$(BIN)/xueshi openapi

lint: $(STAMP)
	$(BIN)/ruff check services clients tests bench tools
	$(BIN)/mypy

clean-data:
	rm -rf .data
