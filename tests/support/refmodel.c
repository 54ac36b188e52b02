/* refmodel.c — the slow, obviously-correct reference model of the engine.
 *
 * Why it exists: a differential test needs a second implementation of the
 * market rules that shares no code and no data structure with the engine,
 * so that a bug has to be made twice, the same way, to go unnoticed. The
 * comments name the section of docs/market-rules.md each part implements;
 * docs/testing.md lists the readings made where the text leaves room.
 * Nothing here is clever: orders live in one array sorted by id, an offer keeps one
 * capacity counter per hour of its window, priority order is found by
 * sorting every time it is needed, a bid's hold and an account's held
 * amount are recomputed from the formula every time they are read, and a
 * post_only order is checked by running the whole command on a copy of
 * the model and looking for a trade. See refmodel.h for the contract. */
#include "tests/support/refmodel.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gpux_assert.h"

typedef struct rm_account {
    uint32_t roles;
    int64_t balance_micros;
} rm_account;

/* One resting order. info.hold_micros is not kept: see rm_hold(). */
typedef struct rm_order {
    matcher_order_info info;
    uint64_t stamp;      /* priority: smaller is earlier */
    int32_t filled_qty;  /* bids */
    uint32_t lock;       /* single_provider bid after its first fill */
    int32_t *cap;        /* offers: one counter per hour of [start, end) */
} rm_order;

/* One step of a bid's plan: take qty GPUs from an offer. */
typedef struct rm_step {
    uint64_t offer_id;
    int32_t qty;
    uint32_t provider;
} rm_step;

struct refmodel {
    matcher_catalog cat;
    matcher_config cfg;
    int64_t now;
    rm_account *acc;
    uint32_t n_acc;
    rm_order *ord; /* resting orders, ascending id */
    uint32_t n_ord;
    uint32_t cap_ord;
    uint64_t next_order_id;
    uint64_t next_trade_id;
    uint64_t next_stamp;
    int64_t deposited_micros;
    int64_t withdrawn_micros;
    /* the command being applied */
    const matcher_cmd *cmd;
    matcher_emit_fn emit;
    void *ctx;
    uint32_t fills; /* fills made by this command so far */
};

/* ---- small helpers ---------------------------------------------------- */

static void *rm_xalloc(void *p, size_t size)
{
    void *q = realloc(p, size ? size : 1);
    GPUX_ASSERT(q != NULL); /* test code: out of memory ends the test */
    return q;
}

static int64_t rm_min64(int64_t a, int64_t b) { return a < b ? a : b; }
static int64_t rm_max64(int64_t a, int64_t b) { return a > b ? a : b; }

/* fee(notional, bps) = floor(notional x bps / 10000), 128-bit product. */
static int64_t rm_fee(int64_t notional_micros, int32_t bps)
{
    __int128 f = (__int128)notional_micros * bps / 10000;
    return (int64_t)f;
}

static int64_t rm_hours(const rm_order *o)
{
    return o->info.end_hour - o->info.start_hour;
}

static bool rm_is_bid(const rm_order *o) { return o->info.side == MATCHER_BUY; }

/* hold = N + fee(N, max(maker, taker)), N = limit x remaining x hours. */
static int64_t rm_hold(const refmodel *m, const rm_order *o)
{
    if (!rm_is_bid(o))
        return 0;
    int64_t n = o->info.price_micros * (int64_t)(o->info.qty - o->filled_qty) *
                rm_hours(o);
    int32_t bps = m->cfg.maker_fee_bps > m->cfg.taker_fee_bps
                      ? m->cfg.maker_fee_bps
                      : m->cfg.taker_fee_bps;
    return n + rm_fee(n, bps);
}

static int64_t rm_held(const refmodel *m, uint32_t account)
{
    int64_t held = 0;
    for (uint32_t i = 0; i < m->n_ord; i++)
        if (m->ord[i].info.account == account)
            held += rm_hold(m, &m->ord[i]);
    return held;
}

static int64_t rm_available(const refmodel *m, uint32_t account)
{
    return m->acc[account].balance_micros - rm_held(m, account);
}

/* The array is sorted by id (ids only grow and are appended), so a binary
 * search finds an order. */
static rm_order *rm_find(const refmodel *m, uint64_t id)
{
    uint32_t lo = 0, hi = m->n_ord;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (m->ord[mid].info.order_id < id)
            lo = mid + 1;
        else
            hi = mid;
    }
    return (lo < m->n_ord && m->ord[lo].info.order_id == id) ? &m->ord[lo] : NULL;
}

/* An offer's capacity in hour h: 0 outside its window or once passed. */
static int32_t rm_cap_at(const refmodel *m, const rm_order *o, int64_t h)
{
    if (h < o->info.start_hour || h >= o->info.end_hour || h < m->now)
        return 0;
    return o->cap[h - o->info.start_hour];
}

/* Largest capacity in any open hour [max(start, now), end). */
static int32_t rm_offer_left(const refmodel *m, const rm_order *o)
{
    int32_t best = 0;
    for (int64_t h = rm_max64(o->info.start_hour, m->now); h < o->info.end_hour; h++)
        if (rm_cap_at(m, o, h) > best)
            best = rm_cap_at(m, o, h);
    return best;
}

