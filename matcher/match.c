/* match.c — building and applying fills (docs/market-rules.md, "Matching").
 *
 * A bid is filled by a *plan*: offers walked in priority order (cheapest,
 * then earliest), each contributing up to the bid's remaining quantity over
 * the bid's whole window. Planning reads the book only; applying a plan
 * moves money, capacity and emits the trade events. An incoming offer
 * sweeps resting bids best-first and re-plans each bid it could help.
 *
 * Plan bounds. Re-planning a resting bid walks every cheaper offer, and on
 * a busy day nearly all of those walks fail (an offer entering the book
 * re-planned ~14 resting bids per fill). A resting bid could not fill when
 * it was last planned, and since then the offers it saw have only lost
 * capacity or eligibility (fills, the clock): only offers that entered the
 * book later can make it fill, and each of those swept past the bid. So a
 * bid remembers, when a complete plan fails, an upper bound of what the
 * book can give it: for an all-or-none bid the sum over eligible offers of
 * min(avail, remaining) (single provider: the largest such sum of one
 * provider, since only one can fill it); for a partial bid 0 (no offer
 * could start a step). An offer sweeping past adds its own share; the
 * plan is run only when bound + share could reach the remainder
 * (all-or-none) or the new offer can start a step itself (partial). The
 * bound is a cache, never state: it changes no outcome (tests/test_matcher_diff.c compares every
 * event with the reference model), so it is not hashed or saved; a bid
 * loaded from a snapshot starts untrusted. A sweep that stops on the fill
 * budget before visiting every bid it crosses bumps the market's epoch,
 * which distrusts every bound there.
 *
 * Bid level bounds. An offer can serve a bid only when its open hours
 * cover the bid's whole window and the bid lasts min_hours or more, and
 * an ioc offer crossing a busy book visited ~240 bids on ~140 levels
 * to find that 84% of them fail exactly that (counted: 68% of the bids
 * it read sat on levels where no bid was eligible). Each bid level keeps
 * bounds of its bids' windows (engine_internal.h, bid_bounds), packed in
 * the level's own line since the ninth session (before: a 16-byte
 * summary beside the level, which a sweep read for every level it passed
 * and then the level line for the third it entered; one line per level
 * instead: matcher_gpu ioc_sell mean -2..-6% and p99 lower in 3 of 3
 * pairs): a sweep reads the level line and skips a level that cannot
 * hold an eligible bid without reading its orders. A bid skipped that way
 * would have been skipped by the per-bid test as well (no plan, no
 * bound recorded), so outcomes are unchanged. book_insert widens the
 * bounds; nothing narrows them when a bid leaves (that would read the
 * level's other bids on every cancel), but a sweep that walks a whole
 * level recomputes them from the bids it has just read.
 *
 * Bid windows. Inside the levels it enters, a sweep still read ~150 bids
 * per crossing offer, one cache miss each, and about half of them failed
 * on the bid's window or length alone, and most of the rest on the
 * offer's own capacity over that window (sold earlier in the same sweep):
 * neither needs the bid. A bid's window never changes while it rests, so
 * each bid level carries the slots and windows of its first LEVEL_WIN
 * bids inline (engine_internal.h, level; book.c keeps them in FIFO order
 * as bids join and leave), and the sweep judges those bids from the level
 * line: window, length, then cap_min of the offer (a hot line), and reads
 * a bid only for what the window cannot say (self-trade, provider lock,
 * plan bound). Same tests, same order, same outcome: a bid skipped that
 * way would have got avail 0 from offer_avail_for_bid. Bids behind the
 * prefix are read as before, and a sweep that walks a whole level
 * refills the prefix from what it saw. A level whose last bid leaves gets
 * bounds no offer fits (BID_BOUNDS_NONE), so sweeps pass emptied levels
 * (a fifth of the levels they entered) without reading them. */
#include "gpux_prefetch.h"
#include "matcher/engine_internal.h"

static int32_t min32(int32_t a, int32_t b) { return a < b ? a : b; }
static int32_t max32(int32_t a, int32_t b) { return a > b ? a : b; }

/* A book walk is a chain of cache misses (a level, then each order of its
 * FIFO; on a busy day most levels hold one or two orders). Asking ahead
 * overlaps them: what tells whether to enter the level PF_MASKS steps
 * ahead (an ask level's hour mask, lvmask; a bid level's line, which holds
 * its bounds), and both walks queue the levels they will enter
 * WALK_AHEAD deep (a plan over asks: ask_walk; a sweep over bids:
 * bid_walk, asking for the bids a level's prefix says it will read as it
 * queues the level). Walks go from the best (last) level down. */
#define PF_MASKS 12

