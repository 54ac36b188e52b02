/* test_matcher_capacity.c — an offer's capacity breakpoints (capacity.c)
 * against an hour-by-hour array, from inside the engine.
 *
 * Why: the tenth session gave cap_take a one-pass path for a window
 * inside one chunk (take_in_chunk) beside the general split, subtract
 * and merge. Both must leave the same canonical list, and the places
 * where they could differ are rare in random command streams: a take
 * that starts at a chunk's first hour, or ends at the next chunk's, and
 * leaves its inside equal to the neighbouring chunk's entry (the list
 * must then fold across the chunk boundary). These tests aim takes at
 * exactly those hours, on an offer with many chunks, and after every
 * take compare each hour and a window minimum with the array and run the
 * engine's own checker (canonical lists, chunk fill, breakpoint count). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdint.h>
#include <string.h>

#include "matcher/engine_internal.h"

#define NOW 500000
#define HOURS 240      /* the offer's window */
#define QTY 100000     /* its GPUs per hour at the start */
#define TAKES 4000

typedef struct rng {
    uint64_t s;
} rng;

static uint32_t rnd(rng *r, uint32_t n)
{
    r->s = r->s * 6364136223846793005ull + 1442695040888963407ull;
    return (uint32_t)(r->s >> 33) % n;
}

static matcher_reason run(matcher_engine *e, matcher_cmd c)
{
    return matcher_apply(e, &c, NULL, NULL);
}

/* One market, one provider (account 1) with one resting offer of QTY
 * GPUs for HOURS hours from NOW + 1; returns its slot. */
static uint32_t engine_with_offer(matcher_engine **out)
{
    matcher_catalog cat = {0};
    assert_int_equal(matcher_catalog_add(&cat, "H100", "us-east", 1, 100), 0);
    matcher_config cfg;
    matcher_config_default(&cfg);
    cfg.max_accounts = 4;
    cfg.max_orders = 16;
    cfg.max_orders_per_market = 16;
    cfg.max_segments = 10000;
    matcher_engine *e = matcher_create(&cat, &cfg);
    assert_non_null(e);
    assert_int_equal(run(e, (matcher_cmd){.type = MATCHER_CMD_ADVANCE_CLOCK, .clock_hour = NOW}), MATCHER_OK);
    assert_int_equal(run(e, (matcher_cmd){.type = MATCHER_CMD_CREATE_ACCOUNT, .roles = MATCHER_ROLE_PROVIDER}),
                     MATCHER_OK);
    uint64_t id = matcher_next_order_id(e);
    assert_int_equal(run(e, (matcher_cmd){.type = MATCHER_CMD_NEW_ORDER, .account = 1, .side = MATCHER_SELL,
                                          .tif = MATCHER_GTC, .price_micros = 2000000, .qty = QTY,
                                          .start_hour = NOW + 1, .end_hour = NOW + 1 + HOURS}),
                     MATCHER_OK);
    uint32_t s = slotmap_find(&e->idmap, id);
    assert_int_not_equal(s, NIL);
    *out = e;
    return s;
}

/* The first hours of the offer's chunks after its first: where a take's
 * window may meet a chunk boundary. Returns how many. */
static uint32_t chunk_starts(const matcher_engine *e, const order *o, int32_t *starts, uint32_t max)
{
    uint32_t n = 0;
    for (uint32_t c = e->chunks[o->cap_head].next; c != NIL && n < max; c = e->chunks[c].next)
        starts[n++] = bp_start(o, e->chunks[c].bp[0]);
    return n;
}

static int32_t model_min(const int32_t *model, int32_t from, int32_t to)
{
    int32_t m = INT32_MAX;
    for (int32_t h = from; h < to; h++)
        m = model[h] < m ? model[h] : m;
    return m;
}

/* The offer's capacity equals the model at every hour, a random window's
 * minimum agrees, and the engine's checker is content. */
