# gpux — one non-recursive Makefile.
#
# Conventions (add a file, not a rule):
#   MOD/*.c              library objects of module MOD (matcher ledger gateway sim)
#   MOD/main_*.c         a binary: matcher/main_matcher.c -> bin/gpux-matcher,
#                        sim/main_gpux.c -> bin/gpux
#   tests/test_*.c       one test program each (cmocka, TAP output)
#   tests/test_*.sh      one shell test each (TAP output)
#   tests/support/*.c    helpers linked into every test program
#   bench/bench_*.c      one benchmark program each (bench/run.sh runs them)
#   tests/fuzz_*.c       libFuzzer targets (clang), `make fuzz`
#
# Link sets keep modules apart: a binary, test or bench named after module M
# (M/main_*.c, tests/test_M_*.c, bench/bench_M_*.c) links libgpux_M and
# libgpux_matcher only (the engine and the wire format every module shares);
# anything else links all modules.
#
# Two flavours share the sources: build/rel (-O2) and build/san (ASan+UBSan).
# `make test` builds both and runs the suite under each.

MODULES   := matcher ledger gateway sim
CC        ?= cc
CLANG     ?= clang
WARN      := -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wno-missing-field-initializers
BASEFLAGS := -std=gnu11 -g $(WARN) -Iinclude -I. -MMD -MP -fno-strict-aliasing
EXTLIBS   := -lnng -levent -levent_openssl -lssl -lcrypto -ljansson -lpq -lpthread -lm
TESTLIBS  := -lcmocka

CFLAGS_rel := -O2
CFLAGS_san := -O1 -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=undefined
LDFLAGS_rel :=
LDFLAGS_san := -fsanitize=address,undefined

