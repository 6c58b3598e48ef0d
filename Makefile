# torii — build, run, test, benchmark.  `make help` lists the targets.

SHELL := /bin/bash
CC ?= cc
BUILD := build

# Debian packages the build and the tests need; installed when missing.
DEPS := gcc make pkg-config libev-dev libhttp-parser-dev libyaml-dev libssl-dev \
        libluajit2-5.1-dev luajit2 lua-cjson lua-busted lua-socket lua-check \
        clang libclang-rt-14-dev clang-format libpcre2-dev liburing-dev
BENCH_DEPS := nginx haproxy wrk libnginx-mod-http-lua

CPPFLAGS := -Icore -I/usr/include/luajit-2.1 -D_GNU_SOURCE -MMD -MP
CFLAGS_BASE := -std=c11 -Wall -Wextra -Werror
RELEASE_CFLAGS := $(CFLAGS_BASE) -O2 -g
ASAN_CFLAGS := $(CFLAGS_BASE) -O1 -g -fno-omit-frame-pointer \
               -fsanitize=address,undefined -fno-sanitize-recover=undefined
LDLIBS := -lev -lhttp_parser -lyaml -lpcre2-8 -lluajit-5.1 -luring -lm

SRC := $(shell find core -name '*.c' | sort)
LIB_SRC := $(filter-out core/main.c,$(SRC))
REL_OBJ := $(SRC:%.c=$(BUILD)/release/%.o)
ASAN_OBJ := $(SRC:%.c=$(BUILD)/asan/%.o)
ASAN_LIB_OBJ := $(LIB_SRC:%.c=$(BUILD)/asan/%.o)
UNIT_SRC := $(wildcard t/unit/test_*.c)
UNIT_BIN := $(UNIT_SRC:t/unit/%.c=$(BUILD)/unit/%)
FUZZ_SRC := $(wildcard t/fuzz/fuzz_*.c)
FUZZ_BIN := $(FUZZ_SRC:t/fuzz/%.c=$(BUILD)/fuzz/%)

.PHONY: all deps bench-deps build asan run test unit fuzz fuzz-smoke spec inprocess lint format bench docs clean help

all: build

help:
	@echo "make run        install missing packages, build, start the demo (torii on :8080, echo upstream on :9080)"
	@echo "make test       install missing packages, build, run every test (unit, fuzz smoke, lint, specs)"
	@echo "make build      build build/torii, build/mock-upstream and build/mock-dns"
	@echo "make asan       build the ASan/UBSan binary the tests use (build/asan/torii)"
	@echo "make unit       C unit tests only"
	@echo "make spec       busted specs only (SPEC=t/integration/foo_spec.lua for one file)"
	@echo "make inprocess  plugins' in-process specs through build/asan/torii test (SPEC=plugins/spec/x_spec.lua)"
	@echo "make fuzz       build the fuzz targets (clang, libFuzzer)"
	@echo "make fuzz-smoke run each fuzz target briefly"
	@echo "make lint       clang-format check and luacheck"
	@echo "make format     reformat the C sources"
	@echo "make bench      benchmarks against nginx and HAProxy (installs them if missing)"
	@echo "make docs       a reference page per plugin, from its schema, in build/docs/plugins"
	@echo "make clean      remove build/"

# Install what is missing, only that (Debian 12).
define install_missing
	@missing=""; for p in $(1); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'ok installed' || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  sudo=""; [ "$$(id -u)" = 0 ] || sudo="sudo"; \
	  $$sudo apt-get install -y -q $$missing >/dev/null 2>&1 || \
	  { $$sudo apt-get update -q >/dev/null && $$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -q $$missing; }; \
	fi
endef

deps:
	$(call install_missing,$(DEPS))

bench-deps:
	$(call install_missing,$(BENCH_DEPS))

build: $(BUILD)/torii $(BUILD)/mock-upstream $(BUILD)/mock-dns $(BUILD)/short-send.so

asan: $(BUILD)/asan/torii

$(BUILD)/torii: $(REL_OBJ)
	@echo "LD $@"
	@$(CC) $(RELEASE_CFLAGS) -rdynamic -o $@ $^ $(LDLIBS)

$(BUILD)/asan/torii: $(ASAN_OBJ)
	@echo "LD $@"
	@$(CC) $(ASAN_CFLAGS) -rdynamic -o $@ $^ $(LDLIBS)

$(BUILD)/release/%.o: %.c
	@mkdir -p $(dir $@)
	@echo "CC $<"
	@$(CC) $(CPPFLAGS) $(RELEASE_CFLAGS) -c $< -o $@