/* Smallest capacity over [start, end); callers check coverage first. */
static int32_t rm_offer_avail(const refmodel *m, const rm_order *o,
                              int64_t start, int64_t end)
{
    int32_t least = INT32_MAX;
    for (int64_t h = start; h < end; h++)
        if (rm_cap_at(m, o, h) < least)
            least = rm_cap_at(m, o, h);
    return least == INT32_MAX ? 0 : least;
}

static int32_t rm_remaining(const refmodel *m, const rm_order *o)
{
    return rm_is_bid(o) ? o->info.qty - o->filled_qty : rm_offer_left(m, o);
}

static uint32_t rm_market_orders(const refmodel *m, uint32_t market)
{
    uint32_t n = 0;
    for (uint32_t i = 0; i < m->n_ord; i++)
        n += m->ord[i].info.market == market;
    return n;
}

/* ---- events ------------------------------------------------------------ */

static void rm_ev_init(const refmodel *m, matcher_event *ev, uint16_t type)
{
    memset(ev, 0, sizeof *ev);
    ev->type = type;
    ev->cmd_type = m->cmd->type;
    ev->ts_us = m->cmd->ts_us;
}

static void rm_send(const refmodel *m, const matcher_event *ev)
{
    if (m->emit)
        m->emit(m->ctx, ev);
}

static void rm_emit_balance(const refmodel *m, uint32_t account)
{
    matcher_event ev;
    rm_ev_init(m, &ev, MATCHER_EV_BALANCE);
    ev.u.balance.account = account;
    ev.u.balance.balance_micros = m->acc[account].balance_micros;
    ev.u.balance.held_micros = rm_held(m, account);
    rm_send(m, &ev);
}

static matcher_reason rm_reject(const refmodel *m, matcher_reason r,
                                uint64_t order_id)
{
    matcher_event ev;
    rm_ev_init(m, &ev, MATCHER_EV_REJECTED);
    ev.u.rejected.reason = (uint16_t)r;
    ev.u.rejected.order_id = order_id;
    rm_send(m, &ev);
    return r;
}

static void rm_emit_order(const refmodel *m, const rm_order *o, uint16_t type)
{
    matcher_event ev;
    rm_ev_init(m, &ev, type);
    ev.u.order = o->info;
    ev.u.order.hold_micros = rm_hold(m, o);
    rm_send(m, &ev);
}

/* Emits DONE for an order still in the array and removes it. A bid's
 * BALANCE follows when asked (cancel, expiry, unfilled with hold left). */
static void rm_done(refmodel *m, uint64_t order_id, uint8_t reason,
                    bool balance_after)
{
    rm_order *o = rm_find(m, order_id);
    GPUX_ASSERT(o != NULL);
    matcher_event ev;
    rm_ev_init(m, &ev, MATCHER_EV_DONE);
    ev.u.done.order_id = o->info.order_id;
    ev.u.done.account = o->info.account;
    ev.u.done.market = o->info.market;
    ev.u.done.side = o->info.side;
    ev.u.done.reason = reason;
    ev.u.done.remaining_qty = rm_remaining(m, o);
    uint32_t account = o->info.account;
    bool bid = rm_is_bid(o);
    free(o->cap);
    uint32_t i = (uint32_t)(o - m->ord);
    memmove(&m->ord[i], &m->ord[i + 1], (m->n_ord - i - 1) * sizeof *o);
    m->n_ord--;
    rm_send(m, &ev);
    if (bid && balance_after)
        rm_emit_balance(m, account);
}

/* ---- priority ---------------------------------------------------------- */

/* Sort key of one order: the fields priority and expiry look at. */
typedef struct rm_key {
    int64_t price_micros;
    uint64_t stamp;
    int64_t expiry_hour;
    uint64_t order_id;
    uint8_t side;
} rm_key;

/* Priority: bids higher price first, offers lower price first; then the
 * smaller stamp. Stamps are unique, so the order is total. */
static int rm_cmp_priority(const void *a, const void *b)
{
    const rm_key *x = a, *y = b;
    if (x->price_micros != y->price_micros) {
        bool x_first = x->side == MATCHER_BUY ? x->price_micros > y->price_micros
                                              : x->price_micros < y->price_micros;
        return x_first ? -1 : 1;
    }
    return x->stamp < y->stamp ? -1 : x->stamp > y->stamp ? 1 : 0;
}

/* Expiry order: expiry hour, then order id. */
static int rm_cmp_expiry(const void *a, const void *b)
{
    const rm_key *x = a, *y = b;
    if (x->expiry_hour != y->expiry_hour)
        return x->expiry_hour < y->expiry_hour ? -1 : 1;
    return x->order_id < y->order_id ? -1 : x->order_id > y->order_id ? 1 : 0;
}

static int64_t rm_expiry_hour(const rm_order *o);

/* Keys of the orders for which want() holds, sorted by cmp, as a malloc'd
 * array of order ids. */
static uint64_t *rm_sorted(const refmodel *m, bool (*want)(const rm_order *, const void *),
                           const void *arg, int (*cmp)(const void *, const void *),
                           uint32_t *n_out)
{
    rm_key *keys = rm_xalloc(NULL, (m->n_ord + 1) * sizeof *keys);
    uint32_t n = 0;
    for (uint32_t i = 0; i < m->n_ord; i++) {
        const rm_order *o = &m->ord[i];
        if (!want(o, arg))
            continue;
        keys[n++] = (rm_key){o->info.price_micros, o->stamp, rm_expiry_hour(o),
                             o->info.order_id, o->info.side};
    }
    qsort(keys, n, sizeof *keys, cmp);
    uint64_t *ids = rm_xalloc(NULL, (n + 1) * sizeof *ids);
    for (uint32_t i = 0; i < n; i++)
        ids[i] = keys[i].order_id;
    free(keys);
    *n_out = n;
    return ids;
}

