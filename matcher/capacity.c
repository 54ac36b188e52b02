/* capacity.c — an offer's remaining capacity, hour by hour.
 *
 * An offer of qty GPUs over [start, end) keeps, for every hour, how many
 * GPUs are still unsold. Storing one number per hour would cost up to 8760
 * words per order, so the capacity is a step function: a list of
 * breakpoints (first hour, qty), each qty holding until the next
 * breakpoint or the offer's end. A fill on [s, e) splits at s and e (at
 * most two new breakpoints) and subtracts; equal neighbours are merged
 * again so the list stays canonical (same capacity, same list). Hours
 * before the clock are dropped lazily (cap_prune).
 *
 * Zero blocks. On a busy day nearly every offer a bid walks past covers
 * the bid's window but has sold out some hour inside it (popular hours go
 * first), and finding that out by walking the breakpoints was most of the
 * engine's time. So each offer also keeps a 64-bit summary: its window is
 * cut into 64 blocks of ceil(hours / 64) hours, and bit k says "some hour
 * of block k has no capacity". A window that wholly contains a flagged
 * block has capacity 0, answered without touching the breakpoints. Offers
 * up to 64 hours get one block per hour, so the answer is exact for them.
 * A flag is only ever set from the breakpoints as they are (never
 * guessed), so it can be missing (then the walk answers) but never
 * wrong for an open hour; hours before the clock never matter because a
 * window that contains a block starts after the clock.
 *
 * Hour masks. Zero blocks still cost a cache miss per offer, and late on a
 * busy day a failing plan walked ~1,450 offers, nearly all sold out in
 * some hour of the bid's window (the cheap offers sell the popular hours
 * first). So each offer also keeps a 128-bit mask of the hours (mod 128)
 * where it has capacity (e->omask, by order slot), and each ask level the
 * union of its offers' masks (e->lvmask, by level slot; book.c keeps it).
 * A plan reads only that mask for a level where some hour of the bid's
 * window has no capacity in any offer. Masks are computed here from the
 * breakpoints; a level's mask is recomputed from its offers when one of
 * them loses bits (levels up to LEVEL_REFRESH_MAX offers), so it
 * can hold stale bits but never lacks a bit with capacity behind it.
 *
 * Chunks. Every walk above is a chain of cache misses, one per
 * breakpoint when each had a line of its own: a fill on a busy offer
 * (~33 breakpoints) walked all of them to refresh the summaries, and the
 * crossing commands of matcher_gpu spent most of their time there
 * (docs/benchmarks.md, eighth session). So an offer's breakpoints are
 * stored CAP_CHUNK_N to a 64-byte chunk (engine_internal.h, cap_chunk),
 * chunks linked in hour order: a walk misses once per chunk. A
 * breakpoint is one word, its hour as an offset into the offer's window
 * above its qty, so a chunk holds 14 (the ninth session; 7 before, when
 * hour and qty took a word each: the walk to a bid's first hour was
 * still ~40% of an ioc bid's plan). A full
 * chunk that gains a breakpoint splits in two; a chunk that loses its
 * last breakpoint leaves the list, and one that loses any folds its
 * successor in when both fit one chunk. The chunk layout is not state:
 * hashing, snapshots and the checker see only the breakpoints, and the
 * limit (cfg.max_segments) counts breakpoints, so a reloaded book (chunks
 * packed full) admits exactly what the original would. Every chunk holds
 * a breakpoint, so the pool (max_segments chunks) can never run out
 * before the breakpoints do.
 *
 * A walk for hours from h skips whole chunks by reading the next chunk's
 * first start only, and within a chunk the capacity at h is that of the
 * last breakpoint starting at or before h: no end hours are needed. */
#include <stddef.h>
#include <string.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "matcher/engine_internal.h"

/* ---- the chunk pool and the breakpoint count ---- */

static uint32_t chunk_alloc(matcher_engine *e)
{
    uint32_t c = e->chunk_free;
    if (c != NIL) {
        e->chunk_free = e->chunks[c].next;
    } else {
        GPUX_ASSERT(e->chunks_hw < e->cfg.max_segments);
        c = ++e->chunks_hw; /* untouched until now (engine.c, link_free_lists) */
    }
    e->chunks[c].next = NIL;
    e->chunks[c].n = 0;
    return c;
}

