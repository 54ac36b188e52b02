/* gen.c — seeded command-stream generator (see gen.h for the contract).
 *
 * Why it looks like this: a differential test is only as good as the
 * commands it feeds. Uniformly random fields would be rejected almost
 * always and would almost never cross, so the generator keeps a small
 * picture of the market (accounts and their roles, live orders, the clock)
 * from the events it is shown, and aims: few price levels around $2.00 so
 * bids and offers cross, bid windows cut out of live offers' windows, a
 * share of accounts with both roles for self-trade skips, and a fixed
 * share of deliberately bad commands of every kind. All sizes are fixed
 * (GEN_MAX_*) and every loop is bounded. */
#include "tests/support/gen.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "gpux_assert.h"

#define GEN_MAX_ACCOUNTS 512   /* accounts the generator remembers */
#define GEN_MAX_LIVE 2048      /* live orders it remembers */
#define GEN_DEAD_RING 64       /* recently closed order ids */
#define GEN_BASE_PRICE 2000000 /* $2.00 per GPU-hour */
#define GEN_LEVEL_STEP 50000   /* $0.05 between price levels */
#define GEN_TICK 100           /* $0.0001 */
#define GEN_WHALE 1u           /* account that keeps receiving max deposits */

typedef struct gen_order {
    uint64_t id;
    uint32_t account;
    uint32_t market;
    uint8_t side;
    int32_t qty;
    int64_t price_micros;
    int64_t start_hour;
    int64_t end_hour;
} gen_order;

struct gen {
    uint64_t rng;
    matcher_catalog cat;
    bool observed;        /* gen_observe has been called: trust events */
    int64_t now;
    int64_t ts_us;
    uint32_t n_accounts;  /* fee account included */
    uint32_t roles[GEN_MAX_ACCOUNTS];
    gen_order live[GEN_MAX_LIVE];
    uint32_t n_live;
    uint64_t dead[GEN_DEAD_RING];
    uint32_t n_dead;
    uint64_t next_id;     /* guess of the next order id */
};

/* ---- randomness ----------------------------------------------------------- */