typedef struct rm_side_sel {
    uint32_t market;
    uint8_t side;
} rm_side_sel;

static bool rm_want_side(const rm_order *o, const void *arg)
{
    const rm_side_sel *sel = arg;
    return o->info.market == sel->market && o->info.side == sel->side;
}

/* Ids of one market side in priority order (malloc'd). */
static uint64_t *rm_sorted_side(const refmodel *m, uint32_t market,
                                uint8_t side, uint32_t *n_out)
{
    rm_side_sel sel = {market, side};
    return rm_sorted(m, rm_want_side, &sel, rm_cmp_priority, n_out);
}

/* ---- matching ---------------------------------------------------------- */

/* "eligible offer O" in market-rules.md, Matching a bid. */
static bool rm_eligible(const refmodel *m, const rm_order *b, const rm_order *o)
{
    return o->info.price_micros <= b->info.price_micros &&
           o->info.account != b->info.account &&
           rm_max64(o->info.start_hour, m->now) <= b->info.start_hour &&
           b->info.end_hour <= o->info.end_hour &&
           rm_hours(b) >= o->info.min_hours &&
           (b->lock == 0 || o->info.account == b->lock);
}

static bool rm_all_or_none(const rm_order *b)
{
    return b->info.min_qty == 0 || b->info.tif == MATCHER_FOK;
}

/* One step decision: t = min(avail, r), taken when t > 0 and
 * t >= max(O.min_qty, bmin). Returns t or 0. */
static int32_t rm_step_qty(const refmodel *m, const rm_order *b,
                           const rm_order *o, int32_t r)
{
    int32_t avail = rm_offer_avail(m, o, b->info.start_hour, b->info.end_hour);
    int32_t t = avail < r ? avail : r;
    int32_t bmin = rm_all_or_none(b) ? 0 : (b->info.min_qty < r ? b->info.min_qty : r);
    int32_t need = o->info.min_qty > bmin ? o->info.min_qty : bmin;
    return (t > 0 && t >= need) ? t : 0;
}

/* Plan for a bid that is not (or no longer) choosing a provider. */
static uint32_t rm_plan_plain(const refmodel *m, const rm_order *b,
                              const uint64_t *offers, uint32_t n_offers,
                              uint32_t budget, rm_step *plan)
{
    int32_t r = b->info.qty - b->filled_qty;
    uint32_t n = 0;
    for (uint32_t i = 0; i < n_offers && r > 0 && n < budget; i++) {
        const rm_order *o = rm_find(m, offers[i]);
        if (!rm_eligible(m, b, o))
            continue;
        int32_t t = rm_step_qty(m, b, o, r);
        if (t == 0)
            continue;
        plan[n++] = (rm_step){o->info.order_id, t, o->info.account};
        r -= t;
    }
    if (rm_all_or_none(b) && r != 0)
        return 0;
    return n;
}

/* Plan for an unlocked single_provider bid: a running r_p per provider;
 * the first provider to reach 0 wins; a partial bid without a winner
 * takes the steps of the provider of the first step. Each provider's list
 * is capped at the budget. */
static uint32_t rm_plan_single(const refmodel *m, const rm_order *b,
                               const uint64_t *offers, uint32_t n_offers,
                               uint32_t budget, rm_step *plan)
{
    int32_t r0 = b->info.qty - b->filled_qty;
    rm_step *cand = rm_xalloc(NULL, (n_offers + 1) * sizeof *cand);
    uint32_t *prov = rm_xalloc(NULL, (n_offers + 1) * sizeof *prov);
    int32_t *r_p = rm_xalloc(NULL, (n_offers + 1) * sizeof *r_p);
    uint32_t *steps_p = rm_xalloc(NULL, (n_offers + 1) * sizeof *steps_p);
    uint32_t n_prov = 0, n_cand = 0;
    bool have_winner = false;
    uint32_t chosen = 0;
    for (uint32_t i = 0; i < n_offers && !have_winner; i++) {
        const rm_order *o = rm_find(m, offers[i]);
        if (!rm_eligible(m, b, o))
            continue;
        uint32_t p = 0;
        while (p < n_prov && prov[p] != o->info.account)
            p++;
        if (p == n_prov) {
            prov[p] = o->info.account;
            r_p[p] = r0;
            steps_p[p] = 0;
            n_prov++;
        }
        if (steps_p[p] == budget)
            continue;
        int32_t t = rm_step_qty(m, b, o, r_p[p]);
        if (t == 0)
            continue;
        if (n_cand == 0)
            chosen = o->info.account; /* provider of the first step */
        cand[n_cand++] = (rm_step){o->info.order_id, t, o->info.account};
        r_p[p] -= t;
        steps_p[p]++;
        if (r_p[p] == 0) {
            have_winner = true;
            chosen = o->info.account;
        }
    }
    uint32_t n = 0;
    if (have_winner || (!rm_all_or_none(b) && n_cand > 0))
        for (uint32_t i = 0; i < n_cand; i++)
            if (cand[i].provider == chosen)
                plan[n++] = cand[i];
    free(cand);
    free(prov);
    free(r_p);
    free(steps_p);
    return n;
}

