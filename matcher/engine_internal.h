/* engine_internal.h — the engine's private state, shared by its files.
 *
 * Layout of the state (everything allocated once in matcher_create):
 *   accounts[]        balance/held per account id
 *   orders[]          slot pool for resting orders; id -> slot via idmap
 *   levels[]          price-level pool; each market side keeps a sorted
 *                     array of level slots (best LAST) and a parallel
 *                     array of sort keys for binary search; lvmap finds a
 *                     level by (market, side, price) in O(1). Best last
 *                     because activity is near the best price: a new or
 *                     emptied level there moves few array entries. An
 *                     emptied best level is popped at once (matching loops
 *                     walk from the best end down, so popping behind them
 *                     moves nothing they have yet to visit); any other
 *                     level that empties stays in place (count 0) until its
 *                     side is compacted at a safe point
 *   chunks[]          offer capacity: per offer a list of (first hour,
 *                     qty) breakpoints, qty constant up to the next
 *                     breakpoint (or the offer's end), stored seven to a
 *                     cache-line chunk
 *   buckets[]         expiry wheel: one list per hour, ring of
 *                     MATCHER_HORIZON_HOURS + 2 hours (every resting order
 *                     expires within the horizon, so a bucket only ever
 *                     holds one expiry hour)
 * Slot index 0 is never used so that 0 can mean "none" in links. */
#ifndef GPUX_ENGINE_INTERNAL_H
#define GPUX_ENGINE_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "gpux_assert.h"
#include "matcher/matcher.h"

#define NIL 0u
#define EXPIRY_RING (MATCHER_HORIZON_HOURS + 2)

typedef struct account {
    int64_t balance_micros;
    int64_t held_micros;
    uint32_t roles;
    uint32_t open_orders;
} account;

/* Field order matters: a book scan (a bid planning over offers, an offer
 * sweeping bids) reads only the first cache line of each order it passes,
 * so everything a scan needs is there; the rest is read only when an order
 * trades, enters or leaves. The table is 64-byte aligned (engine.c). */
typedef struct order {
    /* -- hot: the first 64 bytes -- */
    uint32_t next;              /* FIFO link inside the level */
    uint32_t account;
    int32_t start_hour;
    int32_t end_hour;
    union {                     /* one per side (order_provider_lock) */
        uint32_t provider_lock; /* bids with single_provider, after a fill */
        int32_t zero_until_hour; /* offers: every open hour before it has
                                   no capacity (near-term hours sell out
                                   first, so most bids can skip such an
                                   offer in O(1)); derived, recomputed on
                                   change */
    };
    int32_t qty;                /* bids: total; offers: nominal per hour */
    int32_t filled_qty;         /* bids */
    int32_t min_qty;
    int32_t min_hours;
    uint32_t walk_hint;         /* a slot some orders further along this
                                   order's FIFO, or NIL: a prefetch hint,
                                   never state (match.c, "Walk hints") */
    uint32_t cap_head;          /* offers: first capacity chunk */
    uint8_t side;
    uint8_t tif;
    uint8_t single_provider;
    uint8_t in_bucket;
    int64_t price_micros;
    uint64_t zero_blocks;       /* offers: bit k set = some hour of block k
                                   (capacity.c, "zero blocks") has no
                                   capacity; derived, recomputed on change */
    /* -- cold -- */
    uint32_t prev;              /* FIFO link inside the level */
    uint32_t level;             /* level slot, NIL while not in the book */
    uint64_t id;
    uint64_t priority;
    int64_t hold_micros;        /* bids */
    int64_t expire_at_hour;     /* as given, 0 = none */
    uint32_t market;
    int32_t expiry_hour;        /* when the clock reaching it removes the order */
    uint32_t xprev, xnext;      /* expiry bucket links */
    /* bids: what the book could give this bid when its last plan failed
     * (match.c, "plan bounds"); trusted only while plan_epoch equals its
     * market's plan_epoch (0 = never) */
    int32_t plan_bound_qty;
    uint32_t plan_epoch;
} order;

/* Books of this many resting orders or more (~8 MB of order lines) are
 * far larger than the caches: prefetches that only pay there (prefetch.c
 * hop 2b, match.c fill_prefetch_end) are made from this size on. */
