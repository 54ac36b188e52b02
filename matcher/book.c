/* book.c — where resting orders live: the order slot pool, the id -> slot
 * map, the price levels of each market side and the expiry wheel.
 *
 * Every operation here is O(1) except level creation, which is a binary
 * search plus a memmove of the part of the side's level array that is
 * better than the new level (the array keeps the best level last, and
 * new levels mostly appear near the best). Cancelling an order is O(1):
 * unlink from its level's FIFO and from its expiry bucket. */
#include <string.h>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "matcher/engine_internal.h"

/* ---- order slots ---- */

uint32_t book_order_alloc(matcher_engine *e)
{
    uint32_t slot = e->order_free;
    if (slot != NIL) {
        e->order_free = e->orders[slot].next;
    } else {
        GPUX_ASSERT(e->orders_hw < e->cfg.max_orders);
        slot = ++e->orders_hw;
    }
    memset(&e->orders[slot], 0, sizeof(order));
    e->n_orders++;
    return slot;
}

void book_order_free(matcher_engine *e, uint32_t slot)
{
    GPUX_ASSERT(slot != NIL && e->n_orders > 0);
    order *o = &e->orders[slot];
    GPUX_ASSERT(o->level == NIL && !o->in_bucket && o->cap_head == NIL);
    o->id = 0;
    o->next = e->order_free;
    e->order_free = slot;
    e->n_orders--;
}

uint32_t book_find(const matcher_engine *e, uint64_t id)
{
    return id == 0 ? NIL : slotmap_find(&e->idmap, id);
}

void book_idmap_put(matcher_engine *e, uint64_t id, uint32_t slot)
{
    slotmap_put(&e->idmap, id, slot);
}

void book_idmap_del(matcher_engine *e, uint64_t id)
{
    slotmap_del(&e->idmap, id);
}

/* ---- price levels ---- */

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
    return slotmap_find(&e->lvmap, level_hkey(market, si, price));
}

static void level_release(matcher_engine *e, uint32_t market, int si, uint32_t l, int64_t price);

/* Drops the side's empty levels in one pass. Only called where no loop is
 * walking the side (order insertion), never from book_remove. */