static void chunk_release(matcher_engine *e, uint32_t c)
{
    e->chunks[c].next = e->chunk_free;
    e->chunk_free = c;
}

static void bp_taken(matcher_engine *e)
{
    GPUX_ASSERT(e->n_segs_free > 0);
    e->n_segs_free--;
}

static void bp_given(matcher_engine *e, uint32_t n)
{
    e->n_segs_free += n;
    GPUX_ASSERT(e->n_segs_free <= e->cfg.max_segments);
}

void cap_init(matcher_engine *e, order *o, int32_t start_hour, int32_t qty)
{
    GPUX_ASSERT(o->cap_head == NIL);
    uint32_t c = chunk_alloc(e);
    e->chunks[c].n = 1;
    e->chunks[c].bp[0] = bp_pack(o, start_hour, qty);
    bp_taken(e);
    o->cap_head = c;
}

uint32_t cap_append(matcher_engine *e, order *o, uint32_t tail, int32_t start_hour, int32_t qty)
{
    if (tail == NIL) {
        cap_init(e, o, start_hour, qty);
        return o->cap_head;
    }
    cap_chunk *k = &e->chunks[tail];
    GPUX_ASSERT(k->next == NIL && k->n > 0);
    if (k->n == CAP_CHUNK_N) {
        uint32_t c = chunk_alloc(e);
        k->next = c;
        tail = c;
        k = &e->chunks[c];
    }
    k->bp[k->n] = bp_pack(o, start_hour, qty);
    k->n++;
    bp_taken(e);
    return tail;
}

void cap_free_all(matcher_engine *e, order *o)
{
    uint32_t c = o->cap_head;
    while (c != NIL) {
        uint32_t next = e->chunks[c].next;
        bp_given(e, e->chunks[c].n);
        chunk_release(e, c);
        c = next;
    }
    o->cap_head = NIL;
}

/* ---- finding an hour ---- */

/* Finding hour h takes after = bp_at(o, h + 1), computed once by the
 * caller for both steps below: the entries starting at or before h are
 * the words below it. */

/* The chunk holding the last breakpoint that starts at or before the hour
 * (the offer's first breakpoint starts at or before it), and in *prev,
 * unless NULL, the chunk before it (NIL: it is the first). */
static inline uint32_t chunk_for(const matcher_engine *e, const order *o, uint32_t after, uint32_t *prev)
{
    uint32_t p = NIL, c = o->cap_head;
    GPUX_ASSERT(c != NIL && e->chunks[c].bp[0] < after);
    for (uint32_t nx; (nx = e->chunks[c].next) != NIL && e->chunks[nx].bp[0] < after; c = nx)
        p = c;
    if (prev)
        *prev = p;
    return c;
}

/* The last entry of chunk k starting at or before the hour (entry 0
 * does). With SSE2, the chunk's 16 words are compared with the bound
 * at once: entries 1..n-1 below it are a run of mask bits from entry 1
 * (they ascend), whose length is the answer. The linear scan it replaces
 * averaged ~7 steps, ~37 instructions a call, 7% of a sweep's (matcher_gpu
 * ioc_sell, callgrind, tenth session). Words compare signed: every
 * breakpoint word is below 2^31 (the assert below). */
_Static_assert((uint64_t)(MATCHER_MAX_WINDOW_HOURS + 1) << CAP_QTY_BITS <= INT32_MAX,
               "breakpoint words compare as signed 32-bit lanes");
#if defined(__SSE2__)
static inline uint32_t lanes_below(const __m128i *w, __m128i after)
{
    return (uint32_t)_mm_movemask_ps(_mm_castsi128_ps(_mm_cmplt_epi32(_mm_loadu_si128(w), after)));
}

