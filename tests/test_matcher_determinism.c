/* test_matcher_determinism.c — same commands, same events, same state.
 *
 * Why: the matcher service recovers by loading a snapshot and replaying
 * its journal, and a standby must agree with the primary byte for byte.
 * That only works if the engine is a pure function of its commands and
 * if a snapshot captures everything. This test checks: a stream run twice
 * gives identical events and state hashes; a run split at random points
 * (matcher_save -> matcher_load into a fresh engine -> continue) gives the
 * events and hash of the unsplit run; truncated or corrupted snapshots
 * and snapshots that do not fit the limits are refused without a crash;
 * and the state hash does change when the state does. Streams come from
 * tests/support/gen.c. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "matcher/matcher.h"
#include "tests/support/gen.h"

#define DET_MAX_EVENTS (MATCHER_MAX_FILLS_PER_COMMAND * 8 + 64)

static bool is_san(void)
{
    const char *f = getenv("GPUX_FLAVOUR");
    return f && strcmp(f, "san") == 0;
}

/* Every event of a run, in order, with the index of its command. */
typedef struct ev_rec {
    matcher_event *ev;
    uint32_t *cmd_index;
    uint32_t n;
    uint32_t cap;
    uint32_t cur; /* index of the command being applied */
} ev_rec;

static void rec_init(ev_rec *r, uint32_t cap)
{
    r->ev = malloc(cap * sizeof *r->ev);
    r->cmd_index = malloc(cap * sizeof *r->cmd_index);
    r->n = 0;
    r->cap = cap;
    r->cur = 0;
    assert_true(r->ev && r->cmd_index);
}

static void rec_free(ev_rec *r)
{
    free(r->ev);
    free(r->cmd_index);
}

static void rec_event(void *ctx, const matcher_event *ev)
{
    ev_rec *r = ctx;
    if (r->n == r->cap) {
        r->cap *= 2;
        r->ev = realloc(r->ev, r->cap * sizeof *r->ev);
        r->cmd_index = realloc(r->cmd_index, r->cap * sizeof *r->cmd_index);
        assert_true(r->ev && r->cmd_index);
    }
    r->ev[r->n] = *ev;
    r->cmd_index[r->n] = r->cur;
    r->n++;
}

/* A recorded stream: the commands the generator made while watching an
 * engine, so that every replay sees exactly the same commands. */
typedef struct stream {
    matcher_catalog cat;
    matcher_config cfg;
    matcher_cmd *cmds;
    uint32_t n;
} stream;

static void stream_make(stream *s, uint64_t seed, uint32_t n, const matcher_config *cfg)
{
    gen_catalog(seed, &s->cat);
    if (cfg)
        s->cfg = *cfg;
    else
        gen_config(seed, &s->cfg);
    s->cmds = malloc(n * sizeof *s->cmds);
    s->n = n;
    assert_non_null(s->cmds);
    matcher_engine *e = matcher_create(&s->cat, &s->cfg);
    gen *g = gen_create(seed, &s->cat);
    assert_true(e && g);
    ev_rec rec;
    rec_init(&rec, 1024);
    for (uint32_t i = 0; i < n; i++) {
        gen_next(g, &s->cmds[i]);
        rec.n = 0;
        matcher_apply(e, &s->cmds[i], rec_event, &rec);
        for (uint32_t k = 0; k < rec.n; k++)
            gen_observe(g, &rec.ev[k]);
    }
    rec_free(&rec);
    gen_destroy(g);
    matcher_destroy(e);
}

/* Applies cmds[from, to) to e, recording events. */
static void run_range(matcher_engine *e, const stream *s, uint32_t from, uint32_t to, ev_rec *rec)
{
    for (uint32_t i = from; i < to; i++) {
        rec->cur = i;
        matcher_apply(e, &s->cmds[i], rec_event, rec);
    }
}

/* Compares two recordings event by event (events are zeroed before they
 * are filled, so memcmp is exact). Prints the first difference. */
