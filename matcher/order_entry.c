/* order_entry.c — new orders, cancels and replaces.
 *
 * Validation follows docs/market-rules.md step by step (first failure
 * wins) and happens before any state changes. Accepted orders are matched
 * at once (an incoming bid plans against resting offers; an incoming offer
 * sweeps resting bids), then rest, or leave for ioc/fok. */
#include <string.h>

#include "matcher/order_entry.h"

static bool qty_ok(const matcher_market_def *m, int32_t qty)
{
    return qty > 0 && qty <= MATCHER_MAX_QTY && qty % m->lot == 0;
}

_Static_assert(MATCHER_MAX_PRICE_MICROS <= UINT32_MAX, "prices and ticks fit 32 bits");

/* In range first, so the tick test can use a 32-bit division (the catalog
 * keeps ticks <= the maximum price): a 64-bit one was ~1% of every
 * command in the exchange-core mix. */
static bool price_ok(const matcher_market_def *m, int64_t price)
{
    return price > 0 && price <= MATCHER_MAX_PRICE_MICROS &&
           (uint32_t)price % (uint32_t)m->tick_micros == 0;
}

static bool segments_reserve_ok(const matcher_engine *e)
{
    /* Each fill adds at most two breakpoints; a new offer needs one. */
    return e->n_segs_free >= 2u * MATCHER_MAX_FILLS_PER_COMMAND + 1;
}

static matcher_reason validate_shape(const matcher_engine *e, const matcher_cmd *c)
{
    if (c->account >= e->n_accounts)
        return MATCHER_REJ_UNKNOWN_ACCOUNT;
    if (c->market >= e->cat.n_markets)
        return MATCHER_REJ_UNKNOWN_MARKET;
    if (c->side != MATCHER_BUY && c->side != MATCHER_SELL)
        return MATCHER_REJ_BAD_SIDE;
    uint32_t need = c->side == MATCHER_BUY ? MATCHER_ROLE_BUYER : MATCHER_ROLE_PROVIDER;
    if (!(e->accounts[c->account].roles & need))
        return MATCHER_REJ_FORBIDDEN;
    if (c->tif > MATCHER_POST_ONLY || (c->tif == MATCHER_FOK && c->side == MATCHER_SELL))
        return MATCHER_REJ_BAD_TIF;
    if (c->single_provider > 1 || (c->single_provider && c->side == MATCHER_SELL))
        return MATCHER_REJ_BAD_FLAGS;
    const matcher_market_def *m = &e->cat.markets[c->market];
    if (!qty_ok(m, c->qty) || c->min_qty < 0 || c->min_qty > c->qty || c->min_qty % m->lot != 0)
        return MATCHER_REJ_BAD_QTY;
    if (!price_ok(m, c->price_micros))
        return MATCHER_REJ_BAD_PRICE;
    /* Unsigned difference: well defined for any int64 pair with end > start. */
    if (c->end_hour <= c->start_hour ||
        (uint64_t)c->end_hour - (uint64_t)c->start_hour > MATCHER_MAX_WINDOW_HOURS)
        return MATCHER_REJ_BAD_WINDOW;
    if (c->start_hour < e->now_hour)
        return MATCHER_REJ_WINDOW_IN_PAST;
    if (c->start_hour > e->now_hour + MATCHER_MAX_AHEAD_HOURS)
        return MATCHER_REJ_BAD_WINDOW;
    int64_t hours = c->end_hour - c->start_hour;
    if (c->side == MATCHER_BUY ? c->min_hours != 0 : (c->min_hours < 0 || c->min_hours > hours))
        return MATCHER_REJ_BAD_MIN_HOURS;
    if (c->expire_at_hour != 0 && c->expire_at_hour <= e->now_hour)
        return MATCHER_REJ_BAD_EXPIRY;
    if (e->n_orders >= e->cfg.max_orders ||
        e->books[c->market].n_orders >= e->cfg.max_orders_per_market || !segments_reserve_ok(e))
        return MATCHER_REJ_BOOK_FULL;
    return MATCHER_OK;
}

static void order_from_cmd(const matcher_engine *e, const matcher_cmd *c, order *o)
{
    memset(o, 0, sizeof(*o));
    o->account = c->account;
    o->market = c->market;
    o->side = c->side;
    o->tif = c->tif;
    o->single_provider = c->single_provider;
    o->qty = c->qty;
    o->min_qty = c->min_qty;
    o->min_hours = c->min_hours;
    o->price_micros = c->price_micros;
    o->start_hour = (int32_t)c->start_hour;
    o->end_hour = (int32_t)c->end_hour;
    o->expire_at_hour = c->expire_at_hour;
    int64_t natural = c->side == MATCHER_BUY ? c->start_hour : c->end_hour;
    int64_t expiry = (c->expire_at_hour != 0 && c->expire_at_hour < natural) ? c->expire_at_hour : natural;
    o->expiry_hour = (int32_t)expiry;
    o->priority = e->next_priority;
}

