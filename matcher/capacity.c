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
 * union of its offers' masks (e->lvsum, by level slot; book.c keeps it).
 * A plan reads only that mask for a level where some hour of the bid's
 * window has no capacity in any offer. Masks are computed here from the
 * breakpoints; a level's mask is recomputed from its offers when one of
 * them loses bits (levels up to LEVEL_REFRESH_MAX offers), so it
 * can hold stale bits but never lacks a bit with capacity behind it.
 *
 * Skip hints. A walk for a window starts at the first breakpoint, and on
 * a busy day most of it went to breakpoints before the window: 8.2
 * breakpoints per cap_min, 7.0 of them before its first hour, a cache
 * miss each (matcher_gpu; docs/benchmarks.md, seventh session). Bids
 * start near the present, so those are an offer's early breakpoints, not
 * hours already past. So each offer keeps SEG_SKIPS hints (e->segskip, by
 * order slot): breakpoints spread evenly over its list (skip_keep) with
 * their start hours, rebuilt by cap_update_summary, which walks the whole
 * list after every change anyway. A walk for hours from h starts at the
 * latest hint that starts at or before h: every breakpoint before it
 * ends by then, so the walk skips nothing it would have used. Between a change and the
 * rebuild, a breakpoint released (prune, merge) leaves its hint, and a
 * pruned head whose start moves leaves its hint, so a hint is always NIL
 * or a live breakpoint of its offer starting at its hour (check.c). */
#include "matcher/engine_internal.h"

static uint32_t seg_alloc(matcher_engine *e, int32_t start_hour, int32_t qty, uint32_t next)
{
    uint32_t s = e->seg_free;
    GPUX_ASSERT(e->n_segs_free > 0);
    if (s != NIL) {
        e->seg_free = e->segs[s].next;
    } else {
        GPUX_ASSERT(e->segs_hw < e->cfg.max_segments);
        s = ++e->segs_hw; /* untouched until now (engine.c, link_free_lists) */
    }
    e->n_segs_free--;
    e->segs[s] = (seg){.start_hour = start_hour, .qty = qty, .next = next};
    return s;
}

static void seg_release(matcher_engine *e, uint32_t s)
{
    e->segs[s].next = e->seg_free;
    e->seg_free = s;
    e->n_segs_free++;
}

uint32_t cap_init(matcher_engine *e, int32_t start_hour, int32_t qty)
{
    return seg_alloc(e, start_hour, qty, NIL);
}

static seg_skip *skips(const matcher_engine *e, const order *o)
{
    return &e->segskip[o - e->orders];
}

void cap_skip_clear(matcher_engine *e, const order *o)
{
    for (int k = 0; k < SEG_SKIPS; k++)
        skips(e, o)->seg[k] = NIL;
}

/* The breakpoint a walk for hours from `hour` on may start at: the latest
 * hint starting before `hour` (at or before it unless strict), else the
 * head. Every breakpoint before it ends by `hour`. */
static uint32_t walk_start(const matcher_engine *e, const order *o, int32_t hour, bool strict)
{
    const seg_skip *k = skips(e, o);
    for (int i = SEG_SKIPS; i-- > 0;)
        if (k->seg[i] != NIL && (k->hour[i] < hour || (!strict && k->hour[i] == hour)))
            return k->seg[i];
    return o->seg_head;
}

/* Breakpoint s is released or moves: no hint may keep it. */
static void skip_forget(matcher_engine *e, const order *o, uint32_t s)
{
    seg_skip *k = skips(e, o);
    for (int i = 0; i < SEG_SKIPS; i++)
        if (k->seg[i] == s)
            k->seg[i] = NIL;
}

void cap_free_all(matcher_engine *e, order *o)
{
    uint32_t s = o->seg_head;
    while (s != NIL) {
        uint32_t next = e->segs[s].next;
        seg_release(e, s);
        s = next;
    }
    o->seg_head = NIL;
}

static int32_t seg_end(const matcher_engine *e, const order *o, uint32_t s)
{
    uint32_t n = e->segs[s].next;
    return n == NIL ? o->end_hour : e->segs[n].start_hour;
}

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
    if (o->zero_blocks & blocks_inside(o, from_hour, to_hour))
        return 0; /* the window holds a block with a sold-out hour */
    int32_t best = INT32_MAX;
    for (uint32_t s = walk_start(e, o, from_hour, false); s != NIL; s = e->segs[s].next) {
        if (e->segs[s].start_hour >= to_hour)
            break;
        if (seg_end(e, o, s) <= from_hour)
            continue;
        if (e->segs[s].qty < best)
            best = e->segs[s].qty;
        if (best == 0)
            break;
    }
    GPUX_ASSERT(best != INT32_MAX);
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

/* Breakpoint s, the n-th of its list (n a multiple of *stride), joins the
 * hints at positions *stride, 2 * *stride, ... When they are full, every
 * other one goes and the stride doubles: one pass over a list of unknown
 * length leaves hints spread over all of it. */
static void skip_keep(seg_skip *k, uint32_t *nk, uint32_t *stride, uint32_t n, uint32_t s, int32_t hour)
{
    if (*nk == SEG_SKIPS) {
        for (uint32_t i = 0; i < SEG_SKIPS / 2; i++) {
            k->seg[i] = k->seg[2 * i + 1];
            k->hour[i] = k->hour[2 * i + 1];
        }
        *nk = SEG_SKIPS / 2;
        *stride *= 2;
        if (n % *stride != 0)
            return;
    }
    k->seg[*nk] = s;
    k->hour[*nk] = hour;
    (*nk)++;
}

