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
# direct and direct-test install nothing below Python 3.12 (their requirements say so); dask runs the
# executor's tests on a real LocalCluster.
EXTRAS := test,dask,direct,direct-test
# The vendor's package, for its generated protobuf/grpc modules alone (tests/market_double.py; what
# they need is in direct-test): --no-deps, since its client's pandas and polars bring NumPy, which
# pyarrow then loads in every spxdl process (+0.15 s and 40-60 MB each). So `pip check` names
# thetadata's httpx, pandas and polars as missing: nothing in .venv imports its client.
# `make bench` measures that client in a venv of its own (.venv-vendor), with its dependencies.
VENDOR_VERSION := 1.0.15
VENDOR_PACKAGE := thetadata==$(VENDOR_VERSION)
VENDOR_VENV    := .venv-vendor
VENDOR_STAMP   := $(VENDOR_VENV)/.installed-thetadata-$(VENDOR_VERSION)
ON_312         := -c 'import sys; sys.exit(sys.version_info < (3, 12))'

# make dist: a wheel and a single-file app (a pex zipapp holding spxdl and its dependencies, pyarrow's
# binary wheel included), built from a copy of the sources with the versions the .venv tested.
PEX_VERSION  := 2.105.2
DIST_SRC     := build/dist-src
RUNTIME_DEPS := requests|urllib3|pyarrow|click|charset.normalizer|idna|certifi

.PHONY: install test run bench soak backfill update sim dist dist-check clean help

help:
	@echo "make run       download three simulated days into ./sim-data (built-in simulated terminal)"
	@echo "make test      run the whole test suite"
	@echo "make bench     measure throughput, memory, ledger cost and terminal slots; ends with one JSON line"
	@echo "make soak      kills, overlapping runs, a terminal restart, a full disk, a corrupted ledger (~2.5 min); ends in JSON"
	@echo "make backfill  fill every gap from [download] start_date (real terminal; see README)"
	@echo "make update    fetch the latest sessions (what the systemd timer runs)"
	@echo "make sim       serve the simulated terminal on 127.0.0.1:25503 until Ctrl-C"
	@echo "make dist      build dist/spxdl-VERSION-py3-none-any.whl and dist/spxdl.pyz (one file: needs only Python)"
	@echo "make dist-check  run dist/spxdl.pyz --version and a simulated run with a bare Python in a temp dir"

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
	if $(BIN)/python $(ON_312); then \
		$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps '$(VENDOR_PACKAGE)'; fi
	@# once: a .venv made before thetadata came in --no-deps holds its client's pandas, polars and NumPy
	@if [ ! -e $(VENV)/.vendor-no-deps ]; then \
		$(BIN)/python -m pip uninstall --quiet --disable-pip-version-check -y pandas polars polars-runtime-32 numpy \
			2>/dev/null || true; touch $(VENV)/.vendor-no-deps; fi
	rm -f $(VENV)/.installed-spxdl*
	touch $(STAMP)

test: install
	$(BIN)/python -m pytest -q

run: install
	$(SPXDL) run --simulate --yes

bench: install $(VENDOR_STAMP)
	$(BIN)/python bench/run.py

# The vendor's package whole (pandas, polars, NumPy) for bench/vendor_convert.py; none below Python 3.12.
$(VENDOR_STAMP):
	@if $(PYTHON) $(ON_312); then \
		test -x $(VENDOR_VENV)/bin/python || $(PYTHON) -m venv $(VENDOR_VENV); \
		$(VENDOR_VENV)/bin/python -m pip install --quiet --disable-pip-version-check '$(VENDOR_PACKAGE)' 'python-dotenv>=1.0' \
		&& touch $(VENDOR_STAMP); \
	else echo "Python $(PYVER): the vendor's package needs 3.12+ (make bench says which figures it leaves out)"; fi

soak: install
	$(BIN)/python bench/soak.py

backfill: install
	bin/spxdl-backfill

update: install
	bin/spxdl-update

sim: install
	$(SPXDL) sim

dist: install
	$(BIN)/python -m pip install --quiet --disable-pip-version-check 'pex==$(PEX_VERSION)'
	rm -rf $(DIST_SRC) dist/spxdl-*.whl dist/spxdl.pyz
	mkdir -p $(DIST_SRC) dist
	cp -R setup.cfg pyproject.toml README.md spxdl $(DIST_SRC)/
	find $(DIST_SRC) -name __pycache__ -prune -exec rm -rf {} +
	$(BIN)/python -m pip freeze --exclude-editable | grep -iE '^($(RUNTIME_DEPS))==' > build/dist-constraints.txt
	$(BIN)/python -m pip wheel --quiet --disable-pip-version-check --no-deps --wheel-dir dist $(DIST_SRC)
	$(BIN)/pex $(DIST_SRC) --constraints build/dist-constraints.txt -c spxdl --venv --pip-version 24.1 \
		--python-shebang '/usr/bin/env python3' -o dist/spxdl.pyz
	@ls -l dist

# A new venv without pip or pyarrow, an empty environment and HOME, and PEX_ROOT in the temp dir.
dist-check:
	@test -f dist/spxdl.pyz || { echo "no dist/spxdl.pyz: run make dist first"; exit 2; }
	@tmp=$$(mktemp -d) && trap 'rm -rf "$$tmp"' EXIT && \
	$(PYTHON) -m venv --without-pip "$$tmp/python" && \
	if "$$tmp/python/bin/python" -c 'import pyarrow' 2>/dev/null; then echo "the bare Python has pyarrow"; exit 1; fi && \
	cp dist/spxdl.pyz "$$tmp/" && cd "$$tmp" && \
	only_python="env -i HOME=$$tmp PEX_ROOT=$$tmp/pex PATH=$$tmp/python/bin:/usr/bin:/bin" && \
	$$only_python python spxdl.pyz --version && \
	$$only_python python spxdl.pyz run --simulate --sim-profile tiny --days-back 2 --yes && \
	$$only_python python spxdl.pyz verify --data-dir sim-data && \
	echo "dist-check: dist/spxdl.pyz ran --version, a simulated run and verify with only $$($$only_python python --version)"

clean:
	rm -rf $(VENV) $(VENDOR_VENV) build dist *.egg-info .pytest_cache