lib_srcs  = $(filter-out $(1)/main_%.c,$(wildcard $(1)/*.c))
MAIN_SRCS := $(foreach m,$(MODULES),$(wildcard $(m)/main_*.c))
TEST_SRCS := $(wildcard tests/test_*.c)
SUPPORT_SRCS := $(wildcard tests/support/*.c)
BENCH_SRCS := $(wildcard bench/bench_*.c)
FUZZ_SRCS := $(wildcard tests/fuzz_*.c)

# binary name for a main file: main_matcher.c -> gpux-matcher, main_gpux.c -> gpux
binname = $(if $(filter gpux,$(patsubst main_%,%,$(basename $(notdir $(1))))),gpux,gpux-$(patsubst main_%,%,$(basename $(notdir $(1)))))

.PHONY: all deps test bench fuzz demo clean rel san
.DEFAULT_GOAL := all

DEPS_STAMP := build/.deps-ok
$(DEPS_STAMP): scripts/deps.sh
	@sh scripts/deps.sh
	@mkdir -p build && touch $@
deps: $(DEPS_STAMP)

# ---- per-flavour rules ------------------------------------------------------
define FLAVOUR
B_$(1) := build/$(1)
LIBS_$(1) := $$(foreach m,$(MODULES),$$(if $$(call lib_srcs,$$(m)),$$(B_$(1))/lib/libgpux_$$(m).a))

$$(B_$(1))/obj/%.o: %.c $(DEPS_STAMP)
	@mkdir -p $$(dir $$@)
	$$(CC) $$(BASEFLAGS) $$(CFLAGS_$(1)) -c $$< -o $$@

$$(foreach m,$(MODULES),$$(eval $$(B_$(1))/lib/libgpux_$$(m).a: $$(patsubst %.c,$$(B_$(1))/obj/%.o,$$(call lib_srcs,$$(m)))))
$$(B_$(1))/lib/%.a:
	@mkdir -p $$(dir $$@)
	@rm -f $$@
	ar rcs $$@ $$^

SUPPORT_OBJS_$(1) := $$(patsubst %.c,$$(B_$(1))/obj/%.o,$(SUPPORT_SRCS))
# libs for a program whose module is $$(2): its own + matcher, or all
libs_for_$(1) = $$(if $$(filter $(MODULES),$$(1)),$$(sort $$(B_$(1))/lib/libgpux_$$(1).a $$(B_$(1))/lib/libgpux_matcher.a),$$(LIBS_$(1)))
LINKPROG_$(1) = $$(CC) $$(LDFLAGS_$(1)) -o $$@ $$(filter %.o,$$^) -Wl,--start-group $$(filter %.a,$$^) -Wl,--end-group $(EXTLIBS)

BINS_$(1) := $$(foreach s,$(MAIN_SRCS),$$(B_$(1))/bin/$$(call binname,$$(s)))
$$(foreach s,$(MAIN_SRCS),$$(eval $$(B_$(1))/bin/$$(call binname,$$(s)): $$(B_$(1))/obj/$$(s:.c=.o) $$(call libs_for_$(1),$$(firstword $$(subst /, ,$$(s))))))
$$(B_$(1))/bin/%:
	@mkdir -p $$(dir $$@)
	$$(LINKPROG_$(1))

TESTS_$(1) := $$(patsubst tests/%.c,$$(B_$(1))/tests/%,$(TEST_SRCS))
$$(foreach s,$(TEST_SRCS),$$(eval $$(B_$(1))/tests/$$(basename $$(notdir $$(s))): $$(B_$(1))/obj/$$(s:.c=.o) $$(SUPPORT_OBJS_$(1)) $$(call libs_for_$(1),$$(word 2,$$(subst _, ,$$(basename $$(notdir $$(s))))))))
$$(B_$(1))/tests/%:
	@mkdir -p $$(dir $$@)
	$$(LINKPROG_$(1)) $(TESTLIBS)

BENCHES_$(1) := $$(patsubst bench/%.c,$$(B_$(1))/bench/%,$(BENCH_SRCS))
$$(foreach s,$(BENCH_SRCS),$$(eval $$(B_$(1))/bench/$$(basename $$(notdir $$(s))): $$(B_$(1))/obj/$$(s:.c=.o) $$(SUPPORT_OBJS_$(1)) $$(call libs_for_$(1),$$(word 2,$$(subst _, ,$$(basename $$(notdir $$(s))))))))
$$(B_$(1))/bench/%:
	@mkdir -p $$(dir $$@)
	$$(LINKPROG_$(1))

$(1): $$(BINS_$(1)) $$(TESTS_$(1)) $$(BENCHES_$(1))
endef

$(eval $(call FLAVOUR,rel))
$(eval $(call FLAVOUR,san))

# bin/ holds the release binaries under their public names.
PUBLIC_BINS := $(foreach s,$(MAIN_SRCS),bin/$(call binname,$(s)))
bin/%: build/rel/bin/%
	@mkdir -p bin
	cp $< $@

all: $(DEPS_STAMP) $(PUBLIC_BINS) $(BINS_rel)

test: $(DEPS_STAMP) all rel san
	@sh tests/run.sh

bench: $(DEPS_STAMP) all $(BENCHES_rel)
	@sh bench/run.sh $(BENCH)

# ---- fuzzing (clang libFuzzer) ------------------------------------------------
FUZZ_BINS := $(patsubst tests/%.c,build/fuzz/%,$(FUZZ_SRCS))
FUZZ_LIBSRCS := $(foreach m,matcher,$(call lib_srcs,$(m)))
build/fuzz/%: tests/%.c $(FUZZ_LIBSRCS) $(DEPS_STAMP)
	@mkdir -p $(dir $@)
	$(CLANG) -std=gnu11 -g -O1 $(WARN) -Iinclude -I. -fsanitize=fuzzer,address,undefined -o $@ $< $(FUZZ_LIBSRCS) $(EXTLIBS)
fuzz-build: $(FUZZ_BINS)
fuzz: $(FUZZ_BINS)
	@for f in $(FUZZ_BINS); do echo "fuzz $$f (FUZZ_SECONDS=$${FUZZ_SECONDS:-300})"; \
	  mkdir -p build/fuzz/corpus/$$(basename $$f); \
	  $$f -max_total_time=$${FUZZ_SECONDS:-300} build/fuzz/corpus/$$(basename $$f) || exit 1; done

demo: $(DEPS_STAMP) all
	@sh scripts/demo.sh

clean:
	rm -rf build bin

-include $(shell find build -name '*.d' 2>/dev/null)