static void assert_matches(const matcher_engine *e, const order *o, const int32_t *model, rng *r)
{
    for (int32_t h = 0; h < HOURS; h++)
        assert_int_equal(cap_at(e, o, NOW + 1 + h), model[h]);
    int32_t from = (int32_t)rnd(r, HOURS), to = from + 1 + (int32_t)rnd(r, (uint32_t)(HOURS - from));
    assert_int_equal(cap_min(e, o, NOW + 1 + from, NOW + 1 + to), model_min(model, from, to));
    char err[256];
    if (matcher_check(e, err, sizeof err) != 0)
        fail_msg("checker: %s", err);
}

/* A window for the next take, as offsets into the offer: often starting
 * at one of the n chunk first hours in starts or ending at one (see the
 * file comment), else anywhere; 1..24 hours like most bids. */
static void pick_window(const int32_t *starts, uint32_t n, rng *r, int32_t *from, int32_t *to)
{
    uint32_t how = rnd(r, 3);
    int32_t len = 1 + (int32_t)rnd(r, 24);
    if (how == 0 && n > 0) {
        *from = starts[rnd(r, n)] - (NOW + 1);
        *to = *from + len;
    } else if (how == 1 && n > 0) {
        *to = starts[rnd(r, n)] - (NOW + 1);
        *from = *to - len;
    } else {
        *from = (int32_t)rnd(r, HOURS);
        *to = *from + len;
    }
    *from = *from < 0 ? 0 : *from;
    *to = *to > HOURS ? HOURS : *to;
    if (*to <= *from)
        *to = *from + 1;
}

/* The qty to take from [from, to) (min > 0 left there): often the one
 * that makes the inside equal to the hour just before or just after the
 * window, so the list must fold there; else a small random qty. */
static int32_t pick_qty(const int32_t *model, rng *r, int32_t from, int32_t to, int32_t min)
{
    uint32_t how = rnd(r, 3);
    int32_t q = 0;
    if (how == 0 && from > 0)
        q = model[from] - model[from - 1];
    else if (how == 1 && to < HOURS)
        q = model[to - 1] - model[to];
    if (q <= 0 || q > min)
        q = 1 + (int32_t)rnd(r, (uint32_t)(min < 50 ? min : 50));
    return q;
}

/* Random takes, many aimed at chunk boundaries, each checked against the
 * model; the offer ends up with many chunks, so both of cap_take's paths
 * and every fold across a boundary are exercised. */
static void test_takes_match_hourly_model(void **state)
{
    (void)state;
    matcher_engine *e;
    uint32_t s = engine_with_offer(&e);
    order *o = &e->orders[s];
    int32_t model[HOURS];
    for (int32_t h = 0; h < HOURS; h++)
        model[h] = QTY;
    rng r = {.s = 7};
    uint32_t most_chunks = 0, at_boundary = 0;
    for (int t = 0; t < TAKES; t++) {
        int32_t starts[HOURS], from, to;
        uint32_t n = chunk_starts(e, o, starts, HOURS);
        pick_window(starts, n, &r, &from, &to);
        int32_t min = model_min(model, from, to);
        if (min == 0)
            continue;
        int32_t q = pick_qty(model, &r, from, to, min);
        for (uint32_t k = 0; k < n; k++)
            at_boundary += starts[k] == NOW + 1 + from || starts[k] == NOW + 1 + to;
        most_chunks = n + 1 > most_chunks ? n + 1 : most_chunks;
        cap_take(e, o, NOW + 1 + from, NOW + 1 + to, q, true);
        for (int32_t h = from; h < to; h++)
            model[h] -= q;
        assert_matches(e, o, model, &r);
    }
    /* the test did what it is for: an offer of many chunks, many takes at
     * their edges */
    assert_true(most_chunks >= 8);
    assert_true(at_boundary >= 500);
    matcher_destroy(e);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_takes_match_hourly_model),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
