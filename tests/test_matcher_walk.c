/* test_matcher_walk.c — the walk hints of a level's FIFO (match.c, "Walk
 * hints") and a bid level's packed bounds, from inside the engine.
 *
 * Why: a hint is only ever prefetched, so a hint that is never written,
 * or points at the wrong order, changes no event and no state hash; the
 * reference model and the replays cannot see it, only the benchmark
 * would, as a slower walk. These tests look at the hints themselves: a
 * plan over a long ask level and a sweep over a long bid level leave on
 * each order the slot WALK_HINT_AHEAD places further along, and a
 * later walk rewrites them after an order of the FIFO has left. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdint.h>
#include <string.h>

#include "matcher/engine_internal.h"

#define AHEAD WALK_HINT_AHEAD
#define N_RESTING 24   /* orders in the long level */
#define NOW 500000

static matcher_reason run(matcher_engine *e, matcher_cmd c)
{
    return matcher_apply(e, &c, NULL, NULL);
}

/* One market (lot 1, tick 100); account 1 provider and buyer, account 2
 * buyer, account 3 provider, each buyer with $1M. */
static matcher_engine *engine_with_accounts(void)
{
    matcher_catalog cat = {0};
    assert_int_equal(matcher_catalog_add(&cat, "H100", "us-east", 1, 100), 0);
    matcher_config cfg;
    matcher_config_default(&cfg);
    cfg.max_accounts = 8;
    cfg.max_orders = 64;
    cfg.max_orders_per_market = 64;
    cfg.max_segments = 10000;
    matcher_engine *e = matcher_create(&cat, &cfg);
    assert_non_null(e);
    assert_int_equal(run(e, (matcher_cmd){.type = MATCHER_CMD_ADVANCE_CLOCK, .clock_hour = NOW}), MATCHER_OK);
    const uint32_t roles[3] = {MATCHER_ROLE_PROVIDER | MATCHER_ROLE_BUYER, MATCHER_ROLE_BUYER,
                               MATCHER_ROLE_PROVIDER};
    for (int a = 0; a < 3; a++)
        assert_int_equal(run(e, (matcher_cmd){.type = MATCHER_CMD_CREATE_ACCOUNT, .roles = roles[a]}), MATCHER_OK);
    for (uint32_t a = 1; a <= 2; a++)
        assert_int_equal(run(e, (matcher_cmd){.type = MATCHER_CMD_DEPOSIT, .account = a,
                                               .amount_micros = 1000000000000}), MATCHER_OK);
    return e;
}

static uint32_t slot_of(const matcher_engine *e, uint64_t id)
{
    uint32_t s = slotmap_find(&e->idmap, id);
    assert_int_not_equal(s, NIL);
    return s;
}

/* The engine's checker is content; then the engine goes. */
static void checked_destroy(matcher_engine *e)
{
    char err[256];
    if (matcher_check(e, err, sizeof err) != 0)
        fail_msg("checker: %s", err);
    matcher_destroy(e);
}

/* Places n orders c (all rest, in one level), their ids into ids; no
 * walk has passed them yet, so none has a hint. */
static void place(matcher_engine *e, uint64_t *ids, int n, matcher_cmd c)
{
    for (int k = 0; k < n; k++) {
        ids[k] = matcher_next_order_id(e);
        assert_int_equal(run(e, c), MATCHER_OK);
        assert_int_equal(e->orders[slot_of(e, ids[k])].walk_hint, NIL);
    }
}

/* Each of the orders ids[0 .. n) (a FIFO walked to its end, in order)
 * hints at the one AHEAD places further; the last AHEAD, with nothing
 * that far behind them, hint at nothing (the tests arrange that no
 * earlier walk gave them a hint). */
static void assert_hints(const matcher_engine *e, const uint64_t *ids, int n)
{
    for (int k = 0; k < n; k++) {
        uint32_t want = k + AHEAD < n ? slot_of(e, ids[k + AHEAD]) : NIL;
        uint32_t got = e->orders[slot_of(e, ids[k])].walk_hint;
        if (got != want)
            fail_msg("order %d of %d: hint %u, want %u", k, n, got, want);
    }
}

