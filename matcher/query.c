/* query.c — read-only views of the engine: accounts, orders, capacity,
 * book walks, the state hash and the slow full invariant check. */
#include <stdio.h>
#include <string.h>

#include "matcher/engine_internal.h"

const matcher_catalog *matcher_catalog_of(const matcher_engine *e) { return &e->cat; }
int64_t matcher_clock_hour(const matcher_engine *e) { return e->now_hour; }
uint32_t matcher_account_count(const matcher_engine *e) { return e->n_accounts; }
uint32_t matcher_order_count(const matcher_engine *e) { return e->n_orders; }
uint64_t matcher_next_order_id(const matcher_engine *e) { return e->next_order_id; }
uint64_t matcher_next_trade_id(const matcher_engine *e) { return e->next_trade_id; }

void matcher_totals(const matcher_engine *e, int64_t *deposited_micros, int64_t *withdrawn_micros)
{
    *deposited_micros = e->deposited_micros;
    *withdrawn_micros = e->withdrawn_micros;
}

int matcher_account_get(const matcher_engine *e, uint32_t id, matcher_account_view *out)
{
    if (id >= e->n_accounts)
        return -1;
    const account *a = &e->accounts[id];
    *out = (matcher_account_view){
        .account = id,
        .roles = a->roles,
        .balance_micros = a->balance_micros,
        .held_micros = a->held_micros,
        .open_orders = a->open_orders,
    };
    return 0;
}

static void order_view(const matcher_engine *e, const order *o, matcher_order_view *out)
{
    memset(out, 0, sizeof(*out));
    eng_fill_order_info(o, &out->info);
    out->priority = o->priority;
    out->provider_lock = order_provider_lock(o);
    if (o->side == MATCHER_BUY) {
        out->filled_qty = o->filled_qty;
        out->remaining_qty = bid_remaining(o);
    } else {
        out->remaining_qty = cap_max_open(e, o);
    }
}

int matcher_order_get(const matcher_engine *e, uint64_t order_id, matcher_order_view *out)
{
    uint32_t slot = book_find(e, order_id);
    if (slot == NIL)
        return -1;
    order_view(e, &e->orders[slot], out);
    return 0;
}

static const order *resting_offer(const matcher_engine *e, uint64_t order_id)
{
    uint32_t slot = book_find(e, order_id);
    if (slot == NIL || e->orders[slot].side != MATCHER_SELL)
        return NULL;
    return &e->orders[slot];
}

int32_t matcher_offer_capacity(const matcher_engine *e, uint64_t order_id, int64_t hour)
{
    const order *o = resting_offer(e, order_id);
    if (!o || hour < e->now_hour || hour < o->start_hour || hour >= o->end_hour)
        return 0;
    return cap_at(e, o, (int32_t)hour);
}

int32_t matcher_offer_avail(const matcher_engine *e, uint64_t order_id, int64_t start_hour, int64_t end_hour)
{
    const order *o = resting_offer(e, order_id);
    if (!o || start_hour < INT32_MIN || end_hour > INT32_MAX ||
        !cap_open_covers(e, o, (int32_t)start_hour, (int32_t)end_hour))
        return 0;
    return cap_min(e, o, (int32_t)start_hour, (int32_t)end_hour);
}

void matcher_book_walk(const matcher_engine *e, uint32_t market, uint8_t side, matcher_walk_fn fn, void *ctx)
{
    if (market >= e->cat.n_markets || (side != MATCHER_BUY && side != MATCHER_SELL))
        return;
    const book_side *bs = &e->books[market].side[side_index(side)];
    for (uint32_t i = bs->n_levels; i-- > 0;) { /* best level last */
        for (uint32_t s = e->levels[bs->lvl[i]].head; s != NIL; s = e->orders[s].next) {
            matcher_order_view v;
            order_view(e, &e->orders[s], &v);
            if (!fn(ctx, &v))
                return;
        }
    }
}

/* ---- state hash: a sum of per-item hashes, so it does not depend on
 * table layout or iteration order; priority stamps and canonical capacity
 * make book order and capacity part of the state. ---- */

static uint64_t mix64(uint64_t x)
{
    x ^= x >> 30;
    x *= 0xBF58476D1CE4E5B9ull;
    x ^= x >> 27;
    x *= 0x94D049BB133111EBull;
    x ^= x >> 31;
    return x;
}

static uint64_t h_add(uint64_t h, uint64_t v) { return mix64(h ^ mix64(v + 0x9E3779B97F4A7C15ull)); }

static uint64_t hash_capacity(const matcher_engine *e, const order *o, uint64_t h)
{
    for (cap_cursor k = cap_first(e, o); k.c != NIL; cap_next(&k)) {
        if (cap_end(&k) <= e->now_hour)
            continue;
        int32_t start = cap_start(&k) > e->now_hour ? cap_start(&k) : (int32_t)e->now_hour;
        h = h_add(h, (uint64_t)(uint32_t)start);
        h = h_add(h, (uint64_t)(uint32_t)cap_qty(&k));
    }
    return h;
}

static uint64_t hash_order(const matcher_engine *e, const order *o)
{
    uint64_t h = h_add(0x6f72646572ull, o->id);
    const uint64_t fields[] = {
        o->priority, (uint64_t)o->price_micros, (uint64_t)o->hold_micros, (uint64_t)o->expire_at_hour,
        o->account, o->market, (uint64_t)(uint32_t)o->start_hour, (uint64_t)(uint32_t)o->end_hour,
        (uint64_t)(uint32_t)o->expiry_hour, (uint64_t)(uint32_t)o->qty, (uint64_t)(uint32_t)o->filled_qty,
        (uint64_t)(uint32_t)o->min_qty, (uint64_t)(uint32_t)o->min_hours, order_provider_lock(o), o->side, o->tif,
        o->single_provider,
    };
    for (size_t i = 0; i < GPUX_ARRAY_LEN(fields); i++)
        h = h_add(h, fields[i]);
    return o->side == MATCHER_SELL ? hash_capacity(e, o, h) : h;
}

uint64_t matcher_state_hash(const matcher_engine *e)
{
    uint64_t h = h_add(0x67707578ull, (uint64_t)e->now_hour);
    h = h_add(h, e->next_order_id);
    h = h_add(h, e->next_trade_id);
    h = h_add(h, e->next_priority);
    h = h_add(h, (uint64_t)e->deposited_micros);
    h = h_add(h, (uint64_t)e->withdrawn_micros);
    h = h_add(h, e->n_accounts);
    for (uint32_t i = 0; i < e->n_accounts; i++) {
        const account *a = &e->accounts[i];
        uint64_t ha = h_add(h_add(h_add(h_add(i, (uint64_t)a->balance_micros), (uint64_t)a->held_micros), a->roles),
                            a->open_orders);
        h = h_add(h, ha);
    }
    /* Resting orders only, reached through the books: O(live orders), not
     * O(table size) (the service answers STATUS with this hash). */
    uint64_t sum = 0;
    for (uint32_t m = 0; m < e->cat.n_markets; m++)
        for (int si = 0; si < 2; si++) {
            const book_side *bs = &e->books[m].side[si];
            for (uint32_t i = 0; i < bs->n_levels; i++)
                for (uint32_t s = e->levels[bs->lvl[i]].head; s != NIL; s = e->orders[s].next)
                    sum += hash_order(e, &e->orders[s]);
        }
    return h_add(h, sum);
}
