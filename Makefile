# Two commands for a fresh machine with python3 and make: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: demo test lint format typecheck unit locales bench eval clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

## Try it: the storefront in a local sandbox (or on Telegram when BOT_TOKEN is set).
demo: $(STAMP)
	$(BIN)/python -m bot demo

## Test it: lint, format check, types, then the whole suite (SQLite, or TEST_DATABASE_URL).
test: $(STAMP) lint typecheck
	$(BIN)/python -m pytest -q

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy

format: $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

## Re-extract translatable strings and merge them into the en/zh catalogs.
locales: $(STAMP)
	$(BIN)/pybabel -q extract -k _ -k __ -k gettext -k ngettext:1,2 --no-location --sort-output \
		-o bot/locales/messages.pot bot/
	$(BIN)/pybabel -q update --no-fuzzy-matching -i bot/locales/messages.pot \
		-d bot/locales -D messages

bench: $(STAMP)
	$(BIN)/python bench/handlers.py
	$(BIN)/python bench/recommend.py
	$(BIN)/python bench/search.py

## Offline evaluation of the recommender on ../shared/datasets (COCO, MOOCCube).
eval: $(STAMP)
	$(BIN)/python -m bot.recommend.evaluate

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