/* An ioc bid's plan walks an ask level of N_RESTING offers it cannot use
 * (min_hours 24 against its 4 hours; the level's hour mask lets it in),
 * then fills from an offer behind them. The walk leaves the hints; a
 * second bid after one of the offers is cancelled rewrites them along
 * the shorter FIFO and still fills from the same last offer. */
static void test_plan_walk_leaves_hints(void **state)
{
    (void)state;
    matcher_engine *e = engine_with_accounts();
    uint64_t ids[N_RESTING + 1];
    matcher_cmd offer = {.type = MATCHER_CMD_NEW_ORDER, .side = MATCHER_SELL, .account = 3, .qty = 4,
                         .min_hours = 24, .price_micros = 2000000, .start_hour = NOW, .end_hour = NOW + 48};
    place(e, ids, N_RESTING, offer);
    offer.min_hours = 0;
    place(e, ids + N_RESTING, 1, offer);
    matcher_cmd bid = {.type = MATCHER_CMD_NEW_ORDER, .side = MATCHER_BUY, .tif = MATCHER_IOC, .account = 2,
                       .qty = 1, .min_qty = 1, .price_micros = 2500000, .start_hour = NOW + 1,
                       .end_hour = NOW + 5};
    assert_int_equal(run(e, bid), MATCHER_OK);
    assert_int_equal(matcher_offer_capacity(e, ids[N_RESTING], NOW + 2), 3); /* the last offer sold one */
    assert_hints(e, ids, N_RESTING + 1);

    /* the order the first offer hints at leaves: the next walk rewrites */
    assert_int_equal(run(e, (matcher_cmd){.type = MATCHER_CMD_CANCEL, .account = 3, .order_id = ids[AHEAD]}),
                     MATCHER_OK);
    memmove(&ids[AHEAD], &ids[AHEAD + 1], sizeof ids[0] * (N_RESTING - AHEAD));
    assert_int_equal(run(e, bid), MATCHER_OK);
    assert_int_equal(matcher_offer_capacity(e, ids[N_RESTING - 1], NOW + 2), 2);
    assert_hints(e, ids, N_RESTING);
    checked_destroy(e);
}

/* An ioc offer sweeps a bid level of N_RESTING + 1 bids of its own
 * provider: each is passed (self-trade), none fills, and the whole level
 * is walked. Bids behind the level's prefix (LEVEL_WIN) are walked along
 * the FIFO and get hints; those of the prefix are judged from the level
 * line, and theirs stay NIL. */
static void test_sweep_walk_leaves_hints(void **state)
{
    (void)state;
    matcher_engine *e = engine_with_accounts();
    uint64_t ids[N_RESTING + 1];
    place(e, ids, N_RESTING + 1,
          (matcher_cmd){.type = MATCHER_CMD_NEW_ORDER, .side = MATCHER_BUY, .account = 1, .qty = 1, .min_qty = 1,
                        .price_micros = 2500000, .start_hour = NOW + 1, .end_hour = NOW + 5});
    assert_int_equal(run(e, (matcher_cmd){.type = MATCHER_CMD_NEW_ORDER, .side = MATCHER_SELL, .tif = MATCHER_IOC,
                                          .account = 1, .qty = 1, .price_micros = 2000000, .start_hour = NOW,
                                          .end_hour = NOW + 48}), MATCHER_OK);
    assert_int_equal(matcher_next_trade_id(e), 1); /* nothing traded */
    for (int k = 0; k < LEVEL_WIN; k++)
        assert_int_equal(e->orders[slot_of(e, ids[k])].walk_hint, NIL);
    assert_hints(e, ids + LEVEL_WIN, N_RESTING + 1 - LEVEL_WIN);
    checked_destroy(e);
}