/* Walk hints. A level's FIFO is a chain: each order's line says where
 * the next one is, so a walk along a long level waits a whole miss per
 * order. Counted in matcher_gpu: an ioc bid's plan read ~31 offers in
 * ~3 levels, and 40% of the levels plans entered held more than 16
 * offers (the cheapest asks gather the offers no bid's window fits);
 * the bids behind a level's prefix were the largest stall of a sweep.
 * So each order carries walk_hint, the slot WALK_HINT_AHEAD places
 * further along its FIFO when the last walk passed it, and a walk asks
 * for that order's line as it passes: from the second walk on, a long
 * level's misses overlap WALK_HINT_AHEAD deep (jump pointers). Walks
 * write the hints as they go. A hint is only ever prefetched, never
 * followed: a stale one (that order left, its slot was reused) costs a
 * wasted load and nothing else, so hints are not state (not hashed,
 * saved or checked) and an order starts with none. WALK_HINT_AHEAD:
 * engine_internal.h. */

typedef struct hint_ring {
    uint32_t slot[WALK_HINT_AHEAD]; /* the last orders passed, by count mod WALK_HINT_AHEAD */
    uint32_t n;                     /* orders passed in this FIFO */
} hint_ring;

/* The walk reaches order slot s of a FIFO: asks for the order its hint
 * names and makes s the hint of the order WALK_HINT_AHEAD places back. */
static inline void walk_hint_pass(matcher_engine *e, hint_ring *r, uint32_t s)
{
    uint32_t h = e->orders[s].walk_hint;
    GPUX_ASSERT(h <= e->cfg.max_orders);
    if (h != NIL)
        GPUX_PREFETCH(&e->orders[h]);
    uint32_t k = r->n % WALK_HINT_AHEAD;
    if (r->n >= WALK_HINT_AHEAD)
        e->orders[r->slot[k]].walk_hint = s;
    r->slot[k] = s;
    r->n++;
}

/* Can ask level l give anything to a bid whose window has hour mask need?
 * (capacity.c, "Hour masks": false only when some hour of the window has
 * no capacity in any of the level's offers.) */
static inline bool level_may_serve(const matcher_engine *e, uint32_t l, hmask need)
{
    return (e->lvmask[l] & need) == need;
}

/* A walk over the ask levels a bid may take from, best first. Levels whose
 * hour mask rules the bid out are passed over (one 16-byte load each,
 * asked for PF_MASKS positions ahead); the others are queued WALK_AHEAD
 * deep, and each is asked for when queued and its first order when it is
 * next, so entering a level rarely waits for memory. Why not ahead by
 * position alone: on a busy day a bid passes ~10 levels for each one it
 * enters, so a level asked for a few positions ahead was asked for only a
 * few nanoseconds before it was needed. */
#define WALK_AHEAD 4

/* The levels a walk (this one, and a sweep's over bids: bid_walk) has
 * decided to enter and not entered yet, oldest first, and how far along
 * its side it has looked. */
typedef struct level_queue {
    uint32_t pos;             /* positions [0, pos) are still to look at */
    uint32_t q[WALK_AHEAD];   /* queued level slots, oldest at head */
    uint32_t head, n;
} level_queue;

static inline void lq_start(level_queue *lq, uint32_t n_levels)
{
    lq->pos = n_levels;
    lq->head = lq->n = 0;
}

/* True while the walk should look at more positions before it enters
 * the oldest queued level. */
static inline bool lq_wants_more(const level_queue *lq) { return lq->n < WALK_AHEAD && lq->pos > 0; }

static inline void lq_push(level_queue *lq, uint32_t l)
{
    GPUX_ASSERT(lq->n < WALK_AHEAD);
    lq->q[(lq->head + lq->n++) % WALK_AHEAD] = l;
}

/* The oldest queued level, taken off the queue. */
static inline uint32_t lq_pop(level_queue *lq)
{
    GPUX_ASSERT(lq->n > 0);
    uint32_t l = lq->q[lq->head];
    lq->head = (lq->head + 1) % WALK_AHEAD;
    lq->n--;
    return l;
}

typedef struct ask_walk {
    const matcher_engine *e;
    const book_side *asks;
    hmask need;
    int32_t start_hour, end_hour; /* the bid's window (see "Ask level covers") */
    int64_t min_key;          /* -(the bid's price): lower keys are dearer */
    level_queue lq;
} ask_walk;

static void walk_begin(ask_walk *w, const matcher_engine *e, const order *b)
{
    w->e = e;
    w->asks = &e->books[b->market].side[1];
    w->need = hmask_range(b->start_hour, b->end_hour);
    w->start_hour = b->start_hour;
    w->end_hour = b->end_hour;
    w->min_key = -b->price_micros;
    lq_start(&w->lq, w->asks->n_levels);
}

/* The next level slot the bid may take from, or NIL when none is left. */
static uint32_t walk_next(ask_walk *w)
{
    const book_side *asks = w->asks;
    level_queue *lq = &w->lq;
    while (lq_wants_more(lq)) {
        uint32_t i = lq->pos - 1;
        if (asks->keys[i] < w->min_key) { /* ask key = -price: no level load */
            lq->pos = 0;
            break;
        }
        if (i >= PF_MASKS)
            GPUX_PREFETCH(&w->e->lvmask[asks->lvl[i - PF_MASKS]]);
        lq->pos = i;
        uint32_t l = asks->lvl[i];
        if (level_may_serve(w->e, l, w->need)) {
            GPUX_PREFETCH(&w->e->levels[l]);
            lq_push(lq, l);
        }
    }
    if (lq->n == 0)
        return NIL;
    uint32_t l = lq_pop(lq);
    if (lq->n > 0) /* asked for when it was queued: now its first order */
        GPUX_PREFETCH(&w->e->orders[w->e->levels[lq->q[lq->head]].head]);
    return l;
}