/* The bid's plan against every offer of its market, in priority order,
 * within the command's remaining fill budget. plan has room for budget. */
static uint32_t rm_plan(const refmodel *m, const rm_order *b, rm_step *plan)
{
    uint32_t budget = MATCHER_MAX_FILLS_PER_COMMAND - m->fills;
    if (budget == 0)
        return 0;
    uint32_t n_offers;
    uint64_t *offers = rm_sorted_side(m, b->info.market, MATCHER_SELL, &n_offers);
    uint32_t n = (b->info.single_provider && b->lock == 0)
                     ? rm_plan_single(m, b, offers, n_offers, budget, plan)
                     : rm_plan_plain(m, b, offers, n_offers, budget, plan);
    free(offers);
    return n;
}

static bool rm_order_finished(const refmodel *m, const rm_order *o)
{
    return rm_remaining(m, o) == 0;
}

/* Applies one fill of t GPUs between bid and offer; emits TRADE, LEASE,
 * three BALANCEs, then DONE(filled) for a finished order that is not the
 * incoming one (the bid first). */
static void rm_fill(refmodel *m, uint64_t bid_id, uint64_t offer_id, int32_t t,
                    uint64_t incoming_id)
{
    rm_order *b = rm_find(m, bid_id);
    rm_order *o = rm_find(m, offer_id);
    GPUX_ASSERT(b && o && t > 0);
    uint8_t taker = incoming_id == offer_id ? MATCHER_SELL : MATCHER_BUY;
    const rm_order *earlier = b->stamp < o->stamp ? b : o;
    int64_t price = earlier->info.price_micros;
    int64_t hours = rm_hours(b);
    int64_t notional = price * t * hours;
    int32_t buyer_bps = taker == MATCHER_BUY ? m->cfg.taker_fee_bps : m->cfg.maker_fee_bps;
    int32_t prov_bps = taker == MATCHER_SELL ? m->cfg.taker_fee_bps : m->cfg.maker_fee_bps;

    matcher_fill_info f;
    memset(&f, 0, sizeof f);
    f.trade_id = m->next_trade_id++;
    f.buy_order_id = bid_id;
    f.sell_order_id = offer_id;
    f.buyer = b->info.account;
    f.provider = o->info.account;
    f.market = b->info.market;
    f.taker_side = taker;
    f.price_micros = price;
    f.qty = t;
    f.start_hour = b->info.start_hour;
    f.end_hour = b->info.end_hour;
    f.notional_micros = notional;
    f.buyer_fee_micros = rm_fee(notional, buyer_bps);
    f.provider_fee_micros = rm_fee(notional, prov_bps);
    f.saving_micros = (b->info.price_micros - price) * t * hours;

    for (int64_t h = b->info.start_hour; h < b->info.end_hour; h++) {
        o->cap[h - o->info.start_hour] -= t;
        GPUX_ASSERT(o->cap[h - o->info.start_hour] >= 0);
    }
    b->filled_qty += t;
    if (b->info.single_provider)
        b->lock = o->info.account;
    m->acc[f.buyer].balance_micros -= notional + f.buyer_fee_micros;
    m->acc[f.provider].balance_micros += notional - f.provider_fee_micros;
    m->acc[MATCHER_FEE_ACCOUNT].balance_micros += f.buyer_fee_micros + f.provider_fee_micros;
    m->fills++;

    matcher_event ev;
    rm_ev_init(m, &ev, MATCHER_EV_TRADE);
    ev.u.fill = f;
    rm_send(m, &ev);
    rm_ev_init(m, &ev, MATCHER_EV_LEASE);
    ev.u.fill = f;
    rm_send(m, &ev);
    rm_emit_balance(m, f.buyer);
    rm_emit_balance(m, f.provider);
    rm_emit_balance(m, MATCHER_FEE_ACCOUNT);
    bool bid_done = bid_id != incoming_id && rm_order_finished(m, b);
    bool offer_done = offer_id != incoming_id && rm_order_finished(m, o);
    if (bid_done)
        rm_done(m, bid_id, MATCHER_DONE_FILLED, false);
    if (offer_done)
        rm_done(m, offer_id, MATCHER_DONE_FILLED, false);
}

/* Builds and applies one bid's plan. incoming_id is the command's order. */
static void rm_match_bid(refmodel *m, uint64_t bid_id, uint64_t incoming_id)
{
    rm_step *plan = rm_xalloc(NULL, MATCHER_MAX_FILLS_PER_COMMAND * sizeof *plan);
    uint32_t n = rm_plan(m, rm_find(m, bid_id), plan);
    for (uint32_t i = 0; i < n; i++)
        rm_fill(m, bid_id, plan[i].offer_id, plan[i].qty, incoming_id);
    free(plan);
}

/* "Matching an incoming or replaced offer O". */
static void rm_match_offer(refmodel *m, uint64_t offer_id)
{
    const rm_order *o = rm_find(m, offer_id);
    uint32_t n_bids;
    uint64_t *bids = rm_sorted_side(m, o->info.market, MATCHER_BUY, &n_bids);
    for (uint32_t i = 0; i < n_bids; i++) {
        o = rm_find(m, offer_id);
        if (rm_offer_left(m, o) == 0 || m->fills == MATCHER_MAX_FILLS_PER_COMMAND)
            break;
        const rm_order *b = rm_find(m, bids[i]);
        if (!b || !rm_eligible(m, b, o) ||
            rm_offer_avail(m, o, b->info.start_hour, b->info.end_hour) == 0)
            continue;
        rm_match_bid(m, bids[i], offer_id);
    }
    free(bids);
}