#define PREFETCH_DEEP_ORDERS 65536

/* How far along its FIFO an order's walk_hint points (match.c, "Walk
 * hints"): 8 against 4, matcher_gpu's ioc_buy mean and p99 lower in 3 of
 * 3 alternated pairs; 16 was not better (docs/benchmarks.md, ninth
 * session). */
#define WALK_HINT_AHEAD 8

_Static_assert(sizeof(order) == 128, "order: two cache lines");
_Static_assert(offsetof(order, zero_blocks) + sizeof(uint64_t) <= 64, "order: scan fields in the first line");

/* Hour masks. Bit (h mod 128) stands for every hour h' = h (mod 128).
 * An offer's mask has the bit of every open hour where it has capacity,
 * and an ask level's mask has at least the bits of its offers; bits may be
 * stale (set with no capacity left), never missing. So a bid whose window
 * (under 128 hours) has an hour whose bit is clear in a level's mask gets
 * nothing from any offer of that level, and its plan skips the level's
 * orders (capacity.c, "Hour masks"). */
typedef unsigned __int128 hmask;
#define HMASK_HOURS 128

/* The mask of the hours [from, to) (all bits when 128 hours or more). */
static inline hmask hmask_range(int32_t from_hour, int32_t to_hour)
{
    GPUX_ASSERT(from_hour < to_hour);
    if (to_hour - from_hour >= HMASK_HOURS)
        return ~(hmask)0;
    hmask ones = ((hmask)1 << (to_hour - from_hour)) - 1;
    uint32_t r = (uint32_t)from_hour & (HMASK_HOURS - 1); /* hours are >= 0 */
    return r == 0 ? ones : (ones << r) | (ones >> (HMASK_HOURS - r));
}

/* Bounds of a bid level's windows: every bid of the level starts at or
 * before max_start_hour, ends at or after min_end_hour and lasts at most
 * max_hours. Bounds may be loose (a bid that left keeps them wide until
 * a sweep walks the whole level and tightens them), never too tight: an
 * offer that opens after max_start_hour, ends before min_end_hour or
 * wants more than max_hours can serve no bid of the level, and its sweep
 * skips it (match.c, "Bid level bounds"). */
typedef struct bid_bounds {
    int32_t max_start_hour;
    int32_t min_end_hour;
    int32_t max_hours;
} bid_bounds;

/* The bounds of a bid level with no bid: no offer's min_hours (>= 0)
 * fits max_hours, so every sweep passes the level without reading it. */
#define BID_BOUNDS_NONE ((bid_bounds){.max_start_hour = INT32_MIN, .min_end_hour = INT32_MAX, .max_hours = -1})

/* bid_bounds as a bid level keeps them, in 8 bytes (level, bounds): the
 * end as an offset from the start, clamped down to INT16_MAX, with
 * BID_END_UNBOUNDED for "no end bound" (bounds are only narrowed by
 * sweeps, so a stale end may lie years before a new start). Packing
 * never makes bounds tighter. */
#define BID_END_UNBOUNDED INT16_MIN
typedef struct bid_bnd8 {
    int32_t max_start_hour;
    int16_t end_delta;          /* <= min_end_hour - max_start_hour, or BID_END_UNBOUNDED */
    int16_t max_hours;
} bid_bnd8;

_Static_assert(sizeof(bid_bnd8) == 8, "bid_bnd8: 8 bytes");
_Static_assert(MATCHER_MAX_WINDOW_HOURS <= INT16_MAX, "a bid's length fits max_hours");

static inline bid_bnd8 bid_bnd8_pack(bid_bounds b)
{
    int64_t d = (int64_t)b.min_end_hour - b.max_start_hour;
    d = d <= BID_END_UNBOUNDED ? BID_END_UNBOUNDED : d > INT16_MAX ? INT16_MAX : d;
    return (bid_bnd8){b.max_start_hour, (int16_t)d, (int16_t)b.max_hours};
}
/* The packed bounds' min_end_hour (INT64_MIN: no end bound). */
static inline int64_t bid_bnd8_min_end(bid_bnd8 b)
{
    return b.end_delta == BID_END_UNBOUNDED ? INT64_MIN : (int64_t)b.max_start_hour + b.end_delta;
}
static inline bid_bounds bid_bnd8_unpack(bid_bnd8 b)
{
    int64_t end = bid_bnd8_min_end(b);
    return (bid_bounds){b.max_start_hour, end < INT32_MIN ? INT32_MIN : (int32_t)end, b.max_hours};
}