/* Ask level covers. Counted in matcher_gpu (tenth session): the slowest
 * ioc and fok bids (over 15 us: ~1% of ioc bids, ~3% of fok) walked
 * 115-140 ask levels and 460-720 offers each and found nearly none that
 * covered their window. 90% of those ioc bids (40% of the fok) were long
 * (2,160 hours or more), which only an offer starting no later and
 * ending no earlier can serve, and which the hour masks cannot judge (a
 * window of 128 hours or more needs every bit). So each ask level keeps
 * up to ASK_COVERS windows that together contain every offer's window
 * (engine_internal.h, ask_cover; book.c adds each offer that joins), and
 * a walk passes a level none of whose
 * covers contains the bid's window: every offer there would fail
 * cap_open_covers (an offer's start is at or before its open start, and
 * a bid starts after the clock), so nothing differs but the walk. Covers
 * only widen while the level holds offers (an offer that leaves keeps
 * its window there) and start afresh when it empties; narrowing them on
 * a plan's full walk of a level was measured and gave nothing visible
 * (docs/benchmarks.md, tenth session). */
static uint32_t walk_next_covering(ask_walk *w)
{
    uint32_t l = walk_next(w);
    /* bounded: every walk_next consumes a level of the side, or ends */
    while (l != NIL && !ask_cover_holds(&w->e->levels[l].covers, w->start_hour, w->end_hour))
        l = walk_next(w);
    return l;
}

/* Can bid level l hold a bid that offer o (open from open_start) can
 * serve? False only when no bid's window and length fit the offer (see
 * "Bid level bounds"). */
static inline bool bid_level_may_use(const matcher_engine *e, uint32_t l, const order *o, int32_t open_start)
{
    bid_bnd8 bb = e->levels[l].bounds;
    return bb.max_start_hour >= open_start && bb.max_hours >= o->min_hours && bid_bnd8_min_end(bb) <= o->end_hour;
}

/* Can offer o (open from open_start) serve a bid of window [start_hour,
 * start_hour + hours), as far as the window alone says? Exactly the
 * window and length tests of offer_eligible (cap_open_covers and
 * min_hours), from a level's prefix entry without the bid's order. */
static inline bool window_fits(const order *o, int32_t open_start, int32_t start_hour, int32_t hours)
{
    return start_hour >= open_start && start_hour + hours <= o->end_hour && hours > 0 && hours >= o->min_hours;
}

/* The rest of offer_eligible for a bid whose window fits: self-trade and
 * the bid's provider lock. */
static inline bool bid_takes_from(const order *b, const order *o)
{
    return o->account != b->account && (b->provider_lock == 0 || b->provider_lock == o->account);
}

/* The bids of level lv a sweep of offer o will read first: the prefix
 * entries whose window fits, and what follows the prefix (its last entry,
 * for its next link, or the head when there is no prefix). */
static inline void sweep_prefetch_bids(const matcher_engine *e, const level *lv, const order *o, int32_t open_start)
{
    uint32_t n = 0;
    for (; n < LEVEL_WIN && lv->win_slot[n] != NIL; n++)
        if (window_fits(o, open_start, lv->win_start_hour[n], lv->win_hours[n]))
            GPUX_PREFETCH(&e->orders[lv->win_slot[n]]);
    if (n == 0)
        GPUX_PREFETCH(&e->orders[lv->head]);
    else if (n < lv->count)
        GPUX_PREFETCH(&e->orders[lv->win_slot[n - 1]]);
}

/* A sweep's walk over the bid levels offer o may serve, best first: the
 * ask walk's shape (above) on the bid side. Each position is judged once,
 * by its level's bounds (its line asked for PF_MASKS positions earlier);
 * a level that may hold a bid o fits is queued WALK_AHEAD deep, and the
 * bids its prefix says the sweep will read are asked for as it is queued.
 * Until the eleventh session the walk went by position: it tested each
 * level's bounds twice (four positions ahead, to ask for its bids,
 * and again on reaching it) and the fill budget at every position; a
 * crossing offer passes ~140 levels and enters ~55 (matcher_gpu).
 * A queued level's bounds still hold when it is entered: they change only
 * when a bid joins (none does during a sweep) or when a sweep walks that
 * very level, and a queued level holds bids, so the pops of emptied best
 * levels (book.c, side_pop_empty_best) stop above it. */
typedef struct bid_walk {
    const matcher_engine *e;
    const book_side *bids;
    const order *o;
    int32_t open_start;
    level_queue lq;
} bid_walk;

