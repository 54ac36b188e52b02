/* test_matcher_rules.c — one named test per rule of ../shared/spec/market.md
 * and docs/market-rules.md, written from the rules, not from the engine.
 *
 * Each test builds a small engine (two markets from an in-memory catalog,
 * small tables), drives it with matcher_apply and asserts the exact events,
 * balances, order state and offer capacities. Expected money is computed by
 * hand in the test (price x qty x hours, fee = floor(notional x bps / 1e4)),
 * never with the engine's own formulas.
 *
 * After every command the harness also checks, whatever the test: the
 * engine's own invariants (matcher_check), money conservation (deposits -
 * withdrawals == sum of balances, fee account included), no balance below
 * zero, no hold above its balance, every event stamped with the command's
 * time and type, and that a rejected command emitted exactly one REJECTED
 * event and left the state hash unchanged. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "matcher/matcher.h"

/* ---- fixture ------------------------------------------------------------- */

#define MKT 0  /* H100/us-east: lot 8, tick $0.0001 (100 micros) */
#define MKT4 1 /* A100/eu-west: lot 4, tick $0.01 (10000 micros) */
#define EV_MAX 32768 /* a 4096-fill command emits ~6 events per fill */
#define ALL_ROLES (MATCHER_ROLE_BUYER | MATCHER_ROLE_PROVIDER)

/* Prices used throughout, in micro-dollars per GPU-hour. */
#define P_235 2350000LL /* $2.35 */
#define P_230 2300000LL
#define P_210 2100000LL
#define P_200 2000000LL
#define P_190 1900000LL

/* The usual window: hours [100, 124), 24 hours. */
#define W_START 100
#define W_END 124

typedef struct ev_log {
    int n;
    matcher_event ev[EV_MAX];
} ev_log;

static matcher_catalog g_cat;
static matcher_engine *E;
static ev_log LOG;
static int64_t g_ts_us;
static int64_t g_deposited; /* our own count of accepted deposits */
static int64_t g_withdrawn;

static void capture(void *ctx, const matcher_event *ev)
{
    ev_log *log = ctx;
    if (log->n >= EV_MAX)
        fail_msg("more than %d events from one command", EV_MAX);
    log->ev[log->n++] = *ev;
}

static void small_config(matcher_config *cfg)
{
    matcher_config_default(cfg);
    cfg->max_accounts = 64;
    cfg->max_orders = 256;
    cfg->max_orders_per_market = 128;
    cfg->max_segments = 16384; /* engine needs >= 2 x fills-per-command + 2 */
}

static void make_engine(const matcher_config *cfg)
{
    if (E)
        matcher_destroy(E);
    E = matcher_create(&g_cat, cfg);
    assert_non_null(E);
    g_ts_us = 1800000000LL * 1000000LL;
    g_deposited = g_withdrawn = 0;
    LOG.n = 0;
}

static int setup(void **state)
{
    (void)state;
    memset(&g_cat, 0, sizeof g_cat);
    if (matcher_catalog_add(&g_cat, "H100", "us-east", 8, 100) != MKT ||
        matcher_catalog_add(&g_cat, "A100", "eu-west", 4, 10000) != MKT4)
        return -1;
    matcher_config cfg;
    small_config(&cfg);
    E = matcher_create(&g_cat, &cfg);
    if (!E)
        return -1;
    g_ts_us = 1800000000LL * 1000000LL;
    g_deposited = g_withdrawn = 0;
    LOG.n = 0;
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    matcher_destroy(E);
    E = NULL;
    return 0;
}

/* ---- invariants checked after every command -------------------------------- */

static void check_invariants(void)
{
    char err[256];
    if (matcher_check(E, err, sizeof err) != 0)
        fail_msg("matcher_check: %s", err);
    int64_t dep = 0, wd = 0;
    matcher_totals(E, &dep, &wd);
    assert_int_equal(dep, g_deposited);
    assert_int_equal(wd, g_withdrawn);
    int64_t sum = 0;
    uint32_t n = matcher_account_count(E);
    for (uint32_t a = 0; a < n; a++) {
        matcher_account_view v;
        assert_int_equal(matcher_account_get(E, a, &v), 0);
        if (v.balance_micros < 0 || v.held_micros < 0 || v.held_micros > v.balance_micros)
            fail_msg("account %u: balance %" PRId64 " held %" PRId64, a, v.balance_micros,
                     v.held_micros);
        sum += v.balance_micros;
    }
    if (sum != dep - wd)
        fail_msg("money not conserved: balances %" PRId64 " != deposits %" PRId64
                 " - withdrawals %" PRId64, sum, dep, wd);
}

/* Applies one command with a fresh timestamp, captures its events into LOG
 * and checks the invariants above. Returns the engine's answer. */
static matcher_reason apply(matcher_cmd c)
{
    g_ts_us += 1000000;
    c.ts_us = g_ts_us;
    LOG.n = 0;
    uint64_t hash_before = matcher_state_hash(E);
    matcher_reason r = matcher_apply(E, &c, capture, &LOG);
    for (int i = 0; i < LOG.n; i++) {
        assert_int_equal(LOG.ev[i].ts_us, c.ts_us);
        assert_int_equal(LOG.ev[i].cmd_type, c.type);
    }
    if (r != MATCHER_OK) {
        assert_int_equal(LOG.n, 1);
        assert_int_equal(LOG.ev[0].type, MATCHER_EV_REJECTED);
        assert_int_equal(LOG.ev[0].u.rejected.reason, r);
        assert_int_equal(matcher_state_hash(E), hash_before);
    } else {
        for (int i = 0; i < LOG.n; i++)
            assert_int_not_equal(LOG.ev[i].type, MATCHER_EV_REJECTED);
    }
    if (c.type == MATCHER_CMD_DEPOSIT && r == MATCHER_OK)
        g_deposited += c.amount_micros;
    if (c.type == MATCHER_CMD_WITHDRAW && r == MATCHER_OK)
        g_withdrawn += c.amount_micros;
    check_invariants();
    return r;
}

/* ---- command builders ------------------------------------------------------ */

static matcher_cmd order_cmd(uint8_t side, uint32_t acct, int64_t price, int32_t qty,
                             int64_t start, int64_t end)
{
    matcher_cmd c;
    memset(&c, 0, sizeof c);
    c.type = MATCHER_CMD_NEW_ORDER;
    c.side = side;
    c.tif = MATCHER_GTC;
    c.market = MKT;
    c.account = acct;
    c.price_micros = price;
    c.qty = qty;
    c.start_hour = start;
    c.end_hour = end;
    return c;
}

static matcher_cmd bid_cmd(uint32_t acct, int64_t price, int32_t qty, int64_t start, int64_t end)
{
    return order_cmd(MATCHER_BUY, acct, price, qty, start, end);
}

static matcher_cmd offer_cmd(uint32_t acct, int64_t price, int32_t qty, int64_t start,
                             int64_t end)
{
    return order_cmd(MATCHER_SELL, acct, price, qty, start, end);
}

static matcher_cmd cancel_cmd(uint32_t acct, uint64_t order_id)
{
    matcher_cmd c;
    memset(&c, 0, sizeof c);
    c.type = MATCHER_CMD_CANCEL;
    c.account = acct;
    c.order_id = order_id;
    return c;
}

static matcher_cmd replace_cmd(uint32_t acct, uint64_t order_id, int64_t price, int32_t qty)
{
    matcher_cmd c;
    memset(&c, 0, sizeof c);
    c.type = MATCHER_CMD_REPLACE;
    c.account = acct;
    c.order_id = order_id;
    c.price_micros = price;
    c.qty = qty;
    return c;
}

static matcher_cmd clock_cmd(int64_t hour)
{
    matcher_cmd c;
    memset(&c, 0, sizeof c);
    c.type = MATCHER_CMD_ADVANCE_CLOCK;
    c.clock_hour = hour;
    return c;
}

static matcher_cmd money_cmd(uint8_t type, uint32_t acct, int64_t amount)
{
    matcher_cmd c;
    memset(&c, 0, sizeof c);
    c.type = type;
    c.account = acct;
    c.amount_micros = amount;
    return c;
}

/* ---- helpers that must succeed --------------------------------------------- */

static void ok(matcher_cmd c)
{
    matcher_reason r = apply(c);
    if (r != MATCHER_OK)
        fail_msg("command type %d rejected: %s", c.type, matcher_reason_code(r));
}

static void rejected(matcher_cmd c, matcher_reason want)
{
    matcher_reason r = apply(c);
    if (r != want)
        fail_msg("command type %d: got %s (%d), want %s (%d)", c.type,
                 matcher_reason_code(r), r, matcher_reason_code(want), want);
}

static uint32_t new_account(uint32_t roles)
{
    matcher_cmd c;
    memset(&c, 0, sizeof c);
    c.type = MATCHER_CMD_CREATE_ACCOUNT;
    c.roles = roles;
    ok(c);
    assert_int_equal(LOG.n, 1);
    assert_int_equal(LOG.ev[0].type, MATCHER_EV_ACCOUNT);
    return LOG.ev[0].u.account.account;
}

static void deposit(uint32_t acct, int64_t amount)
{
    ok(money_cmd(MATCHER_CMD_DEPOSIT, acct, amount));
}

static uint32_t buyer(int64_t amount)
{
    uint32_t a = new_account(MATCHER_ROLE_BUYER);
    if (amount > 0)
        deposit(a, amount);
    return a;
}

static uint32_t provider(void)
{
    return new_account(MATCHER_ROLE_PROVIDER);
}

/* Places an order that must be accepted; returns its id. */
static uint64_t place(matcher_cmd c)
{
    ok(c);
    assert_true(LOG.n >= 1);
    assert_int_equal(LOG.ev[0].type, MATCHER_EV_ACCEPTED);
    return LOG.ev[0].u.order.order_id;
}

static uint64_t offer(uint32_t acct, int64_t price, int32_t qty, int64_t start, int64_t end)
{
    return place(offer_cmd(acct, price, qty, start, end));
}

static uint64_t bid(uint32_t acct, int64_t price, int32_t qty, int64_t start, int64_t end)
{
    return place(bid_cmd(acct, price, qty, start, end));
}

/* ---- event and state assertions ------------------------------------------ */

static int count_type(uint16_t type)
{
    int n = 0;
    for (int i = 0; i < LOG.n; i++)
        n += LOG.ev[i].type == type;
    return n;
}

/* The nth (0-based) event of a type in LOG; fails when absent. */
static const matcher_event *nth(uint16_t type, int n)
{
    for (int i = 0; i < LOG.n; i++)
        if (LOG.ev[i].type == type && n-- == 0)
            return &LOG.ev[i];
    fail_msg("no event of type %d number %d", type, n);
    return NULL;
}

/* LOG holds exactly these event types, in this order (list ends with 0). */
static void expect_types(const uint16_t *want)
{
    int n = 0;
    while (want[n])
        n++;
    char got[256] = "", exp[256] = "";
    for (int i = 0; i < LOG.n && strlen(got) < 240; i++)
        snprintf(got + strlen(got), sizeof got - strlen(got), "%d ", LOG.ev[i].type);
    for (int i = 0; i < n; i++)
        snprintf(exp + strlen(exp), sizeof exp - strlen(exp), "%d ", want[i]);
    if (LOG.n != n || strcmp(got, exp) != 0)
        fail_msg("events [%s], want [%s]", got, exp);
}
#define EXPECT_TYPES(...)                                                      \
    do {                                                                       \
        static const uint16_t want_[] = {__VA_ARGS__, 0};                      \
        expect_types(want_);                                                   \
    } while (0)

static void expect_balance(uint32_t acct, int64_t balance, int64_t held)
{
    matcher_account_view v;
    assert_int_equal(matcher_account_get(E, acct, &v), 0);
    if (v.balance_micros != balance || v.held_micros != held)
        fail_msg("account %u: balance %" PRId64 " held %" PRId64 ", want %" PRId64 " / %" PRId64,
                 acct, v.balance_micros, v.held_micros, balance, held);
}

static void expect_balance_ev(const matcher_event *ev, uint32_t acct, int64_t balance,
                              int64_t held)
{
    assert_int_equal(ev->type, MATCHER_EV_BALANCE);
    assert_int_equal(ev->u.balance.account, acct);
    assert_int_equal(ev->u.balance.balance_micros, balance);
    assert_int_equal(ev->u.balance.held_micros, held);
}

static void expect_done_ev(const matcher_event *ev, uint64_t order_id, uint8_t reason)
{
    assert_int_equal(ev->type, MATCHER_EV_DONE);
    assert_int_equal(ev->u.done.order_id, order_id);
    assert_int_equal(ev->u.done.reason, reason);
}

static void expect_fill(const matcher_fill_info *f, uint64_t buy_id, uint64_t sell_id,
                        int64_t price, int32_t qty, int64_t start, int64_t end)
{
    assert_int_equal(f->buy_order_id, buy_id);
    assert_int_equal(f->sell_order_id, sell_id);
    assert_int_equal(f->price_micros, price);
    assert_int_equal(f->qty, qty);
    assert_int_equal(f->start_hour, start);
    assert_int_equal(f->end_hour, end);
}

static void expect_money(const matcher_fill_info *f, int64_t notional, int64_t buyer_fee,
                         int64_t provider_fee, int64_t saving)
{
    assert_int_equal(f->notional_micros, notional);
    assert_int_equal(f->buyer_fee_micros, buyer_fee);
    assert_int_equal(f->provider_fee_micros, provider_fee);
    assert_int_equal(f->saving_micros, saving);
}

static bool resting(uint64_t order_id)
{
    matcher_order_view v;
    return matcher_order_get(E, order_id, &v) == 0;
}

static matcher_order_view order_view(uint64_t order_id)
{
    matcher_order_view v;
    memset(&v, 0, sizeof v);
    if (matcher_order_get(E, order_id, &v) != 0)
        fail_msg("order %" PRIu64 " is not resting", order_id);
    return v;
}

/* Offer capacity is qty in [from, to) for every hour. */
static void expect_capacity(uint64_t offer_id, int64_t from, int64_t to, int32_t qty)
{
    for (int64_t h = from; h < to; h++) {
        int32_t c = matcher_offer_capacity(E, offer_id, h);
        if (c != qty)
            fail_msg("offer %" PRIu64 " hour %" PRId64 ": capacity %d, want %d", offer_id, h, c,
                     qty);
    }
}

/* ================================================================== */
/* Validation of a new order (units, limits, validation order)         */
/* ================================================================== */

static void test_price_must_be_positive(void **state)
{
    (void)state;
    uint32_t p = provider();
    rejected(offer_cmd(p, 0, 8, W_START, W_END), MATCHER_REJ_BAD_PRICE);
    rejected(offer_cmd(p, -100, 8, W_START, W_END), MATCHER_REJ_BAD_PRICE);
    offer(p, 100, 8, W_START, W_END); /* one tick is the smallest price */
}

static void test_price_must_be_a_multiple_of_the_tick(void **state)
{
    (void)state;
    uint32_t p = provider();
    rejected(offer_cmd(p, 2350050, 8, W_START, W_END), MATCHER_REJ_BAD_PRICE);
    rejected(offer_cmd(p, 1, 8, W_START, W_END), MATCHER_REJ_BAD_PRICE);
    offer(p, 2350100, 8, W_START, W_END);
    /* the tick is per market: $0.01 in MKT4 */
    matcher_cmd c = offer_cmd(p, 2355000, 4, W_START, W_END);
    c.market = MKT4;
    rejected(c, MATCHER_REJ_BAD_PRICE);
    c.price_micros = 2360000;
    place(c);
}

static void test_price_at_most_1000_dollars(void **state)
{
    (void)state;
    uint32_t p = provider();
    offer(p, 1000000000LL, 8, W_START, W_END);
    rejected(offer_cmd(p, 1000000100LL, 8, W_START, W_END), MATCHER_REJ_BAD_PRICE);
    rejected(offer_cmd(p, INT64_MAX - 7, 8, W_START, W_END), MATCHER_REJ_BAD_PRICE);
}

static void test_qty_must_be_a_positive_multiple_of_the_lot(void **state)
{
    (void)state;
    uint32_t p = provider();
    rejected(offer_cmd(p, P_200, 0, W_START, W_END), MATCHER_REJ_BAD_QTY);
    rejected(offer_cmd(p, P_200, -8, W_START, W_END), MATCHER_REJ_BAD_QTY);
    rejected(offer_cmd(p, P_200, 12, W_START, W_END), MATCHER_REJ_BAD_QTY);
    rejected(offer_cmd(p, P_200, 4, W_START, W_END), MATCHER_REJ_BAD_QTY);
    offer(p, P_200, 16, W_START, W_END);
    /* lot is per market: 4 in MKT4 */
    matcher_cmd c = offer_cmd(p, P_200, 12, W_START, W_END);
    c.market = MKT4;
    place(c);
}

static void test_qty_at_most_100000_gpus(void **state)
{
    (void)state;
    uint32_t p = provider();
    offer(p, P_200, 100000, W_START, W_END);
    rejected(offer_cmd(p, P_200, 100008, W_START, W_END), MATCHER_REJ_BAD_QTY);
}

static void test_min_qty_must_be_a_lot_multiple_not_above_qty(void **state)
{
    (void)state;
    uint32_t p = provider();
    uint32_t b = buyer(1000000000000LL);
    matcher_cmd c = bid_cmd(b, P_200, 16, W_START, W_END);
    c.min_qty = 4;
    rejected(c, MATCHER_REJ_BAD_QTY);
    c.min_qty = 24;
    rejected(c, MATCHER_REJ_BAD_QTY);
    c.min_qty = -8;
    rejected(c, MATCHER_REJ_BAD_QTY);
    c.min_qty = 16;
    place(c);
    matcher_cmd o = offer_cmd(p, P_230, 16, W_START, W_END);
    o.min_qty = 12;
    rejected(o, MATCHER_REJ_BAD_QTY);
    o.min_qty = 8;
    place(o);
}