static inline uint32_t entry_for(const cap_chunk *k, uint32_t after)
{
    _Static_assert(offsetof(cap_chunk, bp) == 8 && sizeof(cap_chunk) == 64, "bp[j] is word j + 2 of the chunk");
    __m128i bound = _mm_set1_epi32((int32_t)after);
    const __m128i *w = (const __m128i *)(const void *)k;
    uint32_t below = lanes_below(w, bound) | lanes_below(w + 1, bound) << 4 | lanes_below(w + 2, bound) << 8 |
                     lanes_below(w + 3, bound) << 12;
    uint32_t n = k->n;
    GPUX_ASSERT(n >= 1 && n <= CAP_CHUNK_N);
    /* bits 3 .. n + 1: entries 1 .. n - 1 */
    uint32_t run = (below & ((1u << (n + 2)) - 1)) >> 3;
    return (uint32_t)__builtin_ctz(~run);
}
#else
static uint32_t entry_for(const cap_chunk *k, uint32_t after)
{
    uint32_t i = 0;
    while (i + 1 < k->n && k->bp[i + 1] < after)
        i++;
    return i;
}
#endif

bool cap_open_covers(const matcher_engine *e, const order *o, int32_t from_hour, int32_t to_hour)
{
    int32_t open_start = order_open_start(e, o);
    return from_hour >= open_start && to_hour <= o->end_hour && from_hour < to_hour;
}

static int32_t block_hours(const order *o)
{
    return (order_hours(o) + 63) / 64;
}

/* Bits of the blocks lying wholly inside [from, to). */
static uint64_t blocks_inside(const order *o, int32_t from_hour, int32_t to_hour)
{
    int32_t b = block_hours(o);
    int32_t lo = (from_hour - o->start_hour + b - 1) / b;
    int32_t hi = (to_hour - o->start_hour) / b; /* exclusive */
    if (hi <= lo)
        return 0;
    uint64_t width = hi - lo >= 64 ? ~0ull : (1ull << (hi - lo)) - 1;
    return width << lo;
}

/* Smallest capacity over [from, to); the caller has checked coverage. */
int32_t cap_min(const matcher_engine *e, const order *o, int32_t from_hour, int32_t to_hour)
{
    if (from_hour < o->zero_until_hour)
        return 0; /* the window starts in the sold-out prefix */
    /* the window holds a block with a sold-out hour (blocks_inside's two
     * divisions only when some block has one: a new crossing offer has
     * none while it sweeps, and its sweep asks ~69 times) */
    if (o->zero_blocks != 0 && (o->zero_blocks & blocks_inside(o, from_hour, to_hour)) != 0)
        return 0;
    uint32_t after = bp_at(o, from_hour + 1);
    const cap_chunk *k = &e->chunks[chunk_for(e, o, after, NULL)];
    uint32_t i = entry_for(k, after);
    uint32_t end = bp_at(o, to_hour); /* entries from to_hour on: at or above it */
    int32_t best = bp_qty(k->bp[i]);
    while (best > 0) {
        if (++i == k->n) {
            if (k->next == NIL)
                break;
            k = &e->chunks[k->next];
            i = 0;
        }
        if (k->bp[i] >= end)
            break;
        if (bp_qty(k->bp[i]) < best)
            best = bp_qty(k->bp[i]);
    }
    return best;
}

/* Flags the blocks that [from, to) (capacity 0) touches. */
static uint64_t blocks_touched(const order *o, int32_t from_hour, int32_t to_hour)
{
    int32_t b = block_hours(o);
    int32_t lo = (from_hour - o->start_hour) / b;
    int32_t hi = (to_hour - o->start_hour + b - 1) / b; /* exclusive */
    GPUX_ASSERT(0 <= lo && lo < hi && hi <= 64);
    uint64_t width = hi - lo >= 64 ? ~0ull : (1ull << (hi - lo)) - 1;
    return width << lo;
}

/* Recomputes the derived summaries from the breakpoints:
 * zero_until_hour = the first open hour with capacity (or the end),
 * zero_blocks (see "Zero blocks" above) and the hour mask. */
