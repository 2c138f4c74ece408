# The two commands a user needs: `make demo` and `make test`. Both install what is missing first.
BUILD  ?= build
PRESET ?= default
JOBS   ?= $(shell nproc)

.PHONY: all deps build test demo clean
all: build

deps:
	./scripts/install-deps

build: deps
	cmake --preset $(PRESET) >/dev/null
	cmake --build $(BUILD) -j$(JOBS)

test: build
	ctest --test-dir $(BUILD) --output-on-failure -j$(JOBS) --timeout 900

demo: build
	./scripts/demo $(BUILD)

clean:
	rm -rf $(BUILD) build-asan build-tsan demo-output