static void test_window_end_must_be_after_start(void **state)
{
    (void)state;
    uint32_t p = provider();
    rejected(offer_cmd(p, P_200, 8, W_START, W_START), MATCHER_REJ_BAD_WINDOW);
    rejected(offer_cmd(p, P_200, 8, W_START, W_START - 1), MATCHER_REJ_BAD_WINDOW);
    offer(p, P_200, 8, W_START, W_START + 1); /* one hour is the shortest window */
}

static void test_window_at_most_8760_hours(void **state)
{
    (void)state;
    uint32_t p = provider();
    offer(p, P_200, 8, W_START, W_START + 8760);
    rejected(offer_cmd(p, P_200, 8, W_START, W_START + 8761), MATCHER_REJ_BAD_WINDOW);
}

static void test_window_starting_before_the_clock_hour_is_in_the_past(void **state)
{
    (void)state;
    uint32_t p = provider();
    ok(clock_cmd(50));
    rejected(offer_cmd(p, P_200, 8, 49, 60), MATCHER_REJ_WINDOW_IN_PAST);
    rejected(offer_cmd(p, P_200, 8, 0, 60), MATCHER_REJ_WINDOW_IN_PAST);
    offer(p, P_200, 8, 50, 60); /* the current hour is still open */
}

static void test_window_start_at_most_two_years_ahead(void **state)
{
    (void)state;
    uint32_t p = provider();
    ok(clock_cmd(1000));
    offer(p, P_200, 8, 1000 + 17520, 1000 + 17520 + 24);
    rejected(offer_cmd(p, P_200, 8, 1000 + 17521, 1000 + 17521 + 24), MATCHER_REJ_BAD_WINDOW);
}

static void test_window_checks_run_in_the_documented_order(void **state)
{
    (void)state;
    uint32_t p = provider();
    ok(clock_cmd(50));
    /* in the past AND end <= start: the shape is checked first */
    rejected(offer_cmd(p, P_200, 8, 40, 40), MATCHER_REJ_BAD_WINDOW);
    /* in the past AND too long: too long first */
    rejected(offer_cmd(p, P_200, 8, 40, 40 + 8761), MATCHER_REJ_BAD_WINDOW);
    rejected(offer_cmd(p, P_200, 8, 40, 48), MATCHER_REJ_WINDOW_IN_PAST);
}

static void test_unknown_market_account_and_side_are_rejected(void **state)
{
    (void)state;
    uint32_t p = provider();
    matcher_cmd c = offer_cmd(p, P_200, 8, W_START, W_END);
    c.market = 2;
    rejected(c, MATCHER_REJ_UNKNOWN_MARKET);
    c.market = UINT32_MAX;
    rejected(c, MATCHER_REJ_UNKNOWN_MARKET);
    c = offer_cmd(99, P_200, 8, W_START, W_END);
    rejected(c, MATCHER_REJ_UNKNOWN_ACCOUNT);
    c = offer_cmd(p, P_200, 8, W_START, W_END);
    c.side = 3;
    rejected(c, MATCHER_REJ_BAD_SIDE);
    c.side = 0;
    rejected(c, MATCHER_REJ_BAD_SIDE);
}

static void test_selling_needs_provider_role_buying_needs_buyer_role(void **state)
{
    (void)state;
    uint32_t b = buyer(1000000000000LL);
    uint32_t p = provider();
    uint32_t admin = new_account(MATCHER_ROLE_ADMIN);
    deposit(p, 1000000000000LL);
    deposit(admin, 1000000000000LL);
    rejected(offer_cmd(b, P_200, 8, W_START, W_END), MATCHER_REJ_FORBIDDEN);
    rejected(bid_cmd(p, P_200, 8, W_START, W_END), MATCHER_REJ_FORBIDDEN);
    rejected(bid_cmd(admin, P_200, 8, W_START, W_END), MATCHER_REJ_FORBIDDEN);
    rejected(offer_cmd(admin, P_200, 8, W_START, W_END), MATCHER_REJ_FORBIDDEN);
    /* the fee account has no trading role */
    rejected(offer_cmd(MATCHER_FEE_ACCOUNT, P_200, 8, W_START, W_END), MATCHER_REJ_FORBIDDEN);
}

static void test_tif_must_be_known_and_fok_is_for_bids_only(void **state)
{
    (void)state;
    uint32_t p = provider();
    matcher_cmd c = offer_cmd(p, P_200, 8, W_START, W_END);
    c.tif = MATCHER_FOK;
    rejected(c, MATCHER_REJ_BAD_TIF);
    c.tif = 4;
    rejected(c, MATCHER_REJ_BAD_TIF);
    uint32_t b = buyer(1000000000000LL);
    c = bid_cmd(b, P_200, 8, W_START, W_END);
    c.tif = 7;
    rejected(c, MATCHER_REJ_BAD_TIF);
}

static void test_single_provider_is_for_bids_and_must_be_0_or_1(void **state)
{
    (void)state;
    uint32_t p = provider();
    uint32_t b = buyer(1000000000000LL);
    matcher_cmd c = offer_cmd(p, P_200, 8, W_START, W_END);
    c.single_provider = 1;
    rejected(c, MATCHER_REJ_BAD_FLAGS);
    c = bid_cmd(b, P_200, 8, W_START, W_END);
    c.single_provider = 2;
    rejected(c, MATCHER_REJ_BAD_FLAGS);
    c.single_provider = 1;
    place(c);
}

static void test_min_hours_is_for_offers_and_within_the_window(void **state)
{
    (void)state;
    uint32_t p = provider();
    uint32_t b = buyer(1000000000000LL);
    matcher_cmd c = bid_cmd(b, P_200, 8, W_START, W_END);
    c.min_hours = 1;
    rejected(c, MATCHER_REJ_BAD_MIN_HOURS);
    c = offer_cmd(p, P_200, 8, W_START, W_END);
    c.min_hours = 25;
    rejected(c, MATCHER_REJ_BAD_MIN_HOURS);
    c.min_hours = -1;
    rejected(c, MATCHER_REJ_BAD_MIN_HOURS);
    c.min_hours = 24;
    place(c);
}

static void test_expire_at_must_be_after_the_clock_hour(void **state)
{
    (void)state;
    uint32_t p = provider();
    ok(clock_cmd(50));
    matcher_cmd c = offer_cmd(p, P_200, 8, W_START, W_END);
    c.expire_at_hour = 50;
    rejected(c, MATCHER_REJ_BAD_EXPIRY);
    c.expire_at_hour = 49;
    rejected(c, MATCHER_REJ_BAD_EXPIRY);
    c.expire_at_hour = -5;
    rejected(c, MATCHER_REJ_BAD_EXPIRY);
    c.expire_at_hour = 51;
    uint64_t id = place(c);
    assert_int_equal(order_view(id).info.expire_at_hour, 51);
}

static void test_validation_order_first_failure_wins(void **state)
{
    (void)state;
    uint32_t p = provider();
    uint32_t b = buyer(1); /* cannot afford anything */
    /* unknown account before unknown market */
    matcher_cmd c = offer_cmd(77, 0, 0, 5, 1);
    c.market = 9;
    rejected(c, MATCHER_REJ_UNKNOWN_ACCOUNT);
    /* unknown market before bad side */
    c = offer_cmd(p, 0, 0, 5, 1);
    c.market = 9;
    c.side = 9;
    rejected(c, MATCHER_REJ_UNKNOWN_MARKET);
    /* bad side before role */
    c = offer_cmd(b, 0, 0, 5, 1);
    c.side = 9;
    rejected(c, MATCHER_REJ_BAD_SIDE);
    /* role before tif */
    c = offer_cmd(b, 0, 0, 5, 1);
    c.tif = MATCHER_FOK;
    rejected(c, MATCHER_REJ_FORBIDDEN);
    /* tif before flags */
    c = offer_cmd(p, 0, 0, 5, 1);
    c.tif = 9;
    c.single_provider = 1;
    rejected(c, MATCHER_REJ_BAD_TIF);
    /* flags before qty */
    c = offer_cmd(p, 0, 0, 5, 1);
    c.single_provider = 1;
    rejected(c, MATCHER_REJ_BAD_FLAGS);
    /* qty before price */
    rejected(offer_cmd(p, 0, 0, 5, 1), MATCHER_REJ_BAD_QTY);
    /* price before window */
    rejected(offer_cmd(p, 0, 8, 5, 1), MATCHER_REJ_BAD_PRICE);
    /* window before min_hours */
    c = offer_cmd(p, P_200, 8, 5, 1);
    c.min_hours = -1;
    rejected(c, MATCHER_REJ_BAD_WINDOW);
    /* min_hours before expiry */
    c = offer_cmd(p, P_200, 8, W_START, W_END);
    c.min_hours = 99;
    c.expire_at_hour = -1;
    rejected(c, MATCHER_REJ_BAD_MIN_HOURS);
    /* expiry before funds */
    c = bid_cmd(b, P_200, 8, W_START, W_END);
    c.expire_at_hour = -1;
    rejected(c, MATCHER_REJ_BAD_EXPIRY);
    rejected(bid_cmd(b, P_200, 8, W_START, W_END), MATCHER_REJ_INSUFFICIENT_FUNDS);
}

static void test_rejected_command_emits_one_event_and_changes_nothing(void **state)
{
    (void)state;
    uint32_t p = provider();
    uint32_t b = buyer(500000000LL);
    offer(p, P_200, 8, W_START, W_END);
    uint64_t hash = matcher_state_hash(E);
    uint64_t next_order = matcher_next_order_id(E);
    uint32_t orders = matcher_order_count(E);
    rejected(bid_cmd(b, P_200, 12, W_START, W_END), MATCHER_REJ_BAD_QTY);
    rejected(bid_cmd(b, P_235, 16, W_START, W_END), MATCHER_REJ_INSUFFICIENT_FUNDS);
    rejected(cancel_cmd(b, 12345), MATCHER_REJ_UNKNOWN_ORDER);
    rejected(money_cmd(MATCHER_CMD_WITHDRAW, b, 500000001LL), MATCHER_REJ_INSUFFICIENT_FUNDS);
    assert_int_equal(matcher_state_hash(E), hash);
    assert_int_equal(matcher_next_order_id(E), next_order);
    assert_int_equal(matcher_order_count(E), orders);
    expect_balance(b, 500000000LL, 0);
}

static void test_unknown_command_type_is_rejected(void **state)
{
    (void)state;
    matcher_cmd c;
    memset(&c, 0, sizeof c);
    c.type = 0;
    rejected(c, MATCHER_REJ_BAD_COMMAND);
    c.type = 99;
    rejected(c, MATCHER_REJ_BAD_COMMAND);
}

/* ================================================================== */
/* Accounts, deposits, withdrawals, conservation                        */
/* ================================================================== */

static void test_accounts_get_sequential_ids_after_the_fee_account(void **state)
{
    (void)state;
    matcher_account_view v;
    assert_int_equal(matcher_account_get(E, MATCHER_FEE_ACCOUNT, &v), 0);
    assert_int_equal(v.balance_micros, 0);
    assert_int_equal(matcher_account_count(E), 1);
    assert_int_equal(new_account(MATCHER_ROLE_BUYER), 1);
    assert_int_equal(LOG.ev[0].u.account.roles, MATCHER_ROLE_BUYER);
    assert_int_equal(new_account(ALL_ROLES | MATCHER_ROLE_ADMIN), 2);
    assert_int_equal(LOG.ev[0].u.account.roles, ALL_ROLES | MATCHER_ROLE_ADMIN);
    assert_int_equal(new_account(MATCHER_ROLE_PROVIDER), 3);
    assert_int_equal(matcher_account_count(E), 4);
    assert_int_equal(matcher_account_get(E, 2, &v), 0);
    assert_int_equal(v.roles, ALL_ROLES | MATCHER_ROLE_ADMIN);
    assert_int_equal(matcher_account_get(E, 4, &v), -1);
}

static void test_account_roles_must_be_known_bits(void **state)
{
    (void)state;
    matcher_cmd c;
    memset(&c, 0, sizeof c);
    c.type = MATCHER_CMD_CREATE_ACCOUNT;
    c.roles = 8;
    rejected(c, MATCHER_REJ_BAD_ROLES);
    c.roles = MATCHER_ROLE_BUYER | 0x100;
    rejected(c, MATCHER_REJ_BAD_ROLES);
    assert_int_equal(matcher_account_count(E), 1);
}

static void test_deposit_credits_balance_with_events(void **state)
{
    (void)state;
    uint32_t a = new_account(MATCHER_ROLE_BUYER);
    deposit(a, 1234500000LL);
    EXPECT_TYPES(MATCHER_EV_DEPOSIT, MATCHER_EV_BALANCE);
    assert_int_equal(LOG.ev[0].u.transfer.account, a);
    assert_int_equal(LOG.ev[0].u.transfer.amount_micros, 1234500000LL);
    expect_balance_ev(&LOG.ev[1], a, 1234500000LL, 0);
    deposit(a, 1);
    expect_balance_ev(&LOG.ev[1], a, 1234500001LL, 0);
    expect_balance(a, 1234500001LL, 0);
}

static void test_deposit_amount_must_be_positive_and_at_most_1e9_dollars(void **state)
{
    (void)state;
    uint32_t a = new_account(MATCHER_ROLE_BUYER);
    rejected(money_cmd(MATCHER_CMD_DEPOSIT, a, 0), MATCHER_REJ_BAD_AMOUNT);
    rejected(money_cmd(MATCHER_CMD_DEPOSIT, a, -5), MATCHER_REJ_BAD_AMOUNT);
    rejected(money_cmd(MATCHER_CMD_DEPOSIT, a, MATCHER_MAX_AMOUNT_MICROS + 1),
             MATCHER_REJ_BAD_AMOUNT);
    rejected(money_cmd(MATCHER_CMD_DEPOSIT, 55, 100), MATCHER_REJ_UNKNOWN_ACCOUNT);
    deposit(a, MATCHER_MAX_AMOUNT_MICROS);
    expect_balance(a, MATCHER_MAX_AMOUNT_MICROS, 0);
}

static void test_deposit_cannot_pass_the_balance_limit(void **state)
{
    (void)state;
    uint32_t a = new_account(MATCHER_ROLE_BUYER);
    for (int i = 0; i < 100; i++) /* 100 x $1e9 = $1e11, exactly the limit */
        deposit(a, MATCHER_MAX_AMOUNT_MICROS);
    expect_balance(a, MATCHER_MAX_BALANCE_MICROS, 0);
    rejected(money_cmd(MATCHER_CMD_DEPOSIT, a, 1), MATCHER_REJ_BALANCE_LIMIT);
}

static void test_withdrawal_debits_balance_with_events(void **state)
{
    (void)state;
    uint32_t a = buyer(1000000000LL);
    ok(money_cmd(MATCHER_CMD_WITHDRAW, a, 300000000LL));
    EXPECT_TYPES(MATCHER_EV_WITHDRAWAL, MATCHER_EV_BALANCE);
    assert_int_equal(LOG.ev[0].u.transfer.account, a);
    assert_int_equal(LOG.ev[0].u.transfer.amount_micros, 300000000LL);
    expect_balance_ev(&LOG.ev[1], a, 700000000LL, 0);
    rejected(money_cmd(MATCHER_CMD_WITHDRAW, a, 0), MATCHER_REJ_BAD_AMOUNT);
    rejected(money_cmd(MATCHER_CMD_WITHDRAW, 42, 1), MATCHER_REJ_UNKNOWN_ACCOUNT);
    ok(money_cmd(MATCHER_CMD_WITHDRAW, a, 700000000LL)); /* down to zero */
    expect_balance(a, 0, 0);
}

static void test_withdrawal_never_takes_more_than_available(void **state)
{
    (void)state;
    uint32_t b = buyer(1000000000LL); /* $1000 */
    bid(b, P_235, 8, W_START, W_END);  /* hold 451,651,200 */
    expect_balance(b, 1000000000LL, 451651200LL);
    /* available = 548,348,800 */
    rejected(money_cmd(MATCHER_CMD_WITHDRAW, b, 548348801LL), MATCHER_REJ_INSUFFICIENT_FUNDS);
    rejected(money_cmd(MATCHER_CMD_WITHDRAW, b, 1000000000LL), MATCHER_REJ_INSUFFICIENT_FUNDS);
    ok(money_cmd(MATCHER_CMD_WITHDRAW, b, 548348800LL));
    expect_balance(b, 451651200LL, 451651200LL);
}

static void test_money_is_conserved_through_trades_fees_and_withdrawals(void **state)
{
    (void)state;
    uint32_t p = provider();
    uint32_t b = buyer(2000000000LL);
    offer(p, P_200, 16, W_START, W_END);
    bid(b, P_235, 8, W_START, W_END); /* trade 8 @ 2.00 x 24h */
    ok(money_cmd(MATCHER_CMD_WITHDRAW, p, 100000000LL));
    ok(money_cmd(MATCHER_CMD_WITHDRAW, MATCHER_FEE_ACCOUNT, 384000LL));
    int64_t dep, wd;
    matcher_totals(E, &dep, &wd);
    assert_int_equal(dep, 2000000000LL);
    assert_int_equal(wd, 100384000LL);
    /* buyer: 2000 - 384 - 0.384; provider: 384 - 100; fee: 0.384 - 0.384 */
    expect_balance(b, 2000000000LL - 384000000LL - 384000LL, 0);
    expect_balance(p, 284000000LL, 0);
    expect_balance(MATCHER_FEE_ACCOUNT, 0, 0);
}