_Static_assert(sizeof(hmask) == 16, "a level's hour mask: four per cache line (e->lvmask)");

/* A price level: one cache line. Bid levels also carry their first bids
 * inline (match.c, "Bid windows"): win_slot[k], win_start_hour[k] and
 * win_hours[k] are the slot and window of the k-th bid of the FIFO, for
 * the first n of them, where n is the number of slots before the first
 * NIL (n <= min(LEVEL_WIN, count); it may be less after a bid of the
 * prefix leaves: the prefix shrinks, it never holds a bid out of place).
 * A sweep reads a bid's order only when its window, length and the
 * offer's capacity over it fit, and a bid's window never changes while it
 * rests (a replace moves price and quantity only). Ask levels keep their
 * covers in the same room instead (ask_cover below). */
#define LEVEL_WIN 4

/* Ask levels use the room of the bid prefix for the windows their offers
 * cover (match.c, "Ask level covers"): up to ASK_COVERS windows such
 * that every offer's window lies inside one of them. A window may be
 * wider than any offer's (merged, or kept after its offer left), never
 * narrower, so a bid whose window no entry contains can take nothing
 * from the level. An unused entry is empty (start INT32_MAX). */
#define ASK_COVERS 5

typedef struct ask_cover {
    int32_t start_hour[ASK_COVERS];
    int32_t end_hour[ASK_COVERS];
} ask_cover;

typedef struct level {
    bid_bnd8 bounds;            /* bid levels: their bids' windows (see
                                   bid_bounds); the price is the side's key */
    uint32_t head, tail;
    uint32_t count;
    uint32_t next_free;
    union {
        struct {                /* bid levels */
            uint32_t win_slot[LEVEL_WIN];
            int32_t win_start_hour[LEVEL_WIN];
            uint16_t win_hours[LEVEL_WIN];
        };
        ask_cover covers;       /* ask levels */
    };
} level;

_Static_assert(sizeof(level) == 64, "level: one cache line");
_Static_assert(MATCHER_MAX_WINDOW_HOURS <= UINT16_MAX, "a bid's length fits win_hours");

/* An ask level's covers: none, then the offer windows [start, end) one
 * by one. A window inside an entry changes nothing; entries inside the
 * new window give way to it; with no free entry it merges into the entry
 * it widens least (the entry then spans both: wider, never narrower). */
static inline void ask_cover_clear(ask_cover *c)
{
    for (int k = 0; k < ASK_COVERS; k++) {
        c->start_hour[k] = INT32_MAX;
        c->end_hour[k] = INT32_MIN;
    }
}

static inline bool ask_cover_holds(const ask_cover *c, int32_t start_hour, int32_t end_hour)
{
    bool in = false;
    for (int k = 0; k < ASK_COVERS; k++)
        in |= (c->start_hour[k] <= start_hour) & (c->end_hour[k] >= end_hour);
    return in;
}

static inline void ask_cover_add(ask_cover *c, int32_t start_hour, int32_t end_hour)
{
    if (ask_cover_holds(c, start_hour, end_hour))
        return;
    int free_k = -1, best_k = 0;
    int64_t best_cost = INT64_MAX;
    for (int k = 0; k < ASK_COVERS; k++) {
        if (c->start_hour[k] >= start_hour && c->end_hour[k] <= end_hour) { /* inside the new one */
            c->start_hour[k] = INT32_MAX;
            c->end_hour[k] = INT32_MIN;
        }
        if (c->start_hour[k] == INT32_MAX) {
            free_k = k;
            continue;
        }
        int64_t cost = (int64_t)(c->start_hour[k] > start_hour ? c->start_hour[k] - start_hour : 0) +
                       (end_hour > c->end_hour[k] ? end_hour - c->end_hour[k] : 0);
        if (cost < best_cost) {
            best_cost = cost;
            best_k = k;
        }
    }
    int k = free_k >= 0 ? free_k : best_k;
    if (c->start_hour[k] > start_hour)
        c->start_hour[k] = start_hour;
    if (c->end_hour[k] < end_hour)
        c->end_hour[k] = end_hour;
}