/* Matching for the command's own order, then its DONE if it ended. */
static void rm_match_incoming(refmodel *m, uint64_t id)
{
    const rm_order *o = rm_find(m, id);
    if (rm_is_bid(o))
        rm_match_bid(m, id, id);
    else
        rm_match_offer(m, id);
    o = rm_find(m, id);
    if (rm_order_finished(m, o))
        rm_done(m, id, MATCHER_DONE_FILLED, false);
    else if (o->info.tif == MATCHER_IOC || o->info.tif == MATCHER_FOK)
        rm_done(m, id, MATCHER_DONE_UNFILLED, true);
}

/* ---- copies, for post_only ---------------------------------------------- */

static refmodel *rm_clone(const refmodel *m)
{
    refmodel *c = rm_xalloc(NULL, sizeof *c);
    *c = *m;
    c->acc = rm_xalloc(NULL, (m->n_acc + 1) * sizeof *c->acc);
    memcpy(c->acc, m->acc, m->n_acc * sizeof *c->acc);
    c->ord = rm_xalloc(NULL, (m->cap_ord + 1) * sizeof *c->ord);
    if (m->n_ord > 0)
        memcpy(c->ord, m->ord, m->n_ord * sizeof *c->ord);
    for (uint32_t i = 0; i < m->n_ord; i++) {
        if (!m->ord[i].cap)
            continue;
        size_t sz = (size_t)rm_hours(&m->ord[i]) * sizeof(int32_t);
        c->ord[i].cap = rm_xalloc(NULL, sz);
        memcpy(c->ord[i].cap, m->ord[i].cap, sz);
    }
    return c;
}

static void rm_count_trades(void *ctx, const matcher_event *ev)
{
    if (ev->type == MATCHER_EV_TRADE)
        (*(uint32_t *)ctx)++;
}

static void rm_accept_order(refmodel *m, const matcher_cmd *c);
static void rm_apply_replace(refmodel *m, const matcher_cmd *c);

/* post_only: would the command, applied as if it were gtc, trade? Runs it
 * on a copy of the model and counts TRADE events. */
static bool rm_would_trade(const refmodel *m, const matcher_cmd *c)
{
    refmodel *copy = rm_clone(m);
    uint32_t trades = 0;
    copy->emit = rm_count_trades;
    copy->ctx = &trades;
    if (c->type == MATCHER_CMD_NEW_ORDER)
        rm_accept_order(copy, c);
    else
        rm_apply_replace(copy, c);
    refmodel_destroy(copy);
    return trades > 0;
}

/* ---- commands ---------------------------------------------------------- */

static bool rm_account_ok(const refmodel *m, uint32_t account)
{
    return account < m->n_acc;
}

static matcher_reason rm_create_account(refmodel *m, const matcher_cmd *c)
{
    uint32_t known = MATCHER_ROLE_BUYER | MATCHER_ROLE_PROVIDER | MATCHER_ROLE_ADMIN;
    if (c->roles & ~known)
        return rm_reject(m, MATCHER_REJ_BAD_ROLES, 0);
    if (m->n_acc >= m->cfg.max_accounts)
        return rm_reject(m, MATCHER_REJ_ACCOUNTS_FULL, 0);
    m->acc = rm_xalloc(m->acc, (m->n_acc + 1) * sizeof *m->acc);
    m->acc[m->n_acc] = (rm_account){c->roles, 0};
    matcher_event ev;
    rm_ev_init(m, &ev, MATCHER_EV_ACCOUNT);
    ev.u.account.account = m->n_acc;
    ev.u.account.roles = c->roles;
    m->n_acc++;
    rm_send(m, &ev);
    return MATCHER_OK;
}

static matcher_reason rm_transfer(refmodel *m, const matcher_cmd *c)
{
    bool deposit = c->type == MATCHER_CMD_DEPOSIT;
    if (!rm_account_ok(m, c->account))
        return rm_reject(m, MATCHER_REJ_UNKNOWN_ACCOUNT, 0);
    if (c->amount_micros <= 0 || c->amount_micros > MATCHER_MAX_AMOUNT_MICROS)
        return rm_reject(m, MATCHER_REJ_BAD_AMOUNT, 0);
    rm_account *a = &m->acc[c->account];
    /* the account's cap, and the exchange's all-time deposit total within
     * int64 (computed in 128 bits here: the model must not overflow) */
    if (deposit && (a->balance_micros + c->amount_micros > MATCHER_MAX_BALANCE_MICROS ||
                    (__int128)m->deposited_micros + c->amount_micros > INT64_MAX))
        return rm_reject(m, MATCHER_REJ_BALANCE_LIMIT, 0);
    if (!deposit && c->amount_micros > rm_available(m, c->account))
        return rm_reject(m, MATCHER_REJ_INSUFFICIENT_FUNDS, 0);
    a->balance_micros += deposit ? c->amount_micros : -c->amount_micros;
    if (deposit)
        m->deposited_micros += c->amount_micros;
    else
        m->withdrawn_micros += c->amount_micros;
    matcher_event ev;
    rm_ev_init(m, &ev, deposit ? MATCHER_EV_DEPOSIT : MATCHER_EV_WITHDRAWAL);
    ev.u.transfer.account = c->account;
    ev.u.transfer.amount_micros = c->amount_micros;
    rm_send(m, &ev);
    rm_emit_balance(m, c->account);
    return MATCHER_OK;
}

