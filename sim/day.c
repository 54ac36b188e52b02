/* day.c — replays a day file through an in-process engine.
 *
 * The quickest way to see what a generated day does, with no stack: every
 * day-file command becomes a matcher_cmd applied to a fresh engine
 * (matcher/matcher.h), and the engine's events feed the report (accepted
 * orders, replaces, rejects, trades). Tests use it to check that the
 * scenarios do what they claim; `gpux-sim replay` uses it to print a report
 * and write a trades file.
 *
 * Names from the day file are dense indexes (the reader resolves them);
 * this file maps them to engine ids and back with flat arrays sized from
 * the header, allocated once before the first command. */
#include "sim/sim.h"

#include "gpux_assert.h"
#include "matcher/matcher.h"

#include <stdlib.h>
#include <string.h>

typedef struct replay {
    const sim_dayfile *d;
    sim_report *rep;
    FILE *trades_out;
    const sim_cmd *cmd;            /* the command being applied */
    uint32_t *account_id;          /* day account idx -> engine id */
    uint32_t *account_idx;         /* engine id -> day idx + 1 (0 = none) */
    uint32_t n_account_ids;
    uint64_t *order_id;            /* day order idx -> engine id (0 = none) */
    uint32_t *order_idx;           /* engine id -> day idx + 1 */
    uint64_t n_order_ids;
    int32_t sim_market[MATCHER_MAX_MARKETS]; /* engine market -> sim market */
    uint32_t engine_market[SIM_N_MARKETS];   /* sim market -> engine (or ~0) */
    int64_t start_hour;
    sim_day_result *res;
    bool broken;                   /* an event we could not account for */
    char why[160];
    bool write_error;
} replay;

static void broken(replay *rp, const char *why)
{
    if (!rp->broken)
        snprintf(rp->why, sizeof(rp->why), "%s", why);
    rp->broken = true;
}

static void write_trade(replay *rp, const matcher_fill_info *f, int32_t sm,
                        uint32_t bi, uint32_t si, uint32_t buyer, uint32_t prov)
{
    char p[SIM_MONEY_LEN], bf[SIM_MONEY_LEN], pf[SIM_MONEY_LEN], s[SIM_HOUR_LEN],
        e[SIM_HOUR_LEN];
    if (fprintf(rp->trades_out,
                "{\"line\":%llu,\"trade_id\":\"%llu\",\"t\":%lld,\"gpu\":\"%s\",\"region\":\"%s\","
                "\"buy_ref\":\"%s\",\"sell_ref\":\"%s\",\"buyer\":\"%s\",\"provider\":\"%s\","
                "\"qty\":%d,\"price\":\"%s\",\"start\":\"%s\",\"end\":\"%s\","
                "\"buyer_fee\":\"%s\",\"provider_fee\":\"%s\"}\n",
                (unsigned long long)sim_dayfile_line(rp->d),
                (unsigned long long)f->trade_id, (long long)rp->cmd->t_s,
                sim_gpu(sm / SIM_N_REGIONS)->gpu, sim_region(sm % SIM_N_REGIONS),
                sim_dayfile_order_ref(rp->d, bi), sim_dayfile_order_ref(rp->d, si),
                sim_dayfile_account_name(rp->d, buyer),
                sim_dayfile_account_name(rp->d, prov), f->qty,
                sim_fmt_micros(f->price_micros, p), sim_fmt_hour(f->start_hour, s),
                sim_fmt_hour(f->end_hour, e), sim_fmt_micros(f->buyer_fee_micros, bf),
                sim_fmt_micros(f->provider_fee_micros, pf)) < 0)
        rp->write_error = true;
}

static void on_trade(replay *rp, const matcher_fill_info *f)
{
    rp->res->trades++;
    if (f->buy_order_id >= rp->n_order_ids || f->sell_order_id >= rp->n_order_ids ||
        f->buyer >= rp->n_account_ids || f->provider >= rp->n_account_ids ||
        f->market >= MATCHER_MAX_MARKETS || rp->sim_market[f->market] < 0 ||
        !rp->order_idx[f->buy_order_id] || !rp->order_idx[f->sell_order_id] ||
        !rp->account_idx[f->buyer] || !rp->account_idx[f->provider]) {
        broken(rp, "a trade names an order, account or market the replay never saw");
        return;
    }
    sim_trade t = {
        .t_s = rp->cmd->t_s,
        .market = (uint32_t)rp->sim_market[f->market],
        .buyer_idx = rp->account_idx[f->buyer] - 1,
        .provider_idx = rp->account_idx[f->provider] - 1,
        .buy_order_idx = rp->order_idx[f->buy_order_id] - 1,
        .sell_order_idx = rp->order_idx[f->sell_order_id] - 1,
        .qty = f->qty,
        .price_micros = f->price_micros,
        .start_hour = f->start_hour,
        .end_hour = f->end_hour,
        .buyer_fee_micros = f->buyer_fee_micros,
        .provider_fee_micros = f->provider_fee_micros,
    };
    if (sim_report_trade(rp->rep, &t) != 0) {
        broken(rp, "the engine made a trade the report finds inconsistent");
        return;
    }
    if (rp->trades_out)
        write_trade(rp, f, (int32_t)t.market, t.buy_order_idx, t.sell_order_idx,
                    t.buyer_idx, t.provider_idx);
}

