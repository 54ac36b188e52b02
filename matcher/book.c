/* book.c — where resting orders live: the order slot pool, the id -> slot
 * map, the price levels of each market side and the expiry wheel.
 *
 * Every operation here is O(1) except level creation, which is a binary
 * search plus a memmove of the part of the side's level array that is
 * better than the new level (the array keeps the best level last, and
 * new levels mostly appear near the best). Cancelling an order is O(1):
 * unlink from its level's FIFO and from its expiry bucket. */
#include <string.h>

#include "matcher/engine_internal.h"

/* ---- order slots ---- */

uint32_t book_order_alloc(matcher_engine *e)
{
    uint32_t slot = e->order_free;
    GPUX_ASSERT(slot != NIL);
    e->order_free = e->orders[slot].next;
    memset(&e->orders[slot], 0, sizeof(order));
    e->n_orders++;
    return slot;
}

void book_order_free(matcher_engine *e, uint32_t slot)
{
    GPUX_ASSERT(slot != NIL && e->n_orders > 0);
    order *o = &e->orders[slot];
    GPUX_ASSERT(o->level == NIL && !o->in_bucket && o->seg_head == NIL);
    o->id = 0;
    o->next = e->order_free;
    e->order_free = slot;
    e->n_orders--;
}

/* ---- open-addressing maps (u64 key != 0 -> u32 slot): linear probing,
 * backward-shift deletion so lookups never need tombstones. Used for
 * order id -> order slot and (market, side, price) -> level slot. ---- */

static uint32_t map_home(uint64_t key, uint32_t mask)
{
    uint64_t x = key * 0x9E3779B97F4A7C15ull;
    return (uint32_t)(x >> 32) & mask;
}

static uint32_t map_find(const uint64_t *keys, const uint32_t *vals, uint32_t mask, uint64_t key)
{
    for (uint32_t i = map_home(key, mask), n = 0; n <= mask; i = (i + 1) & mask, n++) {
        if (keys[i] == key)
            return vals[i];
        if (keys[i] == 0)
            return NIL;
    }
    return NIL;
}

static void map_put(uint64_t *keys, uint32_t *vals, uint32_t mask, uint64_t key, uint32_t val)
{
    GPUX_ASSERT(key != 0);
    uint32_t i = map_home(key, mask);
    while (keys[i] != 0) {
        GPUX_ASSERT(keys[i] != key);
        i = (i + 1) & mask;
    }
    keys[i] = key;
    vals[i] = val;
}

static void map_del(uint64_t *keys, uint32_t *vals, uint32_t mask, uint64_t key)
{
    uint32_t i = map_home(key, mask);
    while (keys[i] != key) {
        GPUX_ASSERT(keys[i] != 0);
        i = (i + 1) & mask;
    }
    uint32_t hole = i;
    for (uint32_t j = (i + 1) & mask; keys[j] != 0; j = (j + 1) & mask) {
        uint32_t home = map_home(keys[j], mask);
        bool movable = (hole <= j) ? (home <= hole || home > j) : (home <= hole && home > j);
        if (movable) {
            keys[hole] = keys[j];
            vals[hole] = vals[j];
            hole = j;
        }
    }
    keys[hole] = 0;
}

uint32_t book_find(const matcher_engine *e, uint64_t id)
{
    return id == 0 ? NIL : map_find(e->idmap_keys, e->idmap_vals, e->idmap_mask, id);
}

void book_idmap_put(matcher_engine *e, uint64_t id, uint32_t slot)
{
    map_put(e->idmap_keys, e->idmap_vals, e->idmap_mask, id, slot);
}

void book_idmap_del(matcher_engine *e, uint64_t id)
{
    map_del(e->idmap_keys, e->idmap_vals, e->idmap_mask, id);
}

/* ---- price levels ---- */

static uint64_t level_hkey(uint32_t market, int si, int64_t price)
{
    /* price <= $1000 = 1e9 micros < 2^32, so the three fit one word. */
    return ((uint64_t)(market * 2u + (uint32_t)si) << 32) | (uint64_t)price;
}