/* Expiry hour: bids min(start, expire_at), offers min(end, expire_at). */
static int64_t rm_expiry_hour(const rm_order *o)
{
    int64_t x = rm_is_bid(o) ? o->info.start_hour : o->info.end_hour;
    return o->info.expire_at_hour ? rm_min64(x, o->info.expire_at_hour) : x;
}

static bool rm_want_expired(const rm_order *o, const void *arg)
{
    return rm_expiry_hour(o) <= *(const int64_t *)arg;
}

static matcher_reason rm_advance(refmodel *m, const matcher_cmd *c)
{
    if (c->clock_hour < m->now || c->clock_hour > MATCHER_MAX_CLOCK_HOUR)
        return rm_reject(m, MATCHER_REJ_BAD_CLOCK, 0);
    bool moved = c->clock_hour > m->now;
    m->now = c->clock_hour;
    matcher_event ev;
    rm_ev_init(m, &ev, MATCHER_EV_CLOCK);
    ev.u.clock.hour = m->now;
    rm_send(m, &ev);
    if (!moved)
        return MATCHER_OK;
    uint32_t n;
    uint64_t *ids = rm_sorted(m, rm_want_expired, &m->now, rm_cmp_expiry, &n);
    for (uint32_t i = 0; i < n; i++)
        rm_done(m, ids[i], MATCHER_DONE_EXPIRED, true);
    free(ids);
    return MATCHER_OK;
}

static bool rm_qty_ok(int32_t qty, int32_t lot)
{
    return qty > 0 && qty <= MATCHER_MAX_QTY && qty % lot == 0;
}

static bool rm_price_ok(int64_t price, int64_t tick)
{
    return price > 0 && price <= MATCHER_MAX_PRICE_MICROS && price % tick == 0;
}

/* Steps 1-11 of "Validation order for NEW_ORDER". */
static matcher_reason rm_check_order_fields(const refmodel *m, const matcher_cmd *c)
{
    if (!rm_account_ok(m, c->account))
        return MATCHER_REJ_UNKNOWN_ACCOUNT;
    if (c->market >= m->cat.n_markets)
        return MATCHER_REJ_UNKNOWN_MARKET;
    if (c->side != MATCHER_BUY && c->side != MATCHER_SELL)
        return MATCHER_REJ_BAD_SIDE;
    bool bid = c->side == MATCHER_BUY;
    uint32_t need = bid ? MATCHER_ROLE_BUYER : MATCHER_ROLE_PROVIDER;
    if (!(m->acc[c->account].roles & need))
        return MATCHER_REJ_FORBIDDEN;
    if (c->tif > MATCHER_POST_ONLY || (!bid && c->tif == MATCHER_FOK))
        return MATCHER_REJ_BAD_TIF;
    if (c->single_provider > 1 || (!bid && c->single_provider))
        return MATCHER_REJ_BAD_FLAGS;
    const matcher_market_def *mk = &m->cat.markets[c->market];
    if (!rm_qty_ok(c->qty, mk->lot) || c->min_qty < 0 || c->min_qty > c->qty ||
        c->min_qty % mk->lot != 0)
        return MATCHER_REJ_BAD_QTY;
    if (!rm_price_ok(c->price_micros, mk->tick_micros))
        return MATCHER_REJ_BAD_PRICE;
    if (c->end_hour <= c->start_hour ||
        (__int128)c->end_hour - c->start_hour > MATCHER_MAX_WINDOW_HOURS)
        return MATCHER_REJ_BAD_WINDOW;
    if (c->start_hour < m->now)
        return MATCHER_REJ_WINDOW_IN_PAST;
    if (c->start_hour > m->now + MATCHER_MAX_AHEAD_HOURS)
        return MATCHER_REJ_BAD_WINDOW;
    if (bid ? c->min_hours != 0
            : (c->min_hours < 0 || c->min_hours > c->end_hour - c->start_hour))
        return MATCHER_REJ_BAD_MIN_HOURS;
    if (c->expire_at_hour != 0 && c->expire_at_hour <= m->now)
        return MATCHER_REJ_BAD_EXPIRY;
    return MATCHER_OK;
}

/* Puts the accepted order into the book (ids ascend, so it goes last),
 * emits ACCEPTED (+ BALANCE for a bid) and runs matching. */
