# Everything a newcomer needs: `make demo` runs the main job, `make test` runs the suite. Each installs what it uses:
# the demo its data, plots and TensorBoard logs; the tests every extra and the test tools (the `dev` extra).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: install demo test lint clean

install: $(VENV)/.installed-dev

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# Re-install only when the project's metadata changes, so a repeated `make demo` or `make test` is quick.
$(VENV)/.installed-demo: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e ".[demo,plot,tensorboard,metrics,explain]"
	touch $@

$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $@

demo: $(VENV)/.installed-demo
	$(BIN)/inceptorch demo

# One test process per core (pytest-xdist); tests/conftest.py gives each one thread. `worksteal` lets an idle
# process take queued tests from a busy one, as the few slow compile and export tests would otherwise leave it idle.
test: $(VENV)/.installed-dev
	$(BIN)/python -m pytest -q -n auto --dist worksteal

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check src tests benchmarks

clean:
	rm -rf $(VENV) build *.egg-info src/*.egg-info