/* First index whose key is >= key. Written branchless (the first session
 * measured a mispredicted branch per probe), but gcc 12 -O2 compiles the
 * ?: below to a compare and jump, and a truly branchless form (setl +
 * imul) was slower on matcher_gpu's sides of thousands of levels (fifth
 * session, 3 of 3 pairs): a branchy search overlaps the probes' cache
 * misses by running ahead. Kept as it compiles. */
static uint32_t side_lower_bound(const book_side *bs, int32_t key)
{
    uint32_t n = bs->n_levels;
    if (n == 0)
        return 0;
    const int32_t *first = bs->keys;
    while (n > 1) {
        uint32_t half = n / 2;
        first = first[half - 1] < key ? first + half : first;
        n -= half;
    }
    return (uint32_t)(first - bs->keys) + (*first < key);
}

uint32_t book_level_find(const matcher_engine *e, uint32_t market, int si, int64_t price)
{
    return map_find(e->lvmap_keys, e->lvmap_vals, e->lvmap_mask, level_hkey(market, si, price));
}

static void level_release(matcher_engine *e, uint32_t market, int si, uint32_t l);

/* Drops the side's empty levels in one pass. Only called where no loop is
 * walking the side (order insertion), never from book_remove. */
static void side_compact(matcher_engine *e, uint32_t market, int si)
{
    book_side *bs = &e->books[market].side[si];
    uint32_t j = 0;
    for (uint32_t i = 0; i < bs->n_levels; i++) {
        uint32_t l = bs->lvl[i];
        if (e->levels[l].count == 0) {
            level_release(e, market, si, l);
        } else {
            bs->keys[j] = bs->keys[i];
            bs->lvl[j] = l;
            j++;
        }
    }
    bs->n_levels = j;
    bs->n_empty = 0;
}

static void compact_all(matcher_engine *e)
{
    for (uint32_t m = 0; m < e->cat.n_markets; m++)
        for (int si = 0; si < 2; si++)
            if (e->books[m].side[si].n_empty > 0)
                side_compact(e, m, si);
}

/* A new level for price (hk: its level-map key). Apart from the common
 * path below so that the lookup, inlined where it is used, does not pay
 * for this part's registers. */
static __attribute__((noinline)) uint32_t level_create(matcher_engine *e, uint32_t market, int si, int64_t price,
                                                      uint64_t hk)
{
    book_side *bs = &e->books[market].side[si];
    uint32_t l;
    /* Bound the empties a side carries; never more than a quarter. */
    if (bs->n_levels == bs->cap_levels || bs->n_empty > 32 + bs->n_levels / 4)
        side_compact(e, market, si);
    if (e->level_free == NIL)
        compact_all(e);
    GPUX_ASSERT(bs->n_levels < bs->cap_levels && e->level_free != NIL);
    l = e->level_free;
    e->level_free = e->levels[l].next_free;
    e->levels[l] = (level){.price_micros = price};
    int32_t key = side_key(si == 0 ? MATCHER_BUY : MATCHER_SELL, price);
    uint32_t i = side_lower_bound(bs, key);
    memmove(&bs->keys[i + 1], &bs->keys[i], (bs->n_levels - i) * sizeof(int32_t));
    memmove(&bs->lvl[i + 1], &bs->lvl[i], (bs->n_levels - i) * sizeof(uint32_t));
    bs->keys[i] = key;
    bs->lvl[i] = l;
    bs->n_levels++;
    map_put(e->lvmap_keys, e->lvmap_vals, e->lvmap_mask, hk, l);
    return l;
}