void cap_update_summary(matcher_engine *e, order *o)
{
    int32_t z = order_open_start(e, o);
    bool prefix = true;
    uint64_t zb = 0;
    hmask open = 0;
    for (uint32_t c = o->cap_head; c != NIL; c = e->chunks[c].next) {
        const cap_chunk *k = &e->chunks[c];
        /* read first: the next chunk's miss overlaps this chunk's work */
        int32_t next_start = k->next == NIL ? o->end_hour : bp_start(o, e->chunks[k->next].bp[0]);
        for (uint32_t i = 0; i < k->n; i++) {
            int32_t end = i + 1 < k->n ? bp_start(o, k->bp[i + 1]) : next_start;
            if (end <= z)
                continue;
            int32_t start = bp_start(o, k->bp[i]);
            int32_t from = start > z ? start : z;
            if (bp_qty(k->bp[i]) > 0) {
                prefix = false;
                open |= hmask_range(from, end);
                continue;
            }
            zb |= blocks_touched(o, from, end);
            if (prefix)
                z = end;
        }
    }
    o->zero_until_hour = z;
    o->zero_blocks = zb;
    uint32_t slot = (uint32_t)(o - e->orders);
    hmask old = e->omask[slot];
    e->omask[slot] = open;
    book_offer_mask_changed(e, slot, old);
}

/* The most GPUs the offer has left in any open hour. */
int32_t cap_max_open(const matcher_engine *e, const order *o)
{
    int32_t best = 0;
    for (cap_cursor k = cap_first(e, o); k.c != NIL; cap_next(&k))
        if (cap_qty(&k) > best && cap_end(&k) > e->now_hour)
            best = cap_qty(&k);
    return best;
}

bool cap_sold_out(const matcher_engine *e, const order *o)
{
    for (cap_cursor k = cap_first(e, o); k.c != NIL; cap_next(&k))
        if (cap_qty(&k) > 0 && cap_end(&k) > e->now_hour)
            return false; /* most offers: the first breakpoint */
    return true;
}

int32_t cap_at(const matcher_engine *e, const order *o, int32_t hour)
{
    if (hour < e->now_hour || hour < o->start_hour || hour >= o->end_hour)
        return 0;
    uint32_t after = bp_at(o, hour + 1);
    const cap_chunk *k = &e->chunks[chunk_for(e, o, after, NULL)];
    return bp_qty(k->bp[entry_for(k, after)]);
}

/* Drops breakpoints wholly before the clock and starts the list at the
 * first open hour, so the representation depends only on open hours. */
void cap_prune(matcher_engine *e, order *o)
{
    int32_t now = (int32_t)e->now_hour;
    uint32_t c = o->cap_head;
    GPUX_ASSERT(c != NIL);
    if (now <= o->start_hour)
        return; /* nothing before the clock */
    /* the latest hour of the window by now: every breakpoint before the
     * one holding it ends by now */
    int32_t last = now < o->end_hour ? now : o->end_hour - 1;
    for (uint32_t nx; (nx = e->chunks[c].next) != NIL && e->chunks[nx].bp[0] < bp_at(o, last + 1); c = nx) {
        bp_given(e, e->chunks[c].n); /* every breakpoint here ends by now */
        chunk_release(e, c);
    }
    o->cap_head = c;
    cap_chunk *k = &e->chunks[c];
    uint32_t d = entry_for(k, bp_at(o, last + 1)); /* entries before d end by now (0 if all start later) */
    if (d > 0) {
        memmove(&k->bp[0], &k->bp[d], (k->n - d) * sizeof k->bp[0]);
        k->n -= d;
        bp_given(e, d);
    }
    if (now < o->end_hour && bp_start(o, k->bp[0]) < now)
        k->bp[0] = bp_pack(o, now, bp_qty(k->bp[0]));
}

/* Inserts breakpoint word bp as entry pos of chunk c. A full chunk first
 * splits: its upper half moves to a new chunk after it. */
static void entry_insert(matcher_engine *e, uint32_t c, uint32_t pos, uint32_t bp)
{
    cap_chunk *k = &e->chunks[c];
    GPUX_ASSERT(pos <= k->n);
    if (k->n == CAP_CHUNK_N) {
        uint32_t d = chunk_alloc(e);
        cap_chunk *m = &e->chunks[d];
        const uint32_t keep = (CAP_CHUNK_N + 1) / 2;
        m->n = k->n - keep;
        memcpy(m->bp, &k->bp[keep], m->n * sizeof m->bp[0]);
        m->next = k->next;
        k->next = d;
        k->n = keep;
        if (pos > keep) {
            k = m;
            pos -= keep;
        }
    }
    memmove(&k->bp[pos + 1], &k->bp[pos], (k->n - pos) * sizeof k->bp[0]);
    k->bp[pos] = bp;
    k->n++;
    bp_taken(e);
}