/* ================================================================== */
/* Holds                                                                */
/* ================================================================== */

static void test_bid_hold_is_notional_plus_the_largest_fee(void **state)
{
    (void)state;
    uint32_t b = buyer(1000000000LL);
    uint64_t id = bid(b, P_235, 8, W_START, W_END);
    /* 2.35 x 8 GPUs x 24 h = 451.20; fee 10 bps = 0.4512 */
    assert_int_equal(LOG.ev[0].u.order.hold_micros, 451651200LL);
    EXPECT_TYPES(MATCHER_EV_ACCEPTED, MATCHER_EV_BALANCE);
    expect_balance_ev(&LOG.ev[1], b, 1000000000LL, 451651200LL);
    assert_int_equal(order_view(id).info.hold_micros, 451651200LL);
    matcher_account_view v;
    matcher_account_get(E, b, &v);
    assert_int_equal(v.open_orders, 1);
}

static void test_bid_rejected_when_available_does_not_cover_hold(void **state)
{
    (void)state;
    uint32_t b = buyer(451651199LL);
    rejected(bid_cmd(b, P_235, 8, W_START, W_END), MATCHER_REJ_INSUFFICIENT_FUNDS);
    deposit(b, 1);
    bid(b, P_235, 8, W_START, W_END); /* exactly the hold */
    expect_balance(b, 451651200LL, 451651200LL);
    /* nothing left: a second bid of one tick-hour is refused */
    rejected(bid_cmd(b, 100, 8, W_START, W_START + 1), MATCHER_REJ_INSUFFICIENT_FUNDS);
}

static void test_hold_uses_the_larger_of_maker_and_taker_fees(void **state)
{
    (void)state;
    matcher_config cfg;
    small_config(&cfg);
    cfg.maker_fee_bps = 25;
    cfg.taker_fee_bps = 10;
    make_engine(&cfg);
    uint32_t b = buyer(1000000000LL);
    bid(b, P_235, 8, W_START, W_END);
    /* 451,200,000 + 25 bps = 1,128,000 */
    assert_int_equal(LOG.ev[0].u.order.hold_micros, 452328000LL);
    expect_balance(b, 1000000000LL, 452328000LL);
}

static void test_hold_fee_rounds_down(void **state)
{
    (void)state;
    uint32_t b = buyer(1000000000LL);
    /* $0.0137 x 8 x 1 h = 109,600 micros; 10 bps = 109.6 -> 109 */
    bid(b, 13700, 8, W_START, W_START + 1);
    assert_int_equal(LOG.ev[0].u.order.hold_micros, 109709LL);
}

static void test_hold_released_on_cancel(void **state)
{
    (void)state;
    uint32_t b = buyer(1000000000LL);
    uint64_t id = bid(b, P_235, 8, W_START, W_END);
    ok(cancel_cmd(b, id));
    EXPECT_TYPES(MATCHER_EV_DONE, MATCHER_EV_BALANCE);
    expect_done_ev(&LOG.ev[0], id, MATCHER_DONE_CANCELLED);
    assert_int_equal(LOG.ev[0].u.done.remaining_qty, 8);
    expect_balance_ev(&LOG.ev[1], b, 1000000000LL, 0);
    assert_false(resting(id));
}

static void test_hold_released_on_expiry(void **state)
{
    (void)state;
    uint32_t b = buyer(1000000000LL);
    uint64_t id = bid(b, P_235, 8, W_START, W_END);
    ok(clock_cmd(W_START));
    EXPECT_TYPES(MATCHER_EV_CLOCK, MATCHER_EV_DONE, MATCHER_EV_BALANCE);
    expect_done_ev(&LOG.ev[1], id, MATCHER_DONE_EXPIRED);
    expect_balance_ev(&LOG.ev[2], b, 1000000000LL, 0);
}

static void test_hold_released_on_fill_at_a_better_price(void **state)
{
    (void)state;
    uint32_t p = provider();
    uint32_t b = buyer(1000000000LL);
    offer(p, P_200, 8, W_START, W_END);
    bid(b, P_235, 8, W_START, W_END);
    /* pays 2.00 x 8 x 24 = 384.00 + 0.384 taker fee, hold back to 0 */
    expect_balance(b, 1000000000LL - 384384000LL, 0);
    const matcher_event *bal = nth(MATCHER_EV_BALANCE, 1); /* after the fill */
    expect_balance_ev(bal, b, 1000000000LL - 384384000LL, 0);
}

static void test_hold_recomputed_for_remainder_after_partial_fill(void **state)
{
    (void)state;
    uint32_t p = provider();
    uint32_t b = buyer(2000000000LL);
    uint64_t o = offer(p, P_200, 16, W_START, W_END);
    matcher_cmd c = bid_cmd(b, P_235, 24, W_START, W_END);
    c.min_qty = 8;
    uint64_t id = place(c);
    /* hold for 24: 2.35 x 24 x 24 = 1353.60 + 1.3536 */
    assert_int_equal(LOG.ev[0].u.order.hold_micros, 1354953600LL);
    /* filled 16 @ 2.00 x 24 h = 768.00 + 0.768; hold for 8 left = 451.6512 */
    expect_balance(b, 2000000000LL - 768768000LL, 451651200LL);
    matcher_order_view v = order_view(id);
    assert_int_equal(v.filled_qty, 16);
    assert_int_equal(v.remaining_qty, 8);
    assert_int_equal(v.info.hold_micros, 451651200LL);
    assert_false(resting(o));
}

/* ================================================================== */
/* Offers: divisible, per-hour capacity                                 */
/* ================================================================== */

static void test_offer_keeps_remaining_capacity_hour_by_hour(void **state)
{
    (void)state;
    uint32_t p = provider();
    uint32_t b = buyer(10000000000LL);
    uint64_t o = offer(p, P_200, 16, 100, 148);
    bid(b, P_200, 8, 110, 120);
    expect_capacity(o, 100, 110, 16);
    expect_capacity(o, 110, 120, 8);
    expect_capacity(o, 120, 148, 16);
    expect_capacity(o, 90, 100, 0); /* outside the window */
    expect_capacity(o, 148, 150, 0);
    assert_int_equal(matcher_offer_avail(E, o, 100, 148), 8);
    assert_int_equal(matcher_offer_avail(E, o, 120, 148), 16);
    assert_int_equal(matcher_offer_avail(E, o, 90, 110), 0);
    assert_int_equal(order_view(o).remaining_qty, 16);
}

static void test_offer_sells_different_windows_to_different_bids(void **state)
{
    (void)state;
    uint32_t p = provider();
    uint32_t b1 = buyer(10000000000LL);
    uint32_t b2 = buyer(10000000000LL);
    uint64_t o = offer(p, P_200, 16, 100, 148);
    bid(b1, P_200, 16, 100, 124);
    bid(b2, P_200, 8, 124, 148);
    expect_capacity(o, 100, 124, 0);
    expect_capacity(o, 124, 148, 8);
    assert_true(resting(o)); /* hours 124..147 still have 8 */
    uint32_t b3 = buyer(10000000000LL);
    bid(b3, P_200, 8, 130, 140);
    expect_capacity(o, 124, 130, 8);
    expect_capacity(o, 130, 140, 0);
    expect_capacity(o, 140, 148, 8);
    assert_int_equal(count_type(MATCHER_EV_TRADE), 1);
}

static void test_offer_done_when_every_open_hour_is_sold(void **state)
{
    (void)state;
    uint32_t p = provider();
    uint32_t b = buyer(10000000000LL);
    uint64_t o = offer(p, P_200, 8, 100, 148);
    bid(b, P_200, 8, 100, 124);
    assert_true(resting(o));
    bid(b, P_200, 8, 124, 148);
    /* DONE(filled) for the offer, then the incoming bid's DONE last */
    int n = LOG.n;
    expect_done_ev(&LOG.ev[n - 2], o, MATCHER_DONE_FILLED);
    assert_int_equal(LOG.ev[n - 1].u.done.reason, MATCHER_DONE_FILLED);
    assert_false(resting(o));
    assert_int_equal(matcher_offer_capacity(E, o, 130), 0);
}

/* ================================================================== */
/* Bids: whole window, AON, min_qty, single_provider                    */
/* ================================================================== */

static void test_bid_fill_needs_one_offer_covering_the_whole_window(void **state)
{
    (void)state;
    uint32_t p = provider();
    uint32_t b = buyer(10000000000LL);
    uint64_t o1 = offer(p, P_200, 8, 100, 112);
    uint64_t o2 = offer(p, P_200, 8, 112, 124);
    /* the two offers together cover [100,124) but neither alone does */
    uint64_t id = bid(b, P_235, 8, 100, 124);
    assert_int_equal(count_type(MATCHER_EV_TRADE), 0);
    assert_true(resting(id));
    expect_capacity(o1, 100, 112, 8);
    expect_capacity(o2, 112, 124, 8);
}

static void test_bid_fills_from_several_offers_each_for_the_whole_window(void **state)
{
    (void)state;
    uint32_t p1 = provider(), p2 = provider();
    uint32_t b = buyer(10000000000LL);
    uint64_t o1 = offer(p1, P_200, 8, 90, 130);
    uint64_t o2 = offer(p2, P_210, 8, 100, 124);
    uint64_t id = bid(b, P_235, 16, W_START, W_END);
    assert_int_equal(count_type(MATCHER_EV_TRADE), 2);
    expect_fill(&nth(MATCHER_EV_TRADE, 0)->u.fill, id, o1, P_200, 8, W_START, W_END);
    expect_fill(&nth(MATCHER_EV_TRADE, 1)->u.fill, id, o2, P_210, 8, W_START, W_END);
    expect_capacity(o1, 90, 100, 8);
    expect_capacity(o1, 100, 124, 0);
    expect_capacity(o1, 124, 130, 8);
    assert_false(resting(id));
}

static void test_bid_all_or_none_waits_for_whole_quantity(void **state)
{
    (void)state;
    uint32_t p = provider();
    uint32_t b = buyer(10000000000LL);
    uint64_t o = offer(p, P_200, 8, W_START, W_END);
    uint64_t id = bid(b, P_235, 16, W_START, W_END);
    EXPECT_TYPES(MATCHER_EV_ACCEPTED, MATCHER_EV_BALANCE);
    assert_true(resting(id));
    assert_int_equal(order_view(id).filled_qty, 0);
    expect_capacity(o, W_START, W_END, 8);
}

static void test_resting_aon_bid_fills_when_new_offer_completes_it(void **state)
{
    (void)state;
    uint32_t p1 = provider(), p2 = provider();
    uint32_t b = buyer(2000000000LL);
    uint64_t o1 = offer(p1, P_200, 8, W_START, W_END);
    uint64_t x = bid(b, P_235, 16, W_START, W_END); /* waits: only 8 */
    uint64_t o2 = offer(p2, P_190, 8, W_START, W_END);
    EXPECT_TYPES(MATCHER_EV_ACCEPTED,
                 MATCHER_EV_TRADE, MATCHER_EV_LEASE, MATCHER_EV_BALANCE, MATCHER_EV_BALANCE,
                 MATCHER_EV_BALANCE,
                 MATCHER_EV_TRADE, MATCHER_EV_LEASE, MATCHER_EV_BALANCE, MATCHER_EV_BALANCE,
                 MATCHER_EV_BALANCE,
                 MATCHER_EV_DONE, MATCHER_EV_DONE, MATCHER_EV_DONE);
    /* plan in offer priority: o2 (1.90) first, then o1 (2.00) */
    const matcher_fill_info *f1 = &LOG.ev[1].u.fill;
    const matcher_fill_info *f2 = &LOG.ev[6].u.fill;
    /* x rested before o2: x's price; o2 arrived: o2 is the taker */
    expect_fill(f1, x, o2, P_235, 8, W_START, W_END);
    assert_int_equal(f1->taker_side, MATCHER_SELL);
    expect_money(f1, 451200000LL, 0, 451200LL, 0);
    /* o1 rested before x: o1's price; the bid is the taker */
    expect_fill(f2, x, o1, P_200, 8, W_START, W_END);
    assert_int_equal(f2->taker_side, MATCHER_BUY);
    expect_money(f2, 384000000LL, 384000LL, 0, 67200000LL);
    expect_done_ev(&LOG.ev[11], x, MATCHER_DONE_FILLED);
    expect_done_ev(&LOG.ev[12], o1, MATCHER_DONE_FILLED);
    expect_done_ev(&LOG.ev[13], o2, MATCHER_DONE_FILLED);
    expect_balance(b, 2000000000LL - 451200000LL - 384000000LL - 384000LL, 0);
    expect_balance(p2, 451200000LL - 451200LL, 0);
    expect_balance(p1, 384000000LL, 0);
    expect_balance(MATCHER_FEE_ACCOUNT, 451200LL + 384000LL, 0);
}

static void test_bid_min_qty_allows_partial_fills(void **state)
{
    (void)state;
    uint32_t p = provider();
    uint32_t b = buyer(10000000000LL);
    offer(p, P_200, 16, W_START, W_END);
    matcher_cmd c = bid_cmd(b, P_235, 24, W_START, W_END);
    c.min_qty = 8;
    uint64_t id = place(c);
    assert_int_equal(count_type(MATCHER_EV_TRADE), 1);
    assert_int_equal(nth(MATCHER_EV_TRADE, 0)->u.fill.qty, 16);
    matcher_order_view v = order_view(id);
    assert_int_equal(v.filled_qty, 16);
    assert_int_equal(v.remaining_qty, 8);
    /* a later offer fills the remainder */
    offer(p, P_230, 8, W_START, W_END);
    assert_int_equal(count_type(MATCHER_EV_TRADE), 1);
    assert_false(resting(id));
}

static void test_bid_min_qty_refuses_smaller_fills(void **state)
{
    (void)state;
    uint32_t p = provider();
    uint32_t b = buyer(10000000000LL);
    uint64_t o = offer(p, P_200, 8, W_START, W_END);
    matcher_cmd c = bid_cmd(b, P_235, 24, W_START, W_END);
    c.min_qty = 16;
    uint64_t id = place(c);
    assert_int_equal(count_type(MATCHER_EV_TRADE), 0);
    expect_capacity(o, W_START, W_END, 8);
    /* two 8-GPU offers are two fills of 8: still each below 16 */
    offer(p, P_200, 8, W_START, W_END);
    assert_int_equal(count_type(MATCHER_EV_TRADE), 0);
    assert_int_equal(order_view(id).filled_qty, 0);
}

static void test_bid_min_qty_last_remainder_may_be_smaller(void **state)
{
    (void)state;
    uint32_t p = provider();
    uint32_t b = buyer(10000000000LL);
    matcher_cmd c = bid_cmd(b, P_235, 24, W_START, W_END);
    c.min_qty = 16;
    uint64_t id = place(c);
    offer(p, P_200, 16, W_START, W_END);
    assert_int_equal(order_view(id).remaining_qty, 8);
    /* 8 left < min_qty 16: a fill of the whole remainder is allowed */
    offer(p, P_200, 8, W_START, W_END);
    assert_int_equal(count_type(MATCHER_EV_TRADE), 1);
    assert_int_equal(nth(MATCHER_EV_TRADE, 0)->u.fill.qty, 8);
    assert_false(resting(id));
}

static void test_single_provider_bid_fills_from_one_provider_only(void **state)
{
    (void)state;
    uint32_t p1 = provider(), p2 = provider();
    uint32_t b = buyer(10000000000LL);
    offer(p1, P_200, 8, W_START, W_END);
    offer(p2, P_200, 8, W_START, W_END);
    matcher_cmd c = bid_cmd(b, P_235, 16, W_START, W_END);
    c.single_provider = 1;
    uint64_t id = place(c);
    assert_int_equal(count_type(MATCHER_EV_TRADE), 0); /* 8 + 8 from two providers */
    uint64_t o3 = offer(p2, P_210, 8, W_START, W_END); /* p2 now has 16 */
    assert_int_equal(count_type(MATCHER_EV_TRADE), 2);
    for (int i = 0; i < 2; i++) {
        const matcher_fill_info *f = &nth(MATCHER_EV_TRADE, i)->u.fill;
        assert_int_equal(f->provider, p2);
        assert_int_equal(f->buy_order_id, id);
    }
    assert_int_equal(nth(MATCHER_EV_TRADE, 1)->u.fill.sell_order_id, o3);
    assert_false(resting(id));
}

static void test_single_provider_partial_bid_locks_to_first_provider(void **state)
{
    (void)state;
    uint32_t p1 = provider(), p2 = provider();
    uint32_t b = buyer(10000000000LL);
    matcher_cmd c = bid_cmd(b, P_235, 24, W_START, W_END);
    c.min_qty = 8;
    c.single_provider = 1;
    uint64_t id = place(c);
    offer(p1, P_200, 8, W_START, W_END);
    assert_int_equal(count_type(MATCHER_EV_TRADE), 1);
    assert_int_equal(order_view(id).provider_lock, p1);
    uint64_t o2 = offer(p2, P_190, 16, W_START, W_END); /* cheaper, wrong provider */
    assert_int_equal(count_type(MATCHER_EV_TRADE), 0);
    expect_capacity(o2, W_START, W_END, 16);
    offer(p1, P_210, 16, W_START, W_END);
    assert_int_equal(count_type(MATCHER_EV_TRADE), 1);
    assert_int_equal(nth(MATCHER_EV_TRADE, 0)->u.fill.provider, p1);
    assert_false(resting(id));
}

