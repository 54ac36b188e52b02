/* book.c — where resting orders live: the order slot pool, the id -> slot
 * map, the price levels of each market side and the expiry wheel.
 *
 * Every operation here is O(1) except level creation/removal, which is a
 * binary search plus a memmove of the side's level array (levels are few
 * compared with orders). Cancelling an order is O(1): unlink from its
 * level's FIFO and from its expiry bucket. */
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

/* ---- id -> slot map: linear probing, backward-shift deletion ---- */

static uint32_t idmap_hash(const matcher_engine *e, uint64_t id)
{
    uint64_t x = id * 0x9E3779B97F4A7C15ull;
    return (uint32_t)(x >> 32) & e->idmap_mask;
}

uint32_t book_find(const matcher_engine *e, uint64_t id)
{
    if (id == 0)
        return NIL;
    for (uint32_t i = idmap_hash(e, id), n = 0; n <= e->idmap_mask; i = (i + 1) & e->idmap_mask, n++) {
        if (e->idmap_keys[i] == id)
            return e->idmap_vals[i];
        if (e->idmap_keys[i] == 0)
            return NIL;
    }
    return NIL;
}

void book_idmap_put(matcher_engine *e, uint64_t id, uint32_t slot)
{
    GPUX_ASSERT(id != 0);
    uint32_t i = idmap_hash(e, id);
    while (e->idmap_keys[i] != 0) {
        GPUX_ASSERT(e->idmap_keys[i] != id);
        i = (i + 1) & e->idmap_mask;
    }
    e->idmap_keys[i] = id;
    e->idmap_vals[i] = slot;
}

void book_idmap_del(matcher_engine *e, uint64_t id)
{
    uint32_t i = idmap_hash(e, id);
    while (e->idmap_keys[i] != id) {
        GPUX_ASSERT(e->idmap_keys[i] != 0);
        i = (i + 1) & e->idmap_mask;
    }
    /* Shift later members of the probe run back so lookups never need
     * tombstones. */
    uint32_t hole = i;
    for (uint32_t j = (i + 1) & e->idmap_mask; e->idmap_keys[j] != 0; j = (j + 1) & e->idmap_mask) {
        uint32_t home = idmap_hash(e, e->idmap_keys[j]);
        bool movable = (hole <= j) ? (home <= hole || home > j) : (home <= hole && home > j);
        if (movable) {
            e->idmap_keys[hole] = e->idmap_keys[j];
            e->idmap_vals[hole] = e->idmap_vals[j];
            hole = j;
        }
    }
    e->idmap_keys[hole] = 0;
}

/* ---- price levels ---- */

/* First index whose key is >= key. Branchless: prices arrive in no
 * predictable order, and a mispredicted branch per probe cost more than
 * the probes themselves (measured: see docs/benchmarks.md). */
static uint32_t side_lower_bound(const book_side *bs, int64_t key)
{
    uint32_t n = bs->n_levels;
    if (n == 0)
        return 0;
    const int64_t *first = bs->keys;
    while (n > 1) {
        uint32_t half = n / 2;
        first = first[half - 1] < key ? first + half : first;
        n -= half;
    }
    return (uint32_t)(first - bs->keys) + (*first < key);
}

static uint32_t level_get_or_create(matcher_engine *e, book_side *bs, int64_t key, int64_t price)
{
    uint32_t i = side_lower_bound(bs, key);
    if (i < bs->n_levels && bs->keys[i] == key)
        return bs->lvl[i];
    GPUX_ASSERT(bs->n_levels < bs->cap_levels);
    uint32_t l = e->level_free;
    GPUX_ASSERT(l != NIL);
    e->level_free = e->levels[l].next_free;
    e->levels[l] = (level){.price_micros = price};
    memmove(&bs->keys[i + 1], &bs->keys[i], (bs->n_levels - i) * sizeof(int64_t));
    memmove(&bs->lvl[i + 1], &bs->lvl[i], (bs->n_levels - i) * sizeof(uint32_t));
    bs->keys[i] = key;
    bs->lvl[i] = l;
    bs->n_levels++;
    return l;
}

static void level_destroy(matcher_engine *e, book_side *bs, uint32_t l, int64_t key)
{
    uint32_t i = side_lower_bound(bs, key);
    GPUX_ASSERT(i < bs->n_levels && bs->lvl[i] == l);
    memmove(&bs->keys[i], &bs->keys[i + 1], (bs->n_levels - i - 1) * sizeof(int64_t));
    memmove(&bs->lvl[i], &bs->lvl[i + 1], (bs->n_levels - i - 1) * sizeof(uint32_t));
    bs->n_levels--;
    e->levels[l].next_free = e->level_free;
    e->level_free = l;
}

/* Inserts the order into its price level in priority order. New orders
 * have the largest stamp and land at the tail in O(1); a reverted replace
 * walks back from the tail to its old place. */
void book_insert(matcher_engine *e, uint32_t slot)
{
    order *o = &e->orders[slot];
    GPUX_ASSERT(o->level == NIL);
    market_book *mb = &e->books[o->market];
    book_side *bs = &mb->side[side_index(o->side)];
    uint32_t l = level_get_or_create(e, bs, side_key(o->side, o->price_micros), o->price_micros);
    level *lv = &e->levels[l];
    uint32_t after = lv->tail;
    while (after != NIL && e->orders[after].priority > o->priority)
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
    lv->count++;
    o->level = l;
    mb->n_orders++;
}

void book_remove(matcher_engine *e, uint32_t slot)
{
    order *o = &e->orders[slot];
    GPUX_ASSERT(o->level != NIL);
    market_book *mb = &e->books[o->market];
    level *lv = &e->levels[o->level];
    if (o->prev != NIL)
        e->orders[o->prev].next = o->next;
    else
        lv->head = o->next;
    if (o->next != NIL)
        e->orders[o->next].prev = o->prev;
    else
        lv->tail = o->prev;
    GPUX_ASSERT(lv->count > 0 && mb->n_orders > 0);
    lv->count--;
    mb->n_orders--;
    if (lv->count == 0)
        level_destroy(e, &mb->side[side_index(o->side)], o->level, side_key(o->side, o->price_micros));
    o->level = NIL;
    o->prev = o->next = NIL;
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