static void assert_same_events(const ev_rec *a, const ev_rec *b, uint64_t seed)
{
    uint32_t n = a->n < b->n ? a->n : b->n;
    for (uint32_t i = 0; i < n; i++) {
        if (a->cmd_index[i] == b->cmd_index[i] &&
            memcmp(&a->ev[i], &b->ev[i], sizeof a->ev[i]) == 0)
            continue;
        fprintf(stderr, "# seed %" PRIu64 ": event %u differs (command #%u, type %u vs #%u, type %u)\n",
                seed, i, a->cmd_index[i], a->ev[i].type, b->cmd_index[i], b->ev[i].type);
        fail();
    }
    if (a->n != b->n)
        fprintf(stderr, "# seed %" PRIu64 ": %u events vs %u\n", seed, a->n, b->n);
    assert_int_equal(a->n, b->n);
}

/* ---- tests ------------------------------------------------------------------ */

/* The generator itself is a function of its seed (and of what it is
 * shown): the same seed gives the same commands, another seed others. */
static void test_generator_seeded(void **state)
{
    (void)state;
    matcher_catalog cat;
    gen_catalog(7, &cat);
    gen *a = gen_create(7, &cat), *b = gen_create(7, &cat), *c = gen_create(8, &cat);
    assert_true(a && b && c);
    uint32_t differ = 0;
    for (uint32_t i = 0; i < 5000; i++) {
        matcher_cmd x, y, z;
        gen_next(a, &x);
        gen_next(b, &y);
        gen_next(c, &z);
        assert_memory_equal(&x, &y, sizeof x);
        differ += memcmp(&x, &z, sizeof x) != 0;
    }
    assert_true(differ > 4000);
    gen_destroy(a);
    gen_destroy(b);
    gen_destroy(c);
}

/* A hint for matcher_prefetch that may lie: a copy of the coming
 * commands, some of them scrambled (any type, market, side, order id,
 * price), so the hints name orders, levels and markets that do not
 * exist or are about to change. */
static uint32_t make_hints(const stream *s, uint32_t next, uint64_t *rng, matcher_cmd *out)
{
    uint32_t want = (uint32_t)(gen_splitmix64(rng) % (MATCHER_PREFETCH_AHEAD + 3));
    uint32_t n = 0;
    for (; n < want && next + n < s->n; n++) {
        out[n] = s->cmds[next + n];
        if (gen_splitmix64(rng) % 3 != 0)
            continue;
        uint64_t r = gen_splitmix64(rng);
        out[n].type = (uint8_t)r;
        out[n].side = (uint8_t)(r >> 8);
        out[n].market = (uint32_t)(r >> 16) % (s->cat.n_markets + 3);
        out[n].account = (uint32_t)gen_splitmix64(rng);
        out[n].order_id = gen_splitmix64(rng) % 4 == 0 ? gen_splitmix64(rng) : out[n].order_id + 1;
        out[n].price_micros = (int64_t)gen_splitmix64(rng);
    }
    return n;
}

/* Runs seed's stream of n commands through two engines in lockstep (so
 * a difference is caught at its command) and asserts the same state hash
 * after every command and the same events. with_hints: the second engine
 * gets matcher_prefetch before every command, with hints that may lie. */
static void run_lockstep(uint64_t seed, uint32_t n, bool with_hints)
{
    uint64_t rng = seed;
    stream s;
    stream_make(&s, seed, n, NULL);
    ev_rec a, b;
    rec_init(&a, 4096);
    rec_init(&b, 4096);
    matcher_engine *e1 = matcher_create(&s.cat, &s.cfg);
    matcher_engine *e2 = matcher_create(&s.cat, &s.cfg);
    assert_true(e1 && e2);
    assert_int_equal(matcher_state_hash(e1), matcher_state_hash(e2));
    if (with_hints)
        matcher_prefetch(e2, NULL, 0);
    matcher_cmd hints[MATCHER_PREFETCH_AHEAD + 2];
    for (uint32_t i = 0; i < n; i++) {
        run_range(e1, &s, i, i + 1, &a);
        if (with_hints)
            matcher_prefetch(e2, hints, make_hints(&s, i + 1, &rng, hints));
        run_range(e2, &s, i, i + 1, &b);
        if (matcher_state_hash(e1) != matcher_state_hash(e2)) {
            fprintf(stderr, "# seed %" PRIu64 ": hashes differ after command #%u\n", seed, i);
            fail();
        }
    }
    assert_same_events(&a, &b, seed);
    assert_true(a.n > n); /* the stream did something */
    matcher_destroy(e1);
    matcher_destroy(e2);
    rec_free(&a);
    rec_free(&b);
    free(s.cmds);
}