static void rm_accept_order(refmodel *m, const matcher_cmd *c)
{
    if (m->n_ord == m->cap_ord) {
        m->cap_ord = m->cap_ord ? 2 * m->cap_ord : 64;
        m->ord = rm_xalloc(m->ord, m->cap_ord * sizeof *m->ord);
    }
    rm_order *o = &m->ord[m->n_ord++];
    memset(o, 0, sizeof *o);
    o->info.order_id = m->next_order_id++;
    o->info.account = c->account;
    o->info.market = c->market;
    o->info.side = c->side;
    o->info.tif = c->tif;
    o->info.single_provider = c->single_provider;
    o->info.qty = c->qty;
    o->info.min_qty = c->min_qty;
    o->info.min_hours = c->min_hours;
    o->info.price_micros = c->price_micros;
    o->info.start_hour = c->start_hour;
    o->info.end_hour = c->end_hour;
    o->info.expire_at_hour = c->expire_at_hour;
    o->stamp = m->next_stamp++;
    if (!rm_is_bid(o)) {
        o->cap = rm_xalloc(NULL, (size_t)rm_hours(o) * sizeof(int32_t));
        for (int64_t h = 0; h < rm_hours(o); h++)
            o->cap[h] = c->qty;
    }
    uint64_t id = o->info.order_id;
    rm_emit_order(m, o, MATCHER_EV_ACCEPTED);
    if (rm_is_bid(o))
        rm_emit_balance(m, c->account);
    rm_match_incoming(m, id);
}

static matcher_reason rm_new_order(refmodel *m, const matcher_cmd *c)
{
    matcher_reason r = rm_check_order_fields(m, c);
    if (r != MATCHER_OK)
        return rm_reject(m, r, 0);
    if (m->n_ord >= m->cfg.max_orders ||
        rm_market_orders(m, c->market) >= m->cfg.max_orders_per_market)
        return rm_reject(m, MATCHER_REJ_BOOK_FULL, 0);
    if (c->side == MATCHER_BUY) {
        rm_order probe;
        memset(&probe, 0, sizeof probe);
        probe.info.side = MATCHER_BUY;
        probe.info.qty = c->qty;
        probe.info.price_micros = c->price_micros;
        probe.info.start_hour = c->start_hour;
        probe.info.end_hour = c->end_hour;
        if (rm_hold(m, &probe) > rm_available(m, c->account))
            return rm_reject(m, MATCHER_REJ_INSUFFICIENT_FUNDS, 0);
    }
    if (c->tif == MATCHER_POST_ONLY && rm_would_trade(m, c))
        return rm_reject(m, MATCHER_REJ_WOULD_MATCH, 0);
    rm_accept_order(m, c);
    return MATCHER_OK;
}

static matcher_reason rm_cancel(refmodel *m, const matcher_cmd *c)
{
    const rm_order *o = rm_find(m, c->order_id);
    if (!o)
        return rm_reject(m, MATCHER_REJ_UNKNOWN_ORDER, c->order_id);
    if (o->info.account != c->account)
        return rm_reject(m, MATCHER_REJ_FORBIDDEN, c->order_id);
    rm_done(m, c->order_id, MATCHER_DONE_CANCELLED, true);
    return MATCHER_OK;
}

/* The REPLACE checks of market-rules.md, in their order. */
static matcher_reason rm_check_replace(const refmodel *m, const matcher_cmd *c)
{
    const rm_order *o = rm_find(m, c->order_id);
    if (!o)
        return MATCHER_REJ_UNKNOWN_ORDER;
    if (o->info.account != c->account)
        return MATCHER_REJ_FORBIDDEN;
    const matcher_market_def *mk = &m->cat.markets[o->info.market];
    if (c->price_micros != 0 && !rm_price_ok(c->price_micros, mk->tick_micros))
        return MATCHER_REJ_BAD_PRICE;
    if (c->qty != 0 && (!rm_qty_ok(c->qty, mk->lot) || o->info.min_qty > c->qty))
        return MATCHER_REJ_BAD_QTY;
    int64_t price = c->price_micros ? c->price_micros : o->info.price_micros;
    int32_t qty = c->qty ? c->qty : o->info.qty;
    if (price == o->info.price_micros && qty == o->info.qty)
        return MATCHER_REJ_BAD_QTY;
    if (rm_is_bid(o) && qty <= o->filled_qty)
        return MATCHER_REJ_BAD_QTY;
    if (!rm_is_bid(o)) {
        int32_t delta = qty - o->info.qty;
        for (int64_t h = rm_max64(o->info.start_hour, m->now); h < o->info.end_hour; h++)
            if (rm_cap_at(m, o, h) + delta < 0)
                return MATCHER_REJ_BAD_QTY;
    }
    if (rm_is_bid(o)) {
        rm_order probe = *o;
        probe.info.price_micros = price;
        probe.info.qty = qty;
        if (rm_hold(m, &probe) > rm_available(m, o->info.account) + rm_hold(m, o))
            return MATCHER_REJ_INSUFFICIENT_FUNDS;
    }
    return MATCHER_OK;
}

/* Applies a validated replace: new values, priority, REPLACED, matching. */
static void rm_apply_replace(refmodel *m, const matcher_cmd *c)
{
    rm_order *o = rm_find(m, c->order_id);
    int64_t price = c->price_micros ? c->price_micros : o->info.price_micros;
    int32_t qty = c->qty ? c->qty : o->info.qty;
    bool keeps = price == o->info.price_micros && qty < o->info.qty;
    if (!keeps)
        o->stamp = m->next_stamp++;
    if (!rm_is_bid(o)) {
        int32_t delta = qty - o->info.qty;
        for (int64_t h = rm_max64(o->info.start_hour, m->now); h < o->info.end_hour; h++)
            o->cap[h - o->info.start_hour] += delta;
    }
    o->info.price_micros = price;
    o->info.qty = qty;
    rm_emit_order(m, o, MATCHER_EV_REPLACED);
    if (rm_is_bid(o))
        rm_emit_balance(m, o->info.account);
    rm_match_incoming(m, c->order_id);
}

