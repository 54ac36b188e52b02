/* report.c — what a market day did, in exact integer arithmetic.
 *
 * Fed with the accepted orders, replaces, rejects and trades of a day
 * (from the in-process replay, or from a trades file of a stack replay),
 * it keeps per-market, per-account and per-hour sums and prints them as
 * tables: VWAP, traded GPU-hours, fill rate, unfilled demand, provider
 * utilisation, fees. Sums of notionals use 128-bit integers (a day may hold
 * more than int64 micros); VWAP is notional / GPU-hours rounded half up to
 * a micro-dollar. Definitions: docs/sim.md. All tables are allocated by
 * sim_report_create; adding an order or trade allocates nothing. */
#include "sim/sim.h"

#include "gpux_assert.h"
#include "matcher/matcher.h"

#include <stdlib.h>
#include <string.h>

#define MAX_REJECT_CODES 32

typedef struct rep_order {
    int32_t market;          /* -1: not recorded */
    uint8_t side;
    uint8_t pad;
    uint16_t placed_hour;    /* day hour it was placed in */
    int32_t qty;
    int32_t filled_qty;      /* bids */
    int32_t hours;           /* window length */
    uint32_t account;
} rep_order;

typedef struct rep_account {
    char name[SIM_NAME_LEN];
    char kind[SIM_KIND_LEN];
    int64_t offered_gpu_hours;
    int64_t sold_gpu_hours;
    int64_t bought_gpu_hours;
    __int128 revenue_micros; /* notional sold */
    __int128 spent_micros;   /* notional bought */
} rep_account;

typedef struct rep_market {
    uint64_t trades;
    int64_t traded_gpu_hours;
    __int128 notional_micros;
    __int128 fees_micros;
    int64_t demand_gpu_hours;
    int64_t offered_gpu_hours;
    int64_t low_micros;
    int64_t high_micros;
} rep_market;

typedef struct rep_bucket {
    __int128 notional_micros;
    int64_t gpu_hours;
} rep_bucket;

typedef struct rep_reject {
    uint8_t op;
    char code[24];
    uint64_t count;
} rep_reject;

struct sim_report {
    int32_t hours;
    uint32_t max_orders;
    uint32_t max_accounts;
    uint32_t n_accounts;     /* 1 + highest account index seen */
    rep_order *orders;
    rep_account *accounts;
    rep_bucket *buckets;     /* [gpu][hour] */
    rep_market markets[SIM_N_MARKETS];
    rep_reject rejects[MAX_REJECT_CODES];
    uint32_t n_rejects;
    uint64_t rejects_other;
};

sim_report *sim_report_create(int32_t hours, uint32_t max_orders,
                              uint32_t max_accounts)
{
    if (hours < 1 || hours > SIM_MAX_HOURS || max_orders > SIM_MAX_ORDERS ||
        max_accounts > SIM_MAX_ACCOUNTS)
        return NULL;
    sim_report *r = calloc(1, sizeof(*r));
    if (!r)
        return NULL;
    r->hours = hours;
    r->max_orders = max_orders;
    r->max_accounts = max_accounts;
    r->orders = malloc((max_orders ? max_orders : 1) * sizeof(rep_order));
    r->accounts = calloc(max_accounts ? max_accounts : 1, sizeof(rep_account));
    r->buckets = calloc((size_t)SIM_N_GPUS * (size_t)hours, sizeof(rep_bucket));
    if (!r->orders || !r->accounts || !r->buckets) {
        sim_report_destroy(r);
        return NULL;
    }
    for (uint32_t i = 0; i < max_orders; i++)
        r->orders[i].market = -1;
    for (int m = 0; m < SIM_N_MARKETS; m++)
        r->markets[m].low_micros = r->markets[m].high_micros = -1;
    return r;
}

void sim_report_destroy(sim_report *r)
{
    if (!r)
        return;
    free(r->orders);
    free(r->accounts);
    free(r->buckets);
    free(r);
}

static void see_account(sim_report *r, uint32_t idx)
{
    if (idx + 1 > r->n_accounts)
        r->n_accounts = idx + 1;
}