/* Recomputes the derived summaries from the breakpoints:
 * zero_until_hour = the first open hour with capacity (or the end), and
 * zero_blocks (see "Zero blocks" above). */
void cap_update_summary(matcher_engine *e, order *o)
{
    int32_t z = order_open_start(e, o);
    bool prefix = true;
    uint64_t zb = 0;
    hmask open = 0;
    seg_skip *k = skips(e, o);
    uint32_t n = 0, stride = 2, nk = 0;
    for (uint32_t s = o->seg_head; s != NIL; s = e->segs[s].next) {
        if (++n % stride == 0)
            skip_keep(k, &nk, &stride, n, s, e->segs[s].start_hour);
        int32_t end = seg_end(e, o, s);
        if (end <= z)
            continue;
        if (e->segs[s].qty > 0) {
            prefix = false;
            open |= hmask_range(e->segs[s].start_hour > z ? e->segs[s].start_hour : z, end);
            continue;
        }
        int32_t from = e->segs[s].start_hour > z ? e->segs[s].start_hour : z;
        zb |= blocks_touched(o, from, end);
        if (prefix)
            z = end;
    }
    for (uint32_t i = nk; i < SEG_SKIPS; i++)
        k->seg[i] = NIL;
    o->zero_until_hour = z;
    o->zero_blocks = zb;
    uint32_t slot = (uint32_t)(o - e->orders);
    hmask old = e->omask[slot];
    e->omask[slot] = open;
    book_offer_mask_changed(e, slot, old);
}

int32_t cap_max_open(const matcher_engine *e, const order *o)
{
    int32_t best = 0;
    for (uint32_t s = o->seg_head; s != NIL; s = e->segs[s].next) {
        if (seg_end(e, o, s) <= e->now_hour)
            continue;
        if (e->segs[s].qty > best)
            best = e->segs[s].qty;
    }
    return best;
}

int32_t cap_at(const matcher_engine *e, const order *o, int32_t hour)
{
    if (hour < e->now_hour || hour < o->start_hour || hour >= o->end_hour)
        return 0;
    for (uint32_t s = o->seg_head; s != NIL; s = e->segs[s].next)
        if (hour < seg_end(e, o, s))
            return e->segs[s].qty;
    GPUX_ASSERT(0);
    return 0;
}

/* Drops breakpoints wholly before the clock and starts the list at the
 * first open hour, so the representation depends only on open hours. */
void cap_prune(matcher_engine *e, order *o)
{
    int32_t now = (int32_t)e->now_hour;
    uint32_t s = o->seg_head;
    GPUX_ASSERT(s != NIL);
    while (e->segs[s].next != NIL && e->segs[e->segs[s].next].start_hour <= now) {
        uint32_t next = e->segs[s].next;
        skip_forget(e, o, s);
        seg_release(e, s);
        s = next;
    }
    o->seg_head = s;
    if (e->segs[s].start_hour < now && now < o->end_hour) {
        e->segs[s].start_hour = now;
        skip_forget(e, o, s);
    }
}

/* Ensures a breakpoint starts exactly at hour (inside the offer); returns
 * the breakpoint that starts there, and its predecessor in *prev. */
static uint32_t cap_split(matcher_engine *e, order *o, int32_t hour, uint32_t *prev)
{
    uint32_t p = NIL;
    /* strict: the start is before `hour`, so a breakpoint found at `hour`
     * has its predecessor in p */
    for (uint32_t s = walk_start(e, o, hour, true); s != NIL; p = s, s = e->segs[s].next) {
        if (e->segs[s].start_hour == hour) {
            GPUX_ASSERT(p != NIL || s == o->seg_head);
            *prev = p;
            return s;
        }
        if (hour < seg_end(e, o, s)) {
            uint32_t n = seg_alloc(e, hour, e->segs[s].qty, e->segs[s].next);
            e->segs[s].next = n;
            *prev = s;
            return n;
        }
    }
    GPUX_ASSERT(0);
    return NIL;
}

/* Merges s into its predecessor p when both hold the same qty. */
static void cap_merge(matcher_engine *e, const order *o, uint32_t p, uint32_t s)
{
    if (p == NIL || s == NIL || e->segs[p].qty != e->segs[s].qty)
        return;
    e->segs[p].next = e->segs[s].next;
    skip_forget(e, o, s);
    seg_release(e, s);
}

void cap_take(matcher_engine *e, order *o, int32_t from_hour, int32_t to_hour, int32_t qty)
{
    GPUX_ASSERT(qty > 0 && cap_open_covers(e, o, from_hour, to_hour));
    cap_prune(e, o);
    uint32_t before, first = cap_split(e, o, from_hour, &before);
    uint32_t last = first, s = first;
    while (s != NIL && e->segs[s].start_hour < to_hour) {
        if (seg_end(e, o, s) > to_hour) {
            uint32_t dummy;
            cap_split(e, o, to_hour, &dummy);
        }
        GPUX_ASSERT(e->segs[s].qty >= qty);
        e->segs[s].qty -= qty;
        last = s;
        s = e->segs[s].next;
    }
    /* Re-merge at both edges and inside (inner neighbours all moved by the
     * same amount, so they stay distinct). */
    uint32_t after = e->segs[last].next;
    cap_merge(e, o, last, after);
    cap_merge(e, o, before, first);
    cap_update_summary(e, o);
}

void cap_add_all(matcher_engine *e, order *o, int32_t delta)
{
    cap_prune(e, o);
    for (uint32_t s = o->seg_head; s != NIL; s = e->segs[s].next) {
        e->segs[s].qty += delta;
        GPUX_ASSERT(e->segs[s].qty >= 0);
    }
    cap_update_summary(e, o);
}