/* Removes entry i of chunk c (prev: the chunk before c, NIL for the
 * first). An emptied chunk leaves the list; otherwise the next chunk
 * folds in when both fit one. */
static void entry_remove(matcher_engine *e, order *o, uint32_t prev, uint32_t c, uint32_t i)
{
    cap_chunk *k = &e->chunks[c];
    GPUX_ASSERT(i < k->n);
    memmove(&k->bp[i], &k->bp[i + 1], (k->n - i - 1) * sizeof k->bp[0]);
    k->n--;
    bp_given(e, 1);
    if (k->n == 0) {
        if (prev == NIL)
            o->cap_head = k->next;
        else
            e->chunks[prev].next = k->next;
        chunk_release(e, c);
        return;
    }
    uint32_t nx = k->next;
    if (nx != NIL && k->n + e->chunks[nx].n <= CAP_CHUNK_N) {
        cap_chunk *m = &e->chunks[nx];
        memcpy(&k->bp[k->n], m->bp, m->n * sizeof m->bp[0]);
        k->n += m->n;
        k->next = m->next;
        chunk_release(e, nx);
    }
}

/* Ensures a breakpoint starts exactly at hour (an open hour inside the
 * offer). */
static void cap_split(matcher_engine *e, const order *o, int32_t hour)
{
    uint32_t after = bp_at(o, hour + 1);
    uint32_t c = chunk_for(e, o, after, NULL);
    const cap_chunk *k = &e->chunks[c];
    uint32_t i = entry_for(k, after);
    if (bp_start(o, k->bp[i]) != hour)
        entry_insert(e, c, i + 1, bp_pack(o, hour, bp_qty(k->bp[i])));
}

/* Removes the breakpoint starting at hour when it holds the same qty as
 * the one before it (the list stays canonical). */
static void cap_merge(matcher_engine *e, order *o, int32_t hour)
{
    uint32_t after = bp_at(o, hour + 1);
    uint32_t p, c = chunk_for(e, o, after, &p);
    const cap_chunk *k = &e->chunks[c];
    uint32_t i = entry_for(k, after);
    if (bp_start(o, k->bp[i]) != hour)
        return;
    int32_t q = bp_qty(k->bp[i]);
    if (i > 0 ? bp_qty(k->bp[i - 1]) == q : p != NIL && bp_qty(e->chunks[p].bp[e->chunks[p].n - 1]) == q)
        entry_remove(e, o, p, c, i);
}

/* Appends the piece [from, to) of capacity q (breakpoint words' hour
 * parts) to out[0..n), folded into the last entry when that holds the
 * same q (the list stays canonical); returns the new count. */
static inline uint32_t piece_put(uint32_t *out, uint32_t n, uint32_t from, uint32_t to, uint32_t q)
{
    if (from >= to || (n > 0 && (out[n - 1] & CAP_QTY_MASK) == q))
        return n;
    out[n] = from | q;
    return n + 1;
}

/* cap_take when the window lies inside one chunk that has room for the
 * two breakpoints a take can add, and no neighbouring chunk can fold
 * into it (the window neither starts at the chunk's first hour, unless
 * the chunk is the offer's first, nor ends at the next chunk's): the
 * entries the window touches, and one on each side of them, are cut into
 * their parts before, inside and after [from, to), the inside part less
 * qty, in one pass that merges equal neighbours as it writes; the entries
 * further out keep their values and only move. The same canonical list
 * as split, subtract and merge (a step function has one), without their
 * five searches (~600 instructions a take: callgrind, tenth session); the
 * entries further out cannot fold, as their neighbours' values do not
 * change. Rebuilding the whole chunk instead (until the eleventh session)
 * cost ~390 instructions a take against ~330 (callgrind, the sweeps of
 * matcher_gpu). Returns false, having changed nothing, in every
 * other case (the general path takes it). */