static void on_event(void *ctx, const matcher_event *ev)
{
    replay *rp = ctx;
    const sim_cmd *c = rp->cmd;
    rp->res->engine_events++;
    switch (ev->type) {
    case MATCHER_EV_REJECTED:
        rp->res->rejected++;
        sim_report_reject(rp->rep, c->op, matcher_reason_code(ev->u.rejected.reason));
        break;
    case MATCHER_EV_ACCOUNT:
        if (c->op != SIM_OP_ACCOUNT || ev->u.account.account >= rp->n_account_ids) {
            broken(rp, "account id out of the replay's range");
            break;
        }
        rp->account_id[c->account_idx] = ev->u.account.account;
        rp->account_idx[ev->u.account.account] = c->account_idx + 1;
        break;
    case MATCHER_EV_ACCEPTED:
        if (c->op != SIM_OP_ORDER || ev->u.order.order_id >= rp->n_order_ids) {
            broken(rp, "order id out of the replay's range");
            break;
        }
        rp->order_id[c->order_idx] = ev->u.order.order_id;
        rp->order_idx[ev->u.order.order_id] = c->order_idx + 1;
        if (sim_report_order(rp->rep, c) != 0)
            broken(rp, "the report refused an accepted order");
        break;
    case MATCHER_EV_REPLACED:
        if (sim_report_replace(rp->rep, c->order_idx, c->qty) != 0)
            broken(rp, "the report refused an accepted replace");
        break;
    case MATCHER_EV_TRADE:
        on_trade(rp, &ev->u.fill);
        break;
    default:
        break;
    }
}

/* The engine command for a day-file command. */
static void to_matcher(const replay *rp, const sim_cmd *c, matcher_cmd *m)
{
    static const uint8_t type[] = {
        [SIM_OP_CLOCK] = MATCHER_CMD_ADVANCE_CLOCK,
        [SIM_OP_ACCOUNT] = MATCHER_CMD_CREATE_ACCOUNT,
        [SIM_OP_DEPOSIT] = MATCHER_CMD_DEPOSIT,
        [SIM_OP_ORDER] = MATCHER_CMD_NEW_ORDER,
        [SIM_OP_CANCEL] = MATCHER_CMD_CANCEL,
        [SIM_OP_REPLACE] = MATCHER_CMD_REPLACE,
    };
    GPUX_ASSERT(c->op >= SIM_OP_CLOCK && c->op <= SIM_OP_REPLACE);
    memset(m, 0, sizeof(*m));
    m->type = type[c->op];
    m->ts_us = (rp->start_hour * 3600 + c->t_s) * 1000000;
    if (c->op != SIM_OP_CLOCK && c->op != SIM_OP_ACCOUNT)
        m->account = rp->account_id[c->account_idx];
    switch (c->op) {
    case SIM_OP_CLOCK: m->clock_hour = c->hour; break;
    case SIM_OP_ACCOUNT: m->roles = c->roles; break;
    case SIM_OP_DEPOSIT: m->amount_micros = c->amount_micros; break;
    case SIM_OP_ORDER:
        m->side = c->side;
        m->tif = c->tif;
        m->single_provider = c->side == SIM_BUY ? c->single_provider : 0;
        m->market = rp->engine_market[c->market];
        m->price_micros = c->price_micros;
        m->qty = c->qty;
        m->min_qty = c->min_qty;
        m->min_hours = c->min_hours;
        m->start_hour = c->start_hour;
        m->end_hour = c->end_hour;
        m->expire_at_hour = c->expire_at_hour;
        break;
    case SIM_OP_CANCEL: m->order_id = rp->order_id[c->order_idx]; break;
    case SIM_OP_REPLACE:
        m->order_id = rp->order_id[c->order_idx];
        m->price_micros = c->price_micros;
        m->qty = c->qty;
        break;
    default: break;
    }
}

static int map_markets(replay *rp, const char *catalog_path, matcher_catalog *cat,
                       char *err, size_t errlen)
{
    char why[200];
    if (matcher_catalog_load(cat, catalog_path, why, sizeof(why)) != 0) {
        snprintf(err, errlen, "catalog: %s", why);
        return -1;
    }
    for (uint32_t i = 0; i < MATCHER_MAX_MARKETS; i++)
        rp->sim_market[i] = -1;
    for (int m = 0; m < SIM_N_MARKETS; m++) {
        int id = matcher_catalog_find(cat, sim_gpu(m / SIM_N_REGIONS)->gpu,
                                      sim_region(m % SIM_N_REGIONS));
        rp->engine_market[m] = id < 0 ? UINT32_MAX : (uint32_t)id;
        if (id >= 0)
            rp->sim_market[id] = m;
    }
    return 0;
}

