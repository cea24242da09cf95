# Set-up and the two everyday commands. Everything lives in a project-local virtual environment.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.cryomine-installed

.PHONY: install demo lint test bench clean

install: $(STAMP)

# torch is pinned here (its CPU wheel is found through pip's find-links); every other package comes
# from PyPI. Installing torch first means the package's own `torch>=...` range pulls nothing more.
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet torch==2.13.0
	$(PY) -m pip install --quiet -e ".[test]"
	touch $(STAMP)

demo: install
	$(VENV)/bin/cryomine demo --output demo_output

# ruff is pinned in the test extra, so a new ruff release cannot turn CI red overnight.
lint: install
	$(VENV)/bin/ruff check src tests benchmarks
	$(VENV)/bin/ruff format --check src tests benchmarks

test: lint
	$(PY) -m pytest -q

clean:
	rm -rf $(VENV) demo_output .pytest_cache