static void bid_walk_begin(bid_walk *w, const matcher_engine *e, const order *o)
{
    w->e = e;
    w->bids = &e->books[o->market].side[0];
    w->o = o;
    w->open_start = order_open_start(e, o);
    lq_start(&w->lq, w->bids->n_levels);
    for (uint32_t k = 1; k <= PF_MASKS && k <= w->lq.pos; k++)
        GPUX_PREFETCH(&e->levels[w->bids->lvl[w->lq.pos - k]]);
}

/* The next bid level the sweep enters, or NIL when none is left. */
static uint32_t bid_walk_next(bid_walk *w)
{
    const book_side *bids = w->bids;
    level_queue *lq = &w->lq;
    while (lq_wants_more(lq)) {
        uint32_t i = lq->pos - 1;
        if (bids->keys[i] < w->o->price_micros) { /* bid key = price */
            lq->pos = 0;
            break;
        }
        lq->pos = i;
        if (i >= PF_MASKS)
            GPUX_PREFETCH(&w->e->levels[bids->lvl[i - PF_MASKS]]); /* its bounds are in it */
        if (i >= bids->n_levels)
            continue; /* popped: a fill emptied every level from the best down to here */
        uint32_t l = bids->lvl[i];
        if (bid_level_may_use(w->e, l, w->o, w->open_start)) {
            sweep_prefetch_bids(w->e, &w->e->levels[l], w->o, w->open_start);
            lq_push(lq, l);
        }
    }
    if (lq->n == 0)
        return NIL;
    uint32_t l = lq_pop(lq);
    GPUX_ASSERT(w->e->levels[l].count > 0);
    return l;
}

/* The most offer o (avail GPUs over the window) can give an all-or-none
 * bid with r left: a step of an all-or-none plan takes min(avail, r') for
 * some r' <= r, and only when that reaches o's min_qty. */
static int32_t share(int32_t avail, int32_t r, const order *o)
{
    int32_t t = min32(avail, r);
    return t >= o->min_qty ? t : 0;
}

/* Can offer o take part in bid b (price aside)? lock: 0 or the provider
 * the bid is bound to. */
static bool offer_eligible(const matcher_engine *e, const order *b, const order *o, uint32_t lock)
{
    if (o->account == b->account)
        return false; /* self-trade prevention: skip, never trade */
    if (lock != 0 && o->account != lock)
        return false;
    if (order_hours(b) < o->min_hours)
        return false;
    return cap_open_covers(e, o, b->start_hour, b->end_hour);
}

static bool bid_all_or_none(const order *b)
{
    return b->min_qty == 0 || b->tif == MATCHER_FOK;
}

/* Greedy plan over eligible offers in priority order, limited to one
 * provider when lock != 0. Returns the steps in e->plan. */
static uint32_t plan_greedy(matcher_engine *e, const order *b, uint32_t lock, int32_t *rem_out)
{
    bool all = bid_all_or_none(b);
    int32_t r = bid_remaining(b);
    int32_t r0 = r;
    uint32_t n = 0;
    e->plan_avail_qty = 0;
    e->plan_complete = false;
    ask_walk w;
    walk_begin(&w, e, b);
    for (uint32_t l; r > 0 && (l = walk_next_covering(&w)) != NIL;) {
        const level *lv = &e->levels[l];
        hint_ring hr = {.n = 0};
        for (uint32_t s = lv->head; s != NIL && r > 0; s = e->orders[s].next) {
            const order *o = &e->orders[s];
            if (o->next != NIL) /* as in sweep_level: overlap the next offer's miss */
                GPUX_PREFETCH(&e->orders[o->next]);
            walk_hint_pass(e, &hr, s);
            if (!offer_eligible(e, b, o, lock))
                continue;
            int32_t avail = cap_min(e, o, b->start_hour, b->end_hour);
            e->plan_avail_qty += share(avail, r0, o);
            int32_t t = min32(avail, r);
            int32_t bmin = all ? 0 : min32(b->min_qty, r);
            if (t <= 0 || t < max32(o->min_qty, bmin))
                continue;
            if (n == e->fills_left)
                goto out; /* fill budget of this command spent */
            e->plan[n++] = (plan_step){.offer = s, .qty = t};
            r -= t;
            if (b->single_provider && lock == 0)
                lock = o->account; /* a partial single-provider bid stays with its first provider */
        }
    }
    e->plan_complete = true;
out:
    *rem_out = r;
    return n;
}

/* Single-provider bid: the first provider that can fill the whole
 * remaining quantity alone wins (walking offers in priority order, each
 * provider with its own running remainder and the usual step rule). */