static int alloc_maps(replay *rp, const sim_day_header *h)
{
    /* engine ids: accounts 0 (fees), 1..n; orders 1..n in acceptance order */
    rp->n_account_ids = h->accounts + 1;
    rp->n_order_ids = (uint64_t)h->orders + 1;
    rp->account_id = calloc(h->accounts + 1, sizeof(uint32_t));
    rp->account_idx = calloc(rp->n_account_ids, sizeof(uint32_t));
    rp->order_id = calloc(h->orders + 1, sizeof(uint64_t));
    rp->order_idx = calloc(rp->n_order_ids, sizeof(uint32_t));
    return rp->account_id && rp->account_idx && rp->order_id && rp->order_idx ? 0 : -1;
}

static void free_maps(replay *rp)
{
    free(rp->account_id);
    free(rp->account_idx);
    free(rp->order_id);
    free(rp->order_idx);
}

/* Applies every command of d to e. 0, or -1 with a reason. */
static int replay_all(replay *rp, sim_dayfile *d, matcher_engine *e, char *err,
                      size_t errlen)
{
    sim_cmd c;
    matcher_cmd m;
    int rc;
    while ((rc = sim_dayfile_next(d, &c, err, errlen)) == 1) {
        if (c.op == SIM_OP_ACCOUNT &&
            sim_report_account(rp->rep, c.account_idx, c.account, c.kind) != 0) {
            snprintf(err, errlen, "report: account index out of range");
            return -1;
        }
        if (c.op == SIM_OP_ORDER && rp->engine_market[c.market] == UINT32_MAX) {
            snprintf(err, errlen, "line %llu: market %s/%s is not in the catalog",
                     (unsigned long long)sim_dayfile_line(d),
                     sim_gpu(c.market / SIM_N_REGIONS)->gpu,
                     sim_region(c.market % SIM_N_REGIONS));
            return -1;
        }
        to_matcher(rp, &c, &m);
        rp->cmd = &c;
        matcher_apply(e, &m, on_event, rp);
        rp->res->commands++;
        if (rp->broken) {
            snprintf(err, errlen, "line %llu: %s", (unsigned long long)sim_dayfile_line(d),
                     rp->why);
            return -1;
        }
        if (rp->write_error) {
            snprintf(err, errlen, "writing the trades file failed");
            return -1;
        }
    }
    return rc;
}

/* market.md: deposits - withdrawals == the sum of all balances, the fee
 * account included, checked over every account the engine has. */
static bool money_conserved(const matcher_engine *e, int64_t *fee_balance_micros)
{
    int64_t in, out;
    __int128 sum = 0;
    matcher_account_view v;
    matcher_totals(e, &in, &out);
    *fee_balance_micros = 0;
    for (uint32_t a = 0; a < matcher_account_count(e); a++) {
        if (matcher_account_get(e, a, &v) != 0)
            return false;
        if (a == MATCHER_FEE_ACCOUNT)
            *fee_balance_micros = v.balance_micros;
        if (v.balance_micros < 0 || v.held_micros > v.balance_micros)
            return false;
        sum += v.balance_micros;
    }
    return sum == (__int128)in - out;
}

int sim_day_run(const char *path, const char *catalog_path, FILE *trades_out,
                sim_report **out_report, sim_day_result *res, char *err,
                size_t errlen)
{
    matcher_catalog *cat = malloc(sizeof(*cat)); /* ~50 KB: not on the stack */
    matcher_config cfg;
    replay rp;
    memset(&rp, 0, sizeof(rp));
    memset(res, 0, sizeof(*res));
    *out_report = NULL;
    sim_dayfile *d = sim_dayfile_open(path, err, errlen);
    if (!d) {
        free(cat);
        return -1;
    }
    const sim_day_header *h = sim_dayfile_header(d);
    rp.d = d;
    rp.res = res;
    rp.trades_out = trades_out;
    rp.start_hour = h->start_hour;
    /* default limits, but no bigger than the day can use: a small day
     * then costs a small engine (tests replay many) */
    matcher_config_default(&cfg);
    cfg.max_accounts = h->accounts + 1;
    if (cfg.max_orders > h->orders + 1)
        cfg.max_orders = h->orders + 1;
    if (cfg.max_orders_per_market > cfg.max_orders)
        cfg.max_orders_per_market = cfg.max_orders;
    matcher_engine *e = NULL;
    int rc = -1;
    if (!cat) {
        snprintf(err, errlen, "out of memory for the catalog");
        goto out;
    }
    if (map_markets(&rp, catalog_path, cat, err, errlen) != 0)
        goto out;
    rp.rep = sim_report_create(h->hours, h->orders, h->accounts);
    e = matcher_create(cat, &cfg);
    if (!rp.rep || !e || alloc_maps(&rp, h) != 0) {
        snprintf(err, errlen, "out of memory for the engine, report or maps");
        goto out;
    }
    rc = replay_all(&rp, d, e, err, errlen);
    if (rc == 0) {
        res->state_hash = matcher_state_hash(e);
        res->money_conserved = money_conserved(e, &res->fee_balance_micros);
        *out_report = rp.rep;
        rp.rep = NULL;
    }
out:
    matcher_destroy(e);
    free(cat);
    sim_report_destroy(rp.rep);
    free_maps(&rp);
    sim_dayfile_close(d);
    return rc == 0 ? 0 : -1;
}
