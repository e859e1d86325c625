# The two commands of the README. Each sets up .venv (Python 3.10+ is all a machine needs) and runs.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test clean

$(STAMP): setup.py
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[test]"
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/python -m visopt.demo --out demo_output

test: $(STAMP)
	$(BIN)/python -m pytest tests -q

clean:
	rm -rf $(VENV) demo_output .pytest_cache