$(BUILD)/asan/%.o: %.c
	@mkdir -p $(dir $@)
	@echo "CC (asan) $<"
	@$(CC) $(CPPFLAGS) $(ASAN_CFLAGS) -c $< -o $@

$(BUILD)/mock-upstream: t/support/mock_upstream.c
	@mkdir -p $(BUILD)
	$(CC) -std=c11 -D_GNU_SOURCE -O2 -g -Wall -Wextra -Werror $< -lev -lhttp_parser -o $@

$(BUILD)/mock-dns: t/support/mock_dns.c
	@mkdir -p $(BUILD)
	$(CC) -std=c11 -D_GNU_SOURCE -O2 -g -Wall -Wextra -Werror $< -lev -o $@

# Preloaded by specs to cut torii's sends short (see the file's comment).
$(BUILD)/short-send.so: t/support/short_send.c
	@mkdir -p $(BUILD)
	$(CC) -std=c11 -O2 -g -Wall -Wextra -Werror -shared -fPIC $< -ldl -o $@

# C unit tests run against the sanitizer build of the core.
$(BUILD)/unit/%: t/unit/%.c t/unit/unit.h $(ASAN_LIB_OBJ)
	@mkdir -p $(dir $@)
	@echo "LD $@"
	@$(CC) $(CPPFLAGS) -It $(ASAN_CFLAGS) -o $@ $< $(ASAN_LIB_OBJ) $(LDLIBS)

unit: deps $(UNIT_BIN)
	@bash t/run-unit.sh $(UNIT_BIN)

# Fuzz targets: libFuzzer with ASan/UBSan, built with clang.
# Each target links the whole core but main.c, plus extra sources listed
# as prerequisites below (the router's brute-force reference).
FUZZ_CORE := $(LIB_SRC)
$(BUILD)/fuzz/%: t/fuzz/%.c $(FUZZ_CORE) $(wildcard core/*/*.h)
	@mkdir -p $(dir $@)
	@echo "FUZZ $@"
	@clang -std=c11 -D_GNU_SOURCE -Icore -I/usr/include/luajit-2.1 -It -g -O1 -fsanitize=fuzzer,address,undefined \
	  -fno-sanitize-recover=undefined -o $@ $(filter %.c,$^) $(LDLIBS)
$(BUILD)/fuzz/fuzz_router: t/support/router_ref.c t/support/router_ref.h

# Router benchmark: release objects, the reference matcher as the linear scan.
$(BUILD)/bench/router_bench: bench/router_bench.c t/support/router_ref.c t/support/router_ref.h \
                             $(filter-out $(BUILD)/release/core/main.o,$(REL_OBJ))
	@mkdir -p $(dir $@)
	@echo "LD $@"
	@$(CC) $(CPPFLAGS) -It $(RELEASE_CFLAGS) -o $@ $(filter %.c %.o,$^) $(LDLIBS)

# Balancer benchmark: release objects.
$(BUILD)/bench/balance_bench: bench/balance_bench.c $(filter-out $(BUILD)/release/core/main.o,$(REL_OBJ))
	@mkdir -p $(dir $@)
	@echo "LD $@"
	@$(CC) $(CPPFLAGS) $(RELEASE_CFLAGS) -o $@ $(filter %.c %.o,$^) $(LDLIBS)

fuzz: deps $(FUZZ_BIN)

fuzz-smoke: fuzz
	@bash t/run-fuzz.sh $(FUZZ_BIN)

lint: deps
	@bash t/run-lint.sh

format:
	clang-format -i $$(find core t/unit t/fuzz t/support bench -name '*.[ch]')

spec: deps build asan
	@bash t/run-specs.sh $(SPEC)

inprocess: deps build asan
	@bash t/run-inprocess.sh $(SPEC)

test: deps build asan $(UNIT_BIN) $(FUZZ_BIN)
	@bash t/run-all.sh

run: deps build
	@bash t/support/demo.sh

docs: deps
	@luajit t/support/plugin_docs.lua plugins $(BUILD)/docs/plugins

bench: deps build bench-deps $(BUILD)/bench/router_bench $(BUILD)/bench/balance_bench
	@$(BUILD)/bench/router_bench
	@$(BUILD)/bench/balance_bench
	@bash bench/run.sh
	@bash bench/plugins.sh
	@bash bench/reload.sh

clean:
	rm -rf $(BUILD)

-include $(REL_OBJ:.o=.d) $(ASAN_OBJ:.o=.d)