/* The length of level lv's bid prefix (see level). */
static inline uint32_t level_win_n(const level *lv)
{
    uint32_t n = 0;
    while (n < LEVEL_WIN && lv->win_slot[n] != NIL)
        n++;
    return n;
}

/* An offer's capacity breakpoints, CAP_CHUNK_N to a cache line, in hour
 * order along the chunks' next links (capacity.c, "Chunks"). Entry i
 * holds qty GPUs from its start hour until the next entry's start (in
 * this chunk or the next) or the offer's end. An entry is one word:
 * (start - the offer's start_hour) << CAP_QTY_BITS | qty (bp_pack), so
 * entries compare in hour order as plain numbers. */
#define CAP_CHUNK_N 14
#define CAP_QTY_BITS 17
#define CAP_QTY_MASK ((1u << CAP_QTY_BITS) - 1)
typedef struct cap_chunk {
    uint32_t next;              /* next chunk of the offer, NIL: the last */
    uint32_t n;                 /* entries held, 1..CAP_CHUNK_N */
    uint32_t bp[CAP_CHUNK_N];   /* ascending */
} cap_chunk;

_Static_assert(MATCHER_MAX_QTY <= CAP_QTY_MASK, "a breakpoint's qty fits its bits");
_Static_assert((uint64_t)(MATCHER_MAX_WINDOW_HOURS + 1) << CAP_QTY_BITS <= UINT32_MAX,
               "an hour of the window (and one past its end) fits the rest of the word");

/* Breakpoint words of offer o (see cap_chunk). */
static inline uint32_t bp_pack(const order *o, int32_t start_hour, int32_t qty)
{
    GPUX_ASSERT(start_hour >= o->start_hour && start_hour < o->end_hour && qty >= 0 && qty <= (int32_t)CAP_QTY_MASK);
    return (uint32_t)(start_hour - o->start_hour) << CAP_QTY_BITS | (uint32_t)qty;
}
static inline int32_t bp_start(const order *o, uint32_t bp) { return o->start_hour + (int32_t)(bp >> CAP_QTY_BITS); }
static inline int32_t bp_qty(uint32_t bp) { return (int32_t)(bp & CAP_QTY_MASK); }
/* Entries starting before hour (an hour of o's window or its end) are
 * exactly the words below bp_at(o, hour). */
static inline uint32_t bp_at(const order *o, int32_t hour)
{
    GPUX_ASSERT(hour >= o->start_hour && hour <= o->end_hour);
    return (uint32_t)(hour - o->start_hour) << CAP_QTY_BITS;
}

_Static_assert(sizeof(cap_chunk) == 64, "cap_chunk: one cache line");

#include "matcher/slotmap.h"

typedef struct book_side {
    uint32_t n_levels;          /* including empty ones */
    uint32_t n_empty;           /* levels with count 0 awaiting compaction */
    uint32_t cap_levels;        /* most entries the side holds */
    uint32_t front;             /* free entries before keys[0] and lvl[0] */
    int32_t *keys;              /* keys[0 .. n_levels): ascending sort
                                   key: -price for asks, price for bids,
                                   so the best is last; 32 bits (prices
                                   are at most $1000 = 1e9 micros) so that
                                   a new level's memmove and the binary
                                   search touch less memory */
    uint32_t *lvl;              /* level slots in key order (best last) */
    int32_t *keys_base;         /* 2 * cap_levels entries each: keys and */
    uint32_t *lvl_base;         /* lvl start `front` entries in (book.c,
                                   side_insert) */
} book_side;

typedef struct market_book {
    book_side side[2];          /* [0] bids, [1] asks */
    uint32_t n_orders;
    uint32_t plan_epoch;        /* bumped to distrust every bid's plan bound; never 0 */
} market_book;

/* One step of a bid's fill plan. */
typedef struct plan_step {
    uint32_t offer;             /* order slot */
    int32_t qty;
} plan_step;

struct matcher_engine {
    matcher_catalog cat;
    matcher_config cfg;
    int64_t now_hour;
    uint64_t next_order_id;
    uint64_t next_trade_id;
    uint64_t next_priority;
    int64_t deposited_micros;
    int64_t withdrawn_micros;

    account *accounts;
    uint32_t n_accounts;

    order *orders;              /* cfg.max_orders + 1 slots, 64-byte aligned */
    void *orders_raw;           /* what calloc returned (orders is inside it) */
    uint32_t order_free;        /* free list through .next */
    uint32_t orders_hw;         /* slots 1..orders_hw have been handed out;
                                   the rest are untouched (see link_free_lists) */
    uint32_t n_orders;

    slot_map idmap;             /* order id -> order slot */

    level *levels;              /* cfg.max_orders + 1 slots */
    uint32_t level_free;
    uint32_t levels_hw;         /* as orders_hw, for levels */
    slot_map lvmap;             /* (market, side, price) -> level slot */

    hmask *omask;               /* per order slot: an offer's hour mask */
    hmask *lvmask;              /* per level slot: an ask level's hour
                                   mask, the union of its offers' (see
                                   "Hour masks"), beside the levels so
                                   that a plan skipping a level reads 16
                                   bytes, never the level or its orders.
                                   Bid levels: unused (their bounds are
                                   in the level: a sweep over bids enters
                                   a third of the levels it passes, and
                                   one line per level beat a summary
                                   line plus, for those, the level's) */

    cap_chunk *chunks;          /* cfg.max_segments + 1 slots: every chunk
                                   holds a breakpoint, so never short */
    uint32_t chunk_free;
    uint32_t chunks_hw;         /* as orders_hw, for chunks */
    uint32_t n_segs_free;       /* breakpoints left of cfg.max_segments */

    market_book *books;         /* cat.n_markets */
    uint32_t *bucket_head;      /* EXPIRY_RING */
    uint32_t *bucket_tail;

    /* per-command scratch */
    plan_step *plan;            /* MATCHER_MAX_FILLS_PER_COMMAND */
    int64_t plan_avail_qty;     /* last plan: sum over eligible offers of
                                   min(avail, remaining) (all-or-none bids;
                                   single-provider: the largest provider's) */
    bool plan_complete;         /* last plan walked every eligible offer */
    uint32_t fills_left;
    uint32_t incoming;          /* slot of the order being processed, NIL if none */
    int32_t *sp_rem;            /* single-provider planning, per account */
    int64_t *sp_avail;          /* per provider: sum of min(avail, remaining) */
    uint32_t *sp_steps;
    uint32_t *sp_epoch;
    uint32_t sp_cur;

    /* current command's emit */
    matcher_emit_fn emit;
    void *emit_ctx;
    const matcher_cmd *cmd;
};

static inline int side_index(uint8_t side) { return side == MATCHER_BUY ? 0 : 1; }
_Static_assert(MATCHER_MAX_PRICE_MICROS <= INT32_MAX, "a level's sort key fits 32 bits");

static inline int32_t side_key(uint8_t side, int64_t price)
{
    GPUX_ASSERT(price > 0 && price <= MATCHER_MAX_PRICE_MICROS);
    return side == MATCHER_BUY ? (int32_t)price : -(int32_t)price;
}
/* The price of the level with sort key key on side si (0 bids, 1 asks). */
static inline int64_t key_price(int si, int32_t key)
{
    return si == 0 ? (int64_t)key : -(int64_t)key;
}
static inline int32_t order_hours(const order *o) { return o->end_hour - o->start_hour; }
/* The first hour an order's window is still open: its start, or the
 * clock's hour once that has passed (hours before it can no longer be
 * sold or bought). One definition, because the sweep's level skip
 * (match.c) and the coverage test (capacity.c) must agree on it. */
static inline int32_t order_open_start(const matcher_engine *e, const order *o)
{
    return o->start_hour > e->now_hour ? o->start_hour : (int32_t)e->now_hour;
}
static inline int32_t bid_remaining(const order *o) { return o->qty - o->filled_qty; }

/* The provider a bid is bound to (0: none); an offer's is always 0 (its
 * union member is zero_until_hour). Hashing, snapshots and queries read
 * the lock through this. */
static inline uint32_t order_provider_lock(const order *o)
{
    return o->side == MATCHER_BUY ? o->provider_lock : 0;
}

/* Widens a bid level's bounds to cover bid b (first: the bounds describe
 * no bid yet, e.g. the level was empty). */
static inline void bid_bounds_cover_window(bid_bounds *bb, int32_t start_hour, int32_t hours, bool first)
{
    if (first || start_hour > bb->max_start_hour)
        bb->max_start_hour = start_hour;
    if (first || start_hour + hours < bb->min_end_hour)
        bb->min_end_hour = start_hour + hours;
    if (first || hours > bb->max_hours)
        bb->max_hours = hours;
}

static inline void bid_bounds_cover(bid_bounds *bb, const order *b, bool first)
{
    bid_bounds_cover_window(bb, b->start_hour, order_hours(b), first);
}

/* The same for a level's packed bounds. Most bids join a level whose
 * bounds already cover them (matcher_classic: all of them), and those
 * cost three compares. */
static inline void bid_bnd8_cover(bid_bnd8 *bb, const order *b, bool first)
{
    int32_t hours = order_hours(b);
    if (first) {
        *bb = (bid_bnd8){b->start_hour, (int16_t)hours, (int16_t)hours};
        return;
    }
    if (b->start_hour <= bb->max_start_hour && hours <= bb->max_hours && b->end_hour >= bid_bnd8_min_end(*bb))
        return;
    bid_bounds u = bid_bnd8_unpack(*bb);
    bid_bounds_cover(&u, b, false);
    *bb = bid_bnd8_pack(u);
}

/* ---- money (engine_money.c) ---- */
int64_t eng_fee(int64_t notional_micros, int32_t bps);
int64_t eng_hold(const matcher_engine *e, int64_t price_micros, int32_t qty, int32_t hours);

/* ---- orders, id map, levels (book.c) ---- */
uint32_t book_order_alloc(matcher_engine *e);
void book_order_free(matcher_engine *e, uint32_t slot);
uint32_t book_find(const matcher_engine *e, uint64_t id);
void book_idmap_put(matcher_engine *e, uint64_t id, uint32_t slot);
void book_idmap_del(matcher_engine *e, uint64_t id);
uint32_t book_level_find(const matcher_engine *e, uint32_t market, int si, int64_t price);
void book_insert(matcher_engine *e, uint32_t slot);
void book_remove(matcher_engine *e, uint32_t slot);
void book_move(matcher_engine *e, uint32_t slot, int64_t price);
void book_offer_mask_changed(matcher_engine *e, uint32_t slot, hmask old_mask);
void bucket_insert(matcher_engine *e, uint32_t slot);
void bucket_remove(matcher_engine *e, uint32_t slot);

/* ---- offer capacity (capacity.c) ---- */
/* Gives offer o (no capacity yet) one breakpoint: qty from start_hour. */
void cap_init(matcher_engine *e, order *o, int32_t start_hour, int32_t qty);
/* Appends a breakpoint after o's last, held in chunk tail (NIL: o has
 * none yet); returns the chunk now holding the last. For a snapshot load:
 * hours ascending, and the caller has checked n_segs_free. */
uint32_t cap_append(matcher_engine *e, order *o, uint32_t tail, int32_t start_hour, int32_t qty);
void cap_free_all(matcher_engine *e, order *o);
int32_t cap_min(const matcher_engine *e, const order *o, int32_t from_hour, int32_t to_hour);
int32_t cap_max_open(const matcher_engine *e, const order *o);
/* cap_max_open(e, o) == 0, stopping at the first open hour with capacity. */
bool cap_sold_out(const matcher_engine *e, const order *o);
int32_t cap_at(const matcher_engine *e, const order *o, int32_t hour);
/* Takes qty GPUs over [from, to) from offer o. summary: refresh o's
 * summaries now; false leaves them lagging (claiming capacity o no
 * longer has, which every reader allows) until the caller refreshes
 * them with cap_update_summary. */
void cap_take(matcher_engine *e, order *o, int32_t from_hour, int32_t to_hour, int32_t qty, bool summary);
void cap_prune(matcher_engine *e, order *o);
void cap_add_all(matcher_engine *e, order *o, int32_t delta);
void cap_update_summary(matcher_engine *e, order *o);
bool cap_open_covers(const matcher_engine *e, const order *o, int32_t from_hour, int32_t to_hour);

/* Reads an offer's breakpoints in hour order:
 *   for (cap_cursor k = cap_first(e, o); k.c != NIL; cap_next(&k)) ...
 * Read only: a change to the list invalidates the cursor. */
typedef struct cap_cursor {
    const cap_chunk *chunks;
    uint32_t c, i;              /* chunk and entry; c == NIL: past the end */
    const order *o;
} cap_cursor;

static inline cap_cursor cap_first(const matcher_engine *e, const order *o)
{
    return (cap_cursor){e->chunks, o->cap_head, 0, o};
}
static inline int32_t cap_start(const cap_cursor *k) { return bp_start(k->o, k->chunks[k->c].bp[k->i]); }
static inline int32_t cap_qty(const cap_cursor *k) { return bp_qty(k->chunks[k->c].bp[k->i]); }
/* Where entry k's capacity ends: the next entry's start or the offer's end. */
static inline int32_t cap_end(const cap_cursor *k)
{
    const cap_chunk *ch = &k->chunks[k->c];
    if (k->i + 1 < ch->n)
        return bp_start(k->o, ch->bp[k->i + 1]);
    return ch->next == NIL ? k->o->end_hour : bp_start(k->o, k->chunks[ch->next].bp[0]);
}
static inline void cap_next(cap_cursor *k)
{
    if (++k->i == k->chunks[k->c].n) {
        k->c = k->chunks[k->c].next;
        k->i = 0;
    }
}

/* ---- matching (match.c) ---- */
bool match_bid_plan(matcher_engine *e, const order *b, uint32_t *n_steps);
void match_bid_apply(matcher_engine *e, uint32_t bid, uint32_t n_steps);
void match_bid(matcher_engine *e, uint32_t bid);
bool match_offer_would_trade(matcher_engine *e, uint32_t offer);
void match_offer_sweep(matcher_engine *e, uint32_t offer);

/* ---- events and removal (engine.c) ---- */
void eng_emit_balance(matcher_engine *e, uint32_t account);
void eng_emit_done(matcher_engine *e, uint32_t slot, matcher_done_reason r);
void eng_order_end(matcher_engine *e, uint32_t slot, matcher_done_reason r);

/* Events are built inline where they are emitted: the exchange-core mix
 * builds ~1.8 events per command, and a call per event, like a `rep stosq`
 * per event (what gcc 12 -O2 makes of a memset of the 120 bytes, with a
 * start-up cost of tens of cycles), was a measurable share of it. Events
 * are zeroed whole (padding too, so they compare with memcmp) before their
 * fields are set. */
typedef uint64_t event_chunk __attribute__((vector_size(16), aligned(8), may_alias));
_Static_assert(sizeof(matcher_event) == 7 * sizeof(event_chunk) + sizeof(uint64_t), "event: seven chunks and a word");
_Static_assert(_Alignof(matcher_event) == 8, "event: 8-byte aligned");

static inline void event_zero(matcher_event *ev)
{
    event_chunk *c = (event_chunk *)(void *)ev;
    const event_chunk z = {0, 0};
    c[0] = z;
    c[1] = z;
    c[2] = z;
    c[3] = z;
    c[4] = z;
    c[5] = z;
    c[6] = z;
    uint64_t *last = (uint64_t *)(void *)((uint8_t *)ev + 7 * sizeof(event_chunk));
    *last = 0;
}

static inline void eng_event_init(const matcher_engine *e, matcher_event *ev, uint16_t type)
{
    event_zero(ev);
    ev->type = type;
    ev->cmd_type = e->cmd ? e->cmd->type : 0;
    ev->ts_us = e->cmd ? e->cmd->ts_us : 0;
}

/* out must already be zeroed (both callers zero the whole event or view
 * it sits in), so its padding stays zero for memcmp-comparable events. */
static inline void eng_fill_order_info(const order *o, matcher_order_info *out)
{
    out->order_id = o->id;
    out->account = o->account;
    out->market = o->market;
    out->side = o->side;
    out->tif = o->tif;
    out->single_provider = o->single_provider;
    out->qty = o->qty;
    out->min_qty = o->min_qty;
    out->min_hours = o->min_hours;
    out->price_micros = o->price_micros;
    out->start_hour = o->start_hour;
    out->end_hour = o->end_hour;
    out->expire_at_hour = o->expire_at_hour;
    out->hold_micros = o->hold_micros;
}

#endif
