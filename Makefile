# The two commands: `make demo` and `make test`. Both set up what is missing first.
SHELL := /bin/bash
export PATH := $(CURDIR)/.venv/bin:$(PATH)
export LIBTORCH_USE_PYTORCH := 1
# CI builds once from clean: incremental compilation only adds its bookkeeping there.
ifdef CI
export CARGO_INCREMENTAL := 0
endif
CARGO ?= cargo
# Cargo's output folder: ./target unless CARGO_TARGET_DIR puts it elsewhere (as CI may).
TARGET := $(or $(CARGO_TARGET_DIR),target)
export PATHOLAB_BIN := $(TARGET)/release/patholab
BIN := $(PATHOLAB_BIN)

.PHONY: setup build demo test bench fmt docs

setup:
	@bash scripts/setup

build: setup
	$(CARGO) build --release

demo: build
	$(BIN) run examples/quickstart.rhai

# The test runner's profile (.config/nextest.toml): `ci` under CI (a JUnit report as well).
NEXTEST_PROFILE ?= $(if $(CI),ci,default)

test: setup
	mkdir -p $(TARGET)
	@# The fixtures (Python references) are generated while cargo builds the binary and the test
	@# binaries (each fills the other's single-threaded stretches); either failing fails the target.
	@# The fixtures run in their own process group, so Ctrl-C stops all of it (Python included).
	@set -m; bash scripts/make-fixtures >$(TARGET)/fixtures.log 2>&1 & fixtures=$$!; set +m; \
	trap 'kill -TERM -- -$$fixtures 2>/dev/null; exit 130' INT TERM; \
	$(CARGO) nextest run --workspace --release --no-run; built=$$?; \
	wait $$fixtures || { cat $(TARGET)/fixtures.log; echo "make-fixtures failed" >&2; exit 1; }; \
	exit $$built
	@# Every test in its own process, two at a time (.config/nextest.toml). Two libtorch processes
	@# on two cores: OpenMP threads that spin at their barriers take the cores from each other
	@# (features + nets_parity side by side: 93 s, one after the other: 34 s); sleeping threads do
	@# not (25 s). This applies to the tests (and the patholab processes they start) only.
	OMP_WAIT_POLICY=PASSIVE $(CARGO) nextest run --workspace --release --profile $(NEXTEST_PROFILE)

bench: build
	bash bench/run

# The script reference, generated from the declarations (a test checks the committed file).
docs: build
	mkdir -p docs
	$(BIN) docs > docs/reference.md

fmt:
	$(CARGO) fmt