int sim_report_account(sim_report *r, uint32_t idx, const char *name,
                       const char *kind)
{
    if (idx >= r->max_accounts)
        return -1;
    snprintf(r->accounts[idx].name, SIM_NAME_LEN, "%s", name);
    snprintf(r->accounts[idx].kind, SIM_KIND_LEN, "%s", kind ? kind : "");
    see_account(r, idx);
    return 0;
}

static int32_t day_hour(const sim_report *r, int64_t t_s)
{
    int64_t h = t_s / 3600;
    return (int32_t)(h < 0 ? 0 : h >= r->hours ? r->hours - 1 : h);
}

int sim_report_order(sim_report *r, const sim_cmd *c)
{
    if (c->op != SIM_OP_ORDER || c->order_idx >= r->max_orders ||
        c->account_idx >= r->max_accounts || c->market < 0 ||
        c->market >= SIM_N_MARKETS || (c->side != SIM_BUY && c->side != SIM_SELL) ||
        c->qty <= 0 || c->qty > MATCHER_MAX_QTY || c->end_hour <= c->start_hour ||
        c->end_hour - c->start_hour > MATCHER_MAX_WINDOW_HOURS ||
        r->orders[c->order_idx].market >= 0)
        return -1;
    rep_order *o = &r->orders[c->order_idx];
    *o = (rep_order){.market = c->market, .side = c->side,
                     .placed_hour = (uint16_t)day_hour(r, c->t_s), .qty = c->qty,
                     .hours = (int32_t)(c->end_hour - c->start_hour),
                     .account = c->account_idx};
    int64_t gh = (int64_t)o->qty * o->hours;
    see_account(r, c->account_idx);
    if (o->side == SIM_BUY) {
        r->markets[o->market].demand_gpu_hours += gh;
    } else {
        r->markets[o->market].offered_gpu_hours += gh;
        r->accounts[o->account].offered_gpu_hours += gh;
    }
    return 0;
}

int sim_report_replace(sim_report *r, uint32_t order_idx, int32_t qty)
{
    if (order_idx >= r->max_orders || r->orders[order_idx].market < 0 || qty < 0 ||
        qty > MATCHER_MAX_QTY)
        return -1;
    rep_order *o = &r->orders[order_idx];
    if (qty == 0 || qty == o->qty)
        return 0;
    if (o->side == SIM_BUY && qty < o->filled_qty)
        return -1;
    int64_t delta = (int64_t)(qty - o->qty) * o->hours;
    o->qty = qty;
    if (o->side == SIM_BUY) {
        r->markets[o->market].demand_gpu_hours += delta;
    } else {
        r->markets[o->market].offered_gpu_hours += delta;
        r->accounts[o->account].offered_gpu_hours += delta;
    }
    return 0;
}

void sim_report_reject(sim_report *r, uint8_t op, const char *code)
{
    for (uint32_t i = 0; i < r->n_rejects; i++)
        if (r->rejects[i].op == op && strcmp(r->rejects[i].code, code) == 0) {
            r->rejects[i].count++;
            return;
        }
    if (r->n_rejects == MAX_REJECT_CODES) {
        r->rejects_other++;
        return;
    }
    rep_reject *x = &r->rejects[r->n_rejects++];
    x->op = op;
    snprintf(x->code, sizeof(x->code), "%s", code);
    x->count = 1;
}

static bool trade_valid(const sim_report *r, const sim_trade *t)
{
    if (t->market >= SIM_N_MARKETS || t->buyer_idx >= r->max_accounts ||
        t->provider_idx >= r->max_accounts || t->buy_order_idx >= r->max_orders ||
        t->sell_order_idx >= r->max_orders || t->qty <= 0 || t->qty > MATCHER_MAX_QTY ||
        t->price_micros <= 0 || t->price_micros > MATCHER_MAX_PRICE_MICROS ||
        t->end_hour <= t->start_hour ||
        t->end_hour - t->start_hour > MATCHER_MAX_WINDOW_HOURS || t->t_s < 0 ||
        t->t_s > (int64_t)r->hours * 3600 || t->buyer_fee_micros < 0 ||
        t->provider_fee_micros < 0)
        return false;
    const rep_order *b = &r->orders[t->buy_order_idx];
    const rep_order *s = &r->orders[t->sell_order_idx];
    int64_t notional = t->price_micros * t->qty * (t->end_hour - t->start_hour);
    return b->market == (int32_t)t->market && s->market == (int32_t)t->market &&
           b->side == SIM_BUY && s->side == SIM_SELL && b->account == t->buyer_idx &&
           s->account == t->provider_idx && b->hours == t->end_hour - t->start_hour &&
           b->filled_qty + t->qty <= b->qty && t->buyer_fee_micros <= notional &&
           t->provider_fee_micros <= notional;
}