static void test_offer_min_qty_refuses_smaller_fills(void **state)
{
    (void)state;
    uint32_t p = provider();
    uint32_t b = buyer(10000000000LL);
    matcher_cmd c = offer_cmd(p, P_200, 32, W_START, W_END);
    c.min_qty = 16;
    uint64_t o = place(c);
    uint64_t small = bid(b, P_235, 8, W_START, W_END);
    assert_int_equal(count_type(MATCHER_EV_TRADE), 0);
    assert_true(resting(small));
    bid(b, P_235, 16, W_START, W_END);
    assert_int_equal(count_type(MATCHER_EV_TRADE), 1);
    expect_capacity(o, W_START, W_END, 16);
}

static void test_offer_min_hours_refuses_shorter_windows(void **state)
{
    (void)state;
    uint32_t p = provider();
    uint32_t b = buyer(10000000000LL);
    matcher_cmd c = offer_cmd(p, P_200, 16, 100, 200);
    c.min_hours = 24;
    uint64_t o = place(c);
    uint64_t short_bid = bid(b, P_235, 8, 100, 123);
    assert_int_equal(count_type(MATCHER_EV_TRADE), 0);
    assert_true(resting(short_bid));
    bid(b, P_235, 8, 150, 174);
    assert_int_equal(count_type(MATCHER_EV_TRADE), 1);
    expect_capacity(o, 150, 174, 8);
}

/* ================================================================== */
/* Time in force                                                        */
/* ================================================================== */

static void test_gtc_rests_until_filled(void **state)
{
    (void)state;
    uint32_t p = provider();
    uint32_t b = buyer(10000000000LL);
    uint64_t id = bid(b, P_235, 8, W_START, W_END);
    EXPECT_TYPES(MATCHER_EV_ACCEPTED, MATCHER_EV_BALANCE);
    assert_true(resting(id));
    ok(clock_cmd(W_START - 1));
    assert_true(resting(id));
    offer(p, P_235, 8, W_START, W_END);
    assert_int_equal(count_type(MATCHER_EV_TRADE), 1);
    assert_false(resting(id));
}

static void test_ioc_fills_what_it_can_and_cancels_the_rest(void **state)
{
    (void)state;
    uint32_t p = provider();
    uint32_t b = buyer(10000000000LL);
    offer(p, P_200, 16, W_START, W_END);
    matcher_cmd c = bid_cmd(b, P_235, 24, W_START, W_END);
    c.min_qty = 8;
    c.tif = MATCHER_IOC;
    uint64_t id = place(c);
    EXPECT_TYPES(MATCHER_EV_ACCEPTED, MATCHER_EV_BALANCE, MATCHER_EV_TRADE, MATCHER_EV_LEASE,
                 MATCHER_EV_BALANCE, MATCHER_EV_BALANCE, MATCHER_EV_BALANCE, MATCHER_EV_DONE,
                 MATCHER_EV_DONE, MATCHER_EV_BALANCE);
    assert_int_equal(LOG.ev[2].u.fill.qty, 16);
    expect_done_ev(&LOG.ev[8], id, MATCHER_DONE_UNFILLED);
    assert_int_equal(LOG.ev[8].u.done.remaining_qty, 8);
    /* 16 @ 2.00 x 24 = 768.00 + 0.768 fee; the hold of the 8 left is released */
    expect_balance_ev(&LOG.ev[9], b, 10000000000LL - 768768000LL, 0);
    assert_false(resting(id));
}

static void test_ioc_all_or_none_bid_fills_entirely_or_not_at_all(void **state)
{
    (void)state;
    uint32_t p = provider();
    uint32_t b = buyer(10000000000LL);
    uint64_t o = offer(p, P_200, 8, W_START, W_END);
    matcher_cmd c = bid_cmd(b, P_235, 16, W_START, W_END);
    c.tif = MATCHER_IOC;
    uint64_t id = place(c);
    EXPECT_TYPES(MATCHER_EV_ACCEPTED, MATCHER_EV_BALANCE, MATCHER_EV_DONE, MATCHER_EV_BALANCE);
    expect_done_ev(&LOG.ev[2], id, MATCHER_DONE_UNFILLED);
    assert_int_equal(LOG.ev[2].u.done.remaining_qty, 16);
    expect_balance(b, 10000000000LL, 0);
    expect_capacity(o, W_START, W_END, 8);
}

static void test_ioc_offer_sells_what_it_can_and_leaves(void **state)
{
    (void)state;
    uint32_t p = provider();
    uint32_t b = buyer(10000000000LL);
    uint64_t x = bid(b, P_235, 8, W_START, W_END);
    matcher_cmd c = offer_cmd(p, P_200, 16, W_START, W_END);
    c.tif = MATCHER_IOC;
    uint64_t o = place(c);
    assert_int_equal(count_type(MATCHER_EV_TRADE), 1);
    /* the bid rested first: the trade is at the bid's price */
    expect_fill(&nth(MATCHER_EV_TRADE, 0)->u.fill, x, o, P_235, 8, W_START, W_END);
    expect_done_ev(&LOG.ev[LOG.n - 1], o, MATCHER_DONE_UNFILLED);
    assert_false(resting(o));
}

static void test_fok_fills_all_now_or_nothing(void **state)
{
    (void)state;
    uint32_t p = provider();
    uint32_t b = buyer(10000000000LL);
    uint64_t o1 = offer(p, P_200, 8, W_START, W_END);
    matcher_cmd c = bid_cmd(b, P_235, 16, W_START, W_END);
    c.tif = MATCHER_FOK;
    c.min_qty = 8; /* fok is all-or-none even with min_qty */
    uint64_t id = place(c);
    assert_int_equal(count_type(MATCHER_EV_TRADE), 0);
    expect_done_ev(nth(MATCHER_EV_DONE, 0), id, MATCHER_DONE_UNFILLED);
    expect_capacity(o1, W_START, W_END, 8);
    expect_balance(b, 10000000000LL, 0);
    offer(p, P_200, 8, W_START, W_END);
    c = bid_cmd(b, P_235, 16, W_START, W_END);
    c.tif = MATCHER_FOK;
    id = place(c);
    assert_int_equal(count_type(MATCHER_EV_TRADE), 2);
    expect_done_ev(&LOG.ev[LOG.n - 1], id, MATCHER_DONE_FILLED);
}

static void test_post_only_rejected_when_it_would_match(void **state)
{
    (void)state;
    uint32_t p = provider();
    uint32_t b = buyer(10000000000LL);
    uint64_t o = offer(p, P_200, 8, W_START, W_END);
    matcher_cmd c = bid_cmd(b, P_235, 8, W_START, W_END);
    c.tif = MATCHER_POST_ONLY;
    rejected(c, MATCHER_REJ_WOULD_MATCH);
    expect_balance(b, 10000000000LL, 0);
    expect_capacity(o, W_START, W_END, 8);
    /* the same for an offer meeting a resting bid */
    bid(b, P_190, 8, W_START, W_END);
    matcher_cmd s = offer_cmd(p, P_190, 8, W_START, W_END);
    s.tif = MATCHER_POST_ONLY;
    rejected(s, MATCHER_REJ_WOULD_MATCH);
}

static void test_post_only_rests_when_it_would_not_match(void **state)
{
    (void)state;
    uint32_t p = provider();
    uint32_t b = buyer(10000000000LL);
    offer(p, P_235, 8, W_START, W_END);
    matcher_cmd c = bid_cmd(b, P_230, 8, W_START, W_END);
    c.tif = MATCHER_POST_ONLY;
    uint64_t id = place(c);
    EXPECT_TYPES(MATCHER_EV_ACCEPTED, MATCHER_EV_BALANCE);
    assert_true(resting(id));
    /* an AON bid that could only partly fill would not trade: it rests */
    matcher_cmd d = bid_cmd(b, P_235, 16, W_START, W_END);
    d.tif = MATCHER_POST_ONLY;
    uint64_t id2 = place(d);
    assert_int_equal(count_type(MATCHER_EV_TRADE), 0);
    assert_true(resting(id2));
}

static void test_expire_at_ends_a_resting_order_early(void **state)
{
    (void)state;
    uint32_t p = provider();
    uint32_t b = buyer(10000000000LL);
    matcher_cmd c = bid_cmd(b, P_235, 8, W_START, W_END);
    c.expire_at_hour = 50;
    uint64_t id = place(c);
    matcher_cmd s = offer_cmd(p, P_235, 8, 200, 300);
    s.expire_at_hour = 60;
    uint64_t o = place(s);
    ok(clock_cmd(49));
    EXPECT_TYPES(MATCHER_EV_CLOCK);
    ok(clock_cmd(50));
    EXPECT_TYPES(MATCHER_EV_CLOCK, MATCHER_EV_DONE, MATCHER_EV_BALANCE);
    expect_done_ev(&LOG.ev[1], id, MATCHER_DONE_EXPIRED);
    expect_balance(b, 10000000000LL, 0);
    ok(clock_cmd(60));
    EXPECT_TYPES(MATCHER_EV_CLOCK, MATCHER_EV_DONE);
    expect_done_ev(&LOG.ev[1], o, MATCHER_DONE_EXPIRED);
}

/* ================================================================== */
/* Expiry by the clock                                                  */
/* ================================================================== */

static void test_bid_expires_when_clock_reaches_its_start(void **state)
{
    (void)state;
    uint32_t b = buyer(10000000000LL);
    uint64_t id = bid(b, P_235, 8, W_START, W_END);
    ok(clock_cmd(W_START - 1));
    EXPECT_TYPES(MATCHER_EV_CLOCK);
    assert_int_equal(LOG.ev[0].u.clock.hour, W_START - 1);
    assert_true(resting(id));
    ok(clock_cmd(W_START));
    EXPECT_TYPES(MATCHER_EV_CLOCK, MATCHER_EV_DONE, MATCHER_EV_BALANCE);
    expect_done_ev(&LOG.ev[1], id, MATCHER_DONE_EXPIRED);
    assert_int_equal(LOG.ev[1].u.done.remaining_qty, 8);
    assert_false(resting(id));
}

static void test_bid_starting_this_hour_is_accepted_and_rests_until_next_advance(void **state)
{
    (void)state;
    uint32_t p = provider();
    uint32_t b = buyer(10000000000LL);
    ok(clock_cmd(W_START));
    uint64_t id = bid(b, P_235, 16, W_START, W_END);
    ok(clock_cmd(W_START)); /* same hour: CLOCK only, nothing expires */
    EXPECT_TYPES(MATCHER_EV_CLOCK);
    assert_true(resting(id));
    /* it can still trade this hour */
    offer(p, P_200, 16, W_START, W_END);
    assert_int_equal(count_type(MATCHER_EV_TRADE), 1);
    uint64_t id2 = bid(b, P_235, 8, W_START, W_END);
    ok(clock_cmd(W_START + 1));
    EXPECT_TYPES(MATCHER_EV_CLOCK, MATCHER_EV_DONE, MATCHER_EV_BALANCE);
    expect_done_ev(&LOG.ev[1], id2, MATCHER_DONE_EXPIRED);
}

static void test_offer_loses_each_hour_as_the_clock_passes(void **state)
{
    (void)state;
    uint32_t p = provider();
    uint32_t b = buyer(10000000000LL);
    uint64_t o = offer(p, P_200, 16, 100, 120);
    ok(clock_cmd(110));
    EXPECT_TYPES(MATCHER_EV_CLOCK);
    assert_true(resting(o));
    expect_capacity(o, 100, 110, 0); /* passed hours cannot be sold */
    expect_capacity(o, 110, 120, 16);
    assert_int_equal(matcher_offer_avail(E, o, 105, 115), 0);
    /* the open part still sells */
    bid(b, P_200, 8, 110, 120);
    assert_int_equal(count_type(MATCHER_EV_TRADE), 1);
    expect_capacity(o, 110, 120, 8);
    ok(clock_cmd(119));
    assert_true(resting(o));
    ok(clock_cmd(120));
    EXPECT_TYPES(MATCHER_EV_CLOCK, MATCHER_EV_DONE);
    expect_done_ev(&LOG.ev[1], o, MATCHER_DONE_EXPIRED);
}

static void test_expired_orders_leave_in_expiry_hour_then_id_order(void **state)
{
    (void)state;
    uint32_t p = provider();
    uint32_t b = buyer(10000000000LL);
    uint64_t b1 = bid(b, P_200, 8, 20, 30);  /* expires at 20 */
    uint64_t b2 = bid(b, P_200, 8, 15, 25);  /* expires at 15 */
    uint64_t o3 = offer(p, P_235, 8, 5, 15); /* expires at 15 */
    matcher_cmd c = bid_cmd(b, P_200, 8, 30, 40);
    c.expire_at_hour = 12;
    uint64_t b4 = place(c); /* expires at 12 */
    assert_int_equal(matcher_order_count(E), 4);
    ok(clock_cmd(40));
    EXPECT_TYPES(MATCHER_EV_CLOCK, MATCHER_EV_DONE, MATCHER_EV_BALANCE, MATCHER_EV_DONE,
                 MATCHER_EV_BALANCE, MATCHER_EV_DONE, MATCHER_EV_DONE, MATCHER_EV_BALANCE);
    expect_done_ev(&LOG.ev[1], b4, MATCHER_DONE_EXPIRED);
    expect_done_ev(&LOG.ev[3], b2, MATCHER_DONE_EXPIRED);
    expect_done_ev(&LOG.ev[5], o3, MATCHER_DONE_EXPIRED);
    expect_done_ev(&LOG.ev[6], b1, MATCHER_DONE_EXPIRED);
    expect_balance_ev(&LOG.ev[7], b, 10000000000LL, 0);
    assert_int_equal(matcher_order_count(E), 0);
}

static void test_clock_cannot_move_backwards(void **state)
{
    (void)state;
    ok(clock_cmd(10));
    rejected(clock_cmd(9), MATCHER_REJ_BAD_CLOCK);
    assert_int_equal(matcher_clock_hour(E), 10);
    ok(clock_cmd(10));
    EXPECT_TYPES(MATCHER_EV_CLOCK);
    assert_int_equal(LOG.ev[0].u.clock.hour, 10);
}

/* ================================================================== */
/* Cancel and replace                                                   */
/* ================================================================== */

static void test_cancel_returns_the_unfilled_part(void **state)
{
    (void)state;
    uint32_t p = provider();
    uint32_t b = buyer(10000000000LL);
    matcher_cmd c = bid_cmd(b, P_235, 24, W_START, W_END);
    c.min_qty = 8;
    uint64_t id = place(c);
    uint64_t o = offer(p, P_200, 8, W_START, W_END);
    ok(cancel_cmd(b, id));
    EXPECT_TYPES(MATCHER_EV_DONE, MATCHER_EV_BALANCE);
    expect_done_ev(&LOG.ev[0], id, MATCHER_DONE_CANCELLED);
    assert_int_equal(LOG.ev[0].u.done.remaining_qty, 16);
    /* paid only for the 8 filled: 2.35 (the bid rested first) x 8 x 24 =
     * 451.20; the offer was the taker, so the buyer paid no fee */
    expect_balance_ev(&LOG.ev[1], b, 10000000000LL - 451200000LL, 0);
    (void)o;
    /* an offer cancel gives back all its unsold hours */
    uint64_t o2 = offer(p, P_235, 16, 200, 300);
    ok(cancel_cmd(p, o2));
    EXPECT_TYPES(MATCHER_EV_DONE);
    expect_done_ev(&LOG.ev[0], o2, MATCHER_DONE_CANCELLED);
    expect_capacity(o2, 200, 300, 0);
}

static void test_cancel_only_by_the_owner(void **state)
{
    (void)state;
    uint32_t b = buyer(10000000000LL);
    uint32_t other = buyer(10000000000LL);
    uint64_t id = bid(b, P_235, 8, W_START, W_END);
    rejected(cancel_cmd(other, id), MATCHER_REJ_FORBIDDEN);
    assert_true(resting(id));
    /* cancel checks the order first, then the owner: an account that does
     * not exist owns nothing */
    rejected(cancel_cmd(99, id), MATCHER_REJ_FORBIDDEN);
    rejected(cancel_cmd(99, id + 1000), MATCHER_REJ_UNKNOWN_ORDER);
    assert_int_equal(LOG.ev[0].u.rejected.order_id, id + 1000);
    assert_true(resting(id));
    ok(cancel_cmd(b, id));
}

static void test_cancel_of_unknown_or_closed_order_is_rejected(void **state)
{
    (void)state;
    uint32_t b = buyer(10000000000LL);
    rejected(cancel_cmd(b, 424242), MATCHER_REJ_UNKNOWN_ORDER);
    uint64_t id = bid(b, P_235, 8, W_START, W_END);
    ok(cancel_cmd(b, id));
    rejected(cancel_cmd(b, id), MATCHER_REJ_UNKNOWN_ORDER);
}

static void test_replace_lower_qty_same_price_keeps_priority(void **state)
{
    (void)state;
    uint32_t p1 = provider(), p2 = provider();
    uint32_t b = buyer(10000000000LL);
    uint64_t a = offer(p1, P_200, 16, W_START, W_END);
    uint64_t z = offer(p2, P_200, 16, W_START, W_END);
    uint64_t prio = order_view(a).priority;
    ok(replace_cmd(p1, a, 0, 8));
    EXPECT_TYPES(MATCHER_EV_REPLACED);
    assert_int_equal(LOG.ev[0].u.order.qty, 8);
    assert_int_equal(order_view(a).priority, prio);
    expect_capacity(a, W_START, W_END, 8);
    bid(b, P_235, 8, W_START, W_END);
    expect_fill(&nth(MATCHER_EV_TRADE, 0)->u.fill, LOG.ev[0].u.order.order_id, a, P_200, 8,
                W_START, W_END);
    expect_capacity(z, W_START, W_END, 16);
}

