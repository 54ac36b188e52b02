/* gen.c — a seeded stream of real matcher events for tests, the benchmark
 * and `gpux-ledger gen`.
 *
 * Why the real engine: the ledger must settle exactly what the matcher
 * emits (event order, fees, BALANCE after every change), so the stream is
 * produced by matcher_create/matcher_apply driven by a command mix that
 * depends only on the seed. Rejected commands are dropped, as the journal
 * drops them, so accepted commands get seq 1, 2, ... */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "gpux_assert.h"
#include "ledger/ledger.h"

#define GEN_START_HOUR 491000         /* late 2025, UTC hours since epoch */
#define GEN_BASE_PRICE_MICROS 2000000 /* $2.00 per GPU-hour */
#define GEN_TICK_MICROS 100
#define GEN_LOT 8
#define GEN_CMD_EVENTS_MAX 32768      /* events of one command we keep */
#define GEN_COMMANDS_PER_HOUR 400     /* clock advances to keep books small */

/* The order of matcher/catalog.default, so market ids agree with it:
 * H100/us-east = 0, H100/us-central = 1, ... */
static const char *const gen_gpus[] = {"H100", "H200", "B200", "A100", "MI300X", "L40S"};
static const char *const gen_regions[] = {"us-east", "us-central", "us-west",
                                          "eu-west", "eu-north", "apac"};

typedef struct gen_state {
    matcher_engine *eng;
    ledger_rec *recs;      /* the current command's events */
    uint32_t n;
    bool overflow;
    uint64_t rng;
    uint64_t seq;
    int64_t now_hour;
    int64_t ts_us;
    ledger_gen_stats *st;
} gen_state;

