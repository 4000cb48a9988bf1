# Two commands a newcomer needs: `make run` and `make test`. Each sets itself up.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: run test bench install install-test clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@ $(VENV)/.installed

install: $(VENV)/.installed
install-test: $(VENV)/.installed-test

run: install
	$(BIN)/paymux init
	$(BIN)/paymux serve --host 127.0.0.1 --port 8000

PYTEST_WORKERS ?= 2

test: install-test
	$(BIN)/python -m pytest -n $(PYTEST_WORKERS) $(PYTEST_ARGS)

bench: install-test
	$(BIN)/python bench/api_create.py
	$(BIN)/python bench/ledger_post.py
	$(BIN)/python bench/notify.py
	$(BIN)/python bench/notify_delivery.py
	$(BIN)/python bench/recon.py

clean:
	rm -rf $(VENV) paymux.db paymux.db-wal paymux.db-shm .paymux