static void test_replace_raising_qty_loses_priority(void **state)
{
    (void)state;
    uint32_t p1 = provider(), p2 = provider();
    uint32_t b = buyer(10000000000LL);
    uint64_t a = offer(p1, P_200, 16, W_START, W_END);
    uint64_t z = offer(p2, P_200, 16, W_START, W_END);
    ok(replace_cmd(p1, a, 0, 24));
    assert_true(order_view(a).priority > order_view(z).priority);
    bid(b, P_235, 8, W_START, W_END);
    assert_int_equal(nth(MATCHER_EV_TRADE, 0)->u.fill.sell_order_id, z);
    expect_capacity(a, W_START, W_END, 24);
}

static void test_replace_changing_price_loses_priority(void **state)
{
    (void)state;
    uint32_t p1 = provider(), p2 = provider();
    uint32_t b = buyer(10000000000LL);
    uint64_t a = offer(p1, P_200, 16, W_START, W_END);
    uint64_t z = offer(p2, P_200, 16, W_START, W_END);
    /* lowering qty together with a price change still loses priority */
    ok(replace_cmd(p1, a, P_210, 8));
    assert_true(order_view(a).priority > order_view(z).priority);
    ok(replace_cmd(p1, a, P_200, 0)); /* back to 2.00: behind z */
    assert_true(order_view(a).priority > order_view(z).priority);
    bid(b, P_235, 8, W_START, W_END);
    assert_int_equal(nth(MATCHER_EV_TRADE, 0)->u.fill.sell_order_id, z);
}

static void test_replace_runs_matching_with_the_order_as_taker(void **state)
{
    (void)state;
    uint32_t p = provider();
    uint32_t b = buyer(10000000000LL);
    uint64_t o = offer(p, P_230, 8, W_START, W_END);
    uint64_t x = bid(b, P_200, 8, W_START, W_END);
    assert_int_equal(count_type(MATCHER_EV_TRADE), 0);
    ok(replace_cmd(b, x, P_235, 0));
    EXPECT_TYPES(MATCHER_EV_REPLACED, MATCHER_EV_BALANCE, MATCHER_EV_TRADE, MATCHER_EV_LEASE,
                 MATCHER_EV_BALANCE, MATCHER_EV_BALANCE, MATCHER_EV_BALANCE, MATCHER_EV_DONE,
                 MATCHER_EV_DONE);
    /* new hold for 2.35 x 8 x 24 */
    assert_int_equal(LOG.ev[0].u.order.price_micros, P_235);
    assert_int_equal(LOG.ev[0].u.order.hold_micros, 451651200LL);
    expect_balance_ev(&LOG.ev[1], b, 10000000000LL, 451651200LL);
    const matcher_fill_info *f = &LOG.ev[2].u.fill;
    expect_fill(f, x, o, P_230, 8, W_START, W_END); /* the offer is earlier */
    assert_int_equal(f->taker_side, MATCHER_BUY);
    /* 2.30 x 8 x 24 = 441.60, taker fee 0.4416, saving 0.05 x 192 = 9.60 */
    expect_money(f, 441600000LL, 441600LL, 0, 9600000LL);
    expect_done_ev(&LOG.ev[7], o, MATCHER_DONE_FILLED);
    expect_done_ev(&LOG.ev[8], x, MATCHER_DONE_FILLED);
}

static void test_replace_must_change_something(void **state)
{
    (void)state;
    uint32_t p = provider();
    uint64_t o = offer(p, P_200, 16, W_START, W_END);
    rejected(replace_cmd(p, o, 0, 0), MATCHER_REJ_BAD_QTY);
    rejected(replace_cmd(p, o, P_200, 16), MATCHER_REJ_BAD_QTY);
    rejected(replace_cmd(p, o, 0, 12), MATCHER_REJ_BAD_QTY);    /* not a lot multiple */
    rejected(replace_cmd(p, o, P_200 + 1, 0), MATCHER_REJ_BAD_PRICE); /* off tick */
    rejected(replace_cmd(p, o, -100, 0), MATCHER_REJ_BAD_PRICE);
    rejected(replace_cmd(p, 999, P_210, 0), MATCHER_REJ_UNKNOWN_ORDER);
    uint32_t other = provider();
    rejected(replace_cmd(other, o, P_210, 0), MATCHER_REJ_FORBIDDEN);
}

static void test_replace_bid_qty_must_stay_above_filled(void **state)
{
    (void)state;
    uint32_t p = provider();
    uint32_t b = buyer(10000000000LL);
    matcher_cmd c = bid_cmd(b, P_235, 24, W_START, W_END);
    c.min_qty = 8;
    uint64_t id = place(c);
    offer(p, P_200, 16, W_START, W_END);
    assert_int_equal(order_view(id).filled_qty, 16);
    rejected(replace_cmd(b, id, 0, 16), MATCHER_REJ_BAD_QTY);
    rejected(replace_cmd(b, id, 0, 8), MATCHER_REJ_BAD_QTY);
    ok(replace_cmd(b, id, 0, 32)); /* 16 left now */
    matcher_order_view v = order_view(id);
    assert_int_equal(v.info.qty, 32);
    assert_int_equal(v.remaining_qty, 16);
    /* hold for 16 left: 2.35 x 16 x 24 = 902.40 + 0.9024 */
    assert_int_equal(v.info.hold_micros, 903302400LL);
}

static void test_replace_offer_qty_shifts_every_hour_never_below_zero(void **state)
{
    (void)state;
    uint32_t p = provider();
    uint32_t b = buyer(10000000000LL);
    matcher_cmd c = offer_cmd(p, 2000000, 16, 100, 148);
    c.market = MKT4; /* lot 4 */
    uint64_t o = place(c);
    matcher_cmd d = bid_cmd(b, 2000000, 12, 100, 124);
    d.market = MKT4;
    place(d);
    expect_capacity(o, 100, 124, 4);
    expect_capacity(o, 124, 148, 16);
    rejected(replace_cmd(p, o, 0, 8), MATCHER_REJ_BAD_QTY); /* 4 - 8 < 0 */
    ok(replace_cmd(p, o, 0, 12));                          /* delta -4 */
    expect_capacity(o, 100, 124, 0);
    expect_capacity(o, 124, 148, 12);
    assert_true(resting(o));
    ok(replace_cmd(p, o, 0, 20)); /* delta +8 */
    expect_capacity(o, 100, 124, 8);
    expect_capacity(o, 124, 148, 20);
}

static void test_replace_bid_new_hold_must_fit_available_plus_old_hold(void **state)
{
    (void)state;
    uint32_t b = buyer(451651200LL); /* exactly one 2.35 x 8 x 24 hold */
    uint64_t id = bid(b, P_235, 8, W_START, W_END);
    rejected(replace_cmd(b, id, 0, 16), MATCHER_REJ_INSUFFICIENT_FUNDS);
    rejected(replace_cmd(b, id, P_235 + 100, 0), MATCHER_REJ_INSUFFICIENT_FUNDS);
    ok(replace_cmd(b, id, P_200, 0));
    EXPECT_TYPES(MATCHER_EV_REPLACED, MATCHER_EV_BALANCE);
    /* 2.00 x 8 x 24 = 384.00 + 0.384 */
    assert_int_equal(LOG.ev[0].u.order.hold_micros, 384384000LL);
    expect_balance_ev(&LOG.ev[1], b, 451651200LL, 384384000LL);
}

static void test_replace_post_only_that_would_trade_is_rejected(void **state)
{
    (void)state;
    uint32_t p = provider();
    uint32_t b = buyer(10000000000LL);
    offer(p, P_230, 8, W_START, W_END);
    matcher_cmd c = bid_cmd(b, P_200, 8, W_START, W_END);
    c.tif = MATCHER_POST_ONLY;
    uint64_t id = place(c);
    rejected(replace_cmd(b, id, P_235, 0), MATCHER_REJ_WOULD_MATCH);
    assert_int_equal(order_view(id).info.price_micros, P_200);
    ok(replace_cmd(b, id, P_210, 0));
    assert_int_equal(count_type(MATCHER_EV_TRADE), 0);
}

/* ================================================================== */
/* Priority, eligibility, price                                         */
/* ================================================================== */

static void test_bid_takes_cheapest_offer_first(void **state)
{
    (void)state;
    uint32_t p1 = provider(), p2 = provider(), p3 = provider();
    uint32_t b = buyer(10000000000LL);
    offer(p1, P_210, 8, W_START, W_END);
    uint64_t cheap = offer(p2, P_190, 8, W_START, W_END);
    offer(p3, P_200, 8, W_START, W_END);
    bid(b, P_235, 8, W_START, W_END);
    expect_fill(&nth(MATCHER_EV_TRADE, 0)->u.fill, LOG.ev[0].u.order.order_id, cheap, P_190, 8,
                W_START, W_END);
}

static void test_equal_price_offers_fill_earliest_first(void **state)
{
    (void)state;
    uint32_t p1 = provider(), p2 = provider();
    uint32_t b = buyer(10000000000LL);
    uint64_t first = offer(p2, P_200, 8, W_START, W_END);
    offer(p1, P_200, 8, W_START, W_END);
    bid(b, P_235, 8, W_START, W_END);
    assert_int_equal(nth(MATCHER_EV_TRADE, 0)->u.fill.sell_order_id, first);
}

static void test_offer_fills_highest_bid_first(void **state)
{
    (void)state;
    uint32_t p = provider();
    uint32_t b1 = buyer(10000000000LL), b2 = buyer(10000000000LL), b3 = buyer(10000000000LL);
    bid(b1, P_210, 8, W_START, W_END);
    uint64_t high = bid(b2, P_235, 8, W_START, W_END);
    bid(b3, P_230, 8, W_START, W_END);
    uint64_t o = offer(p, P_200, 8, W_START, W_END);
    assert_int_equal(count_type(MATCHER_EV_TRADE), 1);
    expect_fill(&nth(MATCHER_EV_TRADE, 0)->u.fill, high, o, P_235, 8, W_START, W_END);
    assert_int_equal(nth(MATCHER_EV_TRADE, 0)->u.fill.buyer, b2);
}

static void test_equal_price_bids_fill_earliest_first(void **state)
{
    (void)state;
    uint32_t p = provider();
    uint32_t b1 = buyer(10000000000LL), b2 = buyer(10000000000LL);
    uint64_t first = bid(b2, P_230, 8, W_START, W_END);
    bid(b1, P_230, 8, W_START, W_END);
    offer(p, P_200, 8, W_START, W_END);
    assert_int_equal(nth(MATCHER_EV_TRADE, 0)->u.fill.buy_order_id, first);
}

typedef struct walk_ids {
    int n;
    uint64_t ids[16];
} walk_ids;

static bool collect(void *ctx, const matcher_order_view *o)
{
    walk_ids *w = ctx;
    if (w->n < 16)
        w->ids[w->n++] = o->info.order_id;
    return true;
}

static void test_book_walk_lists_orders_in_matching_priority(void **state)
{
    (void)state;
    uint32_t p = provider();
    uint32_t b = buyer(10000000000LL);
    uint64_t o1 = offer(p, P_235, 8, W_START, W_END);
    uint64_t o2 = offer(p, P_210, 8, W_START, W_END);
    uint64_t o3 = offer(p, P_235, 8, W_START, W_END);
    uint64_t b1 = bid(b, P_190, 8, W_START, W_END);
    uint64_t b2 = bid(b, P_200, 8, W_START, W_END);
    uint64_t b3 = bid(b, P_190, 8, W_START, W_END);
    walk_ids w = {0};
    matcher_book_walk(E, MKT, MATCHER_SELL, collect, &w);
    assert_int_equal(w.n, 3);
    assert_int_equal(w.ids[0], o2);
    assert_int_equal(w.ids[1], o1);
    assert_int_equal(w.ids[2], o3);
    memset(&w, 0, sizeof w);
    matcher_book_walk(E, MKT, MATCHER_BUY, collect, &w);
    assert_int_equal(w.n, 3);
    assert_int_equal(w.ids[0], b2);
    assert_int_equal(w.ids[1], b1);
    assert_int_equal(w.ids[2], b3);
    memset(&w, 0, sizeof w);
    matcher_book_walk(E, MKT4, MATCHER_BUY, collect, &w);
    assert_int_equal(w.n, 0);
}

static void test_offer_priced_above_the_bid_is_not_eligible(void **state)
{
    (void)state;
    uint32_t p = provider();
    uint32_t b = buyer(10000000000LL);
    offer(p, P_235 + 100, 8, W_START, W_END);
    uint64_t id = bid(b, P_235, 8, W_START, W_END);
    assert_int_equal(count_type(MATCHER_EV_TRADE), 0);
    offer(p, P_235, 8, W_START, W_END); /* at the limit: eligible */
    assert_int_equal(count_type(MATCHER_EV_TRADE), 1);
    assert_false(resting(id));
}

static void test_offer_lacking_quantity_in_any_hour_is_not_eligible(void **state)
{
    (void)state;
    uint32_t p = provider();
    uint32_t b1 = buyer(10000000000LL), b2 = buyer(10000000000LL);
    uint64_t o = offer(p, P_200, 16, 100, 130);
    bid(b1, P_200, 16, 110, 115); /* hours 110..114 sold out */
    uint64_t id = bid(b2, P_235, 8, 100, 130);
    assert_int_equal(count_type(MATCHER_EV_TRADE), 0);
    assert_true(resting(id));
    assert_int_equal(matcher_offer_avail(E, o, 100, 130), 0);
    assert_int_equal(order_view(o).remaining_qty, 16);
}

static void test_offer_window_must_cover_the_bid_window(void **state)
{
    (void)state;
    uint32_t p = provider();
    uint32_t b = buyer(10000000000LL);
    offer(p, P_200, 8, 100, 124);
    bid(b, P_235, 8, 99, 110);  /* starts before */
    bid(b, P_235, 8, 110, 125); /* ends after */
    assert_int_equal(count_type(MATCHER_EV_TRADE), 0);
    bid(b, P_235, 8, 100, 124); /* exactly the window */
    assert_int_equal(count_type(MATCHER_EV_TRADE), 1);
}

/* An offer sweeping bids sells hours as it goes; a later bid that needs
 * only hours it still has is served, one that needs a sold hour is not,
 * whether the bid sits alone on its level or shares it. */
static void test_offer_sweep_serves_bids_beside_hours_it_sold(void **state)
{
    (void)state;
    uint32_t p = provider();
    uint32_t b = buyer(10000000000LL);
    uint64_t first = bid(b, P_235, 8, 112, 114);
    bid(b, P_230, 8, 111, 113); /* needs hour 112, sold to the first bid */
    uint64_t before = bid(b, P_230, 8, 110, 112); /* same level, hours just before */
    uint64_t after = bid(b, P_210, 8, 114, 116);  /* own level, hours just after */
    uint64_t o = offer(p, P_200, 8, 100, 124);
    assert_int_equal(count_type(MATCHER_EV_TRADE), 3);
    expect_fill(&nth(MATCHER_EV_TRADE, 0)->u.fill, first, o, P_235, 8, 112, 114);
    expect_fill(&nth(MATCHER_EV_TRADE, 1)->u.fill, before, o, P_230, 8, 110, 112);
    expect_fill(&nth(MATCHER_EV_TRADE, 2)->u.fill, after, o, P_210, 8, 114, 116);
}

/* A bid level keeps its first bids' windows inline and a sweep reads a
 * bid only when the window fits (match.c, "Bid windows"): bids behind
 * that prefix, a prefix shortened by cancels, a bid appended after them
 * and FIFO order through the prefix must all come out as without it (the
 * checker after every command verifies the prefix itself). Seven bids on
 * one level, more than the prefix holds. */
static void test_offer_sweep_reads_bids_behind_and_inside_the_level_prefix(void **state)
{
    (void)state;
    uint32_t p = provider();
    uint32_t b = buyer(10000000000LL);
    uint64_t x[7];
    for (int i = 0; i < 6; i++)
        x[i] = bid(b, P_230, 8, 130, 132); /* none fits the first offer */
    x[6] = bid(b, P_230, 8, 110, 112);     /* behind the prefix */
    ok(cancel_cmd(b, x[1]));               /* the prefix shrinks */
    uint64_t o1 = offer(p, P_200, 16, 110, 112); /* walks the whole level */
    assert_int_equal(count_type(MATCHER_EV_TRADE), 1);
    expect_fill(&nth(MATCHER_EV_TRADE, 0)->u.fill, x[6], o1, P_230, 8, 110, 112);
    ok(cancel_cmd(b, x[0]));
    uint64_t late = bid(b, P_230, 8, 140, 142); /* behind them all */
    uint64_t o2 = offer(p, P_200, 8, 140, 142);
    assert_int_equal(count_type(MATCHER_EV_TRADE), 1);
    expect_fill(&nth(MATCHER_EV_TRADE, 0)->u.fill, late, o2, P_230, 8, 140, 142);
    uint64_t o3 = offer(p, P_200, 16, 130, 132); /* FIFO order: x2, then x3 */
    assert_int_equal(count_type(MATCHER_EV_TRADE), 2);
    expect_fill(&nth(MATCHER_EV_TRADE, 0)->u.fill, x[2], o3, P_230, 8, 130, 132);
    expect_fill(&nth(MATCHER_EV_TRADE, 1)->u.fill, x[3], o3, P_230, 8, 130, 132);
    assert_true(resting(x[4]) && resting(x[5]));
    assert_false(resting(x[2]) || resting(x[3]));
    /* the prefix is now x4 alone, x5 behind it: a new bid stays out of it */
    uint64_t last = bid(b, P_230, 8, 150, 152);
    uint64_t o4 = offer(p, P_200, 8, 150, 152);
    assert_int_equal(count_type(MATCHER_EV_TRADE), 1);
    expect_fill(&nth(MATCHER_EV_TRADE, 0)->u.fill, last, o4, P_230, 8, 150, 152);
}

