/* test_matcher_engine.c — engine self-checks that need no reference model:
 * a basic trade by hand, and random command streams with the full
 * invariant check and a save/load round trip after every command. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "matcher/matcher.h"

typedef struct sink {
    uint32_t n;
    uint32_t trades;
    matcher_event last_trade;
} sink;

static void collect(void *ctx, const matcher_event *ev)
{
    sink *s = ctx;
    s->n++;
    if (ev->type == MATCHER_EV_TRADE) {
        s->trades++;
        s->last_trade = *ev;
    }
}

static matcher_engine *small_engine(void)
{
    matcher_catalog cat = {0};
    assert_int_equal(matcher_catalog_add(&cat, "H100", "us-east", 8, 100), 0);
    assert_int_equal(matcher_catalog_add(&cat, "A100", "us-east", 1, 100), 1);
    matcher_config cfg;
    matcher_config_default(&cfg);
    cfg.max_accounts = 64;
    cfg.max_orders = 400;
    cfg.max_orders_per_market = 300;
    cfg.max_segments = 20000;
    matcher_engine *e = matcher_create(&cat, &cfg);
    assert_non_null(e);
    return e;
}

/* One market (H100 us-east, lot as given, tick 100) and the limits given. */
static void one_market(matcher_catalog *cat, matcher_config *cfg, int32_t lot, uint32_t accounts, uint32_t orders,
                       uint32_t per_market)
{
    *cat = (matcher_catalog){0};
    assert_int_equal(matcher_catalog_add(cat, "H100", "us-east", lot, 100), 0);
    matcher_config_default(cfg);
    cfg->max_accounts = accounts;
    cfg->max_orders = orders;
    cfg->max_orders_per_market = per_market;
    cfg->max_segments = 10000;
}

static matcher_engine *one_market_engine(int32_t lot, uint32_t accounts, uint32_t orders, uint32_t per_market)
{
    matcher_catalog cat;
    matcher_config cfg;
    one_market(&cat, &cfg, lot, accounts, orders, per_market);
    matcher_engine *e = matcher_create(&cat, &cfg);
    assert_non_null(e);
    return e;
}

static matcher_reason run(matcher_engine *e, matcher_cmd c, sink *s)
{
    return matcher_apply(e, &c, collect, s);
}

/* In market 0 (lot 8), with the clock at now: provider 1, buyer 2 with
 * $1000; provider 1 offers 16 GPUs for 48 h at $2.00 and buyer 2 bids 8
 * GPUs for 24 h at $2.50, hours 10..34: one trade. */
static void one_trade(matcher_engine *e, sink *s, int64_t now)
{
    assert_int_equal(run(e, (matcher_cmd){.type = MATCHER_CMD_ADVANCE_CLOCK, .clock_hour = now}, s), MATCHER_OK);
    assert_int_equal(run(e, (matcher_cmd){.type = MATCHER_CMD_CREATE_ACCOUNT, .roles = MATCHER_ROLE_PROVIDER}, s), 0);
    assert_int_equal(run(e, (matcher_cmd){.type = MATCHER_CMD_CREATE_ACCOUNT, .roles = MATCHER_ROLE_BUYER}, s), 0);
    assert_int_equal(run(e, (matcher_cmd){.type = MATCHER_CMD_DEPOSIT, .account = 2, .amount_micros = 1000000000}, s), 0);
    assert_int_equal(run(e, (matcher_cmd){.type = MATCHER_CMD_NEW_ORDER, .side = MATCHER_SELL, .account = 1, .qty = 16,
                                          .price_micros = 2000000, .start_hour = now, .end_hour = now + 48}, s), 0);
    assert_int_equal(run(e, (matcher_cmd){.type = MATCHER_CMD_NEW_ORDER, .side = MATCHER_BUY, .account = 2, .qty = 8,
                                          .price_micros = 2500000, .start_hour = now + 10, .end_hour = now + 34}, s), 0);
}