/* The level for price, reusing an empty one; creates it when missing. */
static inline uint32_t level_get_or_create(matcher_engine *e, uint32_t market, int si, int64_t price)
{
    uint64_t hk = level_hkey(market, si, price);
    uint32_t l = map_find(e->lvmap_keys, e->lvmap_vals, e->lvmap_mask, hk);
    if (l == NIL)
        return level_create(e, market, si, price, hk);
    if (e->levels[l].count == 0)
        e->books[market].side[si].n_empty--;
    return l;
}

/* Links order slot (the newest priority) at the tail of level l. */
static inline void level_append(matcher_engine *e, uint32_t l, uint32_t slot)
{
    order *o = &e->orders[slot];
    level *lv = &e->levels[l];
    o->prev = lv->tail;
    o->next = NIL;
    if (lv->tail != NIL)
        e->orders[lv->tail].next = slot;
    else
        lv->head = slot;
    lv->tail = slot;
}

/* Counts order slot (just linked into level l) in the level and its
 * summary. A level that was empty drops its stale summary. */
static inline void level_counted_in(matcher_engine *e, uint32_t l, uint32_t slot)
{
    order *o = &e->orders[slot];
    level *lv = &e->levels[l];
    lv->count++;
    o->level = l;
    if (o->side == MATCHER_SELL)
        e->lvsum[l].hours = lv->count == 1 ? e->omask[slot] : e->lvsum[l].hours | e->omask[slot];
    else
        bid_bounds_cover(&e->lvsum[l].bids, o, lv->count == 1);
}

static void side_pop_empty_best(matcher_engine *e, uint32_t market, int si);

/* Inserts the order into its price level in priority order. New orders
 * have the largest stamp and land at the tail in O(1); a reverted replace
 * walks back from the tail to its old place. */
void book_insert(matcher_engine *e, uint32_t slot)
{
    order *o = &e->orders[slot];
    GPUX_ASSERT(o->level == NIL);
    market_book *mb = &e->books[o->market];
    uint32_t l = level_get_or_create(e, o->market, side_index(o->side), o->price_micros);
    level *lv = &e->levels[l];
    uint32_t after = lv->tail;
    /* Every resting order's priority is below next_priority, so the newest
     * one (a new order) goes to the tail without reading the tail's cold
     * half (a cache miss per insert, most of book_insert's time). */
    bool newest = o->priority + 1 >= e->next_priority;
    while (!newest && after != NIL && e->orders[after].priority > o->priority)
        after = e->orders[after].prev;
    o->prev = after;
    o->next = (after == NIL) ? lv->head : e->orders[after].next;
    if (o->prev != NIL)
        e->orders[o->prev].next = slot;
    else
        lv->head = slot;
    if (o->next != NIL)
        e->orders[o->next].prev = slot;
    else
        lv->tail = slot;
    level_counted_in(e, l, slot);
    mb->n_orders++;
}

/* Takes order slot out of its level's FIFO. A level left empty is counted
 * as such, and popped when it was its side's best. */
static inline void level_unlink(matcher_engine *e, uint32_t slot)
{
    order *o = &e->orders[slot];
    level *lv = &e->levels[o->level];
    if (o->prev != NIL)
        e->orders[o->prev].next = o->next;
    else
        lv->head = o->next;
    if (o->next != NIL)
        e->orders[o->next].prev = o->prev;
    else
        lv->tail = o->prev;
    GPUX_ASSERT(lv->count > 0);
    lv->count--;
    o->level = NIL;
    o->prev = o->next = NIL;
    if (lv->count == 0) {
        int si = side_index(o->side);
        e->books[o->market].side[si].n_empty++;
        side_pop_empty_best(e, o->market, si);
    }
}

/* A price move of a resting order (a replace that moves the price: the
 * order has the newest priority, so it goes to the new level's tail).
 * The same as book_remove then book_insert, in one pass: the exchange-core
 * mix is 82% such replaces. */
void book_move(matcher_engine *e, uint32_t slot, int64_t price)
{
    order *o = &e->orders[slot];
    GPUX_ASSERT(o->level != NIL && o->price_micros != price && o->priority + 1 >= e->next_priority);
    level_unlink(e, slot);
    o->price_micros = price;
    uint32_t l = level_get_or_create(e, o->market, side_index(o->side), price);
    level_append(e, l, slot);
    level_counted_in(e, l, slot);
}

