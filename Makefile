# The two commands of the book (see README.md):
#   make book   set up .venv, execute every notebook at full size, build _build/html
#   make test   unit tests, every notebook in quick mode, strict build, browser check
# The quick build of `make test` lives in _build/quick, so it never overwrites the
# full book; the trained zoos (_build/zoo) and MathJax (_build/mathjax) are shared.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
BUILD := _build
QUICK := $(BUILD)/quick
# Seconds each notebook may run (at full size, and with quick=True).
NOTEBOOK_TIMEOUT ?= 1200
QUICK_TIMEOUT ?= 300
# An extra package index for torch, empty by default. On Linux, PyPI's torch is a
# CUDA build of several GB; TORCH_INDEX=https://download.pytorch.org/whl/cpu gets
# the CPU build of the same pinned version (2.13.0+cpu).
TORCH_INDEX ?=

.PHONY: setup mathjax book test unit notebooks notebooks-quick html html-strict \
	check clean

# Each command's steps run in the order written, even under `make -j`.
.NOTPARALLEL:

setup: $(STAMP) mathjax

# Everything is installed from constraints.txt, which pins the whole stack.
$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check \
		$(if $(TORCH_INDEX),--extra-index-url $(TORCH_INDEX)) \
		-c constraints.txt -e ".[book,test]"
	touch $(STAMP)

# MathJax comes from the npm registry (checked against its pinned hash, no Node.js
# needed) so that built pages render maths offline. Does nothing if it is there.
mathjax: $(STAMP)
	$(BIN)/python tools/book.py mathjax

book: setup notebooks html

test: setup unit notebooks-quick html-strict check

unit: setup
	$(BIN)/ruff format --check wdcore tests tools benchmarks
	$(BIN)/ruff check wdcore tests tools benchmarks
	$(BIN)/python -m pytest -q

notebooks: setup
	$(BIN)/python tools/book.py execute --timeout $(NOTEBOOK_TIMEOUT)

notebooks-quick: setup
	$(BIN)/python tools/book.py --build-dir $(QUICK) execute --quick \
		--timeout $(QUICK_TIMEOUT)

html: setup
	$(BIN)/python tools/book.py --build-dir $(BUILD) stage
	$(BIN)/jupyter-book build $(BUILD)/book --path-output $(BUILD)/jb --quiet
	rm -rf $(BUILD)/html && cp -r $(BUILD)/jb/_build/html $(BUILD)/html

html-strict: setup
	$(BIN)/python tools/book.py --build-dir $(QUICK) stage
	$(BIN)/jupyter-book build $(QUICK)/book --path-output $(QUICK)/jb --quiet \
		-W -n --keep-going
	rm -rf $(QUICK)/html && cp -r $(QUICK)/jb/_build/html $(QUICK)/html

check: setup
	$(BIN)/python tools/book.py --build-dir $(QUICK) check

clean:
	rm -rf $(BUILD)
