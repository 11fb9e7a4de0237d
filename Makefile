# The two commands a newcomer runs: `make demo` and `make test`.
# Each creates .venv when missing and installs torch first (CPU wheel by default;
# override with e.g. `make test TORCH=torch`), then genlab with its extras.
PYTHON ?= python3
VENV ?= .venv
TORCH ?= torch==2.13.0
BIN := $(VENV)/bin
STAMP := $(VENV)/.genlab-installed
BENCH_STAMP := $(VENV)/.genlab-bench-installed

.PHONY: test demo bench install clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet "$(TORCH)"
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $@

install: $(STAMP)

test: $(STAMP)
	$(BIN)/python -m pytest -q

demo: $(STAMP)
	$(BIN)/genlab demo --out demo

$(BENCH_STAMP): $(STAMP)
	$(BIN)/python -m pip install --quiet -e ".[dev,bench]"
	touch $@

bench: $(BENCH_STAMP)
	$(BIN)/python -m benchmarks.vae_throughput
	$(BIN)/python -m benchmarks.dcgan_throughput

clean:
	rm -rf $(VENV) demo build src/*.egg-info .pytest_cache