/* Refreshing a level's mask walks its offers; a longer level keeps the
 * bits it has (stale bits only cost a walk, never a wrong answer). */
#define LEVEL_REFRESH_MAX 16

void book_offer_mask_changed(matcher_engine *e, uint32_t slot, hmask old_mask)
{
    const order *o = &e->orders[slot];
    hmask now = e->omask[slot];
    if (o->level == NIL || now == old_mask)
        return;
    GPUX_ASSERT(o->side == MATCHER_SELL);
    level *lv = &e->levels[o->level];
    if ((old_mask & ~now) == 0 || lv->count > LEVEL_REFRESH_MAX) {
        e->lvsum[o->level].hours |= now; /* only gained bits, or too long to recompute */
        return;
    }
    hmask acc = 0;
    for (uint32_t s = lv->head, n = 0; s != NIL; s = e->orders[s].next, n++) {
        GPUX_ASSERT(n < LEVEL_REFRESH_MAX);
        acc |= e->omask[s];
    }
    e->lvsum[o->level].hours = acc;
}

static void level_release(matcher_engine *e, uint32_t market, int si, uint32_t l)
{
    map_del(e->lvmap_keys, e->lvmap_vals, e->lvmap_mask, level_hkey(market, si, e->levels[l].price_micros));
    e->levels[l].next_free = e->level_free;
    e->level_free = l;
}

/* Pops emptied levels off the best end. Matching loops walk from the best
 * end down, so the entries popped are ones they have already passed. */
static void side_pop_empty_best(matcher_engine *e, uint32_t market, int si)
{
    book_side *bs = &e->books[market].side[si];
    while (bs->n_levels > 0 && e->levels[bs->lvl[bs->n_levels - 1]].count == 0) {
        GPUX_ASSERT(bs->n_empty > 0);
        level_release(e, market, si, bs->lvl[--bs->n_levels]);
        bs->n_empty--;
    }
}

/* O(1) amortised: an emptied best level is popped, any other emptied
 * level stays in its side's array until compaction. */
void book_remove(matcher_engine *e, uint32_t slot)
{
    order *o = &e->orders[slot];
    GPUX_ASSERT(o->level != NIL);
    market_book *mb = &e->books[o->market];
    GPUX_ASSERT(mb->n_orders > 0);
    mb->n_orders--;
    level_unlink(e, slot);
}

/* ---- expiry wheel ---- */

void bucket_insert(matcher_engine *e, uint32_t slot)
{
    order *o = &e->orders[slot];
    GPUX_ASSERT(!o->in_bucket);
    GPUX_ASSERT(o->expiry_hour >= e->now_hour && o->expiry_hour <= e->now_hour + MATCHER_HORIZON_HOURS);
    uint32_t b = (uint32_t)(o->expiry_hour % EXPIRY_RING);
    o->xprev = e->bucket_tail[b];
    o->xnext = NIL;
    if (o->xprev != NIL)
        e->orders[o->xprev].xnext = slot;
    else
        e->bucket_head[b] = slot;
    e->bucket_tail[b] = slot;
    o->in_bucket = 1;
}

void bucket_remove(matcher_engine *e, uint32_t slot)
{
    order *o = &e->orders[slot];
    GPUX_ASSERT(o->in_bucket);
    uint32_t b = (uint32_t)(o->expiry_hour % EXPIRY_RING);
    if (o->xprev != NIL)
        e->orders[o->xprev].xnext = o->xnext;
    else
        e->bucket_head[b] = o->xnext;
    if (o->xnext != NIL)
        e->orders[o->xnext].xprev = o->xprev;
    else
        e->bucket_tail[b] = o->xprev;
    o->xprev = o->xnext = NIL;
    o->in_bucket = 0;
}
