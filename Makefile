# evbus: a thin wrapper over CMake. Users need two targets:
#
#   make run    install what is missing, build, run the bus (evbus run)
#   make test   install what is missing, build, run every test (plain
#               and sanitizer builds), then the format and include checks
#
# Developers: deps, build, format, lint, fuzz, bench, clean. Every target
# is idempotent; a second `make test` only rebuilds what changed.
# EVB_SKIP_DEPS=1 skips the package check (see scripts/install-deps.sh).

SHELL       := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := build
# One step at a time: the builds parallelise inside CMake, and `make test`
# must run its plain and sanitizer stages in order. No "Entering
# directory" noise from the make that CMake runs.
.NOTPARALLEL:
MAKEFLAGS += --no-print-directory

JOBS      ?= $(shell nproc 2>/dev/null || echo 2)
BUILD     := build
ASAN      := build-asan
FUZZ      := build-fuzz
FUZZ_SECS ?= 60
SANITIZE  := address,undefined

CTEST := ctest --output-on-failure --no-tests=error -j2

# configure(dir, cmake args): configure dir unless it already is. A
# configured tree re-runs CMake by itself when a CMakeLists.txt changes.
define configure
	if [ ! -f $(1)/CMakeCache.txt ] || \
	    { [ ! -f $(1)/Makefile ] && [ ! -f $(1)/build.ninja ]; }; then \
		cmake -S . -B $(1) -DCMAKE_BUILD_TYPE=RelWithDebInfo $(2); \
	fi
endef

.PHONY: deps build test test-plain test-asan run format format-check \
	check-includes lint fuzz bench clean

deps:
	@scripts/install-deps.sh

build: deps
	@$(call configure,$(BUILD),)
	cmake --build $(BUILD) -j$(JOBS)

test: test-plain test-asan
	@scripts/format-check.sh
	@scripts/check-includes.sh

test-plain: build
	$(CTEST) --test-dir $(BUILD)

# The sanitizer build. The multiplier is read when CMake configures (it
# scales every ctest TIMEOUT) and by the tests at run time, so it is
# exported to every step.
test-asan: export ASAN_OPTIONS := detect_leaks=1
test-asan: export UBSAN_OPTIONS := print_stacktrace=1:halt_on_error=1
test-asan: export EVB_TEST_TIMEOUT_MULTIPLIER := 3
test-asan: deps
	@$(call configure,$(ASAN),-DEVB_SANITIZE=$(SANITIZE) -DEVB_BENCH=OFF)
	cmake --build $(ASAN) -j$(JOBS)
	$(CTEST) --test-dir $(ASAN)

# The bus in the foreground: broker and collector in one process, the
# log in ./evbus-data unless RUN_ARGS says otherwise (e.g.
# RUN_ARGS="--data /some/dir"). Ctrl-C stops it cleanly.
run: build
	./$(BUILD)/cli/evbus run $(RUN_ARGS)

format: deps
	scripts/format-check.sh --fix

format-check: deps
	scripts/format-check.sh

check-includes:
	scripts/check-includes.sh

# cppcheck and clang-tidy read the compile commands of the plain build,
# so they see the same defines and include paths as the compiler.
# clang-tidy checks what .clang-tidy names: braces on every conditional;
# -w mutes clang's own compiler warnings, which gcc (the compiler of
# record, -Werror) already judges.
lint: build
	cppcheck --project=$(BUILD)/compile_commands.json --error-exitcode=1 \
		--enable=warning,performance,portability --inline-suppr \
		--suppress=missingIncludeSystem -i $(BUILD) -q \
		--library=scripts/cppcheck-criterion.cfg \
		--suppressions-list=scripts/cppcheck-suppressions.txt
	run-clang-tidy -p $(BUILD) -quiet -j$(JOBS) -extra-arg=-w 2>&1 | \
		{ grep -v '^clang-tidy\|warnings\? generated' || true; }

# Each fuzz/fuzz_<name>.c is one target, fuzz_<name>. Only those targets
# are built: the rest of the tree is not meant to link with the fuzzing
# instrumentation. Each runs FUZZ_SECS seconds. It reads the committed
# seeds in fuzz/corpus/<target>/ and writes what it finds to a scratch
# corpus in $(FUZZ)/corpus/, so the committed seeds change only by hand.
# Crashes land in fuzz/artifacts/.
FUZZ_TARGETS := $(basename $(notdir $(wildcard fuzz/fuzz_*.c)))

fuzz: export CC := clang
fuzz: deps
	@$(call configure,$(FUZZ),-DEVB_FUZZ=ON -DEVB_TESTS=OFF -DEVB_BENCH=OFF)
	cmake --build $(FUZZ) -j$(JOBS) --target $(FUZZ_TARGETS)
	@mkdir -p fuzz/artifacts
	@found=0; \
	for bin in $(FUZZ)/fuzz/fuzz_*; do \
		[ -f "$$bin" ] && [ -x "$$bin" ] || continue; \
		found=1; name=$$(basename "$$bin"); \
		mkdir -p fuzz/corpus/$$name $(FUZZ)/corpus/$$name; \
		echo "== $$name: $(FUZZ_SECS) s"; \
		"$$bin" -max_total_time=$(FUZZ_SECS) -print_final_stats=1 \
			-artifact_prefix=fuzz/artifacts/$$name- \
			$(FUZZ)/corpus/$$name fuzz/corpus/$$name; \
	done; \
	if [ $$found = 0 ]; then echo "fuzz: no fuzz_* binary in $(FUZZ)/fuzz/" >&2; exit 1; fi

# Each bench/<path>_bench runs with its defaults and prints one line:
# name n secs rate p50_us p99_us (record results in docs/benchmarks.md).
bench: build
	@found=0; \
	for bin in $(BUILD)/bench/*_bench; do \
		[ -f "$$bin" ] && [ -x "$$bin" ] || continue; \
		found=1; "$$bin"; \
	done; \
	if [ $$found = 0 ]; then echo "bench: no *_bench binary in $(BUILD)/bench/" >&2; exit 1; fi

clean:
	rm -rf $(BUILD) $(ASAN) $(FUZZ)