static void test_simple_trade_moves_money_exactly(void **state)
{
    (void)state;
    matcher_engine *e = small_engine();
    sink s = {0};
    const int64_t now = 500000;
    one_trade(e, &s, now);
    assert_int_equal(s.trades, 1);
    const matcher_fill_info *f = &s.last_trade.u.fill;
    assert_int_equal(f->price_micros, 2000000); /* the earlier order's price */
    assert_int_equal(f->notional_micros, 2000000LL * 8 * 24);
    assert_int_equal(f->buyer_fee_micros, 2000000LL * 8 * 24 * 10 / 10000);
    assert_int_equal(f->provider_fee_micros, 0);
    assert_int_equal(f->saving_micros, 500000LL * 8 * 24);
    matcher_account_view b, p, fee;
    matcher_account_get(e, 2, &b);
    matcher_account_get(e, 1, &p);
    matcher_account_get(e, 0, &fee);
    assert_int_equal(b.balance_micros, 1000000000 - 384000000 - 384000);
    assert_int_equal(b.held_micros, 0);
    assert_int_equal(p.balance_micros, 384000000);
    assert_int_equal(fee.balance_micros, 384000);
    assert_int_equal(matcher_offer_capacity(e, 1, now + 5), 16);
    assert_int_equal(matcher_offer_capacity(e, 1, now + 10), 8);
    assert_int_equal(matcher_offer_capacity(e, 1, now + 33), 8);
    assert_int_equal(matcher_offer_capacity(e, 1, now + 34), 16);
    char err[256];
    assert_int_equal(matcher_check(e, err, sizeof err), 0);
    matcher_destroy(e);
}

/* A side's level arrays have room before the first entry and after the
 * last, and a new level moves the shorter part (book.c, side_insert).
 * With 4 orders per market (arrays of 2 x 5 entries) new levels at the
 * worst end use up the room before, then the room after, then both ends
 * again, compacting as empties pile up; the checker (arrays, sort order,
 * level map) runs after every command. */
static void test_level_arrays_use_both_rooms(void **state)
{
    (void)state;
    matcher_engine *e = one_market_engine(1, 8, 16, 4);
    sink s = {0};
    const int64_t now = 500000;
    char err[256];
    assert_int_equal(run(e, (matcher_cmd){.type = MATCHER_CMD_ADVANCE_CLOCK, .clock_hour = now}, &s), MATCHER_OK);
    assert_int_equal(run(e, (matcher_cmd){.type = MATCHER_CMD_CREATE_ACCOUNT, .roles = MATCHER_ROLE_PROVIDER}, &s), 0);
    /* a resting best offer, so that cancelled worse levels stay as empties */
    assert_int_equal(run(e, (matcher_cmd){.type = MATCHER_CMD_NEW_ORDER, .side = MATCHER_SELL, .account = 1, .qty = 1,
                                          .price_micros = 1000000, .start_hour = now, .end_hour = now + 4}, &s), 0);
    uint64_t id = 2;
    for (int k = 1; k <= 60; k++, id++) {
        /* worst end (dearer) for 40 rounds, then alternately the best end */
        int64_t price = k <= 40 || k % 2 ? 1000000 + 100 * k : 1000000 - 100 * k;
        assert_int_equal(run(e, (matcher_cmd){.type = MATCHER_CMD_NEW_ORDER, .side = MATCHER_SELL, .account = 1,
                                              .qty = 1, .price_micros = price, .start_hour = now,
                                              .end_hour = now + 4}, &s), 0);
        assert_int_equal(matcher_check(e, err, sizeof err), 0);
        assert_int_equal(run(e, (matcher_cmd){.type = MATCHER_CMD_CANCEL, .account = 1, .order_id = id}, &s), 0);
        if (matcher_check(e, err, sizeof err) != 0)
            fail_msg("round %d: %s", k, err);
    }
    matcher_destroy(e);
}

/* persist.c's trailer: FNV-1a over the body, then a final mix. Written
 * out here so that the test can forge a snapshot that passes it. */
static uint64_t snapshot_digest(const uint8_t *p, size_t n)
{
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < n; i++)
        h = (h ^ p[i]) * 0x100000001b3ull;
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdull;
    h ^= h >> 33;
    return h;
}

static void put_u32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

/* Where one_trade's offer's capacity list starts in snapshot buf: 3
 * breakpoints, (now, 16) (now + 10, 8) (now + 34, 16). The offer's last
 * fields come right before it: provider lock, side, tif, single provider
 * (persist.c, w_order). */
