/* prefetch.c — loads what the next commands will read while this one runs.
 *
 * In a book of a million orders every command on a resting order is a
 * chain of cache misses: the id map, then the order, then its level and
 * its neighbours in the level and the expiry wheel; a new order: the
 * level map, then the level, then the level's tail. Each hop needs the
 * one before, so one command cannot overlap them, and a command is long
 * enough (~1 us) that the CPU does not reach the next one's loads either.
 *
 * matcher_prefetch() runs that chain ahead of time as a pipeline over the
 * coming commands: the first hop of the command five places ahead, the
 * second hop of the one three places ahead (its first hop's line arrived
 * while two commands ran), the third of the next one. Two commands
 * between hops, not one: in the throughput loop commands overlap and one
 * was too short a wait (build phase of matcher_gpu 794k/825k -> 980k/1.0M
 * ops/s, 2 of 2 pairs; the latency pass, where clock reads keep commands
 * apart, was within 5% either way). A price move has one hop more (the
 * order, then its new price's level map slot, then the level), so in
 * large books it gets hop 2b between hops 2 and 3, a command after each
 * (see matcher_prefetch). Every hop reads the
 * engine as it is now; a command in between may change it (cancel the
 * order, empty the level), so a hint can be stale, never wrong: nothing
 * here writes, and every index read is checked before it is followed.
 *
 * It runs in books of every size. In matcher_classic's book of ~1,000
 * orders (all of it in L2) the hops cost ~158 instructions per command
 * (+25%, callgrind) and still paid: ops per CPU-second higher in 6 of 8
 * alternated pairs (mean 7.27M -> 7.82M), p99 lower; the misses they hide
 * there are L1 misses, ~8 per command. */
#include "gpux_prefetch.h"
#include "matcher/engine_internal.h"

#define PREFETCH_NEW_IDS 2

static void touch(const void *p)
{
    GPUX_PREFETCH(p);
}

/* Both lines of an order: the hot first, the cold one (links, level). */
static void touch_order(const matcher_engine *e, uint32_t slot)
{
    touch(&e->orders[slot]);
    touch((const char *)&e->orders[slot] + 64);
}

static bool new_order_key(const matcher_engine *e, const matcher_cmd *c, uint64_t *hk)
{
    if (c->market >= e->cat.n_markets || (c->side != MATCHER_BUY && c->side != MATCHER_SELL) ||
        c->price_micros <= 0 || c->price_micros > MATCHER_MAX_PRICE_MICROS)
        return false;
    *hk = level_hkey(c->market, side_index(c->side), c->price_micros);
    return true;
}

/* The order a cancel or replace names, if it rests now (else NIL). */
static uint32_t named_order(const matcher_engine *e, const matcher_cmd *c)
{
    return c->order_id == 0 ? NIL : slotmap_find(&e->idmap, c->order_id);
}

/* Hop 1: the map slots where the command's look-ups start. */
static void hop_maps(const matcher_engine *e, const matcher_cmd *c)
{
    uint64_t hk;
    if (c->type == MATCHER_CMD_NEW_ORDER && new_order_key(e, c, &hk)) {
        slotmap_prefetch(&e->lvmap, hk);
        if (c->account < e->n_accounts)
            touch(&e->accounts[c->account]);
    } else if ((c->type == MATCHER_CMD_CANCEL || c->type == MATCHER_CMD_REPLACE) && c->order_id != 0) {
        slotmap_prefetch(&e->idmap, c->order_id);
    }
}

/* Hop 2: the level a new order joins; the order a cancel/replace names. */
static void hop_targets(const matcher_engine *e, const matcher_cmd *c)
{
    uint64_t hk;
    if (c->type == MATCHER_CMD_NEW_ORDER && new_order_key(e, c, &hk)) {
        uint32_t l = slotmap_find(&e->lvmap, hk);
        if (l != NIL) {
            touch(&e->levels[l]);
            /* an ask level's hour mask; a bid level's entry is unused
             * (its bounds are in the level), but asking for it costs
             * less than a branch on the side: matcher_classic +2..5% in
             * 5 of 6 pairs without that branch here and below */
            touch(&e->lvmask[l]);
        }
    } else if (c->type == MATCHER_CMD_CANCEL || c->type == MATCHER_CMD_REPLACE) {
        uint32_t slot = named_order(e, c);
        if (slot != NIL)
            touch_order(e, slot);
    }
}