static void side_compact(matcher_engine *e, uint32_t market, int si)
{
    book_side *bs = &e->books[market].side[si];
    uint32_t j = 0;
    for (uint32_t i = 0; i < bs->n_levels; i++) {
        uint32_t l = bs->lvl[i];
        if (e->levels[l].count == 0) {
            level_release(e, market, si, l, key_price(si, bs->keys[i]));
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

/* Puts (key, l) at index i of the side's arrays, moving the shorter part:
 * the i entries before it down one (into the free room before keys[0])
 * or the n - i after it up one. New levels land anywhere in a GPU
 * market's band (matcher_gpu: half the side moved per new level, on
 * average), so this halves the memmove, which was ~8% of matcher_gpu's
 * time (docs/benchmarks.md, eighth session). The arrays hold 2 *
 * cap_levels entries and a side never more than cap_levels, so when one
 * room is used up the other has space: no recentering is ever needed. */
static void side_insert(book_side *bs, uint32_t i, int32_t key, uint32_t l)
{
    uint32_t n = bs->n_levels;
    GPUX_ASSERT(i <= n && n < bs->cap_levels);
    bool room_after = bs->front + n < 2 * bs->cap_levels;
    if (bs->front > 0 && (i < n - i || !room_after)) {
        memmove(bs->keys - 1, bs->keys, i * sizeof(int32_t));
        memmove(bs->lvl - 1, bs->lvl, i * sizeof(uint32_t));
        bs->keys--;
        bs->lvl--;
        bs->front--;
    } else {
        GPUX_ASSERT(room_after);
        memmove(&bs->keys[i + 1], &bs->keys[i], (n - i) * sizeof(int32_t));
        memmove(&bs->lvl[i + 1], &bs->lvl[i], (n - i) * sizeof(uint32_t));
    }
    bs->keys[i] = key;
    bs->lvl[i] = l;
    bs->n_levels = n + 1;
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
    if (e->level_free == NIL && e->levels_hw == e->cfg.max_orders)
        compact_all(e);
    GPUX_ASSERT(bs->n_levels < bs->cap_levels && (e->level_free != NIL || e->levels_hw < e->cfg.max_orders));
    if (e->level_free != NIL) {
        l = e->level_free;
        e->level_free = e->levels[l].next_free;
    } else {
        l = ++e->levels_hw;
    }
    e->levels[l] = (level){.head = NIL};
    int32_t key = side_key(si == 0 ? MATCHER_BUY : MATCHER_SELL, price);
    side_insert(bs, side_lower_bound(bs, key), key, l);
    slotmap_put(&e->lvmap, hk, l);
    return l;
}

/* The level for price, reusing an empty one; creates it when missing. */
static inline uint32_t level_get_or_create(matcher_engine *e, uint32_t market, int si, int64_t price)
{
    uint64_t hk = level_hkey(market, si, price);
    uint32_t l = slotmap_find(&e->lvmap, hk);
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

/* Bid prefix upkeep (engine_internal.h, level; match.c, "Bid windows").
 * Writes entry k of level lv's prefix. */
static inline void level_win_set(level *lv, uint32_t k, const order *b, uint32_t slot)
{
    lv->win_slot[k] = slot;
    lv->win_start_hour[k] = b->start_hour;
    lv->win_hours[k] = (uint16_t)order_hours(b);
}

/* Bid slot b, just linked after b->prev (NIL: at the head), joins the
 * prefix when it lands inside it or right behind it: the prefix stays the
 * first bids of the FIFO, and a full prefix drops its last entry. */
static __attribute__((noinline)) void level_win_insert(level *lv, const order *b, uint32_t slot)
{
    uint32_t n = level_win_n(lv), p = 0;
    if (b->prev != NIL) {
        while (p < n && lv->win_slot[p] != b->prev)
            p++;
        if (p == n)
            return; /* behind a bid beyond the prefix */
        p++;
    }
    if (p >= LEVEL_WIN)
        return;
    for (uint32_t k = (n < LEVEL_WIN ? n : LEVEL_WIN - 1); k > p; k--) {
        lv->win_slot[k] = lv->win_slot[k - 1];
        lv->win_start_hour[k] = lv->win_start_hour[k - 1];
        lv->win_hours[k] = lv->win_hours[k - 1];
    }
    level_win_set(lv, p, b, slot);
}

/* Bid slot leaves level lv's prefix if it is there (the bids behind it
 * move up; the prefix is one shorter). A bid leaves its level on every
 * cancel, fill and price move (82% of the classic mix): with SSE2 this is
 * one compare of the four slots and, when one matches, a masked shift of
 * each array, with no loop and no branch on the position (a loop and a
 * call here cost matcher_classic ~5-10%: docs/benchmarks.md, sixth
 * session). */
#if defined(__SSE2__)
static inline void level_win_leave(level *lv, uint32_t slot)
{
    _Static_assert(LEVEL_WIN == 4 && sizeof(lv->win_slot) == 16 && sizeof(lv->win_start_hour) == 16 &&
                       sizeof(lv->win_hours) == 8,
                   "level_win_leave shifts four 32-bit and four 16-bit lanes");
    /* keep32[k]: lanes before k (32-bit); keep16[k]: the same in 16-bit lanes */
    static const uint32_t keep32[4][4] = {{0, 0, 0, 0}, {~0u, 0, 0, 0}, {~0u, ~0u, 0, 0}, {~0u, ~0u, ~0u, 0}};
    static const uint64_t keep16[4] = {0, 0xffffull, 0xffffffffull, 0xffffffffffffull};
    __m128i slots = _mm_loadu_si128((const __m128i *)lv->win_slot);
    int hit = _mm_movemask_ps(_mm_castsi128_ps(_mm_cmpeq_epi32(slots, _mm_set1_epi32((int)slot))));
    if (hit == 0)
        return;
    int k = __builtin_ctz((unsigned)hit);
    __m128i keep = _mm_loadu_si128((const __m128i *)keep32[k]);
    __m128i starts = _mm_loadu_si128((const __m128i *)lv->win_start_hour);
    slots = _mm_or_si128(_mm_and_si128(keep, slots), _mm_andnot_si128(keep, _mm_srli_si128(slots, 4)));
    starts = _mm_or_si128(_mm_and_si128(keep, starts), _mm_andnot_si128(keep, _mm_srli_si128(starts, 4)));
    _mm_storeu_si128((__m128i *)lv->win_slot, slots);
    _mm_storeu_si128((__m128i *)lv->win_start_hour, starts);
    uint64_t hours;
    memcpy(&hours, lv->win_hours, sizeof hours);
    hours = (hours & keep16[k]) | ((hours >> 16) & ~keep16[k]);
    memcpy(lv->win_hours, &hours, sizeof hours);
}
#else
static inline void level_win_leave(level *lv, uint32_t slot)
{
    uint32_t k = 0;
    while (k < LEVEL_WIN && lv->win_slot[k] != slot)
        k++;
    for (; k < LEVEL_WIN; k++) {
        bool last = k + 1 == LEVEL_WIN;
        lv->win_slot[k] = last ? NIL : lv->win_slot[k + 1];
        lv->win_start_hour[k] = last ? 0 : lv->win_start_hour[k + 1];
        lv->win_hours[k] = last ? 0 : lv->win_hours[k + 1];
    }
}
#endif

/* Counts order slot (just linked into level l) in the level and its
 * summary. A level that was empty drops its stale summary. */
static inline __attribute__((always_inline)) void level_counted_in(matcher_engine *e, uint32_t l, uint32_t slot)
{
    order *o = &e->orders[slot];
    level *lv = &e->levels[l];
    lv->count++;
    o->level = l;
    if (o->side == MATCHER_SELL) {
        e->lvmask[l] = lv->count == 1 ? e->omask[slot] : e->lvmask[l] | e->omask[slot];
        if (lv->count == 1)
            ask_cover_clear(&lv->covers);
        ask_cover_add(&lv->covers, o->start_hour, o->end_hour);
    } else {
        bid_bnd8_cover(&lv->bounds, o, lv->count == 1);
        uint32_t c = lv->count - 1; /* bids ahead of it if it is the tail */
        if (o->next != NIL)
            level_win_insert(lv, o, slot); /* inside the FIFO (a reverted replace) */
        else if (c < LEVEL_WIN && (c == 0 || lv->win_slot[c - 1] != NIL))
            level_win_set(lv, c, o, slot); /* the prefix held every bid ahead of it */
    }
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
static inline __attribute__((always_inline)) void level_unlink(matcher_engine *e, uint32_t slot)
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
    if (o->side == MATCHER_BUY) {
        level_win_leave(lv, slot);
        if (lv->count == 0)
            lv->bounds = bid_bnd8_pack(BID_BOUNDS_NONE); /* sweeps pass it by */
    }
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
        e->lvmask[o->level] |= now; /* only gained bits, or too long to recompute */
        return;
    }
    hmask acc = 0;
    for (uint32_t s = lv->head, n = 0; s != NIL; s = e->orders[s].next, n++) {
        GPUX_ASSERT(n < LEVEL_REFRESH_MAX);
        acc |= e->omask[s];
    }
    e->lvmask[o->level] = acc;
}

static void level_release(matcher_engine *e, uint32_t market, int si, uint32_t l, int64_t price)
{
    slotmap_del(&e->lvmap, level_hkey(market, si, price));
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
        --bs->n_levels;
        level_release(e, market, si, bs->lvl[bs->n_levels], key_price(si, bs->keys[bs->n_levels]));
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