static size_t offer_list_at(const uint8_t *buf, size_t len, int64_t now)
{
    uint8_t want[28];
    const uint32_t list[7] = {3, (uint32_t)now, 16, (uint32_t)now + 10, 8, (uint32_t)now + 34, 16};
    for (int i = 0; i < 7; i++)
        put_u32(&want[4 * i], list[i]);
    size_t at = 0;
    while (at + sizeof want <= len && memcmp(buf + at, want, sizeof want) != 0)
        at++;
    assert_true(at + sizeof want <= len);
    return at;
}

/* one_trade's book (clock at now) saved into *buf (the caller frees it);
 * returns where the offer's capacity list starts in it. */
static size_t one_trade_saved(int64_t now, uint8_t **buf, size_t *len)
{
    matcher_engine *e = one_market_engine(8, 8, 16, 16);
    sink s = {0};
    one_trade(e, &s, now);
    assert_int_equal(matcher_save(e, buf, len), 0);
    matcher_destroy(e);
    return offer_list_at(*buf, *len, now);
}

/* Loads a copy of snapshot buf with the u32 at off set to v and the
 * checksum made right again; asserts that the load is refused as
 * malformed. */
static void assert_forged_refused(const uint8_t *buf, size_t len, size_t off, uint32_t v)
{
    matcher_catalog cat;
    matcher_config cfg;
    one_market(&cat, &cfg, 8, 8, 16, 16);
    uint8_t *forged = malloc(len);
    assert_non_null(forged);
    memcpy(forged, buf, len);
    put_u32(forged + off, v);
    uint64_t d = snapshot_digest(forged, len - 8);
    for (int i = 0; i < 8; i++)
        forged[len - 8 + i] = (uint8_t)(d >> (8 * i));
    char err[256];
    matcher_engine *f = matcher_load(&cat, &cfg, forged, len, err, sizeof err);
    if (f)
        fail_msg("forged u32 %u at %zu was loaded", v, off);
    assert_string_equal(err, "snapshot body malformed");
    free(forged);
}

/* The unforged snapshot buf loads. */
static void assert_loads(const uint8_t *buf, size_t len)
{
    matcher_catalog cat;
    matcher_config cfg;
    one_market(&cat, &cfg, 8, 8, 16, 16);
    char err[256];
    matcher_engine *f = matcher_load(&cat, &cfg, buf, len, err, sizeof err);
    if (!f)
        fail_msg("the unforged snapshot was refused: %s", err);
    matcher_destroy(f);
}

/* A snapshot whose checksum is right but whose capacity list is not (out
 * of order, outside the window, above the offer's qty, not canonical) is
 * refused as malformed, before any capacity walk sees it: the walks
 * assume what check.c checks. */
static void test_load_refuses_bad_capacity_lists(void **state)
{
    (void)state;
    const int64_t now = 500000;
    uint8_t *buf;
    size_t len;
    size_t at = one_trade_saved(now, &buf, &len);
    /* byte offsets in the list of: 2nd start, 2nd qty, 3rd qty */
    const struct { size_t off; uint32_t v; } bad[] = {
        {12, (uint32_t)now - 1},  /* 2nd start before the first (and the window) */
        {12, (uint32_t)now + 40}, /* 2nd start after the third */
        {20, (uint32_t)now + 48}, /* 3rd start at the offer's end */
        {16, 17},                 /* 2nd qty above the offer's 16 */
        {16, 16},                 /* 2nd qty equal to its neighbours: not canonical */
        {16, (uint32_t)-1},       /* 2nd qty negative */
    };
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++)
        assert_forged_refused(buf, len, at + bad[k].off, bad[k].v);
    assert_loads(buf, len);
    free(buf);
}

/* Only bids are bound to a provider: an offer's provider lock shares its
 * room with the offer's sold-out prefix (engine_internal.h, order), so a
 * snapshot that gives an offer a lock is refused rather than half read. */
static void test_load_refuses_offer_with_provider_lock(void **state)
{
    (void)state;
    uint8_t *buf;
    size_t len;
    size_t at = one_trade_saved(500000, &buf, &len);
    /* the offer's side, right after its lock: the offsets are right */
    assert_int_equal(buf[at - 12], MATCHER_SELL);
    assert_int_equal(buf[at - 16], 0);
    assert_forged_refused(buf, len, at - 16, 2); /* bound to account 2 */
    assert_loads(buf, len);
    free(buf);
}