static uint64_t rnd(gen_state *g)
{
    /* splitmix64: tiny, seedable, good enough for a command mix */
    uint64_t z = (g->rng += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static uint32_t below(gen_state *g, uint32_t n)
{
    return (uint32_t)(rnd(g) % n);
}

static void collect(void *ctx, const matcher_event *ev)
{
    gen_state *g = ctx;
    if (g->n == GEN_CMD_EVENTS_MAX) {
        g->overflow = true;
        return;
    }
    ledger_rec *r = &g->recs[g->n];
    memset(r, 0, sizeof *r);
    r->idx = g->n;
    r->ev = *ev;
    if (ev->type == MATCHER_EV_ACCOUNT)
        snprintf(r->name, sizeof r->name, "user-%u", ev->u.account.account);
    g->n++;
}

/* Applies one command; hands its events to fn when accepted. */
static int apply(gen_state *g, matcher_cmd *c, ledger_gen_fn fn, void *ctx)
{
    g->ts_us += 1000;
    if (g->ts_us < g->now_hour * 3600000000LL) g->ts_us = g->now_hour * 3600000000LL;
    c->ts_us = g->ts_us;
    g->n = 0;
    g->overflow = false;
    matcher_reason r = matcher_apply(g->eng, c, collect, g);
    if (r != MATCHER_OK) {
        g->st->rejected++;
        return 0;
    }
    GPUX_ASSERT(!g->overflow && g->n > 0);
    g->seq++;
    for (uint32_t i = 0; i < g->n; i++) {
        g->recs[i].seq = g->seq;
        const matcher_event *e = &g->recs[i].ev;
        if (e->type == MATCHER_EV_TRADE) g->st->trades++;
        if (e->type == MATCHER_EV_DEPOSIT) g->st->deposited_micros += e->u.transfer.amount_micros;
        if (e->type == MATCHER_EV_WITHDRAWAL) g->st->withdrawn_micros += e->u.transfer.amount_micros;
    }
    g->st->commands++;
    g->st->events += g->n;
    return fn(ctx, g->recs, g->n);
}

static void make_order(gen_state *g, matcher_cmd *c, uint32_t n_markets, uint32_t n_accounts)
{
    bool sell = below(g, 100) < 45;
    memset(c, 0, sizeof *c);
    c->type = MATCHER_CMD_NEW_ORDER;
    c->side = sell ? MATCHER_SELL : MATCHER_BUY;
    c->market = below(g, n_markets);
    c->account = 1 + below(g, n_accounts);
    c->qty = GEN_LOT * (int32_t)(1 + below(g, 4));
    c->start_hour = g->now_hour + below(g, 12);
    if (sell) {
        c->end_hour = c->start_hour + 12 + below(g, 24);
        c->price_micros = GEN_BASE_PRICE_MICROS + GEN_TICK_MICROS * below(g, 20);
        c->qty *= 2;
        c->tif = MATCHER_GTC;
    } else {
        c->end_hour = c->start_hour + 1 + below(g, 12);
        c->price_micros = GEN_BASE_PRICE_MICROS + GEN_TICK_MICROS * (5 + below(g, 20));
        c->min_qty = below(g, 10) < 7 ? GEN_LOT : 0;
        c->tif = below(g, 10) < 6 ? MATCHER_IOC : MATCHER_GTC;
    }
}

static int run_mix(gen_state *g, const ledger_gen_params *p, ledger_gen_fn fn, void *ctx)
{
    uint64_t max_commands = 1000 + 200 * p->n_trades; /* a bound, never reached */
    int rc = 0;
    for (uint64_t k = 0; rc == 0 && g->st->trades < p->n_trades && k < max_commands; k++) {
        matcher_cmd c;
        uint32_t pick = below(g, 100);
        if (k % GEN_COMMANDS_PER_HOUR == GEN_COMMANDS_PER_HOUR - 1) {
            memset(&c, 0, sizeof c);
            c.type = MATCHER_CMD_ADVANCE_CLOCK;
            c.clock_hour = ++g->now_hour;
        } else if (pick < 94) {
            make_order(g, &c, p->n_markets, p->n_accounts);
        } else {
            memset(&c, 0, sizeof c);
            c.type = pick < 97 ? MATCHER_CMD_DEPOSIT : MATCHER_CMD_WITHDRAW;
            c.account = below(g, p->n_accounts + 1); /* the fee account too */
            c.amount_micros = 1 + (int64_t)(rnd(g) % (500LL * MATCHER_MICROS_PER_USD));
        }
        rc = apply(g, &c, fn, ctx);
    }
    return rc;
}

static int setup(gen_state *g, const ledger_gen_params *p, ledger_gen_fn fn, void *ctx)
{
    matcher_cmd c;
    memset(&c, 0, sizeof c);
    c.type = MATCHER_CMD_ADVANCE_CLOCK;
    c.clock_hour = g->now_hour;
    int rc = apply(g, &c, fn, ctx);
    for (uint32_t a = 1; rc == 0 && a <= p->n_accounts; a++) {
        memset(&c, 0, sizeof c);
        c.type = MATCHER_CMD_CREATE_ACCOUNT;
        c.roles = MATCHER_ROLE_BUYER | MATCHER_ROLE_PROVIDER;
        rc = apply(g, &c, fn, ctx);
        if (rc) break;
        memset(&c, 0, sizeof c);
        c.type = MATCHER_CMD_DEPOSIT;
        c.account = a;
        c.amount_micros = (int64_t)(100000 + below(g, 900000)) * MATCHER_MICROS_PER_USD;
        rc = apply(g, &c, fn, ctx);
    }
    return rc;
}

void ledger_gen_catalog(uint32_t n_markets, matcher_catalog *cat)
{
    GPUX_ASSERT(n_markets >= 1 && n_markets <= GPUX_ARRAY_LEN(gen_gpus) * GPUX_ARRAY_LEN(gen_regions));
    memset(cat, 0, sizeof *cat);
    for (uint32_t m = 0; m < n_markets; m++) {
        int id = matcher_catalog_add(cat, gen_gpus[m / GPUX_ARRAY_LEN(gen_regions)],
                                     gen_regions[m % GPUX_ARRAY_LEN(gen_regions)], GEN_LOT,
                                     GEN_TICK_MICROS);
        GPUX_ASSERT(id == (int)m);
    }
}

int ledger_gen_run(const ledger_gen_params *p, ledger_gen_fn fn, void *ctx,
                   matcher_catalog *cat, ledger_gen_stats *stats, char *err, size_t errlen)
{
    memset(stats, 0, sizeof *stats);
    if (p->n_accounts < 2 || p->n_accounts > 10000 || p->n_markets < 1 ||
        p->n_markets > GPUX_ARRAY_LEN(gen_gpus) * GPUX_ARRAY_LEN(gen_regions)) {
        snprintf(err, errlen, "generator: need 2..10000 accounts and 1..36 markets");
        return -1;
    }
    ledger_gen_catalog(p->n_markets, cat);
    matcher_config cfg;
    matcher_config_default(&cfg);
    cfg.max_accounts = p->n_accounts + 1;
    cfg.max_orders = 200000;
    cfg.max_orders_per_market = 50000;
    cfg.max_segments = 400000;
    gen_state g = {.rng = p->seed, .now_hour = GEN_START_HOUR, .st = stats};
    g.ts_us = GEN_START_HOUR * 3600000000LL;
    g.eng = matcher_create(cat, &cfg);
    g.recs = malloc(sizeof *g.recs * GEN_CMD_EVENTS_MAX);
    if (!g.eng || !g.recs) {
        snprintf(err, errlen, "generator: cannot create the engine (memory)");
        matcher_destroy(g.eng);
        free(g.recs);
        return -1;
    }
    int rc = setup(&g, p, fn, ctx);
    if (rc == 0) rc = run_mix(&g, p, fn, ctx);
    matcher_account_view fee;
    if (matcher_account_get(g.eng, MATCHER_FEE_ACCOUNT, &fee) == 0)
        stats->fee_balance_micros = fee.balance_micros;
    matcher_destroy(g.eng);
    free(g.recs);
    return rc;
}