static void test_trade_price_is_the_resting_offer_price_and_saving_reported(void **state)
{
    (void)state;
    uint32_t p = provider();
    uint32_t b = buyer(10000000000LL);
    uint64_t o = offer(p, P_200, 8, W_START, W_END);
    uint64_t x = bid(b, P_235, 8, W_START, W_END);
    const matcher_fill_info *f = &nth(MATCHER_EV_TRADE, 0)->u.fill;
    expect_fill(f, x, o, P_200, 8, W_START, W_END);
    /* 2.00 x 8 x 24 = 384.00; saving (2.35 - 2.00) x 8 x 24 = 67.20 */
    expect_money(f, 384000000LL, 384000LL, 0, 67200000LL);
    assert_int_equal(f->buyer, b);
    assert_int_equal(f->provider, p);
    assert_int_equal(f->market, MKT);
}

static void test_trade_price_is_the_resting_bid_price_when_bid_came_first(void **state)
{
    (void)state;
    uint32_t p = provider();
    uint32_t b = buyer(10000000000LL);
    uint64_t x = bid(b, P_235, 8, W_START, W_END);
    uint64_t o = offer(p, P_200, 8, W_START, W_END);
    const matcher_fill_info *f = &nth(MATCHER_EV_TRADE, 0)->u.fill;
    expect_fill(f, x, o, P_235, 8, W_START, W_END);
    assert_int_equal(f->taker_side, MATCHER_SELL);
    /* 2.35 x 192 = 451.20; provider is the taker: 0.4512; no saving */
    expect_money(f, 451200000LL, 0, 451200LL, 0);
    expect_balance(p, 451200000LL - 451200LL, 0);
    expect_balance(b, 10000000000LL - 451200000LL, 0);
}

static void test_trade_price_follows_the_priority_stamp_after_replace(void **state)
{
    (void)state;
    uint32_t p = provider();
    uint32_t b = buyer(10000000000LL);
    uint64_t o = offer(p, P_200, 8, 200, 300);   /* rests first, elsewhere */
    uint64_t x = bid(b, P_230, 8, W_START, W_END);
    ok(replace_cmd(p, o, P_210, 0)); /* no longer earlier than x */
    assert_int_equal(count_type(MATCHER_EV_TRADE), 0);
    uint64_t o2 = offer(p, P_235, 8, W_START, W_END);
    ok(replace_cmd(p, o2, P_200, 0)); /* new stamp, after x */
    const matcher_fill_info *f = &nth(MATCHER_EV_TRADE, 0)->u.fill;
    expect_fill(f, x, o2, P_230, 8, W_START, W_END);
    assert_int_equal(f->taker_side, MATCHER_SELL);
}

/* ================================================================== */
/* Fees, leases                                                          */
/* ================================================================== */

static void test_taker_fee_charged_to_the_buyer_when_the_bid_takes(void **state)
{
    (void)state;
    uint32_t p = provider();
    uint32_t b = buyer(1000000000LL);
    offer(p, P_235, 8, W_START, W_END);
    bid(b, P_235, 8, W_START, W_END);
    /* 451.20 notional, buyer pays +0.4512, provider gets 451.20 (maker 0) */
    expect_balance(b, 1000000000LL - 451651200LL, 0);
    expect_balance(p, 451200000LL, 0);
    expect_balance(MATCHER_FEE_ACCOUNT, 451200LL, 0);
}

static void test_taker_fee_charged_to_the_provider_when_the_offer_takes(void **state)
{
    (void)state;
    uint32_t p = provider();
    uint32_t b = buyer(1000000000LL);
    bid(b, P_235, 8, W_START, W_END);
    offer(p, P_235, 8, W_START, W_END);
    expect_balance(b, 1000000000LL - 451200000LL, 0);
    expect_balance(p, 451200000LL - 451200LL, 0);
    expect_balance(MATCHER_FEE_ACCOUNT, 451200LL, 0);
}

static void test_maker_and_taker_fees_both_go_to_the_fee_account(void **state)
{
    (void)state;
    matcher_config cfg;
    small_config(&cfg);
    cfg.maker_fee_bps = 5;
    cfg.taker_fee_bps = 20;
    make_engine(&cfg);
    uint32_t p = provider();
    uint32_t b = buyer(1000000000LL);
    offer(p, P_200, 8, W_START, W_END);
    /* hold: 2.35 x 192 = 451.20 + 20 bps 0.9024 */
    bid(b, P_235, 8, W_START, W_END);
    assert_int_equal(LOG.ev[0].u.order.hold_micros, 452102400LL);
    const matcher_fill_info *f = &nth(MATCHER_EV_TRADE, 0)->u.fill;
    /* 384.00: taker (buyer) 20 bps = 0.768, maker (provider) 5 bps = 0.192 */
    expect_money(f, 384000000LL, 768000LL, 192000LL, 67200000LL);
    expect_balance(b, 1000000000LL - 384768000LL, 0);
    expect_balance(p, 384000000LL - 192000LL, 0);
    expect_balance(MATCHER_FEE_ACCOUNT, 960000LL, 0);
}

static void test_fees_round_down_in_the_users_favour(void **state)
{
    (void)state;
    uint32_t p = provider();
    uint32_t b = buyer(1000000000LL);
    offer(p, 13700, 8, W_START, W_START + 1);
    bid(b, 13700, 8, W_START, W_START + 1);
    /* 0.0137 x 8 x 1 = 109,600 micros; 10 bps = 109.6 -> 109 */
    const matcher_fill_info *f = &nth(MATCHER_EV_TRADE, 0)->u.fill;
    expect_money(f, 109600LL, 109LL, 0, 0);
    expect_balance(MATCHER_FEE_ACCOUNT, 109LL, 0);
    /* below 1 micro of fee: nothing */
    offer(p, 100, 8, W_START, W_START + 1);
    bid(b, 100, 8, W_START, W_START + 1);
    f = &nth(MATCHER_EV_TRADE, 0)->u.fill;
    expect_money(f, 800LL, 0, 0, 0);
    /* BALANCE events still come for all three accounts */
    EXPECT_TYPES(MATCHER_EV_ACCEPTED, MATCHER_EV_BALANCE, MATCHER_EV_TRADE, MATCHER_EV_LEASE,
                 MATCHER_EV_BALANCE, MATCHER_EV_BALANCE, MATCHER_EV_BALANCE, MATCHER_EV_DONE,
                 MATCHER_EV_DONE);
    expect_balance_ev(&LOG.ev[6], MATCHER_FEE_ACCOUNT, 109LL, 0);
}

static void test_each_fill_creates_a_lease_matching_its_trade(void **state)
{
    (void)state;
    uint32_t p1 = provider(), p2 = provider();
    uint32_t b = buyer(10000000000LL);
    offer(p1, P_200, 8, W_START, W_END);
    offer(p2, P_210, 8, W_START, W_END);
    uint64_t trade_id = matcher_next_trade_id(E);
    bid(b, P_235, 16, W_START, W_END);
    assert_int_equal(count_type(MATCHER_EV_LEASE), 2);
    for (int i = 0; i < 2; i++) {
        const matcher_fill_info *t = &nth(MATCHER_EV_TRADE, i)->u.fill;
        const matcher_fill_info *l = &nth(MATCHER_EV_LEASE, i)->u.fill;
        assert_int_equal(t->trade_id, trade_id + (uint64_t)i);
        assert_int_equal(l->trade_id, t->trade_id);
        assert_int_equal(l->buyer, b);
        assert_int_equal(l->provider, i == 0 ? p1 : p2);
        assert_int_equal(l->market, MKT);
        assert_int_equal(l->start_hour, W_START);
        assert_int_equal(l->end_hour, W_END);
        assert_int_equal(l->qty, 8);
        assert_int_equal(l->price_micros, i == 0 ? P_200 : P_210);
        assert_int_equal(l->buy_order_id, t->buy_order_id);
        assert_int_equal(l->sell_order_id, t->sell_order_id);
        assert_int_equal(l->notional_micros, t->notional_micros);
    }
    assert_int_equal(matcher_next_trade_id(E), trade_id + 2);
}

/* ================================================================== */
/* Self-trade prevention                                                 */
/* ================================================================== */

static void test_self_trade_is_never_made_the_other_offer_fills(void **state)
{
    (void)state;
    uint32_t both = new_account(ALL_ROLES);
    deposit(both, 10000000000LL);
    uint32_t p = provider();
    uint64_t own = offer(both, P_190, 8, W_START, W_END);
    uint64_t other = offer(p, P_200, 8, W_START, W_END);
    bid(both, P_235, 8, W_START, W_END);
    assert_int_equal(count_type(MATCHER_EV_TRADE), 1);
    const matcher_fill_info *f = &nth(MATCHER_EV_TRADE, 0)->u.fill;
    assert_int_equal(f->sell_order_id, other);
    assert_int_equal(f->provider, p);
    expect_capacity(own, W_START, W_END, 8);
}

static void test_self_trade_only_option_leaves_both_resting(void **state)
{
    (void)state;
    uint32_t both = new_account(ALL_ROLES);
    deposit(both, 10000000000LL);
    uint64_t x = bid(both, P_235, 8, W_START, W_END);
    uint64_t o = offer(both, P_200, 8, W_START, W_END);
    assert_int_equal(count_type(MATCHER_EV_TRADE), 0);
    assert_true(resting(x));
    assert_true(resting(o));
    /* and a post_only against one's own order is not "would match" */
    matcher_cmd c = offer_cmd(both, P_200, 8, W_START, W_END);
    c.tif = MATCHER_POST_ONLY;
    place(c);
}

/* ================================================================== */
/* Determinism and ids                                                   */
/* ================================================================== */

/* Raw copies of every event of a script run, for memcmp (events are
 * zeroed before their fields are set: market-rules.md, "Event fields"). */
typedef struct raw_events {
    int n;
    matcher_event ev[1024];
} raw_events;
static raw_events *g_raw;

/* Appends the key fields of every event in LOG to the digest (readable in
 * a failure message) and the raw events to g_raw. */
static void digest_log(char *digest, size_t len, size_t *n, int step)
{
    for (int j = 0; j < LOG.n && g_raw; j++) {
        assert_true(g_raw->n < 1024);
        g_raw->ev[g_raw->n++] = LOG.ev[j];
    }
    for (int j = 0; j < LOG.n; j++) {
        const matcher_event *ev = &LOG.ev[j];
        if (*n + 160 > len)
            fail_msg("digest buffer too small");
        *n += (size_t)snprintf(digest + *n, len - *n, "%d:%d", step, ev->type);
        if (ev->type == MATCHER_EV_TRADE)
            *n += (size_t)snprintf(digest + *n, len - *n,
                                   ",%" PRIu64 ",%" PRIu64 ",%" PRIu64 ",%" PRId64 ",%d",
                                   ev->u.fill.trade_id, ev->u.fill.buy_order_id,
                                   ev->u.fill.sell_order_id, ev->u.fill.price_micros,
                                   ev->u.fill.qty);
        else if (ev->type == MATCHER_EV_ACCEPTED || ev->type == MATCHER_EV_REPLACED)
            *n += (size_t)snprintf(digest + *n, len - *n, ",%" PRIu64 ",%" PRId64,
                                   ev->u.order.order_id, ev->u.order.hold_micros);
        else if (ev->type == MATCHER_EV_BALANCE)
            *n += (size_t)snprintf(digest + *n, len - *n, ",%u,%" PRId64 ",%" PRId64,
                                   ev->u.balance.account, ev->u.balance.balance_micros,
                                   ev->u.balance.held_micros);
        else if (ev->type == MATCHER_EV_DONE)
            *n += (size_t)snprintf(digest + *n, len - *n, ",%" PRIu64 ",%d",
                                   ev->u.done.order_id, ev->u.done.reason);
        *n += (size_t)snprintf(digest + *n, len - *n, ";");
    }
}

/* A fixed script touching every command type; fills digest with the key
 * fields of all its events. */
static void run_script(char *digest, size_t len)
{
    size_t n = 0;
    int step = 0;
    digest[0] = '\0';
    uint32_t p1 = provider(), p2 = provider();
    uint32_t b1 = buyer(10000000000LL), b2 = buyer(10000000000LL);
    digest_log(digest, len, &n, step++);
    uint64_t o1 = offer(p1, P_200, 24, 100, 148);
    digest_log(digest, len, &n, step++);
    offer(p2, P_190, 8, 100, 124);
    digest_log(digest, len, &n, step++);
    bid(b1, P_235, 24, 100, 124); /* AON: 8 from p2, 16 from p1 */
    digest_log(digest, len, &n, step++);
    matcher_cmd c = bid_cmd(b2, P_230, 24, 124, 148);
    c.min_qty = 8;
    uint64_t x2 = place(c); /* takes 24 of p1's later hours */
    digest_log(digest, len, &n, step++);
    ok(replace_cmd(p1, o1, P_190, 32));
    digest_log(digest, len, &n, step++);
    ok(clock_cmd(110));
    digest_log(digest, len, &n, step++);
    offer(p2, P_210, 8, 120, 160);
    digest_log(digest, len, &n, step++);
    apply(cancel_cmd(b2, x2));
    digest_log(digest, len, &n, step++);
    ok(money_cmd(MATCHER_CMD_WITHDRAW, p1, 1000000LL));
    digest_log(digest, len, &n, step++);
    ok(clock_cmd(200));
    digest_log(digest, len, &n, step++);
}

static void test_same_commands_give_same_events_ids_and_hash(void **state)
{
    (void)state;
    static char d1[65536], d2[65536];
    static raw_events r1, r2;
    g_raw = &r1;
    run_script(d1, sizeof d1);
    uint64_t h1 = matcher_state_hash(E);
    uint64_t next1 = matcher_next_order_id(E), trades1 = matcher_next_trade_id(E);
    matcher_config cfg;
    small_config(&cfg);
    make_engine(&cfg);
    g_raw = &r2;
    run_script(d2, sizeof d2);
    g_raw = NULL;
    assert_string_equal(d1, d2);
    assert_int_equal(r1.n, r2.n);
    assert_true(r1.n > 20);
    for (int i = 0; i < r1.n; i++)
        if (memcmp(&r1.ev[i], &r2.ev[i], sizeof r1.ev[i]) != 0)
            fail_msg("event %d (type %d) differs between identical runs", i, r1.ev[i].type);
    assert_int_equal(matcher_state_hash(E), h1);
    assert_int_equal(matcher_next_order_id(E), next1);
    assert_int_equal(matcher_next_trade_id(E), trades1);
    assert_non_null(strstr(d1, ":8,")); /* the script did trade */
}

static void test_order_ids_are_assigned_in_sequence(void **state)
{
    (void)state;
    uint32_t p = provider();
    uint32_t b = buyer(10000000000LL);
    uint64_t next = matcher_next_order_id(E);
    uint64_t a = offer(p, P_235, 8, W_START, W_END);
    assert_int_equal(a, next);
    rejected(offer_cmd(p, 0, 8, W_START, W_END), MATCHER_REJ_BAD_PRICE);
    uint64_t c = bid(b, P_190, 8, W_START, W_END);
    assert_int_equal(c, a + 1); /* a rejection consumes no id */
    matcher_cmd i = bid_cmd(b, P_190, 8, W_START, W_END);
    i.tif = MATCHER_IOC;
    uint64_t d = place(i);
    assert_int_equal(d, a + 2); /* an ioc that never rests still has an id */
    assert_int_equal(matcher_next_order_id(E), a + 3);
}

/* ================================================================== */
/* Limits give clean rejections                                          */
/* ================================================================== */

static void test_full_order_table_rejects_book_full(void **state)
{
    (void)state;
    matcher_config cfg;
    small_config(&cfg);
    cfg.max_orders = 2;
    cfg.max_orders_per_market = 2;
    make_engine(&cfg);
    uint32_t p = provider();
    offer(p, P_200, 8, W_START, W_END);
    uint64_t o2 = offer(p, P_210, 8, W_START, W_END);
    rejected(offer_cmd(p, P_230, 8, W_START, W_END), MATCHER_REJ_BOOK_FULL);
    ok(cancel_cmd(p, o2)); /* space comes back */
    offer(p, P_230, 8, W_START, W_END);
}

static void test_full_market_rejects_book_full_other_markets_open(void **state)
{
    (void)state;
    matcher_config cfg;
    small_config(&cfg);
    cfg.max_orders_per_market = 1;
    make_engine(&cfg);
    uint32_t p = provider();
    offer(p, P_200, 8, W_START, W_END);
    rejected(offer_cmd(p, P_210, 8, W_START, W_END), MATCHER_REJ_BOOK_FULL);
    matcher_cmd c = offer_cmd(p, P_210, 4, W_START, W_END);
    c.market = MKT4;
    place(c);
}

static void test_full_account_table_rejects_accounts_full(void **state)
{
    (void)state;
    matcher_config cfg;
    small_config(&cfg);
    cfg.max_accounts = 3; /* fee account + 2 */
    make_engine(&cfg);
    provider();
    provider();
    matcher_cmd c;
    memset(&c, 0, sizeof c);
    c.type = MATCHER_CMD_CREATE_ACCOUNT;
    c.roles = MATCHER_ROLE_BUYER;
    rejected(c, MATCHER_REJ_ACCOUNTS_FULL);
    assert_int_equal(matcher_account_count(E), 3);
}

static void test_config_out_of_range_creates_no_engine(void **state)
{
    (void)state;
    matcher_config cfg;
    small_config(&cfg);
    cfg.taker_fee_bps = MATCHER_MAX_FEE_BPS + 1;
    assert_null(matcher_create(&g_cat, &cfg));
    small_config(&cfg);
    cfg.maker_fee_bps = -1;
    assert_null(matcher_create(&g_cat, &cfg));
    small_config(&cfg);
    cfg.taker_fee_bps = MATCHER_MAX_FEE_BPS; /* the bound itself is fine */
    matcher_engine *e = matcher_create(&g_cat, &cfg);
    assert_non_null(e);
    matcher_destroy(e);
}