static void emit_order(matcher_engine *e, uint16_t type, const order *o)
{
    matcher_event ev;
    eng_event_init(e, &ev, type);
    eng_fill_order_info(o, &ev.u.order);
    if (e->emit)
        e->emit(e->emit_ctx, &ev);
}

static bool order_exhausted(const matcher_engine *e, const order *o)
{
    return o->side == MATCHER_BUY ? bid_remaining(o) == 0 : cap_sold_out(e, o);
}

/* After matching: the incoming order ends (filled, or ioc/fok rest) or
 * rests in the book and the expiry wheel. */
static void finish_incoming(matcher_engine *e, uint32_t slot)
{
    order *o = &e->orders[slot];
    if (order_exhausted(e, o)) {
        eng_order_end(e, slot, MATCHER_DONE_FILLED);
    } else if (o->tif == MATCHER_IOC || o->tif == MATCHER_FOK) {
        eng_order_end(e, slot, MATCHER_DONE_UNFILLED);
    } else {
        if (o->level == NIL)
            book_insert(e, slot);
        if (!o->in_bucket)
            bucket_insert(e, slot);
    }
}

static void match_incoming(matcher_engine *e, uint32_t slot)
{
    e->incoming = slot;
    if (e->orders[slot].side == MATCHER_BUY) {
        match_bid(e, slot);
    } else {
        match_offer_sweep(e, slot);
    }
    finish_incoming(e, slot);
}

static uint32_t take_slot(matcher_engine *e, const order *tmpl)
{
    uint32_t slot = book_order_alloc(e);
    e->orders[slot] = *tmpl;
    return slot;
}

static void register_order(matcher_engine *e, uint32_t slot)
{
    order *o = &e->orders[slot];
    o->id = e->next_order_id++;
    o->priority = e->next_priority++;
    book_idmap_put(e, o->id, slot);
    e->accounts[o->account].open_orders++;
}

static matcher_reason new_bid(matcher_engine *e, const matcher_cmd *c)
{
    order tmp;
    order_from_cmd(e, c, &tmp);
    tmp.hold_micros = eng_hold(e, tmp.price_micros, tmp.qty, order_hours(&tmp));
    account *a = &e->accounts[c->account];
    if (tmp.hold_micros > a->balance_micros - a->held_micros)
        return eng_reject(e, MATCHER_REJ_INSUFFICIENT_FUNDS);
    uint32_t n;
    if (tmp.tif == MATCHER_POST_ONLY && match_bid_plan(e, &tmp, &n))
        return eng_reject(e, MATCHER_REJ_WOULD_MATCH);
    uint32_t slot = take_slot(e, &tmp);
    register_order(e, slot);
    a->held_micros += tmp.hold_micros;
    emit_order(e, MATCHER_EV_ACCEPTED, &e->orders[slot]);
    eng_emit_balance(e, c->account);
    match_incoming(e, slot);
    return MATCHER_OK;
}

static matcher_reason new_offer(matcher_engine *e, const matcher_cmd *c)
{
    order tmp;
    order_from_cmd(e, c, &tmp);
    uint32_t slot = take_slot(e, &tmp);
    order *o = &e->orders[slot];
    cap_init(e, o, o->start_hour, o->qty);
    o->zero_until_hour = o->start_hour; /* qty > 0: nothing sold out yet */
    e->omask[slot] = hmask_range(o->start_hour, o->end_hour);
    /* The dry run needs the offer visible in the book at its priority. */
    book_insert(e, slot);
    if (o->tif == MATCHER_POST_ONLY && match_offer_would_trade(e, slot)) {
        book_remove(e, slot);
        cap_free_all(e, o);
        book_order_free(e, slot);
        return eng_reject(e, MATCHER_REJ_WOULD_MATCH);
    }
    register_order(e, slot);
    emit_order(e, MATCHER_EV_ACCEPTED, o);
    match_incoming(e, slot);
    return MATCHER_OK;
}

matcher_reason entry_new_order(matcher_engine *e, const matcher_cmd *c)
{
    matcher_reason r = validate_shape(e, c);
    if (r != MATCHER_OK)
        return eng_reject(e, r);
    return c->side == MATCHER_BUY ? new_bid(e, c) : new_offer(e, c);
}

matcher_reason entry_cancel(matcher_engine *e, const matcher_cmd *c)
{
    uint32_t slot = book_find(e, c->order_id);
    if (slot == NIL)
        return eng_reject(e, MATCHER_REJ_UNKNOWN_ORDER);
    if (e->orders[slot].account != c->account)
        return eng_reject(e, MATCHER_REJ_FORBIDDEN);
    eng_order_end(e, slot, MATCHER_DONE_CANCELLED);
    return MATCHER_OK;
}

