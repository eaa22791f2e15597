# The two commands: `make demo` and `make test`. Both set up what is missing first.
SHELL := /bin/bash
export PATH := $(CURDIR)/.venv/bin:$(PATH)
export LIBTORCH_USE_PYTORCH := 1
CARGO ?= cargo
BIN := target/release/patholab

.PHONY: setup build demo test bench fmt

setup:
	@bash scripts/setup

build: setup
	$(CARGO) build --release

demo: build
	$(BIN) run examples/quickstart.rhai

test: build
	bash scripts/make-fixtures
	set -o pipefail; $(CARGO) test --release -- --test-threads=1 2>&1 | tee target/test.log
	@awk '/^test result:/ {p += $$4; f += $$6} END {printf "%d passed, %d failed\n", p, f}' target/test.log

bench: build
	bash bench/run

fmt:
	$(CARGO) fmt
