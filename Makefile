# Herald's entry points. `make demo` and `make test` are the whole quick start on Debian 12.

BUILD        ?= build
SANITIZE_BUILD ?= build-sanitize
JOBS         ?= $(shell nproc)
WERROR       ?= ON
CMAKE        ?= cmake
GENERATOR    := -G Ninja

# Debug information is line tables only (-g1): backtraces, perf and sanitizer reports still name
# file and line, and Asio- and gRPC-heavy files compile about a third faster than with full -g.
# For a debugger session with locals, configure a Debug build.
CONFIGURE_FLAGS := $(GENERATOR) -DCMAKE_BUILD_TYPE=RelWithDebInfo \
                   "-DCMAKE_CXX_FLAGS_RELWITHDEBINFO=-O2 -g1 -DNDEBUG" -DHERALD_WERROR=$(WERROR)
# -Og keeps the sanitizers' run time near -O1's at well under half of -O1's compile time with
# UBSan's checks in.
SANITIZE_FLAGS  := $(GENERATOR) -DCMAKE_BUILD_TYPE=Debug "-DCMAKE_CXX_FLAGS_DEBUG=-Og -g1" \
                   -DHERALD_WERROR=$(WERROR) -DHERALD_SANITIZE=address,undefined \
                   -DHERALD_BUILD_BENCH=OFF -DHERALD_BUILD_E2E=OFF

SOURCES = $(shell git ls-files '*.cc' '*.h' '*.proto')

.PHONY: all deps build test test-unit test-integration test-e2e test-chaos test-sanitize demo \
        format lint bench clean

all: build

deps:
	@tools/install-deps

build: deps
	@$(CMAKE) -S . -B $(BUILD) $(CONFIGURE_FLAGS) >/dev/null
	@$(CMAKE) --build $(BUILD) -j $(JOBS)

## Every test: unit, integration (real redis-server) and end to end (the herald binary).
test: build
	ctest --test-dir $(BUILD) --output-on-failure -j $(JOBS)

test-unit test-integration test-e2e test-chaos: build
	ctest --test-dir $(BUILD) --output-on-failure -j $(JOBS) -L $(subst test-,,$@)

## Unit and integration tests built with AddressSanitizer and UndefinedBehaviorSanitizer.
test-sanitize: deps
	@$(CMAKE) -S . -B $(SANITIZE_BUILD) $(SANITIZE_FLAGS) >/dev/null
	@$(CMAKE) --build $(SANITIZE_BUILD) -j $(JOBS)
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
	  ctest --test-dir $(SANITIZE_BUILD) --output-on-failure -j $(JOBS) -L 'unit|integration'

## Starts Redis and Herald locally and shows them working; see tools/demo.
demo: build
	@tools/demo $(BUILD)

## Benchmarks; results are recorded in docs/benchmarks.md.
bench: build
	@tools/install-deps --bench
	@tools/bench/run $(BUILD)

format:
	@clang-format -i $(SOURCES)

# An empty list (git could not list the files) would check standard input and pass.
lint:
	@test -n "$(firstword $(SOURCES))" || { echo "lint: git listed no sources" >&2; exit 1; }
	@clang-format --dry-run --Werror $(SOURCES)

clean:
	rm -rf $(BUILD) $(SANITIZE_BUILD)
