/* check.c — matcher_check(): every internal invariant, checked the slow
 * way. Tests call it after every command; production never does. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "matcher/engine_internal.h"

typedef struct checker {
    const matcher_engine *e;
    char *err;
    size_t errlen;
    int64_t *held;      /* recomputed held per account */
    uint32_t *open;     /* recomputed open orders per account */
    uint32_t seen;      /* orders reached through the book */
    uint64_t bps;       /* capacity breakpoints of the offers seen */
} checker;

static int fail(checker *k, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(k->err, k->errlen, fmt, ap);
    va_end(ap);
    return -1;
}

/* An offer's breakpoints ascend inside its window, hold 0..qty and differ
 * from their neighbours (canonical); every chunk holds 1..CAP_CHUNK_N
 * (capacity.c, "Chunks"). Counts them into k->bps. */
static int check_capacity(checker *k, const order *o)
{
    const matcher_engine *e = k->e;
    if (o->cap_head == NIL)
        return fail(k, "offer %llu has no capacity list", (unsigned long long)o->id);
    uint32_t n_chunks = 0;
    for (uint32_t c = o->cap_head; c != NIL; c = e->chunks[c].next) {
        if (++n_chunks > (uint32_t)MATCHER_MAX_WINDOW_HOURS + 1)
            return fail(k, "offer %llu capacity list too long", (unsigned long long)o->id);
        if (e->chunks[c].n < 1 || e->chunks[c].n > CAP_CHUNK_N)
            return fail(k, "offer %llu capacity chunk holds %u", (unsigned long long)o->id, e->chunks[c].n);
    }
    int32_t prev_start = INT32_MIN;
    int32_t prev_qty = -1;
    for (cap_cursor c = cap_first(e, o); c.c != NIL; cap_next(&c)) {
        int32_t start = cap_start(&c), qty = cap_qty(&c);
        k->bps++;
        if (start <= prev_start || start >= o->end_hour)
            return fail(k, "offer %llu breakpoints out of order", (unsigned long long)o->id);
        if (start < o->start_hour)
            return fail(k, "offer %llu breakpoint before start", (unsigned long long)o->id);
        if (qty < 0 || qty > o->qty)
            return fail(k, "offer %llu capacity %d outside 0..%d", (unsigned long long)o->id, qty, o->qty);
        if (qty == prev_qty)
            return fail(k, "offer %llu capacity not canonical", (unsigned long long)o->id);
        prev_start = start;
        prev_qty = qty;
    }
    return 0;
}

/* Every block an offer flags holds an hour without capacity (hours before
 * the clock count as none), so the flag never hides capacity. */
static int check_zero_blocks(checker *k, const order *o)
{
    int32_t b = (order_hours(o) + 63) / 64;
    for (int bit = 0; bit < 64; bit++) {
        if (!(o->zero_blocks >> bit & 1))
            continue;
        int32_t from = o->start_hour + bit * b, to = from + b < o->end_hour ? from + b : o->end_hour;
        int32_t h = from;
        while (h < to && cap_at(k->e, o, h) != 0)
            h++;
        if (h == to)
            return fail(k, "offer %llu flags block %d with capacity in every hour", (unsigned long long)o->id, bit);
    }
    return 0;
}

/* An offer's hour mask has the bit of every open hour with capacity, and
 * its level's mask has every bit of the offer's (capacity.c, "Hour
 * masks"): a missing bit would make a plan skip capacity. */
static int check_hour_masks(checker *k, const order *o, uint32_t slot, hmask level_mask)
{
    const matcher_engine *e = k->e;
    hmask om = e->omask[slot];
    if ((om & ~level_mask) != 0)
        return fail(k, "offer %llu has hour bits its level lacks", (unsigned long long)o->id);
    int32_t open = order_open_start(e, o);
    for (cap_cursor c = cap_first(e, o); c.c != NIL; cap_next(&c)) {
        int32_t from = cap_start(&c) > open ? cap_start(&c) : open;
        int32_t to = cap_end(&c);
        if (cap_qty(&c) > 0 && from < to && (hmask_range(from, to) & ~om) != 0)
            return fail(k, "offer %llu hour mask misses hours %d..%d with capacity",
                        (unsigned long long)o->id, from, to);
    }
    return 0;
}

/* A bid lies inside its level's window bounds (engine_internal.h,
 * bid_bounds; kept packed in the level): bounds too tight would make a
 * sweep skip a bid it can serve. */
static int check_bid_bounds(checker *k, const order *o, const bid_bounds *bb)
{
    if (o->start_hour > bb->max_start_hour || o->end_hour < bb->min_end_hour || order_hours(o) > bb->max_hours)
        return fail(k, "bid %llu window %d..%d outside its level's bounds (start <= %d, end >= %d, hours <= %d)",
                    (unsigned long long)o->id, o->start_hour, o->end_hour, bb->max_start_hour, bb->min_end_hour,
                    bb->max_hours);
    return 0;
}

