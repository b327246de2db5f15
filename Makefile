# evr: one non-recursive Makefile.
#
#   make                      build/evr and every test binary
#   make test                 run every test (unit, then command-line)
#   make demo                 the main job: a local cluster, Eve vs
#                             agree-execute under TPC-W (build/demo.json)
#   make bench                run the benchmarks (figures in build/bench/)
#   make test SAN=address,undefined   (or SAN=thread): sanitizer builds,
#                             kept apart in build/san-<name>/
#
# Dependencies come from Debian through pkg-config; scripts/deps.sh installs
# them when run as root and otherwise prints the apt-get line to run.

.DEFAULT_GOAL := all
comma := ,
SAN ?=
ifeq ($(SAN),)
  O := build
  OPT := -O2
else
  O := build/san-$(subst $(comma),-,$(SAN))
  OPT := -O1 -fsanitize=$(SAN) -fno-omit-frame-pointer -fno-sanitize-recover=all
endif

CC ?= cc
# -ffp-contract=off: a fused multiply-add rounds once where a * b + c rounds
# twice, so contraction would make floating-point results (cart totals, say)
# depend on the compiler and the CPU (docs/DETERMINISM.md).
CFLAGS := -std=c11 -ffp-contract=off -D_GNU_SOURCE -DSQLITE_ENABLE_PREUPDATE_HOOK -g $(OPT) -Wall -Wextra -Werror -Wshadow \
          -Wstrict-prototypes -Wmissing-prototypes -Wno-unused-parameter \
          -pthread -I. -MMD -MP
LDFLAGS := -pthread $(if $(SAN),-fsanitize=$(SAN))

ifeq ($(filter clean,$(MAKECMDGOALS)),)
include $(O)/config.mk
endif

$(O)/config.mk: scripts/deps.sh
	@mkdir -p $(@D)
	@scripts/deps.sh > $@.tmp && mv $@.tmp $@

MODULES := common cow_state mixer executor verifier replication workloads \
           workloads/kv \
           workloads/tpcw client server
LIB_SRCS := $(foreach m,$(MODULES),$(wildcard $(m)/*.c))
LIB_OBJS := $(LIB_SRCS:%.c=$(O)/obj/%.o)
CLI_OBJS := $(patsubst %.c,$(O)/obj/%.o,$(wildcard cli/*.c))
HELPER_OBJS := $(patsubst %.c,$(O)/obj/%.o,$(wildcard tests/unit/helpers/*.c))
TEST_BINS := $(patsubst tests/unit/%.c,$(O)/tests/%,\
               $(wildcard tests/unit/test_*.c))
SIM_OBJS := $(patsubst %.c,$(O)/obj/%.o,$(wildcard tests/sim/*.c))
NET_TOOLS := $(patsubst tests/net/%.c,$(O)/tests/evr-%,$(wildcard tests/net/*.c))
SEEDS ?= 100
SEED_START ?= 1

.PHONY: all test bench sim demo clean
.SECONDARY:
all: $(O)/evr $(O)/evr-sim $(TEST_BINS) $(NET_TOOLS)

$(O)/obj/%.o: %.c | $(O)/config.mk
	@mkdir -p $(@D)
	@echo "  CC $<"
	@$(CC) $(CFLAGS) $(DEPS_CFLAGS) -c $< -o $@

$(O)/libevr.a: $(LIB_OBJS)
	@rm -f $@
	@echo "  AR $@"
	@ar rcs $@ $^

$(O)/evr: $(CLI_OBJS) $(O)/libevr.a
	@echo "  LD $@"
	@$(CC) $(LDFLAGS) -o $@ $^ $(DEPS_LIBS) -lm

$(O)/tests/test_%: $(O)/obj/tests/unit/test_%.o $(HELPER_OBJS) $(O)/libevr.a
	@mkdir -p $(@D)
	@echo "  LD $@"
	@$(CC) $(LDFLAGS) -o $@ $^ $(DEPS_LIBS) $(CMOCKA_LIBS) -lm

# Network test tools (tests/net/NAME.c -> build/tests/evr-NAME).
$(O)/tests/evr-%: $(O)/obj/tests/net/%.o $(O)/libevr.a
	@mkdir -p $(@D)
	@echo "  LD $@"
	@$(CC) $(LDFLAGS) -o $@ $^ $(DEPS_LIBS) -lm

$(O)/evr-sim: $(SIM_OBJS) $(O)/libevr.a
	@echo "  LD $@"
	@$(CC) $(LDFLAGS) -o $@ $^ $(DEPS_LIBS) -lm

# make sim SEEDS=N SEED_START=S: seeds S..S+N-1; SEED=S replays one.
sim: $(O)/evr-sim
	@$(O)/evr-sim --seeds $(SEEDS) --start $(SEED_START)

test: all
	@scripts/run-tests.sh $(O)

bench: $(O)/evr
	@scripts/bench.sh $(O)

# The main job: a local 3-replica cluster per mode under TPC-W browsing
# (1,000 items, 10 EBs' customers, no think time), Eve vs agree-execute.
DEMO_SECONDS ?= 20
demo: $(O)/evr
	@$(O)/evr cluster --replicas 3 --app tpcw --items 1000 --ebs 10 \
	    --mix browsing --think 0 --modes eve,agree-execute --threads 2 \
	    --clients 32 --duration $(DEMO_SECONDS) --json $(O)/demo.json

clean:
	rm -rf build

-include $(shell find $(O)/obj -name '*.d' 2>/dev/null)
