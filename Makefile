# Two commands on a fresh machine:
#   make demo   - sets up everything and runs the product with the simulated PBX and sample data
#   make test   - sets up everything and runs the whole test suite
# Everything lives inside this directory: .venv/ for Python, var/ for the embedded PostgreSQL.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
SUDO   := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
CHROMIUM := /usr/bin/chromium
CJK_FONT_STAMP := var/.cjk-font-stamp

.PHONY: demo test lint format bench clean venv browser help

help:
	@echo "make demo   - run the product with the simulated PBX and sample data on http://127.0.0.1:8080"
	@echo "make test   - run the whole test suite (embedded PostgreSQL, simulated PBX, headless Chromium)"
	@echo "make lint   - ruff and mypy"
	@echo "make bench  - benchmarks"
	@echo "make clean  - remove .venv and var/ (the embedded database too)"

venv: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || \
	  { echo "Python 3.11 or newer is required (found $$($(PYTHON) --version))"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip==25.3
	$(BIN)/pip install --quiet -c constraints.txt -e '.[dev]'
	@touch $@

# Page tests drive Debian's Chromium (Playwright's own browser download is not used) and need a
# Japanese font so that screenshots are legible.
browser: $(CHROMIUM) $(CJK_FONT_STAMP)

$(CHROMIUM):
	@command -v apt-get >/dev/null || { echo "Chromium is needed for the page tests: install it as $(CHROMIUM)"; exit 1; }
	$(SUDO) apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends chromium fonts-noto-cjk

$(CJK_FONT_STAMP):
	@mkdir -p var
	@fc-list 2>/dev/null | grep -qi 'Noto Sans CJK' || { \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends fonts-noto-cjk; }
	@touch $@

demo: venv
	$(BIN)/dialer demo

test: venv browser
	$(BIN)/pytest -q

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

format: venv
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

bench: venv
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) var