/* An offer lies inside one of its level's covers (engine_internal.h,
 * ask_cover): covers too narrow would make a plan skip an offer that can
 * serve its bid. */
static int check_ask_cover(checker *k, const order *o, const level *lv)
{
    if (!ask_cover_holds(&lv->covers, o->start_hour, o->end_hour))
        return fail(k, "offer %llu window %d..%d outside its level's covers", (unsigned long long)o->id,
                    o->start_hour, o->end_hour);
    return 0;
}

/* A level's bid prefix (engine_internal.h, level) is the first bids of
 * its FIFO, in order, with their windows: an entry out of place or with a
 * wrong window would make a sweep skip, or miss, a bid it can serve. Ask
 * levels keep covers in that room instead. */
static int check_level_prefix(checker *k, const level *lv, int64_t price, uint8_t side)
{
    const matcher_engine *e = k->e;
    if (side == MATCHER_SELL)
        return 0;
    uint32_t n = level_win_n(lv);
    for (uint32_t j = n; j < LEVEL_WIN; j++)
        if (lv->win_slot[j] != NIL)
            return fail(k, "level at %lld: prefix entry %u after its end", (long long)price, j);
    if (n > lv->count)
        return fail(k, "level at %lld: prefix of %u bids, %u in the level", (long long)price, n, lv->count);
    uint32_t s = lv->head;
    for (uint32_t j = 0; j < n; j++, s = e->orders[s].next) {
        if (s == NIL || lv->win_slot[j] != s)
            return fail(k, "level at %lld: prefix entry %u is not the FIFO's bid %u", (long long)price, j, j);
        const order *b = &e->orders[s];
        if (lv->win_start_hour[j] != b->start_hour || lv->win_hours[j] != order_hours(b))
            return fail(k, "level at %lld: prefix window of bid %llu is %d+%u, not %d..%d", (long long)price,
                        (unsigned long long)b->id, lv->win_start_hour[j], lv->win_hours[j], b->start_hour,
                        b->end_hour);
    }
    return 0;
}

static int check_order(checker *k, const order *o, uint32_t slot, int64_t level_price, uint8_t side, uint32_t market)
{
    const matcher_engine *e = k->e;
    if (o->price_micros != level_price || o->side != side || o->market != market)
        return fail(k, "order %llu in the wrong level", (unsigned long long)o->id);
    if (book_find(e, o->id) != slot)
        return fail(k, "order %llu not found by id", (unsigned long long)o->id);
    if (!o->in_bucket || o->expiry_hour < e->now_hour)
        return fail(k, "order %llu not in the expiry wheel", (unsigned long long)o->id);
    if (o->account >= e->n_accounts)
        return fail(k, "order %llu has unknown account", (unsigned long long)o->id);
    k->open[o->account]++;
    if (side == MATCHER_BUY) {
        if (o->filled_qty < 0 || o->filled_qty >= o->qty)
            return fail(k, "bid %llu filled %d of %d", (unsigned long long)o->id, o->filled_qty, o->qty);
        if (o->hold_micros != eng_hold(e, o->price_micros, bid_remaining(o), order_hours(o)))
            return fail(k, "bid %llu hold is not the formula", (unsigned long long)o->id);
        if (o->start_hour < e->now_hour)
            return fail(k, "bid %llu rests past its start", (unsigned long long)o->id);
        k->held[o->account] += o->hold_micros;
        return 0;
    }
    if (o->end_hour <= e->now_hour)
        return fail(k, "offer %llu rests past its end", (unsigned long long)o->id);
    if (check_capacity(k, o) != 0)
        return -1;
    /* the sold-out prefix it claims has no capacity in any open hour */
    for (int32_t h = order_open_start(e, o);
         h < o->zero_until_hour && h < o->end_hour; h++)
        if (cap_at(e, o, h) != 0)
            return fail(k, "offer %llu claims hour %d sold out", (unsigned long long)o->id, h);
    return check_zero_blocks(k, o);
}

