/* gen.h — seeded generator of matcher command streams, for tests and benches.
 *
 * Produces an endless, reproducible stream of matcher_cmd from a 64-bit
 * seed (own splitmix64 PRNG, never rand()): accounts of every role mix,
 * deposits and withdrawals (some invalid), bids and offers with every tif
 * and option, invalid fields of every kind, cancels and replaces of live,
 * dead and other accounts' orders, clock advances (small steps, jumps,
 * a few backwards). Catalogs and prices are small on purpose so orders
 * cross often: few price levels, bid windows mostly nested inside live
 * offers' windows, so all-or-none multi-offer fills, partial fills,
 * single-provider and self-trade skips actually happen.
 *
 * The generator aims its commands better when it is shown the events the
 * engine (or the model) emitted: call gen_observe() for every event. It
 * also works blind (guessing ids), just with fewer hits.
 *
 * Depends only on matcher/matcher.h types and libc (no engine function),
 * because every tests/support file is linked into every test program.
 * Threading: one generator per thread. Memory: fixed at gen_create. */
#ifndef GPUX_TESTS_GEN_H
#define GPUX_TESTS_GEN_H

#include <stdint.h>
#include <stdio.h>

#include "matcher/matcher.h"

typedef struct gen gen;

/* splitmix64: advances *state and returns the next value. */
uint64_t gen_splitmix64(uint64_t *state);

/* Fills *cat with 1-3 small markets chosen by seed: lot 8 or 1, tick
 * $0.0001 (100 micros). Does not call the engine's catalog functions. */
void gen_catalog(uint64_t seed, matcher_catalog *cat);

/* Fills *cfg with limits large enough that a test stream never hits them
 * (max_segments included) and fees chosen by seed (maker 0-20 bps, taker
 * 0-50 bps, sometimes maker > taker). */
void gen_config(uint64_t seed, matcher_config *cfg);

/* A generator over cat (copied). Returns NULL when memory cannot be had.
 * Free with gen_destroy. */
gen *gen_create(uint64_t seed, const matcher_catalog *cat);
void gen_destroy(gen *g);

/* Writes the next command into *out (unused fields zero). */
void gen_next(gen *g, matcher_cmd *out);

/* Tells the generator what happened (accounts created, orders accepted and
 * done, clock). Optional; call it for every event, in order. */
void gen_observe(gen *g, const matcher_event *ev);

/* ---- coverage counts ----------------------------------------------------- */

/* Counts of events by type and of rejections by reason, so a test can show
 * (and assert) that its streams exercise what they claim to. */
typedef struct gen_stats {
    uint64_t commands;
    uint64_t events[16];                     /* by matcher_event_type */
    uint64_t rejects[MATCHER_REASON_COUNT];  /* by matcher_reason */
    uint64_t done[8];                        /* by matcher_done_reason */
    uint64_t multi_fill_commands;            /* commands with >= 2 trades */
    uint64_t at_bid_limit;                   /* trades at the bid's own price */
    uint64_t taker_sell;                     /* trades with an offer taker */
    uint64_t cur_trades;                     /* scratch: this command's trades */
} gen_stats;

/* Adds one event. Call gen_stats_command after each command's events. */
void gen_stats_event(gen_stats *s, const matcher_event *ev);
void gen_stats_command(gen_stats *s);

/* Prints the counts as "# " comment lines (TAP-safe). */
void gen_stats_print(FILE *f, const char *title, const gen_stats *s);

/* Short enum name of a reason ("BAD_QTY"), never NULL. */
const char *gen_reason_name(uint16_t reason);

/* One-line description of a command into buf (for failure messages). */
void gen_describe(const matcher_cmd *c, char *buf, size_t len);

#endif