static void test_same_stream_twice(void **state)
{
    (void)state;
    uint32_t seeds = is_san() ? 2 : 6, n = is_san() ? 3000 : 10000;
    for (uint32_t k = 0; k < seeds; k++)
        run_lockstep(0xde7e0000ULL + k, n, false);
}

/* matcher_prefetch is a hint: with it before every command, even hints
 * that lie, every event and every state hash are those of the run without
 * it (and, under the san flavour, it reads nothing outside the tables). */
static void test_prefetch_changes_nothing(void **state)
{
    (void)state;
    uint32_t seeds = is_san() ? 2 : 4, n = is_san() ? 3000 : 10000;
    for (uint32_t k = 0; k < seeds; k++)
        run_lockstep(0x9f00000ULL + k, n, true);
}

/* Saves e and loads it into a fresh engine; the old one is destroyed. */
static matcher_engine *save_and_reload(matcher_engine *e, const stream *s)
{
    uint8_t *buf = NULL;
    size_t len = 0;
    char err[256] = "";
    uint64_t before = matcher_state_hash(e);
    assert_int_equal(matcher_save(e, &buf, &len), 0);
    assert_true(buf != NULL && len > 0);
    matcher_engine *f = matcher_load(&s->cat, &s->cfg, buf, len, err, sizeof err);
    if (!f)
        fprintf(stderr, "# matcher_load refused its own snapshot: %s\n", err);
    assert_non_null(f);
    assert_int_equal(matcher_state_hash(f), before);
    assert_int_equal(matcher_clock_hour(f), matcher_clock_hour(e));
    assert_int_equal(matcher_order_count(f), matcher_order_count(e));
    assert_int_equal(matcher_account_count(f), matcher_account_count(e));
    assert_int_equal(matcher_next_order_id(f), matcher_next_order_id(e));
    assert_int_equal(matcher_next_trade_id(f), matcher_next_trade_id(e));
    free(buf);
    matcher_destroy(e);
    return f;
}

static void test_snapshot_split(void **state)
{
    (void)state;
    uint32_t seeds = is_san() ? 3 : 10, n = is_san() ? 3000 : 10000;
    for (uint32_t k = 0; k < seeds; k++) {
        uint64_t seed = 0x5a7e0000ULL + k;
        stream s;
        stream_make(&s, seed, n, NULL);
        ev_rec whole, split;
        rec_init(&whole, 4096);
        rec_init(&split, 4096);
        matcher_engine *e = matcher_create(&s.cat, &s.cfg);
        assert_non_null(e);
        run_range(e, &s, 0, n, &whole);
        uint64_t want = matcher_state_hash(e);
        matcher_destroy(e);

        /* the same stream cut at 1-8 random points, reloading each time */
        uint64_t rng = seed;
        uint32_t cuts = 1 + (uint32_t)(gen_splitmix64(&rng) % 8), at = 0;
        e = matcher_create(&s.cat, &s.cfg);
        assert_non_null(e);
        for (uint32_t c = 0; c < cuts; c++) {
            uint32_t next = at + (uint32_t)(gen_splitmix64(&rng) % (n - at));
            run_range(e, &s, at, next, &split);
            e = save_and_reload(e, &s);
            at = next;
        }
        run_range(e, &s, at, n, &split);
        assert_same_events(&whole, &split, seed);
        assert_int_equal(matcher_state_hash(e), want);
        matcher_destroy(e);
        rec_free(&whole);
        rec_free(&split);
        free(s.cmds);
    }
}