static uint32_t plan_single_provider_winner(matcher_engine *e, const order *b)
{
    bool all = bid_all_or_none(b);
    int32_t r = bid_remaining(b);
    e->plan_avail_qty = 0;
    e->plan_complete = false;
    if (++e->sp_cur == 0) {
        for (uint32_t a = 0; a < e->cfg.max_accounts; a++)
            e->sp_epoch[a] = 0;
        e->sp_cur = 1;
    }
    ask_walk w;
    walk_begin(&w, e, b);
    for (uint32_t l; (l = walk_next_covering(&w)) != NIL;) {
        const level *lv = &e->levels[l];
        hint_ring hr = {.n = 0};
        for (uint32_t s = lv->head; s != NIL; s = e->orders[s].next) {
            const order *o = &e->orders[s];
            walk_hint_pass(e, &hr, s);
            if (!offer_eligible(e, b, o, 0))
                continue;
            uint32_t p = o->account;
            if (e->sp_epoch[p] != e->sp_cur) {
                e->sp_epoch[p] = e->sp_cur;
                e->sp_rem[p] = r;
                e->sp_steps[p] = 0;
                e->sp_avail[p] = 0;
            }
            int32_t avail = cap_min(e, o, b->start_hour, b->end_hour);
            e->sp_avail[p] += share(avail, r, o);
            if (e->sp_avail[p] > e->plan_avail_qty)
                e->plan_avail_qty = e->sp_avail[p]; /* only one provider can fill it */
            int32_t t = min32(avail, e->sp_rem[p]);
            int32_t bmin = all ? 0 : min32(b->min_qty, e->sp_rem[p]);
            if (t <= 0 || t < max32(o->min_qty, bmin) || e->sp_steps[p] >= e->fills_left)
                continue;
            e->sp_rem[p] -= t;
            e->sp_steps[p]++;
            if (e->sp_rem[p] == 0)
                return p;
        }
    }
    e->plan_complete = true;
    return 0;
}

bool match_bid_plan(matcher_engine *e, const order *b, uint32_t *n_steps)
{
    GPUX_ASSERT(b->side == MATCHER_BUY && bid_remaining(b) > 0);
    const book_side *asks = &e->books[b->market].side[1];
    if (asks->n_levels == 0 || -asks->keys[asks->n_levels - 1] > b->price_micros) {
        /* No offer at or below the bid's price (most bids that enter or
         * move do not cross): what every walk below would find at once.
         * match_bid makes the same test first. */
        e->plan_avail_qty = 0;
        e->plan_complete = true;
        *n_steps = 0;
        return false;
    }
    bool all = bid_all_or_none(b);
    uint32_t lock = b->provider_lock;
    if (b->single_provider && lock == 0) {
        /* A provider that can fill the whole remainder alone wins; without
         * one an all-or-none bid waits, and a partial bid takes the
         * provider of its first possible step (plan_greedy locks it). */
        lock = plan_single_provider_winner(e, b);
        if (lock == 0 && all) {
            *n_steps = 0;
            return false;
        }
    }
    int32_t rem;
    uint32_t n = plan_greedy(e, b, lock, &rem);
    *n_steps = n;
    if (lock != b->provider_lock)
        e->plan_complete = false; /* the walk saw one provider's offers only */
    return all ? rem == 0 : n > 0;
}

/* Records what the last plan of bid slot says about the book (see "Plan
 * bounds" above): trusted only after a complete walk that found no fill. */
static void plan_remember(matcher_engine *e, uint32_t slot, bool filled)
{
    order *b = &e->orders[slot];
    b->plan_epoch = 0;
    if (filled || !e->plan_complete)
        return;
    int32_t r = bid_remaining(b);
    b->plan_bound_qty = bid_all_or_none(b) ? (int32_t)(e->plan_avail_qty < r ? e->plan_avail_qty : r) : 0;
    b->plan_epoch = e->books[b->market].plan_epoch;
}

/* True when offer o (avail GPUs for b's window, > 0) cannot make resting
 * bid b fill, judged from b's bound alone; with record, o's share joins
 * the bound (o is entering the book behind the bound). */
static bool plan_bound_rules_out(matcher_engine *e, order *b, const order *o, int32_t avail, bool record)
{
    if (b->plan_epoch != e->books[b->market].plan_epoch)
        return false;
    int32_t r = bid_remaining(b);
    if (!bid_all_or_none(b))
        return min32(avail, r) < max32(o->min_qty, min32(b->min_qty, r)); /* o cannot start a step */
    int32_t t = share(avail, r, o);
    if ((int64_t)b->plan_bound_qty + t >= r)
        return false;
    if (record)
        b->plan_bound_qty += t;
    return true;
}

void match_bid(matcher_engine *e, uint32_t bid)
{
    order *b = &e->orders[bid];
    const book_side *asks = &e->books[b->market].side[1];
    if (asks->n_levels == 0 || -asks->keys[asks->n_levels - 1] > b->price_micros) {
        /* No offer at or below the bid's price (most bids that enter or
         * move do not cross): what match_bid_plan's first test (the same
         * test: keep them equal) finds and plan_remember then records (a
         * complete walk, nothing available: bound 0), without the two
         * calls. Written out rather than shared: a shared helper cost
         * match_bid a register save on this path (callgrind, +0.3%). */
        GPUX_ASSERT(b->side == MATCHER_BUY && bid_remaining(b) > 0);
        b->plan_bound_qty = 0;
        b->plan_epoch = e->books[b->market].plan_epoch;
        return;
    }
    uint32_t n;
    bool ok = match_bid_plan(e, &e->orders[bid], &n);
    plan_remember(e, bid, ok);
    if (ok)
        match_bid_apply(e, bid, n);
}

