# dlock: the two commands of the README, and a few more.
#   make demo   install what is missing, build, show `dlock run` taking turns
#   make test   install what is missing, build, run every test (plain and
#               under AddressSanitizer + UBSan), fuzz each target briefly
BUILD      ?= build
ASAN_BUILD ?= build-asan
FUZZ_BUILD ?= build-fuzz
JOBS       ?= 2
FUZZ_SECONDS ?= 5
PREFIX     ?= /usr/local
CTEST_FLAGS ?= --output-on-failure --timeout 300

.PHONY: all deps build demo test test-plain test-asan fuzz-smoke fuzz install bench soak memcheck clean

all: build

deps:
	@sh scripts/install-deps.sh

build: deps
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_INSTALL_PREFIX=$(PREFIX) >/dev/null
	cmake --build $(BUILD) -j$(JOBS)

demo: build
	sh scripts/demo.sh $(BUILD)

test: build
	@sh scripts/test.sh $(BUILD) $(ASAN_BUILD) $(FUZZ_BUILD) $(JOBS) $(FUZZ_SECONDS)

test-plain:
	cd $(BUILD) && ctest -j$(JOBS) $(CTEST_FLAGS) -LE soak

test-asan: deps
	cmake -S . -B $(ASAN_BUILD) -DCMAKE_BUILD_TYPE=Debug -DDLOCK_SANITIZE=ON -DDLOCK_BENCH=OFF >/dev/null
	cmake --build $(ASAN_BUILD) -j$(JOBS)
	cd $(ASAN_BUILD) && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:detect_stack_use_after_return=1 \
	  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	  ctest -j$(JOBS) $(CTEST_FLAGS) -LE "soak|nosan"

fuzz-smoke: deps
	@if command -v clang >/dev/null 2>&1; then \
	  CC=clang cmake -S . -B $(FUZZ_BUILD) -DDLOCK_FUZZ=ON -DDLOCK_TESTS=OFF -DDLOCK_BENCH=OFF >/dev/null && \
	  cmake --build $(FUZZ_BUILD) -j$(JOBS) && \
	  sh fuzz/run.sh $(FUZZ_BUILD) $(FUZZ_SECONDS); \
	else echo "clang not found: fuzz targets skipped"; fi

fuzz: deps
	CC=clang cmake -S . -B $(FUZZ_BUILD) -DDLOCK_FUZZ=ON -DDLOCK_TESTS=OFF -DDLOCK_BENCH=OFF >/dev/null
	cmake --build $(FUZZ_BUILD) -j$(JOBS)
	sh fuzz/run.sh $(FUZZ_BUILD) $${FUZZ_SECONDS:-600}

install: build
	cmake --install $(BUILD)

bench: build
	@echo "see docs/BENCHMARKS.md for the commands; e.g. $(BUILD)/bench/dlock-bench --help"

memcheck: build
	@command -v valgrind >/dev/null || apt-get install -y -qq valgrind
	sh scripts/memcheck.sh $(BUILD)

soak: build
	cd $(BUILD) && ctest $(CTEST_FLAGS) -L soak

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) $(FUZZ_BUILD)