/* A sweep that walks a whole bid level refills its prefix (match.c,
 * "Bid windows") from the bids behind it: two bids of the prefix fill
 * and leave, the sweep goes on through the rest (their windows run past
 * the offer's end), and the prefix then holds the next LEVEL_WIN bids of
 * the FIFO, not just the two that were left in it. */
static void test_sweep_refills_prefix(void **state)
{
    (void)state;
    matcher_engine *e = engine_with_accounts();
    uint64_t ids[N_RESTING];
    matcher_cmd bid = {.type = MATCHER_CMD_NEW_ORDER, .side = MATCHER_BUY, .account = 2, .qty = 1, .min_qty = 1,
                       .price_micros = 2500000, .start_hour = NOW + 1, .end_hour = NOW + 5};
    place(e, ids, 2, bid);
    bid.end_hour = NOW + 60; /* past the offer's end: walked, not filled */
    place(e, ids + 2, N_RESTING - 2, bid);
    assert_int_equal(run(e, (matcher_cmd){.type = MATCHER_CMD_NEW_ORDER, .side = MATCHER_SELL, .tif = MATCHER_IOC,
                                          .account = 3, .qty = 10, .price_micros = 2000000, .start_hour = NOW,
                                          .end_hour = NOW + 48}), MATCHER_OK);
    assert_int_equal(matcher_next_trade_id(e), 3); /* the first two filled */
    const level *lv = &e->levels[e->orders[slot_of(e, ids[2])].level];
    assert_int_equal(lv->count, N_RESTING - 2);
    for (int k = 0; k < LEVEL_WIN; k++)
        assert_int_equal(lv->win_slot[k], slot_of(e, ids[2 + k]));
    checked_destroy(e);
}

/* An ask level's covers (engine_internal.h, ask_cover) hold every offer
 * window added since they were cleared, however many (merging past
 * ASK_COVERS entries only widens), and stay exact while the windows fit
 * the entries: a window none of the added ones contains is refused. */
static void test_ask_covers_hold_every_window(void **state)
{
    (void)state;
    uint64_t r = 11;
    enum { WINDOWS = 12 };
    for (int round = 0; round < 20000; round++) {
        ask_cover c;
        ask_cover_clear(&c);
        int32_t st[WINDOWS], en[WINDOWS];
        int n = 1 + round % WINDOWS;
        for (int k = 0; k < n; k++) {
            r = r * 6364136223846793005ull + 1442695040888963407ull;
            st[k] = NOW + (int32_t)((r >> 33) % 168);
            static const int32_t len[] = {24, 168, 720, 2160, 8760};
            en[k] = st[k] + len[(r >> 20) % 5];
            ask_cover_add(&c, st[k], en[k]);
            for (int j = 0; j <= k; j++)
                if (!ask_cover_holds(&c, st[j], en[j]))
                    fail_msg("round %d: window %d (%d..%d) lost after adding %d", round, j, st[j], en[j], k);
        }
        /* a probe no added window contains: refused while no merge happened */
        r = r * 6364136223846793005ull + 1442695040888963407ull;
        int32_t ps = NOW + (int32_t)((r >> 33) % 200), pe = ps + 1 + (int32_t)((r >> 12) % 9000);
        bool inside = false;
        for (int j = 0; j < n; j++)
            inside |= st[j] <= ps && en[j] >= pe;
        if (n <= ASK_COVERS && !inside && ask_cover_holds(&c, ps, pe))
            fail_msg("round %d: %d windows, probe %d..%d held though none contains it", round, n, ps, pe);
    }
    ask_cover c;
    ask_cover_clear(&c);
    assert_false(ask_cover_holds(&c, NOW, NOW + 1)); /* an empty level holds nothing */
}

/* An ask level's covers are exact for the offers it holds: a level that
 * empties and takes a new offer forgets the old one's window, so a bid
 * that only the old window would have held passes the level by. */