static int check_side(checker *k, uint32_t m, int si)
{
    const matcher_engine *e = k->e;
    const book_side *bs = &e->books[m].side[si];
    uint8_t side = si == 0 ? MATCHER_BUY : MATCHER_SELL;
    uint32_t empty = 0;
    if (bs->keys != bs->keys_base + bs->front || bs->lvl != bs->lvl_base + bs->front ||
        bs->n_levels > bs->cap_levels || bs->front + bs->n_levels > 2 * bs->cap_levels)
        return fail(k, "market %u side %d arrays: %u levels from %u of 2 x %u", m, si, bs->n_levels, bs->front,
                    bs->cap_levels);
    for (uint32_t i = 0; i < bs->n_levels; i++) {
        const level *lv = &e->levels[bs->lvl[i]];
        if (i > 0 && bs->keys[i - 1] >= bs->keys[i])
            return fail(k, "market %u side %d levels not sorted", m, si);
        int64_t price = key_price(si, bs->keys[i]);
        if (price <= 0 || price > MATCHER_MAX_PRICE_MICROS || book_level_find(e, m, si, price) != bs->lvl[i])
            return fail(k, "market %u side %d level %u bad or not in the level map", m, si, i);
        empty += lv->count == 0;
        if (check_level_prefix(k, lv, price, side) != 0)
            return -1;
        bid_bounds bb = bid_bnd8_unpack(lv->bounds); /* bid levels */
        uint32_t count = 0;
        uint64_t prev_priority = 0;
        for (uint32_t s = lv->head, p = NIL; s != NIL; p = s, s = e->orders[s].next) {
            const order *o = &e->orders[s];
            if (o->prev != p || o->level != bs->lvl[i] || o->priority <= prev_priority)
                return fail(k, "market %u level links/priority broken at order %llu", m, (unsigned long long)o->id);
            if (check_order(k, o, s, price, side, m) != 0)
                return -1;
            if (side == MATCHER_SELL && check_hour_masks(k, o, s, e->lvmask[bs->lvl[i]]) != 0)
                return -1;
            if (side == MATCHER_SELL && check_ask_cover(k, o, lv) != 0)
                return -1;
            if (side == MATCHER_BUY && check_bid_bounds(k, o, &bb) != 0)
                return -1;
            prev_priority = o->priority;
            if (++count > lv->count)
                break;
        }
        if (count != lv->count)
            return fail(k, "market %u level count %u != %u", m, lv->count, count);
        k->seen += count;
    }
    if (empty != bs->n_empty)
        return fail(k, "market %u side %d has %u empty levels, counted %u", m, si, empty, bs->n_empty);
    if (bs->n_levels > 0 && e->levels[bs->lvl[bs->n_levels - 1]].count == 0)
        return fail(k, "market %u side %d keeps an empty best level", m, si);
    return 0;
}

static int check_accounts(checker *k)
{
    const matcher_engine *e = k->e;
    int64_t sum = 0;
    for (uint32_t a = 0; a < e->n_accounts; a++) {
        const account *acc = &e->accounts[a];
        if (acc->balance_micros < 0)
            return fail(k, "account %u balance %lld < 0", a, (long long)acc->balance_micros);
        if (acc->held_micros != k->held[a] || acc->held_micros > acc->balance_micros)
            return fail(k, "account %u held %lld (bids %lld, balance %lld)", a, (long long)acc->held_micros,
                        (long long)k->held[a], (long long)acc->balance_micros);
        if (acc->open_orders != k->open[a])
            return fail(k, "account %u open orders %u != %u", a, acc->open_orders, k->open[a]);
        sum += acc->balance_micros;
    }
    if (sum != e->deposited_micros - e->withdrawn_micros)
        return fail(k, "money not conserved: balances %lld, deposits-withdrawals %lld", (long long)sum,
                    (long long)(e->deposited_micros - e->withdrawn_micros));
    return 0;
}

int matcher_check(const matcher_engine *e, char *err, size_t errlen)
{
    checker k = {.e = e, .err = err, .errlen = errlen};
    k.held = calloc(e->n_accounts, sizeof(int64_t));
    k.open = calloc(e->n_accounts, sizeof(uint32_t));
    int rc = (!k.held || !k.open) ? fail(&k, "out of memory") : 0;
    for (uint32_t m = 0; rc == 0 && m < e->cat.n_markets; m++) {
        uint32_t before = k.seen;
        rc = check_side(&k, m, 0);
        if (rc == 0)
            rc = check_side(&k, m, 1);
        if (rc == 0 && k.seen - before != e->books[m].n_orders)
            rc = fail(&k, "market %u order count %u != %u", m, e->books[m].n_orders, k.seen - before);
    }
    if (rc == 0 && k.seen != e->n_orders)
        rc = fail(&k, "%u orders in the book, %u allocated", k.seen, e->n_orders);
    if (rc == 0 && k.bps != (uint64_t)e->cfg.max_segments - e->n_segs_free)
        rc = fail(&k, "%llu capacity breakpoints in the book, %u counted in use", (unsigned long long)k.bps,
                  e->cfg.max_segments - e->n_segs_free);
    if (rc == 0)
        rc = check_accounts(&k);
    free(k.held);
    free(k.open);
    return rc;
}