/* The level map key of the price a replace moves order o to. */
static bool replace_key(const matcher_cmd *c, const order *o, uint64_t *hk)
{
    if (c->type != MATCHER_CMD_REPLACE || c->price_micros <= 0 || c->price_micros > MATCHER_MAX_PRICE_MICROS ||
        c->price_micros == o->price_micros)
        return false;
    *hk = level_hkey(o->market, side_index(o->side), c->price_micros);
    return true;
}

/* Hop 2b, a command after hop 2: the level map slot of the price a
 * replace moves its order to (the order's line, asked for by hop 2, says
 * which market and side). */
static void hop_replace_map(const matcher_engine *e, const matcher_cmd *c)
{
    uint64_t hk;
    uint32_t slot = c->type == MATCHER_CMD_REPLACE ? named_order(e, c) : NIL;
    if (slot != NIL && replace_key(c, &e->orders[slot], &hk))
        slotmap_prefetch(&e->lvmap, hk);
}

/* The level a replace moves order o to, if it exists now (else NIL). */
static uint32_t new_level(const matcher_engine *e, const matcher_cmd *c, const order *o)
{
    uint64_t hk;
    return replace_key(c, o, &hk) ? slotmap_find(&e->lvmap, hk) : NIL;
}

/* Hop 3: what taking the order out of (or into) its lists writes. deep:
 * hop 2b ran for this command (see matcher_prefetch). */
static void hop_neighbours(const matcher_engine *e, const matcher_cmd *c, bool deep)
{
    uint64_t hk;
    if (c->type == MATCHER_CMD_NEW_ORDER && new_order_key(e, c, &hk)) {
        uint32_t l = slotmap_find(&e->lvmap, hk);
        if (l != NIL && e->levels[l].tail != NIL)
            touch(&e->orders[e->levels[l].tail]); /* its next link */
        if (e->order_free != NIL)
            touch_order(e, e->order_free);
        else if (e->orders_hw < e->cfg.max_orders)
            touch_order(e, e->orders_hw + 1);
        return;
    }
    if (c->type != MATCHER_CMD_CANCEL && c->type != MATCHER_CMD_REPLACE)
        return;
    uint32_t slot = named_order(e, c);
    if (slot == NIL)
        return;
    const order *o = &e->orders[slot];
    if (o->level != NIL) {
        touch(&e->levels[o->level]);
        touch(&e->lvmask[o->level]);
    }
    if (o->prev != NIL)
        touch(&e->orders[o->prev]); /* its next link: the first line */
    if (o->next != NIL)
        touch((const char *)&e->orders[o->next] + 64); /* its prev link */
    if (o->account < e->n_accounts)
        touch(&e->accounts[o->account]);
    if (deep) { /* hop 2b asked for the level map slot: now the level */
        uint32_t l = new_level(e, c, o);
        if (l != NIL) {
            touch(&e->levels[l]);
            touch(&e->lvmask[l]);
        }
    } else if (replace_key(c, o, &hk)) {
        slotmap_prefetch(&e->lvmap, hk);
    }
    if (c->type == MATCHER_CMD_CANCEL && o->in_bucket) {
        if (o->xprev != NIL)
            touch((const char *)&e->orders[o->xprev] + 64);
        if (o->xnext != NIL)
            touch((const char *)&e->orders[o->xnext] + 64);
    }
}

void matcher_prefetch(const matcher_engine *e, const matcher_cmd *ahead, uint32_t n_ahead)
{
    GPUX_ASSERT(e && (ahead || n_ahead == 0));
    if (n_ahead == 0)
        return;
    _Static_assert(MATCHER_PREFETCH_AHEAD == 5, "the hops below use ahead[0], [1], [2], [4]");
    if (n_ahead > 4)
        hop_maps(e, &ahead[4]);
    if (n_ahead > 2)
        hop_targets(e, &ahead[2]);
    /* A price move's new level is a third hop after the order (its level
     * map slot, then the level): worth its instructions only when the
     * book is far larger than the caches (matcher_gpu: replace ~10%
     * faster against cancel in 7 of 7 pairs; matcher_classic, a book in
     * L2: +3.7% instructions for misses L2 serves anyway). */
    bool deep = e->n_orders >= PREFETCH_DEEP_ORDERS;
    if (deep && n_ahead > 1)
        hop_replace_map(e, &ahead[1]);
    hop_neighbours(e, &ahead[0], deep);
    /* The id map slots the next new orders' ids will take. */
    for (uint64_t k = 0; k < PREFETCH_NEW_IDS; k++)
        slotmap_prefetch(&e->idmap, e->next_order_id + k);
}