/* A snapshot of a busy book, with a small config. */
static void busy_snapshot(stream *s, uint8_t **buf, size_t *len, uint32_t *orders)
{
    matcher_config cfg;
    gen_config(0xb05ULL, &cfg);
    /* small tables: every matcher_load below allocates them afresh */
    cfg.max_accounts = 256;
    cfg.max_orders = 512;
    cfg.max_orders_per_market = 512;
    cfg.max_segments = 65536;
    stream_make(s, 0xb05ULL, 5000, &cfg);
    matcher_engine *e = matcher_create(&s->cat, &s->cfg);
    assert_non_null(e);
    ev_rec rec;
    rec_init(&rec, 4096);
    /* stop at the first point past command 1000 where the book is busy */
    uint32_t i = 0;
    for (; i < s->n; i++) {
        run_range(e, s, i, i + 1, &rec);
        if (i >= 1000 && matcher_order_count(e) >= 20)
            break;
    }
    rec_free(&rec);
    *orders = matcher_order_count(e);
    assert_true(*orders >= 20);
    assert_int_equal(matcher_save(e, buf, len), 0);
    matcher_destroy(e);
}

static void test_snapshot_truncated(void **state)
{
    (void)state;
    stream s;
    uint8_t *buf;
    size_t len;
    uint32_t orders;
    busy_snapshot(&s, &buf, &len, &orders);
    char err[256];
    size_t step = is_san() ? 1 + len / 400 : 1 + len / 4000;
    uint32_t tried = 0;
    for (size_t cut = 0; cut < len; cut += step) {
        /* a copy of exactly cut bytes, so ASan sees any read past it */
        uint8_t *part = malloc(cut ? cut : 1);
        assert_non_null(part);
        memcpy(part, buf, cut);
        err[0] = 0;
        matcher_engine *e = matcher_load(&s.cat, &s.cfg, part, cut, err, sizeof err);
        if (e)
            fprintf(stderr, "# a snapshot cut to %zu of %zu bytes was accepted\n", cut, len);
        assert_null(e);
        assert_true(err[0] != 0); /* it says why */
        free(part);
        tried++;
    }
    printf("# %u truncations of a %zu-byte snapshot (%u orders) refused\n", tried, len, orders);
    free(buf);
    free(s.cmds);
}

static void test_snapshot_corrupted(void **state)
{
    (void)state;
    stream s;
    uint8_t *buf;
    size_t len;
    uint32_t orders;
    busy_snapshot(&s, &buf, &len, &orders);
    char err[256];
    uint64_t rng = 0xc0ffeeULL;
    uint32_t flips = is_san() ? 200 : 2000, refused = 0;
    for (uint32_t i = 0; i < flips; i++) {
        size_t pos = (size_t)(gen_splitmix64(&rng) % len);
        uint8_t bit = (uint8_t)(1u << (gen_splitmix64(&rng) % 8));
        buf[pos] ^= bit;
        matcher_engine *e = matcher_load(&s.cat, &s.cfg, buf, len, err, sizeof err);
        buf[pos] ^= bit;
        if (e) {
            fprintf(stderr, "# flipping bit 0x%02x of byte %zu of %zu was accepted\n", bit, pos, len);
            matcher_destroy(e);
            continue;
        }
        refused++;
    }
    printf("# %u of %u single-bit corruptions refused\n", refused, flips);
    assert_int_equal(refused, flips);
    /* the intact buffer still loads */
    matcher_engine *e = matcher_load(&s.cat, &s.cfg, buf, len, err, sizeof err);
    assert_non_null(e);
    matcher_destroy(e);
    free(buf);
    free(s.cmds);
}

static void test_snapshot_limits(void **state)
{
    (void)state;
    stream s;
    uint8_t *buf;
    size_t len;
    uint32_t orders;
    busy_snapshot(&s, &buf, &len, &orders);
    char err[256] = "";
    matcher_config small = s.cfg;
    small.max_orders = orders - 1;
    matcher_engine *e = matcher_load(&s.cat, &small, buf, len, err, sizeof err);
    assert_null(e);
    assert_true(err[0] != 0);
    small = s.cfg;
    small.max_accounts = 2;
    e = matcher_load(&s.cat, &small, buf, len, err, sizeof err);
    assert_null(e);
    free(buf);
    free(s.cmds);
}

