# dlock: the two commands of the README, and a few more.
#   make demo   install what is missing, build the tool, show `dlock run`
#               taking turns (quietly: the build log is shown only on failure)
#   make test   install what is missing (test packages too), build, run every
#               test (plain and under AddressSanitizer + UBSan), fuzz briefly
#   make install [PREFIX=/opt/dlock]   build deps only; runs ldconfig for a
#               system prefix
BUILD      ?= build
ASAN_BUILD ?= build-asan
FUZZ_BUILD ?= build-fuzz
JOBS       ?= 2
FUZZ_SECONDS ?= 5
PREFIX     ?= /usr/local
CTEST_FLAGS ?= --output-on-failure --timeout 300

.PHONY: all deps deps-demo deps-test build demo test test-plain test-asan fuzz-smoke fuzz install bench soak memcheck clean

all: build

deps:
	@sh scripts/install-deps.sh build

deps-demo:
	@sh scripts/install-deps.sh demo

deps-test:
	@sh scripts/install-deps.sh test

build: deps
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_INSTALL_PREFIX=$(PREFIX) >/dev/null
	cmake --build $(BUILD) -j$(JOBS)

# Only the tool, and only its log on failure: the demo fits one screen.
demo: deps-demo
	@mkdir -p $(BUILD) && cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_INSTALL_PREFIX=$(PREFIX) >$(BUILD)/demo-build.log 2>&1 && \
	  cmake --build $(BUILD) --target dlock_cli -j$(JOBS) >>$(BUILD)/demo-build.log 2>&1 || \
	  { tail -30 $(BUILD)/demo-build.log; echo "make demo: build failed (log: $(BUILD)/demo-build.log)"; exit 1; }
	@sh scripts/demo.sh $(BUILD)

test: deps-test build
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

# ldconfig: a new library in a system directory (/usr/local/lib) is found
# only after the loader's cache is rebuilt.
install: build
	cmake --install $(BUILD)
	@case "$(PREFIX)" in /usr|/usr/local) [ "$$(id -u)" = 0 ] && command -v ldconfig >/dev/null && ldconfig || true;; esac

bench: build
	@echo "see docs/BENCHMARKS.md for the commands; e.g. $(BUILD)/bench/dlock-bench --help"

memcheck: build
	@command -v valgrind >/dev/null || apt-get install -y -qq valgrind
	sh scripts/memcheck.sh $(BUILD)

soak: build
	cd $(BUILD) && ctest $(CTEST_FLAGS) -L soak

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) $(FUZZ_BUILD)