static matcher_reason rm_replace(refmodel *m, const matcher_cmd *c)
{
    matcher_reason r = rm_check_replace(m, c);
    if (r != MATCHER_OK)
        return rm_reject(m, r, c->order_id);
    if (rm_find(m, c->order_id)->info.tif == MATCHER_POST_ONLY && rm_would_trade(m, c))
        return rm_reject(m, MATCHER_REJ_WOULD_MATCH, c->order_id);
    rm_apply_replace(m, c);
    return MATCHER_OK;
}

/* ---- public API --------------------------------------------------------- */

refmodel *refmodel_create(const matcher_catalog *cat, const matcher_config *cfg)
{
    if (cfg->maker_fee_bps < 0 || cfg->maker_fee_bps > MATCHER_MAX_FEE_BPS ||
        cfg->taker_fee_bps < 0 || cfg->taker_fee_bps > MATCHER_MAX_FEE_BPS ||
        cfg->max_accounts < 1)
        return NULL;
    refmodel *m = rm_xalloc(NULL, sizeof *m);
    memset(m, 0, sizeof *m);
    m->cat = *cat;
    m->cfg = *cfg;
    m->acc = rm_xalloc(NULL, sizeof *m->acc);
    m->acc[0] = (rm_account){0, 0}; /* the fee account */
    m->n_acc = 1;
    m->next_order_id = 1;
    m->next_trade_id = 1;
    m->next_stamp = 1;
    return m;
}

void refmodel_destroy(refmodel *m)
{
    if (!m)
        return;
    for (uint32_t i = 0; i < m->n_ord; i++)
        free(m->ord[i].cap);
    free(m->ord);
    free(m->acc);
    free(m);
}

matcher_reason refmodel_apply(refmodel *m, const matcher_cmd *cmd,
                              matcher_emit_fn emit, void *ctx)
{
    m->cmd = cmd;
    m->emit = emit;
    m->ctx = ctx;
    m->fills = 0;
    switch (cmd->type) {
    case MATCHER_CMD_CREATE_ACCOUNT: return rm_create_account(m, cmd);
    case MATCHER_CMD_DEPOSIT:
    case MATCHER_CMD_WITHDRAW: return rm_transfer(m, cmd);
    case MATCHER_CMD_NEW_ORDER: return rm_new_order(m, cmd);
    case MATCHER_CMD_CANCEL: return rm_cancel(m, cmd);
    case MATCHER_CMD_REPLACE: return rm_replace(m, cmd);
    case MATCHER_CMD_ADVANCE_CLOCK: return rm_advance(m, cmd);
    default: return rm_reject(m, MATCHER_REJ_BAD_COMMAND, 0);
    }
}

int64_t refmodel_clock_hour(const refmodel *m) { return m->now; }
uint32_t refmodel_account_count(const refmodel *m) { return m->n_acc; }
uint32_t refmodel_order_count(const refmodel *m) { return m->n_ord; }
uint64_t refmodel_next_order_id(const refmodel *m) { return m->next_order_id; }
uint64_t refmodel_next_trade_id(const refmodel *m) { return m->next_trade_id; }

void refmodel_totals(const refmodel *m, int64_t *deposited_micros,
                     int64_t *withdrawn_micros)
{
    *deposited_micros = m->deposited_micros;
    *withdrawn_micros = m->withdrawn_micros;
}

int refmodel_account_get(const refmodel *m, uint32_t account,
                         matcher_account_view *out)
{
    if (!rm_account_ok(m, account))
        return -1;
    memset(out, 0, sizeof *out);
    out->account = account;
    out->roles = m->acc[account].roles;
    out->balance_micros = m->acc[account].balance_micros;
    out->held_micros = rm_held(m, account);
    for (uint32_t i = 0; i < m->n_ord; i++)
        out->open_orders += m->ord[i].info.account == account;
    return 0;
}

static void rm_view(const refmodel *m, const rm_order *o, matcher_order_view *out)
{
    memset(out, 0, sizeof *out);
    out->info = o->info;
    out->info.hold_micros = rm_hold(m, o);
    out->filled_qty = o->filled_qty;
    out->remaining_qty = rm_remaining(m, o);
    out->provider_lock = o->lock;
    out->priority = o->stamp;
}

int refmodel_order_at(const refmodel *m, uint32_t index, matcher_order_view *out)
{
    if (index >= m->n_ord)
        return -1;
    rm_view(m, &m->ord[index], out);
    return 0;
}

int refmodel_order_get(const refmodel *m, uint64_t order_id,
                       matcher_order_view *out)
{
    const rm_order *o = rm_find(m, order_id);
    if (!o)
        return -1;
    rm_view(m, o, out);
    return 0;
}

int32_t refmodel_offer_capacity(const refmodel *m, uint64_t order_id,
                                int64_t hour)
{
    const rm_order *o = rm_find(m, order_id);
    if (!o || rm_is_bid(o))
        return 0;
    return rm_cap_at(m, o, hour);
}

uint32_t refmodel_book(const refmodel *m, uint32_t market, uint8_t side,
                       uint64_t *ids, uint32_t max)
{
    uint32_t n;
    uint64_t *sorted = rm_sorted_side(m, market, side, &n);
    for (uint32_t i = 0; i < n && i < max; i++)
        ids[i] = sorted[i];
    free(sorted);
    return n;
}