int sim_report_trade(sim_report *r, const sim_trade *t)
{
    if (!trade_valid(r, t))
        return -1;
    int64_t gh = (int64_t)t->qty * (t->end_hour - t->start_hour);
    __int128 notional = (__int128)t->price_micros * gh;
    rep_market *m = &r->markets[t->market];
    m->trades++;
    m->traded_gpu_hours += gh;
    m->notional_micros += notional;
    m->fees_micros += (__int128)t->buyer_fee_micros + t->provider_fee_micros;
    if (m->low_micros < 0 || t->price_micros < m->low_micros)
        m->low_micros = t->price_micros;
    if (t->price_micros > m->high_micros)
        m->high_micros = t->price_micros;
    r->orders[t->buy_order_idx].filled_qty += t->qty;
    r->accounts[t->provider_idx].sold_gpu_hours += gh;
    r->accounts[t->provider_idx].revenue_micros += notional;
    r->accounts[t->buyer_idx].bought_gpu_hours += gh;
    r->accounts[t->buyer_idx].spent_micros += notional;
    rep_bucket *b = &r->buckets[(t->market / SIM_N_REGIONS) * (uint32_t)r->hours +
                                (uint32_t)day_hour(r, t->t_s)];
    b->notional_micros += notional;
    b->gpu_hours += gh;
    return 0;
}

/* ---- queries ---------------------------------------------------------- */

static int64_t vwap(__int128 notional, int64_t gpu_hours)
{
    if (gpu_hours <= 0)
        return -1;
    return (int64_t)((notional + gpu_hours / 2) / gpu_hours);
}

static int32_t ratio_bps(int64_t part, int64_t whole)
{
    if (whole <= 0)
        return -1;
    return (int32_t)((__int128)part * 10000 / whole);
}

int sim_report_market(const sim_report *r, int market, sim_market_stats *out)
{
    if (market < -1 || market >= SIM_N_MARKETS)
        return -1;
    rep_market sum = {.low_micros = -1, .high_micros = -1};
    for (int m = 0; m < SIM_N_MARKETS; m++) {
        const rep_market *x = &r->markets[m];
        if (market >= 0 && m != market)
            continue;
        sum.trades += x->trades;
        sum.traded_gpu_hours += x->traded_gpu_hours;
        sum.notional_micros += x->notional_micros;
        sum.fees_micros += x->fees_micros;
        sum.demand_gpu_hours += x->demand_gpu_hours;
        sum.offered_gpu_hours += x->offered_gpu_hours;
        if (x->low_micros >= 0 && (sum.low_micros < 0 || x->low_micros < sum.low_micros))
            sum.low_micros = x->low_micros;
        if (x->high_micros > sum.high_micros)
            sum.high_micros = x->high_micros;
    }
    memset(out, 0, sizeof(*out));
    out->trades = sum.trades;
    out->traded_gpu_hours = sum.traded_gpu_hours;
    out->notional_micros = sum.notional_micros;
    out->vwap_micros = vwap(sum.notional_micros, sum.traded_gpu_hours);
    out->demand_gpu_hours = sum.demand_gpu_hours;
    out->filled_gpu_hours = sum.traded_gpu_hours;
    out->unfilled_gpu_hours = sum.demand_gpu_hours - sum.traded_gpu_hours;
    out->offered_gpu_hours = sum.offered_gpu_hours;
    out->fill_rate_bps = ratio_bps(sum.traded_gpu_hours, sum.demand_gpu_hours);
    out->utilisation_bps = ratio_bps(sum.traded_gpu_hours, sum.offered_gpu_hours);
    out->fees_micros = sum.fees_micros;
    out->low_micros = sum.low_micros;
    out->high_micros = sum.high_micros;
    return 0;
}

