# The interface to mproc's build. `make demo` and `make test` work on a fresh
# Debian machine: they install what is missing, build, and run.
#
#   make deps    install the Debian packages that are missing (a no-op otherwise)
#   make build   configure and build into build/
#   make test    deps, build, then every test through CTest
#   make demo    deps, build, then the tour of examples/
#   make bench   benchmarks: mproc against CPython and the raw system calls
#                (FILTER=word runs only rows whose operation contains word)
#   make asan    the whole test suite under AddressSanitizer + UBSan, in build-asan/
#   make fuzz    the libFuzzer targets (codec, connection framing), FUZZ_SECONDS (60) each, in build-fuzz/
#   make clean

BUILD_DIR    ?= build
ASAN_DIR     ?= build-asan
FUZZ_DIR     ?= build-fuzz
JOBS         ?= $(shell nproc)
FUZZ_SECONDS ?= 60
FILTER       ?=

PACKAGES      := cmake ninja-build g++ make python3 libgtest-dev libgmock-dev libbenchmark-dev
FUZZ_PACKAGES := clang libclang-rt-14-dev
SUDO          := $(shell [ "$$(id -u)" -eq 0 ] || echo sudo)

CMAKE_FLAGS := -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
               -DMPROC_BUILD_TESTS=ON -DMPROC_BUILD_EXAMPLES=ON -DMPROC_BUILD_BENCH=ON

.PHONY: deps deps-fuzz build test demo bench asan fuzz clean

define install_missing
	@missing=$$(for p in $(1); do \
	  dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q '^install ok installed$$' || echo $$p; \
	done); \
	if [ -n "$$missing" ]; then \
	  echo "Installing missing packages:" $$missing; \
	  $(SUDO) apt-get update && \
	  $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $$missing; \
	fi
endef

deps:
	$(call install_missing,$(PACKAGES))

deps-fuzz: deps
	$(call install_missing,$(FUZZ_PACKAGES))

build: deps
	cmake -S . -B $(BUILD_DIR) $(CMAKE_FLAGS)
	cmake --build $(BUILD_DIR) -j $(JOBS)

test: build
	ctest --test-dir $(BUILD_DIR) --output-on-failure -j $(JOBS)

demo: build
	examples/tour.sh $(BUILD_DIR)

bench: build
	python3 bench/report.py --build $(BUILD_DIR) --filter "$(FILTER)"

asan: deps
	cmake -S . -B $(ASAN_DIR) -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DMPROC_SANITIZE=ON \
	  -DMPROC_BUILD_TESTS=ON -DMPROC_BUILD_EXAMPLES=ON -DMPROC_BUILD_BENCH=OFF
	cmake --build $(ASAN_DIR) -j $(JOBS)
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	  ctest --test-dir $(ASAN_DIR) --output-on-failure -j $(JOBS)

fuzz: deps-fuzz
	cmake -S . -B $(FUZZ_DIR) -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_COMPILER=clang++ \
	  -DMPROC_BUILD_FUZZERS=ON -DMPROC_BUILD_TESTS=OFF -DMPROC_BUILD_EXAMPLES=OFF -DMPROC_BUILD_BENCH=OFF
	cmake --build $(FUZZ_DIR) -j $(JOBS)
	rm -rf $(FUZZ_DIR)/corpus $(FUZZ_DIR)/connection-corpus
	mkdir -p $(FUZZ_DIR)/corpus $(FUZZ_DIR)/connection-corpus $(FUZZ_DIR)/findings
	$(FUZZ_DIR)/fuzz/codec_fuzz_corpus $(FUZZ_DIR)/corpus $(FUZZ_DIR)/connection-corpus
	$(FUZZ_DIR)/fuzz/codec_fuzzer -max_total_time=$(FUZZ_SECONDS) -timeout=10 -rss_limit_mb=2048 \
	  -artifact_prefix=$(FUZZ_DIR)/findings/codec- -print_final_stats=1 $(FUZZ_DIR)/corpus
	$(FUZZ_DIR)/fuzz/connection_fuzzer -max_total_time=$(FUZZ_SECONDS) -max_len=70000 -timeout=10 -rss_limit_mb=2048 \
	  -artifact_prefix=$(FUZZ_DIR)/findings/connection- -print_final_stats=1 $(FUZZ_DIR)/connection-corpus

clean:
	rm -rf $(BUILD_DIR) $(ASAN_DIR) $(FUZZ_DIR)