/* ---- replace ---- */

typedef struct replace_plan {
    int64_t price_micros;
    int32_t qty;
    int32_t delta;          /* offers: change of every hour's capacity */
    int64_t hold_micros;    /* bids: new hold */
    bool keep_priority;
} replace_plan;

static matcher_reason replace_validate(matcher_engine *e, const matcher_cmd *c, const order *o, replace_plan *p)
{
    const matcher_market_def *m = &e->cat.markets[o->market];
    p->hold_micros = 0;
    p->price_micros = c->price_micros ? c->price_micros : o->price_micros;
    p->qty = c->qty ? c->qty : o->qty;
    if (c->price_micros && !price_ok(m, c->price_micros))
        return MATCHER_REJ_BAD_PRICE;
    if (c->qty && (!qty_ok(m, c->qty) || o->min_qty > c->qty))
        return MATCHER_REJ_BAD_QTY;
    if (p->price_micros == o->price_micros && p->qty == o->qty)
        return MATCHER_REJ_BAD_QTY;
    p->delta = p->qty - o->qty;
    if (o->side == MATCHER_BUY && p->qty <= o->filled_qty)
        return MATCHER_REJ_BAD_QTY;
    if (o->side == MATCHER_SELL && p->delta < 0) {
        int32_t open_start = order_open_start(e, o);
        if (cap_min(e, o, open_start, o->end_hour) + p->delta < 0)
            return MATCHER_REJ_BAD_QTY;
    }
    if (!segments_reserve_ok(e))
        return MATCHER_REJ_BOOK_FULL;
    if (o->side == MATCHER_BUY) {
        const account *a = &e->accounts[o->account];
        p->hold_micros = eng_hold(e, p->price_micros, p->qty - o->filled_qty, order_hours(o));
        if (p->hold_micros > a->balance_micros - a->held_micros + o->hold_micros)
            return MATCHER_REJ_INSUFFICIENT_FUNDS;
    }
    p->keep_priority = p->price_micros == o->price_micros && p->qty < o->qty;
    return MATCHER_OK;
}

/* Moves the order to its new price/qty (and priority), without events. */
static void replace_move(matcher_engine *e, uint32_t slot, int64_t price, int32_t qty, uint64_t priority)
{
    order *o = &e->orders[slot];
    if (price != o->price_micros && qty == o->qty && priority + 1 >= e->next_priority) {
        o->priority = priority; /* a price move: to the new level's tail */
        book_move(e, slot, price);
        return;
    }
    bool relink = o->priority != priority || o->price_micros != price;
    if (relink)
        book_remove(e, slot);
    o->price_micros = price;
    if (o->side == MATCHER_SELL && qty != o->qty)
        cap_add_all(e, o, qty - o->qty);
    o->qty = qty;
    o->priority = priority;
    if (relink)
        book_insert(e, slot);
}

static bool replace_would_trade(matcher_engine *e, uint32_t slot, const replace_plan *p)
{
    order *o = &e->orders[slot];
    if (o->side == MATCHER_BUY) {
        order tmp = *o;
        tmp.price_micros = p->price_micros;
        tmp.qty = p->qty;
        uint32_t n;
        return match_bid_plan(e, &tmp, &n);
    }
    int64_t old_price = o->price_micros;
    int32_t old_qty = o->qty;
    uint64_t old_priority = o->priority;
    replace_move(e, slot, p->price_micros, p->qty, p->keep_priority ? old_priority : e->next_priority);
    bool would = match_offer_would_trade(e, slot);
    replace_move(e, slot, old_price, old_qty, old_priority);
    return would;
}

matcher_reason entry_replace(matcher_engine *e, const matcher_cmd *c)
{
    uint32_t slot = book_find(e, c->order_id);
    if (slot == NIL)
        return eng_reject(e, MATCHER_REJ_UNKNOWN_ORDER);
    order *o = &e->orders[slot];
    if (o->account != c->account)
        return eng_reject(e, MATCHER_REJ_FORBIDDEN);
    replace_plan p;
    matcher_reason r = replace_validate(e, c, o, &p);
    if (r != MATCHER_OK)
        return eng_reject(e, r);
    if (o->tif == MATCHER_POST_ONLY && replace_would_trade(e, slot, &p))
        return eng_reject(e, MATCHER_REJ_WOULD_MATCH);
    uint64_t priority = p.keep_priority ? o->priority : e->next_priority++;
    replace_move(e, slot, p.price_micros, p.qty, priority);
    if (o->side == MATCHER_BUY) {
        e->accounts[o->account].held_micros += p.hold_micros - o->hold_micros;
        o->hold_micros = p.hold_micros;
    }
    emit_order(e, MATCHER_EV_REPLACED, o);
    if (o->side == MATCHER_BUY)
        eng_emit_balance(e, o->account);
    match_incoming(e, slot);
    return MATCHER_OK;
}
