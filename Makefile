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
	$(CARGO) test --release -- --test-threads=1

bench: build
	bash bench/run

fmt:
	$(CARGO) fmt