int64_t sim_report_vwap(const sim_report *r, int gpu_idx, int32_t h0, int32_t h1,
                        int64_t *gpu_hours)
{
    __int128 notional = 0;
    int64_t gh = 0;
    h0 = h0 < 0 ? 0 : h0;
    h1 = h1 > r->hours ? r->hours : h1;
    for (int g = 0; g < SIM_N_GPUS; g++) {
        if (gpu_idx >= 0 && g != gpu_idx)
            continue;
        for (int32_t h = h0; h < h1; h++) {
            notional += r->buckets[g * r->hours + h].notional_micros;
            gh += r->buckets[g * r->hours + h].gpu_hours;
        }
    }
    if (gpu_hours)
        *gpu_hours = gh;
    return vwap(notional, gh);
}

int64_t sim_report_unfilled(const sim_report *r, int32_t h0, int32_t h1,
                            int64_t *demand_gpu_hours)
{
    int64_t demand = 0, unfilled = 0;
    for (uint32_t i = 0; i < r->max_orders; i++) {
        const rep_order *o = &r->orders[i];
        if (o->market < 0 || o->side != SIM_BUY || o->placed_hour < h0 ||
            o->placed_hour >= h1)
            continue;
        demand += (int64_t)o->qty * o->hours;
        unfilled += (int64_t)(o->qty - o->filled_qty) * o->hours;
    }
    if (demand_gpu_hours)
        *demand_gpu_hours = demand;
    return unfilled;
}

/* ---- accessors for plot.c --------------------------------------------- */

int32_t sim_report_hours(const sim_report *r)
{
    return r->hours;
}

int64_t sim_report_bucket(const sim_report *r, int gpu_idx, int32_t hour,
                          int64_t *gpu_hours)
{
    const rep_bucket *b = &r->buckets[gpu_idx * r->hours + hour];
    *gpu_hours = b->gpu_hours;
    return vwap(b->notional_micros, b->gpu_hours);
}

/* ---- printing --------------------------------------------------------- */

static const char *pct(int32_t bps, char *buf, size_t len)
{
    if (bps < 0)
        snprintf(buf, len, "-");
    else
        snprintf(buf, len, "%d.%02d%%", bps / 100, bps % 100);
    return buf;
}

/* Money with all 6 decimals, so a column of amounts lines up. */
static const char *fixed6(__int128 micros, char *buf)
{
    sim_fmt_micros128(micros, buf);
    size_t n = strlen(buf), dot = strcspn(buf, ".");
    while (n - dot - 1 < 6)
        buf[n++] = '0';
    buf[n] = '\0';
    return buf;
}

static const char *price(int64_t micros, char *buf)
{
    if (micros < 0) {
        strcpy(buf, "-");
        return buf;
    }
    return fixed6(micros, buf);
}

static int print_market_line(const char *name, const sim_market_stats *s, FILE *out)
{
    char v[SIM_MONEY_LEN], lo[SIM_MONEY_LEN], hi[SIM_MONEY_LEN], fee[SIM_MONEY_LEN];
    char fr[16], ut[16];
    return fprintf(out, "%-18s %8llu %12lld %10s %10s %10s %8s %13lld %13lld %8s %16s\n",
                   name, (unsigned long long)s->trades, (long long)s->traded_gpu_hours,
                   price(s->vwap_micros, v), price(s->low_micros, lo),
                   price(s->high_micros, hi), pct(s->fill_rate_bps, fr, sizeof(fr)),
                   (long long)s->unfilled_gpu_hours, (long long)s->offered_gpu_hours,
                   pct(s->utilisation_bps, ut, sizeof(ut)),
                   fixed6(s->fees_micros, fee)) < 0 ? -1 : 0;
}