/* The exchange-wide total of deposits ever made cannot overflow int64:
 * the deposit that would pass it is refused balance_limit and changes
 * nothing (each account is capped at $1e11, so ~93 full accounts reach
 * $9.2e12). */
static void test_deposit_total_cannot_overflow(void **state)
{
    (void)state;
    matcher_engine *e = one_market_engine(8, 200, 16, 16);
    matcher_reason last = MATCHER_OK;
    uint32_t accepted = 0;
    for (uint32_t a = 1; a < 200 && last == MATCHER_OK; a++) {
        matcher_cmd c = {.type = MATCHER_CMD_CREATE_ACCOUNT, .roles = MATCHER_ROLE_BUYER};
        assert_int_equal(matcher_apply(e, &c, NULL, NULL), MATCHER_OK);
        for (int k = 0; k < 100 && last == MATCHER_OK; k++) { /* 100 x $1e9 = the $1e11 cap */
            matcher_cmd d = {.type = MATCHER_CMD_DEPOSIT, .account = a, .amount_micros = MATCHER_MAX_AMOUNT_MICROS};
            uint64_t before = matcher_state_hash(e);
            last = matcher_apply(e, &d, NULL, NULL);
            if (last == MATCHER_OK)
                accepted++;
            else
                assert_int_equal(matcher_state_hash(e), before);
        }
    }
    assert_int_equal(last, MATCHER_REJ_BALANCE_LIMIT);
    int64_t dep, wd;
    matcher_totals(e, &dep, &wd);
    assert_true(dep > INT64_MAX - MATCHER_MAX_AMOUNT_MICROS); /* refused only at the very edge */
    assert_int_equal(dep, (int64_t)accepted * MATCHER_MAX_AMOUNT_MICROS);
    char err[256];
    assert_int_equal(matcher_check(e, err, sizeof err), 0);
    matcher_destroy(e);
}

