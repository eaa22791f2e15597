# The two commands: `make demo` and `make test`. Both set up what is missing first.
SHELL := /bin/bash
export PATH := $(CURDIR)/.venv/bin:$(PATH)
export LIBTORCH_USE_PYTORCH := 1
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

test: build
	mkdir -p $(TARGET)
	@# The test binaries compile while the fixtures are generated (each waits on the other's
	@# single-threaded stretches); either failing fails the target, with its log shown.
	@$(CARGO) test --release --no-run >$(TARGET)/test-build.log 2>&1 & build=$$!; \
	trap 'kill $$build 2>/dev/null' INT TERM; \
	bash scripts/make-fixtures; fixtures=$$?; \
	wait $$build || { cat $(TARGET)/test-build.log; exit 1; }; \
	exit $$fixtures
	set -o pipefail; $(CARGO) test --release -- --test-threads=1 2>&1 | tee $(TARGET)/test.log
	@awk '/^test result:/ {p += $$4; f += $$6} END {printf "%d passed, %d failed\n", p, f}' $(TARGET)/test.log

bench: build
	bash bench/run

# The script reference, generated from the declarations (a test checks the committed file).
docs: build
	mkdir -p docs
	$(BIN) docs > docs/reference.md

fmt:
	$(CARGO) fmt