static int print_markets(const sim_report *r, FILE *out)
{
    sim_market_stats s;
    char name[40];
    int rc = fprintf(out, "%-18s %8s %12s %10s %10s %10s %8s %13s %13s %8s %16s\n",
                     "market", "trades", "GPU-hours", "VWAP", "low", "high", "fill",
                     "unfilled GPUh", "offered GPUh", "util", "fees") < 0;
    for (int m = 0; m < SIM_N_MARKETS; m++) {
        sim_report_market(r, m, &s);
        if (s.trades == 0 && s.demand_gpu_hours == 0 && s.offered_gpu_hours == 0)
            continue;
        snprintf(name, sizeof(name), "%s/%s", sim_gpu(m / SIM_N_REGIONS)->gpu,
                 sim_region(m % SIM_N_REGIONS));
        rc |= print_market_line(name, &s, out);
    }
    sim_report_market(r, -1, &s);
    rc |= print_market_line("all markets", &s, out);
    return rc ? -1 : 0;
}

static int print_gpus(const sim_report *r, FILE *out)
{
    int32_t half = r->hours / 2;
    int rc = fprintf(out, "\n%-8s %12s %10s %14s %14s\n", "GPU", "GPU-hours", "VWAP",
                     "VWAP 1st half", "VWAP 2nd half") < 0;
    for (int g = 0; g < SIM_N_GPUS; g++) {
        char a[SIM_MONEY_LEN], b[SIM_MONEY_LEN], c[SIM_MONEY_LEN];
        int64_t gh;
        int64_t all = sim_report_vwap(r, g, 0, r->hours, &gh);
        if (gh == 0)
            continue;
        rc |= fprintf(out, "%-8s %12lld %10s %14s %14s\n", sim_gpu(g)->gpu,
                      (long long)gh, price(all, a),
                      price(sim_report_vwap(r, g, 0, half, NULL), b),
                      price(sim_report_vwap(r, g, half, r->hours, NULL), c)) < 0;
    }
    return rc ? -1 : 0;
}

static int print_accounts(const sim_report *r, FILE *out)
{
    int rc = fprintf(out, "\n%-16s %-12s %13s %12s %8s %18s %12s %18s\n", "account",
                     "kind", "offered GPUh", "sold GPUh", "util", "revenue",
                     "bought GPUh", "spent") < 0;
    for (uint32_t i = 0; i < r->n_accounts; i++) {
        const rep_account *a = &r->accounts[i];
        char ut[16], rev[SIM_MONEY_LEN], sp[SIM_MONEY_LEN];
        if (a->offered_gpu_hours == 0 && a->bought_gpu_hours == 0)
            continue;
        rc |= fprintf(out, "%-16s %-12s %13lld %12lld %8s %18s %12lld %18s\n",
                      a->name[0] ? a->name : "?", a->kind,
                      (long long)a->offered_gpu_hours, (long long)a->sold_gpu_hours,
                      pct(ratio_bps(a->sold_gpu_hours, a->offered_gpu_hours), ut,
                          sizeof(ut)),
                      fixed6(a->revenue_micros, rev),
                      (long long)a->bought_gpu_hours,
                      fixed6(a->spent_micros, sp)) < 0;
    }
    return rc ? -1 : 0;
}

static int print_rejects(const sim_report *r, FILE *out)
{
    static const char *const op_names[] = {"?", "clock", "account", "deposit",
                                           "order", "cancel", "replace"};
    int rc = 0;
    if (r->n_rejects == 0)
        return fprintf(out, "\nrejected commands: none\n") < 0 ? -1 : 0;
    rc |= fprintf(out, "\n%-10s %-20s %10s\n", "rejected", "code", "count") < 0;
    for (uint32_t i = 0; i < r->n_rejects; i++)
        rc |= fprintf(out, "%-10s %-20s %10llu\n",
                      r->rejects[i].op < GPUX_ARRAY_LEN(op_names) ? op_names[r->rejects[i].op] : "?",
                      r->rejects[i].code, (unsigned long long)r->rejects[i].count) < 0;
    if (r->rejects_other)
        rc |= fprintf(out, "%-10s %-20s %10llu\n", "other", "-",
                      (unsigned long long)r->rejects_other) < 0;
    return rc ? -1 : 0;
}

int sim_report_print(const sim_report *r, FILE *out)
{
    int rc = print_markets(r, out);
    rc |= print_gpus(r, out);
    rc |= print_accounts(r, out);
    rc |= print_rejects(r, out);
    return rc || fflush(out) != 0 ? -1 : 0;
}
