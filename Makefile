# Thin wrapper over CMake: `make run` and `make test` work on a fresh Debian 12 machine.
BUILD      ?= build
ASAN_BUILD ?= build-asan
DEB_BUILD  ?= build-deb
FUZZ_BUILD ?= build-fuzz
FUZZ_SECONDS ?= 60
FUZZ_ARGS  ?=
JOBS       ?= $(shell nproc)
SUDO       := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
PROVE_ARGS ?=

.PHONY: all deps build run test test-asan unit clean format deb fuzz fuzz-run

all: build

# Install the Debian packages listed in debian-packages.txt that are not installed yet.
deps:
	@missing=$$(grep -v '^\s*\(#\|$$\)' debian-packages.txt | while read -r p; do \
		dpkg-query -W -f='$${Status}' "$$p" 2>/dev/null | grep -q 'ok installed' || echo "$$p"; done); \
	if [ -n "$$missing" ]; then \
		echo "installing:" $$missing; \
		$(SUDO) apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends $$missing; \
	fi

$(BUILD)/Makefile: CMakeLists.txt
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo

build: deps $(BUILD)/Makefile
	cmake --build $(BUILD) -j $(JOBS)

run: build
	@bin=$(BUILD) ./scripts/run-sample

test: build
	CONFLUX_BUILD=$(BUILD) prove $(PROVE_ARGS) -r t/

$(ASAN_BUILD)/Makefile: CMakeLists.txt
	CC=clang cmake -S . -B $(ASAN_BUILD) -DCMAKE_BUILD_TYPE=Debug -DCONFLUX_SANITIZE=ON

test-asan: deps $(ASAN_BUILD)/Makefile
	cmake --build $(ASAN_BUILD) -j $(JOBS)
	CONFLUX_BUILD=$(ASAN_BUILD) CONFLUX_SANITIZED=1 \
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:halt_on_error=1:suppressions=$(CURDIR)/t/asan.supp \
	UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	prove $(PROVE_ARGS) -r t/

# The Debian package: installs under /usr, the config in /etc/conflux (a conffile), the unit in
# /usr/lib/systemd/system. Written to $(DEB_BUILD)/conflux_VERSION_ARCH.deb.
deb: deps
	cmake -S . -B $(DEB_BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_INSTALL_PREFIX=/usr
	cmake --build $(DEB_BUILD) -j $(JOBS)
	cd $(DEB_BUILD) && cpack -G DEB
	dpkg-deb -I $(DEB_BUILD)/conflux_*.deb
	dpkg-deb -c $(DEB_BUILD)/conflux_*.deb

# libFuzzer binaries of t/fuzz/fuzz_*.c (clang, ASan + UBSan) in $(FUZZ_BUILD)/t/fuzz/.
$(FUZZ_BUILD)/Makefile: CMakeLists.txt
	CC=clang cmake -S . -B $(FUZZ_BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCONFLUX_FUZZ=ON

fuzz: deps $(FUZZ_BUILD)/Makefile
	cmake --build $(FUZZ_BUILD) -j $(JOBS) --target fuzzers

# Runs each fuzzer in turn for FUZZ_SECONDS, one process each, from $(FUZZ_BUILD) (where libFuzzer writes its
# fuzz-0.log). New inputs go to $(FUZZ_BUILD)/corpus/NAME (the committed seeds in t/fuzz/corpus/NAME are read, never
# written), crashes to $(FUZZ_BUILD)/artifacts/. Stops at the first fuzzer that finds something. FUZZ_ARGS adds
# libFuzzer flags, e.g. FUZZ_ARGS=-runs=1000000.
fuzz-run: fuzz
	@set -e; cd $(FUZZ_BUILD); for bin in t/fuzz/fuzz_*; do \
		name=$$(basename $$bin); \
		mkdir -p corpus/$$name artifacts; \
		dict=; [ -f $(CURDIR)/t/fuzz/$$name.dict ] && dict=-dict=$(CURDIR)/t/fuzz/$$name.dict; \
		echo "== $$name: $(FUZZ_SECONDS)s"; \
		./$$bin -max_total_time=$(FUZZ_SECONDS) -jobs=1 -workers=1 -print_final_stats=1 $$dict \
			-artifact_prefix=artifacts/$$name- $(FUZZ_ARGS) corpus/$$name $(CURDIR)/t/fuzz/corpus/$$name; \
	done

format:
	clang-format -i $$(git ls-files '*.c' '*.h')

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) $(DEB_BUILD) $(FUZZ_BUILD)
