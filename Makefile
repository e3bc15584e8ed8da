# skinlab: two commands do all set-up on a fresh machine.
#   make book  -> creates .venv if missing, installs the project, builds the book into _build/html
#   make test  -> creates .venv if missing, installs the project (+ chromium, bubblewrap), runs the whole test suite
#   make check -> the edit loop: every module's unit tests, no book build, no nbgrader batch (<= 5 min on 2 cores)
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
export PATH := $(abspath $(BIN)):$(PATH)

.PHONY: book test check install browser sandbox bench clean release

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# Reinstall when the dependency list changes.
$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e ".[book,grading,dev]"
	touch $(STAMP)

install: $(STAMP)

book: $(STAMP)
	$(BIN)/python -m skinlab.course.bookbuild

# Headless Chromium for the book's browser test (Debian packages; needs root or sudo).
browser: $(STAMP)
	-$(BIN)/python -m skinlab.course.bookbuild --install-browser

# bubblewrap: the grading sandbox for student code (Debian package; needs root or sudo).
sandbox: $(STAMP)
	@command -v bwrap >/dev/null 2>&1 || { SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq bubblewrap; } \
	  || echo "warning: could not install bubblewrap: grading will refuse to run student code without --unsandboxed"
	-$(BIN)/python -m skinlab.grading.sandbox check

test: $(STAMP) browser sandbox
	$(BIN)/python -m pytest

# The fast loop while editing: what is marked slow (over ~10 s), builds the book or runs nbgrader
# stays for `make test`. One test process per core, at most 4 (pytest-xdist). CHECK_ARGS adds
# pytest arguments, e.g. CHECK_ARGS="-k split" (or "-n 0" for one process).
check: $(STAMP)
	$(BIN)/python -m pytest -m "not slow and not book and not grading" -n auto --maxprocesses=4 $(CHECK_ARGS)

bench: $(STAMP)
	$(BIN)/python -m bench

release: $(STAMP)
	$(BIN)/python solutions/build.py
	$(BIN)/python -m skinlab.grading release

clean:
	rm -rf _build
