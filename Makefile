# The two commands a user needs: `make demo` and `make test`. Both install what is missing first.
BUILD  ?= build
PRESET ?= default
JOBS   ?= $(shell nproc)

# Fault injection and fuzzing (docs/RELIABILITY.md): `make test-faults` runs FAULT_RUNS randomized
# runs (FAULT_SEED replays a series); `make fuzz` builds the clang fuzz preset and runs each target
# FUZZ_SECONDS. `make test` runs a short fuzz run of each target too, when clang is installed.
FAULT_RUNS   ?= 50
FAULT_SEED   ?=
FUZZ_BUILD   ?= build-fuzz
FUZZ_SECONDS ?= 300
FUZZ_TARGETS  = codec jobspec probe onnx

.PHONY: all deps build test demo clean test-faults fuzz fuzz-build
all: build

deps:
	./scripts/install-deps

build: deps
	cmake --preset $(PRESET) >/dev/null
	cmake --build $(BUILD) -j$(JOBS)

test: build
	ctest --test-dir $(BUILD) --output-on-failure -j$(JOBS) --timeout 900
	@if command -v clang >/dev/null; then $(MAKE) --no-print-directory fuzz-build && \
	  ctest --test-dir $(FUZZ_BUILD) -L fuzz --output-on-failure --timeout 300; \
	else echo "make test: clang is not installed: the libFuzzer runs are skipped (scripts/install-deps installs it)"; fi

fuzz-build: deps
	cmake --preset fuzz >/dev/null
	cmake --build $(FUZZ_BUILD) -j$(JOBS) --target fuzz_targets

fuzz: fuzz-build
	@for t in $(FUZZ_TARGETS); do \
	  [ -x $(FUZZ_BUILD)/bin/fuzz_$$t ] || { echo "fuzz: no fuzz_$$t in this build, skipped"; continue; }; \
	  ./tests/fuzz/run-fuzz.sh $(FUZZ_BUILD)/bin/fuzz_$$t tests/fuzz/corpus/$$t $(FUZZ_BUILD)/fuzz-work/$$t \
	    $(FUZZ_SECONDS) || exit 1; \
	done

test-faults: build
	RF_BIN=$(CURDIR)/$(BUILD)/bin RF_FIXTURES=$(CURDIR)/tests/fixtures RF_FIXTURE_DIR=$(CURDIR)/$(BUILD)/fixtures \
	  ./tests/faults/run.sh --runs $(FAULT_RUNS) $(if $(FAULT_SEED),--seed $(FAULT_SEED)) \
	  --stats $(BUILD)/faults-stats.txt

demo: build
	./scripts/demo $(BUILD)

clean:
	rm -rf $(BUILD) build-asan build-tsan $(FUZZ_BUILD) demo-output