static void test_ask_level_covers_follow_its_offers(void **state)
{
    (void)state;
    matcher_engine *e = engine_with_accounts();
    uint64_t id;
    matcher_cmd offer = {.type = MATCHER_CMD_NEW_ORDER, .side = MATCHER_SELL, .account = 3, .qty = 4,
                         .price_micros = 1900000, .start_hour = NOW, .end_hour = NOW + 24};
    place(e, &id, 1, offer); /* the best ask stays: the level below is kept when it empties, and reused */
    offer.price_micros = 2000000;
    offer.end_hour = NOW + 720;
    place(e, &id, 1, offer);
    const level *lv = &e->levels[e->orders[slot_of(e, id)].level];
    assert_true(ask_cover_holds(&lv->covers, NOW + 10, NOW + 700));
    assert_false(ask_cover_holds(&lv->covers, NOW + 10, NOW + 730));
    assert_int_equal(run(e, (matcher_cmd){.type = MATCHER_CMD_CANCEL, .account = 3, .order_id = id}), MATCHER_OK);
    offer.end_hour = NOW + 24;
    place(e, &id, 1, offer);
    assert_ptr_equal(&e->levels[e->orders[slot_of(e, id)].level], lv); /* the same level, reused */
    assert_true(ask_cover_holds(&lv->covers, NOW + 1, NOW + 24));
    assert_false(ask_cover_holds(&lv->covers, NOW + 10, NOW + 700)); /* the cancelled offer's window */
    checked_destroy(e);
}

/* A bid level keeps its bounds packed in 8 bytes (engine_internal.h,
 * bid_bnd8): unpacked, they are never tighter than what was packed (a
 * sweep would skip a level holding a bid it can serve), and exact
 * whenever the end lies within 16 bits of the start. Seeded random
 * bounds, the empty level's, and ends far on either side. */
static void test_bid_bounds_pack_never_tighter(void **state)
{
    (void)state;
    uint64_t r = 7;
    for (int k = 0; k < 200000; k++) {
        r = r * 6364136223846793005ull + 1442695040888963407ull;
        int32_t start = (int32_t)(r >> 33) % 1000000;
        int32_t spread = k % 4 == 0 ? 70000 : 20000; /* a quarter far past 16 bits */
        int32_t end = start + (int32_t)((r >> 13) % (uint64_t)(2 * spread)) - spread;
        bid_bounds b = {start, end, (int32_t)((r >> 5) % (MATCHER_MAX_WINDOW_HOURS + 1))};
        if (k == 0)
            b = BID_BOUNDS_NONE;
        if (k == 1)
            b = (bid_bounds){INT32_MAX - 5, INT32_MIN, MATCHER_MAX_WINDOW_HOURS};
        bid_bounds u = bid_bnd8_unpack(bid_bnd8_pack(b));
        if (u.max_start_hour != b.max_start_hour || u.min_end_hour > b.min_end_hour || u.max_hours != b.max_hours)
            fail_msg("bounds (%d, %d, %d) came back tighter: (%d, %d, %d)", b.max_start_hour, b.min_end_hour,
                     b.max_hours, u.max_start_hour, u.min_end_hour, u.max_hours);
        int64_t d = (int64_t)b.min_end_hour - b.max_start_hour;
        if (d > INT16_MIN && d <= INT16_MAX && u.min_end_hour != b.min_end_hour)
            fail_msg("bounds (%d, %d) within 16 bits came back loose: %d", b.max_start_hour, b.min_end_hour,
                     u.min_end_hour);
    }
}

int main(void)
{
    _Static_assert(N_RESTING > 2 * AHEAD + LEVEL_WIN, "levels long enough to show the hints");
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_plan_walk_leaves_hints),
        cmocka_unit_test(test_sweep_walk_leaves_hints),
        cmocka_unit_test(test_sweep_refills_prefix),
        cmocka_unit_test(test_bid_bounds_pack_never_tighter),
        cmocka_unit_test(test_ask_covers_hold_every_window),
        cmocka_unit_test(test_ask_level_covers_follow_its_offers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
