# spxdl: `make run` (download from the built-in simulated terminal) and `make test` work on a
# fresh clone; both install what is missing into .venv first.
# The newest Python 3.10+ on the machine (bin/newest-python), so that the direct source (Python
# 3.12+) is installed and tested wherever it can be; `make install PYTHON=python3.11` picks one.
PYTHON ?= $(shell sh bin/newest-python)
PYVER  := $(shell $(PYTHON) -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null)
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-spxdl-$(PYVER)
SPXDL  := $(BIN)/spxdl
# direct and direct-test install nothing below Python 3.12 (their requirements say so).
EXTRAS := test,direct,direct-test

.PHONY: install test run bench soak backfill update sim clean help

help:
	@echo "make run       download three simulated days into ./sim-data (built-in simulated terminal)"
	@echo "make test      run the whole test suite"
	@echo "make bench     measure throughput, memory, ledger cost and terminal slots; ends with one JSON line"
	@echo "make soak      kills, overlapping runs, a terminal restart, a full disk, a corrupted ledger (~2.5 min); ends in JSON"
	@echo "make backfill  fill every gap from [download] start_date (real terminal; see README)"
	@echo "make update    fetch the latest sessions (what the systemd timer runs)"
	@echo "make sim       serve the simulated terminal on 127.0.0.1:25503 until Ctrl-C"

install: $(STAMP)

$(STAMP): setup.cfg pyproject.toml
	@test -n "$(PYVER)" || { echo "spxdl needs Python 3.10 or newer: install one, or set PYTHON=/path/to/python3.x"; exit 1; }
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 10) else "spxdl needs Python 3.10 or newer (set PYTHON=python3.x)")'
	@echo "Python $(PYVER): $(PYTHON)"
	@if [ -x $(BIN)/python ] && [ "$$($(BIN)/python -c 'import sys; print("%d.%d" % sys.version_info[:2])')" != "$(PYVER)" ]; then \
		echo "$(VENV) was made with another Python; making it again with $(PYVER)"; rm -rf $(VENV); fi
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[$(EXTRAS)]'
	rm -f $(VENV)/.installed-spxdl*
	touch $(STAMP)

test: install
	$(BIN)/python -m pytest -q

run: install
	$(SPXDL) run --simulate --yes

bench: install
	$(BIN)/python bench/run.py

soak: install
	$(BIN)/python bench/soak.py

backfill: install
	bin/spxdl-backfill

update: install
	bin/spxdl-update

sim: install
	$(SPXDL) sim

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache
