# Mandate's entry points. `make run` starts Mandate on the quickstart example; `make test` builds and
# runs every test. Builds use CMake presets (CMakePresets.json) with Ninja and ccache:
#   build/release  make build, test, run, bench, tidy      build/asan  make asan      build/fuzz  make fuzz
# Variables: JOBS (parallel jobs, default: all cores), FUZZ_SECONDS (per fuzz target, default 30).

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
JOBS ?= $(shell nproc)
FUZZ_SECONDS ?= 30
RELEASE := build/release
MANDATE := $(RELEASE)/mandate
# C++ sources of the project (not generated or third-party code), for format and tidy.
SOURCES = $(shell find src include tests bench fuzz examples -type f \( -name '*.cc' -o -name '*.h' \) 2>/dev/null)

.DEFAULT_GOAL := build
.PHONY: deps build test run bench bench-compare fuzz asan format format-check tidy clean help

help:
	@echo "make run      build, then start Mandate on examples/quickstart"
	@echo "make test     install deps, build (Release) and run every test with ctest"
	@echo "make build    Release build in $(RELEASE)"
	@echo "make bench    build and run the benchmarks in bench/"
	@echo "make bench-compare  Mandate against Casbin, Cedar, Oso and Cerbos in one run (bench/compare, ~7 min)"
	@echo "make fuzz     clang + libFuzzer + ASan/UBSan build in build/fuzz; each target runs FUZZ_SECONDS=$(FUZZ_SECONDS)"
	@echo "make asan     Debug ASan/UBSan build of the unit tests in build/asan, then run them"
	@echo "make format   clang-format every source file (format-check: only report)"
	@echo "make tidy     clang-tidy over src/ using $(RELEASE)/compile_commands.json"
	@echo "make deps     install the Debian packages (scripts/install-deps)"
	@echo "make clean    remove build/"

deps:
	scripts/install-deps

# Configure a preset's build directory once; afterwards Ninja re-runs CMake by itself when a
# CMakeLists.txt changes or a globbed source file appears.
build/%/build.ninja: | deps
	cmake --preset $*

build: $(RELEASE)/build.ninja
	cmake --build $(RELEASE) -j $(JOBS)

test: build
	ctest --preset release -j $(JOBS)

run: build
	scripts/run-quickstart $(MANDATE)

bench: build
	scripts/run-benchmarks $(RELEASE)

bench-compare: build
	bench/compare $(RELEASE)

fuzz: build/fuzz/build.ninja
	cmake --build --preset fuzz -j $(JOBS)
	scripts/run-fuzzers build/fuzz $(FUZZ_SECONDS)

asan: build/asan/build.ninja
	cmake --build --preset asan -j $(JOBS)
	ctest --preset asan -j $(JOBS)

format:
	clang-format -i $(SOURCES)

format-check:
	clang-format --dry-run --Werror $(SOURCES)

tidy: $(RELEASE)/build.ninja
	run-clang-tidy -p $(RELEASE) -j $(JOBS) -quiet '^$(CURDIR)/src/.*\.cc$$'

clean:
	rm -rf build