/* A resting bid this fill ends: the lines its removal writes (its id's
 * map slot, its FIFO and expiry neighbours), asked for before the fill's
 * events and money, which do not need them. */
static void fill_prefetch_end(const matcher_engine *e, const order *b)
{
    slotmap_prefetch(&e->idmap, b->id);
    if (b->prev != NIL)
        GPUX_PREFETCH(&e->orders[b->prev]);
    if (b->next != NIL)
        GPUX_PREFETCH((const char *)&e->orders[b->next] + 64);
    if (b->in_bucket && b->xprev != NIL)
        GPUX_PREFETCH((const char *)&e->orders[b->xprev] + 64);
    if (b->in_bucket && b->xnext != NIL)
        GPUX_PREFETCH((const char *)&e->orders[b->xnext] + 64);
}

/* One fill between bid and offer; moves money and capacity, emits the
 * trade, lease and balances, and ends a resting order that has nothing
 * left. */
static void fill(matcher_engine *e, uint32_t bslot, uint32_t oslot, int32_t qty)
{
    order *b = &e->orders[bslot];
    order *o = &e->orders[oslot];
    int32_t hours = order_hours(b);
    int64_t price = b->priority < o->priority ? b->price_micros : o->price_micros;
    uint8_t taker = e->incoming == oslot ? MATCHER_SELL : MATCHER_BUY;
    int64_t notional = price * qty * hours;
    int64_t buyer_fee = eng_fee(notional, taker == MATCHER_BUY ? e->cfg.taker_fee_bps : e->cfg.maker_fee_bps);
    int64_t provider_fee = eng_fee(notional, taker == MATCHER_SELL ? e->cfg.taker_fee_bps : e->cfg.maker_fee_bps);

    int64_t old_hold = b->hold_micros;
    if (bslot != e->incoming && bid_remaining(b) == qty && e->n_orders >= PREFETCH_DEEP_ORDERS)
        fill_prefetch_end(e, b); /* its removal's lines, while the events go out */
    b->filled_qty += qty;
    b->hold_micros = eng_hold(e, b->price_micros, bid_remaining(b), hours);
    GPUX_ASSERT(old_hold - b->hold_micros >= notional + buyer_fee);
    account *buyer = &e->accounts[b->account];
    buyer->balance_micros -= notional + buyer_fee;
    buyer->held_micros -= old_hold - b->hold_micros;
    e->accounts[o->account].balance_micros += notional - provider_fee;
    e->accounts[MATCHER_FEE_ACCOUNT].balance_micros += buyer_fee + provider_fee;
    cap_take(e, o, b->start_hour, b->end_hour, qty, oslot != e->incoming); /* see match_offer_sweep */
    if (b->single_provider)
        b->provider_lock = o->account;
    GPUX_ASSERT(e->fills_left > 0);
    e->fills_left--;

    matcher_event ev;
    eng_event_init(e, &ev, MATCHER_EV_TRADE);
    matcher_fill_info *f = &ev.u.fill;
    f->trade_id = e->next_trade_id++;
    f->buy_order_id = b->id;
    f->sell_order_id = o->id;
    f->buyer = b->account;
    f->provider = o->account;
    f->market = b->market;
    f->taker_side = taker;
    f->price_micros = price;
    f->qty = qty;
    f->start_hour = b->start_hour;
    f->end_hour = b->end_hour;
    f->notional_micros = notional;
    f->buyer_fee_micros = buyer_fee;
    f->provider_fee_micros = provider_fee;
    f->saving_micros = (b->price_micros - price) * qty * hours;
    if (e->emit) {
        e->emit(e->emit_ctx, &ev);
        ev.type = MATCHER_EV_LEASE;
        e->emit(e->emit_ctx, &ev);
    }
    eng_emit_balance(e, b->account);
    eng_emit_balance(e, o->account);
    eng_emit_balance(e, MATCHER_FEE_ACCOUNT);

    if (bslot != e->incoming && bid_remaining(b) == 0)
        eng_order_end(e, bslot, MATCHER_DONE_FILLED);
    if (oslot != e->incoming && cap_sold_out(e, o))
        eng_order_end(e, oslot, MATCHER_DONE_FILLED);
}

void match_bid_apply(matcher_engine *e, uint32_t bid, uint32_t n_steps)
{
    GPUX_ASSERT(n_steps <= e->fills_left);
    for (uint32_t k = 0; k < n_steps; k++)
        fill(e, bid, e->plan[k].offer, e->plan[k].qty);
}

/* What offer o can give resting bid b over b's window (0: not eligible). */
static int32_t offer_avail_for_bid(const matcher_engine *e, const order *b, const order *o)
{
    if (!offer_eligible(e, b, o, b->provider_lock))
        return 0;
    return cap_min(e, o, b->start_hour, b->end_hour);
}

