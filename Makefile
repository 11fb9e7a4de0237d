# The two commands a newcomer runs: `make demo` and `make test`.
# Each creates .venv when missing and installs torch first (CPU wheel by default;
# override with e.g. `make test TORCH=torch`), then genlab with its extras.
PYTHON ?= python3
VENV ?= .venv
TORCH ?= torch==2.13.0
BIN := $(VENV)/bin
STAMP := $(VENV)/.genlab-installed
BENCH_STAMP := $(VENV)/.genlab-bench-installed
DOCS_STAMP := $(VENV)/.genlab-docs-installed

.PHONY: test lint docs demo bench install clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet "$(TORCH)"
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $@

install: $(STAMP)

# The whole suite, then the `numerics` tests again on other CPU kernels (MKL's compatible path and SSE4.2, ATen
# without AVX, oneDNN at SSE4.1): a tolerance tuned to one CPU's rounding then fails on any machine (~10 s more).
test: $(STAMP)
	$(BIN)/python -m pytest -q
	env MKL_ENABLE_INSTRUCTIONS=SSE4_2 MKL_CBWR=COMPATIBLE ATEN_CPU_CAPABILITY=default ONEDNN_MAX_CPU_ISA=SSE41 \
		$(BIN)/python -m pytest -q -m numerics

# ruff, configured in pyproject.toml ([tool.ruff]); zero findings is the bar.
lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks scripts

$(DOCS_STAMP): $(STAMP)
	$(BIN)/python -m pip install --quiet -e ".[dev,docs]"
	touch $@

# The documentation site, into site/ (offline: no fonts or scripts fetched). --strict: a broken link or an
# unresolved reference is an error. NO_MKDOCS_2_WARNING only silences Material's banner about MkDocs 2.
docs: $(DOCS_STAMP)
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict

demo: $(STAMP)
	$(BIN)/genlab demo --out demo

$(BENCH_STAMP): $(STAMP)
	$(BIN)/python -m pip install --quiet -e ".[dev,bench]"
	touch $@

# Speed benchmarks (about 2 hours on a 2-core CPU; results in benchmarks/results/ as JSON + Markdown).
# BENCH_THREADS=1 measures on one core (use it when other jobs share the machine).
BENCH_THREADS ?= 1
BENCH_ENV := OMP_NUM_THREADS=$(BENCH_THREADS)

bench: $(BENCH_STAMP)
	$(BENCH_ENV) $(BIN)/python -m benchmarks.loop_options --models vae --rounds 8 --name loop_options_vae
	$(BENCH_ENV) $(BIN)/python -m benchmarks.loop_options --models dcgan32 --variants "fp32 NCHW" "fp32 channels-last (default)" "compile, channels-last" --steps 4 --rounds 8 --name loop_options_dcgan32
	$(BENCH_ENV) $(BIN)/python -m benchmarks.loop_options --models dcgan32 --variants "fp32 NCHW" "bf16 autocast, channels-last" --steps 1 --rounds 3 --name loop_options_dcgan32_bf16
	$(BENCH_ENV) $(BIN)/python -m benchmarks.step_profile --threads $(BENCH_THREADS)
	$(BENCH_ENV) $(BIN)/python -m benchmarks.vae_throughput
	$(BENCH_ENV) $(BIN)/python -m benchmarks.dcgan_throughput --epochs 3 --train-subset 10240
	$(BENCH_ENV) $(BIN)/python -m benchmarks.dcgan_throughput --image-size 64 --epochs 3 --train-subset 2560 --sample-images 2000 --sample-batch 250
	$(BENCH_ENV) $(BIN)/python -m benchmarks.scaling --threads $(BENCH_THREADS)
	$(BIN)/python -m benchmarks.cpu_processes --threads 2 --rounds 3 --steps 300
	$(BENCH_ENV) $(BIN)/python -m benchmarks.loop_quality --models vae
	$(BENCH_ENV) $(BIN)/python -m benchmarks.loop_quality --models gan --gan-epochs 4 --gan-subset 12800 --name loop_quality_gan

clean:
	rm -rf $(VENV) demo build site src/*.egg-info .pytest_cache
