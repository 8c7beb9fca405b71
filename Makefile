# The two commands a fresh machine needs: `make run` and `make test`.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test wheel-test lint bench screenshots clean

$(STAMP): pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e ".[dev]"
	touch $(STAMP)

run: $(STAMP)
	@$(BIN)/attribute-studio || { status=$$?; echo "attribute-studio exited with status $$status. If Qt could not load its platform plugin \"xcb\", install the X11 libraries listed in README.md (Set-up)." >&2; exit $$status; }

test: $(STAMP)
	QT_QPA_PLATFORM=offscreen $(BIN)/ruff check studio tests benchmarks
	QT_QPA_PLATFORM=offscreen $(BIN)/python -m pytest -q

wheel-test: $(STAMP)
	BIN=$(BIN) bash packaging/wheel_test.sh

bench: $(STAMP)
	for f in benchmarks/*.py; do $(BIN)/python $$f; done

screenshots: $(STAMP)
	QT_QPA_PLATFORM=offscreen $(BIN)/python -m studio.ui.screenshots docs/screenshots

clean:
	rm -rf $(VENV) build dist
