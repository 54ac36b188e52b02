/* refmodel.h — the reference model of the matching engine, for tests.
 *
 * A second, independent implementation of ../shared/spec/market.md and
 * docs/market-rules.md with the same shape as matcher.h: commands in,
 * matcher_event's out, in exactly the order market-rules.md fixes. It is
 * written to be obviously correct, not fast: plain arrays of orders, one
 * capacity counter per hour of every offer, priority found by sorting on
 * every use, holds recomputed from the formula every time they are read.
 * test_matcher_diff runs it next to the engine and compares every event
 * and the whole state after every command. docs/testing.md lists the
 * readings of the rules this model makes where the rules are silent.
 *
 * Depends only on matcher/matcher.h (types and constants, no engine
 * function) and libc, because every tests/support file is linked into
 * every test program.
 *
 * Threading: a model is single-threaded, like the engine.
 * Memory: grows with the book (realloc); allocation failure aborts (test
 * code: there is nothing sensible to do). Free with refmodel_destroy.
 * Limits: honours max_accounts, max_orders, max_orders_per_market and
 * MATCHER_MAX_FILLS_PER_COMMAND; it cannot know the engine's capacity
 * segment use, so max_segments is ignored (configure enough of them). */
#ifndef GPUX_TESTS_REFMODEL_H
#define GPUX_TESTS_REFMODEL_H

#include <stdint.h>

#include "matcher/matcher.h"

typedef struct refmodel refmodel;

/* Creates a model with the fee account (id 0, roles 0) and the clock at
 * hour 0. Copies cat and cfg. Returns NULL when a fee is out of range. */
refmodel *refmodel_create(const matcher_catalog *cat,
                          const matcher_config *cfg);
void refmodel_destroy(refmodel *m);

/* Applies one command, emitting its events through emit (may be NULL).
 * Same contract as matcher_apply. */
matcher_reason refmodel_apply(refmodel *m, const matcher_cmd *cmd,
                              matcher_emit_fn emit, void *ctx);

/* ---- queries (read-only) ---------------------------------------------- */

int64_t refmodel_clock_hour(const refmodel *m);
uint32_t refmodel_account_count(const refmodel *m);
/* Resting orders, all markets. */
uint32_t refmodel_order_count(const refmodel *m);
uint64_t refmodel_next_order_id(const refmodel *m);
uint64_t refmodel_next_trade_id(const refmodel *m);
void refmodel_totals(const refmodel *m, int64_t *deposited_micros,
                     int64_t *withdrawn_micros);

/* 0 and *out filled (held and open_orders recomputed), or -1 when the
 * account does not exist. */
int refmodel_account_get(const refmodel *m, uint32_t account,
                         matcher_account_view *out);

/* The index-th resting order in order id order (0 <= index <
 * refmodel_order_count). Returns 0, or -1 when index is out of range.
 * out->priority is the model's own stamp: compare order, not value. */
int refmodel_order_at(const refmodel *m, uint32_t index,
                      matcher_order_view *out);

/* 0 and *out filled, or -1 when the order is not resting. */
int refmodel_order_get(const refmodel *m, uint64_t order_id,
                       matcher_order_view *out);

/* Remaining capacity of a resting offer in one hour: 0 outside its
 * window, for a passed hour, or when order_id is not a resting offer. */
int32_t refmodel_offer_capacity(const refmodel *m, uint64_t order_id,
                                int64_t hour);

/* Writes the ids of one market side's resting orders in matching priority
 * order (best first) into ids (at most max) and returns how many there
 * are in total (may exceed max). */
uint32_t refmodel_book(const refmodel *m, uint32_t market, uint8_t side,
                       uint64_t *ids, uint32_t max);

#endif