static bool take_in_chunk(matcher_engine *e, order *o, int32_t from_hour, int32_t to_hour, int32_t qty)
{
    uint32_t lo = bp_at(o, from_hour), hi = bp_at(o, to_hour), after_lo = bp_at(o, from_hour + 1);
    uint32_t p, c = chunk_for(e, o, after_lo, &p);
    cap_chunk *k = &e->chunks[c];
    uint32_t n_in = k->n;
    uint32_t end = k->next == NIL ? bp_at(o, o->end_hour) : e->chunks[k->next].bp[0] & ~CAP_QTY_MASK;
    if (n_in + 2 > CAP_CHUNK_N || hi > end || (k->next != NIL && hi == end) ||
        (p != NIL && lo == (k->bp[0] & ~CAP_QTY_MASK)))
        return false;
    /* entries [first, last] are rebuilt: the one holding from, the one
     * holding to - 1, everything between and one neighbour on each side */
    uint32_t a = entry_for(k, after_lo), b = entry_for(k, hi);
    uint32_t first = a > 0 ? a - 1 : 0, last = b + 1 < n_in ? b + 1 : b;
    GPUX_ASSERT(a <= b && b < n_in);
    uint32_t out[CAP_CHUNK_N], n = 0;
    for (uint32_t i = first; i <= last; i++) {
        uint32_t from = k->bp[i] & ~CAP_QTY_MASK, q = k->bp[i] & CAP_QTY_MASK;
        uint32_t to = i + 1 < n_in ? k->bp[i + 1] & ~CAP_QTY_MASK : end;
        n = piece_put(out, n, from, to < lo ? to : lo, q);
        uint32_t in_from = from > lo ? from : lo, in_to = to < hi ? to : hi;
        if (in_from < in_to) {
            GPUX_ASSERT(q >= (uint32_t)qty);
            n = piece_put(out, n, in_from, in_to, q - (uint32_t)qty);
        }
        n = piece_put(out, n, from > hi ? from : hi, to, q);
    }
    uint32_t n_was = last + 1 - first, n_tail = n_in - 1 - last;
    GPUX_ASSERT(n >= 1 && n <= n_was + 2);
    memmove(&k->bp[first + n], &k->bp[last + 1], n_tail * sizeof k->bp[0]);
    memcpy(&k->bp[first], out, n * sizeof out[0]);
    k->n = first + n + n_tail;
    for (uint32_t j = n_was; j < n; j++)
        bp_taken(e);
    if (n < n_was)
        bp_given(e, n_was - n);
    return true;
}

void cap_take(matcher_engine *e, order *o, int32_t from_hour, int32_t to_hour, int32_t qty, bool summary)
{
    GPUX_ASSERT(qty > 0 && cap_open_covers(e, o, from_hour, to_hour));
    cap_prune(e, o);
    if (take_in_chunk(e, o, from_hour, to_hour, qty)) {
        if (summary)
            cap_update_summary(e, o);
        return;
    }
    cap_split(e, o, from_hour);
    if (to_hour < o->end_hour)
        cap_split(e, o, to_hour);
    uint32_t after = bp_at(o, from_hour + 1);
    cap_chunk *k = &e->chunks[chunk_for(e, o, after, NULL)];
    uint32_t end = bp_at(o, to_hour);
    for (uint32_t i = entry_for(k, after); k->bp[i] < end;) {
        GPUX_ASSERT(bp_qty(k->bp[i]) >= qty);
        k->bp[i] -= (uint32_t)qty; /* the qty bits only: they hold qty or more */
        if (++i == k->n) {
            if (k->next == NIL)
                break;
            k = &e->chunks[k->next];
            i = 0;
        }
    }
    /* Re-merge at both edges (inner neighbours all moved by the same
     * amount, so they stay distinct); each merge finds its hour afresh,
     * so a fold done by the first cannot mislead the second. */
    if (to_hour < o->end_hour)
        cap_merge(e, o, to_hour);
    cap_merge(e, o, from_hour);
    if (summary)
        cap_update_summary(e, o);
}

void cap_add_all(matcher_engine *e, order *o, int32_t delta)
{
    cap_prune(e, o);
    for (uint32_t c = o->cap_head; c != NIL; c = e->chunks[c].next) {
        cap_chunk *k = &e->chunks[c];
        for (uint32_t i = 0; i < k->n; i++) {
            int32_t q = bp_qty(k->bp[i]) + delta;
            GPUX_ASSERT(q >= 0 && q <= (int32_t)CAP_QTY_MASK);
            k->bp[i] = (k->bp[i] & ~CAP_QTY_MASK) | (uint32_t)q;
        }
    }
    cap_update_summary(e, o);
}