bool match_offer_would_trade(matcher_engine *e, uint32_t oslot)
{
    const order *o = &e->orders[oslot];
    const book_side *bids = &e->books[o->market].side[0];
    int32_t open_start = order_open_start(e, o);
    for (uint32_t i = bids->n_levels; i-- > 0;) {
        if (bids->keys[i] < o->price_micros) /* bid key = price */
            break;
        if (!bid_level_may_use(e, bids->lvl[i], o, open_start))
            continue;
        const level *lv = &e->levels[bids->lvl[i]];
        hint_ring hr = {.n = 0};
        for (uint32_t s = lv->head; s != NIL; s = e->orders[s].next) {
            walk_hint_pass(e, &hr, s);
            order *b = &e->orders[s];
            int32_t avail = offer_avail_for_bid(e, b, o);
            if (avail == 0 || plan_bound_rules_out(e, b, o, avail, false))
                continue;
            uint32_t n;
            if (match_bid_plan(e, b, &n))
                return true;
        }
    }
    return false;
}

/* A bid from behind a level's prefix that joins it after a full walk. */
typedef struct bid_win {
    uint32_t slot;
    int32_t start_hour;
    int32_t hours;
} bid_win;

/* Is offer o (in the book, sweeping) the only offer priced at or below
 * bid b? Then a plan of b walks o alone. Conservative: an emptied level
 * not yet compacted answers no. */
static bool offer_alone_below(const matcher_engine *e, const order *o, const order *b)
{
    const book_side *asks = &e->books[o->market].side[1];
    uint32_t n = asks->n_levels;
    return n > 0 && asks->lvl[n - 1] == o->level && e->levels[o->level].count == 1 &&
           (n == 1 || -(int64_t)asks->keys[n - 2] > b->price_micros);
}

/* Bid b against offer o alone below its price (see sweep_bid, below):
 * fills the plan's one step and returns true, or records the bound the
 * plan would have and returns false. */
static bool sweep_bid_alone(matcher_engine *e, const order *o, order *b, int32_t avail)
{
    bool all = bid_all_or_none(b);
    int32_t r = bid_remaining(b);
    int32_t t = min32(avail, r);
    GPUX_ASSERT(t > 0 && e->fills_left > 0);
    if (t < o->min_qty || t < (all ? r : min32(b->min_qty, r))) {
        b->plan_bound_qty = all ? share(avail, r, o) : 0;
        b->plan_epoch = e->books[b->market].plan_epoch;
        return false;
    }
    b->plan_epoch = 0; /* filled: nothing to remember (plan_remember) */
    fill(e, (uint32_t)(b - e->orders), (uint32_t)(o - e->orders), t);
    return true;
}

/* Offer o against bid s: re-plans the bid when o can help it (avail: o's
 * capacity over the bid's window, > 0). Returns false when the sweep must
 * stop (o sold out or the fill budget spent).
 * An offer alone: a crossing offer is priced through the mid and the
 * resting offers above it, so the bids it sweeps often see it alone below
 * their price (offer_alone_below), and then the plan's answer is known
 * without its walk over the asks: one step of t = min(avail, r) from o,
 * taken when it reaches o's min_qty and what the bid needs (its whole
 * remainder if all-or-none, else min(min_qty, r)); otherwise no step,
 * and the bid records the bound that plan would have recorded
 * (plan_remember: o's share for an all-or-none bid, 0 for a partial one).
 * Single-provider bids come to the same: o's provider is the only one,
 * and a bid already bound to a provider reached here only if that is
 * o's (bid_takes_from). The budget allows the step: a sweep enters a bid
 * only with fills left. Counted in the tenth session, 95% of the
 * all-or-none re-plans in sweeps failed (12 per crossing offer); since
 * the eleventh, the bids that would fill and the partial bids take the
 * same path: -16% of the sweeps' instructions (docs/benchmarks.md). */
static bool sweep_bid(matcher_engine *e, const order *o, uint32_t s, int32_t avail)
{
    order *b = &e->orders[s];
    if (!bid_takes_from(b, o) || plan_bound_rules_out(e, b, o, avail, true))
        return true;
    if (!offer_alone_below(e, o, b))
        match_bid(e, s);
    else if (!sweep_bid_alone(e, o, b, avail))
        return true; /* no step: the bid keeps the plan's bound */
    return !(cap_sold_out(e, o) || e->fills_left == 0);
}


/* Offer o against the bids of level l's prefix, judged in place from
 * their inline windows (see "Bid windows"): a bid is read only when its
 * window, its length and o's capacity over it fit. A filled bid leaves
 * the prefix (book.c, level_win_leave: the entries behind it move up), so
 * the same index is judged again. Returns false when the sweep must stop;
 * else *n_out is the prefix left, every entry a bid still resting. Until
 * the eleventh session the prefix was copied first and then copied again
 * for the refill (2.6% of the sweeps' instructions, callgrind). */
static bool sweep_prefix(matcher_engine *e, const order *o, uint32_t l, int32_t open_start, uint32_t *n_out)
{
    const level *lv = &e->levels[l];
    uint32_t k = 0;
    /* bounded: each pass moves k on or takes a bid out of the prefix */
    while (k < LEVEL_WIN && lv->win_slot[k] != NIL) {
        uint32_t s = lv->win_slot[k];
        int32_t start_hour = lv->win_start_hour[k], hours = lv->win_hours[k];
        int32_t avail =
            window_fits(o, open_start, start_hour, hours) ? cap_min(e, o, start_hour, start_hour + hours) : 0;
        if (avail > 0) {
            if (!sweep_bid(e, o, s, avail))
                return false;
            if (e->orders[s].level != l)
                continue; /* filled: it has left, and the entries behind it moved up */
        }
        k++;
    }
    *n_out = k;
    return true;
}

