# The two commands of the book (see README.md):
#   make book   set up .venv, execute every notebook at full size, build _build/html
#   make test   unit tests, every notebook in quick mode, strict build, browser check

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
MATHJAX := _build/npm/node_modules/mathjax/es5/tex-chtml.js
MATHJAX_VERSION := 3.2.2
# Seconds each notebook may run (at full size, and with quick=True).
NOTEBOOK_TIMEOUT ?= 1200
QUICK_TIMEOUT ?= 300

.PHONY: setup book test unit notebooks notebooks-quick html html-strict check clean

setup: $(STAMP) $(MATHJAX)

# Everything is installed from constraints.txt, which pins the whole stack.
$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check \
		-c constraints.txt -e ".[book,test]"
	touch $(STAMP)

# MathJax comes from the npm registry so that built pages render maths offline.
$(MATHJAX):
	mkdir -p _build/npm
	npm install --silent --no-audit --no-fund --prefix _build/npm \
		mathjax@$(MATHJAX_VERSION)

book: setup notebooks html

test: setup unit notebooks-quick html-strict check

unit:
	$(BIN)/ruff format --check wdcore tests tools benchmarks
	$(BIN)/ruff check wdcore tests tools benchmarks
	$(BIN)/python -m pytest -q

notebooks:
	$(BIN)/python tools/book.py execute --timeout $(NOTEBOOK_TIMEOUT)

notebooks-quick:
	$(BIN)/python tools/book.py execute --quick --timeout $(QUICK_TIMEOUT)

html:
	$(BIN)/python tools/book.py stage
	$(BIN)/jupyter-book build _build/book --path-output _build/jb --quiet
	rm -rf _build/html && cp -r _build/jb/_build/html _build/html

html-strict:
	$(BIN)/python tools/book.py stage
	$(BIN)/jupyter-book build _build/book --path-output _build/jb --quiet \
		-W -n --keep-going
	rm -rf _build/html && cp -r _build/jb/_build/html _build/html

check:
	$(BIN)/python tools/book.py check --html _build/html

clean:
	rm -rf _build