static uint64_t rng_next(uint64_t *s)
{
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static int64_t pick(uint64_t *r, int64_t lo, int64_t hi) { return lo + (int64_t)(rng_next(r) % (uint64_t)(hi - lo + 1)); }

static matcher_cmd random_cmd(uint64_t *r, int64_t now, uint64_t next_order)
{
    matcher_cmd c = {.ts_us = now * 3600000000LL};
    int k = (int)pick(r, 0, 99);
    uint32_t acct = (uint32_t)pick(r, 0, 12);
    if (k < 3) {
        c.type = MATCHER_CMD_CREATE_ACCOUNT;
        c.roles = (uint32_t)pick(r, 1, 3);
    } else if (k < 8) {
        c.type = MATCHER_CMD_DEPOSIT;
        c.account = acct;
        c.amount_micros = pick(r, 1, 20000) * 100000;
    } else if (k < 10) {
        c.type = MATCHER_CMD_WITHDRAW;
        c.account = acct;
        c.amount_micros = pick(r, 1, 5000) * 100000;
    } else if (k < 70) {
        c.type = MATCHER_CMD_NEW_ORDER;
        c.account = acct;
        c.market = (uint32_t)pick(r, 0, 1);
        c.side = (uint8_t)pick(r, 1, 2);
        c.tif = (uint8_t)(pick(r, 0, 9) < 6 ? 0 : pick(r, 1, 3));
        if (c.side == MATCHER_SELL && c.tif == MATCHER_FOK)
            c.tif = MATCHER_IOC;
        int lot = c.market == 0 ? 8 : 1;
        c.qty = (int32_t)pick(r, 1, 6) * lot;
        c.min_qty = pick(r, 0, 2) == 0 ? (int32_t)pick(r, 1, c.qty / lot) * lot : 0;
        c.price_micros = pick(r, 15, 25) * 100000;
        int64_t len = c.side == MATCHER_SELL ? pick(r, 4, 60) : pick(r, 1, 20);
        c.start_hour = now + pick(r, 0, c.side == MATCHER_SELL ? 6 : 20);
        c.end_hour = c.start_hour + len;
        if (c.side == MATCHER_SELL && pick(r, 0, 3) == 0)
            c.min_hours = (int32_t)pick(r, 1, 6);
        if (c.side == MATCHER_BUY && pick(r, 0, 3) == 0)
            c.single_provider = 1;
        if (pick(r, 0, 9) == 0)
            c.expire_at_hour = now + pick(r, 1, 30);
    } else if (k < 80) {
        c.type = MATCHER_CMD_CANCEL;
        c.account = acct;
        c.order_id = next_order > 1 ? (uint64_t)pick(r, 1, (int64_t)next_order) : 1;
    } else if (k < 92) {
        c.type = MATCHER_CMD_REPLACE;
        c.account = acct;
        c.order_id = next_order > 1 ? (uint64_t)pick(r, 1, (int64_t)next_order) : 1;
        if (pick(r, 0, 1))
            c.price_micros = pick(r, 15, 25) * 100000;
        if (pick(r, 0, 1))
            c.qty = (int32_t)pick(r, 1, 6) * 8;
    } else {
        c.type = MATCHER_CMD_ADVANCE_CLOCK;
        c.clock_hour = now + pick(r, 0, 3);
    }
    return c;
}

static void stream(uint64_t seed, int n_cmds, int save_every)
{
    matcher_engine *e = small_engine();
    uint64_t r = seed;
    sink s = {0};
    char err[256];
    matcher_cmd start = {.type = MATCHER_CMD_ADVANCE_CLOCK, .clock_hour = 400000};
    assert_int_equal(matcher_apply(e, &start, NULL, NULL), MATCHER_OK);
    for (int i = 0; i < n_cmds; i++) {
        matcher_cmd c = random_cmd(&r, matcher_clock_hour(e), matcher_next_order_id(e));
        matcher_apply(e, &c, collect, &s);
        if (matcher_check(e, err, sizeof err) != 0)
            fail_msg("seed %llu cmd %d (type %d): %s", (unsigned long long)seed, i, c.type, err);
        if (save_every && i % save_every == 0) {
            uint8_t *buf;
            size_t len;
            assert_int_equal(matcher_save(e, &buf, &len), 0);
            matcher_engine *l = matcher_load(matcher_catalog_of(e), &(matcher_config){0}, buf, len, err, sizeof err);
            assert_null(l); /* other limits: refused */
            matcher_config cfg;
            matcher_config_default(&cfg);
            cfg.max_accounts = 64;
            cfg.max_orders = 400;
            cfg.max_orders_per_market = 300;
            cfg.max_segments = 20000;
            l = matcher_load(matcher_catalog_of(e), &cfg, buf, len, err, sizeof err);
            if (!l)
                fail_msg("seed %llu cmd %d: load failed: %s", (unsigned long long)seed, i, err);
            assert_int_equal(matcher_state_hash(l), matcher_state_hash(e));
            matcher_destroy(e);
            e = l;
            free(buf);
        }
    }
    print_message("# seed %llu: %u events, %u trades, %u resting\n", (unsigned long long)seed, s.n, s.trades,
                  matcher_order_count(e));
    assert_true(s.trades > 0);
    matcher_destroy(e);
}

static int scale(void)
{
    const char *f = getenv("GPUX_FLAVOUR");
    return f && strcmp(f, "san") == 0 ? 10 : 1;
}

static void test_random_streams_keep_invariants(void **state)
{
    (void)state;
    for (uint64_t seed = 1; seed <= 20; seed++)
        stream(seed, 20000 / scale(), 0);
}

static void test_save_load_round_trip_every_command(void **state)
{
    (void)state;
    for (uint64_t seed = 100; seed <= 103; seed++)
        stream(seed, 3000 / (scale() > 1 ? 3 : 1), 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_simple_trade_moves_money_exactly),
        cmocka_unit_test(test_deposit_total_cannot_overflow),
        cmocka_unit_test(test_level_arrays_use_both_rooms),
        cmocka_unit_test(test_load_refuses_bad_capacity_lists),
        cmocka_unit_test(test_load_refuses_offer_with_provider_lock),
        cmocka_unit_test(test_random_streams_keep_invariants),
        cmocka_unit_test(test_save_load_round_trip_every_command),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