/* Offer o against the bids of level l, in FIFO order: the prefix
 * (sweep_prefix), then the bids behind it, read as they come. Returns
 * false when the sweep must stop (o sold out or the fill budget spent).
 * A level walked to its end gets exact bounds, and a full prefix from the
 * bids still in it. */
static bool sweep_level(matcher_engine *e, uint32_t oslot, uint32_t l, int32_t open_start)
{
    const order *o = &e->orders[oslot];
    level *lv = &e->levels[l];
    uint32_t n = level_win_n(lv);
    /* the first bid behind the prefix, read before a prefix bid may leave */
    uint32_t after = n == 0 ? lv->head : n < lv->count ? e->orders[lv->win_slot[n - 1]].next : NIL;
    if (!sweep_prefix(e, o, l, open_start, &n))
        return false;
    /* the prefix left, [0, n), stays in place below: bids behind it
     * leaving do not touch it, and its entries after n are NIL */
    bid_bounds seen = {0};
    uint32_t n_seen = 0;
    for (; n_seen < n; n_seen++)
        bid_bounds_cover_window(&seen, lv->win_start_hour[n_seen], lv->win_hours[n_seen], n_seen == 0);
    bid_win more[LEVEL_WIN]; /* bids from behind the prefix that fit in it, in FIFO order */
    uint32_t n_more = 0;
    hint_ring hr = {.n = 0};
    for (uint32_t s = after; s != NIL;) {
        uint32_t next = e->orders[s].next; /* s may leave the book; others stay */
        if (next != NIL) /* a FIFO's bids are a chain of misses: start the next one now */
            GPUX_PREFETCH(&e->orders[next]);
        walk_hint_pass(e, &hr, s);
        order *b = &e->orders[s];
        int32_t avail = offer_avail_for_bid(e, b, o);
        if (avail > 0 && !sweep_bid(e, o, s, avail))
            return false;
        if (b->level == l) { /* still resting here (a filled bid has left) */
            bid_bounds_cover(&seen, b, n_seen++ == 0);
            if (n + n_more < LEVEL_WIN)
                more[n_more++] = (bid_win){s, b->start_hour, order_hours(b)};
        }
        s = next;
    }
    if (n_seen > 0 && n_seen == lv->count) {
        lv->bounds = bid_bnd8_pack(seen);
        /* the bids from behind join the prefix; the rest of it is as it
         * was (writing it back anyway was ~4% of an ioc offer's sweep in
         * instructions: callgrind, tenth session) */
        for (uint32_t k = 0; k < n_more; k++) {
            lv->win_slot[n + k] = more[k].slot;
            lv->win_start_hour[n + k] = more[k].start_hour;
            lv->win_hours[n + k] = (uint16_t)more[k].hours;
        }
    }
    return true;
}

static void sweep_bids(matcher_engine *e, uint32_t oslot);

void match_offer_sweep(matcher_engine *e, uint32_t oslot)
{
    const order *o = &e->orders[oslot];
    const book_side *bids = &e->books[o->market].side[0];
    /* No bid at or above the offer's price (most offers that enter or move
     * do not cross): return before the walk's set-up. */
    if (bids->n_levels > 0 && bids->keys[bids->n_levels - 1] >= o->price_micros) {
        sweep_bids(e, oslot);
        /* Its fills left its summaries (zero blocks, hour mask) as they
         * were: refreshed once here rather than after each of them (~6
         * per crossing offer), and not at all for an ioc offer, which
         * leaves the book now (order_entry.c, finish_incoming).
         * Meanwhile they only lagged behind, as its capacity only fell,
         * and every reader takes them as claiming too much capacity at
         * worst (capacity.c, "Zero blocks"). */
        if (e->orders[oslot].tif != MATCHER_IOC)
            cap_update_summary(e, &e->orders[oslot]);
    }
}

static __attribute__((noinline)) void sweep_bids(matcher_engine *e, uint32_t oslot)
{
    const order *o = &e->orders[oslot];
    bid_walk w;
    bid_walk_begin(&w, e, o);
    /* bounded: every step consumes a position of the side, or ends */
    for (uint32_t l; (l = bid_walk_next(&w)) != NIL;) {
        /* (tested per level entered, not per position: a spent budget
         * only matters to bids o could serve) */
        if (e->fills_left == 0)
            goto budget_spent;
        if (!sweep_level(e, oslot, l, w.open_start)) {
            if (cap_sold_out(e, o))
                return;
            goto budget_spent;
        }
    }
    return;
budget_spent:
    /* Bids past this point never saw o: their bounds would miss it. */
    if (++e->books[o->market].plan_epoch == 0)
        e->books[o->market].plan_epoch = 1;
}