static void apply_ok(matcher_engine *e, const matcher_cmd *c)
{
    assert_int_equal(matcher_apply(e, c, NULL, NULL), MATCHER_OK);
}

static void test_hash_sees_changes(void **state)
{
    (void)state;
    stream s;
    stream_make(&s, 0x4a54ULL, is_san() ? 1000 : 5000, NULL);
    matcher_engine *a = matcher_create(&s.cat, &s.cfg);
    matcher_engine *b = matcher_create(&s.cat, &s.cfg);
    assert_true(a && b);
    ev_rec rec;
    rec_init(&rec, 4096);
    run_range(a, &s, 0, s.n, &rec);
    run_range(b, &s, 0, s.n, &rec);
    rec_free(&rec);
    assert_int_equal(matcher_state_hash(a), matcher_state_hash(b));

    /* one extra deposit: differs; the same deposit on the other: equal */
    matcher_cmd dep = {.type = MATCHER_CMD_DEPOSIT, .account = matcher_account_count(a) - 1, .ts_us = 1,
                       .amount_micros = MATCHER_MICROS_PER_USD};
    apply_ok(a, &dep);
    assert_true(matcher_state_hash(a) != matcher_state_hash(b));
    apply_ok(b, &dep);
    assert_int_equal(matcher_state_hash(a), matcher_state_hash(b));

    /* a clock advance, even with nothing to expire */
    matcher_cmd clk = {.type = MATCHER_CMD_ADVANCE_CLOCK, .ts_us = 2,
                       .clock_hour = matcher_clock_hour(a) + MATCHER_HORIZON_HOURS + 1};
    apply_ok(a, &clk);
    assert_true(matcher_state_hash(a) != matcher_state_hash(b));
    apply_ok(b, &clk);
    assert_int_equal(matcher_state_hash(a), matcher_state_hash(b));

    /* the same offer with another quantity: the book differs; once both
     * are cancelled the states are equal again, and so are the hashes */
    matcher_cmd acc = {.type = MATCHER_CMD_CREATE_ACCOUNT, .ts_us = 3,
                       .roles = MATCHER_ROLE_PROVIDER};
    apply_ok(a, &acc);
    apply_ok(b, &acc);
    uint32_t prov = matcher_account_count(a) - 1;
    int64_t now = matcher_clock_hour(a);
    int32_t lot = s.cat.markets[0].lot;
    matcher_cmd offer = {.type = MATCHER_CMD_NEW_ORDER, .ts_us = 4, .side = MATCHER_SELL,
                         .account = prov, .market = 0, .qty = 2 * lot,
                         .price_micros = 3 * MATCHER_MICROS_PER_USD,
                         .start_hour = now + 1, .end_hour = now + 5};
    uint64_t id = matcher_next_order_id(a);
    apply_ok(a, &offer);
    offer.qty = lot;
    apply_ok(b, &offer);
    assert_true(matcher_state_hash(a) != matcher_state_hash(b));
    matcher_cmd cancel = {.type = MATCHER_CMD_CANCEL, .ts_us = 5, .account = prov, .order_id = id};
    apply_ok(a, &cancel);
    assert_true(matcher_state_hash(a) != matcher_state_hash(b));
    apply_ok(b, &cancel);
    assert_int_equal(matcher_state_hash(a), matcher_state_hash(b));
    matcher_destroy(a);
    matcher_destroy(b);
    free(s.cmds);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_generator_seeded),
        cmocka_unit_test(test_same_stream_twice),
        cmocka_unit_test(test_prefetch_changes_nothing),
        cmocka_unit_test(test_snapshot_split),
        cmocka_unit_test(test_snapshot_truncated),
        cmocka_unit_test(test_snapshot_corrupted),
        cmocka_unit_test(test_snapshot_limits),
        cmocka_unit_test(test_hash_sees_changes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