static void test_default_config_values(void **state)
{
    (void)state;
    matcher_config cfg;
    matcher_config_default(&cfg);
    assert_int_equal(cfg.max_accounts, 100000);
    assert_int_equal(cfg.max_orders, 1000000);
    assert_int_equal(cfg.max_orders_per_market, 200000);
    assert_int_equal(cfg.max_segments, 4000000);
    assert_int_equal(cfg.maker_fee_bps, 0);
    assert_int_equal(cfg.taker_fee_bps, 10);
}

/* ================================================================== */
/* Event order                                                            */
/* ================================================================== */

static void test_event_order_of_a_bid_filled_on_entry(void **state)
{
    (void)state;
    uint32_t p = provider();
    uint32_t b = buyer(1000000000LL);
    uint64_t o = offer(p, P_200, 8, W_START, W_END);
    EXPECT_TYPES(MATCHER_EV_ACCEPTED); /* an offer has no hold: no BALANCE */
    uint64_t x = bid(b, P_235, 8, W_START, W_END);
    EXPECT_TYPES(MATCHER_EV_ACCEPTED, MATCHER_EV_BALANCE, MATCHER_EV_TRADE, MATCHER_EV_LEASE,
                 MATCHER_EV_BALANCE, MATCHER_EV_BALANCE, MATCHER_EV_BALANCE, MATCHER_EV_DONE,
                 MATCHER_EV_DONE);
    assert_int_equal(LOG.ev[0].u.order.order_id, x);
    expect_balance_ev(&LOG.ev[1], b, 1000000000LL, 451651200LL);
    expect_balance_ev(&LOG.ev[4], b, 1000000000LL - 384384000LL, 0);
    expect_balance_ev(&LOG.ev[5], p, 384000000LL, 0);
    expect_balance_ev(&LOG.ev[6], MATCHER_FEE_ACCOUNT, 384000LL, 0);
    /* the resting offer's DONE first, the incoming bid's last */
    expect_done_ev(&LOG.ev[7], o, MATCHER_DONE_FILLED);
    expect_done_ev(&LOG.ev[8], x, MATCHER_DONE_FILLED);
    assert_int_equal(LOG.ev[8].u.done.remaining_qty, 0);
}

static void test_event_order_of_an_offer_filling_two_bids(void **state)
{
    (void)state;
    uint32_t p = provider();
    uint32_t b1 = buyer(1000000000LL), b2 = buyer(1000000000LL);
    uint64_t x1 = bid(b1, P_230, 8, W_START, W_END);
    uint64_t x2 = bid(b2, P_235, 8, W_START, W_END);
    uint64_t o = offer(p, P_200, 24, W_START, W_END);
    /* higher bid first; each filled bid's DONE right after its fill;
     * the offer keeps 8 and rests: no DONE for it */
    EXPECT_TYPES(MATCHER_EV_ACCEPTED,
                 MATCHER_EV_TRADE, MATCHER_EV_LEASE, MATCHER_EV_BALANCE, MATCHER_EV_BALANCE,
                 MATCHER_EV_BALANCE, MATCHER_EV_DONE,
                 MATCHER_EV_TRADE, MATCHER_EV_LEASE, MATCHER_EV_BALANCE, MATCHER_EV_BALANCE,
                 MATCHER_EV_BALANCE, MATCHER_EV_DONE);
    expect_fill(&LOG.ev[1].u.fill, x2, o, P_235, 8, W_START, W_END);
    expect_done_ev(&LOG.ev[6], x2, MATCHER_DONE_FILLED);
    expect_fill(&LOG.ev[7].u.fill, x1, o, P_230, 8, W_START, W_END);
    expect_done_ev(&LOG.ev[12], x1, MATCHER_DONE_FILLED);
    expect_capacity(o, W_START, W_END, 8);
    /* provider is the taker on both: 451.20 and 441.60, fees 0.4512 + 0.4416 */
    expect_balance(p, 451200000LL + 441600000LL - 451200LL - 441600LL, 0);
}

/* ================================================================== */
/* More rules: reason codes, budgets, edges                              */
/* ================================================================== */

static void test_rejection_reasons_map_to_api_codes(void **state)
{
    (void)state;
    static const struct { matcher_reason r; const char *code; } map[] = {
        {MATCHER_REJ_BAD_QTY, "bad_qty"},
        {MATCHER_REJ_BAD_WINDOW, "bad_window"},
        {MATCHER_REJ_WINDOW_IN_PAST, "window_in_past"},
        {MATCHER_REJ_BAD_PRICE, "bad_price"},
        {MATCHER_REJ_UNKNOWN_MARKET, "unknown_market"},
        {MATCHER_REJ_INSUFFICIENT_FUNDS, "insufficient_funds"},
        {MATCHER_REJ_WOULD_MATCH, "would_match"},
        {MATCHER_REJ_UNKNOWN_ACCOUNT, "not_found"},
        {MATCHER_REJ_UNKNOWN_ORDER, "not_found"},
        {MATCHER_REJ_FORBIDDEN, "forbidden"},
        {MATCHER_REJ_BAD_AMOUNT, "bad_field"},
        {MATCHER_REJ_BAD_TIF, "bad_field"},
        {MATCHER_REJ_BAD_SIDE, "bad_field"},
        {MATCHER_REJ_BAD_MIN_HOURS, "bad_field"},
        {MATCHER_REJ_BAD_FLAGS, "bad_field"},
        {MATCHER_REJ_BAD_EXPIRY, "bad_field"},
        {MATCHER_REJ_BAD_CLOCK, "bad_field"},
        {MATCHER_REJ_BAD_ROLES, "bad_field"},
        {MATCHER_REJ_BAD_COMMAND, "bad_field"},
        {MATCHER_REJ_BALANCE_LIMIT, "bad_field"},
        {MATCHER_REJ_BOOK_FULL, "unavailable"},
        {MATCHER_REJ_ACCOUNTS_FULL, "unavailable"},
    };
    assert_int_equal(sizeof map / sizeof map[0], MATCHER_REASON_COUNT - 1);
    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++) {
        assert_string_equal(matcher_reason_code(map[i].r), map[i].code);
        const char *msg = matcher_reason_message(map[i].r);
        assert_non_null(msg);
        assert_true(strlen(msg) > 10);
    }
    assert_non_null(matcher_reason_code((matcher_reason)999));
    assert_non_null(matcher_reason_message((matcher_reason)999));
}

/* An engine with room for more resting orders than one command's fill
 * budget. */
static void make_engine_for_budget_tests(void)
{
    matcher_config cfg;
    small_config(&cfg);
    cfg.max_orders = 2 * MATCHER_MAX_FILLS_PER_COMMAND;
    cfg.max_orders_per_market = 2 * MATCHER_MAX_FILLS_PER_COMMAND;
    make_engine(&cfg);
}

/* Applies an order without events or per-command checks (bulk setup). */
static void bulk_place(matcher_cmd c)
{
    g_ts_us += 1000000;
    c.ts_us = g_ts_us;
    assert_int_equal(matcher_apply(E, &c, NULL, NULL), MATCHER_OK);
}

static void bulk_offer(uint32_t acct, int64_t price, int32_t qty, int64_t start, int64_t end)
{
    bulk_place(offer_cmd(acct, price, qty, start, end));
}

static void test_one_command_makes_at_most_4096_fills(void **state)
{
    (void)state;
    make_engine_for_budget_tests();
    uint32_t p = provider();
    uint32_t b = buyer(10000000000LL);
    for (int i = 0; i < MATCHER_MAX_FILLS_PER_COMMAND + 1; i++)
        bulk_offer(p, 100, 8, W_START, W_START + 1);
    check_invariants();
    /* all-or-none needing 4097 offers: the plan stops at 4096, nothing fills */
    int32_t all = 8 * (MATCHER_MAX_FILLS_PER_COMMAND + 1);
    uint64_t aon = bid(b, 100, all, W_START, W_START + 1);
    assert_int_equal(count_type(MATCHER_EV_TRADE), 0);
    ok(cancel_cmd(b, aon));
    /* a partial bid takes exactly 4096 fills and keeps the rest */
    matcher_cmd c = bid_cmd(b, 100, all, W_START, W_START + 1);
    c.min_qty = 8;
    uint64_t part = place(c);
    assert_int_equal(count_type(MATCHER_EV_TRADE), MATCHER_MAX_FILLS_PER_COMMAND);
    matcher_order_view v = order_view(part);
    assert_int_equal(v.filled_qty, 8 * MATCHER_MAX_FILLS_PER_COMMAND);
    assert_int_equal(v.remaining_qty, 8);
    assert_int_equal(matcher_order_count(E), 2);
}

/* An offer whose sweep ends on the fill budget rests with capacity that
 * the bids it never reached did not see: a later offer must still complete
 * such a bid with both (the engine's plan bounds must not hide it). */
static void test_offer_left_by_fill_budget_still_serves_later_bids(void **state)
{
    (void)state;
    make_engine_for_budget_tests();
    uint32_t p1 = provider(), p2 = provider();
    uint32_t b1 = buyer(100000000000LL), b2 = buyer(10000000000LL);
    for (int i = 0; i < MATCHER_MAX_FILLS_PER_COMMAND; i++)
        bulk_place(bid_cmd(b1, P_235, 8, W_START, W_START + 1));
    uint64_t y = bid(b2, P_200, 16, W_START, W_START + 1); /* all-or-none, nothing to fill it */
    check_invariants();
    /* o fills the 4096 better bids, then the budget stops the sweep
     * before y: o rests with 8 GPUs */
    uint64_t o = offer(p1, P_190, 8 * (MATCHER_MAX_FILLS_PER_COMMAND + 1), W_START, W_START + 1);
    assert_int_equal(count_type(MATCHER_EV_TRADE), MATCHER_MAX_FILLS_PER_COMMAND);
    assert_int_equal(order_view(y).filled_qty, 0);
    assert_int_equal(matcher_order_count(E), 2);
    /* o2's 8 alone cannot fill y; with o's 8 it does */
    offer(p2, P_190, 8, W_START, W_START + 1);
    assert_int_equal(count_type(MATCHER_EV_TRADE), 2);
    assert_int_equal(matcher_order_count(E), 0);
    (void)o;
}

static void test_single_provider_first_provider_to_cover_wins(void **state)
{
    (void)state;
    uint32_t p1 = provider(), p2 = provider();
    uint32_t b = buyer(10000000000LL);
    offer(p1, P_190, 8, W_START, W_END);  /* p1 cheapest, but only 8 */
    uint64_t o2 = offer(p2, P_200, 16, W_START, W_END);
    offer(p1, P_210, 8, W_START, W_END);
    matcher_cmd c = bid_cmd(b, P_235, 16, W_START, W_END);
    c.single_provider = 1;
    uint64_t id = place(c);
    /* walking by price: p1 has 8 after 1.90, p2 reaches 16 at 2.00 */
    assert_int_equal(count_type(MATCHER_EV_TRADE), 1);
    expect_fill(&nth(MATCHER_EV_TRADE, 0)->u.fill, id, o2, P_200, 16, W_START, W_END);
}

static void test_aon_bid_skips_an_offer_whose_min_qty_it_cannot_meet(void **state)
{
    (void)state;
    uint32_t p1 = provider(), p2 = provider();
    uint32_t b = buyer(10000000000LL);
    matcher_cmd c = offer_cmd(p1, P_190, 8, W_START, W_END);
    c.min_qty = 8;
    uint64_t small = place(c);
    c = offer_cmd(p1, P_190, 32, W_START, W_END);
    c.min_qty = 32;
    uint64_t big = place(c);
    uint64_t o = offer(p2, P_200, 8, W_START, W_END);
    bid(b, P_235, 16, W_START, W_END);
    /* 8 from `small`, `big` would give 8 < its min 32: skipped, 8 from o */
    assert_int_equal(count_type(MATCHER_EV_TRADE), 2);
    assert_int_equal(nth(MATCHER_EV_TRADE, 0)->u.fill.sell_order_id, small);
    assert_int_equal(nth(MATCHER_EV_TRADE, 1)->u.fill.sell_order_id, o);
    expect_capacity(big, W_START, W_END, 32);
}

static void test_offer_min_qty_applies_to_every_fill(void **state)
{
    (void)state;
    uint32_t p = provider();
    uint32_t b = buyer(10000000000LL);
    matcher_cmd c = offer_cmd(p, P_200, 24, W_START, W_END);
    c.min_qty = 16;
    uint64_t o = place(c);
    bid(b, P_235, 16, W_START, W_END);
    assert_int_equal(count_type(MATCHER_EV_TRADE), 1);
    expect_capacity(o, W_START, W_END, 8);
    /* 8 left is below the offer's min_qty: an 8-GPU bid cannot take it */
    uint64_t x = bid(b, P_235, 8, W_START, W_END);
    assert_int_equal(count_type(MATCHER_EV_TRADE), 0);
    assert_true(resting(x));
}

static void test_bid_replace_lower_qty_same_price_keeps_priority(void **state)
{
    (void)state;
    uint32_t p = provider();
    uint32_t b1 = buyer(10000000000LL), b2 = buyer(10000000000LL);
    uint64_t first = bid(b1, P_230, 16, W_START, W_END);
    uint64_t second = bid(b2, P_230, 8, W_START, W_END);
    uint64_t prio = order_view(first).priority;
    ok(replace_cmd(b1, first, 0, 8));
    EXPECT_TYPES(MATCHER_EV_REPLACED, MATCHER_EV_BALANCE);
    /* hold for 8 at 2.30 x 24: 441.60 + 0.4416 */
    expect_balance_ev(&LOG.ev[1], b1, 10000000000LL, 442041600LL);
    assert_int_equal(order_view(first).priority, prio);
    offer(p, P_200, 8, W_START, W_END);
    assert_int_equal(nth(MATCHER_EV_TRADE, 0)->u.fill.buy_order_id, first);
    assert_true(resting(second));
}

static void test_replaced_offer_matches_resting_bids_as_taker(void **state)
{
    (void)state;
    uint32_t p = provider();
    uint32_t b = buyer(10000000000LL);
    uint64_t o = offer(p, P_235, 8, W_START, W_END);
    uint64_t x = bid(b, P_210, 8, W_START, W_END);
    ok(replace_cmd(p, o, P_200, 0));
    EXPECT_TYPES(MATCHER_EV_REPLACED, MATCHER_EV_TRADE, MATCHER_EV_LEASE, MATCHER_EV_BALANCE,
                 MATCHER_EV_BALANCE, MATCHER_EV_BALANCE, MATCHER_EV_DONE, MATCHER_EV_DONE);
    const matcher_fill_info *f = &LOG.ev[1].u.fill;
    /* the replace gave o a new stamp: x is earlier, so x's price 2.10 */
    expect_fill(f, x, o, P_210, 8, W_START, W_END);
    assert_int_equal(f->taker_side, MATCHER_SELL);
    /* 2.10 x 192 = 403.20, provider pays the 10 bps taker fee */
    expect_money(f, 403200000LL, 0, 403200LL, 0);
    expect_done_ev(&LOG.ev[6], x, MATCHER_DONE_FILLED);
    expect_done_ev(&LOG.ev[7], o, MATCHER_DONE_FILLED);
}

static void test_biggest_bid_is_refused_for_funds_without_overflow(void **state)
{
    (void)state;
    uint32_t b = new_account(MATCHER_ROLE_BUYER);
    for (int i = 0; i < 100; i++)
        deposit(b, MATCHER_MAX_AMOUNT_MICROS);
    /* $1000 x 100000 GPUs x 8760 h = $8.76e11 > the $1e11 balance limit */
    rejected(bid_cmd(b, MATCHER_MAX_PRICE_MICROS, MATCHER_MAX_QTY, W_START, W_START + 8760),
             MATCHER_REJ_INSUFFICIENT_FUNDS);
    /* the same offer is fine: an offer holds no money */
    uint32_t p = provider();
    offer(p, MATCHER_MAX_PRICE_MICROS, MATCHER_MAX_QTY, W_START, W_START + 8760);
    /* and the largest affordable trade settles exactly:
     * $1000 x 8 x 8760 = $70,080,000; fee $70,080 */
    uint64_t x = bid(b, MATCHER_MAX_PRICE_MICROS, 8, W_START, W_START + 8760);
    const matcher_fill_info *f = &nth(MATCHER_EV_TRADE, 0)->u.fill;
    expect_money(f, 70080000000000LL, 70080000000LL, 0, 0);
    assert_int_equal(f->buy_order_id, x);
    expect_balance(b, MATCHER_MAX_BALANCE_MICROS - 70080000000000LL - 70080000000LL, 0);
}

static void test_accepted_event_echoes_the_order(void **state)
{
    (void)state;
    uint32_t b = buyer(10000000000LL);
    matcher_cmd c = bid_cmd(b, P_235, 24, W_START, W_END);
    c.min_qty = 8;
    c.single_provider = 1;
    c.expire_at_hour = 50;
    c.tif = MATCHER_GTC;
    uint64_t id = place(c);
    const matcher_order_info *o = &LOG.ev[0].u.order;
    assert_int_equal(o->order_id, id);
    assert_int_equal(o->account, b);
    assert_int_equal(o->market, MKT);
    assert_int_equal(o->side, MATCHER_BUY);
    assert_int_equal(o->tif, MATCHER_GTC);
    assert_int_equal(o->single_provider, 1);
    assert_int_equal(o->qty, 24);
    assert_int_equal(o->min_qty, 8);
    assert_int_equal(o->min_hours, 0);
    assert_int_equal(o->price_micros, P_235);
    assert_int_equal(o->start_hour, W_START);
    assert_int_equal(o->end_hour, W_END);
    assert_int_equal(o->expire_at_hour, 50);
    matcher_order_view v = order_view(id);
    assert_int_equal(v.info.qty, 24);
    assert_int_equal(v.filled_qty, 0);
    assert_int_equal(v.remaining_qty, 24);
    assert_int_equal(v.provider_lock, 0);
    matcher_account_view a;
    assert_int_equal(matcher_account_get(E, b, &a), 0);
    assert_int_equal(a.open_orders, 1);
}