uint64_t gen_splitmix64(uint64_t *state)
{
    uint64_t z = (*state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

/* Uniform-ish integer in [0, n) (n > 0; the modulo bias is irrelevant). */
static uint64_t gen_below(gen *g, uint64_t n)
{
    GPUX_ASSERT(n > 0);
    return gen_splitmix64(&g->rng) % n;
}

/* Integer in [lo, hi]. */
static int64_t gen_range(gen *g, int64_t lo, int64_t hi)
{
    GPUX_ASSERT(hi >= lo);
    return lo + (int64_t)gen_below(g, (uint64_t)(hi - lo + 1));
}

/* True with probability pct/100. */
static bool gen_pct(gen *g, uint32_t pct)
{
    return gen_below(g, 100) < pct;
}

/* ---- catalog and config -------------------------------------------------- */

void gen_catalog(uint64_t seed, matcher_catalog *cat)
{
    static const char *gpus[] = {"H100", "B200", "A100"};
    static const char *regions[] = {"us-east", "eu-west", "apac"};
    uint64_t s = seed ^ 0xca7a109ULL;
    memset(cat, 0, sizeof *cat);
    cat->n_markets = 1 + (uint32_t)(gen_splitmix64(&s) % 3);
    for (uint32_t i = 0; i < cat->n_markets; i++) {
        matcher_market_def *mk = &cat->markets[i];
        snprintf(mk->gpu, sizeof mk->gpu, "%s", gpus[i]);
        snprintf(mk->region, sizeof mk->region, "%s", regions[gen_splitmix64(&s) % 3]);
        mk->lot = gen_splitmix64(&s) % 3 == 0 ? 1 : 8;
        mk->tick_micros = GEN_TICK;
    }
}

void gen_config(uint64_t seed, matcher_config *cfg)
{
    static const int32_t makers[] = {0, 0, 5, 20, 0};
    static const int32_t takers[] = {10, 0, 25, 10, 50};
    uint64_t s = seed ^ 0xc0f16ULL;
    uint64_t pick = gen_splitmix64(&s) % GPUX_ARRAY_LEN(makers);
    memset(cfg, 0, sizeof *cfg);
    cfg->max_accounts = 1024;
    cfg->max_orders = 4096;
    cfg->max_orders_per_market = 4096;
    cfg->max_segments = 1u << 20;
    cfg->maker_fee_bps = makers[pick];
    cfg->taker_fee_bps = takers[pick];
}

/* ---- life cycle ----------------------------------------------------------- */

gen *gen_create(uint64_t seed, const matcher_catalog *cat)
{
    gen *g = calloc(1, sizeof *g);
    if (!g)
        return NULL;
    g->rng = seed;
    g->cat = *cat;
    g->ts_us = 1800000000LL * 1000000LL;
    g->n_accounts = 1;
    g->next_id = 1;
    return g;
}

void gen_destroy(gen *g) { free(g); }

/* ---- what the generator knows ---------------------------------------------- */

static void gen_forget(gen *g, uint64_t id)
{
    for (uint32_t i = 0; i < g->n_live; i++) {
        if (g->live[i].id != id)
            continue;
        g->live[i] = g->live[--g->n_live];
        break;
    }
    g->dead[g->n_dead++ % GEN_DEAD_RING] = id;
}

void gen_observe(gen *g, const matcher_event *ev)
{
    g->observed = true;
    switch (ev->type) {
    case MATCHER_EV_ACCOUNT:
        if (ev->u.account.account < GEN_MAX_ACCOUNTS)
            g->roles[ev->u.account.account] = ev->u.account.roles;
        if (ev->u.account.account + 1 > g->n_accounts)
            g->n_accounts = ev->u.account.account + 1;
        break;
    case MATCHER_EV_ACCEPTED: {
        const matcher_order_info *o = &ev->u.order;
        if (o->order_id >= g->next_id)
            g->next_id = o->order_id + 1;
        if (g->n_live < GEN_MAX_LIVE)
            g->live[g->n_live++] = (gen_order){o->order_id, o->account, o->market,
                                               o->side, o->qty, o->price_micros,
                                               o->start_hour, o->end_hour};
        break;
    }
    case MATCHER_EV_REPLACED:
        for (uint32_t i = 0; i < g->n_live; i++)
            if (g->live[i].id == ev->u.order.order_id) {
                g->live[i].qty = ev->u.order.qty;
                g->live[i].price_micros = ev->u.order.price_micros;
            }
        break;
    case MATCHER_EV_DONE: gen_forget(g, ev->u.done.order_id); break;
    case MATCHER_EV_CLOCK: g->now = ev->u.clock.hour; break;
    default: break;
    }
}

/* ---- picking things -------------------------------------------------------- */

static uint32_t gen_roles_of(const gen *g, uint32_t account)
{
    return account < GEN_MAX_ACCOUNTS ? g->roles[account] : 0;
}

/* An account that has role (when one can be found quickly), else any. */
static uint32_t gen_account_with(gen *g, uint32_t role)
{
    for (int tries = 0; tries < 16; tries++) {
        uint32_t a = 1 + (uint32_t)gen_below(g, g->n_accounts > 1 ? g->n_accounts - 1 : 1);
        if (gen_roles_of(g, a) & role)
            return a;
    }
    return (uint32_t)gen_below(g, g->n_accounts);
}

/* A price on one of a few levels; sometimes a few ticks off the level, so
 * notionals are not round and fee rounding (floor) is exercised. */
static int64_t gen_level_price(gen *g, int lo, int hi)
{
    int64_t p = GEN_BASE_PRICE + gen_range(g, lo, hi) * GEN_LEVEL_STEP;
    if (gen_pct(g, 30))
        p += gen_range(g, 1, 37) * GEN_TICK;
    return p;
}

/* A random live order of (market, side), or NULL. */
static const gen_order *gen_live_of(gen *g, uint32_t market, uint8_t side)
{
    if (g->n_live == 0)
        return NULL;
    uint32_t start = (uint32_t)gen_below(g, g->n_live);
    for (uint32_t k = 0; k < g->n_live; k++) {
        const gen_order *o = &g->live[(start + k) % g->n_live];
        if (o->market == market && o->side == side)
            return o;
    }
    return NULL;
}

static uint64_t gen_dead_id(gen *g)
{
    if (g->n_dead == 0)
        return g->next_id + gen_below(g, 5);
    uint32_t n = g->n_dead < GEN_DEAD_RING ? g->n_dead : GEN_DEAD_RING;
    return g->dead[gen_below(g, n)];
}

/* ---- commands ---------------------------------------------------------------- */

static void gen_create_account(gen *g, matcher_cmd *c)
{
    static const uint32_t mixes[] = {
        MATCHER_ROLE_BUYER, MATCHER_ROLE_BUYER, MATCHER_ROLE_BUYER,
        MATCHER_ROLE_PROVIDER, MATCHER_ROLE_PROVIDER, MATCHER_ROLE_PROVIDER,
        MATCHER_ROLE_BUYER | MATCHER_ROLE_PROVIDER,
        MATCHER_ROLE_BUYER | MATCHER_ROLE_PROVIDER,
        MATCHER_ROLE_BUYER | MATCHER_ROLE_PROVIDER | MATCHER_ROLE_ADMIN,
        MATCHER_ROLE_ADMIN, 0,
    };
    c->type = MATCHER_CMD_CREATE_ACCOUNT;
    c->roles = mixes[gen_below(g, GPUX_ARRAY_LEN(mixes))];
    if (gen_pct(g, 4))
        c->roles |= 8u << gen_below(g, 8); /* unknown role bit */
    if (!g->observed && !(c->roles & ~7u) && g->n_accounts < GEN_MAX_ACCOUNTS)
        g->roles[g->n_accounts++] = c->roles;
}

static void gen_transfer(gen *g, matcher_cmd *c, bool deposit)
{
    c->type = deposit ? MATCHER_CMD_DEPOSIT : MATCHER_CMD_WITHDRAW;
    c->account = (uint32_t)gen_below(g, g->n_accounts);
    static const int64_t scales[] = {1000, 10000, 100000, 1000000};
    c->amount_micros = gen_range(g, 1, 40) * scales[gen_below(g, 4)] * MATCHER_MICROS_PER_USD;
    if (!deposit)
        c->amount_micros /= 4;
    uint64_t bad = gen_below(g, 100);
    if (bad < 2)
        c->amount_micros = 0;
    else if (bad < 4)
        c->amount_micros = -c->amount_micros;
    else if (bad < 5)
        c->amount_micros = MATCHER_MAX_AMOUNT_MICROS + 1;
    else if (bad < 7)
        c->account = g->n_accounts + (uint32_t)gen_below(g, 3);
    else if (bad < 25 && deposit) {
        c->account = GEN_WHALE; /* keeps growing until balance_limit */
        c->amount_micros = MATCHER_MAX_AMOUNT_MICROS;
    }
}

static void gen_window_offer(gen *g, matcher_cmd *c)
{
    c->start_hour = g->now + gen_range(g, 0, 4);
    uint64_t kind = gen_below(g, 100);
    int64_t len = kind < 70 ? gen_range(g, 6, 36) : kind < 92 ? gen_range(g, 1, 6)
                                                               : gen_range(g, 36, 300);
    c->end_hour = c->start_hour + len;
}

/* Bid window: mostly cut out of a live offer of the market. */
static void gen_window_bid(gen *g, matcher_cmd *c)
{
    const gen_order *o = gen_pct(g, 80) ? gen_live_of(g, c->market, MATCHER_SELL) : NULL;
    int64_t a = o ? (o->start_hour > g->now ? o->start_hour : g->now) : 0;
    if (o && a < o->end_hour) {
        int64_t span = o->end_hour - a;
        c->start_hour = a + gen_range(g, 0, span > 3 ? 2 : 0);
        int64_t room = o->end_hour - c->start_hour;
        c->end_hour = c->start_hour + gen_range(g, 1, room < 48 ? room : 48);
        if (gen_pct(g, 10) && c->end_hour < o->end_hour + 2)
            c->end_hour += 1; /* just too long for that offer */
        return;
    }
    c->start_hour = g->now + gen_range(g, 0, 6);
    c->end_hour = c->start_hour + gen_range(g, 1, 30);
}

/* Breaks exactly one field of a new order, of a kind chosen at random. */
static void gen_break_order(gen *g, matcher_cmd *c, int32_t lot)
{
    switch (gen_below(g, 24)) {
    case 0: c->qty = 0; break;
    case 1: c->qty = -lot; break;
    case 2: c->qty = lot > 1 ? lot + 1 : MATCHER_MAX_QTY + 1; break;
    case 3: c->qty = MATCHER_MAX_QTY + lot; break;
    case 4: c->min_qty = c->qty + lot; break;
    case 5: c->min_qty = -lot; break;
    case 6: c->min_qty = lot > 1 ? lot / 2 : -1; break;
    case 7: c->price_micros = 0; break;
    case 8: c->price_micros = -GEN_TICK; break;
    case 9: c->price_micros += 1; break;
    case 10: c->price_micros = MATCHER_MAX_PRICE_MICROS + GEN_TICK; break;
    case 11: c->end_hour = c->start_hour; break;
    case 12: c->end_hour = c->start_hour + MATCHER_MAX_WINDOW_HOURS + 1; break;
    case 13: c->start_hour = g->now - 1 - gen_range(g, 0, 3); break;
    case 14:
        c->start_hour = g->now + MATCHER_MAX_AHEAD_HOURS + 1;
        c->end_hour = c->start_hour + 4;
        break;
    case 15: c->min_hours = c->side == MATCHER_BUY ? 1 : (int32_t)(c->end_hour - c->start_hour) + 1; break;
    case 16: c->min_hours = -1; break;
    case 17: c->single_provider = c->side == MATCHER_BUY ? 2 : 1; break;
    case 18: c->tif = c->side == MATCHER_SELL ? MATCHER_FOK : 4 + (uint8_t)gen_below(g, 3); break;
    case 19: c->side = gen_pct(g, 50) ? 0 : 3; break;
    case 20: c->market = g->cat.n_markets + (uint32_t)gen_below(g, 2); break;
    case 21: c->account = g->n_accounts + (uint32_t)gen_below(g, 2); break;
    case 22: c->expire_at_hour = g->now - (int64_t)gen_below(g, 2); break;
    default: /* wrong role: a seller that is not a provider, or the reverse */
        c->account = gen_account_with(g, c->side == MATCHER_BUY ? MATCHER_ROLE_PROVIDER
                                                                : MATCHER_ROLE_BUYER);
        break;
    }
    if (c->expire_at_hour < 0)
        c->expire_at_hour = 0;
}

static void gen_new_order(gen *g, matcher_cmd *c)
{
    c->type = MATCHER_CMD_NEW_ORDER;
    c->market = (uint32_t)gen_below(g, g->cat.n_markets);
    int32_t lot = g->cat.markets[c->market].lot;
    bool bid = gen_pct(g, 52);
    c->side = bid ? MATCHER_BUY : MATCHER_SELL;
    c->account = gen_account_with(g, bid ? MATCHER_ROLE_BUYER : MATCHER_ROLE_PROVIDER);
    uint64_t tif = gen_below(g, 100);
    c->tif = tif < 55 ? MATCHER_GTC : tif < 70 ? MATCHER_IOC
           : tif < 82 ? (bid ? MATCHER_FOK : MATCHER_GTC) : MATCHER_POST_ONLY;
    if (bid) {
        c->qty = lot * (int32_t)(gen_pct(g, 85) ? gen_range(g, 1, 4) : gen_range(g, 5, 40));
        c->min_qty = gen_pct(g, 50) ? 0 : lot * (int32_t)gen_range(g, 1, 2);
        if (c->min_qty > c->qty)
            c->min_qty = c->qty;
        c->single_provider = gen_pct(g, 20);
        c->price_micros = gen_level_price(g, -2, 3);
        gen_window_bid(g, c);
    } else {
        c->qty = lot * (int32_t)gen_range(g, 1, 6);
        c->min_qty = gen_pct(g, 80) ? 0 : lot * (int32_t)gen_range(g, 1, 2);
        if (c->min_qty > c->qty)
            c->min_qty = c->qty;
        c->price_micros = gen_level_price(g, -3, 2);
        gen_window_offer(g, c);
        int64_t len = c->end_hour - c->start_hour;
        c->min_hours = gen_pct(g, 75) ? 0 : (int32_t)gen_range(g, 1, len < 24 ? len : 24);
    }
    if (gen_pct(g, 15))
        c->expire_at_hour = g->now + gen_range(g, 1, 30);
    if (gen_pct(g, 7))
        gen_break_order(g, c, lot);
    if (!g->observed)
        g->next_id++; /* blind guess: most orders are accepted */
}

/* An order id to cancel or replace, and the account asking. */
static void gen_target(gen *g, matcher_cmd *c)
{
    uint64_t kind = gen_below(g, 100);
    if (kind < 75 && g->n_live > 0) {
        const gen_order *o = &g->live[gen_below(g, g->n_live)];
        c->order_id = o->id;
        c->account = o->account;
        if (kind < 8)
            c->account = (uint32_t)gen_below(g, g->n_accounts + 1); /* maybe not the owner */
        return;
    }
    c->order_id = kind < 92 ? gen_dead_id(g) : kind < 97 ? g->next_id + gen_below(g, 3) : 0;
    c->account = (uint32_t)gen_below(g, g->n_accounts);
}

static void gen_cancel(gen *g, matcher_cmd *c)
{
    c->type = MATCHER_CMD_CANCEL;
    gen_target(g, c);
}

static void gen_replace(gen *g, matcher_cmd *c)
{
    c->type = MATCHER_CMD_REPLACE;
    gen_target(g, c);
    const gen_order *o = NULL;
    for (uint32_t i = 0; i < g->n_live; i++)
        if (g->live[i].id == c->order_id)
            o = &g->live[i];
    int32_t lot = o ? g->cat.markets[o->market].lot : 8;
    int64_t price = o ? o->price_micros : GEN_BASE_PRICE;
    int32_t qty = o ? o->qty : lot;
    uint64_t kind = gen_below(g, 100);
    if (kind < 35) {
        c->price_micros = price + gen_range(g, -2, 2) * GEN_LEVEL_STEP;
    } else if (kind < 70) {
        c->qty = qty + lot * (int32_t)gen_range(g, -2, 2);
    } else if (kind < 88) {
        c->price_micros = price + gen_range(g, -1, 1) * GEN_LEVEL_STEP;
        c->qty = qty + lot * (int32_t)gen_range(g, -1, 2);
    } else if (kind < 92) {
        /* nothing changes: bad_qty */
    } else if (kind < 94) {
        c->price_micros = price + 1;
    } else if (kind < 96) {
        c->qty = lot > 1 ? qty + 1 : -1;
    } else {
        c->price_micros = -GEN_TICK;
    }
    if (c->price_micros < 0 && kind < 92)
        c->price_micros = GEN_TICK;
}

static void gen_clock(gen *g, matcher_cmd *c)
{
    c->type = MATCHER_CMD_ADVANCE_CLOCK;
    uint64_t kind = gen_below(g, 1000);
    int64_t step = kind < 700 ? 1 : kind < 850 ? 0 : kind < 940 ? gen_range(g, 2, 12)
                 : kind < 975 ? gen_range(g, 24, 300) : -gen_range(g, 1, 5);
    if (kind >= 998)
        c->clock_hour = MATCHER_MAX_CLOCK_HOUR + 1;
    else
        c->clock_hour = g->now + step;
    if (c->clock_hour < 0)
        c->clock_hour = 0;
    if (!g->observed && c->clock_hour >= g->now && c->clock_hour <= MATCHER_MAX_CLOCK_HOUR)
        g->now = c->clock_hour;
}

void gen_next(gen *g, matcher_cmd *out)
{
    memset(out, 0, sizeof *out);
    g->ts_us += 1 + (int64_t)gen_below(g, 5000);
    out->ts_us = g->ts_us;
    uint64_t pick = gen_below(g, 1000);
    if (g->n_accounts < 6)
        pick = gen_pct(g, 60) ? 0 : 20; /* set up a few funded accounts first */
    if (pick < 4)
        gen_create_account(g, out);
    else if (pick < 75)
        gen_transfer(g, out, true);
    else if (pick < 95)
        gen_transfer(g, out, false);
    else if (pick < 640)
        gen_new_order(g, out);
    else if (pick < 740)
        gen_cancel(g, out);
    else if (pick < 850)
        gen_replace(g, out);
    else if (pick < 996)
        gen_clock(g, out);
    else
        out->type = (uint8_t)(gen_pct(g, 50) ? 0 : 8 + gen_below(g, 200));
}

/* ---- coverage ------------------------------------------------------------------ */

static const char *const gen_reason_names[MATCHER_REASON_COUNT] = {
    [MATCHER_OK] = "OK",
    [MATCHER_REJ_BAD_QTY] = "BAD_QTY",
    [MATCHER_REJ_BAD_WINDOW] = "BAD_WINDOW",
    [MATCHER_REJ_WINDOW_IN_PAST] = "WINDOW_IN_PAST",
    [MATCHER_REJ_BAD_PRICE] = "BAD_PRICE",
    [MATCHER_REJ_UNKNOWN_MARKET] = "UNKNOWN_MARKET",
    [MATCHER_REJ_INSUFFICIENT_FUNDS] = "INSUFFICIENT_FUNDS",
    [MATCHER_REJ_WOULD_MATCH] = "WOULD_MATCH",
    [MATCHER_REJ_UNKNOWN_ACCOUNT] = "UNKNOWN_ACCOUNT",
    [MATCHER_REJ_UNKNOWN_ORDER] = "UNKNOWN_ORDER",
    [MATCHER_REJ_FORBIDDEN] = "FORBIDDEN",
    [MATCHER_REJ_BAD_AMOUNT] = "BAD_AMOUNT",
    [MATCHER_REJ_BAD_TIF] = "BAD_TIF",
    [MATCHER_REJ_BAD_SIDE] = "BAD_SIDE",
    [MATCHER_REJ_BAD_MIN_HOURS] = "BAD_MIN_HOURS",
    [MATCHER_REJ_BAD_FLAGS] = "BAD_FLAGS",
    [MATCHER_REJ_BAD_EXPIRY] = "BAD_EXPIRY",
    [MATCHER_REJ_BAD_CLOCK] = "BAD_CLOCK",
    [MATCHER_REJ_BAD_ROLES] = "BAD_ROLES",
    [MATCHER_REJ_BAD_COMMAND] = "BAD_COMMAND",
    [MATCHER_REJ_BALANCE_LIMIT] = "BALANCE_LIMIT",
    [MATCHER_REJ_BOOK_FULL] = "BOOK_FULL",
    [MATCHER_REJ_ACCOUNTS_FULL] = "ACCOUNTS_FULL",
};

const char *gen_reason_name(uint16_t reason)
{
    if (reason >= MATCHER_REASON_COUNT || !gen_reason_names[reason])
        return "UNKNOWN_REASON";
    return gen_reason_names[reason];
}

static const char *const gen_event_names[16] = {
    [MATCHER_EV_REJECTED] = "REJECTED", [MATCHER_EV_ACCOUNT] = "ACCOUNT",
    [MATCHER_EV_DEPOSIT] = "DEPOSIT",   [MATCHER_EV_WITHDRAWAL] = "WITHDRAWAL",
    [MATCHER_EV_BALANCE] = "BALANCE",   [MATCHER_EV_ACCEPTED] = "ACCEPTED",
    [MATCHER_EV_REPLACED] = "REPLACED", [MATCHER_EV_TRADE] = "TRADE",
    [MATCHER_EV_LEASE] = "LEASE",       [MATCHER_EV_DONE] = "DONE",
    [MATCHER_EV_CLOCK] = "CLOCK",
};

static const char *const gen_done_names[8] = {
    [MATCHER_DONE_FILLED] = "filled", [MATCHER_DONE_CANCELLED] = "cancelled",
    [MATCHER_DONE_EXPIRED] = "expired", [MATCHER_DONE_UNFILLED] = "unfilled",
};

void gen_stats_event(gen_stats *s, const matcher_event *ev)
{
    s->events[ev->type < 16 ? ev->type : 0]++;
    if (ev->type == MATCHER_EV_REJECTED && ev->u.rejected.reason < MATCHER_REASON_COUNT)
        s->rejects[ev->u.rejected.reason]++;
    if (ev->type == MATCHER_EV_DONE && ev->u.done.reason < 8)
        s->done[ev->u.done.reason]++;
    if (ev->type == MATCHER_EV_TRADE) {
        s->cur_trades++;
        s->at_bid_limit += ev->u.fill.saving_micros == 0;
        s->taker_sell += ev->u.fill.taker_side == MATCHER_SELL;
    }
}

void gen_stats_command(gen_stats *s)
{
    s->commands++;
    s->multi_fill_commands += s->cur_trades >= 2;
    s->cur_trades = 0;
}

void gen_stats_print(FILE *f, const char *title, const gen_stats *s)
{
    fprintf(f, "# %s: %llu commands\n# events:", title, (unsigned long long)s->commands);
    for (int i = 1; i < 16; i++)
        if (gen_event_names[i])
            fprintf(f, " %s=%llu", gen_event_names[i], (unsigned long long)s->events[i]);
    fprintf(f, "\n# done:");
    for (int i = 1; i < 8; i++)
        if (gen_done_names[i])
            fprintf(f, " %s=%llu", gen_done_names[i], (unsigned long long)s->done[i]);
    fprintf(f, "\n# trades: multi-fill commands=%llu at-bid-limit=%llu offer-taker=%llu\n# rejects:",
            (unsigned long long)s->multi_fill_commands,
            (unsigned long long)s->at_bid_limit, (unsigned long long)s->taker_sell);
    for (int i = 1; i < MATCHER_REASON_COUNT; i++)
        fprintf(f, " %s=%llu", gen_reason_name((uint16_t)i), (unsigned long long)s->rejects[i]);
    fprintf(f, "\n");
}

void gen_describe(const matcher_cmd *c, char *buf, size_t len)
{
    snprintf(buf, len,
             "type=%u side=%u tif=%u sp=%u market=%u account=%u roles=%u ts=%lld "
             "order=%llu price=%lld amount=%lld qty=%d min_qty=%d min_hours=%d "
             "window=[%lld,%lld) expire_at=%lld clock=%lld",
             c->type, c->side, c->tif, c->single_provider, c->market, c->account,
             c->roles, (long long)c->ts_us, (unsigned long long)c->order_id,
             (long long)c->price_micros, (long long)c->amount_micros, c->qty,
             c->min_qty, c->min_hours, (long long)c->start_hour,
             (long long)c->end_hour, (long long)c->expire_at_hour,
             (long long)c->clock_hour);
}