static void test_done_event_names_the_order_owner_market_and_side(void **state)
{
    (void)state;
    uint32_t p = provider();
    matcher_cmd c = offer_cmd(p, P_200, 4, W_START, W_END);
    c.market = MKT4;
    uint64_t o = place(c);
    ok(cancel_cmd(p, o));
    expect_done_ev(&LOG.ev[0], o, MATCHER_DONE_CANCELLED);
    assert_int_equal(LOG.ev[0].u.done.account, p);
    assert_int_equal(LOG.ev[0].u.done.market, MKT4);
    assert_int_equal(LOG.ev[0].u.done.side, MATCHER_SELL);
    matcher_account_view a;
    assert_int_equal(matcher_account_get(E, p, &a), 0);
    assert_int_equal(a.open_orders, 0);
}

static void test_partly_filled_bid_expiry_releases_the_rest_of_its_hold(void **state)
{
    (void)state;
    uint32_t p = provider();
    uint32_t b = buyer(10000000000LL);
    matcher_cmd c = bid_cmd(b, P_235, 24, W_START, W_END);
    c.min_qty = 8;
    uint64_t id = place(c);
    offer(p, P_235, 8, W_START, W_END); /* trade at 2.35: 451.20, offer took */
    expect_balance(b, 10000000000LL - 451200000LL, 903302400LL);
    ok(clock_cmd(W_START));
    EXPECT_TYPES(MATCHER_EV_CLOCK, MATCHER_EV_DONE, MATCHER_EV_BALANCE);
    expect_done_ev(&LOG.ev[1], id, MATCHER_DONE_EXPIRED);
    assert_int_equal(LOG.ev[1].u.done.remaining_qty, 16);
    expect_balance_ev(&LOG.ev[2], b, 10000000000LL - 451200000LL, 0);
}

static void test_markets_are_separate_books(void **state)
{
    (void)state;
    uint32_t p = provider();
    uint32_t b = buyer(10000000000LL);
    matcher_cmd c = offer_cmd(p, P_200, 8, W_START, W_END);
    c.market = MKT4;
    uint64_t o = place(c);
    uint64_t x = bid(b, P_235, 8, W_START, W_END); /* MKT: no offer there */
    assert_int_equal(count_type(MATCHER_EV_TRADE), 0);
    assert_true(resting(o));
    assert_true(resting(x));
}

static void test_replace_validation_order_first_failure_wins(void **state)
{
    (void)state;
    uint32_t p = provider(), other = provider();
    uint32_t b = buyer(451651200LL);
    uint64_t o = offer(p, P_200, 16, W_START, W_END);
    uint64_t x = bid(b, P_190, 8, W_START + 1, W_END); /* below o: rests */
    /* unknown order before owner */
    rejected(replace_cmd(other, 999999, 0, 0), MATCHER_REJ_UNKNOWN_ORDER);
    assert_int_equal(LOG.ev[0].u.rejected.order_id, 999999);
    /* owner before price */
    rejected(replace_cmd(other, o, -1, 12), MATCHER_REJ_FORBIDDEN);
    assert_int_equal(LOG.ev[0].u.rejected.order_id, o);
    /* price before qty */
    rejected(replace_cmd(p, o, P_200 + 1, 12), MATCHER_REJ_BAD_PRICE);
    rejected(replace_cmd(p, o, MATCHER_MAX_PRICE_MICROS + 100, 0), MATCHER_REJ_BAD_PRICE);
    /* qty as for a new order */
    rejected(replace_cmd(p, o, 0, MATCHER_MAX_QTY + 8), MATCHER_REJ_BAD_QTY);
    rejected(replace_cmd(p, o, 0, -8), MATCHER_REJ_BAD_QTY);
    /* qty before funds: off-lot and unaffordable */
    rejected(replace_cmd(b, x, 0, 20), MATCHER_REJ_BAD_QTY);
    rejected(replace_cmd(b, x, 0, 24), MATCHER_REJ_INSUFFICIENT_FUNDS);
}

static void test_replace_qty_below_min_qty_is_rejected(void **state)
{
    (void)state;
    uint32_t b = buyer(10000000000LL);
    matcher_cmd c = bid_cmd(b, P_235, 24, W_START, W_END);
    c.min_qty = 16;
    uint64_t id = place(c);
    rejected(replace_cmd(b, id, 0, 8), MATCHER_REJ_BAD_QTY);
    ok(replace_cmd(b, id, 0, 16));
    assert_int_equal(order_view(id).info.qty, 16);
}

static void test_replace_offer_down_to_zero_everywhere_is_done_filled(void **state)
{
    (void)state;
    uint32_t p = provider();
    uint32_t b = buyer(10000000000LL);
    matcher_cmd c = offer_cmd(p, P_200, 8, W_START, W_END);
    c.market = MKT4;
    uint64_t o = place(c);
    matcher_cmd d = bid_cmd(b, P_200, 4, W_START, W_END);
    d.market = MKT4;
    place(d);
    expect_capacity(o, W_START, W_END, 4);
    ok(replace_cmd(p, o, 0, 4));
    EXPECT_TYPES(MATCHER_EV_REPLACED, MATCHER_EV_DONE);
    expect_done_ev(&LOG.ev[1], o, MATCHER_DONE_FILLED);
    assert_int_equal(LOG.ev[1].u.done.remaining_qty, 0);
    assert_false(resting(o));
}

static void test_offer_done_when_open_hours_sold_even_if_passed_hours_were_not(void **state)
{
    (void)state;
    uint32_t p = provider();
    uint32_t b = buyer(10000000000LL);
    uint64_t o = offer(p, P_200, 8, 100, 124);
    ok(clock_cmd(110));
    bid(b, P_200, 8, 110, 124);
    int n = LOG.n;
    expect_done_ev(&LOG.ev[n - 2], o, MATCHER_DONE_FILLED);
    assert_false(resting(o));
}

static void test_clock_jump_far_ahead_expires_everything_and_has_a_ceiling(void **state)
{
    (void)state;
    uint32_t p = provider();
    uint32_t b = buyer(10000000000LL);
    uint64_t o = offer(p, P_200, 8, 17000, 17000 + 8760);
    uint64_t x = bid(b, P_190, 8, 17500, 17510);
    ok(clock_cmd(1000000));
    EXPECT_TYPES(MATCHER_EV_CLOCK, MATCHER_EV_DONE, MATCHER_EV_BALANCE, MATCHER_EV_DONE);
    expect_done_ev(&LOG.ev[1], x, MATCHER_DONE_EXPIRED);
    expect_done_ev(&LOG.ev[3], o, MATCHER_DONE_EXPIRED);
    assert_int_equal(matcher_order_count(E), 0);
    assert_int_equal(matcher_clock_hour(E), 1000000);
    rejected(clock_cmd(MATCHER_MAX_CLOCK_HOUR + 1), MATCHER_REJ_BAD_CLOCK);
    ok(clock_cmd(MATCHER_MAX_CLOCK_HOUR));
    /* orders still fit: 2 years ahead of the last hour */
    offer(p, P_200, 8, MATCHER_MAX_CLOCK_HOUR + 17520, MATCHER_MAX_CLOCK_HOUR + 17520 + 8760);
}

static void test_done_remaining_qty_of_an_offer_is_its_largest_open_hour(void **state)
{
    (void)state;
    uint32_t p = provider();
    uint32_t b = buyer(10000000000LL);
    uint64_t o = offer(p, P_200, 16, 100, 148);
    bid(b, P_200, 8, 100, 124);
    ok(cancel_cmd(p, o));
    expect_done_ev(&LOG.ev[0], o, MATCHER_DONE_CANCELLED);
    assert_int_equal(LOG.ev[0].u.done.remaining_qty, 16);
    matcher_cmd c = offer_cmd(p, P_200, 16, 200, 300);
    c.expire_at_hour = 60;
    uint64_t o2 = place(c);
    ok(clock_cmd(60));
    expect_done_ev(&LOG.ev[1], o2, MATCHER_DONE_EXPIRED);
    assert_int_equal(LOG.ev[1].u.done.remaining_qty, 16);
}

static void test_withdraw_validation_order(void **state)
{
    (void)state;
    uint32_t a = buyer(1000000LL);
    rejected(money_cmd(MATCHER_CMD_WITHDRAW, 77, -1), MATCHER_REJ_UNKNOWN_ACCOUNT);
    /* bad amount before funds */
    rejected(money_cmd(MATCHER_CMD_WITHDRAW, a, MATCHER_MAX_AMOUNT_MICROS + 1),
             MATCHER_REJ_BAD_AMOUNT);
    rejected(money_cmd(MATCHER_CMD_WITHDRAW, a, 1000001LL), MATCHER_REJ_INSUFFICIENT_FUNDS);
    assert_int_equal(LOG.ev[0].u.rejected.order_id, 0);
    /* deposit: account, amount, then the balance limit */
    rejected(money_cmd(MATCHER_CMD_DEPOSIT, 77, 0), MATCHER_REJ_UNKNOWN_ACCOUNT);
    rejected(money_cmd(MATCHER_CMD_DEPOSIT, a, MATCHER_MAX_AMOUNT_MICROS + 1),
             MATCHER_REJ_BAD_AMOUNT);
    /* the fee account takes deposits too */
    deposit(MATCHER_FEE_ACCOUNT, 5);
    expect_balance(MATCHER_FEE_ACCOUNT, 5, 0);
}

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_price_must_be_positive),
        T(test_price_must_be_a_multiple_of_the_tick),
        T(test_price_at_most_1000_dollars),
        T(test_qty_must_be_a_positive_multiple_of_the_lot),
        T(test_qty_at_most_100000_gpus),
        T(test_min_qty_must_be_a_lot_multiple_not_above_qty),
        T(test_window_end_must_be_after_start),
        T(test_window_at_most_8760_hours),
        T(test_window_starting_before_the_clock_hour_is_in_the_past),
        T(test_window_start_at_most_two_years_ahead),
        T(test_window_checks_run_in_the_documented_order),
        T(test_unknown_market_account_and_side_are_rejected),
        T(test_selling_needs_provider_role_buying_needs_buyer_role),
        T(test_tif_must_be_known_and_fok_is_for_bids_only),
        T(test_single_provider_is_for_bids_and_must_be_0_or_1),
        T(test_min_hours_is_for_offers_and_within_the_window),
        T(test_expire_at_must_be_after_the_clock_hour),
        T(test_validation_order_first_failure_wins),
        T(test_rejected_command_emits_one_event_and_changes_nothing),
        T(test_unknown_command_type_is_rejected),
        T(test_accounts_get_sequential_ids_after_the_fee_account),
        T(test_account_roles_must_be_known_bits),
        T(test_deposit_credits_balance_with_events),
        T(test_deposit_amount_must_be_positive_and_at_most_1e9_dollars),
        T(test_deposit_cannot_pass_the_balance_limit),
        T(test_withdrawal_debits_balance_with_events),
        T(test_withdrawal_never_takes_more_than_available),
        T(test_money_is_conserved_through_trades_fees_and_withdrawals),
        T(test_bid_hold_is_notional_plus_the_largest_fee),
        T(test_bid_rejected_when_available_does_not_cover_hold),
        T(test_hold_uses_the_larger_of_maker_and_taker_fees),
        T(test_hold_fee_rounds_down),
        T(test_hold_released_on_cancel),
        T(test_hold_released_on_expiry),
        T(test_hold_released_on_fill_at_a_better_price),
        T(test_hold_recomputed_for_remainder_after_partial_fill),
        T(test_offer_keeps_remaining_capacity_hour_by_hour),
        T(test_offer_sells_different_windows_to_different_bids),
        T(test_offer_done_when_every_open_hour_is_sold),
        T(test_bid_fill_needs_one_offer_covering_the_whole_window),
        T(test_bid_fills_from_several_offers_each_for_the_whole_window),
        T(test_bid_all_or_none_waits_for_whole_quantity),
        T(test_resting_aon_bid_fills_when_new_offer_completes_it),
        T(test_bid_min_qty_allows_partial_fills),
        T(test_bid_min_qty_refuses_smaller_fills),
        T(test_bid_min_qty_last_remainder_may_be_smaller),
        T(test_single_provider_bid_fills_from_one_provider_only),
        T(test_single_provider_partial_bid_locks_to_first_provider),
        T(test_offer_min_qty_refuses_smaller_fills),
        T(test_offer_min_hours_refuses_shorter_windows),
        T(test_gtc_rests_until_filled),
        T(test_ioc_fills_what_it_can_and_cancels_the_rest),
        T(test_ioc_all_or_none_bid_fills_entirely_or_not_at_all),
        T(test_ioc_offer_sells_what_it_can_and_leaves),
        T(test_fok_fills_all_now_or_nothing),
        T(test_post_only_rejected_when_it_would_match),
        T(test_post_only_rests_when_it_would_not_match),
        T(test_expire_at_ends_a_resting_order_early),
        T(test_bid_expires_when_clock_reaches_its_start),
        T(test_bid_starting_this_hour_is_accepted_and_rests_until_next_advance),
        T(test_offer_loses_each_hour_as_the_clock_passes),
        T(test_expired_orders_leave_in_expiry_hour_then_id_order),
        T(test_clock_cannot_move_backwards),
        T(test_cancel_returns_the_unfilled_part),
        T(test_cancel_only_by_the_owner),
        T(test_cancel_of_unknown_or_closed_order_is_rejected),
        T(test_replace_lower_qty_same_price_keeps_priority),
        T(test_replace_raising_qty_loses_priority),
        T(test_replace_changing_price_loses_priority),
        T(test_replace_runs_matching_with_the_order_as_taker),
        T(test_replace_must_change_something),
        T(test_replace_bid_qty_must_stay_above_filled),
        T(test_replace_offer_qty_shifts_every_hour_never_below_zero),
        T(test_replace_bid_new_hold_must_fit_available_plus_old_hold),
        T(test_replace_post_only_that_would_trade_is_rejected),
        T(test_bid_takes_cheapest_offer_first),
        T(test_equal_price_offers_fill_earliest_first),
        T(test_offer_fills_highest_bid_first),
        T(test_equal_price_bids_fill_earliest_first),
        T(test_book_walk_lists_orders_in_matching_priority),
        T(test_offer_priced_above_the_bid_is_not_eligible),
        T(test_offer_lacking_quantity_in_any_hour_is_not_eligible),
        T(test_offer_window_must_cover_the_bid_window),
        T(test_offer_sweep_serves_bids_beside_hours_it_sold),
        T(test_offer_sweep_reads_bids_behind_and_inside_the_level_prefix),
        T(test_trade_price_is_the_resting_offer_price_and_saving_reported),
        T(test_trade_price_is_the_resting_bid_price_when_bid_came_first),
        T(test_trade_price_follows_the_priority_stamp_after_replace),
        T(test_taker_fee_charged_to_the_buyer_when_the_bid_takes),
        T(test_taker_fee_charged_to_the_provider_when_the_offer_takes),
        T(test_maker_and_taker_fees_both_go_to_the_fee_account),
        T(test_fees_round_down_in_the_users_favour),
        T(test_each_fill_creates_a_lease_matching_its_trade),
        T(test_self_trade_is_never_made_the_other_offer_fills),
        T(test_self_trade_only_option_leaves_both_resting),
        T(test_same_commands_give_same_events_ids_and_hash),
        T(test_order_ids_are_assigned_in_sequence),
        T(test_full_order_table_rejects_book_full),
        T(test_full_market_rejects_book_full_other_markets_open),
        T(test_full_account_table_rejects_accounts_full),
        T(test_config_out_of_range_creates_no_engine),
        T(test_default_config_values),
        T(test_event_order_of_a_bid_filled_on_entry),
        T(test_event_order_of_an_offer_filling_two_bids),
        T(test_rejection_reasons_map_to_api_codes),
        T(test_one_command_makes_at_most_4096_fills),
    T(test_offer_left_by_fill_budget_still_serves_later_bids),
        T(test_single_provider_first_provider_to_cover_wins),
        T(test_aon_bid_skips_an_offer_whose_min_qty_it_cannot_meet),
        T(test_offer_min_qty_applies_to_every_fill),
        T(test_bid_replace_lower_qty_same_price_keeps_priority),
        T(test_replaced_offer_matches_resting_bids_as_taker),
        T(test_biggest_bid_is_refused_for_funds_without_overflow),
        T(test_accepted_event_echoes_the_order),
        T(test_done_event_names_the_order_owner_market_and_side),
        T(test_partly_filled_bid_expiry_releases_the_rest_of_its_hold),
        T(test_markets_are_separate_books),
        T(test_replace_validation_order_first_failure_wins),
        T(test_replace_qty_below_min_qty_is_rejected),
        T(test_replace_offer_down_to_zero_everywhere_is_done_filled),
        T(test_offer_done_when_open_hours_sold_even_if_passed_hours_were_not),
        T(test_clock_jump_far_ahead_expires_everything_and_has_a_ceiling),
        T(test_done_remaining_qty_of_an_offer_is_its_largest_open_hour),
        T(test_withdraw_validation_order),
    };
#undef T
    return cmocka_run_group_tests(tests, NULL, NULL);
}
